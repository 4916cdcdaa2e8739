/* Image processing on pixel buffers, done by OpenCV 4 (core and imgproc) instead of hand-written
 * loops: resampling, colour conversion, box blur, morphology, Otsu's threshold, connected
 * components and outline tracing. OpenCV has no C API that a C compiler accepts, so this header
 * is the whole of it that histoplan sees; io/cv_image.cpp is the one C++ file behind it.
 *
 * Buffers are the caller's: row-major, tightly packed unless a stride is given. RGB8 is
 * interleaved R, G, B. Masks are one byte per pixel, non-zero = set.
 *
 * Errors: every function returns HP_OK, HP_ERR_INVALID for bad arguments (sizes below 1, NULL
 * buffers) or HP_ERR_NOMEM (OpenCV could not allocate); no OpenCV exception leaves this file.
 * Thread safety: no shared state; any function may run on several threads at once.
 * Determinism: results do not depend on OpenCV's thread count. */
#ifndef HP_CV_IMAGE_H
#define HP_CV_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Resizes RGB8 `src` (sw x sh, rows `src_stride` bytes apart; 0 = sw * 3) into `dst` (dw x dh,
 * packed). Along an axis that shrinks, each output pixel is the area average of the source
 * pixels it covers, weighted by their overlap (cv::INTER_AREA), for any factor; along an axis
 * that grows it is bilinear with half-pixel centres (cv::INTER_LINEAR). Equal sizes copy. */
hp_status hp_cv_resize_rgb8(const uint8_t *src, int sw, int sh, size_t src_stride, uint8_t *dst,
                            int dw, int dh);

/* HSV of n RGB8 pixels as floats (cv::COLOR_RGB2HSV on float input): hue in degrees [0, 360),
 * saturation and value in [0, 1]; `hsv` holds 3n floats. OpenCV computes in float (and adds
 * FLT_EPSILON to the value it divides by), so a saturation that is exactly a fraction such as
 * 51/255 can come out a few 1e-8 below it: compare with HP_CV_SAT_SLACK / HP_CV_HUE_SLACK
 * (distinct 8-bit pixels differ by at least 1.5e-5 in saturation and 9e-4 degrees in hue, far
 * more than the slack, and the float error stays under a tenth of it). */
hp_status hp_cv_rgb8_to_hsv(const uint8_t *rgb, size_t n, float *hsv);
#define HP_CV_SAT_SLACK 1e-6
#define HP_CV_HUE_SLACK 2e-4

/* Grey (0.299 R + 0.587 G + 0.114 B, in float) of n RGB8 pixels. */
hp_status hp_cv_rgb8_to_gray_f32(const uint8_t *rgb, size_t n, float *gray);

/* The (2r+1) x (2r+1) box average of RGB8 (edges replicated), rounded to nearest. r <= 0 copies. */
hp_status hp_cv_box_blur_rgb8(const uint8_t *src, int w, int h, int r, uint8_t *dst);

/* Morphology of a 0/1 mask in place with a (2r+1) x (2r+1) square: dilation (outside the image
 * counts as unset) or erosion (outside counts as set, so a region cut by the image's edge is
 * not eaten from that side). r <= 0 leaves the mask as it is. */
hp_status hp_cv_dilate_square(uint8_t *mask, int w, int h, int r);
hp_status hp_cv_erode_square(uint8_t *mask, int w, int h, int r);

/* Otsu's threshold of n 8-bit values (cv::THRESH_OTSU): the largest value of the lower class,
 * 0..254, so values > the result form the upper class. When the values do not split (all
 * equal, or n == 0) returns 255. */
hp_status hp_cv_otsu_u8(const uint8_t *values, size_t n, int *threshold);

/* Connected components. Each component: its bounding box (inclusive) and its pixel count. */
typedef struct {
    int x0, y0, x1, y1;
    int64_t area;
} hp_cv_component;

/* Labels the components of the pixels of `mask` (w x h) equal to `value`, 4- or 8-connected
 * (`connectivity` 4 or 8). labels[y*w + x] receives the component (0..n-1) of each such pixel and
 * -1 elsewhere; components are numbered in raster order of their first pixel. *comps (n entries,
 * malloc'd; free() it) may be NULL when the caller needs only the labels. */
hp_status hp_cv_components(const uint8_t *mask, int w, int h, uint8_t value, int connectivity,
                           int32_t *labels, hp_cv_component **comps, int32_t *n);

/* Flips to !value every component of pixels equal to `value` (0 or 1, in a 0/1 mask) that has
 * fewer than min_area pixels, except, when keep_border, those touching the image's edge.
 * Connectivity 8 for value 1 and 4 for value 0: a diagonal gap in set pixels does not join
 * two holes, and a hole is never opened to the outside through a corner. */
hp_status hp_cv_drop_small(uint8_t *mask, int w, int h, uint8_t value, int64_t min_area,
                           int keep_border);

/* The outline of the cells of `mask` (w x h, non-zero = in) that form one 4-connected region,
 * traced along cell edges in grid-vertex coordinates (vertex (x, y) is the top-left corner of
 * cell (x, y)) by cv::findContours: rings of x, y pairs, each closed (last point == first), only
 * corners kept, starting at its topmost-then-leftmost vertex. Ring 0 is the outer ring, clockwise
 * on screen (y down); the others are its holes, counter-clockwise, ordered by their first vertex
 * in raster order. *xy (2 * total points int32, malloc'd) and *ring_len (points per ring,
 * malloc'd) are the caller's to free(). HP_ERR_INVALID when the set cells are not one region. */
hp_status hp_cv_trace_region(const uint8_t *mask, int w, int h, int32_t **xy, int32_t **ring_len,
                             int *n_rings);

#ifdef __cplusplus
}
#endif

#endif
