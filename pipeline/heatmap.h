/* Per-class probability grids at tile resolution, and what is derived from them before regions
 * are measured: smoothed maps, the uncertainty (entropy) map, the top class, a perceptual
 * colormap, and file-safe class names.
 *
 * Layout: tile (i, j) (i across, j down) is t = j*gw + i; its class k probability is
 * prob[t*nclasses + k]. A tile that was not analysed (background, outside the tissue mask) has
 * NaN probabilities; hp_heatmap_analysed says which. Tiles abut: tile (i, j) covers level-0 pixels
 * [x0 + i*tile_size, x0 + (i+1)*tile_size) x [y0 + j*tile_size, ...).
 * Functions here are pure (thread-safe on distinct outputs). */
#ifndef HP_HEATMAP_H
#define HP_HEATMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define HP_HEATMAP_NAME_MAX 64 /* file-safe names, with the terminating NUL */

typedef struct {
    int gw, gh, nclasses;
    float *prob;      /* gw*gh*nclasses; NaN for tiles not analysed (create fills NaN) */
    float *tissue;    /* gw*gh tissue fraction 0..1 per tile, NaN when unknown (create fills NaN) */
    double x0, y0;    /* level-0 pixel of tile (0, 0)'s top-left corner */
    double tile_size; /* level-0 pixels per tile side (need not be an integer) */
    double mpp;       /* micrometres per level-0 pixel: areas and lengths in mm come from it */
    int64_t slide_w, slide_h; /* level-0 slide size: heatmap.tiff and the overlay cover it */
    char **names;     /* nclasses class names (owned; set with hp_heatmap_grid_set_class) */
    uint8_t (*rgb)[3]; /* nclasses class colours (owned) */
    const char *slide_id; /* printed in every picture's legend; borrowed, may be NULL */
    /* What the model saw when it was not the scanned image ("super-resolved x2 by M"), added to
     * every picture's title so a picture passed on alone still says so; borrowed, NULL: none. */
    const char *provenance;
} hp_heatmap_grid;

/* Allocates a grid with every tile not analysed, names "class0".. and a default palette. The
 * caller fills prob, tissue and the geometry fields, and frees it with hp_heatmap_grid_destroy.
 * Returns HP_ERR_INVALID for sizes below 1 (or a grid over 2^31 tiles, or over 255 classes),
 * HP_ERR_NOMEM. */
hp_status hp_heatmap_grid_create(int gw, int gh, int nclasses, hp_heatmap_grid **out);
void hp_heatmap_grid_destroy(hp_heatmap_grid *g);

/* Sets class k's display name (copied) and colour. */
hp_status hp_heatmap_grid_set_class(hp_heatmap_grid *g, int k, const char *name, uint8_t r,
                                    uint8_t gr, uint8_t b);

/* Checks the geometry fields (tile_size > 0, mpp > 0, slide size >= 1) and that every analysed
 * tile's probabilities are finite and in [0, 1]. The message names the first problem. */
hp_status hp_heatmap_grid_check(const hp_heatmap_grid *g, hp_error *err);

/* Whether tile t was analysed (its probabilities are numbers). */
int hp_heatmap_analysed(const hp_heatmap_grid *g, size_t t);

/* The class with the highest probability at tile t (lowest index on ties), -1 when not analysed.
 * `map` is a grid-shaped probability array (g->prob or a smoothed copy). */
int hp_heatmap_argmax(const hp_heatmap_grid *g, const float *map, size_t t);

/* Normalized Shannon entropy per tile, H(p) / ln(C), in [0, 1]: 0 when one class holds all the
 * probability, 1 when all C classes are equally likely (0 everywhere when C == 1). Probabilities
 * are used as given (they should sum to 1). NaN for tiles not analysed. `out` holds gw*gh. */
void hp_heatmap_entropy(const hp_heatmap_grid *g, float *out);

/* Gaussian smoothing of every class map with standard deviation `sigma` tiles (kernel radius
 * ceil(3 sigma)), as a normalized convolution over analysed tiles only: background neither
 * dilutes the edge of the tissue nor receives probability, and each smoothed tile is still a
 * distribution over classes. The kernel is symmetric, so smoothing moves no region's centre.
 * sigma <= 0 copies. `out` holds gw*gh*nclasses. Returns HP_ERR_NOMEM. */
hp_status hp_heatmap_smooth(const hp_heatmap_grid *g, double sigma, float *out);

/* Viridis (matplotlib's perceptually uniform map, dark purple at 0 to yellow at 1; 10 anchors
 * of its table, linearly interpolated). v is clamped to [0, 1]; NaN gives white, which viridis
 * never reaches, so "not analysed" stays distinct from "probability 0". */
void hp_heatmap_viridis(float v, uint8_t rgb[3]);

/* File-safe, unique class names: lower-case ASCII letters and digits, other runs become one
 * '_', trimmed; empty names become "class<k>", repeats get "_<k>" appended. out[k] for each
 * class. */
void hp_heatmap_safe_names(const hp_heatmap_grid *g, char (*out)[HP_HEATMAP_NAME_MAX]);

#endif
