/* server/png_encode.h. libpng reports errors by longjmp to the setjmp below. */
#include "server/png_encode.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *buf;
    size_t n, cap;
    int oom;
} sink;

static void on_write(png_structp p, png_bytep data, png_size_t len)
{
    sink *s = png_get_io_ptr(p);
    if (s->oom)
        return;
    if (s->n + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->n + len)
            cap *= 2;
        uint8_t *b = realloc(s->buf, cap);
        if (!b) {
            s->oom = 1;
            return;
        }
        s->buf = b, s->cap = cap;
    }
    memcpy(s->buf + s->n, data, len);
    s->n += len;
}

static void on_flush(png_structp p)
{
    (void)p;
}

hp_status hp_png_encode_ga(const uint8_t *px, int w, int h, uint8_t **out, size_t *n)
{
    *out = NULL, *n = 0;
    if (w < 1 || h < 1)
        return HP_ERR_INVALID;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    /* Touched after setjmp, so volatile. */
    sink *volatile s = calloc(1, sizeof *s);
    if (!p || !info || !s) {
        png_destroy_write_struct(&p, &info);
        free(s);
        return HP_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        free(s->buf);
        free(s);
        return HP_ERR_IO;
    }
    png_set_write_fn(p, s, on_write, on_flush);
    /* Speed over size: tiles are small and mostly flat. */
    png_set_compression_level(p, 1);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY_ALPHA,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (int y = 0; y < h; y++)
        png_write_row(p, (png_const_bytep)(px + (size_t)y * w * 2));
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    hp_status st = s->oom ? HP_ERR_NOMEM : HP_OK;
    if (st == HP_OK)
        *out = s->buf, *n = s->n;
    else
        free(s->buf);
    free(s);
    return st;
}
