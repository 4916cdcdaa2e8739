/* Heatmap images of a probability grid (pipeline/heatmap.h): per-class PNGs, an overlay on the
 * slide thumbnail, the tissue mask, and a pyramidal TIFF that OpenSlide opens.
 *
 * Colours:
 * - heatmap_<class>.png: viridis (hp_heatmap_viridis) of the class probability, perceptually
 *   uniform and readable in grey and by most colour-blind readers; white = not analysed.
 * - heatmap.tiff: each analysed tile takes its top class's colour (the grid's class colours),
 *   mixed with white by how sure the model is: colour = white + pmax x (class colour - white),
 *   so a tile at probability 1 shows the class colour itself and an unsure tile is pale; white
 *   where nothing was analysed.
 * - overlay.png: the same top-class colour blended over the thumbnail at opacity alpha x pmax;
 *   the bare thumbnail where nothing was analysed.
 * Every PNG carries a legend band under the picture (pipeline/legend.h): title, slide id, scale
 * bar, and the class key or the value ramp; the picture itself keeps the sizes given below at
 * the top left, and the PNG's "histoplan:legend" text chunk gives the layout.
 * Every file is written under a temporary name and renamed into place when complete.
 * Thread-safe on distinct paths. */
#ifndef HP_WRITE_HEATMAP_H
#define HP_WRITE_HEATMAP_H

#include <stdint.h>

#include "common/status.h"
#include "pipeline/heatmap.h"

/* Class k of `map` (g->prob or a smoothed copy) as an RGB PNG, px_per_tile x px_per_tile pixels
 * per tile (1..256): gw*px_per_tile x gh*px_per_tile. */
hp_status hp_write_heatmap_png(const char *path, const hp_heatmap_grid *g, const float *map,
                               int k, int px_per_tile, hp_error *err);

/* uncertainty.png: the normalized entropy of each tile (hp_heatmap_entropy: 0 sure, 1 all classes
 * equally likely) through the same colormap, white where nothing was analysed. */
hp_status hp_write_uncertainty_png(const char *path, const hp_heatmap_grid *g, const float *entropy,
                                   int px_per_tile, hp_error *err);

/* heatmap_<safe name>.png for every class in folder `dir` (hp_heatmap_safe_names). */
hp_status hp_write_heatmap_pngs(const char *dir, const hp_heatmap_grid *g, const float *map,
                                int px_per_tile, hp_error *err);

/* The thumbnail (tw x th interleaved RGB8, covering the whole slide, level-0 [0, slide_w) x
 * [0, slide_h)) with each analysed tile's top-class colour blended over it at opacity
 * alpha x pmax (alpha in [0, 1]; 0.5 is a good default), written as an RGB PNG of tw x th. */
hp_status hp_write_overlay_png(const char *path, const hp_heatmap_grid *g, const float *map,
                               const uint8_t *thumb, int tw, int th, double alpha, hp_error *err);

/* mask.png: RGB, px_per_tile x px_per_tile pixels per tile: white analysed (tissue), black not. */
hp_status hp_write_mask_png(const char *path, const hp_heatmap_grid *g, int px_per_tile,
                            hp_error *err);

/* Downsample for heatmap.tiff that gives each tile about 16 pixels: max(1, round(tile_size/16)). */
int hp_heatmap_tiff_downsample(const hp_heatmap_grid *g);

/* heatmap.tiff: a pyramidal JPEG TIFF (io/tiff_pyramid_writer.h: Aperio-style, so OpenSlide opens
 * it and reports its MPP; JPEG quality 95 without chroma subsampling) of the top-class colours.
 * Its level-0 pixel (u, v) covers slide level-0 pixels [u*D, (u+1)*D) x [v*D, (v+1)*D) with
 * D = downsample (>= 1), so it is ceil(slide_w / D) x ceil(slide_h / D) and its MPP is the
 * slide's times D: a viewer lines it up with the slide by physical size. Each pixel takes the
 * tile under its centre. The description carries "|HeatmapDownsample = D", which OpenSlide shows
 * as the property aperio.HeatmapDownsample. */
hp_status hp_write_heatmap_tiff(const char *path, const hp_heatmap_grid *g, const float *map,
                                int downsample, hp_error *err);

#endif
