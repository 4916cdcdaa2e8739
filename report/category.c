#include "report/category.h"

#include <string.h>

#define LOCAL_FINDING "https://histoplan.invalid/fhir/CodeSystem/finding"

static const hp_category_info CATEGORIES[HP_CAT_COUNT] = {
    [HP_CAT_INVASIVE] = {"invasive-carcinoma", "Invasive carcinoma", "http://snomed.info/sct", "82711006",
                         "Infiltrating duct carcinoma (morphologic abnormality)"},
    [HP_CAT_REVIEW_INVASION] = {"review-for-invasion", "Review for invasion", LOCAL_FINDING, "review-for-invasion",
                                 "Invasion not excluded: invasive evidence below focus size (histoplan)"},
    [HP_CAT_IN_SITU] = {"in-situ-carcinoma", "Carcinoma in situ", "http://snomed.info/sct", "86616005",
                        "Intraductal carcinoma, noninfiltrating (morphologic abnormality)"},
    [HP_CAT_BENIGN] = {"benign", "Benign lesion", LOCAL_FINDING, "benign", "Benign breast lesion (histoplan class)"},
    [HP_CAT_NORMAL] = {"normal", "Normal breast tissue", LOCAL_FINDING, "normal",
                       "Normal breast tissue (histoplan class)"},
    [HP_CAT_INDETERMINATE] = {"indeterminate", "No category (indeterminate)", LOCAL_FINDING, "indeterminate",
                              "Indeterminate: not assessable by histoplan"},
};

const hp_category_info *hp_category_get(hp_category c)
{
    return &CATEGORIES[c];
}

int hp_category_find(const char *name)
{
    for (int i = 0; i < HP_CAT_COUNT; i++)
        if (name && !strcmp(name, CATEGORIES[i].name))
            return i;
    return -1;
}
