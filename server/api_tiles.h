/* Shared by the tile handlers (server/api_tiles.c, server/api_iiif.c). */
#ifndef HP_SERVER_API_TILES_H
#define HP_SERVER_API_TILES_H

#include <stddef.h>
#include <stdint.h>

#include "server/request.h"
#include "server/slide_pool.h"

/* The open slide of the job named by the route's first parameter (checked as
 * hp_api_load_job does); NULL when answered (404, 503). Release with hp_slide_pool_release.
 * With `job`, the job's row is kept there too (free it with hp_job_row_free). */
hp_pooled_slide *hp_tiles_open(hp_request *r, hp_job_row *job);
/* A strong ETag from the bytes ("\"<16 hex>\""). */
void hp_tiles_etag(const uint8_t *data, size_t n, char etag[40]);
/* 200 with the bytes (taken over), or 304 when If-None-Match names the ETag; both with ETag and
 * Cache-Control. */
void hp_tiles_respond(hp_request *r, const char *content_type, uint8_t *data, size_t n,
                      const char *etag);
/* A decimal number of at most 9 digits and nothing else: 0 ok, -1 not. */
int hp_tiles_parse_uint(const char *s, size_t len, int64_t *out);
/* "{col}_{row}.jpeg": 0 ok, -1 not. */
int hp_tiles_parse_address(const char *s, int64_t *col, int64_t *row);
/* One Deep Zoom tile's RGB pixels (*px malloc'd). */
hp_status hp_tiles_render_dz(hp_pooled_slide *s, const hp_dz_tile *t, uint8_t **px, int *w,
                             int *h);

#endif
