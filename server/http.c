/* The request stage (server/request.h) on libmicrohttpd: a thread pool polling with epoll, TLS
 * through GnuTLS when a certificate is given, and the per-request state machine that runs the
 * stages in order:
 *
 *   first call (headers complete)  route, header limits, authorization, body precheck;
 *                                  a refusal is answered at once, before any body is read
 *   body calls                     bytes into memory (JSON) or a hashed file (uploads)
 *   last call                      body parse, handler, response
 *
 * Logging: one line per request to stderr with the route's template (never the raw path, which
 * may hold an accession number), the status, the time and the token id. */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/read_file.h"
#include "server/auth.h"
#include "server/body.h"
#include "server/router.h"
#include "server/service_internal.h"

/* Bytes of a refused body read (and dropped) before the connection is simply closed. */
#define DISCARD_MAX (16 * 1024 * 1024)

struct hp_http {
    struct MHD_Daemon *d;
    char *cert, *key;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *hp_request_query(hp_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *hp_request_header(hp_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *hp_request_cookie(hp_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

static hp_request *request_new(hp_service *svc, struct MHD_Connection *c, const char *method)
{
    hp_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->svc = svc;
    r->conn = c;
    r->t_start = mono_s();
    r->file_fd = -1;
    r->upload_fd = -1;
    snprintf(r->method, sizeof r->method, "%s", method);
    return r;
}

static void request_free(hp_request *r)
{
    if (!r)
        return;
    if (r->upload_fd >= 0) {
        close(r->upload_fd);
        unlink(r->upload_tmp); /* an upload that never completed */
    }
    if (r->file_fd >= 0)
        close(r->file_fd);
    EVP_MD_CTX_free(r->upload_md);
    free(r->body);
    free(r->resp);
    cJSON_Delete(r->json);
    free(r);
}

static enum MHD_Result send_response(hp_request *r)
{
    struct MHD_Response *resp;
    if (r->file_fd >= 0) {
        resp = MHD_create_response_from_fd_at_offset64((uint64_t)r->file_len, r->file_fd,
                                                       (uint64_t)r->file_off);
        if (resp)
            r->file_fd = -1; /* libmicrohttpd closes it */
    } else {
        resp = MHD_create_response_from_buffer_with_free_callback(r->resp_len, r->resp, free);
        if (resp)
            r->resp = NULL;
    }
    if (!resp)
        return MHD_NO;
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    for (int i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i][0], r->headers[i][1]);
    int cache_set = 0;
    for (int i = 0; i < r->n_headers; i++)
        cache_set |= !strcasecmp(r->headers[i][0], "Cache-Control");
    if (r->file_fd < 0 && r->status != 200 && r->status != 206 && !cache_set)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->queued = 1;
    return ok;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind, (void)key, (void)value;
    (*(int *)cls)++;
    return MHD_YES;
}

/* The first call: everything that can be decided from the headers alone. */
static void stage_head(hp_request *r, const char *url, const char *method)
{
    hp_service *svc = r->svc;
    if (atomic_load(&svc->stopping)) {
        hp_respond_header(r, "Retry-After", "5");
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the service is stopping");
        return;
    }
    char allow[64];
    hp_route_result m = hp_route_match(r, method, url, allow, sizeof allow);
    if (m == HP_ROUTE_NOT_FOUND) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such resource");
        return;
    }
    if (m == HP_ROUTE_METHOD) {
        hp_respond_header(r, "Allow", allow);
        hp_respond_problem(r, HP_PROB_METHOD, NULL, "this resource takes %s", allow);
        return;
    }
    int n_headers = 0;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &n_headers);
    if (n_headers > svc->cfg.max_headers) {
        hp_respond_problem(r, HP_PROB_TOO_LARGE, NULL, "%d header lines; at most %d", n_headers,
                           svc->cfg.max_headers);
        return;
    }
    if (!hp_authorize(r))
        return;
    hp_body_precheck(r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    hp_request *r = *con_cls;
    if (!r) {
        if (!(r = request_new(cls, c, method)))
            return MHD_NO;
        *con_cls = r;
        stage_head(r, url, method);
        if (r->status)
            return send_response(r);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->status) {
            /* A refused body is dropped; past a bound the connection is cut instead. */
            r->body_len += n;
            return r->body_len > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        hp_body_absorb(r, upload_data, n);
        return MHD_YES;
    }
    if (r->queued)
        return MHD_YES;
    if (!r->status)
        hp_body_finish(r);
    if (!r->status)
        r->route->handle(r);
    if (!r->status)
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "no answer was produced");
    return send_response(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    hp_service *svc = cls;
    hp_request *r = *con_cls;
    if (!r)
        return;
    double dt = mono_s() - r->t_start;
    const char *route = r->route ? r->route->pattern : "-";
    int status = r->queued ? r->status : 0;
    hp_metrics_request(svc->metrics, r->method, route, status, dt);
    fprintf(stderr, "http %s %s %d %.1fms %s%s\n", r->method, route, status, dt * 1000,
            r->authed ? r->token.id : "-",
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    request_free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    fprintf(stderr, "http: %s\n", line);
}

/* A PEM file, whole (certificates and keys are a few kB). */
static char *read_pem(const char *path, const char *what, hp_error *err)
{
    char *text;
    return hp_read_file(path, what, 1 << 20, HP_READ_TEXT | HP_READ_NONEMPTY, &text, NULL, err) == HP_OK ? text
                                                                                                   : NULL;
}

/* host:port, [v6]:port or localhost:port into a socket address. */
static hp_status parse_listen(const char *listen, struct sockaddr_storage *ss, int *loopback,
                              hp_error *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || strlen(listen) >= sizeof host)
        return hp_error_set(err, HP_ERR_INVALID, "--listen takes HOST:PORT (got '%s')", listen);
    size_t hl = (size_t)(colon - listen);
    memcpy(host, listen, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return hp_error_set(err, HP_ERR_INVALID, "--listen: bad port in '%s'", listen);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE}, *ai = NULL;
    if (strcmp(host, "localhost") != 0)
        hints.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
        return hp_error_set(err, HP_ERR_INVALID, "--listen: '%s' is not an IP address", host);
    memset(ss, 0, sizeof *ss);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_port = htons((uint16_t)port);
        *loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_port = htons((uint16_t)port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
    }
    return HP_OK;
}

hp_status hp_http_start(hp_service *svc, hp_http **out, char *url, size_t url_n, hp_error *err)
{
    const hp_service_config *c = &svc->cfg;
    struct sockaddr_storage ss;
    int loopback = 0;
    *out = NULL;
    hp_status st = parse_listen(c->listen, &ss, &loopback, err);
    if (st != HP_OK)
        return st;
    int tls = c->tls_cert != NULL;
    if (!loopback && !tls && !c->insecure_listen)
        return hp_error_set(err, HP_ERR_INVALID,
                            "--listen %s is not a loopback address: give --tls-cert and "
                            "--tls-key, or --insecure-listen to serve plain HTTP on the network",
                            c->listen);
    hp_http *h = calloc(1, sizeof *h);
    if (!h)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    if (tls && (!(h->cert = read_pem(c->tls_cert, "--tls-cert", err)) ||
                !(h->key = read_pem(c->tls_key, "--tls-key", err)))) {
        hp_http_stop(h);
        return HP_ERR_IO;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0) |
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    int threads = c->http_threads > 0 ? c->http_threads : 4;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, c->client_timeout_s > 0 ? c->client_timeout_s : 30, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 512, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, 256, NULL},
        /* Headers must fit in 64 KiB (libmicrohttpd answers 431 past it). */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, svc},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->cert},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, h->key},
        {MHD_OPTION_END, 0, NULL},
    };
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, svc, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!h->d) {
        hp_http_stop(h);
        return hp_error_set(err, HP_ERR_IO, "cannot listen on %s%s (address in use, or a "
                                            "certificate and key that do not load)",
                            c->listen, tls ? " with TLS" : "");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : 0;
    char host[128];
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
    else {
        host[0] = '[';
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host + 1, sizeof host - 2);
        strcat(host, "]");
    }
    snprintf(url, url_n, "%s://%s:%u", tls ? "https" : "http", host, port);
    *out = h;
    return HP_OK;
}

void hp_http_quiesce(hp_http *h)
{
    if (!h || !h->d)
        return;
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET)
        close(s);
}

void hp_http_stop(hp_http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    free(h->cert);
    free(h->key);
    free(h);
}
