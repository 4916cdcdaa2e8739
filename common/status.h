/* Status codes and the per-handle error record every histoplan module uses.
 *
 * Functions that can fail return hp_status (0 ok, negative on failure). The message travels on
 * the handle that failed (model, backend, slide, job) inside an hp_error, and the first error
 * wins: later failures caused by the first one do not overwrite the message a user needs. */
#ifndef HP_STATUS_H
#define HP_STATUS_H

#include <stddef.h>

typedef enum {
    HP_OK = 0,
    HP_ERR_INVALID = -1,     /* malformed input: a corrupt file, a bad shape, a bad argument */
    HP_ERR_UNSUPPORTED = -2, /* well-formed but outside what histoplan supports (an op, a type) */
    HP_ERR_IO = -3,          /* a file could not be opened, read or written */
    HP_ERR_NOMEM = -4,       /* an allocation failed (host or device) */
    HP_ERR_DEVICE = -5,      /* a CUDA, cuDNN or cuBLAS call failed, or no device is present */
    HP_ERR_CANCELLED = -6,   /* the caller asked the work to stop (a signal, a cancelled job) */
} hp_status;

#define HP_ERROR_MSG_MAX 1024

typedef struct {
    hp_status code;
    char msg[HP_ERROR_MSG_MAX];
} hp_error;

/* Records an error unless one is already recorded (first error wins). Returns `code`, so a
 * caller can write `return hp_error_set(err, HP_ERR_INVALID, "...")`. `err` may be NULL. */
hp_status hp_error_set(hp_error *err, hp_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears a recorded error so the handle can be reused. */
void hp_error_clear(hp_error *err);

/* A short name for a status code ("invalid input", "unsupported", ...). */
const char *hp_status_name(hp_status s);

#endif
