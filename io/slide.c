/* The slide interface: picks a reader, owns the handle, decides the microns per pixel, and
 * builds thumbnails on top of read_region. The readers live in slide_openslide.c and
 * slide_plain.c. */
#include "io/slide.h"

#include "io/slide_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *hp_mpp_source_name(hp_mpp_source src)
{
    switch (src) {
    case HP_MPP_NONE: return "none";
    case HP_MPP_OVERRIDE: return "override";
    case HP_MPP_OPENSLIDE: return "openslide";
    case HP_MPP_TIFF_RESOLUTION: return "tiff-resolution";
    case HP_MPP_OBJECTIVE: return "objective-power";
    }
    return "unknown";
}

hp_status hp_slide_fail(hp_slide *s, hp_status code, const char *fmt, ...)
{
    pthread_mutex_lock(&s->err_mu);
    if (s->err.code == HP_OK) {
        s->err.code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err.msg, sizeof s->err.msg, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&s->err_mu);
    return code;
}

hp_status hp_slide_alloc_levels(hp_slide *s, int n, hp_error *err)
{
    s->level_w = calloc((size_t)n, sizeof *s->level_w);
    s->level_h = calloc((size_t)n, sizeof *s->level_h);
    s->level_ds = calloc((size_t)n, sizeof *s->level_ds);
    s->index = calloc((size_t)n, sizeof *s->index);
    if (!s->level_w || !s->level_h || !s->level_ds || !s->index)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory for %d levels", s->path, n);
    s->level_count = n;
    return HP_OK;
}

double hp_slide_tiff_res_to_mpp(double res, int unit)
{
    if (!(res > 0) || !isfinite(res))
        return 0;
    if (unit == 2)
        return 25400.0 / res;
    if (unit == 3)
        return 10000.0 / res;
    return 0;
}

static int mpp_in_range(double v)
{
    return v >= HP_SLIDE_MPP_MIN && v <= HP_SLIDE_MPP_MAX;
}

int hp_slide_offer_mpp(hp_slide *s, double x, double y, hp_mpp_source src, const char *what)
{
    if (s->meta_src != HP_MPP_NONE)
        return 0;
    if (mpp_in_range(x) && mpp_in_range(y)) {
        s->meta_mpp_x = x;
        s->meta_mpp_y = y;
        s->meta_src = src;
        return 1;
    }
    size_t n = strlen(s->mpp_notes);
    snprintf(s->mpp_notes + n, sizeof s->mpp_notes - n, "; %s: %g x %g um/px, outside %g..%g",
             what, x, y, HP_SLIDE_MPP_MIN, HP_SLIDE_MPP_MAX);
    return 0;
}

void hp_slide_fill_white(uint8_t *rgb, int w, int h)
{
    memset(rgb, 255, (size_t)w * (size_t)h * 3);
}

/* ---- open / close ---- */

typedef enum { MAGIC_NONE, MAGIC_TIFF, MAGIC_PNG, MAGIC_JPEG } magic_kind;

static magic_kind sniff(const unsigned char *m, size_t n)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && !memcmp(m, png_sig, 8))
        return MAGIC_PNG;
    if (n >= 3 && m[0] == 0xFF && m[1] == 0xD8 && m[2] == 0xFF)
        return MAGIC_JPEG;
    if (n >= 4 && ((m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0) ||
                   (m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43))))
        return MAGIC_TIFF;
    return MAGIC_NONE;
}

/* What the first bytes look like, for the "not a slide" message: a text file renamed .svs is a
 * common mistake and saying "it is a text file" makes it obvious. The text itself is never
 * quoted: a mislabelled file may hold a patient's name, and messages reach logs and summaries. */
static void describe_start(const unsigned char *m, size_t n, char *out, size_t cap)
{
    size_t printable = 0;
    for (size_t i = 0; i < n; i++)
        if (isprint(m[i]) || m[i] == '\n' || m[i] == '\r' || m[i] == '\t')
            printable++;
    if (n > 0 && printable == n) {
        snprintf(out, cap, "it starts with plain text, like a text file");
        return;
    }
    size_t used = (size_t)snprintf(out, cap, "its first bytes are");
    for (size_t i = 0; i < n && i < 8 && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, " %02x", m[i]);
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a named pipe (FIFO)";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    return "not a regular file";
}

hp_status hp_slide_check_file(const char *path, hp_error *err)
{
    struct stat st;
    if (!path)
        return hp_error_set(err, HP_ERR_INVALID, "no slide path given");
    if (stat(path, &st) != 0)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: is %s, not a slide file; give the path of a regular file", path,
                            file_kind(st.st_mode));
    return HP_OK;
}

/* Tile routing (io/slide.h, "Who decoded what"): OpenSlide's aperio and generic-tiff formats keep
 * their levels as TIFF directories; a level that the plain reader has with the same size, in a
 * layout it decodes to OpenSlide's bytes, and with an intact tile index is read through it. Any
 * failure to set this up leaves every read with OpenSlide. */
static void route_tiles(hp_slide *s)
{
    if (strcmp(s->format, "aperio") && strcmp(s->format, "generic-tiff"))
        return;
    hp_slide_options po = {.reader = HP_SLIDE_READER_PLAIN, .inspect = 1, .block_cache_bytes = s->block_cache_bytes};
    hp_error e = {0};
    hp_slide *t = hp_slide_open(s->path, &po, &e);
    int *route = t ? malloc((size_t)s->level_count * sizeof *route) : NULL;
    int any = 0;
    for (int l = 0; route && l < s->level_count; l++) {
        route[l] = -1;
        for (int k = 0; k < t->level_count && !s->index[l].damaged; k++)
            if (t->level_w[k] == s->level_w[l] && t->level_h[k] == s->level_h[l] &&
                !t->index[k].damaged && hp_slide_plain_exact_layout(t, k)) {
                route[l] = k;
                any = 1;
                break;
            }
    }
    if (!any) {
        free(route);
        hp_slide_close(t);
        return;
    }
    s->tiles = t;
    s->route = route;
}

/* The plain level that reads (level, x0, y0) with exactly OpenSlide's pixels, or -1: level 0
 * always, another level where the region starts on its own pixel grid (OpenSlide paints a region
 * between a level's pixels by interpolating them, which the plain reader does not). */
static int routed_level(const hp_slide *s, int level, int64_t x0, int64_t y0)
{
    if (!s->route || s->route[level] < 0)
        return -1;
    if (level == 0)
        return s->route[level];
    double ds = s->level_ds[level];
    int64_t d = (int64_t)ds;
    if ((double)d != ds || d < 1 || x0 % d != 0 || y0 % d != 0 ||
        s->tiles->level_ds[s->route[level]] != ds)
        return -1;
    return s->route[level];
}

static void count_read(hp_slide *s, hp_slide_read_kind k)
{
    __atomic_fetch_add(&s->reads[k], 1, __ATOMIC_RELAXED);
}

hp_slide *hp_slide_open(const char *path, const hp_slide_options *opt, hp_error *err)
{
    if (!path) {
        hp_error_set(err, HP_ERR_INVALID, "hp_slide_open: no path");
        return NULL;
    }
    hp_slide_options o = {0};
    if (opt)
        o = *opt;
    if (o.mpp != 0 && !mpp_in_range(o.mpp)) {
        hp_error_set(err, HP_ERR_INVALID, "%s: --mpp %g is outside the range of microscopy (%g..%g um/px)",
                     path, o.mpp, HP_SLIDE_MPP_MIN, HP_SLIDE_MPP_MAX);
        return NULL;
    }
    if (hp_slide_check_file(path, err))
        return NULL;
    /* O_NONBLOCK: a FIFO swapped in after the check must not block the open either; fstat then
     * looks at the file actually opened. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", path,
                     fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    unsigned char m[16];
    ssize_t r;
    do
        r = pread(fd, m, sizeof m, 0);
    while (r < 0 && errno == EINTR);
    close(fd);
    size_t got = r > 0 ? (size_t)r : 0;
    if (got == 0) {
        hp_error_set(err, HP_ERR_INVALID, "%s: not a slide: the file is empty", path);
        return NULL;
    }

    hp_slide *s = calloc(1, sizeof *s);
    char *p = strdup(path);
    if (!s || !p) {
        free(s);
        free(p);
        hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    s->path = p;
    pthread_mutex_init(&s->err_mu, NULL);
    s->override_mpp = o.mpp;
    s->block_cache_bytes = o.block_cache_bytes;
    s->reader = o.reader;

    hp_status rc;
    magic_kind kind = sniff(m, got);
    int use_openslide = o.reader == HP_SLIDE_READER_OPENSLIDE ||
                        (o.reader == HP_SLIDE_READER_AUTO && hp_slide_openslide_detect(path));
    if (use_openslide) {
        rc = hp_slide_openslide_open(s, err);
    } else if (kind != MAGIC_NONE) {
        snprintf(s->format, sizeof s->format, "%s",
                 kind == MAGIC_TIFF ? "tiff" : kind == MAGIC_PNG ? "png" : "jpeg");
        rc = hp_slide_plain_open(s, err);
    } else {
        char start[96];
        describe_start(m, got, start, sizeof start);
        rc = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: not a slide histoplan can read: OpenSlide does not recognize it and "
                          "it is not a TIFF, PNG or JPEG image (%s)",
                          path, start);
    }
    if (rc)
        goto fail;
    for (int l = 0; l < s->level_count; l++) {
        if (s->level_w[l] <= 0 || s->level_h[l] <= 0 || s->level_w[l] > HP_SLIDE_MAX_SIDE ||
            s->level_h[l] > HP_SLIDE_MAX_SIDE) {
            hp_error_set(err, HP_ERR_INVALID,
                         "%s: level %d claims %lldx%lld pixels, outside 1..%lld per side: the "
                         "header is corrupt",
                         path, l, (long long)s->level_w[l], (long long)s->level_h[l],
                         HP_SLIDE_MAX_SIDE);
            goto fail;
        }
    }
    if (hp_slide_index_check(s, o.inspect, err))
        goto fail;
    if (use_openslide && o.reader == HP_SLIDE_READER_AUTO)
        route_tiles(s);
    if (!(s->objective > 0) || !isfinite(s->objective))
        s->objective = 0;
    if (s->override_mpp == 0 && s->meta_src == HP_MPP_NONE && s->objective > 0 &&
        mpp_in_range(10.0 / s->objective))
        snprintf(s->warning, sizeof s->warning,
                 "microns per pixel %.4g estimated from the objective power %gx (10 um/px at 1x); "
                 "scanners differ, pass --mpp to set it exactly",
                 10.0 / s->objective, s->objective);
    return s;

fail:
    hp_slide_close(s);
    return NULL;
}

void hp_slide_close(hp_slide *s)
{
    if (!s)
        return;
    if (s->ops && s->ops->close)
        s->ops->close(s->impl);
    hp_slide_close(s->tiles);
    free(s->route);
    free(s->level_w);
    free(s->level_h);
    free(s->level_ds);
    free(s->index);
    free(s->path);
    pthread_mutex_destroy(&s->err_mu);
    free(s);
}

/* ---- accessors ---- */

const char *hp_slide_error(hp_slide *s)
{
    if (!s)
        return "no slide";
    pthread_mutex_lock(&s->err_mu);
    const char *m = s->err.code ? s->err.msg : "";
    pthread_mutex_unlock(&s->err_mu);
    return m;
}

const char *hp_slide_path(const hp_slide *s) { return s->path; }
const char *hp_slide_format(const hp_slide *s) { return s->format; }
int hp_slide_level_count(const hp_slide *s) { return s->level_count; }
const char *hp_slide_warning(const hp_slide *s) { return s->warning; }
double hp_slide_objective_power(const hp_slide *s) { return s->objective; }
int hp_slide_associated_count(const hp_slide *s) { return s->assoc_count; }

const char *hp_slide_associated_name(const hp_slide *s, int i)
{
    return i >= 0 && i < s->assoc_count ? s->assoc_names[i] : NULL;
}

hp_status hp_slide_level_dimensions(hp_slide *s, int level, int64_t *w, int64_t *h)
{
    if (level < 0 || level >= s->level_count)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: level %d does not exist (the slide has %d)",
                             s->path, level, s->level_count);
    if (w)
        *w = s->level_w[level];
    if (h)
        *h = s->level_h[level];
    return HP_OK;
}

hp_status hp_slide_level_index(hp_slide *s, int level, hp_slide_index *out)
{
    if (level < 0 || level >= s->level_count)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: level %d does not exist (the slide has %d)",
                             s->path, level, s->level_count);
    *out = s->index[level];
    return HP_OK;
}

double hp_slide_level_downsample(const hp_slide *s, int level)
{
    return level >= 0 && level < s->level_count ? s->level_ds[level] : 0;
}

const char *hp_slide_property(const hp_slide *s, const char *name)
{
    return s->ops && s->ops->property && name ? s->ops->property(s, name) : NULL;
}

hp_status hp_slide_mpp(hp_slide *s, double *mpp_x, double *mpp_y, hp_mpp_source *source)
{
    double x = 0, y = 0;
    hp_mpp_source src = HP_MPP_NONE;
    if (s->override_mpp > 0) {
        x = y = s->override_mpp;
        src = HP_MPP_OVERRIDE;
    } else if (s->meta_src != HP_MPP_NONE) {
        x = s->meta_mpp_x;
        y = s->meta_mpp_y;
        src = s->meta_src;
    } else if (s->objective > 0 && mpp_in_range(10.0 / s->objective)) {
        x = y = 10.0 / s->objective;
        src = HP_MPP_OBJECTIVE;
    }
    if (mpp_x)
        *mpp_x = x;
    if (mpp_y)
        *mpp_y = y;
    if (source)
        *source = src;
    if (src == HP_MPP_NONE)
        return hp_slide_fail(s, HP_ERR_INVALID,
                             "%s: the slide does not say its microns per pixel (looked for "
                             "OpenSlide's mpp, TIFF resolution tags in cm or inch, and the "
                             "objective power%s); pass --mpp X with the microns per pixel at level 0",
                             s->path, s->mpp_notes);
    return HP_OK;
}

/* ---- reading ---- */

/* Thumbnails read their level in chunks of about this many rows, within this many pixels. */
#define THUMB_CHUNK_ROWS 512
#define THUMB_CHUNK_PIXELS (64LL * 1024 * 1024)

hp_status hp_slide_read_region(hp_slide *s, int level, int64_t x0, int64_t y0, int w, int h,
                               uint8_t *rgb)
{
    if (!rgb || w <= 0 || h <= 0 || (int64_t)w * h > HP_SLIDE_REGION_MAX_PIXELS)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: bad region request %dx%d (1..%lld pixels)",
                             s->path, w, h, HP_SLIDE_REGION_MAX_PIXELS);
    if (level < 0 || level >= s->level_count)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: level %d does not exist (the slide has %d)",
                             s->path, level, s->level_count);
    if (s->index[level].damaged)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s", s->index[level].why);
    /* Far outside any slide: the arithmetic below (level-0 to level scaling) stays in range. */
    const int64_t lim = (int64_t)1 << 40;
    if (x0 < -lim || x0 > lim || y0 < -lim || y0 > lim)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: region origin (%lld, %lld) is out of range",
                             s->path, (long long)x0, (long long)y0);
    int pl = routed_level(s, level, x0, y0);
    if (pl >= 0) {
        hp_status st = s->tiles->ops->read_region(s->tiles, pl, x0, y0, w, h, rgb);
        if (st)
            return hp_slide_fail(s, st, "%s", hp_slide_error(s->tiles));
        count_read(s, HP_SLIDE_READ_LIBTIFF);
        return HP_OK;
    }
    hp_status st = s->ops->read_region(s, level, x0, y0, w, h, rgb);
    if (!st)
        count_read(s, hp_slide_plain_level_dir(s, level) >= 0 ? HP_SLIDE_READ_LIBTIFF
                      : s->ops->read_associated                 ? HP_SLIDE_READ_OPENSLIDE
                                                                : HP_SLIDE_READ_IMAGE);
    return st;
}

/* The plain reader's handle and level behind `level` of s, or NULL. */
static hp_slide *plain_behind(const hp_slide *s, int level, int *pl)
{
    if (level < 0 || level >= s->level_count)
        return NULL;
    if (s->route && s->route[level] >= 0) {
        *pl = s->route[level];
        return s->tiles;
    }
    if (hp_slide_plain_level_dir(s, level) >= 0) {
        *pl = level;
        return (hp_slide *)s;
    }
    return NULL;
}

int hp_slide_reduced_max(const hp_slide *s, int level)
{
    int pl = 0;
    const hp_slide *t = plain_behind(s, level, &pl);
    return t ? hp_slide_plain_reduced_max(t, pl) : 1;
}

hp_status hp_slide_read_region_reduced(hp_slide *s, int level, int64_t x0, int64_t y0, int w,
                                       int h, int denom, uint8_t *rgb)
{
    if (denom == 1)
        return hp_slide_read_region(s, level, x0, y0, w, h, rgb);
    int pl = 0;
    hp_slide *t = plain_behind(s, level, &pl);
    if (!t || denom < 1 || denom > hp_slide_plain_reduced_max(t, pl) || (denom & (denom - 1)))
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: level %d cannot be decoded at 1/%d scale",
                             s->path, level, denom);
    if (!rgb || w < denom || h < denom || (int64_t)w * h > HP_SLIDE_REGION_MAX_PIXELS)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: bad region request %dx%d at 1/%d scale",
                             s->path, w, h, denom);
    if (s->index[level].damaged)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s", s->index[level].why);
    const int64_t lim = (int64_t)1 << 40;
    if (x0 < -lim || x0 > lim || y0 < -lim || y0 > lim)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: region origin (%lld, %lld) is out of range",
                             s->path, (long long)x0, (long long)y0);
    double ds = t->level_ds[pl];
    int64_t rx = llround((double)x0 / ds / denom), ry = llround((double)y0 / ds / denom);
    hp_status st = hp_slide_plain_read_reduced(t, pl, rx, ry, w / denom, h / denom, denom, rgb);
    if (st)
        return t == s ? st : hp_slide_fail(s, st, "%s", hp_slide_error(t));
    count_read(s, HP_SLIDE_READ_REDUCED);
    return HP_OK;
}

void hp_slide_read_counts(const hp_slide *s, int64_t *counts, int n)
{
    for (int k = 0; k < n && k < HP_SLIDE_READ_KINDS; k++)
        counts[k] = __atomic_load_n(&s->reads[k], __ATOMIC_RELAXED);
}

const char *hp_slide_read_kind_name(hp_slide_read_kind k)
{
    switch (k) {
    case HP_SLIDE_READ_OPENSLIDE: return "openslide";
    case HP_SLIDE_READ_LIBTIFF: return "libtiff";
    case HP_SLIDE_READ_REDUCED: return "libjpeg-scaled";
    case HP_SLIDE_READ_IMAGE: return "image";
    case HP_SLIDE_READ_KINDS: break;
    }
    return "unknown";
}

int hp_slide_routes_tiles(const hp_slide *s)
{
    return s->tiles != NULL || hp_slide_plain_level_dir(s, 0) >= 0;
}

hp_status hp_slide_read_associated(hp_slide *s, const char *name, uint8_t **rgb, int *w, int *h)
{
    *rgb = NULL;
    *w = *h = 0;
    if (!name || !s->ops->read_associated)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: no associated image '%s'", s->path,
                             name ? name : "(null)");
    return s->ops->read_associated(s, name, rgb, w, h);
}

hp_status hp_slide_read_thumbnail(hp_slide *s, int max_side, uint8_t **rgb, int *w, int *h)
{
    *rgb = NULL;
    *w = *h = 0;
    if (max_side <= 0 || max_side > 65536)
        return hp_slide_fail(s, HP_ERR_INVALID, "%s: thumbnail size %d is outside 1..65536",
                             s->path, max_side);
    int64_t W0 = s->level_w[0], H0 = s->level_h[0], L = W0 > H0 ? W0 : H0;
    int64_t tw = W0, th = H0;
    if (L > max_side) {
        tw = (W0 * max_side + L / 2) / L;
        th = (H0 * max_side + L / 2) / L;
    }
    if (tw < 1)
        tw = 1;
    if (th < 1)
        th = 1;
    int lev = 0;
    for (int l = 1; l < s->level_count; l++)
        if (s->level_w[l] >= tw && s->level_h[l] >= th)
            lev = l;
    int64_t lw = s->level_w[lev], lh = s->level_h[lev];
    double ds = s->level_ds[lev];
    /* Level rows are read in chunks of whole output rows, at least THUMB_CHUNK_ROWS rows at a
     * time: a reader without a tile cache (the plain TIFF reader) decodes each row of tiles once
     * or twice, not once per output row. */
    int64_t band_max = (lh + th - 1) / th + 1;
    int64_t chunk = band_max > THUMB_CHUNK_ROWS ? band_max : THUMB_CHUNK_ROWS;
    if (chunk > lh + 1)
        chunk = lh + 1;
    if (lw * band_max > HP_SLIDE_REGION_MAX_PIXELS)
        return hp_slide_fail(s, HP_ERR_UNSUPPORTED,
                             "%s: a thumbnail band of %lldx%lld pixels at level %d is too large",
                             s->path, (long long)lw, (long long)band_max, lev);
    while (chunk > band_max && lw * chunk > THUMB_CHUNK_PIXELS)
        chunk /= 2;
    if (chunk < band_max)
        chunk = band_max;
    uint8_t *out = malloc((size_t)(tw * th * 3));
    uint8_t *band = malloc((size_t)(lw * chunk * 3));
    if (!out || !band) {
        free(out);
        free(band);
        return hp_slide_fail(s, HP_ERR_NOMEM, "%s: out of memory for a thumbnail", s->path);
    }
    hp_status st = HP_OK;
    int64_t have0 = 0, have1 = 0; /* level rows [have0, have1) are in band */
    for (int64_t j = 0; j < th && !st; j++) {
        /* Area average: output row j covers level rows [r0, r1), output column i covers
         * [c0, c1); each output pixel is the mean of its box. */
        int64_t r0 = j * lh / th, r1 = (j + 1) * lh / th;
        if (r1 <= r0)
            r1 = r0 + 1;
        int bh = (int)(r1 - r0);
        if (r0 < have0 || r1 > have1) {
            int64_t n = chunk;
            if (r0 + n > lh)
                n = lh - r0 > bh ? lh - r0 : bh;
            st = hp_slide_read_region(s, lev, 0, llround((double)r0 * ds), (int)lw, (int)n, band);
            have0 = r0;
            have1 = r0 + n;
        }
        const uint8_t *rows = band + (size_t)(r0 - have0) * (size_t)lw * 3;
        for (int64_t i = 0; i < tw && !st; i++) {
            int64_t c0 = i * lw / tw, c1 = (i + 1) * lw / tw;
            if (c1 <= c0)
                c1 = c0 + 1;
            uint64_t sum[3] = {0, 0, 0}, n = (uint64_t)((c1 - c0) * bh);
            for (int r = 0; r < bh; r++) {
                const uint8_t *px = rows + ((size_t)r * (size_t)lw + (size_t)c0) * 3;
                for (int64_t c = c0; c < c1; c++, px += 3) {
                    sum[0] += px[0];
                    sum[1] += px[1];
                    sum[2] += px[2];
                }
            }
            for (int k = 0; k < 3; k++)
                out[(j * tw + i) * 3 + k] = (uint8_t)((sum[k] + n / 2) / n);
        }
    }
    free(band);
    if (st) {
        free(out);
        return st;
    }
    *rgb = out;
    *w = (int)tw;
    *h = (int)th;
    return HP_OK;
}
