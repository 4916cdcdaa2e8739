"""The command line's option handling, the same for every command (analyze, model info/run/bench,
slide info/region/thumbnail, synth, report build/sign/verify/signers, deid, upscale):

- an unknown option is named ("unknown option --frobnicate"), an abbreviation that fits several
  options is called ambiguous, a missing value is named ("--out needs a value"), a value given
  to a flag is refused; each is exit 2 with exactly two lines: the error and the hint
  "see 'histoplan CMD --help'" (not the whole usage text, which would push the error off screen);
- -o/--out (and the other short forms) work wherever --out does: `analyze -o DIR SLIDE` writes
  into DIR, not ./out;
- a folder where a file is expected is refused with a message saying it is a directory; analyze
  names --recursive for it, and with --recursive analyses the slide files under the folder
  (not the ground-truth images beside them, nor the results of an earlier run inside it);
- a message about a missing file names its path once ("X: X: ..." repeated it).
"""
import os
import shutil
import subprocess
import tempfile

import analyze_testlib as t


def run_in(cwd, *args):
    p = subprocess.run([t.HP_BIN] + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=600)
    return p.returncode, p.stdout, p.stderr


def usage_error(name, help_cmd, args, want, cwd):
    rc, so, se = run_in(cwd, *args)
    lines = [ln for ln in se.splitlines() if ln.strip()]
    ok = (rc == 2 and len(lines) == 2 and want in lines[0] and lines[0].startswith(f"histoplan {name}: ")
          and lines[1] == f"see 'histoplan {help_cmd} --help'" and "usage:" not in se)
    t.check(ok, f"{name}: {' '.join(str(a) for a in args[len(name.split()):])[:60]!r} -> exit 2, '{want}' and the hint "
                f"({rc}, {lines[:3]})")


def main():
    tmp = tempfile.mkdtemp(prefix="hp_cli_options_")
    try:
        slide = t.synth(os.path.join(tmp, "slide.tiff"), 1024, 2601)
        folder = os.path.join(tmp, "a_folder")
        os.makedirs(folder)
        npy = os.path.join(tmp, "x.npy")
        import numpy as np
        np.save(npy, np.zeros((1, 3, 224, 224), np.float32))
        model = t.MODEL

        # Every command: an unknown option, a missing value, a flag given a value.
        cmds = [
            ("analyze", "analyze", ["analyze", slide], "--out"),
            ("model info", "model", ["model", "info", model], "--batch"),
            ("model run", "model", ["model", "run", model, "--input", npy], "--output"),
            ("model bench", "model", ["model", "bench", model], "--iterations"),
            ("slide info", "slide", ["slide", "info", slide], "--mpp"),
            ("slide region", "slide", ["slide", "region", slide, "--level", "0", "--x", "0", "--y", "0", "--w", "8",
                                       "--h", "8", "--out", os.path.join(tmp, "r.png")], "--out"),
            ("slide thumbnail", "slide", ["slide", "thumbnail", slide, "--out", os.path.join(tmp, "t.png")], "--max"),
            ("synth", "synth", ["synth", "--size", "256x256", "--seed", "1", "--out", os.path.join(tmp, "y.tiff")],
             "--out"),
            ("report build", "report", ["report", "build", "case.json", "f.json", "--out", "r"], "--rules"),
            ("report sign", "report", ["report", "sign", "r", "--pathologist", "p", "--key", "k.pem"], "--key"),
            ("report verify", "report", ["report", "verify", "r"], "--pubkey"),
            ("report signers", "report", ["report", "signers", "list"], "--registry"),
            ("deid", "deid", ["deid", slide, "--out", os.path.join(tmp, "copy.svs")], "--out"),
            ("upscale", "upscale", ["upscale", slide, "--model", model, "--out", os.path.join(tmp, "up.tiff")], "--roi"),
            ("eval", "eval", ["eval", "--model", model, folder], "--split"),
            ("eval-wsi", "eval-wsi", ["eval-wsi", "--truth", "a.xml", "--findings", "f.json"], "--out"),
        ]
        # The lab service's commands exist only where the build found their libraries.
        rc, so, se = run_in(tmp, "serve", "--help")
        if rc == 0:
            cmds += [
                ("serve", "serve", ["serve", "--data", os.path.join(tmp, "d")], "--workers"),
                ("worker", "worker", ["worker", "--data", os.path.join(tmp, "d"), "--db", "postgresql://x"],
                 "--model"),
                ("serve token create", "serve", ["serve", "token", "create", "--data", os.path.join(tmp, "d"),
                                                 "--role", "admin", "--name", "n"], "--name"),
                ("serve signer add", "serve", ["serve", "signer", "add", "--data", os.path.join(tmp, "d"),
                                               "--token", "t_x", "--pathologist", "p", "--key", "k.pem"], "--key"),
            ]
        for name, help_cmd, args, valued in cmds:
            usage_error(name, help_cmd, args + ["--frobnicate"], "unknown option --frobnicate", tmp)
            usage_error(name, help_cmd, args + [valued], f"{valued} needs a value", tmp)
            rc, so, se = run_in(tmp, *args[:len(name.split())], "--help")
            t.check(rc == 0 and "usage" in so.lower(), f"{name} --help: the usage on stdout, exit 0")
        if any(c[0] == "serve" for c in cmds):
            # The service's super-resolution precision: half only where the CUDA backend runs it.
            d = os.path.join(tmp, "d")
            usage_error("serve", "serve", ["serve", "--data", d, "--sr-precision", "fp16"],
                        "--sr-precision fp16 needs --backend cuda", tmp)
            usage_error("worker", "worker", ["worker", "--data", d, "--db", "postgresql://x", "--sr-precision", "bf16"],
                        "--sr-precision bf16 needs --backend cuda", tmp)
            usage_error("serve", "serve", ["serve", "--data", d, "--backend", "cuda", "--sr-precision", "fp8"],
                        "--sr-precision must be", tmp)
        usage_error("analyze", "analyze", ["analyze", slide, "--s", "x"], "ambiguous option --s", tmp)
        usage_error("analyze", "analyze", ["analyze", slide, "--overwrite=yes"], "--overwrite takes no value", tmp)
        usage_error("analyze", "analyze", ["analyze", slide, "-j", "many"], "--threads must be an integer", tmp)
        usage_error("slide", "slide", ["slide", "frobnicate", slide], "unknown subcommand 'frobnicate'", tmp)
        usage_error("model", "model", ["model"], "missing subcommand", tmp)
        rc, so, se = run_in(tmp, "frobnicate")
        t.check(rc == 2 and "unknown command 'frobnicate'" in se and len(se.strip().splitlines()) == 2,
                f"an unknown command: exit 2, named, with the hint ({se.strip()[:120]})")

        # Short forms.
        rc, so, se = run_in(tmp, "analyze", "-m", model, "-o", "results", "-j", "1", "-b", "4", slide)
        t.check(rc == 0 and os.path.isfile(os.path.join(tmp, "results", t.slide_id(slide), "findings.json"))
                and not os.path.exists(os.path.join(tmp, "out")) and not os.path.exists(os.path.join(tmp, "-o")),
                f"analyze -m M -o DIR -j 1 -b 4 SLIDE writes into DIR, not ./out ({rc}, {se.strip()[-200:]})")
        with open(os.path.join(tmp, "results", t.slide_id(slide), "findings.json")) as fh:
            t.check('"batch_size": 4' in fh.read().replace(":\t", ": "), "-b sets the batch size")
        rc, so, se = run_in(tmp, "slide", "thumbnail", slide, "--max", "64", "-o", "thumb.png")
        t.check(rc == 0 and os.path.isfile(os.path.join(tmp, "thumb.png")), f"slide thumbnail -o ({rc})")
        rc, so, se = run_in(tmp, "synth", "-o", "small.tiff", "--size", "256x256", "--seed", "5")
        t.check(rc == 0 and os.path.isfile(os.path.join(tmp, "small.tiff")), f"synth -o ({rc})")
        rc, so, se = run_in(tmp, "deid", "small.tiff", "-o", "small_copy.tiff")
        t.check(rc == 0 and os.path.isfile(os.path.join(tmp, "small_copy.tiff")), f"deid -o ({rc}, {se.strip()})")
        rc, so, se = run_in(tmp, "model", "run", model, "-i", npy, "-o", "y.npy")
        t.check(rc == 0 and os.path.isfile(os.path.join(tmp, "y.npy")), f"model run -i X -o Y.npy ({rc})")
        rc, so, se = run_in(tmp, "model", "bench", model, "-b", "1", "--iterations", "1", "--warmup", "0")
        t.check(rc == 0 and "batch 1" in so, f"model bench -b 1 ({rc})")
        rc, so, se = run_in(tmp, "report", "build", "missing_case.json", "f.json", "-o", "rep")
        t.check(rc == 1 and "missing_case.json" in se, f"report build -o DIR: parsed, then the missing case file named ({rc})")

        # Folders where files are expected.
        rc, so, se = run_in(tmp, "analyze", "-o", "o2", folder)
        t.check(rc == 2 and "is a directory" in se and "--recursive" in se and folder in se,
                f"analyze FOLDER: exit 2 naming --recursive ({rc})")
        for args, what in ((["slide", "info", folder], "slide info"), (["model", "info", folder], "model info"),
                           (["deid", folder, "-o", "c.tiff"], "deid"),
                           (["upscale", folder, "-m", model, "-o", "u.tiff"], "upscale"),
                           (["report", "build", folder, "f.json", "-o", "rep"], "report build"),
                           (["synth", "-o", folder, "--size", "256x256", "--seed", "1"], "synth -o FOLDER"),
                           (["slide", "thumbnail", slide, "-o", folder], "slide thumbnail -o FOLDER")):
            rc, so, se = run_in(tmp, *args)
            t.check(rc == 1 and "is a directory" in se and se.count(folder) == 1,
                    f"{what}: a folder is refused, named once ({rc}, {se.strip()[:160]})")

        # --recursive: the slides under a folder, nothing else.
        tree = os.path.join(tmp, "tree")
        os.makedirs(os.path.join(tree, "sub"))
        s1 = t.synth(os.path.join(tree, "one.tiff"), 1024, 2602)
        s2 = t.synth(os.path.join(tree, "sub", "two.tiff"), 1024, 2603)
        open(os.path.join(tree, "notes.txt"), "w").write("not a slide\n")
        rc, so, se = run_in(tmp, "analyze", "-m", model, "-o", os.path.join(tree, "results"), "--json", "-r", tree)
        ends = [e for e in t.json_lines(so) if e.get("event") not in ("start", "summary")]
        t.check(rc == 0 and len(ends) == 2 and {e["slide_id"] for e in ends} == {t.slide_id(s1), t.slide_id(s2)},
                f"--recursive analyses the two slides under the folder, not their truth files ({rc}, "
                f"{[e.get('slide_id') for e in ends]})")
        rc, so, se = run_in(tmp, "analyze", "-m", model, "-o", os.path.join(tree, "results"), "--json", "-r", tree)
        ends = [e for e in t.json_lines(so) if e.get("event") not in ("start", "summary")]
        t.check(rc == 0 and len(ends) == 2 and all(e["event"] == "skipped" for e in ends),
                f"--recursive again: the results folder inside the tree is not taken for slides ({len(ends)})")
        rc, so, se = run_in(tmp, "analyze", "-o", "o3", "-r", folder)
        t.check(rc == 2 and "no slide files under" in se, f"--recursive on a folder without slides: exit 2 ({rc})")

        # A missing file is named once.
        gone = os.path.join(tmp, "Zed_Quux_missing.svs")
        for args in (["analyze", "-m", model, "-o", "o4", gone], ["slide", "info", gone],
                     ["slide", "thumbnail", gone, "-o", "t2.png"], ["deid", gone, "-o", "c2.svs"],
                     ["model", "info", gone], ["model", "run", model, "--input", gone + ".npy"],
                     ["report", "build", gone, "f.json", "-o", "rep"], ["report", "verify", gone]):
            rc, so, se = run_in(tmp, *args)
            t.check(rc == 1 and se.count("Zed_Quux_missing") == 1,
                    f"{' '.join(args[:2])}: a missing file is named once ({rc}, {se.strip()[:200]})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


main()
