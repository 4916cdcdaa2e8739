/* Graph passes run after shape inference, before planning:
 *  1. BatchNormalization with constant parameters becomes a per-channel ScaleShift, and is
 *     folded into the weights of a preceding Conv when it is that Conv's only consumer
 *     (Conv → BN is how every exported CNN spells a biased conv);
 *  2. an activation (Relu, LeakyRelu, Clip, Sigmoid, Tanh) that is the only consumer of a Conv or
 *     ScaleShift is fused into it, so its output is written once.
 *  3. an AveragePool that is the only consumer of a pointwise (1x1, stride 1, unpadded) Conv is
 *     moved before it: both are linear per pixel, so they commute, and the Conv then runs on a
 *     quarter of the pixels (DenseNet's transition layers: about 8% of its FLOPs).
 * All keep results equal to the original graph up to float rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/infer.h"
#include "models/tensor_convert.h"

static int is_const_float(const hp_graph *g, int v)
{
    return v >= 0 && g->values[v].kind == HP_VAL_CONST && g->values[v].dtype == HP_DT_FLOAT;
}

/* Rewires the consumers of `from` (and the graph outputs) to read `to`. */
static void rewire(hp_graph *g, int from, int to)
{
    for (int k = 0; k < g->n_nodes; k++) {
        hp_node *n = &g->nodes[k];
        if (n->dead)
            continue;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] == from)
                n->in[i] = to;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == from) {
            g->outputs[i] = to;
            g->values[to].is_output = 1;
        }
}

/* A new float constant value owned by the graph; -1 when out of memory. */
static int new_const(hp_graph *g, const char *base, const char *suffix, int64_t len, hp_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    int v = hp_graph_add_value(g, name);
    if (v < 0)
        return -1;
    int64_t d = len;
    if (hp_value_set_const(&g->values[v], HP_DT_FLOAT, 1, &d, NULL, err))
        return -1;
    return v;
}

static hp_status fold_batchnorm(hp_graph *g, int k, hp_error *err)
{
    hp_node *bn = &g->nodes[k];
    for (int i = 1; i <= 4; i++)
        if (!is_const_float(g, bn->in[i]))
            return HP_OK; /* runtime statistics: stays a BatchNormalization */
    int x = bn->in[0];
    int64_t C = g->values[bn->in[1]].dims[0];
    float eps = bn->attr.bn_epsilon;
    char base[400];
    snprintf(base, sizeof base, "%s", bn->name);
    int vs = new_const(g, base, "/scale", C, err);
    int vb = vs >= 0 ? new_const(g, base, "/shift", C, err) : -1;
    if (vs < 0 || vb < 0)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory folding %s", base);
    bn = &g->nodes[k]; /* the node array is stable, but values may have moved */
    const float *gamma = g->values[bn->in[1]].data, *beta = g->values[bn->in[2]].data;
    const float *mean = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
    float *scale = g->values[vs].data, *shift = g->values[vb].data;
    for (int64_t c = 0; c < C; c++) {
        double s = (double)gamma[c] / sqrt((double)var[c] + eps);
        scale[c] = (float)s;
        shift[c] = (float)((double)beta[c] - (double)mean[c] * s);
    }

    /* Into the preceding Conv when the BN is the only reader of its output. */
    const hp_value *xv = &g->values[x];
    int p = xv->producer;
    if (p >= 0 && !xv->is_output && xv->n_consumers == 1 && g->nodes[p].op == HP_OP_CONV &&
        g->nodes[p].attr.conv.act.kind == HP_ACT_NONE && is_const_float(g, g->nodes[p].in[1]) &&
        (g->nodes[p].n_in < 3 || g->nodes[p].in[2] < 0 || is_const_float(g, g->nodes[p].in[2]))) {
        hp_node *conv = &g->nodes[p];
        const hp_value *w = &g->values[conv->in[1]];
        int64_t M = w->dims[0], per = hp_value_numel(w) / M;
        int vw = hp_graph_add_value(g, "");
        if (vw < 0)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        snprintf(base, sizeof base, "%s", g->nodes[p].name);
        int vbias = new_const(g, base, "/bias_bn", M, err);
        if (vbias < 0)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        conv = &g->nodes[p];
        w = &g->values[conv->in[1]];
        if (hp_value_set_const(&g->values[vw], HP_DT_FLOAT, w->ndim, w->dims, w->data, err))
            return HP_ERR_NOMEM;
        float *nw = g->values[vw].data, *nb = g->values[vbias].data;
        const float *ob = (conv->n_in >= 3 && conv->in[2] >= 0) ? g->values[conv->in[2]].data : NULL;
        scale = g->values[vs].data;
        shift = g->values[vb].data;
        for (int64_t m = 0; m < M; m++) {
            for (int64_t j = 0; j < per; j++)
                nw[m * per + j] *= scale[m];
            nb[m] = (ob ? ob[m] : 0.0f) * scale[m] + shift[m];
        }
        if (conv->n_in < 3) {
            int *ni = realloc(conv->in, sizeof(int) * 3);
            if (!ni)
                return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            conv->in = ni;
            conv->n_in = 3;
        }
        conv->in[1] = vw;
        conv->in[2] = vbias;
        int bn_out = g->nodes[k].out[0];
        g->nodes[k].dead = 1;
        rewire(g, bn_out, conv->out[0]);
        hp_graph_recount(g);
        return HP_OK;
    }
    bn = &g->nodes[k];
    bn->op = HP_OP_SCALE_SHIFT;
    bn->in[1] = vs;
    bn->in[2] = vb;
    bn->n_in = 3;
    bn->attr.act = (hp_act){.kind = HP_ACT_NONE};
    hp_graph_recount(g);
    return HP_OK;
}

static void fuse_activation(hp_graph *g, int k)
{
    hp_node *act = &g->nodes[k];
    int x = act->in[0];
    const hp_value *xv = &g->values[x];
    int p = xv->producer;
    if (p < 0 || xv->is_output || xv->n_consumers != 1)
        return;
    hp_node *prod = &g->nodes[p];
    hp_act *slot;
    if (prod->op == HP_OP_CONV)
        slot = &prod->attr.conv.act;
    else if (prod->op == HP_OP_SCALE_SHIFT)
        slot = &prod->attr.act;
    else
        return;
    if (slot->kind != HP_ACT_NONE)
        return;
    *slot = act->attr.act;
    act->dead = 1;
    rewire(g, act->out[0], prod->out[0]);
    hp_graph_recount(g);
}

static int is_pointwise_conv(const hp_conv_attr *a)
{
    return a->kh == 1 && a->kw == 1 && a->stride[0] == 1 && a->stride[1] == 1 && !a->pad[0] &&
           !a->pad[1] && !a->pad[2] && !a->pad[3] && a->act.kind == HP_ACT_NONE;
}

/* Whether every pooling window lies inside the input (no padding, no partial ceil_mode window),
 * so averaging commutes exactly with a per-pixel linear map. */
static int pool_windows_inside(const hp_graph *g, const hp_node *pool)
{
    const hp_pool_attr *p = &pool->attr.pool;
    const hp_value *x = &g->values[pool->in[0]], *y = &g->values[pool->out[0]];
    if (p->pad[0] || p->pad[1] || p->pad[2] || p->pad[3])
        return 0;
    int64_t last_h = (y->dims[2] - 1) * p->stride[0] + (int64_t)(p->kh - 1) * p->dil[0];
    int64_t last_w = (y->dims[3] - 1) * p->stride[1] + (int64_t)(p->kw - 1) * p->dil[1];
    return last_h < x->dims[2] && last_w < x->dims[3];
}

static hp_status pool_before_pointwise_conv(hp_graph *g, int k, hp_error *err)
{
    hp_node *conv = &g->nodes[k];
    int y = conv->out[0];
    const hp_value *yv = &g->values[y];
    if (yv->is_output || yv->n_consumers != 1)
        return HP_OK;
    int j = -1;
    for (int q = k + 1; q < g->n_nodes && j < 0; q++)
        if (!g->nodes[q].dead && g->nodes[q].n_in > 0 && g->nodes[q].in[0] == y)
            j = q;
    if (j < 0 || g->nodes[j].op != HP_OP_AVGPOOL || !pool_windows_inside(g, &g->nodes[j]))
        return HP_OK;
    /* The pooled input, a new value [N, Cin, OH, OW]. */
    int t = hp_graph_add_value(g, "");
    if (t < 0)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    hp_node *c = &g->nodes[k], *p = &g->nodes[j];
    const hp_value *x = &g->values[c->in[0]], *py = &g->values[p->out[0]];
    hp_value *tv = &g->values[t];
    tv->ndim = 4;
    tv->dims[0] = x->dims[0];
    tv->dims[1] = x->dims[1];
    tv->dims[2] = py->dims[2];
    tv->dims[3] = py->dims[3];
    /* Swap the two nodes' roles in place, which keeps the node order topological: node k now
     * pools X into T, node j convolves T into the pool's old output. */
    hp_node conv_copy = *c, pool_copy = *p;
    int x_in = c->in[0], pool_out = p->out[0];
    *c = pool_copy;
    *p = conv_copy;
    c->in[0] = x_in;
    c->out[0] = t;
    p->in[0] = t;
    p->out[0] = pool_out;
    hp_graph_recount(g);
    return HP_OK;
}

/* An alias that changes nothing (Identity, Dropout, a zero Pad, a same-shape Reshape) is
 * removed, so the patterns above see producer and consumer side by side. */
static void drop_identity_alias(hp_graph *g, int k)
{
    hp_node *n = &g->nodes[k];
    const hp_value *x = &g->values[n->in[0]], *y = &g->values[n->out[0]];
    if (y->is_output || x->ndim != y->ndim || memcmp(x->dims, y->dims, sizeof(int64_t) * (size_t)x->ndim))
        return;
    n->dead = 1;
    rewire(g, n->out[0], n->in[0]);
}

hp_status hp_graph_optimize(hp_graph *g, hp_error *err)
{
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && g->nodes[k].op == HP_OP_ALIAS)
            drop_identity_alias(g, k);
    hp_graph_recount(g);
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead || g->nodes[k].op != HP_OP_BATCHNORM)
            continue;
        hp_status st = fold_batchnorm(g, k, err);
        if (st)
            return st;
    }
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead && g->nodes[k].op == HP_OP_UNARY)
            fuse_activation(g, k);
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead || g->nodes[k].op != HP_OP_CONV || !is_pointwise_conv(&g->nodes[k].attr.conv))
            continue;
        hp_status st = pool_before_pointwise_conv(g, k, err);
        if (st)
            return st;
    }
    return HP_OK;
}
