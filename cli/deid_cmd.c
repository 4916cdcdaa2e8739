/* `histoplan deid SLIDE --out COPY`: a de-identified copy of a whole-slide image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/options.h"
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
            "  -o, --out COPY where to write the copy (must not be SLIDE)\n"
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
    enum { O_OUT = 1, O_OVERWRITE, O_JSON };
    static const hp_cli_option opts[] = {
        {"out", 'o', 1, O_OUT}, {"overwrite", 0, 0, O_OVERWRITE}, {"json", 0, 0, O_JSON}, {0},
    };
    const char *out = NULL, *src = NULL;
    int overwrite = 0, json = 0, c;
    hp_cli_parser p;
    hp_cli_parser_init(&p, "deid", "deid", opts, argc, argv);
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        switch (c) {
        case O_OUT: out = p.value; break;
        case O_OVERWRITE: overwrite = 1; break;
        case O_JSON: json = 1; break;
        case HP_CLI_HELP: deid_usage(stdout); return HP_EXIT_OK;
        case HP_CLI_ARG:
            if (src)
                return hp_cli_usage_error(&p, "unexpected argument '%s' (one slide at a time)", p.value);
            src = p.value;
            break;
        default: return HP_EXIT_USAGE;
        }
    }
    if (!src)
        return hp_cli_usage_error(&p, "no slide file given");
    if (!out)
        return hp_cli_usage_error(&p, "--out COPY is required");
    int rc;
    if ((rc = hp_cli_refuse_dir_output("deid", "--out", out, "the copy")))
        return rc;
    hp_deid_report rep;
    hp_error err = {0};
    if (hp_deid_slide(src, out, overwrite, &rep, &err) != HP_OK) {
        /* The message names the slide or the copy it is about; the slide when neither. */
        hp_cli_fail_path("deid", strstr(err.msg, out) ? out : src, err.msg);
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
