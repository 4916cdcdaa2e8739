/* The case file a lab system gives `histoplan report build` (schemas/case.schema.json): the
 * accession number, and optionally patient, specimen, clinical context, preferences and the
 * model the lab asked for. Everything but the accession is optional; what is absent is listed
 * as missing, never filled in.
 *
 * Privacy: error messages name fields, never their values, so a patient identifier never reaches
 * a terminal or a log through an error. */
#ifndef HP_CASE_FILE_H
#define HP_CASE_FILE_H

#include <cjson/cJSON.h>

#include "common/status.h"

typedef struct {
    cJSON *section;        /* the report's "case" object: every field present, null or [] when absent */
    cJSON *facts;          /* for the care-plan rules: age_years, sex, procedure, birads, history,
                              prior_findings, preferences (null / [] when absent) */
    char *accession;       /* the accession number */
    char *requested_model; /* requested_model.name, or NULL */
    char *requested_model_version; /* requested_model.version, or NULL */
    char sha256[65];       /* of the file */
} hp_case_file;

/* Reads and checks `path`. On failure nothing is kept and `err` names the field at fault. */
/* The facts the care-plan rules may test (age_years, sex, procedure, birads, history,
 * prior_findings, preferences), copied from a report's "case" section; NULL when out of memory.
 * The caller frees it with cJSON_Delete. */
cJSON *hp_case_facts(const cJSON *section);

hp_status hp_case_file_load(const char *path, hp_case_file *cf, hp_error *err);

/* Frees what hp_case_file_load allocated; accepts a zeroed struct. */
void hp_case_file_free(hp_case_file *cf);

#endif
