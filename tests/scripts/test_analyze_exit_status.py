"""The exit statuses of `histoplan analyze`, as scripts and schedulers read them, and the batch
summary it always writes:

  0  every slide analysed (or kept): also for a single slide, whose summary is written too
  1  some slides failed (the others still ran)
  3  nothing ran: the model cannot be loaded (a corrupt file, no default model found: the
     summary still records every slide as failed with category "model"), or the output folder
     cannot be made
  2  bad usage: an unknown option, no slide

--help documents them all.
"""
import os
import shutil
import tempfile

import analyze_testlib as t


def main():
    tmp = tempfile.mkdtemp(prefix="hp_exit_")
    try:
        good = t.synth(os.path.join(tmp, "good.tiff"), 1024, 2401)
        bad = os.path.join(tmp, "notes.svs")
        with open(bad, "w") as fh:
            fh.write("not a slide\n")

        out = os.path.join(tmp, "one")
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, good)
        summ = t.load_summary(out) if os.path.exists(os.path.join(out, "batch-summary.json")) else {}
        t.check(rc == 0, f"one good slide: exit 0 ({rc})")
        t.check(summ.get("slides") == 1 and summ["results"][0].get("status") == "done"
                and summ["results"][0].get("output") == t.slide_id(good)
                and t.valid(summ, "batch-summary.schema.json") is None,
                "one slide: batch-summary.json is written, validates and names its output folder")

        out = os.path.join(tmp, "mixed")
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, bad, good)
        summ = t.load_summary(out)
        st = {r.get("input_sha256"): r for r in summ["results"]}
        t.check(rc == 1, f"a bad slide and a good one: exit 1 ({rc})")
        t.check(st.get(t.input_hash(good), {}).get("status") == "done"
                and st.get(t.input_hash(bad), {}).get("status") == "failed"
                and st.get(t.input_hash(bad), {}).get("error") in t.CATEGORIES, "the good slide still ran; the bad one has a category")
        t.check("notes" not in open(os.path.join(out, "batch-summary.json")).read(), "the summary names no file")

        corrupt = os.path.join(tmp, "corrupt.onnx")
        with open(t.MODEL, "rb") as fh:
            data = fh.read(5000)
        with open(corrupt, "wb") as fh:
            fh.write(data)
        shutil.copy(t.MODEL.replace(".onnx", ".card.json"), corrupt.replace(".onnx", ".card.json"))
        out = os.path.join(tmp, "nomodel")
        rc, so, se = t.run("analyze", "--model", corrupt, "--out", out, good, bad)
        summ = t.load_summary(out) if os.path.exists(os.path.join(out, "batch-summary.json")) else {}
        res = summ.get("results", [])
        t.check(rc == 3, f"a corrupt model: exit 3, nothing ran ({rc}, {se.strip()[-200:]})")
        t.check(len(res) == 2 and all(r.get("status") == "failed" and r.get("error") == "model" for r in res)
                and t.valid(summ, "batch-summary.schema.json") is None,
                f"a corrupt model: the summary records both slides as failed, category model ({res[:1]})")
        t.check(not [d for d in os.listdir(out) if d != "batch-summary.json"], "a corrupt model: nothing else written")

        empty = os.path.join(tmp, "empty_zoo")
        os.makedirs(empty)
        out = os.path.join(tmp, "nodefault")
        rc, so, se = t.run("analyze", "--out", out, good, env=dict(os.environ, HP_MODEL_DIR=empty))
        summ = t.load_summary(out) if os.path.exists(os.path.join(out, "batch-summary.json")) else {}
        t.check(rc == 3 and "HP_MODEL_DIR" in se and summ.get("failed") == 1
                and summ["results"][0].get("error") == "model",
                f"no default model: exit 3, the summary says so ({rc})")

        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", os.path.join(tmp, "no", "such", "parent"), good)
        t.check(rc == 3 and "cannot create the output folder" in se, f"an output folder that cannot be made: exit 3 ({rc})")
        blocker = os.path.join(tmp, "a_file")
        open(blocker, "w").close()
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", blocker, good)
        t.check(rc == 3 and "not a folder" in se, f"--out naming a file: exit 3 ({rc}, {se.strip()})")

        rc, so, se = t.run("analyze", "--frobnicate", good)
        t.check(rc == 2 and "unknown option --frobnicate" in se, f"an unknown option: exit 2 ({rc})")
        rc, so, se = t.run("analyze", "--out", os.path.join(tmp, "x"))
        t.check(rc == 2 and "no slide given" in se, f"no slide: exit 2 ({rc})")

        rc, so, se = t.run("analyze", "--help")
        flat = " ".join(so.split())
        t.check(rc == 0 and "0 every slide analysed or skipped" in flat and "1 some slides failed" in flat
                and "2 bad usage" in flat and "3 nothing ran" in flat and "130" in flat and "143" in flat,
                "--help documents the exit statuses")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


main()
