/* PUT /v1/uploads/{sha256}: a slide's bytes, streamed into the data folder while hashed
 * (server/body.c), kept as DIR/uploads/<sha256> once the hash matches the path. The same bytes
 * uploaded twice are stored once; each token that uploaded them may use them in a batch. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/api.h"
#include "server/service_internal.h"

void hp_api_upload(hp_request *r)
{
    char final[PATH_MAX];
    struct stat st;
    hp_service_path(r->svc, final, sizeof final, "uploads/%s", r->params[0]);
    int existed = stat(final, &st) == 0;
    /* rename() replaces atomically: a concurrent upload of the same bytes leaves the same file. */
    if (rename(r->upload_tmp, final) != 0) {
        fprintf(stderr, "upload: cannot store: %s\n", strerror(errno));
        unlink(r->upload_tmp);
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the upload cannot be stored now");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_error err = {0};
    if (hp_store_upload_record(db, r->params[0], r->token.id, r->upload_len, &err) != HP_OK) {
        hp_api_store_error(r, &err);
        hp_api_db_done(r, db);
        return;
    }
    hp_api_db_done(r, db);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "upload", r->params[0]);
    cJSON_AddNumberToObject(o, "size", (double)r->upload_len);
    hp_respond_json(r, existed ? 200 : 201, o);
}
