#include "pipeline/analyze_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/output_dir.h"
#include "common/remove_tree.h"

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

/* Every OUT/<x>.partial whose run has ended, whichever slide it was for: a killed batch leaves
 * one, and the next run into OUT may not analyze that slide again. */
static void reclaim_partials(const char *out_dir)
{
    DIR *d = opendir(out_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 8 || strcmp(e->d_name + n - 8, ".partial"))
            continue;
        char *p = with_suffix(out_dir, e->d_name, "");
        if (p)
            hp_output_dir_reclaim(p, HP_OUTPUT_KIND_ANALYSIS);
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

hp_status hp_analyze_dir_begin(const char *out_dir, const char *slide_id, int overwrite, int skip_completed,
                               hp_analyze_dir *d, int *skipped, hp_error *err)
{
    memset(d, 0, sizeof *d);
    *skipped = 0;
    d->final_dir = with_suffix(out_dir, slide_id, "");
    d->part_dir = with_suffix(out_dir, slide_id, ".partial");
    d->old_dir = with_suffix(out_dir, slide_id, ".replaced");
    if (!d->final_dir || !d->part_dir || !d->old_dir)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");

    reclaim_partials(out_dir);
    /* A run that died between moving a completed result aside and putting the new one in its
     * place: the completed result goes back (nothing a user had is lost). */
    if (!exists(d->final_dir) && hp_output_dir_is_kind(d->old_dir, HP_OUTPUT_KIND_ANALYSIS) &&
        !exists(d->part_dir))
        rename(d->old_dir, d->final_dir);
    /* One that died after putting the new result in place: the old one is only in the way. */
    else if (hp_output_dir_is_kind(d->final_dir, HP_OUTPUT_KIND_ANALYSIS) &&
             hp_output_dir_is_kind(d->old_dir, HP_OUTPUT_KIND_ANALYSIS))
        hp_remove_tree(d->old_dir);

    if (exists(d->final_dir)) {
        if (!hp_output_dir_is_kind(d->final_dir, HP_OUTPUT_KIND_ANALYSIS))
            return not_ours(d->final_dir, "an analysis folder", err);
        if (!overwrite) {
            if (skip_completed) {
                *skipped = 1;
                return HP_OK;
            }
            return hp_error_set(err, HP_ERR_INVALID,
                                "slide %s: output folder %s exists (a completed run); --overwrite replaces it",
                                slide_id, d->final_dir);
        }
    }
    if (exists(d->old_dir) && !hp_output_dir_is_kind(d->old_dir, HP_OUTPUT_KIND_ANALYSIS))
        return not_ours(d->old_dir, "an analysis folder", err);
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return hp_error_set(err, HP_ERR_IO, "cannot create %s: %s", out_dir, strerror(errno));
    if (mkdir(d->part_dir, 0755) != 0) {
        if (errno != EEXIST)
            return hp_error_set(err, HP_ERR_IO, "cannot create %s: %s", d->part_dir, strerror(errno));
        char who[320];
        hp_output_owner ow = hp_output_dir_owner(d->part_dir, who, sizeof who);
        if (!hp_output_dir_is_kind(d->part_dir, HP_OUTPUT_KIND_ANALYSIS) && !hp_output_dir_is_empty(d->part_dir))
            return not_ours(d->part_dir, "a partial analysis folder", err);
        if (ow == HP_OUTPUT_OWNER_RUNNING)
            return hp_error_set(err, HP_ERR_INVALID,
                                "slide %s: %s is being written by another histoplan run (%s); wait for it to finish",
                                slide_id, d->part_dir, who);
        if (hp_output_dir_reclaim(d->part_dir, HP_OUTPUT_KIND_ANALYSIS) != 1 || mkdir(d->part_dir, 0755) != 0)
            return hp_error_set(err, HP_ERR_INVALID,
                                "slide %s: %s was left by %s, which may still run elsewhere; if no run is writing "
                                "it, remove it",
                                slide_id, d->part_dir, who);
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
    free(d->final_dir);
    free(d->part_dir);
    free(d->old_dir);
    memset(d, 0, sizeof *d);
}
