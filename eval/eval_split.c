/* Evaluation splits: all, eva's BACH split, seeded stratified k folds (eval/eval_split.h). */
#include "eval/eval_split.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_rng.h"

/* kaiko-ai/eva, src/eva/vision/data/datasets/classification/bach.py: BACH._train_index_ranges
 * and BACH._val_index_ranges (half-open [start, end) over the 400 images in ImageFolder order). */
static const int eva_train[][2] = {{0, 41},    {59, 60},   {90, 139}, {169, 240},
                                   {258, 260}, {273, 345}, {368, 400}};
static const int eva_val[][2] = {{41, 59}, {60, 90}, {139, 169}, {240, 258}, {260, 273}, {345, 368}};

static int parse_u64(const char *s, const char *end, uint64_t *out)
{
    if (s == end || *s == '-' || *s == '+')
        return -1;
    char buf[32];
    if ((size_t)(end - s) >= sizeof buf)
        return -1;
    memcpy(buf, s, (size_t)(end - s));
    buf[end - s] = 0;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(buf, &e, 10);
    if (errno || *e)
        return -1;
    *out = v;
    return 0;
}

hp_status hp_eval_split_parse(const char *spec, hp_eval_split *s, hp_error *err)
{
    memset(s, 0, sizeof *s);
    s->fold = -1;
    if (!spec || !strcmp(spec, "all")) {
        snprintf(s->spec, sizeof s->spec, "all");
        return HP_OK;
    }
    if (!strcmp(spec, "eva") || !strcmp(spec, "eva:val")) {
        s->kind = HP_EVAL_SPLIT_EVA;
        snprintf(s->spec, sizeof s->spec, "eva:val");
        return HP_OK;
    }
    if (!strcmp(spec, "eva:train")) {
        s->kind = HP_EVAL_SPLIT_EVA;
        s->eva_train = 1;
        snprintf(s->spec, sizeof s->spec, "eva:train");
        return HP_OK;
    }
    if (!strncmp(spec, "kfold:", 6)) {
        const char *p = spec + 6;
        const char *c1 = strchr(p, ':');
        uint64_t k, seed, fold = 0;
        if (!c1 || parse_u64(p, c1, &k) || k < 2 || k > 100)
            goto bad;
        const char *c2 = strchr(c1 + 1, ':');
        const char *seed_end = c2 ? c2 : c1 + 1 + strlen(c1 + 1);
        if (parse_u64(c1 + 1, seed_end, &seed))
            goto bad;
        if (c2 && (parse_u64(c2 + 1, c2 + 1 + strlen(c2 + 1), &fold) || fold >= k))
            goto bad;
        s->kind = HP_EVAL_SPLIT_KFOLD;
        s->k = (int)k;
        s->seed = seed;
        s->fold = c2 ? (int)fold : -1;
        if (c2)
            snprintf(s->spec, sizeof s->spec, "kfold:%d:%llu:%d", s->k, (unsigned long long)seed,
                     s->fold);
        else
            snprintf(s->spec, sizeof s->spec, "kfold:%d:%llu", s->k, (unsigned long long)seed);
        return HP_OK;
    }
bad:
    return hp_error_set(err, HP_ERR_INVALID,
                        "--split %s: expected all, eva (= eva:val), eva:train, kfold:K:SEED or "
                        "kfold:K:SEED:FOLD (K 2..100, FOLD 0..K-1)",
                        spec);
}

const char *hp_eval_split_definition(const hp_eval_split *s)
{
    switch (s->kind) {
    case HP_EVAL_SPLIT_ALL:
        return "every image of the data set";
    case HP_EVAL_SPLIT_EVA:
        return s->eva_train
                   ? "the eva benchmark's BACH train split (kaiko-ai/eva, "
                     "src/eva/vision/data/datasets/classification/bach.py: index ranges over the "
                     "400 images in torchvision ImageFolder order; 268 images)"
                   : "the eva benchmark's BACH validation split (kaiko-ai/eva, "
                     "src/eva/vision/data/datasets/classification/bach.py: index ranges over the "
                     "400 images in torchvision ImageFolder order; 132 images)";
    case HP_EVAL_SPLIT_KFOLD:
        return "stratified k folds: images grouped by label (byte order), shuffled within each "
               "group by Fisher-Yates with SplitMix64 seeded with SEED, shuffled position p in "
               "fold p mod K";
    }
    return "";
}

static int cmp_label(const void *a, const void *b, void *ctx)
{
    const hp_eval_dataset *d = ctx;
    const char *x = d->items[*(const int *)a].label, *y = d->items[*(const int *)b].label;
    if (!x || !y)
        return (x != NULL) - (y != NULL);
    int c = strcmp(x, y);
    /* Stable: data order within a label. */
    return c ? c : (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

hp_status hp_eval_split_apply(const hp_eval_split *s, const hp_eval_dataset *d, int *fold,
                              unsigned char *selected, hp_error *err)
{
    for (int i = 0; i < d->n; i++) {
        if (fold)
            fold[i] = -1;
        selected[i] = s->kind == HP_EVAL_SPLIT_ALL;
    }
    if (s->kind == HP_EVAL_SPLIT_ALL)
        return HP_OK;
    if (s->kind == HP_EVAL_SPLIT_EVA) {
        if (d->kind != HP_EVAL_DATA_BACH || d->n != HP_EVAL_EVA_BACH_IMAGES)
            return hp_error_set(err, HP_ERR_INVALID,
                                "--split %s is defined on the %d images of the BACH Part A folder "
                                "(Photos/{Benign,InSitu,Invasive,Normal}/*.tif); %s is a %s data "
                                "set of %d images",
                                s->spec, HP_EVAL_EVA_BACH_IMAGES, d->root,
                                hp_eval_data_kind_name(d->kind), d->n);
        const int(*r)[2] = s->eva_train ? eva_train : eva_val;
        int nr = s->eva_train ? (int)(sizeof eva_train / sizeof eva_train[0])
                              : (int)(sizeof eva_val / sizeof eva_val[0]);
        for (int q = 0; q < nr; q++)
            for (int i = r[q][0]; i < r[q][1]; i++)
                selected[i] = 1;
        return HP_OK;
    }
    /* kfold */
    int *order = malloc(sizeof *order * (size_t)(d->n ? d->n : 1));
    if (!order)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < d->n; i++)
        order[i] = i;
    qsort_r(order, (size_t)d->n, sizeof *order, cmp_label, (void *)d);
    hp_eval_rng rng;
    hp_eval_rng_seed(&rng, s->seed);
    for (int g0 = 0; g0 < d->n;) {
        int g1 = g0 + 1;
        const char *lab = d->items[order[g0]].label;
        while (g1 < d->n) {
            const char *l2 = d->items[order[g1]].label;
            if ((lab == NULL) != (l2 == NULL) || (lab && strcmp(lab, l2)))
                break;
            g1++;
        }
        int n = g1 - g0, *g = order + g0;
        for (int i = n - 1; i >= 1; i--) {
            int j = (int)hp_eval_rng_below(&rng, (uint64_t)i + 1);
            int t = g[i];
            g[i] = g[j];
            g[j] = t;
        }
        for (int p = 0; p < n; p++) {
            int f = p % s->k;
            if (fold)
                fold[g[p]] = f;
            selected[g[p]] = s->fold < 0 || f == s->fold;
        }
        g0 = g1;
    }
    free(order);
    return HP_OK;
}
