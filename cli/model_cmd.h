/* `histoplan model`: the parsed command line shared by its subcommands (cli/model_cmd.c parses
 * it and runs info and bench; cli/model_run.c runs `model run`). */
#ifndef HP_CLI_MODEL_CMD_H
#define HP_CLI_MODEL_CMD_H

#include "models/model.h"

/* Exit status of a model command refused at load because the model uses an operator, attribute
 * or data type that histoplan does not support (hp_status HP_ERR_UNSUPPORTED while opening,
 * binding or instantiating): 3, so scripts and tests tell a refusal from a failure without
 * reading the message. */
#define HP_EXIT_UNSUPPORTED 3

#define HP_CLI_MAX_IO 64

typedef struct {
    const char *cmd; /* "model run", ...: the prefix of messages */
    const char *model;
    const char *inputs[HP_CLI_MAX_IO];  /* --input, as given: FILE or NAME=FILE */
    int n_inputs;
    const char *outputs[HP_CLI_MAX_IO]; /* --output, as given */
    int n_outputs;
    const char *card;
    const char *mean, *std_, *classes;
    double mpp; /* --mpp: microns per pixel of an image input; 0 when not given */
    hp_model_options mo;
    int batch, batch_given;
    int iterations, warmup;
    int top;
    int json;
} model_args;

/* The exit status for a failed load-time call: 3 for HP_ERR_UNSUPPORTED, else 1. */
int hp_cli_load_status(hp_status st);

/* Opens the model of `a`, printing the reason on failure (*rc receives the exit status). */
hp_model *hp_cli_open_model(const model_args *a, int *rc);

/* Applies --mean/--std/--classes; when `image_input`, checks that normalization and classes are
 * known (card or options). Returns an exit status. */
int hp_cli_apply_overrides(hp_model *m, const model_args *a, int image_input);

/* `histoplan model run` (cli/model_run.c). */
int hp_cli_model_run(const model_args *a);

#endif
