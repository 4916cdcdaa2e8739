/* The images of an evaluation and their labels, found from what the user points at:
 *
 * - a BACH Part A folder as distributed (ICIAR 2018): DATA/Photos/{Benign,InSitu,Invasive,Normal}
 *   (or DATA itself holding those four folders and microscopy_ground_truth.csv), the images being
 *   the .tif files of each class folder. The ground truth CSV (no header, "filename,label") is
 *   checked against the folders: a file it names that is missing, a file it does not name, or a
 *   label that disagrees with the folder is refused. Images are taken in the order of
 *   torchvision's ImageFolder, which the eva benchmark's split indexes: class folders sorted by
 *   name, then file names sorted (byte order). BACH's stated pixel size, 0.42 um/px, is the
 *   default MPP.
 * - the unlabelled BACH test folder: test<N>.tif files (in DATA or DATA/Photos), taken in case
 *   order (test0, test1, ...); 0.42 um/px by default; predictions only.
 * - class folders: DATA/<class>/<image> (PNG, JPEG, TIFF by extension; hidden files skipped);
 *   folders and files sorted by name.
 * - a CSV file of "path,label" rows (RFC 4180 quoting; an optional first row "path,label"); paths
 *   relative to the CSV's folder unless absolute; rows in file order; every row needs a label and
 *   a path may appear once.
 *
 * Names (item.name) are paths relative to the data root; they are what predictions.csv and
 * messages print. Thread safety: a data set is immutable after open. */
#ifndef HP_EVAL_DATASET_H
#define HP_EVAL_DATASET_H

#include "common/status.h"

/* BACH's microscopy images: "pixel scale of 0.42 um x 0.42 um" (Aresta et al. 2019). */
#define HP_EVAL_BACH_MPP 0.42

typedef enum {
    HP_EVAL_DATA_BACH = 0,
    HP_EVAL_DATA_BACH_TEST,
    HP_EVAL_DATA_FOLDERS,
    HP_EVAL_DATA_CSV,
} hp_eval_data_kind;

typedef struct {
    char *path;      /* to open */
    char *name;      /* relative to the data root, for output */
    char *label;     /* the data set's own label (folder name or CSV field); NULL: unlabelled */
    int case_number; /* BACH test: N of testN.tif; -1 otherwise */
} hp_eval_item;

typedef struct {
    hp_eval_data_kind kind;
    char *root;         /* names are relative to it */
    double default_mpp; /* 0.42 for BACH layouts, 0 otherwise */
    int n;
    hp_eval_item *items;
    int ignored_files;  /* files in a BACH class folder that are not .tif (eva ignores them too) */
} hp_eval_dataset;

/* A short name for a kind: "bach", "bach-test", "class-folders", "csv". */
const char *hp_eval_data_kind_name(hp_eval_data_kind k);

/* Finds the images under `path`. Errors name the file or folder and what is wrong with it.
 * The caller frees *out with hp_eval_dataset_destroy. */
hp_status hp_eval_dataset_open(const char *path, hp_eval_dataset **out, hp_error *err);
void hp_eval_dataset_destroy(hp_eval_dataset *d);

/* Whether every item carries a label. */
int hp_eval_dataset_labelled(const hp_eval_dataset *d);

#endif
