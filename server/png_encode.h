/* Grey-and-alpha PNG in memory (libpng): heatmap tiles, whose 8-bit values must reach the
 * browser exactly (JPEG would blur probabilities across each 8x8 block). */
#ifndef HP_SERVER_PNG_ENCODE_H
#define HP_SERVER_PNG_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* Encodes w x h pixels of 2 bytes (grey, alpha). *out malloc'd (free()), *n its length.
 * Thread-safe; libpng errors come back as HP_ERR_IO. */
hp_status hp_png_encode_ga(const uint8_t *px, int w, int h, uint8_t **out, size_t *n);

#endif
