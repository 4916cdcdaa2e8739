/* Ground truth beside a synthetic slide: the label mask as a gray PNG, its regions as QuPath
 * GeoJSON polygons, and a JSON summary with exact per-class areas.
 *
 * Polygons are traced along pixel edges of the label mask, one feature per 4-connected region of
 * a class: the outline keeps the region on its right (clockwise on screen, y down) and turns
 * right first where two diagonal pixels meet, so diagonal neighbours stay separate regions, as
 * 4-connectivity says, and the outline never crosses itself. Holes (regions of another class
 * inside) become interior rings. */
#include <cjson/cJSON.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "pipeline/synth.h"

char *hp_synth_truth_path(const char *slide_path, const char *suffix)
{
    size_t n = strlen(slide_path);
    const char *slash = strrchr(slide_path, '/');
    const char *dot = strrchr(slide_path, '.');
    if (dot && (!slash || dot > slash + 1))
        n = (size_t)(dot - slide_path);
    char *r = malloc(n + strlen(suffix) + 1);
    if (r) {
        memcpy(r, slide_path, n);
        strcpy(r + n, suffix);
    }
    return r;
}

static hp_status write_gray_png(const char *path, const uint8_t *g, int w, int h, hp_error *err)
{
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st)
        return st;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int ok = 0;
    if (png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, af.f);
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
                     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (int y = 0; y < h; y++)
            png_write_row(png, (png_const_bytep)(g + (size_t)y * w));
        png_write_end(png, info);
        ok = 1;
    }
    png_destroy_write_struct(&png, &info);
    return hp_atomic_finish(path, &af, ok, err);
}

/* ---- tracing ---- */

typedef struct {
    double *xy; /* closed: last point equals first */
    size_t n, cap;
    double area2; /* twice the signed area; > 0 for outer rings */
} ring;

static int ring_push(ring *r, double x, double y)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        double *p = realloc(r->xy, cap * 2 * sizeof *p);
        if (!p)
            return -1;
        r->xy = p;
        r->cap = cap;
    }
    r->xy[r->n * 2] = x;
    r->xy[r->n * 2 + 1] = y;
    r->n++;
    return 0;
}

static const int DX[4] = {1, 0, -1, 0}, DY[4] = {0, 1, 0, -1}; /* +x, +y, -x, -y */

/* Traces the component marked `id` in comp (bbox bx0..bx1 x by0..by1 of the mask, inclusive)
 * into rings. `edges` holds one byte per vertex of the bbox, (bw+1) x (bh+1). */
static hp_status trace(const int32_t *comp, int mw, int mh, int32_t id, int bx0, int by0, int bx1,
                       int by1, ring **rings, int *nrings)
{
    int bw = bx1 - bx0 + 1, bh = by1 - by0 + 1, vw = bw + 1;
    uint8_t *ed = calloc((size_t)vw * (bh + 1), 1);
    if (!ed)
        return HP_ERR_NOMEM;
    (void)mh;
#define IN(x, y) ((x) >= bx0 && (x) <= bx1 && (y) >= by0 && (y) <= by1 && comp[(size_t)(y)*mw + (x)] == id)
#define V(x, y) ed[(size_t)((y) - by0) * vw + ((x) - bx0)]
    for (int y = by0; y <= by1; y++)
        for (int x = bx0; x <= bx1; x++) {
            if (!IN(x, y))
                continue;
            if (!IN(x, y - 1))
                V(x, y) |= 1 << 0; /* top edge, going +x */
            if (!IN(x + 1, y))
                V(x + 1, y) |= 1 << 1; /* right edge, going +y */
            if (!IN(x, y + 1))
                V(x + 1, y + 1) |= 1 << 2; /* bottom edge, going -x */
            if (!IN(x - 1, y))
                V(x, y + 1) |= 1 << 3; /* left edge, going -y */
        }
    hp_status st = HP_OK;
    for (int vy = by0; vy <= by1 + 1 && !st; vy++)
        for (int vx = bx0; vx <= bx1 + 1 && !st; vx++) {
            while (V(vx, vy) && !st) {
                int d = 0;
                while (!(V(vx, vy) & (1 << d)))
                    d++;
                ring *nr = realloc(*rings, (size_t)(*nrings + 1) * sizeof *nr);
                if (!nr) {
                    st = HP_ERR_NOMEM;
                    break;
                }
                *rings = nr;
                ring *r = &nr[(*nrings)++];
                memset(r, 0, sizeof *r);
                int x = vx, y = vy, prev = -1;
                for (;;) {
                    V(x, y) &= (uint8_t)~(1 << d);
                    if (d != prev && ring_push(r, x, y)) {
                        st = HP_ERR_NOMEM;
                        break;
                    }
                    prev = d;
                    x += DX[d];
                    y += DY[d];
                    if (x == vx && y == vy)
                        break;
                    /* Right turn first, then straight, then left. */
                    int nd = -1;
                    for (int k = 1; k >= -1; k--) {
                        int c = (d + k + 4) % 4;
                        if (V(x, y) & (1 << c)) {
                            nd = c;
                            break;
                        }
                    }
                    if (nd < 0) {
                        st = HP_ERR_INVALID; /* cannot happen: every vertex is balanced */
                        break;
                    }
                    d = nd;
                }
                if (!st && ring_push(r, vx, vy))
                    st = HP_ERR_NOMEM;
                for (size_t i = 0; !st && i + 1 < r->n; i++)
                    r->area2 += r->xy[2 * i] * r->xy[2 * i + 3] - r->xy[2 * i + 2] * r->xy[2 * i + 1];
            }
        }
#undef IN
#undef V
    free(ed);
    return st;
}

static const int class_rgb[HP_SYNTH_NCLASSES][3] = {
    {255, 255, 255}, {0, 160, 0}, {0, 90, 220}, {240, 170, 0}, {210, 0, 0}};

static cJSON *ring_json(const ring *r, int ts, int64_t W, int64_t H)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n; i++) {
        double x = r->xy[2 * i] * ts, y = r->xy[2 * i + 1] * ts;
        double pt[2] = {x > (double)W ? (double)W : x, y > (double)H ? (double)H : y};
        cJSON_AddItemToArray(a, cJSON_CreateDoubleArray(pt, 2));
    }
    return a;
}

/* Labels 4-connected components of each class and appends one feature per component. */
static hp_status add_features(const hp_synth *s, const uint8_t *mask, int mw, int mh, int ts,
                              cJSON *features)
{
    const hp_synth_params *p = hp_synth_get_params(s);
    size_t n = (size_t)mw * mh;
    int32_t *comp = malloc(n * sizeof *comp);
    int32_t *stack = malloc(n * sizeof *stack);
    hp_status st = HP_OK;
    if (!comp || !stack) {
        st = HP_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        comp[i] = -1;
    int32_t next = 0;
    for (size_t start = 0; start < n && !st; start++) {
        if (comp[start] >= 0 || mask[start] == HP_SYNTH_BACKGROUND)
            continue;
        int cls = mask[start];
        int32_t id = next++;
        int bx0 = mw, by0 = mh, bx1 = -1, by1 = -1;
        long count = 0;
        size_t sp = 0;
        stack[sp++] = (int32_t)start;
        comp[start] = id;
        while (sp) {
            int32_t i = stack[--sp];
            int x = i % mw, y = i / mw;
            count++;
            bx0 = x < bx0 ? x : bx0;
            bx1 = x > bx1 ? x : bx1;
            by0 = y < by0 ? y : by0;
            by1 = y > by1 ? y : by1;
            const int nx[4] = {x - 1, x + 1, x, x}, ny[4] = {y, y, y - 1, y + 1};
            for (int k = 0; k < 4; k++) {
                if (nx[k] < 0 || ny[k] < 0 || nx[k] >= mw || ny[k] >= mh)
                    continue;
                size_t j = (size_t)ny[k] * mw + nx[k];
                if (comp[j] < 0 && mask[j] == cls) {
                    comp[j] = id;
                    stack[sp++] = (int32_t)j;
                }
            }
        }
        ring *rings = NULL;
        int nr = 0;
        st = trace(comp, mw, mh, id, bx0, by0, bx1, by1, &rings, &nr);
        int outer = -1;
        for (int i = 0; i < nr; i++)
            if (rings[i].area2 > 0 && (outer < 0 || rings[i].area2 > rings[outer].area2))
                outer = i;
        if (!st && outer >= 0) {
            cJSON *f = cJSON_CreateObject(), *g = cJSON_AddObjectToObject(f, "geometry");
            cJSON_AddStringToObject(f, "type", "Feature");
            cJSON_AddStringToObject(g, "type", "Polygon");
            cJSON *coords = cJSON_AddArrayToObject(g, "coordinates");
            cJSON_AddItemToArray(coords, ring_json(&rings[outer], ts, p->width, p->height));
            for (int i = 0; i < nr; i++)
                if (rings[i].area2 < 0)
                    cJSON_AddItemToArray(coords, ring_json(&rings[i], ts, p->width, p->height));
            cJSON *pr = cJSON_AddObjectToObject(f, "properties");
            cJSON_AddStringToObject(pr, "objectType", "annotation");
            cJSON *c = cJSON_AddObjectToObject(pr, "classification");
            cJSON_AddStringToObject(c, "name", hp_synth_class_name(cls));
            cJSON_AddItemToObject(c, "color", cJSON_CreateIntArray(class_rgb[cls], 3));
            cJSON_AddNumberToObject(pr, "label", cls);
            cJSON *m = cJSON_AddObjectToObject(pr, "measurements");
            double area_px = (double)count * ts * ts;
            cJSON_AddNumberToObject(m, "mask_area_px", area_px);
            cJSON_AddNumberToObject(m, "mask_area_mm2", area_px * p->mpp * p->mpp * 1e-6);
            cJSON_AddItemToArray(features, f);
        }
        for (int i = 0; i < nr; i++)
            free(rings[i].xy);
        free(rings);
    }
done:
    free(comp);
    free(stack);
    return st;
}

static hp_status write_json(const char *path, cJSON *root, hp_error *err)
{
    char *text = cJSON_PrintUnformatted(root);
    if (!text)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (!st) {
        size_t n = strlen(text);
        int ok = fwrite(text, 1, n, af.f) == n && fputc('\n', af.f) != EOF;
        st = hp_atomic_finish(path, &af, ok, err);
    }
    free(text);
    return st;
}

hp_status hp_synth_write_truth(const hp_synth *s, const char *slide_path, const uint8_t *mask,
                               int mw, int mh, int truth_scale,
                               const int64_t counts[HP_SYNTH_NCLASSES], hp_error *err)
{
    const hp_synth_params *p = hp_synth_get_params(s);
    char *png = hp_synth_truth_path(slide_path, ".truth.png");
    char *geo = hp_synth_truth_path(slide_path, ".truth.geojson");
    char *js = hp_synth_truth_path(slide_path, ".truth.json");
    cJSON *fc = NULL, *sum = NULL;
    hp_status st = HP_OK;
    if (!png || !geo || !js) {
        st = hp_error_set(err, HP_ERR_NOMEM, "synth: out of memory");
        goto done;
    }
    if ((st = write_gray_png(png, mask, mw, mh, err)))
        goto done;

    fc = cJSON_CreateObject();
    cJSON_AddStringToObject(fc, "type", "FeatureCollection");
    cJSON *features = cJSON_AddArrayToObject(fc, "features");
    if ((st = add_features(s, mask, mw, mh, truth_scale, features))) {
        st = hp_error_set(err, st, "%s: tracing the regions failed (%s)", geo, hp_status_name(st));
        goto done;
    }
    if ((st = write_json(geo, fc, err)))
        goto done;

    sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "generator", "histoplan synth " HP_VERSION);
    cJSON_AddNumberToObject(sum, "seed", (double)p->seed);
    cJSON_AddNumberToObject(sum, "width", (double)p->width);
    cJSON_AddNumberToObject(sum, "height", (double)p->height);
    cJSON_AddNumberToObject(sum, "mpp", p->mpp);
    cJSON_AddNumberToObject(sum, "truth_scale", truth_scale);
    cJSON_AddStringToObject(sum, "mask_encoding",
                            "8-bit gray PNG; pixel (i, j) is the class at level-0 pixel "
                            "(i*s + s/2, j*s + s/2), s = truth_scale, clamped into the slide");
    cJSON *classes = cJSON_AddArrayToObject(sum, "classes");
    for (int k = 0; k < HP_SYNTH_NCLASSES; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "value", k);
        cJSON_AddStringToObject(c, "name", hp_synth_class_name(k));
        cJSON_AddNumberToObject(c, "area_px", (double)counts[k]);
        cJSON_AddNumberToObject(c, "area_mm2", (double)counts[k] * p->mpp * p->mpp * 1e-6);
        cJSON_AddItemToArray(classes, c);
    }
    st = write_json(js, sum, err);
done:
    cJSON_Delete(fc);
    cJSON_Delete(sum);
    free(png);
    free(geo);
    free(js);
    return st;
}
