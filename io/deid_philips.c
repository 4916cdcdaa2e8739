/* The Philips TIFF XML ImageDescription: DataObjects of Attributes, <Attribute Name="N" ...>value
 * </Attribute>. The label and macro are base64 JPEGs (PIM_DP_IMAGE_DATA) in the DPScannedImage
 * objects whose PIM_DP_IMAGE_TYPE is LABELIMAGE or MACROIMAGE; patient, study, device and time
 * fields are DICOM_* and PIM_* attributes. Values are kept by allow-list. Everything is edited in
 * place at the same length so no offset moves and the XML stays well formed. */
#include <string.h>

#include "io/deid_internal.h"

/* Attributes kept as they are: the structure OpenSlide walks (the scanned images, their type,
 * the pixel data representations) and the numbers that describe the pixels (spacing, size,
 * sample layout, compression). Every other attribute value is blanked: a deny-list of DICOM
 * names would miss a site's own attributes and free-text fields. */
static int kept_attribute(const char *name, size_t n)
{
    static const char *const kept[] = {
        "PIM_DP_SCANNED_IMAGES",
        "PIM_DP_IMAGE_TYPE",
        "PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE",
        "PIIM_PIXEL_DATA_REPRESENTATION_NUMBER",
        "PIIM_PIXEL_DATA_REPRESENTATION_COLUMNS",
        "PIIM_PIXEL_DATA_REPRESENTATION_ROWS",
        "PIIM_DP_PIXEL_DATA_REPRESENTATION_POSITION",
        "PIM_DP_IMAGE_COLUMNS",
        "PIM_DP_IMAGE_ROWS",
        "DICOM_PIXEL_SPACING",
        "DICOM_BITS_ALLOCATED",
        "DICOM_BITS_STORED",
        "DICOM_HIGH_BIT",
        "DICOM_PIXEL_REPRESENTATION",
        "DICOM_SAMPLES_PER_PIXEL",
        "DICOM_PHOTOMETRIC_INTERPRETATION",
        "DICOM_PLANAR_CONFIGURATION",
        "DICOM_LOSSY_IMAGE_COMPRESSION",
        "DICOM_LOSSY_IMAGE_COMPRESSION_METHOD",
        "DICOM_LOSSY_IMAGE_COMPRESSION_RATIO",
        "PIM_DP_UFS_INTERFACE_VERSION",
    };
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        if (strlen(kept[i]) == n && !memcmp(kept[i], name, n))
            return 1;
    return 0;
}

/* An attribute name is quoted in the report only when it looks like one (capitals, digits and
 * underscores): a name is markup a writer chose and could itself hold text. */
static int plain_name(const char *name, size_t n)
{
    if (n == 0 || n >= HP_DEID_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return 0;
    return 1;
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
        } else if (!kept_attribute(a.name, a.name_len) && fill(a.v0, a.v1, 'X')) {
            char name[HP_DEID_NAME_MAX] = "unrecognized attribute";
            if (plain_name(a.name, a.name_len)) {
                memcpy(name, a.name, a.name_len);
                name[a.name_len] = '\0';
            }
            deid_report_add(rep, HP_DEID_BLANKED_XML, name);
            changes++;
        }
    }
    /* Text anywhere else (an element of another name, text beside the attributes) is blanked
     * too unless it is the value of a kept attribute. */
    for (char *p = xml; p < lim;) {
        char *gt = memchr(p, '>', (size_t)(lim - p));
        if (!gt)
            break;
        char *lt = memchr(gt + 1, '<', (size_t)(lim - gt - 1));
        if (!lt)
            lt = lim;
        char *open = find_back(gt, xml, "<");
        int kept = 0;
        if (open && !strncmp(open, "<Attribute", 10) && gt[-1] != '/') {
            char *nm = strstr(open, "Name=\"");
            char *nm1 = nm && nm < gt ? memchr(nm + 6, '"', (size_t)(gt - nm - 6)) : NULL;
            kept = nm1 && kept_attribute(nm + 6, (size_t)(nm1 - nm - 6));
        }
        if (!kept && fill(gt + 1, lt, 'X')) {
            deid_report_add(rep, HP_DEID_BLANKED_XML, "text outside attributes");
            changes++;
        }
        p = lt;
    }
    /* Comments are free text. */
    for (char *c = xml; (c = strstr(c, "<!--")) && c < lim;) {
        char *e = strstr(c + 4, "-->");
        if (!e || e > lim)
            e = lim;
        if (fill(c + 4, e, 'X')) {
            deid_report_add(rep, HP_DEID_BLANKED_XML, "comment");
            changes++;
        }
        c = e;
    }
    return changes;
}
