#include "models/graph.h"

#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int64_t hp_value_numel(const hp_value *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++)
        n *= v->dims[i];
    return n;
}

int hp_graph_add_value(hp_graph *g, const char *name)
{
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? 2 * g->cap_values : 64;
        hp_value *nv = realloc(g->values, (size_t)cap * sizeof *nv);
        if (!nv)
            return -1;
        g->values = nv;
        g->cap_values = cap;
    }
    hp_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = dup_str(name);
    if (!v->name)
        return -1;
    v->dtype = HP_DT_FLOAT;
    v->producer = -1;
    return g->n_values++;
}

int hp_graph_add_node(hp_graph *g, const char *op_type, const char *name, int n_in, int n_out)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        hp_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn)
            return -1;
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    hp_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op_type = dup_str(op_type);
    n->name = dup_str(name);
    n->n_in = n_in;
    n->n_out = n_out;
    n->in = malloc(sizeof(int) * (size_t)(n_in > 0 ? n_in : 1));
    n->out = malloc(sizeof(int) * (size_t)(n_out > 0 ? n_out : 1));
    if (!n->op_type || !n->name || !n->in || !n->out) {
        free(n->op_type);
        free(n->name);
        free(n->in);
        free(n->out);
        return -1;
    }
    for (int i = 0; i < n_in; i++)
        n->in[i] = -1;
    for (int i = 0; i < n_out; i++)
        n->out[i] = -1;
    return g->n_nodes++;
}

int hp_graph_find_value(const hp_graph *g, const char *name)
{
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0)
            return i;
    return -1;
}

void hp_graph_recount(hp_graph *g)
{
    for (int i = 0; i < g->n_values; i++) {
        g->values[i].n_consumers = 0;
        if (g->values[i].kind == HP_VAL_RUNTIME)
            g->values[i].producer = -1;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        if (n->dead)
            continue;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] >= 0)
                g->values[n->in[i]].n_consumers++;
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] >= 0)
                g->values[n->out[i]].producer = k;
    }
    for (int i = 0; i < g->n_outputs; i++)
        g->values[g->outputs[i]].n_consumers++;
}

void hp_graph_destroy(hp_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++) {
        free(g->values[i].name);
        if (g->values[i].owns_data)
            free(g->values[i].data);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].in);
        free(g->nodes[i].out);
        free(g->nodes[i].name);
        free(g->nodes[i].op_type);
    }
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->source);
    free(g);
}

static int *dup_ints(const int *a, int n)
{
    int *d = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (d && n > 0)
        memcpy(d, a, sizeof(int) * (size_t)n);
    return d;
}

hp_graph *hp_graph_clone(const hp_graph *src)
{
    hp_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->values = calloc((size_t)(src->n_values > 0 ? src->n_values : 1), sizeof *g->values);
    g->nodes = calloc((size_t)(src->n_nodes > 0 ? src->n_nodes : 1), sizeof *g->nodes);
    g->inputs = dup_ints(src->inputs, src->n_inputs);
    g->outputs = dup_ints(src->outputs, src->n_outputs);
    g->source = dup_str(src->source);
    if (!g->values || !g->nodes || !g->inputs || !g->outputs || !g->source)
        goto fail;
    g->cap_values = src->n_values > 0 ? src->n_values : 1;
    g->cap_nodes = src->n_nodes > 0 ? src->n_nodes : 1;
    g->n_inputs = src->n_inputs;
    g->n_outputs = src->n_outputs;
    g->opset = src->opset;
    for (int i = 0; i < src->n_values; i++) {
        g->values[i] = src->values[i];
        g->values[i].owns_data = 0;
        g->values[i].name = dup_str(src->values[i].name);
        g->n_values = i + 1;
        if (!g->values[i].name)
            goto fail;
    }
    for (int k = 0; k < src->n_nodes; k++) {
        const hp_node *s = &src->nodes[k];
        hp_node *n = &g->nodes[k];
        *n = *s;
        n->in = dup_ints(s->in, s->n_in);
        n->out = dup_ints(s->out, s->n_out);
        n->name = dup_str(s->name);
        n->op_type = dup_str(s->op_type);
        g->n_nodes = k + 1;
        if (!n->in || !n->out || !n->name || !n->op_type)
            goto fail;
    }
    return g;
fail:
    hp_graph_destroy(g);
    return NULL;
}

const char *hp_op_name(hp_op op)
{
    static const char *const names[HP_OP_COUNT] = {
        [HP_OP_CONV] = "Conv",
        [HP_OP_BATCHNORM] = "BatchNormalization",
        [HP_OP_UNARY] = "Activation",
        [HP_OP_PRELU] = "PRelu",
        [HP_OP_BINARY] = "Elementwise",
        [HP_OP_MAXPOOL] = "MaxPool",
        [HP_OP_AVGPOOL] = "AveragePool",
        [HP_OP_GLOBAL_AVGPOOL] = "GlobalAveragePool",
        [HP_OP_GLOBAL_MAXPOOL] = "GlobalMaxPool",
        [HP_OP_CONCAT] = "Concat",
        [HP_OP_TRANSPOSE] = "Transpose",
        [HP_OP_GEMM] = "Gemm",
        [HP_OP_MATMUL] = "MatMul",
        [HP_OP_SOFTMAX] = "Softmax",
        [HP_OP_DEPTH_TO_SPACE] = "DepthToSpace",
        [HP_OP_RESIZE] = "Resize",
        [HP_OP_PAD] = "Pad",
        [HP_OP_SCALE_SHIFT] = "ScaleShift",
        [HP_OP_ALIAS] = "Alias",
    };
    return (op >= 0 && op < HP_OP_COUNT && names[op]) ? names[op] : "?";
}
