"""The pathologist's review in the viewer, in a real browser: Debian's chromium driven by
playwright-core (tests/js/viewer-review.js), against `histoplan serve` with a generated slide
analyzed and its case's report built.

Checked, as two pathologists would use it:
- the worklist shows each job's suggested category, QC and report status, as the API has them;
- the report panel beside the slide shows the report's status, category, every statement, the
  care-plan suggestions with their clinician-approval state; a region named in a statement is a
  link that centres the view on that region and opens it for review;
- the first pathologist accepts one region, rejects another with a comment, accepts the
  category and draws a region (clicks add points without zooming); after a reload all of it is
  there again, from the server;
- a second pathologist sees the first one's decisions attributed to them (by name), cannot
  delete the first one's drawn region (no button; the API answers 403), and rejects it; the first
  pathologist then sees that rejection, attributed; a wrong CSRF token (403) and no session (401)
  are refused;
- GET /v1/cases/{case}/review.geojson has every region as a QuPath annotation feature
  (objectType, classification name and colour) with the decisions attributed, the drawn region
  with its author, and the category decision; the audit chain records each change (ids and
  decisions, never the comment text) and still verifies;
- signing from the report panel with the first pathologist's own enrolled key (encrypted with
  their passphrase; the signer registry binds it to their id): a wrong passphrase is refused and
  said so; the right one signs; the panel and the worklist show the signed revision; `histoplan
  report verify` accepts it with the registry; signing again is refused (409); after five wrong
  passphrases the sixth attempt is locked out (429 with Retry-After); a pathologist with no
  enrolled key is told how to get one (409);
- over the real Aperio slide (skin, outside the default model's domain) the viewer says first,
  over the slide, that the model is not valid for it, and its worklist row says "out of domain";
  no such warning over the generated slide;
- no console error on either page. The screenshots docs/viewer-worklist.png,
  docs/viewer-review.png and docs/viewer-signed.png are written for the docs when HP_UPDATE_DOCS=1.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
SRC = T.SRC
JS, chromium = T.require_browser()

check = T.Checks()
tmp = T.tempdir("viewer-review")
data = os.path.join(tmp, "data")
roots = os.path.join(tmp, "slides")
os.makedirs(roots)
CASE = "S26-200"
slide = T.synth(os.path.join(roots, "case.tiff"), 2400, 1800, 21)
S = T.token(data, "submitter", "lab")["token"]
P = T.token(data, "pathologist", "Dr Viewer")["token"]
P2 = T.token(data, "pathologist", "Dr Second")["token"]
# The first pathologist's own key, encrypted with their passphrase, enrolled on the server and
# bound to their id in the server's signer registry.
PASS = "correct horse battery staple"
key, pub = os.path.join(tmp, "dr-viewer.enc.pem"), os.path.join(tmp, "dr-viewer.pub.pem")
subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-aes-256-cbc", "-pass", "pass:" + PASS, "-out", key], check=True)
subprocess.run(["openssl", "pkey", "-in", key, "-passin", "pass:" + PASS, "-pubout", "-out", pub], check=True)
p_id = [t["id"] for t in json.loads(T.run(["serve", "token", "list", "--data", data, "--json"])[1]) if t["name"] == "Dr Viewer"][0]
registry = os.path.join(data, "signers", "registry.json")
os.makedirs(os.path.dirname(registry), exist_ok=True)
rc, o, e = T.run(["report", "signers", "add", "--pathologist", "dr-viewer", "--pubkey", pub, "--registry", registry])
check(rc == 0, f"the key is bound to dr-viewer in the server's signer registry ({e.strip()[-200:]})")
rc, o, e = T.run(["serve", "signer", "add", "--data", data, "--token", p_id, "--pathologist", "dr-viewer", "--key", pub])
check(rc == 1 and "not an encrypted PKCS#8 private key" in e, f"enrolling a key that is not encrypted is refused ({e.strip()[-160:]})")
rc, o, e = T.run(["serve", "signer", "add", "--data", data, "--token", p_id, "--pathologist", "dr-viewer", "--key", key])
check(rc == 0, f"the encrypted key is enrolled for the first pathologist ({(o + e).strip()[-200:]})")
# The real Aperio slide (skin) is outside the default model's domain: the viewer says so over it.
have_cmu = os.path.exists(T.CMU)
if not have_cmu and os.environ.get("HP_REQUIRE_SHARED"):
    check(False, f"{T.CMU} is missing (HP_REQUIRE_SHARED is set)")
extra_root = ["--slide-root", os.path.dirname(T.CMU)] if have_cmu else []
srv = T.serve(data, os.path.join(tmp, "serve.log"), ["--slide-root", roots, *extra_root, "--rate-limit", "0", "--workers", "1"])
try:
    r = T.request(srv.url, "POST", "/v1/batches", S, {"slides": [{"path": slide, "case": CASE}]},
                  {"Idempotency-Key": "r1"})
    jid = r.json()["jobs"][0]["id"]
    b = T.wait_batch(T.Client(srv.url, None), S, r.json()["id"], 900)
    if not check(b["jobs"][0]["state"] == "succeeded", "the slide was analyzed"):
        raise SystemExit(check.exit())
    ood_job = ""
    if have_cmu:
        r = T.request(srv.url, "POST", "/v1/batches", S, {"slides": [{"path": T.CMU}]}, {"Idempotency-Key": "r2"})
        ood_job = r.json()["jobs"][0]["id"]
        ob = T.wait_batch(T.Client(srv.url, None), S, r.json()["id"], 900)
        check(ob["jobs"][0]["state"] == "succeeded", "the real slide was analyzed")
    r = T.request(srv.url, "POST", f"/v1/cases/{CASE}/report", P,
                  {"accession": CASE, "specimen": {"procedure": "core needle biopsy", "laterality": "left"}})
    if not check(r.status == 201, f"the case's report was built ({r.status})"):
        raise SystemExit(check.exit())
    report = T.request(srv.url, "GET", f"/v1/cases/{CASE}/report.json", P).json()
    slide_id = T.request(srv.url, "GET", f"/v1/jobs/{jid}", P).json()["slide"]["slide_id"]

    out = os.path.join(tmp, "shots")
    os.makedirs(out)
    docs = T.screenshots_dir(out)
    env = dict(os.environ, HP_URL=srv.url, HP_TOKEN=P, HP_TOKEN2=P2, HP_JOB=jid, HP_OUT=out, HP_DOCS=docs,
               HP_CHROMIUM=chromium, HP_PASSPHRASE=PASS, HP_OOD_JOB=ood_job)
    p = subprocess.run(["node", os.path.join(JS, "viewer-review.js")], cwd=JS, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=500)
    if not check(p.returncode == 0, f"the browser run finished ({p.stderr[-2000:]})"):
        raise SystemExit(check.exit())
    res = json.loads(p.stdout.strip().splitlines()[-1])
    print(json.dumps(res, indent=1, ensure_ascii=False))

    # -- the worklist ------------------------------------------------------------------------------
    head, row = res["worklist_head"], res["worklist_row"]
    cols = {h: row[i] for i, h in enumerate(head) if i < len(row)}
    category = report["diagnosis"]["display"]
    check(cols.get("Category") == category, f"worklist: the suggested category ({cols.get('Category')})")
    check(cols.get("QC") == "none", f"worklist: QC of a clean generated slide ({cols.get('QC')})")
    check(cols.get("Report") == "draft, not signed", f"worklist: the report's status ({cols.get('Report')})")

    # -- the report panel --------------------------------------------------------------------------
    rp = res["report"]
    shown = [s for s in report["statements"] if s["section"] in ("diagnosis", "findings", "qc", "confidence", "model")]
    check(len(shown) == len(report["statements"]), "every statement section of the report has a place in the panel")
    check("preliminary draft, not signed" in rp["status"], f"report panel: status ({rp['status']})")
    check(rp["category"] == category and rp["side_category"] == category, f"report panel: category {rp['category']}")
    check(rp["statements"] == len(report["statements"]), f"report panel: {rp['statements']} statements of {len(report['statements'])}")
    want_links = sorted({e["region_id"] for s in report["statements"] for e in s.get("evidence") or []
                         if e.get("region_id") and e.get("slide_id") == slide_id})
    check(sorted(set(rp["links"])) == want_links and want_links, f"report panel: region links {sorted(set(rp['links']))} = {want_links}")
    sugg = report["care_plan"]["suggestions"]
    check(rp["suggestions"] == len(sugg) and len(sugg) > 0, f"report panel: {rp['suggestions']} care-plan suggestions")
    need = sum(1 for s in sugg if s["requires_clinician_approval"])
    check(sum("Requires clinician approval; decision: pending" in a for a in rp["approvals"]) == need,
          f"report panel: {need} suggestion(s) marked as requiring clinician approval, decision pending")
    lk = res.get("link") or {}
    bx = lk.get("bbox") or [0, 0, 0, 0]
    inside = bx[0] <= lk.get("centre", [-1, -1])[0] <= bx[0] + bx[2] and bx[1] <= lk.get("centre", [-1, -1])[1] <= bx[1] + bx[3]
    check(inside and lk.get("target") == lk.get("region"),
          f"a statement's region link centres the view on region {lk.get('region')} and opens it for review ({lk})")

    # -- the first pathologist's review, after a reload --------------------------------------------
    r0, r1 = res["regions"][0], res["regions"][1]
    want = sorted([{"target": "category", "decision": "accept", "comment": None},
                   {"target": r0, "decision": "accept", "comment": None},
                   {"target": r1, "decision": "reject", "comment": "not convincing at this magnification"}],
                  key=lambda d: d["target"])
    mine = lambda k: sorted(res[k], key=lambda d: d["target"])  # noqa: E731
    check(mine("before_reload") == want, f"decisions stored as made ({res['before_reload']} vs {want})")
    check(mine("after_reload") == want, "after a reload the decisions are there again")
    check(res["after_reload_pressed"] == "true", "after a reload, Accept shows pressed on the accepted region")
    d = res["drawn"]
    check(len(d) == 1 and d[0]["class"] == "invasive" and d[0]["points"] == 5 and d[0]["author"] == "Dr Viewer"
          and d[0]["comment"] == "focus the model missed", f"the drawn region: 4 clicks, closed ring, class, author ({d})")
    check(res["zoom_kept_while_drawing"], "clicks while drawing add points and do not zoom")
    check(res["after_reload_annotations"] == 1, "after a reload the drawn region is there again")

    # -- the second pathologist --------------------------------------------------------------------
    marks = {m["target"]: m["marks"] for m in res["second_marks"]}
    check("Dr Viewer ✓" in marks.get(r0, ""), f"the second pathologist sees {r0} accepted by Dr Viewer ({marks.get(r0)})")
    check("Dr Viewer ✗" in marks.get(r1, ""), f"... and {r1} rejected by Dr Viewer ({marks.get(r1)})")
    check(any(t.startswith("Dr Viewer: rejected — not convincing") for t in res["second_panel"]),
          f"... with the comment, attributed ({res['second_panel']})")
    check(res["second_pressed"] == "false", "another pathologist's decision is not shown as one's own")
    check(not res["second_delete_offered"] and res["second_delete_status"] == 403,
          f"the second pathologist cannot delete the first one's drawn region (button hidden, API {res['second_delete_status']})")
    check(res["wrong_csrf_put"] == 403 and res["no_session_put"] == 401,
          f"a decision with a wrong CSRF token: {res['wrong_csrf_put']}; without a session: {res['no_session_put']}")
    check(any(t.startswith("Dr Second: rejected — artefact") for t in res["first_sees"]),
          f"the first pathologist sees the second one's rejection of the drawn region ({res['first_sees']})")
    check(not res["console_errors"], f"no console error ({res['console_errors'][:3]})")

    # -- the export ----------------------------------------------------------------------------------
    g = T.request(srv.url, "GET", f"/v1/cases/{CASE}/review.geojson", P2)
    check(g.status == 200 and g.headers.get("content-type", "").startswith("application/geo+json"), "review.geojson served as GeoJSON")
    fc = g.json()
    feats = fc["features"]
    qupath = all(f["type"] == "Feature" and f["geometry"]["type"] in ("Polygon", "MultiPolygon")
                 and f["properties"]["objectType"] == "annotation"
                 and isinstance(f["properties"]["classification"]["name"], str)
                 and len(f["properties"]["classification"]["color"]) == 3 for f in feats)
    check(fc["type"] == "FeatureCollection" and qupath, f"every feature is a QuPath annotation ({len(feats)})")
    by = {f["properties"]["name"]: f for f in feats}
    rv = lambda n: [(x["author"]["name"], x["decision"]) for x in by[n]["properties"]["histoplan"]["review"]]  # noqa: E731
    check(rv(r0) == [("Dr Viewer", "accept")] and rv(r1) == [("Dr Viewer", "reject")],
          f"the regions carry the decisions, attributed ({rv(r0)}, {rv(r1)})")
    drawn = by.get(d[0]["id"])
    check(drawn is not None and drawn["properties"]["histoplan"]["author"]["name"] == "Dr Viewer"
          and drawn["properties"]["classification"]["color"] == [213, 94, 0]
          and rv(d[0]["id"]) == [("Dr Second", "reject")],
          "the drawn region: its author, the invasive colour, the second pathologist's rejection")
    cat = fc["histoplan"]["category_review"]
    check(len(cat) == 1 and [(x["author"]["name"], x["decision"]) for x in cat[0]["review"]] == [("Dr Viewer", "accept")],
          f"the category decision ({cat})")

    # -- a slide outside the model's domain -------------------------------------------------------
    if have_cmu:
        o = res["ood"]
        check(o["worklist_qc"] == "out of domain", f"worklist: the real slide's QC says out of domain ({o['worklist_qc']})")
        check(o["shown"] and o["warning"].startswith("Model not valid for this slide (out of its domain)"),
              f"over the real slide, first: the model is not valid for it ({o['warning'][:90]})")
        check(not o["shown_on_generated"], "no such warning over the generated slide")
        check(o["category"] == "none (no case, no report)", f"no category carried over from the slide before ({o['category']})")
    else:
        print(f"skipped: the out-of-domain warning ({T.CMU} is not there)")

    # -- signing from the viewer ---------------------------------------------------------------------
    check(res["sign_form_shown"], "the report panel offers signing the draft")
    check("passphrase does not unlock" in res["sign_wrong"], f"a wrong passphrase is refused, said so ({res['sign_wrong']})")
    check("final (revision 1), signed by dr-viewer" in res["signed_status"] and not res["sign_form_after"],
          f"signed: the panel shows the signed revision ({res['signed_status']})")
    row = T.request(srv.url, "GET", f"/v1/worklist?job={jid}", P).json()["rows"][0]
    signed_category = category.replace("(suggested)", "(confirmed by pathologist)")
    check(res["signed_category"] == "Category: " + signed_category,
          f"signed: the side panel says 'Category', confirmed, never 'Suggested' ({res['signed_category']})")
    check(row["report"] == {"status": "final", "revision": 1, "category": signed_category}, f"the worklist shows it signed ({row['report']})")
    cases = os.listdir(os.path.join(data, "cases"))
    rdir = os.path.join(data, "cases", cases[0], "report")
    rc, o, e = T.run(["report", "verify", rdir, "--registry", registry])
    check(len(cases) == 1 and rc == 0 and "dr-viewer" in o, f"histoplan report verify accepts the signed report ({(o + e).strip()[-300:]})")
    r = T.request(srv.url, "POST", f"/v1/cases/{CASE}/sign", P, {"passphrase": PASS})
    check(r.status == 409 and r.json()["detail"].startswith("the case's report is already signed"), f"signing again: 409 ({r.json().get('detail', '')[:120]})")
    r = T.request(srv.url, "POST", f"/v1/cases/{CASE}/sign", P2, {"passphrase": PASS})
    check(r.status == 409 and "signer add" in r.json()["detail"], "a pathologist with no enrolled key: 409, told how to get one")
    # A key enrolled but not bound to its pathologist by the registry is refused, and the message
    # names roles, not the server's paths.
    key2 = os.path.join(tmp, "dr-second.enc.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-aes-256-cbc", "-pass", "pass:second", "-out", key2], check=True)
    p2_id = [t["id"] for t in json.loads(T.run(["serve", "token", "list", "--data", data, "--json"])[1]) if t["name"] == "Dr Second"][0]
    T.run(["serve", "signer", "add", "--data", data, "--token", p2_id, "--pathologist", "dr-second", "--key", key2])
    r = T.request(srv.url, "POST", f"/v1/cases/{CASE}/sign", P2, {"passphrase": "second"})
    detail = r.json().get("detail", "")
    check(r.status == 409 and "not in the signer registry" in detail and "your signing key" in detail and data not in detail,
          f"a key the registry does not bind: 409, named by role ({detail[:160]})")
    check(T.request(srv.url, "POST", f"/v1/cases/{CASE}/sign", S, {"passphrase": PASS}).status == 403, "a submitter may not sign: 403")
    check(T.request(srv.url, "POST", f"/v1/cases/{CASE}/sign", P, {"pass": PASS}).status == 422, "no passphrase: 422")
    wrong = [T.request(srv.url, "POST", f"/v1/cases/{CASE}/sign", P, {"passphrase": f"guess {i}"}).status for i in range(5)]
    r = T.request(srv.url, "POST", f"/v1/cases/{CASE}/sign", P, {"passphrase": PASS})
    check(wrong == [403] * 5 and r.status == 429 and int(r.headers.get("retry-after", "0")) > 0,
          f"five wrong passphrases, then locked out ({wrong}, {r.status}, Retry-After {r.headers.get('retry-after')})")

    # -- the audit chain -----------------------------------------------------------------------------
    audit = os.path.join(tmp, "audit.jsonl")
    rc, o, e = T.run(["serve", "audit", "export", "--data", data, "--out", audit])
    events = [json.loads(x) for x in open(audit)] if rc == 0 else []
    kinds = [ev["event"] for ev in events]
    check(kinds.count("review.decision") == 4 and kinds.count("review.annotation.add") == 1,
          f"audited: {kinds.count('review.decision')} decisions, {kinds.count('review.annotation.add')} drawn region")
    text = open(audit).read() if rc == 0 else ""
    check("not convincing" not in text and "artefact" not in text and "focus the model missed" not in text,
          "the audit chain names decisions, not the comments' text")
    check(kinds.count("case.sign") == 1 and kinds.count("case.sign.refused") >= 6 and kinds.count("signer.enrol") == 2,
          f"audited: the enrolment, the signature and the refusals ({kinds.count('case.sign.refused')})")
    check(PASS not in text and "guess" not in text, "no passphrase in the audit chain")
    rc, o, e = T.run(["serve", "audit", "verify", "--data", data])
    check(rc == 0, f"the audit chain verifies ({(o + e).strip()[-200:]})")
finally:
    srv.terminate()
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
