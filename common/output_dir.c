#include "common/output_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/remove_tree.h"

#define MARKER_MAX 1024
#define EMPTY_GRACE_S 60 /* an unmarked empty partial folder younger than this may be a run's */

/* Process start time in clock ticks since boot (field 22 of /proc/PID/stat), 0 when unknown.
 * With the pid it names one process: a pid reused after the first process ended has another
 * start time. */
static unsigned long long start_time_of(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces or ')': count from the
     * last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return 0;
    }
    return strtoull(p + 1, NULL, 10);
}

static void boot_id(char out[64])
{
    out[0] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    if (!fgets(out, 64, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
}

/* The host as a 64-bit FNV-1a hash in hex: enough to tell this host from another, while a report
 * folder that is passed on does not name the machine that made it. */
static void host_name(char out[256])
{
    char name[256];
    if (gethostname(name, sizeof name) != 0)
        name[0] = '\0';
    name[255] = '\0';
    if (!name[0]) {
        out[0] = '\0';
        return;
    }
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    snprintf(out, 256, "%016llx", (unsigned long long)h);
}

static int join(char *out, size_t n, const char *dir, const char *name)
{
    int w = snprintf(out, n, "%s/%s", dir, name);
    return w > 0 && (size_t)w < n ? 0 : -1;
}

hp_status hp_output_dir_mark(const char *dir, const char *kind, hp_error *err)
{
    char path[4096], host[256], boot[64];
    if (join(path, sizeof path, dir, HP_OUTPUT_MARKER))
        return hp_error_set(err, HP_ERR_INVALID, "%s: path too long", dir);
    host_name(host);
    boot_id(boot);
    long pid = (long)getpid();
    char text[MARKER_MAX];
    int len = snprintf(text, sizeof text,
                       "histoplan-output 1\nkind %s\nhost %s\nboot %s\npid %ld\nstart %llu\n", kind,
                       host[0] ? host : "-", boot[0] ? boot : "-", pid, start_time_of(pid));
    if (len <= 0 || (size_t)len >= sizeof text)
        return hp_error_set(err, HP_ERR_INVALID, "%s: marker too long", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return hp_error_set(err, HP_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    ssize_t w = write(fd, text, (size_t)len);
    int bad = w != len;
    bad |= close(fd) != 0;
    if (bad)
        return hp_error_set(err, HP_ERR_IO, "cannot write %s", path);
    return HP_OK;
}

/* Reads the marker of `dir` into `text` (NUL-terminated); -1 when absent or not a plain file. */
static int read_marker(const char *dir, char text[MARKER_MAX])
{
    char path[4096];
    if (join(path, sizeof path, dir, HP_OUTPUT_MARKER))
        return -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        n = read(fd, text, MARKER_MAX - 1);
    close(fd);
    if (n < 0)
        return -1;
    text[n] = '\0';
    return strncmp(text, "histoplan-output 1\n", 19) == 0 ? 0 : -1;
}

/* The value of line `key` in a marker, copied into out (n bytes); "" when absent. */
static void field(const char *text, const char *key, char *out, size_t n)
{
    size_t kl = strlen(key);
    out[0] = '\0';
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (!strncmp(l, key, kl) && l[kl] == ' ') {
            size_t vl = strcspn(l + kl + 1, "\n");
            if (vl >= n)
                vl = n - 1;
            memcpy(out, l + kl + 1, vl);
            out[vl] = '\0';
            return;
        }
    }
}

int hp_output_dir_is_kind(const char *dir, const char *kind)
{
    struct stat st;
    char text[MARKER_MAX], k[64];
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || read_marker(dir, text))
        return 0;
    field(text, "kind", k, sizeof k);
    return strcmp(k, kind) == 0;
}

int hp_output_dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

int hp_output_pid_gone(long pid)
{
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static hp_output_owner owner_of(const char *text, char *who, size_t who_len)
{
    char host[256], boot[64], pid_s[32], start_s[32], my_host[256], my_boot[64];
    field(text, "host", host, sizeof host);
    field(text, "boot", boot, sizeof boot);
    field(text, "pid", pid_s, sizeof pid_s);
    field(text, "start", start_s, sizeof start_s);
    long pid = strtol(pid_s, NULL, 10);
    unsigned long long start = strtoull(start_s, NULL, 10);
    host_name(my_host);
    if (who)
        snprintf(who, who_len, "process %ld on %s", pid, host[0] && !strcmp(host, my_host) ? "this host" : "another host");
    if (pid <= 0 || !host[0] || strcmp(host, my_host))
        return HP_OUTPUT_OWNER_UNKNOWN;
    boot_id(my_boot);
    if (boot[0] && strcmp(boot, "-") && my_boot[0] && strcmp(boot, my_boot))
        return HP_OUTPUT_OWNER_GONE; /* the machine has restarted since */
    if (hp_output_pid_gone(pid))
        return HP_OUTPUT_OWNER_GONE;
    /* The pid is taken: by the same process, or by a later one that reuses the number. */
    unsigned long long now = start_time_of(pid);
    if (start && now && now != start)
        return HP_OUTPUT_OWNER_GONE;
    return HP_OUTPUT_OWNER_RUNNING;
}

hp_output_owner hp_output_dir_owner(const char *dir, char *who, size_t who_len)
{
    char text[MARKER_MAX];
    if (who && who_len)
        snprintf(who, who_len, "an unknown process");
    if (read_marker(dir, text))
        return HP_OUTPUT_OWNER_UNKNOWN;
    return owner_of(text, who, who_len);
}

int hp_output_dir_reclaim(const char *dir, const char *kind)
{
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    char text[MARKER_MAX], again[MARKER_MAX], k[64];
    if (read_marker(dir, text)) {
        /* Unmarked: only an empty folder old enough not to be a run's that is about to mark it. */
        if (hp_output_dir_is_empty(dir) && time(NULL) - st.st_mtime > EMPTY_GRACE_S)
            return rmdir(dir) == 0 ? 1 : 0;
        return 0;
    }
    field(text, "kind", k, sizeof k);
    if (strcmp(k, kind) || owner_of(text, NULL, 0) != HP_OUTPUT_OWNER_GONE)
        return 0;
    /* Aside first: another run may remove the same folder at the same time, or make a new one
     * under this name after we read the marker; only the folder we judged is removed. */
    size_t n = strlen(dir) + 48;
    char *aside = malloc(n);
    if (!aside)
        return -1;
    snprintf(aside, n, "%s.reclaim-%ld", dir, (long)getpid());
    int rc = 0;
    if (rename(dir, aside) == 0) {
        if (read_marker(aside, again) == 0 && strcmp(again, text) == 0)
            rc = hp_remove_tree(aside) == 0 ? 1 : -1;
        else if (rename(aside, dir) != 0)
            rc = -1; /* not ours after all, and the name is taken again: leave it aside */
    }
    free(aside);
    return rc;
}
