/* The edit plan of `histoplan deid`: which bytes of the copy change. Nothing moves: each kept
 * directory is rewritten where it is, holding only its kept entries and pointing to the next kept
 * directory; replaced values are written over the originals at the same length; everything
 * removed (associated images, removed entries' values, EXIF/GPS/SubIFD trees) is overwritten with
 * zeros, except bytes that a kept directory still uses (a value may legitimately be shared). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/deid_internal.h"

/* Sub-directories (EXIF, GPS, SubIFDs) zeroed under one removed pointer, at most; deeper or more
 * is refused as a corrupt or hostile file rather than followed without end. */
#define MAX_SUBIFDS 1024
#define MAX_SUBIFD_DEPTH 4

hp_status deid_edit_add(deid_edits *ed, uint64_t pos, uint64_t len, const void *data,
                        hp_error *err)
{
    if (len == 0)
        return HP_OK;
    if (ed->n == ed->cap) {
        size_t cap = ed->cap ? ed->cap * 2 : 64;
        deid_edit *v = realloc(ed->v, cap * sizeof *v);
        if (!v)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        ed->v = v;
        ed->cap = cap;
    }
    deid_edit *e = &ed->v[ed->n];
    e->pos = pos;
    e->len = len;
    e->data = NULL;
    if (data) {
        e->data = malloc(len);
        if (!e->data)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        memcpy(e->data, data, len);
    }
    ed->n++;
    return HP_OK;
}

void deid_edits_free(deid_edits *ed)
{
    for (size_t i = 0; i < ed->n; i++)
        free(ed->v[i].data);
    free(ed->v);
    ed->v = NULL;
    ed->n = ed->cap = 0;
}

/* Byte ranges referenced by the kept directories, sorted and merged, so that zeroing a removed
 * image can be checked never to touch bytes a kept image still uses. */
typedef struct {
    uint64_t *a, *b;
    size_t n, cap;
} ranges;

static int ranges_add(ranges *r, uint64_t a, uint64_t len)
{
    if (len == 0)
        return 1;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        uint64_t *na = realloc(r->a, cap * sizeof *na);
        if (!na)
            return 0;
        r->a = na;
        uint64_t *nb = realloc(r->b, cap * sizeof *nb);
        if (!nb)
            return 0;
        r->b = nb;
        r->cap = cap;
    }
    r->a[r->n] = a;
    r->b[r->n] = a + len;
    r->n++;
    return 1;
}

static int cmp_pair(const void *x, const void *y)
{
    const uint64_t *p = x, *q = y;
    return p[0] < q[0] ? -1 : p[0] > q[0];
}

static int ranges_merge(ranges *r)
{
    uint64_t *pairs = malloc((r->n ? r->n : 1) * 2 * sizeof *pairs);
    if (!pairs)
        return 0;
    for (size_t i = 0; i < r->n; i++)
        pairs[2 * i] = r->a[i], pairs[2 * i + 1] = r->b[i];
    qsort(pairs, r->n, 2 * sizeof *pairs, cmp_pair);
    size_t m = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (m > 0 && pairs[2 * i] <= r->b[m - 1]) {
            if (pairs[2 * i + 1] > r->b[m - 1])
                r->b[m - 1] = pairs[2 * i + 1];
        } else {
            r->a[m] = pairs[2 * i];
            r->b[m] = pairs[2 * i + 1];
            m++;
        }
    }
    r->n = m;
    free(pairs);
    return 1;
}

static int ranges_overlap(const ranges *r, uint64_t a, uint64_t len)
{
    if (len == 0)
        return 0;
    size_t lo = 0, hi = r->n; /* first merged range ending after a */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->b[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n && r->a[lo] < a + len;
}

static void put_u(const hp_tiff_file *t, unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[t->be ? n - 1 - i : i] = (unsigned char)(v >> (8 * i));
}

static hp_status oom(const hp_tiff_file *t, hp_error *err)
{
    return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", t->path);
}

/* Every byte range the copy keeps in use: the header, the kept directories, their kept entries'
 * out-of-line values and their image data. */
static hp_status kept_ranges(const hp_tiff_file *t, const deid_dir *dirs, ranges *r, hp_error *err)
{
    if (!ranges_add(r, 0, t->big ? 16 : 8))
        return oom(t, err);
    for (size_t i = 0; i < t->n_ifds; i++) {
        const hp_tiff_ifd *d = &t->ifds[i];
        if (dirs[i].remove)
            continue;
        int ok = ranges_add(r, d->offset, d->bytes);
        for (size_t k = 0; ok && k < d->n; k++)
            if (!dirs[i].drop[k] && !d->e[k].inline_value)
                ok = ranges_add(r, d->e[k].value_pos, d->e[k].nbytes);
        if (!ok)
            return oom(t, err);
        uint64_t *offs, *lens;
        size_t n;
        hp_status st = hp_tiff_data_ranges(t, d, &offs, &lens, &n, err);
        for (size_t k = 0; !st && k < n; k++)
            if (!ranges_add(r, offs[k], lens[k]))
                st = oom(t, err);
        free(offs);
        free(lens);
        if (st)
            return st;
    }
    return ranges_merge(r) ? HP_OK : oom(t, err);
}

/* Zeros [pos, pos+len) except where it overlaps a kept range (those bytes stay). */
static hp_status zero_unkept(const ranges *kept, uint64_t pos, uint64_t len, deid_edits *ed,
                             hp_error *err)
{
    if (len == 0)
        return HP_OK;
    uint64_t end = pos + len;
    size_t lo = 0, hi = kept->n; /* first kept range ending after pos */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kept->b[mid] <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    hp_status st = HP_OK;
    for (size_t i = lo; !st && pos < end; i++) {
        uint64_t stop = i < kept->n && kept->a[i] < end ? kept->a[i] : end;
        if (stop > pos)
            st = deid_edit_add(ed, pos, stop - pos, NULL, err);
        if (i >= kept->n || kept->a[i] >= end)
            break;
        pos = kept->b[i] > pos ? kept->b[i] : pos;
    }
    return st;
}

typedef struct {
    const hp_tiff_file *t;
    const ranges *kept;
    deid_edits *ed;
    uint64_t seen[MAX_SUBIFDS];
    size_t n_seen;
} subtree;

/* Zeros a sub-directory (EXIF, GPS, Interoperability, SubIFD) with its values, its image data and
 * the sub-directories it points to in turn. */
static hp_status zero_subifd(subtree *z, uint64_t off, int depth, hp_error *err)
{
    const hp_tiff_file *t = z->t;
    if (off == 0)
        return HP_OK;
    for (size_t i = 0; i < z->n_seen; i++)
        if (z->seen[i] == off)
            return HP_OK; /* shared or looping: zeroed once */
    if (depth > MAX_SUBIFD_DEPTH || z->n_seen == MAX_SUBIFDS)
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "%s: more than %d sub-directories, or nested deeper than %d, under "
                            "an EXIF, GPS or SubIFDs tag",
                            t->path, MAX_SUBIFDS, MAX_SUBIFD_DEPTH);
    z->seen[z->n_seen++] = off;
    hp_tiff_ifd sub = {0};
    hp_status st = hp_tiff_read_ifd(t, off, 0, &sub, err);
    if (!st)
        st = zero_unkept(z->kept, sub.offset, sub.bytes, z->ed, err);
    for (size_t k = 0; !st && k < sub.n; k++) {
        const hp_tiff_entry *e = &sub.e[k];
        if (!e->inline_value)
            st = zero_unkept(z->kept, e->value_pos, e->nbytes, z->ed, err);
        if (!st && deid_tag_is_subifd(e->tag) && e->nbytes > 0) {
            uint64_t *p = NULL;
            st = hp_tiff_read_uints(t, e, &p, err);
            for (uint64_t j = 0; !st && j < e->count; j++)
                st = zero_subifd(z, p[j], depth + 1, err);
            free(p);
        }
    }
    uint64_t *offs = NULL, *lens = NULL;
    size_t n = 0;
    if (!st)
        st = hp_tiff_data_ranges(t, &sub, &offs, &lens, &n, err);
    for (size_t k = 0; !st && k < n; k++)
        st = zero_unkept(z->kept, offs[k], lens[k], z->ed, err);
    free(offs);
    free(lens);
    free(sub.e);
    return st;
}

/* A kept directory rewritten in place: its kept entries (replaced inline values patched in),
 * the pointer to `next`, zeros where dropped entries were. */
static hp_status rewrite_dir(const hp_tiff_file *t, const hp_tiff_ifd *d, const deid_dir *dd,
                             uint64_t next, deid_edits *ed, hp_error *err)
{
    int cw = t->big ? 8 : 2, ew = t->big ? 20 : 12, pw = t->big ? 8 : 4;
    unsigned char *raw = malloc(d->bytes), *out = calloc(1, d->bytes);
    hp_status st = raw && out ? HP_OK : oom(t, err);
    if (!st)
        st = hp_tiff_pread(t, raw, d->bytes, d->offset, err);
    size_t kept = 0;
    for (size_t k = 0; !st && k < d->n; k++) {
        if (dd->drop[k])
            continue;
        unsigned char *ent = out + cw + kept * (size_t)ew;
        memcpy(ent, raw + cw + k * (size_t)ew, (size_t)ew);
        if (dd->newval[k] && d->e[k].inline_value)
            memcpy(ent + (t->big ? 12 : 8), dd->newval[k], (size_t)d->e[k].nbytes);
        kept++;
    }
    if (!st && kept == 0)
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: the directory at offset %llu has no image tags to keep", t->path,
                          (unsigned long long)d->offset);
    if (!st) {
        put_u(t, out, kept, cw);
        put_u(t, out + cw + kept * (size_t)ew, next, pw);
        st = deid_edit_add(ed, d->offset, d->bytes, out, err);
    }
    free(raw);
    free(out);
    return st;
}

hp_status deid_plan(const hp_tiff_file *t, const deid_dir *dirs, deid_edits *ed, hp_error *err)
{
    ranges kept = {0};
    subtree *z = calloc(1, sizeof *z);
    hp_status st = z ? kept_ranges(t, dirs, &kept, err) : oom(t, err);
    if (st)
        goto done;
    z->t = t, z->kept = &kept, z->ed = ed;

    /* The chain: the header points to the first kept directory, each kept one to the next. */
    size_t first = t->n_ifds;
    for (size_t i = 0; i < t->n_ifds && first == t->n_ifds; i++)
        if (!dirs[i].remove)
            first = i;
    if (first == t->n_ifds) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: no image would remain", t->path);
        goto done;
    }
    unsigned char hb[8];
    int pw = t->big ? 8 : 4;
    put_u(t, hb, t->ifds[first].offset, pw);
    st = deid_edit_add(ed, t->big ? 8 : 4, (uint64_t)pw, hb, err);
    for (size_t i = first; !st && i < t->n_ifds; i++) {
        const hp_tiff_ifd *d = &t->ifds[i];
        if (dirs[i].remove)
            continue;
        size_t j = i + 1;
        while (j < t->n_ifds && dirs[j].remove)
            j++;
        st = rewrite_dir(t, d, &dirs[i], j < t->n_ifds ? t->ifds[j].offset : 0, ed, err);
        for (size_t k = 0; !st && k < d->n; k++) {
            const hp_tiff_entry *e = &d->e[k];
            if (dirs[i].newval[k] && !e->inline_value)
                st = deid_edit_add(ed, e->value_pos, e->nbytes, dirs[i].newval[k], err);
            if (st || !dirs[i].drop[k])
                continue;
            if (!e->inline_value)
                st = zero_unkept(&kept, e->value_pos, e->nbytes, ed, err);
            if (!st && deid_tag_is_subifd(e->tag) && e->nbytes > 0) {
                uint64_t *p = NULL;
                st = hp_tiff_read_uints(t, e, &p, err);
                for (uint64_t q = 0; !st && q < e->count; q++)
                    st = zero_subifd(z, p[q], 1, err);
                free(p);
            }
        }
    }
    /* Removed directories: the directory, its image data, its values, what it points to. */
    for (size_t i = 0; !st && i < t->n_ifds; i++) {
        const hp_tiff_ifd *d = &t->ifds[i];
        if (!dirs[i].remove)
            continue;
        st = zero_unkept(&kept, d->offset, d->bytes, ed, err);
        const hp_tiff_entry *desc = hp_tiff_find(d, HP_TIFFTAG_IMAGE_DESCRIPTION);
        for (size_t k = 0; !st && k < d->n; k++) {
            const hp_tiff_entry *e = &d->e[k];
            if (!e->inline_value)
                st = zero_unkept(&kept, e->value_pos, e->nbytes, ed, err);
            if (!st && deid_tag_is_subifd(e->tag) && e->nbytes > 0) {
                uint64_t *p = NULL;
                st = hp_tiff_read_uints(t, e, &p, err);
                for (uint64_t q = 0; !st && q < e->count; q++)
                    st = zero_subifd(z, p[q], 1, err);
                free(p);
            }
        }
        uint64_t *offs = NULL, *lens = NULL;
        size_t n = 0;
        if (!st)
            st = hp_tiff_data_ranges(t, d, &offs, &lens, &n, err);
        /* The image itself and its description must go entirely: if a kept image shares them,
         * removing it safely is impossible. */
        for (size_t k = 0; !st && k <= n; k++) {
            uint64_t a = k < n ? offs[k] : desc && !desc->inline_value ? desc->value_pos : 0;
            uint64_t l = k < n ? lens[k] : desc && !desc->inline_value ? desc->nbytes : 0;
            if (l && ranges_overlap(&kept, a, l))
                st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                                  "%s: the %s image shares bytes with an image that is kept; "
                                  "it cannot be removed safely",
                                  t->path, dirs[i].removed_name);
            else if (l)
                st = deid_edit_add(ed, a, l, NULL, err);
        }
        free(offs);
        free(lens);
    }
done:
    free(kept.a);
    free(kept.b);
    free(z);
    return st;
}

void deid_report_add(hp_deid_report *rep, hp_deid_action a, const char *name)
{
    if (!rep)
        return;
    for (int i = 0; i < rep->n_items; i++)
        if (rep->items[i].action == a && !strcmp(rep->items[i].name, name)) {
            rep->items[i].count++;
            return;
        }
    if (rep->n_items == HP_DEID_MAX_ITEMS) {
        rep->items_dropped++;
        return;
    }
    hp_deid_item *it = &rep->items[rep->n_items++];
    it->action = a;
    snprintf(it->name, sizeof it->name, "%s", name);
    it->count = 1;
}
