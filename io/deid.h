/* De-identified copies of whole-slide images.
 *
 * hp_deid_slide copies SLIDE to a temporary beside COPY, edits the copy in place and renames it
 * to COPY; the original is only read and no byte offset moves:
 * - associated label and macro images (and NDPI map images) are unlinked from the TIFF directory
 *   chain and their bytes overwritten with zeros;
 * - every kept directory keeps only the tags on an allow-list of tags that describe how the
 *   pixels are stored (geometry, compression, tiling, colour, resolution; io/deid_tags.c) and
 *   hold the type that tag is defined with; every other tag (DateTime, Artist, Make, Model,
 *   Software, XMP, IPTC, Photoshop, EXIF and GPS directories, SubIFDs, private tags, ...) is
 *   removed from its directory and its value overwritten with zeros;
 * - the texts a format is recognized by are scrubbed instead of removed, by allow-list too: the
 *   Aperio ImageDescription keeps its structural words and the numeric scan-geometry fields
 *   (magnification, MPP), a Philips XML description keeps the attributes that describe the
 *   pixels and their spacing, and the Software tag of Philips and NDPI files keeps the vendor
 *   prefix OpenSlide checks; everything else in them becomes 'X' at the same length.
 * The copy is read back and checked: every remaining tag is on the allow-list, and a slide that
 * OpenSlide opened opens again with the same levels, dimensions, MPP and magnification. Every
 * check on the input is done before anything is written, so a refused or corrupt slide leaves
 * neither COPY nor a temporary behind.
 *
 * Supported: Aperio SVS, Hamamatsu NDPI (files under 4 GiB), Philips TIFF and generic TIFF
 * (classic TIFF and BigTIFF, both byte orders). Anything else is refused with HP_ERR_UNSUPPORTED.
 * The report names what was removed, never the removed values. Thread-safe for distinct files. */
#ifndef HP_DEID_H
#define HP_DEID_H

#include "common/status.h"

typedef enum {
    HP_DEID_REMOVED_IMAGE = 0, /* an associated image: "label", "macro", "map" */
    HP_DEID_BLANKED_FIELD = 1, /* a "Key = value" field of an Aperio ImageDescription */
    HP_DEID_BLANKED_TAG = 2,   /* a TIFF tag's value: "DateTime", "NDPI SlideLabel", "GPS data" */
    HP_DEID_BLANKED_XML = 3,   /* an attribute of a Philips XML ImageDescription */
    HP_DEID_REMOVED_TAG = 4,   /* a TIFF tag taken out of its directory: "XMP", "tag 65000" */
} hp_deid_action;

#define HP_DEID_NAME_MAX 64
#define HP_DEID_MAX_ITEMS 96

typedef struct {
    hp_deid_action action;
    char name[HP_DEID_NAME_MAX];
    int count; /* how many times (one per directory that held it, for example) */
} hp_deid_item;

typedef struct {
    char format[32]; /* "aperio", "hamamatsu-ndpi", "philips", "generic-tiff" */
    int bigtiff;
    int big_endian;
    int directories_in;  /* TIFF directories in the original */
    int directories_out; /* TIFF directories left in the copy */
    int n_items;
    int items_dropped; /* distinct items past HP_DEID_MAX_ITEMS (still blanked, not listed) */
    hp_deid_item items[HP_DEID_MAX_ITEMS];
} hp_deid_report;

/* Writes a de-identified copy of `src` to `dst`. `dst` must not exist unless `overwrite`, and
 * must never be the same file as `src`. `rep` (may be NULL) receives what was removed. */
hp_status hp_deid_slide(const char *src, const char *dst, int overwrite, hp_deid_report *rep,
                        hp_error *err);

/* The sentence a user reads for one item, e.g. "removed label image". */
void hp_deid_item_text(const hp_deid_item *it, char *buf, size_t n);

#endif
