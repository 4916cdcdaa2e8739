#include "common/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

hp_status hp_error_set(hp_error *err, hp_status code, const char *fmt, ...)
{
    if (!err || err->code != HP_OK)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void hp_error_clear(hp_error *err)
{
    if (!err)
        return;
    err->code = HP_OK;
    err->msg[0] = '\0';
}

const char *hp_status_name(hp_status s)
{
    switch (s) {
    case HP_OK: return "ok";
    case HP_ERR_INVALID: return "invalid input";
    case HP_ERR_UNSUPPORTED: return "unsupported";
    case HP_ERR_IO: return "I/O error";
    case HP_ERR_NOMEM: return "out of memory";
    case HP_ERR_DEVICE: return "device error";
    case HP_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}
