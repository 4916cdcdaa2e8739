/* The respond stage's setters (server/request.h): they only record the response; server/http.c
 * turns it into a libmicrohttpd response and queues it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/request.h"

void hp_respond_header(hp_request *r, const char *name, const char *value)
{
    if (r->n_headers >= HP_MAX_EXTRA_HEADERS)
        return;
    snprintf(r->headers[r->n_headers][0], sizeof r->headers[0][0], "%s", name);
    snprintf(r->headers[r->n_headers][1], sizeof r->headers[0][1], "%s", value);
    r->n_headers++;
}

static void reset_body(hp_request *r)
{
    free(r->resp);
    r->resp = NULL;
    r->resp_len = 0;
    if (r->file_fd >= 0)
        close(r->file_fd);
    r->file_fd = -1;
}

void hp_respond_text(hp_request *r, int status, const char *content_type, const char *text,
                     size_t len)
{
    reset_body(r);
    r->resp = malloc(len + 1);
    if (!r->resp) {
        r->status = 503;
        r->content_type = "text/plain";
        return;
    }
    memcpy(r->resp, text, len);
    r->resp[len] = 0;
    r->resp_len = len;
    r->status = status;
    r->content_type = content_type;
}

void hp_respond_json(hp_request *r, int status, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "out of memory");
        return;
    }
    reset_body(r);
    r->resp = text;
    r->resp_len = strlen(text);
    r->status = status;
    r->content_type = "application/json";
}

void hp_respond_file(hp_request *r, int status, const char *content_type, int fd, int64_t off,
                     int64_t len)
{
    reset_body(r);
    r->file_fd = fd;
    r->file_off = off;
    r->file_len = len;
    r->status = status;
    r->content_type = content_type;
}
