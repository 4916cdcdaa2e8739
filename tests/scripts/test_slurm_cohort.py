"""A cohort on a real single-node Slurm cluster: scripts/slurm/local-cluster.sh starts Debian's
munged, slurmctld and slurmd in a temporary folder (own key, socket, ports and slurm.conf), and
scripts/slurm/analyze-array.sbatch runs as an array of 4 tasks, one shard each, over a manifest of
8 generated slides, all into one OUT. Then:

- every task completes (state COMPLETED, exit 0) and ran its own shard;
- every slide is analysed exactly once (one "done" event over all the logs), in the shard the
  documented hash gives; `histoplan batch merge OUT` exits 0 with a complete summary of the 8;
- one task requeued (scontrol requeue, while it runs when the timing allows) starts again,
  appends to its log, and resumes: nothing complete is analysed again, and afterwards every slide
  is still done exactly once and the merged summary complete.

When Slurm cannot run here (a program missing, munged or a daemon that does not start) the test
prints the reason with the daemon's log and exits 77 (skipped)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import analyze_testlib as t

SLURM_DIR = os.path.join(t.SRC, "scripts", "slurm")
N_SHARDS = 4
N_SLIDES = 8


def shard_of(slide_id, n):
    return 1 + int.from_bytes(hashlib.sha256(slide_id.encode()).digest()[:8], "big") % n


def sh(args, env, timeout=30):
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def tasks(job, env):
    """{array task id: (state, exit code, restarts)} from scontrol."""
    rc, so, _ = sh(["scontrol", "-o", "show", "job", job], env)
    out = {}
    for line in so.splitlines():
        f = dict(re.findall(r"(\w+)=(\S*)", line))
        if "ArrayTaskId" in f and f["ArrayTaskId"].isdigit():
            out[int(f["ArrayTaskId"])] = (f.get("JobState"), f.get("ExitCode"), int(f.get("Restarts", "0")))
    return out


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(1)
    print(f"timed out waiting for {what}")
    return False


def log_events(path):
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return [], ""
    return t.json_lines(text), text


def main():
    if not os.access(t.HP_BIN, os.X_OK) and not shutil.which(t.HP_BIN):
        print(f"skipped: no histoplan binary at {t.HP_BIN}")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="hp_slurm_")
    os.chmod(tmp, 0o755)
    cluster = os.path.join(tmp, "cluster")
    env = dict(os.environ)
    env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    started = False
    try:
        p = subprocess.run(["bash", os.path.join(SLURM_DIR, "local-cluster.sh"), "start", cluster],
                           capture_output=True, text=True, env=env, timeout=120)
        if p.returncode != 0:
            print(p.stderr)
            reason = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
            print(f"skipped: Slurm cannot run on this machine: {reason}")
            sys.exit(77)
        started = True
        env["SLURM_CONF"] = os.path.join(cluster, "slurm.conf")
        env["HP_BIN"] = os.path.abspath(t.HP_BIN) if os.path.exists(t.HP_BIN) else shutil.which(t.HP_BIN)
        print(p.stdout.strip())

        sd = os.path.join(tmp, "slides")
        os.mkdir(sd)
        ids = [f"C-{k:02d}" for k in range(N_SLIDES)]
        man = os.path.join(tmp, "cohort.csv")
        with open(man, "w") as fh:
            fh.write("path,slide_id,case,mpp\n")
            for k, sid in enumerate(ids):
                t.synth(os.path.join(sd, f"slide{k}.tiff"), 1536, 4200 + k)
                fh.write(f"slides/slide{k}.tiff,{sid},CASE-{k // 2},\n")
        per_shard = {i: sorted(s for s in ids if shard_of(s, N_SHARDS) == i) for i in range(1, N_SHARDS + 1)}
        print("shards:", per_shard)
        out = os.path.join(tmp, "out")
        logs = os.path.join(tmp, "logs")
        os.mkdir(logs)
        rc, so, se = sh(["sbatch", "--parsable", f"--array=1-{N_SHARDS}", "--cpus-per-task=1", f"--chdir={tmp}",
                         f"--output={logs}/analyze-%A_%a.log", os.path.join(SLURM_DIR, "analyze-array.sbatch"),
                         man, out, str(N_SHARDS), "--model", t.MODEL], env)
        if not t.check(rc == 0 and so.strip(), f"sbatch accepts the array ({rc}, {se.strip()})"):
            return
        job = so.strip().split(";")[0]
        log = {i: os.path.join(logs, f"analyze-{job}_{i}.log") for i in range(1, N_SHARDS + 1)}

        # Requeue the busiest shard while it runs (after its first slide), so it resumes.
        busiest = max(per_shard, key=lambda i: len(per_shard[i]))

        def first_done():
            ev, _ = log_events(log[busiest])
            return any(e.get("event") == "done" for e in ev) or tasks(job, env).get(busiest, ("",))[0] == "COMPLETED"

        wait_for(first_done, 600, f"a first slide of shard {busiest}")
        ev, _ = log_events(log[busiest])
        running = tasks(job, env).get(busiest, ("",))[0] == "RUNNING"
        rc, so, se = sh(["scontrol", "requeue", f"{job}_{busiest}"], env)
        t.check(rc == 0, f"scontrol requeue {job}_{busiest} ({'while running' if running else 'after it ended'}; "
                         f"{se.strip()})")

        def all_ended():
            ts = tasks(job, env)
            if ts.get(busiest, ("",))[0] == "PENDING":
                # Slurm holds a requeued job back for two minutes (its begin time); start it now.
                sh(["scontrol", "update", f"jobid={job}_{busiest}", "StartTime=now"], env)
            return len(ts) == N_SHARDS and all(s[0] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
                                                         "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")
                                               for s in ts.values()) and ts[busiest][2] >= 1

        wait_for(all_ended, 900, "the array to end")
        ts = tasks(job, env)
        print("tasks:", ts)
        t.check(len(ts) == N_SHARDS and all(s[0] == "COMPLETED" and s[1] == "0:0" for s in ts.values()),
                f"all {N_SHARDS} array tasks completed with exit 0 ({ts})")
        t.check(ts.get(busiest, ("", "", 0))[2] == 1, f"task {busiest} ran twice: once requeued")

        done = {}
        for i in range(1, N_SHARDS + 1):
            ev, text = log_events(log[i])
            t.check(f"shard {i}/{N_SHARDS}" in text, f"task {i} ran shard {i}/{N_SHARDS}")
            for e in ev:
                if e.get("event") == "done":
                    done.setdefault(e["slide_id"], []).append(i)
            if i == busiest:
                starts = text.count("analyze-array: job")
                t.check(starts == 2 and "restart 1" in text, f"the requeued task appended a second run to its log")
                second = text[text.rfind("analyze-array: job"):]
                again = [e for e in t.json_lines(second) if e.get("event") == "done"]
                kept = [e for e in t.json_lines(second) if e.get("event") == "skipped"]
                head = t.json_lines(text[:text.rfind("analyze-array: job")])
                print(f"requeued shard {i}: first run: " +
                      ", ".join(f"{e['event']} {e.get('slide_id')}" for e in head if e.get("event") != "start"))
                print(f"requeued shard {i}: second run: done {[e['slide_id'] for e in again]}, "
                      f"skipped {[e['slide_id'] for e in kept]}")
                t.check(sorted([e["slide_id"] for e in again] + [e["slide_id"] for e in kept]) == per_shard[i],
                        "after the requeue the shard's slides are each done or skipped")
        for s, v in sorted(done.items()):
            print(f"{s}: done by shard(s) {v}")
        t.check(sorted(done) == ids and all(len(v) == 1 for v in done.values()),
                f"every slide analysed exactly once over the array ({done})")
        t.check(all(v[0] == shard_of(s, N_SHARDS) for s, v in done.items()), "each slide in its own shard")
        t.check(all(os.path.exists(os.path.join(out, s, "findings.json")) for s in ids), "8 findings.json in OUT")

        rc, so, se = t.run("batch", "merge", out, "--json")
        ms = json.loads(so) if so.strip() else {}
        t.check(rc == 0 and ms.get("complete") is True and ms.get("slides") == N_SLIDES and ms.get("done") == N_SLIDES
                and ms.get("missing") == 0, f"batch merge: complete, {N_SLIDES} done ({rc}, {se.strip()[-300:]})")
        t.check(sorted(r["slide_id"] for r in ms.get("results", [])) == ids
                and all(r["shard"] == r["expected_shard"] == f"{shard_of(r['slide_id'], N_SHARDS)}/{N_SHARDS}"
                        for r in ms.get("results", [])),
                "the merged summary lists every slide once with the shard that ran it")
        err = t.valid(ms, "manifest-summary.schema.json")
        t.check(err is None, f"the merged summary validates ({err})")
    finally:
        if started:
            subprocess.run(["bash", os.path.join(SLURM_DIR, "local-cluster.sh"), "stop", cluster], env=env,
                           capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
