/* RFC 4180 records and whole text files for the evaluation readers (eval/eval_csv.h). */
#include "eval/eval_csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/read_file.h"

int hp_eval_csv_record(const char **p, char **fields, int max)
{
    const char *s = *p;
    int n = 0;
    for (;;) {
        char buf[4096];
        size_t len = 0;
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s)
                    return -1;
                if (*s == '"') {
                    if (s[1] == '"') {
                        if (len + 1 < sizeof buf)
                            buf[len++] = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                if (len + 1 < sizeof buf)
                    buf[len++] = *s;
                s++;
            }
            if (*s && *s != ',' && *s != '\n' && *s != '\r')
                return -1;
        } else {
            while (*s && *s != ',' && *s != '\n' && *s != '\r') {
                if (len + 1 < sizeof buf)
                    buf[len++] = *s;
                s++;
            }
        }
        buf[len] = 0;
        if (n < max)
            fields[n] = strdup(buf);
        n++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r')
            s++;
        if (*s == '\n')
            s++;
        break;
    }
    *p = s;
    return n;
}

char *hp_eval_read_text(const char *path, hp_error *err)
{
    char *text;
    return hp_read_file(path, NULL, (size_t)256 << 20, HP_READ_TEXT, &text, NULL, err) == HP_OK ? text : NULL;
}

