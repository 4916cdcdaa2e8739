/* Downsampling for the tile server, the way OpenSlide's own deep zoom generator
 * (openslide.deepzoom, which calls Pillow's Image.thumbnail with LANCZOS) does it, so a viewer
 * sees the same pixels whichever server it is pointed at:
 *
 *   size    the largest size inside the wanted one that keeps the region's aspect ratio
 *           (Pillow's thumbnail rounding, which may make a tile one pixel narrower);
 *   reduce  when shrinking by 4 or more, first an integer box average (Image.reduce, with
 *           reducing_gap 2: the factor is int(ratio / 2));
 *   resize  then a separable Lanczos-3 filter with Pillow's coefficients, fixed-point
 *           arithmetic and rounding (horizontal pass first).
 *
 * Interleaved 8-bit pixels with `ch` channels (1 or 3). Thread-safe. */
#ifndef HP_SERVER_TILE_RESAMPLE_H
#define HP_SERVER_TILE_RESAMPLE_H

#include <stdint.h>

#include "common/status.h"

/* The size Pillow's thumbnail((want_w, want_h)) gives an image of src_w x src_h: the source
 * size itself when it already fits. */
void hp_resample_thumbnail_size(int src_w, int src_h, int want_w, int want_h, int *out_w,
                                int *out_h);

/* Shrinks src (sw x sh) to dst (dw x dh, caller-allocated) as Pillow's
 * resize((dw, dh), LANCZOS, reducing_gap=2.0) does. Copies when the sizes are equal. */
hp_status hp_resample_thumbnail(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw,
                                int dh);

#endif
