#!/usr/bin/python3
"""`histoplan deid` checked against python3-openslide and the raw bytes of its outputs.

The real Aperio slide (HP_SHARED_DIR/data/real/slides/CMU-1-Small-Region.svs, read in place, never
copied into the repository; its checks are skipped when it is absent): the copy opens, has no
label or macro, keeps levels, MPP, AppMag and level-0 pixels, and none of the original's
identifying values nor a run of the original label or macro bytes appears in it. Generated files:
a PIL TIFF with DateTime/Artist/HostComputer (both byte orders), a BigTIFF and a synthetic NDPI-like
and Philips-like TIFF built here byte by byte. Refusals: PNG, text named .svs, a truncated SVS,
a TIFF whose directory chain loops, an existing COPY without --overwrite, COPY = SLIDE."""
import ctypes
import ctypes.util
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import openslide
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"skipped: python3-openslide, numpy or PIL not available ({e})")
    sys.exit(77)

HP_BIN = os.environ.get("HP_BIN", "histoplan")
SHARED = os.environ.get("HP_SHARED_DIR", os.path.join(os.path.dirname(__file__), "../../../shared"))
SVS = os.path.join(SHARED, "data/real/slides/CMU-1-Small-Region.svs")
failures = []
passed = 0


def check(cond, msg):
    global passed
    if cond:
        passed += 1
        print("ok  ", msg)
    else:
        failures.append(msg)
        print("FAIL:", msg)


def deid(*args):
    return subprocess.run([HP_BIN, "deid", *args], capture_output=True, text=True)


def read(p):
    with open(p, "rb") as f:
        return f.read()


def aperio_fields(desc):
    out = {}
    for seg in desc.split("|")[1:]:
        if "=" in seg:
            k, v = seg.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def strip_runs(path, page, n=64):
    """64-byte runs from the start, middle and end of each strip of TIFF page `page`."""
    im = Image.open(path)
    im.seek(page)
    runs = []
    for off, cnt in zip(im.tag_v2[273], im.tag_v2[279]):
        with open(path, "rb") as f:
            f.seek(off)
            data = f.read(cnt)
        for s in (0, len(data) // 2, max(0, len(data) - n)):
            if len(data[s:s + n]) == n:
                runs.append(data[s:s + n])
    return runs


def test_aperio(tmp):
    if not os.path.exists(SVS):
        print("skipped: real slide not found at", SVS)
        return
    out = os.path.join(tmp, "copy.svs")
    r = deid(SVS, "--out", out)
    check(r.returncode == 0, f"aperio: exit 0 (got {r.returncode}: {r.stderr.strip()})")
    for line in ("removed label image", "removed macro image",
                 "blanked ImageDescription field Filename", "blanked ImageDescription field Date",
                 "blanked ImageDescription field User"):
        check(line in r.stdout.splitlines(), f"aperio: prints '{line}'")
    orig = openslide.OpenSlide(SVS)
    fields = aperio_fields(orig.properties["tiff.ImageDescription"])
    secrets = [fields[k] for k in ("Filename", "Date", "Time", "User", "ScanScope ID") if k in fields]
    check(len(secrets) == 5, "aperio: the original has the five identifying fields")
    if "tiff.DateTime" in orig.properties:
        secrets.append(orig.properties["tiff.DateTime"])
    check(not any(s in r.stdout or s in r.stderr for s in secrets), "aperio: output names no value")
    try:
        cp = openslide.OpenSlide(out)
    except Exception as e:  # noqa: BLE001
        check(False, f"aperio: the copy opens with OpenSlide ({e})")
        return
    check("label" not in cp.associated_images, "aperio: no label in the copy")
    check("macro" not in cp.associated_images, "aperio: no macro in the copy")
    check("label" in orig.associated_images and "macro" in orig.associated_images,
          "aperio: the original still has label and macro")
    check(cp.level_dimensions == orig.level_dimensions, "aperio: same level dimensions")
    for k in ("openslide.mpp-x", "openslide.mpp-y", "aperio.AppMag", "openslide.objective-power"):
        check(cp.properties.get(k) == orig.properties.get(k), f"aperio: same {k}")
    w, h = orig.level_dimensions[0]
    a = np.asarray(orig.read_region((0, 0), 0, (w, h)))
    b = np.asarray(cp.read_region((0, 0), 0, (w, h)))
    check(a.shape == b.shape and np.array_equal(a, b), "aperio: level-0 pixels identical")
    data = read(out)
    check(len(data) == os.path.getsize(SVS), "aperio: the copy has the original's size")
    for s in secrets:
        check(s.encode() not in data, f"aperio: identifying value #{secrets.index(s)} gone from the bytes")
    # The label is directory 2 and the macro directory 3 of this slide.
    descs = []
    im = Image.open(SVS)
    for page in range(4):
        im.seek(page)
        descs.append(im.tag_v2.get(270, ""))
    for page, name in ((2, "label"), (3, "macro")):
        check(("\n" + name) in descs[page], f"aperio: directory {page} of the original is the {name}")
        runs = strip_runs(SVS, page)
        check(len(runs) > 10 and not any(run in data for run in runs),
              f"aperio: none of {len(runs)} byte runs of the original {name} remains")
        check(descs[page].encode() not in data, f"aperio: the {name} description is gone")
    # The thumbnail (directory 1) is kept byte for byte.
    runs = strip_runs(SVS, 1)
    check(all(run in data for run in runs), "aperio: the thumbnail's bytes are kept")
    # --json, an existing COPY, --overwrite, COPY = SLIDE.
    r = deid(SVS, "--out", out, "--json")
    check(r.returncode == 1 and "exists" in r.stderr, "aperio: an existing COPY is refused")
    r = deid(SVS, "--out", out, "--json", "--overwrite")
    try:
        j = json.loads(r.stdout)
    except ValueError:
        j = {}
    check(r.returncode == 0 and j.get("format") == "aperio" and
          sorted(j.get("removed_images", [])) == ["label", "macro"] and
          "Filename" in j.get("blanked_description_fields", []),
          "aperio: --json --overwrite names the format and what was removed")
    # The slide's own path may hold the file name; nothing else in the JSON may.
    check(not any(s in r.stdout.replace(SVS, "") for s in secrets), "aperio: the JSON names no value")
    check(read(out) == data, "aperio: the output is deterministic")
    r = deid(out, "--out", out, "--overwrite")
    check(r.returncode == 1 and read(out) == data, "aperio: COPY = SLIDE is refused, file untouched")
    # A de-identified copy de-identifies to itself: nothing is left to find.
    out2 = os.path.join(tmp, "copy2.svs")
    r = deid(out, "--out", out2, "--json")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    check(r.returncode == 0 and j.get("changes") == [] and read(out2) == data,
          "aperio: a second pass finds nothing")
    # Truncated: the first 100 KB.
    trunc = os.path.join(tmp, "trunc.svs")
    with open(trunc, "wb") as f:
        f.write(read(SVS)[:100 * 1024])
    refuse(tmp, trunc, "truncated SVS", "truncated")


def refuse(tmp, path, what, word=None):
    out = os.path.join(tmp, "refused.out")
    r = deid(path, "--out", out)
    msg = r.stderr.strip()
    left = [n for n in os.listdir(tmp) if n.startswith("refused.out")]
    check(r.returncode == 1 and msg and "Traceback" not in msg and not left,
          f"{what}: exit 1 with a message, no output left (exit {r.returncode}, {msg!r}, {left})")
    if word:
        check(word in msg.lower(), f"{what}: the message says '{word}' ({msg!r})")


def test_generic(tmp):
    secrets = ["2031:05:06 07:08:09", "Quixley Zanthorpe", "pathlab-ws-0042"]
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    for name in ("le",):
        src = os.path.join(tmp, f"generic_{name}.tiff")
        Image.fromarray(arr).save(src, tiffinfo={306: secrets[0], 315: secrets[1], 316: secrets[2]})
        raw = read(src)
        check(all(s.encode() in raw for s in secrets), f"generic {name}: the source holds the values")
        out = os.path.join(tmp, f"generic_{name}.out.tiff")
        r = deid(src, "--out", out)
        check(r.returncode == 0, f"generic {name}: exit 0 ({r.stderr.strip()})")
        for t in ("DateTime", "Artist", "HostComputer"):
            check(f"blanked TIFF tag {t}" in r.stdout, f"generic {name}: reports {t}")
        data = read(out)
        check(not any(s.encode() in data for s in secrets), f"generic {name}: values gone from the bytes")
        im = Image.open(out)
        check(np.array_equal(np.asarray(im.convert("RGB")), arr), f"generic {name}: pixels identical")
        check(im.tag_v2.get(315, "").strip("X") == "", f"generic {name}: Artist reads as X's")


def ifd(order, entries, next_off, big=False):
    """A TIFF directory: entries = [(tag, type, count, value_bytes_or_offset_int)]."""
    if big:
        b = struct.pack(order + "Q", len(entries))
        for tag, typ, cnt, val in sorted(entries):
            v = val if isinstance(val, bytes) else struct.pack(order + "Q", val)
            b += struct.pack(order + "HHQ", tag, typ, cnt) + v.ljust(8, b"\0")
        return b + struct.pack(order + "Q", next_off)
    b = struct.pack(order + "H", len(entries))
    for tag, typ, cnt, val in sorted(entries):
        v = val if isinstance(val, bytes) else struct.pack(order + "I", val)
        b += struct.pack(order + "HHI", tag, typ, cnt) + v.ljust(4, b"\0")
    return b + struct.pack(order + "I", next_off)


def build_tiff(images, order="<", big=False, extra0=()):
    """A stripped 8-bit gray TIFF; images = [(w, h, pixels, extra_entries)]. Each image's strip is
    placed before its directory. Extra entries with long values give (tag, type, count, bytes)."""
    out = bytearray(b"II" if order == "<" else b"MM")
    out += struct.pack(order + "H", 43 if big else 42)
    if big:
        out += struct.pack(order + "HHQ", 8, 0, 0)
    else:
        out += struct.pack(order + "I", 0)
    link = 8 if big else 4
    inline = 8 if big else 4
    for i, (w, h, px, extra) in enumerate(images):
        strip = len(out)
        out += px
        entries = [(256, 3, 1, struct.pack(order + "H", w)), (257, 3, 1, struct.pack(order + "H", h)),
                   (258, 3, 1, struct.pack(order + "H", 8)), (259, 3, 1, struct.pack(order + "H", 1)),
                   (262, 3, 1, struct.pack(order + "H", 1)), (273, 4, 1, struct.pack(order + "I", strip)),
                   (277, 3, 1, struct.pack(order + "H", 1)), (278, 3, 1, struct.pack(order + "H", h)),
                   (279, 4, 1, struct.pack(order + "I", len(px)))]
        for tag, typ, cnt, val in list(extra) + (list(extra0) if i == 0 else []):
            if len(val) > inline:
                if len(out) % 2:
                    out += b"\0"
                off = len(out)
                out += val
                val = off
            entries.append((tag, typ, cnt, val))
        if len(out) % 2:
            out += b"\0"
        pos = len(out)
        struct.pack_into(order + ("Q" if big else "I"), out, link, pos)
        out += ifd(order, entries, 0, big)
        link = len(out) - (8 if big else 4)
    return bytes(out)


def libtiff_read(path):
    """(number of directories, bytes of strip 0 of directory 0) as libtiff reads them."""
    lt = ctypes.CDLL(ctypes.util.find_library("tiff") or "libtiff.so.6")
    lt.TIFFOpen.restype = ctypes.c_void_p
    lt.TIFFOpen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lt.TIFFNumberOfDirectories.argtypes = [ctypes.c_void_p]
    lt.TIFFReadEncodedStrip.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_ssize_t]
    lt.TIFFReadEncodedStrip.restype = ctypes.c_ssize_t
    lt.TIFFClose.argtypes = [ctypes.c_void_p]
    lt.TIFFSetWarningHandler.argtypes = [ctypes.c_void_p]
    lt.TIFFSetWarningHandler(None)
    t = lt.TIFFOpen(path.encode(), b"r")
    if not t:
        return 0, b""
    n = lt.TIFFNumberOfDirectories(t)
    buf = ctypes.create_string_buffer(1 << 20)
    got = lt.TIFFReadEncodedStrip(t, 0, buf, len(buf))
    lt.TIFFClose(t)
    return n, buf.raw[:max(got, 0)]


def ascii_entry(tag, s):
    b = s.encode() + b"\0"
    return (tag, 2, len(b), b)


def test_synthetic(tmp):
    rng = np.random.default_rng(11)
    main = rng.integers(0, 255, 96 * 64, dtype=np.uint8).tobytes()
    macro = rng.integers(0, 255, 40 * 30, dtype=np.uint8).tobytes()
    # Classic and BigTIFF, both byte orders, with DateTime and Artist: blanked, pixels kept.
    for order, big in (("<", True), (">", True), (">", False)):
        kind = ("bigtiff " if big else "classic ") + ("big-endian" if order == ">" else "little-endian")
        src = os.path.join(tmp, f"synth{order == '>'}{big}.tiff")
        with open(src, "wb") as f:
            f.write(build_tiff([(96, 64, main, [ascii_entry(306, "2030:01:02 03:04:05"),
                                                ascii_entry(315, "Dr Quixley Zanthorpe")])],
                               order=order, big=big))
        out = src + ".out"
        r = deid(src, "--out", out, "--json")
        j = json.loads(r.stdout) if r.returncode == 0 else {}
        data = read(out) if os.path.exists(out) else b""
        check(r.returncode == 0 and j.get("bigtiff") is big and
              set(j.get("blanked_tiff_tags", [])) == {"DateTime", "Artist"},
              f"{kind}: blanked DateTime and Artist ({r.stderr.strip()})")
        check(b"2030:01:02" not in data and b"Zanthorpe" not in data and main in data,
              f"{kind}: values gone, pixels kept")
        if data:
            check(libtiff_read(out) == (1, main), f"{kind}: libtiff reads the copy's pixels")
    # EXIF and GPS sub-directories: DateTimeOriginal and the GPS values are blanked.
    base = bytearray(build_tiff([(96, 64, main, [(34665, 4, 1, struct.pack("<I", 0xDEADBEEF)),
                                                 (34853, 4, 1, struct.pack("<I", 0xFEEDF00D))])]))
    when = b"2029:11:12 13:14:15\0"
    exif_at = len(base)
    exif = ifd("<", [(36867, 2, len(when), exif_at + 18)], 0)
    base += exif + when
    gps_at = len(base)
    base += ifd("<", [(1, 2, 2, b"S\0"), (2, 5, 3, gps_at + 30)], 0) + struct.pack("<6I", 47, 1, 3, 1, 59, 1)
    base = base.replace(struct.pack("<I", 0xDEADBEEF), struct.pack("<I", exif_at))
    base = base.replace(struct.pack("<I", 0xFEEDF00D), struct.pack("<I", gps_at))
    src = os.path.join(tmp, "exif.tiff")
    with open(src, "wb") as f:
        f.write(base)
    out = src + ".out"
    r = deid(src, "--out", out, "--json")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    data = read(out) if os.path.exists(out) else b""
    check(r.returncode == 0 and {"EXIF DateTimeOriginal", "GPS data"} <= set(j.get("blanked_tiff_tags", [])),
          f"exif: DateTimeOriginal and GPS blanked ({r.stderr.strip()} {j})")
    check(b"2029:11:12" not in data and struct.pack("<6I", 47, 1, 3, 1, 59, 1) not in data and
          b"S\0" not in data[gps_at:gps_at + 30] and libtiff_read(out) == (1, main),
          "exif: values gone from the bytes, pixels read back")
    # NDPI-like: the macro has SourceLens -1; a slide label in tag 65427.
    f32 = lambda v: struct.pack("<f", v)  # noqa: E731
    src = os.path.join(tmp, "synthetic.ndpi")
    with open(src, "wb") as f:
        f.write(build_tiff([(96, 64, main, [(65420, 4, 1, struct.pack("<I", 1)), (65421, 11, 1, f32(20.0)),
                                            ascii_entry(65427, "S26-QZ-7781"),
                                            ascii_entry(306, "2030:01:02 03:04:05")]),
                            (40, 30, macro, [(65420, 4, 1, struct.pack("<I", 1)), (65421, 11, 1, f32(-1.0)),
                                             ascii_entry(306, "2030:01:02 03:04:05")])]))
    out = os.path.join(tmp, "synthetic.out.ndpi")
    r = deid(src, "--out", out, "--json")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    data = read(out) if os.path.exists(out) else b""
    check(r.returncode == 0 and j.get("format") == "hamamatsu-ndpi" and j.get("removed_images") == ["macro"]
          and j.get("directories_out") == 1 and "NDPI SlideLabel" in j.get("blanked_tiff_tags", []),
          f"ndpi: macro removed, slide label blanked ({r.stderr.strip()} {j})")
    check(macro[:64] not in data and macro[-64:] not in data and b"S26-QZ-7781" not in data
          and b"2030:01:02" not in data and main in data, "ndpi: macro bytes and values gone, main kept")
    check(libtiff_read(src)[0] == 2 and libtiff_read(out) == (1, main), "ndpi: one directory left, reads back")
    # Philips-like: XML description with a base64 label and DICOM fields.
    label_b64 = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwMTIzNDU2Nzg5MA" * 4
    xml = ('<?xml version="1.0" encoding="UTF-8" ?><DataObject ObjectType="DPUfsImport">'
           '<Attribute Name="DICOM_PATIENT_NAME" Group="0x0010" Element="0x0010" PMSVR="IString">'
           '&quot;Zanthorpe^Quixley&quot;</Attribute>'
           '<Attribute Name="DICOM_ACQUISITION_DATETIME" Group="0x0008" Element="0x002A" PMSVR="IString">'
           '20300102030405.000000</Attribute>'
           '<Attribute Name="DICOM_PIXEL_SPACING" Group="0x0028" Element="0x0030" PMSVR="IDoubleArray">'
           '&quot;0.000227&quot; &quot;0.000227&quot;</Attribute>'
           '<Attribute Name="PIM_DP_SCANNED_IMAGES" Group="0x301D" Element="0x1003" PMSVR="IDataObjectArray">'
           '<Array><DataObject ObjectType="DPScannedImage">'
           '<Attribute Name="PIM_DP_IMAGE_TYPE" Group="0x301D" Element="0x1004" PMSVR="IString">LABELIMAGE</Attribute>'
           f'<Attribute Name="PIM_DP_IMAGE_DATA" Group="0x301D" Element="0x1005" PMSVR="IString">{label_b64}</Attribute>'
           '</DataObject><DataObject ObjectType="DPScannedImage">'
           '<Attribute Name="PIM_DP_IMAGE_TYPE" Group="0x301D" Element="0x1004" PMSVR="IString">WSI</Attribute>'
           '</DataObject></Array></Attribute></DataObject>')
    src = os.path.join(tmp, "synthetic_philips.tiff")
    with open(src, "wb") as f:
        f.write(build_tiff([(96, 64, main, [ascii_entry(270, xml), ascii_entry(305, "Philips DP v1.0")])]))
    out = os.path.join(tmp, "synthetic_philips.out.tiff")
    r = deid(src, "--out", out, "--json")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    data = read(out) if os.path.exists(out) else b""
    check(r.returncode == 0 and j.get("format") == "philips" and j.get("removed_images") == ["label"] and
          {"DICOM_PATIENT_NAME", "DICOM_ACQUISITION_DATETIME"} <= set(j.get("blanked_xml_attributes", [])),
          f"philips: label removed, DICOM fields blanked ({r.stderr.strip()} {j})")
    check(b"Zanthorpe" not in data and b"20300102" not in data and label_b64[:40].encode() not in data
          and b"LABELIMAGE" not in data and b"0.000227" in data and main in data,
          "philips: values and label data gone, pixel spacing and pixels kept")
    # A loop in the directory chain and a directory past the end of the file.
    good = bytearray(build_tiff([(96, 64, main, [])]))
    first = struct.unpack_from("<I", good, 4)[0]
    loop = bytearray(good)
    struct.pack_into("<I", loop, len(loop) - 4, first)
    p = os.path.join(tmp, "loop.tiff")
    with open(p, "wb") as f:
        f.write(loop)
    refuse(tmp, p, "IFD loop", "loop")
    past = bytearray(good)
    struct.pack_into("<I", past, 4, len(past) + 1000)
    p = os.path.join(tmp, "past.tiff")
    with open(p, "wb") as f:
        f.write(past)
    refuse(tmp, p, "IFD past the end", "end of the file")


def test_mutations(tmp):
    """Corrupted synthetic slides: every run ends with exit 0 or 1 (never a signal or a sanitizer
    report), and a refusal leaves no output behind."""
    rng = np.random.default_rng(1234)
    main = rng.integers(0, 255, 32 * 16, dtype=np.uint8).tobytes()
    f32 = struct.pack("<f", -1.0)
    bases = [build_tiff([(32, 16, main, [ascii_entry(306, "2030:01:02 03:04:05")]),
                         (8, 8, main[:64], [(65420, 4, 1, struct.pack("<I", 1)), (65421, 11, 1, f32)])]),
             build_tiff([(32, 16, main, [ascii_entry(315, "somebody")])], order=">", big=True)]
    bad, codes = [], []
    for i in range(160):
        b = bytearray(bases[i % 2])
        for _ in range(1 + i % 4):
            k = int(rng.integers(0, len(b)))
            b[k] = int(rng.integers(0, 256))
        if i % 10 == 9:
            b = b[:int(rng.integers(8, len(b)))]
        src = os.path.join(tmp, "m.tiff")
        out = os.path.join(tmp, "m.out")
        with open(src, "wb") as f:
            f.write(b)
        if os.path.exists(out):
            os.remove(out)
        r = deid(src, "--out", out)
        codes.append(r.returncode)
        if r.returncode not in (0, 1) or "Sanitizer" in r.stderr or "runtime error" in r.stderr or \
                (r.returncode == 1 and os.path.exists(out)) or (r.returncode == 1 and not r.stderr.strip()):
            bad.append((i, r.returncode, r.stderr[-300:]))
    print(f"mutations: {sum(1 for c in codes if c == 0)} copied, {sum(1 for c in codes if c == 1)} refused")
    check(not bad, f"mutations: 160 corrupted files end in exit 0 or 1 cleanly {bad[:2]}")
    check(not [n for n in os.listdir(tmp) if ".tmp-" in n], "mutations: no temporary left behind")


def test_refusals(tmp):
    png = os.path.join(tmp, "image.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    refuse(tmp, png, "PNG", "png")
    txt = os.path.join(tmp, "quixley_zanthorpe.svs")
    with open(txt, "w") as f:
        f.write("Patient: Quixley Zanthorpe\n")
    refuse(tmp, txt, "text named .svs", "supports only")
    refuse(tmp, os.path.join(tmp, "absent.svs"), "missing file")
    r = subprocess.run([HP_BIN, "deid", "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "usage" in r.stdout, "--help exits 0 with usage on stdout")
    r = subprocess.run([HP_BIN, "deid"], capture_output=True, text=True)
    check(r.returncode == 2, "no arguments exits 2")
    r = subprocess.run([HP_BIN, "deid", png], capture_output=True, text=True)
    check(r.returncode == 2, "no --out exits 2")


with tempfile.TemporaryDirectory() as tmp:
    for t in (test_refusals, test_generic, test_synthetic, test_mutations, test_aperio):
        d = os.path.join(tmp, t.__name__)
        os.mkdir(d)
        t(d)

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
