"""The pathologist viewer in a real browser: Debian's chromium driven by playwright-core
(tests/js/viewer-browser.js), against `histoplan serve` analyzing a generated slide whose ground
truth is known.

Checked: login with a pathologist token gives a session cookie that is HttpOnly and
SameSite=Strict and invisible to scripts; the worklist lists the job and opens it from the
keyboard; the slide and its heatmap layers load (time to the first full screen of tiles is
printed); at a level-0 point the ground truth calls invasive (and the model too, probability
>= 0.5 in tiles.csv, since the layer shows the model), the screenshot's colour there is the
invasive layer's vermillion with the layer on, and the tissue's with it off; the threshold
slider recolours without fetching tiles; clicking the largest invasive focus in the region list
centres the view on it; a change with a wrong or missing CSRF token is refused (403); after
logout the session no longer works (401); no console error and no CSP violation on the page.
Screenshots docs/viewer-worklist.png, docs/viewer-slide-heatmap.png and docs/viewer-region.png
are written for the docs when HP_UPDATE_DOCS=1.
Also over plain HTTP: the page's CSP has no inline script, login refusals (unknown token 401,
submitter 403), the static files refuse traversal.
"""
import csv
import io
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
try:
    import numpy as np
    from PIL import Image
    from scipy import ndimage
except ImportError as e:
    T.skip(f"numpy, Pillow or scipy missing ({e})")

check = T.Checks()
tmp = T.tempdir("viewer-browser")
data = os.path.join(tmp, "data")
roots = os.path.join(tmp, "slides")
os.makedirs(roots)
slide = T.synth(os.path.join(roots, "case.tiff"), 2400, 1800, 21)
S = T.token(data, "submitter", "lab")["token"]
P = T.token(data, "pathologist", "Dr Viewer")["token"]
srv = T.serve(data, os.path.join(tmp, "serve.log"), ["--slide-root", roots, "--rate-limit", "0", "--workers", "1"])
try:
    r = T.request(srv.url, "POST", "/v1/batches", S, {"slides": [{"path": slide, "case": "S26-100"}]},
                  {"Idempotency-Key": "v1"})
    jid = r.json()["jobs"][0]["id"]
    b = T.wait_batch(T.Client(srv.url, None), S, r.json()["id"], 900)
    check(b["jobs"][0]["state"] == "succeeded", "the slide was analyzed")

    # A point the truth calls invasive (inside, two truth cells from any edge) where the model agrees.
    truth = np.asarray(Image.open(os.path.join(roots, "case.truth.png")))
    tscale = json.load(open(os.path.join(roots, "case.truth.json")))["truth_scale"]
    inside = ndimage.binary_erosion(truth == 4, iterations=2)
    rows = list(csv.DictReader(io.StringIO(T.request(srv.url, "GET", f"/v1/jobs/{jid}/tiles.csv", S).body.decode())))
    point = None
    for row in sorted(rows, key=lambda r: -float(r["prob_invasive"])):
        cx, cy = float(row["x"]) + float(row["size"]) / 2, float(row["y"]) + float(row["size"]) / 2
        i, j = int(cx // tscale), int(cy // tscale)
        if j < inside.shape[0] and i < inside.shape[1] and inside[j, i] and float(row["prob_invasive"]) >= 0.5:
            point = (cx, cy)
            break
    if not check(point is not None, "the truth has an invasive area the model also calls invasive"):
        raise SystemExit(check.exit())

    # Plain HTTP: the page, its CSP, login refusals, traversal.
    r = T.request(srv.url, "GET", "/viewer/")
    csp = r.headers.get("content-security-policy", "")
    check(r.status == 200 and b"<script src=" in r.body and b"<script>" not in r.body, "the page, no inline script")
    check("script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0] and
          "frame-ancestors 'none'" in csp, f"CSP: scripts only from the server ({csp})")
    check(T.request(srv.url, "GET", "/viewer/vendor/openseadragon.min.js").status == 200, "OpenSeadragon served locally")
    for bad in ["/viewer/..%2F..%2Fhistoplan.db", "/viewer/vendor/..%2F..%2Fetc", "/viewer/.hidden.js",
                "/viewer/%2Fetc%2Fpasswd"]:
        check(T.request(srv.url, "GET", bad).status == 404, f"{bad}: 404")
    check(T.request(srv.url, "POST", "/v1/session", None, {"token": "hp_" + "x" * 43}).status == 401, "login, unknown token: 401")
    check(T.request(srv.url, "POST", "/v1/session", None, {"token": S}).status == 403, "login, a submitter: 403")
    check(T.request(srv.url, "POST", "/v1/session", None, {"token": 5}).status == 422, "login, no token string: 422")
    check(T.request(srv.url, "GET", f"/v1/slides/{jid}.dzi", None, headers={"Cookie": "hp_session=" + "A" * 43}).status == 401,
          "a made-up session cookie: 401")

    out = os.path.join(tmp, "shots")
    os.makedirs(out)
    docs = T.screenshots_dir(out)
    env = dict(os.environ, HP_URL=srv.url, HP_TOKEN=P, HP_JOB=jid, HP_POINT=f"{point[0]},{point[1]}",
               HP_OUT=out, HP_DOCS=docs, HP_CHROMIUM=chromium)
    p = subprocess.run(["node", os.path.join(JS, "viewer-browser.js")], cwd=JS, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=400)
    if not check(p.returncode == 0, f"the browser run finished ({p.stderr[-2000:]})"):
        raise SystemExit(check.exit())
    res = json.loads(p.stdout.strip().splitlines()[-1])
    print(json.dumps(res, indent=1))
    check(res["worklist_rows"] >= 1, "the worklist lists the job")
    check(res["cookie"] == {"httpOnly": True, "sameSite": "Strict", "present": True}, f"session cookie {res['cookie']}")
    check(not res["cookie_visible_to_script"], "scripts cannot read the session cookie")
    check(res["layers"] == ["normal", "benign", "in_situ", "invasive", "uncertainty", "tissue"], f"layers {res['layers']}")
    check(res["regions"] >= 1 and res["scalebar"] and ("µm" in res["scalebar"] or "mm" in res["scalebar"]),
          f"{res['regions']} regions listed; scale bar {res['scalebar']}")
    print(f"time from opening the slide to the first full screen of tiles: {res['first_screen_ms']} ms")

    def patch(name):
        im = np.asarray(Image.open(os.path.join(out, name)).convert("RGB"), dtype=float)
        x, y = res["point_on_screen"]
        return im[y - 3:y + 4, x - 3:x + 4].reshape(-1, 3).mean(axis=0)
    on, off, thr = patch("heatmap-on.png"), patch("heatmap-off.png"), patch("threshold-1.png")
    verm = np.array([213, 94, 0], float)
    print(f"pixel at the invasive point: layer on {on.round()}, off {off.round()}, threshold 1 {thr.round()}")
    check(np.linalg.norm(on - verm) < np.linalg.norm(off - verm) - 40,
          "with the invasive layer on, the invasive point is clearly nearer vermillion than with it off")
    check(on[0] - on[2] > 80 and on[1] < on[0] - 40, f"layer on: vermillion dominates ({on.round()})")
    check(np.abs(on - off).sum() > 60, "toggling the layer off changes the pixels there")
    check(np.abs(thr - off).sum() < 25, "threshold 1: the tissue shows as with the layer off")
    check(res["heatmap_requests_on_threshold"] == 0, "changing the threshold fetched no tile")
    f = res["fly"]
    d = ((f["centre"][0] - f["target"]["cx"]) ** 2 + (f["centre"][1] - f["target"]["cy"]) ** 2) ** 0.5
    check(f["target"]["cls"] == "invasive" and d < 60,
          f"the region list starts with the invasive focus and clicking it centres the view ({d:.0f} px off)")
    check(res["wrong_csrf_status"] == 403 and res["no_csrf_status"] == 403, "changes without the CSRF token: 403")
    check(res["after_logout_status"] == 401 and res["after_logout_tile"] == 401, "after logout: 401")
    check(not res["console_errors"] and res["csp_violations"] == 0, f"no console error ({res['console_errors'][:3]})")
finally:
    srv.terminate()
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
