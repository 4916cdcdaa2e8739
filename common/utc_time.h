/* Times as the project writes them in files (findings, reports, audit log): ISO 8601, UTC, whole
 * seconds, "YYYY-MM-DDThh:mm:ssZ". */
#ifndef HP_UTC_TIME_H
#define HP_UTC_TIME_H

#include <time.h>

#define HP_UTC_TIME_LEN 21 /* "YYYY-MM-DDThh:mm:ssZ" and its NUL */

/* Formats `t` into `out`; returns 0, or -1 (out = "") when `t` cannot be represented. */
int hp_utc_format(time_t t, char out[HP_UTC_TIME_LEN]);

#endif
