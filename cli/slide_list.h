/* The slides `histoplan analyze` is given: files as they are, and with --recursive the slide
 * files under a folder (a folder without --recursive is refused by the caller, which names the
 * option: a folder handed to a reader would only fail later, less clearly).
 *
 * A slide file under a folder is a regular file (or a link to one) whose name ends in one of
 * .svs .tif .tiff .ndpi .vms .vmu .scn .mrxs .svslide .bif .png .jpg .jpeg (any case), listed in
 * name order, folders first-visited in name order. Left out: names starting with '.', the
 * ground truth histoplan synth writes beside a slide (*.truth.png), folders histoplan made (they
 * carry its .histoplan-output marker: analysis results hold PNG files that are not slides), the
 * JPEG pieces beside a Hamamatsu .vms/.vmu file, and links to folders (no loops). */
#ifndef HP_CLI_SLIDE_LIST_H
#define HP_CLI_SLIDE_LIST_H

typedef struct {
    char **paths; /* owned */
    int n, cap;
} hp_cli_slide_list;

/* Adds `path` (a file: as it is; a folder: its slide files, when `recursive`). Returns 0, or -1
 * when out of memory or when a folder cannot be read (a message printed, naming it). A folder
 * without `recursive` is added as it is (the caller refuses it). */
int hp_cli_slide_list_add(hp_cli_slide_list *l, const char *path, int recursive);

void hp_cli_slide_list_free(hp_cli_slide_list *l);

#endif
