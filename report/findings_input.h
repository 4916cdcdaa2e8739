/* A findings.json (schemas/findings.schema.json, written by `histoplan analyze`) read as input
 * of a report: parsed, hashed, and checked for every member the report uses, so the report
 * builder can rely on their presence, types and ranges: sizes positive and counts whole,
 * probabilities and fractions in 0..1, region boxes and evidence tiles on the slide, region ids
 * distinct (each names its thumbnails), the overlay a regular file inside the findings' folder
 * (no symbolic link on the way). The file itself passes common/json_check.h (no duplicate member
 * names, valid UTF-8). */
#ifndef HP_FINDINGS_INPUT_H
#define HP_FINDINGS_INPUT_H

#include <cjson/cJSON.h>

#include "common/status.h"

typedef struct {
    char *path;      /* as given */
    char *dir;       /* its folder: the images it names are relative to it */
    cJSON *root;     /* the parsed file */
    char sha256[65]; /* of the file's bytes */
} hp_findings_input;

/* Reads and checks `path`. On failure nothing is kept and `err` names the file and the member. */
hp_status hp_findings_input_load(const char *path, hp_findings_input *fi, hp_error *err);

/* Frees what hp_findings_input_load allocated; accepts a zeroed struct. */
void hp_findings_input_free(hp_findings_input *fi);

/* Shorthands for members already checked by hp_findings_input_load. */
const cJSON *hp_fi_get(const cJSON *obj, const char *key);
double hp_fi_num(const cJSON *obj, const char *key);
const char *hp_fi_str(const cJSON *obj, const char *key); /* NULL when null */

#endif
