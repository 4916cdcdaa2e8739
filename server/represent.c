/* server/represent.h. */
#include "server/represent.h"

#include <stdio.h>
#include <string.h>

#include "common/utc_time.h"

const char *const HP_RESULT_FILES[] = {"findings.json", "heatmap.tiff", "regions.geojson",
                                       "regions.xml",   "overlay.png",  "tiles.csv"};
const int HP_N_RESULT_FILES = 6;

static void add_time(cJSON *o, const char *k, int64_t ms)
{
    char t[HP_UTC_TIME_LEN];
    if (ms <= 0 || hp_utc_format((time_t)(ms / 1000), t)) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    cJSON_AddStringToObject(o, k, t);
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static void add_seconds(cJSON *o, const char *k, int64_t from, int64_t to)
{
    if (from > 0 && to >= from)
        cJSON_AddNumberToObject(o, k, (double)(to - from) / 1000.0);
    else
        cJSON_AddNullToObject(o, k);
}

cJSON *hp_represent_job(const hp_job_row *j, int owner, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "batch_id", j->batch_id);
    cJSON_AddNumberToObject(o, "index", j->idx);
    cJSON_AddStringToObject(o, "state", j->state);
    cJSON_AddNumberToObject(o, "attempts", j->attempts);
    cJSON_AddNumberToObject(o, "max_attempts", j->max_attempts);
    cJSON_AddBoolToObject(o, "cancel_requested", j->cancel_requested != 0);

    cJSON *s = cJSON_AddObjectToObject(o, "slide");
    cJSON_AddStringToObject(s, "source", j->source);
    int upload = !strcmp(j->source, "upload");
    add_str_or_null(s, "path", owner && !upload ? j->slide_path : NULL);
    add_str_or_null(s, "upload", owner && upload ? j->slide_path : NULL);
    add_str_or_null(s, "slide_id", j->result_slide_id ? j->result_slide_id : j->slide_id);
    add_str_or_null(o, "case", j->accession);
    if (j->mpp > 0)
        cJSON_AddNumberToObject(o, "mpp", j->mpp);
    else
        cJSON_AddNullToObject(o, "mpp");

    cJSON *p = cJSON_AddObjectToObject(o, "progress");
    cJSON_AddNumberToObject(p, "tiles_done", (double)j->tiles_done);
    cJSON_AddNumberToObject(p, "tiles_total", (double)j->tiles_total);
    int running = !strcmp(j->state, "running");
    double frac = !strcmp(j->state, "succeeded") ? 1.0
                  : j->tiles_total > 0           ? (double)j->tiles_done / (double)j->tiles_total
                                                 : 0.0;
    cJSON_AddNumberToObject(p, "fraction", frac);
    /* ETA from this run's own pace: the tiles left at the rate of the tiles done. */
    if (running && j->tiles_done > 0 && j->tiles_total >= j->tiles_done && now > j->run_started_ms)
        cJSON_AddNumberToObject(p, "eta_seconds",
                                (double)(now - j->run_started_ms) / 1000.0 *
                                    (double)(j->tiles_total - j->tiles_done) / (double)j->tiles_done);
    else
        cJSON_AddNullToObject(p, "eta_seconds");

    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    add_time(t, "created", j->created_ms);
    add_time(t, "started", j->started_ms);
    add_time(t, "finished", j->finished_ms);
    add_seconds(t, "queued_seconds", j->created_ms, j->started_ms > 0 ? j->started_ms : now);
    add_seconds(t, "run_seconds", j->run_started_ms,
                j->finished_ms > 0 ? j->finished_ms : (running ? now : 0));

    if (!strcmp(j->state, "failed") || (j->error && !strcmp(j->state, "queued"))) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", j->error ? j->error : "failed");
        cJSON_AddBoolToObject(e, "permanent", j->error_permanent != 0);
    } else {
        cJSON_AddNullToObject(o, "error");
    }
    if (!strcmp(j->state, "succeeded")) {
        cJSON *r = cJSON_AddObjectToObject(o, "results");
        for (int k = 0; k < HP_N_RESULT_FILES; k++) {
            char url[128];
            snprintf(url, sizeof url, "/v1/jobs/%s/%s", j->id, HP_RESULT_FILES[k]);
            cJSON_AddStringToObject(r, HP_RESULT_FILES[k], url);
        }
    } else {
        cJSON_AddNullToObject(o, "results");
    }
    return o;
}

cJSON *hp_represent_batch(const hp_batch_row *b, const hp_job_row *jobs, int n, int owner,
                          int64_t now)
{
    static const char *const STATES[5] = {"queued", "running", "succeeded", "failed", "cancelled"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", b->id);
    cJSON_AddStringToObject(o, "state", b->done_ms > 0 ? "done" : "active");
    add_time(o, "created", b->created_ms);
    add_time(o, "done_at", b->done_ms);
    cJSON_AddStringToObject(o, "model", b->model);
    cJSON *opts = cJSON_Parse(b->options);
    cJSON_AddItemToObject(o, "options", opts ? opts : cJSON_CreateObject());
    add_str_or_null(o, "callback_url", owner ? b->callback_url : NULL);
    cJSON *c = cJSON_AddObjectToObject(o, "counts");
    int64_t counts[5] = {0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 5; k++)
            counts[k] += !strcmp(jobs[i].state, STATES[k]);
    for (int k = 0; k < 5; k++)
        cJSON_AddNumberToObject(c, STATES[k], (double)counts[k]);
    cJSON *arr = cJSON_AddArrayToObject(o, "jobs");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, hp_represent_job(&jobs[i], owner, now));
    return o;
}
