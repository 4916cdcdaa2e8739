"""`histoplan analyze --sr auto|off|MODEL` (issue 14), through the command line.

Checked:
- the decision table (pipeline/analyze_sr.h): a slide within 1.5x of the classifier's MPP is not
  super-resolved (and nothing warns); a slide 2x coarser is, with a x2 model given or picked by
  auto from the zoo ($HP_MODEL_DIR); 4x coarser with only a x2 model: auto does not use it and says
  why (the resolution warning too), a named model is refused naming both figures; auto with no
  SR model installed says so; --sr off resamples;
- bad input: a classifier given as --sr (exit 3, "not a super-resolution model"), the zoo's
  generative model (exit 3: it may invent texture, so its pixels never become evidence), a card without
  "scale", a card whose scale does not match the network, a missing file (exit 3), a folder
  (exit 2), a slide without MPP (exit 1, naming --mpp);
- what the classifier saw, against an independent implementation: for interior tiles, the tile
  read with its halo by OpenSlide, super-resolved by the same network in PyTorch, cut back to
  224 px and classified by `histoplan model run` gives the probabilities tiles.csv holds;
- the marks: findings.json analysis.super_resolution (mode, model, hash, scale, MPPs) and every
  region's super_resolved, valid against the schema; tiles.csv's super_resolved column; the
  overlay's legend title; the terminal's "SUPER-RESOLVED" line; run.json's super_resolution;
  the report (JSON case_findings.super_resolution, the HTML banner, the FHIR conclusion and a
  super-resolution Device as a Provenance agent).
"""
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import analyze_testlib as T  # noqa: E402

try:
    import jsonschema
    import openslide
    import torch
    from PIL import Image
    from sr_testlib import export_tiny_sr
except ImportError as e:  # the project's install-deps.sh installs these
    print("SKIP: needs PyTorch, OpenSlide, Pillow and jsonschema:", e)
    sys.exit(77)

SCHEMAS = os.path.join(T.SRC, "schemas")
CASE = os.path.join(T.SRC, "report", "examples", "demo-case.json")


def write_card(onnx, path, **fields):
    card = {"name": "test-sr", "version": "0.1", "task": "super-resolution", "scale": 2, "mpp": 1.0,
            "sha256": T.sha256_file(onnx)}
    card.update(fields)
    for k in [k for k, v in card.items() if v is None]:
        del card[k]
    with open(path, "w") as fh:
        json.dump(card, fh)


def synth(path, size, seed, mpp):
    rc, _, se = T.run("synth", "--out", path, "--size", f"{size}x{size}", "--seed", seed, "--mpp", mpp)
    if rc != 0:
        raise SystemExit(f"synth failed: {se}")
    return path


def findings(out, sid):
    with open(os.path.join(out, sid, "findings.json")) as fh:
        return json.load(fh)


def tiles_rows(out, sid):
    with open(os.path.join(out, sid, "tiles.csv"), newline="") as fh:
        return list(csv.DictReader(fh))


def reference_probs(slide, net, row, halo=8):
    """The tile as analyze --sr should show it to the classifier, made independently: OpenSlide's
    read with the halo, the network in PyTorch, the halo cut, then `histoplan model run`."""
    x, y, size = int(float(row["x"])), int(float(row["y"])), int(float(row["size"]))
    s = openslide.OpenSlide(slide)
    rgb = np.asarray(s.read_region((x - halo, y - halo), 0, (size + 2 * halo, size + 2 * halo)).convert("RGB"))
    with torch.no_grad():
        out = net(torch.from_numpy(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255))[0].numpy()
    cut = halo * 2
    tile = out[:, cut:cut + 2 * size, cut:cut + 2 * size].transpose(1, 2, 0)
    tile8 = np.clip(np.floor(tile * 255 + 0.5), 0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as d:
        png, npy = os.path.join(d, "t.png"), os.path.join(d, "l.npy")
        Image.fromarray(tile8).save(png)
        rc, so, se = T.run("model", "run", T.MODEL, "--input", png, "--output", npy)
        if rc != 0:
            raise SystemExit(f"model run failed: {se}")
        logits = np.load(npy)[0].astype(np.float64)
    e = np.exp(logits - logits.max())
    return e / e.sum()


def check_decisions(tmp, net_path, slide05, slide10, slide20):
    T.check(True, "--- decision table ---")
    out = os.path.join(tmp, "dec")
    rc, so, se = T.run("analyze", slide05, "--sr", net_path, "-o", out, "--slide-id", "r1")
    f = findings(out, "r1") if rc == 0 else {}
    sr = f.get("analysis", {}).get("super_resolution", {})
    T.check(rc == 0 and sr.get("used") is False and sr.get("mode") == "model" and "not needed" in (sr.get("reason") or "")
            and f["analysis"]["resolution_warning"] is None,
            f"ratio 1: not super-resolved, the reason says not needed, no warning ({rc}, {sr})")
    T.check(rc == 0 and {r["super_resolved"] for r in tiles_rows(out, "r1")} == {"0"}, "ratio 1: tiles.csv says 0")

    rc, so, se = T.run("analyze", slide20, "--sr", net_path, "-o", out, "--slide-id", "r4")
    T.check(rc == 1 and "x2" in se and "4.00x" in se, f"ratio 4 with a named x2 model: refused naming both ({rc}: {se[-300:]})")

    zoo = os.path.join(tmp, "zoo")
    os.makedirs(zoo)
    for n in ("histoplan-default-densenet.onnx", "histoplan-default-densenet.card.json",
              "histoplan-default-densenet.ood.json"):
        shutil.copy(os.path.join(T.ZOO, n), zoo)
    env_none = dict(os.environ, HP_MODEL_DIR=zoo)
    rc, so, se = T.run("analyze", slide10, "--sr", "auto", "-o", out, "--slide-id", "a0", env=env_none)
    sr = findings(out, "a0")["analysis"]["super_resolution"] if rc == 0 else {}
    T.check(rc == 0 and sr.get("used") is False and "no super-resolution model is installed" in sr.get("reason", "")
            and "upsampled 2.00x" in se, f"auto with none installed: resampled, said so and warned ({rc}, {sr})")

    shutil.copy(net_path, os.path.join(zoo, "histoplan-sr-srvgg-x2.onnx"))
    shutil.copy(net_path[:-5] + ".card.json", os.path.join(zoo, "histoplan-sr-srvgg-x2.card.json"))
    rc, so, se = T.run("analyze", slide10, "--sr", "auto", "-o", out, "--slide-id", "a2", env=env_none)
    f = findings(out, "a2") if rc == 0 else {}
    sr = f.get("analysis", {}).get("super_resolution", {})
    T.check(rc == 0 and sr.get("used") is True and sr.get("mode") == "auto" and sr["model"]["scale"] == 2
            and sr["model"]["sha256"] == T.sha256_file(net_path) and "SUPER-RESOLVED" in so,
            f"auto, ratio 2: the zoo's x2 model used and said on the terminal ({rc}, {sr})")
    rc, so, se = T.run("analyze", slide20, "--sr", "auto", "-o", out, "--slide-id", "a4", env=env_none)
    f = findings(out, "a4") if rc == 0 else {}
    sr = f.get("analysis", {}).get("super_resolution", {})
    warn = (f.get("analysis", {}).get("resolution_warning") or {}).get("message", "")
    T.check(rc == 0 and sr.get("used") is False and "no installed super-resolution model has a scale that fits" in
            sr.get("reason", "") and "4.00x" in warn and "super-resolution: not used" in warn,
            f"auto, ratio 4 with only x2: not used, the reason and the warning say why ({rc}, {sr}, {warn[-160:]})")
    rc, so, se = T.run("analyze", slide10, "--sr", "off", "-o", out, "--slide-id", "o2", env=env_none)
    sr = findings(out, "o2")["analysis"]["super_resolution"] if rc == 0 else {}
    T.check(rc == 0 and sr == {"mode": "off", "used": False, "reason": "off (--sr off): tiles are resampled",
                               "model": None}, f"--sr off: resampled ({sr})")


def check_bad_models(tmp, net_path, slide10):
    T.check(True, "--- bad super-resolution models ---")
    out = os.path.join(tmp, "bad")
    rc, so, se = T.run("analyze", slide10, "--sr", T.MODEL, "-o", out)
    T.check(rc == 3 and "not a super-resolution model" in se, f"a classifier as --sr: exit 3, said ({rc}: {se[-200:]})")
    noscale = os.path.join(tmp, "noscale.onnx")
    shutil.copy(net_path, noscale)
    write_card(noscale, noscale[:-5] + ".card.json", scale=None)
    rc, so, se = T.run("analyze", slide10, "--sr", noscale, "-o", out)
    T.check(rc == 3 and "\"scale\" is missing" in se, f"a card without scale: exit 3, named ({rc}: {se[-200:]})")
    wrong = os.path.join(tmp, "wrongscale.onnx")
    shutil.copy(net_path, wrong)
    write_card(wrong, wrong[:-5] + ".card.json", scale=4, mpp=2.0)
    slide20 = os.path.join(tmp, "s20.tiff")
    rc, so, se = T.run("analyze", slide20, "--sr", wrong, "-o", out)
    T.check(rc == 1 and "does not match the model" in se, f"a card whose scale is not the network's: refused ({rc}: {se[-200:]})")
    gan = os.path.join(T.ZOO, "histoplan-sr-srvgg-gan-x2.onnx")
    rc, so, se = T.run("analyze", slide10, "--sr", gan, "-o", out)
    T.check(rc == 3 and "generative" in se and "--sr auto" in se, f"the zoo's generative model: refused, exit 3 ({rc}: {se[-200:]})")
    rc, so, se = T.run("analyze", slide10, "--sr", os.path.join(tmp, "missing.onnx"), "-o", out)
    T.check(rc == 3 and "missing.onnx" in se, f"a missing model: exit 3, named ({rc}: {se[-200:]})")
    rc, so, se = T.run("analyze", slide10, "--sr", tmp, "-o", out)
    T.check(rc == 2 and "directory" in se, f"a folder as --sr: exit 2 ({rc}: {se[-200:]})")
    rc, so, se = T.run("analyze", slide10, "--sr", "auto", "--sr-precision", "fp16", "-o", out)
    T.check(rc == 2 and "needs --backend cuda" in se, f"--sr-precision fp16 on the CPU: exit 2 ({rc}: {se[-200:]})")
    rc, so, se = T.run("analyze", slide10, "--backend", "cuda", "--sr-precision", "bf16", "-o", out)
    T.check(rc == 2 and "give --sr auto" in se, f"--sr-precision without --sr: exit 2 ({rc}: {se[-200:]})")
    png = os.path.join(tmp, "nompp.png")
    Image.new("RGB", (600, 600), (200, 120, 180)).save(png)
    rc, so, se = T.run("analyze", png, "--sr", "auto", "-o", out)
    T.check(rc == 1 and "--mpp" in se, f"a slide without MPP: exit 1 naming --mpp ({rc}: {se[-200:]})")


def check_what_the_model_saw(tmp, net, net_path, slide10):
    T.check(True, "--- the classifier's input against PyTorch ---")
    out = os.path.join(tmp, "saw")
    rc, so, se = T.run("analyze", slide10, "--sr", net_path, "-o", out, "--slide-id", "s2", "--case", "DEMO-0001")
    if not T.check(rc == 0, f"analyze --sr MODEL on a 1.0 um/px slide ({rc}: {se[-300:]})"):
        return
    f = findings(out, "s2")
    with open(os.path.join(SCHEMAS, "findings.schema.json")) as fh:
        errs = list(jsonschema.Draft202012Validator(json.load(fh)).iter_errors(f))
    T.check(not errs, f"findings.json valid against the schema ({[e.message for e in errs][:2]})")
    sr = f["analysis"]["super_resolution"]
    T.check(sr["used"] and sr["model"]["input_mpp"] == 1.0 and sr["model"]["output_mpp"] == 0.5
            and sr["model"]["precision"] == "fp32"
            and f["analysis"]["resolution_warning"] is None, f"findings: used, 1.0 -> 0.5 um/px in fp32, no upsampling warning")
    T.check(f["regions"] and all(r["super_resolved"] is True for r in f["regions"]),
            f"every region says super_resolved ({len(f['regions'])} regions)")
    rows = tiles_rows(out, "s2")
    T.check(rows and all(r["super_resolved"] == "1" for r in rows), f"tiles.csv: all {len(rows)} tiles super_resolved 1")
    with open(os.path.join(out, "s2", "run.json")) as fh:
        run = json.load(fh)
    T.check(run.get("super_resolution") == "model:" + T.sha256_file(net_path)[:12], f"run.json: {run.get('super_resolution')}")
    layout = Image.open(os.path.join(out, "s2", "overlay.png")).text.get("histoplan:legend", "")
    T.check("SUPER-RESOLVED" in layout, "overlay.png: the legend's title says SUPER-RESOLVED")
    W = openslide.OpenSlide(slide10).dimensions
    inner = [r for r in rows if float(r["tissue_fraction"]) > 0.9 and 16 < float(r["x"]) < W[0] - 140
             and 16 < float(r["y"]) < W[1] - 140]
    picks = inner[:: max(1, len(inner) // 4)][:4]
    worst = 0.0
    for r in picks:
        ref = reference_probs(slide10, net, r)
        got = np.array([float(r[k]) for k in r if k.startswith("prob_")])
        worst = max(worst, float(np.abs(ref - got).max()))
    T.check(len(picks) == 4 and worst < 2e-3,
            f"{len(picks)} interior tiles: probabilities match PyTorch SR + model run (max |diff| {worst:.2e})")

    rep = os.path.join(tmp, "rep")
    rc, so, se = T.run("report", "build", CASE, os.path.join(out, "s2", "findings.json"), "-o", rep)
    if not T.check(rc == 0 and "SUPER-RESOLVED EVIDENCE" in so, f"report build says SUPER-RESOLVED EVIDENCE ({rc}: {se[-200:]})"):
        return
    with open(os.path.join(rep, "report.json")) as fh:
        r = json.load(fh)
    with open(os.path.join(SCHEMAS, "report.schema.json")) as fh:
        errs = list(jsonschema.Draft202012Validator(json.load(fh)).iter_errors(r))
    csr = r["case_findings"].get("super_resolution", {})
    T.check(not errs and csr.get("used") and csr["slides"][0]["slide_id"] == "s2" and csr["slides"][0]["scale"] == 2,
            f"report.json: case_findings.super_resolution names the slide and scale; valid ({[e.message for e in errs][:2]})")
    with open(os.path.join(rep, "report.html")) as fh:
        html = fh.read()
    T.check(html.find('id="sr-banner"') != -1 and html.find('id="sr-banner"') < html.find("Structured pathology report"),
            "report.html: the super-resolution banner comes before the report's body")
    with open(os.path.join(rep, "report.fhir.json")) as fh:
        b = json.load(fh)
    res = [e["resource"] for e in b["entry"]]
    dr = next(x for x in res if x["resourceType"] == "DiagnosticReport")
    dev = [x for x in res if x["resourceType"] == "Device" and x["type"]["coding"][0]["code"] == "sr-model"]
    prov = next(x for x in res if x["resourceType"] == "Provenance")
    refs = {a["who"]["reference"] for a in prov["agent"]}
    T.check(dr["conclusion"].startswith("From super-resolved tiles") and len(dev) == 1
            and dev[0]["identifier"][0]["value"] == T.sha256_file(net_path)
            and any(e["fullUrl"] in refs for e in b["entry"] if e["resource"] is dev[0]),
            "FHIR: the conclusion starts with it, a Device for the SR model is a Provenance agent")


def main():
    tmp = tempfile.mkdtemp(prefix="hp_sr_")
    try:
        net_path = os.path.join(tmp, "tiny-sr.onnx")
        net = export_tiny_sr(net_path)
        write_card(net_path, net_path[:-5] + ".card.json")
        slide05 = synth(os.path.join(tmp, "s05.tiff"), 1536, 1401, 0.5)
        slide10 = synth(os.path.join(tmp, "s10.tiff"), 2048, 1401, 1.0)
        slide20 = synth(os.path.join(tmp, "s20.tiff"), 1536, 1401, 2.0)
        check_decisions(tmp, net_path, slide05, slide10, slide20)
        check_bad_models(tmp, net_path, slide10)
        check_what_the_model_saw(tmp, net, net_path, slide10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    T.finish()


if __name__ == "__main__":
    main()
