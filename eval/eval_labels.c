/* The spelling table and the data-label to card-class map (eval/eval_labels.h). */
#include "eval/eval_labels.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const canonical[HP_EVAL_N_CANONICAL] = {"normal", "benign", "in_situ",
                                                           "invasive"};
static const char *const bach[HP_EVAL_N_CANONICAL] = {"Normal", "Benign", "InSitu", "Invasive"};

/* Keys: lower case, letters and digits only. */
static const struct {
    const char *key;
    hp_eval_class cls;
} spellings[] = {
    {"normal", HP_EVAL_CLASS_NORMAL},
    {"normaltissue", HP_EVAL_CLASS_NORMAL},
    {"healthy", HP_EVAL_CLASS_NORMAL},
    {"benign", HP_EVAL_CLASS_BENIGN},
    {"benignlesion", HP_EVAL_CLASS_BENIGN},
    {"benigntissue", HP_EVAL_CLASS_BENIGN},
    {"insitu", HP_EVAL_CLASS_IN_SITU},
    {"insitucarcinoma", HP_EVAL_CLASS_IN_SITU},
    {"carcinomainsitu", HP_EVAL_CLASS_IN_SITU},
    {"cis", HP_EVAL_CLASS_IN_SITU},
    {"dcis", HP_EVAL_CLASS_IN_SITU},
    {"invasive", HP_EVAL_CLASS_INVASIVE},
    {"invasivecarcinoma", HP_EVAL_CLASS_INVASIVE},
    {"carcinomainvasive", HP_EVAL_CLASS_INVASIVE},
    {"idc", HP_EVAL_CLASS_INVASIVE},
};

const char *hp_eval_class_name(hp_eval_class c)
{
    return c >= 0 && c < HP_EVAL_N_CANONICAL ? canonical[c] : NULL;
}

const char *hp_eval_class_bach_name(hp_eval_class c)
{
    return c >= 0 && c < HP_EVAL_N_CANONICAL ? bach[c] : NULL;
}

/* Lower-case letters and digits of `s`, truncated to cap-1. */
static void key_of(const char *s, char *key, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        if (isalnum((unsigned char)*s))
            key[n++] = (char)tolower((unsigned char)*s);
    key[n] = 0;
}

hp_eval_class hp_eval_class_parse(const char *label)
{
    char key[128];
    if (!label)
        return HP_EVAL_CLASS_NONE;
    key_of(label, key, sizeof key);
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++)
        if (!strcmp(key, spellings[i].key))
            return spellings[i].cls;
    return HP_EVAL_CLASS_NONE;
}

int hp_eval_label_is_numeric(const char *label)
{
    if (!label)
        return 0;
    while (isspace((unsigned char)*label))
        label++;
    if (*label == '+' || *label == '-')
        label++;
    int digits = 0;
    for (; *label && !isspace((unsigned char)*label); label++) {
        if (isdigit((unsigned char)*label))
            digits++;
        else if (*label != '.')
            return 0;
    }
    while (isspace((unsigned char)*label))
        label++;
    return digits > 0 && !*label;
}

static char *trimmed_dup(const char *b, const char *e)
{
    while (b < e && isspace((unsigned char)*b))
        b++;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    char *s = malloc((size_t)(e - b) + 1);
    if (s) {
        memcpy(s, b, (size_t)(e - b));
        s[e - b] = 0;
    }
    return s;
}

void hp_eval_label_map_free(hp_eval_label_map *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        free(m->from[i]);
        free(m->to[i]);
    }
    memset(m, 0, sizeof *m);
}

static int card_index_exact(const hp_card *card, const char *name)
{
    for (int k = 0; k < card->n_classes; k++)
        if (!strcmp(card->classes[k], name))
            return k;
    return -1;
}

hp_status hp_eval_label_map_parse(const char *spec, const hp_card *card, hp_eval_label_map *m,
                                  hp_error *err)
{
    memset(m, 0, sizeof *m);
    const char *p = spec;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq)
            return hp_error_set(err, HP_ERR_INVALID,
                                "--label-map: '%.*s' is not DATA_LABEL=CARD_CLASS", (int)(end - p), p);
        if (m->n >= HP_EVAL_MAX_LABELS)
            return hp_error_set(err, HP_ERR_INVALID, "--label-map: more than %d entries",
                                HP_EVAL_MAX_LABELS);
        char *from = trimmed_dup(p, eq), *to = trimmed_dup(eq + 1, end);
        if (!from || !to) {
            free(from);
            free(to);
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        }
        m->from[m->n] = from;
        m->to[m->n] = to;
        m->n++;
        if (!*from || !*to)
            return hp_error_set(err, HP_ERR_INVALID, "--label-map: an empty label in '%.*s'",
                                (int)(end - p), p);
        if (card_index_exact(card, to) < 0)
            return hp_error_set(err, HP_ERR_INVALID,
                                "--label-map: '%s' is not a class of the model card", to);
        for (int i = 0; i < m->n - 1; i++)
            if (!strcmp(m->from[i], from))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "--label-map: data label '%s' is mapped twice", from);
        p = comma ? comma + 1 : end;
    }
    return HP_OK;
}

hp_eval_class hp_eval_card_class_canonical(const hp_card *card, int k)
{
    if (!card || k < 0 || k >= card->n_classes)
        return HP_EVAL_CLASS_NONE;
    return hp_eval_class_parse(card->classes[k]);
}

/* Two names mean the same class: the same canonical class, or the same key. */
static int same_class(const char *a, const char *b)
{
    hp_eval_class ca = hp_eval_class_parse(a), cb = hp_eval_class_parse(b);
    if (ca != HP_EVAL_CLASS_NONE || cb != HP_EVAL_CLASS_NONE)
        return ca == cb;
    char ka[128], kb[128];
    key_of(a, ka, sizeof ka);
    key_of(b, kb, sizeof kb);
    return !strcmp(ka, kb);
}

hp_status hp_eval_card_check(const hp_card *card, const char *expect, hp_error *err)
{
    if (!card || card->n_classes < 2)
        return hp_error_set(err, HP_ERR_INVALID, "the model card must list at least two classes");
    for (int a = 0; a < card->n_classes; a++)
        for (int b = a + 1; b < card->n_classes; b++)
            if (same_class(card->classes[a], card->classes[b]))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "the model card's classes '%s' and '%s' mean the same class; "
                                    "labels could not be matched to them unambiguously",
                                    card->classes[a], card->classes[b]);
    if (!expect)
        return HP_OK;
    char card_list[1024] = "";
    for (int k = 0; k < card->n_classes; k++) {
        size_t l = strlen(card_list);
        snprintf(card_list + l, sizeof card_list - l, "%s%s", k ? "," : "", card->classes[k]);
    }
    int k = 0;
    const char *p = expect;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        char *name = trimmed_dup(p, end);
        if (!name)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        int ok = k < card->n_classes && same_class(name, card->classes[k]);
        free(name);
        if (!ok)
            break;
        k++;
        if (!comma) {
            if (k == card->n_classes)
                return HP_OK;
            break;
        }
        p = comma + 1;
    }
    return hp_error_set(err, HP_ERR_INVALID,
                        "class order mismatch: the model card lists its outputs as [%s] but "
                        "--expect-classes says [%s]; outputs are read in the card's order, so "
                        "fix the card (or the expectation) before evaluating",
                        card_list, expect);
}

int hp_eval_label_to_card(const char *label, const hp_card *card, const hp_eval_label_map *map,
                          const char **why)
{
    if (why)
        *why = "unmatched";
    if (map)
        for (int i = 0; i < map->n; i++)
            if (!strcmp(map->from[i], label))
                return card_index_exact(card, map->to[i]);
    if (hp_eval_label_is_numeric(label)) {
        if (why)
            *why = "numeric";
        return -1;
    }
    for (int k = 0; k < card->n_classes; k++)
        if (same_class(label, card->classes[k]))
            return k;
    return -1;
}
