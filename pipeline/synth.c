/* Writing a synthetic slide: renders level 0 one row of tiles at a time (tiles of a row in
 * parallel), hands each row to the streaming pyramid writer, and collects the ground truth from
 * the same class buffers the renderer fills, so the label mask and the pixels cannot disagree. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/tiff_pyramid_writer.h"
#include "pipeline/synth.h"

void hp_synth_write_options_init(hp_synth_write_options *o)
{
    memset(o, 0, sizeof *o);
    o->tile = 256;
    o->quality = 90;
    o->truth_scale = 64;
}

typedef struct {
    const hp_synth *s;
    int64_t y0, width;
    int rows, tile, nthreads, index;
    uint8_t *rgb, *cls; /* the band: width x rows */
    hp_status st;
} band_job;

static void *render_columns(void *arg)
{
    band_job *j = arg;
    int t = j->tile;
    uint8_t *rgb = malloc((size_t)t * j->rows * 3), *cls = malloc((size_t)t * j->rows);
    if (!rgb || !cls) {
        j->st = HP_ERR_NOMEM;
        goto done;
    }
    /* Columns are dealt round-robin so the threads finish together on uneven tissue. */
    for (int64_t x0 = (int64_t)j->index * t; x0 < j->width; x0 += (int64_t)j->nthreads * t) {
        int w = (int)(j->width - x0 < t ? j->width - x0 : t);
        hp_status st = hp_synth_render(j->s, x0, j->y0, w, j->rows, rgb, cls);
        if (st) {
            j->st = st;
            goto done;
        }
        for (int y = 0; y < j->rows; y++) {
            memcpy(j->rgb + ((size_t)y * j->width + x0) * 3, rgb + (size_t)y * w * 3, (size_t)w * 3);
            memcpy(j->cls + (size_t)y * j->width + x0, cls + (size_t)y * w, (size_t)w);
        }
    }
done:
    free(rgb);
    free(cls);
    return NULL;
}

static hp_status render_band(const hp_synth *s, int64_t y0, int rows, int tile, int nthreads,
                             uint8_t *rgb, uint8_t *cls)
{
    band_job jobs[64];
    pthread_t th[64];
    int started[64] = {0};
    int64_t width = hp_synth_get_params(s)->width;
    for (int i = 0; i < nthreads; i++) {
        jobs[i] = (band_job){s, y0, width, rows, tile, nthreads, i, rgb, cls, HP_OK};
        if (i > 0)
            started[i] = pthread_create(&th[i], NULL, render_columns, &jobs[i]) == 0;
    }
    render_columns(&jobs[0]);
    hp_status st = jobs[0].st;
    for (int i = 1; i < nthreads; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            render_columns(&jobs[i]); /* no thread: do its share here */
        if (!st)
            st = jobs[i].st;
    }
    return st;
}

hp_status hp_synth_write(const hp_synth *s, const char *path, const hp_synth_write_options *o,
                         hp_error *err)
{
    const hp_synth_params *p = hp_synth_get_params(s);
    hp_synth_write_options def;
    if (!o) {
        hp_synth_write_options_init(&def);
        o = &def;
    }
    if (o->truth_scale < 1 || o->truth_scale > 4096)
        return hp_error_set(err, HP_ERR_INVALID, "synth: truth scale %d is outside 1..4096",
                            o->truth_scale);
    int nthreads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > 64)
        nthreads = 64;

    char extra[128];
    snprintf(extra, sizeof extra, "|SyntheticSeed = %llu|Generator = histoplan synth %s",
             (unsigned long long)p->seed, HP_VERSION);
    hp_tiff_pyramid_options to = {
        .width = p->width, .height = p->height, .tile = o->tile, .quality = o->quality,
        .mpp = p->mpp, .downsample = 4, .min_side = 1024, .description_extra = extra};
    hp_tiff_pyramid *tw = NULL;
    uint8_t *rgb = NULL, *cls = NULL, *mask = NULL;
    int64_t counts[HP_SYNTH_NCLASSES] = {0};
    int ts = o->truth_scale;
    int mw = (int)((p->width + ts - 1) / ts), mh = (int)((p->height + ts - 1) / ts);
    hp_status st = hp_tiff_pyramid_create(path, &to, &tw, err);
    if (st)
        return st;
    rgb = malloc((size_t)p->width * o->tile * 3);
    cls = malloc((size_t)p->width * o->tile);
    mask = malloc((size_t)mw * mh);
    if (!rgb || !cls || !mask) {
        st = hp_error_set(err, HP_ERR_NOMEM, "synth: out of memory for a band of %lld x %d pixels",
                          (long long)p->width, o->tile);
        goto fail;
    }
    long nbands = (long)((p->height + o->tile - 1) / o->tile);
    for (long b = 0; b < nbands; b++) {
        int64_t y0 = (int64_t)b * o->tile;
        int rows = (int)(p->height - y0 < o->tile ? p->height - y0 : o->tile);
        if ((st = render_band(s, y0, rows, o->tile, nthreads, rgb, cls))) {
            st = hp_error_set(err, st, "synth: rendering rows %lld..%lld failed (%s)",
                              (long long)y0, (long long)(y0 + rows), hp_status_name(st));
            goto fail;
        }
        size_t n = (size_t)p->width * rows;
        for (size_t i = 0; i < n; i++)
            counts[cls[i]]++;
        /* Label mask pixels whose sampling point (the block's centre, clamped into the slide)
         * falls in this band. */
        for (int my = 0; my < mh; my++) {
            int64_t cy = (int64_t)my * ts + ts / 2;
            if (cy >= p->height)
                cy = p->height - 1;
            if (cy < y0 || cy >= y0 + rows)
                continue;
            for (int mx = 0; mx < mw; mx++) {
                int64_t cx = (int64_t)mx * ts + ts / 2;
                if (cx >= p->width)
                    cx = p->width - 1;
                mask[(size_t)my * mw + mx] = cls[(size_t)(cy - y0) * p->width + cx];
            }
        }
        if ((st = hp_tiff_pyramid_write_band(tw, rgb, rows, err)))
            goto fail;
        if (o->progress)
            o->progress(o->progress_user, b + 1, nbands);
    }
    if ((st = hp_tiff_pyramid_finish(tw, err)))
        goto fail;
    st = hp_synth_write_truth(s, path, mask, mw, mh, ts, counts, err);
fail:
    hp_tiff_pyramid_destroy(tw);
    free(rgb);
    free(cls);
    free(mask);
    return st;
}
