/* Tissue detection: a low-resolution tissue mask of a slide, with quality-control flags.
 *
 * The mask is computed on an area-averaged thumbnail (hp_slide_read_thumbnail, read in bands)
 * at about HP_TISSUE_MASK_MPP um/px, not on a pyramid level: levels differ from scanner to
 * scanner (a 3-level SVS may have nothing between 2 and 32 um/px), while the thumbnail gives the
 * same mask resolution, so the same morphology in micrometres, on every slide (the thumbnail is
 * made from the coarsest level at least that large, so it costs little). Steps: HSV
 * saturation; Otsu's threshold on it, clamped between a floor (so glass alone never gets a
 * threshold inside its own noise) and a ceiling (so a slide that is nearly all tissue is not
 * split between pale and dark tissue); a minimum optical density (near-white pixels are glass
 * whatever their hue); closing then opening; removal of small components; filling of small
 * holes; and last, removal of pen ink (which the earlier steps would otherwise bridge or fill).
 * The image processing in these steps is OpenCV's (io/cv_image.h).
 *
 * QC flags (pipeline/tissue_qc.c) come from the same thumbnail, plus a few ~1 um/px regions
 * sampled on tissue for focus. Their thresholds are in hp_tissue_options, documented there.
 *
 * Thread safety: no global state; hp_tissue_detect may run on several slides at once, and on
 * one slide handle concurrently with reader threads (it only reads regions). Deterministic: the
 * same slide and options give the same mask. Memory is bounded by the mask's size (about 13
 * bytes per mask pixel, so at most ~120 MB at the 3072-pixel cap and ~10 MB for a 1024 x 768
 * mask) plus one focus region (at most 2048 x 2048 RGB), whatever the slide's size. */
#ifndef HP_TISSUE_H
#define HP_TISSUE_H

#include <stdint.h>

#include "common/status.h"
#include "io/slide.h"

/* Default mask resolution, micrometres per mask pixel: a 224-pixel tile at 0.5 um/px (112 um)
 * spans 14 mask pixels, fine enough for tile selection; a 20 x 20 mm scan gives 2500 pixels. */
#define HP_TISSUE_MASK_MPP 8.0

/* QC flags, bits of hp_tissue_mask.qc_flags. */
enum {
    HP_QC_LOW_TISSUE = 1u << 0, /* almost no tissue (area or fraction below the thresholds) */
    HP_QC_PEN_MARKS = 1u << 1,  /* ink (blue, green, black) over a noticeable share of tissue */
    HP_QC_BLUR = 1u << 2,       /* the sampled tissue regions look out of focus */
    HP_QC_NOT_HE = 1u << 3,     /* stain not H&E-like: brown DAB dominates (immunohistochemistry) */
    HP_QC_NO_MPP = 1u << 4,     /* no microns per pixel: areas are NaN (see hp_tissue_detect) */
    HP_QC_USER_MASK = 1u << 5,  /* the mask came from options.mask_path (informational) */
    HP_QC_OUT_OF_DOMAIN = 1u << 6, /* outside the model's domain of validity (set by the analyze
                                      run's domain stage, pipeline/analyze_ood.h, not here) */
};
#define HP_QC_FLAG_COUNT 7

/* A short machine name ("low-tissue", "pen-marks", "blur", "not-he", "no-mpp", "user-mask") and a
 * sentence for a report, for one flag bit; NULL for anything else. Static strings. */
const char *hp_qc_flag_name(unsigned flag);
const char *hp_qc_flag_description(unsigned flag);

typedef struct {
    /* Mask resolution: target um per mask pixel; the long side is then kept within
     * [min_side, max_side] pixels (and never above level 0). Defaults 8, 1024, 3072. */
    double mask_mpp;
    int min_side, max_side;
    /* Microns per level-0 pixel; > 0 overrides the slide's metadata (--mpp). */
    double mpp;

    /* Saturation threshold: > 0 uses it as given; otherwise Otsu's, clamped to
     * [sat_floor, sat_ceiling] (defaults 0.07 and 0.20: glass with JPEG noise stays below 0.04,
     * pale H&E stroma is above 0.12). */
    double sat_threshold, sat_floor, sat_ceiling;
    /* Minimum mean optical density (log10) of a tissue pixel (default 0.03, about 93% light). */
    double od_min;
    /* Morphology, in micrometres (defaults 16 and 8): closing joins loose stroma, opening
     * drops debris thinner than a few cells. */
    double close_um, open_um;
    /* Components smaller than this are dropped (default 0.01 mm2: less than a 224-pixel tile at
     * 0.5 um/px, so nothing droppable could hold a tile); holes smaller than max_hole_mm2 are
     * filled (default 0.05 mm2: gland lumens and tears, not fat lobules). */
    double min_component_mm2, max_hole_mm2;

    /* A user mask (PNG, JPEG or TIFF; pixels with luminance >= 128 are tissue) covering the whole
     * slide at any downsample, e.g. exported from QuPath. It replaces the detection (QC still
     * runs); its aspect ratio must match the slide's. NULL: detect. */
    const char *mask_path;
    /* A region of interest in level-0 pixels; the mask is cleared outside it. roi_w <= 0: none. */
    int64_t roi_x, roi_y, roi_w, roi_h;

    /* QC. run_qc 0 skips the focus reads (the other flags cost nothing and are always set). */
    int run_qc;
    double low_tissue_fraction; /* default 0.01: under 1% of the slide (or ROI) */
    double low_tissue_mm2;      /* default 0.1 mm2: fewer than ~8 tiles of 112 um */
    double pen_fraction;        /* default 0.01: ink on 1% of the tissue */
    double blur_threshold;      /* default 0.25: see hp_tissue_mask.blur_score */
    double brown_fraction;      /* default 0.20: DAB-brown hues on 20% of the tissue */
    int blur_regions;           /* regions sampled for focus (default 4) */
} hp_tissue_options;

/* Fills the defaults above. */
void hp_tissue_options_init(hp_tissue_options *o);

typedef struct {
    uint8_t *mask;                    /* w x h, row-major, 0 or 255 (tissue); owned */
    int w, h;
    double downsample_x, downsample_y; /* level-0 pixels per mask pixel */
    double mpp_x, mpp_y;              /* level-0 um/px used, NaN when unknown */
    double tissue_mm2;                /* NaN when the MPP is unknown */
    double tissue_fraction;           /* tissue pixels / pixels of the slide (or of the ROI) */
    double sat_threshold;             /* the saturation threshold used (0 for a user mask) */
    unsigned qc_flags;                /* HP_QC_* bits */
    /* QC measurements behind the flags. */
    double pen_fraction;   /* ink pixels / (tissue + ink) pixels of the thumbnail */
    double brown_fraction; /* DAB-brown hue pixels / tissue pixels */
    /* Focus: median over the sampled regions of var(Laplacian) / var(gray) on tissue at
     * ~1 um/px; sharp H&E scores about 0.5-2, a few micrometres of defocus below 0.2. NaN when
     * nothing was sampled (no tissue, or run_qc 0). */
    double blur_score;
    int blur_regions_read;
} hp_tissue_mask;

/* Detects the tissue of `s` (opt NULL: defaults) into *out, which the caller frees with
 * hp_tissue_mask_free (also after a failure). A slide without MPP (and no opt->mpp) is not an
 * error: the micrometre sizes above are converted as if level 0 were 0.5 um/px (20x, the
 * commonest scan), tissue_mm2 and mpp_x/y are NaN and HP_QC_NO_MPP is set; hp_slide_mpp's
 * message then stays recorded on the slide handle. On failure `err` names the cause (an
 * unreadable slide, a bad mask_path, a bad ROI). */
hp_status hp_tissue_detect(hp_slide *s, const hp_tissue_options *opt, hp_tissue_mask *out,
                           hp_error *err);

/* Frees the mask's pixels and zeroes it. Accepts NULL. */
void hp_tissue_mask_free(hp_tissue_mask *m);

#endif
