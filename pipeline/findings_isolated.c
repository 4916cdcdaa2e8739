/* Isolated tiles (see the header). */
#include "pipeline/findings_isolated.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    float p;
    int32_t t;
} cand;

static int by_prob(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}

hp_status hp_findings_isolated_fill(hp_findings *f, const hp_heatmap_grid *g, const hp_regions *rs,
                                    hp_error *err)
{
    size_t n = (size_t)g->gw * g->gh;
    int C = g->nclasses;
    int32_t *region = malloc(n * sizeof *region);
    cand *c = malloc(n * sizeof *c);
    hp_status st = HP_OK;
    if (!region || !c || !(f->isolated = calloc((size_t)C, sizeof *f->isolated))) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    hp_regions_tile_map(rs, n, region);
    double tile_mm = g->tile_size * g->mpp * 1e-3;
    for (int k = 0; k < C; k++) {
        size_t m = 0;
        for (size_t t = 0; t < n; t++) {
            if (hp_heatmap_argmax(g, g->prob, t) != k)
                continue;
            if (region[t] >= 0 && rs->r[region[t]].cls == k)
                continue;
            c[m++] = (cand){g->prob[t * C + k], (int32_t)t};
        }
        if (!m)
            continue;
        qsort(c, m, sizeof *c, by_prob);
        hp_findings_isolated *is = &f->isolated[f->n_isolated];
        int keep = m < HP_FINDINGS_ISOLATED_MAX ? (int)m : HP_FINDINGS_ISOLATED_MAX;
        is->cls = strdup(g->names[k]);
        is->tiles = calloc((size_t)keep, sizeof *is->tiles);
        f->n_isolated++;
        if (!is->cls || !is->tiles) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            goto done;
        }
        is->tile_count = (int64_t)m;
        is->area_mm2 = (double)m * tile_mm * tile_mm;
        is->n_tiles = keep;
        for (int e = 0; e < keep; e++) {
            int32_t t = c[e].t;
            is->tiles[e] = (hp_findings_tile){.index = t,
                                              .x = g->x0 + (t % g->gw) * g->tile_size,
                                              .y = g->y0 + (t / g->gw) * g->tile_size,
                                              .size = g->tile_size,
                                              .prob = c[e].p};
        }
    }
done:
    free(region);
    free(c);
    return st;
}
