/* Tiles as JPEG in memory (libjpeg-turbo), the format Deep Zoom and IIIF clients ask for. */
#ifndef HP_SERVER_JPEG_ENCODE_H
#define HP_SERVER_JPEG_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* The quality OpenSlide's deep zoom server uses by default. */
#define HP_TILE_JPEG_QUALITY 75

/* Encodes w x h pixels of `ch` channels (3: RGB, 1: grey) at `quality` (1..100). *out is
 * malloc'd (free()) and *n its length. Thread-safe; libjpeg errors come back as HP_ERR_IO. */
hp_status hp_jpeg_encode(const uint8_t *px, int w, int h, int ch, int quality, uint8_t **out,
                         size_t *n);

#endif
