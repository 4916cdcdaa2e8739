#include "report/report_dir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/remove_tree.h"
#include "common/utc_time.h"
#include "io/atomic_file.h"
#include "io/slide.h"
#include "models/card.h"
#include "report/audit_log.h"
#include "report/build_record.h"
#include "report/care_rules.h"
#include "report/case_file.h"
#include "report/findings_input.h"
#include "report/report_content.h"
#include "report/report_fhir.h"
#include "report/report_html.h"
#include "report/report_verify.h"

int hp_report_dir_latest_revision(const char *dir, hp_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/revisions", dir);
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        hp_error_set(err, HP_ERR_IO, "report %s: cannot read its revisions: %s", dir, strerror(errno));
        return -1;
    }
    int best = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long n = strtol(e->d_name, &end, 10);
        /* only plain numbers; temporaries (N.partial-PID) are not revisions */
        if (end != e->d_name && !*end && n > best && n < 1000000)
            best = (int)n;
    }
    closedir(d);
    return best;
}

hp_status hp_report_render(const cJSON *report, const cJSON *signature, const char *dir, const char *images_dir,
                           hp_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/report.fhir.json", dir);
    hp_status st = hp_report_write_fhir(report, signature, path, err);
    if (st)
        return st;
    snprintf(path, sizeof path, "%s/report.html", dir);
    return hp_report_write_html(report, images_dir, path, err);
}

/* Copies `src` to `dst` byte for byte (the audit log carried over on a rebuild). */
static hp_status copy_file(const char *src, const char *dst, hp_error *err)
{
    FILE *in = fopen(src, "rb");
    if (!in)
        return errno == ENOENT ? HP_OK : hp_error_set(err, HP_ERR_IO, "%s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return hp_error_set(err, HP_ERR_IO, "%s: %s", dst, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int ok = 1;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ok &= fwrite(buf, 1, n, out) == n;
    ok &= !ferror(in);
    fclose(in);
    ok &= fclose(out) == 0;
    return ok ? HP_OK : hp_error_set(err, HP_ERR_IO, "%s: copy failed", dst);
}

hp_status hp_report_build(const hp_report_build_opts *o, cJSON **report_out, hp_error *err)
{
    if (report_out)
        *report_out = NULL;
    hp_case_file cf = {0};
    hp_care_rules rules = {0};
    hp_findings_input *fi = calloc(o->n_findings > 0 ? (size_t)o->n_findings : 1, sizeof *fi);
    cJSON *report = NULL;
    hp_slide **slides = NULL; /* per findings file: its slide, when given */
    char tmp[PATH_MAX] = "", path[PATH_MAX];
    hp_status st = HP_OK;
    if (!fi)
        return hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");

    /* A signed report is never rebuilt; an unsigned one only with --overwrite. */
    struct stat sb;
    int exists = stat(o->out_dir, &sb) == 0;
    if (exists) {
        /* Signed means a revision on disk or a signature in the audit log: deleting revisions/
         * does not make a signed report rebuildable. */
        int rev = 0, is_signed = hp_report_signed(o->out_dir, &rev, err);
        if (is_signed < 0) {
            st = err->code;
            goto done;
        }
        if (is_signed) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s holds a signed report (revision %d, in revisions/ or its audit log): a signed report "
                              "cannot be rebuilt or changed; amend it with `histoplan report sign %s --amend FILE`",
                              o->out_dir, rev, o->out_dir);
            goto done;
        }
        if (!o->overwrite) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s already exists; give --overwrite to replace its unsigned report",
                              o->out_dir);
            goto done;
        }
    }
    if ((st = hp_case_file_load(o->case_path, &cf, err)))
        goto done;
    if ((st = hp_care_rules_load(o->rules_path ? o->rules_path : hp_care_rules_default_path(), &rules, err)))
        goto done;
    for (int i = 0; i < o->n_findings; i++)
        if ((st = hp_findings_input_load(o->findings[i], &fi[i], err)))
            goto done;

    /* Slides given for thumbnails: each must be the slide of one findings file. */
    slides = calloc(o->n_findings > 0 ? (size_t)o->n_findings : 1, sizeof *slides);
    if (!slides) {
        st = hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
        goto done;
    }
    for (int k = 0; k < o->n_slides; k++) {
        char hex[65];
        if ((st = hp_sha256_file(o->slides[k], hex, err)))
            goto done;
        int match = -1;
        for (int i = 0; i < o->n_findings; i++)
            if (!strcmp(hex, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(fi[i].root, "slide"), "sha256")->valuestring))
                match = i;
        if (match < 0) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "slide %s is none of the analysed slides: its SHA-256 matches no findings file given",
                              o->slides[k]);
            goto done;
        }
        if (slides[match]) {
            st = hp_error_set(err, HP_ERR_INVALID, "slide %s is given twice", o->slides[k]);
            goto done;
        }
        if (!(slides[match] = hp_slide_open(o->slides[k], NULL, err))) {
            st = err->code;
            goto done;
        }
    }

    snprintf(tmp, sizeof tmp, "%s.partial-%ld", o->out_dir, (long)getpid());
    snprintf(path, sizeof path, "%s/images", tmp);
    if (mkdir(tmp, 0755) || mkdir(path, 0755)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    char now[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), now);
    if ((st = hp_report_content_build(&cf, fi, o->n_findings, slides, &rules, tmp, now, &report, err)))
        goto done;
    char *text = cJSON_Print(report);
    snprintf(path, sizeof path, "%s/report.json", tmp);
    st = text ? hp_atomic_write_text(path, text, err) : hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
    free(text);
    if (st || (st = hp_report_render(report, NULL, tmp, tmp, err)))
        goto done;
    /* The build record: what report sign will hold the draft to (report/build_record.h). */
    char record_sha[65];
    if ((st = hp_build_record_write(tmp, report, now, record_sha, err)))
        goto done;

    /* The audit log: carried over from the report being replaced, then this build appended. */
    snprintf(path, sizeof path, "%s/audit.jsonl", tmp);
    if (exists) {
        char old[PATH_MAX];
        snprintf(old, sizeof old, "%s/audit.jsonl", o->out_dir);
        if ((st = copy_file(old, path, err)))
            goto done;
    }
    cJSON *details = cJSON_CreateObject();
    cJSON_AddStringToObject(details, "report_id", cJSON_GetObjectItemCaseSensitive(report, "report_id")->valuestring);
    cJSON_AddNumberToObject(details, "revision", 0);
    cJSON_AddStringToObject(details, "case_file_sha256", cf.sha256);
    cJSON *fl = cJSON_AddArrayToObject(details, "findings_sha256");
    for (int i = 0; i < o->n_findings; i++)
        cJSON_AddItemToArray(fl, cJSON_CreateString(fi[i].sha256));
    cJSON_AddStringToObject(details, "rules_sha256", rules.sha256);
    cJSON_AddStringToObject(details, "category",
                            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "diagnosis"), "category")->valuestring);
    cJSON_AddBoolToObject(details, "replaced_unsigned_report", exists);
    cJSON_AddStringToObject(details, "build_record_sha256", record_sha);
    st = hp_audit_append_at(path, now, "build", NULL, details, err);
    cJSON_Delete(details);
    if (st)
        goto done;

    /* Into place: the old unsigned report is moved aside first and removed last. */
    if (exists) {
        char aside[PATH_MAX];
        snprintf(aside, sizeof aside, "%s.old-%ld", o->out_dir, (long)getpid());
        if (rename(o->out_dir, aside)) {
            st = hp_error_set(err, HP_ERR_IO, "%s: %s", o->out_dir, strerror(errno));
            goto done;
        }
        if (rename(tmp, o->out_dir)) {
            st = hp_error_set(err, HP_ERR_IO, "%s: %s", o->out_dir, strerror(errno));
            rename(aside, o->out_dir);
            goto done;
        }
        hp_remove_tree(aside);
    } else if (rename(tmp, o->out_dir)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s", o->out_dir, strerror(errno));
        goto done;
    }
    tmp[0] = '\0';
done:
    if (tmp[0])
        hp_remove_tree(tmp);
    if (st == HP_OK && report_out) {
        *report_out = report;
        report = NULL;
    }
    cJSON_Delete(report);
    for (int i = 0; slides && i < o->n_findings; i++)
        hp_slide_close(slides[i]);
    free(slides);
    for (int i = 0; i < o->n_findings; i++)
        hp_findings_input_free(&fi[i]);
    free(fi);
    hp_case_file_free(&cf);
    hp_care_rules_free(&rules);
    return st;
}
