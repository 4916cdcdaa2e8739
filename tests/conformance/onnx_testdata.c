/* Reading ONNX test data (see onnx_testdata.h). */
#include "onnx_testdata.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.pb-c.h"

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

const char *conf_dtype_name(int dt)
{
    static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16",
                                  "int32", "int64", "string", "bool", "float16", "double",
                                  "uint32", "uint64", "complex64", "complex128", "bfloat16"};
    return dt >= 0 && dt < (int)(sizeof names / sizeof names[0]) ? names[dt] : "unknown";
}

static float half_to_float(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(m | 1024), e - 25);
    return s ? -v : v;
}

static float bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

void conf_tensor_free(conf_tensor *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->f);
    free(t->i);
    memset(t, 0, sizeof *t);
}

/* Element width of an ONNX type in raw_data; 0 for types this harness cannot convert. */
static size_t raw_width(int dt)
{
    switch (dt) {
    case 2: case 3: case 9: return 1;
    case 4: case 5: case 10: case 16: return 2;
    case 1: case 6: case 12: return 4;
    case 7: case 11: case 13: return 8;
    default: return 0;
    }
}

/* Element k of raw little-endian data of type dt, as double (int64 kept exact separately). */
static void raw_elem(const uint8_t *p, int dt, double *d, int64_t *i)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; int32_t i32; uint32_t u32;
            int64_t i64; uint64_t u64; float f; double dbl; } u;
    memcpy(&u, p, raw_width(dt));
    switch (dt) {
    case 1: *d = u.f; *i = (int64_t)u.f; break;
    case 2: *d = u.u8; *i = u.u8; break;
    case 3: *d = u.i8; *i = u.i8; break;
    case 4: *d = u.u16; *i = u.u16; break;
    case 5: *d = u.i16; *i = u.i16; break;
    case 6: *d = u.i32; *i = u.i32; break;
    case 7: *d = (double)u.i64; *i = u.i64; break;
    case 9: *d = u.u8 != 0; *i = u.u8 != 0; break;
    case 10: *d = half_to_float(u.u16); *i = 0; break;
    case 11: *d = u.dbl; *i = 0; break;
    case 12: *d = u.u32; *i = u.u32; break;
    case 13: *d = (double)u.u64; *i = (int64_t)u.u64; break;
    case 16: *d = bf16_to_float(u.u16); *i = 0; break;
    }
}

/* Reads a TensorProto file into floats and int64s. Returns 0, or -1 with `why` filled. */
int conf_tensor_load(const char *path, conf_tensor *t, char *why, size_t whylen)
{
    memset(t, 0, sizeof *t);
    size_t len = 0;
    uint8_t *buf = read_file(path, &len);
    if (!buf) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    Onnx__TensorProto *p = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!p) {
        snprintf(why, whylen, "%s is not a TensorProto", path);
        return -1;
    }
    int rc = -1;
    int dt = p->data_type;
    t->dtype = dt;
    t->name = strdup(p->name ? p->name : "");
    if (p->n_dims > HP_MAX_DIMS) {
        snprintf(why, whylen, "%s has %zu dims", path, p->n_dims);
        goto done;
    }
    t->ndim = (int)p->n_dims;
    t->numel = 1;
    for (size_t k = 0; k < p->n_dims; k++) {
        t->dims[k] = p->dims[k];
        if (p->dims[k] < 0 || (p->dims[k] > 0 && t->numel > (INT64_C(1) << 30) / p->dims[k])) {
            snprintf(why, whylen, "%s: implausible shape", path);
            goto done;
        }
        t->numel *= p->dims[k];
    }
    if (p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        snprintf(why, whylen, "%s uses external data", path);
        goto done;
    }
    size_t w = raw_width(dt);
    if (!w) {
        snprintf(why, whylen, "data type %s", conf_dtype_name(dt));
        goto done;
    }
    size_t n = (size_t)t->numel;
    t->f = malloc((n ? n : 1) * sizeof *t->f);
    t->i = malloc((n ? n : 1) * sizeof *t->i);
    if (!t->f || !t->i) {
        snprintf(why, whylen, "out of memory for %s", path);
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        double d = 0;
        int64_t iv = 0;
        if (p->has_raw_data) {
            if (p->raw_data.len < n * w) {
                snprintf(why, whylen, "%s: raw_data too short", path);
                goto done;
            }
            raw_elem(p->raw_data.data + k * w, dt, &d, &iv);
        } else if (dt == 1 && k < p->n_float_data) {
            d = p->float_data[k];
        } else if (dt == 11 && k < p->n_double_data) {
            d = p->double_data[k];
        } else if (dt == 7 && k < p->n_int64_data) {
            d = (double)p->int64_data[k];
            iv = p->int64_data[k];
        } else if ((dt == 12 || dt == 13) && k < p->n_uint64_data) {
            d = (double)p->uint64_data[k];
            iv = (int64_t)p->uint64_data[k];
        } else if (k < p->n_int32_data) {
            int32_t v = p->int32_data[k];
            d = dt == 10 ? half_to_float((uint16_t)v) : dt == 16 ? bf16_to_float((uint16_t)v) : v;
            iv = dt == 9 ? (v != 0) : v;
        } else {
            snprintf(why, whylen, "%s: fewer values than its shape", path);
            goto done;
        }
        t->f[k] = (float)d;
        t->i[k] = iv;
    }
    rc = 0;
done:
    onnx__tensor_proto__free_unpacked(p, NULL);
    return rc;
}

void conf_model_free(conf_model *mi)
{
    for (int k = 0; k < mi->n_in; k++)
        free(mi->in[k].name);
    for (int k = 0; k < mi->n_out; k++)
        free(mi->out[k].name);
    for (int k = 0; k < mi->n_nodes; k++)
        free(mi->node_names[k]);
    free(mi->in);
    free(mi->out);
    free(mi->node_names);
    memset(mi, 0, sizeof *mi);
}

static void io_from(conf_io *io, const Onnx__ValueInfoProto *v)
{
    io->name = strdup(v->name ? v->name : "");
    const Onnx__TypeProto *ty = v->type;
    io->is_tensor = ty && ty->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    io->dtype = io->is_tensor && ty->tensor_type ? ty->tensor_type->elem_type : 0;
}

/* The harness reads the model itself to learn which file feeds which input (ONNX pairs
 * input_N.pb with the N-th graph input that is not an initializer) and the node names, so that
 * refusal messages can be reduced to a reason shared across tests. */
int conf_model_load(const char *path, conf_model *mi, char *why, size_t whylen)
{
    memset(mi, 0, sizeof *mi);
    size_t len = 0;
    uint8_t *buf = read_file(path, &len);
    if (!buf) {
        snprintf(why, whylen, "cannot read %s", path);
        return -1;
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (!m || !m->graph) {
        snprintf(why, whylen, "harness cannot parse %s", path);
        if (m)
            onnx__model_proto__free_unpacked(m, NULL);
        return -1;
    }
    const Onnx__GraphProto *g = m->graph;
    mi->in = calloc(g->n_input + 1, sizeof *mi->in);
    mi->out = calloc(g->n_output + 1, sizeof *mi->out);
    mi->node_names = calloc(g->n_node + 1, sizeof *mi->node_names);
    for (size_t k = 0; k < g->n_input; k++) {
        int init = 0;
        for (size_t j = 0; j < g->n_initializer && !init; j++)
            init = g->initializer[j]->name && strcmp(g->initializer[j]->name, g->input[k]->name) == 0;
        if (!init)
            io_from(&mi->in[mi->n_in++], g->input[k]);
    }
    for (size_t k = 0; k < g->n_output; k++)
        io_from(&mi->out[mi->n_out++], g->output[k]);
    for (size_t k = 0; k < g->n_node; k++)
        mi->node_names[mi->n_nodes++] = strdup(g->node[k]->name ? g->node[k]->name : "");
    onnx__model_proto__free_unpacked(m, NULL);
    return 0;
}

