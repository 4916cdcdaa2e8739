/* The tensors a model command reads and writes: which --input file feeds which model input,
 * reading them as the model declares them, binding parameter inputs, and which --output file
 * receives which model output. */
#ifndef HP_CLI_MODEL_IO_H
#define HP_CLI_MODEL_IO_H

#include <stdint.h>

#include "cli/model_cmd.h"

/* Matches --input or --output strings to the model's inputs or outputs (`names`, in declaration
 * order). A string is NAME=FILE when NAME is one of `names`, else a plain FILE; plain files are
 * taken in declaration order. Refused, with the reason printed (`what` is "input" or "output"):
 * a name given twice, more plain files than names, plain and named mixed, NAME=FILE with an
 * unknown NAME, and (inputs) a string that reads both as NAME=FILE and as an existing file.
 * files[k] receives the file for names[k], or NULL. Returns 0 or -1. */
int hp_cli_assign(const char *what, const char *const *specs, int n_specs,
                  const char *const *names, int n_names, const char **files);

/* One model input and the data read for it. */
typedef struct {
    const char *name;
    const char *file;
    int value;     /* index in the loaded graph's values */
    int bound;     /* fed as a constant: a parameter slot (shape, pads, scales, bounds) or int64 */
    int is_int;    /* int64 data (i) rather than float32 (f) */
    float *f;
    int64_t *i;
    int ndim;
    int64_t dims[HP_MAX_DIMS];
} hp_cli_input;

typedef struct {
    int n;
    hp_cli_input in[HP_CLI_MAX_IO];
    int batch; /* the batch to instantiate: the .npy's first dim where the model's is symbolic */
} hp_cli_inputs;

/* Reads every input of the model from `files` (one per graph input, as hp_cli_assign gave),
 * checks each shape against the model's declaration (rank, fixed dims; a symbolic first dim
 * takes the file's), and binds the bound ones. A missing file is refused with the input named
 * and its declared shape, unless `params_only` (bench: only the files given are read). Prints
 * the reason and returns an exit status (0 on success). */
int hp_cli_inputs_load(hp_model *m, const char *const *files, hp_cli_inputs *ins, int params_only);
void hp_cli_inputs_free(hp_cli_inputs *ins);

/* "[N, 3, 224, 224]" for dims (negative dims print as N). */
void hp_cli_dims_str(char *buf, size_t cap, int ndim, const int64_t *dims);

#endif
