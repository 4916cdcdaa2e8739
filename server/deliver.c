/* server/deliver.h. A callback is delivered at least once: the outbox row is marked delivered
 * only after a 2xx answer, so a crash between the POST and that mark sends it again with the same
 * webhook-id, which receivers use to drop the repeat. */
#include "server/deliver.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/service_internal.h"
#include "server/webhook.h"

#define SEND_LEASE_MS 60000
#define TIMEOUT_MS 10000

struct hp_deliver {
    hp_service *svc;
    pthread_t thread;
};

static size_t drop(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

/* POSTs the callback; returns the HTTP status (0 when none came back) with `error` set. */
static int post(const hp_outbox_row *o, const char *secret, char *error, size_t en)
{
    char sig[128], hid[128], hts[64], hsig[160];
    hp_error err = {0};
    int64_t ts = (int64_t)time(NULL);
    if (hp_webhook_sign(secret, o->id, ts, o->payload, strlen(o->payload), sig, sizeof sig, &err)
        != HP_OK) {
        snprintf(error, en, "%.400s", err.msg);
        return 0;
    }
    snprintf(hid, sizeof hid, "webhook-id: %s", o->id);
    snprintf(hts, sizeof hts, "webhook-timestamp: %lld", (long long)ts);
    snprintf(hsig, sizeof hsig, "webhook-signature: %s", sig);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(error, en, "cannot start an HTTP client");
        return 0;
    }
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: histoplan/" HP_VERSION);
    h = curl_slist_append(h, hid);
    h = curl_slist_append(h, hts);
    h = curl_slist_append(h, hsig);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, o->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, o->payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(o->payload));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, drop);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(error, en, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    if (rc == CURLE_OK && (status < 200 || status >= 300))
        snprintf(error, en, "the receiver answered %ld", status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return (int)status;
}

static int64_t next_delay(const hp_service *svc, int attempts)
{
    int64_t d = svc->cfg.callback_retry_base_ms;
    for (int k = 1; k < attempts && d < 3600 * 1000LL; k++)
        d *= 2;
    return d < 3600 * 1000LL ? d : 3600 * 1000LL;
}

static void *deliver_main(void *arg)
{
    hp_deliver *d = arg;
    hp_service *svc = d->svc;
    while (!atomic_load(&svc->stopping)) {
        hp_error err = {0};
        hp_db *db = hp_db_pool_take(svc->pool, &err);
        if (!db) {
            hp_service_sleep(svc, 1000);
            continue;
        }
        hp_outbox_row o;
        int k = hp_store_outbox_claim(db, hp_now_ms(), SEND_LEASE_MS, &o, &err);
        char secret[64] = "";
        if (k == 1 && hp_store_token_secret(db, o.token_id, secret, &err) != 1)
            secret[0] = 0;
        hp_db_pool_give(svc->pool, db);
        if (k <= 0) {
            if (k < 0)
                fprintf(stderr, "callbacks: %s\n", err.msg);
            hp_service_sleep(svc, k < 0 ? 1000 : 250);
            continue;
        }
        char error[512] = "";
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int status = secret[0] ? post(&o, secret, error, sizeof error) : 0;
        if (!secret[0])
            snprintf(error, sizeof error, "the batch's token has no webhook secret");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        int64_t now = hp_now_ms();
        int64_t retry = next_delay(svc, o.attempts);
        if (now + retry - o.created_ms > svc->cfg.callback_give_up_ms)
            retry = -1;
        int ok = status >= 200 && status < 300;
        fprintf(stderr, "callback %s attempt %d: %s\n", o.id, o.attempts,
                ok ? "delivered" : retry < 0 ? "failed, giving up" : "failed, will retry");
        for (int tries = 0; tries < 10; tries++) {
            db = hp_db_pool_take(svc->pool, &err);
            if (db && hp_store_outbox_record(db, &o, now, status, error, ms, retry, &err) == HP_OK) {
                hp_db_pool_give(svc->pool, db);
                break;
            }
            if (db)
                hp_db_pool_give(svc->pool, db);
            fprintf(stderr, "callbacks: cannot record attempt: %s\n", err.msg);
            hp_service_sleep(svc, 500);
        }
        hp_outbox_row_free(&o);
    }
    return NULL;
}

hp_status hp_deliver_start(hp_service *svc, hp_deliver **out, hp_error *err)
{
    hp_deliver *d = calloc(1, sizeof *d);
    if (!d)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    d->svc = svc;
    if (pthread_create(&d->thread, NULL, deliver_main, d) != 0) {
        free(d);
        return hp_error_set(err, HP_ERR_NOMEM, "cannot start a thread");
    }
    *out = d;
    return HP_OK;
}

void hp_deliver_stop(hp_deliver *d)
{
    if (!d)
        return;
    pthread_join(d->thread, NULL);
    free(d);
}
