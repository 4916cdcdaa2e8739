/* Model cards: `<model>.card.json` beside each model file, schema in schemas/model-card.schema.json.
 * The card says what a model is for and how to feed it: classes, input size, normalization,
 * microns per pixel, the model file's SHA-256, training data, metrics and intended use. */
#ifndef HP_CARD_H
#define HP_CARD_H

#include "common/status.h"

#define HP_CARD_MAX_CLASSES 64

/* The diagnostic category a model class stands for, from the card's "category_map". The report
 * works from these, never from class names, so a model may spell and order its classes as it
 * likes (BACH's "InSitu", a task of its own). UNMAPPED: the card has no map. */
typedef enum {
    HP_CLASS_UNMAPPED = 0,
    HP_CLASS_NORMAL,
    HP_CLASS_BENIGN,
    HP_CLASS_IN_SITU,
    HP_CLASS_INVASIVE,
    HP_CLASS_OTHER, /* a class with no diagnostic meaning of its own (stroma, background...) */
} hp_class_category;

/* What a model does ("task"): classify tiles (the default) or super-resolve them. */
typedef enum { HP_TASK_CLASSIFICATION = 0, HP_TASK_SUPER_RESOLUTION } hp_model_task;

typedef struct {
    char *name;
    char *version;
    hp_model_task task;
    int scale;             /* super-resolution: output pixels per input pixel, 2..4; else 0 */
    int n_classes;         /* 0 for a super-resolution model (it has no classes) */
    char *classes[HP_CARD_MAX_CLASSES];
    int input_h, input_w;  /* 0 when not given */
    int has_norm;          /* mean and std given */
    float mean[3], std[3]; /* applied to RGB values scaled to 0..1 */
    double mpp;            /* microns per pixel the model was trained at (a super-resolution
                              model's input; its output is mpp / scale); 0 when not given */
    char *sha256;          /* lower-case hex of the model file; NULL when not given */
    char *training_data;
    char *intended_use;
    char *metrics_json;    /* the "metrics" object, re-serialized; NULL when absent */
    char *license;         /* NULL when not given */
    int not_for_diagnosis; /* 1 when the card says so: reports must carry that statement */
    int generative;        /* super-resolution that may invent texture: never analysis input */
    /* category_map: every class mapped (has_category_map) or none (all HP_CLASS_UNMAPPED). At
     * most one class per category except "other". */
    int has_category_map;
    hp_class_category category[HP_CARD_MAX_CLASSES];
    /* Domain of validity ("domain"): NULL / 0 when the card states none. */
    char *domain_tissue, *domain_stain;
    double mpp_min, mpp_max;   /* slide scan MPP the model is valid for */
    /* Out-of-domain detector ("ood_detector"): its parameter file beside the card (hashed
     * against the card at load), NULL when the card ships none; models/ood.h reads it. */
    char *ood_path;
    double ood_slide_fraction; /* share of tiles beyond the threshold that makes a slide OOD */
    /* Calibration ("calibration"): temperature scaling fitted on held-out data, with its
     * reliability figure (expected calibration error before and after). */
    int has_calibration;
    double temperature, ece_before, ece_after;
} hp_card;

/* Parses a card file. On failure fills `err` naming the file and the field, and leaves `card`
 * zeroed (nothing to free). Required: name, classes; every other field is validated when present.
 * Unknown top-level keys are refused (a misspelt "normalization" must not silently drop the
 * normalization) except extension keys starting with "x-". Thread-safe (no shared state). */
hp_status hp_card_load(const char *path, hp_card *card, hp_error *err);
/* Frees what hp_card_load allocated; the struct itself is the caller's. Accepts a zeroed card. */
void hp_card_free(hp_card *card);

/* A deep copy of `src` into `dst` (overwritten; free it with hp_card_free, also after a failure).
 * Returns HP_ERR_NOMEM. */
hp_status hp_card_copy(hp_card *dst, const hp_card *src);

/* The category's name as cards and findings spell it ("normal", "benign", "in-situ", "invasive",
 * "other"); NULL for HP_CLASS_UNMAPPED. */
const char *hp_class_category_name(hp_class_category c);
/* The category named `name`, or HP_CLASS_UNMAPPED when it is none of them. */
hp_class_category hp_class_category_find(const char *name);
/* The class the card maps to `c` (not OTHER), or -1 when none (or the card has no map). */
int hp_card_class_of(const hp_card *card, hp_class_category c);


#endif
