/* `histoplan model run`: one run of a model on tensors (.npy, any rank, as the model declares
 * its inputs) or on an image cut into input-sized tiles. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "cli/model_cmd.h"
#include "cli/model_io.h"
#include "io/image.h"
#include "io/npy.h"

/* Images run in batches of at most this many tiles, so memory stays bounded on large images. */
#define IMAGE_CHUNK 32

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcasecmp(s + n - k, suf);
}

static int is_image_file(const char *p)
{
    return has_suffix(p, ".png") || has_suffix(p, ".jpg") || has_suffix(p, ".jpeg") ||
           has_suffix(p, ".tif") || has_suffix(p, ".tiff");
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

/* Prints the top classes of one item's class vector `o` of `per` values. */
static void print_top(const float *o, int64_t per, const hp_card *card, int top, float *prob)
{
    to_probabilities(o, (int)per, prob);
    for (int k = 0; k < top && k < per; k++) {
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

/* Whether an output of shape `v` is one vector of the card's classes per item: [N, C],
 * [N, C, 1, 1] or [C] with C the number of classes; *items and *per receive the split. Any
 * other tensor is summarized rather than shown as made-up class probabilities. */
static int is_class_output(const hp_value *v, const hp_card *card, int64_t *items, int64_t *per)
{
    int ok = (v->ndim == 2) || (v->ndim == 4 && v->dims[2] == 1 && v->dims[3] == 1) || v->ndim == 1;
    *items = v->ndim == 1 ? 1 : v->dims[0];
    *per = v->ndim == 1 ? v->dims[0] : v->ndim >= 2 ? v->dims[1] : 1;
    return ok && card && card->n_classes > 0 && *per == card->n_classes && *items >= 1;
}

static void print_summary(const hp_value *v, const float *x)
{
    char shape[256];
    hp_cli_dims_str(shape, sizeof shape, v->ndim, v->dims);
    int64_t n = hp_value_numel(v);
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int64_t nan = 0;
    for (int64_t k = 0; k < n; k++) {
        if (isnan(x[k])) {
            nan++;
            continue;
        }
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
        sum += x[k];
    }
    printf("output '%s' %s: %lld values", v->name, shape, (long long)n);
    if (n > nan)
        printf(", min %.6g, max %.6g, mean %.6g", lo, hi, sum / (double)(n - nan));
    if (nan)
        printf(", %lld NaN", (long long)nan);
    printf("\n");
}

/* Writes the instance's outputs to the files --output assigned them. */
static int write_outputs(const model_args *a, const hp_graph *inst, float *const *outs)
{
    const char *names[HP_CLI_MAX_IO], *files[HP_CLI_MAX_IO];
    int no = inst->n_outputs < HP_CLI_MAX_IO ? inst->n_outputs : HP_CLI_MAX_IO;
    for (int k = 0; k < no; k++)
        names[k] = inst->values[inst->outputs[k]].name;
    if (hp_cli_assign("output", a->outputs, a->n_outputs, names, no, files))
        return HP_EXIT_USAGE;
    for (int k = 0; k < no; k++) {
        if (!files[k])
            continue;
        const hp_value *v = &inst->values[inst->outputs[k]];
        hp_error err = {0};
        if (hp_npy_write(files[k], outs[k], v->ndim, v->dims, &err)) {
            fprintf(stderr, "histoplan model: %s\n", err.msg);
            return HP_EXIT_FAILED;
        }
    }
    return HP_EXIT_OK;
}

/* Tensors from .npy files: every model input as declared. */
static int run_tensors(const model_args *a, hp_model *m)
{
    const hp_graph *g = hp_model_graph(m);
    const char *names[HP_CLI_MAX_IO], *files[HP_CLI_MAX_IO];
    hp_cli_inputs ins;
    memset(&ins, 0, sizeof ins);
    const float **in_ptr = NULL;
    float **outs = NULL;
    float *prob = NULL;
    int no = 0, rc;
    for (int k = 0; k < g->n_inputs; k++)
        names[k] = g->values[g->inputs[k]].name;
    if (hp_cli_assign("input", a->inputs, a->n_inputs, names, g->n_inputs, files)) {
        rc = HP_EXIT_USAGE;
        goto done;
    }
    for (int k = 0; k < g->n_inputs; k++) {
        if (files[k] && is_image_file(files[k])) {
            fprintf(stderr,
                    "histoplan model: %s is an image; images feed only a model with one input of shape "
                    "[N, 3, H, W] (this model has %d input%s); give a .npy\n",
                    files[k], g->n_inputs, g->n_inputs == 1 ? "" : "s");
            rc = HP_EXIT_FAILED;
            goto done;
        }
    }
    if ((rc = hp_cli_inputs_load(m, files, &ins, 0)))
        goto done;
    hp_status st = hp_model_instantiate(m, ins.batch);
    if (st) {
        fprintf(stderr, "histoplan model: %s\n", hp_model_error(m));
        rc = hp_cli_load_status(st);
        goto done;
    }
    rc = HP_EXIT_FAILED;
    const hp_graph *inst = hp_model_instance(m);
    no = inst->n_outputs;
    in_ptr = calloc((size_t)inst->n_inputs + 1, sizeof *in_ptr);
    outs = calloc((size_t)no + 1, sizeof *outs);
    if (!in_ptr || !outs)
        goto oom;
    for (int k = 0; k < inst->n_inputs; k++) {
        const hp_value *v = &inst->values[inst->inputs[k]];
        const hp_cli_input *in = NULL;
        for (int j = 0; j < ins.n && !in; j++)
            if (!ins.in[j].bound && !strcmp(ins.in[j].name, v->name))
                in = &ins.in[j];
        /* The instance takes the shapes the files gave; anything else is a mismatch the
         * checks above should have caught, so say so rather than read out of bounds. */
        if (!in || in->ndim != v->ndim || memcmp(in->dims, v->dims, sizeof(int64_t) * (size_t)v->ndim)) {
            char want[256];
            hp_cli_dims_str(want, sizeof want, v->ndim, v->dims);
            fprintf(stderr, "histoplan model: the model input '%s' resolved to %s, which no --input gives\n",
                    v->name, want);
            goto done;
        }
        in_ptr[k] = in->f;
    }
    for (int k = 0; k < no; k++) {
        int64_t n = hp_value_numel(&inst->values[inst->outputs[k]]);
        outs[k] = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        if (!outs[k])
            goto oom;
    }
    if (hp_model_run_all(m, in_ptr, outs)) {
        fprintf(stderr, "histoplan model: %s\n", hp_model_error(m));
        goto done;
    }
    if ((rc = write_outputs(a, inst, outs)))
        goto done;
    const hp_card *card = hp_model_card(m);
    for (int k = 0; k < no; k++) {
        const hp_value *v = &inst->values[inst->outputs[k]];
        int64_t items, per;
        if (k > 0 || !is_class_output(v, card, &items, &per)) {
            print_summary(v, outs[k]);
            continue;
        }
        free(prob);
        prob = malloc(sizeof(float) * (size_t)per);
        if (!prob)
            goto oom;
        for (int64_t b = 0; b < items; b++) {
            if (items > 1)
                printf("item %lld:\n", (long long)b);
            print_top(outs[k] + b * per, per, card, a->top, prob);
        }
    }
    if (card && card->intended_use)
        printf("note: %s\n", card->intended_use);
    rc = HP_EXIT_OK;
    goto done;
oom:
    fprintf(stderr, "histoplan model: out of memory\n");
    rc = HP_EXIT_FAILED;
done:
    for (int k = 0; outs && k < no; k++)
        free(outs[k]);
    free(outs);
    free(in_ptr);
    free(prob);
    hp_cli_inputs_free(&ins);
    return rc;
}

/* An image: exactly the input size, or (with --mpp) resampled to the card's MPP and cut into
 * input-sized tiles, each reported on its own. Never squashed to the input size. */
static int run_image(const model_args *a, hp_model *m, const char *file)
{
    const hp_graph *g = hp_model_graph(m);
    const hp_value *v = &g->values[g->inputs[0]];
    char shape[256];
    hp_cli_dims_str(shape, sizeof shape, v->ndim, v->dims);
    if (g->n_inputs != 1 || v->ndim != 4 || v->dims[1] != 3 || v->dims[2] <= 0 || v->dims[3] <= 0) {
        fprintf(stderr,
                "histoplan model: %s is an image, but the model input '%s' %s is not an image input "
                "[N, 3, H, W]%s; give a .npy\n",
                file, v->name, shape, g->n_inputs != 1 ? " (and the model has several inputs)" : "");
        return HP_EXIT_FAILED;
    }
    int rc = hp_cli_apply_overrides(m, a, 1);
    if (rc)
        return rc;
    const hp_card *card = hp_model_card(m);
    int th = (int)v->dims[2], tw = (int)v->dims[3];
    uint8_t *img = NULL, *scaled = NULL, *tiles = NULL;
    float *out = NULL, *prob = NULL;
    hp_error err = {0};
    rc = HP_EXIT_FAILED;
    int iw, ih;
    if (hp_image_read_rgb8(file, &iw, &ih, &img, &err)) {
        fprintf(stderr, "histoplan model: %s\n", err.msg);
        goto done;
    }
    double scale = 1.0;
    int rw = iw, rh = ih;
    if (a->mpp > 0) {
        if (!(card && card->mpp > 0)) {
            fprintf(stderr,
                    "histoplan model: --mpp resamples the image to the model's resolution, but the model "
                    "card gives no MPP; crop the image to %dx%d instead\n", tw, th);
            rc = HP_EXIT_USAGE;
            goto done;
        }
        scale = a->mpp / card->mpp;
        double pixels = (double)iw * scale * (double)ih * scale;
        if (pixels > (double)HP_IMAGE_MAX_PIXELS) {
            fprintf(stderr,
                    "histoplan model: %s at %.4g um/px would be %.0f megapixels at the card's %.4g um/px "
                    "(at most %lld); check --mpp, or crop the image\n",
                    file, a->mpp, pixels / 1e6, card->mpp, HP_IMAGE_MAX_PIXELS / 1000000);
            goto done;
        }
        rw = (int)lround(iw * scale);
        rh = (int)lround(ih * scale);
        if (rw < tw || rh < th) {
            fprintf(stderr,
                    "histoplan model: %s: %dx%d pixels at %.4g um/px are %dx%d at the card's %.4g um/px, "
                    "smaller than one %dx%d input; pad or crop it to the input size\n",
                    file, iw, ih, a->mpp, rw, rh, card->mpp, tw, th);
            goto done;
        }
    } else if (iw != tw || ih != th) {
        char res[96] = "";
        if (card && card->mpp > 0)
            snprintf(res, sizeof res, " at %.4g um/px", card->mpp);
        fprintf(stderr,
                "histoplan model: %s is %dx%d pixels; the model takes %dx%d%s. It is neither squashed "
                "nor resampled without being asked: give --mpp M (the image's microns per pixel) to "
                "resample it to the card's resolution and cut it into %dx%d tiles, each reported, "
                "or crop it to %dx%d\n",
                file, iw, ih, tw, th, res, tw, th, tw, th);
        rc = HP_EXIT_USAGE;
        goto done;
    }
    if (rw != iw || rh != ih) {
        scaled = malloc((size_t)rw * (size_t)rh * 3);
        if (!scaled || hp_image_resize_rgb8(img, iw, ih, scaled, rw, rh)) {
            fprintf(stderr, "histoplan model: cannot resample %s to %dx%d\n", file, rw, rh);
            goto done;
        }
        free(img);
        img = scaled;
        scaled = NULL;
    }
    int nx = rw / tw, ny = rh / th, T = nx * ny;
    int fixed = v->dims[0] > 0 ? (int)v->dims[0] : 0;
    int chunk = fixed ? fixed : (T < IMAGE_CHUNK ? T : IMAGE_CHUNK);
    hp_status st = hp_model_instantiate(m, chunk);
    if (st) {
        fprintf(stderr, "histoplan model: %s\n", hp_model_error(m));
        rc = hp_cli_load_status(st);
        goto done;
    }
    /* The shape of the first output for `chunk` items, copied: a smaller last chunk
     * re-instantiates the model, which frees this instance. */
    const hp_graph *inst = hp_model_instance(m);
    const hp_value *ov = &inst->values[inst->outputs[0]];
    int out_ndim = ov->ndim;
    int64_t out_dims[HP_MAX_DIMS];
    memcpy(out_dims, ov->dims, sizeof out_dims);
    int64_t per = hp_model_output_size(m, 0);
    size_t tile_bytes = (size_t)tw * (size_t)th * 3;
    tiles = malloc(tile_bytes * (size_t)chunk);
    out = malloc(sizeof(float) * (size_t)per * (size_t)(T + chunk));
    prob = malloc(sizeof(float) * (size_t)(per > 0 ? per : 1));
    if (!tiles || !out || !prob) {
        fprintf(stderr, "histoplan model: out of memory\n");
        goto done;
    }
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        for (int j = 0; j < chunk; j++) {
            /* A model with a fixed batch gets its last batch filled up with the last tile. */
            int t = t0 + (j < n ? j : n - 1);
            int tx = t % nx, ty = t / nx;
            for (int y = 0; y < th; y++)
                memcpy(tiles + (size_t)j * tile_bytes + (size_t)y * (size_t)tw * 3,
                       img + (((size_t)ty * (size_t)th + (size_t)y) * (size_t)rw + (size_t)tx * (size_t)tw) * 3,
                       (size_t)tw * 3);
        }
        int run_n = fixed ? fixed : n;
        if (hp_model_run_rgb8(m, tiles, run_n, out + (size_t)t0 * (size_t)per)) {
            fprintf(stderr, "histoplan model: %s\n", hp_model_error(m));
            goto done;
        }
    }
    /* --output: the first output of every tile, stacked along the first dimension. */
    if (a->n_outputs) {
        const char *names[HP_CLI_MAX_IO], *files[HP_CLI_MAX_IO];
        int no = g->n_outputs < HP_CLI_MAX_IO ? g->n_outputs : HP_CLI_MAX_IO;
        for (int k = 0; k < no; k++)
            names[k] = g->values[g->outputs[k]].name;
        if (hp_cli_assign("output", a->outputs, a->n_outputs, names, no, files)) {
            rc = HP_EXIT_USAGE;
            goto done;
        }
        for (int k = 1; k < no; k++)
            if (files[k]) {
                fprintf(stderr, "histoplan model: an image run writes the first output ('%s') only\n",
                        names[0]);
                rc = HP_EXIT_USAGE;
                goto done;
            }
        int64_t dims[HP_MAX_DIMS];
        int nd = 2;
        dims[0] = T;
        dims[1] = per;
        if (out_ndim >= 1 && out_dims[0] == chunk) {
            nd = out_ndim;
            for (int d = 1; d < nd; d++)
                dims[d] = out_dims[d];
        }
        if (files[0] && hp_npy_write(files[0], out, nd, dims, &err)) {
            fprintf(stderr, "histoplan model: %s\n", err.msg);
            goto done;
        }
    }
    if (T > 1 || scale != 1.0)
        printf("%s: %dx%d pixels%s; %d tile%s of %dx%d (%d x %d)%s\n", file, iw, ih,
               scale != 1.0 ? " resampled to the card's MPP" : "", T, T == 1 ? "" : "s", tw, th, nx,
               ny, rw - nx * tw || rh - ny * th ? "; the right and bottom margins that do not fill a tile are not analysed" : "");
    for (int t = 0; t < T; t++) {
        if (T > 1)
            printf("tile %d at x=%ld y=%ld (image pixels, %ldx%ld):\n", t,
                   lround((t % nx) * tw / scale), lround((t / nx) * th / scale), lround(tw / scale),
                   lround(th / scale));
        if (per > 4096)
            printf("  output has %lld values per item (not a class vector)\n", (long long)per);
        else
            print_top(out + (size_t)t * (size_t)per, per, card, a->top, prob);
    }
    if (card && card->intended_use)
        printf("note: %s\n", card->intended_use);
    rc = HP_EXIT_OK;
done:
    free(img);
    free(scaled);
    free(tiles);
    free(out);
    free(prob);
    return rc;
}

int hp_cli_model_run(const model_args *a)
{
    /* The model first: a model that cannot be loaded is refused for that, whatever the inputs. */
    int rc;
    hp_model *m = hp_cli_open_model(a, &rc);
    if (!m)
        return rc;
    const hp_graph *g = hp_model_graph(m);
    if (a->n_inputs == 0 && g->n_inputs > 0) {
        char shape[256];
        const hp_value *v = &g->values[g->inputs[0]];
        hp_cli_dims_str(shape, sizeof shape, v->ndim, v->dims);
        fprintf(stderr, "histoplan model: model run needs --input (the model's first input is '%s' %s)\n",
                v->name, shape);
        hp_model_destroy(m);
        return HP_EXIT_USAGE;
    }
    if (g->n_inputs > HP_CLI_MAX_IO || g->n_outputs > HP_CLI_MAX_IO) {
        fprintf(stderr, "histoplan model: %s has %d inputs and %d outputs (the command line takes %d)\n",
                a->model, g->n_inputs, g->n_outputs, HP_CLI_MAX_IO);
        hp_model_destroy(m);
        return HP_EXIT_FAILED;
    }
    const char *image = NULL;
    if (a->n_inputs == 1 && g->n_inputs == 1) {
        const char *spec = a->inputs[0], *name = g->values[g->inputs[0]].name;
        size_t nl = strlen(name);
        const char *file = !strncmp(spec, name, nl) && spec[nl] == '=' ? spec + nl + 1 : spec;
        if (is_image_file(file))
            image = file;
    }
    if (a->mpp > 0 && !image) {
        fprintf(stderr, "histoplan model: --mpp applies to an image input only\n");
        rc = HP_EXIT_USAGE;
    } else if (image) {
        rc = run_image(a, m, image);
    } else if ((rc = hp_cli_apply_overrides(m, a, 0)) == HP_EXIT_OK) {
        rc = run_tensors(a, m);
    }
    hp_model_destroy(m);
    return rc;
}
