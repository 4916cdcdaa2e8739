/* io/csv_write.c: plain fields as they are; a comma, a quote or a line break quoted with quotes
 * doubled (RFC 4180), so the row still has its columns; read back by eval's RFC 4180 reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_csv.h"
#include "io/csv_write.h"
#include "util/testutil.h"

static int passed;

#define OK(cond) CHECK_COUNT(passed, cond)

/* The field as written, in out. */
static void written(const char *s, char *out, size_t n)
{
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f)
        return;
    hp_csv_field(f, s);
    rewind(f);
    size_t k = fread(out, 1, n - 1, f);
    out[k] = 0;
    fclose(f);
}

int main(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"invasive", "invasive"},
        {"", ""},
        {"in situ, ductal", "\"in situ, ductal\""},
        {"the \"benign\" class", "\"the \"\"benign\"\" class\""},
        {"two\nlines", "\"two\nlines\""},
        {"cr\rhere", "\"cr\rhere\""},
    };
    char buf[128];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        written(cases[i].in, buf, sizeof buf);
        OK(!strcmp(buf, cases[i].out));
    }
    /* a row of awkward fields reads back as the same fields */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        const char *fields[] = {"a,b", "say \"x\"", "line\nbreak", "plain"};
        for (int i = 0; i < 4; i++) {
            if (i)
                fputc(',', f);
            hp_csv_field(f, fields[i]);
        }
        fputc('\n', f);
        rewind(f);
        char row[256];
        size_t k = fread(row, 1, sizeof row - 1, f);
        row[k] = 0;
        fclose(f);
        const char *p = row;
        char *got[8] = {0};
        int n = hp_eval_csv_record(&p, got, 8);
        OK(n == 4);
        for (int i = 0; i < 4 && i < n; i++)
            OK(got[i] && !strcmp(got[i], fields[i]));
        for (int i = 0; i < 8; i++)
            free(got[i]);
    }
    return hp_test_finish("test_csv_write", passed);
}
