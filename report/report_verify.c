/* Checking a report folder: see report_verify.h. */
#include "report/report_verify.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/sha256.h"
#include "report/audit_log.h"
#include "report/build_record.h"
#include "report/canonical_json.h"
#include "report/check_list.h"
#include "report/json_file.h"
#include "report/signature.h"
#include "report/signer_registry.h"

/* Revision numbers beyond this are not ours (and would make the loops below long). */
#define MAX_REVISION 100000

typedef struct {
    char id[160];
    char fpr[65];
} given_key;

typedef struct {
    const char *dir;
    hp_check_list *c;
    hp_report_verify_result *res;
    hp_audit_log log;
    int log_ok;
    size_t *event_line; /* event_line[r]: line of revision r's sign/amend event, 0 when none */
    int max_event;
    unsigned char *on_disk; /* on_disk[r]: revisions/r exists */
    int max_disk;
    hp_signer_registry *reg;
    given_key *keys;
    int n_keys;
} vctx;

static const char *str_member(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static int int_member(const cJSON *o, const char *name, long *v)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(n) || n->valuedouble != (double)(long)n->valuedouble)
        return 0;
    *v = (long)n->valuedouble;
    return 1;
}

static int same(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* ---- the audit log's sign and amend events ---- */

static void scan_events(vctx *x)
{
    size_t first_sign = 0;
    for (size_t k = 1; k <= x->log.n; k++) {
        const cJSON *e = cJSON_GetArrayItem(x->log.events, (int)(k - 1));
        const char *ev = str_member(e, "event");
        if (!same(ev, "sign") && !same(ev, "amend")) {
            if (same(ev, "build") && first_sign)
                hp_check_fail(x->c, "audit.jsonl: line %zu records a build after the report was signed (line %zu); "
                                    "a signed report is never rebuilt",
                              k, first_sign);
            continue;
        }
        long r = 0;
        if (!int_member(cJSON_GetObjectItemCaseSensitive(e, "details"), "revision", &r) || r < 1 || r > MAX_REVISION) {
            hp_check_fail(x->c, "audit.jsonl: line %zu is a %s event without a valid revision number", k, ev);
            continue;
        }
        if (!first_sign)
            first_sign = k;
        if ((r == 1) != same(ev, "sign"))
            hp_check_fail(x->c, "audit.jsonl: line %zu records revision %ld as a %s event (revision 1 is signed, "
                                "later ones are amended)",
                          k, r, ev);
        if (r > x->max_event) {
            size_t *grown = realloc(x->event_line, (size_t)(r + 1) * sizeof *grown);
            if (!grown) {
                hp_check_fail(x->c, "audit.jsonl: out of memory");
                return;
            }
            memset(grown + x->max_event + 1, 0, (size_t)(r - x->max_event) * sizeof *grown);
            x->event_line = grown;
            x->max_event = (int)r;
        }
        if (x->event_line[r])
            hp_check_fail(x->c, "audit.jsonl: lines %zu and %zu both record the signing of revision %ld",
                          x->event_line[r], k, r);
        else if (r > 1 && (r - 1 > x->max_event || !x->event_line[r - 1]))
            hp_check_fail(x->c, "audit.jsonl: line %zu records revision %ld before any event of revision %ld", k, r,
                          r - 1);
        else
            x->event_line[r] = k;
    }
}

/* The build record's hash from the last build event before the first signature. */
static const char *recorded_build(const vctx *x)
{
    const char *sha = NULL;
    for (size_t k = 1; k <= x->log.n; k++) {
        const cJSON *e = cJSON_GetArrayItem(x->log.events, (int)(k - 1));
        const char *ev = str_member(e, "event");
        if (same(ev, "sign") || same(ev, "amend"))
            break;
        if (same(ev, "build"))
            sha = str_member(cJSON_GetObjectItemCaseSensitive(e, "details"), "build_record_sha256");
    }
    return sha;
}

/* ---- revisions on disk ---- */

static void scan_revisions(vctx *x)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/revisions", x->dir);
    DIR *d = opendir(path);
    if (!d) {
        if (errno != ENOENT)
            hp_check_fail(x->c, "revisions/: cannot be read: %s", strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *end;
        long n = strtol(e->d_name, &end, 10);
        if (end != e->d_name && e->d_name[0] != '0' && !*end && n >= 1 && n <= MAX_REVISION) {
            if (n > x->max_disk) {
                unsigned char *grown = realloc(x->on_disk, (size_t)n + 1);
                if (!grown) {
                    hp_check_fail(x->c, "revisions/: out of memory");
                    break;
                }
                memset(grown + x->max_disk + 1, 0, (size_t)(n - x->max_disk));
                x->on_disk = grown;
                x->max_disk = (int)n;
            }
            x->on_disk[n] = 1;
        } else if (end != e->d_name && !strncmp(end, ".partial-", 9)) {
            hp_check_note(x->c, "revisions/%.100s: left by an interrupted report sign (not a revision)", e->d_name);
        } else {
            hp_check_fail(x->c, "revisions/%.100s: not a revision (only report sign writes here)", e->d_name);
        }
    }
    closedir(d);
}

/* ---- who signed ---- */

static void check_signer(vctx *x, const char *label, const char *id, const char *fpr, char *how, size_t cap)
{
    if (!x->reg && !x->n_keys) {
        x->res->unverified++;
        snprintf(how, cap, "signature valid, signer NOT verified (no signer registry, no --pubkey)");
        return;
    }
    const char *vouched = NULL;
    for (int k = 0; k < x->n_keys; k++) {
        if (strcmp(x->keys[k].fpr, fpr))
            continue;
        if (strcmp(x->keys[k].id, id)) {
            hp_check_fail(x->c, "%s: signed under the id %s with the key given for %s (--pubkey %s=...): a key "
                                "signs only for its own pathologist",
                          label, id, x->keys[k].id, x->keys[k].id);
            return;
        }
        vouched = "the key given with --pubkey";
    }
    const hp_signer *s = x->reg ? hp_signer_registry_find(x->reg, fpr) : NULL;
    if (s && s->revoked_at[0]) {
        hp_check_fail(x->c, "%s: signed with a key of %s that the signer registry %s revoked at %s%s%s", label,
                      s->pathologist_id, x->reg->path, s->revoked_at, s->revocation_reason ? ": " : "",
                      s->revocation_reason ? s->revocation_reason : "");
        return;
    }
    if (s && strcmp(s->pathologist_id, id)) {
        hp_check_fail(x->c, "%s: signed under the id %s with a key that the signer registry %s binds to %s (key "
                            "%.16s...)",
                      label, id, x->reg->path, s->pathologist_id, fpr);
        return;
    }
    if (s)
        vouched = "the signer registry";
    if (!vouched) {
        hp_check_fail(x->c, "%s: signed by %s with key %.16s..., which is %s: the signer is not verified", label, id,
                      fpr,
                      x->reg && x->n_keys ? "neither in the signer registry nor given with --pubkey"
                      : x->reg            ? "not in the signer registry"
                                          : "not one of the keys given with --pubkey");
        return;
    }
    snprintf(how, cap, "signer verified by %s", vouched);
}

/* ---- one signed revision ---- */

/* Reads a file that must be stored in canonical form; returns the parsed tree or NULL (failure
 * recorded). */
static cJSON *read_canonical(vctx *x, const char *rel, const char *what, char hex[65])
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", x->dir, rel);
    cJSON *root = NULL;
    char *raw = NULL, *canon = NULL;
    size_t raw_len = 0, len = 0;
    hp_error e = {0};
    unsigned char digest[32];
    if (hp_json_file_read_bytes(path, what, &root, &raw, &raw_len, &e)) {
        hp_check_fail(x->c, "%s: %s", rel, e.msg);
        return NULL;
    }
    if (!(canon = hp_json_canonicalize(root, &len, &e))) {
        hp_check_fail(x->c, "%s: %s", rel, e.msg);
    } else if (raw_len != len || memcmp(raw, canon, len)) {
        hp_check_fail(x->c, "%s: not the canonical (RFC 8785) text report sign wrote: changed after signing", rel);
    }
    if (hex)
        hp_sha256(canon ? canon : "", canon ? len : 0, digest, hex);
    free(raw);
    free(canon);
    return root;
}

static int decode(const char *b64, unsigned char *out, size_t want)
{
    size_t n = 0;
    hp_error e = {0};
    return b64 && !hp_base64_decode(b64, out, want, &n, &e) && n == want;
}

/* signature.json: its members, each once and of its type. */
static int signature_shape(vctx *x, const char *label, const cJSON *sig)
{
    static const char *const strings[] = {"algorithm",  "signed_content", "report_sha256",   "signature",
                                          "public_key", "key_fingerprint", "pathologist_id", "signed_at",
                                          "manifest_sha256", "manifest_signature"};
    int n_members = cJSON_GetArraySize(sig);
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        if (!str_member(sig, strings[i])) {
            hp_check_fail(x->c, "%s/signature.json: %s is missing or not text%s", label, strings[i],
                          !strcmp(strings[i], "manifest_sha256")
                              ? " (signed by an older histoplan: its HTML, FHIR and images are not covered)"
                              : "");
            return 0;
        }
    long r;
    if (!int_member(sig, "revision", &r) || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(sig, "manifest")) ||
        n_members != 12) {
        hp_check_fail(x->c, "%s/signature.json: needs exactly algorithm, signed_content, revision, report_sha256, "
                            "signature, public_key, key_fingerprint, pathologist_id, signed_at, manifest, "
                            "manifest_sha256 and manifest_signature",
                      label);
        return 0;
    }
    if (strcmp(str_member(sig, "algorithm"), "Ed25519") || strcmp(str_member(sig, "signed_content"), HP_SIGNED_CONTENT)) {
        hp_check_fail(x->c, "%s/signature.json: algorithm or signed_content is not what report sign writes", label);
        return 0;
    }
    return 1;
}

/* The manifest's digests against the files, and nothing in images/ left uncovered. */
static void check_files(vctx *x, const char *label, int rev, const cJSON *files)
{
    static const char *const own[] = {"report.json", "report.html", "report.fhir.json"};
    char rel[PATH_MAX], path[PATH_MAX], hex[65];
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
        snprintf(rel, sizeof rel, "revisions/%d/%s", rev, own[i]);
        if (!str_member(files, rel))
            hp_check_fail(x->c, "%s/signature.json: its manifest names no SHA-256 for %s", label, rel);
    }
    for (const cJSON *f = files ? files->child : NULL; f; f = f->next) {
        int mine = !strncmp(f->string, label, strlen(label)) && f->string[strlen(label)] == '/';
        int image = !strncmp(f->string, "images/", 7) && !strchr(f->string + 7, '/') && !strstr(f->string, "..");
        if (!cJSON_IsString(f) || !(mine || image)) {
            hp_check_fail(x->c, "%s/signature.json: its manifest names \"%.100s\", not a file of this revision", label,
                          f->string);
            continue;
        }
        hp_error e = {0};
        snprintf(path, sizeof path, "%s/%s", x->dir, f->string);
        if (hp_sha256_file(path, hex, &e))
            hp_check_fail(x->c, "%s: missing or unreadable (signed in %s/signature.json)", f->string, label);
        else if (strcmp(hex, f->valuestring))
            hp_check_fail(x->c, "%s: does not match the SHA-256 signed in %s/signature.json (changed after signing)",
                          f->string, label);
    }
    cJSON *present = cJSON_CreateObject();
    hp_error e = {0};
    if (present && !hp_report_digest_images(x->dir, present, &e)) {
        for (const cJSON *f = present->child; f; f = f->next)
            if (!cJSON_GetObjectItemCaseSensitive(files, f->string))
                hp_check_fail(x->c, "%s: not covered by the signature of revision %d (added after signing)", f->string,
                              rev);
    } else {
        hp_check_fail(x->c, "images/: %s", e.msg[0] ? e.msg : "out of memory");
    }
    cJSON_Delete(present);
    /* A revision holds its four files and nothing else. */
    snprintf(path, sizeof path, "%s/%s", x->dir, label);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "signature.json"))
            continue;
        snprintf(rel, sizeof rel, "%s/%s", label, de->d_name);
        if (!cJSON_GetObjectItemCaseSensitive(files, rel))
            hp_check_fail(x->c, "%.200s: not part of the signed revision", rel);
    }
    if (d)
        closedir(d);
}

/* The report's own fields against the manifest (a validly signed report may still lack them). */
static void check_report_fields(vctx *x, const char *label, int rev, const cJSON *report, const cJSON *m,
                                const char *fpr, const char *prev_hex)
{
    long r = -1;
    const char *status = str_member(report, "status");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(report, "sign_off");
    const cJSON *sup = cJSON_GetObjectItemCaseSensitive(so, "supersedes");
    const cJSON *msup = cJSON_GetObjectItemCaseSensitive(m, "supersedes");
    if (!int_member(report, "revision", &r) || r != rev)
        hp_check_fail(x->c, "%s/report.json: its revision is %s, not %d", label,
                      cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(report, "revision")) ? "another" : "missing", rev);
    if (!status)
        hp_check_fail(x->c, "%s/report.json: has no status (final or amended expected)", label);
    else if (strcmp(status, rev == 1 ? "final" : "amended"))
        hp_check_fail(x->c, "%s/report.json: status \"%.40s\", expected %s", label, status,
                      rev == 1 ? "final" : "amended");
    if (!cJSON_IsObject(so)) {
        hp_check_fail(x->c, "%s/report.json: has no sign_off", label);
        return;
    }
    if (!str_member(so, "pathologist_id"))
        hp_check_fail(x->c, "%s/report.json: has no sign_off.pathologist_id", label);
    else if (!same(str_member(so, "pathologist_id"), str_member(m, "pathologist_id")))
        hp_check_fail(x->c, "%s/report.json: sign_off.pathologist_id is not the signer named in signature.json",
                      label);
    if (!same(str_member(so, "signed_at"), str_member(m, "signed_at")))
        hp_check_fail(x->c, "%s/report.json: sign_off.signed_at is missing or not the signing time in signature.json",
                      label);
    if (!same(str_member(so, "key_fingerprint"), fpr))
        hp_check_fail(x->c, "%s/report.json: sign_off.key_fingerprint is missing or names another key than the "
                            "signature's",
                      label);
    if (!same(str_member(report, "report_id"), str_member(m, "report_id")))
        hp_check_fail(x->c, "%s/report.json: report_id is missing or not the one signed", label);
    long sr = -1, mr = -1;
    if (!int_member(sup, "revision", &sr) || sr != rev - 1 || !int_member(msup, "revision", &mr) || mr != rev - 1 ||
        !same(str_member(sup, "report_sha256"), str_member(msup, "report_sha256")))
        hp_check_fail(x->c, "%s: sign_off.supersedes is missing or disagrees with signature.json", label);
    else if (prev_hex && !same(str_member(sup, "report_sha256"), prev_hex))
        hp_check_fail(x->c, "%s: does not supersede %s as recorded (the chain of revisions is broken)", label,
                      rev == 1 ? "the draft" : "the revision before it");
}

/* The audit log against the revision: the head it covers, and its own event. */
static void check_audit(vctx *x, const char *label, int rev, const cJSON *m, const char *report_hex,
                        const char *manifest_hex, const char *fpr)
{
    if (!x->log_ok)
        return;
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(m, "audit_log");
    long k = -1;
    const char *head = str_member(al, "last_line_sha256");
    if (!int_member(al, "events", &k) || k < 0 || !head) {
        hp_check_fail(x->c, "%s/signature.json: its manifest records no audit log head", label);
        return;
    }
    const char *now = hp_audit_line_sha256(&x->log, (size_t)k);
    if (!now)
        hp_check_fail(x->c, "audit.jsonl: has %zu lines, but revision %d was signed when it had %ld (lines were "
                            "removed from its end)",
                      x->log.n, rev, k);
    else if (strcmp(now, head))
        hp_check_fail(x->c, "audit.jsonl: line %ld is not what it was when revision %d was signed (the log was "
                            "rewritten)",
                      k, rev);
    size_t line = rev <= x->max_event ? x->event_line[rev] : 0;
    if (!line) {
        hp_check_fail(x->c, "audit.jsonl: records no %s event for revision %d (lines were removed from its end, or %s "
                            "was not made by report sign)",
                      rev == 1 ? "sign" : "amend", rev, label);
        return;
    }
    const cJSON *e = cJSON_GetArrayItem(x->log.events, (int)(line - 1));
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "details");
    if ((long)line <= k)
        hp_check_fail(x->c, "audit.jsonl: line %zu records revision %d before the head its signature covers", line,
                      rev);
    if (!same(str_member(d, "report_sha256"), report_hex) || !same(str_member(d, "manifest_sha256"), manifest_hex) ||
        !same(str_member(d, "key_fingerprint"), fpr) || !same(str_member(e, "actor"), str_member(m, "pathologist_id")) ||
        !same(str_member(e, "time"), str_member(m, "signed_at")))
        hp_check_fail(x->c, "audit.jsonl: line %zu does not match %s (its hashes, key, signer or time differ)", line,
                      label);
}

/* Checks revision `rev`; hex_out receives its report's canonical SHA-256 ("" when unknown). */
static void verify_revision(vctx *x, int rev, const char *prev_hex, char hex_out[65])
{
    char label[48], rel[PATH_MAX];
    hex_out[0] = '\0';
    snprintf(label, sizeof label, "revisions/%d", rev);
    int before = x->c->failures;
    if (rev > x->max_disk || !x->on_disk[rev]) {
        size_t line = rev <= x->max_event ? x->event_line[rev] : 0;
        if (line)
            hp_check_fail(x->c, "%s: missing, but audit.jsonl line %zu records its signing (deleted)", label, line);
        else
            hp_check_fail(x->c, "%s: missing, but revision %d exists (deleted)", label,
                          x->max_disk > rev ? x->max_disk : x->max_event);
        return;
    }
    char report_hex[65] = "", sig_hex[65];
    snprintf(rel, sizeof rel, "%s/report.json", label);
    cJSON *report = read_canonical(x, rel, "report", report_hex);
    snprintf(rel, sizeof rel, "%s/signature.json", label);
    cJSON *sig = read_canonical(x, rel, "signature", sig_hex);
    char *mcanon = NULL;
    if (!report || !sig || !signature_shape(x, label, sig))
        goto done;
    memcpy(hex_out, report_hex, 65);
    unsigned char pub[32], s1[64], s2[64], digest[32];
    char fpr[65], mhex[65];
    if (!decode(str_member(sig, "public_key"), pub, 32) || !decode(str_member(sig, "signature"), s1, 64) ||
        !decode(str_member(sig, "manifest_signature"), s2, 64)) {
        hp_check_fail(x->c, "%s/signature.json: public_key, signature or manifest_signature is not valid Base64 of "
                            "the right length",
                      label);
        goto done;
    }
    hp_key_fingerprint(pub, fpr);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(sig, "manifest");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
    snprintf(rel, sizeof rel, "%s/report.json", label);
    long mrev = -1;
    if (!same(str_member(sig, "key_fingerprint"), fpr) || !same(str_member(m, "key_fingerprint"), fpr))
        hp_check_fail(x->c, "%s/signature.json: key_fingerprint is not the SHA-256 of its public_key", label);
    if (!same(str_member(m, "format"), HP_MANIFEST_FORMAT) || !int_member(m, "revision", &mrev) || mrev != rev ||
        !int_member(sig, "revision", &mrev) || mrev != rev ||
        !same(str_member(sig, "pathologist_id"), str_member(m, "pathologist_id")) ||
        !same(str_member(sig, "signed_at"), str_member(m, "signed_at")) ||
        !same(str_member(sig, "signature"), str_member(m, "report_signature")) ||
        !same(str_member(sig, "report_sha256"), str_member(files, rel)) ||
        !hp_pathologist_id_valid(str_member(m, "pathologist_id")))
        hp_check_fail(x->c, "%s/signature.json: its fields disagree with its manifest (format %s, revision %d, signer, "
                            "time, report hash or signature)",
                      label, HP_MANIFEST_FORMAT, rev);
    if (!same(str_member(sig, "report_sha256"), report_hex))
        hp_check_fail(x->c, "%s/report.json: its SHA-256 %.16s... is not the signed %.16s... (changed after signing)",
                      label, report_hex, str_member(sig, "report_sha256"));
    hp_error e = {0};
    unsigned char rd[32];
    for (int i = 0; i < 32; i++)
        sscanf(report_hex + 2 * i, "%2hhx", &rd[i]);
    if (hp_ed25519_verify(pub, rd, 32, s1, &e))
        hp_check_fail(x->c, "%s/signature.json: the report signature does not verify against report.json (%s)", label,
                      e.msg);
    size_t mlen = 0;
    if (!(mcanon = hp_json_canonicalize(m, &mlen, &e)) || hp_sha256(mcanon, mlen, digest, mhex)) {
        hp_check_fail(x->c, "%s/signature.json: its manifest cannot be canonicalized (%s)", label, e.msg);
        goto done;
    }
    if (!same(str_member(sig, "manifest_sha256"), mhex))
        hp_check_fail(x->c, "%s/signature.json: manifest_sha256 is not the SHA-256 of its manifest", label);
    hp_error_clear(&e);
    if (hp_ed25519_verify(pub, digest, 32, s2, &e))
        hp_check_fail(x->c, "%s/signature.json: the manifest signature does not verify (%s)", label, e.msg);
    check_files(x, label, rev, files);
    check_report_fields(x, label, rev, report, m, fpr, prev_hex);
    check_audit(x, label, rev, m, report_hex, mhex, fpr);
    if (x->c->failures == before) {
        char how[200] = "";
        check_signer(x, label, str_member(m, "pathologist_id"), fpr, how, sizeof how);
        if (x->c->failures == before)
            hp_check_ok(x->c, "%s: %s, signed as %s at %s, key %.16s..., SHA-256 %s; every file as signed; %s", label,
                        str_member(report, "status"), str_member(m, "pathologist_id"), str_member(m, "signed_at"), fpr,
                        report_hex, how);
    }
done:
    free(mcanon);
    cJSON_Delete(report);
    cJSON_Delete(sig);
}

/* ---- the whole folder ---- */

static hp_status load_trust(vctx *x, const hp_report_verify_opts *o, hp_error *err)
{
    hp_status st;
    if (o && o->n_keys > 0) {
        if (!(x->keys = calloc((size_t)o->n_keys, sizeof *x->keys)))
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        for (int k = 0; k < o->n_keys; k++) {
            unsigned char pub[32];
            if (!hp_pathologist_id_valid(o->keys[k].pathologist_id))
                return hp_error_set(err, HP_ERR_INVALID, "--pubkey: the pathologist id before '=' is not valid");
            if ((st = hp_ed25519_load_public(o->keys[k].pubkey_path, pub, err)))
                return st;
            snprintf(x->keys[k].id, sizeof x->keys[k].id, "%s", o->keys[k].pathologist_id);
            hp_key_fingerprint(pub, x->keys[k].fpr);
            for (int j = 0; j < k; j++)
                if (!strcmp(x->keys[j].fpr, x->keys[k].fpr) && strcmp(x->keys[j].id, x->keys[k].id))
                    return hp_error_set(err, HP_ERR_INVALID,
                                        "--pubkey: %s is given for both %s and %s; a key belongs to one pathologist",
                                        o->keys[k].pubkey_path, x->keys[j].id, x->keys[k].id);
            x->n_keys = k + 1;
        }
    }
    if (o && o->no_registry)
        return HP_OK;
    char path[PATH_MAX];
    int missing_ok = !(o && o->registry_path);
    if (o && o->registry_path)
        snprintf(path, sizeof path, "%s", o->registry_path);
    else if (hp_signer_registry_default_path(path, sizeof path, NULL))
        return HP_OK;
    struct stat sb;
    if (missing_ok && stat(path, &sb) && errno == ENOENT)
        return HP_OK; /* no default registry: signers stay unverified unless keys are given */
    return hp_signer_registry_load(path, 0, &x->reg, err);
}

hp_status hp_report_verify(const char *dir, const hp_report_verify_opts *opts, FILE *out,
                           hp_report_verify_result *res, hp_error *err)
{
    hp_report_verify_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    hp_check_list c = {.out = out};
    vctx x = {.dir = dir, .c = &c, .res = res};
    hp_status st = load_trust(&x, opts, err);
    if (st)
        goto fail;
    if (out) {
        if (x.reg || x.n_keys)
            fprintf(out, "signers: checked against %s%s%s%s\n", x.reg ? "the signer registry " : "",
                    x.reg ? x.reg->path : "", x.reg && x.n_keys ? " and " : "",
                    x.n_keys ? "the keys given with --pubkey" : "");
        else if (!opts || !opts->no_registry)
            fprintf(out, "signers: no signer registry and no --pubkey: signatures are checked, signers are not\n");
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    hp_error e = {0};
    if (hp_audit_read(path, &x.log, &e)) {
        hp_check_fail(&c, "%s", e.msg); /* names the log by its path */
    } else {
        x.log_ok = 1;
        hp_check_ok(&c, "audit.jsonl: %zu events, hash chain intact", x.log.n);
        scan_events(&x);
    }
    scan_revisions(&x);

    /* The draft: as report build wrote it. */
    char prev_hex[65] = "";
    int draft_bad = hp_build_record_check(dir, x.log_ok ? recorded_build(&x) : NULL, &c);
    snprintf(path, sizeof path, "%s/report.json", dir);
    cJSON *draft = NULL;
    char *canon = NULL;
    size_t len = 0;
    unsigned char d[32];
    hp_error_clear(&e);
    if (hp_json_file_read(path, "report", &draft, NULL, &e) || !(canon = hp_json_canonicalize(draft, &len, &e))) {
        hp_check_fail(&c, "report.json: %s", e.msg);
        draft_bad++;
    } else {
        hp_sha256(canon, len, d, prev_hex);
    }
    free(canon);
    cJSON_Delete(draft);
    if (!draft_bad)
        hp_check_ok(&c, "draft (revision 0, preliminary, unsigned): report.json, report.html, report.fhir.json and "
                        "images as report build wrote them; SHA-256 %s",
                    prev_hex);

    int last = x.max_disk > x.max_event ? x.max_disk : x.max_event;
    res->revisions = last;
    if (last == 0)
        hp_check_note(&c, "the report is not signed yet (status preliminary)");
    for (int rev = 1; rev <= last; rev++) {
        char hex[65];
        verify_revision(&x, rev, prev_hex[0] ? prev_hex : NULL, hex);
        memcpy(prev_hex, hex, sizeof prev_hex);
    }
    res->failures = c.failures;
    memcpy(res->first_failure, c.first, sizeof c.first);
    if (c.failures)
        st = hp_error_set(err, HP_ERR_INVALID, "report %s: %d check(s) failed; the first: %s", dir, c.failures,
                          c.first);
fail:
    hp_audit_log_free(&x.log);
    free(x.event_line);
    free(x.on_disk);
    free(x.keys);
    hp_signer_registry_free(x.reg);
    return st;
}

int hp_report_signed(const char *dir, int *revision, hp_error *err)
{
    char path[PATH_MAX];
    int best = 0, found = 0;
    snprintf(path, sizeof path, "%s/revisions", dir);
    DIR *d = opendir(path);
    if (!d && errno != ENOENT) {
        hp_error_set(err, HP_ERR_IO, "report %s: cannot read its revisions: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        long n = strtol(e->d_name, &end, 10);
        /* only plain numbers; temporaries (N.partial-PID) are not revisions */
        if (end != e->d_name && !*end && n >= 1 && n <= MAX_REVISION) {
            found = 1;
            best = n > best ? (int)n : best;
        }
    }
    if (d)
        closedir(d);
    /* The log is read line by line without trusting its chain: a damaged log that records a
     * signature still protects the folder. */
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        const char *ev = str_member(o, "event");
        if (same(ev, "sign") || same(ev, "amend")) {
            long r = 1;
            int_member(cJSON_GetObjectItemCaseSensitive(o, "details"), "revision", &r);
            found = 1;
            best = r > best && r <= MAX_REVISION ? (int)r : best;
        }
        cJSON_Delete(o);
    }
    free(line);
    if (f)
        fclose(f);
    if (revision)
        *revision = best;
    return found;
}
