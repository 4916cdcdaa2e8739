/* HP_CUDA_PROFILE=1: where a run's device time goes, per operator kind, with CUDA events around
 * the input upload, every node and the output download. Reported on stderr when the backend is
 * destroyed (`histoplan model bench` with the variable set prints it after its own figures).
 * A node's time runs from the end of the previous one to its own end, so it includes any gap in
 * which the GPU waited for the host to launch it: a host-bound run shows up as such. Off by
 * default: the events cost a little and the report is for people tuning the engine. */
#include "kernels/cuda/cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hp_cu_profile {
    cudaEvent_t *ev; /* ev[0] start, ev[1] inputs on the device, ev[2+k] node k done, then outputs */
    int n_ev, cap_ev;
    double ms[HP_OP_COUNT];
    long calls[HP_OP_COUNT];
    double in_ms, out_ms;
    long runs;
};

extern "C" hp_cu_profile *hp_cu_profile_from_env(void)
{
    const char *s = getenv("HP_CUDA_PROFILE");
    if (!s || !*s || !strcmp(s, "0"))
        return NULL;
    return (hp_cu_profile *)calloc(1, sizeof(hp_cu_profile));
}

extern "C" hp_status hp_cu_profile_begin(hp_cuda_backend *b)
{
    hp_cu_profile *p = b->prof;
    int need = b->g->n_nodes + 3;
    if (need > p->cap_ev) {
        cudaEvent_t *ev = (cudaEvent_t *)realloc(p->ev, sizeof *ev * (size_t)need);
        if (!ev)
            return hp_error_set(&b->base.err, HP_ERR_NOMEM, "cuda: out of memory (profile)");
        p->ev = ev;
        for (; p->cap_ev < need; p->cap_ev++)
            HP_CU_CHECK(b, cudaEventCreate(&p->ev[p->cap_ev]));
    }
    p->n_ev = need;
    return hp_cu_profile_mark(b, 0);
}

extern "C" hp_status hp_cu_profile_mark(hp_cuda_backend *b, int slot)
{
    HP_CU_CHECK(b, cudaEventRecord(b->prof->ev[slot], b->stream));
    return HP_OK;
}

static hp_status elapsed(hp_cuda_backend *b, int from, int to, double *acc)
{
    float ms = 0;
    HP_CU_CHECK(b, cudaEventElapsedTime(&ms, b->prof->ev[from], b->prof->ev[to]));
    *acc += ms;
    return HP_OK;
}

extern "C" hp_status hp_cu_profile_end(hp_cuda_backend *b)
{
    hp_cu_profile *p = b->prof;
    const hp_graph *g = b->g;
    HP_CU_TRY(elapsed(b, 0, 1, &p->in_ms));
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead)
            continue;
        int op = g->nodes[k].op;
        if (op < 0 || op >= HP_OP_COUNT)
            continue;
        HP_CU_TRY(elapsed(b, 1 + k, 2 + k, &p->ms[op]));
        p->calls[op]++;
    }
    HP_CU_TRY(elapsed(b, g->n_nodes + 1, g->n_nodes + 2, &p->out_ms));
    p->runs++;
    return HP_OK;
}

extern "C" void hp_cu_profile_report(hp_cuda_backend *b)
{
    hp_cu_profile *p = b->prof;
    if (!p)
        return;
    if (p->runs > 0) {
        double total = p->in_ms + p->out_ms;
        for (int op = 0; op < HP_OP_COUNT; op++)
            total += p->ms[op];
        double r = (double)p->runs;
        fprintf(stderr, "cuda profile (%s, %ld runs; ms per run, share):\n",
                b->base.precision == HP_PREC_FP32 ? "fp32"
                : b->base.precision == HP_PREC_FP16 ? "fp16" : "bf16", p->runs);
        fprintf(stderr, "  %-20s %8s %10s %6s\n", "stage / op", "calls", "ms", "share");
        fprintf(stderr, "  %-20s %8d %10.3f %5.1f%%\n", "input_upload", 1, p->in_ms / r,
                100 * p->in_ms / (total > 0 ? total : 1));
        for (int op = 0; op < HP_OP_COUNT; op++)
            if (p->calls[op] > 0)
                fprintf(stderr, "  %-20s %8ld %10.3f %5.1f%%\n", hp_op_name((hp_op)op),
                        p->calls[op] / p->runs, p->ms[op] / r,
                        100 * p->ms[op] / (total > 0 ? total : 1));
        fprintf(stderr, "  %-20s %8d %10.3f %5.1f%%\n", "output_download", 1, p->out_ms / r,
                100 * p->out_ms / (total > 0 ? total : 1));
        fprintf(stderr, "  %-20s %8s %10.3f\n", "total", "", total / r);
    }
    for (int i = 0; i < p->cap_ev; i++)
        (void)cudaEventDestroy(p->ev[i]);
    free(p->ev);
    free(p);
    b->prof = NULL;
}
