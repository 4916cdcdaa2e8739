/* common/output_dir.h: the marker of folders histoplan makes, and the removal of partial folders
 * whose process has ended. A live process's folder is never removed (a child process marks one
 * and keeps running), nor is one made on another host, one whose pid has been reused by a later
 * process is, and folders without the marker are left alone (an empty one only after a grace
 * period). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>

#include "common/output_dir.h"
#include "common/remove_tree.h"
#include "util/testutil.h"

static int passed;
static char root[256];

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static const char *sub(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
    return buf[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Replaces the value of line `key` in dir's marker. */
static void edit_marker(const char *dir, const char *key, const char *value)
{
    char path[600], text[2048], out[2048] = "";
    snprintf(path, sizeof path, "%s/%s", dir, HP_OUTPUT_MARKER);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        size_t kl = strlen(key);
        if (!strncmp(l, key, kl) && l[kl] == ' ')
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s %s\n", key, value);
        else
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s\n", l);
    }
    write_text(path, out);
}

static void test_live_child(void)
{
    const char *dir = sub("live.partial");
    CHECK(mkdir(dir, 0755) == 0);
    int ready[2], release[2];
    if (pipe(ready) || pipe(release)) {
        CHECK(!"pipe");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(release[1]); /* else its own copy keeps the pipe open and read() never ends */
        hp_error err = {0};
        char c = hp_output_dir_mark(dir, HP_OUTPUT_KIND_ANALYSIS, &err) == HP_OK ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        if (read(release[0], &c, 1) < 0) /* until the parent closes its end */
            _exit(3);
        _exit(0);
    }
    close(release[0]);
    char c = 0;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
    char who[256];
    CHECK(hp_output_dir_owner(dir, who, sizeof who) == HP_OUTPUT_OWNER_RUNNING);
    char want[64];
    snprintf(want, sizeof want, "process %ld on this host", (long)pid);
    CHECK_MSG(strstr(who, want) != NULL, "%s", who);
    CHECK(hp_output_dir_is_kind(dir, HP_OUTPUT_KIND_ANALYSIS));
    CHECK(!hp_output_dir_is_kind(dir, HP_OUTPUT_KIND_REPORT));
    CHECK(hp_output_dir_reclaim(dir, HP_OUTPUT_KIND_ANALYSIS) == 0 && exists(dir));
    close(release[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(hp_output_pid_gone(pid));
    CHECK(hp_output_dir_owner(dir, NULL, 0) == HP_OUTPUT_OWNER_GONE);
    CHECK(hp_output_dir_reclaim(dir, HP_OUTPUT_KIND_REPORT) == 0 && exists(dir)); /* another kind */
    CHECK(hp_output_dir_reclaim(dir, HP_OUTPUT_KIND_ANALYSIS) == 1 && !exists(dir));
    close(ready[0]);
    close(ready[1]);
    passed++;
}

static void test_own_marker(void)
{
    const char *dir = sub("mine.partial");
    hp_error err = {0};
    CHECK(mkdir(dir, 0755) == 0 && hp_output_dir_mark(dir, HP_OUTPUT_KIND_REPORT, &err) == HP_OK);
    CHECK(hp_output_dir_mark(dir, HP_OUTPUT_KIND_REPORT, &err) != HP_OK); /* never overwritten */
    write_text(sub("mine.partial/report.json"), "{}");
    /* The marker tells hosts apart without naming this one (report folders are passed on). */
    char mpath[600], text[1024] = "", host[256] = "";
    snprintf(mpath, sizeof mpath, "%s/%s", dir, HP_OUTPUT_MARKER);
    FILE *f = fopen(mpath, "r");
    if (f) {
        text[fread(text, 1, sizeof text - 1, f)] = '\0';
        fclose(f);
    }
    gethostname(host, sizeof host - 1);
    char line[300];
    snprintf(line, sizeof line, "host %s\n", host);
    CHECK_MSG(strstr(text, "\nhost ") && !strstr(text, line), "marker: %s", text);
    CHECK(hp_output_dir_owner(dir, NULL, 0) == HP_OUTPUT_OWNER_RUNNING); /* this process */
    CHECK(hp_output_dir_reclaim(dir, HP_OUTPUT_KIND_REPORT) == 0 && exists(dir));
    /* The same pid with another start time: a later process reusing the number. */
    edit_marker(dir, "start", "1");
    CHECK(hp_output_dir_owner(dir, NULL, 0) == HP_OUTPUT_OWNER_GONE);
    /* Made on another host: this one cannot tell, so it is left alone. */
    edit_marker(dir, "host", "some-other-host");
    CHECK(hp_output_dir_owner(dir, NULL, 0) == HP_OUTPUT_OWNER_UNKNOWN);
    CHECK(hp_output_dir_reclaim(dir, HP_OUTPUT_KIND_REPORT) == 0 && exists(dir));
    hp_remove_tree(dir);
    passed++;
}

static void test_unmarked(void)
{
    /* A user's folder under a partial name: never removed. */
    const char *dir = sub("users.partial");
    CHECK(mkdir(dir, 0755) == 0);
    write_text(sub("users.partial/notes.txt"), "mine\n");
    CHECK(!hp_output_dir_is_kind(dir, HP_OUTPUT_KIND_ANALYSIS));
    CHECK(hp_output_dir_owner(dir, NULL, 0) == HP_OUTPUT_OWNER_UNKNOWN);
    CHECK(hp_output_dir_reclaim(dir, HP_OUTPUT_KIND_ANALYSIS) == 0 && exists(sub("users.partial/notes.txt")));
    /* A marker that is a symbolic link does not count. */
    CHECK(symlink("/etc/hostname", sub("users.partial/" HP_OUTPUT_MARKER)) == 0);
    CHECK(!hp_output_dir_is_kind(dir, HP_OUTPUT_KIND_ANALYSIS));
    CHECK(hp_output_dir_reclaim(dir, HP_OUTPUT_KIND_ANALYSIS) == 0 && exists(dir));
    hp_remove_tree(dir);
    /* Empty and unmarked: a run may be about to mark it, unless it is older than a minute. */
    const char *empty = sub("empty.partial");
    CHECK(mkdir(empty, 0755) == 0 && hp_output_dir_is_empty(empty));
    CHECK(hp_output_dir_reclaim(empty, HP_OUTPUT_KIND_ANALYSIS) == 0 && exists(empty));
    struct utimbuf old = {.actime = 1000000000, .modtime = 1000000000};
    CHECK(utime(empty, &old) == 0);
    CHECK(hp_output_dir_reclaim(empty, HP_OUTPUT_KIND_ANALYSIS) == 1 && !exists(empty));
    CHECK(hp_output_dir_reclaim(sub("absent.partial"), HP_OUTPUT_KIND_ANALYSIS) == 0);
    passed++;
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/hp_test_output_dir_%d", (int)getpid());
    if (mkdir(root, 0755) != 0) {
        fprintf(stderr, "cannot create %s: %s\n", root, strerror(errno));
        return 1;
    }
    test_live_child();
    test_own_marker();
    test_unmarked();
    hp_remove_tree(root);
    return hp_test_finish("test_output_dir", passed);
}
