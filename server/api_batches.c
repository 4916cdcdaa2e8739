/* POST /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel,
 * GET /v1/batches/{id}/deliveries.
 *
 * A submission is validated completely before its idempotency key is touched, so a refused
 * request never uses up a key; then the key is claimed, and the batch, its jobs and the stored
 * answer are written in one transaction. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/slide.h"
#include "report/canonical_json.h"
#include "server/api.h"
#include "server/batch_validate.h"
#include "server/ids.h"
#include "server/represent.h"
#include "server/service_internal.h"

static int valid_idem_key(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n < 1 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
            return 0;
    return 1;
}

/* The batch as it is at creation, for the 201 answer (also stored under the idempotency key). */
static cJSON *created_batch(const hp_request *r, const hp_batch_spec *b, int64_t now)
{
    hp_batch_row br = {.id = (char *)b->batch_id, .token_id = (char *)b->token_id,
                       .model = (char *)b->model, .options = (char *)b->options,
                       .callback_url = (char *)b->callback_url, .n_jobs = b->n_jobs,
                       .created_ms = now};
    hp_job_row *jobs = calloc((size_t)b->n_jobs, sizeof *jobs);
    if (!jobs)
        return NULL;
    for (int i = 0; i < b->n_jobs; i++) {
        const hp_job_spec *s = &b->jobs[i];
        hp_job_row *j = &jobs[i];
        j->id = b->job_ids[i];
        j->batch_id = (char *)b->batch_id;
        j->token_id = (char *)b->token_id;
        j->state = "queued";
        j->source = (char *)s->source;
        j->slide_path = (char *)s->slide_path;
        j->slide_id = (char *)s->slide_id;
        j->accession = (char *)s->accession;
        j->mpp = s->mpp;
        j->idx = i;
        j->max_attempts = b->max_attempts;
        j->created_ms = now;
    }
    cJSON *o = hp_represent_batch(&br, jobs, b->n_jobs, hp_api_owns(r, b->token_id), now);
    free(jobs); /* the strings belong to the spec */
    return o;
}

void hp_api_batch_create(hp_request *r)
{
    hp_service *svc = r->svc;
    const char *key = hp_request_header(r, "Idempotency-Key");
    if (!key) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, "Idempotency-Key",
                           "POST /v1/batches needs an Idempotency-Key header (any unique string "
                           "per submission, reused on retries)");
        return;
    }
    if (!valid_idem_key(key)) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, "Idempotency-Key",
                           "the Idempotency-Key is 1 to 255 visible ASCII characters");
        return;
    }
    if (!r->json) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, NULL, "the body is a JSON object describing "
                                                         "the batch");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_batch_request br;
    hp_error err = {0};
    char *canon = NULL, *resp_text = NULL, *stored = NULL;
    hp_batch_request_init(&br);
    /* validate */
    if (!hp_batch_validate(svc, db, &r->token, r->json, &br)) {
        hp_respond_problem(r, br.status == 413   ? HP_PROB_TOO_LARGE
                              : br.status == 503 ? HP_PROB_UNAVAILABLE
                                                 : HP_PROB_VALIDATION,
                           br.field, "%s", br.why);
        goto done;
    }
    /* idempotency: the key and the canonical form of the body */
    canon = hp_json_canonicalize(r->json, NULL, &err);
    if (!canon) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, NULL, "the body cannot be canonicalized: %s",
                           err.msg);
        goto done;
    }
    char body_sha[65];
    hp_sha256_hex(canon, strlen(canon), body_sha);
    hp_idem_outcome oc;
    int status = 0;
    if (hp_store_idem_begin(db, r->token.id, key, body_sha, &oc, &status, &stored, &err) != HP_OK) {
        hp_api_store_error(r, &err);
        goto done;
    }
    if (oc == HP_IDEM_PENDING) {
        hp_respond_header(r, "Retry-After", "1");
        hp_respond_problem(r, HP_PROB_IN_PROGRESS, "Idempotency-Key",
                           "a request with this Idempotency-Key is still being handled; retry");
        goto done;
    }
    if (oc == HP_IDEM_MISMATCH) {
        hp_respond_problem(r, HP_PROB_KEY_REUSED, "Idempotency-Key",
                           "this Idempotency-Key was used with a different body; use a new key "
                           "for a new batch");
        goto done;
    }
    if (oc == HP_IDEM_REPLAY) {
        hp_respond_header(r, "Idempotent-Replayed", "true");
        cJSON *o = cJSON_Parse(stored);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (cJSON_IsString(id)) {
            char loc[64];
            snprintf(loc, sizeof loc, "/v1/batches/%s", id->valuestring);
            hp_respond_header(r, "Location", loc);
        }
        cJSON_Delete(o);
        hp_respond_text(r, status, "application/json", stored, strlen(stored));
        goto done;
    }
    /* handle: ids, the answer, and one transaction */
    int64_t now = hp_now_ms();
    char batch_id[HP_ID_LEN + 1];
    hp_id_new('b', batch_id);
    for (int i = 0; i < br.n; i++)
        hp_id_new('j', br.job_ids[i]);
    hp_batch_spec spec = {.batch_id = batch_id, .token_id = r->token.id, .model = svc->model_ref,
                          .options = br.options_text, .callback_url = br.callback_url,
                          .max_attempts = svc->cfg.max_attempts, .jobs = br.jobs,
                          .job_ids = br.job_ids, .n_jobs = br.n, .idem_key = key,
                          .response_status = 201};
    cJSON *answer = created_batch(r, &spec, now);
    resp_text = answer ? cJSON_PrintUnformatted(answer) : NULL;
    cJSON_Delete(answer);
    if (!resp_text) {
        hp_store_idem_abandon(db, r->token.id, key);
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "out of memory");
        goto done;
    }
    spec.response = resp_text;
    if (hp_store_batch_create(db, &spec, now, &err) != HP_OK) {
        hp_store_idem_abandon(db, r->token.id, key);
        hp_api_store_error(r, &err);
        goto done;
    }
    hp_service_wake(svc);
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/batches/%s", batch_id);
    hp_respond_header(r, "Location", loc);
    hp_respond_text(r, 201, "application/json", resp_text, strlen(resp_text));
done:
    hp_batch_request_free(&br);
    free(canon);
    free(stored);
    free(resp_text);
    hp_api_db_done(r, db);
}

static void respond_batch(hp_request *r, hp_db *db, hp_batch_row *b, int status)
{
    hp_job_row *jobs = NULL;
    int n = 0;
    hp_error err = {0};
    if (hp_store_batch_jobs(db, b->id, &jobs, &n, &err) != HP_OK) {
        hp_api_store_error(r, &err);
        return;
    }
    hp_respond_json(r, status,
                    hp_represent_batch(b, jobs, n, hp_api_owns(r, b->token_id), hp_now_ms()));
    hp_store_jobs_free(jobs, n);
}

void hp_api_batch_get(hp_request *r)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_batch_row b;
    if (hp_api_load_batch(r, db, &b)) {
        respond_batch(r, db, &b, 200);
        hp_batch_row_free(&b);
    }
    hp_api_db_done(r, db);
}

void hp_api_batch_cancel(hp_request *r)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_batch_row b;
    hp_error err = {0};
    if (!hp_api_load_batch(r, db, &b))
        goto out;
    if (b.done_ms > 0) {
        hp_respond_problem(r, HP_PROB_CONFLICT, NULL,
                           "the batch is done: every job has already ended");
    } else {
        int n = 0;
        if (hp_store_batch_cancel(db, b.id, r->token.id, hp_now_ms(), &n, &err) != HP_OK)
            hp_api_store_error(r, &err);
        else {
            hp_batch_row_free(&b);
            if (hp_store_batch_get(db, r->params[0], &b, &err) == 1)
                respond_batch(r, db, &b, 200);
            else
                hp_api_store_error(r, &err);
            hp_service_wake(r->svc);
        }
    }
    hp_batch_row_free(&b);
out:
    hp_api_db_done(r, db);
}

void hp_api_batch_deliveries(hp_request *r)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_batch_row b;
    hp_error err = {0};
    if (hp_api_load_batch(r, db, &b)) {
        cJSON *arr = NULL;
        if (hp_store_deliveries(db, b.id, &arr, &err) != HP_OK)
            hp_api_store_error(r, &err);
        else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "batch_id", b.id);
            cJSON_AddItemToObject(o, "deliveries", arr);
            hp_respond_json(r, 200, o);
        }
        hp_batch_row_free(&b);
    }
    hp_api_db_done(r, db);
}
