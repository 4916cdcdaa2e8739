/* Hash-chained append-only audit log: see audit_log.h. */
#include "report/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/utc_time.h"
#include "common/utf8.h"
#include "report/canonical_json.h"
#include "report/signature.h"

static const char zero_hash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* An audit log grows by one short line per report; far beyond this it is not one of ours. */
#define AUDIT_MAX_BYTES ((off_t)1 << 30)

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static char *json_string(const char *s, hp_error *err);

/* The line as hp_audit_append writes it from its parsed members; NULL with err set on failure. */
static char *format_line(const char *path, size_t seq, const char *stamp, const char *event, const char *actor,
                         const cJSON *details, const char *prev, hp_error *err)
{
    char *tm = NULL, *ev = NULL, *ac = NULL, *det = NULL, *line = NULL;
    hp_error sub = {0};
    if (!(tm = json_string(stamp, err)) || !(ev = json_string(event, err)) || (actor && !(ac = json_string(actor, err))))
        goto fail;
    if (details && !(det = hp_json_canonicalize(details, NULL, &sub))) {
        hp_error_set(err, sub.code ? sub.code : HP_ERR_INVALID, "%s: audit event \"%.100s\": details refused: %s",
                     path, event, sub.msg);
        goto fail;
    }
    if (asprintf(&line, "{\"seq\":%zu,\"time\":%s,\"event\":%s,\"actor\":%s,\"details\":%s,\"prev_sha256\":\"%s\"}\n",
                 seq, tm, ev, ac ? ac : "null", det ? det : "{}", prev) < 0) {
        line = NULL;
        hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory building an audit line", path);
    }
fail:
    free(tm);
    free(ev);
    free(ac);
    free(det);
    return line;
}

/* A line whose bytes differ from what the writer makes of its own members was edited. */
static hp_status check_form(const char *path, const char *line, size_t len, size_t lineno, const cJSON *o,
                            hp_error *err)
{
    const cJSON *actor = cJSON_GetObjectItemCaseSensitive(o, "actor");
    hp_error sub = {0};
    char *want = format_line(path, lineno, cJSON_GetObjectItemCaseSensitive(o, "time")->valuestring,
                             cJSON_GetObjectItemCaseSensitive(o, "event")->valuestring,
                             cJSON_IsString(actor) ? actor->valuestring : NULL,
                             cJSON_GetObjectItemCaseSensitive(o, "details"),
                             cJSON_GetObjectItemCaseSensitive(o, "prev_sha256")->valuestring, &sub);
    hp_status st = HP_OK;
    if (!want || strlen(want) != len + 1 || memcmp(want, line, len))
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: line %zu is not in the form histoplan writes (member order, spacing or "
                          "escaping changed: the line was edited)%s%s",
                          path, lineno, want ? "" : ": ", want ? "" : sub.msg);
    free(want);
    return st;
}

/* Checks one line (without its newline) against its position and the previous line's hash. */
static hp_status check_line(const char *path, const char *line, size_t len, size_t lineno,
                            const char *prev_hash, cJSON **parsed, hp_error *err)
{
    static const char *const allowed[] = {"seq", "time", "event", "actor", "details", "prev_sha256"};
    hp_status st = HP_OK;
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!o || !cJSON_IsObject(o)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: line %zu is not a JSON object (edited or damaged)",
                          path, lineno);
        goto done;
    }
    size_t n_members = 0;
    for (const cJSON *c = o->child; c; c = c->next) {
        int known = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            known |= c->string && strcmp(c->string, allowed[i]) == 0;
        if (!known) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: line %zu has an unknown field \"%.100s\"",
                              path, lineno, c->string ? c->string : "");
            goto done;
        }
        n_members++;
    }
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(o, "time");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "event");
    const cJSON *actor = cJSON_GetObjectItemCaseSensitive(o, "actor");
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(o, "details");
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, "prev_sha256");
    if (n_members != 6 || !cJSON_IsNumber(seq) || !cJSON_IsString(tm) || !cJSON_IsString(ev) ||
        !(cJSON_IsString(actor) || cJSON_IsNull(actor)) || !cJSON_IsObject(det) ||
        !cJSON_IsString(prev) || !is_hex64(prev->valuestring)) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: line %zu lacks a field or has one of the wrong type (needs seq, "
                          "time, event, actor, details, prev_sha256, each once)",
                          path, lineno);
        goto done;
    }
    if (seq->valuedouble != (double)lineno) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: line %zu has seq %.0f, expected %zu (a line was deleted, inserted "
                          "or moved)",
                          path, lineno, seq->valuedouble, lineno);
        goto done;
    }
    /* The chain protects every line but the last; requiring the exact bytes the writer makes
     * (member order, no spaces, canonical strings and details) protects the last one's form too,
     * so each byte of the log is accounted for. */
    if ((st = check_form(path, line, len, lineno, o, err)))
        goto done;
    if (strcmp(prev->valuestring, prev_hash) != 0) {
        st = lineno == 1
                 ? hp_error_set(err, HP_ERR_INVALID,
                                "%s: line 1 has a prev_sha256 that is not all zeros (the log's "
                                "beginning was removed)",
                                path)
                 : hp_error_set(err, HP_ERR_INVALID,
                                "%s: line %zu's prev_sha256 does not match line %zu (line %zu was "
                                "edited, or a line was removed or inserted)",
                                path, lineno, lineno - 1, lineno - 1);
        goto done;
    }
done:
    if (st == HP_OK && parsed)
        *parsed = o;
    else
        cJSON_Delete(o);
    return st;
}

/* Walks the log in `buf`; on success gives the count and the last line's hash, and when `log` is
 * not NULL every parsed line and its hash. */
static hp_status check_log(const char *path, const char *buf, size_t len, size_t *n_events,
                           char last_hash[65], hp_audit_log *log, hp_error *err)
{
    memcpy(last_hash, zero_hash, 65);
    size_t lineno = 0, pos = 0;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: line %zu is incomplete (no final newline: a write was cut "
                                "short or the log was truncated)",
                                path, lineno);
        size_t n = (size_t)(nl - (buf + pos));
        if (memchr(buf + pos, '\0', n))
            return hp_error_set(err, HP_ERR_INVALID, "%s: line %zu contains a NUL byte", path, lineno);
        cJSON *parsed = NULL;
        hp_status st = check_line(path, buf + pos, n, lineno, last_hash, log ? &parsed : NULL, err);
        if (st)
            return st;
        if (hp_sha256_hex(buf + pos, n, last_hash)) {
            cJSON_Delete(parsed);
            return hp_error_set(err, HP_ERR_INVALID, "%s: SHA-256 failed", path);
        }
        if (log) {
            char(*grown)[65] = realloc(log->line_sha256, lineno * sizeof *grown);
            if (!grown) {
                cJSON_Delete(parsed);
                return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory reading the audit log", path);
            }
            log->line_sha256 = grown;
            memcpy(grown[lineno - 1], last_hash, 65);
            cJSON_AddItemToArray(log->events, parsed);
            log->n = lineno;
        }
        pos += n + 1;
    }
    if (n_events)
        *n_events = lineno;
    return HP_OK;
}

/* Reads the whole open file from offset 0 (pread: O_APPEND does not constrain reads). */
static hp_status read_fd(const char *path, int fd, char **out, size_t *len, hp_error *err)
{
    *out = NULL;
    *len = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot stat the audit log: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return hp_error_set(err, HP_ERR_INVALID, "%s: the audit log is not a regular file", path);
    if (sb.st_size > AUDIT_MAX_BYTES)
        return hp_error_set(err, HP_ERR_INVALID, "%s: the audit log is larger than %lld bytes", path,
                            (long long)AUDIT_MAX_BYTES);
    size_t size = (size_t)sb.st_size;
    char *buf = malloc(size + 1);
    if (!buf)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory reading the audit log", path);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return hp_error_set(err, HP_ERR_IO, "%s: read error on the audit log%s%s", path,
                                r < 0 ? ": " : " (file shrank while read)", r < 0 ? strerror(errno) : "");
        }
        got += (size_t)r;
    }
    buf[size] = '\0';
    *out = buf;
    *len = size;
    return HP_OK;
}

/* Opens, share-locks, reads and checks the log; `log` (may be NULL) receives its lines. */
static hp_status read_log(const char *path, size_t *n_events, hp_audit_log *log, hp_error *err)
{
    if (n_events)
        *n_events = 0;
    if (!path)
        return hp_error_set(err, HP_ERR_INVALID, "hp_audit_verify: NULL path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open the audit log: %s", path, strerror(errno));
    /* A shared lock: never read a line that an appender is halfway through writing. */
    while (flock(fd, LOCK_SH) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return hp_error_set(err, HP_ERR_IO, "%s: cannot lock the audit log: %s", path, strerror(e));
        }
    }
    char *buf = NULL;
    size_t len = 0;
    char last[65];
    hp_status st = read_fd(path, fd, &buf, &len, err);
    if (!st)
        st = check_log(path, buf, len, n_events, last, log, err);
    free(buf);
    close(fd); /* releases the lock */
    return st;
}

hp_status hp_audit_verify(const char *path, size_t *n_events, hp_error *err)
{
    return read_log(path, n_events, NULL, err);
}

hp_status hp_audit_read(const char *path, hp_audit_log *log, hp_error *err)
{
    if (!log)
        return hp_error_set(err, HP_ERR_INVALID, "hp_audit_read: NULL log");
    memset(log, 0, sizeof *log);
    if (!(log->events = cJSON_CreateArray()))
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory reading the audit log", path);
    hp_status st = read_log(path, NULL, log, err);
    if (st)
        hp_audit_log_free(log);
    return st;
}

void hp_audit_log_free(hp_audit_log *log)
{
    if (!log)
        return;
    cJSON_Delete(log->events);
    free(log->line_sha256);
    memset(log, 0, sizeof *log);
}

const char *hp_audit_line_sha256(const hp_audit_log *log, size_t k)
{
    return k == 0 ? zero_hash : k <= log->n ? log->line_sha256[k - 1] : NULL;
}

static char *json_string(const char *s, hp_error *err)
{
    cJSON *node = cJSON_CreateString(s);
    if (!node) {
        hp_error_set(err, HP_ERR_NOMEM, "audit log: out of memory");
        return NULL;
    }
    char *out = hp_json_canonicalize(node, NULL, err);
    cJSON_Delete(node);
    return out;
}

/* After a file is created its directory entry must be durable too. */
static void sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
}

hp_status hp_audit_append(const char *path, const char *event, const char *actor,
                          const cJSON *details, hp_error *err)
{
    return hp_audit_append_at(path, NULL, event, actor, details, err);
}

static int is_utc_stamp(const char *s)
{
    static const char form[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof form - 1)
        return 0;
    for (size_t i = 0; form[i]; i++)
        if (form[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != form[i])
            return 0;
    return 1;
}

hp_status hp_audit_append_at(const char *path, const char *stamp, const char *event, const char *actor,
                             const cJSON *details, hp_error *err)
{
    if (!path || !event)
        return hp_error_set(err, HP_ERR_INVALID, "hp_audit_append: NULL argument");
    if (!*event)
        return hp_error_set(err, HP_ERR_INVALID, "%s: audit event name is empty", path);
    if (details && !cJSON_IsObject(details))
        return hp_error_set(err, HP_ERR_INVALID, "%s: audit event \"%.100s\": details must be a JSON object",
                            path, event);
    hp_status st = HP_OK;
    char *line = NULL, *old = NULL;
    int fd = -1;

    /* Everything that can be refused is built before the log is touched. */
    if (hp_utf8_invalid_at(event, strlen(event)) != (size_t)-1)
        return hp_error_set(err, HP_ERR_INVALID, "%s: audit event name is not valid UTF-8", path);
    if (actor && hp_utf8_invalid_at(actor, strlen(actor)) != (size_t)-1)
        return hp_error_set(err, HP_ERR_INVALID, "%s: audit event \"%.100s\": actor is not valid UTF-8",
                            path, event);
    char now[HP_UTC_TIME_LEN];
    if (stamp && !is_utc_stamp(stamp))
        return hp_error_set(err, HP_ERR_INVALID, "%s: audit event \"%.100s\": time \"%.40s\" is not "
                            "YYYY-MM-DDThh:mm:ssZ", path, event, stamp);
    if (!stamp) {
        if (hp_utc_format(time(NULL), now))
            return hp_error_set(err, HP_ERR_INVALID, "%s: cannot format the current time", path);
        stamp = now;
    }
    /* A trial run of the line: details that cannot be canonicalized are refused here. */
    if (!(line = format_line(path, 1, stamp, event, actor, details, zero_hash, err)))
        return err && err->code ? err->code : HP_ERR_INVALID;
    free(line);
    line = NULL;

    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = hp_error_set(err, HP_ERR_IO, "%s: cannot open the audit log: %s", path, strerror(errno));
        goto fail;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            st = hp_error_set(err, HP_ERR_IO, "%s: cannot lock the audit log: %s", path, strerror(errno));
            goto fail;
        }
    }
    size_t old_len = 0, n = 0;
    char prev[65];
    if ((st = read_fd(path, fd, &old, &old_len, err)))
        goto fail;
    hp_error sub = {0};
    if ((st = check_log(path, old, old_len, &n, prev, NULL, &sub))) {
        st = hp_error_set(err, st, "refusing to append to an audit log that fails verification: %s",
                          sub.msg);
        goto fail;
    }
    if (!(line = format_line(path, n + 1, stamp, event, actor, details, prev, err))) {
        st = err && err->code ? err->code : HP_ERR_NOMEM;
        goto fail;
    }
    size_t m = strlen(line);
    /* One write() of the whole line: with O_APPEND and the lock held it lands whole at the end. */
    ssize_t w;
    do
        w = write(fd, line, m);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)m) {
        int e = errno;
        /* A short write leaves a partial line; cut it off so the log stays verifiable. */
        if (w > 0 && ftruncate(fd, (off_t)old_len) != 0)
            e = errno;
        st = hp_error_set(err, HP_ERR_IO, "%s: cannot write the audit line: %s", path,
                          w < 0 ? strerror(e) : "short write");
        goto fail;
    }
    if (fsync(fd) != 0) {
        st = hp_error_set(err, HP_ERR_IO, "%s: cannot sync the audit log: %s", path, strerror(errno));
        goto fail;
    }
    if (old_len == 0)
        sync_parent(path);
fail:
    if (fd >= 0)
        close(fd);
    free(line);
    free(old);
    return st;
}
