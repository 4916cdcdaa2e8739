/* Where the command line finds the default model when --model is not given. */
#ifndef HP_CLI_DEFAULT_MODEL_H
#define HP_CLI_DEFAULT_MODEL_H

#include <stddef.h>

#define HP_DEFAULT_MODEL "histoplan-default-densenet.onnx"

/* Finds HP_DEFAULT_MODEL and writes its path to `out`. Looks, in order, in $HP_MODEL_DIR (when
 * set, only there), in the installed zoo beside the binary (<bin>/../share/histoplan/zoo, so a
 * moved install still finds its own), in the source tree the binary was built from (its path is
 * compiled in, so any build folder works, inside the source tree or not), and in the install
 * prefix configured at build time. Returns 0, or -1 with `tried` listing the places looked at. */
int hp_cli_default_model(char *out, size_t n, char *tried, size_t tried_n);

/* The same search for another file of the zoo (a super-resolution model for --sr auto). */
int hp_cli_zoo_file(const char *name, char *out, size_t n, char *tried, size_t tried_n);

#endif
