/* Legends: every picture histoplan writes (overlay, heatmaps, uncertainty, mask, the report's
 * images) carries its own key, so a picture passed on alone still says what it shows: a band under
 * the picture with a title, the slide id, a scale bar in µm or mm, and either a colour key with
 * the class names or a colour ramp with its value range, and a note (what white means, say).
 *
 * The picture itself is left untouched in the top-left corner (map_w x map_h); the band is white
 * below it, and the whole image is widened with white when the picture is narrower than the
 * legend needs. Where everything was drawn is written into the PNG as a text chunk
 * "histoplan:legend" (JSON: map size, scale bar position, length in pixels and µm, the key's
 * swatches or ramp), so readers and tests can find the picture and check the key without guessing.
 *
 * Class colours (hp_legend_class_colour) follow the class's diagnostic category, not its place in
 * the class list: Okabe and Ito's palette for colour-blind readers, with in situ blue and invasive
 * vermillion, the pair that stays furthest apart for every kind of colour vision and over both
 * eosin pink and haematoxylin purple.
 *
 * Text is set with cairo in DejaVu Sans (fonts-dejavu-core, found through fontconfig), so any
 * class name or slide id in UTF-8 prints as written.
 *
 * Thread-safe (no shared state; cairo's font cache is its own). */
#ifndef HP_LEGEND_H
#define HP_LEGEND_H

#include <stdint.h>

#include "common/status.h"
#include "models/card.h"

typedef struct {
    const char *title;     /* first line: what the picture shows */
    const char *slide_id;  /* printed as "slide <id>" (NULL: left out) */
    double um_per_px;      /* micrometres per pixel of the picture: the scale bar (> 0) */
    /* The key: classes (n_classes > 0), else a ramp from range_lo to range_hi through colormap. */
    int n_classes;
    const char *const *class_names;
    const uint8_t (*class_rgb)[3];
    const char *range_label;
    double range_lo, range_hi;
    void (*colormap)(float v, uint8_t rgb[3]);
    const char *note;      /* last line (NULL: none) */
} hp_legend;

/* The colour of class k of `card`, by its category (normal bluish green, benign yellow, in situ
 * blue, invasive vermillion); other and unmapped classes take the rest of the palette in class
 * order (reddish purple, sky blue, orange, grey...). */
void hp_legend_class_colour(const hp_card *card, int k, uint8_t rgb[3]);
/* The colour of a diagnostic category (normal, benign, in situ, invasive): 1, or 0 for any other
 * (the caller picks one). */
int hp_legend_category_colour(hp_class_category c, uint8_t rgb[3]);

/* `rgb` (w x h, interleaved RGB8) with the legend band added: *out (malloc'd, *ow x *oh) and the
 * layout as JSON text in *layout (malloc'd). Errors: HP_ERR_INVALID (no scale, sizes), NOMEM. */
hp_status hp_legend_compose(const uint8_t *rgb, int w, int h, const hp_legend *lg, uint8_t **out,
                            int *ow, int *oh, char **layout, hp_error *err);

/* hp_legend_compose, then an RGB PNG at `path` (through a temporary name) with the layout in its
 * "histoplan:legend" text chunk. */
hp_status hp_legend_write_png(const char *path, const uint8_t *rgb, int w, int h,
                              const hp_legend *lg, hp_error *err);

/* An RGB PNG of `img` (W x H) at `path` (through a temporary name) with `layout` (NULL: none) as
 * its "histoplan:legend" text chunk: for copying a picture that already has its legend. */
hp_status hp_legend_write_rgb_png(const char *path, const uint8_t *img, int W, int H,
                                  const char *layout, hp_error *err);

/* The "histoplan:legend" layout text of the PNG at `path` in *layout (malloc'd), NULL when the
 * picture has none. Errors: HP_ERR_IO (unreadable, not a PNG), NOMEM. */
hp_status hp_legend_read_layout(const char *path, char **layout, hp_error *err);

#endif
