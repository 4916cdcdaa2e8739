/* Stain normalization inside the analyze run (pipeline/analyze_stain.h). */
#include "pipeline/analyze_stain.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/image.h"
#include "io/slide.h"

static int ends_with_json(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && !strcasecmp(path + n - 5, ".json");
}

hp_status hp_analyze_stain_target_load(hp_stain_method method, const char *path,
                                       hp_stain_params *out, hp_error *err)
{
    hp_error e = {0};
    hp_status st;
    const char *name = hp_stain_method_name(method);
    memset(out, 0, sizeof *out);
    if (ends_with_json(path)) {
        if ((st = hp_stain_params_read(path, out, &e)) != HP_OK)
            return hp_error_set(err, st, "stain target %s", e.msg);
        if (out->method != method)
            return hp_error_set(err, HP_ERR_INVALID,
                                "stain target %s: holds %s parameters, but --stain is %s", path,
                                hp_stain_method_name(out->method), name);
        if ((st = hp_stain_params_check(out, &e)) != HP_OK)
            return hp_error_set(err, st, "stain target %s: %s", path, e.msg);
        return HP_OK;
    }
    int w = 0, h = 0;
    uint8_t *rgb = NULL;
    if ((st = hp_image_read_rgb8(path, &w, &h, &rgb, &e)) != HP_OK)
        return hp_error_set(err, st, "stain target: %s", e.msg);
    size_t npix = (size_t)w * h;
    if (npix > HP_ANALYZE_STAIN_TARGET_MAX_PIXELS) {
        /* In place: pixel i*k moves to i, never ahead of where it is read. */
        size_t k = (npix + HP_ANALYZE_STAIN_TARGET_MAX_PIXELS - 1) / HP_ANALYZE_STAIN_TARGET_MAX_PIXELS;
        size_t m = npix / k;
        for (size_t i = 0; i < m; i++)
            memmove(rgb + 3 * i, rgb + 3 * i * k, 3);
        npix = m;
    }
    st = hp_stain_fit(method, rgb, npix, out, &e);
    free(rgb);
    if (st != HP_OK)
        return hp_error_set(err, st, "stain target %s: cannot fit %s parameters to it: %s", path,
                            name, e.msg);
    return HP_OK;
}

hp_status hp_analyze_stain_prepare(hp_slide *s, const hp_tile_grid *grid,
                                   const hp_stain_params *target, hp_stain_normalizer *nz,
                                   hp_error *err)
{
    const char *name = hp_stain_method_name(target->method);
    int64_t n = grid->n_tiles;
    if (n < 1)
        return hp_error_set(err, HP_ERR_INVALID,
                            "stain normalization (%s): no tissue tile to fit the slide's stain",
                            name);
    int K = n < HP_ANALYZE_STAIN_FIT_TILES ? (int)n : HP_ANALYZE_STAIN_FIT_TILES;
    size_t tpx = (size_t)grid->tile_size * grid->tile_size;
    uint8_t *px = malloc(tpx * 3 * (size_t)K);
    uint8_t *scratch = malloc((size_t)grid->read_w * grid->read_h * 3);
    hp_status st = HP_OK;
    hp_error e = {0};
    if (!px || !scratch) {
        st = hp_error_set(err, HP_ERR_NOMEM, "stain normalization (%s): out of memory", name);
        goto done;
    }
    for (int k = 0; k < K; k++) {
        const hp_tile *t = &grid->tiles[(int64_t)k * n / K];
        if ((st = hp_tile_read(s, grid, t, scratch, px + tpx * 3 * k)) != HP_OK) {
            hp_error_set(err, st, "stain normalization (%s): reading tile (%d, %d): %s", name,
                         t->i, t->j, hp_slide_error(s));
            goto done;
        }
    }
    hp_stain_params src;
    if ((st = hp_stain_fit(target->method, px, tpx * K, &src, &e)) != HP_OK) {
        hp_error_set(err, st,
                     "stain normalization (%s): cannot fit the slide's stain from %d tissue "
                     "tiles: %s", name, K, e.msg);
        goto done;
    }
    if ((st = hp_stain_normalizer_init(nz, target, &src, &e)) != HP_OK)
        hp_error_set(err, st, "stain normalization (%s): %s", name, e.msg);
done:
    free(px);
    free(scratch);
    return st;
}

hp_status hp_analyze_stain_apply(const hp_stain_normalizer *nz, hp_tile_batch *b, int tile,
                                 hp_error *err)
{
    /* The CPU transform on every backend for now: on CUDA the batch buffer is host memory here
     * anyway, and the transform costs a few percent of a batch's inference. Moving it onto the
     * GPU (kernels/cuda/stain_normalize.h, after the upload) is the next step there. */
    return hp_stain_normalize_cpu(nz, b->rgb, b->rgb, (size_t)b->count * tile * tile, err);
}
