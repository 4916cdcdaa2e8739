/* Legends under pictures (see the header), drawn with cairo and the DejaVu Sans face through
 * fontconfig. The band is laid out twice: once on a scratch surface to measure its height, once
 * on the picture's own surface. */
#include "pipeline/legend.h"

#include <cairo.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

/* Okabe-Ito, by category first; then the colours left for other classes. */
static const uint8_t BY_CATEGORY[][3] = {
    [HP_CLASS_NORMAL] = {0, 158, 115},  /* bluish green */
    [HP_CLASS_BENIGN] = {240, 228, 66}, /* yellow */
    [HP_CLASS_IN_SITU] = {0, 114, 178}, /* blue */
    [HP_CLASS_INVASIVE] = {213, 94, 0}, /* vermillion */
};
static const uint8_t REST[][3] = {{204, 121, 167}, {86, 180, 233}, {230, 159, 0},
                                  {0, 0, 0},       {153, 153, 153}};

int hp_legend_category_colour(hp_class_category c, uint8_t rgb[3])
{
    if (c < HP_CLASS_NORMAL || c > HP_CLASS_INVASIVE)
        return 0;
    memcpy(rgb, BY_CATEGORY[c], 3);
    return 1;
}

void hp_legend_class_colour(const hp_card *card, int k, uint8_t rgb[3])
{
    hp_class_category c = card && card->has_category_map && k >= 0 && k < card->n_classes
                              ? card->category[k]
                              : HP_CLASS_UNMAPPED;
    if (c >= HP_CLASS_NORMAL && c <= HP_CLASS_INVASIVE) {
        memcpy(rgb, BY_CATEGORY[c], 3);
        return;
    }
    if (!card || !card->has_category_map) {
        /* No map: the whole palette in class order, so that four classes stay four colours. */
        static const uint8_t ALL[][3] = {{0, 158, 115}, {240, 228, 66}, {0, 114, 178},
                                         {213, 94, 0},  {204, 121, 167}, {86, 180, 233},
                                         {230, 159, 0}, {0, 0, 0}};
        memcpy(rgb, ALL[(k < 0 ? 0 : k) % 8], 3);
        return;
    }
    /* Classes without a diagnostic category take the remaining colours in class order. */
    int nth = 0;
    for (int j = 0; j < k && j < card->n_classes; j++) {
        hp_class_category cj = card->category[j];
        nth += !(cj >= HP_CLASS_NORMAL && cj <= HP_CLASS_INVASIVE);
    }
    memcpy(rgb, REST[nth % 5], 3);
}

/* ---- drawing ---- */

#define FONT_FACE "DejaVu Sans"

typedef struct {
    cairo_t *cr;
    int draw; /* 0 while measuring */
    int W;
    double fs;  /* font size in pixels */
    double lh;  /* line height */
    cJSON *layout;
} canvas;

static void set_rgb(cairo_t *cr, const uint8_t rgb[3])
{
    cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
}

static double text_width(canvas *c, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(c->cr, s, &e);
    return e.x_advance;
}

/* Text with its line box's top-left at (x, y); returns its width. */
static double draw_text(canvas *c, double x, double y, const char *s)
{
    if (c->draw) {
        cairo_font_extents_t fe;
        cairo_font_extents(c->cr, &fe);
        cairo_set_source_rgb(c->cr, 0, 0, 0);
        cairo_move_to(c->cr, x, y + (c->lh - (fe.ascent + fe.descent)) / 2 + fe.ascent);
        cairo_show_text(c->cr, s);
    }
    return text_width(c, s);
}

static void fill(canvas *c, double x, double y, double w, double h, const uint8_t rgb[3])
{
    if (!c->draw)
        return;
    set_rgb(c->cr, rgb);
    cairo_rectangle(c->cr, x, y, w, h);
    cairo_fill(c->cr);
}

/* `s` broken at spaces into lines no wider than `maxw`, drawn at x from *y down. A word wider
 * than the line stands on its own line. */
static void draw_wrapped(canvas *c, double x, double *y, const char *s, double maxw)
{
    size_t n = strlen(s);
    char *line = malloc(n + 1);
    if (!line)
        return;
    size_t i = 0;
    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        if (i >= n)
            break;
        size_t end = i, best = 0;
        for (;;) {
            size_t j = end;
            while (j < n && s[j] != ' ')
                j++;
            memcpy(line, s + i, j - i);
            line[j - i] = 0;
            if (best && text_width(c, line) > maxw)
                break;
            best = j;
            end = j;
            if (j >= n)
                break;
            end = j + 1;
        }
        memcpy(line, s + i, best - i);
        line[best - i] = 0;
        draw_text(c, x, *y, line);
        *y += c->lh;
        i = best;
    }
    free(line);
}

/* The longest "nice" length (1, 2 or 5 x 10^k um) at most max_px pixels long. */
static double nice_length(double um_per_px, double max_px)
{
    double best = 0;
    for (int k = -2; k <= 7; k++)
        for (int m = 0; m < 3; m++) {
            double v = (m == 0 ? 1 : m == 1 ? 2 : 5) * pow(10, k);
            if (v / um_per_px <= max_px && v > best)
                best = v;
        }
    return best > 0 ? best : 0.01;
}

static void length_label(double um, char *buf, size_t n)
{
    if (um >= 1000)
        snprintf(buf, n, "%g mm", um / 1000);
    else
        snprintf(buf, n, "%g \u00b5m", um);
}

static void add_num(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

static const uint8_t INK[3] = {0, 0, 0};
static const uint8_t RULE[3] = {128, 128, 128};

/* Lays the band out from y0 down; draws when c->draw; returns its height in pixels. */
static int layout(canvas *c, int y0, int map_w, int map_h, const hp_legend *lg)
{
    double pad = round(c->lh / 2), x0 = pad, maxw = c->W - 2 * pad;
    double y = y0 + pad;
    fill(c, 0, y0, c->W, 1, RULE);
    if (c->layout) {
        cJSON *m = cJSON_AddArrayToObject(c->layout, "map");
        cJSON_AddItemToArray(m, cJSON_CreateNumber(map_w));
        cJSON_AddItemToArray(m, cJSON_CreateNumber(map_h));
        add_num(c->layout, "band_y", y0);
        if (lg->title)
            cJSON_AddStringToObject(c->layout, "title", lg->title);
    }
    if (lg->title)
        draw_wrapped(c, x0, &y, lg->title, maxw);

    /* Slide id, then the scale bar on the same row when it fits. */
    double x = x0;
    if (lg->slide_id) {
        char buf[128];
        snprintf(buf, sizeof buf, "slide %.100s", lg->slide_id);
        x += draw_text(c, x, y, buf) + 2 * c->fs;
        if (c->layout)
            cJSON_AddStringToObject(c->layout, "slide_id", lg->slide_id);
    }
    double um = nice_length(lg->um_per_px, maxw / 4.0);
    int bar = (int)lround(um / lg->um_per_px);
    bar = bar < 2 ? 2 : bar;
    char lab[48];
    length_label(um, lab, sizeof lab);
    double need = bar + c->fs / 2 + text_width(c, lab);
    if (x + need > c->W - pad && x > x0) {
        y += c->lh;
        x = x0;
    }
    int t = (int)(c->fs / 6) < 2 ? 2 : (int)(c->fs / 6);
    int bx = (int)lround(x), by = (int)lround(y + c->lh / 2 - t / 2.0);
    fill(c, bx, by, bar, t, INK);
    fill(c, bx, by - t, t, 3 * t, INK); /* end ticks */
    fill(c, bx + bar - t, by - t, t, 3 * t, INK);
    draw_text(c, bx + bar + c->fs / 2, y, lab);
    if (c->layout) {
        cJSON *sb = cJSON_AddObjectToObject(c->layout, "scale_bar");
        add_num(sb, "x", bx);
        add_num(sb, "y", by);
        add_num(sb, "px", bar);
        add_num(sb, "thickness", t);
        add_num(sb, "um", um);
        add_num(sb, "um_per_px", lg->um_per_px);
        cJSON_AddStringToObject(sb, "label", lab);
    }
    y += c->lh + pad / 2;

    /* The key. */
    if (lg->n_classes > 0) {
        cJSON *arr = c->layout ? cJSON_AddArrayToObject(c->layout, "classes") : NULL;
        int sw = (int)lround(c->lh) - 4;
        x = x0;
        for (int k = 0; k < lg->n_classes; k++) {
            const char *name = lg->class_names[k] ? lg->class_names[k] : "?";
            double item = sw + c->fs / 2 + text_width(c, name) + 1.5 * c->fs;
            if (x + item > c->W - pad && x > x0) {
                y += c->lh + 2;
                x = x0;
            }
            int sx = (int)lround(x), sy = (int)lround(y) + 2;
            fill(c, sx, sy, sw, sw, INK);
            fill(c, sx + 1, sy + 1, sw - 2, sw - 2, lg->class_rgb[k]);
            if (arr) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "name", name);
                cJSON *rgb = cJSON_AddArrayToObject(o, "rgb");
                for (int q = 0; q < 3; q++)
                    cJSON_AddItemToArray(rgb, cJSON_CreateNumber(lg->class_rgb[k][q]));
                add_num(o, "x", sx + 1);
                add_num(o, "y", sy + 1);
                add_num(o, "size", sw - 2);
                cJSON_AddItemToArray(arr, o);
            }
            draw_text(c, sx + sw + c->fs / 2, y, name);
            x += item;
        }
        y += c->lh + pad / 2;
    } else if (lg->colormap) {
        if (lg->range_label)
            draw_wrapped(c, x0, &y, lg->range_label, maxw);
        char lo[32], hi[32];
        snprintf(lo, sizeof lo, "%g", lg->range_lo);
        snprintf(hi, sizeof hi, "%g", lg->range_hi);
        double lw = text_width(c, lo), hw = text_width(c, hi);
        int rw = (int)(maxw - lw - hw - c->fs);
        rw = rw > 256 ? 256 : rw < 16 ? 16 : rw;
        int rx = (int)lround(x0 + lw + c->fs / 2), ry = (int)lround(y) + 2;
        int rh = (int)lround(c->lh) - 4;
        draw_text(c, x0, y, lo);
        for (int i = 0; i < rw; i++) {
            uint8_t rgb[3];
            lg->colormap((float)i / (float)(rw - 1), rgb);
            fill(c, rx + i, ry, 1, rh, rgb);
        }
        draw_text(c, rx + rw + c->fs / 2, y, hi);
        if (c->layout) {
            cJSON *r = cJSON_AddObjectToObject(c->layout, "ramp");
            add_num(r, "x", rx);
            add_num(r, "y", ry);
            add_num(r, "w", rw);
            add_num(r, "h", rh);
            add_num(r, "lo", lg->range_lo);
            add_num(r, "hi", lg->range_hi);
            if (lg->range_label)
                cJSON_AddStringToObject(r, "label", lg->range_label);
        }
        y += c->lh + pad / 2;
    }
    if (lg->note) {
        draw_wrapped(c, x0, &y, lg->note, maxw);
        if (c->layout)
            cJSON_AddStringToObject(c->layout, "note", lg->note);
    }
    return (int)ceil(y + pad - y0);
}

static void set_font(canvas *c)
{
    cairo_select_font_face(c->cr, FONT_FACE, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(c->cr, c->fs);
}

hp_status hp_legend_compose(const uint8_t *rgb, int w, int h, const hp_legend *lg, uint8_t **out,
                            int *ow, int *oh, char **layout_text, hp_error *err)
{
    *out = NULL;
    *layout_text = NULL;
    if (!rgb || w < 1 || h < 1 || !lg || !(lg->um_per_px > 0) || !isfinite(lg->um_per_px) ||
        (lg->n_classes > 0 && (!lg->class_names || !lg->class_rgb)))
        return hp_error_set(err, HP_ERR_INVALID, "legend: no picture, scale or key");
    if (w > 32767 || h > 32767)
        return hp_error_set(err, HP_ERR_INVALID, "legend: picture too large (%dx%d)", w, h);
    /* The type grows with the picture, so a key stays readable both on a small heatmap and on a
     * full-page overlay; a narrow picture is widened to fit a readable line. */
    canvas c = {0};
    c.fs = w / 40.0;
    c.fs = c.fs < 11 ? 11 : c.fs > 28 ? 28 : c.fs;
    c.lh = ceil(c.fs * 1.35);
    int min_w = (int)(c.fs * 24);
    c.W = w > min_w ? w : min_w;

    hp_status st = HP_OK;
    cairo_surface_t *sf = NULL;
    uint8_t *img = NULL;
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    c.cr = cairo_create(scratch);
    if (cairo_status(c.cr) != CAIRO_STATUS_SUCCESS) {
        st = hp_error_set(err, HP_ERR_NOMEM, "legend: cairo: %s",
                          cairo_status_to_string(cairo_status(c.cr)));
        goto fail;
    }
    set_font(&c);
    int band = layout(&c, h, w, h, lg);
    cairo_destroy(c.cr);
    c.cr = NULL;
    int H = h + band;
    if ((int64_t)c.W * H > (int64_t)1 << 28 || H > 32767) {
        st = hp_error_set(err, HP_ERR_INVALID, "legend: picture too large (%dx%d)", c.W, H);
        goto fail;
    }
    sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, c.W, H);
    c.cr = cairo_create(sf);
    c.layout = cJSON_CreateObject();
    img = malloc((size_t)c.W * H * 3);
    if (cairo_status(c.cr) != CAIRO_STATUS_SUCCESS || !c.layout || !img) {
        st = hp_error_set(err, HP_ERR_NOMEM, "legend: out of memory");
        goto fail;
    }
    cairo_set_source_rgb(c.cr, 1, 1, 1);
    cairo_paint(c.cr);
    cairo_surface_flush(sf);
    unsigned char *px = cairo_image_surface_get_data(sf);
    int stride = cairo_image_surface_get_stride(sf);
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(px + (size_t)y * stride);
        const uint8_t *s = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++)
            row[x] = 0xff000000u | (uint32_t)s[3 * x] << 16 | (uint32_t)s[3 * x + 1] << 8 | s[3 * x + 2];
    }
    cairo_surface_mark_dirty(sf);
    /* Crisp swatches and scale bar: no antialiasing on the rectangles, only on the text. */
    cairo_set_antialias(c.cr, CAIRO_ANTIALIAS_NONE);
    set_font(&c);
    c.draw = 1;
    layout(&c, h, w, h, lg);
    cairo_surface_flush(sf);
    if (cairo_status(c.cr) != CAIRO_STATUS_SUCCESS) {
        st = hp_error_set(err, HP_ERR_IO, "legend: cairo: %s",
                          cairo_status_to_string(cairo_status(c.cr)));
        goto fail;
    }
    for (int y = 0; y < H; y++) {
        const uint32_t *row = (const uint32_t *)(px + (size_t)y * stride);
        uint8_t *d = img + (size_t)y * c.W * 3;
        for (int x = 0; x < c.W; x++) {
            d[3 * x] = (uint8_t)(row[x] >> 16);
            d[3 * x + 1] = (uint8_t)(row[x] >> 8);
            d[3 * x + 2] = (uint8_t)row[x];
        }
    }
    cJSON_AddItemToObject(c.layout, "size", cJSON_CreateIntArray((int[]){c.W, H}, 2));
    *layout_text = cJSON_PrintUnformatted(c.layout);
    if (!*layout_text) {
        st = hp_error_set(err, HP_ERR_NOMEM, "legend: out of memory");
        goto fail;
    }
    *out = img;
    img = NULL;
    *ow = c.W;
    *oh = H;

fail:
    cairo_destroy(c.cr);
    cairo_surface_destroy(sf);
    cairo_surface_destroy(scratch);
    cJSON_Delete(c.layout);
    free(img);
    return st;
}

hp_status hp_legend_write_rgb_png(const char *path, const uint8_t *img, int W, int H,
                                  const char *layout, hp_error *err)
{
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st)
        return st;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int ok = 0; /* read after a longjmp */
    if (png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, af.f);
        png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_RGB,
                     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        if (layout) {
            /* Before the image data, so a reader finds it without decoding the pixels. */
            png_text t = {.compression = PNG_TEXT_COMPRESSION_NONE,
                          .key = (png_charp) "histoplan:legend",
                          .text = (png_charp)layout,
                          .text_length = strlen(layout)};
            png_set_text(png, info, &t, 1);
        }
        png_write_info(png, info);
        for (int y = 0; y < H; y++)
            png_write_row(png, (png_bytep)(img + (size_t)y * W * 3));
        png_write_end(png, info);
        ok = 1;
    }
    png_destroy_write_struct(&png, &info);
    if (!ok)
        hp_error_set(err, HP_ERR_IO, "%s: PNG encoding failed", path);
    return hp_atomic_finish(path, &af, ok, err);
}

hp_status hp_legend_write_png(const char *path, const uint8_t *rgb, int w, int h,
                              const hp_legend *lg, hp_error *err)
{
    uint8_t *img = NULL;
    char *text = NULL;
    int W, H;
    hp_status st = hp_legend_compose(rgb, w, h, lg, &img, &W, &H, &text, err);
    if (st)
        return st;
    st = hp_legend_write_rgb_png(path, img, W, H, text, err);
    free(img);
    cJSON_free(text);
    return st;
}

hp_status hp_legend_read_layout(const char *path, char **layout, hp_error *err)
{
    *layout = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    hp_status st = HP_OK;
    if (!png || !info) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    } else if (setjmp(png_jmpbuf(png))) {
        free(*layout);
        *layout = NULL;
        st = hp_error_set(err, HP_ERR_IO, "%s: not a readable PNG", path);
    } else {
        png_init_io(png, fp);
        png_read_info(png, info);
        png_textp t = NULL;
        int n = png_get_text(png, info, &t, NULL);
        for (int i = 0; i < n && !*layout; i++)
            if (!strcmp(t[i].key, "histoplan:legend"))
                *layout = strdup(t[i].text);
    }
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    fclose(fp);
    return st;
}
