/* A fixed set of job-store connections shared by a process's threads (HTTP handlers, workers,
 * the callback sender, the sweeper): a thread takes one, uses it alone, and gives it back.
 * Thread-safe. */
#ifndef HP_SERVER_DB_POOL_H
#define HP_SERVER_DB_POOL_H

#include "server/db.h"

typedef struct hp_db_pool hp_db_pool;

/* Opens `size` connections to `target` (server/db.h's hp_db_open). */
hp_status hp_db_pool_create(const char *target, int size, hp_db_pool **out, hp_error *err);
void hp_db_pool_destroy(hp_db_pool *p);

/* Waits for a free connection. A connection that no longer answers is reopened first; NULL
 * (with err set) when the store cannot be reached. */
hp_db *hp_db_pool_take(hp_db_pool *p, hp_error *err);
void hp_db_pool_give(hp_db_pool *p, hp_db *db);

/* "sqlite" or "postgresql". */
const char *hp_db_pool_kind_name(const hp_db_pool *p);

#endif
