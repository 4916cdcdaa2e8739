/* NumPy .npy reader and writer (format: numpy.lib.format, versions 1.0, 2.0, 3.0).
 *
 * The header is a Python dict literal; it is parsed here with a tiny tokenizer rather than a
 * general evaluator, accepting only the three keys NumPy writes. Sizes are checked against the
 * file size before any allocation, so a corrupt or hostile shape cannot make us allocate
 * gigabytes or read past the end. */
#include "io/npy.h"

#include "io/atomic_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* NumPy itself refuses headers over 10 000 bytes by default; allow more, but not unbounded. */
#define NPY_MAX_HEADER (1 << 20)

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void swap_bytes(void *p, size_t width, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += width)
        for (size_t j = 0; j < width / 2; j++) {
            unsigned char t = b[j];
            b[j] = b[width - 1 - j];
            b[width - 1 - j] = t;
        }
}

/* IEEE 754 binary16 to binary32, exact (every half is representable as a float). */
static float half_to_float(uint16_t h)
{
    int sign = (h >> 15) & 1;
    int exp = (h >> 10) & 0x1f;
    int man = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24); /* zero or subnormal */
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 0x400), exp - 25);
    return sign ? -v : v;
}

/* ---- header parsing ---- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int accept(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A Python string literal in ' or " quotes, without escapes (NumPy never writes any). */
static int parse_pystr(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int accept_word(cursor *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

typedef struct {
    char descr[32];
    int fortran;
    int ndim;
    int64_t dims[HP_NPY_MAX_DIMS];
    int have_descr, have_fortran, have_shape;
} npy_header;

/* Parses "(d0, d1, ...)" with an optional trailing comma (and Python 2's "L" suffix). */
static hp_status parse_shape(const char *path, cursor *c, npy_header *h, hp_error *err)
{
    if (!accept(c, '('))
        return hp_error_set(err, HP_ERR_INVALID, "%s: .npy header: 'shape' is not a tuple", path);
    h->ndim = 0;
    for (;;) {
        if (accept(c, ')'))
            return HP_OK;
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: .npy header: 'shape' holds something other than non-negative "
                                "integers",
                                path);
        if (h->ndim >= HP_NPY_MAX_DIMS)
            return hp_error_set(err, HP_ERR_UNSUPPORTED,
                                "%s: .npy array has more than %d dimensions", path, HP_NPY_MAX_DIMS);
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return hp_error_set(err, HP_ERR_INVALID, "%s: .npy header: a dimension is absurdly large",
                                    path);
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L')
            c->p++;
        h->dims[h->ndim++] = v;
        if (accept(c, ','))
            continue;
        if (accept(c, ')'))
            return HP_OK;
        return hp_error_set(err, HP_ERR_INVALID, "%s: .npy header: malformed 'shape' tuple", path);
    }
}

static hp_status parse_header(const char *path, const char *text, size_t len, npy_header *h,
                              hp_error *err)
{
    memset(h, 0, sizeof *h);
    cursor c = {text, text + len};
    if (!accept(&c, '{'))
        return hp_error_set(err, HP_ERR_INVALID, "%s: .npy header is not a dictionary", path);
    for (;;) {
        if (accept(&c, '}'))
            break;
        char key[32];
        if (!parse_pystr(&c, key, sizeof key) || !accept(&c, ':'))
            return hp_error_set(err, HP_ERR_INVALID, "%s: .npy header is malformed", path);
        hp_status st;
        if (strcmp(key, "descr") == 0) {
            if (!parse_pystr(&c, h->descr, sizeof h->descr))
                return hp_error_set(err, HP_ERR_UNSUPPORTED,
                                    "%s: .npy dtype is not a simple type (structured arrays are not "
                                    "supported)",
                                    path);
            h->have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (accept_word(&c, "True"))
                h->fortran = 1;
            else if (accept_word(&c, "False"))
                h->fortran = 0;
            else
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s: .npy header: 'fortran_order' is not True or False", path);
            h->have_fortran = 1;
        } else if (strcmp(key, "shape") == 0) {
            if ((st = parse_shape(path, &c, h, err)))
                return st;
            h->have_shape = 1;
        } else {
            return hp_error_set(err, HP_ERR_INVALID, "%s: .npy header has an unexpected key '%s'", path,
                                key);
        }
        if (accept(&c, ','))
            continue;
        if (accept(&c, '}'))
            break;
        return hp_error_set(err, HP_ERR_INVALID, "%s: .npy header is malformed", path);
    }
    skip_ws(&c);
    if (c.p != c.end)
        return hp_error_set(err, HP_ERR_INVALID, "%s: .npy header has trailing characters", path);
    if (!h->have_descr || !h->have_fortran || !h->have_shape)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: .npy header lacks '%s'", path,
                            !h->have_descr ? "descr" : !h->have_fortran ? "fortran_order" : "shape");
    return HP_OK;
}

/* An element type as the header names it: float ('f') or integer ('i' signed, 'u' unsigned,
 * 'b' bool) and its width in bytes. */
typedef struct {
    char kind;
    size_t width;
} npy_dtype;

static int parse_dtype(const char *descr, npy_dtype *t)
{
    /* '<' little-endian, '|' not applicable (one byte), '=' native: NumPy writes '<' or '|'. */
    if ((descr[0] != '<' && descr[0] != '|') || !descr[1] || !descr[2] || descr[3])
        return 0;
    t->kind = descr[1];
    t->width = (size_t)(descr[2] - '0');
    switch (t->kind) {
    case 'f': return t->width == 2 || t->width == 4 || t->width == 8;
    case 'i': case 'u': return t->width == 1 || t->width == 2 || t->width == 4 || t->width == 8;
    case 'b': return t->width == 1;
    default: return 0;
    }
}

/* Checks that `descr` is a dtype the caller can take (floats for float32, integers for int64). */
static hp_status check_dtype(const char *path, const char *descr, int want_int, npy_dtype *t,
                             hp_error *err)
{
    if (descr[0] == '>')
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "%s: .npy dtype '%s' is big-endian; save it little-endian "
                            "(a.astype('<%s'))",
                            path, descr, descr + 1);
    int ok = parse_dtype(descr, t) && (want_int ? t->kind != 'f' : t->kind == 'f');
    if (ok && want_int && t->kind == 'u' && t->width == 8)
        ok = 0; /* values past INT64_MAX would wrap */
    if (!ok)
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            want_int ? "%s: .npy dtype '%s' is not an integer type (expected int64 "
                                       "'<i8', int32, int16, int8, uint8 to uint32 or bool)"
                                     : "%s: .npy dtype '%s' is not supported (float32 '<f4', float64 "
                                       "'<f8' or float16 '<f2')",
                            path, descr);
    return HP_OK;
}

static int read_le(FILE *f, unsigned nbytes, uint32_t *out)
{
    unsigned char b[4];
    if (fread(b, 1, nbytes, f) != nbytes)
        return 0;
    uint32_t v = 0;
    for (unsigned i = 0; i < nbytes; i++)
        v |= (uint32_t)b[i] << (8 * i);
    *out = v;
    return 1;
}

/* Reads `n` elements of `width` bytes and stores them as float32 in `out`. */
static int read_elements(FILE *f, size_t width, int64_t n, float *out)
{
    int le = host_is_little_endian();
    if (width == 4) {
        if (n > 0 && fread(out, 4, (size_t)n, f) != (size_t)n)
            return 0;
        if (!le)
            swap_bytes(out, 4, (size_t)n);
        return 1;
    }
    enum { CHUNK = 8192 };
    unsigned char buf[CHUNK * 8];
    for (int64_t done = 0; done < n;) {
        size_t k = (size_t)(n - done < CHUNK ? n - done : CHUNK);
        if (fread(buf, width, k, f) != k)
            return 0;
        if (!le)
            swap_bytes(buf, width, k);
        for (size_t i = 0; i < k; i++) {
            if (width == 8) {
                double d;
                memcpy(&d, buf + 8 * i, 8);
                out[done + (int64_t)i] = (float)d;
            } else {
                uint16_t hv;
                memcpy(&hv, buf + 2 * i, 2);
                out[done + (int64_t)i] = half_to_float(hv);
            }
        }
        done += (int64_t)k;
    }
    return 1;
}

/* Reads `n` integer elements of type `t` and stores them as int64 in `out`. */
static int read_int_elements(FILE *f, npy_dtype t, int64_t n, int64_t *out)
{
    int le = host_is_little_endian();
    enum { CHUNK = 8192 };
    unsigned char buf[CHUNK * 8];
    for (int64_t done = 0; done < n;) {
        size_t k = (size_t)(n - done < CHUNK ? n - done : CHUNK);
        if (fread(buf, t.width, k, f) != k)
            return 0;
        if (!le)
            swap_bytes(buf, t.width, k);
        for (size_t i = 0; i < k; i++) {
            const unsigned char *p = buf + t.width * i;
            int64_t v = 0;
            if (t.kind == 'b') {
                v = p[0] != 0;
            } else if (t.width == 1) {
                v = t.kind == 'i' ? (int64_t)(int8_t)p[0] : (int64_t)p[0];
            } else if (t.width == 2) {
                uint16_t u;
                memcpy(&u, p, 2);
                v = t.kind == 'i' ? (int64_t)(int16_t)u : (int64_t)u;
            } else if (t.width == 4) {
                uint32_t u;
                memcpy(&u, p, 4);
                v = t.kind == 'i' ? (int64_t)(int32_t)u : (int64_t)u;
            } else {
                memcpy(&v, p, 8);
            }
            out[done + (int64_t)i] = v;
        }
        done += (int64_t)k;
    }
    return 1;
}

/* Reads a .npy file into float32 (want_int = 0) or int64 (want_int = 1) elements. */
static hp_status read_npy(const char *path, int want_int, void **data, int *ndim,
                          int64_t dims[HP_NPY_MAX_DIMS], hp_error *err)
{
    *data = NULL;
    *ndim = 0;
    memset(dims, 0, sizeof(int64_t) * HP_NPY_MAX_DIMS);

    hp_status st = HP_OK;
    char *htext = NULL;
    void *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    unsigned char pre[NPY_MAGIC_LEN + 2];
    if (fread(pre, 1, sizeof pre, f) != sizeof pre || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: not a NumPy .npy file (bad magic)", path);
        goto fail;
    }
    int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not supported",
                          path, major, minor);
        goto fail;
    }
    unsigned len_bytes = major == 1 ? 2 : 4;
    uint32_t hlen;
    if (!read_le(f, len_bytes, &hlen)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: .npy file is truncated in its header", path);
        goto fail;
    }
    if (hlen > NPY_MAX_HEADER) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: .npy header length %u is absurd", path,
                          (unsigned)hlen);
        goto fail;
    }
    htext = malloc((size_t)hlen + 1);
    if (!htext) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (fread(htext, 1, hlen, f) != hlen) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: .npy file is truncated in its header", path);
        goto fail;
    }
    htext[hlen] = '\0';
    npy_header h;
    if ((st = parse_header(path, htext, hlen, &h, err)))
        goto fail;
    npy_dtype dt = {0, 0};
    if ((st = check_dtype(path, h.descr, want_int, &dt, err)))
        goto fail;
    size_t width = dt.width;
    if (h.fortran && h.ndim > 1) {
        /* A 0-D or 1-D array is the same in either order; NumPy sets the flag only for >= 2-D. */
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: .npy array is in Fortran order; save it C-contiguous "
                          "(np.ascontiguousarray)",
                          path);
        goto fail;
    }
    int64_t n = 1;
    for (int i = 0; i < h.ndim; i++) {
        if (h.dims[i] != 0 && n > HP_NPY_MAX_ELEMENTS / h.dims[i]) {
            n = -1;
            break;
        }
        n *= h.dims[i];
    }
    if (n < 0 || n > HP_NPY_MAX_ELEMENTS) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: .npy shape is absurd (more than %lld elements)",
                          path, (long long)HP_NPY_MAX_ELEMENTS);
        goto fail;
    }
    int64_t data_off = NPY_MAGIC_LEN + 2 + (int64_t)len_bytes + (int64_t)hlen;
    int64_t have = (int64_t)sb.st_size - data_off;
    int64_t need = n * (int64_t)width;
    if (have != need) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: .npy %s: shape and dtype '%s' need %lld data bytes, the file has %lld",
                          path, have < need ? "file is truncated" : "size does not match its shape",
                          h.descr, (long long)need, (long long)have);
        goto fail;
    }
    out = malloc(n > 0 ? (size_t)n * (want_int ? sizeof(int64_t) : sizeof(float)) : 1);
    if (!out) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory for %lld elements", path,
                          (long long)n);
        goto fail;
    }
    if (want_int ? !read_int_elements(f, dt, n, out) : !read_elements(f, width, n, out)) {
        st = hp_error_set(err, ferror(f) ? HP_ERR_IO : HP_ERR_INVALID,
                          "%s: .npy file is truncated in its data", path);
        goto fail;
    }
    fclose(f);
    free(htext);
    *data = out;
    *ndim = h.ndim;
    for (int i = 0; i < h.ndim; i++)
        dims[i] = h.dims[i];
    return HP_OK;

fail:
    free(out);
    free(htext);
    fclose(f);
    return st;
}

hp_status hp_npy_read(const char *path, float **data, int *ndim, int64_t dims[HP_NPY_MAX_DIMS],
                      hp_error *err)
{
    if (!path || !data || !ndim || !dims)
        return hp_error_set(err, HP_ERR_INVALID, "hp_npy_read: NULL argument");
    void *p = NULL;
    hp_status st = read_npy(path, 0, &p, ndim, dims, err);
    *data = p;
    return st;
}

hp_status hp_npy_read_int64(const char *path, int64_t **data, int *ndim,
                            int64_t dims[HP_NPY_MAX_DIMS], hp_error *err)
{
    if (!path || !data || !ndim || !dims)
        return hp_error_set(err, HP_ERR_INVALID, "hp_npy_read_int64: NULL argument");
    void *p = NULL;
    hp_status st = read_npy(path, 1, &p, ndim, dims, err);
    *data = p;
    return st;
}

/* ---- writing ---- */


hp_status hp_npy_write(const char *path, const float *data, int ndim, const int64_t *dims,
                       hp_error *err)
{
    if (!path || (ndim > 0 && !dims))
        return hp_error_set(err, HP_ERR_INVALID, "hp_npy_write: NULL argument");
    if (ndim < 0 || ndim > HP_NPY_MAX_DIMS)
        return hp_error_set(err, HP_ERR_INVALID, "%s: cannot write a %d-dimensional array (0..%d)",
                            path, ndim, HP_NPY_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return hp_error_set(err, HP_ERR_INVALID, "%s: dimension %d is negative", path, i);
        if (dims[i] != 0 && n > HP_NPY_MAX_ELEMENTS / dims[i])
            return hp_error_set(err, HP_ERR_INVALID, "%s: shape is absurd (more than %lld elements)",
                                path, (long long)HP_NPY_MAX_ELEMENTS);
        n *= dims[i];
    }
    if (n > 0 && !data)
        return hp_error_set(err, HP_ERR_INVALID, "hp_npy_write: %s: NULL data", path);

    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++)
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%lld,%s", (long long)dims[i],
                        i + 1 < ndim ? " " : "");
    /* Python writes a 1-tuple as "(5,)" and others as "(2, 3)": drop the comma unless 1-D. */
    if (ndim > 1)
        len--;
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    /* Pad with spaces and a final newline so the data starts 64-byte aligned, as NumPy does. */
    size_t pre = NPY_MAGIC_LEN + 2 + 2;
    size_t total = pre + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - pre;
    char header[640];
    memcpy(header, NPY_MAGIC "\x01\x00", 8);
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);
    memcpy(header + pre, dict, (size_t)len);
    memset(header + pre + len, ' ', hlen - (size_t)len - 1);
    header[padded - 1] = '\n';

    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st)
        return st;
    FILE *f = af.f;
    int ok = fwrite(header, 1, padded, f) == padded;
    if (ok && n > 0) {
        if (host_is_little_endian()) {
            ok = fwrite(data, sizeof(float), (size_t)n, f) == (size_t)n;
        } else {
            float buf[4096];
            for (int64_t done = 0; ok && done < n;) {
                size_t k = (size_t)(n - done < 4096 ? n - done : 4096);
                memcpy(buf, data + done, k * sizeof(float));
                swap_bytes(buf, 4, k);
                ok = fwrite(buf, sizeof(float), k, f) == k;
                done += (int64_t)k;
            }
        }
    }
    return hp_atomic_finish(path, &af, ok, err);
}
