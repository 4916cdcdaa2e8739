/* A small RGB raster for the evaluation's figures (reliability diagram, confusion matrix):
 * rectangles, lines and text in a built-in 5 x 9 pixel font (printable ASCII; anything else is
 * drawn as '?'), so figures need no font files or plotting library and come out the same bytes
 * on every machine. Not thread-safe on one canvas. */
#ifndef HP_EVAL_CANVAS_H
#define HP_EVAL_CANVAS_H

#include <stdint.h>

#include "common/status.h"

typedef struct {
    int w, h;
    uint8_t *rgb; /* w * h * 3 */
} hp_canvas;

typedef struct {
    uint8_t r, g, b;
} hp_rgb;

/* A white canvas; HP_ERR_NOMEM when it cannot be allocated. Free with hp_canvas_free. */
hp_status hp_canvas_init(hp_canvas *c, int w, int h);
void hp_canvas_free(hp_canvas *c);

/* A filled rectangle, clipped to the canvas. */
void hp_canvas_rect(hp_canvas *c, int x, int y, int w, int h, hp_rgb col);
/* An outline `t` pixels thick inside the rectangle. */
void hp_canvas_frame(hp_canvas *c, int x, int y, int w, int h, int t, hp_rgb col);
/* A straight line of thickness t (squares stamped along it). */
void hp_canvas_line(hp_canvas *c, int x0, int y0, int x1, int y1, int t, hp_rgb col);

/* Glyph cell: 5 x 9 pixels (7 above the baseline) plus one of spacing, times `scale`. */
#define HP_CANVAS_GLYPH_W 6
#define HP_CANVAS_GLYPH_H 10
/* Width in pixels of `s` at `scale`. */
int hp_canvas_text_width(const char *s, int scale);
/* Text with its top-left corner at (x, y). */
void hp_canvas_text(hp_canvas *c, int x, int y, const char *s, int scale, hp_rgb col);
/* Text turned 90 degrees counter-clockwise (reading upwards), its bottom-left at (x, y). */
void hp_canvas_text_up(hp_canvas *c, int x, int y, const char *s, int scale, hp_rgb col);

#endif
