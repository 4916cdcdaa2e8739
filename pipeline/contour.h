/* Outlines of connected regions in a label grid, traced along cell edges (by OpenCV's
 * connectedComponents and findContours, io/cv_image.h): the one tracer behind
 * the synthetic ground truth (pipeline/synth_truth.c) and the measured regions
 * (pipeline/regions.c), so both draw the same polygons for the same cells.
 *
 * Connectivity: 4 (cells sharing an edge). Two cells of a label that touch only at a corner are
 * two regions. Why 4 and not 8: a region joined only through a corner is two foci to a
 * pathologist measuring the largest one, and with 4-connectivity every outline is a simple ring.
 *
 * Rings are in grid-vertex coordinates: vertex (x, y) is the top-left corner of cell (x, y), so a
 * region's rings enclose exactly its cells. A ring is closed (last point == first), keeps only its
 * corners, and never touches itself: where the outline passes a vertex twice (a hole that meets
 * the outside or another hole only at a corner), it is split there, so the result is a valid
 * OGC / GeoJSON polygon (holes may touch the shell or each other at a single point). Outer rings
 * run clockwise on screen (y down; positive signed area in x-right/y-down coordinates as computed
 * here), holes counter-clockwise. Not thread-safe per object; distinct objects are independent. */
#ifndef HP_CONTOUR_H
#define HP_CONTOUR_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct {
    int32_t *xy;   /* n points, x then y; xy[2n-2..] == xy[0..1] */
    size_t n, cap;
    int64_t area2; /* twice the signed area: > 0 outer ring, < 0 hole */
} hp_contour_ring;

/* One region's outline: rings[0] is the outer ring, rings[1..nrings-1] its holes. */
typedef struct {
    hp_contour_ring *rings;
    int nrings;
} hp_contour_polygon;

typedef struct {
    uint8_t label;
    int x0, y0, x1, y1; /* bounding box of its cells, inclusive */
    int64_t cells;
} hp_contour_component;

/* The 4-connected components of a label grid. comp[y*w + x] is the component of cell (x, y), or
 * -1 for cells whose label is `skip`. Components are numbered in raster order of their first cell. */
typedef struct {
    int w, h;
    int32_t *comp;
    hp_contour_component *c;
    int32_t n;
} hp_contour_components;

/* Labels the components of `labels` (w x h, row-major); cells equal to `skip` belong to none.
 * Returns HP_ERR_INVALID for a bad size, HP_ERR_NOMEM. The caller frees *out with
 * hp_contour_components_destroy. */
hp_status hp_contour_components_create(const uint8_t *labels, int w, int h, uint8_t skip,
                                       hp_contour_components **out);
void hp_contour_components_destroy(hp_contour_components *cc);

/* Traces component `id` into *out (outer ring first, then holes). The caller frees it with
 * hp_contour_polygon_free. */
hp_status hp_contour_trace(const hp_contour_components *cc, int32_t id, hp_contour_polygon *out);

/* Frees the rings and zeroes the polygon; NULL and zeroed polygons are accepted. */
void hp_contour_polygon_free(hp_contour_polygon *p);

#endif
