/* Model inputs and outputs on the command line (see model_io.h). */
#include "cli/model_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "io/npy.h"

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static void list_names(char *buf, size_t cap, const char *const *names, int n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int k = 0; k < n && o < cap; k++)
        o += (size_t)snprintf(buf + o, cap - o, "%s'%s'", k ? ", " : "", names[k]);
}

int hp_cli_assign(const char *what, const char *const *specs, int n_specs,
                  const char *const *names, int n_names, const char **files)
{
    char known[2048];
    list_names(known, sizeof known, names, n_names);
    for (int k = 0; k < n_names; k++)
        files[k] = NULL;
    int n_plain = 0, n_named = 0;
    const char *plain[HP_CLI_MAX_IO];
    for (int s = 0; s < n_specs; s++) {
        const char *spec = specs[s], *eq = strchr(spec, '=');
        int match = -1;
        for (int k = 0; eq && k < n_names && match < 0; k++)
            if (strlen(names[k]) == (size_t)(eq - spec) && !strncmp(spec, names[k], (size_t)(eq - spec)))
                match = k;
        int is_input = !strcmp(what, "input");
        if (match >= 0 && is_input && file_exists(spec)) {
            fprintf(stderr,
                    "histoplan model: --input '%s' is ambiguous: it names the model input '%s' and is also "
                    "an existing file; write '%s=%s' or './%s'\n",
                    spec, names[match], names[match], spec, spec);
            return -1;
        }
        if (match < 0 && eq && (is_input ? !file_exists(spec) : !memchr(spec, '/', (size_t)(eq - spec)) &&
                                                                    !memchr(spec, '.', (size_t)(eq - spec)))) {
            fprintf(stderr,
                    "histoplan model: --%s '%s': the model has no %s named '%.*s' (its %ss: %s)%s\n", what,
                    spec, what, (int)(eq - spec), spec, what, known,
                    is_input ? " and no such file exists" : "");
            return -1;
        }
        if (match >= 0) {
            if (files[match]) {
                fprintf(stderr, "histoplan model: %s '%s' is given twice (--%s)\n", what, names[match], what);
                return -1;
            }
            files[match] = eq + 1;
            n_named++;
        } else {
            plain[n_plain++] = spec;
        }
    }
    if (n_plain && n_named) {
        fprintf(stderr,
                "histoplan model: give every --%s as NAME=FILE or none of them (the model's %ss, in "
                "order: %s)\n",
                what, what, known);
        return -1;
    }
    if (n_plain > n_names) {
        fprintf(stderr,
                "histoplan model: --%s is given %d times but the model has %d %s%s (%s); each --%s "
                "feeds the next %s in declaration order, or use NAME=FILE\n",
                what, n_plain, n_names, what, n_names == 1 ? "" : "s", known, what, what);
        return -1;
    }
    for (int k = 0; k < n_plain; k++)
        files[k] = plain[k];
    return 0;
}

void hp_cli_dims_str(char *buf, size_t cap, int ndim, const int64_t *dims)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && o < cap; d++) {
        if (dims[d] < 0)
            o += (size_t)snprintf(buf + o, cap - o, d ? ", ?" : "N");
        else
            o += (size_t)snprintf(buf + o, cap - o, d ? ", %lld" : "%lld", (long long)dims[d]);
    }
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

void hp_cli_inputs_free(hp_cli_inputs *ins)
{
    for (int k = 0; k < ins->n; k++) {
        free(ins->in[k].f);
        free(ins->in[k].i);
    }
    memset(ins, 0, sizeof *ins);
}

int hp_cli_inputs_load(hp_model *m, const char *const *files, hp_cli_inputs *ins, int params_only)
{
    const hp_graph *g = hp_model_graph(m);
    memset(ins, 0, sizeof *ins);
    const char *batch_from = NULL;
    char want[256];
    if (g->n_inputs > HP_CLI_MAX_IO) {
        fprintf(stderr, "histoplan model: the model has %d inputs (the command line takes %d)\n", g->n_inputs,
                HP_CLI_MAX_IO);
        return HP_EXIT_FAILED;
    }
    for (int k = 0; k < g->n_inputs && !params_only; k++) {
        const hp_value *v = &g->values[g->inputs[k]];
        if (!files[k]) {
            hp_cli_dims_str(want, sizeof want, v->ndim, v->dims);
            fprintf(stderr,
                    "histoplan model: no --input for the model input '%s' %s (%s); give it as --input "
                    "%s=FILE.npy\n",
                    v->name, want, v->dtype == HP_DT_INT64 ? "int64" : "float32", v->name);
            return HP_EXIT_USAGE;
        }
    }
    /* Binding turns inputs into constants and takes them out of g->inputs: read the list first. */
    int values[HP_CLI_MAX_IO];
    int n = g->n_inputs;
    for (int k = 0; k < n; k++)
        values[k] = g->inputs[k];
    int is_param[HP_CLI_MAX_IO];
    for (int k = 0; k < n; k++)
        is_param[k] = hp_model_input_is_parameter(m, k);
    for (int k = 0; k < n; k++) {
        const hp_value *v = &g->values[values[k]];
        if (params_only && !files[k])
            continue;
        hp_cli_input *in = &ins->in[ins->n++];
        in->name = v->name;
        in->file = files[k];
        in->value = values[k];
        hp_error err = {0};
        char got[256];
        in->bound = is_param[k] || v->dtype == HP_DT_INT64;
        in->is_int = v->dtype == HP_DT_INT64;
        hp_status st = in->is_int ? hp_npy_read_int64(in->file, &in->i, &in->ndim, in->dims, &err)
                                  : hp_npy_read(in->file, &in->f, &in->ndim, in->dims, &err);
        if (st) {
            fprintf(stderr, "histoplan model: input '%s': %s\n", in->name, err.msg);
            return HP_EXIT_FAILED;
        }
        int ok = in->ndim == v->ndim, symbolic = 0;
        for (int d = 0; ok && d < v->ndim; d++) {
            ok = v->dims[d] < 0 ? in->dims[d] >= 1 : in->dims[d] == v->dims[d];
            symbolic |= d > 0 && v->dims[d] < 0;
        }
        if (!ok) {
            hp_cli_dims_str(want, sizeof want, v->ndim, v->dims);
            hp_cli_dims_str(got, sizeof got, in->ndim, in->dims);
            fprintf(stderr, "histoplan model: %s: shape %s does not match the model input '%s' %s%s\n",
                    in->file, got, in->name, want,
                    strchr(want, 'N') || strchr(want, '?') ? " (N, ?: any size from 1)" : "");
            return HP_EXIT_FAILED;
        }
        /* Symbolic dims after the first (height and width of a fully convolutional net) take
         * the file's sizes. */
        if (!in->bound && symbolic && (st = hp_model_set_input_shape(m, in->name, in->ndim, in->dims))) {
            fprintf(stderr, "histoplan model: input '%s': %s\n", in->name, hp_model_error(m));
            return hp_cli_load_status(st);
        }
        if (!in->bound && v->ndim > 0 && v->dims[0] < 0) {
            if (in->dims[0] > 65536) {
                fprintf(stderr, "histoplan model: %s: %lld items in one run (at most 65536)\n", in->file,
                        (long long)in->dims[0]);
                return HP_EXIT_FAILED;
            }
            if (batch_from && in->dims[0] != ins->batch) {
                fprintf(stderr,
                        "histoplan model: the batch sizes of the inputs differ: '%s' has %d items, '%s' "
                        "has %lld; the model's symbolic first dimension is one batch\n",
                        batch_from, ins->batch, in->name, (long long)in->dims[0]);
                return HP_EXIT_FAILED;
            }
            batch_from = in->name;
            ins->batch = (int)in->dims[0];
        }
    }
    for (int k = 0; k < ins->n; k++) {
        hp_cli_input *in = &ins->in[k];
        if (!in->bound)
            continue;
        hp_status st = hp_model_bind_constant(m, in->name, in->is_int ? HP_DT_INT64 : HP_DT_FLOAT,
                                              in->ndim, in->dims,
                                              in->is_int ? (const void *)in->i : (const void *)in->f);
        if (st) {
            fprintf(stderr, "histoplan model: input '%s': %s\n", in->name, hp_model_error(m));
            return hp_cli_load_status(st);
        }
    }
    if (ins->batch == 0)
        ins->batch = 1;
    return HP_EXIT_OK;
}
