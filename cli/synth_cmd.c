/* `histoplan synth`: writes a synthetic H&E slide and its ground truth (pipeline/synth.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/options.h"
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
            "  -o, --out PATH      the slide (.tiff/.svs); truth files take its name without extension\n"
            "  --size WxH          level-0 pixels, each side 256..500000\n"
            "  --seed N            0..9007199254740991\n"
            "  --mpp X             micrometres per pixel, 0.05..20 (default 0.25, like a 40x scan)\n"
            "  --tile N            TIFF tile side, a multiple of 16 in 64..2048 (default 256)\n"
            "  --quality Q         JPEG quality 1..100 (default 90)\n"
            "  --truth-scale S     label mask downscale, 1..4096 (default 64)\n"
            "  -j, --threads N     rendering threads (default: all CPUs; output does not change)\n"
            "  --overwrite         replace the slide and truth files if they exist (else refused)\n"
            "  -h, --help          this text\n"
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
    enum { O_OUT = 1, O_SIZE, O_SEED, O_MPP, O_TILE, O_QUALITY, O_TRUTH_SCALE, O_THREADS, O_OVERWRITE };
    static const hp_cli_option opts[] = {
        {"out", 'o', 1, O_OUT},         {"size", 0, 1, O_SIZE},
        {"seed", 0, 1, O_SEED},         {"mpp", 0, 1, O_MPP},
        {"tile", 0, 1, O_TILE},         {"quality", 0, 1, O_QUALITY},
        {"truth-scale", 0, 1, O_TRUTH_SCALE}, {"threads", 'j', 1, O_THREADS},
        {"overwrite", 0, 0, O_OVERWRITE}, {0},
    };
    hp_cli_parser ps;
    hp_cli_parser_init(&ps, "synth", "synth", opts, argc, argv);
    int c;
    long long n;
    while ((c = hp_cli_next(&ps)) != HP_CLI_END) {
        switch (c) {
        case O_OUT: out = ps.value; break;
        case O_SIZE: size = ps.value; break;
        case O_SEED: seed = ps.value; break;
        case O_OVERWRITE: overwrite = 1; break;
        case O_MPP:
            if (hp_cli_double_value(&ps, 0.05, 20, &p.mpp))
                return HP_EXIT_USAGE;
            break;
        case O_TILE:
            if (hp_cli_int_value(&ps, 64, 2048, &n))
                return HP_EXIT_USAGE;
            if (n % 16)
                return hp_cli_usage_error(&ps, "--tile must be a multiple of 16 in 64..2048, not '%s'", ps.value);
            o.tile = (int)n;
            break;
        case O_QUALITY:
            if (hp_cli_int_value(&ps, 1, 100, &n))
                return HP_EXIT_USAGE;
            o.quality = (int)n;
            break;
        case O_TRUTH_SCALE:
            if (hp_cli_int_value(&ps, 1, 4096, &n))
                return HP_EXIT_USAGE;
            o.truth_scale = (int)n;
            break;
        case O_THREADS:
            if (hp_cli_int_value(&ps, 1, 64, &n))
                return HP_EXIT_USAGE;
            o.threads = (int)n;
            break;
        case HP_CLI_HELP: usage(stdout); return HP_EXIT_OK;
        case HP_CLI_ARG:
            return hp_cli_usage_error(&ps, "unexpected argument '%s' (the slide is --out PATH)", ps.value);
        default: return HP_EXIT_USAGE;
        }
    }
    if (!out || !size || !seed)
        return hp_cli_usage_error(&ps, "--out, --size and --seed are required");
    int rc;
    if ((rc = hp_cli_refuse_dir_output("synth", "--out", out, "the slide file")))
        return rc;
    long long w, h;
    char tail;
    if (sscanf(size, "%lldx%lld%c", &w, &h, &tail) != 2 || w < HP_SYNTH_MIN_SIDE ||
        h < HP_SYNTH_MIN_SIDE || w > HP_SYNTH_MAX_SIDE || h > HP_SYNTH_MAX_SIDE) {
        return hp_cli_usage_error(&ps, "--size must be WxH with each side in %d..%d, not '%s'", HP_SYNTH_MIN_SIDE,
                                  HP_SYNTH_MAX_SIDE, size);
    }
    int64_t sd;
    if (parse_i64(seed, 0, 9007199254740991ll, &sd)) {
        return hp_cli_usage_error(&ps, "--seed must be an integer in 0..2^53-1, not '%s'", seed);
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
    if (hp_synth_create(&p, &s, &err))
        return hp_cli_usage_error(&ps, "%s", err.msg);
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
        hp_cli_fail_path("synth", out, err.msg);
        return HP_EXIT_FAILED;
    }
    printf("wrote %s (%lldx%lld, %.3g um/px, seed %" PRId64 ") and its ground truth in %.1f s, "
           "%.1f megapixels/s\n",
           out, w, h, p.mpp, sd, dt, (double)w * h / 1e6 / (dt > 0 ? dt : 1e-9));
    return HP_EXIT_OK;
}
