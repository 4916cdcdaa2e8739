/* Super-resolution inside the analyze run (`histoplan analyze --sr auto|off|MODEL`).
 *
 * When a slide is scanned coarser than the classifier was trained (a 10x or 20x scan for a model
 * of 0.5 um/px), the tiler would upsample each tile by interpolation. With super-resolution on,
 * each tile is instead read at the scan's own resolution with a halo of context around it, run
 * through a super-resolution model (a card with "task": "super-resolution" and its "scale";
 * pipeline/upscale.h writes whole super-resolved slides with the same models), its halo cut off
 * again, and only then given to the classifier. What the classifier sees is then not the scanned
 * image: findings.json, tiles.csv, the report and the viewer say so wherever the evidence is
 * shown.
 *
 * The decision (hp_sr_decide), per slide, from the ratio r = slide MPP / classifier MPP:
 *   --sr off                 never; tiles are resampled as before.
 *   r < 1.5                  not used: interpolating by less than 1.5x costs little detail.
 *   --sr auto                the offered model (the zoo's faithful models, x2 and x4) whose
 *                            scale is nearest to r, when r / scale lies within 1/1.5 .. 1.5
 *                            (the rest is resampled); none fits (or none is installed): not
 *                            used, and the run says why.
 *   --sr MODEL               that model, under the same rule; a scale that does not fit the
 *                            slide's ratio is an error naming both (the user asked for it).
 * A generative model (card "generative": true) is always refused: it may invent texture.
 * A slide without MPP never reaches the decision: analyze already stops and asks for --mpp.
 *
 * Geometry. The classifier's grid is kept as it is (tile positions, tissue fractions, the
 * probability grid do not change). A second grid, the read grid, is the same tiles widened by a
 * halo of HP_SR_HALO scan pixels on each side and read at side = ceil(tile / scale) + 2 halo
 * pixels; the loader reads it exactly as any grid (threads, batches, order). Each batch then goes
 * through the SR model (NCHW, 0..1), the scale x halo border is cut, and the centre, resampled to
 * the classifier's tile size when scale x ceil(tile / scale) differs from it, replaces the batch. */
#ifndef HP_ANALYZE_SR_H
#define HP_ANALYZE_SR_H

#include <stdint.h>

#include "common/status.h"
#include "models/model.h"
#include "pipeline/tile_grid.h"

/* Scan pixels of context on each side of a tile (the SR models' receptive field is ~10). */
#define HP_SR_HALO 8
/* A slide this much coarser than the classifier (or more) is worth super-resolving. */
#define HP_SR_MIN_RATIO 1.5

typedef enum { HP_SR_OFF = 0, HP_SR_AUTO, HP_SR_MODEL } hp_sr_mode;

/* "off", "auto", "model". */
const char *hp_sr_mode_name(hp_sr_mode m);

/* A super-resolution model the run may use. */
typedef struct {
    hp_model *model;    /* its card says "task": "super-resolution" */
    const char *sha256; /* of the model file (64 hex) */
} hp_sr_candidate;

typedef struct {
    int use;            /* 1: tiles are super-resolved */
    int candidate;      /* index into the candidates when used, else -1 */
    int scale;
    double ratio;       /* slide MPP / classifier MPP */
    double residual;    /* ratio / scale: what is still resampled after SR (1: nothing) */
    char reason[512];   /* a sentence for people: why it is or is not used */
} hp_sr_decision;

/* The decision table above. Refused (HP_ERR_INVALID, message in err): a candidate that is not a
 * super-resolution model or is a generative one, MODEL mode with no candidate or with a scale that does not fit, an
 * MPP that is not positive. */
hp_status hp_sr_decide(hp_sr_mode mode, double slide_mpp, double classifier_mpp,
                       const hp_sr_candidate *cands, int n_cands, hp_sr_decision *d, hp_error *err);

/* The super-resolution step of one run. */
typedef struct {
    hp_model *model;
    int scale;
    int tile;        /* the classifier's tile side */
    int tin;         /* SR input per tile, halo excluded: ceil(tile / scale) */
    int halo;        /* SR input pixels of halo per side */
    int side;        /* tin + 2 halo: the SR model's input side */
    int batch;
    hp_tile_grid read_grid; /* the classifier's grid widened by the halo (own tile list) */
    float *in, *out;        /* batch x 3 x side^2, batch x 3 x (side scale)^2 */
    uint8_t *centre;        /* (tin scale)^2 x 3: one tile's cut-out before resampling */
    uint8_t *tiles;         /* batch x tile^2 x 3: what the classifier gets (pinned when asked) */
    int pinned;
} hp_analyze_sr;

/* Sets up the step for `grid` (the classifier's) and `batch` tiles a run, and instantiates the
 * model at that batch and input side. `pinned`: the classifier runs on a GPU, so its input
 * buffer is page-locked (kernels/backend.h hp_cuda_host_alloc) for full-speed copies. */
hp_status hp_analyze_sr_prepare(hp_analyze_sr *sr, hp_model *model, const hp_tile_grid *grid, int batch,
                                int pinned, hp_error *err);

/* Super-resolves `count` read-grid tiles (side x side x 3 each, interleaved) into sr->tiles
 * (tile x tile x 3 each; slots past count are zero). */
hp_status hp_analyze_sr_apply(hp_analyze_sr *sr, const uint8_t *rgb, int count, hp_error *err);

void hp_analyze_sr_free(hp_analyze_sr *sr);

#endif
