/* FHIR R4 rendering of a report.json (schemas/report.schema.json).
 *
 * The bundle (type "collection") holds the Patient, the Specimen, the model as a Device,
 * one Observation per case finding (suggested category, largest invasive focus, in situ extent,
 * tissue area, tissue composition, uncertainty, each QC flag), the DiagnosticReport, one draft
 * ServiceRequest per orderable service of the care plan, the draft CarePlan and a Provenance
 * naming the Device as author and, for a signed report, the pathologist as verifier with the
 * signature. Every resource's fullUrl is urn:uuid:<uuid> derived from the report id and the
 * resource's role, so the same report gives the same bundle byte for byte. Nothing is invented:
 * what the report leaves null is left out of the bundle.
 *
 * Thread-safe: no shared state. */
#ifndef HP_REPORT_FHIR_H
#define HP_REPORT_FHIR_H

#include <cjson/cJSON.h>

#include "common/status.h"

/* The FHIR R4 Bundle rendered from `report` (a parsed report.json). `signature` is NULL for an
 * unsigned report, else {"algorithm":"Ed25519","report_sha256","signature","public_key",
 * "key_fingerprint","pathologist_id","signed_at"}. The caller frees the result with
 * cJSON_Delete(). Returns NULL with `err` set when a member the bundle needs is missing or has
 * the wrong type (the message names it by JSON Pointer), or when a value cannot be expressed in
 * FHIR (a malformed date). Never modifies its arguments. */
cJSON *hp_report_fhir_bundle(const cJSON *report, const cJSON *signature, hp_error *err);

/* Renders the bundle and writes it to `path` (indented JSON and a newline) through a temporary
 * and a rename, so a failed write leaves nothing under `path`. */
hp_status hp_report_write_fhir(const cJSON *report, const cJSON *signature, const char *path,
                               hp_error *err);

#endif
