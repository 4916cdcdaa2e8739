/* The parse stage's routing: method and path to a route of the table (server/router.c) and its
 * path parameters. */
#ifndef HP_SERVER_ROUTER_H
#define HP_SERVER_ROUTER_H

#include "server/request.h"

typedef enum { HP_ROUTE_OK = 0, HP_ROUTE_NOT_FOUND, HP_ROUTE_METHOD } hp_route_result;

/* Matches `path` (percent-decoded; no query). On HP_ROUTE_OK r->route and r->params are set;
 * on HP_ROUTE_METHOD, `allow` receives the methods the path takes ("GET, POST"). A parameter
 * holds at most 159 bytes and never a '/'; each handler checks its own parameters' form. */
hp_route_result hp_route_match(hp_request *r, const char *method, const char *path, char *allow,
                               size_t allow_n);

/* The route table, for tests and docs: *n receives its length. */
const hp_route *hp_routes(int *n);

#endif
