/* server/deepzoom.h: openslide/deepzoom.py's arithmetic (DeepZoomGenerator.__init__ and
 * _get_tile_info), restated in C with the same roundings. */
#include "server/deepzoom.h"

#include <math.h>
#include <string.h>

/* openslide_get_best_level_for_downsample: the last level whose downsample is not above d. */
static int best_level(const hp_dz_layout *L, double d)
{
    if (d < L->ldown[0])
        return 0;
    for (int i = 1; i < L->n_slide_levels; i++)
        if (d < L->ldown[i])
            return i - 1;
    return L->n_slide_levels - 1;
}

int hp_dz_layout_init(hp_dz_layout *L, int n_slide_levels, const int64_t *lw, const int64_t *lh,
                      const double *ldown, int tile, int overlap)
{
    memset(L, 0, sizeof *L);
    if (n_slide_levels < 1 || n_slide_levels > HP_DZ_MAX_SLIDE_LEVELS || lw[0] < 1 || lh[0] < 1 ||
        tile < 1 || overlap < 0)
        return -1;
    L->tile = tile, L->overlap = overlap, L->n_slide_levels = n_slide_levels;
    for (int i = 0; i < n_slide_levels; i++)
        L->lw[i] = lw[i], L->lh[i] = lh[i], L->ldown[i] = ldown[i];
    /* Sizes from level 0 halving down to 1 x 1, then reversed (level 0 is 1 x 1). */
    int64_t zw[HP_DZ_MAX_LEVELS], zh[HP_DZ_MAX_LEVELS];
    int n = 0;
    zw[n] = lw[0], zh[n] = lh[0], n++;
    while (zw[n - 1] > 1 || zh[n - 1] > 1) {
        if (n >= HP_DZ_MAX_LEVELS)
            return -1;
        int64_t a = (zw[n - 1] + 1) / 2, b = (zh[n - 1] + 1) / 2;
        zw[n] = a < 1 ? 1 : a, zh[n] = b < 1 ? 1 : b, n++;
    }
    L->n_levels = n;
    for (int z = 0; z < n; z++) {
        L->w[z] = zw[n - 1 - z], L->h[z] = zh[n - 1 - z];
        L->cols[z] = (L->w[z] + tile - 1) / tile;
        L->rows[z] = (L->h[z] + tile - 1) / tile;
        double d = ldexp(1.0, n - z - 1);
        L->slide_level[z] = best_level(L, d);
        L->l_z_downsample[z] = d / L->ldown[L->slide_level[z]];
    }
    return 0;
}

int hp_dz_tile_info(const hp_dz_layout *L, int level, int64_t col, int64_t row, hp_dz_tile *t)
{
    if (level < 0 || level >= L->n_levels || col < 0 || row < 0 || col >= L->cols[level] ||
        row >= L->rows[level])
        return -1;
    int sl = L->slide_level[level];
    double lz = L->l_z_downsample[level], l0 = L->ldown[sl];
    int64_t loc[2] = {col, row}, lim[2] = {L->cols[level], L->rows[level]};
    int64_t zlim[2] = {L->w[level], L->h[level]}, llim[2] = {L->lw[sl], L->lh[sl]};
    int64_t x0y0[2];
    int lsz[2], zsz[2];
    for (int k = 0; k < 2; k++) {
        int tl = L->overlap * (loc[k] != 0), br = L->overlap * (loc[k] != lim[k] - 1);
        int64_t rest = zlim[k] - (int64_t)L->tile * loc[k];
        zsz[k] = (int)((rest < L->tile ? rest : L->tile) + tl + br);
        double l = lz * (double)(L->tile * loc[k] - tl);
        x0y0[k] = (int64_t)(l0 * l);
        double a = ceil(lz * zsz[k]), b = (double)llim[k] - ceil(l);
        lsz[k] = (int)(a < b ? a : b);
    }
    if (lsz[0] < 1 || lsz[1] < 1)
        return -1;
    t->slide_level = sl;
    t->x0 = x0y0[0], t->y0 = x0y0[1];
    t->lw = lsz[0], t->lh = lsz[1];
    t->zw = zsz[0], t->zh = zsz[1];
    return 0;
}
