/* `histoplan slide info|region|thumbnail`: inspect a slide, cut a region, make a thumbnail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "io/image.h"
#include "io/slide.h"
#include "pipeline/upscale.h"

typedef struct {
    const char *cmd; /* "slide info", ...: the prefix of messages */
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
            "  -o, --out F.png\n"
            "                 where to write the PNG\n"
            "  --reader R     auto (default), openslide or plain\n"
            "\n"
            "  A slide with tiles missing from a level's tile index, or claiming far more pixels\n"
            "  than its bytes can hold, is refused by region and thumbnail; info describes it\n"
            "  (each level's missing tiles) and exits 1.\n"
            "\n"
            "exit status: 0 ok, 1 failed, 2 bad usage\n");
}

/* Returns 1 ok, 0 bad usage (message printed), -1 --help printed. */
static int parse_args(int argc, char **argv, const char *command, slide_args *a)
{
    enum { O_MPP = 1, O_JSON, O_LEVEL, O_X, O_Y, O_W, O_H, O_MAX, O_OUT, O_READER };
    static const hp_cli_option opts[] = {
        {"mpp", 0, 1, O_MPP}, {"json", 0, 0, O_JSON}, {"level", 0, 1, O_LEVEL}, {"x", 0, 1, O_X},
        {"y", 0, 1, O_Y},     {"w", 0, 1, O_W},       {"h", 0, 1, O_H},         {"max", 0, 1, O_MAX},
        {"out", 'o', 1, O_OUT}, {"reader", 0, 1, O_READER}, {0},
    };
    static const char *const readers[] = {"auto", "openslide", "plain", NULL};
    static const hp_slide_reader reader_ids[] = {HP_SLIDE_READER_AUTO, HP_SLIDE_READER_OPENSLIDE,
                                                 HP_SLIDE_READER_PLAIN};
    const long long big = 1LL << 40;
    a->max = 1024;
    hp_cli_parser p;
    hp_cli_parser_init(&p, command, "slide", opts, argc, argv);
    int c, k;
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        int bad = 0;
        switch (c) {
        case O_MPP: bad = hp_cli_double_value(&p, HP_SLIDE_MPP_MIN, HP_SLIDE_MPP_MAX, &a->so.mpp); break;
        case O_JSON: a->json = 1; break;
        case O_LEVEL: bad = hp_cli_int_value(&p, 0, 1000, &a->level), a->have_level = 1; break;
        case O_X: bad = hp_cli_int_value(&p, -big, big, &a->x), a->have_x = 1; break;
        case O_Y: bad = hp_cli_int_value(&p, -big, big, &a->y), a->have_y = 1; break;
        case O_W: bad = hp_cli_int_value(&p, 1, HP_IMAGE_MAX_PIXELS, &a->w), a->have_w = 1; break;
        case O_H: bad = hp_cli_int_value(&p, 1, HP_IMAGE_MAX_PIXELS, &a->h), a->have_h = 1; break;
        case O_MAX: bad = hp_cli_int_value(&p, 1, 65536, &a->max); break;
        case O_OUT: a->out = p.value; break;
        case O_READER:
            if ((k = hp_cli_choice_value(&p, readers)) < 0)
                return 0;
            a->so.reader = reader_ids[k];
            break;
        case HP_CLI_HELP: slide_usage(stdout); return -1;
        case HP_CLI_ARG:
            if (a->slide) {
                hp_cli_usage_error(&p, "unexpected argument '%s' (one slide at a time)", p.value);
                return 0;
            }
            a->slide = p.value;
            break;
        default: return 0;
        }
        if (bad)
            return 0;
    }
    if (!a->slide) {
        hp_cli_usage_error(&p, "no slide file given");
        return 0;
    }
    return 1;
}

static hp_slide *open_slide(const slide_args *a)
{
    hp_error err = {0};
    hp_slide *s = hp_slide_open(a->slide, &a->so, &err);
    if (!s)
        hp_cli_fail_path(a->cmd, a->slide, err.msg);
    return s;
}

/* What `slide info` reports, gathered once for either form. */
typedef struct {
    const slide_args *a;
    hp_slide *s;
    double mx, my;
    hp_mpp_source src;
    char mpp_err[HP_ERROR_MSG_MAX];
    int levels, associated;
    hp_upscale_provenance sr;
    int derived;
} slide_info;

/* The super-resolution provenance as JSON (null for a scanned slide). */
static void info_json_sr(cJSON *o, const slide_info *si)
{
    if (!si->derived) {
        cJSON_AddNullToObject(o, "super_resolved");
        return;
    }
    const hp_upscale_provenance *p = &si->sr;
    cJSON *sr = cJSON_AddObjectToObject(o, "super_resolved");
    const char *names[] = {"scale", "model", "model_sha256", "precision", "source_mpp", "source_sha256", "source_region"};
    const char *values[] = {p->scale, p->model, p->model_sha256, p->precision, p->source_mpp, p->source_sha256,
                            p->source_region};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (values[k])
            cJSON_AddStringToObject(sr, names[k], values[k]);
        else
            cJSON_AddNullToObject(sr, names[k]);
    cJSON_AddBoolToObject(sr, "generative", p->generative);
}

static int info_json(const slide_info *si, int damaged)
{
    hp_slide *s = si->s;
    cJSON *o = cJSON_CreateObject(), *lv = cJSON_CreateArray(), *as = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "file", si->a->slide);
    cJSON_AddStringToObject(o, "format", hp_slide_format(s));
    info_json_sr(o, si);
    for (int l = 0; l < si->levels; l++) {
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
            cJSON_AddNumberToObject(t, "missing_fraction", ix.tiles ? (double)ix.missing / (double)ix.tiles : 0);
            cJSON_AddNumberToObject(t, "sparse", (double)ix.sparse);
            cJSON_AddNumberToObject(t, "data_bytes", (double)ix.data_bytes);
            cJSON_AddBoolToObject(t, "damaged", ix.damaged);
            if (ix.damaged)
                cJSON_AddStringToObject(t, "error", ix.why);
        }
        cJSON_AddItemToArray(lv, e);
    }
    cJSON_AddItemToObject(o, "levels", lv);
    cJSON_AddBoolToObject(o, "damaged", damaged);
    if (si->src != HP_MPP_NONE) {
        cJSON_AddNumberToObject(o, "mpp_x", si->mx);
        cJSON_AddNumberToObject(o, "mpp_y", si->my);
    } else {
        cJSON_AddNullToObject(o, "mpp_x");
        cJSON_AddNullToObject(o, "mpp_y");
        cJSON_AddStringToObject(o, "mpp_error", si->mpp_err);
    }
    cJSON_AddStringToObject(o, "mpp_source", hp_mpp_source_name(si->src));
    cJSON_AddNumberToObject(o, "objective_power", hp_slide_objective_power(s));
    for (int i = 0; i < si->associated; i++) {
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
    free(txt);
    cJSON_Delete(o);
    return txt ? 0 : -1;
}

/* First, where the reader looks: a super-resolved file is not the scanned image. */
static void info_text_sr(const slide_info *si)
{
    if (!si->derived)
        return;
    const hp_upscale_provenance *p = &si->sr;
    printf("SUPER-RESOLVED: not the scanned image: x%s by %s (model SHA-256 %.16s...%s%s) from a scan at %s um/px%s\n",
           p->scale ? p->scale : "?", p->model ? p->model : "a model whose name was removed",
           p->model_sha256 ? p->model_sha256 : "unknown", p->precision ? ", " : "", p->precision ? p->precision : "",
           p->source_mpp ? p->source_mpp : "?",
           p->generative ? "; GENERATIVE: the model may invent texture" : "");
}

static void info_text(const slide_info *si)
{
    hp_slide *s = si->s;
    printf("file: %s\n", si->a->slide);
    info_text_sr(si);
    printf("format: %s\nlevels: %d\n", hp_slide_format(s), si->levels);
    for (int l = 0; l < si->levels; l++) {
        int64_t w = 0, h = 0;
        hp_slide_level_dimensions(s, l, &w, &h);
        printf("  level %d: %lld x %lld, downsample %g\n", l, (long long)w, (long long)h,
               hp_slide_level_downsample(s, l));
        hp_slide_index ix;
        if (hp_slide_level_index(s, l, &ix) == HP_OK && ix.damaged)
            printf("    DAMAGED: %s\n", ix.why);
    }
    if (si->src != HP_MPP_NONE)
        printf("microns per pixel: %g x %g (%s)\n", si->mx, si->my, hp_mpp_source_name(si->src));
    else
        printf("microns per pixel: unknown: %s\n", si->mpp_err);
    double obj = hp_slide_objective_power(s);
    if (obj > 0)
        printf("objective power: %gx%s\n", obj, si->derived ? " (of the super-resolved image, not the scan)" : "");
    else
        printf("objective power: unknown\n");
    printf("associated images:%s", si->associated ? "" : " none");
    for (int i = 0; i < si->associated; i++) {
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

static int cmd_info(const slide_args *a)
{
    /* info describes a damaged slide instead of refusing it: which levels, how much is missing. */
    slide_args ia = *a;
    ia.so.inspect = 1;
    slide_info si = {.a = a, .src = HP_MPP_NONE};
    if (!(si.s = open_slide(&ia)))
        return HP_EXIT_FAILED;
    if (hp_slide_mpp(si.s, &si.mx, &si.my, &si.src))
        snprintf(si.mpp_err, sizeof si.mpp_err, "%s", hp_slide_error(si.s));
    si.levels = hp_slide_level_count(si.s);
    si.associated = hp_slide_associated_count(si.s);
    si.derived = hp_upscale_provenance_of(si.s, &si.sr);
    /* A damaged slide is described, and the exit status says it cannot be used. */
    int rc = HP_EXIT_OK;
    for (int l = 0; l < si.levels; l++) {
        hp_slide_index ix;
        if (hp_slide_level_index(si.s, l, &ix) == HP_OK && ix.damaged) {
            if (a->json)
                hp_cli_fail_path(a->cmd, a->slide, ix.why);
            rc = HP_EXIT_FAILED;
        }
    }
    if (a->json) {
        if (info_json(&si, rc != HP_EXIT_OK))
            rc = HP_EXIT_FAILED;
    } else {
        info_text(&si);
    }
    hp_slide_close(si.s);
    return rc;
}

static int cmd_region(const slide_args *a)
{
    if (!a->have_level || !a->have_x || !a->have_y || !a->have_w || !a->have_h || !a->out)
        return hp_cli_usage_error_for(a->cmd, "slide", "slide region needs --level, --x, --y, --w, --h and --out");
    if (a->w * a->h > HP_IMAGE_MAX_PIXELS)
        return hp_cli_usage_error_for(a->cmd, "slide", "--w times --h must be at most %lld pixels",
                                      HP_IMAGE_MAX_PIXELS);
    int rc;
    if ((rc = hp_cli_refuse_dir_output(a->cmd, "--out", a->out, "the PNG file")))
        return rc;
    hp_slide *s = open_slide(a);
    if (!s)
        return HP_EXIT_FAILED;
    hp_error err = {0};
    rc = HP_EXIT_FAILED;
    uint8_t *px = malloc((size_t)(a->w * a->h * 3));
    if (!px)
        hp_cli_fail(a->cmd, "out of memory for a %lldx%lld region", a->w, a->h);
    else if (hp_slide_read_region(s, (int)a->level, a->x, a->y, (int)a->w, (int)a->h, px))
        hp_cli_fail_path(a->cmd, a->slide, hp_slide_error(s));
    else if (hp_image_write_png(a->out, px, (int)a->w, (int)a->h, &err))
        hp_cli_fail_path(a->cmd, a->out, err.msg);
    else
        rc = HP_EXIT_OK;
    free(px);
    hp_slide_close(s);
    return rc;
}

static int cmd_thumbnail(const slide_args *a)
{
    if (!a->out)
        return hp_cli_usage_error_for(a->cmd, "slide", "slide thumbnail needs --out");
    int rc;
    if ((rc = hp_cli_refuse_dir_output(a->cmd, "--out", a->out, "the PNG file")))
        return rc;
    hp_slide *s = open_slide(a);
    if (!s)
        return HP_EXIT_FAILED;
    hp_error err = {0};
    uint8_t *px = NULL;
    int w = 0, h = 0;
    rc = HP_EXIT_FAILED;
    if (hp_slide_read_thumbnail(s, (int)a->max, &px, &w, &h))
        hp_cli_fail_path(a->cmd, a->slide, hp_slide_error(s));
    else if (hp_image_write_png(a->out, px, w, h, &err))
        hp_cli_fail_path(a->cmd, a->out, err.msg);
    else
        rc = HP_EXIT_OK;
    free(px);
    hp_slide_close(s);
    return rc;
}

int hp_cli_slide(int argc, char **argv)
{
    if (argc < 2)
        return hp_cli_usage_error_for("slide", "slide", "missing subcommand (info, region or thumbnail)");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        slide_usage(stdout);
        return HP_EXIT_OK;
    }
    int (*fn)(const slide_args *) = !strcmp(sub, "info")        ? cmd_info
                                    : !strcmp(sub, "region")    ? cmd_region
                                    : !strcmp(sub, "thumbnail") ? cmd_thumbnail
                                                                : NULL;
    if (!fn)
        return hp_cli_usage_error_for("slide", "slide", "unknown subcommand '%s' (info, region or thumbnail)", sub);
    slide_args a;
    memset(&a, 0, sizeof a);
    char cmd[32];
    snprintf(cmd, sizeof cmd, "slide %s", sub);
    a.cmd = cmd;
    int p = parse_args(argc - 1, argv + 1, cmd, &a);
    if (p < 0)
        return HP_EXIT_OK;
    if (!p)
        return HP_EXIT_USAGE;
    return fn(&a);
}
