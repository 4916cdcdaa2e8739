/* Files written under a temporary name beside their final path and renamed into place when
 * complete, so a crash or a failed write never leaves a half-written file under the final name. */
#ifndef HP_ATOMIC_FILE_H
#define HP_ATOMIC_FILE_H

#include <stdio.h>

#include "common/status.h"

typedef struct {
    FILE *f;   /* write here */
    char *tmp; /* the temporary's name (same folder as the target, so rename() is atomic) */
} hp_atomic_file;

/* Creates the temporary beside `path` (mode 0644). */
hp_status hp_atomic_open(const char *path, hp_atomic_file *af, hp_error *err);

/* ok != 0: flushes, syncs and renames the temporary over `path`. ok == 0 (or any failure on the
 * way): removes the temporary and records a write error unless one is already recorded. */
hp_status hp_atomic_finish(const char *path, hp_atomic_file *af, int ok, hp_error *err);

/* Writes `text` and a final newline to `path` through a temporary and a rename. */
hp_status hp_atomic_write_text(const char *path, const char *text, hp_error *err);

#endif
