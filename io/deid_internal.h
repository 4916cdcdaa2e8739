/* Internals of io/deid*.c: the formats, the per-directory decisions, the allow-list of tags, the
 * text scrubbers and the list of planned byte edits. The TIFF structure itself is read by
 * io/tiff_dir.h. */
#ifndef HP_DEID_INTERNAL_H
#define HP_DEID_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "io/deid.h"
#include "io/tiff_dir.h"

typedef enum { DEID_GENERIC, DEID_APERIO, DEID_NDPI, DEID_PHILIPS } deid_format;

enum {
    TAG_NDPI_FORMAT_FLAG = 65420,
    TAG_NDPI_SOURCELENS = 65421,
};

/* What happens to one directory of the main chain. */
typedef struct {
    int remove;             /* the whole directory goes: an associated label, macro or map */
    char removed_name[16];  /* "label", "macro", "map" */
    unsigned char *drop;    /* kept directories: per entry, 1 = the entry is removed */
    unsigned char **newval; /* kept directories: per entry, replacement value bytes (same length)
                             * or NULL for unchanged */
} deid_dir;

typedef struct {
    uint64_t pos, len;
    unsigned char *data; /* NULL: write zeros */
} deid_edit;

typedef struct {
    deid_edit *v;
    size_t n, cap;
} deid_edits;

hp_status deid_edit_add(deid_edits *ed, uint64_t pos, uint64_t len, const void *data,
                        hp_error *err);
void deid_edits_free(deid_edits *ed);

/* Plans every byte edit of the copy from the decisions in `dirs` (one per t->ifds): each kept
 * directory rewritten in place with only its kept entries and relinked to the next kept one;
 * replaced values written; removed directories, removed entries' values and the EXIF, GPS and
 * SubIFD trees of removed pointers overwritten with zeros wherever no kept image uses the bytes. */
hp_status deid_plan(const hp_tiff_file *t, const deid_dir *dirs, deid_edits *ed, hp_error *err);

/* The allow-list (io/deid_tags.c): 1 when the entry is kept as it is in a de-identified copy of
 * format `fmt`: a tag that describes geometry, encoding, tiling or resolution, holding the type
 * that tag has (numbers; raw bytes only for JPEGTables and the ICC profile), or a numeric
 * private tag the format's reader needs. Everything else is removed or scrubbed. */
int deid_tag_allowed(deid_format fmt, const hp_tiff_entry *e);
/* The tag's name for reports ("DateTime", "XMP", "tag 65000"); `buf` holds at least 24 bytes. */
const char *deid_tag_name(uint16_t tag, char *buf, size_t n);
/* 1 for tags whose value points to further directories (EXIF, GPS, Interoperability, SubIFDs). */
int deid_tag_is_subifd(uint16_t tag);

/* Aperio ImageDescription (io/deid_aperio.c): keeps the first part's structural words and the
 * numeric values of non-identifying "Key = value" fields, overwrites everything else with 'X'
 * in place (same length). Returns the number of changes. */
int deid_aperio_scrub(char *desc, size_t len, hp_deid_report *rep);
/* "label" or "macro" from an Aperio associated image's description, else NULL. */
const char *deid_aperio_associated(const char *desc);

/* Philips XML ImageDescription (io/deid_philips.c): keeps the attributes OpenSlide needs to read
 * the levels and their pixel spacing, blanks every other attribute value and comment and the
 * label/macro image data, in place (same length); returns the number of changes. */
int deid_philips_scrub(char *xml, size_t len, hp_deid_report *rep);

void deid_report_add(hp_deid_report *rep, hp_deid_action a, const char *name);

#endif
