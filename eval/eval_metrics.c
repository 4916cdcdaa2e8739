/* Classification metrics and bootstrap intervals (eval/eval_metrics.h). */
#include "eval/eval_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_rng.h"

double hp_eval_metrics_scalar(const hp_eval_metrics *m, int i)
{
    switch (i) {
    case HP_EVAL_M_ACCURACY: return m->accuracy;
    case HP_EVAL_M_BALANCED_ACCURACY: return m->balanced_accuracy;
    case HP_EVAL_M_TWO_CLASS_ACCURACY: return m->two_class_accuracy;
    case HP_EVAL_M_MACRO_F1: return m->macro_f1;
    case HP_EVAL_M_MACRO_AUC: return m->macro_auc;
    case HP_EVAL_M_BRIER: return m->brier;
    case HP_EVAL_M_ECE: return m->ece;
    default: break;
    }
    int k = (i - HP_EVAL_M_OVERALL) / HP_EVAL_M_PER_CLASS;
    int which = (i - HP_EVAL_M_OVERALL) % HP_EVAL_M_PER_CLASS;
    if (k < 0 || k >= m->c)
        return NAN;
    switch (which) {
    case HP_EVAL_M_SENS: return m->sensitivity[k];
    case HP_EVAL_M_SPEC: return m->specificity[k];
    case HP_EVAL_M_PPV: return m->ppv[k];
    case HP_EVAL_M_F1: return m->f1[k];
    default: return m->auc[k];
    }
}

static int argmax(const float *p, int c)
{
    int best = 0;
    for (int k = 1; k < c; k++)
        if (p[k] > p[best])
            best = k;
    return best;
}

typedef struct {
    float score;
    int pos;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

/* One-vs-rest AUC of class k by ranks (ties averaged): the Mann-Whitney U over npos * nneg. */
static double auc_of(int n, int c, const int *truth, const float *prob, const int *idx, int k,
                     scored *buf)
{
    int64_t npos = 0;
    for (int q = 0; q < n; q++) {
        int i = idx ? idx[q] : q;
        buf[q].score = prob[(size_t)i * c + k];
        buf[q].pos = truth[i] == k;
        npos += buf[q].pos;
    }
    int64_t nneg = n - npos;
    if (npos == 0 || nneg == 0)
        return NAN;
    qsort(buf, (size_t)n, sizeof *buf, cmp_scored);
    double rank_sum = 0;
    for (int a = 0; a < n;) {
        int b = a + 1;
        while (b < n && buf[b].score == buf[a].score)
            b++;
        double mid = (a + 1 + b) / 2.0; /* ranks a+1..b averaged */
        for (int q = a; q < b; q++)
            if (buf[q].pos)
                rank_sum += mid;
        a = b;
    }
    return (rank_sum - (double)npos * (npos + 1) / 2.0) / ((double)npos * (double)nneg);
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : NAN; }

static hp_status compute(int n, int c, const int *truth, const float *prob, const int *carcinoma,
                         const int *idx, int m, hp_eval_metrics *out, scored *buf)
{
    memset(out, 0, sizeof *out);
    out->n = m;
    out->c = c;
    int64_t correct = 0, two_ok = 0;
    int two_defined = carcinoma != NULL;
    for (int k = 0; carcinoma && k < c; k++)
        if (carcinoma[k] != 0 && carcinoma[k] != 1)
            two_defined = 0;
    double brier = 0;
    double bin_conf[HP_EVAL_ECE_BINS] = {0};
    int64_t bin_right[HP_EVAL_ECE_BINS] = {0};
    for (int q = 0; q < m; q++) {
        int i = idx ? idx[q] : q;
        const float *p = prob + (size_t)i * c;
        int t = truth[i], pr = argmax(p, c);
        out->confusion[t * c + pr]++;
        out->support[t]++;
        out->predicted[pr]++;
        correct += t == pr;
        if (two_defined)
            two_ok += carcinoma[t] == carcinoma[pr];
        for (int k = 0; k < c; k++) {
            double d = (double)p[k] - (k == t);
            brier += d * d;
        }
        double conf = p[pr];
        int b = (int)floor(conf * HP_EVAL_ECE_BINS);
        b = b < 0 ? 0 : b >= HP_EVAL_ECE_BINS ? HP_EVAL_ECE_BINS - 1 : b;
        out->bin_count[b]++;
        bin_conf[b] += conf;
        bin_right[b] += t == pr;
    }
    (void)n;
    out->accuracy = ratio(correct, m);
    out->two_class_accuracy = two_defined ? ratio(two_ok, m) : NAN;
    out->brier = brier / m;
    double ece = 0;
    for (int b = 0; b < HP_EVAL_ECE_BINS; b++) {
        if (!out->bin_count[b]) {
            out->bin_confidence[b] = out->bin_accuracy[b] = NAN;
            continue;
        }
        out->bin_confidence[b] = bin_conf[b] / out->bin_count[b];
        out->bin_accuracy[b] = (double)bin_right[b] / out->bin_count[b];
        ece += (double)out->bin_count[b] / m * fabs(out->bin_accuracy[b] - out->bin_confidence[b]);
    }
    out->ece = ece;
    double bal = 0, f1 = 0, auc = 0;
    int nbal = 0, nf1 = 0, nauc = 0;
    for (int k = 0; k < c; k++) {
        int64_t tp = out->confusion[k * c + k];
        int64_t fn = out->support[k] - tp, fp = out->predicted[k] - tp;
        int64_t tn = m - tp - fn - fp;
        out->sensitivity[k] = ratio(tp, tp + fn);
        out->specificity[k] = ratio(tn, tn + fp);
        out->ppv[k] = ratio(tp, tp + fp);
        out->f1[k] = ratio(2 * tp, 2 * tp + fp + fn);
        out->auc[k] = auc_of(m, c, truth, prob, idx, k, buf);
        if (!isnan(out->sensitivity[k]))
            bal += out->sensitivity[k], nbal++;
        if (!isnan(out->f1[k]))
            f1 += out->f1[k], nf1++;
        if (!isnan(out->auc[k]))
            auc += out->auc[k], nauc++;
    }
    out->balanced_accuracy = nbal ? bal / nbal : NAN;
    out->macro_f1 = nf1 ? f1 / nf1 : NAN;
    out->macro_auc = nauc ? auc / nauc : NAN;
    return HP_OK;
}

static hp_status check_inputs(int n, int c, const int *truth, const float *prob, const int *idx,
                              int m, hp_error *err)
{
    if (c < 2 || c > HP_EVAL_MAX_CLASSES)
        return hp_error_set(err, HP_ERR_INVALID, "metrics need 2..%d classes, not %d",
                            HP_EVAL_MAX_CLASSES, c);
    if (m <= 0 || n <= 0)
        return hp_error_set(err, HP_ERR_INVALID, "metrics need at least one labelled image");
    for (int q = 0; q < m; q++) {
        int i = idx ? idx[q] : q;
        if (i < 0 || i >= n)
            return hp_error_set(err, HP_ERR_INVALID, "image index %d outside 0..%d", i, n - 1);
        if (truth[i] < 0 || truth[i] >= c)
            return hp_error_set(err, HP_ERR_INVALID, "image %d: true class %d outside 0..%d", i,
                                truth[i], c - 1);
        for (int k = 0; k < c; k++)
            if (!isfinite(prob[(size_t)i * c + k]))
                return hp_error_set(err, HP_ERR_INVALID, "image %d: a probability is not finite", i);
    }
    return HP_OK;
}

hp_status hp_eval_metrics_compute(int n, int c, const int *truth, const float *prob,
                                  const int *carcinoma, const int *idx, int m, hp_eval_metrics *out,
                                  hp_error *err)
{
    if (!idx)
        m = n;
    hp_status st = check_inputs(n, c, truth, prob, idx, m, err);
    if (st != HP_OK)
        return st;
    scored *buf = malloc(sizeof *buf * (size_t)m);
    if (!buf)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    st = compute(n, c, truth, prob, carcinoma, idx, m, out, buf);
    free(buf);
    return st;
}

static int cmp_double_nan_last(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

double hp_eval_percentile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double_nan_last);
    int m = 0;
    while (m < n && !isnan(v[m]))
        m++;
    if (m == 0)
        return NAN;
    double pos = q / 100.0 * (m - 1);
    int lo = (int)floor(pos);
    if (lo >= m - 1)
        return v[m - 1];
    double frac = pos - lo;
    return v[lo] + (v[lo + 1] - v[lo]) * frac;
}

hp_status hp_eval_bootstrap(int n, int c, const int *truth, const float *prob, const int *carcinoma,
                            const int *idx, int m, int replicates, uint64_t seed, hp_eval_ci *ci,
                            hp_error *err)
{
    if (!idx)
        m = n;
    hp_status st = check_inputs(n, c, truth, prob, idx, m, err);
    if (st != HP_OK)
        return st;
    if (replicates < 1 || replicates > 1000000)
        return hp_error_set(err, HP_ERR_INVALID, "bootstrap replicates must be 1..1000000, not %d",
                            replicates);
    int S = HP_EVAL_N_SCALARS(c);
    double *vals = malloc(sizeof *vals * (size_t)S * (size_t)replicates);
    int *draw = malloc(sizeof *draw * (size_t)m);
    scored *buf = malloc(sizeof *buf * (size_t)m);
    hp_eval_metrics *mm = malloc(sizeof *mm);
    if (!vals || !draw || !buf || !mm) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    hp_eval_rng rng;
    hp_eval_rng_seed(&rng, seed);
    for (int r = 0; r < replicates; r++) {
        for (int q = 0; q < m; q++) {
            int j = (int)hp_eval_rng_below(&rng, (uint64_t)m);
            draw[q] = idx ? idx[j] : j;
        }
        compute(n, c, truth, prob, carcinoma, draw, m, mm, buf);
        for (int s = 0; s < S; s++)
            vals[(size_t)s * replicates + r] = hp_eval_metrics_scalar(mm, s);
    }
    for (int s = 0; s < S; s++) {
        double *v = vals + (size_t)s * replicates;
        int valid = 0;
        for (int r = 0; r < replicates; r++)
            valid += !isnan(v[r]);
        ci[s].valid = valid;
        ci[s].lo = hp_eval_percentile(v, replicates, 2.5);
        ci[s].hi = hp_eval_percentile(v, replicates, 97.5);
    }
done:
    free(vals);
    free(draw);
    free(buf);
    free(mm);
    return st;
}
