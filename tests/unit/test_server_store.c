/* The service's job store on SQLite (server/store.h) and its small pure parts:
 *
 * - migrations apply once and a second start applies nothing;
 * - tokens: found by the bearer text, never by anything else; revoked ones are not found;
 * - idempotency keys: new, pending, replay (the stored answer), mismatch, abandon;
 * - leases: claim sets the fence; a heartbeat with an old fence fails; an expired lease is
 *   requeued; a run that lost its lease cannot end the job, the rescuing run can, once;
 *   transient failures back off and give up after max_attempts; a released job keeps its
 *   attempt count; cancelling a queued and a running job;
 * - the batch is done when its last job ends: its callback is in the outbox in the same
 *   transaction, with one row per job end;
 * - the audit chain exports to a log hp_audit_verify accepts, and a changed line is caught;
 * - Standard Webhooks signatures (the spec's example inputs; expected value from Python's hmac);
 * - slide-root containment, Range parsing, the JSON pre-check and routing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/remove_tree.h"
#include "report/audit_log.h"
#include "server/batch_validate.h"
#include "server/body.h"
#include "server/db.h"
#include "server/file_response.h"
#include "server/ids.h"
#include "server/request.h"
#include "server/router.h"
#include "server/store.h"
#include "server/webhook.h"
#include "util/testutil.h"

static int passed;

static int count(hp_db *db, const char *sql)
{
    hp_db_rows *r = NULL;
    hp_error err = {0};
    if (hp_db_exec(db, sql, NULL, 0, &r, NULL, &err) != HP_OK)
        return -1;
    int n = (int)hp_db_get_i64(r, 0, 0);
    hp_db_rows_free(r);
    return n;
}

static void test_migrate_tokens(hp_db *db)
{
    hp_error err = {0};
    int applied = -1;
    CHECK_COUNT(passed, hp_store_migrate(db, &applied, &err) == HP_OK && applied == hp_store_schema_version());
    CHECK_COUNT(passed, hp_store_migrate(db, &applied, &err) == HP_OK && applied == 0);
    char text[HP_TOKEN_TEXT_MAX];
    hp_token_info info, found;
    CHECK_COUNT(passed, hp_store_token_create(db, HP_ROLE_SUBMITTER, "lab", "test", text, &info,
                                              &err) == HP_OK);
    CHECK_COUNT(passed, strncmp(text, "hp_", 3) == 0 && strlen(text) == 46);
    CHECK_COUNT(passed, strncmp(info.webhook_secret, "whsec_", 6) == 0);
    CHECK_COUNT(passed, hp_store_token_find(db, text, &found, &err) == 1 &&
                            !strcmp(found.id, info.id) && found.role == HP_ROLE_SUBMITTER);
    /* The hash is stored, not the token. */
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(text)};
    CHECK_COUNT(passed, hp_db_exec(db, "SELECT COUNT(*) FROM tokens WHERE token_sha256 = $1 OR "
                                       "name = $1", p, 1, &r, NULL, &err) == HP_OK &&
                            hp_db_get_i64(r, 0, 0) == 0);
    hp_db_rows_free(r);
    char other[HP_TOKEN_TEXT_MAX];
    snprintf(other, sizeof other, "%s", text);
    other[10] ^= 1;
    CHECK_COUNT(passed, hp_store_token_find(db, other, &found, &err) == 0);
    CHECK_COUNT(passed, hp_store_token_find(db, info.id, &found, &err) == 0);
    CHECK_COUNT(passed, hp_store_token_revoke(db, info.id, "test", &err) == 1);
    CHECK_COUNT(passed, hp_store_token_revoke(db, info.id, "test", &err) == 0);
    CHECK_COUNT(passed, hp_store_token_find(db, text, &found, &err) == 0);
    CHECK_COUNT(passed, hp_store_token_create(db, HP_ROLE_NONE, "x", NULL, text, &info, &err) ==
                            HP_ERR_INVALID);
    CHECK_COUNT(passed, hp_store_token_create(db, HP_ROLE_ADMIN, "", NULL, text, &info, &err) ==
                            HP_ERR_INVALID);
}

/* A batch of n jobs for token `tok`; job ids into ids. */
static void make_batch(hp_db *db, const char *tok, const char *batch, char ids[][40], int n,
                       const char *callback, const char *key)
{
    hp_job_spec js[4];
    for (int i = 0; i < n; i++) {
        js[i] = (hp_job_spec){.source = "path", .slide_path = "/slides/x.svs"};
        hp_id_new('j', ids[i]);
    }
    hp_batch_spec b = {.batch_id = batch, .token_id = tok, .model = "m@1", .options = "{}",
                       .callback_url = callback, .max_attempts = 2, .jobs = js, .job_ids = ids,
                       .n_jobs = n, .idem_key = key, .response_status = 201,
                       .response = "{\"stored\":true}"};
    hp_error err = {0};
    CHECK_COUNT(passed, hp_store_batch_create(db, &b, hp_now_ms(), &err) == HP_OK);
}

static void test_idempotency(hp_db *db, const char *tok)
{
    hp_error err = {0};
    hp_idem_outcome oc;
    int status;
    char *resp = NULL;
    char sha_a[65], sha_b[65];
    memset(sha_a, 'a', 64), sha_a[64] = 0;
    memset(sha_b, 'b', 64), sha_b[64] = 0;
    CHECK_COUNT(passed, hp_store_idem_begin(db, tok, "k1", sha_a, &oc, &status, &resp, &err) ==
                            HP_OK && oc == HP_IDEM_NEW);
    CHECK_COUNT(passed, hp_store_idem_begin(db, tok, "k1", sha_a, &oc, &status, &resp, &err) ==
                            HP_OK && oc == HP_IDEM_PENDING);
    CHECK_COUNT(passed, hp_store_idem_begin(db, tok, "k1", sha_b, &oc, &status, &resp, &err) ==
                            HP_OK && oc == HP_IDEM_MISMATCH);
    char batch[40], ids[2][40];
    hp_id_new('b', batch);
    make_batch(db, tok, batch, ids, 2, NULL, "k1");
    CHECK_COUNT(passed, hp_store_idem_begin(db, tok, "k1", sha_a, &oc, &status, &resp, &err) ==
                            HP_OK && oc == HP_IDEM_REPLAY && status == 201 && resp &&
                            !strcmp(resp, "{\"stored\":true}"));
    free(resp);
    resp = NULL;
    CHECK_COUNT(passed, hp_store_idem_begin(db, tok, "k2", sha_a, &oc, &status, &resp, &err) ==
                            HP_OK && oc == HP_IDEM_NEW);
    hp_store_idem_abandon(db, tok, "k2");
    CHECK_COUNT(passed, hp_store_idem_begin(db, tok, "k2", sha_b, &oc, &status, &resp, &err) ==
                            HP_OK && oc == HP_IDEM_NEW);
    /* A pending key whose request died with its process is free after its pending time. */
    hp_db_value p[1] = {HP_DB_INT(hp_now_ms() - HP_IDEMPOTENCY_PENDING_MS - 1000)};
    hp_db_exec(db, "UPDATE idempotency SET created_ms = $1 WHERE idem_key = 'k2'", p, 1, NULL, NULL,
               &err);
    CHECK_COUNT(passed, hp_store_idem_begin(db, tok, "k2", sha_a, &oc, &status, &resp, &err) ==
                            HP_OK && oc == HP_IDEM_NEW);
    CHECK_COUNT(passed, count(db, "SELECT COUNT(*) FROM batches") == 1);
}

static void test_leases(hp_db *db, const char *tok)
{
    hp_error err = {0};
    hp_lease_config lc = {.lease_ms = 10000, .retry_base_ms = 1000};
    char batch[40], ids[3][40];
    hp_id_new('b', batch);
    make_batch(db, tok, batch, ids, 3, "http://127.0.0.1:9/hook", NULL);
    int64_t now = hp_now_ms() + 1000;
    hp_job_row a, b, c;
    const char *final = NULL;
    /* Jobs of the first batch (from the idempotency test) come first; end them as cancelled. */
    int64_t claimed = 0;
    for (;;) {
        hp_job_row j;
        if (hp_store_job_claim(db, "w_setup", &lc, now, &j, &err) != 1)
            break;
        if (!strcmp(j.batch_id, batch)) {
            /* Give it back: the release does not count the attempt. */
            CHECK_COUNT(passed, hp_store_job_end(db, j.id, j.fence, HP_END_RELEASE, NULL, NULL,
                                                 "stop", 0, &lc, now, &final, &err) == 1);
            hp_job_row_free(&j);
            break;
        }
        hp_store_job_cancel(db, j.id, "test", now, &final, &err);
        hp_store_job_end(db, j.id, j.fence, HP_END_SUCCEEDED, "results/x", "x", NULL, 0, &lc, now,
                         &final, &err);
        CHECK_COUNT(passed, final && !strcmp(final, "cancelled"));
        hp_job_row_free(&j);
        claimed++;
    }
    CHECK_COUNT(passed, claimed == 2);

    CHECK_COUNT(passed, hp_store_job_claim(db, "w_1", &lc, now, &a, &err) == 1);
    CHECK_COUNT(passed, !strcmp(a.id, ids[0]) && a.attempts == 1 && a.fence == 2 &&
                            !strcmp(a.state, "running"));
    CHECK_COUNT(passed, hp_store_job_claim(db, "w_2", &lc, now, &b, &err) == 1 &&
                            !strcmp(b.id, ids[1]) && b.fence == 1);
    CHECK_COUNT(passed, hp_store_job_heartbeat(db, a.id, a.fence, now + 10000, 5, 10, &err) == 1);
    CHECK_COUNT(passed, hp_store_job_heartbeat(db, a.id, a.fence - 1, now + 10000, 5, 10, &err) == 0);
    /* w_2 keeps its lease alive; w_1 stops answering. */
    CHECK_COUNT(passed, hp_store_job_heartbeat(db, b.id, b.fence, now + 30000, 1, 10, &err) == 1);
    CHECK_COUNT(passed, hp_store_requeue_expired(db, &lc, now + 5000, 0, &err) == 0);
    CHECK_COUNT(passed, hp_store_requeue_expired(db, &lc, now + 15000, 0, &err) == 1);
    hp_job_row g;
    CHECK_COUNT(passed, hp_store_job_get(db, a.id, &g, &err) == 1 && !strcmp(g.state, "queued") &&
                            g.not_before > now + 15000);
    hp_job_row_free(&g);
    /* Until its backoff has passed the requeued job waits; the third job goes first. */
    hp_job_row c2;
    CHECK_COUNT(passed, hp_store_job_claim(db, "w_4", &lc, now + 15000, &c2, &err) == 1 &&
                            !strcmp(c2.id, ids[2]));
    CHECK_COUNT(passed, hp_store_job_heartbeat(db, c2.id, c2.fence, now + 60000, 0, 1, &err) == 1);
    /* The rescuing run. */
    CHECK_COUNT(passed, hp_store_job_claim(db, "w_3", &lc, now + 20000, &c, &err) == 1 &&
                            !strcmp(c.id, a.id) && c.fence == a.fence + 1 && c.attempts == 2);
    /* The paused run wakes up: it cannot end the job, nor renew its lease. */
    CHECK_COUNT(passed, hp_store_job_end(db, a.id, a.fence, HP_END_SUCCEEDED, "results/old", "o",
                                         NULL, 0, &lc, now + 21000, &final, &err) == 0);
    CHECK_COUNT(passed, hp_store_job_heartbeat(db, a.id, a.fence, now + 40000, 9, 9, &err) == 0);
    CHECK_COUNT(passed, hp_store_job_end(db, c.id, c.fence, HP_END_SUCCEEDED, "results/new", "n",
                                         NULL, 0, &lc, now + 22000, &final, &err) == 1 &&
                            !strcmp(final, "succeeded"));
    CHECK_COUNT(passed, hp_store_job_end(db, c.id, c.fence, HP_END_SUCCEEDED, "results/new", "n",
                                         NULL, 0, &lc, now + 22000, &final, &err) == 0);
    CHECK_COUNT(passed, hp_store_job_get(db, a.id, &g, &err) == 1 &&
                            !strcmp(g.result_dir, "results/new"));
    hp_job_row_free(&g);
    /* A transient failure backs off, then gives up at max_attempts (2). */
    CHECK_COUNT(passed, hp_store_job_end(db, b.id, b.fence, HP_END_RETRY, NULL, NULL, "device",
                                         0, &lc, now + 23000, &final, &err) == 1 &&
                            !strcmp(final, "queued"));
    hp_job_row b2;
    CHECK_COUNT(passed, hp_store_job_claim(db, "w_2", &lc, now + 23500, &b2, &err) == 0);
    CHECK_COUNT(passed, hp_store_job_claim(db, "w_2", &lc, now + 24100, &b2, &err) == 1 &&
                            !strcmp(b2.id, b.id));
    CHECK_COUNT(passed, hp_store_job_end(db, b2.id, b2.fence, HP_END_RETRY, NULL, NULL, "device",
                                         0, &lc, now + 25000, &final, &err) == 1 &&
                            !strcmp(final, "failed"));
    CHECK_COUNT(passed, hp_store_job_get(db, b.id, &g, &err) == 1 &&
                            strstr(g.error, "gave up after 2 attempts"));
    hp_job_row_free(&g);
    CHECK_COUNT(passed, count(db, "SELECT COUNT(*) FROM batches WHERE done_ms IS NOT NULL") == 1);
    /* A running job whose cancel was asked for ends cancelled; it was the batch's last. */
    const char *res = NULL;
    CHECK_COUNT(passed, hp_store_job_cancel(db, c2.id, "test", now, &res, &err) == HP_OK &&
                            !strcmp(res, "requested"));
    CHECK_COUNT(passed, hp_store_job_end(db, c2.id, c2.fence, HP_END_SUCCEEDED, "results/z", "z",
                                         NULL, 0, &lc, now + 26000, &final, &err) == 1 &&
                            !strcmp(final, "cancelled"));
    CHECK_COUNT(passed, hp_store_job_cancel(db, c2.id, "test", now, &res, &err) == HP_OK &&
                            !strcmp(res, "cancelled-before"));
    CHECK_COUNT(passed, count(db, "SELECT COUNT(*) FROM batches WHERE done_ms IS NOT NULL") == 2);
    /* One callback per job end and one for the batch, written with the state changes. */
    CHECK_COUNT(passed, count(db, "SELECT COUNT(*) FROM outbox") == 4);
    CHECK_COUNT(passed, count(db, "SELECT COUNT(*) FROM outbox WHERE event = 'batch.completed'") == 1);
    hp_outbox_row o;
    CHECK_COUNT(passed, hp_store_outbox_claim(db, hp_now_ms() + 100000, 60000, &o, &err) == 1 &&
                            o.attempts == 1 && strstr(o.payload, "\"type\":\"job."));
    /* Claimed rows are leased: a second sender takes another. */
    hp_outbox_row o2;
    CHECK_COUNT(passed, hp_store_outbox_claim(db, hp_now_ms() + 100000, 60000, &o2, &err) == 1 &&
                            strcmp(o2.id, o.id) != 0);
    CHECK_COUNT(passed, hp_store_outbox_record(db, &o, hp_now_ms(), 500, "refused", 3, 1000,
                                               &err) == HP_OK);
    CHECK_COUNT(passed, hp_store_outbox_record(db, &o2, hp_now_ms(), 204, NULL, 3, 1000,
                                               &err) == HP_OK);
    CHECK_COUNT(passed, count(db, "SELECT COUNT(*) FROM deliveries") == 2);
    CHECK_COUNT(passed, count(db, "SELECT COUNT(*) FROM outbox WHERE delivered_ms IS NOT NULL") == 1);
    hp_outbox_row_free(&o);
    hp_outbox_row_free(&o2);
    hp_job_row_free(&a);
    hp_job_row_free(&b);
    hp_job_row_free(&b2);
    hp_job_row_free(&c);
    hp_job_row_free(&c2);
}

static void test_audit(hp_db *db, const char *dir)
{
    hp_error err = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    size_t n = 0, checked = 0;
    CHECK_COUNT(passed, hp_store_audit_export(db, path, &n, &err) == HP_OK && n > 10);
    CHECK_COUNT(passed, hp_audit_verify(path, &checked, &err) == HP_OK && checked == n);
    hp_db_exec(db, "UPDATE audit SET line = replace(line, '\"job.succeeded\"', '\"job.failed\"') "
                   "WHERE line LIKE '%job.succeeded%'", NULL, 0, NULL, NULL, &err);
    hp_error verr = {0};
    CHECK_COUNT(passed, hp_store_audit_export(db, path, &n, &err) == HP_OK &&
                            hp_audit_verify(path, &checked, &verr) != HP_OK);
}

static void test_pure(void)
{
    hp_error err = {0};
    char sig[128];
    CHECK_COUNT(passed, hp_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                        "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                        "{\"test\": 2432232314}", 20, sig, sizeof sig,
                                        &err) == HP_OK &&
                            !strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    CHECK_COUNT(passed, hp_webhook_sign("nope", "m", 1, "x", 1, sig, sizeof sig, &err) != HP_OK);

    CHECK_COUNT(passed, hp_path_inside("/data/slides/a.svs", "/data/slides"));
    CHECK_COUNT(passed, hp_path_inside("/data/slides/x/a.svs", "/data/slides"));
    CHECK_COUNT(passed, !hp_path_inside("/data/slides", "/data/slides"));
    CHECK_COUNT(passed, !hp_path_inside("/data/slidesX/a.svs", "/data/slides"));
    CHECK_COUNT(passed, !hp_path_inside("/data/slides/../etc/passwd", "/data/slides"));
    CHECK_COUNT(passed, !hp_path_inside("/data/slides/./a.svs", "/data/slides"));
    CHECK_COUNT(passed, !hp_path_inside("/data/slides//a.svs", "/data/slides"));
    CHECK_COUNT(passed, !hp_path_inside("/data/slides/a/", "/data/slides"));
    CHECK_COUNT(passed, !hp_path_inside("data/slides/a.svs", "/data/slides"));
    CHECK_COUNT(passed, hp_path_inside("/a.svs", "/"));

    int64_t off = -1, len = -1;
    CHECK_COUNT(passed, hp_parse_range("bytes=0-9", 100, &off, &len) == 1 && off == 0 && len == 10);
    CHECK_COUNT(passed, hp_parse_range("bytes=90-200", 100, &off, &len) == 1 && len == 10);
    CHECK_COUNT(passed, hp_parse_range("bytes=-5", 100, &off, &len) == 1 && off == 95 && len == 5);
    CHECK_COUNT(passed, hp_parse_range("bytes=-500", 100, &off, &len) == 1 && off == 0);
    CHECK_COUNT(passed, hp_parse_range("bytes=100-", 100, &off, &len) == -1);
    CHECK_COUNT(passed, hp_parse_range("bytes=5-2", 100, &off, &len) == 0);
    CHECK_COUNT(passed, hp_parse_range("bytes=0-1,5-6", 100, &off, &len) == 0);
    CHECK_COUNT(passed, hp_parse_range("items=0-1", 100, &off, &len) == 0);
    CHECK_COUNT(passed, hp_parse_range(NULL, 100, &off, &len) == 0);
    CHECK_COUNT(passed, hp_parse_range("bytes=99999999999999999999-", 100, &off, &len) == 0);

    char why[160];
    CHECK_COUNT(passed, hp_body_json_check("{\"a\": [1, {\"b\": \"[[[[\"}]}", 25, 3, why, sizeof why) == 0);
    CHECK_COUNT(passed, hp_body_json_check("[[[[]]]]", 8, 3, why, sizeof why) == -1);
    CHECK_COUNT(passed, hp_body_json_check("\"\xc0\xaf\"", 4, 3, why, sizeof why) == -1);
    CHECK_COUNT(passed, hp_body_json_check("\"\\\"[[[[\"", 8, 1, why, sizeof why) == 0);

    hp_request r;
    memset(&r, 0, sizeof r);
    char allow[64];
    CHECK_COUNT(passed, hp_route_match(&r, "GET", "/v1/jobs/j_x/tiles.csv", allow, sizeof allow) ==
                            HP_ROUTE_OK && !strcmp(r.route->pattern, "/v1/jobs/{id}/{file}") &&
                            !strcmp(r.params[0], "j_x") && !strcmp(r.params[1], "tiles.csv"));
    CHECK_COUNT(passed, hp_route_match(&r, "POST", "/v1/jobs/j_x/cancel", allow, sizeof allow) ==
                            HP_ROUTE_OK && !strcmp(r.route->pattern, "/v1/jobs/{id}/cancel"));
    CHECK_COUNT(passed, hp_route_match(&r, "DELETE", "/v1/batches", allow, sizeof allow) ==
                            HP_ROUTE_METHOD && !strcmp(allow, "POST"));
    CHECK_COUNT(passed, hp_route_match(&r, "GET", "/v1/jobs//x", allow, sizeof allow) ==
                            HP_ROUTE_NOT_FOUND);
    CHECK_COUNT(passed, hp_route_match(&r, "GET", "/v1/jobs/", allow, sizeof allow) ==
                            HP_ROUTE_NOT_FOUND);
    CHECK_COUNT(passed, hp_route_match(&r, "HEAD", "/v1/health", allow, sizeof allow) == HP_ROUTE_OK);

    char id[HP_ID_LEN + 1];
    hp_id_new('j', id);
    CHECK_COUNT(passed, hp_id_valid('j', id) && !hp_id_valid('b', id));
    id[5] = '1';
    CHECK_COUNT(passed, !hp_id_valid('j', id));
    CHECK_COUNT(passed, !hp_id_valid('j', "j_../../../../etc/passwd.."));
}

int main(void)
{
    char dir[] = "/tmp/hp-store-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[600];
    snprintf(path, sizeof path, "%s/store.db", dir);
    hp_db *db = NULL;
    hp_error err = {0};
    CHECK(hp_db_open(path, &db, &err) == HP_OK);
    if (db) {
        test_migrate_tokens(db);
        char text[HP_TOKEN_TEXT_MAX];
        hp_token_info tok;
        CHECK(hp_store_token_create(db, HP_ROLE_SUBMITTER, "lab2", NULL, text, &tok, &err) == HP_OK);
        test_idempotency(db, tok.id);
        test_leases(db, tok.id);
        test_audit(db, dir);
        hp_db_close(db);
    }
    test_pure();
    hp_remove_tree(dir);
    return hp_test_finish("test_server_store", passed);
}
