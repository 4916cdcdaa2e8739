/* `histoplan slide info|region|thumbnail`: inspect a slide, cut a region, make a thumbnail. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "io/image.h"
#include "io/slide.h"

typedef struct {
    const char *slide, *out;
    hp_slide_options so;
    long long level, x, y, w, h, max;
    int have_level, have_x, have_y, have_w, have_h;
    int json;
} slide_args;

static void slide_usage(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  histoplan slide info SLIDE [--mpp X] [--json]\n"
            "  histoplan slide region SLIDE --level L --x X --y Y --w W --h H --out R.png\n"
            "  histoplan slide thumbnail SLIDE [--max N] --out T.png\n"
            "\n"
            "  SLIDE          anything OpenSlide opens (SVS, NDPI, MRXS, SCN, BIF, VMS, tiled TIFF, ...)\n"
            "                 or a plain TIFF, PNG or JPEG image (one level)\n"
            "  --mpp X        microns per pixel at level 0, overriding the slide's metadata\n"
            "  --json         info: one JSON object\n"
            "  --level L      pyramid level (0 = full resolution)\n"
            "  --x X --y Y    top-left corner in level-0 pixels (as OpenSlide); may be negative\n"
            "  --w W --h H    region size in pixels of level L; outside the slide reads white\n"
            "  --max N        thumbnail: longer side in pixels (default 1024)\n"
            "  --out F.png    where to write the PNG\n"
            "  --reader R     auto (default), openslide or plain\n"
            "\n"
            "  A slide with tiles missing from a level's tile index, or claiming far more pixels\n"
            "  than its bytes can hold, is refused by region and thumbnail; info describes it\n"
            "  (each level's missing tiles) and exits 1.\n"
            "\n"
            "exit status: 0 ok, 1 failed, 2 bad usage\n");
}

static int parse_ll(const char *s, long long *v)
{
    char *end;
    *v = strtoll(s, &end, 10);
    return end != s && *end == '\0';
}

/* Returns 1 ok, 0 bad usage (message printed), -1 --help printed. */
static int parse_args(int argc, char **argv, slide_args *a)
{
    static const struct option opts[] = {
        {"mpp", required_argument, 0, 'm'},   {"json", no_argument, 0, 'j'},
        {"level", required_argument, 0, 'l'}, {"x", required_argument, 0, 'x'},
        {"y", required_argument, 0, 'y'},     {"w", required_argument, 0, 'w'},
        {"h", required_argument, 0, 'H'},     {"max", required_argument, 0, 'M'},
        {"out", required_argument, 0, 'o'},   {"reader", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    a->max = 1024;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        int ok = 1;
        switch (c) {
        case 'm': {
            char *end;
            a->so.mpp = strtod(optarg, &end);
            ok = end != optarg && *end == '\0' && a->so.mpp > 0 && isfinite(a->so.mpp);
            break;
        }
        case 'j': a->json = 1; break;
        case 'l': ok = parse_ll(optarg, &a->level), a->have_level = 1; break;
        case 'x': ok = parse_ll(optarg, &a->x), a->have_x = 1; break;
        case 'y': ok = parse_ll(optarg, &a->y), a->have_y = 1; break;
        case 'w': ok = parse_ll(optarg, &a->w), a->have_w = 1; break;
        case 'H': ok = parse_ll(optarg, &a->h), a->have_h = 1; break;
        case 'M': ok = parse_ll(optarg, &a->max); break;
        case 'o': a->out = optarg; break;
        case 'r':
            if (!strcmp(optarg, "auto"))
                a->so.reader = HP_SLIDE_READER_AUTO;
            else if (!strcmp(optarg, "openslide"))
                a->so.reader = HP_SLIDE_READER_OPENSLIDE;
            else if (!strcmp(optarg, "plain"))
                a->so.reader = HP_SLIDE_READER_PLAIN;
            else
                ok = 0;
            break;
        case 'h': slide_usage(stdout); return -1;
        default: return 0;
        }
        if (!ok) {
            fprintf(stderr, "histoplan: bad value '%s' for an option\n", optarg);
            return 0;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "histoplan: no slide file given\n");
        return 0;
    }
    a->slide = argv[optind];
    if (optind + 1 < argc) {
        fprintf(stderr, "histoplan: unexpected argument '%s'\n", argv[optind + 1]);
        return 0;
    }
    return 1;
}

static hp_slide *open_slide(const slide_args *a)
{
    hp_error err = {0};
    hp_slide *s = hp_slide_open(a->slide, &a->so, &err);
    if (!s)
        fprintf(stderr, "histoplan: %s\n", err.msg);
    return s;
}

static int cmd_info(const slide_args *a)
{
    /* info describes a damaged slide instead of refusing it: which levels, how much is missing. */
    slide_args ia = *a;
    ia.so.inspect = 1;
    hp_slide *s = open_slide(&ia);
    if (!s)
        return HP_EXIT_FAILED;
    double mx = 0, my = 0;
    hp_mpp_source src = HP_MPP_NONE;
    char mpp_err[HP_ERROR_MSG_MAX] = "";
    if (hp_slide_mpp(s, &mx, &my, &src))
        snprintf(mpp_err, sizeof mpp_err, "%s", hp_slide_error(s));
    int n = hp_slide_level_count(s), na = hp_slide_associated_count(s);
    int rc = HP_EXIT_OK;
    /* A damaged slide is described, and the exit status says it cannot be used. */
    for (int l = 0; l < n; l++) {
        hp_slide_index ix;
        if (hp_slide_level_index(s, l, &ix) == HP_OK && ix.damaged) {
            if (a->json)
                fprintf(stderr, "histoplan: %s\n", ix.why);
            rc = HP_EXIT_FAILED;
        }
    }

    if (a->json) {
        cJSON *o = cJSON_CreateObject(), *lv = cJSON_CreateArray(), *as = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "file", a->slide);
        cJSON_AddStringToObject(o, "format", hp_slide_format(s));
        for (int l = 0; l < n; l++) {
            int64_t w = 0, h = 0;
            hp_slide_level_dimensions(s, l, &w, &h);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "width", (double)w);
            cJSON_AddNumberToObject(e, "height", (double)h);
            cJSON_AddNumberToObject(e, "downsample", hp_slide_level_downsample(s, l));
            hp_slide_index ix;
            if (hp_slide_level_index(s, l, &ix) == HP_OK && ix.checked) {
                cJSON *t = cJSON_AddObjectToObject(e, "tile_index");
                cJSON_AddNumberToObject(t, "tiles", (double)ix.tiles);
                cJSON_AddNumberToObject(t, "missing", (double)ix.missing);
                cJSON_AddNumberToObject(t, "missing_fraction",
                                        ix.tiles ? (double)ix.missing / (double)ix.tiles : 0);
                cJSON_AddNumberToObject(t, "sparse", (double)ix.sparse);
                cJSON_AddNumberToObject(t, "data_bytes", (double)ix.data_bytes);
                cJSON_AddBoolToObject(t, "damaged", ix.damaged);
                if (ix.damaged)
                    cJSON_AddStringToObject(t, "error", ix.why);
            }
            cJSON_AddItemToArray(lv, e);
        }
        cJSON_AddItemToObject(o, "levels", lv);
        cJSON_AddBoolToObject(o, "damaged", rc != HP_EXIT_OK);
        if (src != HP_MPP_NONE) {
            cJSON_AddNumberToObject(o, "mpp_x", mx);
            cJSON_AddNumberToObject(o, "mpp_y", my);
        } else {
            cJSON_AddNullToObject(o, "mpp_x");
            cJSON_AddNullToObject(o, "mpp_y");
            cJSON_AddStringToObject(o, "mpp_error", mpp_err);
        }
        cJSON_AddStringToObject(o, "mpp_source", hp_mpp_source_name(src));
        cJSON_AddNumberToObject(o, "objective_power", hp_slide_objective_power(s));
        for (int i = 0; i < na; i++) {
            const char *name = hp_slide_associated_name(s, i);
            uint8_t *px = NULL;
            int w = 0, h = 0;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", name);
            if (hp_slide_read_associated(s, name, &px, &w, &h) == HP_OK) {
                cJSON_AddNumberToObject(e, "width", w);
                cJSON_AddNumberToObject(e, "height", h);
            }
            free(px);
            cJSON_AddItemToArray(as, e);
        }
        cJSON_AddItemToObject(o, "associated_images", as);
        if (*hp_slide_warning(s))
            cJSON_AddStringToObject(o, "warning", hp_slide_warning(s));
        char *txt = cJSON_PrintUnformatted(o);
        if (txt)
            printf("%s\n", txt);
        else
            rc = HP_EXIT_FAILED;
        free(txt);
        cJSON_Delete(o);
    } else {
        printf("file: %s\nformat: %s\nlevels: %d\n", a->slide, hp_slide_format(s), n);
        for (int l = 0; l < n; l++) {
            int64_t w = 0, h = 0;
            hp_slide_level_dimensions(s, l, &w, &h);
            printf("  level %d: %lld x %lld, downsample %g\n", l, (long long)w, (long long)h,
                   hp_slide_level_downsample(s, l));
            hp_slide_index ix;
            if (hp_slide_level_index(s, l, &ix) == HP_OK && ix.damaged)
                printf("    DAMAGED: %s\n", ix.why);
        }
        if (src != HP_MPP_NONE)
            printf("microns per pixel: %g x %g (%s)\n", mx, my, hp_mpp_source_name(src));
        else
            printf("microns per pixel: unknown: %s\n", mpp_err);
        double obj = hp_slide_objective_power(s);
        if (obj > 0)
            printf("objective power: %gx\n", obj);
        else
            printf("objective power: unknown\n");
        printf("associated images:%s", na ? "" : " none");
        for (int i = 0; i < na; i++) {
            const char *name = hp_slide_associated_name(s, i);
            uint8_t *px = NULL;
            int w = 0, h = 0;
            if (hp_slide_read_associated(s, name, &px, &w, &h) == HP_OK)
                printf(" %s (%dx%d)", name, w, h);
            else
                printf(" %s (unreadable)", name);
            free(px);
        }
        printf("\n");
        if (*hp_slide_warning(s))
            printf("warning: %s\n", hp_slide_warning(s));
    }
    hp_slide_close(s);
    return rc;
}

static int cmd_region(const slide_args *a)
{
    if (!a->have_level || !a->have_x || !a->have_y || !a->have_w || !a->have_h || !a->out) {
        fprintf(stderr, "histoplan: slide region needs --level, --x, --y, --w, --h and --out\n");
        return HP_EXIT_USAGE;
    }
    if (a->level < 0 || a->level > 1000) {
        fprintf(stderr, "histoplan: --level must be 0 or more\n");
        return HP_EXIT_USAGE;
    }
    if (a->w < 1 || a->h < 1 || a->w > HP_IMAGE_MAX_PIXELS || a->h > HP_IMAGE_MAX_PIXELS ||
        a->w * a->h > HP_IMAGE_MAX_PIXELS) {
        fprintf(stderr, "histoplan: --w and --h must be at least 1 and at most %lld pixels together\n",
                HP_IMAGE_MAX_PIXELS);
        return HP_EXIT_USAGE;
    }
    hp_slide *s = open_slide(a);
    if (!s)
        return HP_EXIT_FAILED;
    hp_error err = {0};
    int rc = HP_EXIT_FAILED;
    uint8_t *px = malloc((size_t)(a->w * a->h * 3));
    if (!px)
        fprintf(stderr, "histoplan: out of memory for a %lldx%lld region\n", a->w, a->h);
    else if (hp_slide_read_region(s, (int)a->level, a->x, a->y, (int)a->w, (int)a->h, px))
        fprintf(stderr, "histoplan: %s\n", hp_slide_error(s));
    else if (hp_image_write_png(a->out, px, (int)a->w, (int)a->h, &err))
        fprintf(stderr, "histoplan: %s\n", err.msg);
    else
        rc = HP_EXIT_OK;
    free(px);
    hp_slide_close(s);
    return rc;
}

static int cmd_thumbnail(const slide_args *a)
{
    if (!a->out) {
        fprintf(stderr, "histoplan: slide thumbnail needs --out\n");
        return HP_EXIT_USAGE;
    }
    if (a->max < 1 || a->max > 65536) {
        fprintf(stderr, "histoplan: --max must be 1..65536\n");
        return HP_EXIT_USAGE;
    }
    hp_slide *s = open_slide(a);
    if (!s)
        return HP_EXIT_FAILED;
    hp_error err = {0};
    uint8_t *px = NULL;
    int w = 0, h = 0, rc = HP_EXIT_FAILED;
    if (hp_slide_read_thumbnail(s, (int)a->max, &px, &w, &h))
        fprintf(stderr, "histoplan: %s\n", hp_slide_error(s));
    else if (hp_image_write_png(a->out, px, w, h, &err))
        fprintf(stderr, "histoplan: %s\n", err.msg);
    else
        rc = HP_EXIT_OK;
    free(px);
    hp_slide_close(s);
    return rc;
}

int hp_cli_slide(int argc, char **argv)
{
    if (argc < 2) {
        slide_usage(stderr);
        return HP_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        slide_usage(stdout);
        return HP_EXIT_OK;
    }
    int (*fn)(const slide_args *) = !strcmp(sub, "info")        ? cmd_info
                                    : !strcmp(sub, "region")    ? cmd_region
                                    : !strcmp(sub, "thumbnail") ? cmd_thumbnail
                                                                : NULL;
    if (!fn) {
        fprintf(stderr, "histoplan: unknown slide command '%s'\n\n", sub);
        slide_usage(stderr);
        return HP_EXIT_USAGE;
    }
    slide_args a;
    memset(&a, 0, sizeof a);
    int p = parse_args(argc - 1, argv + 1, &a);
    if (p < 0)
        return HP_EXIT_OK;
    if (!p)
        return HP_EXIT_USAGE;
    return fn(&a);
}
