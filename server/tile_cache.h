/* The tile cache: encoded tiles (JPEG bytes and their ETag) kept in memory under a byte budget,
 * the least recently used dropped first. A viewer asks for the same tiles again and again while
 * a pathologist pans back and forth; decoding and resampling them once is the point.
 *
 * Keys are strings the caller builds from ids and numbers only (job id, layer, level, column,
 * row). Thread-safe (one mutex; lookups and inserts are short). */
#ifndef HP_SERVER_TILE_CACHE_H
#define HP_SERVER_TILE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hp_tile_cache hp_tile_cache;

/* A cache holding at most `max_bytes` of tile data (0: caches nothing). NULL when out of memory. */
hp_tile_cache *hp_tile_cache_create(size_t max_bytes);
void hp_tile_cache_destroy(hp_tile_cache *c);

/* Copies the cached tile of `key` into *data (malloc'd, the caller frees) and its ETag into
 * etag; 1 found, 0 not (or out of memory). */
int hp_tile_cache_get(hp_tile_cache *c, const char *key, uint8_t **data, size_t *n,
                      char etag[40]);
/* Stores a copy (replacing an entry of the same key), dropping the least recently used entries
 * until the budget holds. A tile larger than the whole budget is not stored. */
void hp_tile_cache_put(hp_tile_cache *c, const char *key, const uint8_t *data, size_t n,
                       const char *etag);

/* Entries, bytes held, hits and misses so far (metrics and tests). */
void hp_tile_cache_stats(hp_tile_cache *c, size_t *entries, size_t *bytes, uint64_t *hits,
                         uint64_t *misses);

#endif
