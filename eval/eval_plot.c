/* reliability.png and confusion.png of an evaluation (eval/eval_run.h), drawn on the built-in
 * raster (eval/eval_canvas.h) and written with io/image.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/eval_canvas.h"
#include "eval/eval_run.h"
#include "io/image.h"

static const hp_rgb BLACK = {0, 0, 0}, GREY = {150, 150, 150}, LIGHT = {225, 225, 225},
                    BLUE = {49, 130, 189}, RED = {215, 48, 39}, WHITE = {255, 255, 255};

static hp_rgb blues(double t)
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return (hp_rgb){(uint8_t)lround(247 + (8 - 247) * t), (uint8_t)lround(251 + (48 - 251) * t),
                    (uint8_t)lround(255 + (107 - 255) * t)};
}

static hp_status finish(hp_canvas *c, const char *path, hp_error *err)
{
    hp_status st = hp_image_write_png(path, c->rgb, c->w, c->h, err);
    hp_canvas_free(c);
    return st;
}

static void fmt_ci(char *buf, size_t cap, const char *name, const hp_eval_result *r, double v,
                   int scalar)
{
    if (r->ci && isfinite(r->ci[scalar].lo))
        snprintf(buf, cap, "%s %.3f (95%% CI %.3f-%.3f)", name, v, r->ci[scalar].lo,
                 r->ci[scalar].hi);
    else
        snprintf(buf, cap, "%s %.3f", name, v);
}

hp_status hp_eval_plot_reliability(const hp_eval_result *r, const char *path, hp_error *err)
{
    const hp_eval_metrics *m = r->metrics;
    const int W = 800, X0 = 110, Y0 = 100, PW = 640, PH = 400;
    const int HY = Y0 + PH + 100, HH = 80, H = HY + HH + 30;
    hp_canvas c;
    if (hp_canvas_init(&c, W, H) != HP_OK)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    char line[160];
    hp_canvas_text(&c, 20, 16, "Reliability of the top-class confidence", 2, BLACK);
    fmt_ci(line, sizeof line, "ECE", r, m->ece, HP_EVAL_M_ECE);
    size_t l = strlen(line);
    snprintf(line + l, sizeof line - l, ", %d images, %d bins", m->n, HP_EVAL_ECE_BINS);
    hp_canvas_text(&c, 20, 44, line, 2, BLACK);
    /* Grid, ticks and labels every 0.2. */
    for (int i = 0; i <= 5; i++) {
        int x = X0 + PW * i / 5, y = Y0 + PH - PH * i / 5;
        hp_canvas_rect(&c, x, Y0, 1, PH, LIGHT);
        hp_canvas_rect(&c, X0, y, PW, 1, LIGHT);
        snprintf(line, sizeof line, "%.1f", i / 5.0);
        hp_canvas_text(&c, x - hp_canvas_text_width(line, 2) / 2, Y0 + PH + 10, line, 2, BLACK);
        hp_canvas_text(&c, X0 - 12 - hp_canvas_text_width(line, 2), y - 7, line, 2, BLACK);
    }
    for (int b = 0; b < HP_EVAL_ECE_BINS; b++) {
        if (!m->bin_count[b])
            continue;
        int x0 = X0 + PW * b / HP_EVAL_ECE_BINS, x1 = X0 + PW * (b + 1) / HP_EVAL_ECE_BINS;
        int ya = Y0 + PH - (int)lround(PH * m->bin_accuracy[b]);
        int yc = Y0 + PH - (int)lround(PH * m->bin_confidence[b]);
        hp_canvas_rect(&c, x0 + 2, ya, x1 - x0 - 4, Y0 + PH - ya, BLUE);
        hp_canvas_rect(&c, x0 + 2, yc - 2, x1 - x0 - 4, 4, RED);
    }
    hp_canvas_line(&c, X0, Y0 + PH, X0 + PW, Y0, 2, GREY);
    hp_canvas_frame(&c, X0, Y0, PW + 1, PH + 1, 2, BLACK);
    hp_canvas_text(&c, X0 + PW / 2 - hp_canvas_text_width("confidence", 2) / 2, Y0 + PH + 34,
                   "confidence", 2, BLACK);
    hp_canvas_text_up(&c, 22, Y0 + PH / 2 + hp_canvas_text_width("accuracy", 2) / 2, "accuracy", 2,
                      BLACK);
    /* Legend, top left inside the plot. */
    hp_canvas_rect(&c, X0 + 14, Y0 + 14, 20, 14, BLUE);
    hp_canvas_text(&c, X0 + 42, Y0 + 14, "accuracy of the bin", 2, BLACK);
    hp_canvas_rect(&c, X0 + 14, Y0 + 40, 20, 4, RED);
    hp_canvas_text(&c, X0 + 42, Y0 + 36, "mean confidence of the bin", 2, BLACK);
    hp_canvas_rect(&c, X0 + 14, Y0 + 62, 20, 2, GREY);
    hp_canvas_text(&c, X0 + 42, Y0 + 58, "perfect calibration", 2, BLACK);
    /* Images per bin. */
    int64_t most = 1;
    for (int b = 0; b < HP_EVAL_ECE_BINS; b++)
        most = m->bin_count[b] > most ? m->bin_count[b] : most;
    for (int b = 0; b < HP_EVAL_ECE_BINS; b++) {
        int x0 = X0 + PW * b / HP_EVAL_ECE_BINS, x1 = X0 + PW * (b + 1) / HP_EVAL_ECE_BINS;
        int h = (int)lround((double)HH * m->bin_count[b] / most);
        hp_canvas_rect(&c, x0 + 2, HY + HH - h, x1 - x0 - 4, h, GREY);
    }
    hp_canvas_rect(&c, X0, HY + HH, PW, 2, BLACK);
    snprintf(line, sizeof line, "images per bin (most: %lld)", (long long)most);
    hp_canvas_text(&c, X0, HY - 24, line, 2, BLACK);
    return finish(&c, path, err);
}

hp_status hp_eval_plot_confusion(const hp_eval_result *r, const char *path, hp_error *err)
{
    const hp_eval_metrics *m = r->metrics;
    int C = r->n_classes, cell = C <= 8 ? 96 : C <= 16 ? 56 : 32, scale = C <= 8 ? 2 : 1;
    int label_w = 0;
    for (int k = 0; k < C; k++) {
        int w = hp_canvas_text_width(hp_eval_class_label(r, k), 2);
        label_w = w > label_w ? w : label_w;
    }
    int X0 = 60 + label_w + 16, Y0 = 134 + label_w + 16;
    int W = X0 + C * cell + 40, H = Y0 + C * cell + 60;
    int tw0 = 40 + hp_canvas_text_width("rows truth, columns prediction, shade: share of the row", 2);
    W = W < tw0 ? tw0 : W;
    hp_canvas c;
    if (hp_canvas_init(&c, W, H) != HP_OK)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    char line[160];
    hp_canvas_text(&c, 20, 16, "Confusion matrix", 2, BLACK);
    fmt_ci(line, sizeof line, "accuracy", r, m->accuracy, HP_EVAL_M_ACCURACY);
    size_t l = strlen(line);
    snprintf(line + l, sizeof line - l, ", %d images", m->n);
    hp_canvas_text(&c, 20, 44, line, 2, BLACK);
    hp_canvas_text(&c, 20, 72, "rows truth, columns prediction, shade: share of the row", 2,
                   BLACK);
    for (int t = 0; t < C; t++) {
        int64_t row = m->support[t];
        for (int p = 0; p < C; p++) {
            int64_t n = m->confusion[t * C + p];
            double frac = row ? (double)n / row : 0;
            int x = X0 + p * cell, y = Y0 + t * cell;
            hp_canvas_rect(&c, x, y, cell, cell, blues(frac));
            hp_rgb ink = frac > 0.5 ? WHITE : BLACK;
            snprintf(line, sizeof line, "%lld", (long long)n);
            int tw = hp_canvas_text_width(line, scale);
            hp_canvas_text(&c, x + (cell - tw) / 2, y + cell / 2 - 8 * scale - 2, line, scale, ink);
            if (row) {
                snprintf(line, sizeof line, "%.0f%%", 100.0 * frac);
                tw = hp_canvas_text_width(line, scale);
                hp_canvas_text(&c, x + (cell - tw) / 2, y + cell / 2 + 4, line, scale, ink);
            }
        }
        const char *name = hp_eval_class_label(r, t);
        hp_canvas_text(&c, X0 - 12 - hp_canvas_text_width(name, 2), Y0 + t * cell + cell / 2 - 7,
                       name, 2, BLACK);
        hp_canvas_text_up(&c, X0 + t * cell + cell / 2 - 7, Y0 - 12, name, 2, BLACK);
    }
    for (int i = 0; i <= C; i++) {
        hp_canvas_rect(&c, X0 + i * cell, Y0, 1, C * cell, GREY);
        hp_canvas_rect(&c, X0, Y0 + i * cell, C * cell, 1, GREY);
    }
    hp_canvas_text(&c, X0 + C * cell / 2 - hp_canvas_text_width("prediction", 2) / 2, 112,
                   "prediction", 2, BLACK);
    hp_canvas_text_up(&c, 24, Y0 + C * cell / 2 + hp_canvas_text_width("truth", 2) / 2, "truth", 2,
                      BLACK);
    return finish(&c, path, err);
}
