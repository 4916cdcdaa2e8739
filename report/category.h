/* The diagnostic categories a report can suggest (and a pathologist can set when signing), with
 * the code each carries: SNOMED CT morphology where one exists, histoplan's local code system
 * for the rest. One table, so the builder and the signer never disagree on a code. */
#ifndef HP_REPORT_CATEGORY_H
#define HP_REPORT_CATEGORY_H

typedef enum {
    HP_CAT_INVASIVE = 0,
    HP_CAT_REVIEW_INVASION, /* invasive evidence too small for a focus: never a confident in situ */
    HP_CAT_IN_SITU,
    HP_CAT_BENIGN,
    HP_CAT_NORMAL,
    HP_CAT_INDETERMINATE,
    HP_CAT_COUNT
} hp_category;

typedef struct {
    const char *name;         /* report.json's diagnosis.category */
    const char *display;      /* human-readable, without "(suggested)" */
    const char *system;       /* code system URI */
    const char *code;
    const char *code_display;
} hp_category_info;

/* The entry of `c` (0 <= c < HP_CAT_COUNT). */
const hp_category_info *hp_category_get(hp_category c);

/* The category named `name`, or -1. */
int hp_category_find(const char *name);

#endif
