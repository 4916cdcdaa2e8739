"""`histoplan serve` end to end: one batch of 6 slides, as a lab system sends them: three generated
slides, the real Aperio slide CMU-1-Small-Region.svs, a truncated slide and a text file named
.svs. Expected: 4 succeeded with findings (and tiles.csv, regions) identical to what
`histoplan analyze` writes for the same slides, 2 failed with clear messages that name no file;
one callback per job and one for the batch, received by a local receiver that refuses the first
attempts (so retries happen and are recorded), each signed per Standard Webhooks with the
token's secret and checked here with Python's hmac, each body matching the OpenAPI Callback
schema.
"""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
check = T.Checks()
contract = T.Contract(check)
tmp = T.tempdir("e2e")
data = os.path.join(tmp, "data")
root = os.path.join(tmp, "slides")
os.makedirs(root)
ACC = "S26-0101"

gen = [T.synth(os.path.join(root, f"Smith_John_{i}.tiff"), 2000 + 300 * i, 1600, 200 + i) for i in range(3)]
truncated = os.path.join(root, "Smith_John_cut.svs")
with open(gen[0], "rb") as f:
    blob = f.read()
with open(truncated, "wb") as f:
    f.write(blob[: len(blob) * 2 // 5])
text_svs = os.path.join(root, "Smith_John_notes.svs")
with open(text_svs, "w") as f:
    f.write("scanner export failed; see the lab notebook\n" * 20)
roots = ["--slide-root", root]
slides = gen[:]
have_cmu = os.path.exists(T.CMU)
if have_cmu:
    roots += ["--slide-root", os.path.dirname(T.CMU)]
    slides.append(T.CMU)
else:
    print("note: CMU-1-Small-Region.svs not found; a fourth generated slide stands in")
    slides.append(T.synth(os.path.join(root, "Smith_John_3.tiff"), 1800, 1800, 203))
slides += [truncated, text_svs]

sub = T.token(data, "submitter", "lis")
recv = T.Receiver(fail_first=3)
log = os.path.join(tmp, "serve.log")
srv = T.serve(data, log, roots + ["--workers", "1", "--callback-retry-base-ms", "200"])
c = T.Client(srv.url, contract)
S = sub["token"]
try:
    body = {"slides": [{"path": p, "case": ACC} for p in slides], "callback_url": recv.url}
    r = c("POST", "/v1/batches", S, body, {"Idempotency-Key": "e2e"})
    check(r.status == 201 and len(r.json()["jobs"]) == 6, "batch of 6 accepted")
    bid = r.json()["id"]
    t0 = time.time()
    done = T.wait_batch(c, S, bid, 900)
    print(f"batch done in {time.time() - t0:.1f} s")
    counts = done["counts"]
    check(counts["succeeded"] == 4 and counts["failed"] == 2, f"4 succeeded, 2 failed ({counts})")
    jobs = done["jobs"]
    for j in jobs[:4]:
        check(j["state"] == "succeeded" and j["results"] is not None, f"job {j['index']} succeeded")
    for j, what in ((jobs[4], "truncated slide"), (jobs[5], "text file named .svs")):
        e = j["error"] or {}
        msg = e.get("message", "")
        check(j["state"] == "failed" and e.get("permanent") is True and len(msg) > 10,
              f"{what}: failed at once, permanently: {msg!r}")
        check("Smith_John" not in msg and root not in msg and data not in msg,
              f"{what}: the message names no file or folder")
        check(j["attempts"] == 1, f"{what}: no retries of a permanent error")
    check("not a slide" in (jobs[5]["error"] or {}).get("message", ""), "the text file is called not a slide")

    # The same slides through `histoplan analyze`: identical findings and tiles.
    ref = os.path.join(tmp, "ref")
    rc, out, err = T.run(["analyze"] + slides[:4] + ["--model", T.MODEL, "--out", ref, "--case", ACC])
    check(rc == 0, f"histoplan analyze on the four good slides ({err.strip()[-200:]})")
    for j, path in zip(jobs[:4], slides[:4]):
        got = c("GET", f"/v1/jobs/{j['id']}/findings.json", S).json()
        sid = got["slide"]["slide_id"]
        with open(os.path.join(ref, sid, "findings.json")) as f:
            want = json.load(f)
        for d in (got, want):
            d.pop("generated_at", None)
            d.pop("timings_s", None)
        check(got == want, f"job {j['index']}: findings identical to histoplan analyze's (slide {sid})")
        for name in ("tiles.csv", "regions.geojson", "regions.xml"):
            r = c("GET", f"/v1/jobs/{j['id']}/{name}", S)
            with open(os.path.join(ref, sid, name), "rb") as f:
                check(r.body == f.read(), f"job {j['index']}: {name} identical byte for byte")
        check(j["slide"]["slide_id"] == sid, "the job names the slide id analyze uses")

    # Callbacks: 6 job events and 1 batch event, each delivered (after refusals), signed.
    deadline = time.time() + 60
    while time.time() < deadline and len({x["headers"].get("webhook-id") for x in recv.accepted()}) < 7:
        time.sleep(0.2)
    acc = recv.accepted()
    ids = {x["headers"]["webhook-id"] for x in acc}
    check(len(ids) == 7, f"7 callbacks delivered (6 jobs + the batch): {len(ids)}")
    check(len(recv.calls) >= 10, f"the first 3 attempts were refused and retried ({len(recv.calls)} requests)")
    events = {}
    for x in acc:
        h = x["headers"]
        ok = T.verify_signature(sub["webhook_secret"], h["webhook-id"], h["webhook-timestamp"], x["body"],
                                h["webhook-signature"])
        check(ok, f"callback {h['webhook-id']}: Standard Webhooks signature verified with hmac")
        check(abs(int(h["webhook-timestamp"]) - time.time()) < 600, "timestamp is current")
        bodyj = json.loads(x["body"])
        try:
            contract.validate("Callback", bodyj)
            check(True, "callback body matches the Callback schema")
        except Exception as e:  # noqa: BLE001
            check(False, f"callback body matches the Callback schema: {e}")
        events[h["webhook-id"]] = bodyj
    bad = T.verify_signature("whsec_" + "A" * 43 + "=", acc[0]["headers"]["webhook-id"],
                             acc[0]["headers"]["webhook-timestamp"], acc[0]["body"],
                             acc[0]["headers"]["webhook-signature"])
    check(not bad, "a signature does not verify under another secret")
    kinds = sorted(e["type"] for e in events.values())
    check(kinds.count("job.succeeded") == 4 and kinds.count("job.failed") == 2 and
          kinds.count("batch.completed") == 1, f"events: {kinds}")
    last = [e for e in events.values() if e["type"] == "batch.completed"]
    check(last and last[0]["data"]["counts"] == {"succeeded": 4, "failed": 2, "cancelled": 0},
          "batch.completed carries the counts")
    check(all(b"Smith_John" not in x["body"] for x in recv.calls), "no callback carries a file name")
    d = c("GET", f"/v1/batches/{bid}/deliveries", S).json()["deliveries"]
    check(len(d) == 7 and all(x["state"] == "delivered" for x in d), "deliveries: 7 delivered")
    refused = [a for x in d for a in x["attempts"] if a["status"] == 503]
    check(len(refused) == 3 and sum(len(x["attempts"]) for x in d) == 10,
          "every attempt is recorded: 3 refused (503), 7 accepted")
    check({x["id"] for x in d} == ids, "the webhook-ids are the deliveries' ids")
finally:
    rc = srv.terminate()
    recv.stop()
check(rc == 0, "stopped cleanly")
names = [n for _, ds, fs in os.walk(data) for n in ds + fs]
check(not any("Smith_John" in n or "CMU" in n for n in names), "no name under the data folder carries a slide file name")
with open(log, "rb") as f:
    check(b"Smith_John" not in f.read(), "no log line carries a slide file name")
rc, out, err = T.run(["serve", "audit", "verify", "--data", data])
check(rc == 0, f"audit chain verifies: {out.strip()}")
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
