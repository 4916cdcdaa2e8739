/* Stain normalization on the CPU (pipeline/stain.h, kernels/cpu/stain_normalize.c).
 *
 * - Macenko on a synthetic image made from known H and E vectors and concentrations recovers
 *   the vectors (angle < 2 degrees), the maximal concentrations and the per-pixel
 *   concentrations;
 * - on real patches ($HP_SHARED_DIR/data/real/patches): normalizing an image to itself is close
 *   to the identity (mean abs diff < 2 levels), Macenko and Reinhard; Reinhard source -> target
 *   moves the LAB mean and std to the target's; Macenko source -> target moves the output's
 *   stain vectors to the target's; white stays white;
 * - degenerate input (empty, all white, single colour) is refused with a message, never NaN;
 * - stored parameters: JSON round trip (exact), files, bad JSON names the field.
 *
 * `test_stain --run METHOD TARGET.png SOURCE.png OUTDIR` instead fits TARGET and SOURCE, writes
 * OUTDIR/target.json, OUTDIR/source.json and the normalized SOURCE as OUTDIR/out.png, for
 * tests/scripts/test_stain_reference.py (an independent numpy implementation). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "pipeline/stain.h"
#include "util/testutil.h"

static int passed;

#define OK(expr)                                                                              \
    do {                                                                                      \
        hp_error e_;                                                                          \
        hp_error_clear(&e_);                                                                  \
        hp_status s_ = (expr);                                                                \
        if (s_ != HP_OK) {                                                                    \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, e_.msg);     \
            hp_test_failures++;                                                               \
        }                                                                                     \
    } while (0)

static const double RAD2DEG = 180.0 / M_PI;

static double angle_deg(const float *a, const float *b)
{
    double d = 0, na = 0, nb = 0;
    for (int c = 0; c < 3; c++) {
        d += (double)a[c] * b[c];
        na += (double)a[c] * a[c];
        nb += (double)b[c] * b[c];
    }
    double x = d / sqrt(na * nb);
    return acos(x > 1 ? 1 : x < -1 ? -1 : x) * RAD2DEG;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a[i] - (int)b[i]);
    return n ? s / (double)n : 0;
}

static unsigned rng_state = 12345;
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (rng_state >> 8) * (1.0 / 16777216.0);
}

static uint8_t od_to_u8(double od)
{
    double v = 240.0 * exp(-od) - 1.0;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : floor(v + 0.5));
}

/* ---- synthetic image from known stains ----------------------------------------------------- */

static void test_synthetic_recovery(void)
{
    /* Macenko's reference H&E vectors (HEnorm_python's HERef), normalized */
    float h[3] = {0.5626f, 0.7201f, 0.4062f}, e[3] = {0.2159f, 0.8012f, 0.5581f};
    for (int k = 0; k < 2; k++) {
        float *v = k ? e : h;
        float n = sqrtf(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        for (int c = 0; c < 3; c++)
            v[c] /= n;
    }
    const size_t n = 200 * 200;
    uint8_t *img = malloc(n * 3);
    float *ch = malloc(n * sizeof(float)), *ce = malloc(n * sizeof(float));
    if (!img || !ch || !ce) {
        CHECK(!"out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        double u = urand(), a = 0, b = 0;
        if (u < 0.2) { /* pure haematoxylin */
            a = 0.8 + urand();
        } else if (u < 0.4) { /* pure eosin */
            b = 0.8 + urand();
        } else if (u < 0.9) { /* mixtures */
            a = 0.3 + 0.9 * urand();
            b = 0.3 + 0.9 * urand();
        } /* else background, c = 0 */
        ch[i] = (float)a;
        ce[i] = (float)b;
        for (int c = 0; c < 3; c++)
            img[3 * i + c] = od_to_u8(a * h[c] + b * e[c]);
    }
    hp_stain_params p;
    OK(hp_stain_fit(HP_STAIN_MACENKO, img, n, &p, &e_));
    double ah = angle_deg(p.stain[0], h), ae = angle_deg(p.stain[1], e);
    printf("synthetic: H angle %.3f deg, E angle %.3f deg\n", ah, ae);
    CHECK_MSG(ah < 2.0, "H off by %.3f deg", ah);
    CHECK_MSG(ae < 2.0, "E off by %.3f deg", ae);

    /* concentrations: per pixel through the fitted vectors, and the 99th percentiles */
    double g00 = 0, g01 = 0, g11 = 0;
    for (int c = 0; c < 3; c++) {
        g00 += p.stain[0][c] * p.stain[0][c];
        g01 += p.stain[0][c] * p.stain[1][c];
        g11 += p.stain[1][c] * p.stain[1][c];
    }
    double det = g00 * g11 - g01 * g01, err_h = 0, err_e = 0;
    for (size_t i = 0; i < n; i++) {
        double od[3], dh = 0, de = 0;
        for (int c = 0; c < 3; c++) {
            od[c] = -log((img[3 * i + c] + 1.0) / 240.0);
            dh += p.stain[0][c] * od[c];
            de += p.stain[1][c] * od[c];
        }
        double chat = (g11 * dh - g01 * de) / det, ehat = (g00 * de - g01 * dh) / det;
        err_h += fabs(chat - ch[i]);
        err_e += fabs(ehat - ce[i]);
    }
    err_h /= (double)n;
    err_e /= (double)n;
    printf("synthetic: mean abs concentration error H %.4f, E %.4f; max_conc %.3f %.3f\n", err_h,
           err_e, (double)p.max_conc[0], (double)p.max_conc[1]);
    CHECK_MSG(err_h < 0.03 && err_e < 0.03, "concentration errors %.4f %.4f", err_h, err_e);
    /* the true 99th percentile of both is near 0.8 + 0.99 (the pure pixels dominate the top) */
    for (int k = 0; k < 2; k++) {
        float *cs = k ? ce : ch;
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++)
            cnt += cs[i] > p.max_conc[k];
        double frac = (double)cnt / (double)n;
        CHECK_MSG(frac > 0.005 && frac < 0.015, "stain %d: %.4f of pixels above max_conc", k, frac);
    }
    /* an image that lies in the stain plane goes through the identity transform unchanged
     * but for rounding */
    {
        hp_stain_normalizer nz;
        uint8_t *out = malloc(n * 3);
        if (out) {
            OK(hp_stain_normalizer_init(&nz, &p, &p, &e_));
            OK(hp_stain_normalize_cpu(&nz, img, out, n, &e_));
            double d = mean_abs_diff(img, out, n * 3);
            printf("synthetic: identity mean abs diff %.3f levels\n", d);
            CHECK_MSG(d < 0.5, "synthetic identity %.3f", d);
            free(out);
        }
    }
    passed++;
done:
    free(img);
    free(ch);
    free(ce);
}

/* ---- real patches ---------------------------------------------------------------------- */

typedef struct {
    int w, h;
    uint8_t *rgb;
} image;

static int load(const char *name, image *im)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/data/real/patches/%s",
             hp_test_env("HP_SHARED_DIR", "../shared"), name);
    hp_error e;
    hp_error_clear(&e);
    if (hp_image_read_rgb8(path, &im->w, &im->h, &im->rgb, &e) != HP_OK) {
        fprintf(stderr, "skipping real-patch checks: %s\n", e.msg);
        return 0;
    }
    return 1;
}

static void lab_stats(const uint8_t *rgb, size_t n, double mean[3], double sd[3])
{
    double s1[3] = {0}, s2[3] = {0};
    for (size_t i = 0; i < n; i++) {
        float lab[3];
        hp_stain_rgb_to_lab(rgb + 3 * i, lab);
        for (int c = 0; c < 3; c++) {
            s1[c] += lab[c];
            s2[c] += (double)lab[c] * lab[c];
        }
    }
    for (int c = 0; c < 3; c++) {
        mean[c] = s1[c] / (double)n;
        sd[c] = sqrt(fmax(0, s2[c] / (double)n - mean[c] * mean[c]));
    }
}

/* Macenko to itself loses the OD component outside the plane of the two stains (noise, other
 * pigments): the published method drops it. On patches that fit the two-stain model well that
 * is under 2 levels; `tol` carries the measured loss of the others (see the report). */
static void test_identity(const image *im, const char *name, double tol)
{
    size_t n = (size_t)im->w * im->h;
    uint8_t *out = malloc(n * 3);
    if (!out) {
        CHECK(!"out of memory");
        return;
    }
    for (int m = HP_STAIN_MACENKO; m <= HP_STAIN_REINHARD; m++) {
        hp_stain_params p;
        hp_stain_normalizer nz;
        OK(hp_stain_fit((hp_stain_method)m, im->rgb, n, &p, &e_));
        OK(hp_stain_normalizer_init(&nz, &p, &p, &e_));
        OK(hp_stain_normalize_cpu(&nz, im->rgb, out, n, &e_));
        double d = mean_abs_diff(im->rgb, out, n * 3);
        printf("identity %s %s: mean abs diff %.3f levels\n", hp_stain_method_name((hp_stain_method)m),
               name, d);
        double lim = m == HP_STAIN_MACENKO ? tol : 0.5;
        CHECK_MSG(d < lim, "%s on %s: %.3f", hp_stain_method_name((hp_stain_method)m), name, d);
    }
    free(out);
    passed++;
}

static void test_source_to_target(const image *src, const image *tgt, const char *name)
{
    size_t ns = (size_t)src->w * src->h, nt = (size_t)tgt->w * tgt->h;
    uint8_t *out = malloc(ns * 3), *out2 = malloc(ns * 3);
    if (!out || !out2) {
        CHECK(!"out of memory");
        goto done;
    }
    double ms[3], ss[3], mt[3], st[3], mo[3], so[3];
    lab_stats(src->rgb, ns, ms, ss);
    lab_stats(tgt->rgb, nt, mt, st);

    /* Reinhard: the output's LAB moments are the target's, up to clipping and rounding */
    hp_stain_params pt, ps, po;
    hp_stain_normalizer nz;
    OK(hp_stain_fit(HP_STAIN_REINHARD, tgt->rgb, nt, &pt, &e_));
    OK(hp_stain_fit(HP_STAIN_REINHARD, src->rgb, ns, &ps, &e_));
    OK(hp_stain_normalizer_init(&nz, &pt, &ps, &e_));
    OK(hp_stain_normalize_cpu(&nz, src->rgb, out, ns, &e_));
    lab_stats(out, ns, mo, so);
    for (int c = 0; c < 3; c++) {
        printf("reinhard %s: LAB[%d] mean src %.2f -> out %.2f (target %.2f), std %.2f -> %.2f (%.2f)\n",
               name, c, ms[c], mo[c], mt[c], ss[c], so[c], st[c]);
        CHECK_MSG(fabs(mo[c] - mt[c]) < 1.5, "%s: LAB[%d] mean %.2f vs %.2f", name, c, mo[c], mt[c]);
        CHECK_MSG(fabs(so[c] - st[c]) < 0.08 * st[c] + 0.3, "%s: LAB[%d] std %.2f vs %.2f", name, c,
                  so[c], st[c]);
    }
    /* in place gives the same bytes */
    memcpy(out2, src->rgb, ns * 3);
    OK(hp_stain_normalize_cpu(&nz, out2, out2, ns, &e_));
    CHECK(!memcmp(out, out2, ns * 3));

    /* Macenko: the output, fitted again, has the target's stain vectors and max concentrations */
    OK(hp_stain_fit(HP_STAIN_MACENKO, tgt->rgb, nt, &pt, &e_));
    OK(hp_stain_fit(HP_STAIN_MACENKO, src->rgb, ns, &ps, &e_));
    OK(hp_stain_normalizer_init(&nz, &pt, &ps, &e_));
    OK(hp_stain_normalize_cpu(&nz, src->rgb, out, ns, &e_));
    OK(hp_stain_fit(HP_STAIN_MACENKO, out, ns, &po, &e_));
    double a0 = angle_deg(po.stain[0], pt.stain[0]), a1 = angle_deg(po.stain[1], pt.stain[1]);
    double b0 = angle_deg(ps.stain[0], pt.stain[0]), b1 = angle_deg(ps.stain[1], pt.stain[1]);
    printf("macenko %s: H %.2f -> %.2f deg from target, E %.2f -> %.2f deg; max_conc %.3f %.3f "
           "(target %.3f %.3f)\n",
           name, b0, a0, b1, a1, (double)po.max_conc[0], (double)po.max_conc[1],
           (double)pt.max_conc[0], (double)pt.max_conc[1]);
    /* not exact: which pixels pass the transparency threshold, and so the extreme angles,
     * changes with the transform */
    CHECK_MSG(a0 < 5.0 && a1 < 5.0, "%s: output stain vectors %.2f, %.2f deg from the target", name, a0,
              a1);
    for (int k = 0; k < 2; k++)
        CHECK_MSG(fabs(po.max_conc[k] - pt.max_conc[k]) < 0.3 * pt.max_conc[k], "%s: max_conc[%d] %.3f vs %.3f",
                  name, k, (double)po.max_conc[k], (double)pt.max_conc[k]);
    /* and the LAB mean moves most of the way to the target's */
    lab_stats(out, ns, mo, so);
    double d_src = 0, d_out = 0;
    for (int c = 0; c < 3; c++) {
        d_src += (ms[c] - mt[c]) * (ms[c] - mt[c]);
        d_out += (mo[c] - mt[c]) * (mo[c] - mt[c]);
    }
    printf("macenko %s: LAB mean distance to the target %.2f -> %.2f; std L* %.2f a* %.2f b* %.2f "
           "(target %.2f %.2f %.2f)\n",
           name, sqrt(d_src), sqrt(d_out), so[0], so[1], so[2], st[0], st[1], st[2]);
    CHECK_MSG(sqrt(d_out) < 0.5 * sqrt(d_src), "%s: LAB mean distance %.2f -> %.2f", name, sqrt(d_src),
              sqrt(d_out));

    /* white stays white, near-white stays near-white (Macenko) */
    uint8_t white[3 * 3] = {255, 255, 255, 250, 250, 250, 245, 245, 245}, wo[9];
    OK(hp_stain_normalize_cpu(&nz, white, wo, 3, &e_));
    printf("macenko %s: white -> %d %d %d, 250 -> %d %d %d, 245 -> %d %d %d\n", name, wo[0], wo[1],
           wo[2], wo[3], wo[4], wo[5], wo[6], wo[7], wo[8]);
    for (int i = 0; i < 9; i++)
        CHECK_MSG(abs((int)wo[i] - (int)white[i]) <= 6, "%s: white pixel %d channel %d -> %d", name, i / 3,
                  i % 3, wo[i]);
    passed++;
done:
    free(out);
    free(out2);
}

/* ---- degenerate input -------------------------------------------------------------------- */

static void expect_fit_error(hp_stain_method m, const uint8_t *rgb, size_t n, const char *what,
                             const char *needle)
{
    hp_stain_params p;
    memset(&p, 0, sizeof p);
    hp_error e;
    hp_error_clear(&e);
    hp_status s = hp_stain_fit(m, rgb, n, &p, &e);
    printf("%s %s: %s\n", hp_stain_method_name(m), what, e.msg);
    CHECK_MSG(s == HP_ERR_INVALID, "%s %s: status %d", hp_stain_method_name(m), what, (int)s);
    CHECK_MSG(strstr(e.msg, needle), "%s %s: message '%s' lacks '%s'", hp_stain_method_name(m), what,
              e.msg, needle);
}

static void test_degenerate(void)
{
    const size_t n = 64 * 64;
    uint8_t *img = malloc(n * 3);
    if (!img) {
        CHECK(!"out of memory");
        return;
    }
    memset(img, 255, n * 3);
    expect_fit_error(HP_STAIN_MACENKO, img, n, "all white", "stained");
    expect_fit_error(HP_STAIN_REINHARD, img, n, "all white", "single colour");
    for (size_t i = 0; i < n; i++) {
        img[3 * i] = 150;
        img[3 * i + 1] = 80;
        img[3 * i + 2] = 160;
    }
    expect_fit_error(HP_STAIN_MACENKO, img, n, "single colour", "single colour");
    expect_fit_error(HP_STAIN_REINHARD, img, n, "single colour", "single colour");
    /* one colour on a white background: still one stain */
    for (size_t i = 0; i < n; i += 2)
        img[3 * i] = img[3 * i + 1] = img[3 * i + 2] = 255;
    expect_fit_error(HP_STAIN_MACENKO, img, n, "single colour on white", "single colour");
    expect_fit_error(HP_STAIN_MACENKO, img, 0, "no pixels", "stained");
    expect_fit_error(HP_STAIN_REINHARD, img, 1, "one pixel", "at least 2");

    /* normalizer refusals */
    hp_stain_params a, b;
    hp_stain_normalizer nz;
    hp_error e;
    memset(&a, 0, sizeof a);
    a.method = HP_STAIN_REINHARD;
    for (int c = 0; c < 3; c++)
        a.std[c] = 1;
    b = a;
    b.method = HP_STAIN_MACENKO;
    hp_error_clear(&e);
    CHECK(hp_stain_normalizer_init(&nz, &a, &b, &e) == HP_ERR_INVALID); /* b has zero vectors */
    CHECK_MSG(strstr(e.msg, "stain_matrix"), "%s", e.msg);
    b.stain[0][0] = b.stain[1][1] = 1;
    b.max_conc[0] = b.max_conc[1] = 1;
    hp_error_clear(&e);
    CHECK(hp_stain_normalizer_init(&nz, &a, &b, &e) == HP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "reinhard") && strstr(e.msg, "macenko"), "%s", e.msg);
    a.std[1] = NAN;
    hp_error_clear(&e);
    CHECK(hp_stain_normalizer_init(&nz, &a, &a, &e) == HP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "std[1]"), "%s", e.msg);
    memset(&nz, 0, sizeof nz);
    hp_error_clear(&e);
    CHECK(hp_stain_normalize_cpu(&nz, img, img, n, &e) == HP_ERR_INVALID);
    free(img);
    passed++;
}

/* ---- stored parameters ------------------------------------------------------------------- */

static void expect_json_error(const char *text, const char *needle)
{
    hp_stain_params p;
    hp_error e;
    hp_error_clear(&e);
    hp_status s = hp_stain_params_from_json(text, &p, &e);
    CHECK_MSG(s == HP_ERR_INVALID, "'%s' accepted", text);
    CHECK_MSG(strstr(e.msg, needle), "'%s': message '%s' lacks '%s'", text, e.msg, needle);
}

static void test_json(void)
{
    hp_stain_params m, r, back;
    memset(&m, 0, sizeof m);
    m.method = HP_STAIN_MACENKO;
    float sm[2][3] = {{0.5626f, 0.7201f, 0.4062f}, {0.2159f, 0.8012f, 0.5581f}};
    memcpy(m.stain, sm, sizeof sm);
    m.max_conc[0] = 1.9705f;
    m.max_conc[1] = 1.0308f + 1e-7f;
    memset(&r, 0, sizeof r);
    r.method = HP_STAIN_REINHARD;
    float mean[3] = {63.123456f, 25.5f, -12.0000001f}, sd[3] = {14.25f, 8.1f, 6.3333333f};
    memcpy(r.mean, mean, sizeof mean);
    memcpy(r.std, sd, sizeof sd);

    const char *dir = hp_test_env("HP_BUILD_DIR", "/tmp");
    char path[1024];
    snprintf(path, sizeof path, "%s/test_stain_params_%d.json", dir, (int)getpid());
    for (int k = 0; k < 2; k++) {
        const hp_stain_params *p = k ? &r : &m;
        char *text = NULL;
        OK(hp_stain_params_to_json(p, &text, &e_));
        memset(&back, 0xff, sizeof back);
        OK(hp_stain_params_from_json(text ? text : "", &back, &e_));
        CHECK(back.method == p->method);
        CHECK(!memcmp(back.stain, p->stain, sizeof p->stain));
        CHECK(!memcmp(back.max_conc, p->max_conc, sizeof p->max_conc));
        CHECK(!memcmp(back.mean, p->mean, sizeof p->mean));
        CHECK(!memcmp(back.std, p->std, sizeof p->std));
        if (k == 0 && text)
            printf("stored: %s\n", text);
        free(text);
        OK(hp_stain_params_write(path, p, &e_));
        memset(&back, 0, sizeof back);
        OK(hp_stain_params_read(path, &back, &e_));
        CHECK(back.method == p->method && !memcmp(back.stain, p->stain, sizeof p->stain) &&
              !memcmp(back.max_conc, p->max_conc, sizeof p->max_conc) &&
              !memcmp(back.mean, p->mean, sizeof p->mean) && !memcmp(back.std, p->std, sizeof p->std));
    }
    /* a read error names the file and the field */
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"method\": \"reinhard\", \"mean\": [1, 2, 3]}", f);
        fclose(f);
        hp_error e;
        hp_error_clear(&e);
        CHECK(hp_stain_params_read(path, &back, &e) == HP_ERR_INVALID);
        CHECK_MSG(strstr(e.msg, path) && strstr(e.msg, "\"std\""), "%s", e.msg);
    }
    remove(path);
    hp_error e;
    hp_error_clear(&e);
    CHECK(hp_stain_params_read("/nonexistent/stain.json", &back, &e) == HP_ERR_IO);
    CHECK_MSG(strstr(e.msg, "/nonexistent/stain.json"), "%s", e.msg);

    /* stored vectors from another tool with extra members are fine */
    const char *ok_text = "{\"method\": \"Macenko\", \"tool\": \"x\", \"stain_matrix\": [[0.65, 0.70, 0.29], "
                          "[0.07, 0.99, 0.11]], \"max_conc\": [1.9, 1.0]}";
    OK(hp_stain_params_from_json(ok_text, &back, &e_));

    expect_json_error("", "not valid JSON");
    expect_json_error("{\"method\": \"macenko\",", "not valid JSON");
    expect_json_error("[1, 2]", "not an object");
    expect_json_error("{\"stain_matrix\": [[1,0,0],[0,1,0]], \"max_conc\": [1,1]}", "\"method\"");
    expect_json_error("{\"method\": 3}", "\"method\"");
    expect_json_error("{\"method\": \"vahadane\"}", "\"method\"");
    expect_json_error("{\"method\": \"macenko\", \"max_conc\": [1, 1]}", "\"stain_matrix\"");
    expect_json_error("{\"method\": \"macenko\", \"stain_matrix\": [[1,0,0]], \"max_conc\": [1, 1]}",
                      "\"stain_matrix\"");
    expect_json_error("{\"method\": \"macenko\", \"stain_matrix\": [[1,0,0],[0,1,\"x\"]], \"max_conc\": [1, 1]}",
                      "\"stain_matrix\"[1][2]");
    expect_json_error("{\"method\": \"macenko\", \"stain_matrix\": [[1,0,0],[0,1,0]]}", "\"max_conc\"");
    expect_json_error("{\"method\": \"macenko\", \"stain_matrix\": [[1,0,0],[0,1,0]], \"max_conc\": [1]}",
                      "\"max_conc\"");
    expect_json_error("{\"method\": \"macenko\", \"stain_matrix\": [[1,0,0],[0,1,0]], \"max_conc\": [1, -2]}",
                      "max_conc[1]");
    expect_json_error("{\"method\": \"macenko\", \"stain_matrix\": [[1,0,0],[2,0,0]], \"max_conc\": [1, 1]}",
                      "parallel");
    expect_json_error("{\"method\": \"macenko\", \"stain_matrix\": [[0,0,0],[0,1,0]], \"max_conc\": [1, 1]}",
                      "stain_matrix[0]");
    expect_json_error("{\"method\": \"macenko\", \"stain_matrix\": [[1e300,0,0],[0,1,0]], \"max_conc\": [1, 1]}",
                      "\"stain_matrix\"[0][0]");
    expect_json_error("{\"method\": \"reinhard\", \"mean\": [1, 2, 3], \"std\": [1, 0, 1]}", "std[1]");
    expect_json_error("{\"method\": \"reinhard\", \"mean\": [1, null, 3], \"std\": [1, 1, 1]}", "\"mean\"[1]");
    expect_json_error("{\"method\": \"reinhard\", \"mean\": {}, \"std\": [1, 1, 1]}", "\"mean\"");
    passed++;
}

/* ---- fixture for the numpy reference ----------------------------------------------------- */

static int run_fixture(const char *method, const char *tpath, const char *spath, const char *dir)
{
    hp_error e;
    hp_error_clear(&e);
    hp_stain_method m;
    int tw, th, sw, sh;
    uint8_t *t = NULL, *s = NULL, *out = NULL;
    hp_stain_params pt, ps;
    hp_stain_normalizer nz;
    char path[4096];
    hp_status st = hp_stain_method_parse(method, &m, &e);
    if (st == HP_OK)
        st = hp_image_read_rgb8(tpath, &tw, &th, &t, &e);
    if (st == HP_OK)
        st = hp_image_read_rgb8(spath, &sw, &sh, &s, &e);
    if (st == HP_OK)
        st = hp_stain_fit(m, t, (size_t)tw * th, &pt, &e);
    if (st == HP_OK)
        st = hp_stain_fit(m, s, (size_t)sw * sh, &ps, &e);
    if (st == HP_OK)
        st = hp_stain_normalizer_init(&nz, &pt, &ps, &e);
    if (st == HP_OK && !(out = malloc((size_t)sw * sh * 3)))
        st = hp_error_set(&e, HP_ERR_NOMEM, "out of memory");
    if (st == HP_OK)
        st = hp_stain_normalize_cpu(&nz, s, out, (size_t)sw * sh, &e);
    if (st == HP_OK) {
        snprintf(path, sizeof path, "%s/target.json", dir);
        st = hp_stain_params_write(path, &pt, &e);
    }
    if (st == HP_OK) {
        snprintf(path, sizeof path, "%s/source.json", dir);
        st = hp_stain_params_write(path, &ps, &e);
    }
    if (st == HP_OK) {
        snprintf(path, sizeof path, "%s/out.png", dir);
        st = hp_image_write_png(path, out, sw, sh, &e);
    }
    if (st != HP_OK)
        fprintf(stderr, "test_stain --run: %s (%s)\n", e.msg, hp_status_name(st));
    free(t);
    free(s);
    free(out);
    return st == HP_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--run"))
        return run_fixture(argv[2], argv[3], argv[4], argv[5]);

    test_synthetic_recovery();
    test_degenerate();
    test_json();

    image src = {0}, tgt = {0}, crc_t = {0}, crc_s = {0}, he = {0};
    if (load("tiatoolbox_stain_source_256px.png", &src) && load("tiatoolbox_stain_target_1000px.png", &tgt) &&
        load("crc150_target.png", &crc_t) && load("crc150_test_2.png", &crc_s) &&
        load("HEnorm_example1_1024px.png", &he)) {
        test_identity(&src, "tiatoolbox source", 2.0);
        test_identity(&tgt, "tiatoolbox target", 2.0);
        test_identity(&crc_t, "crc150 target", 2.0);
        /* 44% of its pixels are background or pale, where the out-of-plane part weighs most */
        test_identity(&he, "HEnorm example1", 4.0);
        test_source_to_target(&src, &tgt, "tiatoolbox source->target");
        test_source_to_target(&crc_s, &crc_t, "crc150 test_2->target");
    } else {
        printf("real patches not found: synthetic, degenerate and JSON checks only\n");
    }
    free(src.rgb);
    free(tgt.rgb);
    free(crc_t.rgb);
    free(crc_s.rgb);
    free(he.rgb);
    return hp_test_finish("test_stain", passed);
}
