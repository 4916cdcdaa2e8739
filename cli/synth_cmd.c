/* `histoplan synth`: writes a synthetic H&E slide and its ground truth (pipeline/synth.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "pipeline/synth.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan synth --out S.tiff --size WxH --seed N [options]\n"
            "\n"
            "Generates a synthetic H&E breast tissue slide (regions of normal, benign, in situ and\n"
            "invasive tissue) as a pyramidal tiled JPEG TIFF that OpenSlide opens as an Aperio slide\n"
            "(with openslide.mpp-x/-y), and its ground truth beside it:\n"
            "  S.truth.png      label mask, 8-bit gray: 0 background, 1 normal, 2 benign,\n"
            "                   3 in situ, 4 invasive; one pixel per truth-scale block\n"
            "  S.truth.geojson  one polygon per region, level-0 pixels, QuPath annotations\n"
            "  S.truth.json     seed, size, MPP, classes, area per class (px and mm2)\n"
            "The same seed, size and MPP always give the same bytes. Memory stays proportional to\n"
            "the width, not the area, so slides up to 500000 px a side can be made.\n"
            "\n"
            "options:\n"
            "  --out PATH          the slide (.tiff/.svs); truth files take its name without extension\n"
            "  --size WxH          level-0 pixels, each side 256..500000\n"
            "  --seed N            0..9007199254740991\n"
            "  --mpp X             micrometres per pixel, 0.05..20 (default 0.25, like a 40x scan)\n"
            "  --tile N            TIFF tile side, a multiple of 16 in 64..2048 (default 256)\n"
            "  --quality Q         JPEG quality 1..100 (default 90)\n"
            "  --truth-scale S     label mask downscale, 1..4096 (default 64)\n"
            "  --threads N         rendering threads (default: all CPUs; output does not change)\n"
            "  --overwrite         replace the slide and truth files if they exist (else refused)\n"
            "  --help              this text\n"
            "\n"
            "exit status: 0 written, 1 failed, 2 bad usage\n");
}

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void on_progress(void *user, long done, long total)
{
    hp_progress *p = user;
    if (p->total != total)
        p->total = total;
    hp_progress_update(p, done);
}

int hp_cli_synth(int argc, char **argv)
{
    const char *out = NULL, *size = NULL, *seed = NULL;
    int overwrite = 0;
    hp_synth_params p = {.mpp = 0.25};
    hp_synth_write_options o;
    hp_synth_write_options_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return HP_EXIT_OK;
        }
        if (!strcmp(a, "--overwrite")) {
            overwrite = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "histoplan synth: %s needs a value (or is unknown)\n\n", a);
            usage(stderr);
            return HP_EXIT_USAGE;
        }
        const char *v = argv[++i];
        int64_t n;
        if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--size"))
            size = v;
        else if (!strcmp(a, "--seed"))
            seed = v;
        else if (!strcmp(a, "--mpp")) {
            char *end;
            p.mpp = strtod(v, &end);
            if (end == v || *end || !(p.mpp >= 0.05 && p.mpp <= 20)) {
                fprintf(stderr, "histoplan synth: --mpp %s: expected a number in 0.05..20\n", v);
                return HP_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--tile")) {
            if (parse_i64(v, 64, 2048, &n) || n % 16) {
                fprintf(stderr, "histoplan synth: --tile %s: expected a multiple of 16 in 64..2048\n", v);
                return HP_EXIT_USAGE;
            }
            o.tile = (int)n;
        } else if (!strcmp(a, "--quality")) {
            if (parse_i64(v, 1, 100, &n)) {
                fprintf(stderr, "histoplan synth: --quality %s: expected 1..100\n", v);
                return HP_EXIT_USAGE;
            }
            o.quality = (int)n;
        } else if (!strcmp(a, "--truth-scale")) {
            if (parse_i64(v, 1, 4096, &n)) {
                fprintf(stderr, "histoplan synth: --truth-scale %s: expected 1..4096\n", v);
                return HP_EXIT_USAGE;
            }
            o.truth_scale = (int)n;
        } else if (!strcmp(a, "--threads")) {
            if (parse_i64(v, 1, 64, &n)) {
                fprintf(stderr, "histoplan synth: --threads %s: expected 1..64\n", v);
                return HP_EXIT_USAGE;
            }
            o.threads = (int)n;
        } else {
            fprintf(stderr, "histoplan synth: unknown option %s\n\n", a);
            usage(stderr);
            return HP_EXIT_USAGE;
        }
    }
    if (!out || !size || !seed) {
        fprintf(stderr, "histoplan synth: --out, --size and --seed are required\n\n");
        usage(stderr);
        return HP_EXIT_USAGE;
    }
    long long w, h;
    char tail;
    if (sscanf(size, "%lldx%lld%c", &w, &h, &tail) != 2 || w < HP_SYNTH_MIN_SIDE ||
        h < HP_SYNTH_MIN_SIDE || w > HP_SYNTH_MAX_SIDE || h > HP_SYNTH_MAX_SIDE) {
        fprintf(stderr, "histoplan synth: --size %s: expected WxH with each side in %d..%d\n", size,
                HP_SYNTH_MIN_SIDE, HP_SYNTH_MAX_SIDE);
        return HP_EXIT_USAGE;
    }
    int64_t sd;
    if (parse_i64(seed, 0, 9007199254740991ll, &sd)) {
        fprintf(stderr, "histoplan synth: --seed %s: expected an integer in 0..2^53-1\n", seed);
        return HP_EXIT_USAGE;
    }
    p.width = w;
    p.height = h;
    p.seed = (uint64_t)sd;

    /* The slide and its truth are written together: any of them already there (a slide of a
     * study, a ground truth someone annotated) is refused unless --overwrite says to replace it. */
    if (!overwrite) {
        static const char *const suffixes[] = {NULL, ".truth.png", ".truth.geojson", ".truth.json"};
        for (int k = 0; k < 4; k++) {
            char *path = suffixes[k] ? hp_synth_truth_path(out, suffixes[k]) : strdup(out);
            struct stat st;
            int there = path && lstat(path, &st) == 0;
            if (there)
                fprintf(stderr, "histoplan synth: %s exists; give --overwrite to replace it (and the slide's "
                                "other files)\n", path);
            free(path);
            if (there)
                return HP_EXIT_FAILED;
        }
    }

    /* JPEG at quality 90 on this tissue runs near 1.5 bits per pixel; the pyramid adds ~7%. */
    double est_gb = (double)w * h * (1.5 / 8) * 1.07 * (o.quality / 90.0) / 1e9;
    if (est_gb > 10)
        fprintf(stderr, "histoplan synth: %s will be about %.0f GB\n", out, est_gb);

    hp_error err = {0};
    hp_synth *s = NULL;
    if (hp_synth_create(&p, &s, &err)) {
        fprintf(stderr, "histoplan synth: %s\n", err.msg);
        return HP_EXIT_USAGE;
    }
    hp_progress prog;
    hp_progress_start(&prog, "synth", (long)((h + o.tile - 1) / o.tile));
    o.progress = on_progress;
    o.progress_user = &prog;
    double t0 = hp_now_seconds();
    hp_status st = hp_synth_write(s, out, &o, &err);
    double dt = hp_now_seconds() - t0;
    hp_progress_finish(&prog);
    hp_synth_destroy(s);
    if (st) {
        fprintf(stderr, "histoplan synth: %s\n", err.msg);
        return HP_EXIT_FAILED;
    }
    printf("wrote %s (%lldx%lld, %.3g um/px, seed %" PRId64 ") and its ground truth in %.1f s, "
           "%.1f megapixels/s\n",
           out, w, h, p.mpp, sd, dt, (double)w * h / 1e6 / (dt > 0 ? dt : 1e-9));
    return HP_EXIT_OK;
}
