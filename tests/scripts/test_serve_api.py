"""The HTTP API of `histoplan serve` against its contract, schemas/api.openapi.yaml: every
endpoint, every error status a client can get (400, 401, 403, 404, 405, 409, 413, 415, 416, 422,
429), every JSON body validated against the documented schema (python3-jsonschema, Draft
2020-12), problem responses as application/problem+json.

Also: idempotency (the same key and body answer the same batch with no new jobs; another body is
422; a key still being handled is 409; 20 concurrent identical POSTs make one batch), auth (no
token, an unknown token, a revoked one, the wrong role, one submitter reading another's batch),
pagination, results with ETag and Range, uploads with their hash checked, case reports, token
management, rate limiting, and privacy (the slide's file name, which here looks like a patient's,
appears in no response for another token, no file name under the data folder and no log line).
"""
import concurrent.futures
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
check = T.Checks()
contract = T.Contract(check)
tmp = T.tempdir("api")
data = os.path.join(tmp, "data")
roots = os.path.join(tmp, "slides")
os.makedirs(roots)
# A file name of the kind labs use: it carries a patient's name and record number.
PHI_NAME = "Doe_Jane_MRN778899"
slide_a = T.synth(os.path.join(roots, f"{PHI_NAME}.tiff"), 1400, 1200, 11)
slide_b = T.synth(os.path.join(roots, "second.tiff"), 1200, 1200, 12)

sub1 = T.token(data, "submitter", "lab one")
sub2 = T.token(data, "submitter", "lab two")
path_ = T.token(data, "pathologist", "dr reader")
admin = T.token(data, "admin", "ops")
S1, S2, P, A = sub1["token"], sub2["token"], path_["token"], admin["token"]

log = os.path.join(tmp, "serve.log")
srv = T.serve(data, log, ["--slide-root", roots, "--max-slides", "5", "--max-body", "65536",
                          "--max-upload", "3000000", "--rate-limit", "1000", "--workers", "1"])
c = T.Client(srv.url, contract)
H = {"Idempotency-Key": "k-1"}

try:
    # -- health and metrics --------------------------------------------------------------------
    r = c("GET", "/v1/health")
    check(r.status == 200 and r.json()["store"] == "sqlite", "health answers without a token")
    check(c("GET", "/v1/metrics").status == 401, "metrics need a token")
    r = c("GET", "/v1/metrics", S1)
    check(r.status == 200 and b"histoplan_jobs{state=\"queued\"}" in r.body and
          b"histoplan_http_request_duration_seconds_bucket" in r.body, "metrics in Prometheus text")

    # -- POST /v1/batches: refusals --------------------------------------------------------------
    good = {"slides": [{"path": slide_a, "case": "S26-7"}, {"path": slide_b, "case": "S26-7"}]}
    r = c("POST", "/v1/batches", S1, good)
    check(r.status == 400 and r.json().get("field") == "Idempotency-Key", "no Idempotency-Key: 400")
    check(c("POST", "/v1/batches", None, good, H).status == 401, "no token: 401")
    check(c("POST", "/v1/batches", "hp_" + "x" * 43, good, H).status == 401, "unknown token: 401")
    check(c("POST", "/v1/batches", "not-even-a-token", good, H).status == 401, "malformed token: 401")
    check(c("POST", "/v1/batches", P, good, H).status == 403, "pathologist may not submit: 403")
    check(c("POST", "/v1/batches", A, good, H).status == 403, "admin may not submit: 403")
    r = c("POST", "/v1/batches", S1, b"slides", {**H, "Content-Type": "text/plain"})
    check(r.status == 415, "text/plain body: 415")
    r = c("POST", "/v1/batches", S1, b"{\"slides\": [", {**H, "Content-Type": "application/json"})
    check(r.status == 400 and "JSON" in r.json()["detail"], "truncated JSON: 400")
    r = c("POST", "/v1/batches", S1, b"{\"slides\": \"\xff\xfe\"}", {**H, "Content-Type": "application/json"})
    check(r.status == 400 and "UTF-8" in r.json()["detail"], "invalid UTF-8: 400")
    deep = b"[" * 100 + b"]" * 100
    r = c("POST", "/v1/batches", S1, deep, {**H, "Content-Type": "application/json"})
    check(r.status == 400 and "deeper" in r.json()["detail"], "JSON nested 100 deep: 400")
    r = c("POST", "/v1/batches", S1, b"{\"slides\": []} x", {**H, "Content-Type": "application/json"})
    check(r.status == 400, "text after the JSON value: 400")
    big = json.dumps({"slides": [{"path": slide_a}], "pad": "x" * 70000}).encode()
    r = c("POST", "/v1/batches", S1, big, {**H, "Content-Type": "application/json"})
    check(r.status == 413, "body over --max-body: 413")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_a}] * 6}, H)
    check(r.status == 413 and r.json().get("field") == "/slides", "6 slides over --max-slides 5: 413")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_a}], "priority": 1}, H)
    check(r.status == 422 and r.json().get("field") == "/priority", "unknown field named: 422")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": "/etc/passwd"}]}, H)
    check(r.status == 422 and r.json().get("field") == "/slides/0/path", "path outside every slide root: 422")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": roots + "/../" + os.path.basename(tmp) + "/x.svs"}]}, H)
    check(r.status == 422 and r.json().get("field") == "/slides/0/path", "path with '..': 422")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_a, "mpp": 99}]}, H)
    check(r.status == 422 and r.json().get("field") == "/slides/0/mpp", "mpp out of range: 422")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_a, "slide_id": "a/b"}]}, H)
    check(r.status == 422 and r.json().get("field") == "/slides/0/slide_id", "bad slide_id: 422")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_a}], "model": "other@1"}, H)
    check(r.status == 422 and r.json().get("field") == "/model", "another model: 422")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_a}], "options": {"roi": [0, 0, -1, 5]}}, H)
    check(r.status == 422 and r.json().get("field") == "/options/roi", "bad roi: 422")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_a}], "callback_url": "ftp://x"}, H)
    check(r.status == 422 and r.json().get("field") == "/callback_url", "callback_url not http(s): 422")
    r = c("POST", "/v1/batches", S1, {"slides": [{"upload": "ab" * 32}]}, H)
    check(r.status == 422 and r.json().get("field") == "/slides/0/upload", "an upload never made: 422")
    # No probing: a missing file inside a root is answered exactly like an existing one.
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": roots + "/no-such-slide.svs"}]}, {"Idempotency-Key": "missing"})
    check(r.status == 201, "a missing file inside a root is accepted (the answer does not probe the file system)")
    missing_batch = r.json()["id"] if r.status == 201 else None

    # -- idempotency -----------------------------------------------------------------------------
    r1 = c("POST", "/v1/batches", S1, good, H)
    check(r1.status == 201 and r1.headers.get("location", "").startswith("/v1/batches/b_"), "batch created: 201 + Location")
    b1 = r1.json()
    check(len(b1["jobs"]) == 2 and all(j["state"] == "queued" for j in b1["jobs"]), "two queued jobs")
    n_jobs = len(c("GET", "/v1/jobs?limit=500", S1).json()["jobs"])
    r2 = c("POST", "/v1/batches", S1, good, H)
    check(r2.status == 201 and r2.headers.get("idempotent-replayed") == "true" and r2.body == r1.body,
          "same key, same body: the same answer, marked as replayed")
    check(len(c("GET", "/v1/jobs?limit=500", S1).json()["jobs"]) == n_jobs, "the replay made no new jobs")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_b}]}, H)
    check(r.status == 422 and r.json()["type"].endswith("/idempotency-key-reused"), "same key, another body: 422")
    r = c("POST", "/v1/batches", S2, good, H)
    check(r.status == 201 and r.json()["id"] != b1["id"], "keys are per token: another token's k-1 is its own")
    # A request with this key still being handled (its process holds the key as pending).
    body_pending = {"slides": [{"path": slide_b}]}
    canon = json.dumps(body_pending, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    db = sqlite3.connect(os.path.join(data, "histoplan.db"), timeout=30)
    now = int(time.time() * 1000)
    db.execute("INSERT INTO idempotency (token_id, idem_key, body_sha256, state, created_ms, expires_ms) "
               "VALUES (?, 'pending-key', ?, 'pending', ?, ?)",
               (sub1["id"], hashlib.sha256(canon.encode()).hexdigest(), now, now + 86400000))
    db.commit()
    db.close()
    r = c("POST", "/v1/batches", S1, body_pending, {"Idempotency-Key": "pending-key"})
    check(r.status == 409 and r.json()["type"].endswith("/request-in-progress") and "retry-after" in r.headers,
          "a retry while the first request is handled: 409 with Retry-After")
    # 20 identical POSTs at once: one batch.
    conc = {"slides": [{"path": slide_b, "case": "S26-8"}]}
    before = len(c("GET", "/v1/jobs?limit=500", S1).json()["jobs"])
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        rs = list(ex.map(lambda _: c("POST", "/v1/batches", S1, conc, {"Idempotency-Key": "storm"}), range(20)))
    ids = {x.json()["id"] for x in rs if x.status == 201}
    statuses = sorted({x.status for x in rs})
    check(len(ids) == 1 and set(statuses) <= {201, 409}, f"20 concurrent identical POSTs: one batch ({statuses})")
    after = len(c("GET", "/v1/jobs?limit=500", S1).json()["jobs"])
    check(after == before + 1, f"...and exactly one new job ({after - before})")
    storm_batch = ids.pop() if ids else None

    # -- reading batches and jobs ----------------------------------------------------------------
    bid = b1["id"]
    check(c("GET", f"/v1/batches/{bid}", S1).status == 200, "owner reads its batch")
    r = c("GET", f"/v1/batches/{bid}", S2)
    check(r.status == 404, "another submitter gets 404 for it (no probing of ids)")
    r = c("GET", f"/v1/batches/{bid}", P)
    check(r.status == 200 and all(j["slide"]["path"] is None for j in r.json()["jobs"]),
          "a pathologist reads it without the slide paths")
    check(PHI_NAME.encode() not in r.body, "the slide's file name is not in the pathologist's answer")
    check(c("GET", f"/v1/batches/{bid}", A).status == 403, "admin reads no batches: 403")
    check(c("GET", "/v1/batches/b_notanid", S1).status == 404, "malformed batch id: 404")
    check(c("GET", "/v1/batches/" + "b_" + "a" * 26, S1).status == 404, "unknown batch id: 404")
    r = c("GET", "/v1/jobs?state=bogus", S1)
    check(r.status == 400 and r.json().get("field") == "state", "bad state filter: 400")
    check(c("GET", "/v1/jobs?limit=0", S1).status == 400, "limit 0: 400")
    check(c("GET", "/v1/jobs?cursor=zzz", S1).status == 400, "bad cursor: 400")
    check(c("GET", "/v1/jobs", S2).json()["jobs"] and
          all(j["batch_id"] != bid for j in c("GET", "/v1/jobs", S2).json()["jobs"]),
          "a submitter lists only its own jobs")
    # Pagination walks every job once.
    seen, cursor = [], None
    for _ in range(50):
        q = "/v1/jobs?limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = c("GET", q, P).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    every = [j["id"] for j in c("GET", "/v1/jobs?limit=500", P).json()["jobs"]]
    check(seen == every and len(every) >= 5, f"pages of 1 walk all {len(every)} jobs in order")
    r = c("GET", "/v1/jobs?case=S26-7", P)
    check(r.status == 200 and len(r.json()["jobs"]) == 4 and all(j["case"] == "S26-7" for j in r.json()["jobs"]),
          "filter by case")

    job0 = b1["jobs"][0]["id"]
    r = c("GET", f"/v1/jobs/{job0}/findings.json", S1)
    check(r.status in (409, 200), "results before success: 409 (or already done)")
    if r.status == 409:
        check(r.json()["type"].endswith("/conflict"), "...a conflict naming the state")
    done = T.wait_batch(c, S1, bid, 600)
    check(done["counts"]["succeeded"] == 2, "both jobs succeeded")
    j0 = c("GET", f"/v1/jobs/{job0}", S1).json()
    check(j0["progress"]["tiles_done"] == j0["progress"]["tiles_total"] > 0 and j0["progress"]["fraction"] == 1,
          "progress of a finished job: every tile done")
    check(j0["timings"]["run_seconds"] is not None and j0["attempts"] == 1, "timings and attempts")
    check(c("GET", f"/v1/jobs/{job0}", S2).status == 404, "another submitter's job: 404")

    # -- results ---------------------------------------------------------------------------------
    r = c("GET", f"/v1/jobs/{job0}/findings.json", S1)
    check(r.status == 200 and r.ctype == "application/json" and r.json()["slide"]["sha256"] ==
          hashlib.sha256(open(slide_a, "rb").read()).hexdigest(), "findings.json of the slide")
    etag = r.headers.get("etag")
    r = c("GET", f"/v1/jobs/{job0}/findings.json", S1, headers={"If-None-Match": etag})
    check(r.status == 304 and not r.body, "If-None-Match with the ETag: 304")
    full = c("GET", f"/v1/jobs/{job0}/heatmap.tiff", P)
    check(full.status == 200 and full.ctype == "image/tiff" and full.body[:2] in (b"II", b"MM"),
          "a pathologist fetches heatmap.tiff")
    r = c("GET", f"/v1/jobs/{job0}/heatmap.tiff", S1, headers={"Range": "bytes=10-99"})
    check(r.status == 206 and r.body == full.body[10:100] and
          r.headers.get("content-range") == f"bytes 10-99/{len(full.body)}", "Range: 206 with the right bytes")
    r = c("GET", f"/v1/jobs/{job0}/heatmap.tiff", S1, headers={"Range": "bytes=-16"})
    check(r.status == 206 and r.body == full.body[-16:], "suffix Range")
    r = c("GET", f"/v1/jobs/{job0}/heatmap.tiff", S1, headers={"Range": f"bytes={len(full.body) + 5}-"})
    check(r.status == 416 and r.headers.get("content-range") == f"bytes */{len(full.body)}", "Range past the end: 416")
    for name, ctype in [("regions.geojson", "application/geo+json"), ("regions.xml", "application/xml"),
                        ("overlay.png", "image/png"), ("tiles.csv", "text/csv")]:
        r = c("GET", f"/v1/jobs/{job0}/{name}", S1)
        check(r.status == 200 and r.ctype == ctype and len(r.body) > 0, f"{name} ({ctype})")
    check(c("GET", f"/v1/jobs/{job0}/mask.png", S1).status == 404, "a file that is not a result: 404")
    check(c("GET", f"/v1/jobs/{job0}/..%2F..%2Fhistoplan.db", S1).status == 404, "traversal in the file name: 404")
    check(c("GET", f"/v1/jobs/{job0}/findings.json", A).status == 403, "admin reads no results: 403")

    # -- the slide as tiles (tests/scripts/test_viewer_tiles.py checks the pixels) -----------------
    r = c("GET", f"/v1/slides/{job0}.dzi", S1)
    check(r.status == 200 and b"TileSize=\"254\"" in r.body, "the job's slide as Deep Zoom")
    r = c("GET", f"/v1/slides/{job0}_files/0/0_0.jpeg", P)
    check(r.status == 200 and r.ctype == "image/jpeg", "a Deep Zoom tile")
    check(c("GET", f"/v1/slides/{job0}.dzi", A).status == 403, "admin views no slide: 403")
    r = c("GET", f"/iiif/3/{job0}", S1)
    check(r.status == 303 and r.headers.get("location", "").endswith("/info.json"), "IIIF base: 303")
    check(c("GET", f"/iiif/3/{job0}/info.json", S1).status == 200, "IIIF info.json")
    r = c("GET", f"/v1/slides/{job0}/heatmaps", S1)
    check(r.status == 200 and [x["name"] for x in r.json()["layers"][-2:]] == ["uncertainty", "tissue"], "heatmap layers: the classes, uncertainty, tissue")
    layer0 = r.json()["layers"][0]["name"] if r.status == 200 else "x"
    check(c("GET", f"/v1/slides/{job0}/heatmaps/{layer0}.dzi", S1).status == 200, "a heatmap layer's .dzi")
    r = c("GET", f"/v1/slides/{job0}/heatmaps/{layer0}_files/0/0_0.png", P)
    check(r.status == 200 and r.ctype == "image/png", "a heatmap tile")
    r = c("POST", "/v1/session", None, {"token": P})
    cookie = r.headers.get("set-cookie", "").split(";")[0]
    check(r.status == 201 and cookie.startswith("hp_session=") and len(r.json()["csrf_token"]) == 43,
          "viewer login: a session cookie and a CSRF token")
    r = c("GET", "/v1/session", None, headers={"Cookie": cookie})
    check(r.status == 200 and r.json()["role"] == "pathologist", "the session stands for the pathologist")
    check(c("DELETE", "/v1/session", None, headers={"Cookie": cookie}).status == 403, "logout without the CSRF token: 403")
    check(c("DELETE", "/v1/session", P).status == 204, "DELETE /v1/session with a bearer token: 204")
    r = c("GET", f"/iiif/3/{job0}/0,0,64,64/32,/0/default.jpg", S1)
    check(r.status == 200 and r.ctype == "image/jpeg", "a IIIF image request")

    # -- the missing slide failed, with a message and no file name ----------------------------------
    mb = T.wait_batch(c, S1, missing_batch, 300)
    mj = mb["jobs"][0]
    check(mj["state"] == "failed" and mj["error"]["permanent"] and "no-such-slide" not in mj["error"]["message"],
          f"a missing slide fails at once with a message naming no file ({mj['error']})")

    # -- cancel ------------------------------------------------------------------------------------
    r = c("POST", f"/v1/jobs/{job0}/cancel", S1)
    check(r.status == 409, "cancelling a finished job: 409")
    check(c("POST", f"/v1/jobs/{job0}/cancel", P).status == 403, "a pathologist may not cancel: 403")
    check(c("POST", f"/v1/batches/{bid}/cancel", S1).status == 409, "cancelling a done batch: 409")
    many = {"slides": [{"path": slide_a}, {"path": slide_b}, {"path": slide_a}, {"path": slide_b}]}
    r = c("POST", "/v1/batches", S1, many, {"Idempotency-Key": "to-cancel"})
    cb = r.json()["id"]
    r = c("POST", f"/v1/batches/{cb}/cancel", S1)
    check(r.status == 200 and r.json()["counts"]["cancelled"] >= 3, "batch cancel: the jobs not started are cancelled")
    r = c("POST", f"/v1/batches/{cb}/cancel", S2)
    check(r.status == 404, "another submitter cannot cancel it: 404")
    cdone = T.wait_batch(c, S1, cb, 300)
    check(cdone["counts"]["failed"] == 0 and cdone["counts"]["cancelled"] + cdone["counts"]["succeeded"] == 4,
          f"a cancelled job is cancelled, not failed ({cdone['counts']})")
    r = c("POST", "/v1/batches", S1, {"slides": [{"path": slide_b}] * 2}, {"Idempotency-Key": "job-cancel"})
    qj = r.json()["jobs"][1]["id"]
    r = c("POST", f"/v1/jobs/{qj}/cancel", S1)
    check(r.status in (200, 202), f"cancel one job: {r.status}")
    T.wait_batch(c, S1, r.json()["batch_id"], 300)
    check(c("GET", f"/v1/jobs/{qj}", S1).json()["state"] == "cancelled", "...it ends cancelled")
    check(c("GET", f"/v1/batches/{cb}/deliveries", S1).json()["deliveries"] == [], "no callback URL, no deliveries")
    check(c("GET", f"/v1/batches/{cb}/deliveries", S2).status == 404, "another's deliveries: 404")

    # -- uploads -----------------------------------------------------------------------------------
    blob = open(slide_b, "rb").read()
    sha = hashlib.sha256(blob).hexdigest()
    octet = {"Content-Type": "application/octet-stream"}
    r = c("PUT", f"/v1/uploads/{sha}", S2, blob, octet)
    check(r.status == 201 and r.json() == {"upload": sha, "size": len(blob)}, "upload stored: 201")
    check(c("PUT", f"/v1/uploads/{sha}", S2, blob, octet).status == 200, "the same upload again: 200")
    r = c("PUT", f"/v1/uploads/{'0' * 64}", S2, blob, octet)
    check(r.status == 422 and r.json().get("field") == "sha256", "bytes that do not hash to the path: 422")
    check(c("PUT", f"/v1/uploads/{sha}", S2, blob, {"Content-Type": "image/tiff"}).status == 415,
          "upload as image/tiff: 415")
    check(c("PUT", "/v1/uploads/XYZ", S2, blob, octet).status == 400, "a path that is not a SHA-256: 400")
    check(c("PUT", f"/v1/uploads/{sha}", S2, b"x" * 3000001, octet).status == 413, "over --max-upload: 413")
    check(c("PUT", f"/v1/uploads/{sha}", P, blob, octet).status == 403, "a pathologist may not upload: 403")
    r = c("POST", "/v1/batches", S1, {"slides": [{"upload": sha}]}, {"Idempotency-Key": "u1"})
    check(r.status == 422, "a token may use only its own uploads: 422")
    r = c("POST", "/v1/batches", S2, {"slides": [{"upload": sha, "case": "S26-9"}]}, {"Idempotency-Key": "u1"})
    check(r.status == 201 and r.json()["jobs"][0]["slide"]["upload"] == sha, "batch from an upload: 201")
    ub = T.wait_batch(c, S2, r.json()["id"], 300)
    check(ub["counts"]["succeeded"] == 1, "the uploaded slide is analyzed")
    leftovers = [n for n in os.listdir(os.path.join(data, "uploads")) if n.startswith(".incoming")]
    check(not leftovers, "no half-written upload is left behind")

    # -- case reports ------------------------------------------------------------------------------
    case = {"accession": "S26-7", "specimen": {"procedure": "core needle biopsy", "laterality": "left"}}
    check(c("POST", "/v1/cases/S26-7/report", S1, case).status == 403, "a submitter may not build reports: 403")
    r = c("POST", "/v1/cases/S26-404/report", P, {"accession": "S26-404"})
    check(r.status == 409, "a case without succeeded jobs: 409")
    r = c("POST", "/v1/cases/S26-7/report", P, {"accession": "S26-8"})
    check(r.status == 422 and r.json().get("field") == "/accession", "a case file of another case: 422")
    r = c("POST", "/v1/cases/S26-7/report", P, {"accession": "S26-7", "bogus": 1})
    check(r.status == 422, f"a case file the report builder refuses: 422 ({r.json().get('detail', '')[:80]})")
    r = c("POST", "/v1/cases/S26-7/report", P, case)
    check(r.status == 201 and r.json()["slides"] == 2, f"report built from the case's two slides (analyzed twice: the newest findings of each) ({r.status} {r.body[:300]!r})")
    r = c("GET", "/v1/cases/S26-7/report.json", P)
    check(r.status == 200 and r.json()["status"] == "preliminary", "report.json")
    check(c("GET", "/v1/cases/S26-7/report.fhir.json", P).ctype == "application/fhir+json", "report.fhir.json")
    check(c("GET", "/v1/cases/S26-7/report.html", P).ctype.startswith("text/html"), "report.html")
    check(c("GET", "/v1/cases/S26-7/report.pdf", P).status == 404, "unknown report file: 404")
    check(c("GET", "/v1/cases/NOPE/report.json", P).status == 404, "unknown case: 404")
    check(not any("S26-7" in n for _, ds, fs in os.walk(data) for n in ds + fs),
          "no file name under the data folder carries the accession number")

    # -- worklist and review ----------------------------------------------------------------------
    r = c("GET", "/v1/worklist", P)
    rows = [x for x in r.json()["rows"] if x["case"] == "S26-7" and x["state"] == "succeeded"] if r.status == 200 else []
    check(rows and rows[0]["report"] and rows[0]["report"]["status"] == "preliminary" and rows[0]["report"]["revision"] == 0,
          f"worklist: the case's report is a draft ({rows[:1]})")
    check(c("GET", "/v1/worklist", S1).status == 403, "a submitter has no worklist: 403")
    check(c("GET", "/v1/worklist?state=bogus", P).status == 400, "worklist, an unknown state: 400")
    rj = rows[0]["job"] if rows else "j_" + "a" * 26
    check([x["job"] for x in c("GET", f"/v1/worklist?job={rj}", P).json()["rows"]] == [rj], "worklist, one job")
    feats = c("GET", f"/v1/jobs/{rj}/regions.geojson", P).json()["features"]
    rid, rcls = feats[0]["properties"]["name"], feats[0]["properties"]["classification"]["name"]
    r = c("PUT", f"/v1/jobs/{rj}/review/{rid}", P, {"decision": "accept", "comment": "agree"})
    check(r.status == 200 and r.json()["decision"] == "accept", f"a decision on region {rid}")
    check(c("PUT", f"/v1/jobs/{rj}/review/{rid}", S1, {"decision": "accept"}).status == 403, "submitters do not review: 403")
    check(c("PUT", f"/v1/jobs/{rj}/review/R999", P, {"decision": "accept"}).status == 404, "a region the job lacks: 404")
    check(c("PUT", f"/v1/jobs/{rj}/review/{rid}", P, {"decision": "maybe"}).status == 422, "an unknown decision: 422")
    check(c("PUT", f"/v1/jobs/{rj}/review/{rid}", P, {"decison": "accept"}).status == 422, "a misspelt field: 422")
    ring = [[1, 1], [60, 1], [60, 60], [1, 1]]
    r = c("POST", f"/v1/jobs/{rj}/annotations", P, {"class": rcls, "geometry": {"type": "Polygon", "coordinates": [ring]}})
    check(r.status == 201, "a drawn region: 201")
    aid = r.json().get("id", "a_" + "a" * 26)
    check(c("POST", f"/v1/jobs/{rj}/annotations", P, {"class": "nope", "geometry": {"type": "Polygon", "coordinates": [ring]}}).status == 422,
          "a drawn region of a class the model lacks: 422")
    check(c("POST", f"/v1/jobs/{rj}/annotations", P, {"class": rcls, "geometry": {"type": "Polygon", "coordinates": [ring[:3]]}}).status == 422,
          "an open ring: 422")
    r = c("GET", f"/v1/jobs/{rj}/review", P)
    check(r.status == 200 and len(r.json()["decisions"]) == 1 and len(r.json()["annotations"]) == 1, "the review lists both")
    check(c("GET", f"/v1/jobs/{rj}/review.geojson", P).status == 200, "the slide's review.geojson")
    check(c("GET", "/v1/cases/S26-7/review.geojson", P).status == 200, "the case's review.geojson")
    check(c("GET", "/v1/cases/NOPE/review.geojson", P).status == 404, "review.geojson of an unknown case: 404")
    r = c("PUT", f"/v1/jobs/{rj}/review/{rid}", P, {"decision": None, "comment": None})
    check(r.status == 200 and r.json()["withdrawn"] and not c("GET", f"/v1/jobs/{rj}/review", P).json()["decisions"],
          "a decision withdrawn")
    check(c("DELETE", f"/v1/jobs/{rj}/annotations/{aid}", P).status == 204, "the drawn region deleted by its author: 204")
    check(c("DELETE", f"/v1/jobs/{rj}/annotations/{aid}", P).status == 404, "deleted twice: 404")
    r = c("POST", "/v1/cases/S26-7/sign", P, {"passphrase": "x"})
    check(r.status == 409 and "signer add" in r.json()["detail"], "signing with no enrolled key: 409 (test_viewer_review signs)")
    check(c("POST", "/v1/cases/S26-7/sign", P, {"passphrase": ""}).status == 422, "signing with an empty passphrase: 422")
    check(c("POST", "/v1/cases/S26-7/sign", S1, {"passphrase": "x"}).status == 403, "a submitter may not sign: 403")
    r = c("GET", "/v1/cases/S26-7/report.json?revision=first", P)
    check(r.status == 400, "report.json?revision other than latest: 400")
    check(c("GET", "/v1/cases/S26-7/report.json?revision=latest", P).json()["status"] == "preliminary",
          "report.json?revision=latest before signing: the draft")

    # -- tokens ------------------------------------------------------------------------------------
    r = c("GET", "/v1/tokens", A)
    check(r.status == 200 and len(r.json()["tokens"]) == 4 and b"hp_" not in r.body, "admin lists tokens, never the tokens")
    check(c("GET", "/v1/tokens", S1).status == 403, "a submitter may not list tokens: 403")
    r = c("POST", "/v1/tokens", A, {"role": "submitter", "name": "temp"})
    check(r.status == 201, "admin creates a token")
    tmp_tok = r.json()
    check(c("GET", "/v1/jobs", tmp_tok["token"]).status == 200, "the new token works")
    check(c("POST", "/v1/tokens", A, {"role": "emperor", "name": "x"}).status == 422, "unknown role: 422")
    check(c("POST", f"/v1/tokens/{tmp_tok['id']}/revoke", A).status == 200, "revoked")
    r = c("GET", "/v1/jobs", tmp_tok["token"])
    check(r.status == 401 and r.headers.get("www-authenticate", "").startswith("Bearer"), "a revoked token: 401")
    check(c("POST", f"/v1/tokens/{tmp_tok['id']}/revoke", A).status == 404, "revoking twice: 404")
    rc, out, err = T.run(["serve", "token", "revoke", "--data", data, sub2["id"]])
    check(rc == 0 and c("GET", "/v1/jobs", S2).status == 401, "revoked from the command line: 401 at once")

    # -- methods and paths -------------------------------------------------------------------------
    r = T.request(srv.url, "DELETE", "/v1/jobs", S1)
    check(r.status == 405 and "GET" in r.headers.get("allow", ""), "DELETE /v1/jobs: 405 with Allow")
    check(r.ctype.startswith("application/problem+json"), "...as a problem")
    contract.seen.add(("DELETE", "/v1/jobs", r.status))
    r = T.request(srv.url, "GET", "/v2/anything", S1)
    check(r.status == 404 and r.ctype.startswith("application/problem+json"), "unknown path: 404 problem")
    r = T.request(srv.url, "HEAD", f"/v1/jobs/{job0}/heatmap.tiff", S1)
    check(r.status == 200 and int(r.headers.get("content-length", "0")) == len(full.body) and not r.body,
          "HEAD of a result: its length, no body")
finally:
    rc = srv.terminate()
check(rc == 0, "SIGTERM: the server stops cleanly")

# -- rate limiting -----------------------------------------------------------------------------
srv = T.serve(data, log, ["--rate-limit", "2", "--workers", "0"])
try:
    c = T.Client(srv.url, contract)
    rs = [c("GET", "/v1/jobs?limit=1", S1) for _ in range(12)]
    limited = [x for x in rs if x.status == 429]
    check(limited and all(x.headers.get("retry-after", "").isdigit() for x in limited),
          f"12 requests at once under --rate-limit 2: {len(limited)} answered 429 with Retry-After")
    check(c("GET", "/v1/health").status == 200, "health is never rate limited (no token)")
    time.sleep(int(limited[0].headers["retry-after"]) + 0.5 if limited else 0)
    check(c("GET", "/v1/jobs?limit=1", S1).status == 200, "after Retry-After the token is served again")
finally:
    srv.terminate()

# -- coverage of the contract and privacy ------------------------------------------------------
statuses = {s for _, _, s in contract.seen}
for s in (400, 401, 403, 404, 405, 409, 413, 415, 416, 422, 429):
    check(s in statuses, f"status {s} was exercised")
ops = {(m, t) for _, t, m, _ in contract.ops}
covered = {(m, t) for m, t, _ in contract.seen}
check(ops <= covered, f"every operation of the API was exercised (missing: {sorted(ops - covered)})")
names = [n for _, ds, fs in os.walk(data) for n in ds + fs]
check(not any(PHI_NAME in n for n in names), "no file name under the data folder carries the slide's file name")
with open(log, "rb") as f:
    text = f.read()
check(PHI_NAME.encode() not in text and b"S26-7" not in text, "no log line carries the slide's file name or an accession")
rc, out, err = T.run(["serve", "audit", "verify", "--data", data])
check(rc == 0 and "verified" in out, f"the audit chain verifies ({out.strip()})")
with open(os.path.join(data, "histoplan.db"), "rb") as f:
    pass
db = sqlite3.connect(os.path.join(data, "histoplan.db"))
lines = [row[0] for row in db.execute("SELECT line FROM audit")]
db.close()
check(not any(PHI_NAME in ln or "S26-7" in ln for ln in lines), "no audit line carries PHI")
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
