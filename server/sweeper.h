/* The service's housekeeping thread (server/sweeper.c). */
#ifndef HP_SERVER_SWEEPER_H
#define HP_SERVER_SWEEPER_H

#include "common/status.h"
#include "server/db.h"

struct hp_service;
typedef struct hp_sweeper hp_sweeper;

/* Starts the thread: expired leases every second; idempotency keys and the workers' seen times
 * (`worker_ids`, kept by the caller) every 15 s. */
hp_status hp_sweeper_start(struct hp_service *svc, const char *const *worker_ids, int n_workers,
                           hp_sweeper **out, hp_error *err);
/* Joins the thread (after `stopping`), marks the workers stopped, frees. Accepts NULL. */
void hp_sweeper_stop(hp_sweeper *s);

/* Removes run folders that are no job's result and stale half-received uploads. */
void hp_sweeper_clean_folders(struct hp_service *svc, hp_db *db);

#endif
