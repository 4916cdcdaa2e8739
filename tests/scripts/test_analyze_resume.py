"""Resuming `histoplan analyze` into a folder that already holds results.

A completed result is kept only when it was made from the same slide, model and options (its
run.json, checked against schemas/run.schema.json): then the slide is skipped and nothing is
touched. A result made with another model, or another --mpp, --roi, --case or --mask, is never
silently kept: the slide fails (exit 1, error category "io" in batch-summary.json) with a message
naming what differs, every file stays as it was, and the other slides of the batch still run;
--overwrite then reruns it and replaces it. A folder made before histoplan recorded run.json is
refused the same way, naming run.json.
"""
import json
import os
import shutil
import tempfile

import analyze_testlib as t


def snapshot(d):
    snap = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            snap[p] = (st.st_size, st.st_mtime_ns)
    return snap


def entry(out, slide):
    for r in t.load_summary(out).get("results", []):
        if r["input_sha256"] == t.input_hash(slide):
            return r
    return {}


def run_key(out, slide):
    try:
        with open(os.path.join(out, t.slide_id(slide), "run.json")) as fh:
            return json.load(fh)
    except OSError:
        return {}


def main():
    tmp = tempfile.mkdtemp(prefix="hp_resume_")
    try:
        a = t.synth(os.path.join(tmp, "a.tiff"), 1536, 2201)
        b = t.synth(os.path.join(tmp, "b.tiff"), 1024, 2202)
        out = os.path.join(tmp, "out")
        sid = t.slide_id(a)
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, a, b)
        t.check(rc == 0, f"first run: both slides analysed ({rc}, {se.strip()[-200:]})")
        key = run_key(out, a)
        err = t.valid(key, "run.schema.json")
        t.check(key and err is None and key["slide_sha256"] == t.sha256_file(a)
                and key["model_sha256"] == t.sha256_file(t.MODEL)
                and key["mpp"] is None and key["roi"] is None and key["case"] is None,
                f"run.json names the slide, the model and the options ({err})")

        # The same slide, model and options: kept, untouched.
        before = snapshot(out)
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, a, b)
        t.check(rc == 0 and so.count("skipped: already analysed with the same slide, model and options") == 2,
                f"an identical rerun skips both slides, exit 0 ({rc})")
        after = snapshot(out)
        t.check({k: v for k, v in after.items() if not k.endswith("batch-summary.json")}
                == {k: v for k, v in before.items() if not k.endswith("batch-summary.json")},
                "an identical rerun touches no result file")

        # Another model: refused for the slide, naming the model; the other slide also refused;
        # nothing touched.
        before = snapshot(os.path.join(out, sid))
        rc, so, se = t.run("analyze", "--model", t.OTHER_MODEL, "--out", out, a, b)
        other = t.sha256_file(t.OTHER_MODEL)[:12]
        t.check(rc == 1 and "the model" in se and other in se and "--overwrite" in se,
                f"another model: exit 1, the message names the model and --overwrite ({rc}, {se.strip()[:300]})")
        t.check(snapshot(os.path.join(out, sid)) == before, "another model: the result is untouched")
        e = entry(out, a)
        t.check(e.get("status") == "failed" and e.get("error") == "io" and "the model" in e.get("message", ""),
                f"another model: batch-summary.json records the refusal with category io ({e})")
        t.check(t.valid(t.load_summary(out), "batch-summary.schema.json") is None, "the summary validates")

        # Changed options, each named.
        for opts, word in ((["--mpp", "0.3"], "--mpp"), (["--roi", "0,0,512,512"], "--roi"),
                           (["--case", "S26-7"], "--case")):
            rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, a, *opts)
            t.check(rc == 1 and word in se and "--overwrite" in se,
                    f"changed {word}: exit 1 naming {word} ({rc}, {se.strip()[-250:]})")
            t.check(snapshot(os.path.join(out, sid)) == before, f"changed {word}: the result is untouched")
        mask = os.path.join(tmp, "mask.png")
        rc, so, se = t.run("slide", "thumbnail", a, "--max", "64", "--out", mask)
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, a, "--mask", mask)
        t.check(rc == 1 and "--mask" in se, f"a --mask now: exit 1 naming --mask ({rc})")

        # --overwrite reruns with the new model and options and replaces the result.
        rc, so, se = t.run("analyze", "--model", t.OTHER_MODEL, "--out", out, a, "--mpp", "0.3", "--overwrite")
        key = run_key(out, a)
        t.check(rc == 0 and key.get("model_sha256") == t.sha256_file(t.OTHER_MODEL) and key.get("mpp") == 0.3,
                f"--overwrite reruns with the other model and --mpp and replaces the result ({rc})")
        with open(os.path.join(out, sid, "findings.json")) as fh:
            t.check(json.load(fh)["model"]["sha256"] == t.sha256_file(t.OTHER_MODEL),
                    "--overwrite: findings.json is the new model's")
        t.check(entry(out, a).get("status") == "done", "--overwrite: the summary says done")
        rc, so, se = t.run("analyze", "--model", t.OTHER_MODEL, "--out", out, a, "--mpp", "0.3")
        t.check(rc == 0 and "skipped" in so, "the rerun with the new model and options is kept")

        # A result without run.json (made before histoplan recorded it) is not taken as a match.
        if os.path.exists(os.path.join(out, t.slide_id(b), "run.json")):
            os.remove(os.path.join(out, t.slide_id(b), "run.json"))
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, b)
        t.check(rc == 1 and "run.json" in se and "--overwrite" in se,
                f"a result without run.json is refused, naming it ({rc}, {se.strip()[-200:]})")
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, b, "--overwrite")
        t.check(rc == 0 and os.path.isfile(os.path.join(out, t.slide_id(b), "run.json")),
                "--overwrite makes it again, with run.json")
        bad = t.strays(out)
        t.check(not bad, f"nothing left behind ({bad})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


main()
