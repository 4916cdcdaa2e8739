"""Every picture histoplan writes carries its legend: a colour key with the class names (or a
value ramp with its range), a scale bar in µm or mm, and the slide id; the overlay's class
colours stay apart over H&E for every kind of colour vision, and the tissue shows under them.

Runs the command line as a user does: `histoplan synth`, `histoplan analyze`, `histoplan report
build --slide`, then reads every PNG of the analysis folder and of the report's images/ with PIL:
- the PNG's "histoplan:legend" text chunk (the band's layout) names the slide id of findings.json
  and a scale bar whose length in µm matches its length in pixels at the picture's own scale,
  worked out here from findings.json (slide size and MPP) and the picture's size;
- pixels: the scale bar is black where the layout puts it, each swatch has the colour the layout
  gives, the ramp shows viridis from 0 to 1, and the band holds dark text pixels; the overlay's
  key names exactly the findings' classes;
- contrast: in situ and invasive key colours, blended at the overlay's opacity over eosin pink and
  haematoxylin purple, differ by at least 30 CIELAB ΔE for normal vision and simulated protanopia,
  deuteranopia and tritanopia (Machado, Oliveira and Fernandes 2009, severity 1);
- the overlay's picture keeps the tissue visible: its lightness follows the slide's own thumbnail
  (OpenSlide) over analysed tissue (correlation above 0.8).
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as t  # noqa: E402

try:
    import numpy as np
    import openslide
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"skipped: numpy, PIL or openslide not available ({e})")
    sys.exit(77)

check = t.Checks()


def srgb2lin(c):
    c = np.asarray(c, float) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lin2srgb(c):
    c = np.clip(c, 0, 1)
    return 255 * np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def lab(rgb):
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    x = m @ srgb2lin(rgb) / np.array([0.95047, 1, 1.08883])
    f = np.where(x > 0.008856, np.cbrt(x), 7.787 * x + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


# Machado et al. (2009), severity 1.0, on linear RGB.
VISION = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
# Typical stained tissue: eosin-rich stroma and haematoxylin-rich nuclei.
HE = {"eosin pink": (235, 160, 200), "haematoxylin purple": (100, 70, 160)}


def delta_e(a, b, vision):
    sim = lambda c: lin2srgb(VISION[vision] @ srgb2lin(c))  # noqa: E731
    return float(np.linalg.norm(lab(sim(a)) - lab(sim(b))))


def viridis_ends():
    return (68, 1, 84), (253, 231, 37)


def layout_of(path):
    im = Image.open(path)
    text = im.info.get("histoplan:legend")
    return im.convert("RGB"), (json.loads(text) if text else None)


def check_legend(path, slide_id, um_per_px, keys=None):
    """The legend of one picture; `um_per_px` is its picture's scale as worked out here."""
    name = os.path.relpath(path, os.path.dirname(os.path.dirname(path)))
    im, lay = layout_of(path)
    if not check(lay is not None, f"{name}: has a legend layout"):
        return None, None
    px = np.asarray(im)
    mw, mh = lay["map"]
    check(lay.get("slide_id") == slide_id, f"{name}: slide id {lay.get('slide_id')} = {slide_id}")
    sb = lay["scale_bar"]
    check(abs(sb["um_per_px"] - um_per_px) <= 0.02 * um_per_px,
          f"{name}: scale {sb['um_per_px']:.4g} µm/px = {um_per_px:.4g} from the slide's size and MPP")
    check(abs(sb["px"] * um_per_px - sb["um"]) <= max(um_per_px, 0.02 * sb["um"]),
          f"{name}: scale bar {sb['px']} px = {sb['um']:g} µm ({sb['label']})")
    check(sb["label"].endswith("µm") or sb["label"].endswith("mm"), f"{name}: bar labelled in µm or mm")
    bar = px[sb["y"]:sb["y"] + sb["thickness"], sb["x"]:sb["x"] + sb["px"]]
    check(bar.size > 0 and bar.max() <= 40, f"{name}: the scale bar is drawn where the layout says")
    check(sb["y"] > mh, f"{name}: the bar lies in the band under the picture")
    band = px[mh + 1:]
    check((band.max(axis=2) < 100).sum() > 200, f"{name}: the band holds text")
    if keys is not None:
        got = [c["name"] for c in lay.get("classes", [])]
        check(got == keys, f"{name}: key names {got} = {keys}")
        for c in lay.get("classes", []):
            x, y, s = c["x"], c["y"], c["size"]
            sw = px[y + 1:y + s - 1, x + 1:x + s - 1].reshape(-1, 3)
            check(len(sw) > 0 and (np.abs(sw.astype(int) - c["rgb"]).max() <= 1),
                  f"{name}: swatch '{c['name']}' painted {c['rgb']}")
    if "ramp" in lay:
        r = lay["ramp"]
        row = px[r["y"] + r["h"] // 2, r["x"]:r["x"] + r["w"]].astype(int)
        lo, hi = viridis_ends()
        check(r["lo"] == 0 and r["hi"] == 1, f"{name}: ramp from 0 to 1")
        check(np.abs(row[0] - lo).max() <= 3 and np.abs(row[-1] - hi).max() <= 3,
              f"{name}: ramp runs viridis {tuple(row[0])} .. {tuple(row[-1])}")
    return im, lay


def main():
    with tempfile.TemporaryDirectory() as tmp:
        slide = os.path.join(tmp, "s.tiff")
        rc, log = t.run(["synth", "--out", slide, "--size", "6144x6144", "--seed", "1401"])
        check(rc == 0, "synth")
        fpath = t.analyze(tmp, slide, os.path.join(tmp, "out"))
        doc = t.load(fpath)
        d = os.path.dirname(fpath)
        sid = doc["slide"]["slide_id"]
        mpp = doc["slide"]["mpp_x"]
        sw = doc["slide"]["level0_width_px"]
        classes = [c["name"] for c in doc["classes"]]
        tiles = [ln.split(",") for ln in open(os.path.join(d, "tiles.csv")).read().splitlines()]
        head = tiles[0]
        tile_um = float(tiles[1][head.index("size")]) * mpp

        # Heatmaps, uncertainty and the mask: one square of 8 px per tile.
        for c in doc["classes"]:
            p = os.path.join(d, doc["outputs"]["heatmaps"][c["name"]])
            im, lay = check_legend(p, sid, tile_um / 8)
            if lay:
                check(c["name"] in lay.get("title", ""), f"{os.path.basename(p)}: titled with its class")
        check_legend(os.path.join(d, "uncertainty.png"), sid, tile_um / 8)
        check_legend(os.path.join(d, "mask.png"), sid, tile_um / 8, ["analysed (tissue)", "not analysed"])

        # The overlay: the class key, the contrast of in situ against invasive, tissue visible.
        im, lay = layout_of(os.path.join(d, "overlay.png"))
        mw, mh = lay["map"]
        ov, lay = check_legend(os.path.join(d, "overlay.png"), sid, sw * mpp / mw, classes)
        cat = {c["category"]: c["name"] for c in doc["classes"]}
        key = {c["name"]: tuple(c["rgb"]) for c in lay["classes"]}
        ins, inv = key[cat["in-situ"]], key[cat["invasive"]]
        for bg_name, bg in HE.items():
            for vision in VISION:
                a = 0.5
                e = delta_e([(1 - a) * b + a * c for b, c in zip(bg, ins)],
                            [(1 - a) * b + a * c for b, c in zip(bg, inv)], vision)
                check(e >= 30, f"in situ {ins} vs invasive {inv} over {bg_name}, {vision}: ΔE {e:.1f} >= 30")
        names = list(key)
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                e = delta_e(key[names[i]], key[names[j]], "normal")
                check(e >= 20, f"key colours {names[i]} and {names[j]} apart: ΔE {e:.1f} >= 20")

        s = openslide.OpenSlide(slide)
        th = np.asarray(s.get_thumbnail((mw, mh)).convert("RGB").resize((mw, mh)), float)
        s.close()
        pic = np.asarray(ov, float)[:mh, :mw]
        lum = lambda a: a @ [0.299, 0.587, 0.114]  # noqa: E731
        # Analysed tissue: pixels whose colour the overlay changed, away from the glass.
        changed = (np.abs(pic - th).max(axis=2) > 12) & (lum(th) < 225)
        check(changed.sum() > 0.05 * mw * mh, f"overlay: colours over {changed.mean():.0%} of the picture")
        # Detail, not the tiles' colour steps: each pixel less the mean of its 9 x 9 neighbourhood.
        def detail(a):
            k = 9
            p_ = np.pad(a, k // 2, mode="edge")
            c = np.cumsum(np.cumsum(p_, 0), 1)
            c = np.pad(c, ((1, 0), (1, 0)))
            box = (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)
            return a - box
        r = np.corrcoef(detail(lum(pic))[changed], detail(lum(th))[changed])[0, 1]
        check(r > 0.6, f"overlay: tissue detail visible under the colours (correlation {r:.2f} > 0.6)")

        # The report's images: the overlay as written and each region thumbnail with its own key.
        case = t.case_file(tmp)
        rep = os.path.join(tmp, "rep")
        rc, log = t.build(case, [fpath], rep, ["--slide", slide])
        check(rc == 0, f"report build ({rc}) {log[-300:] if rc else ''}")
        rj = t.load(os.path.join(rep, "report.json"))
        sl = rj["slides"][0]
        scale = mw / sw
        pngs = sorted(os.listdir(os.path.join(rep, "images")))
        check(len(pngs) >= 3, f"report images: {len(pngs)}")
        for r_ in sl["regions"]:
            thumb = r_.get("thumbnail")
            if thumb:
                p = os.path.join(rep, thumb["file"])
                im, tl = layout_of(p)
                # The crop's scale: its longer side spans the crop of the overlay's picture.
                bx = r_["bbox_level0"]
                check_legend(p, sid, tl["scale_bar"]["um_per_px"], classes)
                tw, tht = tl["map"]
                check(max(tw, tht) == 192, f"{thumb['file']}: the picture is 192 px on its longer side")
                # The crop is the region's box with a quarter of its size around it (less at the
                # picture's edges), so 192 px span between 1 and 1.5 times the box's longer side.
                span = tl["scale_bar"]["um_per_px"] * 192
                side = max(bx[2], bx[3]) * mpp
                check(0.95 * side <= span <= 1.55 * side + 8 * mpp / scale,
                      f"{thumb['file']}: 192 px span {span:.0f} µm for a box of {side:.0f} µm")
                check((im.size[0], im.size[1]) == (thumb["width_px"], thumb["height_px"]),
                      f"{thumb['file']}: report.json gives the file's size")
                del bx
            tis = r_.get("tissue_thumbnail")
            if tis:
                p = os.path.join(rep, tis["file"])
                im, tl = layout_of(p)
                check_legend(p, sid, tl["scale_bar"]["um_per_px"])
        for p in pngs:
            im, tl = layout_of(os.path.join(rep, "images", p))
            check(tl is not None and tl.get("slide_id") == sid, f"report image {p}: legend with the slide id")
    check.exit()


if __name__ == "__main__":
    main()
