/* `histoplan deid SLIDE --out COPY`: a de-identified copy of a whole-slide image. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "io/deid.h"

static void deid_usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan deid SLIDE --out COPY [--overwrite] [--json]\n"
            "\n"
            "  Writes a de-identified copy of SLIDE: the label and macro images are removed\n"
            "  (their bytes overwritten with zeros); every TIFF tag that is not on an allow-list\n"
            "  of pixel-layout tags (geometry, compression, tiling, colour, resolution) is\n"
            "  removed: ImageDescription, Software, DateTime, Artist, Make, Model, XMP, IPTC,\n"
            "  EXIF, GPS, private tags, ...; the Aperio description and Philips XML keep only\n"
            "  their scan-geometry fields (magnification, MPP) and the rest becomes 'X'.\n"
            "  Pixel data, pyramid levels, MPP and magnification are kept, and the copy is\n"
            "  checked to open in OpenSlide as SLIDE does. SLIDE is only read.\n"
            "\n"
            "  SLIDE          Aperio SVS, Hamamatsu NDPI (< 4 GiB), Philips TIFF or generic TIFF\n"
            "  --out COPY     where to write the copy (must not be SLIDE)\n"
            "  --overwrite    replace COPY if it exists\n"
            "  --json         print one JSON object instead of one line per change\n"
            "\n"
            "exit status: 0 ok, 1 failed, 2 bad usage\n");
}

static const char *action_key(hp_deid_action a)
{
    switch (a) {
    case HP_DEID_REMOVED_IMAGE: return "removed_images";
    case HP_DEID_BLANKED_FIELD: return "blanked_description_fields";
    case HP_DEID_BLANKED_TAG: return "blanked_tiff_tags";
    case HP_DEID_BLANKED_XML: return "blanked_xml_attributes";
    case HP_DEID_REMOVED_TAG: return "removed_tiff_tags";
    }
    return "other";
}

static int print_json(const char *src, const char *dst, const hp_deid_report *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return 0;
    cJSON_AddStringToObject(o, "slide", src);
    cJSON_AddStringToObject(o, "out", dst);
    cJSON_AddStringToObject(o, "format", r->format);
    cJSON_AddBoolToObject(o, "bigtiff", r->bigtiff);
    cJSON_AddNumberToObject(o, "directories_in", r->directories_in);
    cJSON_AddNumberToObject(o, "directories_out", r->directories_out);
    static const hp_deid_action acts[] = {HP_DEID_REMOVED_IMAGE, HP_DEID_REMOVED_TAG,
                                          HP_DEID_BLANKED_FIELD, HP_DEID_BLANKED_TAG,
                                          HP_DEID_BLANKED_XML};
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
        cJSON *arr = cJSON_AddArrayToObject(o, action_key(acts[k]));
        for (int i = 0; arr && i < r->n_items; i++)
            if (r->items[i].action == acts[k])
                cJSON_AddItemToArray(arr, cJSON_CreateString(r->items[i].name));
    }
    cJSON *items = cJSON_AddArrayToObject(o, "changes");
    for (int i = 0; items && i < r->n_items; i++) {
        char line[160];
        hp_deid_item_text(&r->items[i], line, sizeof line);
        cJSON_AddItemToArray(items, cJSON_CreateString(line));
    }
    cJSON_AddNumberToObject(o, "unlisted_changes", r->items_dropped);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s)
        return 0;
    puts(s);
    free(s);
    return 1;
}

int hp_cli_deid(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"overwrite", no_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *out = NULL;
    int overwrite = 0, json = 0, c;
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'f': overwrite = 1; break;
        case 'j': json = 1; break;
        case 'h': deid_usage(stdout); return HP_EXIT_OK;
        default: deid_usage(stderr); return HP_EXIT_USAGE;
        }
    }
    if (optind >= argc || !out) {
        fprintf(stderr, "histoplan deid: %s\n",
                optind >= argc ? "no slide file given" : "--out COPY is required");
        deid_usage(stderr);
        return HP_EXIT_USAGE;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "histoplan deid: unexpected argument '%s'\n", argv[optind + 1]);
        return HP_EXIT_USAGE;
    }
    const char *src = argv[optind];
    hp_deid_report rep;
    hp_error err = {0};
    if (hp_deid_slide(src, out, overwrite, &rep, &err) != HP_OK) {
        fprintf(stderr, "histoplan deid: %s\n", err.msg);
        return HP_EXIT_FAILED;
    }
    if (json) {
        if (!print_json(src, out, &rep)) {
            fprintf(stderr, "histoplan deid: out of memory\n");
            return HP_EXIT_FAILED;
        }
        return HP_EXIT_OK;
    }
    printf("%s: %s slide, %d of %d TIFF directories kept\n", out, rep.format, rep.directories_out,
           rep.directories_in);
    for (int i = 0; i < rep.n_items; i++) {
        char line[160];
        hp_deid_item_text(&rep.items[i], line, sizeof line);
        printf("%s\n", line);
    }
    if (rep.items_dropped)
        printf("(%d more changes not listed)\n", rep.items_dropped);
    if (rep.n_items == 0)
        printf("nothing identifying found; the copy is byte-identical\n");
    return HP_EXIT_OK;
}
