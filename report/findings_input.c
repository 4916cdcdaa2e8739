#include "report/findings_input.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/slide.h"
#include "pipeline/findings.h"
#include "report/json_file.h"
#include "report/json_pointer.h"

/* The schema version this reader understands: the writer's (pipeline/findings.h). */
#define FINDINGS_SCHEMA_VERSION HP_FINDINGS_SCHEMA_VERSION

enum kind { K_NUM, K_INT, K_STR, K_STR_OR_NULL, K_NUM_OR_NULL, K_OBJ, K_OBJ_OR_NULL, K_ARR, K_BOOL };

static const char *kind_name(enum kind k)
{
    switch (k) {
    case K_NUM: return "a number";
    case K_INT: return "a whole number";
    case K_STR: return "a string";
    case K_STR_OR_NULL: return "a string or null";
    case K_NUM_OR_NULL: return "a number or null";
    case K_OBJ: return "an object";
    case K_OBJ_OR_NULL: return "an object or null";
    case K_ARR: return "an array";
    case K_BOOL: return "true or false";
    }
    return "?";
}

static int kind_ok(const cJSON *v, enum kind k)
{
    switch (k) {
    case K_NUM: return cJSON_IsNumber(v);
    case K_INT: return cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble;
    case K_STR: return cJSON_IsString(v);
    case K_STR_OR_NULL: return cJSON_IsString(v) || cJSON_IsNull(v);
    case K_NUM_OR_NULL: return cJSON_IsNumber(v) || cJSON_IsNull(v);
    case K_OBJ: return cJSON_IsObject(v);
    case K_OBJ_OR_NULL: return cJSON_IsObject(v) || cJSON_IsNull(v);
    case K_ARR: return cJSON_IsArray(v);
    case K_BOOL: return cJSON_IsBool(v);
    }
    return 0;
}

/* Checks `pointer` (relative to `base`, itself at `base_ptr` for messages) has kind `k`. */
static int need(const char *path, const cJSON *base, const char *base_ptr, const char *pointer, enum kind k,
                hp_error *err)
{
    const cJSON *v = hp_json_pointer_get(base, pointer);
    if (!v || !kind_ok(v, k)) {
        hp_error_set(err, HP_ERR_INVALID, "findings %s: %s%s %s (must be %s)", path, base_ptr, pointer,
                     v ? "has the wrong type" : "is missing", kind_name(k));
        return -1;
    }
    return 0;
}

#define INT_LIMIT 2147483647.0 /* counts, ids and pixel sizes are used as int */

/* Checks the number at `pointer` (already known to be a number, or null when null_ok) lies in
 * [lo, hi]; with lo_open, above lo. Numbers are finite (the file check refuses 1e999). */
static int need_range(const char *path, const cJSON *base, const char *base_ptr, const char *pointer, double lo,
                      int lo_open, double hi, hp_error *err)
{
    const cJSON *v = hp_json_pointer_get(base, pointer);
    if (!cJSON_IsNumber(v))
        return 0; /* null where allowed */
    double x = v->valuedouble;
    if (lo_open ? x > lo : x >= lo) {
        if (x <= hi)
            return 0;
    }
    char upper[48] = "";
    if (hi < HUGE_VAL)
        snprintf(upper, sizeof upper, " and at most %g", hi);
    hp_error_set(err, HP_ERR_INVALID, "findings %s: %s%s is out of range (must be %s %g%s)", path, base_ptr, pointer,
                 lo_open ? "above" : "at least", lo, upper);
    return -1;
}

/* A whole number in [lo, hi]. */
static int need_int(const char *path, const cJSON *base, const char *base_ptr, const char *pointer, double lo,
                    double hi, hp_error *err)
{
    return need(path, base, base_ptr, pointer, K_INT, err) ||
                   need_range(path, base, base_ptr, pointer, lo, 0, hi, err)
               ? -1
               : 0;
}

static int region_id_ok(const cJSON *v);

/* A region reference: an id (R<n>) or null. */
static int need_region_ref(const char *path, const cJSON *base, const char *base_ptr, const char *pointer,
                           hp_error *err)
{
    const cJSON *v = hp_json_pointer_get(base, pointer);
    if (v && (cJSON_IsNull(v) || region_id_ok(v)))
        return 0;
    hp_error_set(err, HP_ERR_INVALID, "findings %s: %s%s %s (must be a region id R<n> or null)", path, base_ptr,
                 pointer, v ? "is malformed" : "is missing");
    return -1;
}

static int check_extent(const char *path, const cJSON *root, const char *key, hp_error *err)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, key);
    char base[64];
    snprintf(base, sizeof base, "/%s", key);
    if (need(path, root, "", base, K_OBJ_OR_NULL, err))
        return -1;
    if (cJSON_IsNull(e))
        return 0;
    return need(path, e, base, "/class", K_STR, err) || need(path, e, base, "/total_area_mm2", K_NUM, err) ||
                   need_range(path, e, base, "/total_area_mm2", 0, 0, HUGE_VAL, err) ||
                   need(path, e, base, "/extent_mm", K_NUM, err) ||
                   need_range(path, e, base, "/extent_mm", 0, 0, HUGE_VAL, err) ||
                   need(path, e, base, "/largest_focus_diameter_mm", K_NUM, err) ||
                   need_range(path, e, base, "/largest_focus_diameter_mm", 0, 0, HUGE_VAL, err) ||
                   need_region_ref(path, e, base, "/largest_region_id", err) ||
                   need_int(path, e, base, "/region_count", 0, INT_LIMIT, err)
               ? -1
               : 0;
}

/* A region id as findings write it: R followed by 1 to 10 digits, no leading zero. */
static int region_id_ok(const cJSON *v)
{
    if (!cJSON_IsString(v))
        return 0;
    const char *s = v->valuestring;
    size_t n = strlen(s);
    return n >= 2 && n <= 11 && s[0] == 'R' && s[1] >= '1' && s[1] <= '9' && strspn(s + 1, "0123456789") == n - 1;
}

typedef struct {
    const char *id;
    int index;
} region_id;

static int by_id(const void *a, const void *b)
{
    const region_id *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : x->index - y->index;
}

/* Region ids are distinct: each names its region's thumbnails, and a second region of one id
 * would overwrite the first one's. Sorted, so a file of many regions costs n log n. */
static int check_region_ids(const char *path, const cJSON *regions, int n, hp_error *err)
{
    if (n < 2)
        return 0;
    region_id *v = malloc((size_t)n * sizeof *v);
    if (!v)
        return hp_error_set(err, HP_ERR_NOMEM, "findings %s: out of memory", path), -1;
    int k = 0;
    for (const cJSON *r = regions->child; r && k < n; r = r->next, k++)
        v[k] = (region_id){cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring, k};
    qsort(v, (size_t)n, sizeof *v, by_id);
    int rc = 0;
    for (k = 1; k < n && !rc; k++)
        if (!strcmp(v[k].id, v[k - 1].id)) {
            hp_error_set(err, HP_ERR_INVALID,
                         "findings %s: /regions/%d/id is the id of /regions/%d too (region ids must differ: each "
                         "names its own thumbnails)",
                         path, v[k].index, v[k - 1].index);
            rc = -1;
        }
    free(v);
    return rc;
}

/* A region's box and its evidence tiles lie on the slide: they start inside it and reach past its
 * far edge by at most one tile (the tile grid covers the slide's last partial tile). */
static int check_regions(const char *path, const cJSON *root, hp_error *err)
{
    const cJSON *regions = cJSON_GetObjectItemCaseSensitive(root, "regions");
    const cJSON *card_classes = hp_json_pointer_get(root, "/model/card/classes");
    double sw = hp_json_pointer_get(root, "/slide/level0_width_px")->valuedouble;
    double sh = hp_json_pointer_get(root, "/slide/level0_height_px")->valuedouble;
    double tile = hp_json_pointer_get(root, "/analysis/tile_size_level0")->valuedouble;
    int i = 0;
    for (const cJSON *r = regions->child; r; r = r->next, i++) {
        char base[64];
        snprintf(base, sizeof base, "/regions/%d", i);
        if (need(path, r, base, "", K_OBJ, err) || need(path, r, base, "/id", K_STR, err) ||
            need(path, r, base, "/class", K_STR, err) || need(path, r, base, "/area_mm2", K_NUM, err) ||
            need_range(path, r, base, "/area_mm2", 0, 0, HUGE_VAL, err) ||
            need(path, r, base, "/diameter_mm", K_NUM, err) ||
            need_range(path, r, base, "/diameter_mm", 0, 0, HUGE_VAL, err) ||
            need_int(path, r, base, "/tile_count", 1, INT_LIMIT, err) || need(path, r, base, "/mean_prob", K_NUM, err) ||
            need_range(path, r, base, "/mean_prob", 0, 0, 1, err) || need(path, r, base, "/max_prob", K_NUM, err) ||
            need_range(path, r, base, "/max_prob", 0, 0, 1, err) || need(path, r, base, "/bbox_level0", K_ARR, err) ||
            need(path, r, base, "/evidence_tiles", K_ARR, err))
            return -1;
        if (!region_id_ok(cJSON_GetObjectItemCaseSensitive(r, "id")))
            return hp_error_set(err, HP_ERR_INVALID, "findings %s: %s/id must be a region id R<n>", path, base), -1;
        const char *cls = cJSON_GetObjectItemCaseSensitive(r, "class")->valuestring;
        int known = 0;
        for (const cJSON *c = card_classes->child; c && !known; c = c->next)
            known = cJSON_IsString(c) && !strcmp(c->valuestring, cls);
        if (!known)
            return hp_error_set(err, HP_ERR_INVALID, "findings %s: %s/class is not one of /model/card/classes", path,
                                base),
                   -1;
        const cJSON *bb = cJSON_GetObjectItemCaseSensitive(r, "bbox_level0");
        if (cJSON_GetArraySize(bb) != 4)
            return hp_error_set(err, HP_ERR_INVALID, "findings %s: %s/bbox_level0 must have 4 numbers", path, base), -1;
        double box[4];
        for (int k = 0; k < 4; k++) {
            const cJSON *v = cJSON_GetArrayItem(bb, k);
            if (!cJSON_IsNumber(v))
                return hp_error_set(err, HP_ERR_INVALID, "findings %s: %s/bbox_level0/%d must be a number", path,
                                    base, k),
                       -1;
            box[k] = v->valuedouble;
        }
        if (!(box[0] >= 0 && box[0] < sw && box[1] >= 0 && box[1] < sh && box[2] > 0 && box[3] > 0 &&
              box[0] + box[2] <= sw + tile + 1 && box[1] + box[3] <= sh + tile + 1))
            return hp_error_set(err, HP_ERR_INVALID,
                                "findings %s: %s/bbox_level0 [x, y, w, h] does not lie on the slide (x, y inside "
                                "/slide/level0_width_px and /slide/level0_height_px, w and h above 0, at most one "
                                "tile past the edge)",
                                path, base),
                   -1;
        int j = 0;
        for (const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "evidence_tiles")->child; t; t = t->next, j++) {
            char tb[96];
            snprintf(tb, sizeof tb, "%s/evidence_tiles/%d", base, j);
            if (need(path, t, tb, "/x", K_NUM, err) || need_range(path, t, tb, "/x", 0, 0, sw, err) ||
                need(path, t, tb, "/y", K_NUM, err) || need_range(path, t, tb, "/y", 0, 0, sh, err) ||
                need(path, t, tb, "/size", K_NUM, err) || need_range(path, t, tb, "/size", 0, 1, tile + 1, err) ||
                need(path, t, tb, "/prob", K_NUM, err) || need_range(path, t, tb, "/prob", 0, 0, 1, err))
                return -1;
        }
    }
    if (check_region_ids(path, regions, i, err))
        return -1;
    /* Isolated tiles: a known class, counts and locations on the slide. */
    const cJSON *iso = cJSON_GetObjectItemCaseSensitive(root, "isolated_tiles");
    i = 0;
    for (const cJSON *x = iso->child; x; x = x->next, i++) {
        char base[64];
        snprintf(base, sizeof base, "/isolated_tiles/%d", i);
        if (need(path, x, base, "", K_OBJ, err) || need(path, x, base, "/class", K_STR, err) ||
            need(path, x, base, "/category", K_STR_OR_NULL, err) ||
            need_int(path, x, base, "/tile_count", 1, INT_LIMIT, err) || need(path, x, base, "/area_mm2", K_NUM, err) ||
            need_range(path, x, base, "/area_mm2", 0, 0, HUGE_VAL, err) || need(path, x, base, "/tiles", K_ARR, err))
            return -1;
        const char *cls = cJSON_GetObjectItemCaseSensitive(x, "class")->valuestring;
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(x, "category");
        int known = 0;
        for (const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "classes")->child; c && !known; c = c->next) {
            const cJSON *cc = cJSON_GetObjectItemCaseSensitive(c, "category");
            known = !strcmp(cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring, cls) &&
                    (cJSON_IsNull(cat) ? cJSON_IsNull(cc) : cJSON_IsString(cc) && !strcmp(cc->valuestring, cat->valuestring));
        }
        if (!known)
            return hp_error_set(err, HP_ERR_INVALID,
                                "findings %s: %s/class and /category are not a class of /classes with that category",
                                path, base),
                   -1;
        int j = 0;
        for (const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "tiles")->child; t; t = t->next, j++) {
            char tb[96];
            snprintf(tb, sizeof tb, "%s/tiles/%d", base, j);
            if (need(path, t, tb, "/x", K_NUM, err) || need_range(path, t, tb, "/x", 0, 0, sw, err) ||
                need(path, t, tb, "/y", K_NUM, err) || need_range(path, t, tb, "/y", 0, 0, sh, err) ||
                need(path, t, tb, "/size", K_NUM, err) || need_range(path, t, tb, "/size", 0, 1, tile + 1, err) ||
                need(path, t, tb, "/prob", K_NUM, err) || need_range(path, t, tb, "/prob", 0, 0, 1, err))
                return -1;
        }
        if (j < 1 || j > HP_FINDINGS_ISOLATED_MAX ||
            j > (int)cJSON_GetObjectItemCaseSensitive(x, "tile_count")->valuedouble)
            return hp_error_set(err, HP_ERR_INVALID, "findings %s: %s/tiles must list 1 to %d of its tiles", path,
                                base, HP_FINDINGS_ISOLATED_MAX),
                   -1;
    }
    /* The largest focus of each extent names a region of this file. */
    static const char *const extents[2] = {"invasive", "in_situ_extent"};
    for (int e = 0; e < 2; e++) {
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, extents[e]);
        const cJSON *rid = cJSON_IsObject(ex) ? cJSON_GetObjectItemCaseSensitive(ex, "largest_region_id") : NULL;
        if (!cJSON_IsString(rid))
            continue;
        int found = 0;
        for (const cJSON *r = regions->child; r && !found; r = r->next)
            found = !strcmp(cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring, rid->valuestring);
        if (!found)
            return hp_error_set(err, HP_ERR_INVALID, "findings %s: /%s/largest_region_id names no region in /regions",
                                path, extents[e]),
                   -1;
    }
    return 0;
}

static int check_classes(const char *path, const cJSON *root, hp_error *err)
{
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(root, "classes");
    const cJSON *card_classes = hp_json_pointer_get(root, "/model/card/classes");
    if (cJSON_GetArraySize(classes) < 1 || cJSON_GetArraySize(classes) != cJSON_GetArraySize(card_classes))
        return hp_error_set(err, HP_ERR_INVALID,
                            "findings %s: /classes must have one entry per class of /model/card/classes", path),
               -1;
    int i = 0;
    for (const cJSON *c = classes->child; c; c = c->next, i++) {
        char base[64];
        snprintf(base, sizeof base, "/classes/%d", i);
        if (need(path, c, base, "", K_OBJ, err) || need(path, c, base, "/name", K_STR, err) ||
            need(path, c, base, "/area_mm2", K_NUM, err) || need_range(path, c, base, "/area_mm2", 0, 0, HUGE_VAL, err) ||
            need(path, c, base, "/fraction_of_tissue", K_NUM_OR_NULL, err) ||
            need_range(path, c, base, "/fraction_of_tissue", 0, 0, 1, err) ||
            need_int(path, c, base, "/tile_count", 0, INT_LIMIT, err) ||
            need_int(path, c, base, "/region_count", 0, INT_LIMIT, err) ||
            need(path, c, base, "/category", K_STR_OR_NULL, err))
            return -1;
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(c, "category");
        int mapped = cJSON_IsTrue(hp_json_pointer_get(root, "/diagnostic_categories/mapped"));
        if (cJSON_IsString(cat) ? hp_class_category_find(cat->valuestring) == HP_CLASS_UNMAPPED || !mapped
                                : mapped)
            return hp_error_set(err, HP_ERR_INVALID,
                                "findings %s: %s/category must be one of normal, benign, in-situ, invasive, other "
                                "when /diagnostic_categories/mapped is true, and null when it is false",
                                path, base),
                   -1;
    }
    /* One class per category (other aside), as the card's map allows. */
    for (const cJSON *a = classes->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next) {
            const cJSON *ca = cJSON_GetObjectItemCaseSensitive(a, "category");
            const cJSON *cb = cJSON_GetObjectItemCaseSensitive(b, "category");
            if (cJSON_IsString(ca) && cJSON_IsString(cb) && strcmp(ca->valuestring, "other") &&
                !strcmp(ca->valuestring, cb->valuestring))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "findings %s: /classes: two classes have the category %s (one class per "
                                    "category)",
                                    path, ca->valuestring),
                       -1;
        }
    return 0;
}

/* The invasive and in situ summaries are of the class the card maps to that category: the report
 * names them by category, so a summary of another class would be reported as tumour. */
static int check_extent_class(const char *path, const cJSON *root, const char *key, const char *category,
                              hp_error *err)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsObject(e))
        return 0;
    const char *cls = cJSON_GetObjectItemCaseSensitive(e, "class")->valuestring;
    for (const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "classes")->child; c; c = c->next) {
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(c, "category");
        if (!strcmp(cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring, cls) && cJSON_IsString(cat) &&
            !strcmp(cat->valuestring, category))
            return 0;
    }
    return hp_error_set(err, HP_ERR_INVALID,
                        "findings %s: /%s/class is not the class whose /classes/N/category is %s", path, key,
                        category),
           -1;
}

/* The findings schema's relative_path: letters, digits, '_', '-', '.', '/'; no leading '/', no
 * '.' or '..' segment. */
static int relative_path_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 255 || p[0] == '/' ||
        strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./") != n)
        return 0;
    for (const char *seg = p; seg && *seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL) {
        size_t len = strcspn(seg, "/");
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
    }
    return 1;
}

static int check_findings(const char *path, const cJSON *root, hp_error *err)
{
    if (!cJSON_IsObject(root))
        return hp_error_set(err, HP_ERR_INVALID, "findings %s: the top level must be a JSON object", path), -1;
    if (need(path, root, "", "/schema_version", K_STR, err))
        return -1;
    const char *ver = cJSON_GetObjectItemCaseSensitive(root, "schema_version")->valuestring;
    if (strcmp(ver, FINDINGS_SCHEMA_VERSION))
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "findings %s: schema_version %.32s is not the %s this histoplan reads", path, ver,
                            FINDINGS_SCHEMA_VERSION),
               -1;
    if (need(path, root, "", "/status", K_STR, err))
        return -1;
    if (strcmp(cJSON_GetObjectItemCaseSensitive(root, "status")->valuestring, "complete"))
        return hp_error_set(err, HP_ERR_INVALID, "findings %s: status is not \"complete\"", path), -1;
    static const struct {
        const char *ptr;
        enum kind k;
    } fields[] = {
        {"/generated_at", K_STR},       {"/slide/slide_id", K_STR},        {"/slide/sha256", K_STR},
        {"/slide/format", K_STR},       {"/slide/mpp_x", K_NUM}, {"/slide/level0_width_px", K_INT},
        {"/slide/level0_height_px", K_INT}, {"/analysis/tile_size_level0", K_NUM}, {"/case", K_OBJ},
        {"/case/accession", K_STR_OR_NULL}, {"/model/name", K_STR},        {"/model/version", K_STR_OR_NULL},
        {"/model/sha256", K_STR},       {"/model/backend", K_STR},         {"/model/precision", K_STR},
        {"/model/card/classes", K_ARR}, {"/model/card/intended_use", K_STR_OR_NULL},
        {"/model/card/training_data", K_STR_OR_NULL}, {"/model/card/license", K_STR_OR_NULL},
        {"/model/card/not_for_diagnosis", K_BOOL}, {"/analysis/tiles_analysed", K_INT},
        {"/tissue/area_mm2", K_NUM},    {"/qc/flags", K_ARR},              {"/qc/flag_descriptions", K_OBJ},
        {"/classes", K_ARR},            {"/uncertainty/mean_entropy", K_NUM_OR_NULL},
        {"/uncertainty/fraction_uncertain", K_NUM_OR_NULL}, {"/uncertainty/threshold", K_NUM},
        {"/regions", K_ARR},            {"/outputs", K_OBJ},               {"/outputs/overlay", K_STR_OR_NULL},
        {"/diagnostic_categories/mapped", K_BOOL}, {"/diagnostic_categories/note", K_STR},
        {"/isolated_tiles", K_ARR},     {"/domain/checked", K_BOOL},       {"/domain/out_of_domain", K_BOOL},
        {"/domain/reason", K_STR_OR_NULL}, {"/domain/calibration", K_OBJ_OR_NULL},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (need(path, root, "", fields[i].ptr, fields[i].k, err))
            return -1;
    /* An out-of-domain slide must say why: the report quotes the reason instead of a category. */
    if (cJSON_IsTrue(hp_json_pointer_get(root, "/domain/out_of_domain")) &&
        !cJSON_IsString(hp_json_pointer_get(root, "/domain/reason")))
        return hp_error_set(err, HP_ERR_INVALID,
                            "findings %s: /domain/reason must say why the slide is out of domain", path),
               -1;
    const cJSON *cal = hp_json_pointer_get(root, "/domain/calibration");
    if (cJSON_IsObject(cal) &&
        (need(path, root, "", "/domain/calibration/temperature", K_NUM, err) ||
         need(path, root, "", "/domain/calibration/ece_after", K_NUM, err) ||
         need(path, root, "", "/domain/calibration/calibrated_confidence", K_NUM_OR_NULL, err) ||
         need_range(path, root, "", "/domain/calibration/calibrated_confidence", 0, 0, 1, err) ||
         need_range(path, root, "", "/domain/calibration/ece_after", 0, 0, 1, err)))
        return -1;
    /* Ranges: sizes drive image arithmetic (a width of 1e-300 made an overlay scale of 1e300). */
    if (need_range(path, root, "", "/slide/mpp_x", HP_SLIDE_MPP_MIN, 0, HP_SLIDE_MPP_MAX, err) ||
        need_range(path, root, "", "/slide/level0_width_px", 1, 0, INT_LIMIT, err) ||
        need_range(path, root, "", "/slide/level0_height_px", 1, 0, INT_LIMIT, err) ||
        need_range(path, root, "", "/analysis/tile_size_level0", 0, 1, INT_LIMIT, err) ||
        need_range(path, root, "", "/analysis/tiles_analysed", 0, 0, INT_LIMIT, err) ||
        need_range(path, root, "", "/tissue/area_mm2", 0, 0, HUGE_VAL, err) ||
        need_range(path, root, "", "/uncertainty/mean_entropy", 0, 0, 1, err) ||
        need_range(path, root, "", "/uncertainty/fraction_uncertain", 0, 0, 1, err) ||
        need_range(path, root, "", "/uncertainty/threshold", 0, 0, 1, err))
        return -1;
    const char *sid = hp_json_pointer_get(root, "/slide/slide_id")->valuestring;
    if (!sid[0] || strlen(sid) > 64 || strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(sid))
        return hp_error_set(err, HP_ERR_INVALID, "findings %s: /slide/slide_id must be 1 to 64 letters, digits, '_' or '-'", path), -1;
    /* Images are read relative to the findings' folder: never from elsewhere. */
    const cJSON *ov = hp_json_pointer_get(root, "/outputs/overlay");
    if (cJSON_IsString(ov) && !relative_path_ok(ov->valuestring))
        return hp_error_set(err, HP_ERR_INVALID,
                            "findings %s: /outputs/overlay must be a path inside the findings' folder (no leading "
                            "'/', no '..')",
                            path),
               -1;
    int fi = 0;
    for (const cJSON *f = hp_json_pointer_get(root, "/qc/flags")->child; f; f = f->next, fi++)
        if (!cJSON_IsString(f))
            return hp_error_set(err, HP_ERR_INVALID, "findings %s: /qc/flags/%d must be a string", path, fi), -1;
    return check_classes(path, root, err) || check_extent(path, root, "invasive", err) ||
                   check_extent(path, root, "in_situ_extent", err) ||
                   check_extent_class(path, root, "invasive", "invasive", err) ||
                   check_extent_class(path, root, "in_situ_extent", "in-situ", err) || check_regions(path, root, err)
               ? -1
               : 0;
}

/* An image the findings name (`rel`, already a relative path without '..') must be a regular
 * file inside the findings' folder: no component may be a symbolic link, so findings cannot
 * smuggle another slide's overlay (or any other file) into a report. */
static int check_image(const char *path, const char *dir, const char *pointer, const char *rel, hp_error *err)
{
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (!p)
        return hp_error_set(err, HP_ERR_NOMEM, "findings %s: out of memory", path), -1;
    int at = snprintf(p, n, "%s/", dir);
    const char *why = NULL;
    for (const char *seg = rel; seg && !why;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        memcpy(p + at, seg, len);
        at += (int)len;
        p[at] = '\0';
        struct stat st;
        if (lstat(p, &st) != 0)
            why = errno == ENOENT ? "is missing from the findings' folder" : "cannot be read";
        else if (S_ISLNK(st.st_mode))
            why = "is (or lies under) a symbolic link; images must be regular files inside the findings' folder";
        else if (slash ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
            why = "is not a regular file inside the findings' folder";
        if (slash) {
            p[at++] = '/';
            seg = slash + 1;
        } else {
            seg = NULL;
        }
    }
    free(p);
    if (why)
        return hp_error_set(err, HP_ERR_INVALID, "findings %s: %s (%s) %s", path, pointer, rel, why), -1;
    return 0;
}

hp_status hp_findings_input_load(const char *path, hp_findings_input *fi, hp_error *err)
{
    memset(fi, 0, sizeof *fi);
    hp_status st = hp_json_file_read(path, "findings", &fi->root, fi->sha256, err);
    if (st)
        return st;
    fi->path = strdup(path);
    char *tmp = strdup(path);
    fi->dir = tmp ? strdup(dirname(tmp)) : NULL;
    free(tmp);
    if (!fi->path || !fi->dir) {
        hp_findings_input_free(fi);
        return hp_error_set(err, HP_ERR_NOMEM, "findings %s: out of memory", path);
    }
    const cJSON *ov = NULL;
    if (check_findings(path, fi->root, err) ||
        (cJSON_IsString(ov = hp_json_pointer_get(fi->root, "/outputs/overlay")) &&
         check_image(path, fi->dir, "/outputs/overlay", ov->valuestring, err))) {
        hp_findings_input_free(fi);
        return err && err->code ? err->code : HP_ERR_INVALID;
    }
    return HP_OK;
}

void hp_findings_input_free(hp_findings_input *fi)
{
    if (!fi)
        return;
    cJSON_Delete(fi->root);
    free(fi->path);
    free(fi->dir);
    memset(fi, 0, sizeof *fi);
}

const cJSON *hp_fi_get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

double hp_fi_num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

const char *hp_fi_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
