/* The parts of report.json that restate the findings: the model, each slide, and the case's
 * slides taken together (report/report_sections.c). Numbers are rounded to their reporting
 * precision here; report/report_content.c builds the rest (statements, category, confidence,
 * care plan) on top. */
#ifndef HP_REPORT_SECTIONS_H
#define HP_REPORT_SECTIONS_H

#include <cjson/cJSON.h>

#include "common/status.h"
#include "report/findings_input.h"

/* The report's "model" object, from one findings file. */
cJSON *hp_report_model_section(const cJSON *findings);

/* One entry of "slides"; writes the slide's overlay and region thumbnails to report_dir/images,
 * and, when `slide` (the slide file itself, may be NULL) is given, thumbnails of the tissue. */
struct hp_slide;
hp_status hp_report_slide_section(const hp_findings_input *in, struct hp_slide *slide, const char *report_dir,
                                  cJSON **out, hp_error *err);

/* "case_findings": sums over the slides, percentages of all analysed tiles, the largest invasive
 * focus and in situ extent of the case, every QC flag, tile-weighted uncertainty. */
cJSON *hp_report_case_findings(const cJSON *slides, const hp_findings_input *fi);

#endif
