/* Probability grids: entropy, smoothing, colormap, names (see the header). */
#include "pipeline/heatmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distinct, colour-blind-tolerant defaults (Okabe-Ito) for classes the caller does not colour. */
static const uint8_t default_rgb[8][3] = {{0, 158, 115},  {86, 180, 233}, {230, 159, 0},
                                          {213, 94, 0},   {0, 114, 178},  {204, 121, 167},
                                          {240, 228, 66}, {0, 0, 0}};

void hp_heatmap_grid_destroy(hp_heatmap_grid *g)
{
    if (!g)
        return;
    for (int k = 0; g->names && k < g->nclasses; k++)
        free(g->names[k]);
    free(g->names);
    free(g->rgb);
    free(g->prob);
    free(g->tissue);
    free(g);
}

hp_status hp_heatmap_grid_create(int gw, int gh, int nclasses, hp_heatmap_grid **out)
{
    *out = NULL;
    if (gw < 1 || gh < 1 || nclasses < 1 || nclasses > 255 || (int64_t)gw * gh > INT32_MAX)
        return HP_ERR_INVALID;
    hp_heatmap_grid *g = calloc(1, sizeof *g);
    if (!g)
        return HP_ERR_NOMEM;
    size_t n = (size_t)gw * gh;
    g->gw = gw;
    g->gh = gh;
    g->nclasses = nclasses;
    g->prob = malloc(n * nclasses * sizeof *g->prob);
    g->tissue = malloc(n * sizeof *g->tissue);
    g->names = calloc((size_t)nclasses, sizeof *g->names);
    g->rgb = malloc((size_t)nclasses * sizeof *g->rgb);
    if (!g->prob || !g->tissue || !g->names || !g->rgb)
        goto nomem;
    for (size_t i = 0; i < n * nclasses; i++)
        g->prob[i] = NAN;
    for (size_t i = 0; i < n; i++)
        g->tissue[i] = NAN;
    for (int k = 0; k < nclasses; k++) {
        char name[32];
        snprintf(name, sizeof name, "class%d", k);
        if (!(g->names[k] = strdup(name)))
            goto nomem;
        memcpy(g->rgb[k], default_rgb[k % 8], 3);
    }
    *out = g;
    return HP_OK;
nomem:
    hp_heatmap_grid_destroy(g);
    return HP_ERR_NOMEM;
}

hp_status hp_heatmap_grid_set_class(hp_heatmap_grid *g, int k, const char *name, uint8_t r,
                                    uint8_t gr, uint8_t b)
{
    if (k < 0 || k >= g->nclasses || !name)
        return HP_ERR_INVALID;
    char *s = strdup(name);
    if (!s)
        return HP_ERR_NOMEM;
    free(g->names[k]);
    g->names[k] = s;
    g->rgb[k][0] = r;
    g->rgb[k][1] = gr;
    g->rgb[k][2] = b;
    return HP_OK;
}

int hp_heatmap_analysed(const hp_heatmap_grid *g, size_t t)
{
    return !isnan(g->prob[t * g->nclasses]);
}

hp_status hp_heatmap_grid_check(const hp_heatmap_grid *g, hp_error *err)
{
    if (!(g->tile_size > 0) || !isfinite(g->tile_size) || !(g->mpp > 0) || !isfinite(g->mpp) ||
        !isfinite(g->x0) || !isfinite(g->y0))
        return hp_error_set(err, HP_ERR_INVALID, "heatmap grid: bad geometry (tile size %g, MPP %g)",
                            g->tile_size, g->mpp);
    if (g->slide_w < 1 || g->slide_h < 1)
        return hp_error_set(err, HP_ERR_INVALID, "heatmap grid: slide size %lldx%lld",
                            (long long)g->slide_w, (long long)g->slide_h);
    size_t n = (size_t)g->gw * g->gh;
    for (size_t t = 0; t < n; t++) {
        if (!hp_heatmap_analysed(g, t))
            continue;
        for (int k = 0; k < g->nclasses; k++) {
            float p = g->prob[t * g->nclasses + k];
            if (!(p >= 0.0f && p <= 1.0f))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "heatmap grid: tile (%d, %d) class %d probability %g is not in [0, 1]",
                                    (int)(t % g->gw), (int)(t / g->gw), k, (double)p);
        }
    }
    return HP_OK;
}

int hp_heatmap_argmax(const hp_heatmap_grid *g, const float *map, size_t t)
{
    const float *p = map + t * g->nclasses;
    if (isnan(p[0]))
        return -1;
    int best = 0;
    for (int k = 1; k < g->nclasses; k++)
        if (p[k] > p[best])
            best = k;
    return best;
}

void hp_heatmap_entropy(const hp_heatmap_grid *g, float *out)
{
    size_t n = (size_t)g->gw * g->gh;
    int C = g->nclasses;
    double norm = C > 1 ? log((double)C) : 1.0;
    for (size_t t = 0; t < n; t++) {
        if (!hp_heatmap_analysed(g, t)) {
            out[t] = NAN;
            continue;
        }
        double h = 0;
        for (int k = 0; k < C; k++) {
            double p = g->prob[t * C + k];
            if (p > 0)
                h -= p * log(p);
        }
        h = C > 1 ? h / norm : 0.0;
        out[t] = (float)(h < 0 ? 0 : h > 1 ? 1 : h);
    }
}

/* One separable pass along x (dir 0) or y (dir 1): numerator per class and weight. */
static void pass(const hp_heatmap_grid *g, const float *num_in, const float *den_in, float *num_out,
                 float *den_out, const double *kern, int r, int dir)
{
    int gw = g->gw, gh = g->gh, C = g->nclasses;
    for (int j = 0; j < gh; j++)
        for (int i = 0; i < gw; i++) {
            size_t t = (size_t)j * gw + i;
            double den = 0, num[256];
            for (int k = 0; k < C; k++)
                num[k] = 0;
            for (int d = -r; d <= r; d++) {
                int ii = dir ? i : i + d, jj = dir ? j + d : j;
                if (ii < 0 || jj < 0 || ii >= gw || jj >= gh)
                    continue;
                size_t s = (size_t)jj * gw + ii;
                double w = kern[d + r];
                den += w * den_in[s];
                for (int k = 0; k < C; k++)
                    num[k] += w * num_in[s * C + k];
            }
            den_out[t] = (float)den;
            for (int k = 0; k < C; k++)
                num_out[t * C + k] = (float)num[k];
        }
}

hp_status hp_heatmap_smooth(const hp_heatmap_grid *g, double sigma, float *out)
{
    size_t n = (size_t)g->gw * g->gh, C = (size_t)g->nclasses;
    if (!(sigma > 0)) {
        memcpy(out, g->prob, n * C * sizeof *out);
        return HP_OK;
    }
    int r = (int)ceil(3 * sigma);
    double *kern = malloc((size_t)(2 * r + 1) * sizeof *kern);
    /* calloc: GCC cannot see that the loop below fills them. */
    float *num = malloc(n * C * sizeof *num), *den = calloc(n, sizeof *den);
    float *den2 = calloc(n, sizeof *den2);
    if (!kern || !num || !den || !den2) {
        free(kern);
        free(num);
        free(den);
        free(den2);
        return HP_ERR_NOMEM;
    }
    for (int d = -r; d <= r; d++)
        kern[d + r] = exp(-0.5 * d * d / (sigma * sigma));
    /* Background enters as weight 0 and probability 0. */
    for (size_t t = 0; t < n; t++) {
        int a = hp_heatmap_analysed(g, t);
        den[t] = a ? 1.0f : 0.0f;
        for (size_t k = 0; k < C; k++)
            out[t * C + k] = a ? g->prob[t * C + k] : 0.0f;
    }
    pass(g, out, den, num, den2, kern, r, 0);
    pass(g, num, den2, out, den, kern, r, 1);
    for (size_t t = 0; t < n; t++)
        for (size_t k = 0; k < C; k++)
            out[t * C + k] = hp_heatmap_analysed(g, t) && den[t] > 0 ? out[t * C + k] / den[t] : NAN;
    free(kern);
    free(num);
    free(den);
    free(den2);
    return HP_OK;
}

void hp_heatmap_viridis(float v, uint8_t rgb[3])
{
    /* matplotlib's viridis sampled at 10 evenly spaced points. */
    static const uint8_t a[10][3] = {{68, 1, 84},    {72, 40, 120},  {62, 74, 137},
                                     {49, 104, 142}, {38, 130, 142}, {31, 158, 137},
                                     {53, 183, 121}, {109, 205, 89}, {180, 222, 44},
                                     {253, 231, 37}};
    if (isnan(v)) {
        rgb[0] = rgb[1] = rgb[2] = 255;
        return;
    }
    float x = (v < 0 ? 0 : v > 1 ? 1 : v) * 9.0f;
    int i = (int)x;
    if (i > 8)
        i = 8;
    float f = x - (float)i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lrintf((float)a[i][c] + f * ((float)a[i + 1][c] - (float)a[i][c]));
}

void hp_heatmap_safe_names(const hp_heatmap_grid *g, char (*out)[HP_HEATMAP_NAME_MAX])
{
    for (int k = 0; k < g->nclasses; k++) {
        const char *s = g->names[k] ? g->names[k] : "";
        size_t n = 0;
        int gap = 0;
        for (; *s && n < HP_HEATMAP_NAME_MAX - 12; s++) {
            char c = *s;
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
                if (gap && n)
                    out[k][n++] = '_';
                out[k][n++] = c;
                gap = 0;
            } else {
                gap = 1;
            }
        }
        out[k][n] = 0;
        if (!n)
            snprintf(out[k], HP_HEATMAP_NAME_MAX, "class%d", k);
        for (int j = 0; j < k; j++)
            if (!strcmp(out[j], out[k])) {
                size_t m = strlen(out[k]);
                snprintf(out[k] + m, HP_HEATMAP_NAME_MAX - m, "_%d", k);
                break;
            }
    }
}
