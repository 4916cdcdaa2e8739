/* The model zoo: where histoplan finds the models it ships (the default classifier, the faithful
 * super-resolution models) when no path is given, for the command line and the lab service alike. */
#ifndef HP_MODELS_ZOO_H
#define HP_MODELS_ZOO_H

#include <stddef.h>

#define HP_DEFAULT_MODEL "histoplan-default-densenet.onnx"
/* The faithful super-resolution models `--sr auto` and a batch's "super_resolution": "auto" use. */
#define HP_SR_ZOO_X2 "histoplan-sr-srvgg-x2.onnx"
#define HP_SR_ZOO_X4 "histoplan-sr-srvgg-x4.onnx"

/* Finds the zoo's file `name` and writes its path to `out`. Looks, in order, in $HP_MODEL_DIR
 * (when set, only there), in the installed zoo beside the binary (<bin>/../share/histoplan/zoo,
 * so a moved install still finds its own), in the source tree the library was built from (its
 * path is compiled in, so any build folder works, inside the source tree or not), and in the
 * install prefix configured at build time. Returns 0, or -1 with `tried` (may be NULL) listing
 * the places looked at. */
int hp_zoo_file(const char *name, char *out, size_t n, char *tried, size_t tried_n);

#endif
