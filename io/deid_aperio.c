/* The Aperio ImageDescription: "Aperio Image Library vX \r\nWxH [x,y WxH] (TWxTH) JPEG/RGB Q=30
 * |AppMag = 20|MPP = 0.499|Filename = ...|Date = ...|User = ...". OpenSlide recognizes the
 * format by the leading "Aperio" and reads the magnification and the microns per pixel from the
 * fields, so the text stays, scrubbed by allow-list and in place (same length, no offset moves):
 * - the first part keeps its digits, punctuation and the structural words below; any other word
 *   becomes X's;
 * - a field keeps its value only when its key is on the list of scan-geometry keys and the value
 *   is a number; every other value becomes X's, and a key that is not a known Aperio key is
 *   overwritten too (a key could itself be free text);
 * - text between bars that is not a "key = value" field becomes X's;
 * - histoplan's own provenance of a super-resolved file (pipeline/upscale.c) stays when each value
 *   has the exact form upscale writes, so that a de-identified copy is still refused as a scan
 *   ("SuperResolved = yes: ..."); SourceSHA256 (a hash of the identified source file) and SRModel
 *   (a card's free text; SRModelSHA256 names the model) are blanked, and a flag with any other
 *   value keeps its key with the value blanked, which still reads as derived
 *   (hp_upscale_is_derived). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "io/deid_internal.h"
#include "io/sr_provenance.h"

/* Words of the first part: "Aperio Image Library v11.2.1", "46000x32914", "JPEG/RGB Q=30",
 * "J2K/YUV16". Single letters cover "v" before a version, "x" between sizes and "Q". */
static const char *const header_words[] = {
    "Aperio", "Image", "Library", "Format", "JPEG", "RGB", "YCbCr", "YUV", "J", "K", "Q", "v",
    "x", "LZW", "RAW", "Raw", "None",
};

/* Fields that describe the scan's geometry and optics: kept when their value is a number. */
static const char *const kept_keys[] = {
    "AppMag",         "MPP",             "StripeWidth",     "Left",          "Top",
    "LineCameraSkew", "LineAreaXOffset", "LineAreaYOffset", "Focus Offset",  "OriginalWidth",
    "OriginalHeight", "Originalheight",  "Filtered",        "Exposure Time", "Exposure Scale",
    "DisplayColor",   "Gamma",
};

/* Known Aperio keys whose values identify a patient, a case, an operator, a scanner, a session
 * or the time of the scan, or are free text: the value is blanked, the key (a fixed Aperio
 * name) is kept and named in the report. */
static const char *const named_keys[] = {
    "Filename", "Date",     "Time",     "User",     "ScanScope ID", "ImageID", "Barcode",
    "Title",    "Rack",     "Slide",    "DSR ID",   "Patient",      "Accession", "Case",
    "Specimen", "Operator", "Parmset",  "ICC Profile", "SessonMode", "SessionMode", "Comment",
    "Description", "Label", "SourceSHA256", "SRModel",
};

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int in_list(const char *const *list, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && !memcmp(list[i], s, len))
            return 1;
    return 0;
}

static int is_number(const char *s, size_t len)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    strtod(buf, &end);
    return end == buf + len;
}

/* upscale's two flags, exactly as it writes them. */
static int is_super_resolved_flag(const char *s, size_t len)
{
    return len == strlen(HP_SR_FLAG_SUPER_RESOLVED) && !memcmp(s, HP_SR_FLAG_SUPER_RESOLVED, len);
}

static int is_generative_flag(const char *s, size_t len)
{
    return len == strlen(HP_SR_FLAG_GENERATIVE) && !memcmp(s, HP_SR_FLAG_GENERATIVE, len);
}

static int is_precision(const char *s, size_t len)
{
    return (len == 4 && (!memcmp(s, "fp32", 4) || !memcmp(s, "fp16", 4) || !memcmp(s, "bf16", 4)));
}

static int is_sha256(const char *s, size_t len)
{
    if (len != 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* "x,y,w,h": level-0 pixels of the source. */
static int is_region(const char *s, size_t len)
{
    int commas = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ',')
            commas++;
        else if (!isdigit((unsigned char)s[i]))
            return 0;
    return len > 0 && commas == 3;
}

/* histoplan's super-resolution provenance: kept when the value has the form upscale writes. */
static const struct {
    const char *key;
    int (*valid)(const char *value, size_t len);
} provenance_keys[] = {
    {"SuperResolved", is_super_resolved_flag}, {"SRGenerative", is_generative_flag},
    {"SRScale", is_number},                     {"SourceMPP", is_number},
    {"SRPrecision", is_precision},              {"SRModelSHA256", is_sha256},
    {"SourceRegion", is_region},
};

/* 1: a provenance key whose value has its form (kept); 0: a provenance key whose value does not
 * (the key stays, named, its value blanked); -1: not a provenance key. */
static int provenance_field(const char *key, size_t key_len, const char *value, size_t value_len)
{
    for (size_t i = 0; i < sizeof provenance_keys / sizeof *provenance_keys; i++)
        if (strlen(provenance_keys[i].key) == key_len && !memcmp(provenance_keys[i].key, key, key_len))
            return provenance_keys[i].valid(value, value_len) ? 1 : 0;
    return -1;
}

/* Overwrites [a, b) with 'X' except spaces, '=' and '|'; returns 1 when anything changed. */
static int x_out(char *s, size_t a, size_t b)
{
    int hit = 0;
    for (size_t i = a; i < b; i++)
        if (!is_space(s[i]) && s[i] != '=' && s[i] != '|' && s[i] != 'X')
            s[i] = 'X', hit = 1;
    return hit;
}

static int scrub_header(char *s, size_t end)
{
    int hit = 0;
    for (size_t i = 0; i < end;) {
        if (!isalpha((unsigned char)s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < end && isalpha((unsigned char)s[j]))
            j++;
        if (!in_list(header_words, sizeof header_words / sizeof *header_words, s + i, j - i))
            hit |= x_out(s, i, j);
        i = j;
    }
    return hit;
}

int deid_aperio_scrub(char *s, size_t len, hp_deid_report *rep)
{
    int changes = 0;
    size_t end = strnlen(s, len);
    size_t bar = 0;
    while (bar < end && s[bar] != '|')
        bar++;
    if (scrub_header(s, bar)) {
        changes++;
        deid_report_add(rep, HP_DEID_BLANKED_FIELD, "header text");
    }
    for (size_t a = bar; a < end;) {
        size_t b = a + 1;
        while (b < end && s[b] != '|')
            b++;
        char *eq = memchr(s + a + 1, '=', b - a - 1);
        if (!eq) { /* free text between bars */
            if (x_out(s, a + 1, b)) {
                changes++;
                deid_report_add(rep, HP_DEID_BLANKED_FIELD, "text without a key");
            }
            a = b;
            continue;
        }
        size_t k0 = a + 1, k1 = (size_t)(eq - s), v0 = k1 + 1, v1 = b;
        while (k0 < k1 && is_space(s[k0]))
            k0++;
        while (k1 > k0 && is_space(s[k1 - 1]))
            k1--;
        while (v0 < v1 && is_space(s[v0]))
            v0++;
        while (v1 > v0 && is_space(s[v1 - 1]))
            v1--;
        int provenance = provenance_field(s + k0, k1 - k0, s + v0, v1 - v0);
        if ((in_list(kept_keys, sizeof kept_keys / sizeof *kept_keys, s + k0, k1 - k0) &&
             is_number(s + v0, v1 - v0)) ||
            provenance == 1) {
            a = b;
            continue;
        }
        char name[HP_DEID_NAME_MAX];
        int named = in_list(named_keys, sizeof named_keys / sizeof *named_keys, s + k0, k1 - k0) ||
                    in_list(kept_keys, sizeof kept_keys / sizeof *kept_keys, s + k0, k1 - k0) || provenance == 0;
        if (named) {
            memcpy(name, s + k0, k1 - k0);
            name[k1 - k0] = '\0';
        }
        int hit = x_out(s, v0, v1);
        if (!named)
            hit |= x_out(s, k0, k1);
        if (hit) {
            changes++;
            deid_report_add(rep, HP_DEID_BLANKED_FIELD, named ? name : "unrecognized field");
        }
        a = b;
    }
    return changes;
}

const char *deid_aperio_associated(const char *desc)
{
    const char *nl = strchr(desc, '\n');
    if (!nl)
        return NULL;
    if (!strncmp(nl + 1, "label", 5) && (nl[6] == ' ' || nl[6] == '\r' || nl[6] == '\0'))
        return "label";
    if (!strncmp(nl + 1, "macro", 5) && (nl[6] == ' ' || nl[6] == '\r' || nl[6] == '\0'))
        return "macro";
    return NULL;
}
