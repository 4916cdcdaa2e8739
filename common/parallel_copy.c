/* hp_parallel_memcpy (parallel_copy.h). */
#include "common/parallel_copy.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

enum { MAX_THREADS = 8, MIN_PER_THREAD = 4 << 20 /* below this a thread costs more than it saves */ };

typedef struct {
    char *dst;
    const char *src;
    size_t bytes;
} copy_part;

static void *copy_thread(void *arg)
{
    copy_part *p = arg;
    memcpy(p->dst, p->src, p->bytes);
    return NULL;
}

void hp_parallel_memcpy(void *dst, const void *src, size_t bytes, int max_threads)
{
    int t = max_threads;
    if (t <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        t = cpus > 0 ? (int)cpus : 1;
    }
    if (t > MAX_THREADS)
        t = MAX_THREADS;
    if ((size_t)t > bytes / MIN_PER_THREAD)
        t = (int)(bytes / MIN_PER_THREAD);
    if (t <= 1) {
        memcpy(dst, src, bytes);
        return;
    }
    copy_part parts[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    size_t each = (bytes / (size_t)t + 63) & ~(size_t)63; /* cache-line aligned pieces */
    for (int i = 0; i < t; i++) {
        size_t off = each * (size_t)i;
        size_t len = off >= bytes ? 0 : (bytes - off < each ? bytes - off : each);
        parts[i] = (copy_part){(char *)dst + off, (const char *)src + off, len};
    }
    /* part 0 on this thread; a part whose thread does not start is copied here too */
    for (int i = 1; i < t; i++)
        started[i] = pthread_create(&threads[i], NULL, copy_thread, &parts[i]) == 0;
    copy_thread(&parts[0]);
    for (int i = 1; i < t; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            copy_thread(&parts[i]);
    }
}
