/* libtiff's per-handle error callbacks (libtiff >= 4.5) capture the first message of a handle;
 * this formats it the same way for every reader: "module: message". */
#ifndef HP_TIFF_MESSAGE_H
#define HP_TIFF_MESSAGE_H

#include <stdarg.h>
#include <stdio.h>

static inline void hp_tiff_format_message(char *msg, size_t cap, const char *module, const char *fmt,
                                          va_list ap)
{
    int n = module ? snprintf(msg, cap, "%s: ", module) : 0;
    if (n < 0 || (size_t)n >= cap)
        n = 0;
    vsnprintf(msg + n, cap - (size_t)n, fmt, ap);
}

#endif
