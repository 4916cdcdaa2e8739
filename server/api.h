/* The handle stage: one function per route (server/router.c's table). Each reads the parsed
 * request (route parameters, JSON body, token) and sets a response (server/request.h). */
#ifndef HP_SERVER_API_H
#define HP_SERVER_API_H

#include "server/request.h"

void hp_api_health(hp_request *r);         /* server/api_admin.c */
void hp_api_metrics(hp_request *r);
void hp_api_tokens_list(hp_request *r);
void hp_api_tokens_create(hp_request *r);
void hp_api_token_revoke(hp_request *r);

void hp_api_batch_create(hp_request *r);   /* server/api_batches.c */
void hp_api_batch_get(hp_request *r);
void hp_api_batch_cancel(hp_request *r);
void hp_api_batch_deliveries(hp_request *r);

void hp_api_jobs_list(hp_request *r);      /* server/api_jobs.c */
void hp_api_job_get(hp_request *r);
void hp_api_job_cancel(hp_request *r);

void hp_api_job_result(hp_request *r);     /* server/api_results.c */

void hp_api_upload(hp_request *r);         /* server/api_uploads.c */

void hp_api_case_report_build(hp_request *r); /* server/api_cases.c */
void hp_api_case_report_get(hp_request *r);
void hp_api_case_sign(hp_request *r);     /* server/api_case_sign.c */

void hp_api_worklist(hp_request *r);       /* server/api_worklist.c */

void hp_api_review_get(hp_request *r);     /* server/api_review.c */
void hp_api_review_put(hp_request *r);
void hp_api_annotation_add(hp_request *r);
void hp_api_annotation_delete(hp_request *r);
void hp_api_job_review_geojson(hp_request *r);
void hp_api_case_review_geojson(hp_request *r);

void hp_api_slide_dzi(hp_request *r);     /* server/api_tiles.c */
void hp_api_slide_tile(hp_request *r);

void hp_api_heatmap_list(hp_request *r);  /* server/api_heatmap_tiles.c */
void hp_api_heatmap_dzi(hp_request *r);
void hp_api_heatmap_tile(hp_request *r);

void hp_api_session_create(hp_request *r); /* server/api_session.c */
void hp_api_session_get(hp_request *r);
void hp_api_session_delete(hp_request *r);

void hp_api_web_redirect(hp_request *r);   /* server/api_web.c */
void hp_api_web_index(hp_request *r);
void hp_api_web_file(hp_request *r);
void hp_api_web_dir_file(hp_request *r);

void hp_api_iiif_base(hp_request *r);     /* server/api_iiif.c */
void hp_api_iiif_info(hp_request *r);
void hp_api_iiif_image(hp_request *r);

/* Shared by the handlers (server/api_common.c). */
struct hp_db;
/* Takes a store connection, or answers 503 and returns NULL. */
struct hp_db *hp_api_db(hp_request *r);
void hp_api_db_done(hp_request *r, struct hp_db *db);
/* Answers 503 for a store error (the detail is logged, not sent). */
void hp_api_store_error(hp_request *r, const hp_error *err);
/* Loads the job named by the route's first parameter, checking that the token may see it
 * (a submitter only its own; 404 otherwise). 1 loaded, 0 answered. */
int hp_api_load_job(hp_request *r, struct hp_db *db, hp_job_row *job);
int hp_api_load_batch(hp_request *r, struct hp_db *db, hp_batch_row *b);
/* The ?state= filter of a job list: 1 (*state NULL when absent), or 0 (answered 400). */
int hp_api_state_query(hp_request *r, const char **state);
/* An accession number as the API takes it in a path: 1 to 64 characters, no control ones. */
int hp_api_valid_accession(const char *s);
/* Replaces paths under the data folder in a message from the report code by their role ("the
 * case file", "a findings file"): clients are not told the server's layout. */
void hp_api_scrub_paths(char *msg, const char *data_dir);
/* The token may see slide paths of this job (its own). */
int hp_api_owns(const hp_request *r, const char *token_id);

#endif
