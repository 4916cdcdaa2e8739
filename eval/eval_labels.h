/* Class labels of an evaluation: the one table of accepted spellings, and the map from a data
 * set's labels to a model card's classes.
 *
 * A peer once released a model whose class order was swapped against its labels; every figure
 * measured with it was wrong and nothing said so. So labels are never matched by position or
 * assumed: a data label reaches a card class only through the spelling table below (or an exact,
 * case-insensitive name match for classes the table does not know), or through a map the user
 * gives explicitly. A label that matches no card class, two card classes that mean the same
 * thing, or a numeric label ("0", "3": an index in someone's order) is refused with the label
 * named.
 *
 * The table (case, spaces, '_' and '-' ignored):
 *   normal    normal, normal tissue, healthy
 *   benign    benign, benign lesion, benign tissue
 *   in_situ   in situ, in situ carcinoma, carcinoma in situ, cis, dcis
 *   invasive  invasive, invasive carcinoma, carcinoma invasive, idc
 * The four canonical classes are BACH's, in its ordinal order (Part B's labels 0..3).
 *
 * Thread safety: everything here is a pure function of its arguments. */
#ifndef HP_EVAL_LABELS_H
#define HP_EVAL_LABELS_H

#include "common/status.h"
#include "models/card.h"

typedef enum {
    HP_EVAL_CLASS_NONE = -1, /* not one of the four */
    HP_EVAL_CLASS_NORMAL = 0,
    HP_EVAL_CLASS_BENIGN = 1,
    HP_EVAL_CLASS_IN_SITU = 2,
    HP_EVAL_CLASS_INVASIVE = 3,
} hp_eval_class;

#define HP_EVAL_N_CANONICAL 4

/* The canonical name ("normal", "benign", "in_situ", "invasive"); NULL for NONE. */
const char *hp_eval_class_name(hp_eval_class c);

/* BACH's own spelling ("Normal", "Benign", "InSitu", "Invasive"): its folder names and the
 * labels of microscopy_ground_truth.csv. NULL for NONE. */
const char *hp_eval_class_bach_name(hp_eval_class c);

/* The canonical class a spelling stands for, or HP_EVAL_CLASS_NONE. */
hp_eval_class hp_eval_class_parse(const char *label);

/* Whether `label` is a number (after trimming): such labels are positions in an unknown order. */
int hp_eval_label_is_numeric(const char *label);

#define HP_EVAL_MAX_LABELS 256

/* An explicit map given by the user (--label-map "DATA=CARD,..."): data label (exact) to card
 * class name (exact). */
typedef struct {
    int n;
    char *from[HP_EVAL_MAX_LABELS];
    char *to[HP_EVAL_MAX_LABELS];
} hp_eval_label_map;

/* Parses "A=b,C=d" (labels may not contain ',' or '='; spaces around them are trimmed). Every
 * target must be a class of `card`, and no data label may appear twice. The caller frees with
 * hp_eval_label_map_free (also after a failure). */
hp_status hp_eval_label_map_parse(const char *spec, const hp_card *card, hp_eval_label_map *m,
                                  hp_error *err);
void hp_eval_label_map_free(hp_eval_label_map *m);

/* Checks the card's classes: two classes that mean the same canonical class (or the same name
 * up to case and separators) are refused. With `expect` (a comma-separated class list, the
 * order the user believes the model's outputs are in; NULL: no check), a card whose classes
 * are not, one for one and in that order, the same classes is refused naming both orders. */
hp_status hp_eval_card_check(const hp_card *card, const char *expect, hp_error *err);

/* The card class index that data label `label` means: through `map` first (may be NULL), then
 * the spelling table, then an exact name match ignoring case and separators. -1 when none;
 * then `why` (if not NULL) receives a reason: "numeric" or "unmatched". */
int hp_eval_label_to_card(const char *label, const hp_card *card, const hp_eval_label_map *map,
                          const char **why);

/* The canonical class of card class `k` (HP_EVAL_CLASS_NONE when it is not one of the four). */
hp_eval_class hp_eval_card_class_canonical(const hp_card *card, int k);

#endif
