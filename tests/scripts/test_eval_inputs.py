"""`histoplan eval` on the inputs a researcher brings, through the command line:

- class folders spelled the ways data sets spell BACH's classes ("NORMAL", "benign lesion",
  "Carcinoma in situ", "invasive carcinoma"): matched through the spelling table and recorded;
- refused, with the label named and nothing written: a label that matches no class of the card,
  numeric labels (an index in someone's order), a card whose class order differs from
  --expect-classes (a swapped-label release), a card with two names for one class, a BACH ground
  truth CSV that disagrees with its folders, a corrupt image, an image without MPP (naming --mpp);
  accepted with --label-map, and the same figures for the same images;
- MPP from TIFF resolution tags and from --mpp, seen in the tile counts;
- the unlabelled BACH test folder: predictions only and submission.csv in the challenge's format
  (case,class; 0 Normal 1 Benign 2 InSitu 3 Invasive), cases in numeric order.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
try:
    import jsonschema
    import numpy as np
    from PIL import Image
    import eval_testlib as T
except ImportError as e:  # pragma: no cover
    print(f"skipped: jsonschema, numpy, PIL or openslide not available ({e})")
    sys.exit(77)

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


with open(os.path.join(T.SRC, "schemas", "metrics.schema.json")) as fh:
    SCHEMA = json.load(fh)
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
ORD = ["normal", "benign", "in_situ", "invasive"]


def valid(doc):
    return not list(VALIDATOR.iter_errors(doc))


def metrics(out):
    with open(os.path.join(out, "metrics.json")) as fh:
        return json.load(fh)


def nothing_written(out):
    return not os.path.exists(out) and not os.path.exists(out + ".partial")


def model_with_card(work, name, **changes):
    """The default model copied beside a card changed as given (the file hash still matches)."""
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    shutil.copy(T.MODEL, os.path.join(d, "m.onnx"))
    with open(T.MODEL[:-5] + ".card.json") as fh:
        card = json.load(fh)
    card.pop("$schema", None)
    card.update(changes)
    if "classes" in changes:
        # The card maps its own class names to the diagnostic categories.
        card["category_map"] = {c: CATEGORY_OF[c] for c in card["classes"]}
    # The out-of-domain detector's file lives beside the card it is hashed in.
    detector = card.get("ood_detector", {}).get("file")
    if detector:
        shutil.copy(os.path.join(os.path.dirname(T.MODEL), detector), os.path.join(d, detector))
    with open(os.path.join(d, "m.card.json"), "w") as fh:
        json.dump(card, fh)
    return os.path.join(d, "m.onnx")


CATEGORY_OF = {"normal": "normal", "benign": "benign", "in_situ": "in-situ", "Carcinoma in situ": "in-situ",
               "invasive": "invasive"}


work = tempfile.mkdtemp(prefix="hp-eval-in-")
try:
    crops = T.synth_crops(work, 11, 2)

    # Class folders with other spellings; PNGs carry no MPP.
    spelled = {"NORMAL": "Normal", "benign lesion": "Benign", "Carcinoma in situ": "InSitu",
               "invasive carcinoma": "Invasive"}
    folders = os.path.join(work, "folders")
    for folder, cls in spelled.items():
        os.makedirs(os.path.join(folders, folder))
        for i, rgb in enumerate(crops[cls]):
            Image.fromarray(rgb).save(os.path.join(folders, folder, f"img{i}.png"))
    out = os.path.join(work, "o-spelled")
    rc, log = T.run("eval", "--model", T.MODEL, folders, "--out", out, "--bootstrap", 0)
    check(rc == 1 and "--mpp" in log and "img0.png" in log and nothing_written(out),
          f"PNGs without MPP: refused naming the image and --mpp ({log.strip()[-160:]})")
    rc, log = T.run("eval", "--model", T.MODEL, folders, "--out", out, "--bootstrap", 0, "--mpp", 0.42)
    check(rc == 0, f"class folders with --mpp: exit 0 ({log.strip()[-200:]})")
    doc = metrics(out)
    used = {l["data_label"]: (l["card_class"], l["matched_by"]) for l in doc["labels"]}
    check(used == {"NORMAL": ("normal", "spelling table"), "benign lesion": ("benign", "spelling table"),
                   "Carcinoma in situ": ("in_situ", "spelling table"),
                   "invasive carcinoma": ("invasive", "spelling table")},
          f"every spelling matched to its card class through the table: {used}")
    check(doc["data"]["kind"] == "class-folders" and doc["tiling"]["mpp_sources"] == {"override": 8}
          and valid(doc), "kind class-folders, MPP from --mpp, schema-valid")
    acc_folders = doc["metrics"]["accuracy"]["value"]
    check(acc_folders == 1.0, "generated crops of each class are all classified right")

    # A label that matches nothing: refused before any image is read; then mapped explicitly.
    os.makedirs(os.path.join(folders, "tumour"))
    Image.fromarray(crops["Invasive"][0]).save(os.path.join(folders, "tumour", "x.png"))
    out2 = os.path.join(work, "o-tumour")
    rc, log = T.run("eval", "--model", T.MODEL, folders, "--out", out2, "--mpp", 0.42)
    check(rc == 1 and "'tumour'" in log and "--label-map" in log and "in_situ" in log
          and nothing_written(out2), f"label 'tumour' refused, naming it, the card's classes and --label-map "
          f"({log.strip()[-220:]})")
    rc, log = T.run("eval", "--model", T.MODEL, folders, "--out", out2, "--mpp", 0.42, "--bootstrap", 0,
                    "--label-map", "tumour=invasive")
    d2 = metrics(out2) if rc == 0 else {"labels": []}
    check(rc == 0 and {"data_label": "tumour", "card_class": "invasive", "matched_by": "--label-map",
                       "images": 1} in d2["labels"], "--label-map tumour=invasive is used and recorded")
    shutil.rmtree(os.path.join(folders, "tumour"))

    # Numeric labels in a CSV: refused; mapped explicitly they give the same figures.
    csvp = os.path.join(work, "numeric.csv")
    with open(csvp, "w") as fh:
        fh.write("path,label\n")
        for folder, cls in spelled.items():
            for i in range(2):
                fh.write(f"folders/{folder}/img{i}.png,{T.BACH_CLASSES.index(cls)}\n")
    out3 = os.path.join(work, "o-numeric")
    rc, log = T.run("eval", "--model", T.MODEL, csvp, "--out", out3, "--mpp", 0.42)
    check(rc == 1 and "number" in log and "'0'" in log and nothing_written(out3),
          f"numeric labels refused as class indices ({log.strip()[-200:]})")
    rc, log = T.run("eval", "--model", T.MODEL, csvp, "--out", out3, "--mpp", 0.42, "--bootstrap", 0,
                    "--label-map", "0=normal,1=benign,2=in_situ,3=invasive")
    d3 = metrics(out3) if rc == 0 else None
    check(rc == 0 and d3["data"]["kind"] == "csv" and d3["metrics"]["accuracy"]["value"] == acc_folders
          and d3["metrics"]["confusion_matrix"] == doc["metrics"]["confusion_matrix"],
          "the CSV mapped explicitly: same confusion matrix as the class folders")

    # Class order: --expect-classes against the card; a swapped card; two names for one class.
    out4 = os.path.join(work, "o-order")
    rc, log = T.run("eval", "--model", T.MODEL, folders, "--out", out4, "--mpp", 0.42,
                    "--expect-classes", "benign,normal,in_situ,invasive")
    check(rc == 1 and "order" in log and "[normal,benign,in_situ,invasive]" in log and nothing_written(out4),
          f"--expect-classes in another order than the card: refused naming both ({log.strip()[-200:]})")
    rc, log = T.run("eval", "--model", T.MODEL, folders, "--out", out4, "--mpp", 0.42, "--bootstrap", 0,
                    "--expect-classes", "Normal,Benign,InSitu,Invasive")
    check(rc == 0, "--expect-classes in the card's order (BACH's spelling) is accepted")
    swapped = model_with_card(work, "swapped", classes=["benign", "normal", "in_situ", "invasive"])
    out5 = os.path.join(work, "o-swapped")
    rc, log = T.run("eval", "--model", swapped, folders, "--out", out5, "--mpp", 0.42,
                    "--expect-classes", "normal,benign,in_situ,invasive")
    check(rc == 1 and "order" in log and nothing_written(out5),
          "a swapped-label card is refused against --expect-classes")
    dup = model_with_card(work, "dup", classes=["normal", "benign", "Carcinoma in situ", "in_situ"])
    rc, log = T.run("eval", "--model", dup, folders, "--out", out5, "--mpp", 0.42)
    # Refused when the card is read (two classes in one category) or by eval's spelling table.
    check(rc == 1 and ("same class" in log or "both" in log) and nothing_written(out5),
          f"a card naming one class twice is refused ({log.strip()[-160:]})")

    # BACH ground truth that disagrees with the folders.
    bach = os.path.join(work, "bach")
    T.fake_bach(bach, work, per_class=2, real=False)
    gt = os.path.join(bach, "Photos", "microscopy_ground_truth.csv")
    good = open(gt).read()
    with open(gt, "w") as fh:
        fh.write(good.replace("b001.tif,Benign", "b001.tif,Invasive"))
    out6 = os.path.join(work, "o-bach")
    rc, log = T.run("eval", "--model", T.MODEL, bach, "--out", out6)
    check(rc == 1 and "microscopy_ground_truth.csv" in log and "b001.tif" in log and nothing_written(out6),
          f"a ground truth label that disagrees with the folder is refused ({log.strip()[-200:]})")
    with open(gt, "w") as fh:
        fh.write("".join(l for l in good.splitlines(True) if not l.startswith("n002")))
    rc, log = T.run("eval", "--model", T.MODEL, bach, "--out", out6)
    check(rc == 1 and "n002.tif" in log and "not listed" in log, "an image the ground truth does not list is refused")
    with open(gt, "w") as fh:
        fh.write(good)

    # A corrupt image fails the run, named; nothing is written.
    with open(os.path.join(bach, "Photos", "Normal", "n002.tif"), "r+b") as fh:
        fh.truncate(300)
    rc, log = T.run("eval", "--model", T.MODEL, bach, "--out", out6)
    check(rc == 1 and "Normal/n002.tif" in log and nothing_written(out6),
          f"a truncated image fails the run, named ({log.strip()[-200:]})")

    # MPP from TIFF resolution tags; --mpp overrides it.
    res = os.path.join(work, "res")
    os.makedirs(res)
    rows = []
    for cls in T.BACH_CLASSES:
        p = os.path.join(res, f"{cls}.tif")
        T.write_tiff(p, crops[cls][0], mpp=0.25)
        rows.append(f"{cls}.tif,{cls}")
    with open(os.path.join(res, "list.csv"), "w") as fh:
        fh.write("\n".join(rows) + "\n")
    out7 = os.path.join(work, "o-res")
    rc, log = T.run("eval", "--model", T.MODEL, os.path.join(res, "list.csv"), "--out", out7, "--bootstrap", 0)
    d7 = metrics(out7) if rc == 0 else None
    side = crops["Normal"][0].shape[0]
    expect = max(1, round(side * 0.25 / 0.5) // 224) ** 2
    check(rc == 0 and d7["tiling"]["mpp_sources"] == {"tiff-resolution": 4}
          and d7["tiling"]["tiles"] == 4 * expect,
          f"TIFF resolution tags (0.25 um/px) give {expect} tile(s) per {side}-px image")
    out8 = os.path.join(work, "o-res-mpp")
    rc, log = T.run("eval", "--model", T.MODEL, os.path.join(res, "list.csv"), "--out", out8, "--bootstrap", 0,
                    "--mpp", 0.84)
    d8 = metrics(out8) if rc == 0 else None
    expect8 = (round(side * 0.84 / 0.5) // 224) ** 2
    check(rc == 0 and d8["tiling"]["mpp_sources"] == {"override": 4} and d8["tiling"]["tiles"] == 4 * expect8,
          f"--mpp 0.84 overrides the tags: {expect8} tiles per image")

    # Stain normalization of every image towards a reference; a blank image cannot be fitted.
    ref = os.path.join(T.SHARED, "data", "real", "patches", "tiatoolbox_stain_target_1000px.png")
    if not os.path.exists(ref):
        ref = os.path.join(work, "ref.png")
        Image.fromarray(crops["Invasive"][1]).save(ref)
    out10 = os.path.join(work, "o-stain")
    rc, log = T.run("eval", "--model", T.MODEL, os.path.join(res, "list.csv"), "--out", out10,
                    "--bootstrap", 0, "--stain", "reinhard", "--stain-target", ref)
    d10 = metrics(out10) if rc == 0 else None
    p_plain = T.read_predictions(os.path.join(out7, "predictions.csv"))
    p_stain = T.read_predictions(os.path.join(out10, "predictions.csv")) if rc == 0 else []
    check(rc == 0 and d10["stain"] == {"method": "reinhard", "target": os.path.basename(ref)} and valid(d10)
          and [p["prob_normal"] for p in p_stain] != [p["prob_normal"] for p in p_plain],
          f"--stain reinhard: recorded, and the probabilities change ({log.strip()[-160:]})")
    blank = os.path.join(work, "blank")
    os.makedirs(os.path.join(blank, "normal"))
    T.write_tiff(os.path.join(blank, "normal", "white.tif"), np.full((300, 300, 3), 255, np.uint8), mpp=0.5)
    out11 = os.path.join(work, "o-blank")
    rc, log = T.run("eval", "--model", T.MODEL, blank, "--out", out11, "--stain", "macenko",
                    "--stain-target", ref)
    check(rc == 1 and "normal/white.tif" in log and "stain normalization" in log and nothing_written(out11),
          f"a blank image under --stain: refused, named ({log.strip()[-160:]})")

    # The unlabelled BACH test folder: predictions and the challenge's submission format.
    test = os.path.join(work, "ICIAR2018_BACH_Challenge_TestDataset", "Photos")
    os.makedirs(test)
    order = []
    for case, cls in [(10, "Invasive"), (0, "Normal"), (2, "InSitu"), (1, "Benign")]:
        T.write_tiff(os.path.join(test, f"test{case}.tif"), crops[cls][1])
        order.append(case)
    out9 = os.path.join(work, "o-test")
    rc, log = T.run("eval", "--model", T.MODEL, os.path.dirname(test), "--out", out9)
    check(rc == 0, f"the BACH test folder: exit 0 ({log.strip()[-200:]})")
    d9 = metrics(out9)
    check(d9["data"]["kind"] == "bach-test" and d9["metrics"] is None and d9["data"]["labelled"] is False
          and valid(d9), "metrics.json: bach-test, no metrics, schema-valid")
    check(not os.path.exists(os.path.join(out9, "confusion.png")), "no figures without labels")
    preds = T.read_predictions(os.path.join(out9, "predictions.csv"))
    sub = open(os.path.join(out9, "submission.csv")).read().splitlines()
    check(sub[0] == "case,class" and [int(l.split(",")[0]) for l in sub[1:]] == sorted(order),
          "submission.csv: header case,class, one row per image in case order (0, 1, 2, 10)")
    check([p["image"] for p in preds] == [f"test{c}.tif" for c in sorted(order)]
          and all(p["truth"] == "" for p in preds), "predictions.csv in case order, no truth")
    codes = [int(l.split(",")[1]) for l in sub[1:]]
    check(codes == [ORD.index(p["predicted"]) for p in preds],
          "each class code is the predicted class's BACH code (0 Normal, 1 Benign, 2 InSitu, 3 Invasive)")
    check(codes == [0, 1, 2, 3], f"and the generated images are recognized: {codes}")

    # Data that is none of the layouts.
    empty = os.path.join(work, "empty")
    os.makedirs(empty)
    rc, log = T.run("eval", "--model", T.MODEL, empty, "--out", os.path.join(work, "o-empty"))
    check(rc == 1 and "not a BACH Part A folder" in log, "an empty folder: refused, saying what was looked for")
    rc, log = T.run("eval", "--model", T.MODEL, os.path.join(work, "nope"), "--out", os.path.join(work, "o-x"))
    check(rc == 1 and "no such file" in log, "a missing DATA path is named")
    rc, log = T.run("eval", folders, "--out", os.path.join(work, "o-x"))
    check(rc == 2 and "--model" in log, "no --model: usage error")
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
