/* server/db_pool.h: a stack of idle connections under a mutex. */
#include "server/db_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PING_AFTER_MS 5000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct hp_db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *target;
    int size, n_idle;
    hp_db **idle;
    hp_db_kind kind;
};

hp_status hp_db_pool_create(const char *target, int size, hp_db_pool **out, hp_error *err)
{
    *out = NULL;
    hp_db_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->idle = calloc((size_t)size, sizeof *p->idle)) || !(p->target = strdup(target))) {
        if (p)
            free(p->idle);
        free(p);
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->size = size;
    for (int i = 0; i < size; i++) {
        hp_db *db;
        if (hp_db_open(target, &db, err) != HP_OK) {
            hp_db_pool_destroy(p);
            return err ? err->code : HP_ERR_IO;
        }
        p->kind = db->kind;
        p->idle[p->n_idle++] = db;
    }
    *out = p;
    return HP_OK;
}

void hp_db_pool_destroy(hp_db_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_idle; i++)
        hp_db_close(p->idle[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->idle);
    free(p->target);
    free(p);
}

hp_db *hp_db_pool_take(hp_db_pool *p, hp_error *err)
{
    pthread_mutex_lock(&p->mu);
    while (p->n_idle == 0)
        pthread_cond_wait(&p->cv, &p->mu);
    hp_db *db = p->idle[--p->n_idle];
    pthread_mutex_unlock(&p->mu);
    /* A SQLite connection is a file handle and never drops; a PostgreSQL one idle for a while
     * may have (a restarted server, a firewall's idle timeout), so it is checked first. */
    if (db && (db->kind == HP_DB_SQLITE || now_ms() - db->idle_since_ms < PING_AFTER_MS ||
               hp_db_ping(db)))
        return db;
    /* Reopen a connection that stopped answering; the slot is kept either way. */
    hp_db *fresh = NULL;
    if (hp_db_open(p->target, &fresh, err) == HP_OK) {
        hp_db_close(db);
        return fresh;
    }
    hp_db_pool_give(p, db);
    return NULL;
}

void hp_db_pool_give(hp_db_pool *p, hp_db *db)
{
    if (!db)
        return;
    if (db->in_tx)
        hp_db_rollback(db);
    db->idle_since_ms = now_ms();
    pthread_mutex_lock(&p->mu);
    p->idle[p->n_idle++] = db;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

const char *hp_db_pool_kind_name(const hp_db_pool *p)
{
    return p->kind == HP_DB_POSTGRES ? "postgresql" : "sqlite";
}
