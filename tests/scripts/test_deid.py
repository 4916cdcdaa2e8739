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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiff_testlib as tl  # noqa: E402

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
            check(f"removed TIFF tag {t}" in r.stdout, f"generic {name}: reports {t}")
        data = read(out)
        check(not any(s.encode() in data for s in secrets), f"generic {name}: values gone from the bytes")
        im = Image.open(out)
        check(np.array_equal(np.asarray(im.convert("RGB")), arr), f"generic {name}: pixels identical")
        check(315 not in im.tag_v2 and 306 not in im.tag_v2, f"generic {name}: Artist and DateTime are gone")


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
              set(j.get("removed_tiff_tags", [])) == {"DateTime", "Artist"},
              f"{kind}: removed DateTime and Artist ({r.stderr.strip()})")
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
    check(r.returncode == 0 and {"EXIF", "GPS"} <= set(j.get("removed_tiff_tags", [])),
          f"exif: the EXIF and GPS directories removed ({r.stderr.strip()} {j})")
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
          and j.get("directories_out") == 1 and "NDPI SlideLabel" in j.get("removed_tiff_tags", []),
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


# ---- planted text: every text-capable place of each supported layout ----

class Plants:
    """Distinct strings, each planted in one place; none may survive de-identification."""

    def __init__(self, prefix):
        self.prefix, self.all = prefix, []

    def __call__(self, where):
        s = f"{self.prefix}{len(self.all):02d}-Qz{where[:3].upper()}"
        self.all.append((s, where))
        return s


def longs(text, order):
    """Text stored as LONG values, so that the file's bytes spell it."""
    b = text.encode()
    b = b.ljust(-(-len(b) // 4) * 4, b"_")
    return list(struct.unpack(f"{order}{len(b) // 4}I", b))


def text_tags(p, where, software=True, description=True, order="<"):
    """Tags that can carry text in a TIFF directory, each with its own planted string."""
    T = tl.Tag
    tags = [tl.ascii_tag(269, p(f"{where} DocumentName")), tl.ascii_tag(271, p(f"{where} Make")),
            tl.ascii_tag(272, p(f"{where} Model")), tl.ascii_tag(285, p(f"{where} PageName")),
            tl.ascii_tag(306, p(f"{where} DateTime")), tl.ascii_tag(315, p(f"{where} Artist")),
            tl.ascii_tag(316, p(f"{where} HostComputer")), tl.Tag(334, tl.SHORT, 3),
            tl.ascii_tag(333, p(f"{where} InkNames") + "\0G\0B"),
            tl.ascii_tag(337, p(f"{where} TargetPrinter")), tl.ascii_tag(33432, p(f"{where} Copyright")),
            T(700, tl.BYTE, ('<x:xmpmeta><dc:creator>' + p(f"{where} XMP") + '</dc:creator></x:xmpmeta>').encode()),
            T(33723, tl.UNDEFINED, b"\x1c\x02\x05\x00\x10" + p(f"{where} IPTC").encode()),
            T(34377, tl.BYTE, b"8BIM\x04\x04\0\0" + p(f"{where} Photoshop").encode()),
            T(37510, tl.UNDEFINED, b"ASCII\0\0\0" + p(f"{where} UserComment").encode()),
            tl.ascii_tag(65000, p(f"{where} private ASCII")),
            T(65001, tl.UNDEFINED, p(f"{where} private UNDEFINED").encode()),
            T(65002, tl.BYTE, p(f"{where} private BYTE").encode()),
            T(65003, tl.LONG, longs(p(f"{where} text in LONGs"), order)),
            T(34665, tl.LONG, tl.Dir([
                tl.ascii_tag(36867, p(f"{where} EXIF DateTimeOriginal")),
                T(37500, tl.UNDEFINED, p(f"{where} EXIF MakerNote").encode()),
                tl.ascii_tag(42016, p(f"{where} EXIF ImageUniqueID")),
                tl.ascii_tag(42032, p(f"{where} EXIF CameraOwnerName")),
                tl.ascii_tag(42033, p(f"{where} EXIF BodySerialNumber")),
                T(40965, tl.LONG, tl.Dir([tl.ascii_tag(1, p(f"{where} Interop index"))]))])),
            T(34853, tl.LONG, tl.Dir([
                tl.ascii_tag(1, "N"), T(2, tl.RATIONAL, [(47, 1), (3, 1), (59, 1)]),
                tl.ascii_tag(18, p(f"{where} GPSMapDatum")),
                T(28, tl.UNDEFINED, b"ASCII\0\0\0" + p(f"{where} GPSAreaInformation").encode()),
                tl.ascii_tag(29, p(f"{where} GPSDateStamp"))])),
            T(330, tl.LONG, [tl.Dir(tl.image_tags(8, 8, spp=1, extra=[tl.ascii_tag(269, p(f"{where} SubIFD name"))]),
                                    blocks=[p(f"{where} SubIFD pixels").encode().ljust(64, b"_")])]),
            ]
    if software:
        tags.append(tl.ascii_tag(305, p(f"{where} Software")))
    if description:
        tags.append(tl.ascii_tag(270, "Patient: DOE^JANE MRN " + p(f"{where} ImageDescription")))
    return tags


def slide_view(path):
    """What a user's tools see: OpenSlide's levels, MPP and level-0 pixels, and histoplan's own
    `slide info --json`."""
    s = openslide.OpenSlide(path)
    w, h = s.level_dimensions[0]
    px = np.asarray(s.read_region((0, 0), 0, (w, h)))
    props = {k: s.properties.get(k) for k in ("openslide.mpp-x", "openslide.mpp-y", "openslide.objective-power",
                                                "tiff.XResolution", "tiff.YResolution", "tiff.ResolutionUnit")}
    info = subprocess.run([HP_BIN, "slide", "info", path, "--json"], capture_output=True, text=True)
    j = json.loads(info.stdout) if info.returncode == 0 else {}
    return {"vendor": s.properties.get("openslide.vendor"), "levels": s.level_dimensions, "props": props,
            "pixels": px, "hp_mpp": (j.get("mpp_x"), j.get("mpp_y")), "hp_levels": j.get("levels"),
            "assoc": sorted(s.associated_images)}


def planted_run(tmp, name, src, plants, expect_removed, expect_vendor, source_assoc=(), expect_assoc=()):
    raw = read(src)
    missing = [w for s, w in plants.all if s.encode() not in raw]
    check(not missing, f"{name}: the source holds every planted string ({len(plants.all)}; missing {missing[:3]})")
    try:
        before = slide_view(src)
    except Exception as e:  # noqa: BLE001
        check(False, f"{name}: OpenSlide opens the source ({e})")
        return
    check(before["vendor"] == expect_vendor and before["assoc"] == sorted(source_assoc),
          f"{name}: OpenSlide reads the source as {expect_vendor} with {sorted(source_assoc)} "
          f"({before['vendor']}, {before['assoc']})")
    out = os.path.join(tmp, name + ".deid")
    r = deid(src, "--out", out, "--json")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    check(r.returncode == 0, f"{name}: exit 0 ({r.stderr.strip()[-300:]})")
    if r.returncode:
        return
    data = read(out)
    left = [w for s, w in plants.all if s.encode() in data]
    check(not left, f"{name}: no planted string remains anywhere in the copy's bytes (left: {left})")
    said = [w for s, w in plants.all if s in r.stdout.replace(src, "") or s in r.stderr]
    check(not said, f"{name}: the report names no planted value ({said[:3]})")
    removed = set(j.get("removed_tiff_tags", []))
    check(set(expect_removed) <= removed, f"{name}: --json lists the removed tags {sorted(set(expect_removed) - removed)} missing")
    try:
        after = slide_view(out)
    except Exception as e:  # noqa: BLE001
        check(False, f"{name}: OpenSlide opens the copy ({e})")
        return
    check(after["vendor"] == before["vendor"], f"{name}: the copy is still read as {before['vendor']} ({after['vendor']})")
    check(after["levels"] == before["levels"] and after["hp_levels"] == before["hp_levels"],
          f"{name}: same levels and dimensions ({after['levels']})")
    check(after["props"] == before["props"], f"{name}: same MPP, objective power and resolution tags ({after['props']})")
    check(after["hp_mpp"] == before["hp_mpp"] and before["hp_mpp"][0] is not None,
          f"{name}: histoplan reads the same MPP from the copy ({before['hp_mpp']} -> {after['hp_mpp']})")
    check(np.array_equal(after["pixels"], before["pixels"]), f"{name}: level-0 pixels identical")
    check(after["assoc"] == sorted(expect_assoc), f"{name}: associated images {after['assoc']} (expected {sorted(expect_assoc)})")
    # A copy of the copy: nothing left to remove.
    out2 = out + "2"
    r = deid(out, "--out", out2, "--json")
    j2 = json.loads(r.stdout) if r.returncode == 0 else {}
    check(r.returncode == 0 and j2.get("changes") == [] and read(out2) == data, f"{name}: a second pass finds nothing")


GENERIC_REMOVED = ["ImageDescription", "Software", "DateTime", "Artist", "HostComputer", "Make", "Model",
                   "DocumentName", "PageName", "XMP", "IPTC", "Photoshop", "EXIF", "GPS", "SubIFDs",
                   "Copyright", "tag 65000", "tag 65001", "tag 65002", "tag 65003"]


def test_planted(tmp):
    rng = np.random.default_rng(5)
    # Generic tiled TIFF, two levels, with resolution tags (classic little-endian, BigTIFF big-endian).
    for order, big in (("<", False), (">", True)):
        p = Plants("GENPLANT" + ("B" if big else "C"))
        l0 = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
        l1 = l0[::2, ::2].copy()
        res = [tl.Tag(282, tl.RATIONAL, [(40000, 1)]), tl.Tag(283, tl.RATIONAL, [(40000, 1)]), tl.Tag(296, tl.SHORT, 3)]
        dirs = [tl.Dir(tl.image_tags(300, 200, tile=64, extra=res + text_tags(p, "level 0", order=order)), tl.tiles_of(l0, 64), tiled=True),
                tl.Dir(tl.image_tags(150, 100, tile=64, extra=res + [tl.Tag(254, tl.LONG, 1)] + text_tags(p, "level 1", order=order)),
                       tl.tiles_of(l1, 64), tiled=True)]
        src = os.path.join(tmp, f"generic{'_big' if big else ''}.tiff")
        with open(src, "wb") as f:
            f.write(tl.build(dirs, order, big))
        planted_run(tmp, "generic " + ("BigTIFF big-endian" if big else "classic little-endian"), src, p,
                    GENERIC_REMOVED, "generic-tiff")

    # The real Aperio slide, copied, with every kind of tag added to its directories and fields
    # added to its description (a known identifying key, an unknown key, text without a key).
    if os.path.exists(SVS):
        p = Plants("SVSPLANT")
        buf = read(SVS)
        d0 = tl.directories(buf)[0][0]
        desc = tl.read_value(buf, d0, 270).rstrip(b"\0").decode()
        head, rest = desc.split("|", 1)
        desc = (head.replace("Library", "Library " + p("description header"), 1) + "|" + rest +
                f"|Patient = DOE^JANE {p('description Patient')}|{p('description unknown key')} = 7"
                f"|Notes = {p('description Notes')}|{p('description text without a key')}"
                f"|SuperResolved = yes {p('description SuperResolved')}|SRModel = {p('description SRModel')}"
                f"|SRPrecision = {p('description SRPrecision')}")
        buf = tl.add_tags(buf, 0, text_tags(p, "level 0", description=False) + [tl.ascii_tag(270, desc)])
        buf = tl.add_tags(buf, 1, text_tags(p, "thumbnail"))
        buf = tl.add_tags(buf, 2, [tl.ascii_tag(269, p("label DocumentName"))])
        src = os.path.join(tmp, "cmu_planted.svs")
        with open(src, "wb") as f:
            f.write(buf)
        planted_run(tmp, "aperio", src, p, [t for t in GENERIC_REMOVED if t != "ImageDescription"], "aperio",
                    source_assoc=["label", "macro", "thumbnail"], expect_assoc=["thumbnail"])
    else:
        print("skipped: real slide not found at", SVS)

    # NDPI-like: JPEG strips, SourceLens per directory (20 for levels, -1 for the macro), the
    # Software prefix OpenSlide looks for, the private text tags of the format.
    p = Plants("NDPIPLANT")
    l0 = rng.integers(60, 200, (240, 320, 3), dtype=np.uint8)
    T = tl.Tag
    f32 = lambda tag, v: T(tag, tl.FLOAT, v)  # noqa: E731
    res = [T(282, tl.RATIONAL, [(40000, 1)]), T(283, tl.RATIONAL, [(40000, 1)]), T(296, tl.SHORT, 3)]
    ndpi_text = lambda where: [  # noqa: E731
        tl.ascii_tag(65427, p(f"{where} NDPI reference")), tl.ascii_tag(65442, p(f"{where} NDPI serial")),
        tl.ascii_tag(65468, p(f"{where} NDPI barcode")),
        tl.ascii_tag(65449, "Objective.Lens.Magnificant=20\r\nNDP.S/N=" + p(f"{where} NDPI property map") + "\r\n")]
    dirs = []
    for i, (w, h, lens) in enumerate(((320, 240, 20.0), (160, 120, 20.0), (80, 60, -1.0))):
        img = l0[::320 // w, ::320 // w].copy()
        tags = tl.image_tags(w, h, compression=7, photometric=6, extra=res + [
            T(65420, tl.LONG, 1), f32(65421, lens), f32(65422, 0.0), f32(65423, 0.0), T(65424, tl.SLONG, 0)])
        tags = [t for t in tags if t.tag != 305]
        tags += text_tags(p, f"directory {i}", software=False) + ndpi_text(f"directory {i}")
        tags.append(tl.ascii_tag(305, "NDP.scan 3.2.0 " + p(f"directory {i} Software")))
        dirs.append(tl.Dir(tags, [tl.jpeg_bytes(img)]))
    src = os.path.join(tmp, "planted.ndpi")
    with open(src, "wb") as f:
        f.write(tl.build(dirs))
    planted_run(tmp, "ndpi-like", src, p,
                [t for t in GENERIC_REMOVED if t != "Software"] + ["NDPI SlideLabel", "NDPI ScannerSerialNumber",
                                                                     "NDPI Barcode", "NDPI PropertyMap"],
                "hamamatsu", source_assoc=["macro"])

    # Philips-like: tiled levels, the XML description with DICOM fields, a base64 label, a
    # site's own attribute, a comment, and a macro directory.
    p = Plants("PHILPLANT")
    label_jpeg = tl.jpeg_bytes(rng.integers(0, 255, (16, 24, 3), dtype=np.uint8))
    import base64
    label_b64 = base64.b64encode(label_jpeg).decode()

    def attr(name, value, pmsvr="IString"):
        return f'<Attribute Name="{name}" Group="0x0000" Element="0x0000" PMSVR="{pmsvr}">{value}</Attribute>'

    def rep(spacing):
        return ('<DataObject ObjectType="PixelDataRepresentation">' +
                attr("DICOM_PIXEL_SPACING", f'&quot;{spacing}&quot; &quot;{spacing}&quot;', "IDoubleArray") +
                attr("PIIM_PIXEL_DATA_REPRESENTATION_NUMBER", "0", "IUInt16") + '</DataObject>')
    xml = ('<?xml version="1.0" encoding="UTF-8" ?><DataObject ObjectType="DPUfsImport">' +
           attr("DICOM_PATIENT_NAME", f"&quot;DOE^JANE {p('XML patient name')}&quot;") +
           attr("DICOM_PATIENT_ID", p("XML patient id")) +
           attr("DICOM_ACQUISITION_DATETIME", p("XML acquisition time")) +
           attr("DICOM_DEVICE_SERIAL_NUMBER", p("XML device serial")) +
           attr("PIM_DP_UFS_BARCODE", p("XML barcode")) +
           attr("SITE_PRIVATE_NOTE", p("XML site attribute")) +
           attr("DICOM_PIXEL_SPACING", '&quot;0.00025&quot; &quot;0.00025&quot;', "IDoubleArray") +
           f'<!-- {p("XML comment")} -->' +
           '<Attribute Name="PIM_DP_SCANNED_IMAGES" Group="0x301D" Element="0x1003" PMSVR="IDataObjectArray"><Array>'
           '<DataObject ObjectType="DPScannedImage">' + attr("PIM_DP_IMAGE_TYPE", "WSI") +
           attr("DICOM_DERIVATION_DESCRIPTION", p("XML derivation")) +
           '<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE" Group="0x1001" Element="0x8B01" '
           'PMSVR="IDataObjectArray"><Array>' + rep("0.00025") + rep("0.0005") + '</Array></Attribute>'
           '</DataObject><DataObject ObjectType="DPScannedImage">' + attr("PIM_DP_IMAGE_TYPE", "LABELIMAGE") +
           attr("PIM_DP_IMAGE_DATA", label_b64) + '</DataObject></Array></Attribute></DataObject>')
    l0 = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    l1 = l0[::2, ::2].copy()
    macro = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    dirs = [tl.Dir(tl.image_tags(256, 256, tile=64, extra=text_tags(p, "level 0", software=False, description=False) +
                                 [tl.ascii_tag(305, "Philips DP v1.0 " + p("Software")), tl.ascii_tag(270, xml)]),
                   tl.tiles_of(l0, 64), tiled=True),
            tl.Dir(tl.image_tags(128, 128, tile=64, extra=[T(254, tl.LONG, 1)] + text_tags(p, "level 1")),
                   tl.tiles_of(l1, 64), tiled=True),
            tl.Dir(tl.image_tags(30, 20, extra=[tl.ascii_tag(270, "Macro " + p("macro description"))]), [macro.tobytes()])]
    src = os.path.join(tmp, "planted_philips.tiff")
    with open(src, "wb") as f:
        f.write(tl.build(dirs))
    p.all.append((label_b64[:40], "label image data"))
    planted_run(tmp, "philips-like", src, p, [t for t in GENERIC_REMOVED if t not in ("Software", "ImageDescription")],
                "philips", source_assoc=["label", "macro"])


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
    for t in (test_refusals, test_generic, test_synthetic, test_planted, test_mutations, test_aperio):
        d = os.path.join(tmp, t.__name__)
        os.mkdir(d)
        t(d)

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
