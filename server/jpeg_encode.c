/* server/jpeg_encode.h. libjpeg reports errors by calling error_exit, which must not return:
 * it jumps back here, so a failure never ends the server. */
#include "server/jpeg_encode.h"

#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jmp;
} jerr;

static void on_error(j_common_ptr c)
{
    longjmp(((jerr *)c->err)->jmp, 1);
}

static void no_output(j_common_ptr c)
{
    (void)c;
}

hp_status hp_jpeg_encode(const uint8_t *px, int w, int h, int ch, int quality, uint8_t **out,
                         size_t *n)
{
    *out = NULL, *n = 0;
    if (w < 1 || h < 1 || (ch != 1 && ch != 3))
        return HP_ERR_INVALID;
    struct jpeg_compress_struct c;
    jerr e;
    /* Touched after setjmp, so volatile. */
    unsigned char *volatile buf = NULL;
    unsigned long len = 0;
    c.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = on_error;
    e.mgr.output_message = no_output;
    if (setjmp(e.jmp)) {
        jpeg_destroy_compress(&c);
        free(buf);
        return HP_ERR_IO;
    }
    jpeg_create_compress(&c);
    unsigned char *b = NULL;
    jpeg_mem_dest(&c, &b, &len);
    buf = b;
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = ch;
    c.in_color_space = ch == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * ch);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    buf = b;
    jpeg_destroy_compress(&c);
    *out = b;
    *n = len;
    return HP_OK;
}
