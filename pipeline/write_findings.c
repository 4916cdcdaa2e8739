/* findings.json (pipeline/findings.h; schema schemas/findings.schema.json).
 *
 * The whole document is built and checked in memory before a byte is written, so a bad value
 * leaves no file (not even a temporary) behind, and the file that is written validates against
 * the schema: the checks here mirror its constraints. cJSON prints doubles with up to 17
 * significant digits (it retries with 17 when 15 does not read back), so every number parses back
 * to the same double; it also escapes strings, so names from a model card cannot break the
 * document.
 *
 * Numbers are printed here, not by cJSON: cJSON 1.7.15 prints %.15g whenever that reads back
 * within an epsilon of the value, so 0.1 + 0.2 would come back as 0.3, a different double. The
 * shortest of %.15g, %.16g and %.17g that strtod returns bit-exact is used instead, and integers
 * are printed as integers (exact beyond 2^53). The C locale is assumed for the decimal point, as
 * everywhere in histoplan (nothing calls setlocale). */
#include "pipeline/findings.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/utc_time.h"
#include "io/atomic_file.h"
#include "pipeline/regions.h"
#include "pipeline/tissue.h"

#ifndef HP_VERSION
#define HP_VERSION "0.0.0"
#endif

/* Constraints on a number, as the schema states them. */
enum {
    N_ANY = 0,
    N_NULLABLE = 1 << 0, /* not finite -> null (otherwise not finite is an error) */
    N_NONNEG = 1 << 1,   /* >= 0 */
    N_POS = 1 << 2,      /* > 0 */
    N_UNIT = 1 << 3,     /* in [0, 1] */
};

/* The writer's state: the first problem found stops everything (first error wins), and `where`
 * names the object being filled so messages can say "regions[2].area_mm2". */
typedef struct {
    hp_error *err;
    const char *path;
    hp_status st;
    char where[96];
} wctx;

__attribute__((format(printf, 3, 4))) static void fail(wctx *w, hp_status code, const char *fmt,
                                                       ...)
{
    if (w->st)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->st = hp_error_set(w->err, code, "%s: %s", w->path, msg);
}

static void nomem(wctx *w) { fail(w, HP_ERR_NOMEM, "out of memory"); }

/* A finite double as the shortest text that parses back to the same bits. */
static cJSON *num_item(double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return cJSON_CreateRaw(buf);
}

static cJSON *int_item(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return cJSON_CreateRaw(buf);
}

/* Adds item to an object (key) or an array (key NULL); frees it when that fails. */
static void attach(wctx *w, cJSON *parent, const char *key, cJSON *item)
{
    if (w->st) {
        cJSON_Delete(item);
        return;
    }
    if (!item || !parent ||
        !(key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item))) {
        cJSON_Delete(item);
        nomem(w);
    }
}

static cJSON *double_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *x = num_item(v[i]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* cJSON_Add* return NULL on allocation failure (and accept a NULL parent), so one check per add
 * is enough to catch a failure anywhere below. */
static cJSON *added(wctx *w, cJSON *item)
{
    if (!item)
        nomem(w);
    return item;
}

static void set_where(wctx *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_where(wctx *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->where, sizeof w->where, fmt, ap);
    va_end(ap);
}

static void put_num(wctx *w, cJSON *o, const char *key, double v, int flags)
{
    if (w->st)
        return;
    if (!isfinite(v)) {
        if (flags & N_NULLABLE)
            added(w, cJSON_AddNullToObject(o, key));
        else
            fail(w, HP_ERR_INVALID, "field %s.%s: %g is not a finite number", w->where, key, v);
        return;
    }
    if (((flags & N_NONNEG) && v < 0) || ((flags & N_POS) && v <= 0) ||
        ((flags & N_UNIT) && (v < 0 || v > 1))) {
        fail(w, HP_ERR_INVALID, "field %s.%s: %g is outside %s", w->where, key, v,
             (flags & N_UNIT) ? "[0, 1]" : (flags & N_POS) ? "(0, inf)" : "[0, inf)");
        return;
    }
    attach(w, o, key, num_item(v));
}

static void put_int(wctx *w, cJSON *o, const char *key, int64_t v, int64_t min)
{
    if (w->st)
        return;
    if (v < min) {
        fail(w, HP_ERR_INVALID, "field %s.%s: %lld is below %lld", w->where, key, (long long)v,
             (long long)min);
        return;
    }
    attach(w, o, key, int_item(v));
}

/* s NULL: null when nullable, else an error; "" is refused either way (the schema wants text). */
static void put_str(wctx *w, cJSON *o, const char *key, const char *s, int nullable)
{
    if (w->st)
        return;
    if (!s && nullable)
        added(w, cJSON_AddNullToObject(o, key));
    else if (!s || !*s)
        fail(w, HP_ERR_INVALID, "field %s.%s: missing", w->where, key);
    else
        added(w, cJSON_AddStringToObject(o, key, s));
}

static int one_of(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

static void put_enum(wctx *w, cJSON *o, const char *key, const char *s, const char *const *list)
{
    if (!w->st && !one_of(s, list))
        fail(w, HP_ERR_INVALID, "field %s.%s: \"%s\" is not one of the allowed values", w->where,
             key, s ? s : "(null)");
    put_str(w, o, key, s, 0);
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[n] == '\0';
}

/* The slide id names the output folder and identifies the slide in reports, so it must not be
 * able to carry a file name: no '.', hence no extension, no path. */
static int is_slide_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > HP_FINDINGS_SLIDE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Relative to the output folder: segments of [A-Za-z0-9_.-], none "." or "..", no leading '/'. */
static int is_relative_path(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 255)
        return 0;
    const char *seg = s;
    for (const char *p = s;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') ||
                (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (*p == '\0')
                return 1;
            seg = p + 1;
        } else if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-')) {
            return 0;
        }
    }
}

static void put_path(wctx *w, cJSON *o, const char *key, const char *s)
{
    if (!w->st && s && !is_relative_path(s))
        fail(w, HP_ERR_INVALID,
             "field %s.%s: \"%s\" is not a path relative to the output folder", w->where, key, s);
    put_str(w, o, key, s, 1);
}

/* The card keeps mean and std as floats; written as the shortest decimal that reads back to the
 * same float, 0.485 rather than 0.48500001430511475 (what the card said, not float noise). */
static cJSON *float_triplet(const float v[3])
{
    double d[3];
    for (int k = 0; k < 3; k++) {
        char buf[32];
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, (double)v[k]);
            if ((float)strtod(buf, NULL) == v[k])
                break;
        }
        d[k] = strtod(buf, NULL);
    }
    return double_array(d, 3);
}

static int class_index(const hp_findings *f, const char *name)
{
    for (int i = 0; name && i < f->n_classes; i++)
        if (f->classes[i].name && !strcmp(f->classes[i].name, name))
            return i;
    return -1;
}

/* Regions are kept in increasing id order, so a reference is found by bisection. */
static const hp_findings_region *region_by_id(const hp_findings *f, int id)
{
    int lo = 0, hi = f->n_regions - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (f->regions[mid].id == id)
            return &f->regions[mid];
        if (f->regions[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* Region ids are written as "R<n>" (pipeline/regions.h), the form every output shares. */
static void put_region_id(wctx *w, cJSON *o, const char *key, int id)
{
    if (w->st)
        return;
    if (id < 1) {
        fail(w, HP_ERR_INVALID, "field %s.%s: region id %d is below 1", w->where, key, id);
        return;
    }
    char buf[HP_REGION_ID_MAX];
    hp_region_id(id - 1, buf);
    added(w, cJSON_AddStringToObject(o, key, buf));
}

static void put_region_ref(wctx *w, cJSON *o, const char *key, const hp_findings *f, int id)
{
    if (w->st)
        return;
    if (id == 0) {
        added(w, cJSON_AddNullToObject(o, key));
        return;
    }
    if (!region_by_id(f, id))
        fail(w, HP_ERR_INVALID, "field %s.%s: region %d is not in regions", w->where, key, id);
    put_region_id(w, o, key, id);
}

static void put_slide(wctx *w, cJSON *root, const hp_findings *f)
{
    static const char *const sources[] = {"override", "openslide", "tiff-resolution",
                                          "objective-power", NULL};
    cJSON *o = added(w, cJSON_AddObjectToObject(root, "slide"));
    set_where(w, "slide");
    if (!w->st && !is_slide_id(f->slide_id))
        fail(w, HP_ERR_INVALID,
             "field slide.slide_id: \"%s\" is not 1 to %d letters, digits, '_' or '-' (a file "
             "name must never identify a slide)",
             f->slide_id ? f->slide_id : "(null)", HP_FINDINGS_SLIDE_ID_MAX);
    put_str(w, o, "slide_id", f->slide_id, 0);
    if (!w->st && !is_lower_hex(f->sha256, 64))
        fail(w, HP_ERR_INVALID, "field slide.sha256: not 64 lower-case hex digits");
    put_str(w, o, "sha256", f->sha256, 0);
    put_str(w, o, "format", f->format, 0);
    put_int(w, o, "level0_width_px", f->width_px, 1);
    put_int(w, o, "level0_height_px", f->height_px, 1);
    put_int(w, o, "level_count", f->level_count, 1);
    put_num(w, o, "mpp_x", f->mpp_x, N_POS);
    put_num(w, o, "mpp_y", f->mpp_y, N_POS);
    put_enum(w, o, "mpp_source", f->mpp_source, sources);
    put_str(w, o, "mpp_warning", f->mpp_warning && *f->mpp_warning ? f->mpp_warning : NULL, 1);
    /* hp_slide_objective_power says 0 for unknown; both 0 and NaN become null. */
    put_num(w, o, "objective_power", f->objective_power > 0 ? f->objective_power : NAN,
            N_NULLABLE | N_POS);
}

/* hp_precision_name's words: the classifier's and the super-resolution model's precision. */
static const char *const PRECISIONS[] = {"fp32", "fp16", "bf16", NULL};

static void put_model(wctx *w, cJSON *root, const hp_findings *f)
{
    static const char *const backends[] = {"cpu", "cpu-reference", "cuda", NULL};
    const hp_card *c = &f->card;
    cJSON *o = added(w, cJSON_AddObjectToObject(root, "model"));
    set_where(w, "model");
    put_str(w, o, "name", c->name, 0);
    put_str(w, o, "version", c->version, 1);
    if (!w->st && !is_lower_hex(f->model_sha256, 64))
        fail(w, HP_ERR_INVALID, "field model.sha256: not 64 lower-case hex digits");
    put_str(w, o, "sha256", f->model_sha256, 0);
    put_enum(w, o, "backend", f->backend, backends);
    put_enum(w, o, "precision", f->precision, PRECISIONS);

    cJSON *card = added(w, cJSON_AddObjectToObject(o, "card"));
    set_where(w, "model.card");
    if (!w->st && (c->n_classes < 1 || c->n_classes > HP_CARD_MAX_CLASSES))
        fail(w, HP_ERR_INVALID, "field model.card.classes: %d classes", c->n_classes);
    cJSON *cl = added(w, cJSON_AddArrayToObject(card, "classes"));
    for (int i = 0; !w->st && i < c->n_classes; i++) {
        if (!c->classes[i] || !*c->classes[i])
            fail(w, HP_ERR_INVALID, "field model.card.classes[%d]: missing", i);
        else if (!cJSON_AddItemToArray(cl, added(w, cJSON_CreateString(c->classes[i]))))
            nomem(w);
    }
    if (c->input_h > 0 && c->input_w > 0) {
        double hw[2] = {c->input_h, c->input_w};
        attach(w, card, "input_size", double_array(hw, 2));
    } else {
        added(w, cJSON_AddNullToObject(card, "input_size"));
    }
    put_num(w, card, "mpp", c->mpp > 0 ? c->mpp : NAN, N_NULLABLE | N_POS);
    if (c->has_norm) {
        cJSON *n = added(w, cJSON_AddObjectToObject(card, "normalization"));
        for (int k = 0; !w->st && k < 3; k++)
            if (!isfinite(c->mean[k]) || !isfinite(c->std[k]) || c->std[k] <= 0)
                fail(w, HP_ERR_INVALID, "field model.card.normalization: bad mean or std");
        attach(w, n, "mean", float_triplet(c->mean));
        attach(w, n, "std", float_triplet(c->std));
    } else {
        added(w, cJSON_AddNullToObject(card, "normalization"));
    }
    put_str(w, card, "intended_use", c->intended_use, 1);
    put_str(w, card, "training_data", c->training_data, 1);
    put_str(w, card, "license", c->license, 1);
    if (w->st)
        return;
    if (c->metrics_json) {
        cJSON *m = cJSON_Parse(c->metrics_json);
        if (!cJSON_IsObject(m)) {
            cJSON_Delete(m);
            fail(w, HP_ERR_INVALID, "field model.card.metrics: not a JSON object");
        } else if (!cJSON_AddItemToObject(card, "metrics", m)) {
            cJSON_Delete(m);
            nomem(w);
        }
    } else {
        added(w, cJSON_AddNullToObject(card, "metrics"));
    }
    added(w, cJSON_AddBoolToObject(card, "not_for_diagnosis", c->not_for_diagnosis != 0));
    if (!c->has_category_map) {
        added(w, cJSON_AddNullToObject(card, "category_map"));
        return;
    }
    cJSON *cm = added(w, cJSON_AddObjectToObject(card, "category_map"));
    for (int i = 0; !w->st && i < c->n_classes; i++)
        added(w, cJSON_AddStringToObject(cm, c->classes[i], hp_class_category_name(c->category[i])));
}

/* How the classes relate to diagnostic categories, said in words when they do not, so that a
 * null invasive or in situ section is never left unexplained. */
static void put_categories(wctx *w, cJSON *root, const hp_findings *f)
{
    cJSON *o = added(w, cJSON_AddObjectToObject(root, "diagnostic_categories"));
    set_where(w, "diagnostic_categories");
    int mapped = f->card.has_category_map;
    added(w, cJSON_AddBoolToObject(o, "mapped", mapped));
    const char *note =
        mapped ? "Each class's diagnostic category comes from the model card's category_map."
               : "The model card has no category_map: its classes are not mapped to diagnostic "
                 "categories, so the breast-specific sections (invasive, in_situ_extent) are null "
                 "and no diagnostic category can be suggested from these findings.";
    put_str(w, o, "note", note, 0);
}

/* Which reader decoded the tiles: the one that read the most ("none" before any tile), the
 * reads per reader, and the JPEG decoding scale. */
static void put_tile_reader(wctx *w, cJSON *o, const hp_findings *f)
{
    int best = -1;
    for (int k = 0; k < HP_SLIDE_READ_KINDS; k++)
        if (f->tile_reads[k] > 0 && (best < 0 || f->tile_reads[k] > f->tile_reads[best]))
            best = k;
    put_str(w, o, "tile_reader", best < 0 ? "none" : hp_slide_read_kind_name(best), 0);
    cJSON *r = added(w, cJSON_AddObjectToObject(o, "tile_reads"));
    for (int k = 0; r && k < HP_SLIDE_READ_KINDS; k++)
        put_int(w, r, hp_slide_read_kind_name(k), f->tile_reads[k], 0);
    put_int(w, o, "tile_decode_scale", f->tile_decode_scale > 0 ? f->tile_decode_scale : 1, 1);
}

/* analysis.super_resolution: whether the classifier saw super-resolved tiles, and the model. */
static void put_super_resolution(wctx *w, cJSON *o, const hp_findings *f)
{
    cJSON *sr = added(w, cJSON_AddObjectToObject(o, "super_resolution"));
    set_where(w, "analysis.super_resolution");
    put_str(w, sr, "mode", f->sr_mode ? f->sr_mode : "off", 0);
    added(w, cJSON_AddBoolToObject(sr, "used", f->sr_used != 0));
    put_str(w, sr, "reason", f->sr_reason && *f->sr_reason ? f->sr_reason : NULL, 1);
    if (!f->sr_used) {
        added(w, cJSON_AddNullToObject(sr, "model"));
        return;
    }
    if (!w->st && (!f->sr_model_name || f->sr_scale < 2 || strlen(f->sr_model_sha256) != 64))
        fail(w, HP_ERR_INVALID, "field analysis.super_resolution.model: used, but the model is not named");
    cJSON *m = added(w, cJSON_AddObjectToObject(sr, "model"));
    set_where(w, "analysis.super_resolution.model");
    put_str(w, m, "name", f->sr_model_name, 0);
    put_str(w, m, "version", f->sr_model_version, 1);
    put_str(w, m, "sha256", f->sr_model_sha256, 0);
    put_int(w, m, "scale", f->sr_scale, 2);
    put_num(w, m, "input_mpp", f->sr_input_mpp, N_POS);
    put_num(w, m, "output_mpp", f->sr_output_mpp, N_POS);
    put_enum(w, m, "precision", f->sr_precision ? f->sr_precision : "fp32", PRECISIONS);
}

static void put_analysis(wctx *w, cJSON *root, const hp_findings *f)
{
    cJSON *o = added(w, cJSON_AddObjectToObject(root, "analysis"));
    set_where(w, "analysis");
    put_num(w, o, "target_mpp", f->target_mpp, N_POS);
    put_int(w, o, "tile_size", f->tile_size_px, 1);
    put_num(w, o, "tile_size_level0", f->tile_size_level0, N_POS);
    put_int(w, o, "level", f->level, 0);
    put_tile_reader(w, o, f);
    put_int(w, o, "grid_w", f->grid_w, 1);
    put_int(w, o, "grid_h", f->grid_h, 1);
    put_int(w, o, "tiles_total", f->tiles_total, 0);
    put_int(w, o, "tiles_analysed", f->tiles_analysed, 0);
    if (!w->st && f->tiles_analysed > f->tiles_total)
        fail(w, HP_ERR_INVALID, "field analysis.tiles_analysed: more than tiles_total");
    put_num(w, o, "tissue_threshold", f->tissue_threshold, N_UNIT);
    put_int(w, o, "batch_size", f->batch_size, 1);
    if (!w->st && !(f->region_threshold > 0))
        fail(w, HP_ERR_INVALID, "field analysis.region_threshold: must be above 0");
    put_num(w, o, "region_threshold", f->region_threshold, N_UNIT);
    put_int(w, o, "min_region_tiles", f->min_region_tiles, 1);
    put_num(w, o, "smoothing_sigma_tiles", f->smoothing_sigma_tiles, N_NONNEG);
    put_super_resolution(w, o, f);
    /* A warning goes with its factor, and a factor with its warning. */
    if (!f->resolution_warning) {
        added(w, cJSON_AddNullToObject(o, "resolution_warning"));
        return;
    }
    if (!w->st && !(f->upsampling_factor > 1))
        fail(w, HP_ERR_INVALID, "field analysis.resolution_warning.upsampling_factor: %g is not above 1",
             f->upsampling_factor);
    cJSON *rw = added(w, cJSON_AddObjectToObject(o, "resolution_warning"));
    set_where(w, "analysis.resolution_warning");
    put_num(w, rw, "upsampling_factor", f->upsampling_factor, N_POS);
    put_str(w, rw, "message", f->resolution_warning, 0);
}

static void put_tissue_qc(wctx *w, cJSON *root, const hp_findings *f)
{
    cJSON *t = added(w, cJSON_AddObjectToObject(root, "tissue"));
    set_where(w, "tissue");
    put_num(w, t, "area_mm2", f->tissue_area_mm2, N_NONNEG);
    put_num(w, t, "fraction", f->tissue_fraction, N_UNIT);
    put_num(w, t, "analysed_area_mm2", f->analysed_area_mm2, N_NONNEG);
    put_path(w, t, "mask_path", f->mask_png);

    cJSON *q = added(w, cJSON_AddObjectToObject(root, "qc"));
    set_where(w, "qc");
    if (!w->st && (f->qc_flags >> HP_QC_FLAG_COUNT))
        fail(w, HP_ERR_INVALID, "field qc.flags: unknown flag bits 0x%x", f->qc_flags);
    cJSON *flags = added(w, cJSON_AddArrayToObject(q, "flags"));
    cJSON *desc = added(w, cJSON_AddObjectToObject(q, "flag_descriptions"));
    for (int b = 0; !w->st && b < HP_QC_FLAG_COUNT; b++) {
        unsigned bit = 1u << b;
        if (!(f->qc_flags & bit))
            continue;
        if (!cJSON_AddItemToArray(flags, added(w, cJSON_CreateString(hp_qc_flag_name(bit)))))
            nomem(w);
        /* The out-of-domain flag carries its reason, so every reader of the flags sees why. */
        char why[1024];
        const char *text = hp_qc_flag_description(bit);
        if (bit == HP_QC_OUT_OF_DOMAIN && f->domain_reason) {
            snprintf(why, sizeof why, "the model is not valid for this slide: %s", f->domain_reason);
            text = why;
        }
        added(w, cJSON_AddStringToObject(desc, hp_qc_flag_name(bit), text));
    }
    cJSON *d = added(w, cJSON_AddObjectToObject(q, "details"));
    set_where(w, "qc.details");
    put_num(w, d, "pen_fraction", f->pen_fraction, N_UNIT);
    put_num(w, d, "brown_fraction", f->brown_fraction, N_UNIT);
    put_num(w, d, "blur_score", f->blur_score, N_NULLABLE | N_NONNEG);
    put_int(w, d, "blur_regions_read", f->blur_regions_read, 0);
}

/* "domain": the card's domain of validity, the out-of-domain detector's scores, the verdict with
 * its reason, and the calibration the report's confidence rests on. */
static void put_domain(wctx *w, cJSON *root, const hp_findings *f)
{
    const hp_card *c = &f->card;
    cJSON *d = added(w, cJSON_AddObjectToObject(root, "domain"));
    set_where(w, "domain");
    if (!w->st && f->out_of_domain != !!(f->qc_flags & HP_QC_OUT_OF_DOMAIN))
        fail(w, HP_ERR_INVALID, "field domain.out_of_domain: disagrees with the QC flag");
    if (!w->st && f->out_of_domain && !f->domain_reason)
        fail(w, HP_ERR_INVALID, "field domain.reason: an out-of-domain slide needs its reason");
    added(w, cJSON_AddBoolToObject(d, "checked", f->domain_checked));
    added(w, cJSON_AddBoolToObject(d, "out_of_domain", f->out_of_domain));
    put_str(w, d, "reason", f->out_of_domain ? f->domain_reason : NULL, 1);
    cJSON *cd = added(w, cJSON_AddObjectToObject(d, "card"));
    put_str(w, cd, "tissue", c->domain_tissue, 1);
    put_str(w, cd, "stain", c->domain_stain, 1);
    if (c->mpp_max > 0) {
        double r[2] = {c->mpp_min, c->mpp_max};
        attach(w, cd, "mpp_range", double_array(r, 2));
    } else {
        added(w, cJSON_AddNullToObject(cd, "mpp_range"));
    }
    if (f->mpp_in_range < 0)
        added(w, cJSON_AddNullToObject(d, "mpp_in_range"));
    else
        added(w, cJSON_AddBoolToObject(d, "mpp_in_range", f->mpp_in_range));
    if (f->domain_checked) {
        cJSON *o = added(w, cJSON_AddObjectToObject(d, "detector"));
        set_where(w, "domain.detector");
        added(w, cJSON_AddStringToObject(o, "method", "mahalanobis"));
        put_num(w, o, "threshold", f->ood_threshold, N_POS);
        put_num(w, o, "slide_fraction", f->ood_slide_fraction, N_UNIT);
        put_int(w, o, "tiles_beyond", f->ood_tiles_beyond, 0);
        put_num(w, o, "fraction_beyond", f->ood_fraction_beyond, N_NULLABLE | N_UNIT);
        put_num(w, o, "median_score", f->ood_median_score, N_NULLABLE | N_NONNEG);
        put_num(w, o, "p95_score", f->ood_p95_score, N_NULLABLE | N_NONNEG);
    } else {
        added(w, cJSON_AddNullToObject(d, "detector"));
    }
    if (c->has_calibration) {
        cJSON *o = added(w, cJSON_AddObjectToObject(d, "calibration"));
        set_where(w, "domain.calibration");
        added(w, cJSON_AddStringToObject(o, "method", "temperature"));
        put_num(w, o, "temperature", c->temperature, N_POS);
        put_num(w, o, "ece_before", c->ece_before, N_UNIT);
        put_num(w, o, "ece_after", c->ece_after, N_UNIT);
        put_num(w, o, "calibrated_confidence", f->calibrated_confidence, N_NULLABLE | N_UNIT);
    } else {
        added(w, cJSON_AddNullToObject(d, "calibration"));
    }
}

static void put_classes(wctx *w, cJSON *root, const hp_findings *f)
{
    if (!w->st && f->n_classes < 1)
        fail(w, HP_ERR_INVALID, "field classes: empty");
    cJSON *a = added(w, cJSON_AddArrayToObject(root, "classes"));
    for (int i = 0; !w->st && i < f->n_classes; i++) {
        const hp_findings_class *c = &f->classes[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            nomem(w);
            return;
        }
        set_where(w, "classes[%d]", i);
        put_str(w, o, "name", c->name, 0);
        if (!w->st && class_index(f, c->name) != i)
            fail(w, HP_ERR_INVALID, "field classes[%d].name: \"%s\" repeats", i, c->name);
        const char *cat = i < f->card.n_classes && f->card.has_category_map
                              ? hp_class_category_name(f->card.category[i])
                              : NULL;
        put_str(w, o, "category", cat, 1);
        put_num(w, o, "area_mm2", c->area_mm2, N_NONNEG);
        put_num(w, o, "fraction_of_tissue", c->fraction_of_tissue, N_NULLABLE | N_UNIT);
        put_int(w, o, "tile_count", c->tile_count, 0);
        put_int(w, o, "region_count", c->region_count, 0);
        if (c->largest_region_id == 0) {
            added(w, cJSON_AddNullToObject(o, "largest_focus"));
            continue;
        }
        cJSON *lf = added(w, cJSON_AddObjectToObject(o, "largest_focus"));
        set_where(w, "classes[%d].largest_focus", i);
        put_region_ref(w, lf, "region_id", f, c->largest_region_id);
        put_num(w, lf, "area_mm2", c->largest_area_mm2, N_NONNEG);
        put_num(w, lf, "diameter_mm", c->largest_diameter_mm, N_NONNEG);
    }
}

static void put_extent(wctx *w, cJSON *root, const char *key, const hp_findings *f,
                       const hp_findings_extent *e)
{
    if (w->st)
        return;
    if (!e->cls) {
        added(w, cJSON_AddNullToObject(root, key));
        return;
    }
    cJSON *o = added(w, cJSON_AddObjectToObject(root, key));
    set_where(w, "%s", key);
    if (class_index(f, e->cls) < 0)
        fail(w, HP_ERR_INVALID, "field %s.class: \"%s\" is not in classes", key, e->cls);
    put_str(w, o, "class", e->cls, 0);
    put_num(w, o, "total_area_mm2", e->total_area_mm2, N_NONNEG);
    put_num(w, o, "extent_mm", e->extent_mm, N_NONNEG);
    put_num(w, o, "largest_focus_diameter_mm", e->largest_diameter_mm, N_NONNEG);
    put_region_ref(w, o, "largest_region_id", f, e->largest_region_id);
    put_int(w, o, "region_count", e->region_count, 0);
}

static void put_uncertainty(wctx *w, cJSON *root, const hp_findings *f)
{
    cJSON *o = added(w, cJSON_AddObjectToObject(root, "uncertainty"));
    set_where(w, "uncertainty");
    put_num(w, o, "mean_entropy", f->mean_entropy, N_NULLABLE | N_UNIT);
    put_num(w, o, "max_entropy", f->max_entropy, N_NULLABLE | N_UNIT);
    put_num(w, o, "fraction_uncertain", f->fraction_uncertain, N_NULLABLE | N_UNIT);
    put_num(w, o, "threshold", f->entropy_threshold, N_UNIT);
}

static void put_tiles(wctx *w, cJSON *arr, const hp_findings_tile *tiles, int n, const char *where);

static void put_region(wctx *w, cJSON *o, const hp_findings *f, int i)
{
    const hp_findings_region *r = &f->regions[i];
    set_where(w, "regions[%d]", i);
    if (!w->st && i > 0 && r->id <= f->regions[i - 1].id)
        fail(w, HP_ERR_INVALID, "field regions[%d].id: %d does not follow %d (ids must increase)",
             i, r->id, f->regions[i - 1].id);
    put_region_id(w, o, "id", r->id);
    if (!w->st && class_index(f, r->cls) < 0)
        fail(w, HP_ERR_INVALID, "field regions[%d].class: \"%s\" is not in classes", i,
             r->cls ? r->cls : "(null)");
    put_str(w, o, "class", r->cls, 0);
    if (!w->st) {
        /* The display label numbers the regions of each class, largest first; the id is what
         * identifies the region. */
        int nth = 1;
        for (int j = 0; j < i; j++)
            nth += !strcmp(f->regions[j].cls, r->cls);
        char label[HP_HEATMAP_NAME_MAX * 4 + 16];
        snprintf(label, sizeof label, "%.250s %d", r->cls, nth);
        put_str(w, o, "label", label, 0);
    }
    put_num(w, o, "area_mm2", r->area_mm2, N_NONNEG);
    put_num(w, o, "diameter_mm", r->diameter_mm, N_NONNEG);
    put_int(w, o, "tile_count", r->tile_count, 1);
    put_num(w, o, "mean_prob", r->mean_prob, N_UNIT);
    put_num(w, o, "max_prob", r->max_prob, N_UNIT);
    /* Every tile of a run is super-resolved or none is; the region says so where it is read. */
    added(w, cJSON_AddBoolToObject(o, "super_resolved", f->sr_used != 0));
    for (int k = 0; !w->st && k < 4; k++)
        if (!isfinite(r->bbox_level0[k]) || (k >= 2 && r->bbox_level0[k] <= 0))
            fail(w, HP_ERR_INVALID, "field regions[%d].bbox_level0[%d]: %g", i, k,
                 r->bbox_level0[k]);
    for (int k = 0; !w->st && k < 2; k++)
        if (!isfinite(r->centroid_level0[k]))
            fail(w, HP_ERR_INVALID, "field regions[%d].centroid_level0[%d]: not finite", i, k);
    if (w->st)
        return;
    attach(w, o, "bbox_level0", double_array(r->bbox_level0, 4));
    attach(w, o, "centroid_level0", double_array(r->centroid_level0, 2));
    if (r->feature_index < 0 || !f->regions_geojson) {
        added(w, cJSON_AddNullToObject(o, "polygon_ref"));
    } else {
        cJSON *pr = added(w, cJSON_AddObjectToObject(o, "polygon_ref"));
        set_where(w, "regions[%d].polygon_ref", i);
        put_path(w, pr, "file", f->regions_geojson);
        put_int(w, pr, "feature_index", r->feature_index, 0);
    }
    if (!w->st && (r->n_evidence < 0 || r->n_evidence > HP_FINDINGS_EVIDENCE_MAX ||
                   (r->n_evidence > 0 && !r->evidence)))
        fail(w, HP_ERR_INVALID, "field regions[%d].evidence_tiles: %d tiles (at most %d)", i,
             r->n_evidence, HP_FINDINGS_EVIDENCE_MAX);
    cJSON *ev = added(w, cJSON_AddArrayToObject(o, "evidence_tiles"));
    char where[48];
    snprintf(where, sizeof where, "regions[%d].evidence_tiles", i);
    put_tiles(w, ev, r->evidence, r->n_evidence, where);
}

static void put_regions(wctx *w, cJSON *root, const hp_findings *f)
{
    if (!w->st && f->n_regions > 0 && !f->regions)
        fail(w, HP_ERR_INVALID, "field regions: %d regions but no array", f->n_regions);
    cJSON *a = added(w, cJSON_AddArrayToObject(root, "regions"));
    for (int i = 0; !w->st && i < f->n_regions; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            nomem(w);
            return;
        }
        put_region(w, o, f, i);
    }
}

static void put_tiles(wctx *w, cJSON *arr, const hp_findings_tile *tiles, int n, const char *where)
{
    for (int k = 0; !w->st && k < n; k++) {
        const hp_findings_tile *t = &tiles[k];
        cJSON *to = cJSON_CreateObject();
        if (!to || !cJSON_AddItemToArray(arr, to)) {
            cJSON_Delete(to);
            nomem(w);
            return;
        }
        set_where(w, "%s[%d]", where, k);
        put_int(w, to, "index", t->index, 0);
        put_num(w, to, "x", t->x, N_ANY);
        put_num(w, to, "y", t->y, N_ANY);
        put_num(w, to, "size", t->size, N_POS);
        put_num(w, to, "prob", t->prob, N_UNIT);
    }
}

/* Tiles of a class that formed no region: reported with their locations, never dropped. */
static void put_isolated(wctx *w, cJSON *root, const hp_findings *f)
{
    cJSON *a = added(w, cJSON_AddArrayToObject(root, "isolated_tiles"));
    for (int i = 0; !w->st && i < f->n_isolated; i++) {
        const hp_findings_isolated *is = &f->isolated[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            nomem(w);
            return;
        }
        set_where(w, "isolated_tiles[%d]", i);
        int k = class_index(f, is->cls);
        if (k < 0)
            fail(w, HP_ERR_INVALID, "field isolated_tiles[%d].class: \"%s\" is not in classes", i,
                 is->cls ? is->cls : "(null)");
        put_str(w, o, "class", is->cls, 0);
        put_str(w, o, "category",
                k >= 0 && f->card.has_category_map && k < f->card.n_classes
                    ? hp_class_category_name(f->card.category[k])
                    : NULL,
                1);
        put_int(w, o, "tile_count", is->tile_count, 1);
        put_num(w, o, "area_mm2", is->area_mm2, N_NONNEG);
        if (!w->st && (is->n_tiles < 1 || is->n_tiles > HP_FINDINGS_ISOLATED_MAX ||
                       is->n_tiles > is->tile_count || !is->tiles))
            fail(w, HP_ERR_INVALID, "field isolated_tiles[%d].tiles: %d locations (1 to %d)", i,
                 is->n_tiles, HP_FINDINGS_ISOLATED_MAX);
        char where[48];
        snprintf(where, sizeof where, "isolated_tiles[%d].tiles", i);
        put_tiles(w, added(w, cJSON_AddArrayToObject(o, "tiles")), is->tiles, is->n_tiles, where);
    }
}

static void put_outputs(wctx *w, cJSON *root, const hp_findings *f)
{
    cJSON *o = added(w, cJSON_AddObjectToObject(root, "outputs"));
    cJSON *hm = added(w, cJSON_AddObjectToObject(o, "heatmaps"));
    set_where(w, "outputs.heatmaps");
    for (int i = 0; !w->st && i < f->n_classes; i++)
        if (f->classes[i].heatmap_png)
            put_path(w, hm, f->classes[i].name, f->classes[i].heatmap_png);
    set_where(w, "outputs");
    put_path(w, o, "overlay", f->overlay_png);
    put_path(w, o, "mask", f->mask_png);
    put_path(w, o, "uncertainty", f->uncertainty_png);
    put_path(w, o, "heatmap_tiff", f->heatmap_tiff);
    put_path(w, o, "regions_geojson", f->regions_geojson);
    put_path(w, o, "regions_xml", f->regions_xml);
    put_path(w, o, "tiles_csv", f->tiles_csv);
    put_path(w, o, "tiles_geojson", f->tiles_geojson);

    cJSON *t = added(w, cJSON_AddObjectToObject(root, "timings_s"));
    set_where(w, "timings_s");
    put_num(w, t, "open", f->t_open, N_NONNEG);
    put_num(w, t, "tissue", f->t_tissue, N_NONNEG);
    put_num(w, t, "tiling", f->t_tiling, N_NONNEG);
    put_num(w, t, "inference", f->t_inference, N_NONNEG);
    put_num(w, t, "heatmap", f->t_heatmap, N_NONNEG);
    put_num(w, t, "regions", f->t_regions, N_NONNEG);
    put_num(w, t, "writing", f->t_writing, N_NONNEG);
    put_num(w, t, "total", f->t_total, N_NONNEG);
}

/* Builds the whole document; NULL with w->st set on failure. */
static cJSON *build(wctx *w, const hp_findings *f)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        nomem(w);
        return NULL;
    }
    char when[HP_UTC_TIME_LEN];
    if (hp_utc_format(f->generated_at ? f->generated_at : time(NULL), when))
        fail(w, HP_ERR_INVALID, "field generated_at: not a representable time");
    set_where(w, "(top)");
    put_str(w, root, "schema_version", HP_FINDINGS_SCHEMA_VERSION, 0);
    put_str(w, root, "histoplan_version", HP_VERSION, 0);
    put_str(w, root, "generated_at", when, 0);
    put_str(w, root, "research_use_notice", HP_FINDINGS_RESEARCH_NOTICE, 0);
    put_str(w, root, "status", "complete", 0);
    put_slide(w, root, f);
    cJSON *c = added(w, cJSON_AddObjectToObject(root, "case"));
    set_where(w, "case");
    put_str(w, c, "accession", f->accession, 1);
    put_model(w, root, f);
    put_analysis(w, root, f);
    put_tissue_qc(w, root, f);
    put_domain(w, root, f);
    put_categories(w, root, f);
    put_classes(w, root, f);
    put_extent(w, root, "in_situ_extent", f, &f->in_situ);
    put_extent(w, root, "invasive", f, &f->invasive);
    put_uncertainty(w, root, f);
    put_regions(w, root, f);
    put_isolated(w, root, f);
    put_outputs(w, root, f);
    if (w->st) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

hp_status hp_findings_write(const hp_findings *f, const char *path, hp_error *err)
{
    if (!f || !path || !*path)
        return hp_error_set(err, HP_ERR_INVALID, "findings writer: missing findings or path");
    wctx w = {.err = err, .path = path, .st = HP_OK};
    cJSON *root = build(&w, f);
    if (!root)
        return w.st;
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    hp_status st = hp_atomic_write_text(path, text, err);
    free(text);
    return st;
}

void hp_findings_init(hp_findings *f)
{
    if (!f)
        return;
    memset(f, 0, sizeof *f);
    f->objective_power = NAN;
    f->blur_score = NAN;
    f->mean_entropy = f->max_entropy = f->fraction_uncertain = NAN;
    f->ood_threshold = f->ood_fraction_beyond = f->ood_median_score = f->ood_p95_score = NAN;
    f->temperature = f->calibrated_confidence = NAN;
    f->mpp_in_range = -1;
}

void hp_findings_free(hp_findings *f)
{
    if (!f)
        return;
    free(f->slide_id);
    free(f->format);
    free(f->mpp_source);
    free(f->mpp_warning);
    free(f->resolution_warning);
    free(f->sr_reason);
    free(f->sr_model_name);
    free(f->sr_model_version);
    free(f->accession);
    free(f->domain_reason);
    hp_card_free(&f->card);
    free(f->backend);
    free(f->precision);
    for (int i = 0; f->classes && i < f->n_classes; i++) {
        free(f->classes[i].name);
        free(f->classes[i].heatmap_png);
    }
    free(f->classes);
    free(f->in_situ.cls);
    free(f->invasive.cls);
    for (int i = 0; f->regions && i < f->n_regions; i++) {
        free(f->regions[i].cls);
        free(f->regions[i].evidence);
    }
    free(f->regions);
    for (int i = 0; f->isolated && i < f->n_isolated; i++) {
        free(f->isolated[i].cls);
        free(f->isolated[i].tiles);
    }
    free(f->isolated);
    free(f->overlay_png);
    free(f->uncertainty_png);
    free(f->mask_png);
    free(f->heatmap_tiff);
    free(f->regions_geojson);
    free(f->regions_xml);
    free(f->tiles_csv);
    free(f->tiles_geojson);
    hp_findings_init(f);
}
