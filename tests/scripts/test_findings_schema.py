"""schemas/findings.schema.json: the schema itself, the files the C writer makes, and broken ones.

The C test program, run as `test_findings --write DIR`, writes DIR/full.json (two classes with
regions, evidence tiles, QC flags, an unknown objective power, a NaN uncertainty value) and
DIR/empty.json (an all-background slide). This script makes its own folder, so it depends on no
other test (nor on the order ctest runs them in), then checks:

- the schema is valid draft 2020-12, has an $id, a description on every field, and refuses
  unknown keys in every object it defines (so a typo in a consumer or producer is caught);
- its constants agree with pipeline/findings.h (schema version, research-use notice, evidence cap);
- both C-written files validate, and hold together (region ids unique, every reference to a
  region or class resolves, fractions of tissue sum to 1);
- broken documents are rejected: each required top-level field missing, an extra top-level key,
  a misspelt nested key, a file-name-like slide_id, negative areas, probabilities above 1, a
  non-UTC time, an absolute or '..' output path, an unknown QC flag, too many evidence tiles.

Debian's python3-jsonschema (4.10) under /usr/bin/python3 (HP_PYTHON).
"""
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

try:
    import jsonschema
except ImportError as e:  # pragma: no cover
    print(f"skipped: jsonschema not available ({e}); run with /usr/bin/python3")
    sys.exit(77)

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def walk_fields(node, path, out):
    """Yields (path, subschema) for every property schema, $defs entry and items schema."""
    if isinstance(node, dict):
        for key in ("properties", "$defs"):
            for name, sub in node.get(key, {}).items():
                out.append((f"{path}/{key}/{name}", sub))
                walk_fields(sub, f"{path}/{key}/{name}", out)
        for key in ("items", "additionalProperties"):
            sub = node.get(key)
            if isinstance(sub, dict):
                walk_fields(sub, f"{path}/{key}", out)
        for key in ("prefixItems", "anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(node.get(key, [])):
                walk_fields(sub, f"{path}/{key}/{i}", out)


def object_schemas(node, path, out):
    """Every subschema that declares properties: each must close itself."""
    if isinstance(node, dict):
        if "properties" in node:
            out.append((path, node))
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                object_schemas(v, f"{path}/{k}", out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            object_schemas(v, f"{path}/{i}", out)


def header_define(text, name):
    m = re.search(r"#define\s+" + name + r"[\s\\]+((?:\"(?:[^\"\\]|\\.)*\"\s*\\?\s*)+|\d+)", text)
    if not m:
        return None
    val = m.group(1)
    if val.strip().isdigit():
        return int(val)
    return "".join(re.findall(r"\"((?:[^\"\\]|\\.)*)\"", val))


def coherent(doc, name):
    ids = [r["id"] for r in doc["regions"]]
    check(len(ids) == len(set(ids)), f"{name}: region ids are unique")
    classes = {c["name"] for c in doc["classes"]}
    check(all(r["class"] in classes for r in doc["regions"]), f"{name}: region classes exist")
    check(doc["model"]["card"]["classes"] == [c["name"] for c in doc["classes"]],
          f"{name}: classes[] follows the card's class order")
    refs = [c["largest_focus"]["region_id"] for c in doc["classes"] if c["largest_focus"]]
    for key in ("in_situ_extent", "invasive"):
        if doc[key]:
            check(doc[key]["class"] in classes, f"{name}: {key}.class exists")
            if doc[key]["largest_region_id"] is not None:
                refs.append(doc[key]["largest_region_id"])
    check(all(r in ids for r in refs), f"{name}: every region reference resolves")
    fr = [c["fraction_of_tissue"] for c in doc["classes"]]
    if all(f is not None for f in fr):
        check(abs(sum(fr) - 1) < 1e-9, f"{name}: fractions of tissue sum to 1")
    else:
        check(doc["analysis"]["tiles_analysed"] == 0,
              f"{name}: fractions are null only when nothing was analysed")
    for r in doc["regions"]:
        probs = [t["prob"] for t in r["evidence_tiles"]]
        if probs != sorted(probs, reverse=True) or (probs and max(probs) > r["max_prob"]):
            check(False, f"{name}: region {r['id']} evidence tiles most probable first")
            break
    text = json.dumps(doc)
    check(not re.search(r"\.(svs|ndpi|mrxs|scn|vms|vmu|bif|czi|svslide)\b", text, re.I),
          f"{name}: no slide file name anywhere")


def broken_documents(full):
    """(description, document) pairs that the schema must reject."""
    cases = []

    def mutate(desc, fn):
        d = copy.deepcopy(full)
        fn(d)
        cases.append((desc, d))

    for key in sorted(full):
        mutate(f"missing required top-level field {key}", lambda d, k=key: d.pop(k))
    mutate("extra top-level key", lambda d: d.update(extra_field=1))
    mutate("misspelt nested key slide.slideid",
           lambda d: d["slide"].update(slideid=d["slide"].pop("slide_id")))
    mutate("extra key in a region", lambda d: d["regions"][0].update(area_mm=1.0))
    mutate("missing in_situ extent field",
           lambda d: d["in_situ_extent"].pop("extent_mm"))
    mutate("slide_id that is a file name (patient_smith.svs)",
           lambda d: d["slide"].update(slide_id="patient_smith.svs"))
    mutate("slide_id with a path", lambda d: d["slide"].update(slide_id="scans/0001"))
    mutate("empty slide_id", lambda d: d["slide"].update(slide_id=""))
    mutate("slide sha256 in upper case",
           lambda d: d["slide"].update(sha256=d["slide"]["sha256"].upper()))
    mutate("negative region area", lambda d: d["regions"][0].update(area_mm2=-0.5))
    mutate("negative class area", lambda d: d["classes"][1].update(area_mm2=-1))
    mutate("negative tissue area", lambda d: d["tissue"].update(area_mm2=-3))
    mutate("negative invasive focus size",
           lambda d: d["invasive"].update(largest_focus_diameter_mm=-2))
    mutate("region max_prob above 1", lambda d: d["regions"][1].update(max_prob=1.2))
    mutate("evidence tile prob above 1",
           lambda d: d["regions"][0]["evidence_tiles"][0].update(prob=1.0001))
    mutate("fraction_of_tissue above 1", lambda d: d["classes"][0].update(fraction_of_tissue=1.5))
    mutate("uncertainty above 1", lambda d: d["uncertainty"].update(mean_entropy=2.0))
    mutate("generated_at with an offset, not UTC",
           lambda d: d.update(generated_at="2026-11-18T12:06:40+01:00"))
    mutate("research-use notice changed",
           lambda d: d.update(research_use_notice="For information."))
    mutate("status preliminary", lambda d: d.update(status="preliminary"))
    mutate("absolute output path", lambda d: d["outputs"].update(tiles_csv="/tmp/tiles.csv"))
    mutate("output path leaving the folder",
           lambda d: d["outputs"].update(overlay="../other/overlay.png"))
    mutate("unknown QC flag", lambda d: d["qc"]["flags"].append("coffee-stain"))
    mutate("11 evidence tiles", lambda d: d["regions"][1]["evidence_tiles"].append(
        copy.deepcopy(d["regions"][1]["evidence_tiles"][0])))
    mutate("region id 0", lambda d: d["regions"][0].update(id=0))
    mutate("bbox of 3 numbers", lambda d: d["regions"][0].update(bbox_level0=[1, 2, 3]))
    mutate("tile count as a float", lambda d: d["classes"][0].update(tile_count=2900.5))
    mutate("unknown backend", lambda d: d["model"].update(backend="tpu"))
    mutate("negative timing", lambda d: d["timings_s"].update(inference=-0.1))
    mutate("objective power 0 instead of null",
           lambda d: d["slide"].update(objective_power=0))
    return cases


def main():
    src = os.environ.get("HP_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    build = os.environ.get("HP_BUILD_DIR") or os.path.join(src, "build")
    exe = os.path.join(build, "tests", "test_findings")
    schema_path = os.path.join(src, "schemas", "findings.schema.json")
    with open(schema_path) as f:
        schema = json.load(f)

    # The schema itself.
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        check(True, "schema is valid draft 2020-12")
    except jsonschema.exceptions.SchemaError as e:
        check(False, f"schema is valid draft 2020-12: {e.message}")
        return 1
    check(schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema",
          "schema declares draft 2020-12")
    check(bool(schema.get("$id")) and bool(schema.get("description")), "schema has $id and description")
    fields = []
    walk_fields(schema, "#", fields)
    undocumented = [p for p, s in fields if isinstance(s, dict) and not s.get("description")]
    check(not undocumented, f"every one of {len(fields)} fields has a description {undocumented[:5]}")
    objs = []
    object_schemas(schema, "#", objs)
    open_objs = [p for p, s in objs if s.get("additionalProperties") is not False]
    check(not open_objs, f"every one of {len(objs)} objects refuses unknown keys {open_objs[:5]}")
    check(set(schema["required"]) == set(schema["properties"]) - {"$schema"},
          "every top-level field is required")

    # Constants shared with the C side.
    with open(os.path.join(src, "pipeline", "findings.h")) as f:
        header = f.read()
    props = schema["properties"]
    check(props["schema_version"]["const"] == header_define(header, "HP_FINDINGS_SCHEMA_VERSION"),
          "schema_version matches HP_FINDINGS_SCHEMA_VERSION")
    check(props["research_use_notice"]["const"] ==
          header_define(header, "HP_FINDINGS_RESEARCH_NOTICE"),
          "research_use_notice matches HP_FINDINGS_RESEARCH_NOTICE")
    region_items = props["regions"]["items"]["properties"]["evidence_tiles"]
    check(region_items["maxItems"] == header_define(header, "HP_FINDINGS_EVIDENCE_MAX"),
          "evidence tile cap matches HP_FINDINGS_EVIDENCE_MAX")
    notice = props["research_use_notice"]["const"].lower()
    check("research use" in notice and "not a diagnosis" in notice and "pathologist" in notice,
          "the notice says research use, not a diagnosis, until a pathologist signs")

    # Files written by the C writer.
    if not os.access(exe, os.X_OK):
        check(False, f"{exe} exists (build the project first)")
        return 1
    validator = jsonschema.Draft202012Validator(schema)
    with tempfile.TemporaryDirectory(prefix="hp_findings_schema_") as tmp:
        r = subprocess.run([exe, "--write", tmp], capture_output=True, text=True)
        check(r.returncode == 0, f"test_findings --write ran ({r.stderr.strip()})")
        docs = {}
        for name in ("full", "empty"):
            path = os.path.join(tmp, name + ".json")
            try:
                with open(path) as f:
                    docs[name] = json.load(f)
            except (OSError, ValueError) as e:
                check(False, f"{name}.json parses: {e}")
                continue
            errs = sorted(validator.iter_errors(docs[name]), key=lambda e: list(e.path))
            check(not errs, f"{name}.json validates" +
                  "".join(f"\n    {list(e.path)}: {e.message[:160]}" for e in errs[:10]))
            coherent(docs[name], name)
            leftovers = [n for n in os.listdir(tmp) if ".tmp-" in n]
            check(not leftovers, f"no temporary files beside {name}.json {leftovers}")
    if "full" not in docs:
        return 1
    check(docs["empty"]["regions"] == [] and docs["empty"]["tissue"]["area_mm2"] == 0,
          "empty.json: an all-background slide (no regions, no tissue)")
    check(docs["full"]["slide"]["objective_power"] is None and
          docs["full"]["uncertainty"]["max_entropy"] is None,
          "full.json: unknown objective power and NaN entropy are null")

    # Broken documents.
    for desc, doc in broken_documents(docs["full"]):
        errs = list(validator.iter_errors(doc))
        check(bool(errs), f"rejected: {desc}" + (f" ({errs[0].message[:100]})" if errs else ""))

    print(f"test_findings_schema: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
