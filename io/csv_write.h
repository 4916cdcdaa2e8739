/* Writing CSV (RFC 4180): the one quoting rule tiles.csv, eval's predictions.csv and
 * `histoplan eval --list` share. */
#ifndef HP_IO_CSV_WRITE_H
#define HP_IO_CSV_WRITE_H

#include <stdio.h>

/* Writes `s` as one field: as it is, or quoted (quotes doubled) when it holds a comma, a quote
 * or a line break, so a class or file name can never split a row. */
void hp_csv_field(FILE *f, const char *s);

#endif
