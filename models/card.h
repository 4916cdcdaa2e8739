/* Model cards: `<model>.card.json` beside each model file, schema in schemas/model-card.schema.json.
 * The card says what a model is for and how to feed it: classes, input size, normalization,
 * microns per pixel, the model file's SHA-256, training data, metrics and intended use. */
#ifndef HP_CARD_H
#define HP_CARD_H

#include "common/status.h"

#define HP_CARD_MAX_CLASSES 64

typedef struct {
    char *name;
    char *version;
    int n_classes;
    char *classes[HP_CARD_MAX_CLASSES];
    int input_h, input_w;  /* 0 when not given */
    int has_norm;          /* mean and std given */
    float mean[3], std[3]; /* applied to RGB values scaled to 0..1 */
    double mpp;            /* microns per pixel the model was trained at; 0 when not given */
    char *sha256;          /* lower-case hex of the model file; NULL when not given */
    char *training_data;
    char *intended_use;
    char *metrics_json;    /* the "metrics" object, re-serialized; NULL when absent */
    char *license;         /* NULL when not given */
    int not_for_diagnosis; /* 1 when the card says so: reports must carry that statement */
} hp_card;

/* Parses a card file. On failure fills `err` naming the file and the field, and leaves `card`
 * zeroed (nothing to free). Required: name, classes; every other field is validated when present.
 * Unknown top-level keys are refused (a misspelt "normalization" must not silently drop the
 * normalization) except extension keys starting with "x-". Thread-safe (no shared state). */
hp_status hp_card_load(const char *path, hp_card *card, hp_error *err);
/* Frees what hp_card_load allocated; the struct itself is the caller's. Accepts a zeroed card. */
void hp_card_free(hp_card *card);


#endif
