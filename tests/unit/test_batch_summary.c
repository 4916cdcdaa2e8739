/* pipeline/batch_summary.h and common/file_lock.h: the rules by which runs sharing an output
 * folder merge batch-summary.json (an entry replaces its input's entry, except that "not-started"
 * never replaces anything and "skipped" never replaces the "done" of the run that made the
 * result; counts recomputed; a file that is not a summary replaced), the scrub of the slide's
 * path from messages, and the lock between processes (busy while another holds it, free once
 * its holder has died, its file gone after release, the holder named). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/file_lock.h"
#include "common/remove_tree.h"
#include "pipeline/batch_summary.h"
#include "util/testutil.h"

static int passed;
static char root[256];

static cJSON *read_summary(void)
{
    char path[512], buf[1 << 16];
    snprintf(path, sizeof path, "%s/batch-summary.json", root);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

static const char *status_of(const cJSON *doc, const char *input_sha256)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "results"))
    {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "input_sha256");
        if (cJSON_IsString(h) && !strcmp(h->valuestring, input_sha256))
            return cJSON_GetObjectItemCaseSensitive(it, "status")->valuestring;
    }
    return "";
}

static int count(const cJSON *doc, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(doc, key)->valueint;
}

static void entry(hp_batch_entry *e, const char *path, hp_batch_status st, const char *id)
{
    hp_batch_entry_init(e, path);
    e->status = st;
    snprintf(e->slide_id, sizeof e->slide_id, "%s", id);
    if (st == HP_BATCH_FAILED)
        e->error = HP_ANALYZE_FAIL_UNREADABLE;
}

static void test_merge(void)
{
    hp_error err = {0};
    hp_batch_entry a, b, c;
    /* A file that is not a summary of this version is replaced. */
    char path[512];
    snprintf(path, sizeof path, "%s/batch-summary.json", root);
    FILE *f = fopen(path, "w");
    fputs("{\"slides\": 1, \"results\": [{\"index\": 0}]}\n", f);
    fclose(f);

    entry(&a, "/data/slides/a.svs", HP_BATCH_DONE, "aaaaaaaaaaaa");
    entry(&b, "/data/slides/b.svs", HP_BATCH_FAILED, "bbbbbbbbbbbb");
    hp_batch_entry two[2] = {a, b};
    int totals[5];
    CHECK_COUNT(passed, hp_batch_summary_merge(root, two, 2, totals, &err) == HP_OK);
    CHECK_COUNT(passed, totals[HP_BATCH_DONE] == 1 && totals[HP_BATCH_FAILED] == 1);
    cJSON *doc = read_summary();
    CHECK_COUNT(passed, doc && count(doc, "schema_version") == HP_BATCH_SUMMARY_VERSION && count(doc, "slides") == 2);
    cJSON_Delete(doc);

    /* Another process: a skipped a (it found a's result) keeps a's done; b done now replaces b's
     * failure; c not started is added; then a later not-started a changes nothing. */
    entry(&a, "/data/slides/a.svs", HP_BATCH_SKIPPED, "aaaaaaaaaaaa");
    entry(&b, "/data/slides/b.svs", HP_BATCH_DONE, "bbbbbbbbbbbb");
    entry(&c, "/data/slides/c.svs", HP_BATCH_NOT_STARTED, "");
    hp_batch_entry three[3] = {a, b, c};
    CHECK_COUNT(passed, hp_batch_summary_merge(root, three, 3, NULL, &err) == HP_OK);
    entry(&a, "/data/slides/a.svs", HP_BATCH_NOT_STARTED, "");
    CHECK_COUNT(passed, hp_batch_summary_merge(root, &a, 1, totals, &err) == HP_OK);
    doc = read_summary();
    CHECK_COUNT(passed, doc && count(doc, "slides") == 3 && count(doc, "done") == 2 && count(doc, "failed") == 0 &&
                            count(doc, "not_started") == 1);
    CHECK_COUNT(passed, doc && !strcmp(status_of(doc, a.input_sha256), "done"));
    CHECK_COUNT(passed, doc && !strcmp(status_of(doc, b.input_sha256), "done"));
    CHECK_COUNT(passed, doc && !strcmp(status_of(doc, c.input_sha256), "not-started"));
    cJSON_Delete(doc);

    /* A failure of a later run replaces a done (the folder was, say, refused). */
    entry(&a, "/data/slides/a.svs", HP_BATCH_FAILED, "aaaaaaaaaaaa");
    CHECK_COUNT(passed, hp_batch_summary_merge(root, &a, 1, NULL, &err) == HP_OK);
    doc = read_summary();
    CHECK_COUNT(passed, doc && !strcmp(status_of(doc, a.input_sha256), "failed"));
    char *text = cJSON_PrintUnformatted(doc);
    CHECK_COUNT(passed, text && !strstr(text, "/data/slides") && !strstr(text, "a.svs"));
    free(text);
    cJSON_Delete(doc);

    /* The input key is the absolute path: a relative name and its absolute form agree. */
    char cwd[256], abs[600];
    hp_batch_entry r1, r2;
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(abs, sizeof abs, "%s/rel_slide.svs", cwd);
    hp_batch_entry_init(&r1, "rel_slide.svs");
    hp_batch_entry_init(&r2, abs);
    CHECK_COUNT(passed, !strcmp(r1.input_sha256, r2.input_sha256) && strlen(r1.input_sha256) == 64);
}

static void test_scrub(void)
{
    hp_batch_entry e;
    const char *path = "/data/Jane_Doe/Jane_Doe_biopsy.svs";
    hp_batch_entry_init(&e, path);
    hp_batch_entry_set_message(&e, "/data/Jane_Doe/Jane_Doe_biopsy.svs: cannot open (Jane_Doe_biopsy.svs)", path);
    CHECK_COUNT(passed, !strstr(e.message, "Jane") && strstr(e.message, "<slide>: cannot open"));
    /* A message cut short inside the path. */
    hp_batch_entry_set_message(&e, "cannot read /data/Jane_Doe/Jane_D", path);
    CHECK_COUNT(passed, !strstr(e.message, "Jane") && strstr(e.message, "cannot read <slide>"));
}

static void test_lock(void)
{
    char path[512], who[320];
    snprintf(path, sizeof path, "%s/x.lock", root);
    hp_file_lock a, b;
    int busy = -1;
    hp_error err = {0};
    CHECK_COUNT(passed, hp_file_lock_take(path, 0, NULL, &a, &busy, &err) == HP_OK && !busy);
    /* Another open file description, as another process would have: busy. */
    CHECK_COUNT(passed, hp_file_lock_take(path, 0, NULL, &b, &busy, &err) == HP_OK && busy);
    hp_file_lock_holder(path, who, sizeof who);
    char want[64];
    snprintf(want, sizeof want, "process %ld on this host", (long)getpid());
    CHECK_COUNT(passed, !strcmp(who, want));
    hp_file_lock_release(&a);
    CHECK_COUNT(passed, access(path, F_OK) != 0); /* removed on release */

    /* A holder that dies (SIGKILL: no cleanup) frees the lock; its file stays until taken. */
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        hp_file_lock l;
        int bz;
        hp_file_lock_take(path, 0, NULL, &l, &bz, NULL);
        (void)!write(pipefd[1], "x", 1);
        pause();
        _exit(0);
    }
    char ch;
    CHECK(read(pipefd[0], &ch, 1) == 1);
    CHECK_COUNT(passed, hp_file_lock_take(path, 0, NULL, &b, &busy, &err) == HP_OK && busy);
    hp_file_lock_holder(path, who, sizeof who);
    snprintf(want, sizeof want, "process %ld on this host", (long)pid);
    CHECK_COUNT(passed, !strcmp(who, want));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK_COUNT(passed, access(path, F_OK) == 0);
    /* Waiting: returns once it is free (it is, now). */
    CHECK_COUNT(passed, hp_file_lock_take(path, 1, NULL, &b, &busy, &err) == HP_OK && !busy);
    hp_file_lock_release(&b);
    CHECK_COUNT(passed, access(path, F_OK) != 0);
    close(pipefd[0]);
    close(pipefd[1]);

    /* Waiting with a cancel flag already set gives up at once. */
    volatile sig_atomic_t stop = 1;
    CHECK_COUNT(passed, hp_file_lock_take(path, 1, &stop, &b, &busy, &err) == HP_OK && busy);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/hp_test_batch_summary_%ld", (long)getpid());
    mkdir(root, 0755);
    test_merge();
    test_scrub();
    test_lock();
    hp_remove_tree(root);
    return hp_test_finish("test_batch_summary", passed);
}
