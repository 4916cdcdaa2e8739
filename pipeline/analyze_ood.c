/* The domain stage of the analyze run (pipeline/analyze_ood.h). */
#include "pipeline/analyze_ood.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/tissue.h"

hp_status hp_analyze_ood_prepare(hp_model *model, const hp_card *card, int batch, size_t grid_tiles,
                                 hp_analyze_ood *o, hp_error *err)
{
    memset(o, 0, sizeof *o);
    if (!card || !card->ood_path)
        return HP_OK;
    if (!(o->det = hp_ood_load(card->ood_path, err)))
        return err->code ? err->code : HP_ERR_INVALID;
    o->dim = hp_ood_dim(o->det);
    if (hp_model_add_output(model, hp_ood_feature(o->det), &o->out_index) != HP_OK)
        return hp_error_set(err, HP_ERR_INVALID, "out-of-domain detector %s: %s", card->ood_path,
                            hp_model_error(model));
    if (o->out_index != 1)
        return hp_error_set(err, HP_ERR_INVALID,
                            "out-of-domain detector %s: its feature value '%s' is not a new output "
                            "of the model (output %d)",
                            card->ood_path, hp_ood_feature(o->det), o->out_index);
    if (hp_model_instantiate(model, batch) != HP_OK)
        return hp_error_set(err, HP_ERR_INVALID, "%s", hp_model_error(model));
    if (hp_model_output_size(model, 1) != o->dim)
        return hp_error_set(err, HP_ERR_INVALID,
                            "out-of-domain detector %s scores %d features, the model's '%s' has %lld",
                            card->ood_path, o->dim, hp_ood_feature(o->det),
                            (long long)hp_model_output_size(model, 1));
    o->features = malloc(sizeof(float) * (size_t)batch * (size_t)o->dim);
    o->scores = malloc(sizeof(float) * (grid_tiles ? grid_tiles : 1));
    if (!o->features || !o->scores)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    o->n_scores = grid_tiles;
    for (size_t i = 0; i < grid_tiles; i++)
        o->scores[i] = NAN;
    return HP_OK;
}

float *const *hp_analyze_ood_outputs(hp_analyze_ood *o, int *n)
{
    *n = o->det ? 1 : 0;
    return o->det ? &o->features : NULL;
}

void hp_analyze_ood_score(hp_analyze_ood *o, const hp_tile *tiles, int count)
{
    if (!o->det)
        return;
    for (int q = 0; q < count; q++)
        if (tiles[q].index >= 0 && (size_t)tiles[q].index < o->n_scores)
            o->scores[tiles[q].index] =
                (float)hp_ood_score(o->det, o->features + (size_t)q * (size_t)o->dim);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Appends "; "-separated text to the findings' reason. */
static hp_status add_reason(hp_findings *f, const char *text, hp_error *err)
{
    size_t old = f->domain_reason ? strlen(f->domain_reason) : 0;
    char *r = realloc(f->domain_reason, old + strlen(text) + 3);
    if (!r)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    if (old)
        strcpy(r + old, "; ");
    strcpy(r + old + (old ? 2 : 0), text);
    f->domain_reason = r;
    return HP_OK;
}

/* Mean top-class probability after temperature scaling. softmax(logits / T) equals the raw
 * probabilities raised to 1/T and renormalized (the log-sum-exp shift cancels), so the stage
 * works from the stored probabilities and needs no second copy of the logits. */
static double calibrated_confidence(const hp_heatmap_grid *hg, double T)
{
    double sum = 0;
    int64_t n = 0;
    int C = hg->nclasses;
    for (size_t t = 0; t < (size_t)hg->gw * hg->gh; t++) {
        if (!hp_heatmap_analysed(hg, t))
            continue;
        const float *p = hg->prob + t * (size_t)C;
        double z = 0, top = 0;
        for (int k = 0; k < C; k++) {
            double v = p[k] > 0 ? pow((double)p[k], 1.0 / T) : 0;
            z += v;
            top = v > top ? v : top;
        }
        if (z > 0) {
            sum += top / z;
            n++;
        }
    }
    return n ? sum / (double)n : NAN;
}

hp_status hp_analyze_ood_finish(const hp_analyze_ood *o, const hp_card *card,
                                const hp_heatmap_grid *hg, hp_findings *f, hp_error *err)
{
    char buf[512];
    hp_status st;
    if (card->has_calibration) {
        f->temperature = card->temperature;
        f->calibrated_confidence = calibrated_confidence(hg, card->temperature);
    }
    if (o->det) {
        f->domain_checked = 1;
        f->ood_threshold = hp_ood_threshold(o->det);
        f->ood_slide_fraction = card->ood_slide_fraction;
        float *v = malloc(sizeof(float) * (o->n_scores ? o->n_scores : 1));
        if (!v)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        size_t n = 0;
        int64_t beyond = 0, bad = 0;
        for (size_t i = 0; i < o->n_scores; i++) {
            if (!hp_heatmap_analysed(hg, i))
                continue;
            /* A tile whose features are not finite is unlike anything the model was fitted on. */
            if (!isfinite(o->scores[i])) {
                bad++;
                beyond++;
                continue;
            }
            v[n++] = o->scores[i];
            beyond += o->scores[i] > f->ood_threshold;
        }
        int64_t total = (int64_t)n + bad;
        f->ood_tiles_beyond = beyond;
        if (n > 0) {
            qsort(v, n, sizeof *v, cmp_float);
            f->ood_median_score = v[n / 2];
            f->ood_p95_score = v[(size_t)floor(0.95 * (double)(n - 1))];
        }
        free(v);
        if (total > 0) {
            f->ood_fraction_beyond = (double)beyond / (double)total;
            if (f->ood_fraction_beyond >= f->ood_slide_fraction) {
                snprintf(buf, sizeof buf,
                         "%.0f%% of the analysed tissue tiles (%lld of %lld) lie beyond the "
                         "out-of-domain detector's threshold (the model card calls a slide out of "
                         "domain from %.0f%%): the tissue looks unlike the model's training data",
                         100 * f->ood_fraction_beyond, (long long)beyond, (long long)total,
                         100 * f->ood_slide_fraction);
                if ((st = add_reason(f, buf, err)))
                    return st;
            }
        }
    }
    if (card->mpp_max > 0) {
        /* Super-resolved tiles reach the model at the SR model's output resolution: that is the
         * resolution the range speaks of (the tiles' being generated is stated on its own). */
        double mpp = f->sr_used ? f->sr_output_mpp : f->mpp_x;
        f->mpp_in_range = isfinite(mpp) && mpp >= card->mpp_min && mpp <= card->mpp_max;
        if (!f->mpp_in_range) {
            snprintf(buf, sizeof buf,
                     "the %s resolution %.4g um/px lies outside the model card's range "
                     "%.4g-%.4g um/px",
                     f->sr_used ? "super-resolved tiles'" : "slide's", mpp, card->mpp_min, card->mpp_max);
            if ((st = add_reason(f, buf, err)))
                return st;
        }
    }
    if (card->domain_stain && strstr(card->domain_stain, "H&E") && (f->qc_flags & HP_QC_NOT_HE)) {
        snprintf(buf, sizeof buf,
                 "the stain does not look like H&E (brown DAB dominates) while the model card's "
                 "domain is %s",
                 card->domain_stain);
        if ((st = add_reason(f, buf, err)))
            return st;
    }
    if (f->domain_reason) {
        f->out_of_domain = 1;
        f->qc_flags |= HP_QC_OUT_OF_DOMAIN;
    }
    return HP_OK;
}

void hp_analyze_ood_free(hp_analyze_ood *o)
{
    hp_ood_destroy(o->det);
    free(o->features);
    free(o->scores);
    memset(o, 0, sizeof *o);
}
