/* The OpenSlide-backed reader: every format OpenSlide 3.4 recognizes.
 *
 * OpenSlide 3.4 reports failures through openslide_get_error, not return values, and once a
 * handle has failed it stays failed: every call after an open and after each read checks it,
 * so a corrupt tile becomes an error naming the file rather than a silently transparent
 * (white) region. openslide_read_region is thread-safe on one handle.
 *
 * Pixels: OpenSlide returns premultiplied ARGB (one native-endian uint32 per pixel, 0xAARRGGBB),
 * with alpha 0 outside the scanned area. Composited over white, a premultiplied colour c with
 * alpha a gives c + (255 - a): exact in integers, no rounding, and c <= a keeps it <= 255. */
#include "io/slide_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openslide.h>

static openslide_t *osr_of(const hp_slide *s)
{
    return (openslide_t *)s->impl;
}

int hp_slide_openslide_detect(const char *path)
{
    return openslide_detect_vendor(path) != NULL;
}

static void argb_to_rgb(const uint32_t *src, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t p = src[i];
        unsigned bg = 255u - (p >> 24);
        unsigned r = ((p >> 16) & 255u) + bg, g = ((p >> 8) & 255u) + bg, b = (p & 255u) + bg;
        dst[3 * i] = (uint8_t)(r > 255 ? 255 : r);
        dst[3 * i + 1] = (uint8_t)(g > 255 ? 255 : g);
        dst[3 * i + 2] = (uint8_t)(b > 255 ? 255 : b);
    }
}

static hp_status os_read_region(hp_slide *s, int level, int64_t x0, int64_t y0, int w, int h,
                                uint8_t *rgb)
{
    openslide_t *osr = osr_of(s);
    const char *e = openslide_get_error(osr);
    if (e)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: the slide failed earlier: %s", s->path, e);
    size_t n = (size_t)w * (size_t)h;
    uint32_t *buf = malloc(n * sizeof *buf);
    if (!buf)
        return hp_slide_fail(s, HP_ERR_NOMEM, "%s: out of memory for a %dx%d region", s->path, w, h);
    openslide_read_region(osr, buf, x0, y0, level, w, h);
    e = openslide_get_error(osr);
    if (e) {
        free(buf);
        return hp_slide_fail(s, HP_ERR_INVALID,
                             "%s: reading the %dx%d region at (%lld, %lld) of level %d failed: %s",
                             s->path, w, h, (long long)x0, (long long)y0, level, e);
    }
    argb_to_rgb(buf, rgb, n);
    free(buf);
    return HP_OK;
}

static hp_status os_read_associated(hp_slide *s, const char *name, uint8_t **rgb, int *w, int *h)
{
    openslide_t *osr = osr_of(s);
    int64_t aw = -1, ah = -1;
    openslide_get_associated_image_dimensions(osr, name, &aw, &ah);
    const char *e = openslide_get_error(osr);
    if (e)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: associated image '%s': %s", s->path, name, e);
    if (aw <= 0 || ah <= 0)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: no associated image '%s'", s->path, name);
    if (aw > HP_SLIDE_MAX_SIDE || ah > HP_SLIDE_MAX_SIDE || aw * ah > HP_SLIDE_REGION_MAX_PIXELS)
        return hp_slide_fail(s, HP_ERR_UNSUPPORTED, "%s: associated image '%s' is %lldx%lld, too large",
                             s->path, name, (long long)aw, (long long)ah);
    size_t n = (size_t)(aw * ah);
    uint32_t *buf = malloc(n * sizeof *buf);
    uint8_t *out = malloc(n * 3);
    if (!buf || !out) {
        free(buf);
        free(out);
        return hp_slide_fail(s, HP_ERR_NOMEM, "%s: out of memory for associated image '%s'", s->path, name);
    }
    openslide_read_associated_image(osr, name, buf);
    e = openslide_get_error(osr);
    if (e) {
        free(buf);
        free(out);
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: reading associated image '%s' failed: %s",
                             s->path, name, e);
    }
    argb_to_rgb(buf, out, n);
    free(buf);
    *rgb = out;
    *w = (int)aw;
    *h = (int)ah;
    return HP_OK;
}

static const char *os_property(const hp_slide *s, const char *name)
{
    return openslide_get_property_value(osr_of(s), name);
}

static void os_close(void *impl)
{
    if (impl)
        openslide_close(impl);
}

static const hp_slide_ops os_ops = {os_read_region, os_read_associated, os_property, os_close};

/* A property as a number; 0 when absent or not a number. OpenSlide writes numbers with
 * g_ascii_dtostr (C locale), as strtod reads them in a program that never calls setlocale. */
static double prop_num(openslide_t *osr, const char *name)
{
    const char *v = openslide_get_property_value(osr, name);
    if (!v || !*v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    return end != v ? d : 0;
}

static int resolution_unit(openslide_t *osr)
{
    const char *u = openslide_get_property_value(osr, "tiff.ResolutionUnit");
    if (!u)
        return 2; /* TIFF's default is inch */
    if (!strcmp(u, "inch"))
        return 2;
    if (!strcmp(u, "centimeter"))
        return 3;
    return 1;
}

hp_status hp_slide_openslide_open(hp_slide *s, hp_error *err)
{
    const char *vendor = openslide_detect_vendor(s->path);
    snprintf(s->format, sizeof s->format, "%s", vendor ? vendor : "openslide");
    openslide_t *osr = openslide_open(s->path);
    if (!osr)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: OpenSlide does not recognize this file",
                            s->path);
    const char *e = openslide_get_error(osr);
    if (e) {
        hp_error_set(err, HP_ERR_INVALID, "%s: corrupt or unreadable %s slide: %s", s->path,
                     s->format, e);
        openslide_close(osr);
        return HP_ERR_INVALID;
    }
    s->impl = osr;
    s->ops = &os_ops;
    int32_t n = openslide_get_level_count(osr);
    if (n < 1 || (e = openslide_get_error(osr)))
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt %s slide: %s", s->path, s->format,
                            e ? e : "no levels");
    hp_status st = hp_slide_alloc_levels(s, n, err);
    if (st)
        return st;
    for (int32_t l = 0; l < n; l++) {
        int64_t w = -1, h = -1;
        openslide_get_level_dimensions(osr, l, &w, &h);
        s->level_w[l] = w;
        s->level_h[l] = h;
        s->level_ds[l] = openslide_get_level_downsample(osr, l);
    }
    if ((e = openslide_get_error(osr)))
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt %s slide: %s", s->path, s->format, e);

    s->objective = prop_num(osr, OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER);
    if (!(s->objective > 0))
        s->objective = prop_num(osr, "aperio.AppMag");

    double mx = prop_num(osr, OPENSLIDE_PROPERTY_NAME_MPP_X);
    double my = prop_num(osr, OPENSLIDE_PROPERTY_NAME_MPP_Y);
    if (mx > 0 || my > 0)
        hp_slide_offer_mpp(s, mx, my, HP_MPP_OPENSLIDE, "openslide.mpp-x/y");
    /* OpenSlide 3.4 leaves mpp unset for generic TIFFs even when the resolution tags are there;
     * it does expose the tags as properties. */
    double xr = prop_num(osr, "tiff.XResolution"), yr = prop_num(osr, "tiff.YResolution");
    if (xr > 0 && yr > 0) {
        int unit = resolution_unit(osr);
        double tx = hp_slide_tiff_res_to_mpp(xr, unit), ty = hp_slide_tiff_res_to_mpp(yr, unit);
        if (tx > 0 && ty > 0)
            hp_slide_offer_mpp(s, tx, ty, HP_MPP_TIFF_RESOLUTION, "tiff.XResolution/YResolution");
    }

    const char *const *names = openslide_get_associated_image_names(osr);
    int k = 0;
    while (names && names[k])
        k++;
    s->assoc_names = names;
    s->assoc_count = k;
    if ((e = openslide_get_error(osr)))
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt %s slide: %s", s->path, s->format, e);
    return HP_OK;
}
