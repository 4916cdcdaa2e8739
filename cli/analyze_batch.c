#include "cli/analyze_batch.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "io/slide.h"
#include "pipeline/batch_summary.h"
#include "pipeline/tissue.h"

#define SUMMARY_EVERY_S 30.0

/* The signal that asked the batch to stop (0: none). The analysis polls it. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    if (g_stop) {
        /* A second signal: the user means it. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_stop = sig;
}

void hp_cli_batch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void print_done(const hp_findings *f, const char *out_dir, int i, int n)
{
    printf("slide %d/%d %s  %" PRId64 " x %" PRId64 " px  %.4g um/px (%s)\n", i + 1, n, f->slide_id, f->width_px,
           f->height_px, f->mpp_x, f->mpp_source);
    /* First after the slide's name: nothing below means anything when the model is not valid. */
    if (f->out_of_domain)
        printf("  MODEL NOT VALID FOR THIS SLIDE: %s. No category and no care plan will be "
               "suggested.\n",
               f->domain_reason);
    else if (f->domain_checked)
        printf("  domain: in the model's domain (%.1f%% of tiles beyond the out-of-domain threshold)\n",
               100 * f->ood_fraction_beyond);
    else
        printf("  domain: not checked (the model card ships no out-of-domain detector)\n");
    /* Next: whether what the model saw was the scan at all. */
    if (f->sr_used)
        printf("  SUPER-RESOLVED%s%s: %s\n", f->sr_precision && strcmp(f->sr_precision, "fp32") ? " in " : "",
               f->sr_precision && strcmp(f->sr_precision, "fp32") ? f->sr_precision : "", f->sr_reason);
    else if (f->sr_mode && strcmp(f->sr_mode, "off") && f->sr_reason)
        printf("  super-resolution %s\n", f->sr_reason);
    printf("  tissue %.3f mm2 (%.1f%% of the slide); %" PRId64 " tiles analysed of %" PRId64 "\n",
           f->tissue_area_mm2, 100 * f->tissue_fraction, f->tiles_analysed, f->tiles_total);
    for (int k = 0; k < f->n_classes; k++) {
        const hp_findings_class *c = &f->classes[k];
        printf("  %-12s %9.3f mm2  %5.1f%%  %" PRId64 " regions", c->name, c->area_mm2,
               isnan(c->fraction_of_tissue) ? 0.0 : 100 * c->fraction_of_tissue, c->region_count);
        if (c->largest_region_id)
            printf("  largest %.2f mm across", c->largest_diameter_mm);
        printf("\n");
    }
    if (f->invasive.cls) {
        if (f->invasive.largest_region_id)
            printf("  largest invasive focus: region %d, %.2f mm (greatest dimension)\n",
                   f->invasive.largest_region_id, f->invasive.largest_diameter_mm);
        else
            printf("  largest invasive focus: none\n");
    }
    printf("  QC:");
    if (!f->qc_flags)
        printf(" none");
    for (int b = 0; b < HP_QC_FLAG_COUNT; b++)
        if (f->qc_flags & (1u << b))
            printf(" %s", hp_qc_flag_name(1u << b));
    printf("\n");
    printf("  time %.1f s: open %.2f, tissue %.2f, tiling %.2f, inference %.2f, heatmap %.2f, "
           "regions %.2f, writing %.2f\n",
           f->t_total, f->t_open, f->t_tissue, f->t_tiling, f->t_inference, f->t_heatmap, f->t_regions,
           f->t_writing);
    printf("  output %s/%s/\n", out_dir, f->slide_id);
    printf("  research use only, not a diagnosis\n");
}

static void on_progress(void *user, long done, long total)
{
    hp_progress *p = user;
    p->total = total;
    hp_progress_update(p, done);
}

static void on_waiting(void *user, const char *slide_id, const char *holder)
{
    hp_progress *p = user;
    hp_progress_finish(p);
    fprintf(stderr, "histoplan analyze: slide %s is being analysed by %s into the same --out; waiting for it\n",
            slide_id, holder);
}

static void emit(cJSON *ev)
{
    char *t = ev ? cJSON_PrintUnformatted(ev) : NULL;
    if (t)
        printf("%s\n", t);
    fflush(stdout);
    free(t);
    cJSON_Delete(ev);
}

static void emit_start(const hp_batch_entry *e, int i, int n)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "start");
    cJSON_AddNumberToObject(ev, "index", i);
    cJSON_AddNumberToObject(ev, "total", n);
    cJSON_AddStringToObject(ev, "input_sha256", e->input_sha256);
    emit(ev);
}

static void emit_end(const hp_batch_entry *e, int i, int n)
{
    cJSON *ev = cJSON_CreateObject(), *fields = hp_batch_entry_json(e);
    if (!ev || !fields) {
        cJSON_Delete(ev);
        cJSON_Delete(fields);
        return;
    }
    cJSON_AddStringToObject(ev, "event", hp_batch_status_name(e->status));
    cJSON_AddNumberToObject(ev, "index", i);
    cJSON_AddNumberToObject(ev, "total", n);
    for (cJSON *it = fields->child, *next; it; it = next) {
        next = it->next;
        cJSON_DetachItemViaPointer(fields, it);
        cJSON_AddItemToObject(ev, it->string, it);
    }
    cJSON_Delete(fields);
    emit(ev);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const hp_cli_batch *b;
    hp_batch_entry *e;
    int *ended;      /* the entry is final (merged from then on) */
    double last_merge;
} batch_state;

static void merge(batch_state *bs, int final, int *totals)
{
    const hp_cli_batch *b = bs->b;
    hp_batch_entry *sel = malloc(sizeof *sel * (size_t)(b->n_slides + 1));
    int n = 0;
    for (int i = 0; sel && i < b->n_slides; i++)
        if (final || bs->ended[i])
            sel[n++] = bs->e[i];
    hp_error err = {0};
    if (!sel)
        hp_cli_fail("analyze", "out of memory writing %s/%s", b->o->out_dir, HP_BATCH_SUMMARY_FILE);
    else if (hp_batch_summary_merge(b->o->out_dir, sel, n, totals, &err) != HP_OK)
        hp_cli_fail("analyze", "%s", err.msg);
    free(sel);
    bs->last_merge = now_s();
}

/* One slide, start to end: the entry, the terminal and the events. Returns the outcome's
 * HP_ANALYZE_BUSY when put off. */
static int run_one(batch_state *bs, int i, int wait)
{
    const hp_cli_batch *b = bs->b;
    hp_analyze_options o = *b->o;
    hp_batch_entry *e = &bs->e[i];
    const char *path = b->slides[i];
    int n = b->n_slides;
    hp_findings f;
    hp_findings_init(&f);
    hp_error err = {0};
    hp_analyze_result r;
    memset(&r, 0, sizeof r);
    hp_progress prog;
    char label[64];
    snprintf(label, sizeof label, "slide %d/%d", i + 1, n);
    if (b->json && !wait)
        emit_start(e, i, n);
    hp_progress_start(&prog, label, 1);
    o.progress = on_progress;
    o.progress_user = &prog;
    o.waiting = on_waiting;
    o.lock_nowait = !wait;
    o.cancel = &g_stop;
    if (b->slide_ids)
        o.slide_id = b->slide_ids[i];
    if (b->cases)
        o.accession = b->cases[i];
    if (b->mpps && b->mpps[i] > 0)
        o.mpp = b->mpps[i];
    double t0 = now_s();
    /* Hashing comes first in the run, and hashing a FIFO would wait for a writer forever. */
    hp_status st = hp_slide_check_file(path, &err);
    if (st == HP_OK)
        st = hp_analyze_run(b->model, path, &o, &f, &r, &err);
    else
        r.failure = HP_ANALYZE_FAIL_UNREADABLE;
    hp_progress_finish(&prog);
    if (st == HP_OK && r.outcome == HP_ANALYZE_BUSY) {
        if (!b->json)
            printf("slide %d/%d %s: being analysed by another run; coming back to it after the others\n", i + 1, n,
                   r.slide_id);
        hp_findings_free(&f);
        return HP_ANALYZE_BUSY;
    }
    e->duration_s = now_s() - t0;
    snprintf(e->slide_id, sizeof e->slide_id, "%s", r.slide_id);
    hp_utc_format(time(NULL), e->finished_at);
    if (st != HP_OK) {
        e->status = r.failure == HP_ANALYZE_FAIL_INTERRUPTED ? HP_BATCH_INTERRUPTED : HP_BATCH_FAILED;
        e->error = r.failure ? r.failure : HP_ANALYZE_FAIL_IO;
        hp_batch_entry_set_message(e, err.msg, path);
        char where[96];
        snprintf(where, sizeof where, "analyze: slide %d/%d", i + 1, n);
        hp_cli_fail_path(where, path, err.msg);
    } else if (r.outcome == HP_ANALYZE_SKIPPED) {
        e->status = HP_BATCH_SKIPPED;
        snprintf(e->message, sizeof e->message,
                 "already analysed with the same slide, model and options (--overwrite reruns it)");
        if (!b->json)
            printf("slide %d/%d %s: skipped: already analysed with the same slide, model and options in %s/%s "
                   "(--overwrite reruns it)\n",
                   i + 1, n, r.slide_id, o.out_dir, r.slide_id);
    } else {
        e->status = HP_BATCH_DONE;
        snprintf(e->message, sizeof e->message, "completed");
        if (f.resolution_warning) {
            e->warning = strdup(f.resolution_warning);
            fprintf(stderr, "histoplan analyze: warning: slide %s: %s\n", r.slide_id, f.resolution_warning);
        }
        if (!b->json)
            print_done(&f, o.out_dir, i, n);
    }
    if (b->json)
        emit_end(e, i, n);
    fflush(stdout);
    bs->ended[i] = 1;
    hp_findings_free(&f);
    if (now_s() - bs->last_merge > SUMMARY_EVERY_S)
        merge(bs, 0, NULL);
    return 0;
}

static int count_status(const batch_state *bs, hp_batch_status st)
{
    int k = 0;
    for (int i = 0; i < bs->b->n_slides; i++)
        k += bs->e[i].status == st;
    return k;
}

int hp_cli_batch_run(const hp_cli_batch *b)
{
    int n = b->n_slides, rc = HP_EXIT_FAILED;
    batch_state bs = {.b = b, .last_merge = now_s()};
    bs.e = calloc((size_t)n + 1, sizeof *bs.e);
    bs.ended = calloc((size_t)n + 1, sizeof *bs.ended);
    int *later = calloc((size_t)n + 1, sizeof *later);
    if (!bs.e || !bs.ended || !later) {
        hp_cli_fail("analyze", "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        hp_batch_entry_init(&bs.e[i], b->slides[i]);
        if (b->shard)
            snprintf(bs.e[i].shard, sizeof bs.e[i].shard, "%s", b->shard);
    }

    if (!b->model) {
        /* Nothing can run; every slide says why, in the summary too. */
        for (int i = 0; i < n; i++) {
            bs.e[i].status = HP_BATCH_FAILED;
            bs.e[i].error = HP_ANALYZE_FAIL_MODEL;
            hp_batch_entry_set_message(&bs.e[i], b->model_error ? b->model_error : "the model cannot be used",
                                       b->slides[i]);
            if (b->json)
                emit_end(&bs.e[i], i, n);
        }
    } else {
        /* First pass: slides another process holds are put off; then they are waited for. */
        int n_later = 0;
        for (int i = 0; i < n && !g_stop; i++)
            if (run_one(&bs, i, 0) == HP_ANALYZE_BUSY)
                later[n_later++] = i;
        for (int k = 0; k < n_later && !g_stop; k++)
            run_one(&bs, later[k], 1);
        for (int i = 0; i < n; i++) {
            if (bs.e[i].status != HP_BATCH_NOT_STARTED || bs.ended[i])
                continue;
            snprintf(bs.e[i].message, sizeof bs.e[i].message, "not started: the run was stopped by %s",
                     g_stop == SIGINT ? "SIGINT" : g_stop == SIGTERM ? "SIGTERM" : "a signal");
            if (b->json)
                emit_end(&bs.e[i], i, n);
        }
    }

    int totals[5] = {0};
    merge(&bs, 1, totals);
    int failed = 0, interrupted = 0, not_started = 0, ran = 0;
    for (int i = 0; i < n; i++) {
        failed += bs.e[i].status == HP_BATCH_FAILED;
        interrupted += bs.e[i].status == HP_BATCH_INTERRUPTED;
        not_started += bs.e[i].status == HP_BATCH_NOT_STARTED;
        ran += bs.e[i].status == HP_BATCH_DONE || bs.e[i].status == HP_BATCH_SKIPPED;
    }
    if (g_stop)
        rc = 128 + g_stop;
    else if (!b->model)
        rc = HP_EXIT_NOT_RUN;
    else
        rc = failed ? HP_EXIT_FAILED : HP_EXIT_OK;
    if (g_stop)
        fprintf(stderr, "histoplan analyze: stopped by %s: %d of %d slides done or skipped, %d interrupted, %d not "
                        "started; see %s/%s\n",
                g_stop == SIGINT ? "SIGINT" : g_stop == SIGTERM ? "SIGTERM" : "a signal", ran, n, interrupted,
                not_started, b->o->out_dir, HP_BATCH_SUMMARY_FILE);
    else if (n > 1 || failed)
        fprintf(stderr, "histoplan analyze: %d slide%s: %d analysed, %d skipped (already done), %d failed; see %s/%s\n",
                n, n == 1 ? "" : "s", ran - count_status(&bs, HP_BATCH_SKIPPED), count_status(&bs, HP_BATCH_SKIPPED),
                failed, b->o->out_dir, HP_BATCH_SUMMARY_FILE);
    if (b->json) {
        cJSON *ev = cJSON_CreateObject();
        static const char *const names[5] = {"done", "skipped", "failed", "interrupted", "not_started"};
        cJSON_AddStringToObject(ev, "event", "summary");
        cJSON_AddNumberToObject(ev, "slides", n);
        int mine[5] = {0};
        for (int i = 0; i < n; i++)
            mine[bs.e[i].status]++;
        for (int k = 0; k < 5; k++)
            cJSON_AddNumberToObject(ev, names[k], mine[k]);
        cJSON_AddNumberToObject(ev, "exit_status", rc);
        emit(ev);
    }
done:
    for (int i = 0; bs.e && i < n; i++)
        hp_batch_entry_free(&bs.e[i]);
    free(bs.e);
    free(bs.ended);
    free(later);
    return rc;
}
