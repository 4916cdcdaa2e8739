/* API tokens in the job store (server/store.h): the bearer token is shown once and kept only as
 * its SHA-256 (tokens carry 256 random bits, so a plain hash cannot be searched back); each token
 * has a webhook secret that signs the callbacks of its batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utc_time.h"
#include "server/ids.h"
#include "server/store.h"

static const char *const ROLE_NAMES[] = {"none", "submitter", "pathologist", "admin"};

const char *hp_role_name(hp_role r)
{
    return r >= HP_ROLE_SUBMITTER && r <= HP_ROLE_ADMIN ? ROLE_NAMES[r] : "none";
}

hp_role hp_role_parse(const char *s)
{
    for (int r = HP_ROLE_SUBMITTER; r <= HP_ROLE_ADMIN; r++)
        if (s && !strcmp(s, ROLE_NAMES[r]))
            return (hp_role)r;
    return HP_ROLE_NONE;
}

static int valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

hp_status hp_store_token_create(hp_db *db, hp_role role, const char *name, const char *actor,
                                char token_text[HP_TOKEN_TEXT_MAX], hp_token_info *info,
                                hp_error *err)
{
    if (role == HP_ROLE_NONE)
        return hp_error_set(err, HP_ERR_INVALID, "role: one of submitter, pathologist, admin");
    if (!valid_name(name))
        return hp_error_set(err, HP_ERR_INVALID,
                            "name: 1 to 100 characters without control characters");
    uint8_t raw[32], sec[32];
    if (hp_random_bytes(raw, sizeof raw) || hp_random_bytes(sec, sizeof sec) ||
        hp_id_new('t', info->id))
        return hp_error_set(err, HP_ERR_IO, "no random numbers available");
    char b64[65];
    hp_base64url_encode(raw, sizeof raw, b64);
    snprintf(token_text, HP_TOKEN_TEXT_MAX, "hp_%.43s", b64);
    char *sec64 = hp_base64_encode(sec, sizeof sec);
    if (!sec64)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    snprintf(info->webhook_secret, sizeof info->webhook_secret, "whsec_%s", sec64);
    free(sec64);
    snprintf(info->name, sizeof info->name, "%s", name);
    info->role = role;
    char sha[65];
    hp_sha256_hex(token_text, strlen(token_text), sha);

    hp_status st = hp_db_begin(db, err);
    if (st != HP_OK)
        return st;
    hp_db_value p[6] = {HP_DB_TEXT(info->id),      HP_DB_TEXT(name),
                        HP_DB_TEXT(hp_role_name(role)), HP_DB_TEXT(sha),
                        HP_DB_TEXT(info->webhook_secret), HP_DB_INT(hp_now_ms())};
    if ((st = hp_db_exec(db, "INSERT INTO tokens (id, name, role, token_sha256, webhook_secret, "
                             "created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                         p, 6, NULL, NULL, err)) != HP_OK)
        goto fail;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "token", info->id);
    cJSON_AddStringToObject(d, "role", hp_role_name(role));
    st = hp_store_audit(db, "token.create", actor, d, err);
    cJSON_Delete(d);
    if (st != HP_OK)
        goto fail;
    return hp_db_commit(db, err);
fail:
    hp_db_rollback(db);
    return st;
}

int hp_store_token_find(hp_db *db, const char *token_text, hp_token_info *info, hp_error *err)
{
    if (!token_text || strncmp(token_text, "hp_", 3) || strlen(token_text) > HP_TOKEN_TEXT_MAX)
        return 0;
    char sha[65];
    hp_sha256_hex(token_text, strlen(token_text), sha);
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(sha)};
    if (hp_db_exec(db, "SELECT id, name, role, webhook_secret FROM tokens WHERE token_sha256 = $1 "
                       "AND revoked_ms IS NULL", p, 1, &r, NULL, err) != HP_OK)
        return -1;
    int found = r->nrows == 1;
    if (found) {
        snprintf(info->id, sizeof info->id, "%s", hp_db_get(r, 0, 0));
        snprintf(info->name, sizeof info->name, "%s", hp_db_get(r, 0, 1));
        info->role = hp_role_parse(hp_db_get(r, 0, 2));
        snprintf(info->webhook_secret, sizeof info->webhook_secret, "%s", hp_db_get(r, 0, 3));
    }
    hp_db_rows_free(r);
    return found;
}

static void add_time(cJSON *o, const char *k, const char *ms)
{
    if (!ms) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    char t[HP_UTC_TIME_LEN];
    hp_utc_format((time_t)(strtoll(ms, NULL, 10) / 1000), t);
    cJSON_AddStringToObject(o, k, t);
}

hp_status hp_store_token_list(hp_db *db, cJSON **out, hp_error *err)
{
    hp_db_rows *r = NULL;
    *out = NULL;
    hp_status st = hp_db_exec(db, "SELECT id, name, role, created_ms, revoked_ms FROM tokens "
                                  "ORDER BY created_ms, id", NULL, 0, &r, NULL, err);
    if (st != HP_OK)
        return st;
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < r->nrows; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "id", hp_db_get(r, i, 0));
        cJSON_AddStringToObject(t, "name", hp_db_get(r, i, 1));
        cJSON_AddStringToObject(t, "role", hp_db_get(r, i, 2));
        add_time(t, "created", hp_db_get(r, i, 3));
        add_time(t, "revoked", hp_db_get(r, i, 4));
        cJSON_AddItemToArray(a, t);
    }
    hp_db_rows_free(r);
    *out = a;
    return HP_OK;
}

int hp_store_token_revoke(hp_db *db, const char *id, const char *actor, hp_error *err)
{
    int64_t ch = 0;
    if (!hp_id_valid('t', id))
        return 0;
    if (hp_db_begin(db, err) != HP_OK)
        return -1;
    hp_db_value p[2] = {HP_DB_INT(hp_now_ms()), HP_DB_TEXT(id)};
    if (hp_db_exec(db, "UPDATE tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL",
                   p, 2, NULL, &ch, err) != HP_OK)
        goto fail;
    if (ch == 1) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "token", id);
        hp_status st = hp_store_audit(db, "token.revoke", actor, d, err);
        cJSON_Delete(d);
        if (st != HP_OK)
            goto fail;
    }
    if (hp_db_commit(db, err) != HP_OK)
        return -1;
    return ch == 1;
fail:
    hp_db_rollback(db);
    return -1;
}

int hp_store_token_secret(hp_db *db, const char *token_id, char secret[64], hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(token_id)};
    if (hp_db_exec(db, "SELECT webhook_secret FROM tokens WHERE id = $1", p, 1, &r, NULL, err)
        != HP_OK)
        return -1;
    int found = r->nrows == 1;
    if (found)
        snprintf(secret, 64, "%s", hp_db_get(r, 0, 0));
    hp_db_rows_free(r);
    return found;
}
