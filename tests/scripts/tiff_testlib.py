"""Shared by the slide and de-identification tests: TIFF files written byte by byte (classic TIFF
or BigTIFF, either byte order), with any tags, sub-directories (EXIF, GPS, SubIFDs) and strip or
tile data, plus in-place edits of an existing classic TIFF (more tags in a directory, a shorter
tile index). The tests need files that no library here writes on purpose: slides with planted
text in every kind of tag, vendor-like layouts, damaged indexes, absurd claimed sizes.

Not a test itself (its name does not start with test_)."""
import io
import struct

# TIFF field types and their sizes.
BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE = range(1, 13)
IFD, LONG8, SLONG8, IFD8 = 13, 16, 17, 18
SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
FORMATS = {3: "H", 4: "I", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I", 16: "Q", 17: "q", 18: "Q"}


class Tag:
    """One directory entry. `values` is bytes for BYTE/ASCII/UNDEFINED/SBYTE, a str for ASCII,
    numbers for numeric types, (num, den) pairs for rationals, or a Dir / list of Dir for a
    pointer to sub-directories (EXIF, GPS, SubIFDs: written before the directory that points to
    them)."""

    def __init__(self, tag, typ, values):
        self.tag, self.typ, self.values = tag, typ, values


def ascii_tag(tag, s):
    return Tag(tag, ASCII, s)


class Dir:
    """A directory: its tags and, optionally, image data as a list of blocks (strips or tiles),
    whose offsets and byte counts the writer fills in under `offsets_tag`/`counts_tag`."""

    def __init__(self, tags, blocks=None, tiled=False, index=None):
        self.tags = list(tags)
        self.blocks = blocks or []
        self.tiled = tiled
        # index: explicit (offsets, counts) overriding the blocks' real positions (for damage).
        self.index = index


class Writer:
    def __init__(self, order="<", big=False):
        self.o, self.big = order, big
        self.buf = bytearray()
        self.buf += b"II" if order == "<" else b"MM"
        if big:
            self.buf += struct.pack(order + "HHHQ", 43, 8, 0, 0)
        else:
            self.buf += struct.pack(order + "HI", 42, 0)
        self.link = 8 if big else 4  # where the next directory's offset goes

    def _align(self):
        if len(self.buf) % 2:
            self.buf += b"\0"

    def _encode(self, t):
        o = self.o
        if isinstance(t.values, Dir) or (isinstance(t.values, list) and t.values and isinstance(t.values[0], Dir)):
            subs = [t.values] if isinstance(t.values, Dir) else t.values
            offs = [self._write_dir(d, chain=False) for d in subs]
            fmt = "Q" if t.typ in (LONG8, IFD8) else "I"
            return len(offs), b"".join(struct.pack(o + fmt, v) for v in offs)
        if t.typ == ASCII:
            b = t.values.encode() if isinstance(t.values, str) else bytes(t.values)
            if not b.endswith(b"\0"):
                b += b"\0"
            return len(b), b
        if t.typ in (BYTE, UNDEFINED, SBYTE):
            return len(t.values), bytes(t.values)
        if t.typ in (RATIONAL, SRATIONAL):
            f = "I" if t.typ == RATIONAL else "i"
            return len(t.values), b"".join(struct.pack(o + f + f, n, d) for n, d in t.values)
        vals = t.values if isinstance(t.values, (list, tuple)) else [t.values]
        return len(vals), b"".join(struct.pack(o + FORMATS[t.typ], v) for v in vals)

    def _write_dir(self, d, chain=True):
        o, big = self.o, self.big
        tags = list(d.tags)
        if d.blocks or d.index:
            offs, counts = [], []
            for blk in d.blocks:
                self._align()
                offs.append(len(self.buf))
                counts.append(len(blk))
                self.buf += blk
            if d.index:
                offs, counts = d.index
            t_off, t_cnt = (324, 325) if d.tiled else (273, 279)
            typ = LONG8 if big else LONG
            tags += [Tag(t_off, typ, list(offs)), Tag(t_cnt, typ, list(counts))]
        entries = []
        inline = 8 if big else 4
        for t in sorted(tags, key=lambda t: t.tag):
            count, payload = self._encode(t)
            if len(payload) > inline:
                self._align()
                pos = len(self.buf)
                self.buf += payload
                payload = struct.pack(o + ("Q" if big else "I"), pos)
            entries.append((t.tag, t.typ, count, payload.ljust(inline, b"\0")))
        self._align()
        at = len(self.buf)
        if big:
            self.buf += struct.pack(o + "Q", len(entries))
            for tag, typ, count, payload in entries:
                self.buf += struct.pack(o + "HHQ", tag, typ, count) + payload
            nxt = len(self.buf)
            self.buf += struct.pack(o + "Q", 0)
        else:
            self.buf += struct.pack(o + "H", len(entries))
            for tag, typ, count, payload in entries:
                self.buf += struct.pack(o + "HHI", tag, typ, count) + payload
            nxt = len(self.buf)
            self.buf += struct.pack(o + "I", 0)
        if chain:
            struct.pack_into(o + ("Q" if big else "I"), self.buf, self.link, at)
            self.link = nxt
        return at

    def add(self, d):
        self._write_dir(d)
        return self

    def bytes(self):
        return bytes(self.buf)


def build(dirs, order="<", big=False):
    w = Writer(order, big)
    for d in dirs:
        w.add(d)
    return w.bytes()


def image_tags(w, h, spp=3, compression=1, photometric=None, tile=None, rows=None, extra=()):
    """The structural tags of an 8-bit image (strips of `rows` rows, or tiles of `tile` px)."""
    tags = [Tag(256, LONG, w), Tag(257, LONG, h), Tag(258, SHORT, [8] * spp), Tag(259, SHORT, compression),
            Tag(262, SHORT, photometric if photometric is not None else (2 if spp == 3 else 1)),
            Tag(277, SHORT, spp), Tag(284, SHORT, 1)]
    if tile:
        tags += [Tag(322, SHORT, tile), Tag(323, SHORT, tile)]
    else:
        tags += [Tag(278, LONG, rows or h)]
    return tags + list(extra)


def tiles_of(arr, tile):
    """Raw (uncompressed) tiles of an HxWxC uint8 numpy array, padded with white, row by row."""
    import numpy as np
    h, w = arr.shape[:2]
    out = []
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            t = np.full((tile, tile) + arr.shape[2:], 255, np.uint8)
            part = arr[y:y + tile, x:x + tile]
            t[:part.shape[0], :part.shape[1]] = part
            out.append(t.tobytes())
    return out


def jpeg_bytes(arr, quality=90):
    from PIL import Image
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "JPEG", quality=quality)
    return b.getvalue()


# ---- edits of an existing classic TIFF ----

def _classic(buf):
    o = "<" if buf[:2] == b"II" else ">"
    if struct.unpack_from(o + "H", buf, 2)[0] != 42:
        raise ValueError("not a classic TIFF")
    return o


def directories(buf):
    """[(offset, link_pos)] of the main chain of a classic TIFF."""
    o = _classic(buf)
    out, link = [], 4
    off = struct.unpack_from(o + "I", buf, 4)[0]
    while off:
        n = struct.unpack_from(o + "H", buf, off)[0]
        out.append((off, link))
        link = off + 2 + 12 * n
        off = struct.unpack_from(o + "I", buf, link)[0]
    return out


def entries(buf, off):
    """{tag: (type, count, raw 4-byte value field)} of the classic directory at `off`."""
    o = _classic(buf)
    n = struct.unpack_from(o + "H", buf, off)[0]
    res = {}
    for i in range(n):
        tag, typ, cnt = struct.unpack_from(o + "HHI", buf, off + 2 + 12 * i)
        res[tag] = (typ, cnt, bytes(buf[off + 2 + 12 * i + 8:off + 2 + 12 * i + 12]))
    return res


def read_value(buf, off, tag):
    """The raw value bytes of `tag` in the classic directory at `off`."""
    o = _classic(buf)
    typ, cnt, field = entries(buf, off)[tag]
    size = SIZES[typ] * cnt
    if size <= 4:
        return field[:size]
    pos = struct.unpack(o + "I", field)[0]
    return bytes(buf[pos:pos + size])


def add_tags(buf, index, tags):
    """A copy of classic TIFF `buf` whose directory `index` also holds `tags` (replacing tags of
    the same number): the directory is rewritten at the end of the file with its values, and the
    chain relinked to it. Pixel data stays where it is."""
    o = _classic(buf)
    out = bytearray(buf)
    off, link = directories(buf)[index]
    n = struct.unpack_from(o + "H", buf, off)[0]
    old = {}
    for i in range(n):
        raw = bytes(buf[off + 2 + 12 * i:off + 14 + 12 * i])
        old[struct.unpack_from(o + "H", raw)[0]] = raw
    nxt = struct.unpack_from(o + "I", buf, off + 2 + 12 * n)[0]
    w = Writer(o)
    w.buf = out
    new = {}
    for t in tags:
        count, payload = w._encode(t)
        if len(payload) > 4:
            w._align()
            pos = len(w.buf)
            w.buf += payload
            payload = struct.pack(o + "I", pos)
        new[t.tag] = struct.pack(o + "HHI", t.tag, t.typ, count) + payload.ljust(4, b"\0")
    old.update(new)
    w._align()
    at = len(w.buf)
    w.buf += struct.pack(o + "H", len(old))
    for tag in sorted(old):
        w.buf += old[tag]
    w.buf += struct.pack(o + "I", nxt)
    struct.pack_into(o + "I", w.buf, link, at)
    return bytes(w.buf)


def set_count(buf, index, tag, count):
    """A copy of classic TIFF `buf` whose directory `index` declares `count` values for `tag`
    (the values themselves stay where they are: a shorter count cuts the index)."""
    o = _classic(buf)
    out = bytearray(buf)
    off, _ = directories(buf)[index]
    n = struct.unpack_from(o + "H", buf, off)[0]
    for i in range(n):
        e = off + 2 + 12 * i
        if struct.unpack_from(o + "H", buf, e)[0] == tag:
            struct.pack_into(o + "I", out, e + 4, count)
            return bytes(out)
    raise KeyError(tag)
