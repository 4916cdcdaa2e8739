/* The signer registry: see signer_registry.h. */
#include "report/signer_registry.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/atomic_file.h"
#include "common/utf8.h"
#include "report/json_file.h"
#include "report/signature.h"

int hp_pathologist_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 128 || hp_utf8_invalid_at(id, n) != (size_t)-1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f || id[i] == '=')
            return 0;
    return 1;
}

hp_status hp_signer_registry_default_path(char *out, size_t cap, hp_error *err)
{
    const char *cfg = getenv("HP_CONFIG_DIR"), *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    if (cfg && cfg[0])
        n = snprintf(out, cap, "%s/signers.json", cfg);
    else if (xdg && xdg[0] == '/')
        n = snprintf(out, cap, "%s/histoplan/signers.json", xdg);
    else if (home && home[0])
        n = snprintf(out, cap, "%s/.config/histoplan/signers.json", home);
    else
        return hp_error_set(err, HP_ERR_INVALID,
                            "no configuration folder for the signer registry: set HP_CONFIG_DIR or give --registry FILE");
    if (n < 0 || (size_t)n >= cap)
        return hp_error_set(err, HP_ERR_INVALID, "the signer registry's path is too long");
    return HP_OK;
}

void hp_signer_registry_free(hp_signer_registry *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        free(r->signers[i].pathologist_id);
        free(r->signers[i].revocation_reason);
    }
    free(r->signers);
    free(r->path);
    free(r);
}

const hp_signer *hp_signer_registry_find(const hp_signer_registry *r, const char *fingerprint)
{
    for (int i = 0; r && i < r->n; i++)
        if (!strcmp(r->signers[i].key_fingerprint, fingerprint))
            return &r->signers[i];
    return NULL;
}

static int utc_stamp(const char *s)
{
    static const char form[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof form - 1)
        return 0;
    for (size_t i = 0; form[i]; i++)
        if (form[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != form[i])
            return 0;
    return 1;
}

/* One entry of the "signers" array into `s`. */
static hp_status parse_signer(const char *path, int k, const cJSON *o, hp_signer *s, hp_error *err)
{
    static const char *const allowed[] = {"pathologist_id", "key_fingerprint", "public_key",
                                          "added_at",       "revoked_at",      "revocation_reason"};
    if (!cJSON_IsObject(o))
        return hp_error_set(err, HP_ERR_INVALID, "signer registry %s: signers[%d] is not an object", path, k);
    for (const cJSON *m = o->child; m; m = m->next) {
        int known = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
            known |= !strcmp(m->string, allowed[i]);
        if (!known)
            return hp_error_set(err, HP_ERR_INVALID, "signer registry %s: signers[%d] has an unknown field '%.100s'",
                                path, k, m->string);
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "pathologist_id");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(o, "key_fingerprint");
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "public_key");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(o, "added_at");
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(o, "revoked_at");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(o, "revocation_reason");
    if (!cJSON_IsString(id) || !hp_pathologist_id_valid(id->valuestring))
        return hp_error_set(err, HP_ERR_INVALID,
                            "signer registry %s: signers[%d].pathologist_id must be 1 to 128 characters, no control "
                            "characters or '='",
                            path, k);
    size_t n = 0;
    hp_error e = {0};
    if (!cJSON_IsString(pk) || hp_base64_decode(pk->valuestring, s->public_key, 32, &n, &e) || n != 32)
        return hp_error_set(err, HP_ERR_INVALID,
                            "signer registry %s: signers[%d].public_key must be the Base64 of a raw 32-byte Ed25519 "
                            "public key",
                            path, k);
    hp_key_fingerprint(s->public_key, s->key_fingerprint);
    if (!cJSON_IsString(fp) || strcmp(fp->valuestring, s->key_fingerprint))
        return hp_error_set(err, HP_ERR_INVALID,
                            "signer registry %s: signers[%d].key_fingerprint is not the SHA-256 of its public_key", path,
                            k);
    if (!cJSON_IsString(added) || !utc_stamp(added->valuestring) ||
        !(cJSON_IsNull(rev) || (cJSON_IsString(rev) && utc_stamp(rev->valuestring))) ||
        !(cJSON_IsNull(why) || cJSON_IsString(why)))
        return hp_error_set(err, HP_ERR_INVALID,
                            "signer registry %s: signers[%d] needs added_at (UTC time), revoked_at (UTC time or null) "
                            "and revocation_reason (text or null)",
                            path, k);
    snprintf(s->added_at, sizeof s->added_at, "%s", added->valuestring);
    snprintf(s->revoked_at, sizeof s->revoked_at, "%s", cJSON_IsString(rev) ? rev->valuestring : "");
    s->pathologist_id = strdup(id->valuestring);
    s->revocation_reason = cJSON_IsString(why) ? strdup(why->valuestring) : NULL;
    if (!s->pathologist_id || (cJSON_IsString(why) && !s->revocation_reason))
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    return HP_OK;
}

hp_status hp_signer_registry_load(const char *path, int missing_ok, hp_signer_registry **out, hp_error *err)
{
    *out = NULL;
    cJSON *root = NULL;
    hp_status st = HP_OK;
    hp_signer_registry *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    struct stat sb;
    if (stat(path, &sb)) {
        if (errno == ENOENT && missing_ok) {
            *out = r;
            return HP_OK;
        }
        st = hp_error_set(err, HP_ERR_IO, "signer registry %s: %s", path, strerror(errno));
        goto fail;
    }
    if (sb.st_mode & S_IWOTH) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "signer registry %s: anyone can write to it (mode %04o), so anyone could add a key; make "
                          "it writable by its owner only (chmod 644 %s)",
                          path, (unsigned)(sb.st_mode & 07777), path);
        goto fail;
    }
    if ((st = hp_json_file_read(path, "signer registry", &root, NULL, err)))
        goto fail;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "signers");
    if (!cJSON_IsObject(root) || cJSON_GetArraySize(root) != 2 || !cJSON_IsString(fmt) ||
        strcmp(fmt->valuestring, HP_SIGNERS_FORMAT) || !cJSON_IsArray(list)) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "signer registry %s: must be {\"format\": \"%s\", \"signers\": [...]}", path,
                          HP_SIGNERS_FORMAT);
        goto fail;
    }
    int n = cJSON_GetArraySize(list);
    if (n && !(r->signers = calloc((size_t)n, sizeof *r->signers))) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int k = 0;
    for (const cJSON *o = list->child; o; o = o->next, k++) {
        r->n = k + 1;
        if ((st = parse_signer(path, k, o, &r->signers[k], err)))
            goto fail;
        for (int j = 0; j < k; j++)
            if (!strcmp(r->signers[j].key_fingerprint, r->signers[k].key_fingerprint)) {
                st = hp_error_set(err, HP_ERR_INVALID,
                                  "signer registry %s: signers[%d] and signers[%d] hold the same key (a key belongs to "
                                  "one pathologist)",
                                  path, j, k);
                goto fail;
            }
    }
    *out = r;
    r = NULL;
fail:
    cJSON_Delete(root);
    hp_signer_registry_free(r);
    return st;
}

/* ---- changes ---- */

/* Creates `dir` and its missing parents (0755). */
static hp_status make_dirs(const char *dir, hp_error *err)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof buf, "%s", dir);
    if (n < 0 || (size_t)n >= sizeof buf)
        return hp_error_set(err, HP_ERR_INVALID, "%s: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) && errno != EEXIST)
                return hp_error_set(err, HP_ERR_IO, "%s: %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    return HP_OK;
}

static hp_status save(const hp_signer_registry *r, hp_error *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root && cJSON_AddStringToObject(root, "format", HP_SIGNERS_FORMAT)
                      ? cJSON_AddArrayToObject(root, "signers")
                      : NULL;
    hp_status st = HP_OK;
    if (!list) {
        cJSON_Delete(root);
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < r->n; i++) {
        const hp_signer *s = &r->signers[i];
        cJSON *o = cJSON_CreateObject();
        char *b64 = hp_base64_encode(s->public_key, 32);
        cJSON_AddStringToObject(o, "pathologist_id", s->pathologist_id);
        cJSON_AddStringToObject(o, "key_fingerprint", s->key_fingerprint);
        cJSON_AddStringToObject(o, "public_key", b64 ? b64 : "");
        cJSON_AddStringToObject(o, "added_at", s->added_at);
        if (s->revoked_at[0])
            cJSON_AddStringToObject(o, "revoked_at", s->revoked_at);
        else
            cJSON_AddNullToObject(o, "revoked_at");
        if (s->revocation_reason)
            cJSON_AddStringToObject(o, "revocation_reason", s->revocation_reason);
        else
            cJSON_AddNullToObject(o, "revocation_reason");
        cJSON_AddItemToArray(list, o);
        free(b64);
    }
    char *text = cJSON_Print(root);
    st = text ? hp_atomic_write_text(r->path, text, err) : hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    free(text);
    cJSON_Delete(root);
    return st;
}

/* Locks the registry's folder (created when absent) for a read-change-write; returns the fd. */
static int lock_folder(const char *path, hp_error *err)
{
    char *copy = strdup(path);
    if (!copy) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        return -1;
    }
    const char *dir = dirname(copy);
    int fd = -1;
    if (!make_dirs(dir, err)) {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            hp_error_set(err, HP_ERR_IO, "%s: %s", dir, strerror(errno));
        while (fd >= 0 && flock(fd, LOCK_EX)) {
            if (errno != EINTR) {
                hp_error_set(err, HP_ERR_IO, "%s: cannot lock: %s", dir, strerror(errno));
                close(fd);
                fd = -1;
            }
        }
    }
    free(copy);
    return fd;
}

hp_status hp_signer_registry_add(const char *path, const char *pathologist_id, const char *pubkey_pem,
                                 char fingerprint[65], hp_error *err)
{
    if (!hp_pathologist_id_valid(pathologist_id))
        return hp_error_set(err, HP_ERR_INVALID,
                            "a pathologist id must be 1 to 128 characters, without control characters or '='");
    unsigned char pub[32];
    char fpr[65];
    hp_status st = hp_ed25519_load_public(pubkey_pem, pub, err);
    if (st)
        return st;
    hp_key_fingerprint(pub, fpr);
    hp_signer_registry *r = NULL;
    int lock = lock_folder(path, err);
    if (lock < 0)
        return err->code;
    if ((st = hp_signer_registry_load(path, 1, &r, err)))
        goto fail;
    const hp_signer *old = hp_signer_registry_find(r, fpr);
    if (old) {
        st = old->revoked_at[0]
                 ? hp_error_set(err, HP_ERR_INVALID,
                                "signer registry %s: the key in %s (fingerprint %.16s...) was revoked at %s; a revoked "
                                "key is never trusted again: make a new key",
                                path, pubkey_pem, fpr, old->revoked_at)
                 : hp_error_set(err, HP_ERR_INVALID,
                                "signer registry %s: the key in %s (fingerprint %.16s...) is already registered to "
                                "%s%s",
                                path, pubkey_pem, fpr, old->pathologist_id,
                                strcmp(old->pathologist_id, pathologist_id) ? " (a key belongs to one pathologist)" : "");
        goto fail;
    }
    hp_signer *grown = realloc(r->signers, (size_t)(r->n + 1) * sizeof *grown);
    if (!grown) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    r->signers = grown;
    hp_signer *s = &r->signers[r->n];
    memset(s, 0, sizeof *s);
    if (!(s->pathologist_id = strdup(pathologist_id))) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    r->n++;
    memcpy(s->public_key, pub, 32);
    memcpy(s->key_fingerprint, fpr, 65);
    hp_utc_format(time(NULL), s->added_at);
    if ((st = save(r, err)))
        goto fail;
    if (fingerprint)
        memcpy(fingerprint, fpr, 65);
fail:
    hp_signer_registry_free(r);
    close(lock);
    return st;
}

hp_status hp_signer_registry_revoke(const char *path, const char *pathologist_id, const char *fingerprint,
                                    const char *reason, hp_error *err)
{
    hp_signer_registry *r = NULL;
    hp_status st;
    struct stat sb;
    if (stat(path, &sb))
        return hp_error_set(err, HP_ERR_IO, "signer registry %s: %s", path, strerror(errno));
    int lock = lock_folder(path, err);
    if (lock < 0)
        return err->code;
    if ((st = hp_signer_registry_load(path, 0, &r, err)))
        goto fail;
    hp_signer *s = (hp_signer *)hp_signer_registry_find(r, fingerprint);
    if (!s || strcmp(s->pathologist_id, pathologist_id)) {
        st = hp_error_set(err, HP_ERR_INVALID, "signer registry %s: %s has no key with fingerprint %.64s", path,
                          pathologist_id, fingerprint);
        goto fail;
    }
    if (s->revoked_at[0]) {
        st = hp_error_set(err, HP_ERR_INVALID, "signer registry %s: that key of %s was already revoked at %s", path,
                          pathologist_id, s->revoked_at);
        goto fail;
    }
    hp_utc_format(time(NULL), s->revoked_at);
    if (reason && !(s->revocation_reason = strdup(reason))) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    st = save(r, err);
fail:
    hp_signer_registry_free(r);
    close(lock);
    return st;
}
