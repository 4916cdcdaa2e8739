"""Resolution honesty: a slide coarser than the model's MPP is analysed on upsampled tiles, which
adds no detail; `histoplan analyze` says so when the factor is above 1.25.

With --mpp at twice the card's MPP, findings.json's analysis.resolution_warning gives the factor
(slide MPP over the card's) and a message that points to --sr auto;
the terminal shows the same warning with the factor, and the --json event and batch-summary.json
carry it. A factor of 1.2 (within the 1.25 allowed) and a slide at or finer than the card's MPP
give null and no warning. findings.json validates against its schema in every case.
"""
import json
import os
import shutil
import tempfile

import analyze_testlib as t


def findings(out, slide):
    with open(os.path.join(out, t.slide_id(slide), "findings.json")) as fh:
        return json.load(fh)


def main():
    with open(t.MODEL.replace(".onnx", ".card.json")) as fh:
        card_mpp = json.load(fh)["mpp"]
    tmp = tempfile.mkdtemp(prefix="hp_upsample_")
    try:
        slide = t.synth(os.path.join(tmp, "s.tiff"), 1024, 2501)
        out = os.path.join(tmp, "coarse")
        mpp = 2 * card_mpp
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, "--json", "--mpp", mpp, slide)
        t.check(rc == 0, f"a slide at {mpp} um/px (the card: {card_mpp}) is analysed ({rc}, {se.strip()[-200:]})")
        doc = findings(out, slide)
        err = t.valid(doc, "findings.schema.json")
        t.check(err is None, f"findings.json validates ({err})")
        w = doc["analysis"].get("resolution_warning") or {}
        t.check(abs(w.get("upsampling_factor", 0) - mpp / card_mpp) < 1e-6,
                f"findings.json: upsampling_factor {w.get('upsampling_factor')} = {mpp / card_mpp}")
        msg = w.get("message", "")
        t.check("--sr auto" in msg and "super-resolution: off" in msg and "2.00x" in msg,
                f"findings.json: the message gives the factor and points to --sr auto and says super-resolution is off ({msg[:300]})")
        t.check("warning" in se and "upsampled 2.00x" in se and "super-resolution" in se,
                f"the terminal shows the warning with the factor ({se.strip()[:200]})")
        done = [ev for ev in t.json_lines(so) if ev.get("event") == "done"]
        t.check(done and done[0].get("warning") == msg, "the --json done event carries the warning")
        t.check(t.load_summary(out)["results"][0].get("warning") == msg, "batch-summary.json carries the warning")

        for mpp, what in ((1.2 * card_mpp, "a factor of 1.2"), (None, "the slide's own 0.25 um/px")):
            out = os.path.join(tmp, "fine" if mpp is None else "slight")
            args = ["--mpp", mpp] if mpp else []
            rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, *args, slide)
            doc = findings(out, slide) if rc == 0 else {"analysis": {}}
            t.check(rc == 0 and "resolution_warning" in doc["analysis"] and doc["analysis"]["resolution_warning"] is None
                    and "upsampled" not in se and t.valid(doc, "findings.schema.json") is None,
                    f"{what}: resolution_warning is null and nothing is said ({rc})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


main()
