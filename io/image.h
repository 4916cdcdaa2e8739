/* Plain images (PNG, JPEG, TIFF) as interleaved 8-bit RGB: patches, BACH images, thumbnails,
 * heatmap output. Whole-slide images are not read here (they are read by region elsewhere);
 * images over HP_IMAGE_MAX_PIXELS are refused.
 * All functions are thread-safe: libpng, libjpeg and libtiff errors are captured per call. */
#ifndef HP_IMAGE_H
#define HP_IMAGE_H

#include <stdint.h>

#include "common/status.h"

/* 100 megapixels: larger images are whole slides and must be read by region. */
#define HP_IMAGE_MAX_PIXELS 100000000LL

/* Decodes `path`, chosen by its magic bytes (not its extension): PNG (8/16-bit gray, gray+alpha,
 * palette, RGB, RGBA), JPEG (gray, YCbCr) or the first page of a TIFF (anything libtiff's RGBA
 * interface reads). 16-bit PNG samples are rounded to 8 bits (TIFF: libtiff keeps the high byte);
 * alpha is composited over white, the colour of an empty slide, so
 * transparent pixels never read as dark tissue. A JPEG that libjpeg would only warn about
 * (truncated or corrupt data, which it pads with grey) is refused.
 * On success *rgb holds w*h*3 bytes, rows top to bottom (the caller frees it with free()).
 * On failure *rgb is NULL and `err` names the file and the cause. */
hp_status hp_image_read_rgb8(const char *path, int *w, int *h, uint8_t **rgb, hp_error *err);

/* Resizes interleaved RGB8 `src` (sw x sh) into `dst` (dw x dh, caller-allocated dw*dh*3 bytes).
 * Along an axis that shrinks, by any factor, each output pixel is the exact area average of the
 * source pixels it covers, so fine texture does not alias; along an axis that grows it is
 * bilinear with half-pixel centres (OpenCV's INTER_AREA and INTER_LINEAR, io/cv_image.h).
 * Equal sizes copy. Returns HP_ERR_INVALID for bad arguments, HP_ERR_NOMEM. */
hp_status hp_image_resize_rgb8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

/* Writes interleaved RGB8 (w x h) as an 8-bit RGB PNG. The file is written under a temporary
 * name in the same folder and renamed over `path` only when complete. */
hp_status hp_image_write_png(const char *path, const uint8_t *rgb, int w, int h, hp_error *err);

#endif
