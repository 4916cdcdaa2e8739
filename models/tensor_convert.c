#include "models/tensor_convert.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx/onnx.pb-c.h"

/* ONNX element type numbers not in hp_dtype. */
enum {
    DT_UINT8 = 2,
    DT_INT8 = 3,
    DT_UINT16 = 4,
    DT_INT16 = 5,
    DT_STRING = 8,
    DT_BOOL = 9,
    DT_DOUBLE = 11,
    DT_UINT32 = 12,
    DT_UINT64 = 13,
};

const char *hp_dtype_name(hp_dtype t)
{
    switch ((int)t) {
    case HP_DT_FLOAT: return "float32";
    case DT_UINT8: return "uint8";
    case DT_INT8: return "int8";
    case DT_UINT16: return "uint16";
    case DT_INT16: return "int16";
    case HP_DT_INT32: return "int32";
    case HP_DT_INT64: return "int64";
    case DT_STRING: return "string";
    case DT_BOOL: return "bool";
    case HP_DT_FLOAT16: return "float16";
    case DT_DOUBLE: return "float64";
    case DT_UINT32: return "uint32";
    case DT_UINT64: return "uint64";
    case HP_DT_BFLOAT16: return "bfloat16";
    case HP_DT_UNDEFINED: return "undefined";
    }
    return "an unknown type";
}

static size_t elem_size(int dt)
{
    switch (dt) {
    case HP_DT_FLOAT: return 4;
    case DT_UINT8:
    case DT_INT8:
    case DT_BOOL: return 1;
    case DT_UINT16:
    case DT_INT16:
    case HP_DT_FLOAT16:
    case HP_DT_BFLOAT16: return 2;
    case HP_DT_INT32:
    case DT_UINT32: return 4;
    case HP_DT_INT64:
    case DT_DOUBLE:
    case DT_UINT64: return 8;
    }
    return 0;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int is_float_type(int dt)
{
    return dt == HP_DT_FLOAT || dt == HP_DT_FLOAT16 || dt == HP_DT_BFLOAT16 || dt == DT_DOUBLE;
}

static int is_int_type(int dt)
{
    return dt == DT_UINT8 || dt == DT_INT8 || dt == DT_UINT16 || dt == DT_INT16 ||
           dt == HP_DT_INT32 || dt == HP_DT_INT64 || dt == DT_BOOL || dt == DT_UINT32 ||
           dt == DT_UINT64;
}

/* Converts n little-endian elements of type dt from raw bytes into float or int64 output. */
static void convert_raw(int dt, const uint8_t *src, int64_t n, void *dst)
{
    float *f = dst;
    int64_t *q = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = src + (size_t)i * elem_size(dt);
        switch (dt) {
        case HP_DT_FLOAT: memcpy(&f[i], p, 4); break;
        case HP_DT_FLOAT16: f[i] = half_to_float((uint16_t)(p[0] | p[1] << 8)); break;
        case HP_DT_BFLOAT16: f[i] = bf16_to_float((uint16_t)(p[0] | p[1] << 8)); break;
        case DT_DOUBLE: {
            double d;
            memcpy(&d, p, 8);
            f[i] = (float)d;
            break;
        }
        case DT_UINT8:
        case DT_BOOL: q[i] = p[0]; break;
        case DT_INT8: q[i] = (int8_t)p[0]; break;
        case DT_UINT16: q[i] = (uint16_t)(p[0] | p[1] << 8); break;
        case DT_INT16: q[i] = (int16_t)(p[0] | p[1] << 8); break;
        case HP_DT_INT32: {
            int32_t v;
            memcpy(&v, p, 4);
            q[i] = v;
            break;
        }
        case DT_UINT32: {
            uint32_t v;
            memcpy(&v, p, 4);
            q[i] = v;
            break;
        }
        case HP_DT_INT64:
        case DT_UINT64: memcpy(&q[i], p, 8); break;
        }
    }
}

int hp_dims_valid(int ndim, const int64_t *dims, int64_t *numel)
{
    int64_t nonzero = 1, n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return 0;
        if (dims[i] > 0) {
            if (nonzero > HP_MAX_TENSOR_ELEMS / dims[i])
                return 0;
            nonzero *= dims[i];
        }
        n = dims[i] == 0 ? 0 : n * dims[i];
    }
    *numel = n;
    return 1;
}

hp_status hp_value_set_const(hp_value *v, hp_dtype dtype, int ndim, const int64_t *dims,
                             const void *data, hp_error *err)
{
    if (ndim < 0 || ndim > HP_MAX_DIMS)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "'%s': rank %d (at most %d)", v->name, ndim,
                            HP_MAX_DIMS);
    int64_t n;
    if (!hp_dims_valid(ndim, dims, &n))
        return hp_error_set(err, HP_ERR_INVALID, "'%s': absurd shape", v->name);
    size_t es = dtype == HP_DT_INT64 ? 8 : 4;
    void *copy = malloc((size_t)(n > 0 ? n : 1) * es);
    if (!copy)
        return hp_error_set(err, HP_ERR_NOMEM, "'%s': cannot allocate %lld elements", v->name,
                            (long long)n);
    if (n > 0 && data)
        memcpy(copy, data, (size_t)n * es);
    if (v->owns_data)
        free(v->data);
    v->data = copy;
    v->owns_data = 1;
    v->dtype = dtype;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        v->dims[i] = dims[i];
    v->kind = HP_VAL_CONST;
    return HP_OK;
}

/* Reads `len` bytes at `offset` of an external data file inside `dir`. */
static hp_status read_external(const Onnx__TensorProto *t, const char *dir, const char *path,
                               const char *where, size_t want, uint8_t **out, hp_error *err)
{
    const char *loc = NULL;
    long long offset = 0, length = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        if (!e->key || !e->value)
            continue;
        if (!strcmp(e->key, "location"))
            loc = e->value;
        else if (!strcmp(e->key, "offset"))
            offset = strtoll(e->value, NULL, 10);
        else if (!strcmp(e->key, "length"))
            length = strtoll(e->value, NULL, 10);
    }
    if (!loc || !*loc)
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s: external data without a location", path,
                            where);
    /* External data must sit beside the model: no absolute paths, no climbing out. */
    if (loc[0] == '/' || strstr(loc, ".."))
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s: external data location '%s' leaves the model's folder",
                            path, where, loc);
    if (offset < 0 || (length >= 0 && (size_t)length != want))
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s: external data length %lld, expected %zu",
                            path, where, length, want);
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", dir, loc);
    FILE *f = fopen(full, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: %s: cannot open external data %s: %s", path, where,
                            full, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (long long)st.st_size < offset ||
        (unsigned long long)(st.st_size - offset) < (unsigned long long)want) {
        fclose(f);
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s: external data file %s is shorter than %lld + %zu bytes",
                            path, where, full, offset, want);
    }
    uint8_t *buf = malloc(want ? want : 1);
    if (!buf) {
        fclose(f);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: %s: cannot allocate %zu bytes", path, where, want);
    }
    if (fseeko(f, (off_t)offset, SEEK_SET) != 0 || fread(buf, 1, want, f) != want) {
        fclose(f);
        free(buf);
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s: external data file %s is shorter than %lld + %zu bytes",
                            path, where, full, offset, want);
    }
    fclose(f);
    *out = buf;
    return HP_OK;
}

hp_status hp_tensor_from_proto(const Onnx__TensorProto *t, const char *dir, const char *path,
                               const char *where, hp_value *v, hp_error *err)
{
    int dt = t->has_data_type ? t->data_type : 0;
    if (!is_float_type(dt) && !is_int_type(dt))
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: %s has data type %s", path, where,
                            hp_dtype_name((hp_dtype)dt));
    if (t->segment)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: %s is segmented", path, where);
    if (t->n_dims > HP_MAX_DIMS)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: %s has rank %zu (at most %d)", path, where,
                            t->n_dims, HP_MAX_DIMS);
    int64_t n;
    if (!hp_dims_valid((int)t->n_dims, t->dims, &n))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: %s has an absurd shape (a negative dim, or more than %lld elements)", path,
                            where, (long long)HP_MAX_TENSOR_ELEMS);
    /* Check that the file holds the data its shape claims before allocating for it: a few bytes
     * of hostile protobuf may claim billions of elements. */
    size_t es = elem_size(dt);
    int external = t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (!external) {
        if (t->has_raw_data) {
            if (t->raw_data.len != (size_t)n * es)
                return hp_error_set(err, HP_ERR_INVALID, "%s: %s holds %zu bytes, its shape needs %lld", path,
                                    where, t->raw_data.len, (long long)((size_t)n * es));
        } else {
            size_t have;
            switch (dt) {
            case HP_DT_FLOAT: have = t->n_float_data; break;
            case DT_DOUBLE: have = t->n_double_data; break;
            case HP_DT_INT64: have = t->n_int64_data; break;
            case DT_UINT32:
            case DT_UINT64: have = t->n_uint64_data; break;
            default: have = t->n_int32_data; break;
            }
            if (have != (size_t)n)
                return hp_error_set(err, HP_ERR_INVALID, "%s: %s holds %zu values, its shape needs %lld", path,
                                    where, have, (long long)n);
        }
    }
    hp_dtype out_t = is_float_type(dt) ? HP_DT_FLOAT : HP_DT_INT64;
    size_t out_es = out_t == HP_DT_FLOAT ? 4 : 8;
    uint8_t *raw = NULL;
    if (external) {
        hp_status est = read_external(t, dir, path, where, (size_t)n * es, &raw, err);
        if (est)
            return est;
    }
    void *data = malloc((size_t)(n > 0 ? n : 1) * out_es);
    if (!data) {
        free(raw);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: %s: cannot allocate %lld elements", path, where,
                            (long long)n);
    }
    hp_status st = HP_OK;
    if (external) {
        convert_raw(dt, raw, n, data);
        free(raw);
    } else if (t->has_raw_data) {
        convert_raw(dt, t->raw_data.data, n, data);
    } else {
        /* Typed fields (counts checked above): float_data, double_data, int32_data (also
         * float16/bfloat16 bits and the small integer types), int64_data, uint64_data. */
        float *f = data;
        int64_t *q = data;
        for (int64_t i = 0; i < n; i++) {
            switch (dt) {
            case HP_DT_FLOAT: f[i] = t->float_data[i]; break;
            case DT_DOUBLE: f[i] = (float)t->double_data[i]; break;
            case HP_DT_FLOAT16: f[i] = half_to_float((uint16_t)t->int32_data[i]); break;
            case HP_DT_BFLOAT16: f[i] = bf16_to_float((uint16_t)t->int32_data[i]); break;
            case HP_DT_INT64: q[i] = t->int64_data[i]; break;
            case DT_UINT32:
            case DT_UINT64: q[i] = (int64_t)t->uint64_data[i]; break;
            default: q[i] = t->int32_data[i]; break;
            }
        }
    }
    if (st) {
        free(data);
        return st;
    }
    if (v->owns_data)
        free(v->data);
    v->data = data;
    v->owns_data = 1;
    v->dtype = out_t;
    v->ndim = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++)
        v->dims[i] = t->dims[i];
    v->kind = HP_VAL_CONST;
    return HP_OK;
}
