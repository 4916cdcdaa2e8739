/* The care-plan rule table (report/rules/care-plan-rules.json; schemas/care-plan-rules.schema.json):
 * thresholds of the suggested category and of the confidence level, and the rules that turn
 * findings and case context into draft next steps. Rules are data: a lab changes them without
 * touching code, and every suggestion names the rule, its guideline and the facts it used. */
#ifndef HP_CARE_RULES_H
#define HP_CARE_RULES_H

#include <cjson/cJSON.h>

#include "common/status.h"

typedef struct {
    cJSON *root;     /* the parsed table */
    char sha256[65]; /* of the file */
    const char *name, *version, *notice; /* point into root (notice may be NULL) */
    /* category thresholds */
    double min_tiles_analysed, invasive_min_focus_mm, in_situ_min_extent_mm, benign_min_percent;
    double invasion_review_min_area_mm2; /* invasive evidence that makes it at least a review */
    /* confidence limits */
    double low_min_tiles_analysed, low_percent_uncertain_above, low_mean_entropy_above;
    double moderate_percent_uncertain_above, moderate_mean_entropy_above, moderate_support_below;
} hp_care_rules;

/* The table shipped with histoplan: the source tree's report/rules/ while developing, else the
 * installed share/histoplan/rules/. */
const char *hp_care_rules_default_path(void);

/* Reads and checks a rule table; a malformed one is refused naming the rule and field. */
hp_status hp_care_rules_load(const char *path, hp_care_rules *rules, hp_error *err);
void hp_care_rules_free(hp_care_rules *rules);

/* Evaluates every rule against `facts` (an object: category, confidence, qc_failed,
 * invasive_focus_mm, invasive_evidence_mm2, in_situ_extent_mm, discordant from the findings; age_years, sex, procedure,
 * birads, history, prior_findings, preferences from the case file; null when unknown).
 * `evidence` maps a fact name to an array of statement ids that show it. Fills `care_plan`
 * (an empty object) with the report's care_plan members. */
hp_status hp_care_rules_apply(const hp_care_rules *rules, const cJSON *facts, const cJSON *evidence,
                              cJSON *care_plan, hp_error *err);

#endif
