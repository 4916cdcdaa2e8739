/* regions.xml for ASAP (see the header for the layout and how holes are written). */
#include "pipeline/write_asap_xml.h"

#include <stdio.h>
#include <stdlib.h>

#include "io/atomic_file.h"

/* Writes s with XML's five special characters escaped (attribute values use double quotes). */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            /* Control characters are not allowed in XML 1.0 at all: drop them. */
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

/* Annotations are named by the region's id (R5, and R5 hole 1 for its holes): the name the
 * report and the other outputs give it. */
static void put_ring(FILE *f, const hp_region_ring *r, const char *id, int hole, const char *group,
                     const uint8_t rgb[3])
{
    fputs("\t\t<Annotation Name=\"", f);
    put_escaped(f, id);
    if (hole)
        fprintf(f, " hole %d", hole);
    fputs("\" Type=\"Polygon\" PartOfGroup=\"", f);
    put_escaped(f, group);
    fprintf(f, "\" Color=\"#%02x%02x%02x\">\n\t\t\t<Coordinates>\n", rgb[0], rgb[1], rgb[2]);
    for (size_t i = 0; i + 1 < r->n; i++)
        fprintf(f, "\t\t\t\t<Coordinate Order=\"%zu\" X=\"%.17g\" Y=\"%.17g\" />\n", i,
                r->xy[2 * i], r->xy[2 * i + 1]);
    fputs("\t\t\t</Coordinates>\n\t\t</Annotation>\n", f);
}

hp_status hp_write_regions_asap_xml(const char *path, const hp_heatmap_grid *g,
                                    const hp_regions *rs, hp_error *err)
{
    if (!path || !g || !rs)
        return hp_error_set(err, HP_ERR_INVALID, "ASAP writer: missing path, grid or regions");
    static const uint8_t black[3] = {0, 0, 0};
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st)
        return st;
    FILE *f = af.f;
    fputs("<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n\t<Annotations>\n", f);
    int holes = 0;
    for (int i = 0; i < rs->n; i++) {
        const hp_region *r = &rs->r[i];
        char id[HP_REGION_ID_MAX];
        hp_region_id(i, id);
        const char *name = g->names[r->cls];
        put_ring(f, &r->rings[0], id, 0, name, g->rgb[r->cls]);
        for (int k = 1; k < r->nrings; k++, holes++)
            put_ring(f, &r->rings[k], id, k, "Exclusion", black);
    }
    fputs("\t</Annotations>\n\t<AnnotationGroups>\n", f);
    for (int k = 0; k < g->nclasses; k++) {
        int used = 0;
        for (int i = 0; i < rs->n && !used; i++)
            used = rs->r[i].cls == k;
        if (!used)
            continue;
        fputs("\t\t<Group Name=\"", f);
        put_escaped(f, g->names[k]);
        fprintf(f, "\" PartOfGroup=\"None\" Color=\"#%02x%02x%02x\">\n\t\t\t<Attributes />\n\t\t</Group>\n",
                g->rgb[k][0], g->rgb[k][1], g->rgb[k][2]);
    }
    if (holes)
        fputs("\t\t<Group Name=\"Exclusion\" PartOfGroup=\"None\" Color=\"#000000\">\n"
              "\t\t\t<Attributes />\n\t\t</Group>\n", f);
    fputs("\t</AnnotationGroups>\n</ASAP_Annotations>\n", f);
    /* Write errors stick to the stream; hp_atomic_finish flushes and checks them too. */
    return hp_atomic_finish(path, &af, !ferror(f), err);
}
