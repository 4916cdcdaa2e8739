/* `histoplan deid`: the format decisions (which directories are associated images, which tags
 * stay, which texts are scrubbed), and the copy, edit, check, sync and rename of the output. The
 * TIFF structure is read by io/tiff_dir.c, the allow-list is io/deid_tags.c, the text scrubbers
 * io/deid_aperio.c and io/deid_philips.c, the byte-level plan io/deid_plan.c. */
#include "io/deid.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openslide.h>

#include "io/atomic_file.h"
#include "io/deid_internal.h"
#include "io/slide.h"

#define SUPPORTED "deid supports only Aperio SVS, Hamamatsu NDPI, Philips TIFF and generic TIFF"

void hp_deid_item_text(const hp_deid_item *it, char *buf, size_t n)
{
    switch (it->action) {
    case HP_DEID_REMOVED_IMAGE: snprintf(buf, n, "removed %s image", it->name); break;
    case HP_DEID_BLANKED_FIELD:
        snprintf(buf, n, "blanked ImageDescription field %s", it->name);
        break;
    case HP_DEID_BLANKED_TAG: snprintf(buf, n, "blanked TIFF tag %s", it->name); break;
    case HP_DEID_BLANKED_XML: snprintf(buf, n, "blanked XML attribute %s", it->name); break;
    case HP_DEID_REMOVED_TAG: snprintf(buf, n, "removed TIFF tag %s", it->name); break;
    default: snprintf(buf, n, "changed %s", it->name); break;
    }
}

/* Names what a non-TIFF file is, for the refusal message. */
static const char *sniff_other(const char *path, const unsigned char *h, size_t n)
{
    if (n >= 8 && !memcmp(h, "\x89PNG\r\n\x1a\n", 8))
        return "a PNG image";
    if (n >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF)
        return "a JPEG image";
    if (n >= 132 && !memcmp(h + 128, "DICM", 4))
        return "a DICOM file";
    if (n >= 4 && !memcmp(h, "PK\x03\x04", 4))
        return "a ZIP archive";
    const char *v = openslide_detect_vendor(path);
    if (v && !strcmp(v, "mirax"))
        return "a MIRAX slide";
    if (v && !strcmp(v, "dicom"))
        return "a DICOM slide";
    if (v && !strcmp(v, "hamamatsu"))
        return "a Hamamatsu VMS/VMU slide";
    if (v)
        return "a slide in a format that is not TIFF-based";
    if (n == 0)
        return "an empty file";
    return "not a TIFF file (nor a slide format OpenSlide knows)";
}

/* Decides the format and marks the directories to remove. */
static hp_status classify(const hp_tiff_file *t, deid_dir *dirs, deid_format *fmt,
                          hp_deid_report *rep, hp_error *err)
{
    hp_status st = HP_OK;
    char *desc0 = NULL, *soft = NULL;
    size_t len;
    const hp_tiff_ifd *d0 = &t->ifds[0];
    const hp_tiff_entry *e = hp_tiff_find(d0, HP_TIFFTAG_IMAGE_DESCRIPTION);
    if (e && hp_tiff_type_size(e->type) == 1 && (st = hp_tiff_read_string(t, e, &desc0, &len, err)))
        return st;
    e = hp_tiff_find(d0, HP_TIFFTAG_SOFTWARE);
    if (e && hp_tiff_type_size(e->type) == 1 && (st = hp_tiff_read_string(t, e, &soft, &len, err)))
        goto done;
    if (hp_tiff_find(d0, TAG_NDPI_FORMAT_FLAG))
        *fmt = DEID_NDPI;
    else if (desc0 && !strncmp(desc0, "Aperio", 6))
        *fmt = DEID_APERIO;
    else if (desc0 && soft && !strncmp(soft, "Philips", 7) && strstr(desc0, "<DataObject"))
        *fmt = DEID_PHILIPS;
    else {
        /* Other vendors keep labels in their own ways; a generic scrub would leave them. */
        const char *v = openslide_detect_vendor(t->path);
        if (v && strcmp(v, "generic-tiff")) {
            st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                              "%s: is an OpenSlide '%s' slide; " SUPPORTED, t->path, v);
            goto done;
        }
        *fmt = DEID_GENERIC;
    }
    if (*fmt == DEID_NDPI && !t->big && t->size >= ((uint64_t)1 << 32)) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: NDPI files of 4 GiB or more (64-bit offset extension) are not "
                          "supported by deid",
                          t->path);
        goto done;
    }
    static const char *const names[] = {"generic-tiff", "aperio", "hamamatsu-ndpi", "philips"};
    snprintf(rep->format, sizeof rep->format, "%s", names[*fmt]);
    for (size_t i = 0; !st && i < t->n_ifds; i++) {
        const hp_tiff_ifd *d = &t->ifds[i];
        int tiled = hp_tiff_find(d, HP_TIFFTAG_TILE_WIDTH) != NULL;
        const char *name = NULL;
        if (*fmt == DEID_NDPI) {
            const hp_tiff_entry *sl = hp_tiff_find(d, TAG_NDPI_SOURCELENS);
            double v;
            if (sl && !(st = hp_tiff_read_number(t, sl, &v, err)))
                name = v == -1.0 ? "macro" : v == -2.0 ? "map" : NULL;
        } else if ((*fmt == DEID_APERIO || *fmt == DEID_PHILIPS) && i > 0 && !tiled) {
            const hp_tiff_entry *de = hp_tiff_find(d, HP_TIFFTAG_IMAGE_DESCRIPTION);
            char *s = NULL;
            if (de && hp_tiff_type_size(de->type) == 1 &&
                !(st = hp_tiff_read_string(t, de, &s, &len, err))) {
                if (*fmt == DEID_APERIO)
                    name = deid_aperio_associated(s);
                else if (!strncasecmp(s, "label", 5))
                    name = "label";
                else if (!strncasecmp(s, "macro", 5))
                    name = "macro";
            }
            free(s);
        }
        if (name) {
            dirs[i].remove = 1;
            snprintf(dirs[i].removed_name, sizeof dirs[i].removed_name, "%s", name);
            deid_report_add(rep, HP_DEID_REMOVED_IMAGE, name);
        }
    }
done:
    free(desc0);
    free(soft);
    return st;
}

/* The texts a format's reader recognizes it by are scrubbed where they are rather than removed:
 * every Aperio ImageDescription, the Philips XML and the Software tag of the first directory of
 * Philips and NDPI files (OpenSlide checks its "Philips" or "NDP.scan" prefix). */
static int scrubbed_in_place(deid_format fmt, size_t dir, uint16_t tag)
{
    if (tag == HP_TIFFTAG_IMAGE_DESCRIPTION)
        return fmt == DEID_APERIO || (fmt == DEID_PHILIPS && dir == 0);
    if (tag == HP_TIFFTAG_SOFTWARE)
        return dir == 0 && (fmt == DEID_PHILIPS || fmt == DEID_NDPI);
    return 0;
}

/* Overwrites everything after the vendor prefix with 'X'; 0 when the prefix is not there. */
static int scrub_software(char *s, size_t len, deid_format fmt, int *changed)
{
    const char *prefix = fmt == DEID_PHILIPS ? "Philips" : "NDP.scan";
    size_t n = strlen(prefix);
    *changed = 0;
    if (len < n || strncmp(s, prefix, n))
        return 0;
    for (size_t i = n; i < len; i++)
        if (s[i] != '\0' && s[i] != ' ' && s[i] != 'X')
            s[i] = 'X', *changed = 1;
    return 1;
}

/* Decides, for each entry of kept directory `i`, whether it stays, is scrubbed or goes. */
static hp_status decide(const hp_tiff_file *t, size_t i, deid_format fmt, deid_dir *dd,
                        hp_deid_report *rep, hp_error *err)
{
    const hp_tiff_ifd *d = &t->ifds[i];
    dd->drop = calloc(d->n, 1);
    dd->newval = calloc(d->n, sizeof *dd->newval);
    if (!dd->drop || !dd->newval)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", t->path);
    hp_status st = HP_OK;
    for (size_t k = 0; !st && k < d->n; k++) {
        const hp_tiff_entry *e = &d->e[k];
        if (deid_tag_allowed(fmt, e))
            continue;
        if (scrubbed_in_place(fmt, i, e->tag) && hp_tiff_type_size(e->type) == 1) {
            char *s;
            size_t len;
            if ((st = hp_tiff_read_string(t, e, &s, &len, err)))
                break;
            int changed = 0, keep = 1;
            if (e->tag == HP_TIFFTAG_SOFTWARE) {
                keep = scrub_software(s, len, fmt, &changed);
                if (changed)
                    deid_report_add(rep, HP_DEID_BLANKED_TAG, "Software");
            } else {
                changed = (fmt == DEID_APERIO ? deid_aperio_scrub(s, len, rep)
                                              : deid_philips_scrub(s, len, rep)) > 0;
            }
            if (keep) {
                if (changed)
                    dd->newval[k] = (unsigned char *)s;
                else
                    free(s);
                continue;
            }
            free(s);
        }
        char buf[24];
        dd->drop[k] = 1;
        deid_report_add(rep, HP_DEID_REMOVED_TAG, deid_tag_name(e->tag, buf, sizeof buf));
    }
    return st;
}

/* The copy read back: exactly the kept directories, each holding only allowed or scrubbed tags.
 * A failure here is a flaw in the plan, and nothing is written. */
static hp_status verify_copy(const hp_tiff_file *v, deid_format fmt, int expect_dirs,
                             const char *dst, hp_error *err)
{
    if (v->n_ifds != (size_t)expect_dirs)
        return hp_error_set(err, HP_ERR_INVALID, "%s: the edited copy does not read back", dst);
    for (size_t i = 0; i < v->n_ifds; i++)
        for (size_t k = 0; k < v->ifds[i].n; k++) {
            const hp_tiff_entry *e = &v->ifds[i].e[k];
            if (!deid_tag_allowed(fmt, e) && !scrubbed_in_place(fmt, i, e->tag))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s: the edited copy still holds TIFF tag %u; nothing written",
                                    dst, e->tag);
        }
    return HP_OK;
}

/* OpenSlide's view of a slide: what a de-identified copy must keep. */
typedef struct {
    char vendor[32];
    int32_t levels;
    int64_t w[32], h[32];
    char mpp_x[32], mpp_y[32], power[32];
} os_view;

static int os_look(const char *path, os_view *o)
{
    memset(o, 0, sizeof *o);
    const char *v = openslide_detect_vendor(path);
    if (!v)
        return 0;
    snprintf(o->vendor, sizeof o->vendor, "%s", v);
    openslide_t *osr = openslide_open(path);
    if (!osr || openslide_get_error(osr)) {
        if (osr)
            openslide_close(osr);
        return 0;
    }
    o->levels = openslide_get_level_count(osr);
    for (int32_t l = 0; l < o->levels && l < 32; l++)
        openslide_get_level_dimensions(osr, l, &o->w[l], &o->h[l]);
    const char *p;
    if ((p = openslide_get_property_value(osr, OPENSLIDE_PROPERTY_NAME_MPP_X)))
        snprintf(o->mpp_x, sizeof o->mpp_x, "%s", p);
    if ((p = openslide_get_property_value(osr, OPENSLIDE_PROPERTY_NAME_MPP_Y)))
        snprintf(o->mpp_y, sizeof o->mpp_y, "%s", p);
    if ((p = openslide_get_property_value(osr, OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER)))
        snprintf(o->power, sizeof o->power, "%s", p);
    int ok = openslide_get_error(osr) == NULL;
    openslide_close(osr);
    return ok;
}

static hp_status check_openslide(const char *src, const char *tmp, const char *dst, hp_error *err)
{
    os_view a, b;
    if (!os_look(src, &a))
        return HP_OK; /* OpenSlide does not read the original: nothing to compare */
    int same = os_look(tmp, &b) && !strcmp(a.vendor, b.vendor) && a.levels == b.levels &&
               !strcmp(a.mpp_x, b.mpp_x) && !strcmp(a.mpp_y, b.mpp_y) && !strcmp(a.power, b.power);
    for (int32_t l = 0; same && l < a.levels && l < 32; l++)
        same = a.w[l] == b.w[l] && a.h[l] == b.h[l];
    if (!same)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: the de-identified copy would not open in OpenSlide as the "
                            "original does (format, levels, dimensions or MPP differ); nothing "
                            "written",
                            dst);
    return HP_OK;
}

static hp_status copy_and_edit(int out, const hp_tiff_file *t, const deid_edits *ed,
                               const char *dst, hp_error *err)
{
    size_t bufn = 4u << 20;
    unsigned char *buf = malloc(bufn);
    if (!buf)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    hp_status st = HP_OK;
    uint64_t pos = 0;
    while (!st && pos < t->size) {
        uint64_t n = t->size - pos < bufn ? t->size - pos : bufn;
        st = hp_tiff_pread(t, buf, n, pos, err);
        for (uint64_t w = 0; !st && w < n;) {
            ssize_t r = pwrite(out, buf + w, (size_t)(n - w), (off_t)(pos + w));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                st = hp_error_set(err, HP_ERR_IO, "%s: write failed: %s", dst, strerror(errno));
            else
                w += (uint64_t)r;
        }
        pos += n;
    }
    memset(buf, 0, bufn);
    for (size_t i = 0; !st && i < ed->n; i++) {
        const deid_edit *e = &ed->v[i];
        for (uint64_t w = 0; !st && w < e->len;) {
            uint64_t n = e->len - w;
            if (!e->data && n > bufn)
                n = bufn;
            ssize_t r = pwrite(out, e->data ? e->data + w : buf, (size_t)n, (off_t)(e->pos + w));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                st = hp_error_set(err, HP_ERR_IO, "%s: write failed: %s", dst, strerror(errno));
            else
                w += (uint64_t)r;
        }
    }
    free(buf);
    return st;
}

static void dirs_free(deid_dir *dirs, const hp_tiff_file *t)
{
    if (!dirs)
        return;
    for (size_t i = 0; i < t->n_ifds; i++) {
        for (size_t k = 0; dirs[i].newval && k < t->ifds[i].n; k++)
            free(dirs[i].newval[k]);
        free(dirs[i].newval);
        free(dirs[i].drop);
    }
    free(dirs);
}

hp_status hp_deid_slide(const char *src, const char *dst, int overwrite, hp_deid_report *rep,
                        hp_error *err)
{
    hp_deid_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    hp_tiff_file t = {.fd = -1, .path = src}, v = {.fd = -1, .path = dst};
    deid_dir *dirs = NULL;
    deid_edits ed = {0};
    hp_atomic_file af = {0};
    hp_status st = HP_OK;
    deid_format fmt = DEID_GENERIC;
    struct stat ss, ds;

    if ((st = hp_slide_check_file(src, err)))
        goto fail;
    /* O_NONBLOCK: a FIFO put in place after the check must not block here; fstat below sees the
     * file actually opened. */
    t.fd = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (t.fd < 0 || fstat(t.fd, &ss) != 0) {
        st = hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(ss.st_mode)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: not a regular file", src);
        goto fail;
    }
    if (stat(dst, &ds) == 0) {
        if (ds.st_dev == ss.st_dev && ds.st_ino == ss.st_ino)
            st = hp_error_set(err, HP_ERR_INVALID, "%s: the copy would be the slide itself", dst);
        else if (S_ISDIR(ds.st_mode))
            st = hp_error_set(err, HP_ERR_INVALID, "%s: is a folder, not a file name", dst);
        else if (!overwrite)
            st = hp_error_set(err, HP_ERR_INVALID, "%s: exists (use --overwrite to replace it)",
                              dst);
        if (st)
            goto fail;
    }
    t.size = (uint64_t)ss.st_size;

    unsigned char h[256];
    size_t hn = t.size < sizeof h ? (size_t)t.size : sizeof h;
    if ((st = hp_tiff_pread(&t, h, hn, 0, err)))
        goto fail;
    int is_tiff = hn >= 4 && ((!memcmp(h, "II", 2) && (h[2] == 42 || h[2] == 43) && h[3] == 0) ||
                              (!memcmp(h, "MM", 2) && h[2] == 0 && (h[3] == 42 || h[3] == 43)));
    if (!is_tiff) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: is %s; " SUPPORTED, src,
                          sniff_other(src, h, hn));
        goto fail;
    }
    if ((st = hp_tiff_file_read(&t, err)))
        goto fail;
    if (!(dirs = calloc(t.n_ifds, sizeof *dirs))) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", src);
        goto fail;
    }
    if ((st = classify(&t, dirs, &fmt, rep, err)))
        goto fail;
    rep->bigtiff = t.big;
    rep->big_endian = t.be;
    rep->directories_in = (int)t.n_ifds;
    for (size_t i = 0; i < t.n_ifds; i++)
        if (!dirs[i].remove)
            rep->directories_out++;
    /* Image data must be inside the file too: a truncated slide is refused here rather than
     * copied. */
    for (size_t i = 0; !st && i < t.n_ifds; i++) {
        uint64_t *o, *l;
        size_t n;
        st = hp_tiff_data_ranges(&t, &t.ifds[i], &o, &l, &n, err);
        free(o);
        free(l);
        if (!st && !dirs[i].remove)
            st = decide(&t, i, fmt, &dirs[i], rep, err);
    }
    if (st || (st = deid_plan(&t, dirs, &ed, err)))
        goto fail;

    if ((st = hp_atomic_open(dst, &af, err)))
        goto fail;
    st = copy_and_edit(fileno(af.f), &t, &ed, dst, err);
    if (!st) {
        v.fd = fileno(af.f);
        v.size = t.size;
        st = hp_tiff_file_read(&v, err);
        if (!st)
            st = verify_copy(&v, fmt, rep->directories_out, dst, err);
        v.fd = -1;
    }
    if (!st)
        st = check_openslide(src, af.tmp, dst, err);
    hp_status fst = hp_atomic_finish(dst, &af, st == HP_OK, err);
    if (!st)
        st = fst;
    if (st)
        goto fail;
    hp_tiff_file_free(&v);
    dirs_free(dirs, &t);
    hp_tiff_file_free(&t);
    deid_edits_free(&ed);
    close(t.fd);
    return HP_OK;

fail:
    hp_tiff_file_free(&v);
    dirs_free(dirs, &t);
    hp_tiff_file_free(&t);
    deid_edits_free(&ed);
    if (t.fd >= 0)
        close(t.fd);
    return st;
}
