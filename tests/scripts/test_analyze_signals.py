"""SIGINT and SIGTERM in the middle of a `histoplan analyze` batch.

A batch of three slides (small, large, small) is stopped while the large one is being analysed.
The run stops that slide at its next batch of tiles and exits 130 (SIGINT) or 143 (SIGTERM);
batch-summary.json is complete and validates: the first slide done, the large one interrupted
(error category "interrupted"), the third not started; the --json stream ends with the
interrupted and not-started events and a summary line giving the exit status; no .partial
folder, lock or temporary file is left; and a rerun resumes: the first slide is skipped, the
other two are analysed.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import analyze_testlib as t


def stop_during_second(slides, out, sig, delay):
    p = subprocess.Popen([t.HP_BIN, "analyze", "--model", t.MODEL, "--out", out, "--json", "--batch", "2", "--threads", "1", *slides],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    # The second slide has started once its start event is out and its .partial folder exists.
    started = False
    for line in p.stdout:
        lines.append(line)
        if '"event":"start"' in line and '"index":1' in line:
            started = True
            break
    deadline = time.time() + 120
    while started and time.time() < deadline and not any(n.endswith(".partial") for n in os.listdir(out)):
        time.sleep(0.05)
    time.sleep(delay)
    p.send_signal(sig)
    rest, err = p.communicate(timeout=120)
    lines += rest.splitlines()
    return p.returncode, t.json_lines("\n".join(lines)), err


def main():
    tmp = tempfile.mkdtemp(prefix="hp_signals_")
    try:
        small1 = t.synth(os.path.join(tmp, "small1.tiff"), 1024, 2301)
        large = t.synth(os.path.join(tmp, "large.tiff"), 8192, 2302)
        small2 = t.synth(os.path.join(tmp, "small2.tiff"), 1024, 2303)
        slides = [small1, large, small2]
        # How long the large slide takes on this machine, so that the signals land while it runs
        # however fast the machine is: SIGINT soon after it starts (while the tissue is found),
        # SIGTERM later (among the batches of tiles); the run stops at its next stage or batch.
        rc, so, _ = t.run("analyze", "--model", t.MODEL, "--out", os.path.join(tmp, "out_timing"), "--json",
                          "--batch", "2", "--threads", "1", large)
        took = [ev.get("duration_s") for ev in t.json_lines(so) if ev.get("event") == "done"]
        t.check(rc == 0 and took, f"the large slide alone runs to the end ({rc})")
        took = took[0] if took else 4.0
        for sig, want, delay in ((signal.SIGINT, 130, 0.1 * took), (signal.SIGTERM, 143, 0.5 * took)):
            name = signal.Signals(sig).name
            out = os.path.join(tmp, "out_" + name)
            os.makedirs(out)
            rc, events, err = stop_during_second(slides, out, sig, delay)
            t.check(rc == want, f"{name}: exit {want} (got {rc}; {err.strip()[-200:]})")
            t.check(name in err and "batch-summary.json" in err, f"{name}: the terminal names the signal and the summary")
            summ = t.load_summary(out) if os.path.exists(os.path.join(out, "batch-summary.json")) else {}
            verr = t.valid(summ, "batch-summary.schema.json")
            t.check(summ and verr is None, f"{name}: batch-summary.json is written and validates ({verr})")
            by = {r["input_sha256"]: r for r in summ.get("results", [])}
            e = [by.get(t.input_hash(s), {}) for s in slides]
            t.check(len(by) == 3, f"{name}: the summary holds all three slides ({len(by)})")
            t.check(e[0].get("status") == "done", f"{name}: the first slide is done ({e[0].get('status')})")
            t.check(e[1].get("status") == "interrupted" and e[1].get("error") == "interrupted"
                    and e[1].get("slide_id") == t.slide_id(large),
                    f"{name}: the slide being analysed is recorded as interrupted ({e[1]})")
            t.check(e[2].get("status") == "not-started", f"{name}: the third slide is not started ({e[2].get('status')})")
            kinds = [ev.get("event") for ev in events]
            t.check(kinds[-3:] == ["interrupted", "not-started", "summary"] and events[-1].get("exit_status") == want,
                    f"{name}: the --json stream ends interrupted, not-started, summary ({kinds[-4:]})")
            t.check(not os.path.exists(os.path.join(out, t.slide_id(large))), f"{name}: no result for the interrupted slide")
            bad = t.strays(out)
            t.check(not bad, f"{name}: no partial folder, lock or temporary file left ({bad})")
        # Resume after SIGINT: the done slide is skipped, the others run.
        out = os.path.join(tmp, "out_SIGINT")
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", out, "--json", *slides)
        kinds = [ev.get("event") for ev in t.json_lines(so) if ev.get("event") != "start"]
        t.check(rc == 0 and kinds == ["skipped", "done", "done", "summary"],
                f"a rerun after SIGINT resumes: skipped, done, done ({rc}, {kinds})")
        summ = t.load_summary(out)
        t.check(summ.get("done") == 3 and summ.get("interrupted") == 0 and summ.get("not_started") == 0,
                "the summary then says all three done")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


main()
