/* The CUDA backend against the CPU reference backend, op by op, at fp32, fp16 and bf16.
 *
 * Each case builds a small graph by hand (values, nodes, attributes, shapes as shape inference
 * would leave them), plans it with hp_plan_build, runs it on hp_cpu_backend_create(1, 1) and on
 * hp_cuda_backend_create(0, precision) and compares every output: normalized mean squared error
 * <= 1e-6 at fp32 and <= 1e-3 at fp16 / bf16 over the finite positions, and NaN / +-Inf in
 * exactly the same places. Exits 77 (skipped) when no CUDA device is usable.
 * HP_CUDA_TEST_ONLY=<substring> runs only the matching cases. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "models/graph.h"
#include "models/plan.h"
#include "util/testutil.h"

#define NPREC 3
static const char *prec_name[NPREC] = {"fp32", "fp16", "bf16"};
static const double prec_tol[NPREC] = {1e-6, 1e-3, 1e-3};

static hp_backend *cpu;
static hp_backend *cuda[NPREC];
static int passed;

/* ---- graph building ---------------------------------------------------------------------- */

static unsigned name_seed(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h ? h : 1;
}

static hp_graph *new_graph(void)
{
    hp_graph *g = calloc(1, sizeof *g);
    if (!g) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    g->opset = 17;
    g->source = malloc(16);
    if (g->source)
        strcpy(g->source, "test_cuda_ops");
    return g;
}

static int add_value(hp_graph *g, const char *name, hp_value_kind kind, int ndim,
                     const int64_t *dims)
{
    int v = hp_graph_add_value(g, name);
    if (v < 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    hp_value *val = &g->values[v];
    val->kind = kind;
    val->dtype = HP_DT_FLOAT;
    val->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        val->dims[i] = dims[i];
    return v;
}

/* A runtime value (produced by a node) or a graph input. */
static int rt(hp_graph *g, const char *name, int ndim, const int64_t *dims)
{
    return add_value(g, name, HP_VAL_RUNTIME, ndim, dims);
}
static int input(hp_graph *g, const char *name, int ndim, const int64_t *dims)
{
    int v = add_value(g, name, HP_VAL_INPUT, ndim, dims);
    int *in = realloc(g->inputs, sizeof(int) * (size_t)(g->n_inputs + 1));
    if (!in)
        exit(1);
    g->inputs = in;
    g->inputs[g->n_inputs++] = v;
    return v;
}
static void output(hp_graph *g, int v)
{
    int *o = realloc(g->outputs, sizeof(int) * (size_t)(g->n_outputs + 1));
    if (!o)
        exit(1);
    g->outputs = o;
    g->outputs[g->n_outputs++] = v;
    g->values[v].is_output = 1;
}

/* A float constant filled with deterministic values in [lo, hi). */
static int cst(hp_graph *g, const char *name, int ndim, const int64_t *dims, float lo, float hi)
{
    int v = add_value(g, name, HP_VAL_CONST, ndim, dims);
    int64_t n = hp_value_numel(&g->values[v]);
    float *d = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!d)
        exit(1);
    hp_test_fill_random(d, (long)n, name_seed(name), lo, hi);
    g->values[v].data = d;
    g->values[v].owns_data = 1;
    return v;
}

static hp_node *add_node(hp_graph *g, hp_op op, const char *type, int n_in, const int *in, int out)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%d", type, g->n_nodes);
    int k = hp_graph_add_node(g, type, name, n_in, 1);
    if (k < 0)
        exit(1);
    hp_node *n = &g->nodes[k];
    n->op = op;
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    n->out[0] = out;
    return n;
}

static hp_act act_of(hp_act_kind k)
{
    hp_act a = {k, 0.0f, 0.0f, 0.0f};
    if (k == HP_ACT_LEAKY_RELU)
        a.alpha = 0.1f;
    if (k == HP_ACT_CLIP) {
        a.lo = -0.5f;
        a.hi = 0.75f;
    }
    return a;
}

/* ---- running and comparing --------------------------------------------------------------- */

/* How a case fills its inputs: by default uniform in [-2, 2); a hook can override one. */
typedef void (*fill_fn)(int input_index, float *x, long n);

static int only_ok(const char *name)
{
    const char *only = getenv("HP_CUDA_TEST_ONLY");
    return !only || !*only || strstr(name, only) != NULL;
}

static int classify(float x)
{
    if (isnan(x))
        return 1;
    if (isinf(x))
        return x > 0 ? 2 : 3;
    return 0;
}

static void compare(const char *name, const char *prec, double tol, int out_i, const float *got,
                    const float *ref, long n)
{
    double num = 0, den = 0;
    long bad_class = 0, first_bad = -1;
    for (long i = 0; i < n; i++) {
        int cg = classify(got[i]), cr = classify(ref[i]);
        if (cg != cr) {
            if (first_bad < 0)
                first_bad = i;
            bad_class++;
            continue;
        }
        if (cr)
            continue;
        double d = (double)got[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    double nmse = num / (den > 1e-30 ? den : 1e-30);
    if (den <= 1e-30 && num <= 1e-30)
        nmse = 0;
    CHECK_MSG(bad_class == 0,
              "%s [%s] output %d: %ld positions differ in NaN/Inf (first %ld: got %g, want %g)",
              name, prec, out_i, bad_class, first_bad, first_bad >= 0 ? got[first_bad] : 0.0,
              first_bad >= 0 ? ref[first_bad] : 0.0);
    CHECK_MSG(nmse <= tol, "%s [%s] output %d: nmse %.3g > %.3g", name, prec, out_i, nmse, tol);
    if (bad_class == 0 && nmse <= tol)
        passed++;
    printf("  %-28s %-4s out%d  nmse %.3g\n", name, prec, out_i, nmse);
}

/* 8-bit RGB tiles for a graph whose one input is [N,3,H,W] (tests of run_rgb8): the bytes, the
 * normalization, and the float input the host would make of them (the CPU reference's input). */
static const float rgb8_scale[3] = {1.0f / (255.0f * 0.184f), 1.0f / (255.0f * 0.168f),
                                    1.0f / (255.0f * 0.102f)};
static const float rgb8_bias[3] = {-0.83f / 0.184f, -0.626f / 0.168f, -0.878f / 0.102f};

static uint8_t *rgb8_tiles(const hp_value *x, unsigned seed, float *as_float)
{
    int64_t n = hp_value_numel(x), plane = x->dims[2] * x->dims[3];
    uint8_t *rgb = malloc((size_t)n);
    if (!rgb)
        exit(1);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        rgb[i] = (uint8_t)(seed >> 24);
    }
    for (int64_t i = 0; i < n; i++) { /* i in NCHW order; the bytes are HWC per tile */
        int64_t t = i / (3 * plane), c = (i / plane) % 3, p = i % plane;
        as_float[i] = rgb[(t * plane + p) * 3 + c] * rgb8_scale[c] + rgb8_bias[c];
    }
    return rgb;
}

/* Plans g, runs it on the CPU reference and on each CUDA precision, compares, frees g. With
 * rgb8, the CUDA backends take the input as 8-bit tiles (run_rgb8) and normalize on the device,
 * the CPU reference the host-normalized floats. */
static void run_case_with(const char *name, hp_graph *g, fill_fn fill, int rgb8)
{
    uint8_t *rgb = NULL;
    if (!only_ok(name)) {
        hp_graph_destroy(g);
        return;
    }
    hp_graph_recount(g);
    hp_plan plan;
    memset(&plan, 0, sizeof plan);
    hp_error err;
    memset(&err, 0, sizeof err);
    float **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    float **ref = calloc((size_t)g->n_outputs + 1, sizeof *ref);
    float **got = calloc((size_t)g->n_outputs + 1, sizeof *got);
    if (!in || !ref || !got)
        exit(1);
    hp_status s = hp_plan_build(g, &plan, &err);
    CHECK_MSG(s == HP_OK, "%s: plan: %s", name, err.msg);
    if (s != HP_OK)
        goto done;
    for (int i = 0; i < g->n_inputs; i++) {
        long n = (long)hp_value_numel(&g->values[g->inputs[i]]);
        in[i] = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        if (!in[i])
            exit(1);
        hp_test_fill_random(in[i], n, name_seed(name) + 17u * (unsigned)i, -2.0f, 2.0f);
        if (fill)
            fill(i, in[i], n);
    }
    if (rgb8)
        rgb = rgb8_tiles(&g->values[g->inputs[0]], name_seed(name), in[0]);
    for (int i = 0; i < g->n_outputs; i++) {
        long n = (long)hp_value_numel(&g->values[g->outputs[i]]);
        ref[i] = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
        got[i] = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
        if (!ref[i] || !got[i])
            exit(1);
    }
    hp_error_clear(&cpu->err);
    s = hp_backend_prepare(cpu, g, &plan);
    if (s == HP_OK)
        s = hp_backend_run(cpu, (const float *const *)in, ref);
    CHECK_MSG(s == HP_OK, "%s: CPU reference: %s", name, hp_backend_error(cpu));
    if (s != HP_OK)
        goto done;
    for (int p = 0; p < NPREC; p++) {
        if (!cuda[p])
            continue;
        hp_error_clear(&cuda[p]->err);
        s = hp_backend_prepare(cuda[p], g, &plan);
        if (s == HP_OK && rgb8)
            s = cuda[p]->vt->run_rgb8(cuda[p], rgb, rgb8_scale, rgb8_bias, got);
        else if (s == HP_OK)
            s = hp_backend_run(cuda[p], (const float *const *)in, got);
        CHECK_MSG(s == HP_OK, "%s [%s]: %s", name, prec_name[p], hp_backend_error(cuda[p]));
        if (s != HP_OK)
            continue;
        for (int i = 0; i < g->n_outputs; i++)
            compare(name, prec_name[p], prec_tol[p], i, got[i], ref[i],
                    (long)hp_value_numel(&g->values[g->outputs[i]]));
    }
done:
    /* the backends keep pointers to g and plan until the next prepare: re-prepare on an empty
     * graph is not needed, as every case prepares afresh before it runs */
    for (int i = 0; i < g->n_inputs; i++)
        free(in[i]);
    for (int i = 0; i < g->n_outputs; i++) {
        free(ref[i]);
        free(got[i]);
    }
    free(in);
    free(ref);
    free(got);
    free(rgb);
    hp_plan_free(&plan);
    hp_graph_destroy(g);
}

static void run_case(const char *name, hp_graph *g, fill_fn fill)
{
    run_case_with(name, g, fill, 0);
}

/* ---- cases ------------------------------------------------------------------------------- */

static int64_t conv_out(int64_t in, int k, int s, int d, int p0, int p1)
{
    return (in + p0 + p1 - ((int64_t)d * (k - 1) + 1)) / s + 1;
}

static void conv_case(const char *name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t M,
                      int kh, int kw, int group, int sh, int sw, int dh, int dw, int pt, int pl,
                      int pb, int pr, int bias, hp_act_kind act)
{
    hp_graph *g = new_graph();
    int64_t xd[4] = {N, C, H, W}, wd[4] = {M, C / group, kh, kw}, bd[1] = {M};
    int64_t yd[4] = {N, M, conv_out(H, kh, sh, dh, pt, pb), conv_out(W, kw, sw, dw, pl, pr)};
    int x = input(g, "x", 4, xd);
    int w = cst(g, "w", 4, wd, -0.3f, 0.3f);
    int b = bias ? cst(g, "b", 1, bd, -0.5f, 0.5f) : -1;
    int y = rt(g, "y", 4, yd);
    int ins[3] = {x, w, b};
    hp_node *n = add_node(g, HP_OP_CONV, "Conv", bias ? 3 : 2, ins, y);
    n->attr.conv.group = group;
    n->attr.conv.kh = kh;
    n->attr.conv.kw = kw;
    n->attr.conv.stride[0] = sh;
    n->attr.conv.stride[1] = sw;
    n->attr.conv.dil[0] = dh;
    n->attr.conv.dil[1] = dw;
    n->attr.conv.pad[0] = pt;
    n->attr.conv.pad[1] = pl;
    n->attr.conv.pad[2] = pb;
    n->attr.conv.pad[3] = pr;
    n->attr.conv.act = act_of(act);
    output(g, y);
    run_case(name, g, NULL);
}

static void test_conv(void)
{
    conv_case("conv3x3_bias_relu", 2, 8, 9, 9, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, HP_ACT_RELU);
    conv_case("conv_asym_pad_s2", 2, 4, 10, 11, 6, 3, 3, 1, 2, 2, 1, 1, 0, 1, 1, 0, 0, HP_ACT_NONE);
    conv_case("conv_asym_pad_leaky", 1, 4, 10, 11, 6, 3, 3, 1, 1, 1, 1, 1, 2, 0, 0, 1, 1,
              HP_ACT_LEAKY_RELU);
    conv_case("conv_group2_dil2_clip", 2, 8, 12, 12, 8, 3, 3, 2, 1, 1, 2, 2, 2, 2, 2, 2, 1,
              HP_ACT_CLIP);
    conv_case("conv_depthwise_s2_sigmoid", 2, 12, 13, 13, 12, 3, 3, 12, 2, 2, 1, 1, 1, 1, 1, 1, 1,
              HP_ACT_SIGMOID);
    conv_case("conv1x1_tanh", 3, 16, 7, 7, 24, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, HP_ACT_TANH);
    conv_case("conv7x7_s2_p3", 2, 3, 32, 32, 16, 7, 7, 1, 2, 2, 1, 1, 3, 3, 3, 3, 0, HP_ACT_NONE);
    conv_case("conv5x3_rect_dil", 2, 6, 15, 11, 10, 5, 3, 1, 1, 2, 2, 1, 4, 1, 3, 2, 1,
              HP_ACT_RELU);
}

static void fill_bn_runtime(int i, float *x, long n)
{
    if (i == 4) /* var: positive */
        for (long k = 0; k < n; k++)
            x[k] = 0.25f + fabsf(x[k]);
}

static void test_norm(void)
{
    int64_t xd[4] = {2, 6, 5, 7}, cd[1] = {6};
    {
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, xd);
        int ins[5] = {x, cst(g, "sc", 1, cd, 0.5f, 1.5f), cst(g, "bi", 1, cd, -1, 1),
                      cst(g, "mu", 1, cd, -0.5f, 0.5f), cst(g, "va", 1, cd, 0.2f, 2.0f)};
        int y = rt(g, "y", 4, xd);
        add_node(g, HP_OP_BATCHNORM, "BatchNormalization", 5, ins, y)->attr.bn_epsilon = 1e-5f;
        output(g, y);
        run_case("batchnorm_const", g, NULL);
    }
    {
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, xd);
        int ins[5] = {x, input(g, "sc", 1, cd), input(g, "bi", 1, cd), input(g, "mu", 1, cd),
                      input(g, "va", 1, cd)};
        int y = rt(g, "y", 4, xd);
        add_node(g, HP_OP_BATCHNORM, "BatchNormalization", 5, ins, y)->attr.bn_epsilon = 1e-3f;
        output(g, y);
        run_case("batchnorm_runtime_params", g, fill_bn_runtime);
    }
    for (int r = 0; r < 2; r++) {
        int64_t d2[2] = {5, 6};
        hp_graph *g = new_graph();
        int x = r ? input(g, "x", 2, d2) : input(g, "x", 4, xd);
        int ins[3] = {x, cst(g, "sc", 1, cd, -1.5f, 1.5f), cst(g, "sh", 1, cd, -1, 1)};
        int y = r ? rt(g, "y", 2, d2) : rt(g, "y", 4, xd);
        add_node(g, HP_OP_SCALE_SHIFT, "ScaleShift", 3, ins, y)->attr.act =
            act_of(r ? HP_ACT_LEAKY_RELU : HP_ACT_CLIP);
        output(g, y);
        run_case(r ? "scale_shift_rank2_leaky" : "scale_shift_clip", g, NULL);
    }
    /* planes of >= 1024 elements take the block-per-plane kernel (the cases above, the other) */
    {
        int64_t bd[4] = {2, 3, 33, 40}, c3[1] = {3};
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, bd);
        int ins[3] = {x, cst(g, "sc", 1, c3, -1.5f, 1.5f), cst(g, "sh", 1, c3, -1, 1)};
        int y = rt(g, "y", 4, bd);
        add_node(g, HP_OP_SCALE_SHIFT, "ScaleShift", 3, ins, y)->attr.act = act_of(HP_ACT_RELU);
        output(g, y);
        run_case("scale_shift_large_plane_relu", g, NULL);
    }
}

static void test_elementwise(void)
{
    static const char *names[] = {"unary_relu", "unary_leaky", "unary_clip", "unary_sigmoid",
                                  "unary_tanh"};
    hp_act_kind kinds[] = {HP_ACT_RELU, HP_ACT_LEAKY_RELU, HP_ACT_CLIP, HP_ACT_SIGMOID,
                           HP_ACT_TANH};
    int64_t xd[4] = {2, 3, 5, 7};
    for (int i = 0; i < 5; i++) {
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, xd), y = rt(g, "y", 4, xd);
        add_node(g, HP_OP_UNARY, "Unary", 1, &x, y)->attr.act = act_of(kinds[i]);
        output(g, y);
        run_case(names[i], g, NULL);
    }
    {
        int64_t sd[3] = {3, 1, 1};
        hp_graph *g = new_graph();
        int ins[2] = {input(g, "x", 4, xd), cst(g, "slope", 3, sd, 0.0f, 0.5f)};
        int y = rt(g, "y", 4, xd);
        add_node(g, HP_OP_PRELU, "PRelu", 2, ins, y);
        output(g, y);
        run_case("prelu_channel", g, NULL);
    }
    static const char *bn[] = {"binary_add_bcast", "binary_sub_bcast", "binary_mul_bcast",
                               "binary_div_bcast"};
    for (int k = 0; k < 4; k++) {
        /* A [2,3,4,5] (runtime) op B [3,1,5] (constant) and C [2,1,4,1] (runtime) op A */
        int64_t ad[4] = {2, 3, 4, 5}, bd[3] = {3, 1, 5}, cd[4] = {2, 1, 4, 1};
        hp_graph *g = new_graph();
        int a = input(g, "a", 4, ad), c = input(g, "c", 4, cd);
        int b = cst(g, "b", 3, bd, 0.5f, 1.5f);
        int y1 = rt(g, "y1", 4, ad), y2 = rt(g, "y2", 4, ad);
        int i1[2] = {a, b}, i2[2] = {c, a};
        add_node(g, HP_OP_BINARY, "Binary", 2, i1, y1)->attr.binary = (hp_binary_kind)k;
        add_node(g, HP_OP_BINARY, "Binary", 2, i2, y2)->attr.binary = (hp_binary_kind)k;
        output(g, y1);
        output(g, y2);
        run_case(bn[k], g, NULL);
    }
}

/* One input holds NaN, +Inf and -Inf: they must come out in the same places. */
static void fill_special(int i, float *x, long n)
{
    if (i == 0 && n > 10) {
        x[1] = NAN;
        x[4] = INFINITY;
        x[9] = -INFINITY;
    }
}

static void test_special_values(void)
{
    int64_t xd[4] = {2, 3, 4, 4}, cd[1] = {3};
    hp_graph *g = new_graph();
    int x = input(g, "x", 4, xd);
    int k = cst(g, "k", 4, xd, -1, 1);
    int s = rt(g, "sum", 4, xd), sg = rt(g, "sig", 4, xd), th = rt(g, "tanh", 4, xd),
        ss = rt(g, "ss", 4, xd);
    int i1[2] = {x, k};
    add_node(g, HP_OP_BINARY, "Binary", 2, i1, s)->attr.binary = HP_BIN_ADD;
    add_node(g, HP_OP_UNARY, "Unary", 1, &s, sg)->attr.act = act_of(HP_ACT_SIGMOID);
    add_node(g, HP_OP_UNARY, "Unary", 1, &x, th)->attr.act = act_of(HP_ACT_TANH);
    int i3[3] = {x, cst(g, "sc", 1, cd, 0.5f, 1.5f), cst(g, "sh", 1, cd, -1, 1)};
    add_node(g, HP_OP_SCALE_SHIFT, "ScaleShift", 3, i3, ss)->attr.act = act_of(HP_ACT_NONE);
    output(g, s);
    output(g, sg);
    output(g, th);
    output(g, ss);
    run_case("nan_inf_elementwise", g, fill_special);
}

static int64_t pool_out(int64_t in, int k, int s, int d, int p0, int p1, int ceil_mode)
{
    int64_t span = in + p0 + p1 - ((int64_t)d * (k - 1) + 1);
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p0)
        o--; /* the last window must start inside the input or the top/left padding */
    return o;
}

/* NaN in pooled inputs: planes by index mod 3 get scattered NaNs, all NaN, none. MaxPool must
 * give NaN where a window holds one (ONNX, PyTorch), in the same places as the CPU reference. */
static long nan_plane = 1;
static void fill_pool_nan(int i, float *x, long n)
{
    if (i != 0)
        return;
    for (long k = 0; k < n; k++) {
        long plane = k / nan_plane;
        if (plane % 3 == 1 || (plane % 3 == 0 && k % 23 == 5))
            x[k] = NAN;
    }
}

static void pool_case_fill(const char *name, hp_op op, int k, int s, int d, int pt, int pl, int pb,
                           int pr, int ceil_mode, int include_pad, fill_fn fill);

static void pool_case(const char *name, hp_op op, int k, int s, int d, int pt, int pl, int pb,
                      int pr, int ceil_mode, int include_pad)
{
    pool_case_fill(name, op, k, s, d, pt, pl, pb, pr, ceil_mode, include_pad, NULL);
}

static void pool_case_fill(const char *name, hp_op op, int k, int s, int d, int pt, int pl, int pb,
                           int pr, int ceil_mode, int include_pad, fill_fn fill)
{
    int64_t xd[4] = {2, 3, 11, 10};
    int64_t yd[4] = {2, 3, pool_out(11, k, s, d, pt, pb, ceil_mode),
                     pool_out(10, k, s, d, pl, pr, ceil_mode)};
    hp_graph *g = new_graph();
    int x = input(g, "x", 4, xd), y = rt(g, "y", 4, yd);
    hp_node *n = add_node(g, op, op == HP_OP_MAXPOOL ? "MaxPool" : "AveragePool", 1, &x, y);
    n->attr.pool.kh = n->attr.pool.kw = k;
    n->attr.pool.stride[0] = n->attr.pool.stride[1] = s;
    n->attr.pool.dil[0] = n->attr.pool.dil[1] = d;
    n->attr.pool.pad[0] = pt;
    n->attr.pool.pad[1] = pl;
    n->attr.pool.pad[2] = pb;
    n->attr.pool.pad[3] = pr;
    n->attr.pool.count_include_pad = include_pad;
    output(g, y);
    nan_plane = xd[2] * xd[3];
    run_case(name, g, fill);
}

static void test_pool(void)
{
    pool_case("maxpool3_s2_p1", HP_OP_MAXPOOL, 3, 2, 1, 1, 1, 1, 1, 0, 0);
    pool_case("maxpool3_s2_ceil", HP_OP_MAXPOOL, 3, 2, 1, 0, 0, 0, 0, 1, 0);
    pool_case("maxpool2_dil2_asym", HP_OP_MAXPOOL, 2, 1, 2, 1, 0, 0, 1, 0, 0);
    pool_case("avgpool3_excl_pad_asym", HP_OP_AVGPOOL, 3, 2, 1, 1, 0, 2, 1, 0, 0);
    pool_case("avgpool3_incl_pad_ceil", HP_OP_AVGPOOL, 3, 2, 1, 1, 1, 1, 1, 1, 1);
    pool_case("avgpool2_s2", HP_OP_AVGPOOL, 2, 2, 1, 0, 0, 0, 0, 0, 0);
    pool_case_fill("maxpool3_s2_p1_nan", HP_OP_MAXPOOL, 3, 2, 1, 1, 1, 1, 1, 0, 0, fill_pool_nan);
    pool_case_fill("maxpool2_dil2_asym_nan", HP_OP_MAXPOOL, 2, 1, 2, 1, 0, 0, 1, 0, 0, fill_pool_nan);
    for (int m = 0; m < 3; m++) {
        int64_t xd[4] = {3, 5, 7, 6}, yd[4] = {3, 5, 1, 1};
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, xd), y = rt(g, "y", 4, yd);
        add_node(g, m ? HP_OP_GLOBAL_MAXPOOL : HP_OP_GLOBAL_AVGPOOL, "GlobalPool", 1, &x, y);
        output(g, y);
        nan_plane = xd[2] * xd[3];
        run_case(m == 2 ? "global_maxpool_nan" : m ? "global_maxpool" : "global_avgpool", g,
                 m == 2 ? fill_pool_nan : NULL);
    }
}

/* DenseNet's pattern: producers write straight into their slice of a channel concat, and the
 * consumers read the concat (and the slices) as strided views. */
static void test_concat(void)
{
    {
        int64_t xd[4] = {2, 8, 6, 6}, cd[1] = {8}, wd[4] = {4, 8, 3, 3}, bd[4] = {2, 4, 6, 6};
        int64_t catd[4] = {2, 12, 6, 6}, gd[4] = {2, 12, 1, 1}, pd[4] = {2, 12, 3, 3};
        int64_t c2[1] = {12}, w2[4] = {5, 12, 1, 1}, ed[4] = {2, 5, 6, 6};
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, xd);
        int a = rt(g, "a", 4, xd), b = rt(g, "b", 4, bd), c = rt(g, "cat", 4, catd);
        int i0[3] = {x, cst(g, "s0", 1, cd, 0.5f, 1.5f), cst(g, "h0", 1, cd, -0.5f, 0.5f)};
        add_node(g, HP_OP_SCALE_SHIFT, "ScaleShift", 3, i0, a)->attr.act = act_of(HP_ACT_RELU);
        int i1[2] = {a, cst(g, "w", 4, wd, -0.3f, 0.3f)};
        hp_node *n = add_node(g, HP_OP_CONV, "Conv", 2, i1, b);
        n->attr.conv.group = 1;
        n->attr.conv.kh = n->attr.conv.kw = 3;
        n->attr.conv.stride[0] = n->attr.conv.stride[1] = 1;
        n->attr.conv.dil[0] = n->attr.conv.dil[1] = 1;
        for (int i = 0; i < 4; i++)
            n->attr.conv.pad[i] = 1;
        int i2[2] = {a, b};
        add_node(g, HP_OP_CONCAT, "Concat", 2, i2, c)->attr.axis = 1;
        /* consumers of the concat: BN-ReLU + 1x1 conv, global pool, avg pool */
        int d = rt(g, "d", 4, catd), e = rt(g, "e", 4, ed);
        int gp = rt(g, "gp", 4, gd), ap = rt(g, "ap", 4, pd);
        int i3[3] = {c, cst(g, "s1", 1, c2, 0.5f, 1.5f), cst(g, "h1", 1, c2, -0.5f, 0.5f)};
        add_node(g, HP_OP_SCALE_SHIFT, "ScaleShift", 3, i3, d)->attr.act = act_of(HP_ACT_RELU);
        int i4[2] = {d, cst(g, "w2", 4, w2, -0.3f, 0.3f)};
        n = add_node(g, HP_OP_CONV, "Conv", 2, i4, e);
        n->attr.conv.group = 1;
        n->attr.conv.kh = n->attr.conv.kw = 1;
        n->attr.conv.stride[0] = n->attr.conv.stride[1] = 1;
        n->attr.conv.dil[0] = n->attr.conv.dil[1] = 1;
        add_node(g, HP_OP_GLOBAL_AVGPOOL, "GlobalAveragePool", 1, &c, gp);
        n = add_node(g, HP_OP_AVGPOOL, "AveragePool", 1, &c, ap);
        n->attr.pool.kh = n->attr.pool.kw = 2;
        n->attr.pool.stride[0] = n->attr.pool.stride[1] = 2;
        n->attr.pool.dil[0] = n->attr.pool.dil[1] = 1;
        output(g, e);
        output(g, gp);
        output(g, ap);
        if (only_ok("concat_in_place")) {
            /* say whether the planner really made the slices strided: the case is only
             * meaningful when it did */
            hp_graph_recount(g);
            hp_plan plan;
            hp_error err;
            memset(&plan, 0, sizeof plan);
            memset(&err, 0, sizeof err);
            if (hp_plan_build(g, &plan, &err) == HP_OK) {
                int strided = !hp_plan_is_contiguous(g, &plan, a) &&
                              !hp_plan_is_contiguous(g, &plan, b);
                CHECK_MSG(strided, "concat_in_place: the planner did not place a and b in the "
                                   "concat (the strided path is untested)");
                hp_plan_free(&plan);
            }
        }
        run_case("concat_in_place", g, NULL);
    }
    for (int axis = 0; axis < 4; axis++) {
        /* plain copies along each axis, one input a constant */
        int64_t ad[4] = {2, 3, 4, 5}, bd[4] = {2, 3, 4, 5}, yd[4] = {2, 3, 4, 5};
        bd[axis] = 2;
        yd[axis] = ad[axis] + bd[axis];
        hp_graph *g = new_graph();
        int a = input(g, "a", 4, ad), b = cst(g, "b", 4, bd, -1, 1), y = rt(g, "y", 4, yd);
        int a2 = rt(g, "a2", 4, ad);
        add_node(g, HP_OP_UNARY, "Unary", 1, &a, a2)->attr.act = act_of(HP_ACT_TANH);
        int ins[3] = {a2, b, a};
        yd[axis] += ad[axis];
        g->values[y].dims[axis] = yd[axis];
        add_node(g, HP_OP_CONCAT, "Concat", 3, ins, y)->attr.axis = axis;
        output(g, y);
        char name[48];
        snprintf(name, sizeof name, "concat_axis%d", axis);
        run_case(name, g, NULL);
    }
}

static void test_layout(void)
{
    {
        int64_t xd[4] = {2, 3, 4, 5}, yd[4] = {2, 4, 5, 3};
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, xd), y = rt(g, "y", 4, yd);
        hp_node *n = add_node(g, HP_OP_TRANSPOSE, "Transpose", 1, &x, y);
        int perm[4] = {0, 2, 3, 1};
        memcpy(n->attr.perm, perm, sizeof perm);
        output(g, y);
        run_case("transpose_nhwc", g, NULL);
    }
    {
        int64_t xd[3] = {3, 4, 5}, yd[3] = {5, 3, 4};
        hp_graph *g = new_graph();
        int x = input(g, "x", 3, xd), y = rt(g, "y", 3, yd);
        hp_node *n = add_node(g, HP_OP_TRANSPOSE, "Transpose", 1, &x, y);
        n->attr.perm[0] = 2;
        n->attr.perm[1] = 0;
        n->attr.perm[2] = 1;
        output(g, y);
        run_case("transpose_3d", g, NULL);
    }
    for (int crd = 0; crd < 2; crd++) {
        int64_t xd[4] = {2, 8, 3, 4}, yd[4] = {2, 2, 6, 8};
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, xd), y = rt(g, "y", 4, yd);
        hp_node *n = add_node(g, HP_OP_DEPTH_TO_SPACE, "DepthToSpace", 1, &x, y);
        n->attr.d2s.blocksize = 2;
        n->attr.d2s.crd = crd;
        output(g, y);
        run_case(crd ? "depth_to_space_crd" : "depth_to_space_dcr", g, NULL);
    }
    struct {
        const char *name;
        hp_pad_mode mode;
        int64_t pads[8];
    } pc[] = {
        {"pad_constant", HP_PAD_CONSTANT, {0, 0, 1, 2, 0, 1, 2, 1}},
        {"pad_reflect", HP_PAD_REFLECT, {0, 0, 2, 1, 0, 0, 1, 3}},
        {"pad_edge", HP_PAD_EDGE, {0, 0, 3, 1, 0, 0, 1, 2}},
        {"pad_negative_crop", HP_PAD_CONSTANT, {0, 0, -1, 1, 0, 0, 1, -2}},
    };
    for (int i = 0; i < 4; i++) {
        int64_t xd[4] = {2, 3, 4, 5}, yd[4];
        for (int d = 0; d < 4; d++)
            yd[d] = xd[d] + pc[i].pads[d] + pc[i].pads[d + 4];
        hp_graph *g = new_graph();
        int x = input(g, "x", 4, xd), y = rt(g, "y", 4, yd);
        hp_node *n = add_node(g, HP_OP_PAD, "Pad", 1, &x, y);
        n->attr.pad.mode = pc[i].mode;
        n->attr.pad.value = 0.5f;
        memcpy(n->attr.pad.pads, pc[i].pads, sizeof pc[i].pads);
        output(g, y);
        run_case(pc[i].name, g, NULL);
    }
}

static void resize_case(const char *name, int64_t H, int64_t W, int64_t OH, int64_t OW,
                        hp_resize_mode mode, hp_coord_transform ct, hp_nearest_mode nm)
{
    int64_t xd[4] = {2, 3, H, W}, yd[4] = {2, 3, OH, OW};
    hp_graph *g = new_graph();
    int x = input(g, "x", 4, xd), y = rt(g, "y", 4, yd);
    hp_node *n = add_node(g, HP_OP_RESIZE, "Resize", 1, &x, y);
    n->attr.resize.mode = mode;
    n->attr.resize.coord = ct;
    n->attr.resize.nearest = nm;
    n->attr.resize.scale_h = (float)OH / (float)H;
    n->attr.resize.scale_w = (float)OW / (float)W;
    output(g, y);
    run_case(name, g, NULL);
}

static void test_resize(void)
{
    resize_case("resize_nearest_asym_floor_x2", 5, 6, 10, 12, HP_RESIZE_NEAREST, HP_CT_ASYMMETRIC,
                HP_NEAREST_FLOOR);
    resize_case("resize_nearest_half_down", 8, 8, 4, 4, HP_RESIZE_NEAREST, HP_CT_HALF_PIXEL,
                HP_NEAREST_ROUND_PREFER_FLOOR);
    resize_case("resize_nearest_ceil_x3", 4, 5, 12, 15, HP_RESIZE_NEAREST, HP_CT_HALF_PIXEL,
                HP_NEAREST_ROUND_PREFER_CEIL);
    resize_case("resize_linear_align_x2", 5, 6, 10, 12, HP_RESIZE_LINEAR, HP_CT_ALIGN_CORNERS,
                HP_NEAREST_ROUND_PREFER_FLOOR);
    resize_case("resize_linear_half_x1.5", 6, 6, 9, 9, HP_RESIZE_LINEAR, HP_CT_HALF_PIXEL,
                HP_NEAREST_ROUND_PREFER_FLOOR);
    resize_case("resize_linear_pytorch_down", 9, 7, 4, 3, HP_RESIZE_LINEAR,
                HP_CT_PYTORCH_HALF_PIXEL, HP_NEAREST_ROUND_PREFER_FLOOR);
}

static void gemm_case(const char *name, int ta, int tb, int64_t M, int64_t K, int64_t N,
                      int cdims, const int64_t *cd, float alpha, float beta, int b_const)
{
    int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N}, yd[2] = {M, N};
    hp_graph *g = new_graph();
    int a = input(g, "a", 2, ad);
    int b = b_const ? cst(g, "b", 2, bd, -0.5f, 0.5f) : input(g, "b", 2, bd);
    int c = cdims >= 0 ? cst(g, "c", cdims, cd, -1, 1) : -1;
    int y = rt(g, "y", 2, yd);
    int ins[3] = {a, b, c};
    hp_node *n = add_node(g, HP_OP_GEMM, "Gemm", c >= 0 ? 3 : 2, ins, y);
    n->attr.gemm.alpha = alpha;
    n->attr.gemm.beta = beta;
    n->attr.gemm.trans_a = ta;
    n->attr.gemm.trans_b = tb;
    output(g, y);
    run_case(name, g, NULL);
}

static void matmul_case(const char *name, int ra, const int64_t *ad, int rb, const int64_t *bd,
                        int ry, const int64_t *yd, int b_const)
{
    hp_graph *g = new_graph();
    int a = input(g, "a", ra, ad);
    int b = b_const ? cst(g, "b", rb, bd, -0.5f, 0.5f) : input(g, "b", rb, bd);
    int y = rt(g, "y", ry, yd);
    int ins[2] = {a, b};
    add_node(g, HP_OP_MATMUL, "MatMul", 2, ins, y);
    output(g, y);
    run_case(name, g, NULL);
}

static void test_gemm(void)
{
    int64_t c1[1] = {10}, c41[2] = {4, 1}, cs[1] = {1};
    gemm_case("gemm_transb_bias", 0, 1, 4, 32, 10, 1, c1, 0.5f, 2.0f, 1);
    gemm_case("gemm_transa_col_bias", 1, 0, 4, 32, 10, 2, c41, 1.0f, 1.0f, 0);
    gemm_case("gemm_scalar_c", 0, 0, 7, 5, 3, 1, cs, 1.5f, -1.0f, 1);
    gemm_case("gemm_no_c", 1, 1, 6, 9, 8, -1, NULL, 1.0f, 0.0f, 0);
    {
        int64_t ad[4] = {2, 3, 5, 7}, bd[2] = {7, 4}, yd[4] = {2, 3, 5, 4};
        matmul_case("matmul_batched_x_2d", 4, ad, 2, bd, 4, yd, 1);
    }
    {
        int64_t ad[4] = {2, 1, 3, 4}, bd[3] = {3, 4, 5}, yd[4] = {2, 3, 3, 5};
        matmul_case("matmul_broadcast_both", 4, ad, 3, bd, 4, yd, 0);
    }
    {
        int64_t ad[1] = {7}, bd[3] = {2, 7, 3}, yd[2] = {2, 3};
        matmul_case("matmul_vec_x_batched", 1, ad, 3, bd, 2, yd, 0);
    }
    {
        int64_t ad[3] = {2, 3, 6}, bd[1] = {6}, yd[2] = {2, 3};
        matmul_case("matmul_batched_x_vec", 3, ad, 1, bd, 2, yd, 1);
    }
}

static void test_softmax_and_head(void)
{
    struct {
        const char *name;
        int ndim;
        int64_t d[4];
        int axis, legacy;
    } sc[] = {
        {"softmax_last", 2, {4, 10}, 1, 0},
        {"softmax_axis1_inner", 4, {2, 3, 4, 5}, 1, 0},
        {"softmax_negative_axis", 3, {2, 3, 4}, -2, 0},
        {"softmax_legacy_axis1", 3, {2, 3, 4}, 1, 1},
    };
    for (int i = 0; i < 4; i++) {
        hp_graph *g = new_graph();
        int x = input(g, "x", sc[i].ndim, sc[i].d), y = rt(g, "y", sc[i].ndim, sc[i].d);
        hp_node *n = add_node(g, HP_OP_SOFTMAX, "Softmax", 1, &x, y);
        n->attr.softmax.axis = sc[i].axis;
        n->attr.softmax.legacy = sc[i].legacy;
        output(g, y);
        run_case(sc[i].name, g, NULL);
    }
    /* classifier head: global pool -> flatten (alias) -> gemm -> softmax */
    int64_t xd[4] = {2, 16, 4, 4}, pd[4] = {2, 16, 1, 1}, fd[2] = {2, 16}, wd[2] = {10, 16},
            bd[1] = {10}, yd[2] = {2, 10};
    hp_graph *g = new_graph();
    int x = input(g, "x", 4, xd), p = rt(g, "pool", 4, pd), f = rt(g, "flat", 2, fd);
    int l = rt(g, "logits", 2, yd), y = rt(g, "prob", 2, yd);
    add_node(g, HP_OP_GLOBAL_AVGPOOL, "GlobalAveragePool", 1, &x, p);
    add_node(g, HP_OP_ALIAS, "Flatten", 1, &p, f);
    int gi[3] = {f, cst(g, "w", 2, wd, -0.5f, 0.5f), cst(g, "b", 1, bd, -0.2f, 0.2f)};
    hp_node *n = add_node(g, HP_OP_GEMM, "Gemm", 3, gi, l);
    n->attr.gemm.alpha = n->attr.gemm.beta = 1.0f;
    n->attr.gemm.trans_b = 1;
    n = add_node(g, HP_OP_SOFTMAX, "Softmax", 1, &l, y);
    n->attr.softmax.axis = 1;
    output(g, y);
    run_case("classifier_head_alias", g, NULL);
}

/* The tile path of `analyze`: 8-bit tiles normalized on the device, read by a first layer
 * (odd tile size, a batch of 3) and by a concat with a constant. */
static void test_rgb8_input(void)
{
    int64_t xd[4] = {3, 3, 7, 9}, wd[4] = {5, 3, 3, 3}, bd[1] = {5}, yd[4] = {3, 5, 7, 9};
    hp_graph *g = new_graph();
    int x = input(g, "x", 4, xd), y = rt(g, "y", 4, yd);
    int ins[3] = {x, cst(g, "w", 4, wd, -0.3f, 0.3f), cst(g, "b", 1, bd, -0.5f, 0.5f)};
    hp_node *n = add_node(g, HP_OP_CONV, "Conv", 3, ins, y);
    n->attr.conv.group = 1;
    n->attr.conv.kh = n->attr.conv.kw = 3;
    n->attr.conv.stride[0] = n->attr.conv.stride[1] = 1;
    n->attr.conv.dil[0] = n->attr.conv.dil[1] = 1;
    for (int k = 0; k < 4; k++)
        n->attr.conv.pad[k] = 1;
    n->attr.conv.act = act_of(HP_ACT_NONE);
    output(g, y);
    if (only_ok("rgb8_input_conv"))
        run_case_with("rgb8_input_conv", g, NULL, 1);
    else
        hp_graph_destroy(g);

    int64_t cd[4] = {3, 8, 7, 9};
    g = new_graph();
    x = input(g, "x", 4, xd);
    int k5 = cst(g, "k", 4, yd, -1.0f, 1.0f), c = rt(g, "cat", 4, cd);
    int cin[2] = {x, k5};
    add_node(g, HP_OP_CONCAT, "Concat", 2, cin, c)->attr.axis = 1;
    output(g, c);
    if (only_ok("rgb8_input_concat"))
        run_case_with("rgb8_input_concat", g, NULL, 1);
    else
        hp_graph_destroy(g);
}

int main(void)
{
    if (!hp_cuda_compiled() || !hp_cuda_available()) {
        printf("test_cuda_ops: skipped (%s)\n",
               hp_cuda_compiled() ? "no usable CUDA device" : "built without CUDA");
        return 77;
    }
    cpu = hp_cpu_backend_create(1, 1);
    if (!cpu) {
        fprintf(stderr, "cannot create the CPU reference backend\n");
        return 1;
    }
    int any = 0;
    for (int p = 0; p < NPREC; p++) {
        hp_error err;
        memset(&err, 0, sizeof err);
        cuda[p] = hp_cuda_backend_create(0, (hp_precision)p, &err);
        if (!cuda[p]) {
            /* an older GPU may lack bf16; anything else is a failure */
            CHECK_MSG(err.code == HP_ERR_UNSUPPORTED && p != HP_PREC_FP32,
                      "hp_cuda_backend_create(%s): %s", prec_name[p], err.msg);
            printf("  %s: not available: %s\n", prec_name[p], err.msg);
        } else {
            any = 1;
        }
    }
    if (any) {
        test_conv();
        test_norm();
        test_elementwise();
        test_special_values();
        test_pool();
        test_concat();
        test_layout();
        test_resize();
        test_gemm();
        test_softmax_and_head();
        test_rgb8_input();
    }
    /* a run without a prepare, and a clear error for an unsupported constant type */
    if (cuda[0] && only_ok("errors")) {
        hp_graph *g = new_graph();
        int64_t d[2] = {2, 3};
        int x = input(g, "x", 2, d), y = rt(g, "y", 2, d);
        int k = add_value(g, "k64", HP_VAL_CONST, 2, d);
        int64_t *kd = calloc(6, sizeof *kd);
        if (!kd)
            exit(1);
        g->values[k].dtype = HP_DT_INT64;
        g->values[k].data = kd;
        g->values[k].owns_data = 1;
        int ins[2] = {x, k};
        add_node(g, HP_OP_BINARY, "Binary", 2, ins, y)->attr.binary = HP_BIN_ADD;
        output(g, y);
        hp_graph_recount(g);
        hp_plan plan;
        hp_error err;
        memset(&plan, 0, sizeof plan);
        memset(&err, 0, sizeof err);
        if (hp_plan_build(g, &plan, &err) == HP_OK) {
            hp_error_clear(&cuda[0]->err);
            hp_status s = hp_backend_prepare(cuda[0], g, &plan);
            CHECK_MSG(s == HP_ERR_UNSUPPORTED && strstr(hp_backend_error(cuda[0]), "k64"),
                      "int64 constant: status %d, message '%s'", (int)s,
                      hp_backend_error(cuda[0]));
            float xin[6] = {0}, yout[6];
            const float *ip[1] = {xin};
            float *op[1] = {yout};
            int ok = s == HP_ERR_UNSUPPORTED;
            hp_error_clear(&cuda[0]->err);
            s = hp_backend_run(cuda[0], ip, op);
            CHECK_MSG(s == HP_ERR_INVALID, "run after a failed prepare: status %d", (int)s);
            if (ok && s == HP_ERR_INVALID)
                passed++;
            hp_plan_free(&plan);
        }
        hp_graph_destroy(g);
    }
    for (int p = 0; p < NPREC; p++)
        hp_backend_destroy(cuda[p]);
    hp_backend_destroy(cpu);
    return hp_test_finish("test_cuda_ops", passed);
}
