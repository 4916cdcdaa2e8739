/* CPU backend ops: for every op, the fast path against the reference path on random data
 * (including odd shapes), the reference against values worked out by hand on tiny cases, the
 * zero-copy concatenation plan (strided views), the ScaleShift+Conv fusion, bitwise identical
 * results for 1, 2 and 3 threads, and clean errors for bad graphs and plans.
 *
 * Plans are built by hand here (contiguous, distinct offsets; or with values placed inside a
 * concat buffer), so these tests depend only on the backend and the graph container. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "models/graph.h"
#include "models/plan.h"
#include "util/testutil.h"

static int passed;

/* ---- graph building ---------------------------------------------------------------------- */

#define DIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}

static hp_graph *new_graph(void)
{
    hp_graph *g = calloc(1, sizeof *g);
    if (g)
        g->opset = 17;
    return g;
}

static int add_value(hp_graph *g, const char *name, hp_value_kind kind, int ndim, const int64_t *dims)
{
    int v = hp_graph_add_value(g, name);
    if (v < 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    hp_value *val = &g->values[v];
    val->kind = kind;
    val->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        val->dims[i] = dims[i];
    return v;
}

static void push(int **arr, int *n, int v)
{
    int *a = realloc(*arr, sizeof(int) * (size_t)(*n + 1));
    if (!a) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    a[(*n)++] = v;
    *arr = a;
}

static int input(hp_graph *g, const char *name, int ndim, const int64_t *dims)
{
    int v = add_value(g, name, HP_VAL_INPUT, ndim, dims);
    push(&g->inputs, &g->n_inputs, v);
    return v;
}

static int runtime(hp_graph *g, const char *name, int ndim, const int64_t *dims)
{
    return add_value(g, name, HP_VAL_RUNTIME, ndim, dims);
}

static unsigned seed_counter = 1;

/* A float constant; data NULL: random in [-1, 1). */
static int constant(hp_graph *g, const char *name, int ndim, const int64_t *dims, const float *data)
{
    int v = add_value(g, name, HP_VAL_CONST, ndim, dims);
    int64_t n = hp_value_numel(&g->values[v]);
    float *d = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!d) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (data)
        memcpy(d, data, sizeof(float) * (size_t)n);
    else
        hp_test_fill_random(d, (long)n, seed_counter++ * 7919u, -1.0f, 1.0f);
    g->values[v].data = d;
    g->values[v].owns_data = 1;
    return v;
}

static void output(hp_graph *g, int v)
{
    g->values[v].is_output = 1;
    push(&g->outputs, &g->n_outputs, v);
}

static hp_node *node(hp_graph *g, hp_op op, const char *type, int nin, const int *ins, int out)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%d", type, g->n_nodes);
    int k = hp_graph_add_node(g, type, name, nin, 1);
    if (k < 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    hp_node *n = &g->nodes[k];
    n->op = op;
    for (int i = 0; i < nin; i++)
        n->in[i] = ins[i];
    n->out[0] = out;
    g->values[out].producer = k;
    return n;
}

#define INS(...) (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (int[]){__VA_ARGS__}

/* ---- plans --------------------------------------------------------------------------------- */

/* Every runtime value in its own contiguous buffer, with a gap between buffers. */
static hp_plan contiguous_plan(const hp_graph *g)
{
    hp_plan p = {0};
    p.n_values = g->n_values;
    p.place = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *p.place);
    if (!p.place) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    int64_t off = 0;
    for (int v = 0; v < g->n_values; v++) {
        const hp_value *val = &g->values[v];
        if (val->kind == HP_VAL_CONST) {
            p.place[v].root = -1;
            continue;
        }
        int64_t n = hp_value_numel(val), n0 = val->ndim > 0 && val->dims[0] > 0 ? val->dims[0] : 1;
        p.place[v] = (hp_place){.root = v, .chan_off = 0, .offset = off, .batch_stride = n / n0};
        off += ((n + 15) & ~(int64_t)15) + 16;
    }
    p.arena_elems = off;
    p.naive_elems = off;
    return p;
}

/* Moves value v inside root r's buffer at channel c (4-D values, axis-1 concatenation). */
static void place_in(const hp_graph *g, hp_plan *p, int v, int r, int64_t c)
{
    const hp_value *rv = &g->values[r];
    int64_t hw = rv->dims[2] * rv->dims[3];
    p->place[v].root = r;
    p->place[v].chan_off = c;
    p->place[v].offset = p->place[r].offset + c * hw;
    p->place[v].batch_stride = rv->dims[1] * hw;
}

/* ---- running ------------------------------------------------------------------------------- */

typedef struct {
    float **in;
    float **out;
    int n_in, n_out;
} io;

static io make_io(const hp_graph *g, unsigned seed)
{
    io x = {calloc((size_t)g->n_inputs + 1, sizeof(float *)), calloc((size_t)g->n_outputs + 1, sizeof(float *)),
            g->n_inputs, g->n_outputs};
    for (int i = 0; i < g->n_inputs; i++) {
        int64_t n = hp_value_numel(&g->values[g->inputs[i]]);
        x.in[i] = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        hp_test_fill_random(x.in[i], (long)n, seed + 31u * (unsigned)i, -2.0f, 2.0f);
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int64_t n = hp_value_numel(&g->values[g->outputs[i]]);
        x.out[i] = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        for (int64_t k = 0; k < n; k++)
            x.out[i][k] = NAN; /* a value the backend forgets to write shows up */
    }
    return x;
}

static void free_io(io *x)
{
    for (int i = 0; i < x->n_in; i++)
        free(x->in[i]);
    for (int i = 0; i < x->n_out; i++)
        free(x->out[i]);
    free(x->in);
    free(x->out);
}

static hp_status run_backend(const hp_graph *g, const hp_plan *p, int threads, int reference, io *x,
                             char *msg, size_t msg_len)
{
    hp_backend *b = hp_cpu_backend_create(threads, reference);
    if (!b)
        return HP_ERR_NOMEM;
    hp_status st = hp_backend_prepare(b, g, p);
    if (st == HP_OK)
        st = hp_backend_run(b, (const float *const *)x->in, x->out);
    if (msg)
        snprintf(msg, msg_len, "%s", hp_backend_error(b));
    hp_backend_destroy(b);
    return st;
}

static int64_t out_numel(const hp_graph *g, int i)
{
    return hp_value_numel(&g->values[g->outputs[i]]);
}

/* Runs the reference, then the fast path with 1, 2 and 3 threads: fast must match the reference
 * within `tol` (relative to the largest reference value) and be bitwise identical across thread
 * counts. Returns the reference io (caller frees) for further checks. */
static io compare_paths_plan(const char *label, const hp_graph *g, const hp_plan *p, double tol, unsigned seed)
{
    char msg[HP_ERROR_MSG_MAX];
    io ref = make_io(g, seed);
    hp_status st = run_backend(g, p, 1, 1, &ref, msg, sizeof msg);
    CHECK_MSG(st == HP_OK, "%s: reference failed: %s", label, msg);
    io fast[3];
    for (int t = 0; t < 3; t++) {
        fast[t] = make_io(g, seed);
        st = run_backend(g, p, t + 1, 0, &fast[t], msg, sizeof msg);
        CHECK_MSG(st == HP_OK, "%s: fast (%d threads) failed: %s", label, t + 1, msg);
    }
    for (int o = 0; o < g->n_outputs; o++) {
        int64_t n = out_numel(g, o);
        if (n == 0)
            continue;
        double e = hp_test_max_rel_err(fast[0].out[o], ref.out[o], (long)n);
        CHECK_MSG(e <= tol, "%s: output %d: fast vs reference max rel err %g > %g", label, o, e, tol);
        for (int t = 1; t < 3; t++)
            CHECK_MSG(memcmp(fast[0].out[o], fast[t].out[o], sizeof(float) * (size_t)n) == 0,
                      "%s: output %d differs between 1 and %d threads", label, o, t + 1);
        int finite = 1;
        for (int64_t k = 0; k < n; k++)
            if (!isfinite(ref.out[o][k]))
                finite = 0;
        CHECK_MSG(finite, "%s: output %d has non-finite values", label, o);
    }
    for (int t = 0; t < 3; t++)
        free_io(&fast[t]);
    passed++;
    return ref;
}

static void compare_paths(const char *label, hp_graph *g, double tol)
{
    hp_plan p = contiguous_plan(g);
    io ref = compare_paths_plan(label, g, &p, tol, 12345u);
    free_io(&ref);
    hp_plan_free(&p);
    hp_graph_destroy(g);
}

/* Runs the reference on given input data and checks output 0 against expected values. */
static void check_reference(const char *label, hp_graph *g, const float *const *inputs, const float *expect,
                            double tol)
{
    hp_plan p = contiguous_plan(g);
    io x = make_io(g, 1u);
    for (int i = 0; i < g->n_inputs; i++)
        memcpy(x.in[i], inputs[i], sizeof(float) * (size_t)hp_value_numel(&g->values[g->inputs[i]]));
    char msg[HP_ERROR_MSG_MAX];
    for (int fast = 0; fast < 2; fast++) {
        hp_status st = run_backend(g, &p, 2, !fast, &x, msg, sizeof msg);
        CHECK_MSG(st == HP_OK, "%s: %s", label, msg);
        int64_t n = out_numel(g, 0);
        for (int64_t k = 0; k < n; k++)
            CHECK_MSG(fabs(x.out[0][k] - expect[k]) <= tol * (1.0 + fabs(expect[k])),
                      "%s (%s): element %lld = %.7g, expected %.7g", label, fast ? "fast" : "reference",
                      (long long)k, x.out[0][k], expect[k]);
    }
    passed++;
    free_io(&x);
    hp_plan_free(&p);
    hp_graph_destroy(g);
}

/* ---- op builders --------------------------------------------------------------------------- */

static hp_act act_of(hp_act_kind k)
{
    hp_act a = {.kind = k, .alpha = 0.1f, .lo = -0.5f, .hi = 0.75f};
    return a;
}

static int64_t conv_out(int64_t in, int k, int s, int d, int p0, int p1)
{
    return (in + p0 + p1 - (int64_t)d * (k - 1) - 1) / s + 1;
}

/* A graph with one Conv: X input [N, C, H, W], W and B constants. */
static hp_graph *conv_graph(int64_t N, int64_t C, int64_t H, int64_t W, int64_t M, int kh, int kw, int group,
                            int sh, int sw, int dh, int dw, int pt, int pl, int pb, int pr, int bias,
                            hp_act_kind act)
{
    hp_graph *g = new_graph();
    int x = input(g, "x", DIMS(N, C, H, W));
    int w = constant(g, "w", DIMS(M, C / group, kh, kw), NULL);
    int b = bias ? constant(g, "b", DIMS(M), NULL) : -1;
    int64_t OH = conv_out(H, kh, sh, dh, pt, pb), OW = conv_out(W, kw, sw, dw, pl, pr);
    int y = runtime(g, "y", DIMS(N, M, OH, OW));
    hp_node *n = node(g, HP_OP_CONV, "Conv", bias ? 3 : 2, bias ? (int[]){x, w, b} : (int[]){x, w}, y);
    n->attr.conv = (hp_conv_attr){.group = group, .kh = kh, .kw = kw, .stride = {sh, sw}, .dil = {dh, dw},
                                  .pad = {pt, pl, pb, pr}, .act = act_of(act)};
    output(g, y);
    return g;
}

static void test_conv(void)
{
    static const struct {
        int64_t N, C, H, W, M;
        int kh, kw, group, sh, sw, dh, dw, pt, pl, pb, pr, bias;
        hp_act_kind act;
        const char *label;
    } cases[] = {
        {2, 8, 9, 9, 16, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, HP_ACT_RELU, "1x1 direct"},
        {2, 16, 7, 7, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_NONE, "3x3 pad 1"},
        {3, 3, 23, 19, 8, 7, 7, 1, 2, 2, 1, 1, 3, 3, 3, 3, 1, HP_ACT_RELU, "7x7 stride 2 (stem)"},
        {1, 8, 10, 10, 8, 3, 3, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_CLIP, "depthwise"},
        {2, 12, 8, 8, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, HP_ACT_LEAKY_RELU, "groups 3"},
        {1, 4, 12, 12, 5, 3, 3, 1, 1, 1, 2, 2, 2, 2, 2, 2, 1, HP_ACT_SIGMOID, "dilation 2"},
        {2, 5, 9, 8, 7, 3, 2, 1, 2, 1, 1, 1, 0, 1, 2, 0, 1, HP_ACT_TANH, "asymmetric pads, stride 2x1"},
        {2, 6, 1, 1, 4, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, HP_ACT_NONE, "1x1 spatial"},
        {1, 6, 1, 1, 4, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_RELU, "3x3 on 1x1 spatial"},
        {1, 4, 8, 8, 6, 1, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, HP_ACT_NONE, "1x1 stride 2"},
        {1, 4, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, HP_ACT_NONE, "1x1 padded"},
        {1, 64, 40, 40, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_RELU, "3x3 several column blocks"},
        {1, 300, 30, 30, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_RELU, "3x3 K > block"},
        {2, 20, 11, 9, 10, 3, 3, 1, 1, 1, 2, 2, 1, 2, 3, 0, 1, HP_ACT_RELU, "shifted, dilated, asymmetric"},
        {1, 32, 9, 13, 6, 5, 3, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0, HP_ACT_NONE, "shifted 5x3 groups, no pad"},
        {3, 16, 1, 7, 4, 1, 3, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, HP_ACT_NONE, "shifted 1x3 on one row"},
        {1, 24, 70, 66, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_RELU, "shifted, many row blocks"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hp_graph *g = conv_graph(cases[i].N, cases[i].C, cases[i].H, cases[i].W, cases[i].M, cases[i].kh,
                                 cases[i].kw, cases[i].group, cases[i].sh, cases[i].sw, cases[i].dh, cases[i].dw,
                                 cases[i].pt, cases[i].pl, cases[i].pb, cases[i].pr, cases[i].bias, cases[i].act);
        char label[128];
        snprintf(label, sizeof label, "conv %s", cases[i].label);
        /* 3x3 stride-1 cases with enough channels take the Winograd form, whose rounding grows
         * with the channel count (about 1e-5 of the largest output at 300 channels). */
        compare_paths(label, g, 2e-5);
    }

    /* By hand: a 3x3 all-ones kernel on a 4x4 input holding 1..16, bias 1. */
    float x16[16];
    for (int i = 0; i < 16; i++)
        x16[i] = (float)(i + 1);
    float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, one = 1.0f;
    {
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(1, 1, 4, 4));
        int w = constant(g, "w", DIMS(1, 1, 3, 3), ones);
        int b = constant(g, "b", DIMS(1), &one);
        int y = runtime(g, "y", DIMS(1, 1, 2, 2));
        hp_node *n = node(g, HP_OP_CONV, "Conv", INS(x, w, b), y);
        n->attr.conv = (hp_conv_attr){.group = 1, .kh = 3, .kw = 3, .stride = {1, 1}, .dil = {1, 1}};
        output(g, y);
        const float *in[] = {x16};
        const float expect[] = {55, 64, 91, 100};
        check_reference("conv 3x3 by hand", g, in, expect, 1e-6);
    }
    {
        /* Stride 2, pad 1: windows clipped at the top/left border. */
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(1, 1, 4, 4));
        int w = constant(g, "w", DIMS(1, 1, 3, 3), ones);
        int y = runtime(g, "y", DIMS(1, 1, 2, 2));
        hp_node *n = node(g, HP_OP_CONV, "Conv", INS(x, w), y);
        n->attr.conv = (hp_conv_attr){.group = 1, .kh = 3, .kw = 3, .stride = {2, 2}, .dil = {1, 1},
                                      .pad = {1, 1, 1, 1}};
        output(g, y);
        const float *in[] = {x16};
        const float expect[] = {14, 30, 57, 99};
        check_reference("conv 3x3 stride 2 pad 1 by hand", g, in, expect, 1e-6);
    }
    {
        /* Relu fused: a kernel of -1 gives negative sums that clamp to 0; 1x1 spatial output. */
        float neg[9] = {-1, -1, -1, -1, -1, -1, -1, -1, -1}, bias = 200.0f;
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(1, 1, 4, 4));
        int w = constant(g, "w", DIMS(2, 1, 3, 3), NULL);
        memcpy(g->values[w].data, neg, sizeof neg);
        memcpy((float *)g->values[w].data + 9, ones, sizeof ones);
        float b2[2] = {bias, -200.0f};
        int b = constant(g, "b", DIMS(2), b2);
        int y = runtime(g, "y", DIMS(1, 2, 1, 1));
        hp_node *n = node(g, HP_OP_CONV, "Conv", INS(x, w, b), y);
        n->attr.conv = (hp_conv_attr){.group = 1, .kh = 3, .kw = 3, .stride = {3, 3}, .dil = {2, 2},
                                      .act = {.kind = HP_ACT_RELU}};
        output(g, y);
        /* dilation 2: taps at rows/cols 0, 2, 4 -> only 0 and 2 inside: 1+3+9+11 = 24 */
        const float *in[] = {x16};
        const float expect[] = {200 - 24, 0};
        check_reference("conv dilated relu by hand", g, in, expect, 1e-6);
    }
    /* Zero-size dims: nothing to do (or only padding to convolve: the bias), no error. */
    compare_paths("conv N=0", conv_graph(0, 4, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_RELU), 0);
    compare_paths("conv M=0", conv_graph(2, 4, 5, 5, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_RELU), 0);
    compare_paths("conv C=0", conv_graph(2, 0, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_NONE), 0);
    compare_paths("conv H=0 padded", conv_graph(1, 16, 0, 5, 3, 3, 3, 1, 1, 1, 1, 1, 2, 1, 2, 1, 1, HP_ACT_NONE), 0);
    compare_paths("conv 1x1 C=0", conv_graph(1, 0, 4, 4, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, HP_ACT_NONE), 0);
}

/* Runs the fast path with the Winograd form switched off (HP_CPU_WINOGRAD=0 at prepare). */
static hp_status run_without_winograd(const hp_graph *g, const hp_plan *p, int threads, io *x, char *msg,
                                      size_t msg_len)
{
    setenv("HP_CPU_WINOGRAD", "0", 1);
    hp_status st = run_backend(g, p, threads, 0, x, msg, msg_len);
    unsetenv("HP_CPU_WINOGRAD");
    return st;
}

/* Winograd F(4x4, 3x3): against the reference (and 1/2/3 threads bitwise, via compare_paths) on
 * eligible shapes: sizes not divisible by the 4x4 tile, 1x1 and 2x2 planes, asymmetric and no
 * padding, tiles of several batch items in one block, every fused activation; against the
 * shifted form it replaces; and written into and read from strided views of a concat buffer. */
static void test_winograd(void)
{
    static const struct {
        int64_t N, C, H, W, M;
        int pt, pl, pb, pr, bias;
        hp_act_kind act;
        const char *label;
    } cases[] = {
        {2, 32, 9, 11, 16, 1, 1, 1, 1, 1, HP_ACT_RELU, "odd 9x11"},
        {3, 16, 1, 1, 8, 1, 1, 1, 1, 1, HP_ACT_NONE, "1x1 plane"},
        {2, 20, 2, 2, 12, 1, 1, 1, 1, 1, HP_ACT_LEAKY_RELU, "2x2 plane"},
        {1, 17, 13, 10, 9, 0, 2, 1, 0, 0, HP_ACT_SIGMOID, "asymmetric pads, no bias"},
        {2, 16, 6, 5, 8, 0, 0, 0, 0, 1, HP_ACT_CLIP, "unpadded 6x5"},
        {1, 24, 70, 66, 16, 1, 1, 1, 1, 1, HP_ACT_TANH, "70x66, many blocks"},
        {21, 16, 5, 5, 8, 1, 1, 1, 1, 1, HP_ACT_RELU, "blocks across batch items"},
        {2, 16, 6, 290, 8, 1, 1, 1, 1, 1, HP_ACT_RELU, "wide: tile rows in segments, a short last one"},
        {1, 8000, 5, 6, 8, 1, 1, 1, 1, 1, HP_ACT_RELU, "8000 channels: one segment per block"},
        {8, 128, 7, 7, 32, 1, 1, 1, 1, 0, HP_ACT_NONE, "DenseNet 7x7"},
        {2, 128, 28, 28, 32, 1, 1, 1, 1, 0, HP_ACT_NONE, "DenseNet 28x28"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[128];
        snprintf(label, sizeof label, "winograd %s", cases[i].label);
        hp_graph *g = conv_graph(cases[i].N, cases[i].C, cases[i].H, cases[i].W, cases[i].M, 3, 3, 1, 1, 1, 1, 1,
                                 cases[i].pt, cases[i].pl, cases[i].pb, cases[i].pr, cases[i].bias, cases[i].act);
        hp_plan p = contiguous_plan(g);
        /* F(4x4) rounds at about 1e-5 of the pre-activation's magnitude (these unnormalized
         * sums reach ~15); Tanh, Sigmoid and Clip shrink the largest output the tolerance is
         * relative to, not the absolute error, so they get more room. */
        int bounded = cases[i].act == HP_ACT_TANH || cases[i].act == HP_ACT_SIGMOID || cases[i].act == HP_ACT_CLIP;
        io ref = compare_paths_plan(label, g, &p, bounded ? 2e-4 : 2e-5, 4242u);
        /* The shifted form agrees within rounding; on large enough shapes not bit for bit, which
         * shows the switch really selects another path. */
        io wino = make_io(g, 4242u), shift = make_io(g, 4242u);
        char msg[HP_ERROR_MSG_MAX];
        CHECK_MSG(run_backend(g, &p, 2, 0, &wino, msg, sizeof msg) == HP_OK, "%s: %s", label, msg);
        CHECK_MSG(run_without_winograd(g, &p, 2, &shift, msg, sizeof msg) == HP_OK, "%s: %s", label, msg);
        int64_t n = out_numel(g, 0);
        double e = hp_test_max_rel_err(shift.out[0], ref.out[0], (long)n);
        CHECK_MSG(e <= 1e-5, "%s: shifted form vs reference %g", label, e);
        e = hp_test_max_rel_err(wino.out[0], shift.out[0], (long)n);
        CHECK_MSG(e <= (bounded ? 2e-4 : 2e-5), "%s: Winograd vs shifted form %g", label, e);
        if (cases[i].C >= 32 && cases[i].H >= 7)
            CHECK_MSG(memcmp(wino.out[0], shift.out[0], sizeof(float) * (size_t)n) != 0,
                      "%s: HP_CPU_WINOGRAD=0 gives the same bytes; is the Winograd form selected?", label);
        passed++;
        free_io(&wino);
        free_io(&shift);
        free_io(&ref);
        hp_plan_free(&p);
        hp_graph_destroy(g);
    }

    /* Strided views: a = 1x1 conv(x) and y = 3x3 conv(a) both live inside cat = [a, y]; the
     * Winograd conv reads a and writes y with the concat buffer's batch stride. */
    int64_t N = 3, C = 16, S = 11, M = 24;
    hp_graph *g = new_graph();
    int x = input(g, "x", DIMS(N, 8, S, S));
    int w1 = constant(g, "w1", DIMS(C, 8, 1, 1), NULL), b1 = constant(g, "b1", DIMS(C), NULL);
    int a = runtime(g, "a", DIMS(N, C, S, S));
    node(g, HP_OP_CONV, "Conv", INS(x, w1, b1), a)->attr.conv =
        (hp_conv_attr){.group = 1, .kh = 1, .kw = 1, .stride = {1, 1}, .dil = {1, 1}, .act = {.kind = HP_ACT_RELU}};
    int w3 = constant(g, "w3", DIMS(M, C, 3, 3), NULL), b3 = constant(g, "b3", DIMS(M), NULL);
    int y = runtime(g, "y", DIMS(N, M, S, S));
    node(g, HP_OP_CONV, "Conv", INS(a, w3, b3), y)->attr.conv =
        (hp_conv_attr){.group = 1, .kh = 3, .kw = 3, .stride = {1, 1}, .dil = {1, 1}, .pad = {1, 1, 1, 1},
                       .act = {.kind = HP_ACT_RELU}};
    int cat = runtime(g, "cat", DIMS(N, C + M, S, S));
    node(g, HP_OP_CONCAT, "Concat", INS(a, y), cat)->attr.axis = 1;
    output(g, cat);
    hp_plan flat = contiguous_plan(g), view = contiguous_plan(g);
    place_in(g, &view, a, cat, 0);
    place_in(g, &view, y, cat, C);
    io r_flat = compare_paths_plan("winograd contiguous", g, &flat, 1e-5, 99u);
    io r_view = compare_paths_plan("winograd strided views", g, &view, 1e-5, 99u);
    io f1 = make_io(g, 99u), f2 = make_io(g, 99u);
    char msg[HP_ERROR_MSG_MAX];
    CHECK(run_backend(g, &flat, 2, 0, &f1, msg, sizeof msg) == HP_OK);
    CHECK(run_backend(g, &view, 2, 0, &f2, msg, sizeof msg) == HP_OK);
    CHECK_MSG(memcmp(f1.out[0], f2.out[0], sizeof(float) * (size_t)out_numel(g, 0)) == 0,
              "winograd output depends on the plan");
    passed++;
    free_io(&r_flat);
    free_io(&r_view);
    free_io(&f1);
    free_io(&f2);
    hp_plan_free(&flat);
    hp_plan_free(&view);
    hp_graph_destroy(g);
}

static hp_graph *unary_graph(hp_op op, hp_act act, int ndim, const int64_t *dims)
{
    hp_graph *g = new_graph();
    int x = input(g, "x", ndim, dims);
    int y = runtime(g, "y", ndim, dims);
    hp_node *n = node(g, op, "Unary", INS(x), y);
    n->attr.act = act;
    output(g, y);
    return g;
}

static void test_elementwise(void)
{
    for (int k = HP_ACT_NONE; k <= HP_ACT_TANH; k++) {
        char label[64];
        snprintf(label, sizeof label, "unary act %d", k);
        compare_paths(label, unary_graph(HP_OP_UNARY, act_of((hp_act_kind)k), DIMS(2, 3, 37, 41)), 1e-6);
    }
    compare_paths("unary 0-D", unary_graph(HP_OP_UNARY, act_of(HP_ACT_RELU), 0, NULL), 0);
    compare_paths("unary empty", unary_graph(HP_OP_UNARY, act_of(HP_ACT_RELU), DIMS(2, 0, 5)), 0);
    {
        float xin[6] = {-2, -0.25f, 0, 0.5f, 1, 3};
        const float *in[] = {xin};
        const float relu[6] = {0, 0, 0, 0.5f, 1, 3};
        check_reference("relu by hand", unary_graph(HP_OP_UNARY, act_of(HP_ACT_RELU), DIMS(6)), in, relu, 0);
        const float leaky[6] = {-0.2f, -0.025f, 0, 0.5f, 1, 3};
        check_reference("leaky relu by hand", unary_graph(HP_OP_UNARY, act_of(HP_ACT_LEAKY_RELU), DIMS(6)), in,
                        leaky, 1e-7);
        const float clip[6] = {-0.5f, -0.25f, 0, 0.5f, 0.75f, 0.75f};
        check_reference("clip by hand", unary_graph(HP_OP_UNARY, act_of(HP_ACT_CLIP), DIMS(6)), in, clip, 0);
        float sig[6];
        for (int i = 0; i < 6; i++)
            sig[i] = (float)(1.0 / (1.0 + exp(-(double)xin[i])));
        check_reference("sigmoid by hand", unary_graph(HP_OP_UNARY, act_of(HP_ACT_SIGMOID), DIMS(6)), in, sig,
                        1e-6);
    }

    /* ScaleShift and BatchNorm, rank 2, 3 and 4. */
    for (int r = 2; r <= 4; r++) {
        int64_t dims[4] = {3, 5, 17, 13};
        hp_graph *g = new_graph();
        int x = input(g, "x", r, dims);
        int s = constant(g, "s", DIMS(5), NULL), b = constant(g, "b", DIMS(5), NULL);
        int y = runtime(g, "y", r, dims);
        hp_node *n = node(g, HP_OP_SCALE_SHIFT, "ScaleShift", INS(x, s, b), y);
        n->attr.act = act_of(r == 4 ? HP_ACT_RELU : HP_ACT_CLIP);
        output(g, y);
        compare_paths("scale_shift", g, 1e-6);

        g = new_graph();
        x = input(g, "x", r, dims);
        int sc = constant(g, "scale", DIMS(5), NULL), bb = constant(g, "B", DIMS(5), NULL);
        int mean = input(g, "mean", DIMS(5)); /* a runtime parameter */
        float var_d[5] = {0.5f, 1, 2, 0.1f, 3};
        int var = constant(g, "var", DIMS(5), var_d);
        y = runtime(g, "y", r, dims);
        n = node(g, HP_OP_BATCHNORM, "BatchNormalization", INS(x, sc, bb, mean, var), y);
        n->attr.bn_epsilon = 1e-5f;
        output(g, y);
        compare_paths("batchnorm", g, 1e-5);
    }
    {
        /* BatchNorm by hand: x = 3, mean 1, var 4 - eps, scale 2, B 0.5 -> (3-1)/2*2+0.5 = 2.5 */
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(1, 1, 1, 2));
        float sc = 2, bb = 0.5f, mu = 1, var = 4.0f - 1e-3f;
        int v1 = constant(g, "scale", DIMS(1), &sc), v2 = constant(g, "B", DIMS(1), &bb);
        int v3 = constant(g, "mean", DIMS(1), &mu), v4 = constant(g, "var", DIMS(1), &var);
        int y = runtime(g, "y", DIMS(1, 1, 1, 2));
        node(g, HP_OP_BATCHNORM, "BatchNormalization", INS(x, v1, v2, v3, v4), y)->attr.bn_epsilon = 1e-3f;
        output(g, y);
        float xin[2] = {3, -1};
        const float *in[] = {xin};
        const float expect[2] = {2.5f, -1.5f};
        check_reference("batchnorm by hand", g, in, expect, 1e-6);
    }

    /* PRelu: per-channel slope [C,1,1] and a full-shape slope. */
    {
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(2, 4, 5, 6));
        int s = constant(g, "slope", DIMS(4, 1, 1), NULL);
        int y = runtime(g, "y", DIMS(2, 4, 5, 6));
        node(g, HP_OP_PRELU, "PRelu", INS(x, s), y);
        output(g, y);
        compare_paths("prelu per channel", g, 0);
        g = new_graph();
        x = input(g, "x", DIMS(3, 7));
        s = input(g, "slope", DIMS(3, 7));
        y = runtime(g, "y", DIMS(3, 7));
        node(g, HP_OP_PRELU, "PRelu", INS(x, s), y);
        output(g, y);
        compare_paths("prelu full", g, 0);
        g = new_graph();
        x = input(g, "x", DIMS(4));
        float sl = 0.5f;
        s = constant(g, "slope", DIMS(1), &sl);
        y = runtime(g, "y", DIMS(4));
        node(g, HP_OP_PRELU, "PRelu", INS(x, s), y);
        output(g, y);
        float xin[4] = {-4, -1, 0, 2};
        const float *in[] = {xin};
        const float expect[4] = {-2, -0.5f, 0, 2};
        check_reference("prelu by hand", g, in, expect, 0);
    }

    /* Binary ops with broadcasting. */
    static const struct {
        int na, nb, no;
        int64_t a[4], b[4], o[4];
    } bc[] = {
        {4, 4, 4, {2, 3, 5, 7}, {2, 3, 5, 7}, {2, 3, 5, 7}},
        {4, 1, 4, {2, 3, 5, 7}, {7}, {2, 3, 5, 7}},
        {4, 4, 4, {2, 3, 5, 7}, {1, 3, 1, 1}, {2, 3, 5, 7}},
        {3, 2, 3, {2, 3, 1}, {1, 4}, {2, 3, 4}},
        {0, 3, 3, {0}, {2, 1, 3}, {2, 1, 3}},
        {2, 3, 3, {5, 1}, {3, 1, 6}, {3, 5, 6}},
        {1, 1, 1, {40000}, {40000}, {40000}},
        {2, 2, 2, {2, 0}, {1, 0}, {2, 0}},
    };
    for (size_t i = 0; i < sizeof bc / sizeof bc[0]; i++)
        for (int op = HP_BIN_ADD; op <= HP_BIN_DIV; op++) {
            hp_graph *g = new_graph();
            int a = input(g, "a", bc[i].na, bc[i].a);
            int b = op == HP_BIN_MUL ? constant(g, "b", bc[i].nb, bc[i].b, NULL) : input(g, "b", bc[i].nb, bc[i].b);
            int y = runtime(g, "y", bc[i].no, bc[i].o);
            node(g, HP_OP_BINARY, "Binary", INS(a, b), y)->attr.binary = (hp_binary_kind)op;
            output(g, y);
            char label[64];
            snprintf(label, sizeof label, "binary case %zu op %d", i, op);
            /* Division by values near 0 gives large quotients; compare relative to the max. */
            compare_paths(label, g, 0);
        }
    {
        /* [2,3,1] - [1,4] by hand */
        hp_graph *g = new_graph();
        int a = input(g, "a", DIMS(2, 3, 1)), b = input(g, "b", DIMS(1, 4));
        int y = runtime(g, "y", DIMS(2, 3, 4));
        node(g, HP_OP_BINARY, "Sub", INS(a, b), y)->attr.binary = HP_BIN_SUB;
        output(g, y);
        float av[6] = {10, 20, 30, 40, 50, 60}, bv[4] = {1, 2, 3, 4}, expect[24];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 4; j++)
                expect[i * 4 + j] = av[i] - bv[j];
        const float *in[] = {av, bv};
        check_reference("binary broadcast by hand", g, in, expect, 0);
    }
}

static hp_graph *pool_graph(hp_op op, int64_t N, int64_t C, int64_t H, int64_t W, int kh, int kw, int sh, int sw,
                            int dh, int dw, int pt, int pl, int pb, int pr, int include_pad, int ceil_mode)
{
    hp_graph *g = new_graph();
    int x = input(g, "x", DIMS(N, C, H, W));
    int64_t ekh = (int64_t)dh * (kh - 1) + 1, ekw = (int64_t)dw * (kw - 1) + 1;
    int64_t OH = (H + pt + pb - ekh + (ceil_mode ? sh - 1 : 0)) / sh + 1;
    int64_t OW = (W + pl + pr - ekw + (ceil_mode ? sw - 1 : 0)) / sw + 1;
    /* ONNX: with ceil_mode the last window must start inside the input or left padding */
    if (ceil_mode && (OH - 1) * sh >= H + pt)
        OH--;
    if (ceil_mode && (OW - 1) * sw >= W + pl)
        OW--;
    int y = runtime(g, "y", DIMS(N, C, OH, OW));
    hp_node *n = node(g, op, op == HP_OP_MAXPOOL ? "MaxPool" : "AveragePool", INS(x), y);
    n->attr.pool = (hp_pool_attr){.kh = kh, .kw = kw, .stride = {sh, sw}, .dil = {dh, dw},
                                  .pad = {pt, pl, pb, pr}, .count_include_pad = include_pad};
    output(g, y);
    return g;
}

static void test_pool(void)
{
    for (int op = 0; op < 2; op++) {
        hp_op o = op ? HP_OP_AVGPOOL : HP_OP_MAXPOOL;
        for (int inc = 0; inc < 2; inc++) {
            compare_paths("pool 3x3 s2 p1", pool_graph(o, 2, 5, 17, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, inc, 0), 1e-6);
            compare_paths("pool 2x2 s2", pool_graph(o, 2, 5, 16, 16, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, inc, 0), 1e-6);
            compare_paths("pool ceil asym", pool_graph(o, 1, 3, 10, 9, 3, 2, 2, 3, 1, 1, 0, 1, 1, 0, inc, 1), 1e-6);
            compare_paths("pool dilated", pool_graph(o, 1, 2, 11, 12, 3, 3, 1, 2, 2, 2, 2, 1, 2, 1, inc, 1), 1e-6);
            compare_paths("pool 1x1 spatial", pool_graph(o, 2, 3, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, inc, 0), 1e-6);
            compare_paths("pool empty plane", pool_graph(o, 2, 3, 0, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, inc, 0), 0);
            compare_paths("pool wide stride", pool_graph(o, 1, 2, 9, 30, 2, 5, 3, 4, 1, 2, 1, 3, 0, 2, inc, 1), 1e-6);
        }
    }
    float x16[16];
    for (int i = 0; i < 16; i++)
        x16[i] = (float)(i + 1);
    const float *in[] = {x16};
    {
        const float e[4] = {6, 8, 14, 16};
        check_reference("maxpool pad by hand", pool_graph(HP_OP_MAXPOOL, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0),
                        in, e, 0);
    }
    {
        const float e[4] = {3.5f, 5, 9.5f, 11};
        check_reference("avgpool exclude pad by hand",
                        pool_graph(HP_OP_AVGPOOL, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0), in, e, 1e-6);
    }
    {
        const float e[4] = {14.0f / 9, 30.0f / 9, 57.0f / 9, 99.0f / 9};
        check_reference("avgpool include pad by hand",
                        pool_graph(HP_OP_AVGPOOL, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0), in, e, 1e-6);
    }
    {
        /* ceil_mode, no pads: the last window runs past the input; include_pad counts only what
         * lies inside input + pads: (0,1) = (3+4+7+8+11+12)/6, (1,1) = (11+12+15+16)/4. */
        const float e[4] = {6, 7.5f, 12, 13.5f};
        check_reference("avgpool ceil include pad by hand",
                        pool_graph(HP_OP_AVGPOOL, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1), in, e, 1e-6);
    }
    {
        /* ceil_mode with end pads 1: the last window covers 2..4, 4 is padding: divide by 9 (include)
         * or by 4 (exclude); (0,1) covers rows 0..2 and cols 2..4: 6 positions in the input. */
        const float inc[4] = {6, 45.0f / 9, 72.0f / 9, 54.0f / 9};
        const float exc[4] = {6, 45.0f / 6, 72.0f / 6, 54.0f / 4};
        check_reference("avgpool ceil end pad include by hand",
                        pool_graph(HP_OP_AVGPOOL, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1, 1), in, inc, 1e-6);
        check_reference("avgpool ceil end pad exclude by hand",
                        pool_graph(HP_OP_AVGPOOL, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 0, 1), in, exc, 1e-6);
    }

    /* Global pools, rank 3 and 4. */
    for (int op = 0; op < 2; op++) {
        hp_op o = op ? HP_OP_GLOBAL_AVGPOOL : HP_OP_GLOBAL_MAXPOOL;
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(3, 7, 19, 23));
        int y = runtime(g, "y", DIMS(3, 7, 1, 1));
        node(g, o, "GlobalPool", INS(x), y);
        output(g, y);
        compare_paths("global pool 4-D", g, 1e-6);
        g = new_graph();
        x = input(g, "x", DIMS(2, 3, 300));
        y = runtime(g, "y", DIMS(2, 3, 1));
        node(g, o, "GlobalPool", INS(x), y);
        output(g, y);
        compare_paths("global pool 3-D", g, 1e-6);
        g = new_graph();
        x = input(g, "x", DIMS(1, 2, 2, 2));
        y = runtime(g, "y", DIMS(1, 2, 1, 1));
        node(g, o, "GlobalPool", INS(x), y);
        output(g, y);
        float xin[8] = {1, 2, 3, 4, -5, -6, -7, -9};
        const float *gi[] = {xin};
        const float e_avg[2] = {2.5f, -6.75f}, e_max[2] = {4, -5};
        check_reference("global pool by hand", g, gi, op ? e_avg : e_max, 1e-7);
    }
}

/* NaN through MaxPool and GlobalMaxPool: ONNX's definition (numpy's max) and PyTorch propagate
 * NaN, so a window that holds a NaN yields NaN and the others their max; an all-NaN input yields
 * only NaN, never a finite number a model would turn into confident probabilities. Expected
 * outputs are computed here from the definition, for the reference and the fast path at 1, 2
 * and 3 threads, on geometries that reach the fast path's interior and its clipped edges. */
static void check_pool_nan(const char *label, hp_graph *g, int all_nan)
{
    const hp_node *nd = &g->nodes[0];
    const hp_value *xv = &g->values[g->inputs[0]], *yv = &g->values[g->outputs[0]];
    int64_t N = xv->dims[0], C = xv->dims[1], H = xv->dims[2], W = xv->dims[3];
    int64_t OH = yv->dims[2], OW = yv->dims[3];
    int global = nd->op == HP_OP_GLOBAL_MAXPOOL;
    const hp_pool_attr *a = &nd->attr.pool;
    hp_plan p = contiguous_plan(g);
    io base = make_io(g, 777u);
    int64_t nx = N * C * H * W, ny = N * C * OH * OW;
    /* Planes by index mod 3: scattered NaNs, all NaN, none. */
    for (int64_t i = 0; i < nx; i++) {
        int64_t plane = i / (H * W);
        if (all_nan || plane % 3 == 1 || (plane % 3 == 0 && i % 23 == 5))
            base.in[0][i] = NAN;
    }
    float *expect = malloc(sizeof(float) * (size_t)ny);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    int seen = 0, has_nan = 0;
                    float m = 0;
                    for (int64_t ih = 0; ih < H; ih++)
                        for (int64_t iw = 0; iw < W; iw++) {
                            if (!global) {
                                int64_t dy = ih - (oh * a->stride[0] - a->pad[0]);
                                int64_t dx = iw - (ow * a->stride[1] - a->pad[1]);
                                if (dy < 0 || dx < 0 || dy % a->dil[0] || dx % a->dil[1] ||
                                    dy / a->dil[0] >= a->kh || dx / a->dil[1] >= a->kw)
                                    continue;
                            }
                            float v = base.in[0][((n * C + c) * H + ih) * W + iw];
                            if (isnan(v))
                                has_nan = 1;
                            else if (!seen || v > m)
                                m = v;
                            seen = 1;
                        }
                    expect[((n * C + c) * OH + oh) * OW + ow] = has_nan ? NAN : seen ? m : 0.0f;
                }
    char msg[HP_ERROR_MSG_MAX];
    int64_t nan_out = 0;
    for (int64_t k = 0; k < ny; k++)
        nan_out += isnan(expect[k]);
    CHECK_MSG(nan_out > 0 && (all_nan ? nan_out == ny : nan_out < ny), "%s: the case holds %lld NaN outputs of %lld",
              label, (long long)nan_out, (long long)ny);
    for (int run = 0; run < 4; run++) {
        io x = make_io(g, 777u);
        memcpy(x.in[0], base.in[0], sizeof(float) * (size_t)nx);
        int reference = run == 0, threads = run == 0 ? 1 : run;
        hp_status st = run_backend(g, &p, threads, reference, &x, msg, sizeof msg);
        CHECK_MSG(st == HP_OK, "%s: %s", label, msg);
        int64_t bad = 0, first = -1;
        for (int64_t k = 0; k < ny; k++)
            if (isnan(expect[k]) ? !isnan(x.out[0][k]) : x.out[0][k] != expect[k]) {
                bad++;
                if (first < 0)
                    first = k;
            }
        CHECK_MSG(bad == 0, "%s (%s, %d thread(s)): %lld of %lld outputs wrong (first %lld: %g, expected %g)", label,
                  reference ? "reference" : "fast", threads, (long long)bad, (long long)ny, (long long)first,
                  first >= 0 ? x.out[0][first] : 0.0, first >= 0 ? expect[first] : 0.0);
        free_io(&x);
    }
    passed++;
    free(expect);
    free_io(&base);
    hp_plan_free(&p);
    hp_graph_destroy(g);
}

static void test_pool_nan(void)
{
    for (int all = 0; all < 2; all++) {
        check_pool_nan(all ? "maxpool 3x3 s2 p1, all NaN" : "maxpool 3x3 s2 p1, NaN",
                       pool_graph(HP_OP_MAXPOOL, 2, 3, 17, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0), all);
        check_pool_nan(all ? "maxpool 2x2 s2, all NaN" : "maxpool 2x2 s2, NaN",
                       pool_graph(HP_OP_MAXPOOL, 1, 3, 16, 16, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0), all);
        check_pool_nan(all ? "maxpool dilated ceil, all NaN" : "maxpool dilated ceil, NaN",
                       pool_graph(HP_OP_MAXPOOL, 1, 3, 11, 12, 3, 3, 1, 2, 2, 2, 2, 1, 2, 1, 0, 1), all);
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(2, 3, 9, 13));
        int y = runtime(g, "y", DIMS(2, 3, 1, 1));
        node(g, HP_OP_GLOBAL_MAXPOOL, "GlobalMaxPool", INS(x), y);
        output(g, y);
        check_pool_nan(all ? "global maxpool, all NaN" : "global maxpool, NaN", g, all);
    }
}

static void test_layout_ops(void)
{
    /* Concat along each axis of a 3-D tensor, and 4-D axis 1 with three inputs (one constant). */
    for (int axis = 0; axis < 3; axis++) {
        hp_graph *g = new_graph();
        int64_t da[3] = {2, 3, 4}, db[3] = {2, 3, 4}, dout[3] = {2, 3, 4};
        db[axis] = 5;
        dout[axis] = da[axis] + 5;
        int a = input(g, "a", 3, da), b = input(g, "b", 3, db);
        int y = runtime(g, "y", 3, dout);
        node(g, HP_OP_CONCAT, "Concat", INS(a, b), y)->attr.axis = axis;
        output(g, y);
        compare_paths("concat 3-D", g, 0);
    }
    {
        hp_graph *g = new_graph();
        int a = input(g, "a", DIMS(2, 3, 4, 5));
        int b = constant(g, "b", DIMS(2, 1, 4, 5), NULL);
        int c = input(g, "c", DIMS(2, 0, 4, 5));
        int d = input(g, "d", DIMS(2, 2, 4, 5));
        int y = runtime(g, "y", DIMS(2, 6, 4, 5));
        node(g, HP_OP_CONCAT, "Concat", INS(a, b, c, d), y)->attr.axis = 1;
        output(g, y);
        compare_paths("concat 4-D axis 1", g, 0);
    }
    {
        hp_graph *g = new_graph();
        int a = input(g, "a", DIMS(2)), b = input(g, "b", DIMS(3));
        int y = runtime(g, "y", DIMS(5));
        node(g, HP_OP_CONCAT, "Concat", INS(a, b), y)->attr.axis = 0;
        output(g, y);
        float av[2] = {1, 2}, bv[3] = {3, 4, 5};
        const float *in[] = {av, bv};
        const float e[5] = {1, 2, 3, 4, 5};
        check_reference("concat 1-D by hand", g, in, e, 0);
    }

    /* Transpose. */
    {
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(2, 3, 4, 5));
        int y = runtime(g, "y", DIMS(4, 2, 5, 3));
        hp_node *n = node(g, HP_OP_TRANSPOSE, "Transpose", INS(x), y);
        int perm[4] = {2, 0, 3, 1};
        memcpy(n->attr.perm, perm, sizeof perm);
        output(g, y);
        compare_paths("transpose 4-D", g, 0);
        g = new_graph();
        x = input(g, "x", DIMS(2, 3));
        y = runtime(g, "y", DIMS(3, 2));
        n = node(g, HP_OP_TRANSPOSE, "Transpose", INS(x), y);
        n->attr.perm[0] = 1;
        n->attr.perm[1] = 0;
        output(g, y);
        float xv[6] = {1, 2, 3, 4, 5, 6};
        const float *in[] = {xv};
        const float e[6] = {1, 4, 2, 5, 3, 6};
        check_reference("transpose by hand", g, in, e, 0);
    }

    /* DepthToSpace: DCR vs CRD on [1, 8, 1, 1] holding 0..7, blocksize 2. */
    for (int crd = 0; crd < 2; crd++) {
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(1, 8, 1, 1));
        int y = runtime(g, "y", DIMS(1, 2, 2, 2));
        hp_node *n = node(g, HP_OP_DEPTH_TO_SPACE, "DepthToSpace", INS(x), y);
        n->attr.d2s.blocksize = 2;
        n->attr.d2s.crd = crd;
        output(g, y);
        float xv[8] = {0, 1, 2, 3, 4, 5, 6, 7};
        const float *in[] = {xv};
        const float dcr[8] = {0, 2, 4, 6, 1, 3, 5, 7};
        const float crd_e[8] = {0, 1, 2, 3, 4, 5, 6, 7};
        check_reference(crd ? "depth_to_space CRD by hand" : "depth_to_space DCR by hand", g, in, crd ? crd_e : dcr, 0);

        g = new_graph();
        x = input(g, "x", DIMS(2, 18, 3, 4));
        y = runtime(g, "y", DIMS(2, 2, 9, 12));
        n = node(g, HP_OP_DEPTH_TO_SPACE, "DepthToSpace", INS(x), y);
        n->attr.d2s.blocksize = 3;
        n->attr.d2s.crd = crd;
        output(g, y);
        compare_paths("depth_to_space", g, 0);
    }

    /* Pad. */
    static const struct {
        hp_pad_mode mode;
        int64_t b, e;
        float expect[8];
        int n;
    } pc[] = {
        {HP_PAD_REFLECT, 2, 2, {3, 2, 1, 2, 3, 2, 1}, 7},
        {HP_PAD_EDGE, 2, 2, {1, 1, 1, 2, 3, 3, 3}, 7},
        {HP_PAD_CONSTANT, 2, 2, {9, 9, 1, 2, 3, 9, 9}, 7},
        {HP_PAD_CONSTANT, -1, 1, {2, 3, 9}, 3},
        {HP_PAD_REFLECT, 4, 0, {1, 2, 3, 2, 1, 2, 3}, 7},
    };
    for (size_t i = 0; i < sizeof pc / sizeof pc[0]; i++) {
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(1, 3));
        int y = runtime(g, "y", 2, (int64_t[]){1, pc[i].n});
        hp_node *n = node(g, HP_OP_PAD, "Pad", INS(x), y);
        n->attr.pad.mode = pc[i].mode;
        n->attr.pad.value = 9;
        n->attr.pad.pads[1] = pc[i].b;
        n->attr.pad.pads[3] = pc[i].e;
        output(g, y);
        float xv[3] = {1, 2, 3};
        const float *in[] = {xv};
        check_reference("pad by hand", g, in, pc[i].expect, 0);
    }
    for (int mode = HP_PAD_CONSTANT; mode <= HP_PAD_EDGE; mode++) {
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(2, 3, 5, 6));
        int y = runtime(g, "y", DIMS(2, 4, 5, 14));
        hp_node *n = node(g, HP_OP_PAD, "Pad", INS(x), y);
        n->attr.pad.mode = (hp_pad_mode)mode;
        n->attr.pad.value = 0.5f;
        int64_t pads[8] = {0, 1, 2, 3, 0, 0, -2, 5};
        memcpy(n->attr.pad.pads, pads, sizeof pads);
        output(g, y);
        compare_paths("pad 4-D", g, 0);
    }
    {
        /* 2-D reflect by hand: [[1,2],[3,4]] padded by 1 on all sides. */
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(2, 2));
        int y = runtime(g, "y", DIMS(4, 4));
        hp_node *n = node(g, HP_OP_PAD, "Pad", INS(x), y);
        n->attr.pad.mode = HP_PAD_REFLECT;
        int64_t pads[4] = {1, 1, 1, 1};
        memcpy(n->attr.pad.pads, pads, sizeof pads);
        output(g, y);
        float xv[4] = {1, 2, 3, 4};
        const float *in[] = {xv};
        const float e[16] = {4, 3, 4, 3, 2, 1, 2, 1, 4, 3, 4, 3, 2, 1, 2, 1};
        check_reference("pad reflect 2-D by hand", g, in, e, 0);
    }
}

static hp_graph *resize_graph(hp_resize_mode mode, hp_coord_transform ct, hp_nearest_mode nm, int64_t N, int64_t C,
                              int64_t H, int64_t W, int64_t OH, int64_t OW, float sh, float sw)
{
    hp_graph *g = new_graph();
    int x = input(g, "x", DIMS(N, C, H, W));
    int y = runtime(g, "y", DIMS(N, C, OH, OW));
    hp_node *n = node(g, HP_OP_RESIZE, "Resize", INS(x), y);
    n->attr.resize = (hp_resize_attr){.mode = mode, .coord = ct, .nearest = nm, .scale_h = sh, .scale_w = sw};
    output(g, y);
    return g;
}

static void test_resize(void)
{
    /* 2x2 -> 4x4 of [[1,2],[3,4]] = 1 + x + 2y: bilinear reproduces it exactly at the clamped
     * source coordinates, so the expected grid is 1 + X[ow] + 2 X[oh]. */
    float x4[4] = {1, 2, 3, 4};
    const float *in[] = {x4};
    static const struct {
        hp_coord_transform ct;
        float X[4];
        const char *label;
    } lin[] = {
        {HP_CT_HALF_PIXEL, {0, 0.25f, 0.75f, 1}, "linear half_pixel"},
        {HP_CT_PYTORCH_HALF_PIXEL, {0, 0.25f, 0.75f, 1}, "linear pytorch_half_pixel"},
        {HP_CT_ALIGN_CORNERS, {0, 1.0f / 3, 2.0f / 3, 1}, "linear align_corners"},
        {HP_CT_ASYMMETRIC, {0, 0.5f, 1, 1}, "linear asymmetric"},
    };
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        float e[16];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                e[a * 4 + b] = 1 + lin[i].X[b] + 2 * lin[i].X[a];
        check_reference(lin[i].label,
                        resize_graph(HP_RESIZE_LINEAR, lin[i].ct, HP_NEAREST_ROUND_PREFER_FLOOR, 1, 1, 2, 2, 4, 4, 2, 2),
                        in, e, 1e-6);
    }
    /* Nearest: source index per output position along one axis. */
    static const struct {
        hp_coord_transform ct;
        hp_nearest_mode nm;
        int idx[4];
        const char *label;
    } nn[] = {
        {HP_CT_ASYMMETRIC, HP_NEAREST_FLOOR, {0, 0, 1, 1}, "nearest asymmetric floor"},
        {HP_CT_ASYMMETRIC, HP_NEAREST_CEIL, {0, 1, 1, 1}, "nearest asymmetric ceil"},
        {HP_CT_ASYMMETRIC, HP_NEAREST_ROUND_PREFER_FLOOR, {0, 0, 1, 1}, "nearest asymmetric round_prefer_floor"},
        {HP_CT_ASYMMETRIC, HP_NEAREST_ROUND_PREFER_CEIL, {0, 1, 1, 1}, "nearest asymmetric round_prefer_ceil"},
        {HP_CT_HALF_PIXEL, HP_NEAREST_ROUND_PREFER_FLOOR, {0, 0, 1, 1}, "nearest half_pixel"},
        {HP_CT_PYTORCH_HALF_PIXEL, HP_NEAREST_FLOOR, {0, 0, 0, 1}, "nearest pytorch_half_pixel floor"},
        {HP_CT_ALIGN_CORNERS, HP_NEAREST_ROUND_PREFER_CEIL, {0, 0, 1, 1}, "nearest align_corners"},
        {HP_CT_ALIGN_CORNERS, HP_NEAREST_CEIL, {0, 1, 1, 1}, "nearest align_corners ceil"},
    };
    for (size_t i = 0; i < sizeof nn / sizeof nn[0]; i++) {
        float e[16];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                e[a * 4 + b] = x4[nn[i].idx[a] * 2 + nn[i].idx[b]];
        check_reference(nn[i].label,
                        resize_graph(HP_RESIZE_NEAREST, nn[i].ct, nn[i].nm, 1, 1, 2, 2, 4, 4, 2, 2), in, e, 0);
    }
    {
        /* Output length 1: pytorch_half_pixel samples 0, half_pixel samples 0.5. */
        const float e_pt[1] = {1}, e_hp[1] = {2.5f};
        check_reference("linear pytorch_half_pixel to 1x1",
                        resize_graph(HP_RESIZE_LINEAR, HP_CT_PYTORCH_HALF_PIXEL, 0, 1, 1, 2, 2, 1, 1, 0.5f, 0.5f), in,
                        e_pt, 1e-6);
        check_reference("linear half_pixel to 1x1",
                        resize_graph(HP_RESIZE_LINEAR, HP_CT_HALF_PIXEL, 0, 1, 1, 2, 2, 1, 1, 0.5f, 0.5f), in, e_hp,
                        1e-6);
    }
    for (int ct = HP_CT_HALF_PIXEL; ct <= HP_CT_ASYMMETRIC; ct++)
        for (int mode = 0; mode < 2; mode++) {
            compare_paths("resize up", resize_graph((hp_resize_mode)mode, (hp_coord_transform)ct,
                                                    HP_NEAREST_ROUND_PREFER_CEIL, 2, 3, 5, 7, 13, 16,
                                                    13.0f / 5, 16.0f / 7),
                          0);
            compare_paths("resize down", resize_graph((hp_resize_mode)mode, (hp_coord_transform)ct, HP_NEAREST_FLOOR, 1,
                                                      2, 9, 8, 4, 3, 0.5f, 0.4f),
                          0);
        }
}

static void test_matrix_ops(void)
{
    /* Gemm with every transpose combination and C shapes. */
    static const int64_t cshape[][3] = {{0, 0, 0}, {1, 9, 0}, {2, 70, 9}, {2, 1, 9}, {2, 70, 1}, {1, 1, 0}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t ci = 0; ci < sizeof cshape / sizeof cshape[0]; ci++) {
                int64_t M = 70, K = 33, N = 9;
                hp_graph *g = new_graph();
                int a = ta ? input(g, "a", DIMS(K, M)) : input(g, "a", DIMS(M, K));
                int b = tb ? constant(g, "b", DIMS(N, K), NULL) : constant(g, "b", DIMS(K, N), NULL);
                int c = -1;
                if (cshape[ci][0] == 1)
                    c = constant(g, "c", 1, &cshape[ci][1], NULL);
                else if (cshape[ci][0] == 2)
                    c = constant(g, "c", 2, &cshape[ci][1], NULL);
                int y = runtime(g, "y", DIMS(M, N));
                hp_node *n = node(g, HP_OP_GEMM, "Gemm", c >= 0 ? 3 : 2, (int[]){a, b, c}, y);
                n->attr.gemm = (hp_gemm_attr){.alpha = 0.75f, .beta = 1.5f, .trans_a = ta, .trans_b = tb};
                output(g, y);
                compare_paths("gemm", g, 1e-5);
            }
    {
        /* [[1,2],[3,4]] x [[5,6],[7,8]]^T * 2 + 1 (scalar C) */
        hp_graph *g = new_graph();
        int a = input(g, "a", DIMS(2, 2));
        float bv[4] = {5, 6, 7, 8}, cv = 1;
        int b = constant(g, "b", DIMS(2, 2), bv);
        int c = constant(g, "c", 0, NULL, &cv);
        int y = runtime(g, "y", DIMS(2, 2));
        node(g, HP_OP_GEMM, "Gemm", INS(a, b, c), y)->attr.gemm =
            (hp_gemm_attr){.alpha = 2, .beta = 1, .trans_a = 0, .trans_b = 1};
        output(g, y);
        float av[4] = {1, 2, 3, 4};
        const float *in[] = {av};
        const float e[4] = {2 * 17 + 1, 2 * 23 + 1, 2 * 39 + 1, 2 * 53 + 1};
        check_reference("gemm by hand", g, in, e, 1e-6);
    }
    /* MatMul: 2-D, batched with broadcast, 1-D on either side. */
    static const struct {
        int na, nb, no;
        int64_t a[4], b[4], o[4];
    } mm[] = {
        {2, 2, 2, {5, 7}, {7, 3}, {5, 3}},
        {3, 2, 3, {4, 5, 7}, {7, 3}, {4, 5, 3}},
        {4, 3, 4, {2, 1, 5, 7}, {3, 7, 6}, {2, 3, 5, 6}},
        {1, 3, 2, {7}, {2, 7, 3}, {2, 3}},
        {3, 1, 2, {2, 5, 7}, {7}, {2, 5}},
        {1, 1, 0, {7}, {7}, {0}},
        {2, 2, 2, {3, 0}, {0, 4}, {3, 4}},
    };
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
        hp_graph *g = new_graph();
        int a = input(g, "a", mm[i].na, mm[i].a), b = input(g, "b", mm[i].nb, mm[i].b);
        int y = runtime(g, "y", mm[i].no, mm[i].o);
        node(g, HP_OP_MATMUL, "MatMul", INS(a, b), y);
        output(g, y);
        compare_paths("matmul", g, 1e-5);
    }
    {
        hp_graph *g = new_graph();
        int a = input(g, "a", DIMS(2)), b = input(g, "b", DIMS(2, 2, 3));
        int y = runtime(g, "y", DIMS(2, 3));
        node(g, HP_OP_MATMUL, "MatMul", INS(a, b), y);
        output(g, y);
        float av[2] = {1, 2}, bv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        const float *in[] = {av, bv};
        const float e[6] = {9, 12, 15, 7 + 20, 8 + 22, 9 + 24};
        check_reference("matmul 1-D by hand", g, in, e, 1e-6);
    }
    /* Softmax, current and legacy. */
    for (int legacy = 0; legacy < 2; legacy++)
        for (int axis = 0; axis < 3; axis++) {
            hp_graph *g = new_graph();
            int x = input(g, "x", DIMS(3, 4, 5));
            int y = runtime(g, "y", DIMS(3, 4, 5));
            hp_node *n = node(g, HP_OP_SOFTMAX, "Softmax", INS(x), y);
            n->attr.softmax.axis = axis;
            n->attr.softmax.legacy = legacy;
            output(g, y);
            compare_paths("softmax", g, 1e-6);
        }
    for (int legacy = 0; legacy < 2; legacy++) {
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(1, 2, 2));
        int y = runtime(g, "y", DIMS(1, 2, 2));
        hp_node *n = node(g, HP_OP_SOFTMAX, "Softmax", INS(x), y);
        n->attr.softmax.axis = 1;
        n->attr.softmax.legacy = legacy;
        output(g, y);
        float xv[4] = {1, 2, 3, 1000}; /* large values: must not overflow */
        const float *in[] = {xv};
        float e[4];
        if (legacy) {
            /* over all 4 elements: 1000 dominates */
            double s = exp(1 - 1000.0) + exp(2 - 1000.0) + exp(3 - 1000.0) + 1;
            e[0] = (float)(exp(1 - 1000.0) / s);
            e[1] = (float)(exp(2 - 1000.0) / s);
            e[2] = (float)(exp(3 - 1000.0) / s);
            e[3] = (float)(1 / s);
        } else {
            /* along axis 1 (pairs (1,3) and (2,1000)) */
            e[0] = (float)(1 / (1 + exp(2.0)));
            e[2] = (float)(exp(2.0) / (1 + exp(2.0)));
            e[1] = 0;
            e[3] = 1;
        }
        check_reference(legacy ? "softmax legacy by hand" : "softmax by hand", g, in, e, 1e-6);
    }
}

/* A DenseNet-like block: stem conv, two dense layers (BN+ReLU folded to ScaleShift, 1x1 conv with
 * ReLU, 3x3 conv), concatenations, a transition (ScaleShift, 1x1 conv, 2x2 average pool), global
 * pool, flatten (alias), classifier Gemm and Softmax. Returns the value ids for hand plans. */
typedef struct {
    int x, c0, n1, cat1, n2, cat2, ss1, ss2;
} dense_ids;

static hp_graph *dense_graph(int64_t N, int64_t S, dense_ids *id)
{
    hp_graph *g = new_graph();
    int64_t C0 = 24, G = 8, B = 32;
    id->x = input(g, "x", DIMS(N, 16, S, S));
    int w0 = constant(g, "w0", DIMS(C0, 16, 3, 3), NULL), b0 = constant(g, "b0", DIMS(C0), NULL);
    id->c0 = runtime(g, "c0", DIMS(N, C0, S, S));
    node(g, HP_OP_CONV, "Conv", INS(id->x, w0, b0), id->c0)->attr.conv =
        (hp_conv_attr){.group = 1, .kh = 3, .kw = 3, .stride = {1, 1}, .dil = {1, 1}, .pad = {1, 1, 1, 1},
                       .act = {.kind = HP_ACT_RELU}};
    int prev[3] = {id->c0, -1, -1};
    int64_t cin = C0;
    for (int layer = 0; layer < 2; layer++) {
        char nm[32];
        int in_v = layer == 0 ? id->c0 : id->cat1;
        snprintf(nm, sizeof nm, "s%d", layer);
        int s = constant(g, nm, DIMS(cin), NULL);
        snprintf(nm, sizeof nm, "t%d", layer);
        int t = constant(g, nm, DIMS(cin), NULL);
        snprintf(nm, sizeof nm, "ss%d", layer);
        int ss = runtime(g, nm, DIMS(N, cin, S, S));
        node(g, HP_OP_SCALE_SHIFT, "ScaleShift", INS(in_v, s, t), ss)->attr.act.kind = HP_ACT_RELU;
        snprintf(nm, sizeof nm, "w1_%d", layer);
        int w1 = constant(g, nm, DIMS(B, cin, 1, 1), NULL);
        snprintf(nm, sizeof nm, "b1_%d", layer);
        int b1 = constant(g, nm, DIMS(B), NULL);
        snprintf(nm, sizeof nm, "bott%d", layer);
        int bott = runtime(g, nm, DIMS(N, B, S, S));
        node(g, HP_OP_CONV, "Conv", INS(ss, w1, b1), bott)->attr.conv =
            (hp_conv_attr){.group = 1, .kh = 1, .kw = 1, .stride = {1, 1}, .dil = {1, 1}, .act = {.kind = HP_ACT_RELU}};
        snprintf(nm, sizeof nm, "w2_%d", layer);
        int w2 = constant(g, nm, DIMS(G, B, 3, 3), NULL);
        snprintf(nm, sizeof nm, "new%d", layer);
        int nv = runtime(g, nm, DIMS(N, G, S, S));
        node(g, HP_OP_CONV, "Conv", INS(bott, w2), nv)->attr.conv =
            (hp_conv_attr){.group = 1, .kh = 3, .kw = 3, .stride = {1, 1}, .dil = {1, 1}, .pad = {1, 1, 1, 1}};
        prev[layer + 1] = nv;
        cin += G;
        snprintf(nm, sizeof nm, "cat%d", layer);
        int cat = runtime(g, nm, DIMS(N, cin, S, S));
        node(g, HP_OP_CONCAT, "Concat", layer + 2, prev, cat)->attr.axis = 1;
        if (layer == 0) {
            id->ss1 = ss;
            id->n1 = nv;
            id->cat1 = cat;
        } else {
            id->ss2 = ss;
            id->n2 = nv;
            id->cat2 = cat;
        }
    }
    int s = constant(g, "st", DIMS(cin), NULL), t = constant(g, "tt", DIMS(cin), NULL);
    int ss = runtime(g, "sst", DIMS(N, cin, S, S));
    node(g, HP_OP_SCALE_SHIFT, "ScaleShift", INS(id->cat2, s, t), ss)->attr.act.kind = HP_ACT_RELU;
    int wt = constant(g, "wt", DIMS(20, cin, 1, 1), NULL);
    int tr = runtime(g, "tr", DIMS(N, 20, S, S));
    node(g, HP_OP_CONV, "Conv", INS(ss, wt), tr)->attr.conv =
        (hp_conv_attr){.group = 1, .kh = 1, .kw = 1, .stride = {1, 1}, .dil = {1, 1}};
    int pooled = runtime(g, "pooled", DIMS(N, 20, S / 2, S / 2));
    node(g, HP_OP_AVGPOOL, "AveragePool", INS(tr), pooled)->attr.pool =
        (hp_pool_attr){.kh = 2, .kw = 2, .stride = {2, 2}, .dil = {1, 1}};
    int gp = runtime(g, "gp", DIMS(N, 20, 1, 1));
    node(g, HP_OP_GLOBAL_AVGPOOL, "GlobalAveragePool", INS(pooled), gp);
    int flat = runtime(g, "flat", DIMS(N, 20));
    node(g, HP_OP_ALIAS, "Flatten", INS(gp), flat);
    int wf = constant(g, "wf", DIMS(10, 20), NULL), bf = constant(g, "bf", DIMS(10), NULL);
    int logits = runtime(g, "logits", DIMS(N, 10));
    node(g, HP_OP_GEMM, "Gemm", INS(flat, wf, bf), logits)->attr.gemm =
        (hp_gemm_attr){.alpha = 1, .beta = 1, .trans_b = 1};
    int prob = runtime(g, "prob", DIMS(N, 10));
    node(g, HP_OP_SOFTMAX, "Softmax", INS(logits), prob)->attr.softmax.axis = 1;
    output(g, prob);
    output(g, tr); /* a second output, read back from the middle of the graph */
    return g;
}

static void test_dense_block(void)
{
    dense_ids id;
    hp_graph *g = dense_graph(2, 12, &id);
    hp_plan flat = contiguous_plan(g);
    /* The flatten alias shares its input's storage, as the planner does. */
    for (int k = 0; k < g->n_nodes; k++)
        if (g->nodes[k].op == HP_OP_ALIAS) {
            hp_place *p = &flat.place[g->nodes[k].out[0]];
            *p = flat.place[g->nodes[k].in[0]];
            p->batch_stride = 20;
        }
    io r_flat = compare_paths_plan("dense block, contiguous plan", g, &flat, 1e-4, 777u);

    /* Zero-copy concatenation: c0, new0, cat0 and new1 live inside cat1's buffer. */
    hp_plan cat = contiguous_plan(g);
    memcpy(cat.place, flat.place, sizeof(hp_place) * (size_t)g->n_values);
    place_in(g, &cat, id.c0, id.cat2, 0);
    place_in(g, &cat, id.n1, id.cat2, 24);
    place_in(g, &cat, id.cat1, id.cat2, 0);
    place_in(g, &cat, id.n2, id.cat2, 32);
    int concat_nodes = 0, in_place = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        if (n->op != HP_OP_CONCAT)
            continue;
        concat_nodes++;
        for (int i = 0; i < n->n_in; i++)
            in_place += hp_plan_concat_input_in_place(g, &cat, n, i);
    }
    CHECK(concat_nodes == 2);
    CHECK_MSG(in_place == 5, "expected every concat input in place, got %d", in_place);
    io r_cat = compare_paths_plan("dense block, in-place concat plan", g, &cat, 1e-4, 777u);
    for (int o = 0; o < g->n_outputs; o++) {
        int64_t n = out_numel(g, o);
        CHECK_MSG(hp_test_max_rel_err(r_cat.out[o], r_flat.out[o], (long)n) <= 1e-6,
                  "in-place concat plan changes output %d", o);
    }
    /* The fast path gives the same bytes whichever plan places the values. */
    io f1 = make_io(g, 777u), f2 = make_io(g, 777u);
    char msg[HP_ERROR_MSG_MAX];
    CHECK(run_backend(g, &flat, 2, 0, &f1, msg, sizeof msg) == HP_OK);
    CHECK(run_backend(g, &cat, 2, 0, &f2, msg, sizeof msg) == HP_OK);
    for (int o = 0; o < g->n_outputs; o++)
        CHECK_MSG(memcmp(f1.out[o], f2.out[o], sizeof(float) * (size_t)out_numel(g, o)) == 0,
                  "fast output %d depends on the plan", o);
    free_io(&f1);
    free_io(&f2);

    /* Only some inputs in place: new1 gets its own buffer and is copied by the concat. */
    hp_plan part = contiguous_plan(g);
    memcpy(part.place, cat.place, sizeof(hp_place) * (size_t)g->n_values);
    part.place[id.n2] = flat.place[id.n2];
    io r_part = compare_paths_plan("dense block, partly in place", g, &part, 1e-4, 777u);
    for (int o = 0; o < g->n_outputs; o++)
        CHECK(hp_test_max_rel_err(r_part.out[o], r_flat.out[o], (long)out_numel(g, o)) <= 1e-6);

    /* The same with the project's planner, when present, on a larger image (several column blocks). */
    free_io(&r_flat);
    free_io(&r_cat);
    free_io(&r_part);
    hp_plan_free(&flat);
    hp_plan_free(&cat);
    hp_plan_free(&part);
    hp_graph_destroy(g);

    g = dense_graph(3, 32, &id);
    hp_graph_recount(g);
    hp_plan real;
    hp_error err = {0};
    hp_status st = hp_plan_build(g, &real, &err);
    CHECK_MSG(st == HP_OK, "hp_plan_build: %s", err.msg);
    if (st == HP_OK) {
        io r = compare_paths_plan("dense block, project planner", g, &real, 1e-4, 99u);
        free_io(&r);
        hp_plan_free(&real);
    }
    hp_graph_destroy(g);
}

/* Thread-count determinism on a conv-heavy graph large enough for many work units. */
static void test_determinism(void)
{
    hp_graph *g = new_graph();
    int x = input(g, "x", DIMS(3, 32, 28, 28));
    int prev = x;
    int64_t c = 32;
    static const int ks[] = {3, 1, 3, 5, 1, 3};
    for (int i = 0; i < 6; i++) {
        int k = ks[i];
        int64_t m = 24 + 8 * i;
        char nm[16];
        snprintf(nm, sizeof nm, "w%d", i);
        int w = constant(g, nm, DIMS(m, c, k, k), NULL);
        snprintf(nm, sizeof nm, "b%d", i);
        int b = constant(g, nm, DIMS(m), NULL);
        snprintf(nm, sizeof nm, "y%d", i);
        int y = runtime(g, nm, DIMS(3, m, 28, 28));
        node(g, HP_OP_CONV, "Conv", INS(prev, w, b), y)->attr.conv =
            (hp_conv_attr){.group = 1, .kh = k, .kw = k, .stride = {1, 1}, .dil = {1, 1},
                           .pad = {k / 2, k / 2, k / 2, k / 2}, .act = {.kind = HP_ACT_RELU}};
        prev = y;
        c = m;
    }
    output(g, prev);
    hp_plan p = contiguous_plan(g);
    io out[4];
    char msg[HP_ERROR_MSG_MAX];
    for (int t = 0; t < 4; t++) {
        out[t] = make_io(g, 5u);
        int threads = t < 3 ? t + 1 : 7;
        CHECK_MSG(run_backend(g, &p, threads, 0, &out[t], msg, sizeof msg) == HP_OK, "%s", msg);
    }
    int64_t n = out_numel(g, 0);
    for (int t = 1; t < 4; t++)
        CHECK_MSG(memcmp(out[0].out[0], out[t].out[0], sizeof(float) * (size_t)n) == 0,
                  "conv stack: thread count %d changes the result", t < 3 ? t + 1 : 7);
    passed++;
    for (int t = 0; t < 4; t++)
        free_io(&out[t]);
    hp_plan_free(&p);
    hp_graph_destroy(g);
}

/* Bad graphs and plans fail with a message, never a crash. */
static void test_errors(void)
{
    char msg[HP_ERROR_MSG_MAX];
    {
        /* An int64 constant feeding an op. */
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(2, 3));
        int b = add_value(g, "int_shift", HP_VAL_CONST, DIMS(3));
        g->values[b].dtype = HP_DT_INT64;
        g->values[b].data = calloc(3, sizeof(int64_t));
        g->values[b].owns_data = 1;
        int y = runtime(g, "y", DIMS(2, 3));
        node(g, HP_OP_BINARY, "Add", INS(x, b), y)->attr.binary = HP_BIN_ADD;
        output(g, y);
        hp_plan p = contiguous_plan(g);
        io io1 = make_io(g, 1u);
        hp_status st = run_backend(g, &p, 2, 0, &io1, msg, sizeof msg);
        CHECK(st == HP_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(msg, "int_shift") != NULL, "message does not name the value: %s", msg);
        free_io(&io1);
        hp_plan_free(&p);
        hp_graph_destroy(g);
    }
    {
        /* A strided view handed to an op that needs contiguous data. */
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(2, 3, 2, 2));
        int y = runtime(g, "y", DIMS(2, 3, 2, 2));
        node(g, HP_OP_SOFTMAX, "Softmax", INS(x), y)->attr.softmax.axis = 1;
        output(g, y);
        hp_plan p = contiguous_plan(g);
        p.place[x].batch_stride = 24;
        p.arena_elems += 64;
        io io1 = make_io(g, 1u);
        CHECK(run_backend(g, &p, 1, 0, &io1, msg, sizeof msg) == HP_ERR_INVALID);
        CHECK_MSG(strstr(msg, "strided") != NULL, "%s", msg);
        /* A place beyond the arena. */
        p.place[x].batch_stride = 12;
        p.place[y].offset = p.arena_elems;
        CHECK(run_backend(g, &p, 1, 1, &io1, msg, sizeof msg) == HP_ERR_INVALID);
        CHECK_MSG(strstr(msg, "outside the arena") != NULL, "%s", msg);
        free_io(&io1);
        hp_plan_free(&p);
        hp_graph_destroy(g);
    }
    {
        /* Inconsistent conv shapes (channels vs groups), mismatched binary shapes. */
        hp_graph *g = conv_graph(1, 6, 5, 5, 4, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_NONE);
        g->values[g->nodes[0].in[1]].dims[1] = 2; /* W claims 2 channels per group, X has 6 over 2 groups */
        hp_plan p = contiguous_plan(g);
        io io1 = make_io(g, 1u);
        for (int ref = 0; ref < 2; ref++) {
            CHECK(run_backend(g, &p, 2, ref, &io1, msg, sizeof msg) == HP_ERR_INVALID);
            CHECK_MSG(strstr(msg, "Conv") != NULL, "%s", msg);
        }
        free_io(&io1);
        hp_plan_free(&p);
        hp_graph_destroy(g);

        g = new_graph();
        int a = input(g, "a", DIMS(2, 3)), b = input(g, "b", DIMS(4));
        int y = runtime(g, "y", DIMS(2, 3));
        node(g, HP_OP_BINARY, "Add", INS(a, b), y)->attr.binary = HP_BIN_ADD;
        output(g, y);
        p = contiguous_plan(g);
        io1 = make_io(g, 1u);
        CHECK(run_backend(g, &p, 2, 0, &io1, msg, sizeof msg) == HP_ERR_INVALID);
        free_io(&io1);
        hp_plan_free(&p);
        hp_graph_destroy(g);
    }
    {
        /* A graph output that is a constant, and one that is the graph input itself. */
        hp_graph *g = new_graph();
        int x = input(g, "x", DIMS(5));
        float cv[3] = {7, 8, 9};
        int c = constant(g, "c", DIMS(3), cv);
        output(g, c);
        output(g, x);
        hp_plan p = contiguous_plan(g);
        io io1 = make_io(g, 3u);
        CHECK(run_backend(g, &p, 2, 0, &io1, msg, sizeof msg) == HP_OK);
        CHECK(memcmp(io1.out[0], cv, sizeof cv) == 0);
        CHECK(memcmp(io1.out[1], io1.in[0], 5 * sizeof(float)) == 0);
        free_io(&io1);
        hp_plan_free(&p);
        hp_graph_destroy(g);
    }
    passed++;
}

int main(void)
{
    test_conv();
    test_winograd();
    test_elementwise();
    test_pool();
    test_pool_nan();
    test_layout_ops();
    test_resize();
    test_matrix_ops();
    test_dense_block();
    test_determinism();
    test_errors();
    return hp_test_finish("test_cpu_ops", passed);
}
