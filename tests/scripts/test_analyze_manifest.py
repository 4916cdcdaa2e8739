"""`histoplan analyze --manifest FILE [--shard I/N]` and `histoplan batch merge OUT`, through the
command line.

A manifest (CSV with a header, or JSON lines) lists path, slide_id, case and optionally mpp.
Shard I of N holds the slides whose 1 + (first 8 bytes of SHA-256(slide_id), big-endian) mod N is
I (docs/cluster.md): the shards never overlap, together they are the manifest, and adding or
reordering lines moves no slide to another shard. A bad manifest is refused (exit 2) naming the
line and the field, before anything is written. `batch merge OUT` writes OUT/manifest-summary.json
with every slide of the manifest, the shard that ran it, and the slides still missing (exit 1
until all are done).
"""
import hashlib
import json
import os
import random
import shutil
import tempfile

import analyze_testlib as t


def shard_of(slide_id, n):
    """The documented rule, computed here independently of histoplan."""
    return 1 + int.from_bytes(hashlib.sha256(slide_id.encode()).digest()[:8], "big") % n


def write_csv(path, rows, header="path,slide_id,case,mpp"):
    with open(path, "w") as fh:
        fh.write(header + "\n")
        for r in rows:
            p = r[0]
            if "," in p or '"' in p:
                p = '"' + p.replace('"', '""') + '"'
            fh.write(",".join([p] + [str(x) for x in r[1:]]) + "\n")


def events(so, kind):
    return [e for e in t.json_lines(so) if e.get("event") == kind]


def run_shard(manifest, out, i, n):
    rc, so, se = t.run("analyze", "--model", t.MODEL, "--manifest", manifest, "--shard", f"{i}/{n}", "--out", out,
                       "--json", "-j", "2")
    return rc, so, se


def main():
    tmp = tempfile.mkdtemp(prefix="hp_manifest_")
    try:
        sd = os.path.join(tmp, "slides")
        os.mkdir(sd)
        names = [f"s{k}.tiff" for k in range(8)] + ["with, comma.tiff"]
        for k, name in enumerate(names):
            t.synth(os.path.join(sd, name), 1024, 3100 + k)
        ids = [f"P-{k:03d}" for k in range(len(names))]
        rows = [(f"slides/{name}", ids[k], f"CASE-{k % 3}", "0.5" if k == 1 else "") for k, name in enumerate(names)]
        first, extra = rows[:6], rows[6:]

        # Shards of the first manifest: 3 runs into one OUT.
        man = os.path.join(tmp, "cohort.csv")
        write_csv(man, first)
        out = os.path.join(tmp, "out")
        ran = {}
        for i in (1, 2, 3):
            rc, so, se = run_shard(man, out, i, 3)
            t.check(rc == 0, f"shard {i}/3 exits 0 ({rc}, {se.strip()[-300:]})")
            for e in events(so, "done"):
                ran.setdefault(e["slide_id"], []).append(i)
                t.check(e.get("shard") == f"{i}/3", f"the done event of {e['slide_id']} names shard {i}/3")
        want = {r[1] for r in first}
        t.check(set(ran) == want, f"the shards together analysed every slide of the manifest ({sorted(ran)})")
        t.check(all(len(v) == 1 for v in ran.values()), f"no slide in two shards ({ran})")
        t.check(all(v[0] == shard_of(s, 3) for s, v in ran.items()),
                "each slide ran in the shard the documented hash gives")
        f1 = json.load(open(os.path.join(out, "P-001", "findings.json")))
        t.check(f1.get("case", {}).get("accession") == "CASE-1" and abs(f1.get("slide", {}).get("mpp_x", 0) - 0.5) < 1e-9,
                "the manifest's case and mpp reach findings.json")
        summ = t.load_summary(out)
        err = t.valid(summ, "batch-summary.schema.json")
        t.check(err is None and summ["done"] == 6, f"batch-summary.json validates and holds the 6 slides ({err})")

        # More lines, the order shuffled: the old slides stay in their shard (skipped there), the
        # new ones are analysed once.
        grown = first + extra
        random.Random(7).shuffle(grown)
        write_csv(man, grown)
        seen = {}
        for i in (1, 2, 3):
            rc, so, se = run_shard(man, out, i, 3)
            t.check(rc == 0, f"grown manifest: shard {i}/3 exits 0 ({rc}, {se.strip()[-300:]})")
            for kind in ("done", "skipped"):
                for e in events(so, kind):
                    seen.setdefault(e["slide_id"], []).append((i, kind))
        t.check(all(seen.get(s) == [(v[0], "skipped")] for s, v in ran.items()),
                f"adding and reordering lines moved no slide: each old one is skipped in its own shard ({seen})")
        t.check(all(len(seen.get(r[1], [])) == 1 and seen[r[1]][0] == (shard_of(r[1], 3), "done") for r in extra),
                "each new slide is analysed once, in its shard")

        # A missing shard, then the merge.
        rc, so, se = t.run("batch", "merge", out)
        t.check(rc == 0, f"batch merge: every slide done or skipped: exit 0 ({rc}, {se.strip()[-300:]})")
        out3 = os.path.join(tmp, "out3")
        for i in (1, 2):
            run_shard(man, out3, i, 3)
        rc, so, se = t.run("batch", "merge", out3)
        ms = json.load(open(os.path.join(out3, "manifest-summary.json")))
        err = t.valid(ms, "manifest-summary.schema.json")
        miss = sorted(r[1] for r in grown if shard_of(r[1], 3) == 3)
        t.check(rc == 1 and not ms["complete"] and ms["missing"] == len(miss) and ms["slides"] == len(grown),
                f"merge with shard 3 missing: exit 1, incomplete, {len(miss)} missing ({rc}, {ms['missing']})")
        t.check(err is None, f"manifest-summary.json validates ({err})")
        t.check(sorted(ms["incomplete_slides"]) == miss and all(s in se for s in miss),
                f"the missing slides are named, in the file and on stderr ({se.strip()[-300:]})")
        t.check(all(r["expected_shard"] == "3/3" and r["shard"] is None for r in ms["results"] if r["status"] == "missing"),
                "each missing slide names shard 3/3 as the one to run")
        run_shard(man, out3, 3, 3)
        rc, so, se = t.run("batch", "merge", out3, "--json")
        ms = json.loads(so) if so.strip() else {}
        t.check(rc == 0 and ms.get("complete") is True and ms.get("done") == len(grown) and ms.get("missing") == 0,
                f"after shard 3: merge exit 0, complete, {len(grown)} done ({rc}, {se.strip()[-200:]})")
        t.check(sorted(r["slide_id"] for r in ms.get("results", [])) == sorted(r[1] for r in grown)
                and all(r["shard"] == r["expected_shard"] == f"{shard_of(r['slide_id'], 3)}/3" for r in ms["results"]),
                "the merged summary has every manifest slide once, with the shard that ran it")
        t.check(t.valid(ms, "manifest-summary.schema.json") is None, "the complete summary validates")

        # JSON lines; --manifest given to merge explicitly.
        jl = os.path.join(tmp, "cohort.jsonl")
        with open(jl, "w") as fh:
            fh.write(json.dumps({"path": os.path.join(sd, "s0.tiff"), "slide_id": "J-0", "case": "C9"}) + "\n")
            fh.write("# a comment, then a blank line\n\n")
            fh.write(json.dumps({"path": "slides/s2.tiff", "slide_id": "J-2", "case": "C9", "mpp": None}) + "\n")
        out4 = os.path.join(tmp, "out4")
        rc, so, se = t.run("analyze", "--model", t.MODEL, "--manifest", jl, "--out", out4, "--json")
        t.check(rc == 0 and sorted(e["slide_id"] for e in events(so, "done")) == ["J-0", "J-2"],
                f"a JSON-lines manifest runs its slides under their ids ({rc}, {se.strip()[-200:]})")
        rc, so, se = t.run("batch", "merge", out4, "--manifest", jl)
        t.check(rc == 0, f"batch merge --manifest FILE ({rc}, {se.strip()[-200:]})")

        # Bad manifests: exit 2, the line and field named, nothing written.
        bad = [
            ("path,slide_id\ns0.tiff,A\n", "line 1", "case"),
            ("path,slide_id,case,size\n", "line 1", "size"),
            ("path,slide_id,case\nslides/s0.tiff,A B,C\n", "line 2", "field slide_id"),
            ("path,slide_id,case\nslides/s0.tiff,A,C\nslides/s1.tiff,A,C\n", "line 3", "already given on line 2"),
            ("path,slide_id,case\nslides/s0.tiff,A,C\nslides/s0.tiff,B,C\n", "line 3", "field path"),
            ("path,slide_id,case\nslides/s0.tiff,A,C\n./slides//s0.tiff,B,C\n", "line 3", "field path"),
            ("path,slide_id,case,mpp\nslides/s0.tiff,A,C,fast\n", "line 2", "field mpp"),
            ("path,slide_id,case,mpp\nslides/s0.tiff,A,C,80\n", "line 2", "field mpp"),
            ("path,slide_id,case\n\nslides/s0.tiff,A,\n", "line 3", "field case"),
            ("path,slide_id,case\nslides/s0.tiff,A,C,extra\n", "line 2", "fields"),
            ('path,slide_id,case\n"slides/s0.tiff,A,C\n', "line 2", "quoted"),
            ('{"path": "slides/s0.tiff", "slide_id": "A", "case": "C", "colour": 1}\n', "line 1", "colour"),
            ('{"path": "slides/s0.tiff", "slide_id": 7, "case": "C"}\n', "line 1", "field slide_id"),
            ('{"path": "slides/s0.tiff", "slide_id": "A", "case": "C"}\nnot json\n', "line 2", "JSON object"),
            ("path,slide_id,case\n", "", "no slides"),
        ]
        for k, (text, where, what) in enumerate(bad):
            p = os.path.join(tmp, f"bad{k}.csv")
            with open(p, "w") as fh:
                fh.write(text)
            o = os.path.join(tmp, f"badout{k}")
            rc, so, se = t.run("analyze", "--model", t.MODEL, "--manifest", p, "--out", o)
            t.check(rc == 2 and where in se and what in se and not os.path.exists(o),
                    f"bad manifest {k} refused naming {where!r} and {what!r}, nothing written ({rc}, {se.strip()[:200]})")
        for args, what in [(["--shard", "1/2", os.path.join(sd, "s0.tiff")], "--manifest"),
                           (["--manifest", man, "--shard", "4/3"], "--shard"),
                           (["--manifest", man, "--shard", "0/3"], "--shard"),
                           (["--manifest", man, os.path.join(sd, "s0.tiff")], "slide arguments"),
                           (["--manifest", man, "--slide-id", "X"], "--slide-id"),
                           (["--manifest", os.path.join(tmp, "absent.csv")], "absent.csv")]:
            rc, so, se = t.run("analyze", "--model", t.MODEL, "--out", os.path.join(tmp, "usage"), *args)
            t.check(rc in (2, 3) and what in se, f"analyze {' '.join(args[:3])}: refused naming {what} ({rc}, {se.strip()[:160]})")
        rc, so, se = t.run("batch", "merge", os.path.join(tmp, "slides"))
        t.check(rc == 2 and "--manifest" in se, f"merge of a folder with no manifest run names --manifest ({rc})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
