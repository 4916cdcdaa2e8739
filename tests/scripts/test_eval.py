"""`histoplan eval` on a fake BACH Part A layout (one real BACH image per class from the shared
data, and crops of a generated slide whose class the generator's truth gives), checked by
independent code:

- every metric of metrics.json against scikit-learn on the same predictions (predictions.csv):
  accuracy, balanced accuracy, macro-F1, per-class sensitivity, specificity, PPV, F1, one-vs-rest
  AUC, the confusion matrix, the Brier score (sum of per-class brier_score_loss), the 2-class
  accuracy; the ECE and the reliability bins by numpy;
- the bootstrap intervals, replayed in Python (SplitMix64 draws, scikit-learn metrics on every
  replicate, numpy percentiles);
- the schema (schemas/metrics.schema.json), tile counts from the images' geometry, argmax and
  probability sums, the figures (PNG, sizes), the page (embedded figures, the same numbers);
- determinism: the same seed gives the same metrics (with one reader thread too), another seed
  other intervals; an existing OUT is refused without --overwrite and left as it was.
"""
import json
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
try:
    import jsonschema
    import numpy as np
    from PIL import Image
    from sklearn import metrics as skm
    import eval_testlib as T
except ImportError as e:  # pragma: no cover
    print(f"skipped: jsonschema, numpy, PIL, openslide or scikit-learn not available ({e})")
    sys.exit(77)

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def close(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))


with open(os.path.join(T.SRC, "schemas", "metrics.schema.json")) as fh:
    SCHEMA = json.load(fh)
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
CLASSES = ["normal", "benign", "in_situ", "invasive"]  # the default model's card


def validate(doc, what):
    errs = sorted(VALIDATOR.iter_errors(doc), key=str)
    check(not errs, f"{what}: metrics.json validates against the schema"
          + (f" ({errs[0].message} at {list(errs[0].path)})" if errs else ""))


# ---- independent metrics ------------------------------------------------------------------

def splitmix64(seed):
    state = seed & (2**64 - 1)
    while True:
        state = (state + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        yield z ^ (z >> 31)


def ece_bins(y, p, bins=15):
    conf = p.max(axis=1)
    pred = p.argmax(axis=1)
    b = np.minimum(np.floor(conf * bins).astype(int), bins - 1)
    count = np.bincount(b, minlength=bins)
    ece = 0.0
    accs, confs = [], []
    for i in range(bins):
        m = b == i
        if not m.any():
            accs.append(None)
            confs.append(None)
            continue
        a, c = float((pred[m] == y[m]).mean()), float(conf[m].mean())
        accs.append(a)
        confs.append(c)
        ece += m.sum() / len(y) * abs(a - c)
    return ece, count, accs, confs


def reference(y, p):
    """Every scalar of metrics.json by scikit-learn (numpy for ECE): name -> value or None."""
    C = p.shape[1]
    pred = p.argmax(axis=1)
    r = {"accuracy": skm.accuracy_score(y, pred),
         "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
         "macro_f1": skm.f1_score(y, pred, average="macro", zero_division=0)}
    carc = np.array([0, 0, 1, 1])
    r["two_class_accuracy"] = skm.accuracy_score(carc[y], carc[pred])
    r["brier"] = sum(skm.brier_score_loss((y == k).astype(int), p[:, k]) for k in range(C))
    r["ece"] = ece_bins(y, p)[0]
    cm = skm.confusion_matrix(y, pred, labels=list(range(C)))
    aucs = []
    for k in range(C):
        tp = cm[k, k]
        fn, fp = cm[k].sum() - tp, cm[:, k].sum() - tp
        tn = cm.sum() - tp - fn - fp
        pos = (y == k)
        r[f"sensitivity/{k}"] = skm.recall_score(pos, pred == k, zero_division=0) if pos.any() else None
        r[f"specificity/{k}"] = tn / (tn + fp) if tn + fp else None
        r[f"ppv/{k}"] = skm.precision_score(pos, pred == k, zero_division=0) if (pred == k).any() else None
        r[f"f1/{k}"] = (skm.f1_score(pos, pred == k, zero_division=0)
                        if pos.any() or (pred == k).any() else None)
        r[f"auc/{k}"] = skm.roc_auc_score(pos, p[:, k]) if 0 < pos.sum() < len(y) else None
        if r[f"auc/{k}"] is not None:
            aucs.append(r[f"auc/{k}"])
    r["macro_auc"] = float(np.mean(aucs)) if aucs else None
    if len(set(y.tolist())) == C:
        r["macro_auc_sklearn_ovr"] = skm.roc_auc_score(y, p, multi_class="ovr", average="macro")
    r["confusion"] = cm
    return r


def reported(m):
    r = {k: m[k]["value"] for k in ["accuracy", "balanced_accuracy", "macro_f1", "two_class_accuracy",
                                    "brier", "ece", "macro_auc"]}
    for k, pc in enumerate(m["per_class"]):
        for name in ["sensitivity", "specificity", "ppv", "f1", "auc"]:
            r[f"{name}/{k}"] = pc[name]["value"]
    return r


def read_preds(path):
    rows = T.read_predictions(path)
    y = np.array([CLASSES.index(r["truth"]) for r in rows])
    p = np.array([[float(r[f"prob_{c}"]) for c in CLASSES] for r in rows])
    return rows, y, p


# ---- the run ------------------------------------------------------------------------------

if not T.have_real_bach():
    print(f"note: the BACH samples are not under {T.SHARED}; generated crops only")
work = tempfile.mkdtemp(prefix="hp-eval-")
try:
    root = os.path.join(work, "bach")
    layout = T.fake_bach(root, work, per_class=3)
    out = os.path.join(work, "out")
    B, SEED = 200, 20181
    rc, log = T.run("eval", "--model", T.MODEL, root, "--out", out, "--bootstrap", B, "--seed", SEED)
    check(rc == 0, f"eval on the fake BACH layout exits 0 ({log.strip()[-300:]})")
    for f in ["metrics.json", "predictions.csv", "reliability.png", "confusion.png", "summary.html"]:
        check(os.path.isfile(os.path.join(out, f)), f"OUT/{f} written")
    check(not os.path.exists(out + ".partial"), "no .partial folder is left")
    with open(os.path.join(out, "metrics.json")) as fh:
        doc = json.load(fh)
    validate(doc, "fake BACH")
    m = doc["metrics"]
    rows, y, p = read_preds(os.path.join(out, "predictions.csv"))

    # predictions.csv: images, truth, argmax, probabilities, tiles.
    check([r["image"] for r in rows] == [n for n, _ in layout],
          "predictions.csv lists every image in ImageFolder order")
    truth_of = {"Normal": "normal", "Benign": "benign", "InSitu": "in_situ", "Invasive": "invasive"}
    check(all(r["truth"] == truth_of[c] for r, (_, c) in zip(rows, layout)),
          "truth in predictions.csv is the class folder's, mapped to the card's name")
    check(all(r["predicted"] == CLASSES[int(np.argmax(pi))] for r, pi in zip(rows, p)),
          "predicted is the most probable class")
    check(np.allclose(p.sum(axis=1), 1, atol=1e-5), "each image's probabilities sum to 1")
    tiles_ok = True
    for r in rows:
        w, h = Image.open(os.path.join(root, "Photos", r["image"])).size
        rw, rh = round(w * 0.42 / 0.5), round(h * 0.42 / 0.5)
        expect = max(1, rw // 224) * max(1, rh // 224)
        tiles_ok &= int(r["tiles"]) == expect
    check(tiles_ok, "tiles per image = floor(W'/224) x floor(H'/224) at 0.42 -> 0.5 um/px")
    check(doc["tiling"]["tiles"] == sum(int(r["tiles"]) for r in rows)
          and doc["tiling"]["mpp_sources"] == {"dataset": len(rows)},
          "metrics.json: tile total and MPP source (BACH's 0.42) recorded")
    # Generated crops are what the default model was trained on: it gets them right.
    synth = [i for i, (n, _) in enumerate(layout) if not n.endswith("001.tif") or not T.have_real_bach()]
    check(all(int(np.argmax(p[i])) == y[i] for i in synth),
          "every generated crop is classified as its true class")

    # Every metric against scikit-learn.
    ref, got = reference(y, p), reported(m)
    for key in sorted(k for k in ref if k not in ("confusion", "macro_auc_sklearn_ovr")):
        check(close(got[key], ref[key]), f"{key}: histoplan {got[key]} = scikit-learn {ref[key]}")
    if "macro_auc_sklearn_ovr" in ref:
        check(close(got["macro_auc"], ref["macro_auc_sklearn_ovr"]),
              "macro AUC = roc_auc_score(multi_class='ovr', average='macro')")
    check(m["confusion_matrix"]["counts"] == ref["confusion"].tolist()
          and m["confusion_matrix"]["order"] == CLASSES, "confusion matrix = sklearn's (card order)")
    check(all(pc["support"] == int((y == k).sum()) for k, pc in enumerate(m["per_class"])),
          "per-class support")
    _, cnt, accs, confs = ece_bins(y, p)
    rel = m["reliability"]
    check(rel["count"] == cnt.tolist()
          and all(close(a, b) for a, b in zip(rel["accuracy"], accs))
          and all(close(a, b) for a, b in zip(rel["confidence"], confs)),
          "reliability bins (count, accuracy, confidence) = numpy's")

    # Bootstrap intervals replayed independently.
    gen = splitmix64(SEED)
    n = len(y)
    reps = {}
    for _ in range(B):
        idx = np.array([next(gen) % n for _ in range(n)])
        rr = reference(y[idx], p[idx])
        for k, v in rr.items():
            if k in ("confusion", "macro_auc_sklearn_ovr"):
                continue
            reps.setdefault(k, []).append(v)
    ci_ok, worst = True, ""
    for key, vals in reps.items():
        v = np.array([x for x in vals if x is not None], dtype=float)
        name, _, k = key.partition("/")
        node = m[name] if not k else m["per_class"][int(k)][name]
        if len(v) == 0:
            ok = node["ci95"] is None
        else:
            lo, hi = np.percentile(v, 2.5), np.percentile(v, 97.5)
            ok = (node["ci95"] is not None and close(node["ci95"][0], lo, 1e-7)
                  and close(node["ci95"][1], hi, 1e-7) and node["ci_replicates"] == len(v))
        if not ok:
            ci_ok, worst = False, f"{key}: {node['ci95']} ({node['ci_replicates']})"
    check(ci_ok, f"every 95% interval = Python's replay of the seeded bootstrap {worst}")
    check(all(m[k]["ci95"][0] <= m[k]["value"] <= m[k]["ci95"][1]
              for k in ["accuracy", "balanced_accuracy", "macro_f1"]),
          "the intervals hold their point estimates")

    # Figures and page.
    for f, size in [("reliability.png", (800, 710)), ("confusion.png", None)]:
        im = Image.open(os.path.join(out, f))
        check(im.format == "PNG" and im.mode == "RGB" and (size is None or im.size == size),
              f"{f} is an RGB PNG {im.size}")
        a = np.asarray(im)
        check(a.std() > 10, f"{f} has drawing on it")
    html = open(os.path.join(out, "summary.html")).read()
    check(html.count("data:image/png;base64,") == 2, "summary.html embeds both figures")
    check(f"{m['accuracy']['value']:.4f}" in html and f"{m['macro_f1']['value']:.4f}" in html,
          "summary.html shows metrics.json's accuracy and macro-F1")
    check(doc["notice"] in html.replace("&amp;", "&"), "summary.html carries the research notice")

    # Determinism: same seed (one reader thread too), another seed.
    out2 = os.path.join(work, "out2")
    rc, log = T.run("eval", "--model", T.MODEL, root, "--out", out2, "--bootstrap", B, "--seed", SEED,
                    "--threads", 1)
    doc2 = json.load(open(os.path.join(out2, "metrics.json")))
    check(rc == 0 and doc2["metrics"] == doc["metrics"],
          "same seed, one reader thread: identical metrics and intervals")
    check(open(os.path.join(out2, "predictions.csv")).read() ==
          open(os.path.join(out, "predictions.csv")).read(), "identical predictions.csv")
    # Another batch size regroups the tiles; BLAS may round differently, nothing more.
    out6 = os.path.join(work, "out6")
    rc, log = T.run("eval", "--model", T.MODEL, root, "--out", out6, "--bootstrap", 0, "--batch", 7)
    rows6, _, p6 = read_preds(os.path.join(out6, "predictions.csv"))
    check(rc == 0 and np.allclose(p6, p, atol=1e-5)
          and [r["predicted"] for r in rows6] == [r["predicted"] for r in rows],
          "batches of 7 tiles spanning images: the same predictions (probabilities within 1e-5)")
    out3 = os.path.join(work, "out3")
    rc, log = T.run("eval", "--model", T.MODEL, root, "--out", out3, "--bootstrap", B, "--seed", SEED + 1)
    doc3 = json.load(open(os.path.join(out3, "metrics.json")))
    check(rc == 0 and doc3["metrics"]["accuracy"]["value"] == m["accuracy"]["value"]
          and doc3["metrics"]["macro_f1"]["ci95"] != m["macro_f1"]["ci95"],
          "another seed: same point estimates, other intervals")

    # OUT exists: refused and left alone; --overwrite replaces it.
    before = open(os.path.join(out, "metrics.json")).read()
    rc, log = T.run("eval", "--model", T.MODEL, root, "--out", out, "--bootstrap", 0)
    check(rc == 1 and "--overwrite" in log and open(os.path.join(out, "metrics.json")).read() == before,
          f"an existing OUT is refused naming --overwrite, untouched ({log.strip()[-120:]})")
    rc, log = T.run("eval", "--model", T.MODEL, root, "--out", out, "--bootstrap", 0, "--overwrite")
    doc4 = json.load(open(os.path.join(out, "metrics.json")))
    check(rc == 0 and doc4["bootstrap"] is None and doc4["metrics"]["accuracy"]["ci95"] is None,
          "--overwrite replaces it; --bootstrap 0 gives no intervals")
    validate(doc4, "no bootstrap")
    check(not any(e.startswith("out.old") for e in os.listdir(work)), "no old folder left behind")

    # Test-time augmentation.
    out5 = os.path.join(work, "out5")
    rc, log = T.run("eval", "--model", T.MODEL, root, "--out", out5, "--tta", "dihedral", "--bootstrap", 0)
    rows5, _, p5 = read_preds(os.path.join(out5, "predictions.csv"))
    doc5 = json.load(open(os.path.join(out5, "metrics.json")))
    check(rc == 0 and doc5["tta"] == "dihedral" and [r["tiles"] for r in rows5] == [r["tiles"] for r in rows]
          and not np.allclose(p5, p, atol=1e-6) and np.allclose(p5.sum(axis=1), 1, atol=1e-5),
          "--tta dihedral: same tiles, probabilities averaged over 8 views (different, still sum to 1)")
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
