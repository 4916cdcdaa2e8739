/* Regions from a probability map (see the header). Per class: a 0/1 grid of tiles at or above
 * the threshold, its 4-connected components and their outlines (pipeline/contour.c), then the
 * measurements. The largest diameter is taken over the convex hull of the outer ring, the only
 * vertices that can be its ends, so it costs little even for long outlines. */
#include "pipeline/regions.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/contour.h"

void hp_regions_destroy(hp_regions *rs)
{
    if (!rs)
        return;
    for (int i = 0; i < rs->n; i++) {
        hp_region *r = &rs->r[i];
        for (int k = 0; k < r->nrings; k++)
            free(r->rings[k].xy);
        free(r->rings);
        free(r->tiles);
    }
    free(rs->r);
    free(rs);
}

static double cross(const double *o, const double *a, const double *b)
{
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

static int cmp_pt(const void *a, const void *b)
{
    const double *p = a, *q = b;
    if (p[0] != q[0])
        return p[0] < q[0] ? -1 : 1;
    return p[1] < q[1] ? -1 : p[1] > q[1];
}

/* Largest distance between the points of a closed ring (Andrew's monotone chain hull, then all
 * pairs of hull vertices). */
static int diameter(const hp_region_ring *r, double *out)
{
    size_t n = r->n > 1 ? r->n - 1 : r->n;
    double *p = malloc(n * 2 * sizeof *p), *h = malloc((2 * n + 1) * 2 * sizeof *h);
    if (!p || !h) {
        free(p);
        free(h);
        return -1;
    }
    memcpy(p, r->xy, n * 2 * sizeof *p);
    qsort(p, n, 2 * sizeof *p, cmp_pt);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        while (k >= 2 && cross(h + 2 * (k - 2), h + 2 * (k - 1), p + 2 * i) <= 0)
            k--;
        memcpy(h + 2 * k++, p + 2 * i, 2 * sizeof *h);
    }
    for (size_t i = n - 1, lo = k + 1; i-- > 0;) {
        while (k >= lo && cross(h + 2 * (k - 2), h + 2 * (k - 1), p + 2 * i) <= 0)
            k--;
        memcpy(h + 2 * k++, p + 2 * i, 2 * sizeof *h);
    }
    double best = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++) {
            double dx = h[2 * i] - h[2 * j], dy = h[2 * i + 1] - h[2 * j + 1];
            double d = dx * dx + dy * dy;
            best = d > best ? d : best;
        }
    *out = sqrt(best);
    free(p);
    free(h);
    return 0;
}

/* For ordering evidence tiles: highest probability first, then lower tile index. */
typedef struct {
    float p;
    int32_t t;
} ev;

static int cmp_ev(const void *a, const void *b)
{
    const ev *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}

static int cmp_region(const void *a, const void *b)
{
    const hp_region *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls - y->cls;
    if (x->ntiles != y->ntiles)
        return x->ntiles > y->ntiles ? -1 : 1;
    int32_t fx = x->tiles[0], fy = y->tiles[0];
    for (int64_t i = 1; i < x->ntiles; i++)
        fx = x->tiles[i] < fx ? x->tiles[i] : fx;
    for (int64_t i = 1; i < y->ntiles; i++)
        fy = y->tiles[i] < fy ? y->tiles[i] : fy;
    return (fx > fy) - (fx < fy);
}

/* Measures component id of cc (class k) into r. */
static hp_status measure(const hp_heatmap_grid *g, const hp_contour_components *cc, int32_t id,
                         int k, hp_region *r, ev *scratch)
{
    const hp_contour_component *c = &cc->c[id];
    int C = g->nclasses;
    double ts = g->tile_size;
    hp_contour_polygon poly;
    hp_status st = hp_contour_trace(cc, id, &poly);
    if (st)
        return st;
    r->cls = k;
    r->ntiles = c->cells;
    r->rings = calloc((size_t)poly.nrings, sizeof *r->rings);
    r->tiles = malloc((size_t)c->cells * sizeof *r->tiles);
    if (!r->rings || !r->tiles) {
        st = HP_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < poly.nrings; i++) {
        const hp_contour_ring *in = &poly.rings[i];
        hp_region_ring *o = &r->rings[r->nrings];
        if (!(o->xy = malloc(in->n * 2 * sizeof *o->xy))) {
            st = HP_ERR_NOMEM;
            goto done;
        }
        r->nrings++;
        o->n = in->n;
        for (size_t p = 0; p < in->n; p++) {
            o->xy[2 * p] = g->x0 + in->xy[2 * p] * ts;
            o->xy[2 * p + 1] = g->y0 + in->xy[2 * p + 1] * ts;
        }
    }
    int64_t m = 0;
    double sum = 0, mx = 0, sx = 0, sy = 0;
    for (int y = c->y0; y <= c->y1; y++)
        for (int x = c->x0; x <= c->x1; x++) {
            size_t t = (size_t)y * g->gw + x;
            if (cc->comp[t] != id)
                continue;
            float p = g->prob[t * C + k];
            scratch[m].p = p;
            scratch[m].t = (int32_t)t;
            m++;
            sum += p;
            mx = p > mx ? p : mx;
            sx += g->x0 + (x + 0.5) * ts;
            sy += g->y0 + (y + 0.5) * ts;
        }
    qsort(scratch, (size_t)m, sizeof *scratch, cmp_ev);
    for (int64_t i = 0; i < m; i++)
        r->tiles[i] = scratch[i].t;
    r->mean_prob = sum / (double)m;
    r->max_prob = mx;
    r->cx = sx / (double)m;
    r->cy = sy / (double)m;
    double mm_per_px = g->mpp * 1e-3;
    r->area_mm2 = (double)m * (ts * mm_per_px) * (ts * mm_per_px);
    double d;
    if (diameter(&r->rings[0], &d)) {
        st = HP_ERR_NOMEM;
        goto done;
    }
    r->diameter_mm = d * mm_per_px;
done:
    hp_contour_polygon_free(&poly);
    return st;
}

hp_status hp_regions_extract(const hp_heatmap_grid *g, const float *map, double threshold,
                             int min_tiles, hp_regions **out, hp_error *err)
{
    *out = NULL;
    hp_status st = hp_heatmap_grid_check(g, err);
    if (st)
        return st;
    if (!(threshold > 0 && threshold <= 1))
        return hp_error_set(err, HP_ERR_INVALID, "regions: threshold %g is outside (0, 1]",
                            threshold);
    size_t n = (size_t)g->gw * g->gh;
    int C = g->nclasses;
    hp_regions *rs = calloc(1, sizeof *rs);
    uint8_t *on = malloc(n);
    ev *scratch = malloc(n * sizeof *scratch);
    hp_contour_components *cc = NULL;
    int cap = 0;
    if (!rs || !on || !scratch) {
        st = HP_ERR_NOMEM;
        goto done;
    }
    rs->threshold = threshold;
    for (int k = 0; k < C && !st; k++) {
        for (size_t t = 0; t < n; t++)
            on[t] = hp_heatmap_analysed(g, t) && map[t * C + k] >= threshold;
        if ((st = hp_contour_components_create(on, g->gw, g->gh, 0, &cc)))
            break;
        for (int32_t id = 0; id < cc->n && !st; id++) {
            if (cc->c[id].cells < min_tiles)
                continue;
            if (rs->n == cap) {
                cap = cap ? cap * 2 : 16;
                hp_region *p = realloc(rs->r, (size_t)cap * sizeof *p);
                if (!p) {
                    st = HP_ERR_NOMEM;
                    break;
                }
                rs->r = p;
            }
            hp_region *r = &rs->r[rs->n++];
            memset(r, 0, sizeof *r);
            st = measure(g, cc, id, k, r, scratch);
        }
        hp_contour_components_destroy(cc);
        cc = NULL;
    }
    if (!st && rs->n > 1)
        qsort(rs->r, (size_t)rs->n, sizeof *rs->r, cmp_region);
done:
    free(on);
    free(scratch);
    if (st) {
        hp_regions_destroy(rs);
        return hp_error_set(err, st, "regions: %s", hp_status_name(st));
    }
    *out = rs;
    return HP_OK;
}

void hp_region_id(int index, char out[HP_REGION_ID_MAX])
{
    snprintf(out, HP_REGION_ID_MAX, "R%d", index + 1);
}

int hp_region_class_rank(const hp_regions *rs, int index)
{
    int nth = 1;
    for (int j = 0; j < index; j++)
        nth += rs->r[j].cls == rs->r[index].cls;
    return nth;
}

void hp_regions_tile_map(const hp_regions *rs, size_t n_tiles, int32_t *out)
{
    for (size_t t = 0; t < n_tiles; t++)
        out[t] = -1;
    for (int i = rs ? rs->n - 1 : -1; i >= 0; i--)
        for (int64_t k = 0; k < rs->r[i].ntiles; k++)
            if ((size_t)rs->r[i].tiles[k] < n_tiles)
                out[rs->r[i].tiles[k]] = i;
}
