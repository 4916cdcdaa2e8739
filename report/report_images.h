/* The images a report carries in DIR/images/: each slide's heatmap overlay (copied from the
 * findings folder, legend and all) and a thumbnail per leading region, cropped from that overlay's
 * picture and given a legend of its own (slide id, scale bar, the overlay's class key), so an
 * image passed on alone still says what it shows. Each is recorded in report.json with its
 * SHA-256, so signing the report signs the images too. */
#ifndef HP_REPORT_IMAGES_H
#define HP_REPORT_IMAGES_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/status.h"

typedef struct {
    uint8_t *rgb; /* the overlay file's pixels, w x h RGB8 (picture and legend band) */
    int w, h;
    int map_w, map_h; /* the picture of the slide: the top-left map_w x map_h of rgb */
    double scale;     /* picture pixels per level-0 pixel */
    double um_per_px; /* micrometres per picture pixel (0: unknown) */
    char *slide_id;   /* owned */
    int n_classes;    /* the overlay's class key, from its legend (0: none) */
    char **class_names;
    uint8_t (*class_rgb)[3];
} hp_overlay;

/* Reads the overlay `src`, writes it as `report_dir`/images/`name` and returns its image record
 * ({file, sha256, width_px, height_px}) in *record; `ov` keeps the pixels for thumbnails. The
 * picture's size and class key come from the overlay's legend ("histoplan:legend"); an overlay
 * without one is taken whole, without a class key. `mpp` is micrometres per level-0 pixel. */
hp_status hp_report_image_overlay(const char *src, const char *report_dir, const char *name,
                                  double level0_width, double mpp, const char *slide_id,
                                  hp_overlay *ov, cJSON **record, hp_error *err);

/* Crops the level-0 box (x, y, w, h) out of the overlay with a margin, scales it (keeping its
 * shape) so that its longer side is 192 px and writes it as `report_dir`/images/`name`;
 * *record as above. */
hp_status hp_report_image_thumbnail(const hp_overlay *ov, const double bbox[4], const char *report_dir,
                                    const char *name, cJSON **record, hp_error *err);

void hp_overlay_free(hp_overlay *ov);

/* Reads the level-0 box (x, y, w, h) with `margin` times its size around it (0.25 for a region,
 * 0 for an evidence tile) from the slide itself, at the coarsest level
 * that still gives at least 256 px across, scales it to at most 256 px a side and writes it as
 * `report_dir`/images/`name` with a legend (slide id, scale bar from `mpp`, micrometres per
 * level-0 pixel); *record as above. Memory stays bounded on any slide: a region too large to read
 * at once (a slide without a pyramid) is sampled row by row. */
struct hp_slide;
hp_status hp_report_image_from_slide(struct hp_slide *slide, const double bbox[4], double margin, double mpp,
                                     const char *slide_id, const char *report_dir, const char *name,
                                     cJSON **record, hp_error *err);

#endif
