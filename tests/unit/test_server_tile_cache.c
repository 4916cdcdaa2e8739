/* The tile server's cache (server/tile_cache.h): it stays within its byte budget, drops the
 * least recently used tile first (a read counts as a use), replaces a key in place, refuses a
 * tile larger than the budget, and holds up under threads reading and writing at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/tile_cache.h"
#include "util/testutil.h"

static int has(hp_tile_cache *c, const char *key)
{
    uint8_t *d = NULL;
    size_t n = 0;
    char etag[40];
    int f = hp_tile_cache_get(c, key, &d, &n, etag);
    free(d);
    return f;
}

static void *hammer(void *arg)
{
    hp_tile_cache *c = arg;
    uint8_t buf[300];
    memset(buf, 7, sizeof buf);
    for (int i = 0; i < 20000; i++) {
        char key[32];
        snprintf(key, sizeof key, "j/dz/%d", i % 97);
        if (i % 3)
            hp_tile_cache_put(c, key, buf, 100 + (size_t)(i % 200), "\"e\"");
        else
            has(c, key);
    }
    return NULL;
}

int main(void)
{
    hp_tile_cache *c = hp_tile_cache_create(1000);
    CHECK(c != NULL);
    uint8_t tile[400];
    for (int i = 0; i < 400; i++)
        tile[i] = (uint8_t)i;
    hp_tile_cache_put(c, "a", tile, 300, "\"a\"");
    hp_tile_cache_put(c, "b", tile, 300, "\"b\"");
    hp_tile_cache_put(c, "c", tile, 300, "\"c\"");
    uint8_t *d = NULL;
    size_t n = 0;
    char etag[40] = "";
    CHECK(hp_tile_cache_get(c, "a", &d, &n, etag) == 1);
    CHECK(n == 300 && d && memcmp(d, tile, 300) == 0 && !strcmp(etag, "\"a\""));
    free(d);
    /* "a" was just read, so "b" is the least recently used and goes first. */
    hp_tile_cache_put(c, "d", tile, 300, "\"d\"");
    CHECK(has(c, "a") && !has(c, "b") && has(c, "c") && has(c, "d"));
    size_t entries, bytes;
    uint64_t hits, misses;
    hp_tile_cache_stats(c, &entries, &bytes, &hits, &misses);
    CHECK_MSG(entries == 3 && bytes == 900, "%zu entries, %zu bytes", entries, bytes);
    CHECK(hits == 4 && misses == 1);
    /* Replacing a key frees its old bytes. */
    hp_tile_cache_put(c, "a", tile, 50, "\"a2\"");
    CHECK(hp_tile_cache_get(c, "a", &d, &n, etag) == 1 && n == 50 && !strcmp(etag, "\"a2\""));
    free(d);
    hp_tile_cache_stats(c, &entries, &bytes, &hits, &misses);
    CHECK_MSG(entries == 3 && bytes == 650, "%zu entries, %zu bytes", entries, bytes);
    /* Larger than the whole budget: not stored, nothing dropped for it. */
    uint8_t *big = calloc(1, 2000);
    hp_tile_cache_put(c, "big", big, 2000, "\"x\"");
    free(big);
    CHECK(!has(c, "big") && has(c, "c"));
    hp_tile_cache_destroy(c);

    /* A zero budget caches nothing. */
    c = hp_tile_cache_create(0);
    hp_tile_cache_put(c, "a", tile, 1, "\"a\"");
    CHECK(!has(c, "a"));
    hp_tile_cache_destroy(c);
    hp_tile_cache_destroy(NULL);

    /* Threads: the budget holds throughout (run under the sanitizer build for races). */
    c = hp_tile_cache_create(5000);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, c);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    hp_tile_cache_stats(c, &entries, &bytes, &hits, &misses);
    CHECK_MSG(bytes <= 5000 && entries > 0 && hits > 0, "%zu bytes in %zu entries", bytes, entries);
    hp_tile_cache_destroy(c);
    if (hp_test_failures)
        fprintf(stderr, "%d check(s) failed\n", hp_test_failures);
    return hp_test_failures ? 1 : 0;
}
