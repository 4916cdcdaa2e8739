/* ONNX conformance: runs ONNX's own node and pytorch-converted tests (Debian's libonnx-testdata)
 * through hp_model_* on the CPU backend and sorts every test into PASSED, REFUSED (the engine
 * refused the model at load with HP_ERR_UNSUPPORTED, which is the right answer for an operator,
 * attribute or type histoplan does not run) or FAILED (a wrong number, a wrong shape, a crash, a hang, or an error that is not a refusal).
 *
 * Each test runs in a forked child so that a crash or a hang in the engine is one FAILED line
 * rather than the end of the run. The child reports back through a pipe.
 *
 * Usage: onnx_conformance [--root DIR] [--reference] [--no-fork] [--timeout S] [-j N] [-v]
 *                         [PATTERN ...]
 * PATTERN is an fnmatch pattern on "suite/test" or "test" (e.g. 'test_conv*' or
 * 'node/test_relu'). The root defaults to $HP_ONNX_TESTDATA or /usr/share/libonnx-testdata/data.
 * The last line is "N passed, M failed, K skipped" (skipped = refused); exit 0 iff M == 0. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/model.h"
#include "onnx_testdata.h"

#define RTOL 1e-3
#define ATOL 1e-7

typedef enum { R_PASSED = 0, R_REFUSED, R_FAILED } result_kind;

typedef struct {
    result_kind kind;
    char msg[1200];
} result;

typedef struct {
    const char *root;
    int reference;
    int fork;
    int timeout;
    int jobs;
    int verbose;
} config;

/* ---- one test, one backend ------------------------------------------------------------------ */

static void set_result(result *r, result_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_result(result *r, result_kind k, const char *fmt, ...)
{
    r->kind = k;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

/* A refusal is the engine saying, while loading the model or resolving its shapes, that the
 * model uses an operator, attribute or data type it does not support: the status
 * HP_ERR_UNSUPPORTED from open, bind or instantiate. The message is never consulted (a message
 * that happens to contain "unsupported" is no refusal), and an error while running is always a
 * failure: a model that loads must run. */
static int is_refusal(const char *stage, hp_status s)
{
    return s == HP_ERR_UNSUPPORTED && strcmp(stage, "run") != 0;
}

/* An engine error: a refusal when it is one, otherwise a failure of the test. */
static void engine_error(result *r, const char *stage, hp_status s, const char *msg)
{
    if (is_refusal(stage, s))
        set_result(r, R_REFUSED, "%s", msg);
    else
        set_result(r, R_FAILED, "%s: %s (%s)", stage, msg, hp_status_name(s));
}

static void dims_str(char *buf, size_t len, int ndim, const int64_t *dims)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int k = 0; k < ndim && o < len; k++)
        o += (size_t)snprintf(buf + o, len - o, k ? ",%lld" : "%lld", (long long)dims[k]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

static const conf_tensor *find_tensor(const conf_tensor *ts, int n, const char *name)
{
    for (int k = 0; k < n; k++)
        if (ts[k].name && strcmp(ts[k].name, name) == 0)
            return &ts[k];
    return NULL;
}

static int is_float_type(int dt)
{
    return dt == 1 || dt == 10 || dt == 11 || dt == 16;
}

/* Compares one output with ONNX's tolerances; fills r and returns -1 on a mismatch. */
static int compare(result *r, const char *name, const float *got, const conf_tensor *want)
{
    int64_t bad = 0, first = -1;
    double worst = 0;
    for (int64_t k = 0; k < want->numel; k++) {
        double a = got[k], e = want->f[k];
        int ok;
        if (isnan(e) || isnan(a))
            ok = isnan(e) && isnan(a);
        else if (isinf(e) || isinf(a))
            ok = a == e;
        else
            ok = fabs(a - e) <= ATOL + RTOL * fabs(e);
        if (!ok) {
            if (first < 0)
                first = k;
            bad++;
            double d = fabs(a - e);
            if (isnan(d) || d > worst)
                worst = isnan(d) ? INFINITY : d;
        }
    }
    if (!bad)
        return 0;
    set_result(r, R_FAILED,
               "output '%s': %lld of %lld values differ (first at %lld: got %.9g, want %.9g; "
               "max abs diff %.3g)", name, (long long)bad, (long long)want->numel,
               (long long)first, got[first], want->f[first], worst);
    return -1;
}

/* Opens, binds, instantiates, runs and checks one model on one CPU backend. */
static void run_one(const char *dir, const conf_model *mi, const conf_tensor *ins, const conf_tensor *outs,
                    int reference, result *r)
{
    char path[4096], a[256], b[256];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    hp_model_options opt = hp_model_default_options();
    opt.backend = reference ? HP_BACKEND_CPU_REFERENCE : HP_BACKEND_CPU;
    opt.threads = 1;
    opt.require_card = 0;
    hp_error err = {0};
    const float **in_ptr = NULL;
    float **out_ptr = NULL;
    int n_out_ptr = 0;
    hp_model *m = hp_model_open(path, &opt, &err);
    if (!m) {
        if (!err.msg[0])
            set_result(r, R_FAILED, "hp_model_open returned NULL with an empty message");
        else
            engine_error(r, "open", err.code, err.msg);
        return;
    }
    const hp_graph *g = hp_model_graph(m);

    /* Decide what to bind before binding: binding may rewrite the graph's input list. */
    int n_bind = 0;
    const char **bind = calloc((size_t)g->n_inputs + 1, sizeof *bind);
    const char *first_runtime = NULL;
    for (int k = 0; k < g->n_inputs; k++) {
        const char *name = g->values[g->inputs[k]].name;
        const conf_tensor *t = find_tensor(ins, mi->n_in, name);
        if (!t) {
            set_result(r, R_FAILED, "engine lists input '%s', which the test does not feed", name);
            goto out;
        }
        if (hp_model_input_is_parameter(m, k) || !is_float_type(t->dtype))
            bind[n_bind++] = t->name;
        else if (!first_runtime)
            first_runtime = t->name;
    }
    for (int k = 0; k < n_bind; k++) {
        const conf_tensor *t = find_tensor(ins, mi->n_in, bind[k]);
        int fl = is_float_type(t->dtype);
        hp_status s = hp_model_bind_constant(m, t->name, fl ? HP_DT_FLOAT : HP_DT_INT64, t->ndim,
                                             t->dims, fl ? (const void *)t->f : (const void *)t->i);
        if (s != HP_OK) {
            engine_error(r, "bind", s, hp_model_error(m));
            goto out;
        }
    }
    /* Symbolic dims other than the first take the test data's sizes. */
    for (int k = 0; k < g->n_inputs; k++) {
        const hp_value *v = &g->values[g->inputs[k]];
        int symbolic = 0;
        for (int d = 1; d < v->ndim; d++)
            symbolic |= v->dims[d] < 0;
        const conf_tensor *t = symbolic && v->kind == HP_VAL_INPUT ? find_tensor(ins, mi->n_in, v->name) : NULL;
        if (!t)
            continue;
        hp_status s = hp_model_set_input_shape(m, v->name, t->ndim, t->dims);
        if (s != HP_OK) {
            engine_error(r, "bind", s, hp_model_error(m));
            goto out;
        }
    }
    int batch = 1;
    if (first_runtime) {
        const conf_tensor *t = find_tensor(ins, mi->n_in, first_runtime);
        if (t->ndim > 0)
            batch = (int)t->dims[0];
    }
    hp_status s = hp_model_instantiate(m, batch);
    if (s != HP_OK) {
        engine_error(r, "instantiate", s, hp_model_error(m));
        goto out;
    }
    const hp_graph *inst = hp_model_instance(m);
    in_ptr = calloc((size_t)inst->n_inputs + 1, sizeof *in_ptr);
    out_ptr = calloc((size_t)inst->n_outputs + 1, sizeof *out_ptr);
    for (int k = 0; k < inst->n_inputs; k++) {
        const hp_value *v = &inst->values[inst->inputs[k]];
        const conf_tensor *t = find_tensor(ins, mi->n_in, v->name);
        if (!t) {
            set_result(r, R_FAILED, "instance input '%s' has no test data", v->name);
            goto out;
        }
        if (v->ndim != t->ndim || memcmp(v->dims, t->dims, sizeof(int64_t) * (size_t)t->ndim)) {
            dims_str(a, sizeof a, v->ndim, v->dims);
            dims_str(b, sizeof b, t->ndim, t->dims);
            set_result(r, R_FAILED, "instance input '%s' has shape %s, test data %s", v->name, a, b);
            goto out;
        }
        in_ptr[k] = t->f;
    }
    for (int k = 0; k < inst->n_outputs; k++) {
        int64_t n = hp_value_numel(&inst->values[inst->outputs[k]]);
        out_ptr[k] = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
        n_out_ptr = k + 1;
        for (int64_t j = 0; j < n && out_ptr[k]; j++)
            out_ptr[k][j] = NAN; /* so that values the engine never writes do not pass */
        if (!out_ptr[k]) {
            set_result(r, R_FAILED, "harness out of memory for output %d (%lld values)", k,
                       (long long)n);
            goto out;
        }
    }
    s = hp_model_run_all(m, in_ptr, out_ptr);
    if (s != HP_OK) {
        engine_error(r, "run", s, hp_model_error(m));
        goto out;
    }
    for (int k = 0; k < mi->n_out; k++) {
        const char *name = mi->out[k].name;
        if (!mi->out[k].is_tensor || mi->out[k].dtype != 1) {
            set_result(r, R_FAILED, "engine ran a model whose output '%s' is %s, not float32 "
                       "(it must refuse it)", name,
                       mi->out[k].is_tensor ? conf_dtype_name(mi->out[k].dtype) : "not a conf_tensor");
            goto out;
        }
        int idx = -1;
        for (int j = 0; j < inst->n_outputs && idx < 0; j++)
            if (strcmp(inst->values[inst->outputs[j]].name, name) == 0)
                idx = j;
        if (idx < 0) {
            set_result(r, R_FAILED, "output '%s' is missing from the instance", name);
            goto out;
        }
        const hp_value *v = &inst->values[inst->outputs[idx]];
        const conf_tensor *t = &outs[k];
        if (v->ndim != t->ndim || memcmp(v->dims, t->dims, sizeof(int64_t) * (size_t)t->ndim)) {
            dims_str(a, sizeof a, v->ndim, v->dims);
            dims_str(b, sizeof b, t->ndim, t->dims);
            set_result(r, R_FAILED, "output '%s' has shape %s, expected %s", name, a, b);
            goto out;
        }
        if (compare(r, name, out_ptr[idx], t) != 0)
            goto out;
    }
    set_result(r, R_PASSED, "ok");
out:
    for (int k = 0; k < n_out_ptr; k++)
        free(out_ptr[k]);
    free(out_ptr);
    free(in_ptr);
    free(bind);
    hp_model_destroy(m);
}

/* The whole test: loads its data, runs the fast path and optionally the reference path. */
static void run_test(const char *dir, const config *cfg, result *r)
{
    char path[4096], why[512];
    conf_model mi;
    conf_tensor *ins = NULL, *outs = NULL;
    set_result(r, R_FAILED, "harness did not finish");
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (conf_model_load(path, &mi, why, sizeof why) != 0) {
        set_result(r, R_FAILED, "%s", why);
        return;
    }
    ins = calloc((size_t)mi.n_in + 1, sizeof *ins);
    outs = calloc((size_t)mi.n_out + 1, sizeof *outs);
    int unusable = 0; /* a value the harness cannot hand to hp_model_* at all */
    for (int k = 0; k < mi.n_in && !unusable; k++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, k);
        if (!mi.in[k].is_tensor || conf_tensor_load(path, &ins[k], why, sizeof why) != 0) {
            if (mi.in[k].is_tensor)
                snprintf(path, sizeof path, "input '%s': %s", mi.in[k].name, why);
            else
                snprintf(path, sizeof path, "input '%s' is not a conf_tensor", mi.in[k].name);
            unusable = 1;
            break;
        }
        /* Data files carry names that match the model's inputs in most tests, but not all. */
        free(ins[k].name);
        ins[k].name = strdup(mi.in[k].name);
    }
    for (int k = 0; k < mi.n_out && !unusable; k++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%d.pb", dir, k);
        if (mi.out[k].is_tensor && conf_tensor_load(path, &outs[k], why, sizeof why) != 0) {
            snprintf(path, sizeof path, "output '%s': %s", mi.out[k].name, why);
            unusable = 1;
        }
    }
    if (unusable) {
        /* The engine must refuse such a model at open; if it does not, that is its fault. */
        hp_model_options opt = hp_model_default_options();
        opt.require_card = 0;
        opt.threads = 1;
        hp_error err = {0};
        char mp[4096];
        snprintf(mp, sizeof mp, "%s/model.onnx", dir);
        hp_model *m = hp_model_open(mp, &opt, &err);
        hp_status s;
        if (!m)
            engine_error(r, "open", err.code, err.msg);
        else if ((s = hp_model_instantiate(m, 1)) != HP_OK)
            engine_error(r, "instantiate", s, hp_model_error(m));
        else
            set_result(r, R_FAILED, "engine accepted a model the harness cannot feed (%s)", path);
        hp_model_destroy(m);
        goto done;
    }
    run_one(dir, &mi, ins, outs, 0, r);
    if (cfg->reference) {
        result rr;
        set_result(&rr, R_FAILED, "harness did not finish");
        run_one(dir, &mi, ins, outs, 1, &rr);
        if (rr.kind != r->kind || (r->kind == R_FAILED && strcmp(r->msg, rr.msg) != 0)) {
            static const char *kn[] = {"passed", "refused", "failed"};
            char fast[sizeof r->msg];
            memcpy(fast, r->msg, sizeof fast);
            set_result(r, R_FAILED, "fast path %s (%.500s) but reference path %s (%.500s)",
                       kn[r->kind], fast, kn[rr.kind], rr.msg);
        }
    }
done:
    for (int k = 0; k < mi.n_in; k++)
        conf_tensor_free(&ins[k]);
    for (int k = 0; k < mi.n_out; k++)
        conf_tensor_free(&outs[k]);
    free(ins);
    free(outs);
    conf_model_free(&mi);
}

/* ---- refusal reasons ------------------------------------------------------------------------ */

/* Replaces quoted occurrences ('word' or "word") of `word` in s by `with`: the engine quotes the
 * names it reports, and bare matches would hit ordinary words (values named "input", "0"). */
static void replace_quoted(char *s, size_t cap, const char *word, const char *with)
{
    size_t wl = strlen(word), rl = strlen(with);
    if (wl == 0)
        return;
    char *p = s;
    while ((p = strstr(p, word)) != NULL) {
        char l = p == s ? ' ' : p[-1], r = p[wl];
        if (!((l == '\'' || l == '"') && r == l)) {
            p += wl;
            continue;
        }
        size_t tail = strlen(p + wl);
        if ((size_t)(p - s) + rl + tail + 1 > cap)
            return;
        memmove(p + rl, p + wl, tail + 1);
        memcpy(p, with, rl);
        p += rl;
    }
}

static void erase_all(char *s, const char *what)
{
    size_t n = strlen(what);
    char *p;
    while ((p = strstr(s, what)) != NULL)
        memmove(p, p + n, strlen(p + n) + 1);
}

/* Reduces an engine message to a reason shared across tests: no model path, no node or value
 * names, and "node N 'name' (Op): why" becomes "Op: why" (or just "unsupported operator Op"). */
static void reduce_reason(const char *msg, const char *dir, const conf_model *mi, char *out,
                          size_t cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx: ", dir);
    snprintf(out, cap, "%s", strncmp(msg, path, strlen(path)) == 0 ? msg + strlen(path) : msg);
    path[strlen(path) - 2] = '\0';
    erase_all(out, path);
    for (int k = 0; k < mi->n_nodes; k++)
        replace_quoted(out, cap, mi->node_names[k], "<node>");
    for (int k = 0; k < mi->n_in; k++)
        replace_quoted(out, cap, mi->in[k].name, "<value>");
    for (int k = 0; k < mi->n_out; k++)
        replace_quoted(out, cap, mi->out[k].name, "<value>");
    erase_all(out, " '<node>'");
    erase_all(out, " '<value>'");
    erase_all(out, " ''");
    /* "node 12 (Op): why" */
    if (strncmp(out, "node ", 5) == 0) {
        char *p = out + 5;
        while (*p >= '0' && *p <= '9')
            p++;
        char *close = p[0] == ' ' && p[1] == '(' ? strstr(p, "): ") : NULL;
        if (close) {
            char op[128];
            snprintf(op, sizeof op, "%.*s", (int)(close - p - 2), p + 2);
            char *why = close + 3;
            if (strncmp(why, "unsupported operator", 20) == 0)
                memmove(out, why, strlen(why) + 1);
            else {
                char tmp[1400];
                snprintf(tmp, sizeof tmp, "%s: %s", op, why);
                size_t l = strlen(tmp) < cap ? strlen(tmp) : cap - 1;
                memcpy(out, tmp, l);
                out[l] = '\0';
            }
        }
    }
}

/* ---- driver --------------------------------------------------------------------------------- */

typedef struct {
    char *suite, *name, *dir;
    result res;
    char reason[sizeof ((result *)0)->msg];
} test_entry;

static int cmp_entry(const void *a, const void *b)
{
    const test_entry *x = a, *y = b;
    int c = strcmp(x->suite, y->suite);
    return c ? c : strcmp(x->name, y->name);
}

static int selected(const char *suite, const char *name, char **pats, int n)
{
    if (n == 0)
        return 1;
    char full[1024];
    snprintf(full, sizeof full, "%s/%s", suite, name);
    for (int k = 0; k < n; k++)
        if (fnmatch(pats[k], name, 0) == 0 || fnmatch(pats[k], full, 0) == 0)
            return 1;
    return 0;
}

static void collect(const char *root, const char *suite, char **pats, int npat, test_entry **ts,
                    int *n, int *cap)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, suite);
    DIR *d = opendir(dir);
    if (!d) {
        /* A root with only some suites (generated cases have node/ alone) is fine. */
        if (errno != ENOENT)
            fprintf(stderr, "onnx_conformance: cannot open %s: %s\n", dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "test_", 5) != 0 || !selected(suite, e->d_name, pats, npat))
            continue;
        char p[4096 + 300];
        snprintf(p, sizeof p, "%s/%s/model.onnx", dir, e->d_name);
        if (access(p, R_OK) != 0)
            continue;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 256;
            *ts = realloc(*ts, (size_t)*cap * sizeof **ts);
        }
        test_entry *t = &(*ts)[(*n)++];
        memset(t, 0, sizeof *t);
        t->suite = strdup(suite);
        t->name = strdup(e->d_name);
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        t->dir = strdup(p);
    }
    closedir(d);
}

/* Turns a child's end into a result: its report when it exited normally, else the signal. */
static void finish_child(int status, int fd, int timeout, result *r)
{
    result got;
    ssize_t n = read(fd, &got, sizeof got);
    close(fd);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGALRM)
            set_result(r, R_FAILED, "timed out after %d s", timeout);
        else
            set_result(r, R_FAILED, "crashed: signal %d (%s)", sig, strsignal(sig));
    } else if (n != (ssize_t)sizeof got) {
        set_result(r, R_FAILED, "child exited with status %d without a result (a sanitizer "
                   "report or exit() in the engine?)", WEXITSTATUS(status));
    } else if (WEXITSTATUS(status) != 0) {
        set_result(r, R_FAILED, "child exited with status %d after the test (leak or sanitizer "
                   "report on stderr); the test itself: %.900s", WEXITSTATUS(status), got.msg);
    } else {
        *r = got;
    }
}

typedef struct {
    char reason[sizeof ((result *)0)->msg];
    int count;
} reason_count;

static int cmp_reason(const void *a, const void *b)
{
    const reason_count *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->reason, y->reason);
}

static void usage(void)
{
    fprintf(stderr, "usage: onnx_conformance [--root DIR] [--reference] [--no-fork] "
                    "[--timeout S] [-j N] [-v] [PATTERN ...]\n");
}

int main(int argc, char **argv)
{
    config cfg = {0};
    const char *env = getenv("HP_ONNX_TESTDATA");
    cfg.root = env && *env ? env : "/usr/share/libonnx-testdata/data";
    cfg.fork = 1;
    cfg.timeout = 30;
    cfg.jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char **pats = calloc((size_t)argc + 1, sizeof *pats);
    int npat = 0;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--root") && k + 1 < argc)
            cfg.root = argv[++k];
        else if (!strcmp(argv[k], "--reference"))
            cfg.reference = 1;
        else if (!strcmp(argv[k], "--no-fork"))
            cfg.fork = 0;
        else if (!strcmp(argv[k], "--timeout") && k + 1 < argc)
            cfg.timeout = atoi(argv[++k]);
        else if (!strcmp(argv[k], "-j") && k + 1 < argc)
            cfg.jobs = atoi(argv[++k]);
        else if (!strcmp(argv[k], "-v"))
            cfg.verbose = 1;
        else if (argv[k][0] == '-') {
            usage();
            return 2;
        } else
            pats[npat++] = argv[k];
    }
    if (cfg.jobs < 1)
        cfg.jobs = 1;

    test_entry *ts = NULL;
    int n = 0, cap = 0;
    collect(cfg.root, "node", pats, npat, &ts, &n, &cap);
    collect(cfg.root, "pytorch-converted", pats, npat, &ts, &n, &cap);
    if (n == 0) {
        fprintf(stderr, "onnx_conformance: no tests found under %s\n", cfg.root);
        return npat ? 2 : 77;
    }
    qsort(ts, (size_t)n, sizeof *ts, cmp_entry);

    if (!cfg.fork) {
        for (int k = 0; k < n; k++)
            run_test(ts[k].dir, &cfg, &ts[k].res);
    } else {
        /* A small pool of children; each writes its result (smaller than a pipe's buffer) and
         * exits, so the parent only reads after reaping. */
        pid_t *pid = calloc((size_t)n, sizeof *pid);
        int *fd = calloc((size_t)n, sizeof *fd);
        int next = 0, running = 0, done = 0;
        fflush(NULL);
        while (done < n) {
            while (running < cfg.jobs && next < n) {
                int p[2];
                if (pipe(p) != 0) {
                    perror("pipe");
                    return 2;
                }
                pid_t c = fork();
                if (c < 0) {
                    perror("fork");
                    return 2;
                }
                if (c == 0) {
                    close(p[0]);
                    alarm((unsigned)cfg.timeout);
                    result r;
                    run_test(ts[next].dir, &cfg, &r);
                    ssize_t w = write(p[1], &r, sizeof r);
                    /* The parent's pool state, so LeakSanitizer reports only the test's leaks. */
                    free(pid);
                    free(fd);
                    /* exit, not _exit: LeakSanitizer checks at exit in the sanitizer build */
                    exit(w == (ssize_t)sizeof r ? 0 : 3);
                }
                close(p[1]);
                pid[next] = c;
                fd[next] = p[0];
                next++;
                running++;
            }
            int status;
            pid_t c = waitpid(-1, &status, 0);
            if (c < 0) {
                if (errno == EINTR)
                    continue;
                perror("waitpid");
                return 2;
            }
            for (int k = 0; k < next; k++) {
                if (pid[k] == c) {
                    finish_child(status, fd[k], cfg.timeout, &ts[k].res);
                    pid[k] = 0;
                    running--;
                    done++;
                    break;
                }
            }
        }
        free(pid);
        free(fd);
    }

    int passed = 0, refused = 0, failed = 0, nreason = 0;
    reason_count *reasons = calloc((size_t)n, sizeof *reasons);
    for (int k = 0; k < n; k++) {
        test_entry *t = &ts[k];
        if (t->res.kind == R_PASSED) {
            passed++;
            if (cfg.verbose)
                printf("PASSED  %s/%s\n", t->suite, t->name);
        } else if (t->res.kind == R_FAILED) {
            failed++;
            printf("FAILED  %s/%s: %s\n", t->suite, t->name, t->res.msg);
        } else {
            refused++;
            conf_model mi;
            char mp[4096 + 16], why[256];
            snprintf(mp, sizeof mp, "%s/model.onnx", t->dir);
            if (conf_model_load(mp, &mi, why, sizeof why) == 0) {
                reduce_reason(t->res.msg, t->dir, &mi, t->reason, sizeof t->reason);
                conf_model_free(&mi);
            } else {
                snprintf(t->reason, sizeof t->reason, "%s", t->res.msg);
            }
            if (cfg.verbose)
                printf("REFUSED %s/%s: %s\n", t->suite, t->name, t->res.msg);
            int j = 0;
            while (j < nreason && strcmp(reasons[j].reason, t->reason) != 0)
                j++;
            if (j == nreason)
                snprintf(reasons[nreason++].reason, sizeof reasons[0].reason, "%s", t->reason);
            reasons[j].count++;
        }
    }
    qsort(reasons, (size_t)nreason, sizeof *reasons, cmp_reason);
    printf("\nONNX conformance under %s (%s%s): %d tests, %d passed, %d refused, %d failed\n",
           cfg.root, "cpu", cfg.reference ? " + cpu-reference" : "", n, passed, refused, failed);
    if (nreason)
        printf("refusal reasons (count, reason):\n");
    for (int k = 0; k < nreason; k++)
        printf("%5d  %s\n", reasons[k].count, reasons[k].reason);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, refused);
    for (int k = 0; k < n; k++) {
        free(ts[k].suite);
        free(ts[k].name);
        free(ts[k].dir);
    }
    free(ts);
    free(reasons);
    free(pats);
    return failed ? 1 : 0;
}
