/* Component labelling and outline tracing (see the header for the conventions), by OpenCV
 * (io/cv_image.h): cv::connectedComponentsWithStats labels each label value's 4-connected
 * components, and cv::findContours traces one component at a time on an image drawn at twice
 * the size, whose border pixels map onto the cells' corners. With the component drawn alone,
 * findContours' rules (set pixels 8-connected, holes 4-connected) give exactly the rings the
 * header promises: a background pocket that meets the outside only at a corner is a hole that
 * touches the outer ring at that one vertex, and no ring touches itself. */
#include "pipeline/contour.h"

#include <stdlib.h>
#include <string.h>

#include "io/cv_image.h"

static void ring_area(hp_contour_ring *r)
{
    int64_t a = 0;
    for (size_t i = 0; i + 1 < r->n; i++)
        a += (int64_t)r->xy[2 * i] * r->xy[2 * i + 3] - (int64_t)r->xy[2 * i + 2] * r->xy[2 * i + 1];
    r->area2 = a;
}

void hp_contour_components_destroy(hp_contour_components *cc)
{
    if (!cc)
        return;
    free(cc->comp);
    free(cc->c);
    free(cc);
}

hp_status hp_contour_components_create(const uint8_t *labels, int w, int h, uint8_t skip,
                                       hp_contour_components **out)
{
    *out = NULL;
    if (!labels || w < 1 || h < 1 || (int64_t)w * h > INT32_MAX)
        return HP_ERR_INVALID;
    size_t n = (size_t)w * h;
    hp_contour_components *cc = calloc(1, sizeof *cc);
    int32_t *local = malloc(n * sizeof *local), *renum = NULL;
    hp_contour_component *pre = NULL; /* components of every label, label by label */
    int32_t n_pre = 0;
    hp_status st = HP_ERR_NOMEM;
    if (!cc || !local || !(cc->comp = malloc(n * sizeof *cc->comp)))
        goto fail;
    cc->w = w;
    cc->h = h;
    int present[256] = {0};
    for (size_t i = 0; i < n; i++)
        present[labels[i]] = 1;
    for (size_t i = 0; i < n; i++)
        cc->comp[i] = -1;
    for (int lab = 0; lab < 256; lab++) {
        if (!present[lab] || lab == skip)
            continue;
        hp_cv_component *cs = NULL;
        int32_t k = 0;
        if ((st = hp_cv_components(labels, w, h, (uint8_t)lab, 4, local, &cs, &k)))
            goto fail;
        hp_contour_component *grown = realloc(pre, (size_t)(n_pre + k) * sizeof *pre);
        if (!grown) {
            free(cs);
            st = HP_ERR_NOMEM;
            goto fail;
        }
        pre = grown;
        for (int32_t c = 0; c < k; c++)
            pre[n_pre + c] = (hp_contour_component){.label = (uint8_t)lab, .x0 = cs[c].x0,
                                                    .y0 = cs[c].y0, .x1 = cs[c].x1,
                                                    .y1 = cs[c].y1, .cells = cs[c].area};
        free(cs);
        for (size_t i = 0; i < n; i++)
            if (local[i] >= 0)
                cc->comp[i] = n_pre + local[i];
        n_pre += k;
    }
    /* Number the components of all labels together in raster order of their first cell. */
    st = HP_ERR_NOMEM;
    renum = malloc((n_pre ? (size_t)n_pre : 1) * sizeof *renum);
    cc->c = malloc((n_pre ? (size_t)n_pre : 1) * sizeof *cc->c);
    if (!renum || !cc->c)
        goto fail;
    for (int32_t c = 0; c < n_pre; c++)
        renum[c] = -1;
    for (size_t i = 0; i < n; i++) {
        int32_t c = cc->comp[i];
        if (c < 0)
            continue;
        if (renum[c] < 0) {
            renum[c] = cc->n;
            cc->c[cc->n++] = pre[c];
        }
        cc->comp[i] = renum[c];
    }
    free(local);
    free(renum);
    free(pre);
    *out = cc;
    return HP_OK;
fail:
    free(local);
    free(renum);
    free(pre);
    hp_contour_components_destroy(cc);
    return st;
}

void hp_contour_polygon_free(hp_contour_polygon *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nrings; i++)
        free(p->rings[i].xy);
    free(p->rings);
    p->rings = NULL;
    p->nrings = 0;
}

hp_status hp_contour_trace(const hp_contour_components *cc, int32_t id, hp_contour_polygon *out)
{
    memset(out, 0, sizeof *out);
    if (!cc || id < 0 || id >= cc->n)
        return HP_ERR_INVALID;
    const hp_contour_component *c = &cc->c[id];
    int bw = c->x1 - c->x0 + 1, bh = c->y1 - c->y0 + 1;
    uint8_t *box = malloc((size_t)bw * bh);
    int32_t *xy = NULL, *len = NULL;
    int nr = 0;
    hp_status st = HP_ERR_NOMEM;
    if (!box)
        goto done;
    for (int y = 0; y < bh; y++) {
        const int32_t *row = cc->comp + (size_t)(c->y0 + y) * cc->w + c->x0;
        for (int x = 0; x < bw; x++)
            box[(size_t)y * bw + x] = row[x] == id;
    }
    if ((st = hp_cv_trace_region(box, bw, bh, &xy, &len, &nr)))
        goto done;
    if (!(out->rings = calloc((size_t)nr, sizeof *out->rings))) {
        st = HP_ERR_NOMEM;
        goto done;
    }
    out->nrings = nr;
    size_t k = 0;
    for (int r = 0; r < nr; r++) {
        hp_contour_ring *ring = &out->rings[r];
        ring->n = ring->cap = (size_t)len[r];
        if (!(ring->xy = malloc(ring->n * 2 * sizeof *ring->xy))) {
            st = HP_ERR_NOMEM;
            goto done;
        }
        for (size_t i = 0; i < ring->n; i++, k++) {
            ring->xy[2 * i] = xy[2 * k] + c->x0;
            ring->xy[2 * i + 1] = xy[2 * k + 1] + c->y0;
        }
        ring_area(ring);
    }
done:
    free(box);
    free(xy);
    free(len);
    if (st)
        hp_contour_polygon_free(out);
    return st;
}
