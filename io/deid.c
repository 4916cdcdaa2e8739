/* `histoplan deid`: the format decisions (which directories are associated images, which text is
 * identifying) and the copy, edit, sync and rename of the output. The TIFF reading and the
 * removal plan live in io/deid_tiff.c, the Philips XML in io/deid_philips.c. */
#include "io/deid.h"

#include <errno.h>
#include <fcntl.h>
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

typedef enum { FMT_GENERIC, FMT_APERIO, FMT_NDPI, FMT_PHILIPS } deid_format;

static const struct {
    uint16_t tag;
    const char *name;
    int ndpi_only;
} text_tags[] = {
    {269, "DocumentName", 0},
    {285, "PageName", 0},
    {306, "DateTime", 0},
    {315, "Artist", 0},
    {316, "HostComputer", 0},
    {65427, "NDPI SlideLabel", 1},
    {65442, "NDPI ScannerSerialNumber", 1},
    {65468, "NDPI Barcode", 1},
};

/* EXIF sub-directory tags that carry times, owners, serial numbers or free text. */
static const struct {
    uint16_t tag;
    const char *name;
} exif_tags[] = {
    {36867, "EXIF DateTimeOriginal"}, {36868, "EXIF DateTimeDigitized"},
    {36880, "EXIF OffsetTime"},       {36881, "EXIF OffsetTimeOriginal"},
    {36882, "EXIF OffsetTimeDigitized"}, {37510, "EXIF UserComment"},
    {42016, "EXIF ImageUniqueID"},    {42032, "EXIF CameraOwnerName"},
    {42033, "EXIF BodySerialNumber"}, {42037, "EXIF LensSerialNumber"},
};

/* Keys of an Aperio ImageDescription ("|Key = value|") whose values identify a patient, a case,
 * an operator, a scanner or the time of the scan. */
static const char *const aperio_fields[] = {
    "Filename", "Date",    "Time", "User",      "ScanScope ID", "ImageID", "Barcode", "Title",
    "Rack",     "Slide",   "DSR ID", "Patient", "Accession",    "Case",    "Specimen", "Operator",
};

void hp_deid_item_text(const hp_deid_item *it, char *buf, size_t n)
{
    switch (it->action) {
    case HP_DEID_REMOVED_IMAGE: snprintf(buf, n, "removed %s image", it->name); break;
    case HP_DEID_BLANKED_FIELD:
        snprintf(buf, n, "blanked ImageDescription field %s", it->name);
        break;
    case HP_DEID_BLANKED_TAG: snprintf(buf, n, "blanked TIFF tag %s", it->name); break;
    case HP_DEID_BLANKED_XML: snprintf(buf, n, "blanked XML attribute %s", it->name); break;
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

/* Overwrites every non-NUL byte of a text tag with 'X' (other types: zeros). */
static hp_status blank_tag(const deid_tiff *t, const deid_entry *e, deid_edits *ed, int *changed,
                           hp_error *err)
{
    *changed = 0;
    if (e->nbytes == 0)
        return HP_OK;
    if (e->type != 2 && e->type != 1 && e->type != 7) {
        *changed = 1;
        return deid_edit_add(ed, e->value_pos, e->nbytes, NULL, err);
    }
    char *s;
    size_t len;
    hp_status st = deid_read_string(t, e, &s, &len, err);
    if (st)
        return st;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '\0' && s[i] != 'X')
            s[i] = 'X', *changed = 1;
    if (*changed)
        st = deid_edit_add(ed, e->value_pos, len, s, err);
    free(s);
    return st;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Blanks the values of identifying "Key = value" fields of an Aperio description, in place. */
static int scrub_aperio(char *s, size_t len, hp_deid_report *rep)
{
    int changes = 0;
    size_t end = strnlen(s, len);
    for (size_t a = 0; a < end; a++) {
        if (s[a] != '|')
            continue;
        size_t b = a + 1;
        while (b < end && s[b] != '|')
            b++;
        char *eq = memchr(s + a + 1, '=', b - a - 1);
        if (!eq)
            continue;
        size_t k0 = a + 1, k1 = (size_t)(eq - s), v0 = k1 + 1, v1 = b;
        while (k0 < k1 && is_space(s[k0]))
            k0++;
        while (k1 > k0 && is_space(s[k1 - 1]))
            k1--;
        while (v0 < v1 && is_space(s[v0]))
            v0++;
        while (v1 > v0 && is_space(s[v1 - 1]))
            v1--;
        for (size_t f = 0; f < sizeof aperio_fields / sizeof *aperio_fields; f++) {
            if (strlen(aperio_fields[f]) != k1 - k0 || memcmp(s + k0, aperio_fields[f], k1 - k0))
                continue;
            int hit = 0;
            for (size_t i = v0; i < v1; i++)
                if (s[i] != 'X')
                    s[i] = 'X', hit = 1;
            if (hit) {
                changes++;
                deid_report_add(rep, HP_DEID_BLANKED_FIELD, aperio_fields[f]);
            }
        }
        a = b - 1;
    }
    return changes;
}

/* "label" or "macro" from the line after the first line break of an Aperio description. */
static const char *aperio_associated(const char *desc)
{
    const char *nl = strchr(desc, '\n');
    if (!nl)
        return NULL;
    if (!strncmp(nl + 1, "label", 5) && (nl[6] == ' ' || nl[6] == '\r' || nl[6] == '\0'))
        return "label";
    if (!strncmp(nl + 1, "macro", 5) && (nl[6] == ' ' || nl[6] == '\r' || nl[6] == '\0'))
        return "macro";
    return NULL;
}

/* Decides the format and marks the directories to remove. */
static hp_status classify(deid_tiff *t, deid_format *fmt, hp_deid_report *rep, hp_error *err)
{
    hp_status st = HP_OK;
    char *desc0 = NULL, *soft = NULL;
    size_t len;
    const deid_ifd *d0 = &t->ifds[0];
    const deid_entry *e = deid_find(d0, TAG_IMAGE_DESCRIPTION);
    if (e && (st = deid_read_string(t, e, &desc0, &len, err)))
        return st;
    e = deid_find(d0, TAG_SOFTWARE);
    if (e && (st = deid_read_string(t, e, &soft, &len, err)))
        goto done;
    if (deid_find(d0, TAG_NDPI_FORMAT_FLAG))
        *fmt = FMT_NDPI;
    else if (desc0 && !strncmp(desc0, "Aperio", 6))
        *fmt = FMT_APERIO;
    else if (desc0 && soft && !strncmp(soft, "Philips", 7) && strstr(desc0, "<DataObject"))
        *fmt = FMT_PHILIPS;
    else {
        /* Other vendors keep labels in their own ways; a generic scrub would leave them. */
        const char *v = openslide_detect_vendor(t->path);
        if (v && strcmp(v, "generic-tiff")) {
            st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                              "%s: is an OpenSlide '%s' slide; " SUPPORTED,
                              t->path, v);
            goto done;
        }
        *fmt = FMT_GENERIC;
    }
    if (*fmt == FMT_NDPI && !t->big && t->size >= ((uint64_t)1 << 32)) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: NDPI files of 4 GiB or more (64-bit offset extension) are not "
                          "supported by deid",
                          t->path);
        goto done;
    }
    static const char *const names[] = {"generic-tiff", "aperio", "hamamatsu-ndpi", "philips"};
    snprintf(rep->format, sizeof rep->format, "%s", names[*fmt]);
    for (size_t i = 0; !st && i < t->n_ifds; i++) {
        deid_ifd *d = &t->ifds[i];
        int tiled = deid_find(d, TAG_TILE_WIDTH) != NULL;
        const char *name = NULL;
        if (*fmt == FMT_NDPI) {
            const deid_entry *sl = deid_find(d, TAG_NDPI_SOURCELENS);
            double v;
            if (sl && !(st = deid_read_number(t, sl, &v, err)))
                name = v == -1.0 ? "macro" : v == -2.0 ? "map" : NULL;
        } else if ((*fmt == FMT_APERIO || *fmt == FMT_PHILIPS) && i > 0 && !tiled) {
            const deid_entry *de = deid_find(d, TAG_IMAGE_DESCRIPTION);
            char *s = NULL;
            if (de && !(st = deid_read_string(t, de, &s, &len, err))) {
                if (*fmt == FMT_APERIO)
                    name = aperio_associated(s);
                else if (!strncasecmp(s, "label", 5))
                    name = "label";
                else if (!strncasecmp(s, "macro", 5))
                    name = "macro";
            }
            free(s);
        }
        if (name) {
            d->remove = 1;
            snprintf(d->removed_name, sizeof d->removed_name, "%s", name);
            deid_report_add(rep, HP_DEID_REMOVED_IMAGE, name);
        }
    }
done:
    free(desc0);
    free(soft);
    return st;
}

/* Blanks the identifying EXIF tags and every GPS value of a directory's sub-directories. */
static hp_status plan_subifds(const deid_tiff *t, const deid_ifd *d, deid_edits *ed,
                              hp_deid_report *rep, hp_error *err)
{
    static const uint16_t subs[] = {TAG_EXIF_IFD, TAG_GPS_IFD};
    hp_status st = HP_OK;
    for (size_t s = 0; !st && s < 2; s++) {
        const deid_entry *e = deid_find(d, subs[s]);
        uint64_t *off = NULL;
        if (!e || e->count != 1 || (st = deid_read_uints(t, e, &off, err)))
            continue;
        deid_ifd sub = {0};
        if (off[0] != 0)
            st = deid_read_ifd(t, off[0], 0, &sub, err);
        free(off);
        int changed = 0;
        for (size_t k = 0; !st && k < sub.n; k++) {
            const deid_entry *x = &sub.e[k];
            if (subs[s] == TAG_GPS_IFD) {
                if (x->nbytes)
                    st = deid_edit_add(ed, x->value_pos, x->nbytes, NULL, err);
                changed |= x->nbytes > 0;
                continue;
            }
            for (size_t j = 0; !st && j < sizeof exif_tags / sizeof *exif_tags; j++)
                if (x->tag == exif_tags[j].tag) {
                    int c;
                    st = blank_tag(t, x, ed, &c, err);
                    if (!st && c)
                        deid_report_add(rep, HP_DEID_BLANKED_TAG, exif_tags[j].name);
                }
        }
        if (!st && changed)
            deid_report_add(rep, HP_DEID_BLANKED_TAG, "GPS data");
        free(sub.e);
    }
    return st;
}

/* Plans the text blanking of one kept directory. */
static hp_status plan_text(const deid_tiff *t, const deid_ifd *d, deid_format fmt, deid_edits *ed,
                           hp_deid_report *rep, hp_error *err)
{
    hp_status st = HP_OK;
    for (size_t k = 0; !st && k < sizeof text_tags / sizeof *text_tags; k++) {
        const deid_entry *e = deid_find(d, text_tags[k].tag);
        if (!e || (text_tags[k].ndpi_only && fmt != FMT_NDPI))
            continue;
        int changed;
        st = blank_tag(t, e, ed, &changed, err);
        if (!st && changed)
            deid_report_add(rep, HP_DEID_BLANKED_TAG, text_tags[k].name);
    }
    if (!st)
        st = plan_subifds(t, d, ed, rep, err);
    const deid_entry *e = deid_find(d, TAG_IMAGE_DESCRIPTION);
    if (st || !e || (fmt != FMT_APERIO && fmt != FMT_PHILIPS))
        return st;
    char *s;
    size_t len;
    if ((st = deid_read_string(t, e, &s, &len, err)))
        return st;
    int n = fmt == FMT_APERIO ? scrub_aperio(s, len, rep) : deid_philips_scrub(s, len, rep);
    if (n > 0)
        st = deid_edit_add(ed, e->value_pos, len, s, err);
    free(s);
    return st;
}

static hp_status copy_and_edit(int out, const deid_tiff *t, const deid_edits *ed,
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
        st = deid_pread(t, buf, n, pos, err);
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

hp_status hp_deid_slide(const char *src, const char *dst, int overwrite, hp_deid_report *rep,
                        hp_error *err)
{
    hp_deid_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    deid_tiff t = {.fd = -1, .path = src}, v = {.fd = -1, .path = dst};
    deid_edits ed = {0};
    hp_atomic_file af = {0};
    hp_status st = HP_OK;
    deid_format fmt = FMT_GENERIC;
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
    if ((st = deid_pread(&t, h, hn, 0, err)))
        goto fail;
    int is_tiff = hn >= 4 && ((!memcmp(h, "II", 2) && (h[2] == 42 || h[2] == 43) && h[3] == 0) ||
                              (!memcmp(h, "MM", 2) && h[2] == 0 && (h[3] == 42 || h[3] == 43)));
    if (!is_tiff) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: is %s; " SUPPORTED,
                          src, sniff_other(src, h, hn));
        goto fail;
    }
    if ((st = deid_tiff_read(&t, err)) || (st = classify(&t, &fmt, rep, err)))
        goto fail;
    rep->bigtiff = t.big;
    rep->big_endian = t.be;
    rep->directories_in = (int)t.n_ifds;
    for (size_t i = 0; i < t.n_ifds; i++)
        if (!t.ifds[i].remove)
            rep->directories_out++;
    /* Image data of kept directories must be inside the file too: a truncated slide is refused
     * here rather than copied. */
    for (size_t i = 0; !st && i < t.n_ifds; i++) {
        uint64_t *o, *l;
        size_t n;
        st = deid_data_ranges(&t, &t.ifds[i], &o, &l, &n, err);
        free(o);
        free(l);
        if (!st && !t.ifds[i].remove)
            st = plan_text(&t, &t.ifds[i], fmt, &ed, rep, err);
    }
    if (st || (st = deid_plan_removals(&t, &ed, err)))
        goto fail;

    if ((st = hp_atomic_open(dst, &af, err)))
        goto fail;
    st = copy_and_edit(fileno(af.f), &t, &ed, dst, err);
    if (!st) { /* read the copy back: its chain must hold exactly the kept directories */
        v.fd = fileno(af.f);
        v.size = t.size;
        st = deid_tiff_read(&v, err);
        if (!st && v.n_ifds != (size_t)rep->directories_out)
            st = hp_error_set(err, HP_ERR_INVALID, "%s: the edited copy does not read back", dst);
        v.fd = -1;
    }
    hp_status fst = hp_atomic_finish(dst, &af, st == HP_OK, err);
    if (!st)
        st = fst;
    if (st)
        goto fail;
    deid_tiff_free(&v);
    deid_tiff_free(&t);
    deid_edits_free(&ed);
    close(t.fd);
    return HP_OK;

fail:
    deid_tiff_free(&v);
    deid_tiff_free(&t);
    deid_edits_free(&ed);
    if (t.fd >= 0)
        close(t.fd);
    return st;
}
