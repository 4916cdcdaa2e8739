/* Static memory plan (see plan.h): zero-copy channel concatenation, storage sharing for
 * reshapes, then greedy first-fit placement of buffers by size with lifetime overlap checks. */
#include "models/plan.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int parent;       /* -1: owns storage (or a constant) */
    int64_t chan_off; /* channels from the parent's first channel (concat placement) */
    int in_concat;    /* placed inside a concatenation (not a reshape sharing storage) */
} link;

static int live_value(const hp_graph *g, int v)
{
    const hp_value *val = &g->values[v];
    if (val->kind == HP_VAL_CONST)
        return 0;
    if (val->kind == HP_VAL_INPUT)
        return 1;
    return val->producer >= 0 && !g->nodes[val->producer].dead;
}

/* All live consumers of v accept strided 4-D views. */
static int consumers_accept_strided(const hp_graph *g, int v)
{
    if (g->values[v].is_output)
        return 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        if (n->dead)
            continue;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] == v && !hp_op_accepts_strided(n->op))
                return 0;
    }
    return 1;
}

static int same_nhw(const hp_value *a, const hp_value *b)
{
    return a->ndim == 4 && b->ndim == 4 && a->dims[0] == b->dims[0] && a->dims[2] == b->dims[2] &&
           a->dims[3] == b->dims[3];
}

static int root_of(const link *L, int v, int64_t *chan, int *in_concat)
{
    int64_t c = 0;
    int cc = 0;
    while (L[v].parent >= 0) {
        c += L[v].chan_off;
        cc |= L[v].in_concat;
        v = L[v].parent;
    }
    if (chan)
        *chan = c;
    if (in_concat)
        *in_concat = cc;
    return v;
}

static void place_concats(const hp_graph *g, link *L)
{
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        const hp_node *n = &g->nodes[k];
        if (n->dead || n->op != HP_OP_CONCAT || n->attr.axis != 1)
            continue;
        int o = n->out[0];
        const hp_value *ov = &g->values[o];
        if (ov->ndim != 4)
            continue;
        /* (a) Inputs already laid out back to back inside one buffer: the output is a view. */
        if (L[o].parent < 0 && consumers_accept_strided(g, o)) {
            int r0 = -1, ok = 1;
            int64_t base = 0, cum = 0;
            for (int i = 0; i < n->n_in && ok; i++) {
                int v = n->in[i];
                if (v < 0 || L[v].parent < 0) {
                    ok = 0;
                    break;
                }
                int64_t ch;
                int r = root_of(L, v, &ch, NULL);
                if (i == 0) {
                    r0 = r;
                    base = ch;
                }
                ok = r == r0 && r != o && ch == base + cum && same_nhw(&g->values[r], ov);
                cum += g->values[v].dims[1];
            }
            if (ok && r0 >= 0) {
                L[o].parent = r0;
                L[o].chan_off = base;
                L[o].in_concat = 1;
            }
        }
        /* (b) Unplaced inputs move into their slice of the output. */
        int64_t cum = 0;
        for (int i = 0; i < n->n_in; i++) {
            int v = n->in[i];
            if (v < 0)
                continue;
            const hp_value *iv = &g->values[v];
            int64_t c = iv->dims[1];
            int p = iv->producer;
            if (L[v].parent < 0 && iv->kind == HP_VAL_RUNTIME && p >= 0 && !g->nodes[p].dead &&
                hp_op_accepts_strided(g->nodes[p].op) && g->nodes[p].op != HP_OP_CONCAT &&
                same_nhw(iv, ov) && consumers_accept_strided(g, v) && root_of(L, o, NULL, NULL) != v) {
                L[v].parent = o;
                L[v].chan_off = cum;
                L[v].in_concat = 1;
            }
            cum += c;
        }
    }
}

typedef struct {
    int v;
    int64_t size, first, last, offset;
} buf;

static int by_size_desc(const void *a, const void *b)
{
    const buf *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->v - y->v;
}

static int by_offset(const void *a, const void *b)
{
    const buf *x = *(buf *const *)a, *y = *(buf *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

hp_status hp_plan_build(const hp_graph *g, hp_plan *plan, hp_error *err)
{
    memset(plan, 0, sizeof *plan);
    int nv = g->n_values;
    link *L = malloc(sizeof(link) * (size_t)(nv ? nv : 1));
    int64_t *first = malloc(sizeof(int64_t) * (size_t)(nv ? nv : 1));
    int64_t *last = malloc(sizeof(int64_t) * (size_t)(nv ? nv : 1));
    buf *bufs = malloc(sizeof(buf) * (size_t)(nv ? nv : 1));
    buf **placed = malloc(sizeof(buf *) * (size_t)(nv ? nv : 1));
    plan->place = calloc((size_t)(nv ? nv : 1), sizeof(hp_place));
    hp_status st = HP_OK;
    if (!L || !first || !last || !bufs || !placed || !plan->place) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory planning memory");
        goto done;
    }
    plan->n_values = nv;
    for (int v = 0; v < nv; v++) {
        L[v] = (link){.parent = -1};
        first[v] = INT64_MAX;
        last[v] = -1;
    }
    /* Reshape-like ops share their input's storage. */
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        if (!n->dead && n->op == HP_OP_ALIAS && g->values[n->in[0]].kind != HP_VAL_CONST)
            L[n->out[0]].parent = n->in[0];
    }
    place_concats(g, L);

    /* Lifetimes, accumulated on each buffer's root. */
    for (int v = 0; v < nv; v++) {
        if (!live_value(g, v))
            continue;
        int r = root_of(L, v, NULL, NULL);
        int64_t def = g->values[v].kind == HP_VAL_INPUT ? -1 : g->values[v].producer;
        if (def < first[r])
            first[r] = def;
        if (def > last[r])
            last[r] = def;
        if (g->values[v].is_output)
            last[r] = g->n_nodes;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        if (n->dead)
            continue;
        for (int i = 0; i < n->n_in; i++) {
            int v = n->in[i];
            if (v < 0 || !live_value(g, v))
                continue;
            int r = root_of(L, v, NULL, NULL);
            if (k > last[r])
                last[r] = k;
        }
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (live_value(g, g->outputs[i]))
            last[root_of(L, g->outputs[i], NULL, NULL)] = g->n_nodes;

    int nb = 0;
    for (int v = 0; v < nv; v++) {
        if (!live_value(g, v) || L[v].parent >= 0)
            continue;
        int64_t size = hp_value_numel(&g->values[v]);
        plan->naive_elems += size;
        /* Pad each buffer to 16 elements (64 bytes) so every buffer starts cache- and
         * vector-aligned, and so half-precision backends keep 32-byte alignment. */
        size = (size + 15) & ~(int64_t)15;
        bufs[nb++] = (buf){.v = v, .size = size, .first = first[v], .last = last[v]};
    }
    qsort(bufs, (size_t)nb, sizeof(buf), by_size_desc);
    int np = 0;
    for (int i = 0; i < nb; i++) {
        buf *b = &bufs[i];
        /* First fit among placed buffers whose lifetimes overlap, scanned by offset. */
        int64_t off = 0;
        qsort(placed, (size_t)np, sizeof(buf *), by_offset);
        for (int j = 0; j < np; j++) {
            const buf *p = placed[j];
            if (p->last < b->first || b->last < p->first)
                continue;
            if (off + b->size <= p->offset)
                break;
            if (p->offset + p->size > off)
                off = p->offset + p->size;
        }
        b->offset = off;
        placed[np++] = b;
        if (off + b->size > plan->arena_elems)
            plan->arena_elems = off + b->size;
    }
    for (int v = 0; v < nv; v++)
        plan->place[v] = (hp_place){.root = -1};
    for (int i = 0; i < nb; i++)
        plan->place[bufs[i].v].offset = bufs[i].offset;
    for (int v = 0; v < nv; v++) {
        const hp_value *val = &g->values[v];
        if (!live_value(g, v))
            continue;
        int64_t ch;
        int in_concat;
        int r = root_of(L, v, &ch, &in_concat);
        const hp_value *rv = &g->values[r];
        hp_place *p = &plan->place[v];
        p->root = r;
        p->chan_off = ch;
        int64_t inner = 1;
        for (int d = 2; d < rv->ndim; d++)
            inner *= rv->dims[d];
        p->offset = plan->place[r].offset + ch * inner;
        int64_t n0 = val->ndim > 0 && val->dims[0] > 0 ? val->dims[0] : 1;
        int64_t rn0 = rv->ndim > 0 && rv->dims[0] > 0 ? rv->dims[0] : 1;
        int strided = in_concat && rv->dims[1] != val->dims[1];
        p->batch_stride = strided ? hp_value_numel(rv) / rn0 : hp_value_numel(val) / n0;
    }
done:
    free(L);
    free(first);
    free(last);
    free(bufs);
    free(placed);
    if (st)
        hp_plan_free(plan);
    return st;
}

void hp_plan_free(hp_plan *plan)
{
    if (!plan)
        return;
    free(plan->place);
    plan->place = NULL;
    plan->n_values = 0;
    plan->arena_elems = 0;
}

int hp_plan_is_contiguous(const hp_graph *g, const hp_plan *plan, int value)
{
    const hp_value *v = &g->values[value];
    int64_t n0 = v->ndim > 0 && v->dims[0] > 0 ? v->dims[0] : 1;
    return plan->place[value].batch_stride == hp_value_numel(v) / n0;
}

int hp_plan_concat_input_in_place(const hp_graph *g, const hp_plan *plan, const hp_node *n, int i)
{
    if (n->op != HP_OP_CONCAT || n->attr.axis != 1 || n->in[i] < 0)
        return 0;
    const hp_place *po = &plan->place[n->out[0]], *pi = &plan->place[n->in[i]];
    if (pi->root < 0 || pi->root != po->root)
        return 0;
    int64_t cum = 0;
    for (int j = 0; j < i; j++)
        if (n->in[j] >= 0)
            cum += g->values[n->in[j]].dims[1];
    return pi->chan_off == po->chan_off + cum;
}
