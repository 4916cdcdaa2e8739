"""Crash safety of `histoplan serve` with its SQLite store:

1. 20 rounds of `kill -9` at a random moment during a 10-slide batch (some rounds while a client
   retries the submission with the same Idempotency-Key), each followed by a restart; then the
   batch finishes. Every job ends exactly once (one terminal event per job in the audit chain),
   every job has exactly one result folder and no partial folder is left anywhere, every result
   is identical to `histoplan analyze`'s, the submission made exactly one batch, every callback
   arrived (receivers de-duplicate by webhook-id: one id per job and one for the batch), and the
   audit chain verifies.
2. A crash between the commit of a job's end and the delivery of its callback: the receiver
   refuses while the job ends, the server is killed, the receiver accepts again, and after the
   restart the callback arrives with the same webhook-id.
3. SIGTERM while a slide is analyzed, with no grace: the job is handed back to the queue (its
   attempt not counted), the process exits 0, and the next start finishes it.

HP_CRASH_SEED fixes the random moments (printed, so a failure can be replayed)."""
import json
import os
import random
import shutil
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
check = T.Checks()
seed = int(os.environ.get("HP_CRASH_SEED", str(int(time.time()))))
rng = random.Random(seed)
print(f"seed {seed} (HP_CRASH_SEED)")
tmp = T.tempdir("crash")
data = os.path.join(tmp, "data")
root = os.path.join(tmp, "slides")
os.makedirs(root)
slides = [T.synth(os.path.join(root, f"s{i}.tiff"), 1500 + 100 * (i % 4), 1300, 300 + i) for i in range(10)]
sub = T.token(data, "submitter", "lis")
S = sub["token"]
recv = T.Receiver()
log = os.path.join(tmp, "serve.log")
ARGS = ["--slide-root", root, "--workers", "1", "--max-attempts", "100", "--retry-base-ms", "0",
        "--callback-retry-base-ms", "100", "--lease-seconds", "20", "--heartbeat-seconds", "2"]
body = {"slides": [{"path": p, "case": "S26-CR"} for p in slides], "callback_url": recv.url}
KEY = {"Idempotency-Key": "crash-batch"}


def audit_lines():
    db = sqlite3.connect(os.path.join(data, "histoplan.db"), timeout=30)
    rows = [json.loads(r[0]) for r in db.execute("SELECT line FROM audit ORDER BY seq")]
    db.close()
    return rows


# ---- 1. kill -9 rounds --------------------------------------------------------------------------
batch_id = None
kills_while_running = 0
for rnd in range(20):
    srv = T.serve(data, log, ARGS)
    c = T.Client(srv.url, None)
    if batch_id is None:
        r = c("POST", "/v1/batches", S, body, KEY)
        check(r.status == 201, "round 0: batch accepted")
        batch_id = r.json()["id"]
    retry = None
    if rnd % 3 == 1:
        # A client retrying its submission while the server dies under it.
        def resubmit(url=srv.url):
            try:
                T.request(url, "POST", "/v1/batches", S, body, KEY, timeout=10)
            except Exception:  # noqa: BLE001 - the connection may die with the server
                pass
        retry = threading.Thread(target=resubmit)
        retry.start()
    time.sleep(rng.uniform(0.2, 2.5))
    try:
        b = T.request(srv.url, "GET", f"/v1/batches/{batch_id}", S, timeout=5).json()
        kills_while_running += b["counts"]["running"]
    except Exception:  # noqa: BLE001
        pass
    srv.kill9()
    if retry:
        retry.join()
print(f"20 kill -9 rounds done; {kills_while_running} of them hit a running analysis")
check(kills_while_running >= 5, f"at least 5 kills hit a running analysis ({kills_while_running})")

srv = T.serve(data, log, ARGS)
c = T.Client(srv.url, None)
done = T.wait_batch(c, S, batch_id, 900)
r = c("POST", "/v1/batches", S, body, KEY)
check(r.status == 201 and r.json()["id"] == batch_id, "the retried submission answers the same batch")
check(len(c("GET", "/v1/jobs?limit=500", S).json()["jobs"]) == 10, "one batch, 10 jobs: no duplicate submission")
check(done["counts"]["succeeded"] == 10, f"all 10 jobs succeeded ({done['counts']})")
deadline = time.time() + 60
while time.time() < deadline and len({x["headers"]["webhook-id"] for x in recv.accepted()}) < 11:
    time.sleep(0.2)
srv.terminate()

lines = audit_lines()
terminal = {}
for ln in lines:
    if ln["event"] in ("job.succeeded", "job.failed", "job.cancelled"):
        terminal.setdefault(ln["details"]["job"], []).append(ln["event"])
check(len(terminal) == 10 and all(len(v) == 1 for v in terminal.values()),
      f"every job ended exactly once in the audit chain ({sorted(len(v) for v in terminal.values())})")
restarts = sum(1 for ln in lines if ln["event"] in ("job.requeue",))
print(f"{restarts} interrupted runs went back to the queue")
check(restarts >= 5, f"interrupted runs were requeued and rerun ({restarts})")
partial = [os.path.join(d, n) for d, ds, fs in os.walk(data) for n in ds + fs if n.endswith(".partial")]
check(not partial, f"no partial folder is left ({partial[:3]})")
ref = os.path.join(tmp, "ref")
rc, out, err = T.run(["analyze"] + slides + ["--model", T.MODEL, "--out", ref, "--case", "S26-CR"])
check(rc == 0, "histoplan analyze on the same 10 slides")
for j in done["jobs"]:
    jd = os.path.join(data, "results", j["id"])
    runs = os.listdir(jd)
    check(len(runs) == 1 and os.listdir(os.path.join(jd, runs[0])) == [j["slide"]["slide_id"]],
          f"job {j['index']}: exactly one result folder ({runs})")
    res = os.path.join(jd, runs[0], j["slide"]["slide_id"])
    with open(os.path.join(res, "findings.json")) as f:
        got = json.load(f)
    with open(os.path.join(ref, j["slide"]["slide_id"], "findings.json")) as f:
        want = json.load(f)
    for d in (got, want):
        d.pop("generated_at", None)
        d.pop("timings_s", None)
    same_tiles = open(os.path.join(res, "tiles.csv"), "rb").read() == \
        open(os.path.join(ref, j["slide"]["slide_id"], "tiles.csv"), "rb").read()
    check(got == want and same_tiles, f"job {j['index']}: results identical to histoplan analyze's")
ids = {}
for x in recv.accepted():
    ids.setdefault(x["headers"]["webhook-id"], json.loads(x["body"]))
kinds = [v["type"] for v in ids.values()]
per_job = {}
for v in ids.values():
    if v["type"].startswith("job."):
        per_job.setdefault(v["data"]["job_id"], 0)
        per_job[v["data"]["job_id"]] += 1
check(len(ids) == 11 and kinds.count("batch.completed") == 1 and len(per_job) == 10 and
      all(n == 1 for n in per_job.values()),
      f"callbacks: one webhook-id per job and one for the batch ({len(ids)} ids)")
rc, out, err = T.run(["serve", "audit", "verify", "--data", data])
check(rc == 0, f"the audit chain verifies after 20 crashes: {out.strip()}{err.strip()}")

# ---- 2. crash between commit and callback ----------------------------------------------------
recv.accept = False
srv = T.serve(data, log, ARGS)
c = T.Client(srv.url, None)
r = c("POST", "/v1/batches", S, {"slides": [{"path": slides[0]}], "callback_url": recv.url},
      {"Idempotency-Key": "cb-crash"})
b2 = r.json()["id"]
T.wait_batch(c, S, b2, 300)
deadline = time.time() + 30
while time.time() < deadline:
    d = c("GET", f"/v1/batches/{b2}/deliveries", S).json()["deliveries"]
    if len(d) == 2 and all(x["attempts"] for x in d):
        break
    time.sleep(0.1)
refused_ids = {x["id"] for x in d}
check(len(refused_ids) == 2 and all(x["state"] == "pending" for x in d),
      "the job ended and its callbacks were refused: still pending")
srv.kill9()
recv.accept = True
srv = T.serve(data, log, ARGS)
deadline = time.time() + 30
while time.time() < deadline and not refused_ids <= {x["headers"]["webhook-id"] for x in recv.accepted()}:
    time.sleep(0.2)
got = [x["headers"]["webhook-id"] for x in recv.accepted() if x["headers"]["webhook-id"] in refused_ids]
check(set(got) == refused_ids, "after the crash both callbacks arrived, with their original webhook-ids")
srv.terminate()

# ---- 3. SIGTERM during an analysis ----------------------------------------------------------
big = T.synth(os.path.join(root, "big.tiff"), 5000, 4000, 999)
srv = T.serve(data, log, ARGS + ["--stop-grace-seconds", "0"])
c = T.Client(srv.url, None)
r = c("POST", "/v1/batches", S, {"slides": [{"path": big}]}, {"Idempotency-Key": "term"})
b3, j3 = r.json()["id"], r.json()["jobs"][0]["id"]
deadline = time.time() + 60
while time.time() < deadline and c("GET", f"/v1/jobs/{j3}", S).json()["state"] != "running":
    time.sleep(0.05)
rc = srv.terminate()
check(rc == 0, "SIGTERM during an analysis: exit 0")
events = [ln["event"] for ln in audit_lines() if ln["details"].get("job") == j3]
check(events[-1] == "job.release", f"the running job was handed back to the queue ({events})")
srv = T.serve(data, log, ARGS)
c = T.Client(srv.url, None)
b = T.wait_batch(c, S, b3, 600)
check(b["counts"]["succeeded"] == 1 and b["jobs"][0]["attempts"] == 1,
      f"the next start finished it, the handed-back run not counted as an attempt ({b['jobs'][0]['attempts']})")
srv.terminate()
recv.stop()
rc, out, err = T.run(["serve", "audit", "verify", "--data", data])
check(rc == 0, f"the audit chain verifies: {out.strip()}")
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
