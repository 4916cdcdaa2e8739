/* Hostile model files against hp_model_open and a run: truncations, flipped bytes, an unknown
 * operator, weights whose shape disagrees with their data or their node, absurd dimensions, an
 * empty file, a PNG and a missing file. Every case must end in an error with a message that
 * says what is wrong (or, for a flipped byte that leaves a valid model, in a clean run); none
 * may crash, hang or leak, which the sanitizer build checks since every case runs in-process.
 *
 * The valid model is a tiny conv net exported by PyTorch at test time ($HP_PYTHON); without
 * PyTorch it falls back to a conformance model from Debian's libonnx-testdata. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/model.h"
#include "onnx/onnx.pb-c.h"
#include "util/testutil.h"

/* Beyond this many input elements the harness does not allocate a zero input: a model that
 * instantiates with such an input after a byte flip is still a valid model, not a finding. */
#define MAX_INPUT_ELEMS (64LL << 20)

static const char *EXPORT_PY =
    "import sys, torch\n"
    "class Net(torch.nn.Module):\n"
    "    def __init__(s):\n"
    "        super().__init__()\n"
    "        s.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)\n"
    "        s.bn = torch.nn.BatchNorm2d(8)\n"
    "        s.c2 = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)\n"
    "        s.fc = torch.nn.Linear(8, 4)\n"
    "    def forward(s, x):\n"
    "        x = torch.relu(s.bn(s.c1(x)))\n"
    "        x = torch.max_pool2d(x, 2)\n"
    "        x = torch.relu(s.c2(x))\n"
    "        x = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)\n"
    "        return torch.softmax(s.fc(x), 1)\n"
    "torch.manual_seed(0)\n"
    "torch.onnx.export(Net().eval(), torch.randn(1, 3, 32, 32), sys.argv[1], opset_version=13,\n"
    "                  input_names=['input'], output_names=['output'],\n"
    "                  dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})\n";

/* A complete 1x1 RGB PNG: a real image file that is not a model. */
static const uint8_t PNG_1X1[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
    0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8,
    0xcf, 0xc0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xdd, 0x8d, 0xb0, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static char g_dir[256];
static int g_cases; /* cases that behaved */

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_all(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(buf, 1, len, f) != len)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

typedef enum {
    MUST_FAIL,   /* open, instantiate or run must return an error with a message */
    MAY_SUCCEED, /* a run without a crash is fine too */
} expectation;

/* Opens `path`, instantiates for one item and runs zeros through it. Returns 1 when some step
 * failed, 0 when everything ran; the failing message is copied to msg. */
static int try_model(const char *path, char *msg, size_t msglen)
{
    hp_model_options opt = hp_model_default_options();
    opt.require_card = 0;
    opt.threads = 1;
    hp_error err = {0};
    msg[0] = '\0';
    hp_model *m = hp_model_open(path, &opt, &err);
    if (!m) {
        snprintf(msg, msglen, "%s", err.msg);
        CHECK_MSG(err.code != HP_OK, "%s: hp_model_open returned NULL with status ok", path);
        return 1;
    }
    int failed = 1;
    float **in = NULL, **out = NULL;
    int n_in = 0, n_out = 0;
    if (hp_model_instantiate(m, 1) != HP_OK)
        goto done;
    const hp_graph *g = hp_model_instance(m);
    in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    out = calloc((size_t)g->n_outputs + 1, sizeof *out);
    for (n_in = 0; n_in < g->n_inputs; n_in++) {
        int64_t n = hp_value_numel(&g->values[g->inputs[n_in]]);
        if (n < 0 || n > MAX_INPUT_ELEMS) {
            snprintf(msg, msglen, "(instantiated with an input of %lld elements; not run)",
                     (long long)n);
            failed = 0;
            goto done;
        }
        in[n_in] = calloc((size_t)n + 1, sizeof(float));
    }
    for (n_out = 0; n_out < g->n_outputs; n_out++) {
        int64_t n = hp_value_numel(&g->values[g->outputs[n_out]]);
        if (n < 0 || n > MAX_INPUT_ELEMS) {
            snprintf(msg, msglen, "(instantiated with an output of %lld elements; not run)",
                     (long long)n);
            failed = 0;
            goto done;
        }
        out[n_out] = calloc((size_t)n + 1, sizeof(float));
    }
    if (hp_model_run_all(m, (const float *const *)in, out) != HP_OK)
        goto done;
    failed = 0;
done:
    if (failed)
        snprintf(msg, msglen, "%s", hp_model_error(m));
    for (int k = 0; k < n_in; k++)
        free(in[k]);
    for (int k = 0; k < n_out; k++)
        free(out[k]);
    free(in);
    free(out);
    hp_model_destroy(m);
    return failed;
}

/* Runs one case and checks the outcome; `needles` (NULL-terminated) must appear in the message
 * of a failure. Returns whether the model failed. */
static int check_case(const char *label, const char *path, expectation ex, const char *const *needles)
{
    char msg[HP_ERROR_MSG_MAX + 64];
    int failed = try_model(path, msg, sizeof msg);
    int ok = 1;
    if (failed && !msg[0]) {
        fprintf(stderr, "%s: failed with an empty message\n", label);
        ok = 0;
    }
    if (!failed && ex == MUST_FAIL) {
        fprintf(stderr, "%s: the model was accepted and ran %s\n", label, msg);
        ok = 0;
    }
    for (int k = 0; failed && needles && needles[k]; k++) {
        if (!strstr(msg, needles[k])) {
            fprintf(stderr, "%s: message does not name \"%s\": %s\n", label, needles[k], msg);
            ok = 0;
        }
    }
    if (getenv("HP_TEST_VERBOSE"))
        fprintf(stderr, "%-28s %s: %s\n", label, failed ? "error" : "ran", msg);
    CHECK_MSG(ok, "case %s", label);
    g_cases += ok;
    return failed;
}

static void edited_path(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "%s/%s.onnx", g_dir, what);
}

/* Packs an edited model into the temp dir and returns its path in buf. */
static void write_model(const Onnx__ModelProto *m, const char *what, char *buf, size_t len)
{
    size_t n = onnx__model_proto__get_packed_size(m);
    uint8_t *out = malloc(n + 1);
    onnx__model_proto__pack(m, out);
    edited_path(buf, len, what);
    write_all(buf, out, n);
    free(out);
}

static Onnx__TensorProto *find_init(Onnx__GraphProto *g, int ndim)
{
    /* The last initializer of that rank: a weight in the middle of the net rather than the
     * first conv, so that errors found late (shape inference) are exercised too. */
    Onnx__TensorProto *t = NULL;
    for (size_t k = 0; k < g->n_initializer; k++)
        if ((int)g->initializer[k]->n_dims == ndim)
            t = g->initializer[k];
    return t;
}

/* Structural damage the fuzzer found crashing shape inference: a node whose data input is
 * missing or has an empty name, and a Reshape whose target dims overflow when multiplied. */
static void graph_structure_cases(Onnx__ModelProto *m)
{
    char path[512];
    Onnx__GraphProto *g = m->graph;
    Onnx__NodeProto *node = g->node[g->n_node / 2];
    if (node->n_input > 0) {
        size_t n_in = node->n_input;
        node->n_input = 0;
        write_model(m, "node_without_inputs", path, sizeof path);
        node->n_input = n_in;
        check_case("node without inputs", path, MUST_FAIL, NULL);
        char *in0 = node->input[0], empty[] = "";
        node->input[0] = empty;
        write_model(m, "node_input_empty_name", path, sizeof path);
        node->input[0] = in0;
        check_case("node input with empty name", path, MUST_FAIL, NULL);
    }

    /* Turn a one-input node (Flatten in the exported net) into Reshape to 2^40 x 2^40 x -1. */
    Onnx__NodeProto *r = NULL;
    for (size_t k = 0; k < g->n_node && !r; k++)
        if (strcmp(g->node[k]->op_type, "Flatten") == 0 && g->node[k]->n_input == 1)
            r = g->node[k];
    if (!r)
        return;
    int64_t sdims[1] = {3}, sdata[3] = {INT64_C(1) << 40, INT64_C(1) << 40, -1};
    char sname[] = "hp_huge_shape", reshape[] = "Reshape";
    Onnx__TensorProto shape = ONNX__TENSOR_PROTO__INIT;
    shape.name = sname;
    shape.has_data_type = 1;
    shape.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    shape.n_dims = 1;
    shape.dims = sdims;
    shape.n_int64_data = 3;
    shape.int64_data = sdata;
    Onnx__TensorProto **inits = calloc(g->n_initializer + 1, sizeof *inits);
    char *r_in[2] = {r->input[0], sname};
    memcpy(inits, g->initializer, g->n_initializer * sizeof *inits);
    inits[g->n_initializer] = &shape;
    Onnx__TensorProto **old_inits = g->initializer;
    char **old_in = r->input, *old_op = r->op_type;
    size_t old_n_inits = g->n_initializer, old_n_attr = r->n_attribute;
    g->initializer = inits;
    g->n_initializer++;
    r->input = r_in;
    r->n_input = 2;
    r->op_type = reshape;
    r->n_attribute = 0; /* Flatten's axis means nothing to Reshape */
    write_model(m, "reshape_overflow", path, sizeof path);
    g->initializer = old_inits;
    g->n_initializer = old_n_inits;
    r->input = old_in;
    r->n_input = 1;
    r->op_type = old_op;
    r->n_attribute = old_n_attr;
    free(inits);
    check_case("Reshape to 2^40 x 2^40 x -1", path, MUST_FAIL, NULL);
}

/* The cases that need a protobuf edit: each edits, writes, restores, so one unpack serves all. */
static void protobuf_cases(const uint8_t *buf, size_t len)
{
    char path[512];
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    CHECK(m && m->graph && m->graph->n_node > 0);
    if (!m || !m->graph || m->graph->n_node == 0) {
        onnx__model_proto__free_unpacked(m, NULL);
        return;
    }
    Onnx__GraphProto *g = m->graph;

    /* An unknown operator in the middle of the graph, on a node with a known name. */
    Onnx__NodeProto *node = g->node[g->n_node / 2];
    char *old_op = node->op_type, *old_name = node->name;
    char new_op[] = "NoSuchOp", new_name[] = "hp_corrupt_node";
    node->op_type = new_op;
    if (!old_name || !old_name[0])
        node->name = new_name;
    char node_name[256];
    snprintf(node_name, sizeof node_name, "%s", node->name);
    write_model(m, "unknown_op", path, sizeof path);
    node->op_type = old_op;
    node->name = old_name;
    const char *need_op[] = {"NoSuchOp", node_name, NULL};
    check_case("unknown op", path, MUST_FAIL, need_op);

    Onnx__TensorProto *w = find_init(g, 4);
    if (!w)
        w = find_init(g, 2);
    CHECK_MSG(w != NULL, "the model has no 4-D or 2-D initializer");
    if (w) {
        int64_t d0 = w->dims[0], d1 = w->dims[1];
        /* dims disagree with the stored data */
        w->dims[0] = d0 + 1;
        write_model(m, "weight_dims_vs_data", path, sizeof path);
        w->dims[0] = d0;
        check_case("weight dims vs data", path, MUST_FAIL, NULL);
        /* same element count (the data still fits), but channels its node cannot take */
        if (d0 != d1) {
            w->dims[0] = d1;
            w->dims[1] = d0;
        } else {
            w->dims[0] = d0 * 2;
            w->dims[1] = d1 / 2;
        }
        write_model(m, "weight_dims_vs_node", path, sizeof path);
        w->dims[0] = d0;
        w->dims[1] = d1;
        if (d0 != d1 || d1 % 2 == 0)
            check_case("weight dims vs node", path, MUST_FAIL, NULL);
        /* absurd sizes: 1e12 in one dim, dims whose product overflows, a negative dim */
        w->dims[0] = 1000000000000LL;
        write_model(m, "weight_dims_1e12", path, sizeof path);
        check_case("weight dim 1e12", path, MUST_FAIL, NULL);
        int64_t saved[HP_MAX_DIMS];
        /* 65536^4 = 2^64: each dim looks harmless, the product wraps to 0 in 64 bits */
        for (size_t k = 0; k < w->n_dims && k < HP_MAX_DIMS; k++) {
            saved[k] = w->dims[k];
            w->dims[k] = 65536;
        }
        write_model(m, "weight_dims_overflow", path, sizeof path);
        for (size_t k = 0; k < w->n_dims && k < HP_MAX_DIMS; k++)
            w->dims[k] = saved[k];
        w->dims[0] = d0;
        check_case("weight dims overflow", path, MUST_FAIL, NULL);
        /* Just under the element cap while the file holds a few bytes: refused from the stored
         * size, before anything is allocated for the claimed shape (found by fuzzing). */
        for (size_t k = 0; k < w->n_dims && k < HP_MAX_DIMS; k++) {
            saved[k] = w->dims[k];
            w->dims[k] = k == 0 ? 2147483647LL : 1;
        }
        write_model(m, "weight_claims_2g_elements", path, sizeof path);
        for (size_t k = 0; k < w->n_dims && k < HP_MAX_DIMS; k++)
            w->dims[k] = saved[k];
        static const char *const needs[] = {"its shape needs", NULL};
        check_case("weight claims 2^31-1 elements", path, MUST_FAIL, needs);
        w->dims[0] = -3;
        write_model(m, "weight_dim_negative", path, sizeof path);
        w->dims[0] = d0;
        check_case("weight dim negative", path, MUST_FAIL, NULL);
    }

    /* A graph input whose spatial size is absurd: instantiation must refuse it rather than try
     * to allocate terabytes. */
    Onnx__TypeProto *ty = g->n_input ? g->input[0]->type : NULL;
    Onnx__TensorShapeProto *shape =
        ty && ty->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && ty->tensor_type
            ? ty->tensor_type->shape
            : NULL;
    if (shape && shape->n_dim >= 3 &&
        shape->dim[2]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
        int64_t h = shape->dim[2]->dim_value;
        shape->dim[2]->dim_value = 1000000000000LL;
        write_model(m, "input_dim_1e12", path, sizeof path);
        shape->dim[2]->dim_value = h;
        check_case("input dim 1e12", path, MUST_FAIL, NULL);
    }
    graph_structure_cases(m);
    onnx__model_proto__free_unpacked(m, NULL);
}

/* Produces the valid model: PyTorch export, else a conformance model with initializers. */
static int make_model(char *path, size_t len)
{
    const char *py = hp_test_env("HP_PYTHON", "/usr/bin/python3");
    char script[512], cmd[2048];
    snprintf(script, sizeof script, "%s/export.py", g_dir);
    write_all(script, EXPORT_PY, strlen(EXPORT_PY));
    snprintf(path, len, "%s/tiny.onnx", g_dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' >/dev/null 2>&1", py, script, path);
    if (access(py, X_OK) == 0 && system(cmd) == 0 && access(path, R_OK) == 0)
        return 0;
    const char *data = hp_test_env("HP_ONNX_TESTDATA", "/usr/share/libonnx-testdata/data");
    static const char *fallback[] = {"pytorch-converted/test_Conv2d",
                                     "node/test_conv_with_strides_padding"};
    for (size_t k = 0; k < sizeof fallback / sizeof fallback[0]; k++) {
        snprintf(path, len, "%s/%s/model.onnx", data, fallback[k]);
        if (access(path, R_OK) == 0) {
            fprintf(stderr, "PyTorch export unavailable; using %s\n", path);
            return 0;
        }
    }
    return -1;
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/hp_corrupt_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    char model[512], path[512], msg[HP_ERROR_MSG_MAX + 64];
    if (make_model(model, sizeof model) != 0) {
        fprintf(stderr, "no valid model: neither PyTorch nor libonnx-testdata is available\n");
        return 77;
    }
    size_t len = 0;
    uint8_t *buf = read_all(model, &len);
    if (!buf || len < 64) {
        fprintf(stderr, "cannot read %s\n", model);
        return 2;
    }

    /* The untouched model must open and run, or the other cases prove nothing. */
    int base_failed = try_model(model, msg, sizeof msg);
    CHECK_MSG(!base_failed, "the valid model does not run: %s", msg);
    g_cases += !base_failed;

    const char *need_path[] = {NULL, NULL};
    snprintf(path, sizeof path, "%s/no/such/dir/missing.onnx", g_dir);
    need_path[0] = path;
    check_case("missing file", path, MUST_FAIL, need_path);

    edited_path(path, sizeof path, "empty");
    write_all(path, "", 0);
    check_case("empty file", path, MUST_FAIL, NULL);

    edited_path(path, sizeof path, "image");
    write_all(path, PNG_1X1, sizeof PNG_1X1);
    check_case("PNG file", path, MUST_FAIL, NULL);

    check_case("directory", g_dir, MUST_FAIL, NULL);

    for (int k = 1; k < 64; k++) {
        char label[64];
        size_t cut = len * (size_t)k / 64;
        snprintf(label, sizeof label, "truncated at %d/64", k);
        edited_path(path, sizeof path, "truncated");
        write_all(path, buf, cut);
        check_case(label, path, MUST_FAIL, NULL);
    }

    uint32_t s = 0x9e3779b9u;
    int flips_ran = 0;
    for (int k = 0; k < 200; k++) {
        char label[64];
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        size_t pos = s % len;
        uint8_t old = buf[pos], x = (uint8_t)(1 + (s >> 24) % 255);
        buf[pos] ^= x;
        edited_path(path, sizeof path, "flipped");
        write_all(path, buf, len);
        buf[pos] = old;
        snprintf(label, sizeof label, "byte %zu ^= 0x%02x", pos, x);
        flips_ran += !check_case(label, path, MAY_SUCCEED, NULL);
    }
    printf("byte flips: %d of 200 still ran\n", flips_ran);

    protobuf_cases(buf, len);
    free(buf);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return hp_test_finish("test_model_corrupt", g_cases);
}
