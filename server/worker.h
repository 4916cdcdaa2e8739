/* A worker thread of the service (server/worker.c): one model instance, one job at a time. */
#ifndef HP_SERVER_WORKER_H
#define HP_SERVER_WORKER_H

#include "common/status.h"

struct hp_service;
typedef struct hp_worker hp_worker;

/* Opens the model and starts the worker's threads. */
hp_status hp_worker_start(struct hp_service *svc, int index, hp_worker **out, hp_error *err);
const char *hp_worker_id(const hp_worker *w);
/* Whether a job is being analyzed now. */
int hp_worker_busy(hp_worker *w);
/* A stopping service hands the worker's job back to the queue (the attempt not counted); the
 * analysis itself cannot be interrupted and ends with the process. 1 handed back, 0 none. */
int hp_worker_release(hp_worker *w);
/* Waits for the worker to stop (after the service set `stopping`). */
void hp_worker_join(hp_worker *w);
void hp_worker_destroy(hp_worker *w);

#endif
