/* regions.geojson (see the header for the layout). cJSON builds the document; it prints
 * doubles with up to 17 significant digits, so coordinates survive the round trip exactly. */
#include "pipeline/write_geojson.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

static cJSON *ring_json(const hp_region_ring *r)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n; i++) {
        cJSON *pt = cJSON_CreateDoubleArray(r->xy + 2 * i, 2);
        if (!pt || !cJSON_AddItemToArray(a, pt)) {
            cJSON_Delete(pt);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* One Feature, or NULL when out of memory. cJSON's Add functions tolerate a NULL parent, so only
 * the final check is needed; a partial object is freed there. */
static cJSON *feature(const hp_heatmap_grid *g, const hp_regions *rs, int idx, int nth)
{
    const hp_region *r = &rs->r[idx];
    int ok = 1;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "type", "Feature");
    cJSON *geo = cJSON_AddObjectToObject(f, "geometry");
    cJSON_AddStringToObject(geo, "type", "Polygon");
    cJSON *coords = cJSON_AddArrayToObject(geo, "coordinates");
    for (int i = 0; i < r->nrings; i++) {
        cJSON *ring = ring_json(&r->rings[i]);
        if (!ring || !coords || !cJSON_AddItemToArray(coords, ring)) {
            cJSON_Delete(ring);
            ok = 0;
        }
    }
    cJSON *pr = cJSON_AddObjectToObject(f, "properties");
    cJSON_AddStringToObject(pr, "objectType", "annotation");
    /* The name is the region's id, as the report and findings.json print it; the class-local
     * label goes beside it for readers who count per class. */
    char id[HP_REGION_ID_MAX], label[300];
    hp_region_id(idx, id);
    snprintf(label, sizeof label, "%s %d", g->names[r->cls], nth);
    cJSON_AddStringToObject(pr, "name", id);
    cJSON *c = cJSON_AddObjectToObject(pr, "classification");
    cJSON_AddStringToObject(c, "name", g->names[r->cls]);
    int rgb[3] = {g->rgb[r->cls][0], g->rgb[r->cls][1], g->rgb[r->cls][2]};
    cJSON *col = cJSON_CreateIntArray(rgb, 3);
    if (!col || !c || !cJSON_AddItemToObject(c, "color", col)) {
        cJSON_Delete(col);
        ok = 0;
    }
    cJSON_AddBoolToObject(pr, "isLocked", 0);
    cJSON *m = cJSON_AddObjectToObject(pr, "measurements");
    cJSON_AddNumberToObject(m, "Area mm2", r->area_mm2);
    cJSON_AddNumberToObject(m, "Largest diameter mm", r->diameter_mm);
    cJSON_AddNumberToObject(m, "Mean probability", r->mean_prob);
    cJSON_AddNumberToObject(m, "Max probability", r->max_prob);
    cJSON_AddNumberToObject(m, "Tiles", (double)r->ntiles);
    cJSON *h = cJSON_AddObjectToObject(pr, "histoplan");
    cJSON_AddStringToObject(h, "region_id", id);
    cJSON_AddStringToObject(h, "label", label);
    cJSON_AddNumberToObject(h, "class_index", r->cls);
    cJSON_AddNumberToObject(h, "threshold", rs->threshold);
    double cxy[2] = {r->cx, r->cy};
    cJSON *cen = cJSON_CreateDoubleArray(cxy, 2);
    if (!cen || !h || !cJSON_AddItemToObject(h, "centroid", cen)) {
        cJSON_Delete(cen);
        ok = 0;
    }
    cJSON *ev = cJSON_AddArrayToObject(h, "evidence_tiles");
    for (int64_t i = 0; ev && i < r->ntiles; i++) {
        cJSON *n = cJSON_CreateNumber(r->tiles[i]);
        if (!n || !cJSON_AddItemToArray(ev, n)) {
            cJSON_Delete(n);
            ok = 0;
            break;
        }
    }
    if (!ok || !f || !geo || !coords || !pr || !m || !ev || !cJSON_GetObjectItem(m, "Tiles")) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

hp_status hp_write_regions_geojson(const char *path, const hp_heatmap_grid *g,
                                   const hp_regions *rs, hp_error *err)
{
    if (!path || !g || !rs)
        return hp_error_set(err, HP_ERR_INVALID, "GeoJSON writer: missing path, grid or regions");
    hp_status st = HP_OK;
    char *text = NULL;
    cJSON *fc = cJSON_CreateObject();
    cJSON_AddStringToObject(fc, "type", "FeatureCollection");
    cJSON *features = cJSON_AddArrayToObject(fc, "features");
    if (!features)
        goto nomem;
    for (int i = 0; i < rs->n; i++) {
        cJSON *f = feature(g, rs, i, hp_region_class_rank(rs, i));
        if (!f || !cJSON_AddItemToArray(features, f)) {
            cJSON_Delete(f);
            goto nomem;
        }
    }
    if (!(text = cJSON_PrintUnformatted(fc)))
        goto nomem;
    st = hp_atomic_write_text(path, text, err);
    cJSON_Delete(fc);
    free(text);
    return st;
nomem:
    cJSON_Delete(fc);
    return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
}
