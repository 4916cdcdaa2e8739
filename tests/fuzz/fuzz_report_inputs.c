/* libFuzzer harness for the report's inputs. The first byte picks what the rest is, written to a
 * file (the loaders open paths):
 *   0  a case file          -> hp_case_file_load
 *   1  a findings.json      -> hp_findings_input_load, then the whole report content with a fixed
 *                              case and the shipped rule table, canonicalized and rendered to FHIR
 *                              and HTML. Beside the input lie an overlay (overlay.png, 256 x 256),
 *                              a symbolic link to it (linked.png) and a 2048 x 2048 slide (PNG)
 *                              given as the findings' slide, so the region boxes reach the
 *                              overlay crops and the tissue thumbnails read from the slide
 *   2  a care-plan rule table -> hp_care_rules_load, then applied to fixed facts
 *   3  a report.json        -> canonicalized, rendered to FHIR and HTML (as sign and verify do)
 * An error return is the expected outcome for most inputs, and its message must not be empty;
 * any crash, sanitizer report, leak or hang is a finding. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "io/slide.h"
#include "report/canonical_json.h"
#include "report/care_rules.h"
#include "report/case_file.h"
#include "report/findings_input.h"
#include "report/report_content.h"
#include "report/report_fhir.h"
#include "report/report_html.h"

static char g_dir[128], g_input[160], g_case[160], g_html[160];
static hp_case_file g_cf;
static hp_care_rules g_rules;
static hp_slide *g_slide;

/* A smooth RGB image of w x h with some structure, written as PNG. */
static int write_image(const char *path, int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / w);
            p[1] = (uint8_t)(y * 255 / h);
            p[2] = (uint8_t)(((x / 32) ^ (y / 32)) & 1 ? 200 : 60);
        }
    hp_error err = {0};
    hp_status st = hp_image_write_png(path, rgb, w, h, &err);
    free(rgb);
    return st == HP_OK ? 0 : -1;
}

static void need_message(hp_status st, const hp_error *err)
{
    if (st != HP_OK && !err->msg[0])
        abort(); /* every failure must say why */
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    return off == size ? 0 : -1;
}

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/dev/shm/hp_fuzz_report_%d", (int)getpid());
    mkdir(g_dir, 0700);
    char images[200];
    snprintf(images, sizeof images, "%s/images", g_dir);
    mkdir(images, 0700);
    snprintf(g_input, sizeof g_input, "%s/input.json", g_dir);
    snprintf(g_case, sizeof g_case, "%s/case.json", g_dir);
    snprintf(g_html, sizeof g_html, "%s/report.html", g_dir);
    static const char case_json[] =
        "{\"accession\":\"S26-0042\",\"clinical\":{\"age_years\":44,\"birads\":5,\"history\":[\"BRCA1\"]},"
        "\"preferences\":[\"fertility\"]}";
    hp_error err = {0};
    char overlay[200], linked[200], slide[200];
    snprintf(overlay, sizeof overlay, "%s/overlay.png", g_dir);
    snprintf(linked, sizeof linked, "%s/linked.png", g_dir);
    snprintf(slide, sizeof slide, "%s/slide.png", g_dir);
    unlink(linked);
    if (write_image(overlay, 256, 256) || symlink("overlay.png", linked) || write_image(slide, 2048, 2048) ||
        !(g_slide = hp_slide_open(slide, NULL, &err))) {
        fprintf(stderr, "fuzz_report_inputs: setup of the images failed: %s\n", err.msg);
        abort();
    }
    if (write_file(g_case, (const uint8_t *)case_json, sizeof case_json - 1) ||
        hp_case_file_load(g_case, &g_cf, &err) || hp_care_rules_load(hp_care_rules_default_path(), &g_rules, &err)) {
        fprintf(stderr, "fuzz_report_inputs: setup failed: %s\n", err.msg);
        abort();
    }
}

static void render(const cJSON *report)
{
    hp_error err = {0};
    size_t len = 0;
    char *canon = hp_json_canonicalize(report, &len, &err);
    need_message(canon ? HP_OK : HP_ERR_INVALID, &err);
    free(canon);
    hp_error_clear(&err);
    cJSON *bundle = hp_report_fhir_bundle(report, NULL, &err);
    need_message(bundle ? HP_OK : HP_ERR_INVALID, &err);
    cJSON_Delete(bundle);
    hp_error_clear(&err);
    need_message(hp_report_write_html(report, g_dir, g_html, &err), &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dir[0])
        setup();
    if (size < 1 || write_file(g_input, data + 1, size - 1))
        return 0;
    hp_error err = {0};
    switch (data[0] % 4) {
    case 0: {
        hp_case_file cf;
        need_message(hp_case_file_load(g_input, &cf, &err), &err);
        hp_case_file_free(&cf);
        break;
    }
    case 1: {
        hp_findings_input fi;
        hp_status st = hp_findings_input_load(g_input, &fi, &err);
        need_message(st, &err);
        if (st == HP_OK) {
            cJSON *report = NULL;
            hp_slide *slides[1] = {g_slide};
            st = hp_report_content_build(&g_cf, &fi, 1, slides, &g_rules, g_dir, "2026-01-01T00:00:00Z", &report,
                                         &err);
            need_message(st, &err);
            if (report)
                render(report);
            cJSON_Delete(report);
        }
        hp_findings_input_free(&fi);
        break;
    }
    case 2: {
        hp_care_rules rules;
        hp_status st = hp_care_rules_load(g_input, &rules, &err);
        need_message(st, &err);
        if (st == HP_OK) {
            cJSON *plan = cJSON_CreateObject();
            need_message(hp_care_rules_apply(&rules, g_cf.facts, NULL, plan, &err), &err);
            cJSON_Delete(plan);
        }
        hp_care_rules_free(&rules);
        break;
    }
    default: {
        cJSON *report = cJSON_ParseWithLength((const char *)data + 1, size - 1);
        if (report)
            render(report);
        cJSON_Delete(report);
        break;
    }
    }
    return 0;
}
