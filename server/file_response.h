/* Sending a result file: ETag (so clients revalidate cheaply), If-None-Match (304) and a single
 * byte Range (206, or 416 outside the file), from the file itself by sendfile. */
#ifndef HP_SERVER_FILE_RESPONSE_H
#define HP_SERVER_FILE_RESPONSE_H

#include <stdint.h>

#include "server/request.h"

/* Answers with the file at `path` (404 when it is missing). */
void hp_respond_path(hp_request *r, const char *path, const char *content_type);

/* Parses a Range header against a file of `size` bytes: 1 one satisfiable range [*off, *off +
 * *len), 0 no usable Range (send the whole file), -1 unsatisfiable (416). */
int hp_parse_range(const char *h, int64_t size, int64_t *off, int64_t *len);

#endif
