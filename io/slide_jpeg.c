/* JPEG tiles of a TIFF level decoded by libjpeg-turbo directly, at full or reduced scale.
 *
 * libtiff's JPEG codec always decodes at full size. libjpeg-turbo can decode at 1/2, 1/4 or 1/8
 * of the size with a smaller inverse DCT (DCT scaling): a tile read to be shrunk by 2 or more
 * then costs a fraction of the decoding, and the shrink is done by the transform itself (the
 * low-frequency coefficients only) rather than by averaging decoded pixels. The tile's bytes
 * come from TIFFReadRawTile, and the quantization and Huffman tables that TIFF keeps once per
 * directory (the JPEGTables tag) are loaded first, as libtiff does.
 *
 * Colour is treated as libtiff treats it, so that a tile decoded here at full size equals
 * TIFFReadEncodedTile's bytes: PhotometricInterpretation YCbCr is converted to RGB by libjpeg
 * (libtiff's JPEGCOLORMODE_RGB), RGB is taken as stored. Corrupt data, about which libjpeg would
 * only warn (padding the tile with grey), is an error here, as everywhere in histoplan. */
#include "io/slide_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <tiffio.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr_ctx;

static void jerr_exit(j_common_ptr c)
{
    jerr_ctx *e = (jerr_ctx *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}

/* Level -1 messages are warnings about corrupt data: refused, like errors. */
static void jerr_emit(j_common_ptr c, int level)
{
    if (level < 0)
        jerr_exit(c);
}

hp_status hp_slide_jpeg_tile(struct tiff *tif, uint32_t tile, uint32_t tw, uint32_t th, int ycbcr,
                             int denom, uint8_t **raw, size_t *raw_cap, uint8_t *out, char *why,
                             size_t why_cap)
{
    if (denom != 1 && denom != 2 && denom != 4 && denom != 8) {
        snprintf(why, why_cap, "scale 1/%d is not one libjpeg decodes", denom);
        return HP_ERR_INVALID;
    }
    uint64_t *counts = NULL;
    if (!TIFFGetField(tif, TIFFTAG_TILEBYTECOUNTS, &counts) || !counts ||
        tile >= TIFFNumberOfTiles(tif)) {
        snprintf(why, why_cap, "no byte count for tile %u", (unsigned)tile);
        return HP_ERR_INVALID;
    }
    uint64_t n = counts[tile];
    if (n == 0 || n > ((uint64_t)1 << 30)) {
        snprintf(why, why_cap, "tile %u holds %llu bytes", (unsigned)tile, (unsigned long long)n);
        return HP_ERR_INVALID;
    }
    if (*raw_cap < n) {
        uint8_t *b = realloc(*raw, (size_t)n);
        if (!b) {
            snprintf(why, why_cap, "out of memory for a %llu-byte tile", (unsigned long long)n);
            return HP_ERR_NOMEM;
        }
        *raw = b;
        *raw_cap = (size_t)n;
    }
    tmsize_t got = TIFFReadRawTile(tif, tile, *raw, (tmsize_t)n);
    if (got <= 0) {
        snprintf(why, why_cap, "cannot read the bytes of tile %u", (unsigned)tile);
        return HP_ERR_INVALID;
    }
    uint32_t nt = 0;
    void *tables = NULL;
    if (!TIFFGetField(tif, TIFFTAG_JPEGTABLES, &nt, &tables))
        nt = 0, tables = NULL;

    struct jpeg_decompress_struct ci;
    jerr_ctx e;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jerr_exit;
    e.pub.emit_message = jerr_emit;
    e.msg[0] = '\0';
    /* volatile: read after longjmp */
    volatile hp_status st = HP_OK;
    if (setjmp(e.jb)) {
        snprintf(why, why_cap, "libjpeg: %s", e.msg);
        st = HP_ERR_INVALID;
        goto done;
    }
    jpeg_create_decompress(&ci);
    if (tables && nt > 4) {
        jpeg_mem_src(&ci, tables, nt);
        jpeg_read_header(&ci, FALSE); /* tables only: they stay loaded for the tile */
    }
    jpeg_mem_src(&ci, *raw, (unsigned long)got);
    if (jpeg_read_header(&ci, TRUE) != JPEG_HEADER_OK || ci.num_components != 3) {
        snprintf(why, why_cap, "tile %u is not a 3-component JPEG image", (unsigned)tile);
        st = HP_ERR_UNSUPPORTED;
        goto done;
    }
    ci.jpeg_color_space = ycbcr ? JCS_YCbCr : JCS_RGB;
    ci.out_color_space = JCS_RGB;
    ci.scale_num = 1;
    ci.scale_denom = (unsigned)denom;
    jpeg_start_decompress(&ci);
    uint32_t ow = tw / (uint32_t)denom, oh = th / (uint32_t)denom;
    if (ci.output_width != ow || ci.output_height != oh || ci.output_components != 3) {
        /* A tile whose JPEG frame is not the TIFF tile size (some writers crop edge tiles):
         * the caller decodes it another way. */
        snprintf(why, why_cap, "tile %u decodes to %ux%u, not %ux%u", (unsigned)tile,
                 (unsigned)ci.output_width, (unsigned)ci.output_height, (unsigned)ow,
                 (unsigned)oh);
        st = HP_ERR_UNSUPPORTED;
        goto done;
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = out + (size_t)ci.output_scanline * ow * 3;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
done:
    jpeg_destroy_decompress(&ci);
    return st;
}
