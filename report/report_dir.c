#include "report/report_dir.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/output_dir.h"
#include "common/remove_tree.h"
#include "common/utc_time.h"
#include "io/atomic_file.h"
#include "io/slide.h"
#include "common/sha256.h"
#include "report/audit_log.h"
#include "report/build_record.h"
#include "report/care_rules.h"
#include "report/case_file.h"
#include "report/findings_input.h"
#include "report/report_content.h"
#include "report/report_fhir.h"
#include "report/report_html.h"
#include "report/report_verify.h"

/* "a/b" into out; a path that does not fit is an error, never silently cut short. */
static hp_status join(char *out, size_t n, const char *a, const char *b, hp_error *err)
{
    int w = snprintf(out, n, "%s/%s", a, b);
    if (w < 0 || (size_t)w >= n)
        return hp_error_set(err, HP_ERR_INVALID, "report: the path %s/%s is too long", a, b);
    return HP_OK;
}

int hp_report_dir_latest_revision(const char *dir, hp_error *err)
{
    char path[PATH_MAX];
    if (join(path, sizeof path, dir, "revisions", err))
        return -1;
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
    hp_status st = join(path, sizeof path, dir, "report.fhir.json", err);
    if (st || (st = hp_report_write_fhir(report, signature, path, err)))
        return st;
    if ((st = join(path, sizeof path, dir, "report.html", err)))
        return st;
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

/* Leftovers of builds into `out` that were killed: OUT.partial-PID folders (removed when their
 * process has ended: common/output_dir.h) and OUT.old-PID, the unsigned report a build had moved
 * aside to put the new one in its place (put back when OUT is missing, else removed). Folders
 * that are not histoplan's, or whose process may still run, are left alone. */
static void reclaim_leftovers(const char *out)
{
    char *tmp = strdup(out), *tmp2 = strdup(out);
    if (!tmp || !tmp2) {
        free(tmp);
        free(tmp2);
        return;
    }
    const char *parent = dirname(tmp), *base = basename(tmp2);
    size_t bl = strlen(base);
    DIR *d = opendir(parent);
    while (d) {
        struct dirent *e = readdir(d);
        if (!e)
            break;
        const char *rest = NULL;
        int is_old = 0;
        if (!strncmp(e->d_name, base, bl) && !strncmp(e->d_name + bl, ".partial-", 9))
            rest = e->d_name + bl + 9;
        else if (!strncmp(e->d_name, base, bl) && !strncmp(e->d_name + bl, ".old-", 5))
            rest = e->d_name + bl + 5, is_old = 1;
        if (!rest || !*rest || strspn(rest, "0123456789") != strlen(rest) || strlen(rest) > 9)
            continue;
        char path[PATH_MAX];
        if (join(path, sizeof path, parent, e->d_name, NULL))
            continue;
        if (!is_old) {
            hp_output_dir_reclaim(path, HP_OUTPUT_KIND_REPORT);
        } else if (hp_output_pid_gone(strtol(rest, NULL, 10)) && hp_output_dir_is_kind(path, HP_OUTPUT_KIND_REPORT)) {
            struct stat sb;
            if (lstat(out, &sb) != 0 && errno == ENOENT)
                rename(path, out); /* killed between moving the old report aside and the new in */
            else
                hp_remove_tree(path);
        }
    }
    if (d)
        closedir(d);
    free(tmp);
    free(tmp2);
}

/* Findings without a case accession are refused unless the caller states that they belong to
 * this case: a report must not take in another patient's slide because nothing said otherwise. */
static hp_status check_case_assignment(const hp_report_build_opts *o, const hp_findings_input *fi, int *assigned,
                                       hp_error *err)
{
    *assigned = 0;
    for (int i = 0; i < o->n_findings; i++) {
        if (hp_fi_str(hp_fi_get(fi[i].root, "case"), "accession"))
            continue;
        if (!o->assign_case)
            return hp_error_set(err, HP_ERR_INVALID,
                                "findings %s carry no case accession (the slide was analyzed without --case), "
                                "so nothing shows they belong to this case; give --assign-case to state that "
                                "they do",
                                fi[i].path);
        (*assigned)++;
    }
    return HP_OK;
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
    char out[PATH_MAX], tmp[PATH_MAX] = "", path[PATH_MAX], aside[PATH_MAX];
    int tmp_made = 0, assigned = 0;
    hp_status st = HP_OK;
    if (!fi)
        return hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");

    /* "DIR/" names DIR: without the slash the temporaries land beside it, not inside. */
    size_t ol = strlen(o->out_dir);
    while (ol > 1 && o->out_dir[ol - 1] == '/')
        ol--;
    if (ol == 0 || ol >= sizeof out) {
        st = hp_error_set(err, HP_ERR_INVALID, "report: --out %s is %s", o->out_dir, ol ? "too long" : "empty");
        goto done;
    }
    memcpy(out, o->out_dir, ol);
    out[ol] = '\0';
    int wt = snprintf(tmp, sizeof tmp, "%s.partial-%ld", out, (long)getpid());
    int wa = snprintf(aside, sizeof aside, "%s.old-%ld", out, (long)getpid());
    if (wt < 0 || (size_t)wt >= sizeof tmp || wa < 0 || (size_t)wa >= sizeof aside) {
        tmp[0] = '\0';
        st = hp_error_set(err, HP_ERR_INVALID, "report: --out %s is too long", out);
        goto done;
    }
    reclaim_leftovers(out);

    /* A signed report is never rebuilt; an unsigned one only with --overwrite, and only when
     * histoplan made the folder. */
    struct stat sb;
    int exists = lstat(out, &sb) == 0;
    if (exists) {
        if (!S_ISDIR(sb.st_mode)) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s exists and is not a folder; refusing to replace it", out);
            goto done;
        }
        /* Signed means a revision on disk or a signature in the audit log: deleting revisions/
         * does not make a signed report rebuildable. */
        int rev = 0, is_signed = hp_report_signed(out, &rev, err);
        if (is_signed < 0) {
            st = err->code;
            goto done;
        }
        if (is_signed) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s holds a signed report (revision %d, in revisions/ or its audit log): a signed report "
                              "cannot be rebuilt or changed; amend it with `histoplan report sign %s --amend FILE`",
                              out, rev, out);
            goto done;
        }
        if (!o->overwrite) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s already exists; give --overwrite to replace its unsigned report",
                              out);
            goto done;
        }
        if (!hp_output_dir_is_kind(out, HP_OUTPUT_KIND_REPORT) && !hp_output_dir_is_empty(out)) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s is not a report folder made by histoplan (it has no %s marker); --overwrite "
                              "replaces only those, so its files are left as they are: choose another --out",
                              out, HP_OUTPUT_MARKER);
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
    if ((st = check_case_assignment(o, fi, &assigned, err)))
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

    if (mkdir(tmp, 0755)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    tmp_made = 1;
    if ((st = hp_output_dir_mark(tmp, HP_OUTPUT_KIND_REPORT, err)) || (st = join(path, sizeof path, tmp, "images", err)))
        goto done;
    if (mkdir(path, 0755)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s", path, strerror(errno));
        goto done;
    }
    char now[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), now);
    if ((st = hp_report_content_build(&cf, fi, o->n_findings, slides, &rules, tmp, now, &report, err)))
        goto done;
    char *text = cJSON_Print(report);
    if ((st = join(path, sizeof path, tmp, "report.json", err))) {
        free(text);
        goto done;
    }
    st = text ? hp_atomic_write_text(path, text, err) : hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
    free(text);
    if (st || (st = hp_report_render(report, NULL, tmp, tmp, err)))
        goto done;
    /* The build record: what report sign will hold the draft to (report/build_record.h). */
    char record_sha[65];
    if ((st = hp_build_record_write(tmp, report, now, record_sha, err)))
        goto done;

    /* The audit log: carried over from the report being replaced, then this build appended. */
    if ((st = join(path, sizeof path, tmp, "audit.jsonl", err)))
        goto done;
    if (exists) {
        char old[PATH_MAX];
        if ((st = join(old, sizeof old, out, "audit.jsonl", err)) || (st = copy_file(old, path, err)))
            goto done;
    }
    cJSON *details = cJSON_CreateObject();
    cJSON_AddStringToObject(details, "report_id", cJSON_GetObjectItemCaseSensitive(report, "report_id")->valuestring);
    cJSON_AddNumberToObject(details, "revision", 0);
    cJSON_AddStringToObject(details, "case_file_sha256", cf.sha256);
    cJSON *fl = cJSON_AddArrayToObject(details, "findings_sha256");
    for (int i = 0; i < o->n_findings; i++)
        cJSON_AddItemToArray(fl, cJSON_CreateString(fi[i].sha256));
    if (assigned) {
        /* Who said these belong to the case is the person who ran the build: keep which ones. */
        cJSON *al = cJSON_AddArrayToObject(details, "findings_assigned_to_case_sha256");
        for (int i = 0; i < o->n_findings; i++)
            if (!hp_fi_str(hp_fi_get(fi[i].root, "case"), "accession"))
                cJSON_AddItemToArray(al, cJSON_CreateString(fi[i].sha256));
    }
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
        struct stat ab;
        if (lstat(aside, &ab) == 0) {
            st = hp_error_set(err, HP_ERR_IO, "%s is in the way of replacing %s; move it away", aside, out);
            goto done;
        }
        if (rename(out, aside)) {
            st = hp_error_set(err, HP_ERR_IO, "%s: %s", out, strerror(errno));
            goto done;
        }
        if (rename(tmp, out)) {
            st = hp_error_set(err, HP_ERR_IO, "%s: %s", out, strerror(errno));
            rename(aside, out);
            goto done;
        }
        hp_remove_tree(aside);
    } else if (rename(tmp, out)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s", out, strerror(errno));
        goto done;
    }
    tmp_made = 0;
done:
    if (tmp_made)
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
