/* Enrolled signing keys and the passphrase lockout (server/signing_keys.h). */
#include "server/signing_keys.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic_file.h"
#include "report/signer_registry.h"
#include "server/ids.h"

static hp_status read_small(const char *path, char *buf, size_t cap, size_t *len, hp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: %s", path, strerror(errno));
    *len = fread(buf, 1, cap - 1, f);
    int big = !feof(f) && fgetc(f) != EOF;
    fclose(f);
    buf[*len] = 0;
    if (big)
        return hp_error_set(err, HP_ERR_INVALID, "%s: too large for a key file", path);
    return HP_OK;
}

hp_status hp_signing_key_enrol(const char *data_dir, const char *token_id, const char *pathologist_id,
                               const char *key_pem, hp_error *err)
{
    if (!hp_id_valid('t', token_id))
        return hp_error_set(err, HP_ERR_INVALID, "'%s' is not a token id (t_...; histoplan serve token list)", token_id);
    if (!hp_pathologist_id_valid(pathologist_id))
        return hp_error_set(err, HP_ERR_INVALID,
                            "the pathologist id must be 1 to 128 characters, without control characters or '='");
    char pem[16384], path[PATH_MAX];
    size_t len = 0;
    hp_status st = read_small(key_pem, pem, sizeof pem, &len, err);
    if (st)
        return st;
    /* Only an encrypted key may rest in the data folder: a copy of the folder must not sign. */
    if (!strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s is not an encrypted PKCS#8 private key; encrypt it with its owner's passphrase first "
                            "(openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY.pem -out KEY.enc.pem)",
                            key_pem);
    snprintf(path, sizeof path, "%s/%s", data_dir, HP_SIGNERS_DIR);
    if (mkdir(path, 0700) && errno != EEXIST)
        return hp_error_set(err, HP_ERR_IO, "%s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s/%s.pem", data_dir, HP_SIGNERS_DIR, token_id);
    hp_atomic_file af;
    if ((st = hp_atomic_open(path, &af, err)))
        return st;
    fchmod(fileno(af.f), 0600);
    if ((st = hp_atomic_finish(path, &af, fwrite(pem, 1, len, af.f) == len, err)))
        return st;
    snprintf(path, sizeof path, "%s/%s/%s.id", data_dir, HP_SIGNERS_DIR, token_id);
    return hp_atomic_write_text(path, pathologist_id, err);
}

int hp_signing_key_find(const char *data_dir, const char *token_id, char key_path[PATH_MAX],
                        char pathologist_id[160], hp_error *err)
{
    char path[PATH_MAX];
    struct stat sb;
    if (!hp_id_valid('t', token_id))
        return 0;
    snprintf(key_path, PATH_MAX, "%s/%s/%s.pem", data_dir, HP_SIGNERS_DIR, token_id);
    snprintf(path, sizeof path, "%s/%s/%s.id", data_dir, HP_SIGNERS_DIR, token_id);
    if (stat(key_path, &sb) != 0 || stat(path, &sb) != 0)
        return 0;
    size_t len = 0;
    if (read_small(path, pathologist_id, 160, &len, err))
        return -1;
    while (len && (pathologist_id[len - 1] == '\n' || pathologist_id[len - 1] == '\r'))
        pathologist_id[--len] = 0;
    return 1;
}

/* ---- lockout ---- */

#define LOCK_SLOTS 64

typedef struct {
    char token[40];
    int failures;
    int64_t first_ms, locked_until;
} attempt;

static attempt g_attempts[LOCK_SLOTS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

/* The token's slot (made on first use; the oldest is reused when all are taken). */
static attempt *slot(const char *token_id)
{
    attempt *oldest = &g_attempts[0];
    for (int i = 0; i < LOCK_SLOTS; i++) {
        if (!strcmp(g_attempts[i].token, token_id))
            return &g_attempts[i];
        if (g_attempts[i].first_ms < oldest->first_ms)
            oldest = &g_attempts[i];
    }
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->token, sizeof oldest->token, "%s", token_id);
    return oldest;
}

int hp_sign_locked_for(const char *token_id, int64_t now)
{
    pthread_mutex_lock(&g_mu);
    attempt *a = slot(token_id);
    int s = a->locked_until > now ? (int)((a->locked_until - now + 999) / 1000) : 0;
    pthread_mutex_unlock(&g_mu);
    return s;
}

void hp_sign_failed(const char *token_id, int64_t now)
{
    pthread_mutex_lock(&g_mu);
    attempt *a = slot(token_id);
    if (!a->failures || now - a->first_ms > HP_SIGN_WINDOW_MS) {
        a->failures = 0;
        a->first_ms = now;
    }
    if (++a->failures >= HP_SIGN_MAX_FAILURES) {
        a->locked_until = now + HP_SIGN_LOCK_MS;
        a->failures = 0;
    }
    pthread_mutex_unlock(&g_mu);
}

void hp_sign_succeeded(const char *token_id)
{
    pthread_mutex_lock(&g_mu);
    attempt *a = slot(token_id);
    a->failures = 0;
    pthread_mutex_unlock(&g_mu);
}
