/* GET /v1/jobs/{id}/{file}: the analyze outputs of a succeeded job, from the run folder the job
 * records as its result. */
#include <stdio.h>
#include <string.h>

#include "server/api.h"
#include "server/file_response.h"
#include "server/represent.h"
#include "server/service_internal.h"

static const char *const TYPES[] = {"application/json", "image/tiff", "application/geo+json",
                                    "application/xml",  "image/png",  "text/csv"};

void hp_api_job_result(hp_request *r)
{
    int which = -1;
    for (int k = 0; k < HP_N_RESULT_FILES; k++)
        if (!strcmp(r->params[1], HP_RESULT_FILES[k]))
            which = k;
    if (which < 0) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "no such result file (findings.json, heatmap.tiff, regions.geojson, "
                           "regions.xml, overlay.png, tiles.csv)");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_job_row j;
    int ok = hp_api_load_job(r, db, &j);
    hp_api_db_done(r, db);
    if (!ok)
        return;
    if (strcmp(j.state, "succeeded") != 0 || !j.result_dir) {
        hp_respond_problem(r, HP_PROB_CONFLICT, NULL,
                           "the job is %s; results exist once it has succeeded", j.state);
        hp_job_row_free(&j);
        return;
    }
    char path[PATH_MAX];
    hp_service_path(r->svc, path, sizeof path, "%s/%s", j.result_dir, HP_RESULT_FILES[which]);
    hp_job_row_free(&j);
    hp_respond_path(r, path, TYPES[which]);
}
