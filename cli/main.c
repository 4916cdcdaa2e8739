/* The histoplan command: a thin shell over the library. Exit status: 0 ok, 1 failed, 2 usage
 * (and per command: 3, 4, 130, 143; see each command's --help). Options are parsed by
 * cli/options.h for every command. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan <command> [options]\n"
            "\n"
            "commands:\n"
            "  model info M.onnx           inputs, outputs, operators, parameters, FLOPs, planned memory\n"
            "  model run M.onnx --input X  run a model on an image or a .npy tensor\n"
            "  model bench M.onnx          measure throughput on random input\n"
            "  slide info SLIDE            levels, dimensions, microns per pixel, associated images\n"
            "  synth --out S.tiff          generate a synthetic H&E slide with ground truth\n"
            "  analyze SLIDE...            heatmaps, regions and findings for each slide\n"
            "  batch merge OUT             one summary of a cohort's manifest runs (shards) into OUT\n"
            "  report build|sign|verify    structured report and care-plan draft; sign-off; checking\n"
            "  deid SLIDE --out COPY       de-identified copy of a slide (no label, macro or identifying fields)\n"
            "  upscale SLIDE -m M -o OUT   super-resolved copy of a slide, marked as such\n"
            "  serve --data DIR            HTTP API for lab systems: slide batches, jobs, results, reports\n"
            "  worker --data DIR --db URI  analyze jobs of a shared PostgreSQL store on another machine\n"
            "  eval --model M.onnx DATA    measure a classifier on BACH, class folders or a CSV of labelled images\n"
            "  eval-wsi --truth X --findings F   score tile predictions against BACH Part B annotations\n"
            "\n"
            "  --version                   print the version\n"
            "  -h, --help                  this text; `histoplan COMMAND --help` for each command\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return HP_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("histoplan %s\n", HP_VERSION);
        return HP_EXIT_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return HP_EXIT_OK;
    }
    if (!strcmp(argv[1], "model"))
        return hp_cli_model(argc - 1, argv + 1);
    if (!strcmp(argv[1], "slide"))
        return hp_cli_slide(argc - 1, argv + 1);
    if (!strcmp(argv[1], "analyze"))
        return hp_cli_analyze(argc - 1, argv + 1);
    if (!strcmp(argv[1], "batch"))
        return hp_cli_batch_cmd(argc - 1, argv + 1);
    if (!strcmp(argv[1], "synth"))
        return hp_cli_synth(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report"))
        return hp_cli_report(argc - 1, argv + 1);
    if (!strcmp(argv[1], "deid"))
        return hp_cli_deid(argc - 1, argv + 1);
    if (!strcmp(argv[1], "upscale"))
        return hp_cli_upscale(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve"))
        return hp_cli_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "worker"))
        return hp_cli_worker(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval"))
        return hp_cli_eval(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval-wsi"))
        return hp_cli_eval_wsi(argc - 1, argv + 1);
    fprintf(stderr, "histoplan: unknown command '%s'\nsee 'histoplan --help'\n", argv[1]);
    return HP_EXIT_USAGE;
}
