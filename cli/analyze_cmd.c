/* `histoplan analyze`: options, the slide list and the model, then the batch
 * (cli/analyze_batch.h) runs pipeline/analyze.h over each slide; a failure in one slide is
 * recorded (terminal and OUT/batch-summary.json) and the rest still run. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/analyze_batch.h"
#include "cli/commands.h"
#include "cli/manifest.h"
#include "cli/options.h"
#include "cli/slide_list.h"
#include "cli/sr_models.h"
#include "common/sha256.h"
#include "io/atomic_file.h"
#include "io/slide.h"
#include "models/model.h"
#include "models/zoo.h"
#include "pipeline/analyze.h"
#include "pipeline/analyze_stain.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan analyze SLIDE... [options]\n"
            "       histoplan analyze --recursive FOLDER... [options]\n"
            "       histoplan analyze --manifest FILE [--shard I/N] [options]\n"
            "\n"
            "Finds the tissue, runs the model over its tiles and writes, for each slide, the folder\n"
            "OUT/<slide-id>/: heatmap_<class>.png, overlay.png, mask.png, uncertainty.png (each\n"
            "with a legend: key, scale bar, slide id), heatmap.tiff, regions.geojson (QuPath),\n"
            "regions.xml (ASAP), tiles.geojson (every tile as a QuPath detection with its class\n"
            "probabilities), tiles.csv, run.json (what the result was made from) and findings.json\n"
            "(written last; the folder is built as <slide-id>.partial and renamed when complete).\n"
            "The slide id never repeats the file name. OUT/batch-summary.json records every slide\n"
            "(always written, also after a signal). For research use, not diagnosis.\n"
            "\n"
            "options:\n"
            "  -m, --model M.onnx  model with its card beside it (default: the zoo's\n"
            "                      " HP_DEFAULT_MODEL ", from $HP_MODEL_DIR,\n"
            "                      <bin>/../share/histoplan/zoo, the source tree's models/zoo\n"
            "                      or the installed zoo)\n"
            "  --backend cpu|cuda  default cpu\n"
            "  --mpp X             microns per pixel at level 0, overriding the slide's\n"
            "  -o, --out DIR       output folder (default: out); several runs, or cluster jobs on a\n"
            "                      shared file system, may use one OUT at the same time: each slide\n"
            "                      is analysed once, and batch-summary.json gathers them all\n"
            "  -r, --recursive     a FOLDER argument stands for the slide files under it (.svs,\n"
            "                      .tif, .tiff, .ndpi, .mrxs, .scn, .bif, .vms, .png, .jpg, ...);\n"
            "                      without it a folder is refused\n"
            "  --manifest FILE     the slides of a cohort instead of arguments: CSV with the header\n"
            "                      path,slide_id,case[,mpp] or JSON lines with those keys; a\n"
            "                      relative path is taken from the manifest's folder; see\n"
            "                      docs/cluster.md. The manifest is recorded in\n"
            "                      OUT/batch-manifest.json for `histoplan batch merge OUT`\n"
            "  --shard I/N         with --manifest: only shard I of N (1 <= I <= N), chosen by a\n"
            "                      hash of the slide id, so shards never overlap, together hold\n"
            "                      every slide, and adding lines moves no other slide\n"
            "  --slide-id ID       folder and findings id (one slide only; A-Z a-z 0-9 _ -)\n"
            "  --case ACCESSION    case accession recorded in findings.json\n"
            "  --overwrite         rerun a slide whose folder holds a completed result, and replace\n"
            "                      it. Without it, a completed result of the same slide, model and\n"
            "                      options is kept (the slide is skipped: a rerun resumes a batch),\n"
            "                      and one made from anything else is refused, naming what differs\n"
            "  --sr auto|off|M.onnx\n"
            "                      super-resolution of tiles when the slide is 1.5x or more coarser\n"
            "                      than the model: auto picks the zoo's faithful model whose scale\n"
            "                      fits (" HP_SR_ZOO_X2 ", " HP_SR_ZOO_X4 "),\n"
            "                      M.onnx names one (its card says \"task\": \"super-resolution\");\n"
            "                      off (the default) upsamples by interpolation. Super-resolved\n"
            "                      evidence is marked in findings.json, tiles.csv, the heatmaps,\n"
            "                      the report and the viewer. For research use (docs/superres.md)\n"
            "  --sr-precision P    fp32 (default); fp16 or bf16 runs the super-resolution model\n"
            "                      in half precision with --backend cuda (recorded in\n"
            "                      findings.json; docs/superres.md gives its error)\n"
            "  --allow-derived     analyze a super-resolved slide (histoplan upscale), which is\n"
            "                      refused otherwise: it is not a scanned image\n"
            "  -j, --threads N     tile reader threads (default: all CPUs; results do not change)\n"
            "  -b, --batch N       tiles per model batch (default 16)\n"
            "  --mask MASK.png     tissue mask to use instead of the detection (PNG, JPEG or\n"
            "                      TIFF covering the whole slide at any downsample, e.g. from\n"
            "                      QuPath; luminance >= 128 is tissue)\n"
            "  --roi X,Y,W,H       analyse only this level-0 rectangle (pixels)\n"
            "  --stain macenko|reinhard\n"
            "                      normalize each slide's stain to --stain-target before the\n"
            "                      model (the slide's own stain is fitted on up to %d of its\n"
            "                      tissue tiles; a slide that cannot be fitted fails)\n"
            "  --stain-target REF  a reference image (PNG, JPEG, TIFF), or stored parameters\n"
            "                      (a .json file: {\"method\", \"stain_matrix\", \"max_conc\"} or\n"
            "                      {\"method\", \"mean\", \"std\"})\n"
            "  --json              one JSON line per slide event on stdout (start, done, skipped,\n"
            "                      failed, interrupted, not-started) and a summary line last\n"
            "  -h, --help          this text\n"
            "\n"
            "A slide coarser than the model's resolution (tiles upsampled more than 1.25x) is\n"
            "analysed with a warning, on the terminal and in findings.json, unless --sr\n"
            "super-resolves its tiles. SIGINT or SIGTERM stops the current slide (recorded as interrupted),\n"
            "writes the summary and exits; a second signal ends at once.\n"
            "\n"
            "exit status: 0 every slide analysed or skipped, 1 some slides failed, 2 bad usage,\n"
            "3 nothing ran (the model, the stain target, the manifest or the output folder cannot\n"
            "be used; a manifest with a bad line is bad usage, 2, naming the line and field),\n"
            "130 stopped by SIGINT, 143 stopped by SIGTERM\n",
            HP_ANALYZE_STAIN_FIT_TILES);
}

/* X,Y,W,H: four integers, X and Y >= 0, W and H > 0. */
static int parse_roi(const char *s, int64_t v[4])
{
    const char *q = s;
    for (int k = 0; k < 4; k++) {
        char *end;
        if (*q < '0' || *q > '9')
            return -1; /* no sign, no space, no empty field */
        errno = 0;
        long long x = strtoll(q, &end, 10);
        if (errno || end == q || x > (1LL << 40) || (k >= 2 && x <= 0))
            return -1;
        v[k] = x;
        if (k < 3 && *end != ',')
            return -1;
        if (k == 3 && *end)
            return -1;
        q = end + 1;
    }
    return 0;
}

/* OUT exists (made when absent, its parent must exist) and can be written; else nothing can
 * run. */
static int prepare_out(const char *out)
{
    struct stat st;
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        hp_cli_fail("analyze", "cannot create the output folder %s: %s", out, strerror(errno));
        return -1;
    }
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        hp_cli_fail("analyze", "--out %s is not a folder", out);
        return -1;
    }
    if (access(out, W_OK | X_OK) != 0) {
        hp_cli_fail("analyze", "cannot write into the output folder %s: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

/* A manifest run (--manifest): the manifest and, per slide of the shard, the values the batch
 * uses instead of the options' (they point into m). */
typedef struct {
    hp_manifest m;
    const char **ids, **cases;
    double *mpps;
    char shard[24]; /* "I/N", or "" without --shard */
} manifest_run;

/* The manifest stage: the slides of shard `si`/`sn` (all when sn is 0) as the batch's slide
 * list and per-slide values. Returns 0, HP_EXIT_USAGE for a bad manifest, HP_EXIT_NOT_RUN for
 * one that cannot be read, HP_EXIT_FAILED when out of memory. */
static int manifest_stage(const char *file, int si, int sn, hp_cli_slide_list *sl, manifest_run *mr)
{
    hp_error err = {0};
    if (hp_cli_refuse_dir("analyze", file, "a manifest (--manifest)"))
        return HP_EXIT_USAGE;
    if (hp_manifest_load(file, &mr->m, &err) != HP_OK) {
        hp_cli_fail("analyze", "%s", err.msg);
        return err.code == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_NOT_RUN;
    }
    size_t n = (size_t)mr->m.n + 1;
    mr->ids = calloc(n, sizeof *mr->ids);
    mr->cases = calloc(n, sizeof *mr->cases);
    mr->mpps = calloc(n, sizeof *mr->mpps);
    if (!mr->ids || !mr->cases || !mr->mpps) {
        hp_cli_fail("analyze", "out of memory");
        return HP_EXIT_FAILED;
    }
    if (sn)
        snprintf(mr->shard, sizeof mr->shard, "%d/%d", si, sn);
    for (int i = 0; i < mr->m.n; i++) {
        const hp_manifest_row *r = &mr->m.rows[i];
        if (sn && hp_manifest_shard_of(r->slide_id, sn) != si)
            continue;
        mr->ids[sl->n] = r->slide_id;
        mr->cases[sl->n] = r->case_id;
        mr->mpps[sl->n] = r->mpp;
        if (hp_cli_slide_list_add(sl, r->path, 0))
            return HP_EXIT_FAILED;
    }
    if (sn)
        fprintf(stderr, "histoplan analyze: shard %s: %d of the %d slides of %s\n", mr->shard, sl->n, mr->m.n, file);
    return 0;
}

/* OUT/batch-manifest.json: which manifest the runs into OUT came from (its absolute path and
 * hash; never the slides' paths), for `histoplan batch merge OUT`. */
static int record_manifest(const char *out, const char *file, const manifest_run *mr, int sn)
{
    char abs[PATH_MAX], path[PATH_MAX + 32];
    hp_error err = {0};
    if (strlen(out) >= PATH_MAX) {
        hp_cli_fail("analyze", "the output folder's name is longer than %d bytes", PATH_MAX - 1);
        return -1;
    }
    if (!realpath(file, abs))
        snprintf(abs, sizeof abs, "%s", file);
    snprintf(path, sizeof path, "%s/batch-manifest.json", out);
    cJSON *doc = cJSON_CreateObject();
    char *text = NULL;
    if (doc && cJSON_AddNumberToObject(doc, "schema_version", 1) && cJSON_AddStringToObject(doc, "manifest", abs) &&
        cJSON_AddStringToObject(doc, "manifest_sha256", mr->m.sha256) &&
        cJSON_AddNumberToObject(doc, "slides", mr->m.n) && cJSON_AddNumberToObject(doc, "shards", sn ? sn : 1))
        text = cJSON_Print(doc);
    hp_status st = text ? hp_atomic_write_text(path, text, &err) : hp_error_set(&err, HP_ERR_NOMEM, "out of memory");
    cJSON_Delete(doc);
    free(text);
    if (st != HP_OK) {
        hp_cli_fail("analyze", "%s", err.msg);
        return -1;
    }
    return 0;
}

int hp_cli_analyze(int argc, char **argv)
{
    enum { O_MODEL = 1, O_BACKEND, O_MPP, O_MASK, O_ROI, O_STAIN, O_STAIN_TARGET, O_OUT, O_SLIDE_ID, O_CASE,
           O_THREADS, O_BATCH, O_OVERWRITE, O_RECURSIVE, O_JSON, O_MANIFEST, O_SHARD, O_ALLOW_DERIVED, O_SR,
           O_SR_PRECISION };
    static const hp_cli_option opts[] = {
        {"model", 'm', 1, O_MODEL},       {"backend", 0, 1, O_BACKEND},   {"mpp", 0, 1, O_MPP},
        {"mask", 0, 1, O_MASK},           {"roi", 0, 1, O_ROI},           {"stain", 0, 1, O_STAIN},
        {"stain-target", 0, 1, O_STAIN_TARGET}, {"out", 'o', 1, O_OUT},   {"slide-id", 0, 1, O_SLIDE_ID},
        {"case", 0, 1, O_CASE},           {"threads", 'j', 1, O_THREADS}, {"batch", 'b', 1, O_BATCH},
        {"overwrite", 0, 0, O_OVERWRITE}, {"recursive", 'r', 0, O_RECURSIVE}, {"json", 0, 0, O_JSON},
        {"manifest", 0, 1, O_MANIFEST},   {"shard", 0, 1, O_SHARD},       {"allow-derived", 0, 0, O_ALLOW_DERIVED},
        {"sr", 0, 1, O_SR},               {"sr-precision", 0, 1, O_SR_PRECISION},
        {0},
    };
    static const char *const backends[] = {"cpu", "cuda", NULL};
    const char *model_path = NULL, *backend = "cpu", *stain_target = NULL, *manifest = NULL;
    manifest_run mr;
    memset(&mr, 0, sizeof mr);
    int shard_i = 0, shard_n = 0;
    int stain_given = 0, recursive = 0, json = 0, rc = HP_EXIT_USAGE, c;
    long long v;
    hp_stain_method stain_method = HP_STAIN_MACENKO;
    hp_stain_params stain_params;
    hp_analyze_options o;
    hp_analyze_options_init(&o);
    o.out_dir = "out";
    hp_cli_slide_list sl = {0};
    const char **args = calloc((size_t)argc + 1, sizeof *args);
    int n_args = 0;
    hp_model *m = NULL;
    hp_cli_sr_models sr;
    hp_cli_sr_parse("off", &sr);
    hp_precision sr_precision = HP_PREC_FP32;
    char model_err[HP_ERROR_MSG_MAX] = "";
    if (!args)
        return HP_EXIT_FAILED;
    hp_cli_parser p;
    hp_cli_parser_init(&p, "analyze", "analyze", opts, argc, argv);
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        switch (c) {
        case O_MODEL: model_path = p.value; break;
        case O_BACKEND:
            if ((c = hp_cli_choice_value(&p, backends)) < 0)
                goto out;
            backend = backends[c];
            break;
        case O_MPP:
            if (hp_cli_double_value(&p, HP_SLIDE_MPP_MIN, HP_SLIDE_MPP_MAX, &o.mpp))
                goto out;
            break;
        case O_MASK: o.mask_path = p.value; break;
        case O_ROI: {
            int64_t r[4];
            if (parse_roi(p.value, r)) {
                hp_cli_usage_error(&p, "--roi takes X,Y,W,H: level-0 pixels, X,Y >= 0, W,H > 0 (got '%s')", p.value);
                goto out;
            }
            o.roi_x = r[0], o.roi_y = r[1], o.roi_w = r[2], o.roi_h = r[3];
            break;
        }
        case O_STAIN: {
            hp_error se = {0};
            if (hp_stain_method_parse(p.value, &stain_method, &se) != HP_OK) {
                hp_cli_usage_error(&p, "--stain must be macenko or reinhard, not '%s'", p.value);
                goto out;
            }
            stain_given = 1;
            break;
        }
        case O_STAIN_TARGET: stain_target = p.value; break;
        case O_OUT: o.out_dir = p.value; break;
        case O_SLIDE_ID: o.slide_id = p.value; break;
        case O_CASE: o.accession = p.value; break;
        case O_THREADS:
            if (hp_cli_int_value(&p, 1, 256, &v))
                goto out;
            o.threads = (int)v;
            break;
        case O_BATCH:
            if (hp_cli_int_value(&p, 1, 1024, &v))
                goto out;
            o.batch = (int)v;
            break;
        case O_OVERWRITE: o.overwrite = 1; break;
        case O_ALLOW_DERIVED: o.allow_derived = 1; break;
        case O_SR:
            hp_cli_sr_parse(p.value, &sr);
            if (sr.mode == HP_SR_MODEL && hp_cli_is_dir(sr.path)) {
                hp_cli_usage_error(&p, "--sr takes auto, off or a model file; %s is a directory", sr.path);
                goto out;
            }
            break;
        case O_SR_PRECISION:
            if (hp_cli_precision_value(&p, &sr_precision))
                goto out;
            break;
        case O_RECURSIVE: recursive = 1; break;
        case O_JSON: json = 1; break;
        case O_MANIFEST: manifest = p.value; break;
        case O_SHARD:
            if (hp_manifest_shard_parse(p.value, &shard_i, &shard_n)) {
                hp_cli_usage_error(&p, "--shard takes I/N: shard I of N, 1 <= I <= N <= %d (got '%s')",
                                   HP_MANIFEST_SHARDS_MAX, p.value);
                goto out;
            }
            break;
        case HP_CLI_HELP: usage(stdout); rc = HP_EXIT_OK; goto out;
        case HP_CLI_ARG: args[n_args++] = p.value; break;
        default: goto out;
        }
    }
    if (manifest && (n_args || recursive || o.slide_id || o.accession)) {
        hp_cli_usage_error(&p, "--manifest lists the slides with their ids and cases; it does not go with %s",
                           n_args ? "slide arguments" : recursive ? "--recursive" : o.slide_id ? "--slide-id" : "--case");
        goto out;
    }
    if (shard_n && !manifest) {
        hp_cli_usage_error(&p, "--shard splits a manifest; give --manifest FILE");
        goto out;
    }
    if (sr_precision != HP_PREC_FP32 && (sr.mode == HP_SR_OFF || strcmp(backend, "cuda"))) {
        hp_cli_usage_error(&p, "--sr-precision %s %s", hp_precision_name(sr_precision),
                           sr.mode == HP_SR_OFF ? "sets the super-resolution model's precision; give --sr auto or --sr M.onnx"
                                                : "needs --backend cuda; the CPU backend computes in float32 only");
        goto out;
    }
    sr.precision = sr_precision;
    if (n_args == 0 && !manifest) {
        hp_cli_usage_error(&p, "no slide given");
        goto out;
    }
    if (manifest && (rc = manifest_stage(manifest, shard_i, shard_n, &sl, &mr)) != 0)
        goto out;
    rc = HP_EXIT_USAGE;
    for (int i = 0; i < n_args; i++) {
        if (!recursive && hp_cli_is_dir(args[i])) {
            hp_cli_usage_error(&p, "%s is a directory; give the slide files in it, or --recursive to analyze "
                                   "every slide file under it", args[i]);
            goto out;
        }
        int before = sl.n;
        if (hp_cli_slide_list_add(&sl, args[i], recursive)) {
            rc = HP_EXIT_FAILED;
            goto out;
        }
        if (sl.n == before) {
            hp_cli_usage_error(&p, "no slide files under %s (names ending in .svs, .tif, .tiff, .ndpi, .mrxs, "
                                   ".scn, .bif, .vms, .png, .jpg, ...)", args[i]);
            goto out;
        }
    }
    if (o.slide_id && sl.n > 1) {
        hp_cli_usage_error(&p, "--slide-id names one slide; %d given", sl.n);
        goto out;
    }
    if (stain_given != (stain_target != NULL)) {
        hp_cli_usage_error(&p, "--stain and --stain-target go together");
        goto out;
    }
    /* Options naming files that every slide needs: a problem there means nothing can run. */
    rc = HP_EXIT_NOT_RUN;
    if (o.mask_path && hp_cli_refuse_dir("analyze", o.mask_path, "a mask image (--mask)"))
        goto out;
    if (stain_given) {
        hp_error se = {0};
        if (hp_cli_refuse_dir("analyze", stain_target, "a stain target (--stain-target)"))
            goto out;
        if (hp_analyze_stain_target_load(stain_method, stain_target, &stain_params, &se) != HP_OK) {
            hp_cli_fail_path("analyze", stain_target, se.msg);
            goto out;
        }
        o.stain_target = &stain_params;
    }
    if (prepare_out(o.out_dir) || (manifest && record_manifest(o.out_dir, manifest, &mr, shard_n)))
        goto out;
    hp_cli_batch_signals();

    /* The model; when it cannot be used, the batch still records every slide as failed. */
    char defpath[PATH_MAX], model_hash[65];
    if (!model_path) {
        char tried[4 * PATH_MAX];
        if (hp_zoo_file(HP_DEFAULT_MODEL, defpath, sizeof defpath, tried, sizeof tried) == 0)
            model_path = defpath;
        else
            snprintf(model_err, sizeof model_err,
                     "the default model %s was not found (looked in %.600s); set HP_MODEL_DIR or give --model",
                     HP_DEFAULT_MODEL, tried);
    }
    if (model_path && hp_cli_is_dir(model_path))
        snprintf(model_err, sizeof model_err, "%.900s is a directory, not a model file (--model M.onnx)", model_path);
    if (!model_err[0]) {
        hp_model_options mo = hp_model_default_options();
        mo.backend = !strcmp(backend, "cuda") ? HP_BACKEND_CUDA : HP_BACKEND_CPU;
        mo.require_card = 1;
        hp_error err = {0};
        if (!(m = hp_model_open(model_path, &mo, &err)) || hp_sha256_file(model_path, model_hash, &err) != HP_OK) {
            snprintf(model_err, sizeof model_err, "%s", err.msg);
            hp_model_destroy(m);
            m = NULL;
        }
    }
    if (!model_err[0] && hp_cli_sr_load(&sr, !strcmp(backend, "cuda") ? HP_BACKEND_CUDA : HP_BACKEND_CPU, model_err,
                                        sizeof model_err)) {
        hp_model_destroy(m); /* the batch records every slide as failed for this reason */
        m = NULL;
    }
    o.sr_mode = sr.mode;
    o.sr_models = sr.cands;
    o.n_sr_models = sr.n;
    if (model_err[0])
        hp_cli_fail("analyze", "%s", model_err);
    o.model_sha256 = model_hash;
    o.backend_name = backend;
    /* --overwrite replaces results made before this run, not those another process sharing
     * --out has just made. */
    o.overwrite_before = o.overwrite ? time(NULL) : 0;
    hp_cli_batch b = {.model = m, .model_error = model_err, .o = &o, .slides = sl.paths, .n_slides = sl.n,
                      .json = json};
    if (manifest) {
        b.slide_ids = mr.ids;
        b.cases = mr.cases;
        b.mpps = mr.mpps;
        b.shard = shard_n ? mr.shard : NULL;
    }
    rc = hp_cli_batch_run(&b);
out:
    hp_model_destroy(m);
    hp_cli_sr_free(&sr);
    hp_cli_slide_list_free(&sl);
    hp_manifest_free(&mr.m);
    free(mr.ids);
    free(mr.cases);
    free(mr.mpps);
    free(args);
    return rc;
}
