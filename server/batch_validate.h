/* The body of POST /v1/batches, checked field by field into job specs (server/store.h), with
 * the first refusal named by its JSON Pointer.
 *
 * Slide paths are checked lexically and never touched: absolute, no "." or ".." segment, no
 * control characters, inside one of the --slide-root folders. Whether the file exists is not
 * looked at here (the answer would let a client probe the file system); a missing or unreadable
 * slide fails its job. Uploads must have been uploaded by the same token. */
#ifndef HP_SERVER_BATCH_VALIDATE_H
#define HP_SERVER_BATCH_VALIDATE_H

#include <cjson/cJSON.h>

#include "server/db.h"
#include "server/store.h"

struct hp_service;

typedef struct {
    hp_job_spec *jobs;
    char (*job_ids)[40];
    int n;
    char *options_text;  /* canonical JSON of "options" ({} when absent) */
    char *callback_url;  /* NULL when absent */
    /* On refusal: */
    int status;          /* 422, or 413 for too many slides */
    char field[128];     /* JSON Pointer */
    char why[512];
} hp_batch_request;

void hp_batch_request_init(hp_batch_request *b);
void hp_batch_request_free(hp_batch_request *b);

/* 1 valid (b filled), 0 refused (b->status, field, why), also on a store error (why says so). */
int hp_batch_validate(struct hp_service *svc, hp_db *db, const hp_token_info *tok,
                      const cJSON *body, hp_batch_request *b);

/* Whether `path` is, lexically, an absolute normalized path inside `root` (absolute, no
 * trailing '/'). Exposed for tests and the fuzz harness. */
int hp_path_inside(const char *path, const char *root);

#endif
