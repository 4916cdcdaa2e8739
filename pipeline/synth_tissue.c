/* The procedural H&E model: what the tissue of each class looks like, pixel by pixel.
 *
 * A region is rendered in three passes, each a function of level-0 coordinates only (so tiles
 * rendered apart agree at their borders):
 * 1. Compartments. Glands and ducts sit on a jittered grid (one per cell, present with a class's
 *    probability); a pixel takes the nearest one among the 3x3 cells around it: lumen, epithelium,
 *    or the outer (myoepithelial) layer; elsewhere stroma, whose eosin follows wavy fibres. Invasive
 *    tissue has no glands: nests and cords are the upper part of an anisotropic noise field.
 * 2. Nuclei are splatted from a jittered grid of candidates; a candidate's compartment decides
 *    whether it exists and its size, shape and darkness. Overlaps combine with max(), which does
 *    not depend on drawing order, so nothing depends on which tile draws a nucleus.
 * 3. Stain densities become RGB through Beer-Lambert with Ruifrok's H&E vectors.
 *
 * Gland parameters are tabulated once per call for the cells the region touches, so the per-pixel
 * search costs nine table look-ups instead of dozens of hashes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/synth.h"
#include "pipeline/synth_noise.h"

enum { C_STROMA, C_LUMEN, C_EPI, C_MYO, C_NEST, C_NECRO };

typedef struct {
    double gland_um;             /* gland grid spacing; 0: no glands (invasive) */
    double gland_prob;           /* share of grid cells holding a gland */
    double r_min, r_max;         /* gland radius, as a fraction of the spacing */
    double aspect_max;           /* largest elongation of a gland */
    double lumen;                /* lumen radius as a fraction of the gland's; 0: solid */
    double stroma_e, stroma_gap; /* stroma eosin OD; share of loose, nearly empty stroma */
    double fibre_um;             /* fibre width scale */
    double nuc_um;               /* nuclear candidate spacing */
    double stroma_nuc;           /* probability of a stromal nucleus per candidate */
    double nr_min, nr_max;       /* epithelial nuclear radius, um */
    double nh_min, nh_max;       /* epithelial nuclear hematoxylin OD */
    double n_aspect;             /* largest epithelial nuclear elongation */
    double cyto_h, cyto_e;       /* epithelial cytoplasm */
} style;

/* Indexed by class; the directions (nuclear size and darkness rising from normal to in situ and
 * invasive, stroma densest in invasive) are what a classifier and the tests pick up. */
static const style styles[HP_SYNTH_NCLASSES] = {
    {0},
    /* normal: scattered small ducts/acini, two layers, open lumens, loose stroma */
    {100, 0.70, 0.22, 0.32, 1.3, 0.50, 0.30, 0.35, 6, 7.5, 0.06, 2.5, 3.1, 0.95, 1.20, 1.4,
     0.10, 0.22},
    /* benign: crowded, enlarged, elongated glands with slit lumens, pale cellular stroma */
    {85, 0.93, 0.34, 0.44, 2.6, 0.30, 0.22, 0.10, 4, 7.0, 0.22, 2.7, 3.4, 1.00, 1.30, 1.4,
     0.13, 0.22},
    /* in situ: large round ducts filled with big dark atypical nuclei */
    {200, 0.92, 0.36, 0.46, 1.25, 0.0, 0.42, 0.12, 6, 10.5, 0.06, 4.2, 6.0, 1.45, 1.90, 1.5,
     0.18, 0.24},
    /* invasive: nests and cords of atypical cells in dense desmoplastic stroma */
    {0, 0, 0, 0, 1, 0, 0.62, 0.03, 7, 9.5, 0.10, 3.8, 5.4, 1.40, 1.85, 1.7, 0.18, 0.26},
};

/* Ruifrok & Johnston (2001) optical density vectors, normalized. */
static const float stain_h[3] = {0.650f, 0.704f, 0.286f};
static const float stain_e[3] = {0.072f, 0.990f, 0.105f};

typedef struct {
    double cx, cy;     /* centre, px */
    double ca, sa;     /* orientation */
    double ia2, ib2;   /* 1 / semi-axis^2 */
    double r;          /* mean radius, px */
    int present, necrotic;
} gland;

typedef struct {
    gland *g;
    int64_t i0, j0;
    int ni, nj;
    double spacing; /* px */
} gland_table;

typedef struct {
    const hp_synth *s;
    uint32_t seed;
    double mpp;
    gland_table gt[HP_SYNTH_NCLASSES];
    double fib_c[HP_SYNTH_NCLASSES], fib_s[HP_SYNTH_NCLASSES]; /* fibre direction per class */
} ctx;

static hp_status table_build(ctx *c, int cls, double xa, double ya, double xb, double yb)
{
    const style *st = &styles[cls];
    gland_table *t = &c->gt[cls];
    t->spacing = st->gland_um / c->mpp;
    t->i0 = (int64_t)floor(xa / t->spacing) - 1;
    t->j0 = (int64_t)floor(ya / t->spacing) - 1;
    t->ni = (int)((int64_t)floor(xb / t->spacing) + 2 - t->i0);
    t->nj = (int)((int64_t)floor(yb / t->spacing) + 2 - t->j0);
    t->g = calloc((size_t)t->ni * (size_t)t->nj, sizeof *t->g);
    if (!t->g)
        return HP_ERR_NOMEM;
    for (int j = 0; j < t->nj; j++)
        for (int i = 0; i < t->ni; i++) {
            int64_t gi = t->i0 + i, gj = t->j0 + j;
            uint32_t salt = 100u * (uint32_t)cls;
            gland *g = &t->g[(size_t)j * t->ni + i];
            g->present = hp_synth_u01(hp_synth_hash(c->seed, gi, gj, salt + 1)) < st->gland_prob;
            double rf = st->r_min + (st->r_max - st->r_min) * hp_synth_u01(hp_synth_hash(c->seed, gi, gj, salt + 2));
            double jit = fmax(0.0, 0.5 - st->r_max) * 1.6;
            g->cx = (gi + 0.5 + jit * (hp_synth_u01(hp_synth_hash(c->seed, gi, gj, salt + 3)) - 0.5)) * t->spacing;
            g->cy = (gj + 0.5 + jit * (hp_synth_u01(hp_synth_hash(c->seed, gi, gj, salt + 4)) - 0.5)) * t->spacing;
            double asp = 1 + (st->aspect_max - 1) * hp_synth_u01(hp_synth_hash(c->seed, gi, gj, salt + 5));
            double ang = 3.14159265358979 * hp_synth_u01(hp_synth_hash(c->seed, gi, gj, salt + 6));
            g->r = rf * t->spacing;
            double a = g->r * sqrt(asp), b = g->r / sqrt(asp);
            g->ca = cos(ang);
            g->sa = sin(ang);
            g->ia2 = 1 / (a * a);
            g->ib2 = 1 / (b * b);
            g->necrotic = cls == HP_SYNTH_IN_SITU && hp_synth_u01(hp_synth_hash(c->seed, gi, gj, salt + 7)) < 0.35;
        }
    return HP_OK;
}

/* The compartment at (x, y) in tissue of class cls; *dir receives the angle across which an
 * outer-layer nucleus lies flat (tangent to its gland). */
static int compartment(const ctx *c, int cls, double x, double y, double *dir)
{
    const style *st = &styles[cls];
    if (cls == HP_SYNTH_INVASIVE) {
        /* Anisotropic field: nests elongate into cords along one direction per slide. */
        double L = 30.0 / c->mpp;
        double u = (x * c->fib_c[cls] + y * c->fib_s[cls]) / (1.8 * L);
        double v = (-x * c->fib_s[cls] + y * c->fib_c[cls]) / L;
        double n = 0.65 * hp_synth_vnoise(c->seed, 500, u, v) + 0.35 * hp_synth_vnoise(c->seed, 501, 2.1 * u, 2.1 * v);
        return n > 0.60 ? C_NEST : C_STROMA;
    }
    const gland_table *t = &c->gt[cls];
    int64_t ci = (int64_t)floor(x / t->spacing) - t->i0;
    int64_t cj = (int64_t)floor(y / t->spacing) - t->j0;
    double best = 1e300;
    const gland *bg = NULL;
    for (int64_t j = cj - 1; j <= cj + 1; j++) {
        if (j < 0 || j >= t->nj)
            continue;
        for (int64_t i = ci - 1; i <= ci + 1; i++) {
            if (i < 0 || i >= t->ni)
                continue;
            const gland *g = &t->g[j * t->ni + i];
            if (!g->present)
                continue;
            double dx = x - g->cx, dy = y - g->cy;
            double u = dx * g->ca + dy * g->sa, v = -dx * g->sa + dy * g->ca;
            double q = u * u * g->ia2 + v * v * g->ib2;
            if (q < best) {
                best = q;
                bg = g;
            }
        }
    }
    if (!bg || best >= 1.0)
        return C_STROMA;
    double rho = sqrt(best);
    double myo = 3.5 / c->mpp / bg->r; /* outer layer thickness, fraction of the radius */
    if (rho > 1 - myo) {
        if (dir)
            *dir = atan2(y - bg->cy, x - bg->cx) + 1.5707963;
        return C_MYO;
    }
    if (rho < st->lumen)
        return C_LUMEN;
    if (cls == HP_SYNTH_IN_SITU) {
        if (bg->necrotic && rho < 0.3)
            return C_NECRO;
        /* Cribriform spaces punched through the solid cell mass. */
        double L = 14.0 / c->mpp;
        if (rho < 0.8 && hp_synth_vnoise(c->seed, 510, x / L, y / L) > 0.80)
            return C_LUMEN;
    }
    return C_EPI;
}

static void stroma_stain(const ctx *c, int cls, double x, double y, float *h, float *e)
{
    const style *st = &styles[cls];
    double L = st->fibre_um / c->mpp;
    double u = x * c->fib_c[cls] + y * c->fib_s[cls], v = -x * c->fib_s[cls] + y * c->fib_c[cls];
    v += 1.5 * L * hp_synth_vnoise(c->seed, 600 + (uint32_t)cls, u / (8 * L), 0.5);
    double f = hp_synth_vnoise(c->seed, 610 + (uint32_t)cls, u / (5 * L), v / (0.6 * L));
    double ev = st->stroma_e * (0.5 + f);
    if (f < st->stroma_gap)
        ev *= 0.2;
    *e = (float)ev;
    *h = 0.04f;
}

static void paint_nucleus(float *nuc, int64_t x0, int64_t y0, int w, int h, uint32_t seed,
                          double cx, double cy, double a, double b, double ang, double dark)
{
    double ca = cos(ang), sa = sin(ang);
    int64_t xa = (int64_t)floor(cx - a - 1), xb = (int64_t)ceil(cx + a + 1);
    int64_t ya = (int64_t)floor(cy - a - 1), yb = (int64_t)ceil(cy + a + 1);
    if (xa < x0)
        xa = x0;
    if (ya < y0)
        ya = y0;
    if (xb > x0 + w)
        xb = x0 + w;
    if (yb > y0 + h)
        yb = y0 + h;
    double ia2 = 1 / (a * a), ib2 = 1 / (b * b);
    for (int64_t y = ya; y < yb; y++)
        for (int64_t x = xa; x < xb; x++) {
            double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
            double u = dx * ca + dy * sa, v = -dx * sa + dy * ca;
            double q = u * u * ia2 + v * v * ib2;
            if (q >= 1)
                continue;
            double edge = (1 - sqrt(q)) * b * 1.5;
            if (edge > 1)
                edge = 1;
            double speck = hp_synth_u01(hp_synth_hash(seed, x, y, 900));
            float val = (float)(dark * (0.80 + 0.25 * q) * (0.85 + 0.3 * speck) * edge);
            float *p = &nuc[(y - y0) * w + (x - x0)];
            if (val > *p)
                *p = val;
        }
}

/* Candidates of one class's nuclear grid that could touch the region. */
static void splat_nuclei(const ctx *c, int cls, int64_t x0, int64_t y0, int w, int h,
                         const uint8_t *cbuf, float *nuc)
{
    const style *st = &styles[cls];
    double d = st->nuc_um / c->mpp;
    double margin = (st->nr_max * sqrt(4.0) + 2) / c->mpp + 2;
    int64_t i0 = (int64_t)floor((x0 - margin) / d), i1 = (int64_t)floor((x0 + w + margin) / d);
    int64_t j0 = (int64_t)floor((y0 - margin) / d), j1 = (int64_t)floor((y0 + h + margin) / d);
    uint32_t salt = 1000u + 50u * (uint32_t)cls;
    for (int64_t j = j0; j <= j1; j++)
        for (int64_t i = i0; i <= i1; i++) {
            double cx = (i + 0.5 + 0.7 * (hp_synth_u01(hp_synth_hash(c->seed, i, j, salt)) - 0.5)) * d;
            double cy = (j + 0.5 + 0.7 * (hp_synth_u01(hp_synth_hash(c->seed, i, j, salt + 1)) - 0.5)) * d;
            int64_t px = (int64_t)floor(cx), py = (int64_t)floor(cy);
            int pc = (px >= x0 && px < x0 + w && py >= y0 && py < y0 + h)
                         ? cbuf[(py - y0) * w + (px - x0)]
                         : hp_synth_class_at(c->s, px, py);
            if (pc != cls)
                continue;
            double dir = 0;
            int comp = compartment(c, cls, cx, cy, &dir);
            double r1 = hp_synth_u01(hp_synth_hash(c->seed, i, j, salt + 2)), r2 = hp_synth_u01(hp_synth_hash(c->seed, i, j, salt + 3));
            double r3 = hp_synth_u01(hp_synth_hash(c->seed, i, j, salt + 4)), r4 = hp_synth_u01(hp_synth_hash(c->seed, i, j, salt + 5));
            double r_um, asp, dark, ang = 6.2831853 * r4, prob;
            switch (comp) {
            case C_EPI:
            case C_NEST:
                prob = 0.92;
                r_um = st->nr_min + (st->nr_max - st->nr_min) * r1;
                asp = 1 + (st->n_aspect - 1) * r2;
                dark = st->nh_min + (st->nh_max - st->nh_min) * r3;
                break;
            case C_MYO:
                prob = 0.7;
                r_um = 2.0;
                asp = 2.6;
                dark = 1.0;
                ang = dir;
                break;
            case C_NECRO:
                prob = 0.35;
                r_um = 1.2;
                asp = 1.2;
                dark = 1.3;
                break;
            case C_STROMA:
                prob = st->stroma_nuc;
                r_um = 1.6;
                asp = 3.5;
                dark = 0.95;
                ang = atan2(c->fib_s[cls], c->fib_c[cls]);
                break;
            default:
                continue;
            }
            if (hp_synth_u01(hp_synth_hash(c->seed, i, j, salt + 6)) >= prob)
                continue;
            double r = r_um / c->mpp;
            paint_nucleus(nuc, x0, y0, w, h, c->seed, cx, cy, r * sqrt(asp), r / sqrt(asp), ang,
                          dark);
        }
}

hp_status hp_synth_render(const hp_synth *s, int64_t x0, int64_t y0, int w, int h, uint8_t *rgb,
                          uint8_t *cls)
{
    if (!s || !rgb || w <= 0 || h <= 0 || (int64_t)w * h > (1 << 26))
        return HP_ERR_INVALID;
    const hp_synth_params *p = hp_synth_get_params(s);
    hp_status st = HP_OK;
    size_t n = (size_t)w * (size_t)h;
    ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.seed = (uint32_t)(p->seed * 0x2545F4914F6CDD1Dull >> 32) ^ (uint32_t)p->seed;
    c.mpp = p->mpp;
    for (int k = 1; k < HP_SYNTH_NCLASSES; k++) {
        double ang = 3.14159265 * hp_synth_u01(hp_synth_hash(c.seed, k, 0, 700));
        c.fib_c[k] = cos(ang);
        c.fib_s[k] = sin(ang);
    }
    uint8_t *cb = cls ? cls : malloc(n);
    float *hb = malloc(n * sizeof *hb), *eb = malloc(n * sizeof *eb), *nb = calloc(n, sizeof *nb);
    if (!cb || !hb || !eb || !nb) {
        st = HP_ERR_NOMEM;
        goto fail;
    }
    /* Margin for gland tables: the widest nucleus reaching in from outside the region. */
    double mg = 30.0 / p->mpp;
    for (int k = HP_SYNTH_NORMAL; k <= HP_SYNTH_IN_SITU; k++)
        if ((st = table_build(&c, k, x0 - mg, y0 - mg, x0 + w + mg, y0 + h + mg)) != HP_OK)
            goto fail;

    /* The layout is constant on aligned 8x8 blocks; evaluate it once per block. */
    for (int yy = 0; yy < h; yy++) {
        int64_t y = y0 + yy;
        for (int xx = 0; xx < w;) {
            int64_t x = x0 + xx;
            int run = (int)(8 - ((x % 8) + 8) % 8);
            if (run > w - xx)
                run = w - xx;
            int k = (yy > 0 && ((y % 8) + 8) % 8 != 0) ? cb[(size_t)(yy - 1) * w + xx]
                                                       : hp_synth_class_at(s, x, y);
            memset(cb + (size_t)yy * w + xx, k, (size_t)run);
            xx += run;
        }
    }
    for (int yy = 0; yy < h; yy++)
        for (int xx = 0; xx < w; xx++) {
            size_t i = (size_t)yy * w + xx;
            int k = cb[i];
            double x = x0 + xx + 0.5, y = y0 + yy + 0.5;
            float hv = 0, ev = 0;
            if (k != HP_SYNTH_BACKGROUND) {
                const style *sy = &styles[k];
                switch (compartment(&c, k, x, y, NULL)) {
                case C_STROMA:
                    stroma_stain(&c, k, x, y, &hv, &ev);
                    break;
                case C_LUMEN:
                    hv = 0.01f;
                    ev = 0.03f;
                    break;
                case C_NECRO:
                    hv = 0.15f;
                    ev = 0.45f;
                    break;
                case C_MYO:
                    hv = (float)sy->cyto_h + 0.04f;
                    ev = (float)sy->cyto_e + 0.06f;
                    break;
                default: /* epithelium, nests */
                    hv = (float)sy->cyto_h;
                    ev = (float)sy->cyto_e;
                    break;
                }
            }
            hb[i] = hv;
            eb[i] = ev;
        }
    for (int k = HP_SYNTH_NORMAL; k < HP_SYNTH_NCLASSES; k++)
        splat_nuclei(&c, k, x0, y0, w, h, cb, nb);

    for (int yy = 0; yy < h; yy++)
        for (int xx = 0; xx < w; xx++) {
            size_t i = (size_t)yy * w + xx;
            int64_t x = x0 + xx, y = y0 + yy;
            float noise = (float)(hp_synth_u01(hp_synth_hash(c.seed, x, y, 950)) - 0.5) * 0.03f;
            float od[3];
            if (cb[i] == HP_SYNTH_BACKGROUND || x >= p->width || y >= p->height || x < 0 || y < 0) {
                od[0] = 0.045f + noise * 0.5f;
                od[1] = 0.045f + noise * 0.5f;
                od[2] = 0.055f + noise * 0.5f;
            } else {
                float hv = hb[i] > nb[i] ? hb[i] : nb[i];
                float nf = nb[i] > 1 ? 1 : nb[i];
                float ev = eb[i] * (1 - 0.6f * nf);
                for (int ch = 0; ch < 3; ch++)
                    od[ch] = 0.03f + hv * stain_h[ch] + ev * stain_e[ch] + noise;
            }
            for (int ch = 0; ch < 3; ch++) {
                float v = 255.0f * expf(-od[ch]);
                rgb[i * 3 + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
            }
        }

fail:
    for (int k = 0; k < HP_SYNTH_NCLASSES; k++)
        free(c.gt[k].g);
    if (cb != cls)
        free(cb);
    free(hb);
    free(eb);
    free(nb);
    return st;
}
