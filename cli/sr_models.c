/* The super-resolution models of `analyze --sr` (see the header). */
#include "cli/sr_models.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "models/zoo.h"
#include "common/sha256.h"

void hp_cli_sr_parse(const char *value, hp_cli_sr_models *s)
{
    memset(s, 0, sizeof *s);
    if (!strcmp(value, "off"))
        s->mode = HP_SR_OFF;
    else if (!strcmp(value, "auto"))
        s->mode = HP_SR_AUTO;
    else
        s->mode = HP_SR_MODEL, s->path = value;
}

/* Opens one model and checks that it super-resolves. */
static int open_one(hp_cli_sr_models *s, const char *path, hp_backend_kind backend, char *err, size_t err_n)
{
    hp_model_options mo = hp_model_default_options();
    mo.backend = backend;
    mo.precision = s->precision;
    mo.require_card = 1;
    hp_error e = {0};
    hp_model *m = hp_model_open(path, &mo, &e);
    if (!m || hp_sha256_file(path, s->sha256[s->n], &e) != HP_OK) {
        snprintf(err, err_n, "--sr %s: %s", path, e.msg);
        hp_model_destroy(m);
        return -1;
    }
    const hp_card *card = hp_model_card(m);
    if (!card || card->task != HP_TASK_SUPER_RESOLUTION) {
        snprintf(err, err_n,
                 "--sr %s: not a super-resolution model (its card says it is a classifier; --sr takes auto, off "
                 "or a model whose card says \"task\": \"super-resolution\")",
                 path);
        hp_model_destroy(m);
        return -1;
    }
    if (card->generative) {
        snprintf(err, err_n,
                 "--sr %s: a generative super-resolution model (its card says \"generative\": true): it may invent "
                 "texture, so analyze does not use it; view its output with histoplan upscale, and analyze with "
                 "--sr auto (the zoo's faithful models)",
                 path);
        hp_model_destroy(m);
        return -1;
    }
    s->cands[s->n] = (hp_sr_candidate){.model = m, .sha256 = s->sha256[s->n]};
    s->n++;
    return 0;
}

int hp_cli_sr_load(hp_cli_sr_models *s, hp_backend_kind backend, char *err, size_t err_n)
{
    if (s->mode == HP_SR_MODEL)
        return open_one(s, s->path, backend, err, err_n);
    if (s->mode != HP_SR_AUTO)
        return 0;
    /* auto: whichever of the zoo's faithful models is installed; none is not an error (each
     * slide's findings then say that no model was available). */
    static const char *const zoo[] = {HP_SR_ZOO_X2, HP_SR_ZOO_X4};
    for (size_t i = 0; i < sizeof zoo / sizeof *zoo; i++) {
        char path[PATH_MAX], tried[2 * PATH_MAX];
        if (hp_zoo_file(zoo[i], path, sizeof path, tried, sizeof tried) == 0 &&
            open_one(s, path, backend, err, err_n))
            return -1;
    }
    return 0;
}

void hp_cli_sr_free(hp_cli_sr_models *s)
{
    for (int i = 0; i < s->n; i++)
        hp_model_destroy(s->cands[i].model);
    s->n = 0;
}
