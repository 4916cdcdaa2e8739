/* Model cards, .npy files and plain images: valid files round-trip, every corrupt or invalid
 * case is refused with a message naming the file (and, for cards, the field), never a crash.
 * References come from outside our code where possible: sha256sum for hashes, NumPy for .npy,
 * Pillow for decoded pixels, and the JSON Schema validator for the card schema. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <jpeglib.h>
#include <tiffio.h>

#include "common/sha256.h"
#include "io/image.h"
#include "io/npy.h"
#include "models/card.h"
#include "util/testutil.h"

static int passed;
static char tmpdir[256];

#define T(cond)                                                                              \
    do {                                                                                     \
        int before_ = hp_test_failures;                                                      \
        CHECK(cond);                                                                         \
        if (hp_test_failures == before_)                                                     \
            passed++;                                                                        \
    } while (0)

#define TM(cond, ...)                                                                        \
    do {                                                                                     \
        int before_ = hp_test_failures;                                                      \
        CHECK_MSG(cond, __VA_ARGS__);                                                        \
        if (hp_test_failures == before_)                                                     \
            passed++;                                                                        \
    } while (0)

/* Paths under the test's temporary folder; kept until exit so callers may hold them. */
static char *tmp_paths[1024];
static int n_tmp_paths;

static const char *tmp_path(const char *name)
{
    char *p = malloc(strlen(tmpdir) + strlen(name) + 2);
    sprintf(p, "%s/%s", tmpdir, name);
    if (n_tmp_paths < 1024)
        tmp_paths[n_tmp_paths++] = p;
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* Copies the first `keep` bytes of `src` to `dst`: a truncated file. */
static void truncate_copy(const char *src, const char *dst, size_t keep)
{
    size_t n = 0;
    unsigned char *b = read_bytes(src, &n);
    if (!b) {
        fprintf(stderr, "cannot read %s\n", src);
        exit(2);
    }
    write_bytes(dst, b, keep < n ? keep : n);
    free(b);
}

static int python_ok(const char *py)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy, PIL, jsonschema' >/dev/null 2>&1", py);
    return system(cmd) == 0;
}

/* ---------------------------------------------------------------- cards */

static const char *base_card =
    "{\"name\": \"demo\", \"version\": \"1.0\", \"classes\": [\"normal\", \"benign\", \"in_situ\", "
    "\"invasive\"], \"input_size\": [224, 200], \"normalization\": {\"mean\": [0.485, 0.456, 0.406], "
    "\"std\": [0.229, 0.224, 0.225]}, \"mpp\": 0.5, \"sha256\": "
    "\"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\", \"training_data\": "
    "\"none\", \"intended_use\": \"tests\", \"metrics\": {\"accuracy\": 0.5}, \"license\": "
    "\"Apache-2.0\", \"not_for_diagnosis\": true, \"x-extra\": {\"anything\": 1}}";

/* Writes the base card with `key` replaced by `value_json` (NULL value: key removed). */
static const char *card_variant(const char *file, const char *key, const char *value_json)
{
    cJSON *root = cJSON_Parse(base_card);
    const char *dot = strchr(key, '.');
    if (dot) { /* "normalization.std" */
        char outer[64] = "";
        size_t n = (size_t)(dot - key) < sizeof outer - 1 ? (size_t)(dot - key) : sizeof outer - 1;
        memcpy(outer, key, n);
        outer[n] = '\0';
        cJSON *o = cJSON_GetObjectItem(root, outer);
        cJSON_DeleteItemFromObject(o, dot + 1);
        if (value_json)
            cJSON_AddItemToObject(o, dot + 1, cJSON_Parse(value_json));
    } else {
        cJSON_DeleteItemFromObject(root, key);
        if (value_json)
            cJSON_AddItemToObject(root, key, cJSON_Parse(value_json));
    }
    char *text = cJSON_Print(root);
    const char *path = tmp_path(file);
    write_bytes(path, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(root);
    return path;
}

typedef struct {
    const char *key, *value, *field; /* field: what the message must quote */
    int schema_too;                  /* the JSON Schema must refuse it as well */
} bad_card;

static const bad_card bad_cards[] = {
    {"name", NULL, "\"name\"", 1},
    {"name", "\"\"", "\"name\"", 1},
    {"name", "7", "\"name\"", 1},
    {"classes", NULL, "\"classes\"", 1},
    {"classes", "[]", "\"classes\"", 1},
    {"classes", "\"normal\"", "\"classes\"", 1},
    {"classes", "[\"a\", \"a\"]", "\"classes[1]\"", 1},
    {"classes", "[\"a\", \"\"]", "\"classes[1]\"", 1},
    {"classes", "[\"a\", 3]", "\"classes[1]\"", 1},
    {"input_size", "[224]", "\"input_size\"", 1},
    {"input_size", "[0, 224]", "\"input_size[0]\"", 1},
    {"input_size", "[224, 9000]", "\"input_size[1]\"", 1},
    {"input_size", "[224.5, 224]", "\"input_size[0]\"", 1},
    {"input_size", "[\"224\", 224]", "\"input_size[0]\"", 1},
    {"normalization", "[0.5, 0.5]", "\"normalization\"", 1},
    {"normalization.mean", "[0.5, 0.5]", "\"normalization.mean\"", 1},
    {"normalization.mean", "[123.675, 116.28, 103.53]", "\"normalization.mean[0]\"", 1},
    {"normalization.std", NULL, "\"normalization.std\"", 1},
    {"normalization.std", "[0.2, 0, 0.2]", "\"normalization.std[1]\"", 1},
    {"normalization.std", "[0.2, 0.2, -0.1]", "\"normalization.std[2]\"", 1},
    {"normalization.std", "[0.2, 0.2, \"x\"]", "\"normalization.std[2]\"", 1},
    {"normalization.gamma", "1", "\"normalization.gamma\"", 1},
    {"mpp", "0.01", "\"mpp\"", 1},
    {"mpp", "25", "\"mpp\"", 1},
    {"mpp", "\"0.5\"", "\"mpp\"", 1},
    {"sha256", "\"abc\"", "\"sha256\"", 1},
    {"sha256", "\"zzcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\"", "\"sha256\"", 1},
    {"training_data", "[]", "\"training_data\"", 1},
    {"intended_use", "\"\"", "\"intended_use\"", 1},
    {"metrics", "[1, 2]", "\"metrics\"", 1},
    {"license", "false", "\"license\"", 1},
    {"not_for_diagnosis", "\"yes\"", "\"not_for_diagnosis\"", 1},
    {"normalisation", "{}", "\"normalisation\"", 1},
    /* Domain of validity, out-of-domain detector, calibration. */
    {"domain", "{\"tissue\": \"t\", \"stain\": \"s\"}", "\"domain.mpp_range\"", 1},
    {"domain", "{\"tissue\": \"t\", \"stain\": \"s\", \"mpp_range\": [0.5, 0.2]}", "\"domain.mpp_range\"", 0},
    {"domain", "{\"tissue\": \"t\", \"stain\": \"s\", \"mpp_range\": [0.2, 0.5], \"organ\": 1}",
     "\"domain.organ\"", 1},
    {"domain", "{\"tissue\": \"\", \"stain\": \"s\", \"mpp_range\": [0.2, 0.5]}", "\"domain.tissue\"", 1},
    {"ood_detector", "{\"method\": \"energy\", \"file\": \"d.json\", \"sha256\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
     "\"ood_detector.method\"", 1},
    {"ood_detector", "{\"method\": \"mahalanobis\", \"file\": \"../d.json\", \"sha256\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
     "\"ood_detector.file\"", 1},
    {"ood_detector", "{\"method\": \"mahalanobis\", \"file\": \"d.json\", \"sha256\": \"abc\"}",
     "\"ood_detector.sha256\"", 1},
    {"calibration", "{\"method\": \"temperature\", \"temperature\": 1.2, \"fitted_on\": \"x\"}",
     "\"calibration.reliability\"", 1},
    {"calibration", "{\"method\": \"isotonic\", \"temperature\": 1.2, \"fitted_on\": \"x\", \"reliability\": "
                    "{\"measured_on\": \"y\", \"bins\": 15, \"ece_before\": 0.1, \"ece_after\": 0.05}}",
     "\"calibration.method\"", 1},
    {"calibration", "{\"method\": \"temperature\", \"temperature\": 0, \"fitted_on\": \"x\", \"reliability\": "
                    "{\"measured_on\": \"y\", \"bins\": 15, \"ece_before\": 0.1, \"ece_after\": 0.05}}",
     "\"calibration.temperature\"", 1},
    {"calibration", "{\"method\": \"temperature\", \"temperature\": 1.5, \"fitted_on\": \"x\", \"reliability\": "
                    "{\"measured_on\": \"y\", \"bins\": 15, \"ece_before\": 0.1, \"ece_after\": 1.5}}",
     "\"calibration.reliability.ece_after\"", 1},
};

static void test_cards(const char *py, FILE *manifest)
{
    hp_card card;
    hp_error err = {0};
    const char *good = card_variant("good.card.json", "version", "\"1.0\"");
    T(hp_card_load(good, &card, &err) == HP_OK);
    if (manifest)
        fprintf(manifest, "valid %s\n", good);
    TM(err.code == HP_OK, "%s", err.msg);
    T(card.name && strcmp(card.name, "demo") == 0);
    T(card.version && strcmp(card.version, "1.0") == 0);
    T(card.n_classes == 4 && strcmp(card.classes[0], "normal") == 0 &&
      strcmp(card.classes[3], "invasive") == 0);
    T(card.input_h == 224 && card.input_w == 200);
    T(card.has_norm && fabsf(card.mean[1] - 0.456f) < 1e-7f && fabsf(card.std[2] - 0.225f) < 1e-7f);
    T(card.mpp == 0.5);
    T(card.sha256 && strcmp(card.sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789") == 0);
    T(card.training_data && strcmp(card.training_data, "none") == 0);
    T(card.intended_use && strcmp(card.intended_use, "tests") == 0);
    T(card.metrics_json && strstr(card.metrics_json, "\"accuracy\""));
    T(card.license && strcmp(card.license, "Apache-2.0") == 0);
    T(card.not_for_diagnosis == 1);
    hp_card_free(&card);
    T(card.name == NULL && card.n_classes == 0);
    hp_card_free(&card); /* twice is harmless */
    hp_card_free(NULL);

    /* Only name and classes are required; absent optional fields read as 0 / NULL. */
    const char *minimal = tmp_path("minimal.card.json");
    const char *mtext = "{\"name\": \"m\", \"classes\": [\"a\"]}";
    write_bytes(minimal, mtext, strlen(mtext));
    if (manifest)
        fprintf(manifest, "valid %s\n", minimal);
    hp_error_clear(&err);
    T(hp_card_load(minimal, &card, &err) == HP_OK);
    T(card.n_classes == 1 && card.input_h == 0 && !card.has_norm && card.mpp == 0 && !card.sha256 &&
      !card.metrics_json && !card.not_for_diagnosis);
    hp_card_free(&card);

    for (size_t i = 0; i < sizeof bad_cards / sizeof bad_cards[0]; i++) {
        const bad_card *b = &bad_cards[i];
        char file[64];
        snprintf(file, sizeof file, "bad%02zu.card.json", i);
        const char *path = card_variant(file, b->key, b->value);
        hp_error_clear(&err);
        memset(&card, 0x5a, sizeof card); /* garbage in: the loader must not trust it */
        hp_status st = hp_card_load(path, &card, &err);
        TM(st == HP_ERR_INVALID, "%s=%s accepted", b->key, b->value ? b->value : "(absent)");
        TM(strstr(err.msg, path) && strstr(err.msg, b->field), "%s=%s: message \"%s\" lacks %s",
           b->key, b->value ? b->value : "(absent)", err.msg, b->field);
        T(card.name == NULL && card.n_classes == 0 && card.classes[0] == NULL);
        if (manifest && b->schema_too)
            fprintf(manifest, "invalid %s\n", path);
    }

    /* A domain and a calibration are read; a detector file is hashed against the card. */
    {
        const char *path = card_variant("domain.card.json", "domain",
                                        "{\"tissue\": \"t\", \"stain\": \"H&E\", \"mpp_range\": [0.2, 0.5]}");
        hp_error_clear(&err);
        T(hp_card_load(path, &card, &err) == HP_OK && card.mpp_min == 0.2 && card.mpp_max == 0.5 &&
          card.domain_stain && !strcmp(card.domain_stain, "H&E") && !card.ood_path && !card.has_calibration);
        hp_card_free(&card);
        path = card_variant("cal.card.json", "calibration",
                            "{\"method\": \"temperature\", \"temperature\": 1.5, \"fitted_on\": \"x\", "
                            "\"reliability\": {\"measured_on\": \"y\", \"bins\": 15, \"ece_before\": 0.1, "
                            "\"ece_after\": 0.05}}");
        hp_error_clear(&err);
        T(hp_card_load(path, &card, &err) == HP_OK && card.has_calibration && card.temperature == 1.5 &&
          card.ece_before == 0.1 && card.ece_after == 0.05);
        hp_card_free(&card);
        const char *det = tmp_path("d.ood.json");
        write_bytes(det, "{}\n", 3);
        char hex[65], v[512];
        hp_error herr = {0};
        T(hp_sha256_file(det, hex, &herr) == HP_OK);
        snprintf(v, sizeof v, "{\"method\": \"mahalanobis\", \"file\": \"d.ood.json\", \"sha256\": \"%s\"}", hex);
        path = card_variant("det.card.json", "ood_detector", v);
        hp_error_clear(&err);
        T(hp_card_load(path, &card, &err) == HP_OK && card.ood_path && strstr(card.ood_path, "d.ood.json") &&
          card.ood_slide_fraction == 0.5);
        hp_card_free(&card);
        write_bytes(det, "{ }\n", 4); /* one byte more: not the file the card describes */
        hp_error_clear(&err);
        TM(hp_card_load(path, &card, &err) == HP_ERR_INVALID && strstr(err.msg, "SHA-256") &&
           strstr(err.msg, "out-of-domain detector"), "changed detector file: %s", err.msg);
    }
    /* Too many classes. */
    {
        char v[2048] = "[";
        for (int i = 0; i <= HP_CARD_MAX_CLASSES; i++)
            snprintf(v + strlen(v), sizeof v - strlen(v), "%s\"c%d\"", i ? ", " : "", i);
        strcat(v, "]");
        const char *path = card_variant("many.card.json", "classes", v);
        hp_error_clear(&err);
        T(hp_card_load(path, &card, &err) == HP_ERR_INVALID && strstr(err.msg, "\"classes\""));
        if (manifest)
            fprintf(manifest, "invalid %s\n", path);
    }
    /* Duplicate keys (the schema cannot see these: Python keeps the last). */
    {
        const char *path = tmp_path("dup.card.json");
        const char *text = "{\"name\": \"a\", \"classes\": [\"x\"], \"name\": \"b\"}";
        write_bytes(path, text, strlen(text));
        hp_error_clear(&err);
        T(hp_card_load(path, &card, &err) == HP_ERR_INVALID && strstr(err.msg, "\"name\"") &&
          strstr(err.msg, "more than once"));
    }
    /* Not JSON: the message carries line:column. */
    {
        const char *path = tmp_path("broken.card.json");
        const char *text = "{\n  \"name\": \"a\",\n  \"classes\": [\"x\",]\n}";
        write_bytes(path, text, strlen(text));
        hp_error_clear(&err);
        T(hp_card_load(path, &card, &err) == HP_ERR_INVALID);
        char where[600];
        snprintf(where, sizeof where, "%s:3:", path);
        TM(strstr(err.msg, where) != NULL, "%s", err.msg);
        const char *path2 = tmp_path("array.card.json");
        write_bytes(path2, "[1]", 3);
        hp_error_clear(&err);
        T(hp_card_load(path2, &card, &err) == HP_ERR_INVALID && strstr(err.msg, path2));
        const char *path3 = tmp_path("empty.card.json");
        write_bytes(path3, "", 0);
        hp_error_clear(&err);
        T(hp_card_load(path3, &card, &err) == HP_ERR_INVALID && strstr(err.msg, path3));
    }
    /* Missing file. */
    {
        const char *path = tmp_path("no-such.card.json");
        hp_error_clear(&err);
        T(hp_card_load(path, &card, &err) == HP_ERR_IO && strstr(err.msg, path));
    }
    (void)py;
}

/* The SHA-256 of a file larger than the read block, against coreutils' sha256sum. */
static void test_sha256(void)
{
    const char *path = tmp_path("hashme.bin");
    size_t n = 200000 + 123;
    unsigned char *b = malloc(n);
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        b[i] = (unsigned char)(s >> 16);
    }
    write_bytes(path, b, n);
    free(b);
    char hex[65];
    hp_error err = {0};
    T(hp_sha256_file(path, hex, &err) == HP_OK && strlen(hex) == 64);

    char cmd[1024], ref[128] = "";
    snprintf(cmd, sizeof cmd, "sha256sum '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (p && fscanf(p, "%64s", ref) == 1 && strlen(ref) == 64) {
        TM(strcmp(hex, ref) == 0, "ours %s, sha256sum %s", hex, ref);
    } else {
        printf("note: sha256sum not available; checking the empty-file digest only\n");
    }
    if (p)
        pclose(p);

    const char *empty = tmp_path("empty.bin");
    write_bytes(empty, "", 0);
    T(hp_sha256_file(empty, hex, &err) == HP_OK &&
      strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    hp_error_clear(&err);
    const char *missing = tmp_path("missing.bin");
    T(hp_sha256_file(missing, hex, &err) == HP_ERR_IO && strstr(err.msg, missing));
}

/* The committed demo model's card: loads, its hash matches the .onnx beside it. */
static void test_zoo_card(FILE *manifest)
{
    const char *src = hp_test_env("HP_SOURCE_DIR", NULL);
    if (!src) {
        printf("note: HP_SOURCE_DIR unset; skipping the zoo card\n");
        return;
    }
    char card_path[1024], onnx_path[1024];
    snprintf(card_path, sizeof card_path, "%s/models/zoo/histoplan-demo-densenet.card.json", src);
    snprintf(onnx_path, sizeof onnx_path, "%s/models/zoo/histoplan-demo-densenet.onnx", src);
    if (access(card_path, R_OK) != 0) {
        printf("note: %s missing; skipping the zoo card\n", card_path);
        return;
    }
    hp_card card;
    hp_error err = {0};
    T(hp_card_load(card_path, &card, &err) == HP_OK);
    TM(err.code == HP_OK, "%s", err.msg);
    char hex[65] = "";
    T(hp_sha256_file(onnx_path, hex, &err) == HP_OK);
    TM(card.sha256 && strcmp(card.sha256, hex) == 0, "card %s, file %s", card.sha256, hex);
    T(card.n_classes == 4 && card.not_for_diagnosis == 1 && card.input_h == 224 &&
      card.input_w == 224 && card.mpp == 0.5 && card.has_norm);
    hp_card_free(&card);
    if (manifest)
        fprintf(manifest, "valid %s\n", card_path);
}

/* Every card the C loader accepts, the schema accepts; every one it refuses (that JSON can
 * express), the schema refuses. Keeps the documented schema and the code in step. */
static void test_schema(const char *py, const char *manifest_path)
{
    const char *src = hp_test_env("HP_SOURCE_DIR", NULL);
    if (!py || !src) {
        printf("note: no Python with jsonschema or no HP_SOURCE_DIR; skipping the schema check\n");
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' - '%s/schemas/model-card.schema.json' '%s' <<'EOF'\n"
             "import json, sys, jsonschema\n"
             "schema = json.load(open(sys.argv[1]))\n"
             "jsonschema.Draft202012Validator.check_schema(schema)\n"
             "v = jsonschema.Draft202012Validator(schema)\n"
             "bad = 0\n"
             "for line in open(sys.argv[2]):\n"
             "    want, path = line.split(' ', 1)\n"
             "    path = path.strip()\n"
             "    ok = v.is_valid(json.load(open(path)))\n"
             "    if ok != (want == 'valid'):\n"
             "        print('schema disagrees with hp_card_load on', want, path); bad += 1\n"
             "sys.exit(1 if bad else 0)\n"
             "EOF\n",
             py, src, manifest_path);
    TM(system(cmd) == 0, "schemas/model-card.schema.json disagrees with models/card.c");
}

/* ---------------------------------------------------------------- npy */

/* Writes a .npy file by hand: any version, any header dict, `nbytes` of data. */
static void write_npy_raw(const char *path, int major, const char *dict, const void *data,
                          size_t nbytes)
{
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    size_t plen = major == 1 ? 10 : 12;
    size_t dlen = strlen(dict);
    size_t hlen = ((plen + dlen + 1 + 63) / 64) * 64 - plen;
    for (size_t i = 0; i < (major == 1 ? 2u : 4u); i++)
        pre[8 + i] = (unsigned char)(hlen >> (8 * i));
    FILE *f = fopen(path, "wb");
    fwrite(pre, 1, plen, f);
    fwrite(dict, 1, dlen, f);
    for (size_t i = dlen; i + 1 < hlen; i++)
        fputc(' ', f);
    fputc('\n', f);
    if (nbytes)
        fwrite(data, 1, nbytes, f);
    fclose(f);
}

static void expect_npy_error(const char *path, hp_status want, const char *needle)
{
    float *d = (float *)1;
    int nd = -1;
    int64_t dims[8];
    hp_error err = {0};
    hp_status st = hp_npy_read(path, &d, &nd, dims, &err);
    TM(st == want, "%s: status %d, want %d (%s)", path, st, want, err.msg);
    TM(d == NULL, "%s: data not NULL on failure", path);
    TM(strstr(err.msg, path) && strstr(err.msg, needle), "%s: message \"%s\" lacks \"%s\"", path,
       err.msg, needle);
}

static void test_npy(const char *py)
{
    hp_error err = {0};
    /* Round trips: 3-D, 1-D, scalar, empty. */
    struct {
        int ndim;
        int64_t dims[8];
    } shapes[] = {{3, {2, 3, 4}}, {1, {5}}, {0, {0}}, {2, {0, 3}}, {8, {1, 2, 1, 2, 1, 2, 1, 3}}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t n = 1;
        for (int i = 0; i < shapes[s].ndim; i++)
            n *= shapes[s].dims[i];
        float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
        hp_test_fill_random(x, (long)n, 7 + (unsigned)s, -3, 3);
        char name[32];
        snprintf(name, sizeof name, "rt%zu.npy", s);
        const char *path = tmp_path(name);
        hp_error_clear(&err);
        T(hp_npy_write(path, x, shapes[s].ndim, shapes[s].dims, &err) == HP_OK);
        float *y = NULL;
        int nd = -1;
        int64_t dims[8];
        T(hp_npy_read(path, &y, &nd, dims, &err) == HP_OK);
        TM(err.code == HP_OK, "%s", err.msg);
        T(y != NULL && nd == shapes[s].ndim);
        for (int i = 0; i < nd; i++)
            T(dims[i] == shapes[s].dims[i]);
        T(nd == 8 || dims[nd] == 0);
        T(y && (n == 0 || memcmp(x, y, sizeof(float) * (size_t)n) == 0));
        free(x);
        free(y);
    }
    /* No temporary file is left behind. */
    {
        DIR *d = opendir(tmpdir);
        int leftovers = 0;
        for (struct dirent *e; d && (e = readdir(d));)
            leftovers += strstr(e->d_name, ".tmp-") != NULL;
        if (d)
            closedir(d);
        T(leftovers == 0);
    }
    /* Writing into a folder that does not exist fails cleanly. */
    {
        int64_t dims[1] = {1};
        float v = 1;
        const char *path = tmp_path("no/such/dir/x.npy");
        hp_error_clear(&err);
        T(hp_npy_write(path, &v, 1, dims, &err) == HP_ERR_IO && strstr(err.msg, path));
        int64_t neg[1] = {-1};
        hp_error_clear(&err);
        T(hp_npy_write(tmp_path("neg.npy"), &v, 1, neg, &err) == HP_ERR_INVALID);
    }

    /* float64, float16, version 2.0 and 3.0 headers, and 1-D "fortran" (same as C order). */
    {
        double dv[4] = {1.5, -2.25, 1e-3, 65504.0};
        const char *p8 = tmp_path("f8.npy");
        write_npy_raw(p8, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", dv, sizeof dv);
        float *y = NULL;
        int nd;
        int64_t dims[8];
        hp_error_clear(&err);
        T(hp_npy_read(p8, &y, &nd, dims, &err) == HP_OK && nd == 2 && dims[0] == 2 && dims[1] == 2);
        T(y && y[0] == 1.5f && y[1] == -2.25f && y[2] == (float)1e-3 && y[3] == 65504.0f);
        free(y);

        uint16_t hv[6] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x8000};
        const char *p2 = tmp_path("f2.npy");
        write_npy_raw(p2, 2, "{\"shape\": (6,), \"descr\": \"<f2\", \"fortran_order\": True}", hv, sizeof hv);
        y = NULL;
        T(hp_npy_read(p2, &y, &nd, dims, &err) == HP_OK && nd == 1 && dims[0] == 6);
        TM(err.code == HP_OK, "%s", err.msg);
        T(y && y[0] == 1.0f && y[1] == -2.0f && y[2] == 65504.0f && y[3] == ldexpf(1, -24) &&
          isinf(y[4]) && y[4] > 0 && y[5] == 0 && signbit(y[5]));
        free(y);

        float fv[3] = {1, 2, 3};
        const char *p3 = tmp_path("v3.npy");
        write_npy_raw(p3, 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,), }", fv, sizeof fv);
        y = NULL;
        T(hp_npy_read(p3, &y, &nd, dims, &err) == HP_OK && nd == 1 && dims[0] == 3 && y && y[2] == 3);
        free(y);
    }

    /* Corrupt and unsupported files. */
    float fv[12] = {0};
    const char *ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    const char *good = tmp_path("good.npy");
    write_npy_raw(good, 1, ok_dict, fv, sizeof fv);
    const char *p;
    p = tmp_path("trunc_data.npy");
    truncate_copy(good, p, 64 + 47);
    expect_npy_error(p, HP_ERR_INVALID, "truncated");
    p = tmp_path("trunc_header.npy");
    truncate_copy(good, p, 30);
    expect_npy_error(p, HP_ERR_INVALID, "truncated");
    p = tmp_path("trunc_magic.npy");
    truncate_copy(good, p, 4);
    expect_npy_error(p, HP_ERR_INVALID, "magic");
    p = tmp_path("trailing.npy");
    { /* 4 bytes too many */
        float more[13] = {0};
        write_npy_raw(p, 1, ok_dict, more, sizeof more);
        expect_npy_error(p, HP_ERR_INVALID, "does not match");
    }
    p = tmp_path("magic.npy");
    write_bytes(p, "PK\x03\x04 this is a zip, not an npy file", 36);
    expect_npy_error(p, HP_ERR_INVALID, "magic");
    p = tmp_path("int32.npy");
    write_npy_raw(p, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }", fv, sizeof fv);
    expect_npy_error(p, HP_ERR_UNSUPPORTED, "'<i4'");
    p = tmp_path("bigendian.npy");
    write_npy_raw(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", fv, sizeof fv);
    expect_npy_error(p, HP_ERR_UNSUPPORTED, "big-endian");
    p = tmp_path("fortran.npy");
    write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", fv, sizeof fv);
    expect_npy_error(p, HP_ERR_UNSUPPORTED, "Fortran");
    p = tmp_path("struct.npy");
    write_npy_raw(p, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", fv, 12);
    expect_npy_error(p, HP_ERR_UNSUPPORTED, "structured");
    p = tmp_path("absurd.npy");
    write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", fv, sizeof fv);
    expect_npy_error(p, HP_ERR_INVALID, "absurd");
    p = tmp_path("huge_dim.npy");
    write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", fv, sizeof fv);
    expect_npy_error(p, HP_ERR_INVALID, "absurd");
    p = tmp_path("mismatch.npy");
    write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100, 100), }", fv, sizeof fv);
    expect_npy_error(p, HP_ERR_INVALID, "truncated");
    p = tmp_path("ninedims.npy");
    write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", fv, 4);
    expect_npy_error(p, HP_ERR_UNSUPPORTED, "dimensions");
    p = tmp_path("negdim.npy");
    write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", fv, 12);
    expect_npy_error(p, HP_ERR_INVALID, "shape");
    p = tmp_path("nokey.npy");
    write_npy_raw(p, 1, "{'descr': '<f4', 'shape': (3,), }", fv, 12);
    expect_npy_error(p, HP_ERR_INVALID, "fortran_order");
    p = tmp_path("extrakey.npy");
    write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'evil': 1}", fv, 12);
    expect_npy_error(p, HP_ERR_INVALID, "'evil'");
    p = tmp_path("notdict.npy");
    write_npy_raw(p, 1, "__import__('os').system('true')", fv, 12);
    expect_npy_error(p, HP_ERR_INVALID, "not a dictionary");
    p = tmp_path("version9.npy");
    write_npy_raw(p, 9, ok_dict, fv, sizeof fv);
    expect_npy_error(p, HP_ERR_UNSUPPORTED, "version 9.0");
    expect_npy_error(tmp_path("absent.npy"), HP_ERR_IO, "cannot open");

    /* NumPy reads what we write and writes what we read. */
    if (!py) {
        printf("note: no Python with NumPy; skipping the NumPy cross-check\n");
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' - '%s' <<'EOF'\n"
             "import sys, numpy as np\n"
             "d = sys.argv[1]\n"
             "a = np.load(d + '/rt0.npy')\n"
             "assert a.dtype == np.float32 and a.shape == (2, 3, 4), (a.dtype, a.shape)\n"
             "assert np.load(d + '/rt2.npy').shape == ()\n"
             "assert np.load(d + '/rt3.npy').shape == (0, 3)\n"
             "r = np.random.default_rng(5).standard_normal((3, 5, 7))\n"
             "np.save(d + '/np_f8.npy', r)\n"
             "np.save(d + '/np_f4.npy', r.astype(np.float32))\n"
             "np.save(d + '/np_f2.npy', r.astype(np.float16))\n"
             "np.save(d + '/np_f4_t.npy', r.astype(np.float32).T)\n"
             "with open(d + '/np_v2.npy', 'wb') as f:\n"
             "    np.lib.format.write_array(f, r.astype(np.float32), version=(2, 0))\n"
             "with open(d + '/np_v3.npy', 'wb') as f:\n"
             "    np.lib.format.write_array(f, r.astype(np.float32), version=(3, 0))\n"
             "np.save(d + '/np_ref.npy', np.ascontiguousarray(r.astype(np.float32)))\n"
             "np.save(d + '/np_fortran.npy', np.asfortranarray(r.astype(np.float32)))\n"
             "np.save(d + '/np_be.npy', r.astype('>f4'))\n"
             "EOF\n",
             py, tmpdir);
    TM(system(cmd) == 0, "NumPy could not read our files or write its own");
    float *ref = NULL;
    int nd;
    int64_t dims[8];
    hp_error_clear(&err);
    T(hp_npy_read(tmp_path("np_ref.npy"), &ref, &nd, dims, &err) == HP_OK && nd == 3 &&
      dims[0] == 3 && dims[1] == 5 && dims[2] == 7);
    const char *same[] = {"np_f8.npy", "np_f4.npy", "np_v2.npy", "np_v3.npy"};
    for (int i = 0; ref && i < 4; i++) {
        float *y = NULL;
        hp_error_clear(&err);
        TM(hp_npy_read(tmp_path(same[i]), &y, &nd, dims, &err) == HP_OK, "%s", err.msg);
        T(y && nd == 3 && memcmp(y, ref, sizeof(float) * 105) == 0);
        free(y);
    }
    {
        float *y = NULL;
        hp_error_clear(&err);
        T(hp_npy_read(tmp_path("np_f2.npy"), &y, &nd, dims, &err) == HP_OK && nd == 3);
        /* float16 keeps 11 significant bits. */
        T(y && ref && hp_test_max_rel_err(y, ref, 105) < 1e-3);
        free(y);
        /* NumPy saves a transposed array Fortran-ordered rather than copying it. */
        expect_npy_error(tmp_path("np_f4_t.npy"), HP_ERR_UNSUPPORTED, "Fortran");
        expect_npy_error(tmp_path("np_fortran.npy"), HP_ERR_UNSUPPORTED, "Fortran");
        expect_npy_error(tmp_path("np_be.npy"), HP_ERR_UNSUPPORTED, "big-endian");
    }
    free(ref);
}

/* Integer .npy (a model's shape, pads or axes inputs): every integer width read as int64, floats
 * and uint64 refused; NumPy's own files when it is available. */
static void test_npy_int(const char *py)
{
    hp_error err = {0};
    int64_t *v = NULL, dims[8];
    int nd;
    const int64_t i8[3] = {-5, 0, INT64_C(1) << 40};
    const char *p = tmp_path("i8.npy");
    write_npy_raw(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", i8, sizeof i8);
    T(hp_npy_read_int64(p, &v, &nd, dims, &err) == HP_OK && nd == 1 && dims[0] == 3 && v &&
      v[0] == -5 && v[1] == 0 && v[2] == (INT64_C(1) << 40));
    free(v);
    const int32_t i4[4] = {-7, 2, 3, 2147483647};
    p = tmp_path("i4.npy");
    write_npy_raw(p, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", i4, sizeof i4);
    v = NULL;
    T(hp_npy_read_int64(p, &v, &nd, dims, &err) == HP_OK && nd == 2 && v && v[0] == -7 && v[3] == 2147483647);
    free(v);
    const uint8_t u1[3] = {0, 200, 255}, b1[3] = {0, 1, 7};
    p = tmp_path("u1.npy");
    write_npy_raw(p, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", u1, sizeof u1);
    v = NULL;
    T(hp_npy_read_int64(p, &v, &nd, dims, &err) == HP_OK && v && v[1] == 200 && v[2] == 255);
    free(v);
    p = tmp_path("b1.npy");
    write_npy_raw(p, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", b1, sizeof b1);
    v = NULL;
    T(hp_npy_read_int64(p, &v, &nd, dims, &err) == HP_OK && v && v[0] == 0 && v[1] == 1 && v[2] == 1);
    free(v);
    /* A scalar. */
    p = tmp_path("i8_scalar.npy");
    write_npy_raw(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", i8, 8);
    v = NULL;
    T(hp_npy_read_int64(p, &v, &nd, dims, &err) == HP_OK && nd == 0 && v && v[0] == -5);
    free(v);
    /* Refused: floats where integers are expected, uint64 (could wrap), big-endian, and an
     * integer file read as float. */
    const float f4[3] = {1, 2, 3};
    struct { const char *name, *dict; const void *data; size_t n; hp_status want; const char *needle; int as_int; } bad[] = {
        {"int_f4.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f4, sizeof f4,
         HP_ERR_UNSUPPORTED, "not an integer type", 1},
        {"int_u8.npy", "{'descr': '<u8', 'fortran_order': False, 'shape': (3,), }", i8, sizeof i8,
         HP_ERR_UNSUPPORTED, "'<u8'", 1},
        {"int_be.npy", "{'descr': '>i8', 'fortran_order': False, 'shape': (3,), }", i8, sizeof i8,
         HP_ERR_UNSUPPORTED, "big-endian", 1},
        {"int_short.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", i8, sizeof i8,
         HP_ERR_INVALID, "truncated", 1},
        {"float_i8.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", i8, sizeof i8,
         HP_ERR_UNSUPPORTED, "'<i8'", 0},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        p = tmp_path(bad[k].name);
        write_npy_raw(p, 1, bad[k].dict, bad[k].data, bad[k].n);
        hp_error e = {0};
        hp_status st;
        if (bad[k].as_int) {
            v = (int64_t *)&e; /* must come back NULL */
            st = hp_npy_read_int64(p, &v, &nd, dims, &e);
            T(v == NULL);
        } else {
            float *f = NULL;
            st = hp_npy_read(p, &f, &nd, dims, &e);
            T(f == NULL);
        }
        TM(st == bad[k].want && strstr(e.msg, bad[k].needle) && strstr(e.msg, p), "%s: %s", bad[k].name, e.msg);
    }
    if (!py)
        return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' - '%s' <<'EOF'\n"
             "import sys, numpy as np\n"
             "d = sys.argv[1]\n"
             "np.save(d + '/np_i8.npy', np.array([[1, -2, 3], [4, 5, -6]], np.int64))\n"
             "np.save(d + '/np_i2.npy', np.array([[1, -2, 3], [4, 5, -6]], np.int16))\n"
             "np.save(d + '/np_u4.npy', np.array([[1, 2, 3], [4, 5, 4000000000]], np.uint32))\n"
             "EOF\n",
             py, tmpdir);
    TM(system(cmd) == 0, "NumPy could not write integer files");
    const char *names[] = {"np_i8.npy", "np_i2.npy"};
    for (int k = 0; k < 2; k++) {
        v = NULL;
        hp_error_clear(&err);
        TM(hp_npy_read_int64(tmp_path(names[k]), &v, &nd, dims, &err) == HP_OK, "%s", err.msg);
        T(v && nd == 2 && dims[0] == 2 && dims[1] == 3 && v[1] == -2 && v[5] == -6);
        free(v);
    }
    v = NULL;
    T(hp_npy_read_int64(tmp_path("np_u4.npy"), &v, &nd, dims, &err) == HP_OK && v && v[5] == INT64_C(4000000000));
    free(v);
}

/* ---------------------------------------------------------------- images */

static void write_jpeg(const char *path, const uint8_t *rgb, int w, int h, int gray)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = gray ? 1 : 3;
    ci.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    jpeg_start_compress(&ci, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    while (ci.next_scanline < ci.image_height) {
        const uint8_t *s = rgb + (size_t)ci.next_scanline * w * 3;
        if (gray)
            for (int x = 0; x < w; x++)
                row[x] = s[3 * x];
        else
            memcpy(row, s, (size_t)w * 3);
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
    free(row);
}

static void write_tiff(const char *path, const uint8_t *rgb, int w, int h)
{
    TIFF *t = TIFFOpen(path, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 4);
    for (int y = 0; y < h; y++)
        TIFFWriteScanline(t, (void *)(rgb + (size_t)y * w * 3), (uint32_t)y, 0);
    TIFFClose(t);
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a[i] - (int)b[i]);
    return s / (double)n;
}

static void expect_image_error(const char *path, const char *needle)
{
    int w = -1, h = -1;
    uint8_t *rgb = (uint8_t *)1;
    hp_error err = {0};
    hp_status st = hp_image_read_rgb8(path, &w, &h, &rgb, &err);
    TM(st != HP_OK, "%s: accepted", path);
    TM(rgb == NULL && w == 0 && h == 0, "%s: outputs not cleared", path);
    TM(strstr(err.msg, path) && (!needle || strstr(err.msg, needle)), "%s: message \"%s\" lacks \"%s\"",
       path, err.msg, needle ? needle : "");
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void test_resize(void)
{
    /* Upscaling 2 -> 4 with half-pixel centres: 0, 63.75, 191.25, 255. */
    uint8_t src2[6] = {0, 0, 0, 255, 255, 255}, up[12];
    T(hp_image_resize_rgb8(src2, 2, 1, up, 4, 1) == HP_OK);
    T(up[0] == 0 && up[3] == 64 && up[6] == 191 && up[9] == 255);
    /* Shrinking 3x is an exact area average: 0,30,60 | 90,120,150 -> 30 | 120. */
    uint8_t src6[18], down[6];
    for (int i = 0; i < 6; i++)
        src6[3 * i] = src6[3 * i + 1] = src6[3 * i + 2] = (uint8_t)(30 * i);
    T(hp_image_resize_rgb8(src6, 6, 1, down, 2, 1) == HP_OK);
    T(down[0] == 30 && down[3] == 120);
    /* A one-pixel checkerboard shrunk 2x, 4x, 7x and 3.3x stays mid-grey: no aliasing. */
    enum { N = 140 };
    uint8_t *cb = malloc(N * N * 3);
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            memset(cb + (y * N + x) * 3, ((x + y) & 1) ? 255 : 0, 3);
    int outs[] = {70, 35, 20, 42};
    for (int k = 0; k < 4; k++) {
        int o = outs[k];
        uint8_t *d = malloc((size_t)o * o * 3);
        T(hp_image_resize_rgb8(cb, N, N, d, o, o) == HP_OK);
        int lo = 255, hi = 0;
        for (int i = 0; i < o * o * 3; i++) {
            lo = d[i] < lo ? d[i] : lo;
            hi = d[i] > hi ? d[i] : hi;
        }
        TM(lo >= 100 && hi <= 155, "checkerboard %d -> %d: range %d..%d", N, o, lo, hi);
        free(d);
    }
    /* Constant images stay constant at any scale; identity copies. */
    uint8_t *flat = malloc(N * N * 3), *big = malloc(333 * 77 * 3);
    memset(flat, 77, N * N * 3);
    T(hp_image_resize_rgb8(flat, N, N, big, 333, 77) == HP_OK);
    int allsame = 1;
    for (int i = 0; i < 333 * 77 * 3; i++)
        allsame &= big[i] == 77;
    T(allsame);
    T(hp_image_resize_rgb8(cb, N, N, flat, N, N) == HP_OK && memcmp(cb, flat, N * N * 3) == 0);
    T(hp_image_resize_rgb8(NULL, N, N, flat, N, N) == HP_ERR_INVALID);
    T(hp_image_resize_rgb8(cb, 0, N, flat, N, N) == HP_ERR_INVALID);
    T(hp_image_resize_rgb8(cb, N, N, flat, N, -1) == HP_ERR_INVALID);
    free(cb);
    free(flat);
    free(big);
}

/* Decodes `path` with Pillow (alpha over white, as we do) and compares pixel for pixel. */
static void compare_with_pillow(const char *py, const char *path)
{
    int w, h;
    uint8_t *ours = NULL;
    hp_error err = {0};
    hp_status st = hp_image_read_rgb8(path, &w, &h, &ours, &err);
    TM(st == HP_OK, "%s", err.msg);
    if (st)
        return;
    T(w > 0 && h > 0);
    if (!py) {
        free(ours);
        return;
    }
    char out[600], cmd[2048];
    snprintf(out, sizeof out, "%s/pillow.rgb", tmpdir);
    snprintf(cmd, sizeof cmd,
             "'%s' - '%s' '%s' <<'EOF'\n"
             "import sys, numpy as np\n"
             "from PIL import Image\n"
             "a = np.asarray(Image.open(sys.argv[1]).convert('RGBA')).astype(np.uint32)\n"
             "al = a[..., 3:4]\n"
             "rgb = (a[..., :3] * al + 255 * (255 - al) + 127) // 255\n"
             "open(sys.argv[2], 'wb').write(rgb.astype(np.uint8).tobytes())\n"
             "EOF\n",
             py, path, out);
    if (system(cmd) != 0) {
        TM(0, "Pillow could not decode %s", path);
        free(ours);
        return;
    }
    size_t n = 0;
    unsigned char *ref = read_bytes(out, &n);
    TM(ref && n == (size_t)w * h * 3, "%s: Pillow size differs", path);
    if (ref && n == (size_t)w * h * 3) {
        int maxd = 0;
        for (size_t i = 0; i < n; i++) {
            int d = abs((int)ref[i] - (int)ours[i]);
            maxd = d > maxd ? d : maxd;
        }
        TM(maxd == 0, "%s: differs from Pillow by up to %d", path, maxd);
    }
    free(ref);
    free(ours);
}

static void test_images(const char *py)
{
    hp_error err = {0};
    enum { W = 97, H = 61 };
    uint8_t *img = malloc(W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = img + (y * W + x) * 3;
            p[0] = (uint8_t)(x * 255 / (W - 1));
            p[1] = (uint8_t)(y * 255 / (H - 1));
            p[2] = (uint8_t)(128 + 100 * sin(x * 0.2) * cos(y * 0.3));
        }

    /* PNG: write, read back exactly. */
    const char *png = tmp_path("gradient.png");
    T(hp_image_write_png(png, img, W, H, &err) == HP_OK);
    TM(err.code == HP_OK, "%s", err.msg);
    int w = 0, h = 0;
    uint8_t *back = NULL;
    T(hp_image_read_rgb8(png, &w, &h, &back, &err) == HP_OK && w == W && h == H);
    T(back && memcmp(back, img, W * H * 3) == 0);
    free(back);
    hp_error_clear(&err);
    T(hp_image_write_png(tmp_path("nodir/x.png"), img, W, H, &err) == HP_ERR_IO &&
      strstr(err.msg, "nodir/x.png"));
    hp_error_clear(&err);
    T(hp_image_write_png(tmp_path("bad.png"), img, 0, H, &err) == HP_ERR_INVALID);

    /* JPEG, colour and grey, named .png to prove the magic bytes decide. */
    const char *jpg = tmp_path("gradient-really-a-jpeg.png");
    write_jpeg(jpg, img, W, H, 0);
    back = NULL;
    hp_error_clear(&err);
    T(hp_image_read_rgb8(jpg, &w, &h, &back, &err) == HP_OK && w == W && h == H);
    TM(back && mean_abs_diff(back, img, W * H * 3) < 3.0, "JPEG differs too much");
    free(back);
    const char *gjpg = tmp_path("gray.jpg");
    write_jpeg(gjpg, img, W, H, 1);
    back = NULL;
    T(hp_image_read_rgb8(gjpg, &w, &h, &back, &err) == HP_OK && w == W && h == H);
    int grey = back != NULL;
    for (int i = 0; back && i < W * H; i++)
        grey &= back[3 * i] == back[3 * i + 1] && back[3 * i] == back[3 * i + 2];
    T(grey);
    free(back);

    /* TIFF (LZW, strips). */
    const char *tif = tmp_path("gradient.tif");
    write_tiff(tif, img, W, H);
    back = NULL;
    hp_error_clear(&err);
    T(hp_image_read_rgb8(tif, &w, &h, &back, &err) == HP_OK && w == W && h == H);
    TM(back && memcmp(back, img, W * H * 3) == 0, "TIFF pixels differ (%s)", err.msg);
    free(back);

    /* Truncated, empty, unknown, oversized: errors, never crashes. */
    size_t pn = 0;
    free(read_bytes(png, &pn));
    truncate_copy(png, tmp_path("trunc.png"), pn / 2);
    expect_image_error(tmp_path("trunc.png"), "PNG");
    truncate_copy(png, tmp_path("trunc_sig.png"), 12);
    expect_image_error(tmp_path("trunc_sig.png"), "PNG");
    size_t jn = 0;
    free(read_bytes(jpg, &jn));
    truncate_copy(jpg, tmp_path("trunc.jpg"), jn / 2);
    expect_image_error(tmp_path("trunc.jpg"), "JPEG");
    truncate_copy(jpg, tmp_path("trunc_hdr.jpg"), 40);
    expect_image_error(tmp_path("trunc_hdr.jpg"), "JPEG");
    size_t tn = 0;
    free(read_bytes(tif, &tn));
    truncate_copy(tif, tmp_path("trunc.tif"), tn / 2);
    expect_image_error(tmp_path("trunc.tif"), "TIFF");
    truncate_copy(tif, tmp_path("trunc_hdr.tif"), 6);
    expect_image_error(tmp_path("trunc_hdr.tif"), "TIFF");
    write_bytes(tmp_path("empty.png"), "", 0);
    expect_image_error(tmp_path("empty.png"), "empty");
    write_bytes(tmp_path("anim.gif"), "GIF89a\x01\x00\x01\x00", 10);
    expect_image_error(tmp_path("anim.gif"), "not a PNG, JPEG or TIFF");
    expect_image_error(tmp_path("absent.png"), "cannot open");
    {
        /* A valid PNG signature and IHDR claiming 20000 x 20000: refused before allocating. */
        unsigned char b[8 + 25 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        put_be32(b + 8, 13);
        memcpy(b + 12, "IHDR", 4);
        put_be32(b + 16, 20000);
        put_be32(b + 20, 20000);
        b[24] = 8; /* bit depth */
        b[25] = 2; /* RGB */
        put_be32(b + 29, crc32_of(b + 12, 17));
        /* An empty IDAT: libpng stops reading the header there. */
        put_be32(b + 33, 0);
        memcpy(b + 37, "IDAT", 4);
        put_be32(b + 41, crc32_of(b + 37, 4));
        write_bytes(tmp_path("huge.png"), b, sizeof b);
        expect_image_error(tmp_path("huge.png"), "megapixels");
    }
    /* Corrupt data in the middle of a JPEG (libjpeg only warns): refused. */
    {
        size_t n = 0;
        unsigned char *b = read_bytes(jpg, &n);
        for (size_t i = n / 2; i < n / 2 + 64 && i + 2 < n; i++)
            b[i] = 0xFF, b[i + 1] = (unsigned char)(0xD0 + (i & 7)); /* stray restart markers */
        write_bytes(tmp_path("garbled.jpg"), b, n);
        free(b);
        expect_image_error(tmp_path("garbled.jpg"), "JPEG");
    }
    free(img);

    /* Real H&E images from ../shared: a TIFF patch and BACH PNGs (RGB and RGBA). */
    char path[4][1200];
    const char *real[] = {"data/real/patches/CRC-VAL-HE-7K_NORM_TCGA-YLVCMEHK.tif", "data/real/bach/BACH_Benign_sample.png",
                          "data/real/bach/BACH_Invasive_sample.png", "data/real/patches/crc150_target.png"};
    int have[4];
    for (int i = 0; i < 4; i++) {
        have[i] = hp_test_shared_path(real[i], path[i], sizeof path[i]) != NULL;
        if (have[i])
            compare_with_pillow(py, path[i]);
    }
    /* The real TIFF truncated: an error. */
    if (have[0]) {
        size_t n = 0;
        free(read_bytes(path[0], &n));
        truncate_copy(path[0], tmp_path("real_trunc.tif"), n * 2 / 3);
        expect_image_error(tmp_path("real_trunc.tif"), "TIFF");
    }
    /* A real image through JPEG: decode the BACH PNG, encode JPEG, decode, compare (and with
     * Pillow, which uses the same libjpeg, exactly). */
    uint8_t *rgb = NULL;
    hp_error_clear(&err);
    if (have[1] && hp_image_read_rgb8(path[1], &w, &h, &rgb, &err) == HP_OK) {
        const char *rj = tmp_path("bach.jpg");
        write_jpeg(rj, rgb, w, h, 0);
        uint8_t *dec = NULL;
        int w2, h2;
        T(hp_image_read_rgb8(rj, &w2, &h2, &dec, &err) == HP_OK && w2 == w && h2 == h);
        TM(dec && mean_abs_diff(dec, rgb, (size_t)w * h * 3) < 4.0, "BACH via JPEG differs too much");
        free(dec);
        compare_with_pillow(py, rj);
        /* Shrink the real image to a 224 tile: the mean colour is kept (area averaging). */
        uint8_t *tile = malloc(224 * 224 * 3);
        T(hp_image_resize_rgb8(rgb, w, h, tile, 224, 224) == HP_OK);
        double ms = 0, mt = 0;
        for (size_t i = 0; i < (size_t)w * h * 3; i++)
            ms += rgb[i];
        for (size_t i = 0; i < 224 * 224 * 3; i++)
            mt += tile[i];
        ms /= (double)w * h * 3;
        mt /= 224.0 * 224 * 3;
        TM(fabs(ms - mt) < 1.5, "mean %f vs %f", ms, mt);
        free(tile);
    }
    free(rgb);
}

int main(void)
{
    const char *base = hp_test_env("TMPDIR", "/tmp");
    snprintf(tmpdir, sizeof tmpdir, "%s/hp_card_npy_image_XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    const char *py = hp_test_env("HP_PYTHON", "/usr/bin/python3");
    if (!python_ok(py)) {
        printf("note: %s lacks numpy/PIL/jsonschema; skipping cross-checks against them\n", py);
        py = NULL;
    }
    char manifest_path[600];
    snprintf(manifest_path, sizeof manifest_path, "%s/cards.manifest", tmpdir);
    FILE *manifest = fopen(manifest_path, "w");

    test_cards(py, manifest);
    test_sha256();
    test_zoo_card(manifest);
    if (manifest)
        fclose(manifest);
    test_schema(py, manifest_path);
    test_npy(py);
    test_npy_int(py);
    test_resize();
    test_images(py);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (!hp_test_failures && system(cmd) != 0)
        printf("note: could not remove %s\n", tmpdir);
    else if (hp_test_failures)
        printf("note: files kept in %s\n", tmpdir);
    for (int i = 0; i < n_tmp_paths; i++)
        free(tmp_paths[i]);
    return hp_test_finish("test_card_npy_image", passed);
}
