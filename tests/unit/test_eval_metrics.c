/* eval/eval_metrics.c and eval/eval_labels.c on hand-computed cases; bootstrap determinism and
 * the coverage of its 95% intervals on simulated data; the label spelling table, card checks
 * and explicit label maps; split specs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_labels.h"
#include "eval/eval_metrics.h"
#include "eval/eval_rng.h"
#include "eval/eval_split.h"
#include "util/testutil.h"

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

static void hand_computed(int *passed)
{
    hp_error err = {0};
    hp_eval_metrics m;
    /* Two classes; class-1 scores 0.1, 0.4, 0.35, 0.8 for truths 0, 0, 1, 1: the textbook ROC
     * example, AUC 0.75. Predictions: 0, 0, 0, 1. */
    int y[] = {0, 0, 1, 1};
    float p[] = {0.9f, 0.1f, 0.6f, 0.4f, 0.65f, 0.35f, 0.2f, 0.8f};
    CHECK_COUNT(*passed, hp_eval_metrics_compute(4, 2, y, p, NULL, NULL, 0, &m, &err) == HP_OK);
    CHECK_COUNT(*passed, near(m.accuracy, 0.75));
    CHECK_COUNT(*passed, near(m.auc[1], 0.75) && near(m.auc[0], 0.75) && near(m.macro_auc, 0.75));
    CHECK_COUNT(*passed, near(m.sensitivity[1], 0.5) && near(m.sensitivity[0], 1.0));
    CHECK_COUNT(*passed, near(m.specificity[1], 1.0) && near(m.specificity[0], 0.5));
    CHECK_COUNT(*passed, near(m.ppv[0], 2.0 / 3) && near(m.ppv[1], 1.0));
    CHECK_COUNT(*passed, near(m.f1[0], 0.8) && near(m.f1[1], 2.0 / 3));
    CHECK_COUNT(*passed, near(m.balanced_accuracy, 0.75) && near(m.macro_f1, (0.8 + 2.0 / 3) / 2));
    CHECK_COUNT(*passed, isnan(m.two_class_accuracy)); /* no carcinoma map given */
    /* Brier: sum over classes, mean over images: (0.01*2 + 0.16*2 + 0.4225*2 + 0.04*2) / 4. */
    CHECK_COUNT(*passed, fabs(m.brier - (0.02 + 0.32 + 0.845 + 0.08) / 4) < 1e-7);
    CHECK_COUNT(*passed, m.confusion[0] == 2 && m.confusion[1] == 0 && m.confusion[2] == 1 &&
                             m.confusion[3] == 1);

    /* Ties count one half: two images with the same score, one positive. */
    int y2[] = {0, 1};
    float p2[] = {0.5f, 0.5f, 0.5f, 0.5f};
    CHECK_COUNT(*passed, hp_eval_metrics_compute(2, 2, y2, p2, NULL, NULL, 0, &m, &err) == HP_OK);
    CHECK_COUNT(*passed, near(m.auc[1], 0.5));
    /* argmax takes the first class on a tie: both predicted 0. */
    CHECK_COUNT(*passed, m.predicted[0] == 2 && isnan(m.ppv[1]) && near(m.f1[1], 0.0));

    /* ECE: confidences 0.9 (right) and 0.9 (wrong) fall in bin floor(13.5) = 13: accuracy 0.5,
     * confidence 0.9, ECE 0.4; a confidence of exactly 1 goes to the last bin. */
    int y3[] = {0, 1, 0};
    float p3[] = {0.9f, 0.1f, 0.9f, 0.1f, 1.0f, 0.0f};
    CHECK_COUNT(*passed, hp_eval_metrics_compute(2, 2, y3, p3, NULL, NULL, 0, &m, &err) == HP_OK);
    CHECK_COUNT(*passed, m.bin_count[13] == 2 && fabs(m.ece - 0.4) < 1e-6);
    CHECK_COUNT(*passed, isnan(m.bin_accuracy[0]) && near(m.bin_accuracy[13], 0.5));
    CHECK_COUNT(*passed, hp_eval_metrics_compute(3, 2, y3, p3, NULL, NULL, 0, &m, &err) == HP_OK);
    CHECK_COUNT(*passed, m.bin_count[14] == 1 && m.bin_count[13] == 2);
    /* (2/3 |0.5 - 0.9| + 1/3 |1 - 1|) */
    CHECK_COUNT(*passed, fabs(m.ece - 2.0 / 3 * 0.4) < 1e-6);

    /* A class neither true nor predicted: its F1 and sensitivity are undefined and left out of
     * the macro averages; its AUC too. 2-class accuracy with BACH's four classes. */
    int y4[] = {0, 2, 3, 3};
    float p4[] = {0.7f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.7f, 0.1f, 0.1f, 0.1f, 0.7f,
                  0.1f, 0.1f, 0.7f, 0.1f};
    int carc[] = {0, 0, 1, 1};
    CHECK_COUNT(*passed, hp_eval_metrics_compute(4, 4, y4, p4, carc, NULL, 0, &m, &err) == HP_OK);
    CHECK_COUNT(*passed, isnan(m.f1[1]) && isnan(m.sensitivity[1]) && isnan(m.auc[1]));
    /* Predictions 0, 3, 3, 2: right 0 and 3; in situ taken for invasive still carcinoma. */
    CHECK_COUNT(*passed, near(m.accuracy, 0.5) && near(m.two_class_accuracy, 1.0));
    /* Sensitivities: normal 1, in situ 0, invasive 0.5 -> 0.5. */
    CHECK_COUNT(*passed, near(m.balanced_accuracy, 0.5));
    /* F1: normal 1, in situ 0, invasive 2/(2+1+1) = 0.5 -> 0.5. */
    CHECK_COUNT(*passed, near(m.macro_f1, 0.5));

    /* Subsets by index; bad input refused. */
    int idx[] = {2, 3};
    CHECK_COUNT(*passed, hp_eval_metrics_compute(4, 4, y4, p4, carc, idx, 2, &m, &err) == HP_OK &&
                             m.n == 2 && near(m.accuracy, 0.5));
    int ybad[] = {0, 5};
    CHECK_COUNT(*passed, hp_eval_metrics_compute(2, 2, ybad, p2, NULL, NULL, 0, &m, &err) ==
                             HP_ERR_INVALID);
    float pnan[] = {NAN, 0.5f, 0.5f, 0.5f};
    hp_error_clear(&err);
    CHECK_COUNT(*passed, hp_eval_metrics_compute(2, 2, y2, pnan, NULL, NULL, 0, &m, &err) ==
                             HP_ERR_INVALID && strstr(err.msg, "finite"));

    /* numpy.percentile's linear interpolation; NaNs left out. */
    double v[] = {4, NAN, 1, 3, 2};
    CHECK_COUNT(*passed, near(hp_eval_percentile(v, 5, 25), 1.75));
    double v2[] = {NAN, NAN};
    CHECK_COUNT(*passed, isnan(hp_eval_percentile(v2, 2, 50)));
    double v3[] = {7};
    CHECK_COUNT(*passed, near(hp_eval_percentile(v3, 1, 97.5), 7));
}

/* SplitMix64's published first outputs for seed 0 (Vigna's reference splitmix64.c). */
static void rng(int *passed)
{
    hp_eval_rng r;
    hp_eval_rng_seed(&r, 0);
    CHECK_COUNT(*passed, hp_eval_rng_next(&r) == 0xE220A8397B1DCDAFULL);
    CHECK_COUNT(*passed, hp_eval_rng_next(&r) == 0x6E789E6AA1B965F4ULL);
}

/* The percentile bootstrap's 95% interval of an accuracy covers the true accuracy in about 95%
 * of data sets drawn from a known model: accuracy 0.8, n = 150, 300 data sets, 400 replicates. */
static void coverage(int *passed)
{
    const int n = 150, trials = 300, reps = 400;
    int *y = malloc(sizeof *y * n);
    float *p = malloc(sizeof *p * n * 2);
    hp_eval_ci *ci = malloc(sizeof *ci * HP_EVAL_N_SCALARS(2));
    hp_eval_rng g;
    hp_eval_rng_seed(&g, 42);
    int covered = 0;
    hp_error err = {0};
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < n; i++) {
            y[i] = (int)(hp_eval_rng_next(&g) & 1);
            int right = (hp_eval_rng_next(&g) >> 11) * 0x1.0p-53 < 0.8;
            int pred = right ? y[i] : 1 - y[i];
            p[2 * i + pred] = 0.75f;
            p[2 * i + 1 - pred] = 0.25f;
        }
        if (hp_eval_bootstrap(n, 2, y, p, NULL, NULL, 0, reps, (uint64_t)t, ci, &err) != HP_OK)
            break;
        covered += ci[HP_EVAL_M_ACCURACY].lo <= 0.8 && 0.8 <= ci[HP_EVAL_M_ACCURACY].hi;
    }
    double rate = (double)covered / trials;
    printf("coverage of the 95%% interval of accuracy: %.3f over %d data sets\n", rate, trials);
    CHECK_COUNT(*passed, rate >= 0.90 && rate <= 0.99);

    /* Determinism: the same seed, the same intervals; another seed, others. */
    hp_eval_ci a[HP_EVAL_N_SCALARS(2)], b[HP_EVAL_N_SCALARS(2)];
    hp_eval_bootstrap(n, 2, y, p, NULL, NULL, 0, 200, 7, a, &err);
    hp_eval_bootstrap(n, 2, y, p, NULL, NULL, 0, 200, 7, b, &err);
    CHECK_COUNT(*passed, !memcmp(a, b, sizeof a));
    hp_eval_bootstrap(n, 2, y, p, NULL, NULL, 0, 200, 8, b, &err);
    CHECK_COUNT(*passed, a[HP_EVAL_M_ACCURACY].lo != b[HP_EVAL_M_ACCURACY].lo ||
                             a[HP_EVAL_M_ACCURACY].hi != b[HP_EVAL_M_ACCURACY].hi);
    CHECK_COUNT(*passed, a[HP_EVAL_M_ACCURACY].valid == 200);
    CHECK_COUNT(*passed, hp_eval_bootstrap(n, 2, y, p, NULL, NULL, 0, 0, 7, b, &err) == HP_ERR_INVALID);
    free(y);
    free(p);
    free(ci);
}

static void labels(int *passed)
{
    static const char *yes[][2] = {
        {"Normal", "normal"},     {"normal tissue", "normal"},  {"Benign", "benign"},
        {"benign_lesion", "benign"}, {"InSitu", "in_situ"},     {"in situ", "in_situ"},
        {"In-Situ carcinoma", "in_situ"}, {"Carcinoma in situ", "in_situ"}, {"DCIS", "in_situ"},
        {"Invasive", "invasive"}, {"invasive carcinoma", "invasive"}, {"Carcinoma invasive", "invasive"},
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK_COUNT(*passed, !strcmp(hp_eval_class_name(hp_eval_class_parse(yes[i][0])), yes[i][1]));
    CHECK_COUNT(*passed, hp_eval_class_parse("tumour") == HP_EVAL_CLASS_NONE);
    CHECK_COUNT(*passed, hp_eval_class_parse("2") == HP_EVAL_CLASS_NONE);
    CHECK_COUNT(*passed, hp_eval_label_is_numeric(" 3 ") && hp_eval_label_is_numeric("1.0") &&
                             !hp_eval_label_is_numeric("3a") && !hp_eval_label_is_numeric(""));

    char *names[] = {"normal", "benign", "in_situ", "invasive"};
    hp_card card = {.n_classes = 4};
    for (int k = 0; k < 4; k++)
        card.classes[k] = names[k];
    hp_error err = {0};
    CHECK_COUNT(*passed, hp_eval_card_check(&card, NULL, &err) == HP_OK);
    CHECK_COUNT(*passed, hp_eval_card_check(&card, "Normal,Benign,InSitu,Invasive", &err) == HP_OK);
    CHECK_COUNT(*passed, hp_eval_card_check(&card, "benign,normal,in_situ,invasive", &err) ==
                             HP_ERR_INVALID && strstr(err.msg, "order"));
    hp_error_clear(&err);
    CHECK_COUNT(*passed, hp_eval_card_check(&card, "normal,benign,in_situ", &err) == HP_ERR_INVALID);
    const char *why;
    CHECK_COUNT(*passed, hp_eval_label_to_card("Carcinoma in situ", &card, NULL, &why) == 2);
    CHECK_COUNT(*passed, hp_eval_label_to_card("3", &card, NULL, &why) == -1 && !strcmp(why, "numeric"));
    CHECK_COUNT(*passed, hp_eval_label_to_card("tumour", &card, NULL, &why) == -1 &&
                             !strcmp(why, "unmatched"));
    hp_eval_label_map map;
    hp_error_clear(&err);
    CHECK_COUNT(*passed, hp_eval_label_map_parse(" 3 = invasive, tumour=in_situ", &card, &map, &err) ==
                             HP_OK && map.n == 2);
    CHECK_COUNT(*passed, hp_eval_label_to_card("3", &card, &map, &why) == 3);
    CHECK_COUNT(*passed, hp_eval_label_to_card("tumour", &card, &map, &why) == 2);
    hp_eval_label_map_free(&map);
    CHECK_COUNT(*passed, hp_eval_label_map_parse("3=carcinoma", &card, &map, &err) == HP_ERR_INVALID &&
                             strstr(err.msg, "carcinoma"));
    hp_eval_label_map_free(&map);
    hp_error_clear(&err);
    CHECK_COUNT(*passed, hp_eval_label_map_parse("a=normal,a=benign", &card, &map, &err) ==
                             HP_ERR_INVALID && strstr(err.msg, "twice"));
    hp_eval_label_map_free(&map);
    hp_error_clear(&err);
    CHECK_COUNT(*passed, hp_eval_label_map_parse("normal", &card, &map, &err) == HP_ERR_INVALID);
    hp_eval_label_map_free(&map);

    /* Two card classes that mean one class. */
    char *dup[] = {"Normal", "benign", "normal tissue"};
    hp_card c2 = {.n_classes = 3};
    for (int k = 0; k < 3; k++)
        c2.classes[k] = dup[k];
    hp_error_clear(&err);
    CHECK_COUNT(*passed, hp_eval_card_check(&c2, NULL, &err) == HP_ERR_INVALID &&
                             strstr(err.msg, "same class"));
}

static void splits(int *passed)
{
    hp_eval_split s;
    hp_error err = {0};
    CHECK_COUNT(*passed, hp_eval_split_parse("eva", &s, &err) == HP_OK && !strcmp(s.spec, "eva:val"));
    CHECK_COUNT(*passed, hp_eval_split_parse("kfold:5:7", &s, &err) == HP_OK && s.k == 5 &&
                             s.seed == 7 && s.fold == -1);
    CHECK_COUNT(*passed, hp_eval_split_parse("kfold:5:7:4", &s, &err) == HP_OK && s.fold == 4);
    const char *bad[] = {"kfold:5:7:5", "kfold:1:7", "kfold:5", "kfold:5:-1", "kfold:x:1", "evaa", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hp_error_clear(&err);
        CHECK_COUNT(*passed, hp_eval_split_parse(bad[i], &s, &err) == HP_ERR_INVALID);
    }
}

int main(void)
{
    int passed = 0;
    hand_computed(&passed);
    rng(&passed);
    coverage(&passed);
    labels(&passed);
    splits(&passed);
    return hp_test_finish("test_eval_metrics", passed);
}
