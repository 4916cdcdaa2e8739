/* Reading the CSV and text files of evaluations: a data set's path,label list, BACH's ground
 * truth, analyze's tiles.csv. Thread-safe (no shared state). */
#ifndef HP_EVAL_CSV_H
#define HP_EVAL_CSV_H

#include "common/status.h"

/* Splits one RFC 4180 record from *p into at most `max` fields (each malloc'd, or NULL when
 * that allocation failed; fields past `max` are counted, not kept; a field is cut at 4095
 * bytes). Returns the number of fields, or -1 on a malformed quote; *p moves past the record
 * and its line break (LF or CRLF). The caller frees the fields. */
int hp_eval_csv_record(const char **p, char **fields, int max);

/* The whole of a text file, NUL-terminated (malloc'd), at most 256 MB; a file holding a NUL
 * byte is refused. NULL on failure, with the file named in err. */
char *hp_eval_read_text(const char *path, hp_error *err);

#endif
