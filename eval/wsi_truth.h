/* BACH Part B ground truth: the Aperio ImageScope annotation XML the challenge distributed with
 * its whole-slide images, read and rasterized.
 *
 *   <Annotations><Annotation Name=...><Regions><Region Id=... Text="Benign">
 *     <Vertices><Vertex X="..." Y="..."/>...</Vertices></Region>...</Regions></Annotation>
 *
 * Vertices are level-0 pixels. A region's label is its Text attribute, else its annotation's
 * Name; it is read through the evaluation's spelling table (eval/eval_labels.h: "Benign",
 * "Carcinoma in situ", "In situ", "Carcinoma invasive", "Invasive", ...) into BACH's ordinal
 * labels 0 normal, 1 benign, 2 in situ, 3 invasive. Everything no region covers is normal (0),
 * as in the challenge, where only benign, in situ and invasive regions were drawn.
 *
 * Rasterization at a downsample D: raster pixel (px, py) stands for the level-0 point
 * ((px + 0.5) D, (py + 0.5) D), its centre, which a region covers by the even-odd rule (a ray
 * to the right crosses its outline an odd number of times; an edge's lower end counts, its
 * upper end does not). Where regions overlap, the most severe label wins (an invasive focus
 * drawn inside an in situ region is invasive).
 *
 * Thread safety: reading uses its own libxml2 parser context; no shared state. */
#ifndef HP_WSI_TRUTH_H
#define HP_WSI_TRUTH_H

#include <stdint.h>

#include "common/status.h"

typedef struct {
    int cls;         /* 0..3 */
    char label[64];  /* as written (cut at 63 bytes) */
    char id[32];     /* the Region's Id attribute, or its position (1-based) when none */
    int n;           /* vertices */
    double *xy;      /* 2n: x0, y0, x1, y1, ... */
} hp_wsi_region;

typedef struct {
    int n;
    hp_wsi_region *regions;
} hp_wsi_truth;

/* Reads `path`. Refused, with the file named: XML that is not well formed (with its line and
 * libxml2's reason), a root that is not <Annotations>, a region without a label or with a label
 * that is no BACH class, a region with fewer than 3 vertices, a vertex whose X or Y is missing
 * or not a finite number. The caller frees with hp_wsi_truth_free (also after a failure). */
hp_status hp_wsi_truth_read(const char *path, hp_wsi_truth *t, hp_error *err);
void hp_wsi_truth_free(hp_wsi_truth *t);

/* Refuses a vertex outside [0, width] x [0, height] (the slide's level-0 size), naming the file,
 * the region and the vertex. */
hp_status hp_wsi_truth_check_bounds(const hp_wsi_truth *t, const char *path, double width,
                                    double height, hp_error *err);

/* Rasterizes into out (w x h bytes, row-major; written whole) at `downsample` level-0 pixels
 * per raster pixel, as described above. */
void hp_wsi_truth_rasterize(const hp_wsi_truth *t, double downsample, int w, int h, uint8_t *out);

#endif
