/* The callback sender (server/deliver.c): a thread that claims due callbacks from the outbox,
 * signs them (server/webhook.h) with the submitting token's secret and POSTs them with libcurl,
 * recording each attempt; failures are retried with a growing backoff for a day. */
#ifndef HP_SERVER_DELIVER_H
#define HP_SERVER_DELIVER_H

#include "common/status.h"

struct hp_service;
typedef struct hp_deliver hp_deliver;

hp_status hp_deliver_start(struct hp_service *svc, hp_deliver **out, hp_error *err);
/* Joins the thread (after the service set `stopping`) and frees. Accepts NULL. */
void hp_deliver_stop(hp_deliver *d);

#endif
