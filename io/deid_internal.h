/* Internals of io/deid*.c: a bounds-checked TIFF directory reader and a list of planned edits. */
#ifndef HP_DEID_INTERNAL_H
#define HP_DEID_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "io/deid.h"

enum {
    TAG_DOCUMENT_NAME = 269,
    TAG_IMAGE_DESCRIPTION = 270,
    TAG_STRIP_OFFSETS = 273,
    TAG_PAGE_NAME = 285,
    TAG_STRIP_BYTE_COUNTS = 279,
    TAG_SOFTWARE = 305,
    TAG_DATE_TIME = 306,
    TAG_ARTIST = 315,
    TAG_HOST_COMPUTER = 316,
    TAG_TILE_WIDTH = 322,
    TAG_TILE_OFFSETS = 324,
    TAG_TILE_BYTE_COUNTS = 325,
    TAG_EXIF_IFD = 34665,
    TAG_GPS_IFD = 34853,
    TAG_NDPI_FORMAT_FLAG = 65420,
    TAG_NDPI_SOURCELENS = 65421,
};

typedef struct {
    uint16_t tag, type;
    uint64_t count;
    uint64_t value_pos; /* file offset of the value bytes (inside the entry when they fit) */
    uint64_t nbytes;    /* count * size of type; 0 for an unknown type */
    int inline_value;   /* the value sits in the entry itself */
} deid_entry;

typedef struct {
    uint64_t offset;   /* where the directory starts */
    uint64_t bytes;    /* size of the directory itself (count, entries, next pointer) */
    uint64_t link_pos; /* where the pointer to this directory is stored (header or previous) */
    uint64_t next;
    size_t n;
    deid_entry *e;
    int remove;               /* set by the format logic */
    char removed_name[16];    /* "label", "macro", "map" */
} deid_ifd;

typedef struct {
    int fd;
    const char *path; /* for messages */
    uint64_t size;
    int big, be;
    deid_ifd *ifds;
    size_t n_ifds;
} deid_tiff;

typedef struct {
    uint64_t pos, len;
    unsigned char *data; /* NULL: write zeros */
} deid_edit;

typedef struct {
    deid_edit *v;
    size_t n, cap;
} deid_edits;

/* Reads the header and the whole directory chain of an open file; validates every directory and
 * every out-of-line value against the file size and refuses loops. */
hp_status deid_tiff_read(deid_tiff *t, hp_error *err);
void deid_tiff_free(deid_tiff *t);
/* One directory at `off` (an EXIF or GPS sub-directory, for example); free d->e after use. */
hp_status deid_read_ifd(const deid_tiff *t, uint64_t off, uint64_t link_pos, deid_ifd *d,
                        hp_error *err);

const deid_entry *deid_find(const deid_ifd *d, uint16_t tag);
/* Reads `n` bytes at `pos` (must be inside the file). */
hp_status deid_pread(const deid_tiff *t, void *buf, uint64_t n, uint64_t pos, hp_error *err);
/* An ASCII/BYTE/UNDEFINED value as a NUL-terminated malloc'd string (caller frees). */
hp_status deid_read_string(const deid_tiff *t, const deid_entry *e, char **out, size_t *len,
                           hp_error *err);
/* An unsigned integer array (SHORT, LONG, LONG8, IFD, IFD8); caller frees *out. */
hp_status deid_read_uints(const deid_tiff *t, const deid_entry *e, uint64_t **out, hp_error *err);
/* The first value of a FLOAT/DOUBLE/integer tag. */
hp_status deid_read_number(const deid_tiff *t, const deid_entry *e, double *out, hp_error *err);
/* The image data ranges (strips or tiles) of a directory, checked against the file size. */
hp_status deid_data_ranges(const deid_tiff *t, const deid_ifd *d, uint64_t **offs, uint64_t **lens,
                           size_t *n, hp_error *err);

hp_status deid_edit_add(deid_edits *ed, uint64_t pos, uint64_t len, const void *data,
                        hp_error *err);
void deid_edits_free(deid_edits *ed);

/* Plans the unlinking of every directory marked `remove` and the zeroing of its bytes. */
hp_status deid_plan_removals(const deid_tiff *t, deid_edits *ed, hp_error *err);

void deid_report_add(hp_deid_report *rep, hp_deid_action a, const char *name);

/* Philips XML ImageDescription: blanks identifying attributes and the label/macro image data
 * in `xml` (in place, same length); returns the number of changes. */
int deid_philips_scrub(char *xml, size_t len, hp_deid_report *rep);

#endif
