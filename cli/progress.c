#include "cli/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double hp_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void hp_progress_start(hp_progress *p, const char *label, long total)
{
    p->label = label;
    p->total = total;
    p->start = hp_now_seconds();
    p->tty = isatty(STDERR_FILENO);
    hp_progress_update(p, 0);
}

void hp_progress_update(hp_progress *p, long done)
{
    if (!p->tty || p->total <= 0)
        return;
    double el = hp_now_seconds() - p->start;
    int width = 30, fill = (int)(width * done / p->total);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    if (done > 0) {
        double eta = el / (double)done * (double)(p->total - done);
        fprintf(stderr, "\r%s [%s] %ld/%ld, %.1f s elapsed, ETA %.1f s   ", p->label, bar, done, p->total, el, eta);
    } else {
        fprintf(stderr, "\r%s [%s] %ld/%ld   ", p->label, bar, done, p->total);
    }
    fflush(stderr);
}

void hp_progress_finish(hp_progress *p)
{
    if (p->tty)
        fprintf(stderr, "\r%*s\r", 100, "");
}
