/* tiles.geojson (see the header). Each feature is built with cJSON (names escaped as JSON wants)
 * and printed on its own line, so memory stays bounded by one feature whatever the slide. */
#include "pipeline/write_tiles_geojson.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

/* `v` to 6 significant digits, as tiles.csv prints it, so the two files give the same numbers
 * (a float widened to double would otherwise print as 0.899999976...). */
static double r6(float v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", (double)v);
    return strtod(buf, NULL);
}

/* The feature of analysed tile t; NULL when out of memory. */
static cJSON *feature(const hp_heatmap_grid *g, const hp_tile_extras *x, const int32_t *region,
                      const float *ent, char (*mnames)[HP_HEATMAP_NAME_MAX + 16], size_t t)
{
    int i = (int)(t % g->gw), j = (int)(t / g->gw), C = g->nclasses;
    double x0 = g->x0 + i * g->tile_size, y0 = g->y0 + j * g->tile_size, s = g->tile_size;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "type", "Feature");
    cJSON *geo = cJSON_AddObjectToObject(f, "geometry");
    cJSON_AddStringToObject(geo, "type", "Polygon");
    cJSON *coords = cJSON_AddArrayToObject(geo, "coordinates");
    cJSON *ring = cJSON_CreateArray();
    int ok = ring && coords && cJSON_AddItemToArray(coords, ring);
    if (!ok)
        cJSON_Delete(ring);
    const double xy[5][2] = {{x0, y0}, {x0 + s, y0}, {x0 + s, y0 + s}, {x0, y0 + s}, {x0, y0}};
    for (int k = 0; ok && k < 5; k++) {
        cJSON *pt = cJSON_CreateDoubleArray(xy[k], 2);
        if (!pt || !cJSON_AddItemToArray(ring, pt)) {
            cJSON_Delete(pt);
            ok = 0;
        }
    }
    cJSON *pr = cJSON_AddObjectToObject(f, "properties");
    cJSON_AddStringToObject(pr, "objectType", "detection");
    int top = hp_heatmap_argmax(g, g->prob, t);
    cJSON *c = cJSON_AddObjectToObject(pr, "classification");
    cJSON_AddStringToObject(c, "name", g->names[top]);
    int rgb[3] = {g->rgb[top][0], g->rgb[top][1], g->rgb[top][2]};
    cJSON *col = cJSON_CreateIntArray(rgb, 3);
    if (!col || !c || !cJSON_AddItemToObject(c, "color", col)) {
        cJSON_Delete(col);
        ok = 0;
    }
    cJSON_AddBoolToObject(pr, "isLocked", 0);
    cJSON *m = cJSON_AddObjectToObject(pr, "measurements");
    /* Rounded as tiles.csv prints them (6 significant digits), so the two files agree. */
    for (int k = 0; k < C; k++)
        cJSON_AddNumberToObject(m, mnames[k], r6(g->prob[t * C + k]));
    cJSON_AddNumberToObject(m, "Entropy", r6(ent[t]));
    if (!isnan(g->tissue[t]))
        cJSON_AddNumberToObject(m, "Tissue fraction", r6(g->tissue[t]));
    if (x && x->ood_score && !isnan(x->ood_score[t]))
        cJSON_AddNumberToObject(m, "OOD score", r6(x->ood_score[t]));
    if (x && x->super_resolved) /* QuPath shows measurements as numbers: 1 = super-resolved */
        cJSON_AddNumberToObject(m, "Super-resolved", 1);
    cJSON *h = cJSON_AddObjectToObject(pr, "histoplan");
    cJSON_AddNumberToObject(h, "tile_index", (double)t);
    cJSON_AddNumberToObject(h, "i", i);
    cJSON_AddNumberToObject(h, "j", j);
    if (region[t] >= 0) {
        char id[HP_REGION_ID_MAX];
        hp_region_id(region[t], id);
        cJSON_AddStringToObject(h, "region_id", id);
    } else {
        cJSON_AddNullToObject(h, "region_id");
    }
    if (!ok || !geo || !pr || !m || !h) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

hp_status hp_write_tiles_geojson(const char *path, const hp_heatmap_grid *g, const hp_tile_extras *x,
                                 hp_error *err)
{
    if (!path || !g)
        return hp_error_set(err, HP_ERR_INVALID, "tiles GeoJSON writer: missing path or grid");
    hp_error e = {0};
    if (hp_heatmap_grid_check(g, &e))
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s", path, e.msg);
    size_t n = (size_t)g->gw * g->gh;
    int C = g->nclasses;
    float *ent = malloc(n * sizeof *ent);
    int32_t *region = malloc(n * sizeof *region);
    char(*mnames)[HP_HEATMAP_NAME_MAX + 16] = malloc((size_t)C * sizeof *mnames);
    hp_status st = HP_OK;
    if (!ent || !region || !mnames) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    hp_regions_tile_map(x ? x->regions : NULL, n, region);
    hp_heatmap_entropy(g, ent);
    /* Measurement names carry the class's display name: QuPath shows them as written. */
    for (int k = 0; k < C; k++)
        snprintf(mnames[k], sizeof mnames[k], "Probability %s", g->names[k]);
    hp_atomic_file af;
    if ((st = hp_atomic_open(path, &af, err)))
        goto fail;
    FILE *f = af.f;
    int ok = fputs("{\"type\": \"FeatureCollection\", \"features\": [\n", f) >= 0;
    int first = 1;
    for (size_t t = 0; ok && t < n; t++) {
        if (!hp_heatmap_analysed(g, t))
            continue;
        cJSON *feat = feature(g, x, region, ent, mnames, t);
        char *text = feat ? cJSON_PrintUnformatted(feat) : NULL;
        cJSON_Delete(feat);
        if (!text) {
            st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
            ok = 0;
            break;
        }
        ok = fputs(first ? "" : ",\n", f) >= 0 && fputs(text, f) >= 0;
        first = 0;
        cJSON_free(text);
    }
    ok = ok && fputs("\n]}\n", f) >= 0 && !ferror(f);
    hp_status fin = hp_atomic_finish(path, &af, ok, err);
    if (!st)
        st = fin;
fail:
    free(ent);
    free(region);
    free(mnames);
    return st;
}
