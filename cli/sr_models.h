/* The super-resolution models `histoplan analyze --sr` may use (pipeline/analyze_sr.h decides
 * per slide): for `auto`, the zoo's faithful models (HP_SR_ZOO_X2, HP_SR_ZOO_X4, found where the
 * default model is found); for a MODEL path, that file, which must be a super-resolution model
 * with its card. */
#ifndef HP_CLI_SR_MODELS_H
#define HP_CLI_SR_MODELS_H

#include <stddef.h>

#include "models/model.h"
#include "models/zoo.h"
#include "pipeline/analyze_sr.h"

#define HP_CLI_SR_MAX 2

typedef struct {
    hp_sr_mode mode;
    hp_precision precision;    /* what the models run in (fp16 / bf16 need the CUDA backend) */
    const char *path;          /* MODEL: the file given */
    int n;
    hp_sr_candidate cands[HP_CLI_SR_MAX];
    char sha256[HP_CLI_SR_MAX][65];
} hp_cli_sr_models;

/* --sr's value: "off", "auto" or a model path. */
void hp_cli_sr_parse(const char *value, hp_cli_sr_models *s);

/* Opens the models on `backend`. Returns 0, or -1 with the reason (naming the file) in err. */
int hp_cli_sr_load(hp_cli_sr_models *s, hp_backend_kind backend, char *err, size_t err_n);

void hp_cli_sr_free(hp_cli_sr_models *s);

#endif
