/* findings.json writer: a full slide (two classes with regions, evidence tiles, QC flags, unknown
 * objective power, a NaN uncertainty value) and an all-background slide are written and read
 * back; bad values are refused with the field named and leave nothing behind; a missing folder
 * fails with the path named.
 *
 * The two files are also the fixtures that tests/scripts/test_findings_schema.py validates
 * against the schema: `test_findings --write DIR` writes just them (DIR/full.json and
 * DIR/empty.json); without arguments they go to $HP_BUILD_DIR/findings-fixture/ as well. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/findings.h"
#include "pipeline/tissue.h"
#include "util/testutil.h"

static int passed;

#define OK(cond)          \
    do {                  \
        CHECK(cond);      \
        passed += !!(cond); \
    } while (0)

static char *sdup(const char *s) { return s ? strdup(s) : NULL; }

static void fill_card(hp_card *c, const char *const *classes, int n)
{
    c->name = sdup("histoplan-test-model");
    c->version = sdup("0.3.1");
    c->n_classes = n;
    for (int i = 0; i < n; i++)
        c->classes[i] = sdup(classes[i]);
    c->input_h = c->input_w = 224;
    c->has_norm = 1;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    memcpy(c->mean, mean, sizeof mean);
    memcpy(c->std, sd, sizeof sd);
    c->mpp = 0.5;
    c->sha256 = sdup("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    /* Quotes, a backslash, a newline and non-ASCII text: cJSON must escape them. */
    c->training_data = sdup("Synthetic tiles from \"histoplan synth\"\n(seeds 1101-1103) \\ caf\xc3\xa9");
    c->intended_use = sdup("Demonstration of the pipeline; not a diagnostic model.");
    c->metrics_json = sdup("{\"held_out_accuracy\":0.91,\"dice\":{\"invasive\":0.88}}");
    c->license = sdup("CC0-1.0");
    c->not_for_diagnosis = 1;
}

static void fill_common(hp_findings *f)
{
    hp_findings_init(f);
    f->slide_id = sdup("3f2a9c01b7de");
    memcpy(f->sha256, "3f2a9c01b7de5566778899aabbccddeeff00112233445566778899aabbccddee", 65);
    f->format = sdup("aperio");
    f->width_px = 46000;
    f->height_px = 32914;
    f->level_count = 3;
    f->mpp_x = 0.4990;
    f->mpp_y = 0.4990;
    f->mpp_source = sdup("openslide");
    f->generated_at = 1795000000; /* fixed, so the fixture is the same bytes every run */
    memcpy(f->model_sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 65);
    f->backend = sdup("cpu");
    f->precision = sdup("fp32");
    f->target_mpp = 0.5;
    f->tile_size_px = 224;
    f->tile_size_level0 = 224 * 0.5 / 0.499;
    f->level = 0;
    f->grid_w = 206;
    f->grid_h = 148;
    f->tiles_total = f->grid_w * f->grid_h;
    f->tissue_threshold = 0.5;
    f->batch_size = 32;
    f->region_threshold = 0.5;
    f->min_region_tiles = 2;
    f->smoothing_sigma_tiles = 1.0;
    f->entropy_threshold = 0.6;
    f->mask_png = sdup("mask.png");
    f->overlay_png = sdup("overlay.png");
    f->uncertainty_png = sdup("uncertainty.png");
    f->t_open = 0.21;
    f->t_tissue = 0.8;
    f->t_tiling = 0.01;
    f->t_writing = 0.05;
}

static hp_findings_region region(int id, const char *cls, double area, double diam, int ntiles,
                                 int feature, int nev, double tile0)
{
    hp_findings_region r = {.id = id, .cls = sdup(cls), .area_mm2 = area, .diameter_mm = diam,
                            .tile_count = ntiles, .mean_prob = 0.81, .max_prob = 0.97,
                            .bbox_level0 = {tile0 * 224.4, 1122.0, 673.3, 448.9},
                            .centroid_level0 = {tile0 * 224.4 + 336.7, 1346.4},
                            .feature_index = feature, .n_evidence = nev};
    r.evidence = calloc((size_t)nev, sizeof *r.evidence);
    for (int k = 0; k < nev && r.evidence; k++)
        r.evidence[k] = (hp_findings_tile){.index = 5 * 206 + (int64_t)tile0 + k,
                                           .x = (tile0 + k) * 224.4488977955912,
                                           .y = 5 * 224.4488977955912,
                                           .size = 224.4488977955912, .prob = 0.97 - 0.01 * k};
    return r;
}

/* Two classes with regions (in situ and invasive), QC flags, unknown objective power, a NaN
 * uncertainty value. */
static void fill_full(hp_findings *f)
{
    static const char *const classes[] = {"normal", "benign", "in situ", "invasive"};
    fill_common(f);
    fill_card(&f->card, classes, 4);
    f->objective_power = 0; /* unknown, as hp_slide_objective_power says it */
    f->accession = sdup("S26-001234");
    f->tiles_analysed = 4120;
    f->tissue_area_mm2 = 232.71;
    f->tissue_fraction = 0.6188;
    f->analysed_area_mm2 = 4120 * 0.0126;
    f->qc_flags = HP_QC_PEN_MARKS | HP_QC_BLUR;
    f->pen_fraction = 0.031;
    f->brown_fraction = 0.002;
    f->blur_score = 0.17;
    f->blur_regions_read = 4;
    f->n_classes = 4;
    f->classes = calloc(4, sizeof *f->classes);
    const int64_t tiles[4] = {2900, 700, 320, 200};
    for (int i = 0; i < 4; i++) {
        hp_findings_class *c = &f->classes[i];
        c->name = sdup(classes[i]);
        char p[64];
        snprintf(p, sizeof p, "heatmap_%s.png", i == 2 ? "in_situ" : classes[i]);
        c->heatmap_png = sdup(p);
        c->tile_count = tiles[i];
        c->area_mm2 = tiles[i] * 0.0126;
        c->fraction_of_tissue = (double)tiles[i] / 4120;
    }
    /* 0.1 + 0.2 is not 0.3 in binary: it must read back as the same double. */
    f->n_regions = 3;
    f->regions = calloc(3, sizeof *f->regions);
    f->regions[0] = region(1, "in situ", 0.1 + 0.2, 1.25, 24, 0, 3, 10);
    f->regions[1] = region(2, "invasive", 2.52, 2.9041, 200, 1, HP_FINDINGS_EVIDENCE_MAX, 40);
    f->regions[2] = region(3, "invasive", 0.0252, 0.2244, 2, 2, 2, 80);
    f->classes[2].region_count = 1;
    f->classes[2].largest_region_id = 1;
    f->classes[2].largest_area_mm2 = 0.1 + 0.2;
    f->classes[2].largest_diameter_mm = 1.25;
    f->classes[3].region_count = 2;
    f->classes[3].largest_region_id = 2;
    f->classes[3].largest_area_mm2 = 2.52;
    f->classes[3].largest_diameter_mm = 2.9041;
    f->in_situ = (hp_findings_extent){.cls = sdup("in situ"), .total_area_mm2 = 0.1 + 0.2,
                                      .extent_mm = 1.25, .largest_diameter_mm = 1.25,
                                      .largest_region_id = 1, .region_count = 1};
    f->invasive = (hp_findings_extent){.cls = sdup("invasive"), .total_area_mm2 = 2.5452,
                                       .extent_mm = 9.87, .largest_diameter_mm = 2.9041,
                                       .largest_region_id = 2, .region_count = 2};
    f->mean_entropy = 0.31;
    f->max_entropy = NAN; /* e.g. a reduction that met a NaN: must become null, not "nan" */
    f->fraction_uncertain = 0.07;
    f->heatmap_tiff = sdup("heatmap.tiff");
    f->regions_geojson = sdup("regions.geojson");
    f->regions_xml = sdup("regions.xml");
    f->tiles_csv = sdup("tiles.csv");
    f->t_inference = 61.5;
    f->t_heatmap = 0.4;
    f->t_regions = 0.02;
    f->t_total = 63.0;
}

/* An all-background slide: no tissue, nothing analysed, no regions; the model has no in situ
 * class (so in_situ_extent is null) and the run had no inference to time. */
static void fill_empty(hp_findings *f)
{
    static const char *const classes[] = {"benign", "invasive"};
    fill_common(f);
    fill_card(&f->card, classes, 2);
    free(f->card.metrics_json);
    f->card.metrics_json = NULL;
    f->card.has_norm = 0;
    f->card.input_h = f->card.input_w = 0;
    f->card.mpp = 0;
    f->objective_power = 20;
    f->qc_flags = HP_QC_LOW_TISSUE;
    f->blur_score = NAN; /* nothing to sample */
    f->n_classes = 2;
    f->classes = calloc(2, sizeof *f->classes);
    for (int i = 0; i < 2; i++) {
        f->classes[i].name = sdup(classes[i]);
        f->classes[i].fraction_of_tissue = NAN; /* 0 / 0 */
    }
    f->invasive = (hp_findings_extent){.cls = sdup("invasive")}; /* assessed, absent */
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, fp) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(fp);
    return s;
}

/* Entries of dir other than "." and ".." (temporaries would show up here). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static const cJSON *at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

static int write_fixtures(const char *dir, char *full_path, char *empty_path, size_t n)
{
    hp_error err = {0};
    hp_findings f;
    snprintf(full_path, n, "%s/full.json", dir);
    snprintf(empty_path, n, "%s/empty.json", dir);
    fill_full(&f);
    hp_status st = hp_findings_write(&f, full_path, &err);
    hp_findings_free(&f);
    if (!st) {
        fill_empty(&f);
        st = hp_findings_write(&f, empty_path, &err);
        hp_findings_free(&f);
    }
    if (st)
        fprintf(stderr, "test_findings: %s\n", err.msg);
    return st;
}

static void check_full(const char *path)
{
    char *text = slurp(path);
    OK(text != NULL);
    cJSON *j = cJSON_Parse(text ? text : "");
    OK(j != NULL);
    OK(cJSON_IsNull(at(j, "slide", "objective_power")));
    OK(cJSON_IsNull(at(j, "uncertainty", "max_entropy")));
    OK(cJSON_GetNumberValue(at(j, "uncertainty", "mean_entropy")) == 0.31);
    /* cJSON_Parse above already refuses nan and inf; this names the cause if that changes. */
    OK(text && !strstr(text, "\tnan") && !strstr(text, "\t-nan") && !strstr(text, "\tinf") &&
       !strstr(text, "\t-inf") && !strstr(text, "NaN"));
    OK(!strcmp(cJSON_GetStringValue(at(j, "research_use_notice", NULL)),
               HP_FINDINGS_RESEARCH_NOTICE));
    OK(!strcmp(cJSON_GetStringValue(at(j, "generated_at", NULL)), "2026-11-18T11:06:40Z"));
    OK(!strcmp(cJSON_GetStringValue(at(j, "histoplan_version", NULL)), HP_VERSION));
    const cJSON *regions = at(j, "regions", NULL);
    OK(cJSON_GetArraySize(regions) == 3);
    const cJSON *r0 = cJSON_GetArrayItem(regions, 0);
    OK(cJSON_GetNumberValue(at(r0, "area_mm2", NULL)) == 0.1 + 0.2); /* exact round trip */
    const cJSON *ev = cJSON_GetArrayItem(at(cJSON_GetArrayItem(regions, 1), "evidence_tiles", NULL), 0);
    OK(cJSON_GetNumberValue(at(ev, "size", NULL)) == 224.4488977955912);
    OK(cJSON_GetArraySize(at(cJSON_GetArrayItem(regions, 1), "evidence_tiles", NULL)) ==
       HP_FINDINGS_EVIDENCE_MAX);
    OK(cJSON_GetNumberValue(at(at(r0, "polygon_ref", NULL), "feature_index", NULL)) == 0);
    const cJSON *flags = at(j, "qc", "flags");
    OK(cJSON_GetArraySize(flags) == 2);
    OK(!strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(flags, 0)), "pen-marks"));
    OK(!strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(flags, 1)), "blur"));
    OK(cJSON_IsString(at(at(j, "qc", "flag_descriptions"), "blur", NULL)));
    const cJSON *card = at(j, "model", "card");
    OK(!strcmp(cJSON_GetStringValue(at(card, "training_data", NULL)),
               "Synthetic tiles from \"histoplan synth\"\n(seeds 1101-1103) \\ caf\xc3\xa9"));
    OK(cJSON_GetNumberValue(cJSON_GetArrayItem(at(card, "normalization", "mean"), 0)) == 0.485);
    OK(cJSON_GetNumberValue(at(at(card, "metrics", NULL), "held_out_accuracy", NULL)) == 0.91);
    OK(!strcmp(cJSON_GetStringValue(at(at(j, "outputs", "heatmaps"), "in situ", NULL)),
               "heatmap_in_situ.png"));
    OK(cJSON_GetNumberValue(at(j, "invasive", "largest_focus_diameter_mm")) == 2.9041);
    const char *lr = cJSON_GetStringValue(at(j, "in_situ_extent", "largest_region_id"));
    const char *r2 = cJSON_GetStringValue(at(cJSON_GetArrayItem(at(j, "regions", NULL), 1), "id", NULL));
    OK(lr && !strcmp(lr, "R1")); /* region ids are written R<n> */
    OK(r2 && !strcmp(r2, "R2"));
    OK(!strcmp(cJSON_GetStringValue(at(j, "case", "accession")), "S26-001234"));
    cJSON_Delete(j);
    free(text);
}

static void check_empty(const char *path)
{
    char *text = slurp(path);
    cJSON *j = cJSON_Parse(text ? text : "");
    OK(j != NULL);
    OK(cJSON_GetArraySize(at(j, "regions", NULL)) == 0);
    OK(cJSON_IsNull(at(j, "in_situ_extent", NULL)));
    OK(cJSON_IsNull(at(j, "invasive", "largest_region_id")));
    OK(cJSON_GetNumberValue(at(j, "invasive", "region_count")) == 0);
    const cJSON *c0 = cJSON_GetArrayItem(at(j, "classes", NULL), 0);
    OK(cJSON_IsNull(at(c0, "fraction_of_tissue", NULL)));
    OK(cJSON_IsNull(at(c0, "largest_focus", NULL)));
    OK(cJSON_IsNull(at(j, "uncertainty", "mean_entropy")));
    OK(cJSON_IsNull(at(j, "qc", "details")) == 0 &&
       cJSON_IsNull(at(at(j, "qc", "details"), "blur_score", NULL)));
    OK(cJSON_IsNull(at(j, "case", "accession")));
    OK(cJSON_IsNull(at(j, "outputs", "regions_geojson")));
    OK(cJSON_GetArraySize(at(j, "outputs", "heatmaps")) == 0);
    OK(cJSON_IsNull(at(at(j, "model", "card"), "normalization", NULL)));
    OK(cJSON_IsNull(at(at(j, "model", "card"), "metrics", NULL)));
    OK(cJSON_GetNumberValue(at(j, "slide", "objective_power")) == 20);
    cJSON_Delete(j);
    free(text);
}

typedef void (*spoil_fn)(hp_findings *f);

static void spoil_area(hp_findings *f) { f->regions[1].area_mm2 = NAN; }
static void spoil_total(hp_findings *f) { f->t_total = INFINITY; }
static void spoil_id(hp_findings *f)
{
    free(f->slide_id);
    f->slide_id = sdup("patient_smith.svs");
}
static void spoil_path(hp_findings *f)
{
    free(f->tiles_csv);
    f->tiles_csv = sdup("../other-slide/tiles.csv");
}
static void spoil_prob(hp_findings *f) { f->regions[0].evidence[2].prob = 1.5; }
static void spoil_evidence(hp_findings *f) { f->regions[0].n_evidence = HP_FINDINGS_EVIDENCE_MAX + 1; }
static void spoil_qc(hp_findings *f) { f->qc_flags |= 1u << 20; }
static void spoil_class(hp_findings *f)
{
    free(f->regions[2].cls);
    f->regions[2].cls = sdup("carcinoma");
}
static void spoil_order(hp_findings *f) { f->regions[2].id = 2; }
static void spoil_ref(hp_findings *f) { f->invasive.largest_region_id = 9; }
static void spoil_hash(hp_findings *f) { f->sha256[5] = 'G'; }
static void spoil_negative(hp_findings *f) { f->classes[0].area_mm2 = -1; }

/* Each bad value is refused, the message names the field, and the folder stays empty. */
static void check_refusals(const char *dir)
{
    static const struct {
        spoil_fn fn;
        const char *field;
    } cases[] = {
        {spoil_area, "regions[1].area_mm2"},
        {spoil_total, "timings_s.total"},
        {spoil_id, "slide.slide_id"},
        {spoil_path, "outputs.tiles_csv"},
        {spoil_prob, "regions[0].evidence_tiles[2].prob"},
        {spoil_evidence, "regions[0].evidence_tiles"},
        {spoil_qc, "qc.flags"},
        {spoil_class, "regions[2].class"},
        {spoil_order, "regions[2].id"},
        {spoil_ref, "invasive.largest_region_id"},
        {spoil_hash, "slide.sha256"},
        {spoil_negative, "classes[0].area_mm2"},
    };
    char path[4200];
    snprintf(path, sizeof path, "%s/findings.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hp_findings f;
        hp_error err = {0};
        fill_full(&f);
        cases[i].fn(&f);
        hp_status st = hp_findings_write(&f, path, &err);
        hp_findings_free(&f);
        CHECK_MSG(st == HP_ERR_INVALID, "case %s: status %d", cases[i].field, st);
        CHECK_MSG(strstr(err.msg, cases[i].field) && strstr(err.msg, path),
                  "case %s: message \"%s\"", cases[i].field, err.msg);
        passed += st == HP_ERR_INVALID && strstr(err.msg, cases[i].field) != NULL;
        OK(count_entries(dir) == 0);
    }
}

/* A missing folder fails naming the path; a failure at rename time (the target is a folder)
 * leaves no temporary behind. */
static void check_io_failures(const char *dir)
{
    char path[4200];
    hp_findings f;
    hp_error err = {0};
    fill_full(&f);
    snprintf(path, sizeof path, "%s/missing/findings.json", dir);
    OK(hp_findings_write(&f, path, &err) == HP_ERR_IO);
    CHECK_MSG(strstr(err.msg, path) != NULL, "message \"%s\"", err.msg);
    passed += strstr(err.msg, path) != NULL;
    OK(count_entries(dir) == 0);

    hp_error_clear(&err);
    snprintf(path, sizeof path, "%s/findings.json", dir);
    OK(mkdir(path, 0755) == 0);
    OK(hp_findings_write(&f, path, &err) == HP_ERR_IO);
    OK(strstr(err.msg, path) != NULL);
    OK(count_entries(dir) == 1); /* the folder itself, no temporary */
    rmdir(path);

    OK(hp_findings_write(&f, NULL, &err) == HP_ERR_INVALID);
    OK(hp_findings_write(NULL, path, &err) == HP_ERR_INVALID);
    hp_findings_free(&f);
    hp_findings_free(NULL);
    hp_findings_init(&f);
    hp_findings_free(&f); /* an empty struct frees cleanly */
    OK(isnan(f.blur_score));
}

static int make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

int main(int argc, char **argv)
{
    char full[4200], empty[4200];
    if (argc == 3 && !strcmp(argv[1], "--write"))
        return write_fixtures(argv[2], full, empty, sizeof full) ? 1 : 0;
    if (argc != 1) {
        fprintf(stderr, "usage: test_findings [--write DIR]\n");
        return 2;
    }

    /* Fixtures for test_findings_schema.py: kept under the build folder. */
    char fixdir[4096];
    snprintf(fixdir, sizeof fixdir, "%s/findings-fixture", hp_test_env("HP_BUILD_DIR", "."));
    OK(make_dir(fixdir));
    OK(write_fixtures(fixdir, full, empty, sizeof full) == HP_OK);
    check_full(full);
    check_empty(empty);
    /* The same struct gives the same bytes (generated_at fixed): reports can be diffed. */
    char again[4200];
    snprintf(again, sizeof again, "%s/again", fixdir);
    OK(make_dir(again));
    char full2[4200], empty2[4200];
    OK(write_fixtures(again, full2, empty2, sizeof full2) == HP_OK);
    char *a = slurp(full), *b = slurp(full2);
    OK(a && b && !strcmp(a, b));
    free(a);
    free(b);
    unlink(full2);
    unlink(empty2);
    rmdir(again);

    char tmpl[] = "/tmp/hp_findings_XXXXXX";
    char *dir = mkdtemp(tmpl);
    OK(dir != NULL);
    if (dir) {
        check_refusals(dir);
        check_io_failures(dir);
        rmdir(dir);
    }
    return hp_test_finish("test_findings", passed);
}
