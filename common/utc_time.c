#include "common/utc_time.h"

int hp_utc_format(time_t t, char out[HP_UTC_TIME_LEN])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, HP_UTC_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}
