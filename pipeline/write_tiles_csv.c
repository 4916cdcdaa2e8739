/* tiles.csv (see the header for the columns). */
#include "pipeline/write_tiles_csv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/csv_write.h"

hp_status hp_write_tiles_csv(const char *path, const hp_heatmap_grid *g, const hp_tile_extras *x,
                             hp_error *err)
{
    if (!path || !g)
        return hp_error_set(err, HP_ERR_INVALID, "CSV writer: missing path or grid");
    hp_error e = {0};
    if (hp_heatmap_grid_check(g, &e))
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s", path, e.msg);
    size_t n = (size_t)g->gw * g->gh;
    int C = g->nclasses;
    float *ent = malloc(n * sizeof *ent);
    char(*names)[HP_HEATMAP_NAME_MAX] = malloc((size_t)C * sizeof *names);
    int32_t *region = malloc(n * sizeof *region);
    if (!ent || !names || !region) {
        free(ent);
        free(names);
        free(region);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    }
    hp_regions_tile_map(x ? x->regions : NULL, n, region);
    hp_heatmap_entropy(g, ent);
    hp_heatmap_safe_names(g, names);
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (!st) {
        FILE *f = af.f;
        fputs("tile_index,i,j,x,y,size,tissue_fraction", f);
        for (int k = 0; k < C; k++)
            fprintf(f, ",prob_%s", names[k]);
        fputs(",entropy,top_class,region_id,ood_score,super_resolved\n", f);
        for (size_t t = 0; t < n; t++) {
            if (!hp_heatmap_analysed(g, t))
                continue;
            int i = (int)(t % g->gw), j = (int)(t / g->gw);
            fprintf(f, "%zu,%d,%d,%.10g,%.10g,%.10g,", t, i, j, g->x0 + i * g->tile_size,
                    g->y0 + j * g->tile_size, g->tile_size);
            if (!isnan(g->tissue[t]))
                fprintf(f, "%.6g", (double)g->tissue[t]);
            for (int k = 0; k < C; k++)
                fprintf(f, ",%.6g", (double)g->prob[t * C + k]);
            fprintf(f, ",%.6g,", (double)ent[t]);
            hp_csv_field(f, g->names[hp_heatmap_argmax(g, g->prob, t)]);
            fputc(',', f);
            if (region[t] >= 0) {
                char id[HP_REGION_ID_MAX];
                hp_region_id(region[t], id);
                fputs(id, f);
            }
            fputc(',', f);
            if (x && x->ood_score && !isnan(x->ood_score[t]))
                fprintf(f, "%.6g", (double)x->ood_score[t]);
            fprintf(f, ",%d\n", x && x->super_resolved ? 1 : 0);
        }
        st = hp_atomic_finish(path, &af, !ferror(f), err);
    }
    free(ent);
    free(names);
    free(region);
    return st;
}
