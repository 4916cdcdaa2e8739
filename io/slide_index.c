/* The tile-index check of every slide level stored as a TIFF directory (io/slide.h, "Tile
 * indexes"): the index read raw (io/tiff_dir.h), because libtiff pads an index shorter than the
 * grid with zeros and OpenSlide then paints the missing tiles transparent, so neither says that
 * data is missing. Runs once per open; it reads the directories and the tile index, never pixel
 * data. */
#include "io/slide_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/tiff_dir.h"

#define NDPI_SOURCELENS 65421

typedef struct {
    uint64_t off, len;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Total bytes covered by the spans, each byte once (tiles may legitimately share data). */
static uint64_t union_bytes(span *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_span);
    uint64_t total = 0, cur_a = 0, cur_b = 0;
    int open_run = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = v[i].off, b = v[i].off + v[i].len;
        if (open_run && a <= cur_b) {
            if (b > cur_b)
                cur_b = b;
            continue;
        }
        if (open_run)
            total += cur_b - cur_a;
        cur_a = a, cur_b = b, open_run = 1;
    }
    return open_run ? total + cur_b - cur_a : total;
}

/* The directory that holds level `l`: the first one with the level's dimensions and image data
 * (the plain reader's levels are the directories it chose). -1 when none: OpenSlide builds some
 * levels itself (NDPI's scaled JPEG levels) and some formats are not TIFF at all. */
static long find_dir(const hp_tiff_file *t, const hp_slide *s, int l, hp_error *err, hp_status *st)
{
    if (!strcmp(s->format, "tiff")) { /* the plain reader's own levels */
        int d = hp_slide_plain_level_dir(s, l);
        return d >= 0 && (size_t)d < t->n_ifds ? d : -1;
    }
    /* Tiled directories first: an associated image stored in strips could share a level's size,
     * and so could an NDPI macro one of the levels OpenSlide scales down itself. */
    int ndpi = !strcmp(s->format, "hamamatsu");
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < t->n_ifds; i++) {
            const hp_tiff_ifd *d = &t->ifds[i];
            uint64_t w, h;
            if ((*st = hp_tiff_get_uint(t, d, HP_TIFFTAG_IMAGE_WIDTH, 0, &w, err)) ||
                (*st = hp_tiff_get_uint(t, d, HP_TIFFTAG_IMAGE_LENGTH, 0, &h, err)))
                return -1;
            int data = pass == 0 ? hp_tiff_find(d, HP_TIFFTAG_TILE_OFFSETS) != NULL
                                 : hp_tiff_find(d, HP_TIFFTAG_STRIP_OFFSETS) != NULL;
            if (ndpi) { /* OpenSlide's NDPI levels are the directories with a positive lens */
                const hp_tiff_entry *lens = hp_tiff_find(d, NDPI_SOURCELENS);
                double v = 0;
                if (!lens || hp_tiff_read_number(t, lens, &v, err) || !(v > 0))
                    data = 0;
            }
            if ((int64_t)w == s->level_w[l] && (int64_t)h == s->level_h[l] && data)
                return (long)i;
        }
    return -1;
}

static hp_status check_level(hp_slide *s, const hp_tiff_file *t, const hp_tiff_ifd *d, int l,
                             hp_error *err)
{
    hp_slide_index *x = &s->index[l];
    uint64_t w, h, tw, th, spp, planar, rps;
    int tiled = hp_tiff_find(d, HP_TIFFTAG_TILE_OFFSETS) != NULL;
    hp_status st;
    if ((st = hp_tiff_get_uint(t, d, HP_TIFFTAG_IMAGE_WIDTH, 0, &w, err)) ||
        (st = hp_tiff_get_uint(t, d, HP_TIFFTAG_IMAGE_LENGTH, 0, &h, err)) ||
        (st = hp_tiff_get_uint(t, d, HP_TIFFTAG_TILE_WIDTH, 0, &tw, err)) ||
        (st = hp_tiff_get_uint(t, d, HP_TIFFTAG_TILE_LENGTH, 0, &th, err)) ||
        (st = hp_tiff_get_uint(t, d, HP_TIFFTAG_SAMPLES_PER_PIXEL, 1, &spp, err)) ||
        (st = hp_tiff_get_uint(t, d, HP_TIFFTAG_PLANAR_CONFIG, 1, &planar, err)) ||
        (st = hp_tiff_get_uint(t, d, HP_TIFFTAG_ROWS_PER_STRIP, h, &rps, err)))
        return st;
    if (!tiled) {
        tw = w;
        th = rps == 0 || rps > h ? h : rps;
    }
    if (w == 0 || h == 0 || tw == 0 || th == 0 || spp == 0 || spp > 64)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: corrupt TIFF: level %d has an image of %llux%llu pixels in "
                            "blocks of %llux%llu",
                            s->path, l, (unsigned long long)w, (unsigned long long)h,
                            (unsigned long long)tw, (unsigned long long)th);
    uint64_t across = (w + tw - 1) / tw, down = (h + th - 1) / th;
    uint64_t grid = across * down * (planar == 2 ? spp : 1);
    const hp_tiff_entry *eo =
        hp_tiff_find(d, tiled ? HP_TIFFTAG_TILE_OFFSETS : HP_TIFFTAG_STRIP_OFFSETS);
    const hp_tiff_entry *ec = hp_tiff_find(d, tiled ? HP_TIFFTAG_TILE_BYTE_COUNTS
                                                    : HP_TIFFTAG_STRIP_BYTE_COUNTS);
    uint64_t *offs = NULL, *cnts = NULL;
    span *present = NULL;
    uint64_t n_off = 0, n_cnt = 0;
    if ((st = hp_tiff_read_uints(t, eo, &offs, err)))
        goto done;
    n_off = eo->count;
    if (ec) {
        if ((st = hp_tiff_read_uints(t, ec, &cnts, err)))
            goto done;
        n_cnt = ec->count;
    }
    /* Entries past the grid are ignored, and grid cells past the index are missing without
     * looking at them: a hostile header's grid can be far larger than its index. */
    uint64_t n_idx = n_off < n_cnt ? n_off : n_cnt;
    if (n_idx > grid)
        n_idx = grid;
    present = malloc((n_idx ? n_idx : 1) * sizeof *present);
    if (!present) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory checking the tile index", s->path);
        goto done;
    }
    int sparse_format = !strcmp(s->format, "philips");
    size_t n_present = 0;
    int64_t missing = (int64_t)(grid - n_idx), sparse = 0;
    for (uint64_t i = 0; i < n_idx; i++) {
        uint64_t o = offs[i], c = cnts[i];
        if (sparse_format && o == 0 && c == 0)
            sparse++;
        else if (o == 0 || c == 0 || o > t->size || c > t->size - o)
            missing++;
        else
            present[n_present++] = (span){o, c};
    }
    x->checked = 1;
    x->tiles = (int64_t)grid;
    x->missing = missing;
    x->sparse = sparse;
    x->data_bytes = union_bytes(present, n_present);
    /* Pixels the stored blocks stand for: edge blocks count whole, a slight overestimate. */
    double stored_px = (double)n_present * (double)tw * (double)th;
    const char *what = tiled ? "tiles" : "strips";
    if (missing > 0) {
        x->damaged = 1;
        snprintf(x->why, sizeof x->why,
                 "%s: level %d is missing %lld of its %lld %s (%.1f%%) from the file's tile "
                 "index: the file is damaged or was not written completely, and the missing "
                 "%s would read as empty glass; refusing to use this level (`histoplan slide "
                 "info` lists every level)",
                 s->path, l, (long long)missing, (long long)grid, what, 100.0 * missing / grid,
                 what);
    } else if (stored_px >= (double)HP_SLIDE_INDEX_CHECK_MIN_PIXELS &&
               stored_px > (double)x->data_bytes * HP_SLIDE_MAX_PIXELS_PER_BYTE) {
        x->damaged = 1;
        snprintf(x->why, sizeof x->why,
                 "%s: level %d claims %llux%llu pixels but its %s hold only %llu bytes of image "
                 "data (%.0f pixels per stored byte, over the limit of %d): the header is "
                 "implausible; refusing to decode pixels that are not in the file",
                 s->path, l, (unsigned long long)w, (unsigned long long)h, what,
                 (unsigned long long)x->data_bytes,
                 x->data_bytes ? stored_px / (double)x->data_bytes : stored_px,
                 HP_SLIDE_MAX_PIXELS_PER_BYTE);
    }
done:
    free(offs);
    free(cnts);
    free(present);
    return st;
}

hp_status hp_slide_index_check(hp_slide *s, int inspect, hp_error *err)
{
    hp_tiff_file t = {.fd = -1, .path = s->path};
    hp_status st = HP_OK;
    struct stat fs;
    unsigned char m[4];
    t.fd = open(s->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (t.fd < 0 || fstat(t.fd, &fs) != 0 || !S_ISREG(fs.st_mode)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", s->path,
                          t.fd < 0 ? strerror(errno) : "not a regular file");
        goto done;
    }
    t.size = (uint64_t)fs.st_size;
    if (t.size < 8 || pread(t.fd, m, 4, 0) != 4)
        goto done; /* too short for TIFF: not a TIFF-based format */
    if (!((m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0) ||
          (m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43))))
        goto done; /* MIRAX, DICOM, PNG, JPEG, ...: no TIFF index to check */
    /* NDPI files past 4 GiB keep the high bits of their offsets elsewhere; their 32-bit fields
     * alone cannot be checked. */
    if (!strcmp(s->format, "hamamatsu") && t.size >= ((uint64_t)1 << 32))
        goto done;
    if ((st = hp_tiff_file_read(&t, err)))
        goto done;
    for (int l = 0; l < s->level_count && !st; l++) {
        long i = find_dir(&t, s, l, err, &st);
        if (i >= 0)
            st = check_level(s, &t, &t.ifds[i], l, err);
    }
    for (int l = 0; l < s->level_count && !st && !inspect; l++)
        if (s->index[l].damaged)
            st = hp_error_set(err, HP_ERR_INVALID, "%s", s->index[l].why);
done:
    hp_tiff_file_free(&t);
    if (t.fd >= 0)
        close(t.fd);
    return st;
}
