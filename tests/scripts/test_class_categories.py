"""Class names come from the model card, and the card's category_map says what each class means.

The default model is run under other cards, through `histoplan analyze` and `histoplan report
build` as a user would:
- BACH's spellings (Normal, Benign, InSitu, Invasive) with a category map: the findings carry the
  invasive and in situ sections, each class its category, and the report suggests the category
  it suggests for the default card's findings of the same slide;
- another class order: the ONNX's logits permuted by a MatMul added here (python3-onnx), the card
  listing the classes in that order: every class keeps its area and the report its category;
- another task (classes with no map): the findings have no breast-specific sections and say why
  (diagnostic_categories.note), the report suggests no category and quotes that note, never a
  silent null;
- broken maps (a class not in the card, two classes claiming one category, a class left out) are
  refused by name before anything is analysed.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402

try:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
except ImportError as e:  # pragma: no cover
    print(f"skipped: python3-onnx not available ({e}); run with /usr/bin/python3")
    sys.exit(77)

ck = lib.Checks()
DEFAULT_CARD = lib.load(os.path.join(lib.SRC, "models", "zoo", "histoplan-default-densenet.card.json"))
CATEGORY = {"normal": "normal", "benign": "benign", "in_situ": "in-situ", "invasive": "invasive"}


def make_model(tmp, name, classes, cmap, perm=None):
    """A copy of the default model under card `classes` (logit order) and `cmap`; `perm[i]` is the
    default model's logit that becomes logit i (a MatMul by a permutation matrix)."""
    path = os.path.join(tmp, name + ".onnx")
    if perm is None:
        shutil.copyfile(lib.MODEL, path)
    else:
        m = onnx.load(lib.MODEL)
        out = m.graph.output[0]
        old = out.name
        for node in m.graph.node:
            for i, o in enumerate(node.output):
                if o == old:
                    node.output[i] = old + "_unpermuted"
        p = np.zeros((4, 4), dtype=np.float32)
        for i, j in enumerate(perm):
            p[j, i] = 1.0
        m.graph.initializer.append(numpy_helper.from_array(p, "permutation"))
        m.graph.node.append(helper.make_node("MatMul", [old + "_unpermuted", "permutation"], [old]))
        onnx.save(m, path)
    card = {k: v for k, v in DEFAULT_CARD.items() if k not in ("sha256", "$schema", "classes", "category_map")
            and not k.startswith("x-") and k != "metrics"}
    card["name"] = name
    card["classes"] = classes
    if cmap is not None:
        card["category_map"] = cmap
    lib.write_json(os.path.join(tmp, name + ".card.json"), card)
    # The card's out-of-domain detector travels with it (hp_card_load reads it beside the card).
    det = DEFAULT_CARD.get("ood_detector", {}).get("file")
    if det:
        shutil.copyfile(os.path.join(lib.SRC, "models", "zoo", det), os.path.join(tmp, det))
    return path


def analyze(tmp, model, slide, out):
    rc, log = lib.run(["analyze", slide, "--model", model, "--out", out, "--case", lib.ACCESSION])
    if rc != 0:
        raise RuntimeError(f"analyze with {model} failed ({rc}):\n{log}")
    found = [os.path.join(r, "findings.json") for r, _, f in os.walk(out) if "findings.json" in f]
    return found[0], log


def report(tmp, findings, name):
    case = lib.case_file(tmp, name=f"case-{name}.json")
    out = os.path.join(tmp, f"report-{name}")
    rc, log = lib.build(case, [findings], out)
    ck(rc == 0, f"{name}: report build succeeds ({rc}) {log.strip()[-300:] if rc else ''}")
    return lib.load(os.path.join(out, "report.json")) if rc == 0 else None, out


def by_category(f):
    return {c["category"]: c for c in f["classes"]}


def main():
    with tempfile.TemporaryDirectory(prefix="hp-classcat-") as tmp:
        slide = os.path.join(tmp, "s.tiff")
        rc, log = lib.run(["synth", "--out", slide, "--size", "6144x6144", "--seed", "1401"])
        if rc != 0:
            raise RuntimeError(log)
        base_f, _ = analyze(tmp, lib.MODEL, slide, os.path.join(tmp, "a-default"))
        base = lib.load(base_f)
        base_rep, _ = report(tmp, base_f, "default")
        ck(base["diagnostic_categories"]["mapped"] is True, "default card: classes are mapped")
        ck([c["category"] for c in base["classes"]] == ["normal", "benign", "in-situ", "invasive"],
           "default card: each class carries its category")

        # BACH's spellings, same order.
        bach = ["Normal", "Benign", "InSitu", "Invasive"]
        m = make_model(tmp, "bach", bach, dict(zip(bach, ["normal", "benign", "in-situ", "invasive"])))
        f_path, _ = analyze(tmp, m, slide, os.path.join(tmp, "a-bach"))
        f = lib.load(f_path)
        ck(isinstance(f["invasive"], dict) and f["invasive"]["class"] == "Invasive",
           "BACH spellings: the invasive section is there, of class Invasive")
        ck(isinstance(f["in_situ_extent"], dict) and f["in_situ_extent"]["class"] == "InSitu",
           "BACH spellings: the in situ section is there, of class InSitu")
        ck(f["invasive"] and f["invasive"]["total_area_mm2"] == base["invasive"]["total_area_mm2"],
           "BACH spellings: the invasive area equals the default card's")
        rep, _ = report(tmp, f_path, "bach")
        ck(rep and base_rep and rep["diagnosis"]["category"] == base_rep["diagnosis"]["category"],
           f"BACH spellings: the report suggests the same category "
           f"({rep and rep['diagnosis']['category']} vs {base_rep and base_rep['diagnosis']['category']})")
        ck(rep and [c["category"] for c in rep["case_findings"]["classes"]] ==
           ["normal", "benign", "in-situ", "invasive"], "BACH spellings: the report's classes carry categories")

        # Another order: logits permuted, the card in that order.
        perm = [3, 0, 2, 1]  # invasive, normal, in situ, benign
        names = ["Tumour-invasive", "Normal tissue", "DCIS", "Benign lesion"]
        cmap = {n: CATEGORY[DEFAULT_CARD["classes"][j]] for n, j in zip(names, perm)}
        m = make_model(tmp, "permuted", names, cmap, perm)
        f_path, _ = analyze(tmp, m, slide, os.path.join(tmp, "a-perm"))
        f = lib.load(f_path)
        bc, fc = by_category(base), by_category(f)
        ck(all(bc[k]["area_mm2"] == fc[k]["area_mm2"] and bc[k]["tile_count"] == fc[k]["tile_count"]
               for k in bc), "permuted order: every category keeps its area and tiles")
        ck(f["invasive"] and f["invasive"]["class"] == "Tumour-invasive" and
           f["invasive"]["largest_focus_diameter_mm"] == base["invasive"]["largest_focus_diameter_mm"],
           "permuted order: the invasive section is of the class mapped to invasive")
        rep, _ = report(tmp, f_path, "perm")
        ck(rep and rep["diagnosis"]["category"] == base_rep["diagnosis"]["category"],
           "permuted order: the report suggests the same category")

        # Another task, no map: no breast sections, and said so.
        other = ["tumour", "stroma", "immune", "background"]
        m = make_model(tmp, "other-task", other, None)
        f_path, alog = analyze(tmp, m, slide, os.path.join(tmp, "a-other"))
        f = lib.load(f_path)
        ck(f["invasive"] is None and f["in_situ_extent"] is None, "unmapped: no invasive or in situ section")
        ck(f["diagnostic_categories"]["mapped"] is False and "category_map" in f["diagnostic_categories"]["note"],
           "unmapped: findings say why (diagnostic_categories.note)")
        ck(all(c["category"] is None for c in f["classes"]), "unmapped: classes have no category")
        ck(sum(c["tile_count"] for c in f["classes"]) == f["analysis"]["tiles_analysed"],
           "unmapped: the class table is complete all the same")
        rep, out = report(tmp, f_path, "other")
        if rep:
            ck(rep["diagnosis"]["category"] == "indeterminate", "unmapped: the report suggests no category")
            texts = [s["text"] for s in rep["statements"] if s["id"] in rep["diagnosis"]["statement_ids"]]
            ck(any(f["diagnostic_categories"]["note"] in t for t in texts),
               "unmapped: the diagnosis statement quotes the findings' note")
            with open(os.path.join(out, "report.html")) as h:
                page = h.read()
            ck("not mapped to diagnostic" in page, "unmapped: the page says the classes are not mapped")

        # Broken maps are refused by name.
        bad = [({"Normal": "normal", "Benign": "benign", "InSitu": "in-situ", "Invasive": "invasive",
                 "Atypia": "benign"}, "Atypia"),
               ({"Normal": "normal", "Benign": "invasive", "InSitu": "in-situ", "Invasive": "invasive"},
                "both map"),
               ({"Normal": "normal", "Benign": "benign", "Invasive": "invasive"}, "InSitu"),
               ({"Normal": "normal", "Benign": "benign", "InSitu": "carcinoma", "Invasive": "invasive"},
                "category_map.InSitu")]
        for i, (cmap, needle) in enumerate(bad):
            m = make_model(tmp, f"bad{i}", bach, cmap)
            rc, log = lib.run(["analyze", slide, "--model", m, "--out", os.path.join(tmp, f"a-bad{i}")])
            ck(rc != 0 and needle in log and "category_map" in log,
               f"broken map {i}: refused naming '{needle}' (rc {rc}: {log.strip().splitlines()[-1] if log.strip() else ''})")
            ck(not os.path.exists(os.path.join(tmp, f"a-bad{i}")) or
               not any("findings.json" in fs for _, _, fs in os.walk(os.path.join(tmp, f"a-bad{i}"))),
               f"broken map {i}: nothing analysed")
    ck.exit()


if __name__ == "__main__":
    main()
