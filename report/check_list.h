/* The lines `histoplan report verify` prints: one per check, "ok   ..." or "FAIL ...", plus
 * notes. A check list counts the failures and keeps the first one's text, so a caller that
 * prints nothing (report sign checking the folder before it signs) can still say what failed. */
#ifndef HP_CHECK_LIST_H
#define HP_CHECK_LIST_H

#include <stdio.h>

#include "common/status.h"

typedef struct {
    FILE *out;                    /* NULL: count only */
    int failures;
    char first[HP_ERROR_MSG_MAX]; /* the first failure's text ("" while none) */
} hp_check_list;

void hp_check_fail(hp_check_list *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hp_check_ok(hp_check_list *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hp_check_note(hp_check_list *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
