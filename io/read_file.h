/* Reading a whole input file into memory, for the small files histoplan takes whole (JSON inputs,
 * manifests, CSV, certificates, detector files): one place that refuses a directory, a file over
 * the caller's limit, a short read, and, for text, a NUL byte, each with the path named. */
#ifndef HP_IO_READ_FILE_H
#define HP_IO_READ_FILE_H

#include <stddef.h>

#include "common/status.h"

enum {
    HP_READ_TEXT = 1,     /* refuse a NUL byte: "not a text file" */
    HP_READ_NONEMPTY = 2, /* refuse an empty file */
};

/* Reads all of `path` (a file, a pipe or a /proc file; not a directory) into a new buffer with a
 * NUL after the last byte: *out (free() it) and *len (bytes, the NUL not counted). At most
 * `max_bytes`; `flags` as above. Errors name the file, after `what` when given ("the manifest
 * PATH: larger than 64 MB"), and leave *out NULL. */
hp_status hp_read_file(const char *path, const char *what, size_t max_bytes, int flags, char **out, size_t *len,
                       hp_error *err);

#endif
