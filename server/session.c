/* server/session.h: a small open table keyed by SHA-256 of the session id. */
#include "server/session.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/ids.h"

typedef struct {
    unsigned char id_hash[32];
    char token[80];
    char csrf[64];
    int64_t last_ms;
    int live;
} entry;

struct hp_sessions {
    pthread_mutex_t mu;
    entry e[HP_SESSION_MAX];
};

hp_sessions *hp_sessions_create(void)
{
    hp_sessions *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->mu, NULL);
    return s;
}

void hp_sessions_destroy(hp_sessions *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s->e, sizeof s->e);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int expired(const entry *e, int64_t now)
{
    return !e->live || now - e->last_ms > (int64_t)HP_SESSION_IDLE_S * 1000;
}

static hp_status random_text(char out[64])
{
    unsigned char b[32];
    char text[65];
    if (hp_random_bytes(b, sizeof b) != HP_OK)
        return HP_ERR_IO;
    hp_base64url_encode(b, sizeof b, text); /* 43 characters */
    memcpy(out, text, 44);
    return HP_OK;
}

hp_status hp_session_start(hp_sessions *s, const char *token_text, int64_t now_ms,
                           char sid[64], char csrf[64])
{
    if (strlen(token_text) >= 80)
        return HP_ERR_INVALID;
    if (random_text(sid) != HP_OK || random_text(csrf) != HP_OK)
        return HP_ERR_IO;
    unsigned char h[32];
    SHA256((const unsigned char *)sid, strlen(sid), h);
    pthread_mutex_lock(&s->mu);
    entry *slot = NULL, *oldest = &s->e[0];
    for (int i = 0; i < HP_SESSION_MAX && !slot; i++) {
        if (expired(&s->e[i], now_ms))
            slot = &s->e[i];
        else if (s->e[i].last_ms < oldest->last_ms)
            oldest = &s->e[i];
    }
    if (!slot) /* full of live sessions: the one idle longest ends */
        slot = oldest;
    memcpy(slot->id_hash, h, 32);
    strcpy(slot->token, token_text);
    strcpy(slot->csrf, csrf);
    slot->last_ms = now_ms;
    slot->live = 1;
    pthread_mutex_unlock(&s->mu);
    return HP_OK;
}

static entry *find(hp_sessions *s, const char *sid)
{
    unsigned char h[32];
    SHA256((const unsigned char *)sid, strlen(sid), h);
    for (int i = 0; i < HP_SESSION_MAX; i++)
        if (s->e[i].live && CRYPTO_memcmp(s->e[i].id_hash, h, 32) == 0)
            return &s->e[i];
    return NULL;
}

int hp_session_find(hp_sessions *s, const char *sid, int64_t now_ms, char token_text[80],
                    char csrf[64])
{
    if (!sid || strlen(sid) != 43)
        return 0;
    pthread_mutex_lock(&s->mu);
    entry *e = find(s, sid);
    int ok = e && !expired(e, now_ms);
    if (e && !ok)
        e->live = 0;
    if (ok) {
        e->last_ms = now_ms;
        strcpy(token_text, e->token);
        strcpy(csrf, e->csrf);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void hp_session_end(hp_sessions *s, const char *sid)
{
    if (!sid)
        return;
    pthread_mutex_lock(&s->mu);
    entry *e = find(s, sid);
    if (e)
        OPENSSL_cleanse(e, sizeof *e);
    pthread_mutex_unlock(&s->mu);
}
