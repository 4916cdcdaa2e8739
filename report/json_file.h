/* Reading the JSON files a report is built from (case file, findings, rule table, report.json):
 * size-limited, hashed as read, parse errors located by line and column, and what other readers
 * would read differently refused (common/json_check.h: duplicate member names, invalid UTF-8,
 * \u0000, numbers out of range), with the place named. */
#ifndef HP_JSON_FILE_H
#define HP_JSON_FILE_H

#include <cjson/cJSON.h>

#include "common/status.h"

/* Largest JSON input accepted (a findings file of a big slide is a few MB). */
#define HP_JSON_FILE_MAX (256L << 20)

/* Reads and parses `path`. `what` names the file in messages ("case file", "findings"). On
 * success *root is the tree (caller frees with cJSON_Delete) and sha256_hex (may be NULL) holds
 * the SHA-256 of the bytes read. */
hp_status hp_json_file_read(const char *path, const char *what, cJSON **root, char sha256_hex[65], hp_error *err);

/* As hp_json_file_read, and when `bytes` is not NULL also hands over the bytes that were parsed
 * (NUL-terminated; *len of them; caller frees). */
hp_status hp_json_file_read_bytes(const char *path, const char *what, cJSON **root, char **bytes, size_t *len,
                                  hp_error *err);

#endif
