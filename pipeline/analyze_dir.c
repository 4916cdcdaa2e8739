/* OUT/<slide-id>/ and the folders and lock beside it while it is made (pipeline/analyze_dir.h). */
#include "pipeline/analyze_dir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/output_dir.h"
#include "common/remove_tree.h"
#include "common/utc_time.h"
#include "pipeline/analyze_key.h"

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static char *with_suffix(const char *a, const char *b, const char *suffix)
{
    size_t n = strlen(a) + strlen(b) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", a, b, suffix);
    return p;
}

/* An empty, unmarked OUT/<x>.partial is a run killed between making the folder and marking it.
 * That run held OUT/<x>.lock throughout; when the lock is free now, the folder is nobody's and
 * goes at once (rmdir removes only an empty folder), rather than after the minute that
 * hp_output_dir_reclaim waits for when it cannot ask the lock. */
static void remove_unmarked_if_unlocked(const char *out_dir, const char *name, const char *path)
{
    char base[NAME_MAX + 1];
    snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - strlen(".partial")), name);
    char *lock_path = with_suffix(out_dir, base, ".lock");
    hp_file_lock l;
    int busy = 1;
    if (lock_path && hp_file_lock_take(lock_path, 0, NULL, &l, &busy, NULL) == HP_OK && !busy) {
        rmdir(path);
        hp_file_lock_release(&l);
    }
    free(lock_path);
}

/* Leftovers of ended runs, whichever slide they were for (a killed batch leaves them, and the
 * next run into OUT may not analyze that slide again): every OUT/<x>.partial whose run has ended,
 * and every lock file no process holds (a killed holder leaves its file; taking the lock and
 * releasing it removes the file, and a lock someone holds, this process's own included, is
 * left alone). */
static void reclaim_leftovers(const char *out_dir)
{
    DIR *d = opendir(out_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        int partial = n > 8 && !strcmp(e->d_name + n - 8, ".partial");
        int lock = n > 5 && !strcmp(e->d_name + n - 5, ".lock");
        if (!partial && !lock)
            continue;
        char *p = with_suffix(out_dir, e->d_name, "");
        if (p && partial) {
            if (hp_output_dir_reclaim(p, HP_OUTPUT_KIND_ANALYSIS) == 0)
                remove_unmarked_if_unlocked(out_dir, e->d_name, p);
        } else if (p) {
            hp_file_lock l;
            int busy = 1;
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && hp_file_lock_take(p, 0, NULL, &l, &busy, NULL) == HP_OK &&
                !busy)
                hp_file_lock_release(&l);
        }
        free(p);
    }
    closedir(d);
}

/* The message for a name that histoplan will not touch. */
static hp_status not_ours(const char *dir, const char *what, hp_error *err)
{
    return hp_error_set(err, HP_ERR_INVALID,
                        "%s exists but is not %s made by histoplan (it has no %s marker); histoplan neither "
                        "replaces nor removes it: move it away, or choose another --out or --slide-id",
                        dir, what, HP_OUTPUT_MARKER);
}

/* Whether a result finished at `finished_at` (ISO 8601 UTC, "" unknown) may be replaced by a run
 * that replaces only results finished before `before` (0: any). The fixed format compares as
 * text; one finished in the same second counts as before. */
static int finished_before(const char *finished_at, time_t before)
{
    if (before <= 0 || !finished_at[0])
        return 1;
    char b[HP_UTC_TIME_LEN];
    if (hp_utc_format(before, b))
        return 1;
    return strcmp(finished_at, b) <= 0;
}

static hp_status take_lock(const char *out_dir, const char *slide_id, const hp_analyze_dir_options *o,
                           hp_analyze_dir *d, int *busy, hp_error *err)
{
    char *lock_path = with_suffix(out_dir, slide_id, ".lock");
    if (!lock_path)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    hp_status st = hp_file_lock_take(lock_path, 0, o->cancel, &d->lock, busy, err);
    if (st == HP_OK && *busy && !o->nowait && !(o->cancel && *o->cancel)) {
        if (o->waiting) {
            char who[320];
            hp_file_lock_holder(lock_path, who, sizeof who);
            o->waiting(o->user, slide_id, who);
        }
        st = hp_file_lock_take(lock_path, 1, o->cancel, &d->lock, busy, err);
    }
    free(lock_path);
    if (st == HP_OK && !*busy)
        d->locked = 1;
    if (st == HP_OK && *busy && o->cancel && *o->cancel)
        st = hp_error_set(err, HP_ERR_CANCELLED, "slide %s: interrupted while waiting for another run", slide_id);
    return st;
}

hp_status hp_analyze_dir_begin(const char *out_dir, const char *slide_id, const cJSON *key,
                               const hp_analyze_dir_options *o, hp_analyze_dir *d, hp_analyze_dir_state *state,
                               hp_error *err)
{
    memset(d, 0, sizeof *d);
    d->lock.fd = -1;
    *state = HP_ANALYZE_DIR_NEW;
    d->final_dir = with_suffix(out_dir, slide_id, "");
    d->part_dir = with_suffix(out_dir, slide_id, ".partial");
    d->old_dir = with_suffix(out_dir, slide_id, ".replaced");
    if (!d->final_dir || !d->part_dir || !d->old_dir)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return hp_error_set(err, HP_ERR_IO, "cannot create %s: %s", out_dir, strerror(errno));

    /* Everything below looks at and changes this slide's folders: one process at a time. */
    int busy = 0;
    hp_status st = take_lock(out_dir, slide_id, o, d, &busy, err);
    if (st != HP_OK)
        return st;
    if (busy) {
        *state = HP_ANALYZE_DIR_BUSY;
        return HP_OK;
    }

    reclaim_leftovers(out_dir);
    /* A run that died between moving a completed result aside and putting the new one in its
     * place: the completed result goes back (nothing a user had is lost). */
    if (!exists(d->final_dir) && hp_output_dir_is_kind(d->old_dir, HP_OUTPUT_KIND_ANALYSIS))
        rename(d->old_dir, d->final_dir);
    /* One that died after putting the new result in place: the old one is only in the way. */
    else if (hp_output_dir_is_kind(d->final_dir, HP_OUTPUT_KIND_ANALYSIS) &&
             hp_output_dir_is_kind(d->old_dir, HP_OUTPUT_KIND_ANALYSIS))
        hp_remove_tree(d->old_dir);
    /* With the slide's lock held, no live run is writing its .partial folder, whichever host
     * made it: a leftover one is a dead run's. */
    if (hp_output_dir_is_kind(d->part_dir, HP_OUTPUT_KIND_ANALYSIS))
        hp_remove_tree(d->part_dir);
    else
        rmdir(d->part_dir); /* empty and unmarked: a run killed before it marked the folder */

    if (exists(d->final_dir)) {
        if (!hp_output_dir_is_kind(d->final_dir, HP_OUTPUT_KIND_ANALYSIS))
            return not_ours(d->final_dir, "an analysis folder", err);
        char diff[HP_ERROR_MSG_MAX / 2], finished[HP_UTC_TIME_LEN];
        int differs = hp_analyze_key_diff(d->final_dir, key, diff, sizeof diff, finished);
        if (!differs && (!o->overwrite || !finished_before(finished, o->overwrite_before))) {
            *state = HP_ANALYZE_DIR_KEPT;
            return HP_OK;
        }
        if (differs && !o->overwrite)
            return hp_error_set(err, HP_ERR_INVALID,
                                "slide %s: %s holds a completed analysis made from something else: %s; "
                                "--overwrite replaces it, or choose another --out",
                                slide_id, d->final_dir, diff);
    }
    if (exists(d->old_dir) && !hp_output_dir_is_kind(d->old_dir, HP_OUTPUT_KIND_ANALYSIS))
        return not_ours(d->old_dir, "an analysis folder", err);
    if (mkdir(d->part_dir, 0755) != 0) {
        if (errno != EEXIST)
            return hp_error_set(err, HP_ERR_IO, "cannot create %s: %s", d->part_dir, strerror(errno));
        return not_ours(d->part_dir, "a partial analysis folder", err);
    }
    d->part_made = 1;
    return hp_output_dir_mark(d->part_dir, HP_OUTPUT_KIND_ANALYSIS, err);
}

hp_status hp_analyze_dir_commit(hp_analyze_dir *d, hp_error *err)
{
    int replacing = exists(d->final_dir);
    if (replacing) {
        /* Checked again now: a folder put there during the run is not replaced either. */
        if (!hp_output_dir_is_kind(d->final_dir, HP_OUTPUT_KIND_ANALYSIS))
            return not_ours(d->final_dir, "an analysis folder", err);
        if (exists(d->old_dir)) {
            if (!hp_output_dir_is_kind(d->old_dir, HP_OUTPUT_KIND_ANALYSIS))
                return not_ours(d->old_dir, "an analysis folder", err);
            hp_remove_tree(d->old_dir);
        }
        if (rename(d->final_dir, d->old_dir) != 0)
            return hp_error_set(err, HP_ERR_IO, "cannot move %s aside: %s", d->final_dir, strerror(errno));
    }
    if (rename(d->part_dir, d->final_dir) != 0) {
        hp_status st = hp_error_set(err, HP_ERR_IO, "cannot rename %s to %s: %s", d->part_dir, d->final_dir,
                                    strerror(errno));
        if (replacing)
            rename(d->old_dir, d->final_dir); /* put the previous run back */
        return st;
    }
    d->part_made = 0;
    if (replacing)
        hp_remove_tree(d->old_dir);
    return HP_OK;
}

void hp_analyze_dir_end(hp_analyze_dir *d)
{
    if (!d)
        return;
    if (d->part_made)
        hp_remove_tree(d->part_dir);
    if (d->locked)
        hp_file_lock_release(&d->lock);
    free(d->final_dir);
    free(d->part_dir);
    free(d->old_dir);
    memset(d, 0, sizeof *d);
}
