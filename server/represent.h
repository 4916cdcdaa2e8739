/* The API's JSON shapes of jobs and batches (schemas/api.openapi.yaml: Job, Batch). What a
 * viewer sees depends on whose the job is: the slide's path (or upload hash) and the callback URL
 * only go back to the token that submitted them. */
#ifndef HP_SERVER_REPRESENT_H
#define HP_SERVER_REPRESENT_H

#include <cjson/cJSON.h>

#include "server/store.h"

/* The result files a succeeded job offers, in the order the API lists them. */
extern const char *const HP_RESULT_FILES[];
extern const int HP_N_RESULT_FILES;

cJSON *hp_represent_job(const hp_job_row *j, int owner, int64_t now);
cJSON *hp_represent_batch(const hp_batch_row *b, const hp_job_row *jobs, int n, int owner,
                          int64_t now);

#endif
