/* HTML report renderer (report/report_html.h): the hand-made fixture reports under
 * tests/data/report-example/ (a preliminary draft and a signed revision) are rendered and the
 * pages checked; broken inputs are refused with a message naming what is wrong, and leave no
 * HTML behind (nor replace an older page at the same path).
 *
 * `test_report_html --write DIR` only renders the two fixtures to DIR/preliminary.html and
 * DIR/signed.html, for tests/scripts/test_report_html.py, which parses them. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report_html.h"
#include "util/testutil.h"

static int passed;

/* snprintf for paths; over-long paths are cut, which only makes a test fail. */
static void pfmt(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pfmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

#define OK(cond) CHECK_COUNT(passed, cond)

#define OK_MSG(cond, ...)              \
    do {                               \
        CHECK_MSG(cond, __VA_ARGS__);  \
        passed += !!(cond);            \
    } while (0)

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static cJSON *load_json(const char *path)
{
    char *text = read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j)
        fprintf(stderr, "cannot read or parse %s\n", path);
    return j;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Files in `dir` whose name contains ".tmp-" (a temporary left behind). */
static int temporaries_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* Copies the fixture's images/ into `dir`/images. */
static int copy_images(const char *src_dir, const char *dir)
{
    char sp[4096], dp[4096];
    pfmt(dp, sizeof dp, "%s/images", dir);
    if (mkdir(dp, 0755) != 0)
        return -1;
    pfmt(sp, sizeof sp, "%s/images", src_dir);
    DIR *d = opendir(sp);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char a[4096], b[4096];
        pfmt(a, sizeof a, "%s/%s", sp, e->d_name);
        pfmt(b, sizeof b, "%s/%s", dp, e->d_name);
        size_t n = 0;
        char *data = read_file(a, &n);
        if (!data || write_file(b, data, n) != 0)
            rc = -1;
        free(data);
    }
    closedir(d);
    return rc;
}

static int render(const cJSON *r, const char *dir, const char *path, hp_error *err)
{
    hp_error_clear(err);
    return hp_report_write_html(r, dir, path, err);
}

static void check_good(const cJSON *prelim, const cJSON *signed_r, const char *fixture,
                       const char *tmp)
{
    char path[4096];
    hp_error err = {0};
    pfmt(path, sizeof path, "%s/preliminary.html", tmp);
    int st = render(prelim, fixture, path, &err);
    OK_MSG(st == HP_OK, "%s", err.msg);
    char *html = read_file(path, NULL);
    OK(html != NULL);
    if (html) {
        OK(strstr(html, "<!DOCTYPE html>") == html);
        OK(strstr(html, "PRELIMINARY") != NULL);
        OK(strstr(html, "class=\"watermark\"") != NULL);
        OK(strstr(html, "@media print") != NULL);
        /* The notice has an apostrophe, which is escaped. */
        OK(strstr(html, "every suggestion needs a clinician&#39;s approval") != NULL);
        OK(strstr(html, "<span class=\"num\" data-pointer=\"/case_findings/tissue_area_mm2\">"
                        "240.364</span>") != NULL);
        /* 9.0 in the file is printed as ES6 does: 9. */
        OK(strstr(html, "data-pointer=\"/case_findings/classes/3/percent_of_tissue\">9</span>") !=
           NULL);
        OK(strstr(html, "<span class=\"stext\">Invasive carcinoma suggested: largest focus "
                        "<span class=\"num\" data-pointer=\"/case_findings/invasive/"
                        "largest_focus_mm\">14.2</span> <span class=\"ref unit\">mm</span>") !=
           NULL);
        OK(strstr(html, "data:image/png;base64,") != NULL);
        OK(strstr(html, "<script") == NULL);
        OK(strstr(html, "src=\"http") == NULL);
        OK(strstr(html, "data-field=\"patient.birth_date\"") != NULL);
        OK(strstr(html, "not given") != NULL);
        OK(strstr(html, "Requires clinician approval") != NULL);
        OK(strstr(html, "CP-GATE-QC") != NULL);
        OK(strstr(html, "id=\"gate\"") != NULL);
        OK(strstr(html, "id=\"not-for-diagnosis\"") != NULL);
        OK(strstr(html, "id=\"sign-off\"") == NULL);
    }
    free(html);
    OK(temporaries_in(tmp) == 0);

    pfmt(path, sizeof path, "%s/signed.html", tmp);
    st = render(signed_r, fixture, path, &err);
    OK_MSG(st == HP_OK, "%s", err.msg);
    html = read_file(path, NULL);
    OK(html != NULL);
    if (html) {
        OK(strstr(html, "PRELIMINARY") == NULL);
        OK(strstr(html, "SIGNED") != NULL);
        OK(strstr(html, "path-0193") != NULL);
        OK(strstr(html, "2026-11-22T14:05:31Z") != NULL);
        OK(strstr(html, "id=\"sign-off\"") != NULL);
        /* The amendment names the suggestion by its rule id, as the page shows it. */
        OK(strstr(html, "data-pointer=\"/sign_off/amendments/0/id\">CP-INV-MDT<") != NULL);
        OK(strstr(html, "decision: rejected") != NULL);
    }
    free(html);
}

/* `mutate` breaks a copy of `good`; rendering must fail with `code` and a message holding
 * `needle`, leave nothing at a new path and keep an older page at an existing one. */
static void expect_refusal(const char *what, const cJSON *good, void (*mutate)(cJSON *),
                           const char *dir, int code, const char *needle)
{
    cJSON *r = cJSON_Duplicate(good, 1);
    if (mutate)
        mutate(r);
    char path[4096], old[4096];
    pfmt(path, sizeof path, "%s/refused.html", dir);
    pfmt(old, sizeof old, "%s/older.html", dir);
    unlink(path);
    write_file(old, "older page", 10);
    hp_error err = {0};
    int st = render(r, dir, path, &err);
    OK_MSG(st == code, "%s: status %d, want %d (%s)", what, st, code, err.msg);
    OK_MSG(strstr(err.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err.msg,
           needle);
    OK_MSG(!exists(path), "%s: a page was left behind", what);
    hp_error_clear(&err);
    st = hp_report_write_html(r, dir, old, &err);
    char *kept = read_file(old, NULL);
    OK_MSG(st != HP_OK && kept && strcmp(kept, "older page") == 0,
           "%s: the older page was replaced", what);
    free(kept);
    OK_MSG(temporaries_in(dir) == 0, "%s: a temporary was left behind", what);
    printf("refused as expected (%s): %s\n", what, err.msg);
    unlink(old);
    cJSON_Delete(r);
}

static void drop_care_plan(cJSON *r) { cJSON_DeleteItemFromObject(r, "care_plan"); }

static void drop_patient_name(cJSON *r)
{
    cJSON *pt = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "case"), "patient");
    cJSON_DeleteItemFromObject(pt, "name");
}

static void drop_region_area(cJSON *r)
{
    cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "slides"), 1);
    cJSON *reg = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "regions"), 0);
    cJSON_DeleteItemFromObject(reg, "area_mm2");
}

static void number_as_string(cJSON *r)
{
    cJSON *cf = cJSON_GetObjectItem(r, "case_findings");
    cJSON_ReplaceItemInObject(cf, "tiles_analysed", cJSON_CreateString("19151"));
}

/* The report's number no longer matches what statement S1 quotes. */
static void tamper_number(cJSON *r)
{
    cJSON *inv = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "case_findings"), "invasive");
    cJSON_ReplaceItemInObject(inv, "largest_focus_mm", cJSON_CreateNumber(14.3));
}

static void tamper_text(cJSON *r)
{
    cJSON *st = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "statements"), 2);
    cJSON_ReplaceItemInObject(st, "text", cJSON_CreateString("Tissue analysed: 240 mm2."));
}

static void unsigned_final(cJSON *r)
{
    cJSON_ReplaceItemInObject(r, "status", cJSON_CreateString("final"));
}

static void image_outside(cJSON *r)
{
    cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "slides"), 0);
    cJSON *ov = cJSON_GetObjectItem(s, "overlay_image");
    cJSON_ReplaceItemInObject(ov, "file", cJSON_CreateString("../report.json"));
}

static void check_escaping(const cJSON *good, const char *dir)
{
    cJSON *r = cJSON_Duplicate(good, 1);
    cJSON *pt = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "case"), "patient");
    cJSON_ReplaceItemInObject(pt, "name", cJSON_CreateString("<script>alert('x')</script> & \"q\""));
    char path[4096];
    pfmt(path, sizeof path, "%s/escaped.html", dir);
    hp_error err = {0};
    int st = render(r, dir, path, &err);
    OK_MSG(st == HP_OK, "%s", err.msg);
    char *html = read_file(path, NULL);
    OK(html && strstr(html, "<script") == NULL);
    OK(html && strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                            "&quot;q&quot;") != NULL);
    free(html);
    cJSON_Delete(r);
}

int main(int argc, char **argv)
{
    const char *src = hp_test_env("HP_SOURCE_DIR", ".");
    char fixture[4096], p[4096];
    pfmt(fixture, sizeof fixture, "%s/tests/data/report-example", src);
    pfmt(p, sizeof p, "%s/report.json", fixture);
    cJSON *prelim = load_json(p);
    pfmt(p, sizeof p, "%s/report-signed.json", fixture);
    cJSON *signed_r = load_json(p);
    if (!prelim || !signed_r)
        return 1;

    if (argc == 3 && strcmp(argv[1], "--write") == 0) {
        hp_error err = {0};
        pfmt(p, sizeof p, "%s/preliminary.html", argv[2]);
        int st = hp_report_write_html(prelim, fixture, p, &err);
        pfmt(p, sizeof p, "%s/signed.html", argv[2]);
        if (st == HP_OK)
            st = hp_report_write_html(signed_r, fixture, p, &err);
        if (st != HP_OK)
            fprintf(stderr, "test_report_html: %s\n", err.msg);
        cJSON_Delete(prelim);
        cJSON_Delete(signed_r);
        return st == HP_OK ? 0 : 1;
    }

    char tmp[] = "/tmp/hp-report-html-XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    check_good(prelim, signed_r, fixture, tmp);

    /* A copy of the report folder whose images can be broken. */
    char dir[4096];
    pfmt(dir, sizeof dir, "%s/copy", tmp);
    OK(mkdir(dir, 0755) == 0);
    OK(copy_images(fixture, dir) == 0);
    {
        char okp[4096];
        hp_error err = {0};
        pfmt(okp, sizeof okp, "%s/ok.html", dir);
        int st = render(prelim, dir, okp, &err);
        OK_MSG(st == HP_OK, "intact copy: %s", err.msg);
        unlink(okp);
    }
    check_escaping(prelim, dir);

    expect_refusal("no care_plan", prelim, drop_care_plan, dir, HP_ERR_INVALID, "care_plan");
    expect_refusal("no patient name", prelim, drop_patient_name, dir, HP_ERR_INVALID,
                   "/case/patient: required member \"name\" is missing");
    expect_refusal("no region area", prelim, drop_region_area, dir, HP_ERR_INVALID,
                   "/slides/1/regions/0: required member \"area_mm2\"");
    expect_refusal("number as a string", prelim, number_as_string, dir, HP_ERR_INVALID,
                   "/case_findings/tiles_analysed: expected a number");
    expect_refusal("statement number differs", prelim, tamper_number, dir, HP_ERR_INVALID,
                   "statement S1");
    expect_refusal("statement text differs", prelim, tamper_text, dir, HP_ERR_INVALID,
                   "statement S3");
    expect_refusal("final without sign-off", prelim, unsigned_final, dir, HP_ERR_INVALID,
                   "sign_off");
    expect_refusal("image outside images/", prelim, image_outside, dir, HP_ERR_INVALID,
                   "../report.json");

    /* An image whose bytes differ from the ones the report hashed. */
    char img[4096];
    pfmt(img, sizeof img, "%s/images/region-A1-2.png", dir);
    size_t n = 0;
    char *orig = read_file(img, &n);
    OK(orig != NULL);
    if (orig) {
        char *changed = malloc(n + 1);
        memcpy(changed, orig, n);
        changed[n] = 0; /* one byte appended: still starts as a PNG */
        OK(write_file(img, changed, n + 1) == 0);
        free(changed);
        expect_refusal("image hash differs", prelim, NULL, dir, HP_ERR_INVALID,
                       "region-A1-2.png: SHA-256");
        OK(write_file(img, orig, n) == 0);
        free(orig);
    }
    /* A missing image. */
    pfmt(img, sizeof img, "%s/images/overlay-B2.png", dir);
    OK(unlink(img) == 0);
    expect_refusal("image missing", prelim, NULL, dir, HP_ERR_IO, "overlay-B2.png");

    /* Clean up the temporary folder (all files we made are known). */
    const char *const made[] = {"copy/escaped.html", "preliminary.html", "signed.html"};
    for (size_t i = 0; i < sizeof made / sizeof *made; i++) {
        pfmt(p, sizeof p, "%s/%s", tmp, made[i]);
        unlink(p);
    }
    pfmt(p, sizeof p, "%s/images", dir);
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char f[4096];
        pfmt(f, sizeof f, "%s/%s", p, e->d_name);
        unlink(f);
    }
    if (d)
        closedir(d);
    rmdir(p);
    rmdir(dir);
    rmdir(tmp);

    cJSON_Delete(prelim);
    cJSON_Delete(signed_r);
    return hp_test_finish("test_report_html", passed);
}
