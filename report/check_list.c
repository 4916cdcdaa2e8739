/* Check lines for report verify: see check_list.h. */
#include "report/check_list.h"

#include <stdarg.h>

static void emit(hp_check_list *c, const char *tag, const char *fmt, va_list ap)
{
    char msg[HP_ERROR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (c->out)
        fprintf(c->out, "%s%s\n", tag, msg);
    if (tag[0] == 'F' && c->failures++ == 0)
        snprintf(c->first, sizeof c->first, "%s", msg);
}

void hp_check_fail(hp_check_list *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(c, "FAIL ", fmt, ap);
    va_end(ap);
}

void hp_check_ok(hp_check_list *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(c, "ok   ", fmt, ap);
    va_end(ap);
}

void hp_check_note(hp_check_list *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(c, "note: ", fmt, ap);
    va_end(ap);
}
