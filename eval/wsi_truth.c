/* Reading and rasterizing BACH Part B annotation XML (eval/wsi_truth.h). */
#include "eval/wsi_truth.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_csv.h"
#include "eval/eval_labels.h"

void hp_wsi_truth_free(hp_wsi_truth *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n; i++)
        free(t->regions[i].xy);
    free(t->regions);
    t->regions = NULL;
    t->n = 0;
}

static int is_el(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, (const xmlChar *)name);
}

/* An attribute's value copied into buf ("" when absent). Returns 1 when present. */
static int attr(const xmlNode *n, const char *name, char *buf, size_t cap)
{
    xmlChar *v = xmlGetProp((xmlNode *)n, (const xmlChar *)name);
    if (!v) {
        buf[0] = 0;
        return 0;
    }
    snprintf(buf, cap, "%s", (const char *)v);
    xmlFree(v);
    return 1;
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

static hp_status read_region(const char *path, const xmlNode *region, const char *annotation_name,
                             int position, hp_wsi_region *r, hp_error *err)
{
    char text[256];
    if (!attr(region, "Id", r->id, sizeof r->id) || blank(r->id))
        snprintf(r->id, sizeof r->id, "%d", position);
    attr(region, "Text", text, sizeof text);
    if (blank(text))
        snprintf(text, sizeof text, "%s", annotation_name);
    if (blank(text))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: region %s has no label (neither its Text nor its annotation's "
                            "Name)",
                            path, r->id);
    /* The label as shown in messages: at most what r->label holds (the class is parsed from the
     * whole text). */
    size_t n = strnlen(text, sizeof r->label - 1);
    memcpy(r->label, text, n);
    r->label[n] = '\0';
    hp_eval_class c = hp_eval_class_parse(text);
    if (c == HP_EVAL_CLASS_NONE)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: region %s: label '%s' is no BACH class (normal, benign, in situ, "
                            "invasive, in any of their usual spellings)",
                            path, r->id, r->label);
    r->cls = (int)c;
    const xmlNode *verts = NULL;
    for (const xmlNode *ch = region->children; ch; ch = ch->next)
        if (is_el(ch, "Vertices"))
            verts = ch;
    int cap = 0;
    for (const xmlNode *v = verts ? verts->children : NULL; v; v = v->next) {
        if (!is_el(v, "Vertex"))
            continue;
        char xs[64], ys[64];
        int hx = attr(v, "X", xs, sizeof xs), hy = attr(v, "Y", ys, sizeof ys);
        char *ex, *ey;
        double x = hx ? strtod(xs, &ex) : NAN, y = hy ? strtod(ys, &ey) : NAN;
        if (!hx || !hy || ex == xs || *ex || ey == ys || *ey || !isfinite(x) || !isfinite(y))
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: region %s (%s), vertex %d (line %ld): X and Y must be "
                                "numbers (X=\"%s\" Y=\"%s\")",
                                path, r->id, r->label, r->n + 1, (long)xmlGetLineNo(v), xs, ys);
        if (r->n == cap) {
            cap = cap ? cap * 2 : 64;
            double *nxy = realloc(r->xy, sizeof *nxy * 2 * (size_t)cap);
            if (!nxy)
                return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            r->xy = nxy;
        }
        r->xy[2 * r->n] = x;
        r->xy[2 * r->n + 1] = y;
        r->n++;
    }
    if (r->n < 3)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: region %s (%s) has %d vertices; a region is a polygon of at least "
                            "3 (rulers, arrows and ellipses are not read)",
                            path, r->id, r->label, r->n);
    return HP_OK;
}

hp_status hp_wsi_truth_read(const char *path, hp_wsi_truth *t, hp_error *err)
{
    memset(t, 0, sizeof *t);
    hp_status st = HP_OK;
    /* Read here, parsed from memory: libxml2's own file loader prints its I/O errors. */
    char *text = hp_eval_read_text(path, err);
    if (!text)
        return err ? err->code : HP_ERR_IO;
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        free(text);
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    /* No network, no entity substitution: annotation files are data, not documents to fetch. */
    xmlDocPtr doc = xmlCtxtReadMemory(ctxt, text, (int)strlen(text), path, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(text);
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char why[256] = "cannot be read";
        if (e && e->message) {
            snprintf(why, sizeof why, "%s", e->message);
            size_t l = strlen(why);
            while (l && (why[l - 1] == '\n' || why[l - 1] == ' '))
                why[--l] = 0;
        }
        if (e && e->domain == XML_FROM_IO)
            st = hp_error_set(err, HP_ERR_IO, "%s: %s", path, why);
        else
            st = hp_error_set(err, HP_ERR_INVALID, "%s: line %d: not well-formed XML: %s", path,
                              e ? e->line : 0, why);
        xmlFreeParserCtxt(ctxt);
        return st;
    }
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!is_el(root, "Annotations")) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: the root element is <%s>, not <Annotations> (Aperio ImageScope "
                          "annotations, as BACH Part B distributes them)",
                          path, root ? (const char *)root->name : "nothing");
        goto done;
    }
    int cap = 0, position = 0;
    for (const xmlNode *a = root->children; a && st == HP_OK; a = a->next) {
        if (!is_el(a, "Annotation"))
            continue;
        char name[256];
        attr(a, "Name", name, sizeof name);
        for (const xmlNode *rs = a->children; rs && st == HP_OK; rs = rs->next) {
            if (!is_el(rs, "Regions"))
                continue;
            for (const xmlNode *rg = rs->children; rg && st == HP_OK; rg = rg->next) {
                if (!is_el(rg, "Region"))
                    continue;
                if (t->n == cap) {
                    cap = cap ? cap * 2 : 16;
                    hp_wsi_region *nr = realloc(t->regions, sizeof *nr * (size_t)cap);
                    if (!nr) {
                        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
                        break;
                    }
                    t->regions = nr;
                }
                hp_wsi_region *r = &t->regions[t->n++];
                memset(r, 0, sizeof *r);
                st = read_region(path, rg, name, ++position, r, err);
            }
        }
    }
done:
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return st;
}

hp_status hp_wsi_truth_check_bounds(const hp_wsi_truth *t, const char *path, double width,
                                    double height, hp_error *err)
{
    for (int i = 0; i < t->n; i++) {
        const hp_wsi_region *r = &t->regions[i];
        for (int v = 0; v < r->n; v++) {
            double x = r->xy[2 * v], y = r->xy[2 * v + 1];
            if (x < 0 || y < 0 || x > width || y > height)
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s: region %s (%s), vertex %d at (%.1f, %.1f) lies outside "
                                    "the slide (%.0f x %.0f level-0 pixels): is this the "
                                    "annotation of another slide?",
                                    path, r->id, r->label, v + 1, x, y, width, height);
        }
    }
    return HP_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void hp_wsi_truth_rasterize(const hp_wsi_truth *t, double D, int w, int h, uint8_t *out)
{
    memset(out, 0, (size_t)w * h);
    int maxn = 0;
    for (int i = 0; i < t->n; i++)
        maxn = t->regions[i].n > maxn ? t->regions[i].n : maxn;
    double *xs = malloc(sizeof *xs * (size_t)(maxn ? maxn : 1));
    if (!xs)
        return;
    /* Least severe first, so the most severe label is painted last and wins. */
    for (int cls = 0; cls <= 3; cls++)
        for (int i = 0; i < t->n; i++) {
            const hp_wsi_region *r = &t->regions[i];
            if (r->cls != cls)
                continue;
            double ymin = r->xy[1], ymax = r->xy[1];
            for (int v = 1; v < r->n; v++) {
                ymin = fmin(ymin, r->xy[2 * v + 1]);
                ymax = fmax(ymax, r->xy[2 * v + 1]);
            }
            int py0 = (int)fmax(0, floor(ymin / D - 0.5)), py1 = (int)fmin(h - 1, ceil(ymax / D));
            for (int py = py0; py <= py1; py++) {
                double yc = (py + 0.5) * D;
                int nx = 0;
                for (int v = 0; v < r->n; v++) {
                    const double *a = r->xy + 2 * v, *b = r->xy + 2 * ((v + 1) % r->n);
                    if ((a[1] <= yc) != (b[1] <= yc))
                        xs[nx++] = a[0] + (yc - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
                }
                qsort(xs, (size_t)nx, sizeof *xs, cmp_double);
                for (int k = 0; k + 1 < nx; k += 2) {
                    /* Centres (px + 0.5) D in [xs[k], xs[k+1]). */
                    double a = ceil(xs[k] / D - 0.5), b = ceil(xs[k + 1] / D - 0.5);
                    int px0 = (int)fmax(0, a), px1 = (int)fmin(w, b);
                    for (int px = px0; px < px1; px++)
                        out[(size_t)py * w + px] = (uint8_t)cls;
                }
            }
        }
    free(xs);
}
