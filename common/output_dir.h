/* Folders histoplan makes (an analysis folder OUT/<slide-id>/, a report folder), told apart from
 * everything else by a marker file written when the folder is created:
 *
 *   DIR/.histoplan-output     "histoplan-output 1", the kind of folder, and the process that
 *                             made it (a hash of the host name, boot id, pid, process start time)
 *
 * Two rules rest on it:
 *  - `--overwrite` replaces only a folder that carries the marker of its kind; any other folder
 *    (a user's data that happens to have the name) is refused and left untouched;
 *  - a partial folder (built beside the final one and renamed into place when complete) whose
 *    process has ended — killed, crashed, the machine rebooted — is removed by the next run,
 *    while one whose process may still run (or that was made on another host, where this one
 *    cannot tell) is never touched.
 *
 * Linux: liveness is read from kill(pid, 0), /proc/<pid>/stat and /proc/sys/kernel/random/boot_id. */
#ifndef HP_OUTPUT_DIR_H
#define HP_OUTPUT_DIR_H

#include <stddef.h>

#include "common/status.h"

#define HP_OUTPUT_MARKER ".histoplan-output"

/* Kinds of folder. */
#define HP_OUTPUT_KIND_ANALYSIS "analysis"
#define HP_OUTPUT_KIND_REPORT "report"

/* Writes DIR/.histoplan-output for a folder this process has just made. */
hp_status hp_output_dir_mark(const char *dir, const char *kind, hp_error *err);

/* 1 when `dir` is a folder with a marker of `kind`, else 0 (no such folder, no marker, another
 * kind, a marker that is not a regular file). */
int hp_output_dir_is_kind(const char *dir, const char *kind);

/* 1 when `dir` is a folder with nothing in it, else 0. */
int hp_output_dir_is_empty(const char *dir);

typedef enum {
    HP_OUTPUT_OWNER_GONE = 0, /* the process that made it has ended */
    HP_OUTPUT_OWNER_RUNNING,  /* it is still running */
    HP_OUTPUT_OWNER_UNKNOWN,  /* no marker, or made on another host */
} hp_output_owner;

/* Whether the process that marked `dir` still runs. `who` (may be NULL) receives a short
 * description for messages ("process 4242 on this host"). */
hp_output_owner hp_output_dir_owner(const char *dir, char *who, size_t who_len);

/* Removes the partial folder `dir` when it carries a marker of `kind` and its process has ended
 * (or when it is empty and older than a minute: a run that died between making it and marking
 * it). The folder is first renamed aside and its marker compared again, so a run that has just
 * made a new folder under the same name keeps it. Returns 1 when removed, 0 when left alone
 * (running, unknown, not histoplan's, absent), -1 when removing failed. */
int hp_output_dir_reclaim(const char *dir, const char *kind);

/* Whether the process `pid` is gone (kill(pid, 0) fails with ESRCH). */
int hp_output_pid_gone(long pid);

#endif
