/* The Philips TIFF XML ImageDescription: DataObjects of Attributes, <Attribute Name="N" ...>value
 * </Attribute>. The label and macro are base64 JPEGs (PIM_DP_IMAGE_DATA) in the DPScannedImage
 * objects whose PIM_DP_IMAGE_TYPE is LABELIMAGE or MACROIMAGE; patient, study and time fields are
 * DICOM_* attributes. Everything is edited in place at the same length so no offset moves. */
#include <string.h>

#include "io/deid_internal.h"

/* Attribute names whose values identify a patient, a study, a site, a device or a time. */
static int identifying(const char *name, size_t n)
{
    static const char *const exact[] = {"PIM_DP_UFS_BARCODE", "PIM_DP_SOURCE_FILE"};
    static const char *const parts[] = {"PATIENT",  "STUDY",     "SERIES",   "ACCESSION",
                                        "PHYSICIAN", "INSTITUTION", "STATION", "OPERATOR",
                                        "SPECIMEN", "CONTAINER", "SERIAL",   "DATE",
                                        "TIME",     "UID",       "BARCODE",  "LABEL_TEXT"};
    char buf[128];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, name, n);
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (!strcmp(buf, exact[i]))
            return 1;
    if (strncmp(buf, "DICOM_", 6))
        return 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (strstr(buf + 6, parts[i]))
            return 1;
    return 0;
}

typedef struct {
    char *name;
    size_t name_len;
    char *v0, *v1; /* value characters: [v0, v1) */
    char *end;     /* just past </Attribute> */
} attr;

/* The next <Attribute ...>text</Attribute> at or after p whose text holds no markup. */
static int next_attr(char *p, char *lim, attr *a)
{
    static const char close[] = "</Attribute>";
    while ((p = strstr(p, "<Attribute")) && p < lim) {
        char *gt = memchr(p, '>', (size_t)(lim - p));
        if (!gt)
            return 0;
        char *nm = strstr(p, "Name=\"");
        char *v1 = strstr(gt, close);
        if (gt[-1] == '/' || !nm || nm > gt || !v1 || v1 > lim) {
            p = gt + 1;
            continue;
        }
        char *nm1 = memchr(nm + 6, '"', (size_t)(gt - nm - 6));
        char *lt = memchr(gt + 1, '<', (size_t)(v1 - gt - 1));
        if (!nm1 || lt) { /* nested objects: descend into them */
            p = gt + 1;
            continue;
        }
        a->name = nm + 6;
        a->name_len = (size_t)(nm1 - nm - 6);
        a->v0 = gt + 1;
        a->v1 = v1;
        a->end = v1 + sizeof close - 1;
        return 1;
    }
    return 0;
}

static int fill(char *a, char *b, char c)
{
    int hit = 0;
    for (; a < b; a++)
        if (*a != '"' && *a != c && *a != ' ' && *a != '\r' && *a != '\n' && *a != '\t')
            *a = c, hit = 1;
    return hit;
}

static int name_is(const attr *a, const char *s)
{
    return a->name_len == strlen(s) && !memcmp(a->name, s, a->name_len);
}

/* The value without quotes and spaces equals s. */
static int value_is(const attr *a, const char *s)
{
    char *v0 = a->v0, *v1 = a->v1;
    while (v0 < v1 && (*v0 == '"' || *v0 == ' '))
        v0++;
    while (v1 > v0 && (v1[-1] == '"' || v1[-1] == ' '))
        v1--;
    return (size_t)(v1 - v0) == strlen(s) && !memcmp(v0, s, (size_t)(v1 - v0));
}

static char *find_back(char *from, char *start, const char *s)
{
    size_t n = strlen(s);
    for (char *p = from; p >= start; p--)
        if (!strncmp(p, s, n))
            return p;
    return NULL;
}

int deid_philips_scrub(char *xml, size_t len, hp_deid_report *rep)
{
    int changes = 0;
    char *lim = xml + strnlen(xml, len);
    attr a;
    for (char *p = xml; next_attr(p, lim, &a); p = a.end) {
        if (name_is(&a, "PIM_DP_IMAGE_TYPE") &&
            (value_is(&a, "LABELIMAGE") || value_is(&a, "MACROIMAGE"))) {
            const char *what = value_is(&a, "LABELIMAGE") ? "label" : "macro";
            /* The image data is an attribute of the same DataObject, before or after the type. */
            char *o0 = find_back(a.name, xml, "<DataObject");
            char *o1 = strstr(a.end, "</DataObject>");
            if (!o0)
                o0 = xml;
            if (!o1 || o1 > lim)
                o1 = lim;
            attr d;
            for (char *q = o0; next_attr(q, o1, &d); q = d.end)
                if (name_is(&d, "PIM_DP_IMAGE_DATA"))
                    fill(d.v0, d.v1, ' ');
            /* A reader that still saw the type would look for an image that is no longer there. */
            fill(a.v0, a.v1, 'X');
            deid_report_add(rep, HP_DEID_REMOVED_IMAGE, what);
            changes++;
        } else if (identifying(a.name, a.name_len) && fill(a.v0, a.v1, 'X')) {
            char name[HP_DEID_NAME_MAX];
            size_t n = a.name_len < sizeof name - 1 ? a.name_len : sizeof name - 1;
            memcpy(name, a.name, n);
            name[n] = '\0';
            deid_report_add(rep, HP_DEID_BLANKED_XML, name);
            changes++;
        }
    }
    return changes;
}
