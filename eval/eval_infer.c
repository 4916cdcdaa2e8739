/* Whole-image classification with reader threads ahead of the model (eval/eval_infer.h). */
#include "eval/eval_infer.h"

#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "io/slide.h"

const char *hp_eval_tta_name(hp_eval_tta t)
{
    return t == HP_EVAL_TTA_FLIPS ? "flips" : t == HP_EVAL_TTA_DIHEDRAL ? "dihedral" : "none";
}

int hp_eval_tta_parse(const char *s, hp_eval_tta *t)
{
    if (!strcmp(s, "none"))
        *t = HP_EVAL_TTA_NONE;
    else if (!strcmp(s, "flips"))
        *t = HP_EVAL_TTA_FLIPS;
    else if (!strcmp(s, "dihedral"))
        *t = HP_EVAL_TTA_DIHEDRAL;
    else
        return -1;
    return 0;
}

int hp_eval_tta_views(hp_eval_tta t)
{
    return t == HP_EVAL_TTA_FLIPS ? 4 : t == HP_EVAL_TTA_DIHEDRAL ? 8 : 1;
}

void hp_eval_infer_options_init(hp_eval_infer_options *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 32;
}

/* View v of a T x T tile: bit 0 mirrors left-right, bit 1 top-bottom, bit 2 transposes (with
 * the mirrors this gives the dihedral group: views 0..3 are the flips, 4..7 the transposes). */
static void tile_view(const uint8_t *src, uint8_t *dst, int T, int v)
{
    for (int y = 0; y < T; y++)
        for (int x = 0; x < T; x++) {
            int sx = x, sy = y;
            if (v & 4) {
                sx = y;
                sy = x;
            }
            if (v & 1)
                sx = T - 1 - sx;
            if (v & 2)
                sy = T - 1 - sy;
            memcpy(dst + ((size_t)y * T + x) * 3, src + ((size_t)sy * T + sx) * 3, 3);
        }
}

typedef enum { SLOT_EMPTY = 0, SLOT_BUSY, SLOT_READY } slot_state;

typedef struct {
    slot_state state;
    int image;           /* position q */
    uint8_t *tiles;      /* views x tiles x T x T x 3 */
    int n_tiles;         /* tiles x views */
    hp_eval_image_info info;
    hp_status st;
    char msg[HP_ERROR_MSG_MAX];
} slot;

typedef struct {
    const hp_eval_item *items;
    const int *which;
    int n;
    const hp_eval_infer_options *o;
    double target_mpp;
    int T, views;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int next, consumed, abort;
    int q;               /* slots */
    slot *slots;
} shared;

static void __attribute__((format(printf, 2, 3))) say(slot *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
}

/* Reads, resamples, normalizes and tiles one image into s. */
static hp_status prepare_image(shared *sh, const hp_eval_item *it, slot *s)
{
    hp_error err = {0};
    hp_slide *sl = NULL;
    uint8_t *rgb = NULL, *res = NULL, *tile = NULL, *sub = NULL;
    hp_status st = HP_OK;
    hp_slide_options so = {.mpp = sh->o->mpp_override};
    sl = hp_slide_open(it->path, &so, &err);
    if (!sl) {
        st = err.code ? err.code : HP_ERR_IO;
        say(s, "%s: %s", it->name, err.msg);
        goto done;
    }
    int64_t w, h;
    if ((st = hp_slide_level_dimensions(sl, 0, &w, &h)) != HP_OK) {
        say(s, "%s: %s", it->name, hp_slide_error(sl));
        goto done;
    }
    if (w * h > HP_EVAL_IMAGE_MAX_PIXELS) {
        st = HP_ERR_UNSUPPORTED;
        say(s, "%s: %lld x %lld pixels; eval takes images up to %lld megapixels (microscopy "
                 "images and patches; analyze reads whole slides)",
                 it->name, (long long)w, (long long)h, HP_EVAL_IMAGE_MAX_PIXELS / 1000000);
        goto done;
    }
    double mx = 0, my = 0;
    hp_mpp_source src = HP_MPP_NONE;
    if (sh->o->mpp_override > 0) {
        mx = my = sh->o->mpp_override;
        s->info.mpp_source = "override";
    } else if (hp_slide_mpp(sl, &mx, &my, &src) == HP_OK && src != HP_MPP_OBJECTIVE) {
        s->info.mpp_source = hp_mpp_source_name(src);
    } else if (sh->o->default_mpp > 0) {
        mx = my = sh->o->default_mpp;
        s->info.mpp_source = "dataset";
    } else {
        st = HP_ERR_INVALID;
        say(s, "%s: no microns per pixel (no resolution in its metadata); give --mpp", it->name);
        goto done;
    }
    s->info.width = (int)w;
    s->info.height = (int)h;
    s->info.mpp = mx;
    rgb = malloc((size_t)w * h * 3);
    if (!rgb) {
        st = HP_ERR_NOMEM;
        say(s, "%s: out of memory", it->name);
        goto done;
    }
    if ((st = hp_slide_read_region(sl, 0, 0, 0, (int)w, (int)h, rgb)) != HP_OK) {
        say(s, "%s: %s", it->name, hp_slide_error(sl));
        goto done;
    }
    int rw = (int)lround(w * mx / sh->target_mpp), rh = (int)lround(h * my / sh->target_mpp);
    rw = rw < 1 ? 1 : rw;
    rh = rh < 1 ? 1 : rh;
    if ((int64_t)rw * rh > 4 * HP_EVAL_IMAGE_MAX_PIXELS) {
        st = HP_ERR_UNSUPPORTED;
        say(s, "%s: at %.3g um/px it would be %d x %d pixels at the model's %.3g um/px; check "
                 "its MPP",
                 it->name, mx, rw, rh, sh->target_mpp);
        goto done;
    }
    res = malloc((size_t)rw * rh * 3);
    if (!res || hp_image_resize_rgb8(rgb, (int)w, (int)h, res, rw, rh) != HP_OK) {
        st = HP_ERR_NOMEM;
        say(s, "%s: out of memory", it->name);
        goto done;
    }
    free(rgb);
    rgb = NULL;
    if (sh->o->stain_target) {
        hp_stain_params sp;
        hp_stain_normalizer nz;
        hp_error se = {0};
        /* The fit's scratch grows with the pixels (about 12 bytes each for Macenko): a large
         * image is fitted on an even subsample of at most HP_EVAL_STAIN_FIT_PIXELS. */
        size_t npix = (size_t)rw * rh, step = (npix + HP_EVAL_STAIN_FIT_PIXELS - 1) / HP_EVAL_STAIN_FIT_PIXELS;
        const uint8_t *fit = res;
        if (step > 1) {
            if (!(sub = malloc(3 * (npix / step + 1)))) {
                st = HP_ERR_NOMEM;
                say(s, "%s: out of memory", it->name);
                goto done;
            }
            size_t m = 0;
            for (size_t i = 0; i < npix; i += step, m++)
                memcpy(sub + 3 * m, res + 3 * i, 3);
            fit = sub;
            npix = m;
        }
        if ((st = hp_stain_fit(sh->o->stain_target->method, fit, npix, &sp, &se)) != HP_OK ||
            (st = hp_stain_normalizer_init(&nz, sh->o->stain_target, &sp, &se)) != HP_OK ||
            (st = hp_stain_normalize_cpu(&nz, res, res, (size_t)rw * rh, &se)) != HP_OK) {
            say(s, "%s: stain normalization (%s): %s", it->name,
                     hp_stain_method_name(sh->o->stain_target->method), se.msg);
            goto done;
        }
    }
    int T = sh->T;
    int nx = rw / T > 0 ? rw / T : 1, ny = rh / T > 0 ? rh / T : 1;
    int ox = (rw - nx * T) / 2, oy = (rh - ny * T) / 2;
    if (rw < T)
        ox = -((T - rw + 1) / 2);
    if (rh < T)
        oy = -((T - rh + 1) / 2);
    size_t tb = (size_t)T * T * 3;
    s->info.tiles = nx * ny;
    s->n_tiles = nx * ny * sh->views;
    s->tiles = malloc(tb * (size_t)s->n_tiles);
    tile = malloc(tb);
    if (!s->tiles || !tile) {
        st = HP_ERR_NOMEM;
        say(s, "%s: out of memory", it->name);
        goto done;
    }
    int out = 0;
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++) {
            for (int y = 0; y < T; y++) {
                int sy = oy + j * T + y;
                for (int x = 0; x < T; x++) {
                    int sx = ox + i * T + x;
                    uint8_t *d = tile + ((size_t)y * T + x) * 3;
                    if (sx < 0 || sy < 0 || sx >= rw || sy >= rh)
                        d[0] = d[1] = d[2] = 255;
                    else
                        memcpy(d, res + ((size_t)sy * rw + sx) * 3, 3);
                }
            }
            for (int v = 0; v < sh->views; v++)
                tile_view(tile, s->tiles + tb * (size_t)out++, T, v);
        }
done:
    free(sub);
    free(tile);
    free(rgb);
    free(res);
    hp_slide_close(sl);
    return st;
}

static void *reader(void *arg)
{
    shared *sh = arg;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        while (!sh->abort && sh->next < sh->n && sh->next >= sh->consumed + sh->q)
            pthread_cond_wait(&sh->cv, &sh->mu);
        if (sh->abort || sh->next >= sh->n) {
            pthread_mutex_unlock(&sh->mu);
            return NULL;
        }
        int q = sh->next++;
        slot *s = &sh->slots[q % sh->q];
        s->state = SLOT_BUSY;
        s->image = q;
        pthread_mutex_unlock(&sh->mu);

        const hp_eval_item *it = &sh->items[sh->which ? sh->which[q] : q];
        hp_status st = prepare_image(sh, it, s);

        pthread_mutex_lock(&sh->mu);
        s->st = st;
        s->state = SLOT_READY;
        pthread_cond_broadcast(&sh->cv);
        pthread_mutex_unlock(&sh->mu);
    }
}

static int cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

hp_status hp_eval_infer(hp_model *model, const hp_eval_item *items, const int *which, int n,
                        const hp_eval_infer_options *o, float *prob, hp_eval_image_info *info,
                        hp_error *err)
{
    const hp_card *card = hp_model_card(model);
    int c, th, tw;
    hp_model_input_shape(model, &c, &th, &tw);
    if (!card || card->n_classes < 2 || !(card->mpp > 0))
        return hp_error_set(err, HP_ERR_INVALID,
                            "the model needs a card giving its classes and its microns per pixel");
    if (c != 3 || th != tw || th <= 0)
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "the model's input is %d x %d x %d; eval needs square RGB tiles", c, th,
                            tw);
    int C = card->n_classes;
    int B = o->batch > 0 ? o->batch : 32;
    /* The output size is known once the graph is instantiated for a batch size. */
    hp_status ist = hp_model_instantiate(model, B);
    if (ist != HP_OK)
        return hp_error_set(err, ist, "%s", hp_model_error(model));
    if (hp_model_output_size(model, 0) != C)
        return hp_error_set(err, HP_ERR_INVALID,
                            "the model has %lld outputs per tile but its card lists %d classes",
                            (long long)hp_model_output_size(model, 0), C);
    if (n <= 0)
        return hp_error_set(err, HP_ERR_INVALID, "no images to classify");
    int threads = o->threads > 0 ? o->threads : cpu_count();
    shared sh = {.items = items, .which = which, .n = n, .o = o, .target_mpp = card->mpp, .T = th,
                 .views = hp_eval_tta_views(o->tta), .q = threads + 2};
    size_t tb = (size_t)th * th * 3;
    uint8_t *batch = malloc(tb * (size_t)B);
    int *owner = malloc(sizeof *owner * (size_t)B);
    float *out = malloc(sizeof *out * (size_t)B * C);
    double *sum = calloc((size_t)n * C, sizeof *sum);
    int *count = calloc((size_t)n, sizeof *count);
    sh.slots = calloc((size_t)sh.q, sizeof *sh.slots);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    int started = 0;
    hp_status st = HP_OK;
    if (!batch || !owner || !out || !sum || !count || !sh.slots || !tid) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cv, NULL);
    for (; started < threads && started < n; started++)
        if (pthread_create(&tid[started], NULL, reader, &sh)) {
            if (started == 0) {
                st = hp_error_set(err, HP_ERR_NOMEM, "cannot start a reader thread");
                goto stop;
            }
            break;
        }
    int fill = 0;
    for (int q = 0; q < n && st == HP_OK; q++) {
        slot *s = &sh.slots[q % sh.q];
        pthread_mutex_lock(&sh.mu);
        while (!(s->state == SLOT_READY && s->image == q))
            pthread_cond_wait(&sh.cv, &sh.mu);
        pthread_mutex_unlock(&sh.mu);
        if (s->st != HP_OK) {
            st = hp_error_set(err, s->st, "%s", s->msg);
            break;
        }
        if (info)
            info[q] = s->info;
        for (int t = 0; t < s->n_tiles && st == HP_OK; t++) {
            memcpy(batch + tb * (size_t)fill, s->tiles + tb * (size_t)t, tb);
            owner[fill++] = q;
            if (fill == B || (q == n - 1 && t == s->n_tiles - 1)) {
                memset(batch + tb * (size_t)fill, 0, tb * (size_t)(B - fill));
                if ((st = hp_model_run_rgb8(model, batch, B, out)) != HP_OK) {
                    hp_error_set(err, st, "%s", hp_model_error(model));
                    break;
                }
                for (int b = 0; b < fill; b++) {
                    const float *lg = out + (size_t)b * C;
                    float mx = lg[0];
                    for (int k = 1; k < C; k++)
                        mx = lg[k] > mx ? lg[k] : mx;
                    double z = 0;
                    for (int k = 0; k < C; k++)
                        z += exp((double)lg[k] - mx);
                    for (int k = 0; k < C; k++)
                        sum[(size_t)owner[b] * C + k] += exp((double)lg[k] - mx) / z;
                    count[owner[b]]++;
                }
                fill = 0;
            }
        }
        pthread_mutex_lock(&sh.mu);
        free(s->tiles);
        s->tiles = NULL;
        s->state = SLOT_EMPTY;
        sh.consumed = q + 1;
        pthread_cond_broadcast(&sh.cv);
        pthread_mutex_unlock(&sh.mu);
        if (st == HP_OK && o->progress)
            o->progress(o->progress_user, q + 1, n);
    }
    for (int q = 0; q < n && st == HP_OK; q++) {
        if (count[q] == 0) {
            st = hp_error_set(err, HP_ERR_INVALID, "image %d produced no tiles", q);
            break;
        }
        for (int k = 0; k < C; k++)
            prob[(size_t)q * C + k] = (float)(sum[(size_t)q * C + k] / count[q]);
    }
stop:
    pthread_mutex_lock(&sh.mu);
    sh.abort = 1;
    pthread_cond_broadcast(&sh.cv);
    pthread_mutex_unlock(&sh.mu);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < sh.q; i++)
        free(sh.slots[i].tiles);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.cv);
done:
    free(batch);
    free(owner);
    free(out);
    free(sum);
    free(count);
    free(sh.slots);
    free(tid);
    return st;
}
