/* Decoded TIFF blocks kept for readers that ask for overlapping regions again and again (the
 * Deep Zoom tile server: a 254-pixel tile with its overlap touches up to four 256-pixel JPEG
 * tiles of the slide, and each of those is wanted by up to four neighbouring tiles). Least
 * recently used blocks go first once the byte budget is spent.
 *
 * Blocks are copied in and out under the cache's lock, so an eviction never frees a block that
 * another thread is reading. Keys are (level, block index). Thread-safe. */
#ifndef HP_IO_TIFF_BLOCK_CACHE_H
#define HP_IO_TIFF_BLOCK_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hp_block_cache hp_block_cache;

/* A cache of up to `budget_bytes` of blocks of `block_bytes` each; NULL when the budget holds
 * fewer than 4 blocks (caching would not pay) or on allocation failure. */
hp_block_cache *hp_block_cache_create(size_t budget_bytes, size_t block_bytes);
void hp_block_cache_destroy(hp_block_cache *c);

/* Copies block (level, index) into `out` (block_bytes) and returns 1, or returns 0 when absent. */
int hp_block_cache_get(hp_block_cache *c, int level, int64_t index, uint8_t *out);

/* Stores a copy of `data` (block_bytes) as block (level, index), evicting the least recently
 * used block when full. */
void hp_block_cache_put(hp_block_cache *c, int level, int64_t index, const uint8_t *data);

/* Blocks found and not found since creation (for tests and benchmarks). */
void hp_block_cache_stats(hp_block_cache *c, int64_t *hits, int64_t *misses);

#endif
