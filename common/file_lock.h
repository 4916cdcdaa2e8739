/* Locks between processes that share a folder (several `histoplan analyze` runs, or cluster jobs
 * on one shared file system, writing into one output folder): an exclusive flock(2) on a lock
 * file beside what it guards.
 *
 * The kernel drops the lock when its process ends, however it ends (killed, crashed), so a dead
 * holder never blocks anyone. The holder removes the lock file when it releases the lock, so
 * finished runs leave no lock files behind; a taker checks after locking that the file it locked
 * is still the one under the name (the holder may have removed it meanwhile) and tries again
 * when not. A holder that died leaves an unlocked file, which the next taker locks, uses and
 * removes.
 *
 * On NFS, Linux maps flock to the server's byte-range locks (NFSv4, or NFSv3 with lockd), so
 * the lock holds across machines there too.
 *
 * Thread safety: a lock belongs to its process; take one lock file once per process. */
#ifndef HP_FILE_LOCK_H
#define HP_FILE_LOCK_H

#include <signal.h>
#include <stddef.h>

#include "common/status.h"

typedef struct {
    int fd;     /* -1 when not held */
    char *path; /* the lock file */
} hp_file_lock;

/* Takes the lock on `path` (created when absent, mode 0644). `wait` 0: when another process
 * holds it, returns HP_OK with *busy = 1 and nothing held. `wait` 1: waits until it is free,
 * checking *cancel (when not NULL) every tenth of a second; a set *cancel gives HP_OK with
 * *busy = 1. While the lock is held, the file names the holder (process, host) for
 * hp_file_lock_holder. Errors: HP_ERR_IO (the message names the path), HP_ERR_NOMEM. */
hp_status hp_file_lock_take(const char *path, int wait, const volatile sig_atomic_t *cancel, hp_file_lock *l,
                            int *busy, hp_error *err);

/* Removes the lock file and releases the lock; accepts a lock that is not held (and NULL). */
void hp_file_lock_release(hp_file_lock *l);

/* Describes who holds the lock on `path` ("process 4242 on this host", "process 17 on host
 * node07"), or "another process" when the file does not say. */
void hp_file_lock_holder(const char *path, char *out, size_t cap);

#endif
