/* `histoplan upscale SLIDE --model M.onnx --out OUT.tiff`: a super-resolved copy of a slide (or
 * a region of it) as a pyramidal TIFF that says it is super-resolved (pipeline/upscale.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "common/sha256.h"
#include "models/model.h"
#include "pipeline/upscale.h"

static void upscale_usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan upscale SLIDE --model M.onnx --out OUT.tiff [--roi X,Y,W,H] [options]\n"
            "\n"
            "  Runs a super-resolution model (a card with \"task\": \"super-resolution\") over SLIDE's\n"
            "  level 0, tile by tile with a halo of context so that no seam shows, and writes a\n"
            "  pyramidal TIFF (OpenSlide opens it as Aperio) at SLIDE's MPP divided by the model's\n"
            "  scale. The file says what it is: its aperio.SuperResolved property reads \"yes: not\n"
            "  the scanned image\", with the source slide's SHA-256 and region and the model's name\n"
            "  and SHA-256; `histoplan analyze` refuses it as a source unless --allow-derived.\n"
            "  Memory is bounded by the region's width (one band of tiles), never its area.\n"
            "\n"
            "  -m, --model M.onnx      the super-resolution model (card beside it)\n"
            "  -o, --out OUT.tiff      the output (written under a temporary name, then renamed)\n"
            "  --roi X,Y,W,H           a region of level 0 (default: the whole slide)\n"
            "  --mpp UM                SLIDE's microns per pixel, when its metadata lacks them\n"
            "  --backend cpu|cuda      default cpu\n"
            "  --precision P           fp32 (default); fp16 or bf16 with --backend cuda: tensors\n"
            "                          stored in half precision, math in float32 (recorded in the\n"
            "                          file's SRPrecision; docs/superres.md gives the error)\n"
            "  --tile N                input pixels per tile side, halo excluded (default 128)\n"
            "  --halo N                input pixels of context around each tile (default 8)\n"
            "  --quality Q             output JPEG quality 1..100 (default 90)\n"
            "\n"
            "exit status: 0 ok, 1 failed, 2 bad usage\n");
}

static int parse_roi(const char *s, int64_t v[4])
{
    long long a, b, c, d;
    char tail;
    if (sscanf(s, "%lld,%lld,%lld,%lld%c", &a, &b, &c, &d, &tail) != 4 || a < 0 || b < 0 || c < 1 || d < 1)
        return 0;
    v[0] = a, v[1] = b, v[2] = c, v[3] = d;
    return 1;
}

static void on_progress(void *user, long done, long total)
{
    hp_progress *p = user;
    if (p->total != total)
        hp_progress_start(p, "upscale", total);
    hp_progress_update(p, done);
}

int hp_cli_upscale(int argc, char **argv)
{
    enum { O_MODEL = 1, O_OUT, O_ROI, O_MPP, O_BACKEND, O_PRECISION, O_TILE, O_HALO, O_QUALITY };
    static const hp_cli_option opts[] = {
        {"model", 'm', 1, O_MODEL}, {"out", 'o', 1, O_OUT},   {"roi", 0, 1, O_ROI},   {"mpp", 0, 1, O_MPP},
        {"backend", 0, 1, O_BACKEND}, {"precision", 0, 1, O_PRECISION}, {"tile", 0, 1, O_TILE},
        {"halo", 0, 1, O_HALO},       {"quality", 0, 1, O_QUALITY},
        {0},
    };
    static const char *const BACKENDS[] = {"cpu", "cuda", NULL};
    hp_upscale_options uo = {0};
    hp_model_options mo = hp_model_default_options();
    mo.require_card = 1;
    int64_t roi[4] = {0};
    long long v;
    double d;
    int c, k;
    hp_cli_parser p;
    hp_cli_parser_init(&p, "upscale", "upscale", opts, argc, argv);
    const char *model_path = NULL;
    while ((c = hp_cli_next(&p)) != HP_CLI_END) {
        switch (c) {
        case O_MODEL: model_path = p.value; break;
        case O_OUT: uo.out_path = p.value; break;
        case O_ROI:
            if (!parse_roi(p.value, roi))
                return hp_cli_usage_error(&p, "--roi is X,Y,W,H in level-0 pixels (W and H at least 1), not '%s'",
                                          p.value);
            break;
        case O_MPP:
            if (hp_cli_double_value(&p, 0.01, 100, &d))
                return HP_EXIT_USAGE;
            uo.mpp = d;
            break;
        case O_BACKEND:
            if ((k = hp_cli_choice_value(&p, BACKENDS)) < 0)
                return HP_EXIT_USAGE;
            mo.backend = k ? HP_BACKEND_CUDA : HP_BACKEND_CPU;
            break;
        case O_PRECISION:
            if (hp_cli_precision_value(&p, &mo.precision))
                return HP_EXIT_USAGE;
            break;
        case O_TILE:
            if (hp_cli_int_value(&p, 16, 1024, &v))
                return HP_EXIT_USAGE;
            uo.tile = (int)v;
            break;
        case O_HALO:
            if (hp_cli_int_value(&p, 1, 128, &v))
                return HP_EXIT_USAGE;
            uo.halo = (int)v;
            break;
        case O_QUALITY:
            if (hp_cli_int_value(&p, 1, 100, &v))
                return HP_EXIT_USAGE;
            uo.quality = (int)v;
            break;
        case HP_CLI_HELP: upscale_usage(stdout); return HP_EXIT_OK;
        case HP_CLI_ARG:
            if (uo.slide_path)
                return hp_cli_usage_error(&p, "unexpected argument '%s' (one slide at a time)", p.value);
            uo.slide_path = p.value;
            break;
        default: return HP_EXIT_USAGE;
        }
    }
    if (!uo.slide_path)
        return hp_cli_usage_error(&p, "no slide file given");
    if (!model_path)
        return hp_cli_usage_error(&p, "--model M.onnx is required");
    if (!uo.out_path)
        return hp_cli_usage_error(&p, "--out OUT.tiff is required");
    if (mo.precision != HP_PREC_FP32 && mo.backend != HP_BACKEND_CUDA)
        return hp_cli_usage_error(&p, "--precision %s needs --backend cuda; the CPU backend computes in float32 only",
                                  hp_precision_name(mo.precision));
    int rc;
    if ((rc = hp_cli_refuse_dir("upscale", uo.slide_path, "a slide file")) ||
        (rc = hp_cli_refuse_dir_output("upscale", "--out", uo.out_path, "the output TIFF")))
        return rc;
    uo.roi_x = roi[0], uo.roi_y = roi[1], uo.roi_w = roi[2], uo.roi_h = roi[3];

    hp_error err = {0};
    char sha[65];
    hp_model *m = hp_model_open(model_path, &mo, &err);
    if (!m || hp_sha256_file(model_path, sha, &err) != HP_OK) {
        hp_cli_fail_path("upscale", model_path, err.msg);
        hp_model_destroy(m);
        return HP_EXIT_FAILED;
    }
    uo.model = m;
    uo.model_path = model_path;
    uo.model_sha256 = sha;
    hp_progress prog = {0};
    uo.progress = on_progress;
    uo.progress_user = &prog;
    hp_upscale_result res;
    hp_status st = hp_upscale(&uo, &res, &err);
    hp_progress_finish(&prog);
    hp_model_destroy(m);
    if (st != HP_OK) {
        /* The message names the model or the output when it is about them; else the slide. */
        hp_cli_fail_path("upscale", strstr(err.msg, model_path) ? model_path : strstr(err.msg, uo.out_path) ? uo.out_path : uo.slide_path,
                         err.msg);
        return HP_EXIT_FAILED;
    }
    printf("%s: %lld x %lld px at %.4g um/px (x%d, %ld tiles, %s), super-resolved: not the scanned image\n",
           uo.out_path, (long long)res.width, (long long)res.height, res.out_mpp, res.scale, res.tiles,
           hp_precision_name(mo.precision));
    return HP_EXIT_OK;
}
