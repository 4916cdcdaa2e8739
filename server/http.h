/* The service's HTTP server (libmicrohttpd; server/http.c). */
#ifndef HP_SERVER_HTTP_H
#define HP_SERVER_HTTP_H

#include <stddef.h>

#include "common/status.h"

struct hp_service;
typedef struct hp_http hp_http;

/* Listens on svc->cfg.listen (TLS when a certificate is configured); `url` receives the base URL
 * with the port actually bound. A non-loopback address without TLS is refused unless
 * --insecure-listen. */
hp_status hp_http_start(struct hp_service *svc, hp_http **out, char *url, size_t url_n,
                        hp_error *err);
/* Stops accepting connections; requests in flight go on. */
void hp_http_quiesce(hp_http *h);
/* Waits for requests in flight and stops. Accepts NULL. */
void hp_http_stop(hp_http *h);

#endif
