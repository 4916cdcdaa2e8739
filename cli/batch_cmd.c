/* `histoplan batch merge OUT`: one complete summary of a cohort that manifest runs (analyze
 * --manifest, often one per --shard on a cluster) gave into OUT. Every slide of the manifest gets
 * one entry, matched by its slide id (its output folder) in OUT/batch-summary.json: its status,
 * the shard that ran it, or "missing" with the shard that should have run it. Written to
 * OUT/manifest-summary.json (schemas/manifest-summary.schema.json); the slides that are not done
 * are listed on stderr. Matching by slide id, not by the path's hash, lets the merge run where
 * the slides are mounted elsewhere (a login node). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/manifest.h"
#include "cli/options.h"
#include "common/utc_time.h"
#include "io/atomic_file.h"
#include "pipeline/batch_summary.h"

#define MERGED_FILE "manifest-summary.json"
#define N_STATES 6

static const char *const STATES[N_STATES] = {"done", "skipped", "failed", "interrupted", "not-started", "missing"};
static const char *const COUNTS[N_STATES] = {"done", "skipped", "failed", "interrupted", "not_started", "missing"};

static void usage(FILE *f)
{
    fprintf(f, "usage: histoplan batch merge OUT [--manifest FILE] [--json]\n"
               "\n"
               "Gathers what the runs of `histoplan analyze --manifest FILE [--shard I/N] --out OUT` made\n"
               "into one summary of every slide of the manifest, OUT/" MERGED_FILE ": each slide's\n"
               "status (done, skipped, failed, interrupted, not-started, or missing: no run recorded\n"
               "it), the shard that ran it, and for a missing slide the shard that should run it.\n"
               "The slides that are not done or skipped are listed on stderr.\n"
               "\n"
               "options:\n"
               "  --manifest FILE  the manifest (default: the one recorded in OUT/batch-manifest.json\n"
               "                   by the last manifest run)\n"
               "  --json           print the merged summary on stdout as well\n"
               "  -h, --help       this text\n"
               "\n"
               "exit status: 0 every slide done or skipped, 1 some slides are not (or OUT cannot be\n"
               "read), 2 bad usage or a bad manifest\n");
}

static const char *str_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

/* The summary entry of a slide id: a done or skipped one before any other (a slide moved
 * between mounts may hold two entries). */
static const cJSON *find_entry(const cJSON *results, const char *id)
{
    const cJSON *best = NULL, *it;
    cJSON_ArrayForEach(it, results)
    {
        const char *sid = str_field(it, "slide_id"), *st = str_field(it, "status");
        if (!sid || strcmp(sid, id))
            continue;
        if (st && (!strcmp(st, "done") || !strcmp(st, "skipped")))
            return it;
        if (!best)
            best = it;
    }
    return best;
}

static int state_index(const char *s)
{
    for (int k = 0; k < N_STATES; k++)
        if (s && !strcmp(s, STATES[k]))
            return k;
    return 2; /* an entry this version does not know counts as failed */
}

static void copy_field(cJSON *dst, const cJSON *src, const char *k)
{
    const cJSON *v = src ? cJSON_GetObjectItemCaseSensitive(src, k) : NULL;
    cJSON_AddItemToObject(dst, k, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
}

static int merge(int argc, char **argv)
{
    enum { O_MANIFEST = 1, O_JSON };
    static const hp_cli_option opts[] = {{"manifest", 0, 1, O_MANIFEST}, {"json", 0, 0, O_JSON}, {0}};
    const char *out = NULL, *manifest = NULL;
    int json = 0, c, rc = HP_EXIT_USAGE, shards = 0, counts[N_STATES] = {0};
    hp_manifest m;
    memset(&m, 0, sizeof m);
    cJSON *rec = NULL, *results = NULL, *doc = NULL;
    char *text = NULL, recorded[PATH_MAX + 64], merged[PATH_MAX + 64];
    hp_error err = {0};
    hp_cli_parser p;
    hp_cli_parser_init(&p, "batch merge", "batch", opts, argc, argv);
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        switch (c) {
        case O_MANIFEST: manifest = p.value; break;
        case O_JSON: json = 1; break;
        case HP_CLI_HELP: usage(stdout); rc = HP_EXIT_OK; goto fail;
        case HP_CLI_ARG:
            if (out) {
                hp_cli_usage_error(&p, "one output folder only (got '%s' and '%s')", out, p.value);
                goto fail;
            }
            out = p.value;
            break;
        default: goto fail;
        }
    }
    if (!out) {
        hp_cli_usage_error(&p, "give the output folder OUT that the manifest runs wrote into");
        goto fail;
    }
    if (!hp_cli_is_dir(out)) {
        hp_cli_usage_error(&p, "%s is not a folder (the --out of the manifest runs)", out);
        goto fail;
    }
    snprintf(recorded, sizeof recorded, "%.*s/batch-manifest.json", PATH_MAX, out);
    rec = read_json(recorded);
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(rec, "shards");
    if (cJSON_IsNumber(sh) && sh->valueint >= 1 && sh->valueint <= HP_MANIFEST_SHARDS_MAX)
        shards = sh->valueint;
    if (!manifest && !(manifest = str_field(rec, "manifest"))) {
        hp_cli_usage_error(&p, "%s records no manifest (no `analyze --manifest` run wrote into it); give --manifest FILE",
                           out);
        goto fail;
    }
    if (hp_cli_refuse_dir("batch merge", manifest, "a manifest (--manifest)"))
        goto fail;
    if (hp_manifest_load(manifest, &m, &err) != HP_OK) {
        hp_cli_fail("batch merge", "%s", err.msg);
        rc = err.code == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAILED;
        goto fail;
    }
    rc = HP_EXIT_FAILED;
    const char *rec_sha = str_field(rec, "manifest_sha256");
    if (rec_sha && strcmp(rec_sha, m.sha256))
        fprintf(stderr, "histoplan batch merge: warning: %s has changed since the last run into %s recorded it\n",
                manifest, out);
    if (!(results = hp_batch_summary_load(out, &err))) {
        hp_cli_fail("batch merge", "%s", err.msg);
        goto fail;
    }
    cJSON *rows = cJSON_CreateArray(), *missing = cJSON_CreateArray();
    if (!(doc = cJSON_CreateObject()) || !rows || !missing) {
        cJSON_Delete(rows);
        cJSON_Delete(missing);
        goto nomem;
    }
    for (int i = 0; i < m.n; i++) {
        const hp_manifest_row *r = &m.rows[i];
        const cJSON *e = find_entry(results, r->slide_id);
        int k = e ? state_index(str_field(e, "status")) : N_STATES - 1;
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(rows, o))
            goto nomem_rows;
        counts[k]++;
        char expect[24] = "";
        if (shards > 1)
            snprintf(expect, sizeof expect, "%d/%d", hp_manifest_shard_of(r->slide_id, shards), shards);
        cJSON_AddNumberToObject(o, "line", r->line);
        cJSON_AddStringToObject(o, "slide_id", r->slide_id);
        cJSON_AddStringToObject(o, "status", STATES[k]);
        copy_field(o, e, "shard");
        cJSON_AddItemToObject(o, "expected_shard", expect[0] ? cJSON_CreateString(expect) : cJSON_CreateNull());
        static const char *const keep[] = {"input_sha256", "output", "error", "message", "duration_s", "finished_at",
                                           "warning"};
        for (size_t f = 0; f < sizeof keep / sizeof *keep; f++)
            copy_field(o, e, keep[f]);
        if (k >= 2) {
            cJSON_AddItemToArray(missing, cJSON_CreateString(r->slide_id));
            fprintf(stderr, "histoplan batch merge: %s: slide %s (line %d%s%s)\n", STATES[k], r->slide_id, r->line,
                    expect[0] ? ", shard " : "", expect);
        }
    }
    char when[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), when);
    cJSON_AddNumberToObject(doc, "schema_version", 1);
    cJSON_AddStringToObject(doc, "merged_at", when);
    cJSON_AddStringToObject(doc, "manifest_sha256", m.sha256);
    cJSON_AddItemToObject(doc, "shards", shards ? cJSON_CreateNumber(shards) : cJSON_CreateNull());
    cJSON_AddNumberToObject(doc, "slides", m.n);
    for (int k = 0; k < N_STATES; k++)
        cJSON_AddNumberToObject(doc, COUNTS[k], counts[k]);
    int complete = counts[0] + counts[1] == m.n;
    cJSON_AddBoolToObject(doc, "complete", complete);
    cJSON_AddItemToObject(doc, "incomplete_slides", missing);
    if (!cJSON_AddItemToObject(doc, "results", rows) || !(text = cJSON_Print(doc)))
        goto nomem;
    snprintf(merged, sizeof merged, "%.*s/" MERGED_FILE, PATH_MAX, out);
    if (hp_atomic_write_text(merged, text, &err) != HP_OK) {
        hp_cli_fail("batch merge", "%s", err.msg);
        goto fail;
    }
    if (json)
        printf("%s\n", text);
    fprintf(stderr,
            "histoplan batch merge: %d slides in the manifest: %d done, %d skipped, %d failed, %d interrupted, "
            "%d not started, %d missing; %s; wrote %s\n",
            m.n, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
            complete ? "complete" : "incomplete", merged);
    rc = complete ? HP_EXIT_OK : HP_EXIT_FAILED;
    goto fail;
nomem_rows:
    cJSON_AddItemToObject(doc, "results", rows);
    cJSON_Delete(missing);
nomem:
    hp_cli_fail("batch merge", "out of memory");
fail:
    hp_manifest_free(&m);
    cJSON_Delete(rec);
    cJSON_Delete(results);
    cJSON_Delete(doc);
    free(text);
    return rc;
}

int hp_cli_batch_cmd(int argc, char **argv)
{
    if (argc < 2) {
        hp_cli_usage_error_for("batch", "batch", "give a subcommand: merge");
        return HP_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return HP_EXIT_OK;
    }
    if (!strcmp(argv[1], "merge"))
        return merge(argc - 1, argv + 1);
    hp_cli_usage_error_for("batch", "batch", "unknown subcommand '%s' (batch merge OUT)", argv[1]);
    return HP_EXIT_USAGE;
}
