/* Heatmap images (see the header for the colours and the TIFF's geometry). */
#include "pipeline/write_heatmap.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/image.h"
#include "io/tiff_pyramid_writer.h"
#include "pipeline/legend.h"

static hp_status check(const hp_heatmap_grid *g, const float *map, const char *path, hp_error *err)
{
    if (!g || !map || !path)
        return hp_error_set(err, HP_ERR_INVALID, "heatmap writer: missing grid, map or path");
    hp_error e = {0};
    if (hp_heatmap_grid_check(g, &e))
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s", path, e.msg);
    return HP_OK;
}

/* The top-class colour of tile t mixed with white by its probability; 0 when not analysed. */
static int tile_colour(const hp_heatmap_grid *g, const float *map, size_t t, uint8_t rgb[3],
                       float *pmax)
{
    int k = hp_heatmap_argmax(g, map, t);
    if (k < 0)
        return 0;
    float p = map[t * g->nclasses + k];
    p = p < 0 ? 0 : p > 1 ? 1 : p;
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lrintf(255.0f - p * (255.0f - (float)g->rgb[k][c]));
    *pmax = p;
    return 1;
}

/* A picture's title, with what the model saw when it was not the scanned image. */
static const char *titled(const hp_heatmap_grid *g, const char *title, char *buf, size_t n)
{
    if (!g->provenance)
        return title;
    snprintf(buf, n, "%s, from %s", title, g->provenance);
    return buf;
}

/* The tile under level-0 point (x, y), or -1 outside the grid. */
static int64_t tile_at(const hp_heatmap_grid *g, double x, double y)
{
    double fi = floor((x - g->x0) / g->tile_size), fj = floor((y - g->y0) / g->tile_size);
    if (fi < 0 || fj < 0 || fi >= g->gw || fj >= g->gh)
        return -1;
    return (int64_t)fj * g->gw + (int64_t)fi;
}

/* One value per tile (map[t * stride + k]) through viridis, px_per_tile pixels a side per tile,
 * with a legend titled `title` whose ramp is labelled `what`. */
static hp_status write_map_png(const char *path, const hp_heatmap_grid *g, const float *map,
                               int stride, int k, int px_per_tile, const char *title,
                               const char *what, hp_error *err)
{
    if (px_per_tile < 1 || px_per_tile > 256 || (int64_t)g->gw * px_per_tile > 65535 ||
        (int64_t)g->gh * px_per_tile > 65535)
        return hp_error_set(err, HP_ERR_INVALID, "%s: bad %d pixels per tile", path, px_per_tile);
    int w = g->gw * px_per_tile, h = g->gh * px_per_tile;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t t = (size_t)(y / px_per_tile) * g->gw + (size_t)(x / px_per_tile);
            hp_heatmap_viridis(map[t * (size_t)stride + (size_t)k], rgb + ((size_t)y * w + x) * 3);
        }
    char full[512];
    hp_legend lg = {.title = titled(g, title, full, sizeof full),
                    .slide_id = g->slide_id,
                    .um_per_px = g->tile_size * g->mpp / px_per_tile,
                    .range_label = what,
                    .range_lo = 0,
                    .range_hi = 1,
                    .colormap = hp_heatmap_viridis,
                    .note = "White: not analysed. One square per tile."};
    hp_status st = hp_legend_write_png(path, rgb, w, h, &lg, err);
    free(rgb);
    return st;
}

hp_status hp_write_heatmap_png(const char *path, const hp_heatmap_grid *g, const float *map,
                               int k, int px_per_tile, hp_error *err)
{
    hp_status st = check(g, map, path, err);
    if (st)
        return st;
    if (k < 0 || k >= g->nclasses)
        return hp_error_set(err, HP_ERR_INVALID, "%s: bad class %d", path, k);
    char title[HP_HEATMAP_NAME_MAX + 64], what[HP_HEATMAP_NAME_MAX + 64];
    snprintf(title, sizeof title, "Heatmap: %s", g->names[k] ? g->names[k] : "?");
    snprintf(what, sizeof what, "Probability of %s per tile", g->names[k] ? g->names[k] : "?");
    return write_map_png(path, g, map, g->nclasses, k, px_per_tile, title, what, err);
}

hp_status hp_write_uncertainty_png(const char *path, const hp_heatmap_grid *g, const float *entropy,
                                   int px_per_tile, hp_error *err)
{
    hp_status st = check(g, entropy, path, err);
    if (st)
        return st;
    return write_map_png(path, g, entropy, 1, 0, px_per_tile, "Uncertainty",
                         "Normalized entropy per tile: 0 sure, 1 all classes equally likely", err);
}

hp_status hp_write_heatmap_pngs(const char *dir, const hp_heatmap_grid *g, const float *map,
                                int px_per_tile, hp_error *err)
{
    hp_status st = check(g, map, dir, err);
    if (st)
        return st;
    char(*names)[HP_HEATMAP_NAME_MAX] = malloc((size_t)g->nclasses * sizeof *names);
    size_t plen = strlen(dir) + HP_HEATMAP_NAME_MAX + 32;
    char *path = malloc(plen);
    if (!names || !path)
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", dir);
    else
        hp_heatmap_safe_names(g, names);
    for (int k = 0; !st && k < g->nclasses; k++) {
        snprintf(path, plen, "%s/heatmap_%s.png", dir, names[k]);
        st = hp_write_heatmap_png(path, g, map, k, px_per_tile, err);
    }
    free(names);
    free(path);
    return st;
}

hp_status hp_write_overlay_png(const char *path, const hp_heatmap_grid *g, const float *map,
                               const uint8_t *thumb, int tw, int th, double alpha, hp_error *err)
{
    hp_status st = check(g, map, path, err);
    if (st)
        return st;
    if (!thumb || tw < 1 || th < 1 || (int64_t)tw * th > HP_IMAGE_MAX_PIXELS || !(alpha >= 0) ||
        alpha > 1)
        return hp_error_set(err, HP_ERR_INVALID, "%s: bad thumbnail %dx%d or opacity %g", path,
                            tw, th, alpha);
    uint8_t *rgb = malloc((size_t)tw * th * 3);
    if (!rgb)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    double sx = (double)g->slide_w / tw, sy = (double)g->slide_h / th;
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++) {
            size_t o = ((size_t)y * tw + x) * 3;
            memcpy(rgb + o, thumb + o, 3);
            int64_t t = tile_at(g, (x + 0.5) * sx, (y + 0.5) * sy);
            uint8_t c[3];
            float p;
            if (t < 0 || !tile_colour(g, map, (size_t)t, c, &p))
                continue;
            /* Blend the pure class colour (not the white-mixed one) so sure tiles read clearly. */
            int k = hp_heatmap_argmax(g, map, (size_t)t);
            double a = alpha * p;
            for (int ch = 0; ch < 3; ch++)
                rgb[o + ch] = (uint8_t)lrint((1 - a) * thumb[o + ch] + a * g->rgb[k][ch]);
        }
    char note[160];
    snprintf(note, sizeof note,
             "Top class per tile over the slide, opacity %.2g x its probability, so the tissue "
             "shows through; bare tissue: not analysed.", alpha);
    char full[512];
    hp_legend lg = {.title = titled(g, "Overlay: top class per tile", full, sizeof full),
                    .slide_id = g->slide_id,
                    .um_per_px = (double)g->slide_w * g->mpp / tw,
                    .n_classes = g->nclasses,
                    .class_names = (const char *const *)g->names,
                    .class_rgb = (const uint8_t(*)[3])g->rgb,
                    .note = note};
    st = hp_legend_write_png(path, rgb, tw, th, &lg, err);
    free(rgb);
    return st;
}

hp_status hp_write_mask_png(const char *path, const hp_heatmap_grid *g, int px_per_tile,
                            hp_error *err)
{
    hp_status st = check(g, g ? g->prob : NULL, path, err);
    if (st)
        return st;
    if (px_per_tile < 1 || px_per_tile > 256 || (int64_t)g->gw * px_per_tile > 65535 ||
        (int64_t)g->gh * px_per_tile > 65535)
        return hp_error_set(err, HP_ERR_INVALID, "%s: bad %d pixels per tile", path, px_per_tile);
    int w = g->gw * px_per_tile, h = g->gh * px_per_tile;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t t = (size_t)(y / px_per_tile) * g->gw + (size_t)(x / px_per_tile);
            memset(rgb + ((size_t)y * w + x) * 3, hp_heatmap_analysed(g, t) ? 255 : 0, 3);
        }
    static const char *const names[2] = {"analysed (tissue)", "not analysed"};
    static const uint8_t colours[2][3] = {{255, 255, 255}, {0, 0, 0}};
    char full[512];
    hp_legend lg = {.title = titled(g, "Tiles analysed", full, sizeof full),
                    .slide_id = g->slide_id,
                    .um_per_px = g->tile_size * g->mpp / px_per_tile,
                    .n_classes = 2,
                    .class_names = names,
                    .class_rgb = colours,
                    .note = "One square per tile."};
    st = hp_legend_write_png(path, rgb, w, h, &lg, err);
    free(rgb);
    return st;
}

int hp_heatmap_tiff_downsample(const hp_heatmap_grid *g)
{
    long d = lround(g->tile_size / 16.0);
    return d < 1 ? 1 : d > 1 << 20 ? 1 << 20 : (int)d;
}

hp_status hp_write_heatmap_tiff(const char *path, const hp_heatmap_grid *g, const float *map,
                                int downsample, hp_error *err)
{
    hp_status st = check(g, map, path, err);
    if (st)
        return st;
    if (downsample < 1)
        return hp_error_set(err, HP_ERR_INVALID, "%s: downsample %d < 1", path, downsample);
    enum { TILE = 256 };
    int64_t w = (g->slide_w + downsample - 1) / downsample;
    int64_t h = (g->slide_h + downsample - 1) / downsample;
    char extra[64];
    snprintf(extra, sizeof extra, "|HeatmapDownsample = %d", downsample);
    hp_tiff_pyramid_options o = {.width = w, .height = h, .tile = TILE, .quality = 95,
                                 .mpp = g->mpp * downsample, .downsample = 2, .min_side = 64,
                                 .description_extra = extra, .chroma_full = 1,
                                 .software = "histoplan-heatmap"};
    hp_tiff_pyramid *tp = NULL;
    if ((st = hp_tiff_pyramid_create(path, &o, &tp, err)))
        return st;
    uint8_t *band = malloc((size_t)w * TILE * 3);
    if (!band) {
        hp_tiff_pyramid_destroy(tp);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int64_t y0 = 0; y0 < h && !st; y0 += TILE) {
        int rows = (int)(h - y0 < TILE ? h - y0 : TILE);
        for (int r = 0; r < rows; r++) {
            double sy = ((double)(y0 + r) + 0.5) * downsample;
            for (int64_t x = 0; x < w; x++) {
                uint8_t *px = band + ((size_t)r * w + x) * 3;
                int64_t t = tile_at(g, ((double)x + 0.5) * downsample, sy);
                float p;
                if (t < 0 || !tile_colour(g, map, (size_t)t, px, &p))
                    px[0] = px[1] = px[2] = 255;
            }
        }
        st = hp_tiff_pyramid_write_band(tp, band, rows, err);
    }
    if (!st)
        st = hp_tiff_pyramid_finish(tp, err);
    hp_tiff_pyramid_destroy(tp);
    free(band);
    return st;
}
