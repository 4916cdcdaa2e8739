/* BatchNormalization (inference): y = (x - mean) / sqrt(var + eps) * scale + B per channel
 * (dim 1), any rank >= 2. The passes fold constant BNs into ScaleShift; this one runs when the
 * parameters are runtime values, so the fast path folds them per run. */
#include <stdlib.h>

#include "kernels/cpu/cpu_internal.h"

hp_status hp_cpu_batchnorm(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                           const hp_cpu_tensor *out)
{
    if (n->n_in < 5)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "needs inputs X, scale, B, mean and var");
    for (int i = 0; i < 5; i++)
        if (!in[i])
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "input %d is missing", i);
    const hp_cpu_tensor *x = in[0];
    if (x->ndim < 2)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "input has rank %d; needs rank >= 2", x->ndim);
    if (!hp_cpu_same_dims(x, out))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output shape differs from the input's");
    int64_t C = x->dims[1];
    for (int i = 1; i < 5; i++)
        if (hp_cpu_numel(in[i]) != C)
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "parameter '%s' has %lld elements, expected %lld",
                               in[i]->name, (long long)hp_cpu_numel(in[i]), (long long)C);
    if (hp_cpu_numel(x) == 0)
        return HP_OK;
    const float *sc = in[1]->p, *bi = in[2]->p, *mu = in[3]->p, *var = in[4]->p;
    float eps = n->attr.bn_epsilon;
    if (c->reference) {
        int64_t N = x->dims[0], inner = hp_cpu_item(x) / C;
        for (int64_t i = 0; i < N; i++)
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t k = 0; k < inner; k++) {
                    float v = x->p[i * x->bstride + ch * inner + k];
                    out->p[i * out->bstride + ch * inner + k] =
                        (v - mu[ch]) / sqrtf(var[ch] + eps) * sc[ch] + bi[ch];
                }
        return HP_OK;
    }
    float *ab = malloc(2 * (size_t)C * sizeof(float));
    if (!ab)
        return hp_cpu_fail(c, n, HP_ERR_NOMEM, "out of memory (%lld channels)", (long long)C);
    for (int64_t ch = 0; ch < C; ch++) {
        float a = sc[ch] / sqrtf(var[ch] + eps);
        ab[ch] = a;
        ab[C + ch] = bi[ch] - mu[ch] * a;
    }
    hp_act none = {.kind = HP_ACT_NONE};
    hp_cpu_channel_affine(c, x, out, ab, ab + C, &none);
    free(ab);
    return HP_OK;
}
