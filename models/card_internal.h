/* Parts of hp_card_load that live in their own files. */
#ifndef HP_CARD_INTERNAL_H
#define HP_CARD_INTERNAL_H

#include <cjson/cJSON.h>

#include "models/card.h"

/* "domain", "ood_detector" (its file hashed against the card) and "calibration", each when
 * present (models/card_domain.c). */
hp_status hp_card_parse_domain(const char *path, const cJSON *root, hp_card *card, hp_error *err);

#endif
