/* A cohort manifest: the slides `histoplan analyze --manifest FILE` runs, one a line, instead of
 * slide arguments, and the stable shards that split it between cluster jobs (--shard I/N).
 *
 * Two forms, told apart by the first line that is neither blank nor a '#' comment:
 *
 *   CSV (RFC 4180, comma-separated, fields may be "quoted" with "" inside) whose first line is a
 *   header naming the columns in any order: path, slide_id, case, and optionally mpp:
 *       path,slide_id,case,mpp
 *       slides/S-001.svs,S-001,CASE-17,0.25
 *       "slides/with, comma.tif",S-002,CASE-17,
 *
 *   JSON lines (first line starts with '{'): one object a line with the same keys, "mpp" a
 *   number or null or absent:
 *       {"path": "slides/S-001.svs", "slide_id": "S-001", "case": "CASE-17", "mpp": 0.25}
 *
 * Fields: path (the slide file; a relative path is taken from the manifest's own folder, so a
 * manifest and its slides can move together); slide_id (the output folder and findings id: 1-64
 * of A-Z a-z 0-9 _ -, unique in the manifest); case (the case accession recorded in
 * findings.json: 1-128 printable characters); mpp (microns per pixel at level 0 overriding the
 * slide's, HP_SLIDE_MPP_MIN..MAX; empty: the slide's own). Blank lines and lines starting with
 * '#' are ignored. Anything else is refused with the line and the field named; a path or slide
 * id given twice is refused (one slide, one result).
 *
 * Shards: the shard of a slide is 1 + (the first 8 bytes of SHA-256(slide_id), big-endian) mod N.
 * It depends on the slide id and N alone, not on the line order: adding or removing lines never
 * moves the other slides between shards, and shards 1..N together hold each slide exactly once.
 *
 * Not thread-safe per manifest; separate manifests are independent. */
#ifndef HP_CLI_MANIFEST_H
#define HP_CLI_MANIFEST_H

#include "common/status.h"

#define HP_MANIFEST_CASE_MAX 128
#define HP_MANIFEST_SHARDS_MAX 100000

typedef struct {
    char *path;    /* the slide, relative paths joined to the manifest's folder; owned */
    char *slide_id; /* owned */
    char *case_id;  /* owned */
    double mpp;     /* 0: the slide's own */
    int line;       /* 1-based line in the manifest */
} hp_manifest_row;

typedef struct {
    hp_manifest_row *rows; /* owned, in manifest order */
    int n, cap;
    char sha256[65];       /* of the manifest's bytes */
} hp_manifest;

/* Reads and checks the manifest `file` into *m (zeroed by the caller or a previous free). On a
 * bad manifest returns HP_ERR_INVALID with a message "FILE line L: field F: what is wrong";
 * HP_ERR_IO when it cannot be read. *m is then empty. */
hp_status hp_manifest_load(const char *file, hp_manifest *m, hp_error *err);

/* Frees the rows; accepts NULL; *m is empty afterwards. */
void hp_manifest_free(hp_manifest *m);

/* The shard (1..n) of a slide id among n shards. */
int hp_manifest_shard_of(const char *slide_id, int n);

/* Parses "I/N" (1 <= I <= N <= HP_MANIFEST_SHARDS_MAX, plain decimal). Returns 0, or -1. */
int hp_manifest_shard_parse(const char *s, int *i, int *n);

#endif
