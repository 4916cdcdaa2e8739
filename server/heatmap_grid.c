/* server/heatmap_grid.h. tiles.csv lists analysed tiles only, each with its grid position and
 * level-0 corner, so the grid's origin is x - i * size of any row. */
#include "server/heatmap_grid.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits a CSV line in place on commas. tiles.csv quotes no numeric field; only top_class (a
 * class name) may be quoted, and it and the columns after it (region_id, ood_score,
 * super_resolved) come after every column read here from the start, so a comma inside it cannot
 * shift them; super_resolved, the last, is read from the end. Returns the field count. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    char *nl = strpbrk(f[n - 1], "\r\n");
    if (nl)
        *nl = 0;
    return n;
}

static int num(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && *end == 0 && errno == 0 ? 0 : -1;
}

void hp_heatmap_layers_free(hp_heatmap_layers *h)
{
    if (h)
        free(h->v), h->v = NULL;
}

#define MAX_FIELDS 64

hp_status hp_heatmap_layers_parse(const char *csv_path, hp_heatmap_layers *out, hp_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(csv_path, "r");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "tiles.csv: %s", strerror(errno));
    hp_status st = HP_ERR_INVALID;
    char *line = NULL;
    size_t cap = 0;
    int *ij = NULL;
    double *vals = NULL;
    size_t nrows = 0, rcap = 0;
    char *fld[MAX_FIELDS];
    int prob0 = -1, nclass = 0, ent = -1;
    if (getline(&line, &cap, f) < 0) {
        hp_error_set(err, HP_ERR_INVALID, "tiles.csv is empty");
        goto fail;
    }
    int nf = split(line, fld, MAX_FIELDS);
    for (int k = 0; k < nf; k++) {
        if (!strncmp(fld[k], "prob_", 5)) {
            if (prob0 < 0)
                prob0 = k;
            if (nclass < HP_HG_MAX_LAYERS - 3)
                snprintf(out->names[nclass], HP_HG_NAME_MAX, "%s", fld[k] + 5);
            nclass++;
        } else if (!strcmp(fld[k], "entropy")) {
            ent = k;
        }
    }
    int has_sr = nf > 0 && !strcmp(fld[nf - 1], "super_resolved"), any_sr = 0;
    if (nf < 7 || strcmp(fld[1], "i") || strcmp(fld[2], "j") || strcmp(fld[3], "x") ||
        strcmp(fld[5], "size") || prob0 < 0 || nclass < 1 || nclass > HP_HG_MAX_LAYERS - 3 ||
        ent != prob0 + nclass) {
        hp_error_set(err, HP_ERR_INVALID, "tiles.csv: the header is not tiles.csv's");
        goto fail;
    }
    /* The classes, uncertainty, and the tissue analysed (1 on every tile of tiles.csv: the tile
     * mask analyze's mask.png draws); then, when the analysis super-resolved tiles, those tiles
     * (kept only when some tile was). */
    int L = nclass + 2 + has_sr;
    snprintf(out->names[nclass], HP_HG_NAME_MAX, "uncertainty");
    snprintf(out->names[nclass + 1], HP_HG_NAME_MAX, "tissue");
    if (has_sr)
        snprintf(out->names[nclass + 2], HP_HG_NAME_MAX, "super-resolved");
    out->n_layers = L;
    int gw = 0, gh = 0;
    double x0 = 0, y0 = 0, size = 0;
    while (getline(&line, &cap, f) >= 0) {
        if (line[0] == '\n' || !line[0])
            continue;
        int n = split(line, fld, MAX_FIELDS);
        double d[6];
        if (n <= ent || num(fld[1], &d[0]) || num(fld[2], &d[1]) || num(fld[3], &d[2]) ||
            num(fld[4], &d[3]) || num(fld[5], &d[4]) || d[0] < 0 || d[1] < 0 || d[0] > 1e6 ||
            d[1] > 1e6 || !(d[4] > 0)) {
            hp_error_set(err, HP_ERR_INVALID, "tiles.csv: row %zu is malformed", nrows + 1);
            goto fail;
        }
        if (nrows == rcap) {
            rcap = rcap ? rcap * 2 : 1024;
            int *a = realloc(ij, rcap * 2 * sizeof *a);
            double *b = a ? realloc(vals, rcap * L * sizeof *b) : NULL;
            if (a)
                ij = a;
            if (!a || !b) {
                hp_error_set(err, HP_ERR_NOMEM, "tiles.csv: out of memory");
                st = HP_ERR_NOMEM;
                goto fail;
            }
            vals = b;
        }
        int i = (int)d[0], j = (int)d[1];
        ij[nrows * 2] = i, ij[nrows * 2 + 1] = j;
        if (nrows == 0)
            x0 = d[2] - i * d[4], y0 = d[3] - j * d[4], size = d[4];
        vals[nrows * L + nclass + 1] = 1;
        if (has_sr) {
            vals[nrows * L + nclass + 2] = !strcmp(fld[n - 1], "1");
            any_sr |= !strcmp(fld[n - 1], "1");
        }
        for (int k = 0; k < nclass + 1; k++) {
            double v;
            if (num(fld[prob0 + k], &v)) {
                hp_error_set(err, HP_ERR_INVALID, "tiles.csv: row %zu has no number in column %d",
                             nrows + 1, prob0 + k + 1);
                goto fail;
            }
            if (k == nclass) /* entropy, normalized by its largest value */
                v = nclass > 1 ? v / log((double)nclass) : 0;
            vals[nrows * L + k] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
        if (i + 1 > gw)
            gw = i + 1;
        if (j + 1 > gh)
            gh = j + 1;
        nrows++;
    }
    if (nrows == 0) {
        hp_error_set(err, HP_ERR_INVALID, "tiles.csv has no analysed tile");
        goto fail;
    }
    out->gw = gw, out->gh = gh, out->x0 = x0, out->y0 = y0, out->size = size;
    if (has_sr && !any_sr)
        out->n_layers = L - 1; /* no tile super-resolved: no layer for it (its plane goes unused) */
    size_t plane = (size_t)gw * gh;
    if (!(out->v = malloc(plane * L * sizeof *out->v))) {
        st = hp_error_set(err, HP_ERR_NOMEM, "tiles.csv: out of memory");
        goto fail;
    }
    for (size_t t = 0; t < plane * L; t++)
        out->v[t] = NAN;
    for (size_t r = 0; r < nrows; r++)
        for (int k = 0; k < L; k++)
            out->v[k * plane + (size_t)ij[r * 2 + 1] * gw + ij[r * 2]] = (float)vals[r * L + k];
    st = HP_OK;
fail:
    if (st != HP_OK)
        hp_heatmap_layers_free(out);
    free(line);
    free(ij);
    free(vals);
    fclose(f);
    return st;
}

int hp_heatmap_layer(const hp_heatmap_layers *h, const char *name)
{
    for (int k = 0; k < h->n_layers; k++)
        if (!strcmp(h->names[k], name))
            return k;
    return -1;
}

float hp_heatmap_at(const hp_heatmap_layers *h, int layer, double x, double y)
{
    double fi = floor((x - h->x0) / h->size), fj = floor((y - h->y0) / h->size);
    if (fi < 0 || fj < 0 || fi >= h->gw || fj >= h->gh)
        return NAN;
    return h->v[(size_t)layer * h->gw * h->gh + (size_t)fj * h->gw + (size_t)fi];
}

/* ---- the cache ------------------------------------------------------------------------------ */

typedef struct {
    hp_heatmap_layers h;
    char key[64];
    int refs, used_tick, live;
} slot;

struct hp_heatmap_cache {
    pthread_mutex_t mu;
    slot *s;
    int n, tick;
};

hp_heatmap_cache *hp_heatmap_cache_create(int max_grids)
{
    hp_heatmap_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = max_grids < 1 ? 1 : max_grids;
    if (!(c->s = calloc((size_t)c->n, sizeof *c->s))) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void hp_heatmap_cache_destroy(hp_heatmap_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        hp_heatmap_layers_free(&c->s[i].h);
    pthread_mutex_destroy(&c->mu);
    free(c->s);
    free(c);
}

const hp_heatmap_layers *hp_heatmap_cache_acquire(hp_heatmap_cache *c, const char *key,
                                                  const char *csv_path, hp_error *err)
{
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++)
        if (c->s[i].live && !strcmp(c->s[i].key, key)) {
            c->s[i].refs++;
            c->s[i].used_tick = ++c->tick;
            pthread_mutex_unlock(&c->mu);
            return &c->s[i].h;
        }
    pthread_mutex_unlock(&c->mu);
    hp_heatmap_layers h;
    if (hp_heatmap_layers_parse(csv_path, &h, err) != HP_OK)
        return NULL;
    pthread_mutex_lock(&c->mu);
    int at = -1;
    for (int i = 0; i < c->n; i++) {
        if (c->s[i].live && !strcmp(c->s[i].key, key)) { /* parsed meanwhile by another request */
            c->s[i].refs++;
            pthread_mutex_unlock(&c->mu);
            hp_heatmap_layers_free(&h);
            return &c->s[i].h;
        }
        if (c->s[i].refs == 0 && (at < 0 || !c->s[i].live ||
                                  (c->s[at].live && c->s[i].used_tick < c->s[at].used_tick)))
            at = i;
    }
    if (at < 0) {
        pthread_mutex_unlock(&c->mu);
        hp_heatmap_layers_free(&h);
        hp_error_set(err, HP_ERR_IO, "every heatmap slot is in use; retry");
        return NULL;
    }
    hp_heatmap_layers_free(&c->s[at].h);
    c->s[at].h = h;
    snprintf(c->s[at].key, sizeof c->s[at].key, "%s", key);
    c->s[at].live = 1;
    c->s[at].refs = 1;
    c->s[at].used_tick = ++c->tick;
    pthread_mutex_unlock(&c->mu);
    return &c->s[at].h;
}

void hp_heatmap_cache_release(hp_heatmap_cache *c, const hp_heatmap_layers *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++)
        if (&c->s[i].h == h)
            c->s[i].refs--;
    pthread_mutex_unlock(&c->mu);
}
