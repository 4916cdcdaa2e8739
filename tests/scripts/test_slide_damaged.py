#!/usr/bin/python3
"""Slides that are damaged, absurd or not files at all, through the command line.

- The real Aperio slide (HP_SHARED_DIR/data/real/slides/CMU-1-Small-Region.svs, copied to a
  temporary folder and edited there) with its tile index cut short, with one tile's byte count
  zeroed and with one tile pointing past the end of the file: `analyze` must not report a
  complete (blank, low-tissue) result; it fails with a message that names the slide, the level
  and how many tiles are missing, writes no findings, and in a batch the other slides go on
  (OpenSlide itself already refuses the tile past the end of this single-level slide).
  `slide info` describes the damage (text and JSON) and exits 1; `slide thumbnail` refuses.
- A FIFO, a directory and a character device given as SLIDE to analyze, slide info, slide
  thumbnail, slide region, deid and report build --slide: a clear error within seconds.
- Small files claiming 100000 x 100000 pixels (every tile pointing at the same few bytes, an
  all-zero index, a stripped image sharing one strip): `slide thumbnail` and `analyze` end within
  seconds with an error that says why.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiff_testlib as tl  # noqa: E402

try:
    import numpy as np
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"skipped: numpy or PIL not available ({e})")
    sys.exit(77)

HP_BIN = os.environ.get("HP_BIN", "histoplan")
SRC = os.environ.get("HP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("HP_SHARED_DIR", os.path.join(SRC, "..", "shared"))
SVS = os.path.join(SHARED, "data/real/slides/CMU-1-Small-Region.svs")
MODEL = os.path.join(SRC, "models", "zoo", "histoplan-default-densenet.onnx")
failures, passed = [], 0


def check(cond, msg):
    global passed
    if cond:
        passed += 1
        print("ok  ", msg)
    else:
        failures.append(msg)
        print("FAIL:", msg)


def run(args, timeout=60):
    """(exit status, stdout, stderr, seconds); exit 124 when it ran past `timeout`."""
    t = time.monotonic()
    try:
        r = subprocess.run([HP_BIN, *args], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr, time.monotonic() - t
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return 124, out, err, time.monotonic() - t


def analyze(slides, out, *extra):
    args = ["analyze", *slides, "--out", out, "--threads", "2"]
    if os.path.exists(MODEL):
        args += ["--model", MODEL]
    return run(args + list(extra), timeout=300)


def tile_grid(path):
    im = Image.open(path)
    w, h = im.size
    tw, th = im.tag_v2[322], im.tag_v2[323]
    return -(-w // tw) * -(-h // th)


def test_damaged_index(tmp):
    if not os.path.exists(SVS):
        print("skipped: real slide not found at", SVS)
        return
    good = os.path.join(tmp, "cmu.svs")
    shutil.copy(SVS, good)
    os.chmod(good, 0o644)
    raw = open(good, "rb").read()
    grid = tile_grid(good)
    check(grid > 10, f"the slide's level 0 has a grid of {grid} tiles")

    cut = os.path.join(tmp, "cut_index.svs")
    with open(cut, "wb") as f:
        f.write(tl.set_count(tl.set_count(raw, 0, 324, 10), 0, 325, 10))
    # One byte count zeroed, the index otherwise whole; one tile pointing past the end.
    d0 = tl.directories(raw)[0][0]
    o = "<" if raw[:2] == b"II" else ">"
    import struct
    counts_at = struct.unpack(o + "I", tl.entries(raw, d0)[325][2])[0]
    offs_at = struct.unpack(o + "I", tl.entries(raw, d0)[324][2])[0]
    zero = bytearray(raw)
    struct.pack_into(o + "I", zero, counts_at + 4 * 57, 0)
    zero_p = os.path.join(tmp, "zero_tile.svs")
    open(zero_p, "wb").write(zero)
    past = bytearray(raw)
    struct.pack_into(o + "I", past, offs_at + 4 * 3, len(raw) + 4096)
    past_p = os.path.join(tmp, "past_end.svs")
    open(past_p, "wb").write(past)

    # OpenSlide itself hashes this single-level slide's tiles at open, so it already fails on a
    # tile past the end; the message must still name the slide and no result may appear.
    rc, so, se, _ = analyze([past_p], os.path.join(tmp, "out_past"))
    found = [f for dp, _, fs in os.walk(os.path.join(tmp, "out_past")) for f in fs if f == "findings.json"]
    check(rc == 1 and os.path.basename(past_p) in se and not found,
          f"one tile past the end: analyze exits 1 naming the slide, no findings ({rc}, {se.strip()[-200:]})")
    for path, missing, what in ((cut, grid - 10, "index cut to 10 entries"), (zero_p, 1, "one byte count zero")):
        name = os.path.basename(path)
        out = os.path.join(tmp, "out_" + name)
        rc, so, se, _ = analyze([path], out)
        check(rc == 1, f"{what}: analyze exits 1 (got {rc}; {so.strip()[-200:]})")
        check("complete" not in so and "low-tissue" not in so, f"{what}: analyze reports no result")
        check(name in se and "level 0" in se and f"missing {missing} of its {grid}" in se,
              f"{what}: the message names the slide, the level and the count ({se.strip()[-400:]})")
        found = [os.path.join(dp, f) for dp, _, fs in os.walk(out) for f in fs if f == "findings.json"]
        check(not found, f"{what}: no findings.json written ({found})")
        rc, so, se, _ = run(["slide", "info", path])
        check(rc == 1 and "DAMAGED" in so and f"missing {missing} of its {grid}" in so,
              f"{what}: slide info describes the damage and exits 1 ({rc}, {so.strip()[-300:]})")
        rc, so, se, _ = run(["slide", "info", path, "--json"])
        try:
            j = json.loads(so)
            ti = j["levels"][0]["tile_index"]
        except (ValueError, KeyError, IndexError):
            j, ti = {}, {}
        check(rc == 1 and j.get("damaged") is True and ti.get("missing") == missing and ti.get("tiles") == grid and
              abs(ti.get("missing_fraction", -1) - missing / grid) < 1e-9,
              f"{what}: slide info --json gives the missing count and fraction ({ti})")
        rc, so, se, _ = run(["slide", "thumbnail", path, "--out", os.path.join(tmp, "t.png")])
        check(rc == 1 and "missing" in se, f"{what}: slide thumbnail refuses ({rc}, {se.strip()[-200:]})")

    # The intact slide still reads, and its tile index is complete.
    rc, so, se, _ = run(["slide", "info", good, "--json"])
    j = json.loads(so) if rc == 0 else {}
    check(rc == 0 and j["levels"][0]["tile_index"] == {"tiles": grid, "missing": 0, "missing_fraction": 0, "sparse": 0,
                                                       "data_bytes": j["levels"][0]["tile_index"]["data_bytes"],
                                                       "damaged": False},
          f"the intact slide: no missing tiles ({rc}, {se.strip()})")

    # A batch: the damaged slide fails and is recorded, the intact one completes.
    out = os.path.join(tmp, "batch")
    rc, so, se, _ = analyze([cut, good], out)
    try:
        summary = json.load(open(os.path.join(out, "batch-summary.json")))
    except (OSError, ValueError):
        summary = {}
    text = json.dumps(summary)
    check(rc == 1 and "missing" in text and "level 0" in text and "done" in text,
          f"batch: the damaged slide is recorded as failed, the other completes ({rc}, {text[:400]})")


def test_special_files(tmp):
    fifo = os.path.join(tmp, "slide.svs")
    os.mkfifo(fifo)
    check(stat.S_ISFIFO(os.stat(fifo).st_mode), "a FIFO named slide.svs")
    folder = os.path.join(tmp, "folder.svs")
    os.mkdir(folder)
    for path, word in ((fifo, "fifo"), (folder, "directory"), ("/dev/zero", "device")):
        cmds = [["analyze", path, "--out", os.path.join(tmp, "out")],
                ["slide", "info", path],
                ["slide", "thumbnail", path, "--out", os.path.join(tmp, "t.png")],
                ["slide", "region", path, "--level", "0", "--x", "0", "--y", "0", "--w", "8", "--h", "8",
                 "--out", os.path.join(tmp, "r.png")],
                ["deid", path, "--out", os.path.join(tmp, "copy.svs")],
                ["report", "build", os.path.join(tmp, "case.json"), os.path.join(tmp, "findings.json"),
                 "--out", os.path.join(tmp, "report"), "--slide", path]]
        if os.path.exists(MODEL):
            cmds[0] += ["--model", MODEL]
        for args in cmds:
            rc, so, se, secs = run(args, timeout=20)
            # analyze takes folders of slides with --recursive, so a folder without it is a usage
            # error (exit 2) that names the option; everywhere else a folder is a bad input.
            want = 2 if args[0] == "analyze" and word == "directory" else 1
            check(rc == want and secs < 10 and word in se.lower() and path in se
                  and (want == 1 or "--recursive" in se),
                  f"{' '.join(args[:2])} on a {word}: exit {want} within seconds naming it ({rc}, {secs:.1f} s, {se.strip()[-200:]})")
        check(not os.path.exists(os.path.join(tmp, "copy.svs")) and not os.path.exists(os.path.join(tmp, "report")),
              f"{word}: nothing written")


def huge_tiled(path, index):
    """100000 x 100000 pixels in 256-pixel tiles over a file of about a megabyte."""
    w = h = 100000
    n = -(-w // 256) * -(-h // 256)
    jpg = tl.jpeg_bytes(np.full((256, 256), 240, np.uint8))
    wr = tl.Writer("<")
    wr.buf += jpg
    offs, counts = ([8] * n, [len(jpg)] * n) if index == "shared" else ([0] * n, [0] * n)
    wr.add(tl.Dir(tl.image_tags(w, h, spp=1, compression=7, tile=256), index=(offs, counts), tiled=True))
    open(path, "wb").write(wr.bytes())


def huge_stripped(path):
    """100000 x 100000 grey pixels in strips of 16 rows that all share one deflate strip."""
    import zlib
    w = h = 100000
    strip = zlib.compress(bytes(w * 16), 9)
    n = -(-h // 16)
    wr = tl.Writer("<")
    wr.buf += strip
    wr.add(tl.Dir(tl.image_tags(w, h, spp=1, compression=8, rows=16), index=([8] * n, [len(strip)] * n)))
    open(path, "wb").write(wr.bytes())


def test_huge_claims(tmp):
    cases = []
    for kind in ("shared", "zero"):
        p = os.path.join(tmp, f"huge_{kind}.tiff")
        huge_tiled(p, kind)
        cases.append((p, f"tiled, index {kind}", "pixels per stored byte" if kind == "shared" else "missing"))
    p = os.path.join(tmp, "huge_stripped.tiff")
    huge_stripped(p)
    cases.append((p, "stripped, one shared strip", "pixels per stored byte"))
    for path, what, word in cases:
        size = os.path.getsize(path)
        check(size < 2 << 20, f"{what}: the file is {size} bytes")
        rc, so, se, secs = run(["slide", "thumbnail", path, "--out", os.path.join(tmp, "t.png")], timeout=30)
        check(rc == 1 and secs < 10 and word in se and "level 0" in se,
              f"{what}: slide thumbnail ends within seconds with a clear error ({rc}, {secs:.1f} s, {se.strip()[-300:]})")
        rc, so, se, secs = analyze([path], os.path.join(tmp, "out_huge"), "--mpp", "0.5")
        check(rc == 1 and secs < 30 and word in se, f"{what}: analyze ends within seconds with the error ({rc}, {secs:.1f} s)")


with tempfile.TemporaryDirectory() as tmp:
    for t in (test_special_files, test_huge_claims, test_damaged_index):
        d = os.path.join(tmp, t.__name__)
        os.mkdir(d)
        t(d)

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
