/* Audit log: three appends verify with n = 3 and form a hash chain; an edited byte in line 2,
 * a deleted first line, a truncated last line, swapped lines and an extra line are each detected
 * with the line named, and appending to a tampered log is refused and leaves it unchanged; bad
 * arguments (non-object details, NaN in details, empty event, invalid UTF-8) are refused before
 * the log is touched; concurrent appenders from several processes keep the chain intact; the last
 * line reformatted or re-escaped (same JSON, no successor to break) is refused as not in the
 * writer's exact form; hp_audit_append_at writes the time given; hp_audit_read gives each line
 * and its hash. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report/audit_log.h"
#include "report/signature.h"
#include "util/testutil.h"

static int passed;
static char dir[256];

#define OK(cond) CHECK_COUNT(passed, cond) /* evaluates cond once */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = (size_t)n;
    }
    return b;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

/* Byte offset of the start of line `k` (1-based). */
static size_t line_start(const char *s, int k)
{
    size_t pos = 0;
    for (int i = 1; i < k; i++)
        pos = (size_t)(strchr(s + pos, '\n') - s) + 1;
    return pos;
}

static void write_three(const char *path)
{
    unlink(path);
    hp_error err = {0};
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "slide_id", "3f2a9c01b7de");
    cJSON_AddNumberToObject(d, "n_tiles", 4096);
    cJSON_AddStringToObject(d, "report_sha256",
                            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hp_status st = hp_audit_append(path, "analyze.finish", "job-17", d, &err);
    CHECK_MSG(st == HP_OK, "%s", err.msg);
    st = hp_audit_append(path, "report.sign", "reviewer-2", d, &err);
    CHECK_MSG(st == HP_OK, "%s", err.msg);
    st = hp_audit_append(path, "report.export", NULL, NULL, &err);
    CHECK_MSG(st == HP_OK, "%s", err.msg);
    cJSON_Delete(d);
}

static void test_chain(const char *path)
{
    write_three(path);
    hp_error err = {0};
    size_t n = 0;
    hp_status st = hp_audit_verify(path, &n, &err);
    CHECK_MSG(st == HP_OK, "%s", err.msg);
    OK(st == HP_OK && n == 3);

    size_t len = 0;
    char *text = slurp(path, &len);
    CHECK(text != NULL);
    if (!text)
        return;
    /* Line layout and chain: line 1 starts at zeros, line k+1 carries SHA-256(line k). */
    OK(strncmp(text, "{\"seq\":1,\"time\":\"", 17) == 0);
    OK(strstr(text, "\"prev_sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n"));
    OK(strstr(text, "\"event\":\"report.export\",\"actor\":null,\"details\":{},"));
    OK(strstr(text, "\"details\":{\"n_tiles\":4096,\"report_sha256\":\"ba78"));
    size_t l2 = line_start(text, 2);
    char h1[65];
    hp_sha256_hex(text, l2 - 1, h1); /* line 2 carries SHA-256 of line 1 */
    char *line2_end = strchr(text + l2, '\n');
    OK(line2_end && strstr(text + l2, h1) && strstr(text + l2, h1) < line2_end);
    OK(text[len - 1] == '\n');
    /* The time field is UTC ISO 8601 with a Z. */
    const char *t = strstr(text, "\"time\":\"");
    OK(t && strlen(t) > 29 && t[12] == '-' && t[18] == 'T' && t[27] == 'Z' && t[28] == '"');
    free(text);

    /* A fourth append continues the chain. */
    st = hp_audit_append(path, "report.view", "reviewer-2", NULL, &err);
    CHECK_MSG(st == HP_OK, "%s", err.msg);
    st = hp_audit_verify(path, &n, &err);
    CHECK_MSG(st == HP_OK && n == 4, "%s (n = %zu)", err.msg, n);
    passed += st == HP_OK && n == 4;

    /* An empty file is a valid empty log; a missing one is an I/O error naming the path. */
    char empty[320];
    snprintf(empty, sizeof empty, "%s/empty.jsonl", dir);
    spit(empty, "", 0);
    n = 99;
    OK(hp_audit_verify(empty, &n, &err) == HP_OK && n == 0);
    unlink(empty);
    hp_error_clear(&err);
    OK(hp_audit_verify(empty, &n, &err) == HP_ERR_IO && strstr(err.msg, "empty.jsonl"));
}

/* Applies `edit` to a fresh three-line log, then expects verify to fail naming `want1` (and,
 * when non-NULL, `want2`), and an append to be refused without changing the file. */
static void tamper_case(const char *path, const char *label, void (*edit)(char *text, size_t *len),
                        const char *want1, const char *want2)
{
    write_three(path);
    size_t len = 0;
    char *text = slurp(path, &len);
    CHECK(text != NULL);
    if (!text)
        return;
    char *roomy = realloc(text, len + 64); /* edits may lengthen the log a little */
    CHECK(roomy != NULL);
    if (!roomy) {
        free(text);
        return;
    }
    text = roomy;
    edit(text, &len);
    spit(path, text, len);
    free(text);

    hp_error err = {0};
    size_t n = 0;
    hp_status st = hp_audit_verify(path, &n, &err);
    int ok = st == HP_ERR_INVALID && strstr(err.msg, want1) && (!want2 || strstr(err.msg, want2));
    CHECK_MSG(ok, "%s: verify gave %d \"%s\", wanted \"%s\"%s%s", label, st, err.msg, want1,
              want2 ? " and " : "", want2 ? want2 : "");
    passed += !!ok;

    size_t before = 0, after = 0;
    char *b = slurp(path, &before);
    hp_error_clear(&err);
    st = hp_audit_append(path, "report.sign", "reviewer-2", NULL, &err);
    char *a = slurp(path, &after);
    ok = st == HP_ERR_INVALID && strstr(err.msg, "refusing to append") && strstr(err.msg, want1) &&
         b && a && before == after && memcmp(a, b, before) == 0;
    CHECK_MSG(ok, "%s: append after tampering gave %d \"%s\"", label, st, err.msg);
    passed += !!ok;
    free(a);
    free(b);
}

/* Changes one byte in line 2's event name: still valid JSON, so line 3's link breaks. */
static void edit_byte_line2(char *text, size_t *len)
{
    (void)len;
    char *p = strstr(text + line_start(text, 2), "report.sign");
    if (p)
        p[7] = 'S';
}

/* Changes a byte that breaks line 2's JSON. */
static void break_line2(char *text, size_t *len)
{
    (void)len;
    text[line_start(text, 2)] = '[';
}

static void delete_line1(char *text, size_t *len)
{
    size_t l2 = line_start(text, 2);
    memmove(text, text + l2, *len - l2);
    *len -= l2;
}

static void truncate_last(char *text, size_t *len) { *len -= 10; }

static void drop_final_newline(char *text, size_t *len) { *len -= 1; }

static void swap_lines12(char *text, size_t *len)
{
    size_t l2 = line_start(text, 2), l3 = line_start(text, 3);
    char *tmp = malloc(*len);
    memcpy(tmp, text + l2, l3 - l2);
    memcpy(tmp + (l3 - l2), text, l2);
    memcpy(text, tmp, l3);
    free(tmp);
}

/* Recomputes nothing: edits details in line 1 (a "count" changed after the fact). */
static void edit_details_line1(char *text, size_t *len)
{
    (void)len;
    char *p = strstr(text, "\"n_tiles\":4096");
    if (p)
        p[11] = '5';
}

/* Reformats the last line (a space after a comma): still the same JSON, and no line follows to
 * carry its hash, so only the exact-form rule catches it. */
static void respace_last(char *text, size_t *len)
{
    size_t l3 = line_start(text, 3);
    char *p = strstr(text + l3, ",\"event\"");
    if (!p)
        return;
    memmove(p + 2, p + 1, *len - (size_t)(p + 1 - text));
    p[1] = ' ';
    (*len)++;
}

/* Re-escapes a character of the last line's event name ("\u0072" for 'r'): the same string. */
static void escape_last(char *text, size_t *len)
{
    size_t l3 = line_start(text, 3);
    char *p = strstr(text + l3, "report.export");
    if (!p)
        return;
    memmove(p + 6, p + 1, *len - (size_t)(p + 1 - text));
    memcpy(p, "\\u0072", 6);
    *len += 5;
}

static void test_tampering(const char *path)
{
    tamper_case(path, "edited byte in line 2", edit_byte_line2, "line 3", "line 2");
    tamper_case(path, "broken JSON in line 2", break_line2, "line 2", NULL);
    tamper_case(path, "deleted line 1", delete_line1, "line 1", NULL);
    tamper_case(path, "truncated last line", truncate_last, "line 3", "incomplete");
    tamper_case(path, "final newline removed", drop_final_newline, "line 3", "incomplete");
    tamper_case(path, "lines 1 and 2 swapped", swap_lines12, "line 1", NULL);
    tamper_case(path, "count edited in line 1", edit_details_line1, "line 2", "line 1");
    tamper_case(path, "last line reformatted", respace_last, "line 3", "form");
    tamper_case(path, "last line re-escaped", escape_last, "line 3", "form");
}

static void test_refusals(const char *path)
{
    write_three(path);
    size_t before = 0, after = 0;
    char *b = slurp(path, &before);
    hp_error err = {0};

    cJSON *arr = cJSON_CreateArray();
    OK(hp_audit_append(path, "x", NULL, arr, &err) == HP_ERR_INVALID && strstr(err.msg, "object"));
    cJSON_Delete(arr);

    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "mean", NAN);
    hp_error_clear(&err);
    OK(hp_audit_append(path, "x", NULL, d, &err) == HP_ERR_INVALID && strstr(err.msg, "NaN") &&
       strstr(err.msg, "mean"));
    cJSON_Delete(d);

    hp_error_clear(&err);
    OK(hp_audit_append(path, "", NULL, NULL, &err) == HP_ERR_INVALID && strstr(err.msg, "empty"));
    hp_error_clear(&err);
    OK(hp_audit_append(path, "report.sign", "caf\xe9", NULL, &err) == HP_ERR_INVALID &&
       strstr(err.msg, "UTF-8"));

    char *a = slurp(path, &after);
    OK(a && b && before == after && memcmp(a, b, before) == 0);
    free(a);
    free(b);

    /* A folder that does not exist: an I/O error naming the path. */
    char missing[320];
    snprintf(missing, sizeof missing, "%s/no/such/audit.jsonl", dir);
    hp_error_clear(&err);
    OK(hp_audit_append(missing, "x", NULL, NULL, &err) == HP_ERR_IO && strstr(err.msg, "no/such"));
}

/* hp_audit_append_at writes the time given (so a signature and its event name the same moment),
 * refuses a malformed one, and hp_audit_read hands back each line and its hash. */
static void test_append_at_and_read(const char *path)
{
    unlink(path);
    hp_error err = {0};
    OK(hp_audit_append_at(path, "2026-12-05T10:00:00Z", "build", NULL, NULL, &err) == HP_OK);
    OK(hp_audit_append_at(path, NULL, "sign", "dr-okafor", NULL, &err) == HP_OK);
    hp_error_clear(&err);
    OK(hp_audit_append_at(path, "2026-12-05 10:00", "sign", NULL, NULL, &err) == HP_ERR_INVALID &&
       strstr(err.msg, "YYYY"));
    hp_audit_log log;
    hp_error_clear(&err);
    hp_status st = hp_audit_read(path, &log, &err);
    CHECK_MSG(st == HP_OK, "%s", err.msg);
    if (st)
        return;
    OK(log.n == 2 && cJSON_GetArraySize(log.events) == 2);
    const cJSON *first = cJSON_GetArrayItem(log.events, 0);
    OK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(first, "time")), "2026-12-05T10:00:00Z"));
    size_t len = 0;
    char *text = slurp(path, &len), h1[65];
    CHECK(text != NULL);
    if (text) {
        hp_sha256_hex(text, line_start(text, 2) - 1, h1);
        OK(!strcmp(hp_audit_line_sha256(&log, 1), h1));
        OK(!strncmp(hp_audit_line_sha256(&log, 0), "0000000000", 10));
        OK(hp_audit_line_sha256(&log, 3) == NULL);
        /* The second line carries the first one's hash. */
        OK(strstr(text + line_start(text, 2), h1) != NULL);
    }
    free(text);
    hp_audit_log_free(&log);
    hp_audit_log_free(NULL);
}

static void test_concurrent(const char *path)
{
    unlink(path);
    enum { PROCS = 4, EACH = 15 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            hp_error err = {0};
            for (int i = 0; i < EACH; i++) {
                cJSON *d = cJSON_CreateObject();
                cJSON_AddNumberToObject(d, "proc", p);
                cJSON_AddNumberToObject(d, "i", i);
                hp_status st = hp_audit_append(path, "test.concurrent", NULL, d, &err);
                cJSON_Delete(d);
                if (st) {
                    fprintf(stderr, "child %d: %s\n", p, err.msg);
                    _exit(1);
                }
            }
            _exit(0);
        }
    }
    int all_ok = 1;
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        all_ok &= pids[p] > 0 && waitpid(pids[p], &status, 0) == pids[p] && WIFEXITED(status) &&
                  WEXITSTATUS(status) == 0;
    }
    OK(all_ok);
    hp_error err = {0};
    size_t n = 0;
    hp_status st = hp_audit_verify(path, &n, &err);
    CHECK_MSG(st == HP_OK, "%s", err.msg);
    OK(st == HP_OK && n == PROCS * EACH);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/hp_audit_XXXXXX", hp_test_env("TMPDIR", "/tmp"));
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[320];
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    test_chain(path);
    test_tampering(path);
    test_refusals(path);
    test_append_at_and_read(path);
    test_concurrent(path);
    unlink(path);
    rmdir(dir);
    return hp_test_finish("test_audit_log", passed);
}
