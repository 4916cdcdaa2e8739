/* Super-resolution of a slide (`histoplan upscale`): a region of level 0 run through a
 * super-resolution model (a card with "task": "super-resolution") tile by tile, each tile with
 * a halo of context that is cut off again, so no seam shows; written as a pyramidal TIFF that
 * OpenSlide opens, at the source MPP divided by the model's scale, one band of tiles at a time
 * (memory bounded by the region's width, never its area).
 *
 * The file says what it is, where a reader of the slide looks (OpenSlide's aperio.* properties,
 * from the ImageDescription): SuperResolved, the source slide's SHA-256 and region, the model's
 * name, version, SHA-256, scale and the precision it ran in (SRPrecision: fp32, or fp16 / bf16
 * on the CUDA backend). hp_upscale_is_derived tells a slide so made; analyze refuses
 * one as a source unless the caller allows derived images.
 *
 * The model takes and returns RGB in 0..1 (NCHW); a fully convolutional export (symbolic height
 * and width) runs at any tile size, a fixed one at its own. */
#ifndef HP_PIPELINE_UPSCALE_H
#define HP_PIPELINE_UPSCALE_H

#include <stdint.h>

#include "common/status.h"

struct hp_model;
struct hp_slide;

typedef struct {
    const char *slide_path;
    const char *out_path;
    struct hp_model *model;
    const char *model_path;     /* for messages about the model */
    const char *model_sha256;   /* of the model file (hex) */
    int64_t roi_x, roi_y, roi_w, roi_h; /* level 0; roi_w == 0: the whole slide */
    double mpp;                 /* > 0: the source's MPP, overriding its metadata */
    int tile;                   /* input pixels per tile side, halo excluded (0: 128, or what a
                                   fixed-size model takes) */
    int halo;                   /* input pixels of context on each side (0: 8) */
    int quality;                /* output JPEG quality (0: 90) */
    int batch;                  /* tiles per model run (0: 8) */
    void (*progress)(void *user, long done, long total);
    void *progress_user;
} hp_upscale_options;

typedef struct {
    int64_t width, height; /* the output's level 0 */
    double out_mpp;
    int scale;
    long tiles;
} hp_upscale_result;

hp_status hp_upscale(const hp_upscale_options *o, hp_upscale_result *res, hp_error *err);

/* 1 when the open slide was made by hp_upscale (its "SuperResolved" property). */
int hp_upscale_is_derived(const struct hp_slide *s);

/* What a super-resolved slide says of itself (the slide's property strings, valid while it is
 * open; NULL where absent or blanked by de-identification). */
typedef struct {
    const char *scale, *model, *model_sha256, *precision, *source_mpp, *source_sha256, *source_region;
    int generative; /* the model was trained adversarially: it may invent texture */
} hp_upscale_provenance;

/* Fills `p` and returns 1 for a super-resolved slide; 0 (p zeroed) for any other. */
int hp_upscale_provenance_of(const struct hp_slide *s, hp_upscale_provenance *p);

#endif
