/* `histoplan model info|run|bench`: inspect a model, run it on one input, measure throughput.
 * `model run` lives in cli/model_run.c; the mapping of --input / --output files to the model's
 * inputs and outputs in cli/model_io.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/commands.h"
#include "cli/model_cmd.h"
#include "cli/model_io.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "models/model.h"
#include "models/onnx_ops.h"

static void model_usage(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  histoplan model info M.onnx [--batch N]\n"
            "  histoplan model run M.onnx --input X [--input X2...] [--output Y.npy...] [options]\n"
            "  histoplan model bench M.onnx [--batch N] [--iterations K] [options]\n"
            "\n"
            "  -i, --input X      a .npy tensor of the shape the model declares for its input (any\n"
            "                     rank; a symbolic first dimension N takes the file's), or an image\n"
            "                     (PNG, JPEG, TIFF) for a model with one [N, 3, H, W] input, normalized\n"
            "                     as its card says. Several inputs: --input NAME=FILE for each, or one\n"
            "                     plain --input per model input in declaration order\n"
            "  --mpp M            the image's microns per pixel: resample it to the card's MPP and\n"
            "                     cut it into input-sized tiles (without --mpp an image must be\n"
            "                     exactly the input size; it is never squashed)\n"
            "  -o, --output Y.npy write an output tensor (NAME=Y.npy for a given output; plain ones\n"
            "                     in declaration order)\n"
            "  --backend B        cpu (default), cpu-reference, cuda\n"
            "  --precision P      fp32 (default); fp16, bf16 with --backend cuda\n"
            "  -j, --threads T    CPU threads (default: all cores)\n"
            "  --device D         CUDA device index (default 0)\n"
            "  --card C.json      model card (default: <model>.card.json beside the model)\n"
            "  --mean a,b,c --std a,b,c --classes n1,n2,...\n"
            "                     for a model without a card\n"
            "  --top K            classes to print (default 5)\n"
            "  -b, --batch N      batch size for info (planned memory) and bench (default 8): the\n"
            "                     size of a symbolic first input dimension\n"
            "  --iterations K     timed batches for bench (default 10), --warmup W (default 2)\n"
            "  --json             bench: print one JSON line\n"
            "\n"
            "exit status: 0 ok, 1 failed, 2 bad usage, 3 the model uses an operator, attribute or\n"
            "data type histoplan does not support (refused at load)\n");
}

static int parse_floats3(const char *s, float out[3])
{
    char *end;
    for (int i = 0; i < 3; i++) {
        out[i] = strtof(s, &end);
        if (end == s || (i < 2 && *end != ',') || (i == 2 && *end != '\0'))
            return 0;
        s = end + 1;
    }
    return 1;
}

/* Returns 1 ok, 0 bad usage (message printed), -1 --help printed. */
static int parse_args(int argc, char **argv, model_args *a)
{
    enum { O_INPUT = 1, O_OUTPUT, O_BACKEND, O_PRECISION, O_THREADS, O_DEVICE, O_CARD, O_MEAN, O_STD,
           O_CLASSES, O_TOP, O_BATCH, O_ITERATIONS, O_WARMUP, O_JSON, O_MPP };
    static const hp_cli_option opts[] = {
        {"input", 'i', 1, O_INPUT},     {"output", 'o', 1, O_OUTPUT},       {"backend", 0, 1, O_BACKEND},
        {"precision", 0, 1, O_PRECISION}, {"threads", 'j', 1, O_THREADS},   {"device", 0, 1, O_DEVICE},
        {"card", 0, 1, O_CARD},         {"mean", 0, 1, O_MEAN},             {"std", 0, 1, O_STD},
        {"classes", 0, 1, O_CLASSES},   {"top", 0, 1, O_TOP},               {"batch", 'b', 1, O_BATCH},
        {"iterations", 0, 1, O_ITERATIONS}, {"warmup", 0, 1, O_WARMUP},     {"json", 0, 0, O_JSON},
        {"mpp", 0, 1, O_MPP},           {0},
    };
    static const char *const backends[] = {"cpu", "cpu-reference", "cuda", NULL};
    static const hp_backend_kind backend_ids[] = {HP_BACKEND_CPU, HP_BACKEND_CPU_REFERENCE, HP_BACKEND_CUDA};
    a->mo = hp_model_default_options();
    a->batch = 8;
    a->iterations = 10;
    a->warmup = 2;
    a->top = 5;
    hp_cli_parser p;
    hp_cli_parser_init(&p, a->cmd, "model", opts, argc, argv);
    int c, k;
    long long v;
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        switch (c) {
        case O_INPUT:
        case O_OUTPUT: {
            int *n = c == O_INPUT ? &a->n_inputs : &a->n_outputs;
            if (*n >= HP_CLI_MAX_IO) {
                hp_cli_usage_error(&p, "more than %d --%s options", HP_CLI_MAX_IO, p.option);
                return 0;
            }
            (c == O_INPUT ? a->inputs : a->outputs)[(*n)++] = p.value;
            break;
        }
        case O_MPP:
            if (hp_cli_double_value(&p, 0.01, 100, &a->mpp))
                return 0;
            break;
        case O_BACKEND:
            if ((k = hp_cli_choice_value(&p, backends)) < 0)
                return 0;
            a->mo.backend = backend_ids[k];
            break;
        case O_PRECISION:
            if (hp_cli_precision_value(&p, &a->mo.precision))
                return 0;
            break;
        case O_THREADS:
            if (hp_cli_int_value(&p, 1, 1024, &v))
                return 0;
            a->mo.threads = (int)v;
            break;
        case O_DEVICE:
            if (hp_cli_int_value(&p, 0, 1024, &v))
                return 0;
            a->mo.device = (int)v;
            break;
        case O_CARD: a->card = p.value; break;
        case O_MEAN: a->mean = p.value; break;
        case O_STD: a->std_ = p.value; break;
        case O_CLASSES: a->classes = p.value; break;
        case O_TOP:
            if (hp_cli_int_value(&p, 0, 100000, &v))
                return 0;
            a->top = (int)v;
            break;
        case O_BATCH:
            if (hp_cli_int_value(&p, 1, 65536, &v))
                return 0;
            a->batch = (int)v;
            a->batch_given = 1;
            break;
        case O_ITERATIONS:
            if (hp_cli_int_value(&p, 1, 1000000, &v))
                return 0;
            a->iterations = (int)v;
            break;
        case O_WARMUP:
            if (hp_cli_int_value(&p, 0, 1000000, &v))
                return 0;
            a->warmup = (int)v;
            break;
        case O_JSON: a->json = 1; break;
        case HP_CLI_HELP: model_usage(stdout); return -1;
        case HP_CLI_ARG:
            if (a->model) {
                hp_cli_usage_error(&p, "unexpected argument '%s' (one model; inputs go with --input)", p.value);
                return 0;
            }
            a->model = p.value;
            break;
        default: return 0;
        }
    }
    if (!a->model) {
        hp_cli_usage_error(&p, "no model file given");
        return 0;
    }
    if (a->mo.precision != HP_PREC_FP32 && a->mo.backend != HP_BACKEND_CUDA) {
        hp_cli_usage_error(&p,
                           "--precision %s needs --backend cuda; the CPU backends compute in float32 only",
                           hp_precision_name(a->mo.precision));
        return 0;
    }
    a->mo.card_path = a->card;
    return 1;
}

int hp_cli_load_status(hp_status st)
{
    return st == HP_ERR_UNSUPPORTED ? HP_EXIT_UNSUPPORTED : HP_EXIT_FAILED;
}

hp_model *hp_cli_open_model(const model_args *a, int *rc)
{
    hp_error err = {0};
    hp_model *m = hp_model_open(a->model, &a->mo, &err);
    if (!m) {
        fprintf(stderr, "histoplan model: %s\n", err.msg);
        *rc = hp_cli_load_status(err.code);
    }
    return m;
}

static int cmd_info(const model_args *a)
{
    int rc;
    hp_model *m = hp_cli_open_model(a, &rc);
    if (!m)
        return rc;
    const hp_graph *g = hp_model_graph(m);
    printf("model: %s (opset %lld)\n", a->model, (long long)g->opset);
    for (int i = 0; i < g->n_inputs; i++) {
        const hp_value *v = &g->values[g->inputs[i]];
        char shape[256];
        hp_cli_dims_str(shape, sizeof shape, v->ndim, v->dims);
        printf("input  %-20s %s%s%s\n", v->name, shape, v->dtype == HP_DT_INT64 ? " int64" : "",
               hp_model_input_is_parameter(m, i) ? " (a parameter: bound as a constant)" : "");
    }
    for (int i = 0; i < g->n_outputs; i++)
        printf("output %s\n", g->values[g->outputs[i]].name);

    /* Operator counts, by ONNX op type, most frequent first. */
    const char *types[64];
    int counts[64], nt = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const char *t = g->nodes[k].op_type;
        int j = 0;
        while (j < nt && strcmp(types[j], t))
            j++;
        if (j == nt && nt < 64) {
            types[nt] = t;
            counts[nt++] = 0;
        }
        if (j < nt)
            counts[j]++;
    }
    printf("operators (%d nodes):", g->n_nodes);
    for (int pass = 0; pass < nt; pass++) {
        int best = -1;
        for (int j = 0; j < nt; j++)
            if (counts[j] > 0 && (best < 0 || counts[j] > counts[best]))
                best = j;
        printf(" %s %d", types[best], counts[best]);
        counts[best] = -counts[best];
    }
    printf("\n");
    const hp_card *card = hp_model_card(m);
    if (card && card->n_classes) {
        printf("classes:");
        for (int i = 0; i < card->n_classes; i++)
            printf(" %s", card->classes[i]);
        printf("\n");
    }
    if (card && card->mpp > 0)
        printf("trained at: %.3f um/px\n", card->mpp);

    /* Planning needs the values of inputs that are parameters (a Reshape's shape, pads) and the
     * sizes of symbolic input dims other than the batch (from an example .npy). */
    const char *names[HP_CLI_MAX_IO], *files[HP_CLI_MAX_IO];
    hp_cli_inputs ins;
    memset(&ins, 0, sizeof ins);
    int n_names = g->n_inputs < HP_CLI_MAX_IO ? g->n_inputs : HP_CLI_MAX_IO;
    for (int k = 0; k < n_names; k++)
        names[k] = g->values[g->inputs[k]].name;
    if (hp_cli_assign("input", a->inputs, a->n_inputs, names, n_names, files)) {
        hp_model_destroy(m);
        return HP_EXIT_USAGE;
    }
    char missing[1024] = "";
    for (int k = 0; k < n_names; k++) {
        const hp_value *v = &g->values[g->inputs[k]];
        int param = hp_model_input_is_parameter(m, k) || v->dtype == HP_DT_INT64, free_dims = 0;
        for (int d = 1; d < v->ndim; d++)
            free_dims |= v->dims[d] < 0;
        size_t used = strlen(missing);
        if ((param || free_dims) && !files[k] && used + strlen(v->name) + 24 < sizeof missing) {
            int w = snprintf(missing + used, sizeof missing - used, " --input %s=FILE.npy", v->name);
            (void)w;
        }
        if (!param && !free_dims)
            files[k] = NULL;
    }
    if (*missing) {
        printf("planned memory: give the values of parameter inputs and an example of inputs with "
               "symbolic dims other than the batch:%s\n", missing);
        hp_model_destroy(m);
        return HP_EXIT_OK;
    }
    if ((rc = hp_cli_inputs_load(m, files, &ins, 1))) {
        hp_cli_inputs_free(&ins);
        hp_model_destroy(m);
        return rc;
    }
    int batches[] = {1, 8, 32, 256};
    int nb = 4;
    if (a->batch != 8) {
        batches[0] = a->batch;
        nb = 1;
    }
    rc = HP_EXIT_OK;
    for (int i = 0; i < nb; i++) {
        hp_model_stats st;
        hp_status s = hp_model_stats_for_batch(m, batches[i], &st);
        if (s) {
            fprintf(stderr, "histoplan model: %s\n", hp_model_error(m));
            rc = hp_cli_load_status(s);
            break;
        }
        if (i == 0)
            printf("parameters: %lld\nFLOPs per input: %.3f G (as run, after the graph passes)\nnodes after passes: %d\n", (long long)st.params,
                   st.flops_per_item / 1e9, st.n_nodes_planned);
        printf("batch %4d: planned peak activation memory %.1f MiB (one buffer per tensor: %.1f MiB)\n",
               batches[i], st.arena_bytes / 1048576.0, st.naive_bytes / 1048576.0);
    }
    hp_cli_inputs_free(&ins);
    hp_model_destroy(m);
    return rc;
}

int hp_cli_apply_overrides(hp_model *m, const model_args *a, int image_input)
{
    const hp_card *card = hp_model_card(m);
    char missing[128] = "";
    int have_norm = card && card->has_norm, have_classes = card && card->n_classes > 0;
    if (a->mean || a->std_) {
        float mean[3], sd[3];
        if (!a->mean || !a->std_ || !parse_floats3(a->mean, mean) || !parse_floats3(a->std_, sd)) {
            fprintf(stderr, "histoplan model: --mean and --std take three comma-separated numbers each\n");
            return HP_EXIT_USAGE;
        }
        if (hp_model_set_normalization(m, mean, sd)) {
            fprintf(stderr, "histoplan model: %s\n", hp_model_error(m));
            return HP_EXIT_USAGE;
        }
        have_norm = 1;
    }
    if (a->classes) {
        char *copy = strdup(a->classes);
        const char *names[HP_CARD_MAX_CLASSES];
        int n = 0;
        for (char *tok = strtok(copy, ","); tok && n < HP_CARD_MAX_CLASSES; tok = strtok(NULL, ","))
            names[n++] = tok;
        int bad = hp_model_set_classes(m, n, names);
        free(copy);
        if (bad) {
            fprintf(stderr, "histoplan model: --classes: %s\n", hp_model_error(m));
            return HP_EXIT_USAGE;
        }
        have_classes = 1;
    }
    if (image_input && !have_norm)
        strcat(missing, " --mean --std");
    if (image_input && !have_classes)
        strcat(missing, " --classes");
    if (*missing) {
        fprintf(stderr, "histoplan model: %s has no model card; give the missing options:%s\n", a->model, missing);
        return HP_EXIT_USAGE;
    }
    return HP_EXIT_OK;
}

/* Random data of the declared shape for every runtime input (a symbolic first dimension takes
 * --batch), unless --input NAME=FILE gives data (its shape then fixes the symbolic dims, which
 * an input with symbolic dims other than the batch needs); inputs the model uses as parameters
 * (shapes, pads, scales) always come from --input NAME=FILE, since random values there would
 * be meaningless. */
static int cmd_bench(const model_args *a)
{
    int rc;
    hp_model *m = hp_cli_open_model(a, &rc);
    if (!m)
        return rc;
    rc = HP_EXIT_FAILED;
    hp_cli_inputs ins;
    memset(&ins, 0, sizeof ins);
    float **in = NULL, **out = NULL;
    int n_in = 0, n_out = 0, *given = NULL;
    double *times = NULL;
    const hp_graph *g = hp_model_graph(m);
    const char *names[HP_CLI_MAX_IO], *files[HP_CLI_MAX_IO];
    if (g->n_inputs > HP_CLI_MAX_IO) {
        fprintf(stderr, "histoplan model: %s has %d inputs (the command line takes %d)\n", a->model,
                g->n_inputs, HP_CLI_MAX_IO);
        goto done;
    }
    for (int k = 0; k < g->n_inputs; k++)
        names[k] = g->values[g->inputs[k]].name;
    if (hp_cli_assign("input", a->inputs, a->n_inputs, names, g->n_inputs, files)) {
        rc = HP_EXIT_USAGE;
        goto done;
    }
    int symbolic = 0, items = 1, first_runtime = 1, from_file = 0;
    for (int k = 0; k < g->n_inputs; k++) {
        const hp_value *v = &g->values[g->inputs[k]];
        int param = hp_model_input_is_parameter(m, k) || v->dtype == HP_DT_INT64;
        if (param && !files[k]) {
            fprintf(stderr,
                    "histoplan model: the model input '%s' is a parameter (a shape, pads, scales or "
                    "bounds), not data; give its values with --input %s=FILE.npy\n",
                    v->name, v->name);
            rc = HP_EXIT_USAGE;
            goto done;
        }
        if (param)
            continue;
        int free_dims = 0;
        for (int d = 1; d < v->ndim; d++)
            free_dims |= v->dims[d] < 0;
        if (free_dims && !files[k]) {
            char shape[256];
            hp_cli_dims_str(shape, sizeof shape, v->ndim, v->dims);
            fprintf(stderr,
                    "histoplan model: the model input '%s' %s has symbolic dims other than the batch; give "
                    "data of the shape to measure with --input %s=FILE.npy\n",
                    v->name, shape, v->name);
            rc = HP_EXIT_USAGE;
            goto done;
        }
        if (v->ndim > 0 && v->dims[0] < 0) {
            symbolic = 1;
            from_file |= files[k] != NULL;
        } else if (first_runtime) {
            items = v->ndim > 0 ? (int)v->dims[0] : 1;
        }
        first_runtime = 0;
    }
    if ((rc = hp_cli_inputs_load(m, files, &ins, 1)))
        goto done;
    rc = HP_EXIT_USAGE;
    if (from_file && a->batch_given && a->batch != ins.batch) {
        fprintf(stderr, "histoplan model: --batch %d, but the --input data holds %d items\n", a->batch, ins.batch);
        goto done;
    }
    if (!symbolic && a->batch_given && a->batch != items) {
        fprintf(stderr, "histoplan model: the model's inputs have fixed shapes (a batch of %d); --batch %d "
                        "does not apply\n", items, a->batch);
        goto done;
    }
    if (symbolic)
        items = from_file ? ins.batch : a->batch;
    rc = HP_EXIT_FAILED;
    hp_status st = hp_model_instantiate(m, symbolic ? items : 1);
    if (st) {
        fprintf(stderr, "histoplan model: %s\n", hp_model_error(m));
        rc = hp_cli_load_status(st);
        goto done;
    }
    const hp_graph *inst = hp_model_instance(m);
    n_in = inst->n_inputs;
    n_out = inst->n_outputs;
    in = calloc((size_t)n_in + 1, sizeof *in);
    out = calloc((size_t)n_out + 1, sizeof *out);
    given = calloc((size_t)n_in + 1, sizeof *given);
    times = calloc((size_t)a->iterations, sizeof(double));
    if (!in || !out || !given || !times)
        goto oom;
    unsigned s = 12345;
    for (int k = 0; k < n_in; k++) {
        const hp_value *v = &inst->values[inst->inputs[k]];
        for (int j = 0; j < ins.n && !given[k]; j++)
            if (!ins.in[j].bound && !strcmp(ins.in[j].name, v->name)) {
                in[k] = ins.in[j].f; /* owned by ins */
                given[k] = 1;
            }
        if (given[k])
            continue;
        int64_t n = hp_value_numel(v);
        if (!(in[k] = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1))))
            goto oom;
        for (int64_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            in[k][i] = (float)((s >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
        }
    }
    for (int k = 0; k < n_out; k++) {
        int64_t n = hp_value_numel(&inst->values[inst->outputs[k]]);
        if (!(out[k] = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1))))
            goto oom;
    }
    hp_progress prog;
    hp_progress_start(&prog, "bench", a->warmup + a->iterations);
    for (int i = 0; i < a->warmup + a->iterations; i++) {
        double t0 = hp_now_seconds();
        if (hp_model_run_all(m, (const float *const *)in, out)) {
            hp_progress_finish(&prog);
            fprintf(stderr, "histoplan model: %s\n", hp_model_error(m));
            goto done;
        }
        if (i >= a->warmup)
            times[i - a->warmup] = hp_now_seconds() - t0;
        hp_progress_update(&prog, i + 1);
    }
    hp_progress_finish(&prog);
    /* Median batch time: robust against a stray slow iteration. */
    for (int i = 1; i < a->iterations; i++)
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double t = times[j];
            times[j] = times[j - 1];
            times[j - 1] = t;
        }
    double med = times[a->iterations / 2];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const char *prec = hp_precision_name(a->mo.precision);
    const char *be = a->mo.backend == HP_BACKEND_CUDA ? "cuda" : a->mo.backend == HP_BACKEND_CPU_REFERENCE ? "cpu-reference" : "cpu";
    if (a->json)
        printf("{\"model\":\"%s\",\"backend\":\"%s\",\"precision\":\"%s\",\"batch\":%d,\"iterations\":%d,"
               "\"median_batch_s\":%.6f,\"items_per_s\":%.3f,\"peak_rss_mib\":%.1f}\n",
               a->model, be, prec, items, a->iterations, med, items / med, ru.ru_maxrss / 1024.0);
    else
        printf("%s: backend %s, %s, batch %d: %.2f ms per batch (median of %d), %.1f items/s, peak RSS %.1f MiB\n",
               a->model, be, prec, items, med * 1e3, a->iterations, items / med, ru.ru_maxrss / 1024.0);
    rc = HP_EXIT_OK;
    goto done;
oom:
    fprintf(stderr, "histoplan model: out of memory\n");
    rc = HP_EXIT_FAILED;
done:
    for (int k = 0; in && k < n_in; k++)
        if (!given || !given[k])
            free(in[k]);
    free(given);
    for (int k = 0; out && k < n_out; k++)
        free(out[k]);
    free(in);
    free(out);
    free(times);
    hp_cli_inputs_free(&ins);
    hp_model_destroy(m);
    return rc;
}

int hp_cli_model(int argc, char **argv)
{
    if (argc < 2)
        return hp_cli_usage_error_for("model", "model", "missing subcommand (info, run or bench)");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        model_usage(stdout);
        return HP_EXIT_OK;
    }
    int (*fn)(const model_args *) = !strcmp(sub, "info")    ? cmd_info
                                    : !strcmp(sub, "run")   ? hp_cli_model_run
                                    : !strcmp(sub, "bench") ? cmd_bench
                                                            : NULL;
    if (!fn)
        return hp_cli_usage_error_for("model", "model", "unknown subcommand '%s' (info, run or bench)", sub);
    model_args a = {0};
    char cmd[32];
    snprintf(cmd, sizeof cmd, "model %s", sub);
    a.cmd = cmd;
    int p = parse_args(argc - 1, argv + 1, &a);
    if (p < 0)
        return HP_EXIT_OK;
    if (!p)
        return HP_EXIT_USAGE;
    int rc;
    if ((rc = hp_cli_refuse_dir(cmd, a.model, "a model file (.onnx)")))
        return rc;
    return fn(&a);
}
