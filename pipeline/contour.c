/* Component labelling and outline tracing (see the header for the conventions).
 *
 * Tracing walks the boundary edges of a component, each directed so the component is on its
 * right (clockwise on screen, y down), turning right first where two diagonal cells of the
 * component meet at a vertex: that keeps diagonal cells apart, as 4-connectivity says, so the
 * walk never crosses itself. It can still pass such a vertex twice (a background pocket that
 * meets the outside only at a corner); those walks are cut at the repeated vertex into separate
 * loops, which makes every ring simple. */
#include "pipeline/contour.h"

#include <stdlib.h>
#include <string.h>

static int ring_push(hp_contour_ring *r, int32_t x, int32_t y)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        int32_t *p = realloc(r->xy, cap * 2 * sizeof *p);
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
    if (w < 1 || h < 1 || (int64_t)w * h > INT32_MAX)
        return HP_ERR_INVALID;
    size_t n = (size_t)w * h;
    hp_contour_components *cc = calloc(1, sizeof *cc);
    int32_t *stack = malloc(n * sizeof *stack);
    size_t cap = 0;
    if (!cc || !stack || !(cc->comp = malloc(n * sizeof *cc->comp)))
        goto nomem;
    cc->w = w;
    cc->h = h;
    for (size_t i = 0; i < n; i++)
        cc->comp[i] = -1;
    for (size_t start = 0; start < n; start++) {
        if (cc->comp[start] >= 0 || labels[start] == skip)
            continue;
        if ((size_t)cc->n == cap) {
            cap = cap ? cap * 2 : 16;
            hp_contour_component *c = realloc(cc->c, cap * sizeof *c);
            if (!c)
                goto nomem;
            cc->c = c;
        }
        uint8_t lab = labels[start];
        int32_t id = cc->n++;
        hp_contour_component *c = &cc->c[id];
        *c = (hp_contour_component){.label = lab, .x0 = w, .y0 = h, .x1 = -1, .y1 = -1};
        size_t sp = 0;
        stack[sp++] = (int32_t)start;
        cc->comp[start] = id;
        while (sp) {
            int32_t i = stack[--sp];
            int x = i % w, y = i / w;
            c->cells++;
            c->x0 = x < c->x0 ? x : c->x0;
            c->x1 = x > c->x1 ? x : c->x1;
            c->y0 = y < c->y0 ? y : c->y0;
            c->y1 = y > c->y1 ? y : c->y1;
            const int nx[4] = {x - 1, x + 1, x, x}, ny[4] = {y, y, y - 1, y + 1};
            for (int k = 0; k < 4; k++) {
                if (nx[k] < 0 || ny[k] < 0 || nx[k] >= w || ny[k] >= h)
                    continue;
                size_t j = (size_t)ny[k] * w + nx[k];
                if (cc->comp[j] < 0 && labels[j] == lab) {
                    cc->comp[j] = id;
                    stack[sp++] = (int32_t)j;
                }
            }
        }
    }
    free(stack);
    *out = cc;
    return HP_OK;
nomem:
    free(stack);
    hp_contour_components_destroy(cc);
    return HP_ERR_NOMEM;
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

static const int DX[4] = {1, 0, -1, 0}, DY[4] = {0, 1, 0, -1}; /* +x, +y, -x, -y */
enum { PINCH = 1 << 4 };

typedef struct {
    hp_contour_ring *r; /* loops found so far */
    int n;
} loops;

static int loops_add(loops *L, hp_contour_ring *ring)
{
    hp_contour_ring *p = realloc(L->r, (size_t)(L->n + 1) * sizeof *p);
    if (!p)
        return -1;
    L->r = p;
    L->r[L->n++] = *ring;
    return 0;
}

/* Cuts a closed walk at the vertices it passes twice. `pos` (one int32 per bbox vertex, all 0)
 * holds 1 + the stack index of a key vertex (a pinch, or the start) while it is on the stack;
 * it is all 0 again on return. */
static hp_status split_walk(const hp_contour_ring *walk, const uint8_t *ed, int32_t *pos,
                            int bx0, int by0, int vw, loops *out)
{
    hp_contour_ring st = {0};
    hp_status rc = HP_OK;
    for (size_t i = 0; i < walk->n && !rc; i++) {
        int32_t x = walk->xy[2 * i], y = walk->xy[2 * i + 1];
        size_t v = (size_t)(y - by0) * vw + (size_t)(x - bx0);
        int key = (x == walk->xy[0] && y == walk->xy[1]) || (ed[v] & PINCH);
        if (i > 0 && key && pos[v]) {
            size_t p = (size_t)pos[v] - 1;
            hp_contour_ring loop = {0};
            for (size_t k = p; k < st.n && !rc; k++)
                if (ring_push(&loop, st.xy[2 * k], st.xy[2 * k + 1]))
                    rc = HP_ERR_NOMEM;
            if (!rc && ring_push(&loop, x, y))
                rc = HP_ERR_NOMEM;
            ring_area(&loop);
            if (!rc && loops_add(out, &loop))
                rc = HP_ERR_NOMEM;
            if (rc)
                free(loop.xy);
            for (size_t k = p + 1; k < st.n; k++) {
                size_t u = (size_t)(st.xy[2 * k + 1] - by0) * vw + (size_t)(st.xy[2 * k] - bx0);
                if (pos[u] > (int32_t)p + 1)
                    pos[u] = 0;
            }
            st.n = p + 1;
            continue;
        }
        if (ring_push(&st, x, y)) {
            rc = HP_ERR_NOMEM;
            break;
        }
        if (key)
            pos[v] = (int32_t)st.n;
    }
    for (size_t k = 0; k < st.n; k++)
        pos[(size_t)(st.xy[2 * k + 1] - by0) * vw + (size_t)(st.xy[2 * k] - bx0)] = 0;
    free(st.xy);
    return rc;
}

hp_status hp_contour_trace(const hp_contour_components *cc, int32_t id, hp_contour_polygon *out)
{
    memset(out, 0, sizeof *out);
    if (!cc || id < 0 || id >= cc->n)
        return HP_ERR_INVALID;
    const hp_contour_component *c = &cc->c[id];
    const int32_t *comp = cc->comp;
    int mw = cc->w;
    int bx0 = c->x0, by0 = c->y0, bx1 = c->x1, by1 = c->y1;
    int bw = bx1 - bx0 + 1, bh = by1 - by0 + 1, vw = bw + 1;
    size_t nv = (size_t)vw * (bh + 1);
    uint8_t *ed = calloc(nv, 1);
    int32_t *pos = calloc(nv, sizeof *pos);
    loops L = {0};
    hp_contour_ring walk = {0};
    hp_status st = HP_OK;
    if (!ed || !pos) {
        st = HP_ERR_NOMEM;
        goto done;
    }
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
    /* Two outgoing edges at a vertex: the diagonal case, the only one a walk can pass twice. */
    for (size_t v = 0; v < nv; v++) {
        int b = ed[v];
        if ((b & 1) + (b >> 1 & 1) + (b >> 2 & 1) + (b >> 3 & 1) == 2)
            ed[v] |= PINCH;
    }
    for (int vy = by0; vy <= by1 + 1 && !st; vy++)
        for (int vx = bx0; vx <= bx1 + 1 && !st; vx++) {
            while ((V(vx, vy) & 15) && !st) {
                int d = 0;
                while (!(V(vx, vy) & (1 << d)))
                    d++;
                walk.n = 0;
                int x = vx, y = vy, prev = -1;
                for (;;) {
                    V(x, y) &= (uint8_t)~(1 << d);
                    if (d != prev && ring_push(&walk, x, y)) {
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
                        int cd = (d + k + 4) % 4;
                        if (V(x, y) & (1 << cd)) {
                            nd = cd;
                            break;
                        }
                    }
                    if (nd < 0) {
                        st = HP_ERR_INVALID; /* cannot happen: every vertex is balanced */
                        break;
                    }
                    d = nd;
                }
                if (!st && ring_push(&walk, vx, vy))
                    st = HP_ERR_NOMEM;
                if (!st)
                    st = split_walk(&walk, ed, pos, bx0, by0, vw, &L);
            }
        }
#undef IN
#undef V
    if (st)
        goto done;
    /* The shell first: with the component on the right there is exactly one positive loop. */
    int outer = -1;
    for (int i = 0; i < L.n; i++)
        if (L.r[i].area2 > 0 && (outer < 0 || L.r[i].area2 > L.r[outer].area2))
            outer = i;
    if (outer < 0) {
        st = HP_ERR_INVALID;
        goto done;
    }
    out->rings = malloc((size_t)L.n * sizeof *out->rings);
    if (!out->rings) {
        st = HP_ERR_NOMEM;
        goto done;
    }
    out->rings[out->nrings++] = L.r[outer];
    L.r[outer].xy = NULL;
    for (int i = 0; i < L.n; i++)
        if (i != outer && L.r[i].area2 < 0) {
            out->rings[out->nrings++] = L.r[i];
            L.r[i].xy = NULL;
        }
done:
    for (int i = 0; i < L.n; i++)
        free(L.r[i].xy);
    free(L.r);
    free(walk.xy);
    free(ed);
    free(pos);
    if (st)
        hp_contour_polygon_free(out);
    return st;
}
