#include "common/file_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_NS 100000000L /* a tenth of a second between tries while waiting */

static void this_host(char out[256])
{
    if (gethostname(out, 256) != 0)
        out[0] = '\0';
    out[255] = '\0';
}

/* Whether the open file `fd` is still the file under `path`: the previous holder removes the
 * file when it lets go, and a lock on a removed file guards nothing. */
static int still_there(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void name_holder(int fd)
{
    char host[256], text[320];
    this_host(host);
    int n = snprintf(text, sizeof text, "pid %ld host %s\n", (long)getpid(), host);
    if (n > 0 && ftruncate(fd, 0) == 0)
        (void)!pwrite(fd, text, (size_t)n, 0);
}

hp_status hp_file_lock_take(const char *path, int wait, const volatile sig_atomic_t *cancel, hp_file_lock *l,
                            int *busy, hp_error *err)
{
    l->fd = -1;
    l->path = NULL;
    *busy = 0;
    for (;;) {
        if (cancel && *cancel) {
            *busy = 1;
            return HP_OK;
        }
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return hp_error_set(err, HP_ERR_IO, "cannot create the lock file %s: %s", path, strerror(errno));
        int got, e = 0, replaced = 0;
        for (;;) {
            got = flock(fd, LOCK_EX | LOCK_NB);
            e = got ? errno : 0;
            if (!got || e != EWOULDBLOCK || !wait || (cancel && *cancel))
                break;
            struct timespec ts = {0, POLL_NS};
            nanosleep(&ts, NULL);
            /* The holder may have removed the file: look again under the name. */
            if ((replaced = !still_there(fd, path)))
                break;
        }
        if (got != 0) {
            close(fd);
            if (replaced)
                continue;
            if (e != EWOULDBLOCK && e != EINTR)
                return hp_error_set(err, HP_ERR_IO, "cannot lock %s: %s", path, strerror(e));
            if (!wait || (cancel && *cancel)) {
                *busy = 1;
                return HP_OK;
            }
            continue;
        }
        if (!still_there(fd, path)) {
            close(fd);
            continue;
        }
        l->path = strdup(path);
        if (!l->path) {
            unlink(path);
            close(fd);
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        }
        l->fd = fd;
        name_holder(fd);
        return HP_OK;
    }
}

void hp_file_lock_release(hp_file_lock *l)
{
    if (!l)
        return;
    if (l->fd >= 0) {
        /* Removed while still held, so no one can take a lock on a file about to disappear
         * without noticing (hp_file_lock_take checks the name again). */
        if (l->path)
            unlink(l->path);
        close(l->fd);
    }
    free(l->path);
    l->fd = -1;
    l->path = NULL;
}

void hp_file_lock_holder(const char *path, char *out, size_t cap)
{
    char text[320] = "", host[256], here[256];
    long pid = 0;
    snprintf(out, cap, "another process");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return;
    text[n] = '\0';
    if (sscanf(text, "pid %ld host %255s", &pid, host) != 2 || pid <= 0)
        return;
    this_host(here);
    if (!strcmp(host, here))
        snprintf(out, cap, "process %ld on this host", pid);
    else
        snprintf(out, cap, "process %ld on host %s", pid, host);
}
