/* A bounds-checked TIFF directory reader (io/tiff_dir.h): every offset is checked against the file
 * size before it is used, loops in the directory chain are refused, and counts are bounded so a
 * hostile header cannot make it allocate without limit. */
#include "io/tiff_dir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_IFDS 4096
#define MAX_ENTRIES 4096
#define MAX_STRING (256u << 20)
#define MAX_UINTS (1u << 28)

uint64_t hp_tiff_type_size(uint16_t type)
{
    switch (type) {
    case 1: case 2: case 6: case 7: return 1;  /* BYTE ASCII SBYTE UNDEFINED */
    case 3: case 8: return 2;                  /* SHORT SSHORT */
    case 4: case 9: case 11: case 13: return 4; /* LONG SLONG FLOAT IFD */
    case 5: case 10: case 12: case 16: case 17: case 18: return 8;
    default: return 0;
    }
}

static uint64_t get_u(const hp_tiff_file *t, const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[t->be ? n - 1 - i : i] << (8 * i);
    return v;
}

hp_status hp_tiff_pread(const hp_tiff_file *t, void *buf, uint64_t n, uint64_t pos, hp_error *err)
{
    if (pos > t->size || n > t->size - pos)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: corrupt or truncated TIFF: data at offset %llu (%llu bytes) lies "
                            "past the end of the file (%llu bytes)",
                            t->path, (unsigned long long)pos, (unsigned long long)n,
                            (unsigned long long)t->size);
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = pread(t->fd, p, n > (1u << 30) ? (1u << 30) : (size_t)n, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return hp_error_set(err, HP_ERR_IO, "%s: read failed at offset %llu: %s", t->path,
                                (unsigned long long)pos, r < 0 ? strerror(errno) : "end of file");
        p += r;
        pos += (uint64_t)r;
        n -= (uint64_t)r;
    }
    return HP_OK;
}

hp_status hp_tiff_read_ifd(const hp_tiff_file *t, uint64_t off, uint64_t link_pos, hp_tiff_ifd *d,
                        hp_error *err)
{
    int cw = t->big ? 8 : 2, ew = t->big ? 20 : 12, pw = t->big ? 8 : 4;
    unsigned char b[8];
    hp_status st = hp_tiff_pread(t, b, (uint64_t)cw, off, err);
    if (st)
        return st;
    uint64_t n = get_u(t, b, cw);
    if (n == 0 || n > MAX_ENTRIES)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: corrupt TIFF: directory at offset %llu has %llu entries", t->path,
                            (unsigned long long)off, (unsigned long long)n);
    d->offset = off;
    d->link_pos = link_pos;
    d->bytes = (uint64_t)cw + n * (uint64_t)ew + (uint64_t)pw;
    unsigned char *raw = malloc(d->bytes);
    d->e = calloc(n, sizeof *d->e);
    if (!raw || !d->e) {
        free(raw);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", t->path);
    }
    st = hp_tiff_pread(t, raw, d->bytes, off, err);
    if (st) {
        free(raw);
        return st;
    }
    d->n = (size_t)n;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *p = raw + cw + i * (uint64_t)ew;
        hp_tiff_entry *e = &d->e[i];
        e->tag = (uint16_t)get_u(t, p, 2);
        e->type = (uint16_t)get_u(t, p + 2, 2);
        e->count = get_u(t, p + 4, t->big ? 8 : 4);
        uint64_t ts = hp_tiff_type_size(e->type);
        uint64_t field = off + (uint64_t)cw + i * (uint64_t)ew + (t->big ? 12 : 8);
        if (ts == 0) { /* unknown type: its size is unknown, so it is left alone */
            e->value_pos = field;
            e->inline_value = 1;
            continue;
        }
        if (e->count > t->size / ts + 8)
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s: corrupt TIFF: tag %u in the directory at offset %llu has an "
                              "impossible count %llu",
                              t->path, e->tag, (unsigned long long)off,
                              (unsigned long long)e->count);
        if (st)
            break;
        e->nbytes = e->count * ts;
        if (e->nbytes <= (uint64_t)pw) {
            e->value_pos = field;
            e->inline_value = 1;
        } else {
            e->value_pos = get_u(t, p + (t->big ? 12 : 8), pw);
            if (e->value_pos > t->size || e->nbytes > t->size - e->value_pos)
                st = hp_error_set(err, HP_ERR_INVALID,
                                  "%s: corrupt or truncated TIFF: the value of tag %u in the "
                                  "directory at offset %llu lies past the end of the file",
                                  t->path, e->tag, (unsigned long long)off);
            if (st)
                break;
        }
    }
    d->next = get_u(t, raw + d->bytes - pw, pw);
    free(raw);
    return st;
}

hp_status hp_tiff_file_read(hp_tiff_file *t, hp_error *err)
{
    unsigned char h[16];
    if (t->size < 8)
        return hp_error_set(err, HP_ERR_INVALID, "%s: not a TIFF file (too short)", t->path);
    hp_status st = hp_tiff_pread(t, h, t->size < 16 ? 8 : 16, 0, err);
    if (st)
        return st;
    if (h[0] == 'I' && h[1] == 'I')
        t->be = 0;
    else if (h[0] == 'M' && h[1] == 'M')
        t->be = 1;
    else
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: not a TIFF file", t->path);
    uint64_t magic = get_u(t, h + 2, 2), first, link_pos;
    if (magic == 42) {
        t->big = 0;
        first = get_u(t, h + 4, 4);
        link_pos = 4;
    } else if (magic == 43 && t->size >= 16 && get_u(t, h + 4, 2) == 8 && get_u(t, h + 6, 2) == 0) {
        t->big = 1;
        first = get_u(t, h + 8, 8);
        link_pos = 8;
    } else {
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: not a TIFF file (bad TIFF header)",
                            t->path);
    }
    if (first == 0)
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: no image directory", t->path);
    size_t cap = 0;
    for (uint64_t off = first; off != 0;) {
        for (size_t i = 0; i < t->n_ifds; i++)
            if (t->ifds[i].offset == off)
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s: corrupt TIFF: the directory chain loops back to "
                                    "offset %llu",
                                    t->path, (unsigned long long)off);
        if (t->n_ifds == MAX_IFDS)
            return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: more than %d TIFF directories",
                                t->path, MAX_IFDS);
        if (t->n_ifds == cap) {
            cap = cap ? cap * 2 : 8;
            hp_tiff_ifd *v = realloc(t->ifds, cap * sizeof *v);
            if (!v)
                return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", t->path);
            t->ifds = v;
        }
        hp_tiff_ifd *d = &t->ifds[t->n_ifds];
        memset(d, 0, sizeof *d);
        t->n_ifds++;
        st = hp_tiff_read_ifd(t, off, link_pos, d, err);
        if (st)
            return st;
        link_pos = d->offset + d->bytes - (t->big ? 8 : 4);
        off = d->next;
    }
    return HP_OK;
}

void hp_tiff_file_free(hp_tiff_file *t)
{
    for (size_t i = 0; i < t->n_ifds; i++)
        free(t->ifds[i].e);
    free(t->ifds);
    t->ifds = NULL;
    t->n_ifds = 0;
}

const hp_tiff_entry *hp_tiff_find(const hp_tiff_ifd *d, uint16_t tag)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].tag == tag)
            return &d->e[i];
    return NULL;
}

hp_status hp_tiff_read_string(const hp_tiff_file *t, const hp_tiff_entry *e, char **out,
                              size_t *len, hp_error *err)
{
    *out = NULL;
    if (hp_tiff_type_size(e->type) != 1)
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: tag %u is not text", t->path,
                            e->tag);
    if (e->nbytes > MAX_STRING)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: tag %u is too long (%llu bytes)",
                            t->path, e->tag, (unsigned long long)e->nbytes);
    char *s = malloc(e->nbytes + 1);
    if (!s)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", t->path);
    hp_status st = hp_tiff_pread(t, s, e->nbytes, e->value_pos, err);
    if (st) {
        free(s);
        return st;
    }
    s[e->nbytes] = '\0';
    *out = s;
    *len = (size_t)e->nbytes;
    return HP_OK;
}

hp_status hp_tiff_read_uints(const hp_tiff_file *t, const hp_tiff_entry *e, uint64_t **out,
                             hp_error *err)
{
    *out = NULL;
    uint64_t ts = hp_tiff_type_size(e->type);
    if (!(e->type == 3 || e->type == 4 || e->type == 13 || e->type == 16 || e->type == 18))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: corrupt TIFF: tag %u has type %u where integers are expected",
                            t->path, e->tag, e->type);
    if (e->count > MAX_UINTS)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: tag %u has too many values", t->path,
                            e->tag);
    unsigned char *raw = malloc(e->nbytes ? e->nbytes : 1);
    uint64_t *v = malloc((e->count ? e->count : 1) * sizeof *v);
    hp_status st = HP_OK;
    if (!raw || !v)
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", t->path);
    if (!st)
        st = hp_tiff_pread(t, raw, e->nbytes, e->value_pos, err);
    if (!st)
        for (uint64_t i = 0; i < e->count; i++)
            v[i] = get_u(t, raw + i * ts, (int)ts);
    free(raw);
    if (st) {
        free(v);
        return st;
    }
    *out = v;
    return HP_OK;
}

hp_status hp_tiff_read_number(const hp_tiff_file *t, const hp_tiff_entry *e, double *out,
                              hp_error *err)
{
    unsigned char b[8];
    uint64_t ts = hp_tiff_type_size(e->type);
    if (e->count < 1 || ts == 0 || ts > 8)
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: tag %u has no number",
                            t->path, e->tag);
    hp_status st = hp_tiff_pread(t, b, ts, e->value_pos, err);
    if (st)
        return st;
    uint64_t u = get_u(t, b, (int)ts);
    switch (e->type) {
    case 11: {
        uint32_t u32 = (uint32_t)u;
        float f;
        memcpy(&f, &u32, 4);
        *out = f;
        break;
    }
    case 12: {
        double d;
        memcpy(&d, &u, 8);
        *out = d;
        break;
    }
    case 6: *out = (int8_t)u; break;
    case 8: *out = (int16_t)u; break;
    case 9: *out = (int32_t)u; break;
    case 17: *out = (double)(int64_t)u; break;
    case 5: {
        uint64_t num = get_u(t, b, 4), den = get_u(t, b + 4, 4);
        *out = den ? (double)num / (double)den : 0;
        break;
    }
    default: *out = (double)u; break;
    }
    return HP_OK;
}

hp_status hp_tiff_data_ranges(const hp_tiff_file *t, const hp_tiff_ifd *d, uint64_t **offs,
                              uint64_t **lens, size_t *n, hp_error *err)
{
    *offs = *lens = NULL;
    *n = 0;
    const hp_tiff_entry *o = hp_tiff_find(d, HP_TIFFTAG_TILE_OFFSETS);
    const hp_tiff_entry *c = hp_tiff_find(d, HP_TIFFTAG_TILE_BYTE_COUNTS);
    if (!o) {
        o = hp_tiff_find(d, HP_TIFFTAG_STRIP_OFFSETS);
        c = hp_tiff_find(d, HP_TIFFTAG_STRIP_BYTE_COUNTS);
    }
    if (!o)
        return HP_OK;
    if (!c || c->count != o->count)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: corrupt TIFF: the directory at offset %llu has image data offsets "
                            "without matching byte counts",
                            t->path, (unsigned long long)d->offset);
    hp_status st = hp_tiff_read_uints(t, o, offs, err);
    if (!st)
        st = hp_tiff_read_uints(t, c, lens, err);
    for (uint64_t i = 0; !st && i < o->count; i++)
        if ((*offs)[i] > t->size || (*lens)[i] > t->size - (*offs)[i])
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s: corrupt or truncated TIFF: image data of the directory at "
                              "offset %llu lies past the end of the file",
                              t->path, (unsigned long long)d->offset);
    if (st) {
        free(*offs);
        free(*lens);
        *offs = *lens = NULL;
        return st;
    }
    *n = (size_t)o->count;
    return HP_OK;
}

hp_status hp_tiff_get_uint(const hp_tiff_file *t, const hp_tiff_ifd *d, uint16_t tag,
                           uint64_t dflt, uint64_t *out, hp_error *err)
{
    const hp_tiff_entry *e = hp_tiff_find(d, tag);
    *out = dflt;
    if (!e)
        return HP_OK;
    double v;
    hp_status st = hp_tiff_read_number(t, e, &v, err);
    if (st)
        return st;
    if (!(v >= 0) || v > 18446744073709549568.0)
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: tag %u holds %g", t->path,
                            tag, v);
    *out = (uint64_t)v;
    return HP_OK;
}
