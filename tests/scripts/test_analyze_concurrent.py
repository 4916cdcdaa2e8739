"""Several `histoplan analyze` processes sharing one --out, as cluster shards or a lab's parallel
jobs do: two, then four processes started together with overlapping slide lists.

Each slide is analysed by exactly one process (its "done" event appears once over all the
processes' --json streams; the others report it skipped), every process exits 0 without a false
failure, batch-summary.json holds every slide once and validates against its schema, each result
folder holds its results and run.json (naming that slide), and nothing is left behind: no lock
file, no .partial or .replaced folder, no temporary file.
"""
import json
import os
import shutil
import subprocess
import tempfile

import analyze_testlib as t

N_SLIDES = 6


def shard_lists(slides, n_proc):
    """Process k takes 4 consecutive slides from offset k (wrapping), so lists overlap."""
    n = len(slides)
    return [[slides[(k * n // n_proc + j) % n] for j in range(4)] for k in range(n_proc)]


def scenario(tmp, slides, n_proc):
    out = os.path.join(tmp, f"out{n_proc}")
    lists = shard_lists(slides, n_proc)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    procs = [subprocess.Popen(["nice", "-n", "10", t.HP_BIN, "analyze", "--model", t.MODEL, "--out", out, "--json",
                               "--threads", "1", *lst], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
             for lst in lists]
    results = [p.communicate(timeout=900) for p in procs]
    rcs = [p.returncode for p in procs]
    t.check(all(rc == 0 for rc in rcs), f"{n_proc} processes: every one exits 0 ({rcs})")
    for (so, se), rc in zip(results, rcs):
        if rc != 0:
            print(se[-2000:])
    done, skipped = {}, {}
    for so, _ in results:
        for ev in t.json_lines(so):
            if ev.get("event") == "done":
                done[ev["input_sha256"]] = done.get(ev["input_sha256"], 0) + 1
            elif ev.get("event") == "skipped":
                skipped[ev["input_sha256"]] = skipped.get(ev["input_sha256"], 0) + 1
    hashes = [t.input_hash(s) for s in slides]
    t.check(all(done.get(h) == 1 for h in hashes),
            f"{n_proc} processes: each slide analysed exactly once ({[done.get(h, 0) for h in hashes]})")
    given = {h: sum(s in lst for lst in lists) for s, h in zip(slides, hashes)}
    t.check(all(skipped.get(h, 0) == given[h] - 1 for h in hashes),
            f"{n_proc} processes: every other process reports the slide skipped")
    summ = t.load_summary(out)
    err = t.valid(summ, "batch-summary.schema.json")
    t.check(err is None, f"{n_proc} processes: batch-summary.json validates ({err})")
    res = summ.get("results", [])
    by_input = {r["input_sha256"]: r for r in res}
    t.check(len(res) == N_SLIDES and set(by_input) == set(hashes),
            f"{n_proc} processes: the summary holds every slide once ({len(res)} entries)")
    t.check(all(by_input.get(h, {}).get("status") == "done" for h in hashes) and summ.get("done") == N_SLIDES,
            f"{n_proc} processes: every entry says done (the run that analysed it)")
    t.check(all(by_input.get(h, {}).get("slide_id") == t.slide_id(s) for s, h in zip(slides, hashes)),
            f"{n_proc} processes: each entry names its slide's id")
    for s in slides:
        d = os.path.join(out, t.slide_id(s))
        ok = os.path.isfile(os.path.join(d, "findings.json"))
        if ok:
            with open(os.path.join(d, "run.json")) as fh:
                ok = json.load(fh)["slide_sha256"] == t.sha256_file(s)
        t.check(ok, f"{n_proc} processes: {t.slide_id(s)} holds its findings and run.json")
    bad = t.strays(out)
    t.check(not bad, f"{n_proc} processes: no lock, partial or temporary file left ({bad})")


def main():
    tmp = tempfile.mkdtemp(prefix="hp_concurrent_")
    try:
        slides = [t.synth(os.path.join(tmp, f"s{i}.tiff"), 1024 + 256 * (i % 3), 2100 + i) for i in range(N_SLIDES)]
        scenario(tmp, slides, 2)
        scenario(tmp, slides, 4)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


main()
