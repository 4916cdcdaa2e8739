/* Plain image decoding (PNG, JPEG, TIFF) to RGB8, resizing, and PNG writing.
 *
 * All three decoders report errors through callbacks that by default print to stderr and, for
 * libjpeg, call exit(). Each decoder here installs per-call handlers that capture the first
 * message and unwind (setjmp/longjmp for libpng and libjpeg), so a corrupt file becomes an
 * hp_status with the file named, never a crash, an exit or noise on stderr. */
#include "io/image.h"

#include "io/atomic_file.h"
#include "io/cv_image.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>

#include "io/tiff_message.h"

/* libtiff refuses single allocations above this, so a corrupt tag cannot ask for gigabytes. */
#define TIFF_MAX_ALLOC ((tmsize_t)1 << 30)

static hp_status check_size(const char *path, const char *fmt, long long w, long long h,
                            hp_error *err)
{
    if (w <= 0 || h <= 0)
        return hp_error_set(err, HP_ERR_INVALID, "%s: %s has an empty size %lldx%lld", path, fmt, w, h);
    if (w * h > HP_IMAGE_MAX_PIXELS)
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "%s: %s is %lldx%lld, over %lld megapixels; whole-slide images are read "
                            "by region, not as one image",
                            path, fmt, w, h, HP_IMAGE_MAX_PIXELS / 1000000);
    return HP_OK;
}

/* Over white: an empty glass slide is white, so transparent pixels must not become black. */
static inline uint8_t over_white(unsigned c, unsigned a)
{
    return (uint8_t)((c * a + 255u * (255u - a) + 127u) / 255u);
}

/* ---- PNG ---- */

typedef struct {
    jmp_buf jb;
    char msg[256];
} png_ctx;

static void png_error_cb(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    longjmp(c->jb, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* warnings (odd chunks, gamma) do not affect the pixels we return */
}

/* libpng's own reader says only "Read Error" at end of file; say what happened. */
static void png_read_cb(png_structp png, png_bytep data, size_t n)
{
    FILE *f = png_get_io_ptr(png);
    if (fread(data, 1, n, f) != n)
        png_error(png, ferror(f) ? "read error" : "unexpected end of file (truncated)");
}

static hp_status read_png(const char *path, FILE *f, int *w, int *h, uint8_t **rgb, hp_error *err)
{
    png_ctx ctx;
    ctx.msg[0] = '\0';
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* volatile: assigned after setjmp and needed after longjmp. */
    uint8_t *volatile buf = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory starting the PNG decoder", path);
    }
    if (setjmp(ctx.jb)) {
        free(buf);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt PNG: %s", path, ctx.msg);
    }
    png_set_read_fn(png, f, png_read_cb);
    png_read_info(png, info);
    png_uint_32 pw = png_get_image_width(png, info), ph = png_get_image_height(png, info);
    hp_status st = check_size(path, "PNG", (long long)pw, (long long)ph, err);
    if (st) {
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }
    png_set_expand(png);   /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
    png_set_scale_16(png); /* 16 -> 8 bits with rounding, not truncation */
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((ch != 3 && ch != 4) || rowbytes != (size_t)pw * (size_t)ch)
        png_error(png, "unexpected pixel layout after conversion");
    buf = malloc((size_t)ph * rowbytes);
    rows = malloc((size_t)ph * sizeof(png_bytep));
    if (!buf || !rows) {
        free(buf);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory for a %ux%u PNG", path,
                            (unsigned)pw, (unsigned)ph);
    }
    for (png_uint_32 y = 0; y < ph; y++)
        rows[y] = buf + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);

    uint8_t *out = buf;
    if (ch == 4) {
        /* In place: the RGB write position (3i) never passes the RGBA read position (4i). */
        size_t n = (size_t)pw * ph;
        for (size_t i = 0; i < n; i++) {
            uint8_t a = buf[4 * i + 3];
            uint8_t r = over_white(buf[4 * i], a), g = over_white(buf[4 * i + 1], a),
                    b = over_white(buf[4 * i + 2], a);
            out[3 * i] = r;
            out[3 * i + 1] = g;
            out[3 * i + 2] = b;
        }
        uint8_t *shrunk = realloc(out, n * 3);
        if (shrunk)
            out = shrunk;
    }
    *w = (int)pw;
    *h = (int)ph;
    *rgb = out;
    return HP_OK;
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr pub; /* first, so the library's pointer is also ours */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    char warning[JMSG_LENGTH_MAX];
    int warned;
} jpeg_ctx;

/* libjpeg's default error_exit calls exit(); unwind to read_jpeg instead. */
static void jpeg_error_exit_cb(j_common_ptr ci)
{
    jpeg_ctx *c = (jpeg_ctx *)ci->err;
    (*ci->err->format_message)(ci, c->msg);
    longjmp(c->jb, 1);
}

/* Level -1 is a warning about corrupt data (libjpeg then pads with grey and goes on); keep the
 * first one so the caller can refuse the image. Levels >= 0 are trace messages. */
static void jpeg_emit_message_cb(j_common_ptr ci, int level)
{
    jpeg_ctx *c = (jpeg_ctx *)ci->err;
    if (level < 0) {
        if (!c->warned)
            (*ci->err->format_message)(ci, c->warning);
        c->warned = 1;
        ci->err->num_warnings++;
    }
}

static void jpeg_output_message_cb(j_common_ptr ci)
{
    (void)ci; /* never print */
}

static hp_status read_jpeg(const char *path, FILE *f, int *w, int *h, uint8_t **rgb, hp_error *err)
{
    struct jpeg_decompress_struct ci;
    jpeg_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    uint8_t *volatile out = NULL;
    ci.err = jpeg_std_error(&ctx.pub);
    ctx.pub.error_exit = jpeg_error_exit_cb;
    ctx.pub.emit_message = jpeg_emit_message_cb;
    ctx.pub.output_message = jpeg_output_message_cb;
    if (setjmp(ctx.jb)) {
        jpeg_destroy_decompress(&ci);
        free(out);
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt or unsupported JPEG: %s", path, ctx.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    hp_status st = check_size(path, "JPEG", ci.image_width, ci.image_height, err);
    if (st) {
        jpeg_destroy_decompress(&ci);
        return st;
    }
    ci.out_color_space = JCS_RGB; /* gray and YCbCr convert; CMYK is refused by libjpeg */
    jpeg_start_decompress(&ci);
    if (ci.output_components != 3) {
        jpeg_destroy_decompress(&ci);
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: JPEG decodes to %d components, not RGB",
                            path, ci.output_components);
    }
    size_t stride = (size_t)ci.output_width * 3;
    out = malloc(stride * ci.output_height);
    if (!out) {
        jpeg_destroy_decompress(&ci);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory for a %ux%u JPEG", path,
                            ci.output_width, ci.output_height);
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = out + (size_t)ci.output_scanline * stride;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    *w = (int)ci.output_width;
    *h = (int)ci.output_height;
    jpeg_destroy_decompress(&ci);
    if (ctx.warned) {
        free(out);
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt JPEG data: %s", path, ctx.warning);
    }
    *rgb = out;
    return HP_OK;
}

/* ---- TIFF ---- */

typedef struct {
    char msg[512];
    int have;
} tiff_ctx;

/* Per-handle handlers (libtiff >= 4.5) rather than TIFFSetErrorHandler: the global handler
 * is process-wide, so two threads decoding at once (or the slide reader) would mix messages.
 * Returning 1 stops libtiff from also calling the global (printing) handler. */
static int tiff_error_cb(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    tiff_ctx *c = user;
    if (!c->have) {
        hp_tiff_format_message(c->msg, sizeof c->msg, module, fmt, ap);
        c->have = 1;
    }
    return 1;
}

static int tiff_warning_cb(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif, (void)user, (void)module, (void)fmt, (void)ap;
    return 1; /* unknown tags and the like: not worth a message */
}

static hp_status read_tiff(const char *path, int *w, int *h, uint8_t **rgb, hp_error *err)
{
    tiff_ctx ctx = {{0}, 0};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory starting the TIFF decoder", path);
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_error_cb, &ctx);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warning_cb, &ctx);
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, TIFF_MAX_ALLOC);
    /* "m": no memory mapping, so a file truncated under us is a read error, not SIGBUS. */
    TIFF *tif = TIFFOpenExt(path, "rm", opts);
    TIFFOpenOptionsFree(opts);
    if (!tif)
        return hp_error_set(err, HP_ERR_INVALID, "%s: cannot open TIFF: %s", path,
                            ctx.have ? ctx.msg : "unknown error");
    uint32_t tw = 0, th = 0;
    uint32_t *raster = NULL;
    uint8_t *out = NULL;
    hp_status st = HP_OK;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &tw) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &th)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: TIFF has no image size", path);
        goto fail;
    }
    if ((st = check_size(path, "TIFF", tw, th, err)))
        goto fail;
    size_t n = (size_t)tw * th;
    raster = malloc(n * sizeof(uint32_t));
    out = malloc(n * 3);
    if (!raster || !out) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory for a %ux%u TIFF", path,
                          (unsigned)tw, (unsigned)th);
        goto fail;
    }
    char why[1024] = "";
    if (!TIFFRGBAImageOK(tif, why)) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: unsupported TIFF: %s", path, why);
        goto fail;
    }
    if (!TIFFReadRGBAImageOriented(tif, tw, th, raster, ORIENTATION_TOPLEFT, 1) || ctx.have) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: %s", path,
                          ctx.have ? ctx.msg : "cannot decode the image");
        goto fail;
    }
    /* libtiff returns premultiplied (associated) alpha, so over white is c + (255 - a). */
    for (size_t i = 0; i < n; i++) {
        uint32_t p = raster[i];
        unsigned a = TIFFGetA(p), bg = 255u - a;
        unsigned r = TIFFGetR(p) + bg, g = TIFFGetG(p) + bg, b = TIFFGetB(p) + bg;
        out[3 * i] = (uint8_t)(r > 255 ? 255 : r);
        out[3 * i + 1] = (uint8_t)(g > 255 ? 255 : g);
        out[3 * i + 2] = (uint8_t)(b > 255 ? 255 : b);
    }
    free(raster);
    TIFFClose(tif);
    *w = (int)tw;
    *h = (int)th;
    *rgb = out;
    return HP_OK;

fail:
    free(raster);
    free(out);
    TIFFClose(tif);
    return st;
}

/* ---- dispatch by magic bytes ---- */

hp_status hp_image_read_rgb8(const char *path, int *w, int *h, uint8_t **rgb, hp_error *err)
{
    if (!path || !w || !h || !rgb)
        return hp_error_set(err, HP_ERR_INVALID, "hp_image_read_rgb8: NULL argument");
    *rgb = NULL;
    *w = *h = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char m[8] = {0};
    size_t got = fread(m, 1, sizeof m, f);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    hp_status st;
    if (got == 8 && memcmp(m, png_sig, 8) == 0) {
        rewind(f);
        st = read_png(path, f, w, h, rgb, err);
    } else if (got >= 3 && m[0] == 0xFF && m[1] == 0xD8 && m[2] == 0xFF) {
        rewind(f);
        st = read_jpeg(path, f, w, h, rgb, err);
    } else if (got >= 4 && ((m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0) ||
                            (m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43)))) {
        fclose(f);
        f = NULL;
        st = read_tiff(path, w, h, rgb, err); /* classic TIFF or BigTIFF */
    } else {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "%s: not a PNG, JPEG or TIFF image (unrecognized first bytes%s)", path,
                          got == 0 ? ": the file is empty" : "");
    }
    if (f)
        fclose(f);
    if (st) {
        free(*rgb);
        *rgb = NULL;
        *w = *h = 0;
    }
    return st;
}

/* ---- resize ---- */

hp_status hp_image_resize_rgb8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    if (!src || !dst || sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
        return HP_ERR_INVALID;
    return hp_cv_resize_rgb8(src, sw, sh, 0, dst, dw, dh);
}

/* ---- PNG writing ---- */

hp_status hp_image_write_png(const char *path, const uint8_t *rgb, int w, int h, hp_error *err)
{
    if (!path || !rgb || w <= 0 || h <= 0)
        return hp_error_set(err, HP_ERR_INVALID, "hp_image_write_png: %s: bad arguments (%dx%d)",
                            path ? path : "(null)", w, h);
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st)
        return st;
    FILE *f = af.f;
    png_ctx ctx;
    ctx.msg[0] = '\0';
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_cb,
                                              png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory starting the PNG encoder", path);
        return hp_atomic_finish(path, &af, 0, err);
    }
    if (setjmp(ctx.jb)) {
        png_destroy_write_struct(&png, &info);
        hp_error_set(err, HP_ERR_IO, "%s: PNG write failed: %s", path, ctx.msg);
        return hp_atomic_finish(path, &af, 0, err);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(rgb + (size_t)y * w * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);

    return hp_atomic_finish(path, &af, 1, err);
}
