/* A one-line progress display with an ETA for long commands. It draws only when stderr is a
 * terminal, so logs and pipes stay clean. */
#ifndef HP_CLI_PROGRESS_H
#define HP_CLI_PROGRESS_H

typedef struct {
    const char *label;
    long total;
    double start;
    int tty;
} hp_progress;

void hp_progress_start(hp_progress *p, const char *label, long total);
/* `done` of `total` finished; redraws the line with the rate and the time left. */
void hp_progress_update(hp_progress *p, long done);
/* Clears the line. */
void hp_progress_finish(hp_progress *p);

/* Monotonic seconds. */
double hp_now_seconds(void);

#endif
