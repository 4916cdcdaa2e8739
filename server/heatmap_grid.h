/* A finished job's tile probabilities (its tiles.csv, as `histoplan analyze` writes it), held
 * in memory for the heatmap tiles of the viewer. Layers are the classes (the CSV's prob_<class>
 * columns, class names as made file-safe there), "uncertainty" (each tile's entropy divided
 * by ln(classes), 0 sure .. 1 unsure) and "tissue" (1 on every analysed tile: the tissue mask
 * at the tile grid, as analyze's mask.png), and "super-resolved" (1 on tiles the classifier saw
 * super-resolved; present only when the analysis super-resolved any). Parsed grids stay cached per job, a few at a time.
 * Thread-safe. */
#ifndef HP_SERVER_HEATMAP_GRID_H
#define HP_SERVER_HEATMAP_GRID_H

#include <stdint.h>

#include "common/status.h"

#define HP_HG_MAX_LAYERS 18
#define HP_HG_NAME_MAX 64

typedef struct {
    int gw, gh;            /* grid columns and rows */
    double x0, y0, size;   /* level-0 origin and side of a cell */
    int n_layers;
    char names[HP_HG_MAX_LAYERS][HP_HG_NAME_MAX];
    float *v;              /* n_layers planes of gw * gh; NaN where no tile was analysed */
} hp_heatmap_layers;

typedef struct hp_heatmap_cache hp_heatmap_cache;

hp_heatmap_cache *hp_heatmap_cache_create(int max_grids);
void hp_heatmap_cache_destroy(hp_heatmap_cache *c);

/* The layers of job `key` from the tiles.csv at `csv_path` (parsed on first use). Release with
 * hp_heatmap_cache_release. NULL with `err` set when the file is missing or malformed. */
const hp_heatmap_layers *hp_heatmap_cache_acquire(hp_heatmap_cache *c, const char *key,
                                                  const char *csv_path, hp_error *err);
void hp_heatmap_cache_release(hp_heatmap_cache *c, const hp_heatmap_layers *h);

/* The layer named `name`, or -1. */
int hp_heatmap_layer(const hp_heatmap_layers *h, const char *name);

/* The value of `layer` at level-0 point (x, y): 0..1, or NaN outside the analysed tiles. */
float hp_heatmap_at(const hp_heatmap_layers *h, int layer, double x, double y);

/* Parses a tiles.csv (for tests). Free with hp_heatmap_layers_free. */
hp_status hp_heatmap_layers_parse(const char *csv_path, hp_heatmap_layers *out, hp_error *err);
void hp_heatmap_layers_free(hp_heatmap_layers *h);

#endif
