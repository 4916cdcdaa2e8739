"""Super-resolved evidence in the viewer and the lab service (issues 13 and 14), in a real browser:
Debian's chromium driven by playwright-core (tests/js/viewer-sr.js), against `histoplan serve`
whose zoo ($HP_MODEL_DIR) holds the default classifier and a x2 super-resolution model.

Checked:
- a batch option "super_resolution" other than "auto" or "off" is refused (422) naming the field;
- a slide scanned at 1.0 um/px submitted with "super_resolution": "auto" is analyzed with its
  tiles super-resolved (the job's findings.json says so); the same slide submitted without the
  option is not;
- the worklist's QC column says "super-resolved" for the first and not for the second;
- over the slide, the viewer says first that the model classified super-resolved tiles, not the
  scanned image, and names the model; nothing is said over the plain job;
- a "super-resolved tiles (not the scan)" layer is listed and on from the start for the first job,
  absent for the second; turning it off changes the picture (the hatch goes), pixel by pixel;
- no console error. The screenshot docs/viewer-super-resolved.png is written for the docs when HP_UPDATE_DOCS=1.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
JS, chromium = T.require_browser()
try:
    from PIL import Image
    from sr_testlib import export_tiny_sr
except ImportError as e:
    T.skip(f"needs PyTorch and Pillow ({e})")

check = T.Checks()
tmp = T.tempdir("viewer-sr")
data = os.path.join(tmp, "data")
roots = os.path.join(tmp, "slides")
zoo = os.path.join(tmp, "zoo")
os.makedirs(roots)
os.makedirs(zoo)
for n in ("histoplan-default-densenet.onnx", "histoplan-default-densenet.card.json",
          "histoplan-default-densenet.ood.json"):
    shutil.copy(os.path.join(T.SRC, "models", "zoo", n), zoo)
sr = os.path.join(zoo, "histoplan-sr-srvgg-x2.onnx")
export_tiny_sr(sr)
with open(sr[:-5] + ".card.json", "w") as fh:
    json.dump({"name": "test-sr", "version": "0.1", "task": "super-resolution", "scale": 2, "mpp": 1.0,
               "sha256": hashlib.sha256(open(sr, "rb").read()).hexdigest()}, fh)
rc, o, e = T.run(["synth", "--out", os.path.join(roots, "coarse.tiff"), "--size", "1600x1200", "--seed", "1402", "--mpp", "1.0"])
check(rc == 0, f"a slide scanned at 1.0 um/px ({e[-200:]})")
slide = os.path.join(roots, "coarse.tiff")
S = T.token(data, "submitter", "lab")["token"]
P = T.token(data, "pathologist", "Dr Viewer")["token"]
os.environ["HP_MODEL_DIR"] = zoo  # the server's zoo: the classifier and the x2 SR model
srv = T.serve(data, os.path.join(tmp, "serve.log"), ["--slide-root", roots, "--rate-limit", "0", "--workers", "1"])
try:
    r = T.request(srv.url, "POST", "/v1/batches", S, {"slides": [{"path": slide}], "options": {"super_resolution": "maybe"}},
                  {"Idempotency-Key": "bad"})
    body = r.body.decode(errors="replace") if isinstance(r.body, bytes) else str(r.body)
    check(r.status == 422 and "/options/super_resolution" in body, f"an unknown super_resolution value is refused ({r.status} {body[:200]})")
    ids = {}
    for key, opts in (("sr", {"super_resolution": "auto"}), ("plain", {})):
        r = T.request(srv.url, "POST", "/v1/batches", S, {"slides": [{"path": slide, "slide_id": "coarse-" + key}], "options": opts},
                      {"Idempotency-Key": key})
        ids[key] = r.json()["jobs"][0]["id"]
        b = T.wait_batch(T.Client(srv.url, None), S, r.json()["id"], 900)
        check(b["jobs"][0]["state"] == "succeeded", f"{key}: the slide was analyzed")
    f = T.request(srv.url, "GET", f"/v1/jobs/{ids['sr']}/findings.json", P).json()
    check(f["analysis"]["super_resolution"]["used"] is True and f["analysis"]["super_resolution"]["mode"] == "auto",
          f"super_resolution auto: the job's tiles were super-resolved ({f['analysis']['super_resolution']})")
    f = T.request(srv.url, "GET", f"/v1/jobs/{ids['plain']}/findings.json", P).json()
    check(f["analysis"]["super_resolution"]["used"] is False, "without the option: not super-resolved")

    out = os.path.join(tmp, "shots")
    os.makedirs(out)
    env = dict(os.environ, HP_URL=srv.url, HP_TOKEN=P, HP_JOB=ids["sr"], HP_PLAIN_JOB=ids["plain"], HP_OUT=out,
               HP_DOCS=T.screenshots_dir(out), HP_CHROMIUM=chromium)
    p = subprocess.run(["node", os.path.join(JS, "viewer-sr.js")], cwd=JS, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=400)
    if not check(p.returncode == 0, f"the browser run finished ({p.stderr[-2000:]})"):
        raise SystemExit(check.exit())
    res = json.loads(p.stdout.strip().splitlines()[-1])
    print(json.dumps(res, indent=1))
    qc = res["worklist_head"].index("QC")
    check("super-resolved" in res["worklist_sr"][qc], f"worklist QC: {res['worklist_sr'][qc]}")
    check("super-resolved" not in res["worklist_plain"][qc], f"worklist QC of the plain job: {res['worklist_plain'][qc]}")
    check(res["warning"].startswith("Super-resolved: tiles super-resolved x2 by test-sr")
          and "not the scanned image" in res["warning"], f"over the slide: {res['warning'][:200]}")
    check("Super-resolved" not in res["plain_warning"], f"no super-resolution warning over the plain job (it is out of domain: 1.0 um/px is outside the card's range; {res['plain_warning'][:100]})")
    srl = [l for l in res["layers"] if l["name"] == "super-resolved"]
    check(len(srl) == 1 and srl[0]["on"] and "super-resolved tiles (not the scan)" in srl[0]["label"],
          f"the super-resolved layer is listed and on ({srl})")
    check(not [l for l in res["plain_layers"] if l["name"] == "super-resolved"], "no such layer for the plain job")
    x, y, w, h = (int(v) for v in res["osd"])
    on = np.asarray(Image.open(os.path.join(out, "sr-on.png")).convert("RGB"), dtype=np.int32)[y:y + h, x:x + w]
    off = np.asarray(Image.open(os.path.join(out, "sr-off.png")).convert("RGB"), dtype=np.int32)[y:y + h, x:x + w]
    changed = float((np.abs(on - off).sum(axis=2) > 60).mean())
    check(changed > 0.05 and (on.sum(axis=2) < off.sum(axis=2)).mean() > 0.05,
          f"the hatch darkens {100 * changed:.1f}% of the view and goes when the layer is off")
    check(not res["console_errors"], f"no console error ({res['console_errors'][:3]})")
finally:
    srv.terminate()
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
