"""`histoplan slide` against python3-openslide, an independent reader of the same files.

Slides: the real Aperio slide (../shared/data/real/slides/CMU-1-Small-Region.svs, skipped when
absent) and a three-level tiled TIFF pyramid written here through libtiff (ctypes), which OpenSlide
opens as generic-tiff; its last level has a non-integer downsample (1000 -> 333).

For every level, regions inside, across each edge and corner, and wholly outside the slide are cut
by `histoplan slide region` and compared byte for byte (tolerance 0) with OpenSlide's own
read_region. python-openslide's public read_region un-premultiplies alpha, which loses
information, so the raw premultiplied ARGB buffer is taken from openslide.lowlevel._read_region
and composited over white the way histoplan documents it: for a premultiplied colour c with
alpha a, out = c + (255 - a). `slide info --json` is compared with OpenSlide's levels,
downsamples, properties and associated images; the CLI's usage and failure exits are checked."""
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import openslide
    import openslide.lowlevel as osl
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"skipped: python3-openslide, numpy or PIL not available ({e})")
    sys.exit(77)

HP_BIN = os.environ.get("HP_BIN", "histoplan")
SHARED = os.environ.get("HP_SHARED_DIR", os.path.join(os.path.dirname(__file__), "../../../shared"))
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def hp(*args):
    return subprocess.run([HP_BIN, "slide", *args], capture_output=True, text=True)


def openslide_rgb(slide, x, y, level, w, h):
    buf = (w * h * ctypes.c_uint32)()
    osl._read_region(slide._osr, buf, x, y, level, w, h)
    v = np.frombuffer(buf, dtype=np.uint32).reshape(h, w).astype(np.int64)
    a = v >> 24
    rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], axis=-1) + (255 - a)[..., None]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_pyramid(path, sizes, tile=128, res_cm=20000.0):
    """A tiled, deflate-compressed RGB TIFF with one directory per level (libtiff via ctypes)."""
    lt = ctypes.CDLL(ctypes.util.find_library("tiff") or "libtiff.so.6")
    lt.TIFFOpen.restype = ctypes.c_void_p
    lt.TIFFOpen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lt.TIFFWriteTile.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                                 ctypes.c_uint32, ctypes.c_uint16]
    lt.TIFFWriteTile.restype = ctypes.c_ssize_t
    lt.TIFFWriteDirectory.argtypes = [ctypes.c_void_p]
    lt.TIFFClose.argtypes = [ctypes.c_void_p]
    tif = ctypes.c_void_p(lt.TIFFOpen(path.encode(), b"w"))
    u = ctypes.c_int  # variadic: integer tags are promoted to int, float tags to double
    for i, (w, h) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 3 + yy) % 256, (yy * 5 + i * 40) % 256, ((xx ^ yy) * 7) % 256],
                       axis=-1).astype(np.uint8)
        for tag, val in [(254, 1 if i else 0), (256, w), (257, h), (258, 8), (259, 8), (262, 2),
                         (277, 3), (284, 1), (322, tile), (323, tile), (296, 3)]:
            lt.TIFFSetField(tif, u(tag), u(val))
        lt.TIFFSetField(tif, u(282), ctypes.c_double(res_cm / (w / sizes[0][0])))
        lt.TIFFSetField(tif, u(283), ctypes.c_double(res_cm / (w / sizes[0][0])))
        for ty in range(0, h, tile):
            for tx in range(0, w, tile):
                blk = np.zeros((tile, tile, 3), np.uint8)
                part = img[ty:ty + tile, tx:tx + tile]
                blk[:part.shape[0], :part.shape[1]] = part
                if lt.TIFFWriteTile(tif, blk.ctypes.data, tx, ty, 0, 0) < 0:
                    raise RuntimeError("TIFFWriteTile failed")
        lt.TIFFWriteDirectory(tif)
    lt.TIFFClose(tif)


def compare_regions(path, tmp):
    slide = openslide.OpenSlide(path)
    w0, h0 = slide.dimensions
    n = 0
    for level in range(slide.level_count):
        ds = slide.level_downsamples[level]
        lw, lh = slide.level_dimensions[level]
        rw, rh = 97, 61
        # (x, y) in level-0 pixels: inside, odd offsets, each edge and corner, wholly outside.
        origins = [(0, 0), (int(w0 * 0.37) | 1, int(h0 * 0.41) | 1), (-40, int(h0 / 2)),
                   (int(w0 / 2), -25), (w0 - int(50 * ds), h0 - int(30 * ds)),
                   (-int(20 * ds), -int(20 * ds)), (w0 - 3, int(h0 / 3)), (w0 + 100, h0 + 100)]
        for (x, y) in origins:
            out = os.path.join(tmp, "r.png")
            r = hp("region", path, "--level", str(level), "--x", str(x), "--y", str(y),
                   "--w", str(rw), "--h", str(rh), "--out", out)
            check(r.returncode == 0, f"{path} level {level} ({x},{y}): exit {r.returncode}: {r.stderr}")
            if r.returncode:
                continue
            got = np.asarray(Image.open(out).convert("RGB"))
            want = openslide_rgb(slide, x, y, level, rw, rh)
            diff = int(np.count_nonzero(got != want))
            check(got.shape == want.shape and diff == 0,
                  f"{os.path.basename(path)} level {level} ({lw}x{lh}, ds {ds:g}) region ({x},{y}): "
                  f"{diff} bytes differ from OpenSlide")
            n += 1
    # info --json against OpenSlide's own view.
    r = hp("info", path, "--json")
    check(r.returncode == 0, f"info {path}: {r.stderr}")
    info = json.loads(r.stdout)
    check([(l["width"], l["height"]) for l in info["levels"]] == list(slide.level_dimensions),
          f"info levels {info['levels']} vs {slide.level_dimensions}")
    check(all(abs(l["downsample"] - d) < 1e-9 for l, d in zip(info["levels"], slide.level_downsamples)),
          "info downsamples differ")
    check(sorted(a["name"] for a in info["associated_images"]) == sorted(slide.associated_images.keys()),
          "associated image names differ")
    for a in info["associated_images"]:
        im = slide.associated_images[a["name"]]
        check((a["width"], a["height"]) == im.size, f"associated {a['name']} size")
    # Thumbnail: the requested longer side, aspect kept.
    out = os.path.join(tmp, "t.png")
    r = hp("thumbnail", path, "--max", "200", "--out", out)
    check(r.returncode == 0, f"thumbnail {path}: {r.stderr}")
    if r.returncode == 0:
        tw, th = Image.open(out).size
        check(max(tw, th) == 200 and abs(tw / th - w0 / h0) < 0.02, f"thumbnail {tw}x{th} for {w0}x{h0}")
    slide.close()
    return info, n


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pyr = os.path.join(tmp, "pyramid.tiff")
        write_pyramid(pyr, [(1000, 700), (500, 350), (333, 233)])
        info, n = compare_regions(pyr, tmp)
        check(info["format"] == "generic-tiff", f"format {info['format']}")
        # OpenSlide 3.4 reports no MPP for generic TIFFs; histoplan takes the resolution tags.
        check(info["mpp_source"] == "tiff-resolution" and abs(info["mpp_x"] - 0.5) < 1e-6,
              f"pyramid mpp {info.get('mpp_x')} from {info['mpp_source']}")
        print(f"pyramid: {n} regions identical to OpenSlide")

        svs = os.path.join(SHARED, "data/real/slides/CMU-1-Small-Region.svs")
        if os.path.exists(svs):
            info, n = compare_regions(svs, tmp)
            props = openslide.OpenSlide(svs).properties
            check(info["mpp_source"] == "openslide" and info["mpp_x"] == float(props["openslide.mpp-x"]),
                  f"svs mpp {info.get('mpp_x')} vs {props.get('openslide.mpp-x')}")
            check(info["objective_power"] == float(props["openslide.objective-power"]), "objective power")
            print(f"svs: {n} regions identical to OpenSlide")
        else:
            print(f"note: {svs} absent: the real-slide comparison is skipped")

        # The command line: help, usage errors, failures naming the file, MPP override.
        check(hp("--help").returncode == 0, "slide --help")
        for sub in ("info", "region", "thumbnail"):
            r = hp(sub, "--help")
            check(r.returncode == 0 and "usage" in r.stdout, f"slide {sub} --help")
        check(hp("region", pyr, "--level", "0").returncode == 2, "region without its options: exit 2")
        check(hp("frobnicate").returncode == 2, "unknown subcommand: exit 2")
        check(hp("info", pyr, "--mpp", "abc").returncode == 2, "bad --mpp: exit 2")
        missing = os.path.join(tmp, "missing.svs")
        r = hp("info", missing)
        check(r.returncode == 1 and missing in r.stderr, f"missing file: {r.returncode} {r.stderr}")
        text = os.path.join(tmp, "notes.svs")
        with open(text, "w") as f:
            f.write("not a slide\n")
        r = hp("info", text)
        check(r.returncode == 1 and text in r.stderr and "text" in r.stderr, f"text file: {r.stderr}")
        r = hp("region", pyr, "--level", "7", "--x", "0", "--y", "0", "--w", "8", "--h", "8",
               "--out", os.path.join(tmp, "x.png"))
        check(r.returncode == 1 and "level 7" in r.stderr, f"bad level: {r.returncode} {r.stderr}")
        plain = os.path.join(tmp, "plain.png")
        Image.fromarray(np.full((50, 80, 3), 200, np.uint8)).save(plain)
        r = hp("info", plain, "--json")
        j = json.loads(r.stdout)
        check(r.returncode == 0 and j["mpp_x"] is None and "--mpp" in j["mpp_error"], f"png info: {r.stdout}")
        r = hp("info", plain, "--json", "--mpp", "0.5")
        j = json.loads(r.stdout)
        check(j["mpp_x"] == 0.5 and j["mpp_source"] == "override", f"png --mpp: {r.stdout}")

    if failures:
        print(f"test_slide_read: {len(failures)} failed")
        return 1
    print("test_slide_read: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
