/* Ground truth beside a synthetic slide: the label mask as a gray PNG, its regions as QuPath
 * GeoJSON polygons, and a JSON summary with exact per-class areas.
 *
 * Polygons are traced along pixel edges of the label mask, one feature per 4-connected region of
 * a class, by pipeline/contour.c (the same tracer as the measured regions): diagonal neighbours
 * stay separate regions, rings are simple, holes (regions of another class inside) become
 * interior rings. */
#include <cjson/cJSON.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "pipeline/contour.h"
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

static const int class_rgb[HP_SYNTH_NCLASSES][3] = {
    {255, 255, 255}, {0, 160, 0}, {0, 90, 220}, {240, 170, 0}, {210, 0, 0}};

static cJSON *ring_json(const hp_contour_ring *r, int ts, int64_t W, int64_t H)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n; i++) {
        double x = (double)r->xy[2 * i] * ts, y = (double)r->xy[2 * i + 1] * ts;
        double pt[2] = {x > (double)W ? (double)W : x, y > (double)H ? (double)H : y};
        cJSON_AddItemToArray(a, cJSON_CreateDoubleArray(pt, 2));
    }
    return a;
}

/* One feature per 4-connected region of a class (pipeline/contour.c traces them). */
static hp_status add_features(const hp_synth *s, const uint8_t *mask, int mw, int mh, int ts,
                              cJSON *features)
{
    const hp_synth_params *p = hp_synth_get_params(s);
    hp_contour_components *cc = NULL;
    hp_status st = hp_contour_components_create(mask, mw, mh, HP_SYNTH_BACKGROUND, &cc);
    for (int32_t id = 0; !st && id < cc->n; id++) {
        int cls = cc->c[id].label;
        hp_contour_polygon poly;
        if ((st = hp_contour_trace(cc, id, &poly)))
            break;
        cJSON *f = cJSON_CreateObject(), *g = cJSON_AddObjectToObject(f, "geometry");
        cJSON_AddStringToObject(f, "type", "Feature");
        cJSON_AddStringToObject(g, "type", "Polygon");
        cJSON *coords = cJSON_AddArrayToObject(g, "coordinates");
        for (int i = 0; i < poly.nrings; i++)
            cJSON_AddItemToArray(coords, ring_json(&poly.rings[i], ts, p->width, p->height));
        cJSON *pr = cJSON_AddObjectToObject(f, "properties");
        cJSON_AddStringToObject(pr, "objectType", "annotation");
        cJSON *c = cJSON_AddObjectToObject(pr, "classification");
        cJSON_AddStringToObject(c, "name", hp_synth_class_name(cls));
        cJSON_AddItemToObject(c, "color", cJSON_CreateIntArray(class_rgb[cls], 3));
        cJSON_AddNumberToObject(pr, "label", cls);
        cJSON *m = cJSON_AddObjectToObject(pr, "measurements");
        double area_px = (double)cc->c[id].cells * ts * ts;
        cJSON_AddNumberToObject(m, "mask_area_px", area_px);
        cJSON_AddNumberToObject(m, "mask_area_mm2", area_px * p->mpp * p->mpp * 1e-6);
        cJSON_AddItemToArray(features, f);
        hp_contour_polygon_free(&poly);
    }
    hp_contour_components_destroy(cc);
    return st;
}

static hp_status write_json(const char *path, cJSON *root, hp_error *err)
{
    char *text = cJSON_PrintUnformatted(root);
    if (!text)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    hp_status st = hp_atomic_write_text(path, text, err);
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
