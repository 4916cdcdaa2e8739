"""Through the command line: analyze says in findings.json which reader decoded the tiles (a
generated Aperio-style JPEG slide is read through libtiff, its tiles decoded at half size since
they shrink by exactly 2), and `slide thumbnail --reader plain` uses the TIFF's pyramid levels
and gives OpenSlide's very bytes."""
import glob
import json
import os
import subprocess
import sys
import tempfile

HP = os.environ.get("HP_BIN", "build/histoplan")


def run(*args):
    r = subprocess.run([HP, *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        print("FAIL", " ".join(args), r.stdout, r.stderr)
        sys.exit(1)
    return r


def main():
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        slide = os.path.join(d, "s.tiff")
        run("synth", "--out", slide, "--size", "4096x3072", "--seed", "9", "--mpp", "0.25")
        run("analyze", slide, "--out", os.path.join(d, "out"), "--threads", "2")
        f = json.load(open(glob.glob(os.path.join(d, "out", "*", "findings.json"))[0]))
        a = f["analysis"]
        print("tile_reader", a["tile_reader"], a["tile_reads"], "scale", a["tile_decode_scale"])
        checks = [
            a["tile_reader"] == "libjpeg-scaled",
            a["tile_decode_scale"] == 2,
            sum(a["tile_reads"].values()) == a["tiles_analysed"] > 0,
            a["tile_reads"]["openslide"] == 0,
        ]
        thumbs = {}
        for reader in ("plain", "openslide", "auto"):
            out = os.path.join(d, f"t-{reader}.png")
            run("slide", "thumbnail", slide, "--max", "800", "--out", out, "--reader", reader)
            thumbs[reader] = open(out, "rb").read()
        checks.append(thumbs["plain"] == thumbs["openslide"] == thumbs["auto"])
        info = run("slide", "info", slide, "--reader", "plain", "--json").stdout
        os_info = run("slide", "info", slide, "--reader", "openslide", "--json").stdout
        levels = [(v["width"], v["height"]) for v in json.loads(info)["levels"]]
        checks.append(len(levels) > 1 and
                      levels == [(v["width"], v["height"]) for v in json.loads(os_info)["levels"]])
        for i, ok in enumerate(checks):
            if not ok:
                print(f"FAIL check {i}")
                failed += 1
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


sys.exit(main())
