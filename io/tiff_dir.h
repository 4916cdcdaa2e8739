/* Private to io/: a bounds-checked reader of a TIFF file's directory structure (classic TIFF and
 * BigTIFF, either byte order), independent of libtiff. It reports what the file says, raw: the
 * count each tag declares, where each value lies, the tile and strip index as stored. libtiff
 * hides some of this (it pads a short tile index with zeros), and the callers need it:
 * de-identification edits the bytes in place (io/deid*.c), and the slide reader checks each
 * level's tile index against its tile grid and against the bytes in the file (io/slide_index.c).
 * Every offset is checked against the file size before it is used. Thread-safe for distinct
 * hp_tiff_file values. */
#ifndef HP_TIFF_DIR_H
#define HP_TIFF_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

enum {
    HP_TIFFTAG_IMAGE_WIDTH = 256,
    HP_TIFFTAG_IMAGE_LENGTH = 257,
    HP_TIFFTAG_IMAGE_DESCRIPTION = 270,
    HP_TIFFTAG_STRIP_OFFSETS = 273,
    HP_TIFFTAG_SAMPLES_PER_PIXEL = 277,
    HP_TIFFTAG_ROWS_PER_STRIP = 278,
    HP_TIFFTAG_STRIP_BYTE_COUNTS = 279,
    HP_TIFFTAG_PLANAR_CONFIG = 284,
    HP_TIFFTAG_SOFTWARE = 305,
    HP_TIFFTAG_TILE_WIDTH = 322,
    HP_TIFFTAG_TILE_LENGTH = 323,
    HP_TIFFTAG_TILE_OFFSETS = 324,
    HP_TIFFTAG_TILE_BYTE_COUNTS = 325,
    HP_TIFFTAG_SUB_IFDS = 330,
    HP_TIFFTAG_EXIF_IFD = 34665,
    HP_TIFFTAG_GPS_IFD = 34853,
    HP_TIFFTAG_INTEROP_IFD = 40965,
};

typedef struct {
    uint16_t tag, type;
    uint64_t count;
    uint64_t value_pos; /* file offset of the value bytes (inside the entry when they fit) */
    uint64_t nbytes;    /* count * size of type; 0 for an unknown type */
    int inline_value;   /* the value sits in the entry itself */
} hp_tiff_entry;

typedef struct {
    uint64_t offset;   /* where the directory starts */
    uint64_t bytes;    /* size of the directory itself (count, entries, next pointer) */
    uint64_t link_pos; /* where the pointer to this directory is stored (header or previous) */
    uint64_t next;
    size_t n;
    hp_tiff_entry *e;
} hp_tiff_ifd;

typedef struct {
    int fd;           /* open for reading; owned by the caller */
    const char *path; /* for messages */
    uint64_t size;    /* the file's size: nothing past it is read */
    int big, be;      /* BigTIFF; big-endian */
    hp_tiff_ifd *ifds;
    size_t n_ifds;
} hp_tiff_file;

/* Bytes per value of a TIFF field type; 0 for a type this reader does not know. */
uint64_t hp_tiff_type_size(uint16_t type);

/* Reads the header and the whole main directory chain (fd, path and size set by the caller);
 * validates every directory and every out-of-line value against the file size and refuses
 * loops. Free with hp_tiff_file_free (which does not close fd). */
hp_status hp_tiff_file_read(hp_tiff_file *t, hp_error *err);
void hp_tiff_file_free(hp_tiff_file *t);

/* One directory at `off` (an EXIF or GPS sub-directory, for example); free d->e after use. */
hp_status hp_tiff_read_ifd(const hp_tiff_file *t, uint64_t off, uint64_t link_pos, hp_tiff_ifd *d,
                           hp_error *err);

const hp_tiff_entry *hp_tiff_find(const hp_tiff_ifd *d, uint16_t tag);
/* Reads `n` bytes at `pos` (must be inside the file). */
hp_status hp_tiff_pread(const hp_tiff_file *t, void *buf, uint64_t n, uint64_t pos, hp_error *err);
/* An ASCII/BYTE/UNDEFINED value as a NUL-terminated malloc'd string (caller frees). */
hp_status hp_tiff_read_string(const hp_tiff_file *t, const hp_tiff_entry *e, char **out,
                              size_t *len, hp_error *err);
/* An unsigned integer array (SHORT, LONG, LONG8, IFD, IFD8); caller frees *out. */
hp_status hp_tiff_read_uints(const hp_tiff_file *t, const hp_tiff_entry *e, uint64_t **out,
                             hp_error *err);
/* The first value of a numeric tag. */
hp_status hp_tiff_read_number(const hp_tiff_file *t, const hp_tiff_entry *e, double *out,
                              hp_error *err);
/* The first value of an integer tag, or `dflt` when the tag is absent. */
hp_status hp_tiff_get_uint(const hp_tiff_file *t, const hp_tiff_ifd *d, uint16_t tag,
                           uint64_t dflt, uint64_t *out, hp_error *err);
/* The image data ranges (strips or tiles) of a directory, each checked against the file size;
 * the offsets and byte counts must have the same count. */
hp_status hp_tiff_data_ranges(const hp_tiff_file *t, const hp_tiff_ifd *d, uint64_t **offs,
                              uint64_t **lens, size_t *n, hp_error *err);

#endif
