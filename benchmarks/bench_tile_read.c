/* Tile reading throughput of histoplan's loader, for benchmarks/bench_tile_read.py (not a test).
 *
 *   bench_tile_read SLIDE [--target MPP] [--tile N] [--threads T] [--batch B] [--depth D]
 *                   [--max-tiles N] [--reader auto|openslide|plain] [--tiles-out FILE]
 *                   [--dump-tile K FILE]
 *
 * Builds the grid over the whole slide (no tissue mask: every tile, so a peer can read the very
 * same list), runs the loader to the end and prints one JSON line: tiles, wall seconds, tiles/s
 * and the readers' time split. --tiles-out writes the tile list (level x0 y0 read_w read_h tile,
 * one line each) for the peer; --dump-tile writes kept tile K's bytes (tile x tile x 3) so the
 * peer can check it computed the same pixels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "io/slide.h"
#include "pipeline/tile_grid.h"
#include "pipeline/tile_loader.h"

/* CPU seconds of the whole process (all threads): less sensitive than wall time to other work on
 * a shared machine. */
static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *tiles_out = NULL, *dump_path = NULL, *reader = "auto";
    double target = 0.5;
    int tile = 224, threads = 1, batch = 32, depth = 4;
    long long max_tiles = 0, dump_k = -1;
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a];
        int more = a + 1 < argc;
        if (!strcmp(o, "--target") && more)
            target = atof(argv[++a]);
        else if (!strcmp(o, "--tile") && more)
            tile = atoi(argv[++a]);
        else if (!strcmp(o, "--threads") && more)
            threads = atoi(argv[++a]);
        else if (!strcmp(o, "--batch") && more)
            batch = atoi(argv[++a]);
        else if (!strcmp(o, "--depth") && more)
            depth = atoi(argv[++a]);
        else if (!strcmp(o, "--max-tiles") && more)
            max_tiles = atoll(argv[++a]);
        else if (!strcmp(o, "--reader") && more)
            reader = argv[++a];
        else if (!strcmp(o, "--tiles-out") && more)
            tiles_out = argv[++a];
        else if (!strcmp(o, "--dump-tile") && a + 2 < argc) {
            dump_k = atoll(argv[++a]);
            dump_path = argv[++a];
        } else if (o[0] != '-' && !path)
            path = o;
        else {
            fprintf(stderr, "bench_tile_read: bad argument '%s' (see the comment at the top of "
                            "benchmarks/bench_tile_read.c)\n", o);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: bench_tile_read SLIDE [options]\n");
        return 2;
    }
    hp_slide_options so = {0};
    so.reader = !strcmp(reader, "plain")       ? HP_SLIDE_READER_PLAIN
                : !strcmp(reader, "openslide") ? HP_SLIDE_READER_OPENSLIDE
                                               : HP_SLIDE_READER_AUTO;
    hp_error err = {0};
    hp_slide *s = hp_slide_open(path, &so, &err);
    if (!s) {
        fprintf(stderr, "bench_tile_read: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    hp_tile_grid *g = NULL;
    hp_tile_loader *l = NULL;
    hp_tile_geometry geo;
    hp_tile_grid_options go;
    hp_tile_grid_options_init(&go);
    go.target_mpp = target;
    go.tile_size = tile;
    if (hp_tile_geometry_from_slide(s, &geo, &err) != HP_OK ||
        hp_tile_grid_create(&geo, NULL, &go, &g, &err) != HP_OK) {
        fprintf(stderr, "bench_tile_read: %s\n", err.msg);
        goto done;
    }
    if (max_tiles > 0 && max_tiles < g->n_tiles)
        g->n_tiles = max_tiles; /* a prefix of the row-major list */
    if (tiles_out) {
        FILE *f = fopen(tiles_out, "w");
        if (!f) {
            perror(tiles_out);
            goto done;
        }
        for (int64_t k = 0; k < g->n_tiles; k++)
            fprintf(f, "%d %lld %lld %d %d %d\n", g->level, (long long)g->tiles[k].x0,
                    (long long)g->tiles[k].y0, g->read_w, g->read_h, g->tile_size);
        fclose(f);
    }

    double t0 = now(), c0 = cpu_seconds();
    if (hp_tile_loader_create(s, g, batch, threads, depth, NULL, &l, &err) != HP_OK) {
        fprintf(stderr, "bench_tile_read: %s\n", err.msg);
        goto done;
    }
    size_t tb = (size_t)tile * tile * 3;
    uint64_t digest = 1469598103934665603ull; /* FNV-1a over a few bytes per tile: keeps the
                                               * consumer honest without costing much */
    for (;;) {
        hp_tile_batch *b = NULL;
        if (hp_tile_loader_next(l, &b) != HP_OK) {
            fprintf(stderr, "bench_tile_read: %s\n", hp_tile_loader_error(l));
            goto done;
        }
        if (!b)
            break;
        for (int k = 0; k < b->count; k++) {
            const uint8_t *p = b->rgb + tb * k;
            for (size_t z = 0; z < tb; z += 4099)
                digest = (digest ^ p[z]) * 1099511628211ull;
            if (dump_path && b->first + k == dump_k) {
                FILE *f = fopen(dump_path, "wb");
                if (!f || fwrite(p, 1, tb, f) != tb) {
                    perror(dump_path);
                    if (f)
                        fclose(f);
                    goto done;
                }
                fclose(f);
            }
        }
        hp_tile_loader_release(l, b);
    }
    double wall = now() - t0, cpu = cpu_seconds() - c0;
    hp_tile_loader_stats st;
    hp_tile_loader_stats_get(l, &st, NULL);
    printf("{\"tiles\": %lld, \"threads\": %d, \"batch\": %d, \"depth\": %d, \"level\": %d, "
           "\"read_w\": %d, \"read_h\": %d, \"tile\": %d, \"reader\": \"%s\", \"format\": \"%s\", "
           "\"wall_s\": %.6f, \"cpu_s\": %.6f, \"tiles_per_s\": %.3f, \"read_s\": %.6f, \"resample_s\": %.6f, "
           "\"consumer_wait_s\": %.6f, \"digest\": \"%016llx\"}\n",
           (long long)g->n_tiles, st.n_threads, batch, depth, g->level, g->read_w, g->read_h,
           g->tile_size, reader, hp_slide_format(s), wall, cpu, g->n_tiles / wall,
           st.total.read_seconds, st.total.resample_seconds, st.wait_seconds,
           (unsigned long long)digest);
    rc = 0;

done:
    hp_tile_loader_destroy(l);
    hp_tile_grid_destroy(g);
    hp_slide_close(s);
    return rc;
}
