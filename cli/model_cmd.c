/* `histoplan model info|run|bench`: inspect a model, run it on one input, measure throughput. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "io/image.h"
#include "io/npy.h"
#include "models/model.h"
#include "models/onnx_ops.h"

typedef struct {
    const char *model;
    const char *input;
    const char *output;
    const char *card;
    const char *mean, *std_, *classes;
    hp_model_options mo;
    int batch;
    int iterations, warmup;
    int top;
    int json;
} model_args;

static void model_usage(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  histoplan model info M.onnx [--batch N]\n"
            "  histoplan model run M.onnx --input X [--output Y.npy] [options]\n"
            "  histoplan model bench M.onnx [--batch N] [--iterations K] [options]\n"
            "\n"
            "  --input X          an image (PNG, JPEG, TIFF; resized to the model input and normalized\n"
            "                     as its card says) or a float32 NCHW tensor in NumPy .npy format\n"
            "  --output Y.npy     write the raw output tensor\n"
            "  --backend B        cpu (default), cpu-reference, cuda\n"
            "  --precision P      fp32 (default), fp16, bf16 (CUDA only)\n"
            "  --threads T        CPU threads (default: all cores)\n"
            "  --device D         CUDA device index (default 0)\n"
            "  --card C.json      model card (default: <model>.card.json beside the model)\n"
            "  --mean a,b,c --std a,b,c --classes n1,n2,...\n"
            "                     for a model without a card\n"
            "  --top K            classes to print (default 5)\n"
            "  --batch N          batch size for info (planned memory) and bench (default 8)\n"
            "  --iterations K     timed batches for bench (default 10), --warmup W (default 2)\n"
            "  --json             bench: print one JSON line\n"
            "\n"
            "exit status: 0 ok, 1 failed, 2 bad usage\n");
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

static int parse_args(int argc, char **argv, model_args *a)
{
    static const struct option opts[] = {
        {"input", required_argument, 0, 'i'},   {"output", required_argument, 0, 'o'},
        {"backend", required_argument, 0, 'b'}, {"precision", required_argument, 0, 'p'},
        {"threads", required_argument, 0, 't'}, {"device", required_argument, 0, 'd'},
        {"card", required_argument, 0, 'c'},    {"mean", required_argument, 0, 'M'},
        {"std", required_argument, 0, 'S'},     {"classes", required_argument, 0, 'C'},
        {"top", required_argument, 0, 'k'},     {"batch", required_argument, 0, 'n'},
        {"iterations", required_argument, 0, 'I'}, {"warmup", required_argument, 0, 'W'},
        {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    a->mo = hp_model_default_options();
    a->batch = 8;
    a->iterations = 10;
    a->warmup = 2;
    a->top = 5;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "i:o:b:p:t:d:c:k:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': a->input = optarg; break;
        case 'o': a->output = optarg; break;
        case 'b':
            if (!strcmp(optarg, "cpu"))
                a->mo.backend = HP_BACKEND_CPU;
            else if (!strcmp(optarg, "cpu-reference"))
                a->mo.backend = HP_BACKEND_CPU_REFERENCE;
            else if (!strcmp(optarg, "cuda"))
                a->mo.backend = HP_BACKEND_CUDA;
            else {
                fprintf(stderr, "histoplan: --backend must be cpu, cpu-reference or cuda, not '%s'\n", optarg);
                return 0;
            }
            break;
        case 'p':
            if (!strcmp(optarg, "fp32"))
                a->mo.precision = HP_PREC_FP32;
            else if (!strcmp(optarg, "fp16"))
                a->mo.precision = HP_PREC_FP16;
            else if (!strcmp(optarg, "bf16"))
                a->mo.precision = HP_PREC_BF16;
            else {
                fprintf(stderr, "histoplan: --precision must be fp32, fp16 or bf16, not '%s'\n", optarg);
                return 0;
            }
            break;
        case 't': a->mo.threads = atoi(optarg); break;
        case 'd': a->mo.device = atoi(optarg); break;
        case 'c': a->card = optarg; break;
        case 'M': a->mean = optarg; break;
        case 'S': a->std_ = optarg; break;
        case 'C': a->classes = optarg; break;
        case 'k': a->top = atoi(optarg); break;
        case 'n': a->batch = atoi(optarg); break;
        case 'I': a->iterations = atoi(optarg); break;
        case 'W': a->warmup = atoi(optarg); break;
        case 'j': a->json = 1; break;
        case 'h': model_usage(stdout); exit(HP_EXIT_OK);
        default: return 0;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "histoplan: no model file given\n");
        return 0;
    }
    a->model = argv[optind];
    if (optind + 1 < argc) {
        fprintf(stderr, "histoplan: unexpected argument '%s'\n", argv[optind + 1]);
        return 0;
    }
    if (a->batch < 1 || a->batch > 65536 || a->iterations < 1 || a->warmup < 0 || a->top < 0) {
        fprintf(stderr, "histoplan: --batch, --iterations, --warmup or --top out of range\n");
        return 0;
    }
    a->mo.card_path = a->card;
    return 1;
}

static hp_model *open_model(const model_args *a)
{
    hp_error err = {0};
    hp_model *m = hp_model_open(a->model, &a->mo, &err);
    if (!m)
        fprintf(stderr, "histoplan: %s\n", err.msg);
    return m;
}

static int cmd_info(const model_args *a)
{
    hp_model *m = open_model(a);
    if (!m)
        return HP_EXIT_FAILED;
    const hp_graph *g = hp_model_graph(m);
    printf("model: %s (opset %lld)\n", a->model, (long long)g->opset);
    for (int i = 0; i < g->n_inputs; i++) {
        const hp_value *v = &g->values[g->inputs[i]];
        printf("input  %-20s [", v->name);
        for (int d = 0; d < v->ndim; d++) {
            if (v->dims[d] < 0)
                printf(d ? ", N" : "N");
            else
                printf(d ? ", %lld" : "%lld", (long long)v->dims[d]);
        }
        printf("]\n");
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

    int batches[] = {1, 8, 32, 256};
    int nb = 4;
    if (a->batch != 8) {
        batches[0] = a->batch;
        nb = 1;
    }
    int rc = HP_EXIT_OK;
    for (int i = 0; i < nb; i++) {
        hp_model_stats st;
        if (hp_model_stats_for_batch(m, batches[i], &st)) {
            fprintf(stderr, "histoplan: %s\n", hp_model_error(m));
            rc = HP_EXIT_FAILED;
            break;
        }
        if (i == 0)
            printf("parameters: %lld\nFLOPs per input: %.3f G (as run, after the graph passes)\nnodes after passes: %d\n", (long long)st.params,
                   st.flops_per_item / 1e9, st.n_nodes_planned);
        printf("batch %4d: planned peak activation memory %.1f MiB (one buffer per tensor: %.1f MiB)\n",
               batches[i], st.arena_bytes / 1048576.0, st.naive_bytes / 1048576.0);
    }
    hp_model_destroy(m);
    return rc;
}

/* Softmax for display when the output is not already a probability vector. */
static void to_probabilities(const float *x, int n, float *p)
{
    int is_prob = 1;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (!(x[i] >= 0 && x[i] <= 1))
            is_prob = 0;
        sum += x[i];
    }
    if (is_prob && fabs(sum - 1.0) < 1e-3) {
        memcpy(p, x, sizeof(float) * (size_t)n);
        return;
    }
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (p[i] = expf(x[i] - mx));
    for (int i = 0; i < n; i++)
        p[i] = (float)(p[i] / s);
}

static int apply_overrides(hp_model *m, const model_args *a, int image_input)
{
    const hp_card *card = hp_model_card(m);
    char missing[128] = "";
    int have_norm = card && card->has_norm, have_classes = card && card->n_classes > 0;
    if (a->mean || a->std_) {
        float mean[3], sd[3];
        if (!a->mean || !a->std_ || !parse_floats3(a->mean, mean) || !parse_floats3(a->std_, sd)) {
            fprintf(stderr, "histoplan: --mean and --std take three comma-separated numbers each\n");
            return HP_EXIT_USAGE;
        }
        if (hp_model_set_normalization(m, mean, sd)) {
            fprintf(stderr, "histoplan: %s\n", hp_model_error(m));
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
            fprintf(stderr, "histoplan: --classes: %s\n", hp_model_error(m));
            return HP_EXIT_USAGE;
        }
        have_classes = 1;
    }
    if (image_input && !have_norm)
        strcat(missing, " --mean --std");
    if (image_input && !have_classes)
        strcat(missing, " --classes");
    if (*missing) {
        fprintf(stderr, "histoplan: %s has no model card; give the missing options:%s\n", a->model, missing);
        return HP_EXIT_USAGE;
    }
    return HP_EXIT_OK;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcasecmp(s + n - k, suf);
}

static int cmd_run(const model_args *a)
{
    if (!a->input) {
        fprintf(stderr, "histoplan: model run needs --input\n");
        return HP_EXIT_USAGE;
    }
    int is_npy = has_suffix(a->input, ".npy");
    hp_model *m = open_model(a);
    if (!m)
        return HP_EXIT_FAILED;
    int rc = apply_overrides(m, a, !is_npy);
    float *input = NULL, *out = NULL, *prob = NULL;
    uint8_t *rgb = NULL, *tile = NULL;
    hp_error err = {0};
    int n = 1;
    if (rc)
        goto done;
    rc = HP_EXIT_FAILED;
    int c, h, w;
    hp_model_input_shape(m, &c, &h, &w);
    hp_status st;
    if (is_npy) {
        int ndim;
        int64_t dims[HP_NPY_MAX_DIMS];
        if (hp_npy_read(a->input, &input, &ndim, dims, &err)) {
            fprintf(stderr, "histoplan: %s\n", err.msg);
            goto done;
        }
        if (ndim != 4 || dims[1] != c || (h > 0 && dims[2] != h) || (w > 0 && dims[3] != w) || dims[0] < 1 ||
            dims[0] > 65536) {
            fprintf(stderr, "histoplan: %s: shape [%lld, %lld, %lld, %lld] does not match the model input [N, %d, %d, %d]\n",
                    a->input, (long long)dims[0], (long long)(ndim > 1 ? dims[1] : 0), (long long)(ndim > 2 ? dims[2] : 0),
                    (long long)(ndim > 3 ? dims[3] : 0), c, h, w);
            goto done;
        }
        n = (int)dims[0];
    }
    /* Output buffer sized after instantiation. */
    if (hp_model_instantiate(m, n)) {
        fprintf(stderr, "histoplan: %s\n", hp_model_error(m));
        goto done;
    }
    int64_t per = hp_model_output_size(m, 0);
    out = malloc(sizeof(float) * (size_t)(per * n));
    prob = malloc(sizeof(float) * (size_t)per);
    if (!out || !prob) {
        fprintf(stderr, "histoplan: out of memory\n");
        goto done;
    }
    if (is_npy) {
        st = hp_model_run(m, input, n, out);
    } else {
        int iw, ih;
        if (hp_image_read_rgb8(a->input, &iw, &ih, &rgb, &err)) {
            fprintf(stderr, "histoplan: %s\n", err.msg);
            goto done;
        }
        const hp_card *card = hp_model_card(m);
        int th = h > 0 ? h : (card ? card->input_h : 0), tw = w > 0 ? w : (card ? card->input_w : 0);
        if (th <= 0 || tw <= 0) {
            fprintf(stderr, "histoplan: %s: the model input size is not fixed and the card gives none\n", a->model);
            goto done;
        }
        tile = malloc((size_t)th * (size_t)tw * 3);
        if (!tile || hp_image_resize_rgb8(rgb, iw, ih, tile, tw, th)) {
            fprintf(stderr, "histoplan: cannot resize %s to %dx%d\n", a->input, tw, th);
            goto done;
        }
        st = hp_model_run_rgb8(m, tile, 1, out);
    }
    if (st) {
        fprintf(stderr, "histoplan: %s\n", hp_model_error(m));
        goto done;
    }
    if (a->output) {
        const hp_graph *g = hp_model_instance(m);
        const hp_value *ov = &g->values[g->outputs[0]];
        if (hp_npy_write(a->output, out, ov->ndim, ov->dims, &err)) {
            fprintf(stderr, "histoplan: %s\n", err.msg);
            goto done;
        }
    }
    const hp_card *card = hp_model_card(m);
    for (int b = 0; b < n; b++) {
        const float *o = out + (size_t)b * (size_t)per;
        if (n > 1)
            printf("item %d:\n", b);
        if (per > 4096) {
            printf("  output has %lld values per item (not a class vector)\n", (long long)per);
            continue;
        }
        to_probabilities(o, (int)per, prob);
        for (int k = 0; k < a->top && k < per; k++) {
            int best = 0;
            for (int j = 1; j < per; j++)
                if (prob[j] > prob[best])
                    best = j;
            const char *name = card && best < card->n_classes ? card->classes[best] : NULL;
            if (name)
                printf("  %-16s %.4f\n", name, prob[best]);
            else
                printf("  class %-10d %.4f\n", best, prob[best]);
            prob[best] = -1;
        }
    }
    if (card && card->intended_use)
        printf("note: %s\n", card->intended_use);
    rc = HP_EXIT_OK;
done:
    free(input);
    free(out);
    free(prob);
    free(rgb);
    free(tile);
    hp_model_destroy(m);
    return rc;
}

static int cmd_bench(const model_args *a)
{
    hp_model *m = open_model(a);
    if (!m)
        return HP_EXIT_FAILED;
    int rc = HP_EXIT_FAILED;
    float *in = NULL, *out = NULL;
    double *times = NULL;
    int c, h, w;
    hp_model_input_shape(m, &c, &h, &w);
    if (hp_model_instantiate(m, a->batch)) {
        fprintf(stderr, "histoplan: %s\n", hp_model_error(m));
        goto done;
    }
    const hp_graph *g = hp_model_instance(m);
    int64_t in_n = hp_value_numel(&g->values[g->inputs[0]]);
    in = malloc(sizeof(float) * (size_t)in_n);
    out = malloc(sizeof(float) * (size_t)(hp_model_output_size(m, 0) * a->batch));
    times = calloc((size_t)a->iterations, sizeof(double));
    if (!in || !out || !times) {
        fprintf(stderr, "histoplan: out of memory\n");
        goto done;
    }
    unsigned s = 12345;
    for (int64_t i = 0; i < in_n; i++) {
        s = s * 1664525u + 1013904223u;
        in[i] = (float)((s >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    hp_progress prog;
    hp_progress_start(&prog, "bench", a->warmup + a->iterations);
    for (int i = 0; i < a->warmup + a->iterations; i++) {
        double t0 = hp_now_seconds();
        if (hp_model_run(m, in, a->batch, out)) {
            hp_progress_finish(&prog);
            fprintf(stderr, "histoplan: %s\n", hp_model_error(m));
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
    const char *prec = a->mo.precision == HP_PREC_FP16 ? "fp16" : a->mo.precision == HP_PREC_BF16 ? "bf16" : "fp32";
    const char *be = a->mo.backend == HP_BACKEND_CUDA ? "cuda" : a->mo.backend == HP_BACKEND_CPU_REFERENCE ? "cpu-reference" : "cpu";
    if (a->json)
        printf("{\"model\":\"%s\",\"backend\":\"%s\",\"precision\":\"%s\",\"batch\":%d,\"iterations\":%d,"
               "\"median_batch_s\":%.6f,\"items_per_s\":%.3f,\"peak_rss_mib\":%.1f}\n",
               a->model, be, prec, a->batch, a->iterations, med, a->batch / med, ru.ru_maxrss / 1024.0);
    else
        printf("%s: backend %s, %s, batch %d: %.2f ms per batch (median of %d), %.1f items/s, peak RSS %.1f MiB\n",
               a->model, be, prec, a->batch, med * 1e3, a->iterations, a->batch / med, ru.ru_maxrss / 1024.0);
    rc = HP_EXIT_OK;
done:
    free(in);
    free(out);
    free(times);
    hp_model_destroy(m);
    return rc;
}

int hp_cli_model(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        model_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? HP_EXIT_USAGE : HP_EXIT_OK;
    }
    const char *sub = argv[1];
    model_args a = {0};
    if (!parse_args(argc - 1, argv + 1, &a)) {
        model_usage(stderr);
        return HP_EXIT_USAGE;
    }
    if (!strcmp(sub, "info"))
        return cmd_info(&a);
    if (!strcmp(sub, "run"))
        return cmd_run(&a);
    if (!strcmp(sub, "bench"))
        return cmd_bench(&a);
    fprintf(stderr, "histoplan: unknown model command '%s'\n", sub);
    model_usage(stderr);
    return HP_EXIT_USAGE;
}
