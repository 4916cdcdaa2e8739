"""OpenCV's own functions, from Python (python3-opencv), on the inputs tests/unit/test_cv_image.c
wrote, compared with what histoplan's io/cv_image.h returned for them. Not a test by itself (the
C test runs it): exits 0 when everything matches, 1 listing what does not.

usage: cv_reference.py DIR W H"""
import os
import sys

import cv2
import numpy as np


def main():
    d, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    def raw(name, dtype, shape):
        return np.fromfile(os.path.join(d, name), dtype=dtype).reshape(shape)

    rgb = raw("rgb.u8", np.uint8, (h, w, 3))
    mask = raw("mask.u8", np.uint8, (h, w))
    bad = []

    hsv = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 2] /= np.float32(255)
    got = raw("hsv.f32", np.float32, (h, w, 3))
    if not np.array_equal(hsv, got):
        bad.append(f"HSV: max difference {np.abs(hsv - got).max()}")
    # The exact HSV (double) agrees to float precision; hue in degrees, s and v in 0..1.
    f = rgb.astype(np.float64)
    mx, mn = f.max(axis=2), f.min(axis=2)
    s_exact = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1), 0)
    if np.abs(got[..., 1] - s_exact).max() > 1e-6:
        bad.append("saturation: off the exact value by more than 1e-6")

    blur = cv2.blur(rgb, (7, 7), borderType=cv2.BORDER_REPLICATE)
    if not np.array_equal(blur, raw("blur.u8", np.uint8, (h, w, 3))):
        bad.append("box blur differs from cv2.blur")

    k5 = np.ones((5, 5), np.uint8)
    k3 = np.ones((3, 3), np.uint8)
    if not np.array_equal(cv2.dilate(mask, k5), raw("dilate.u8", np.uint8, (h, w))):
        bad.append("dilation differs from cv2.dilate")
    if not np.array_equal(cv2.erode(mask, k3), raw("erode.u8", np.uint8, (h, w))):
        bad.append("erosion differs from cv2.erode")

    t, _ = cv2.threshold(rgb.reshape(1, -1), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if int(t) != int(raw("otsu.i32", np.int32, (1,))[0]):
        bad.append(f"Otsu: {int(raw('otsu.i32', np.int32, (1,))[0])}, cv2 says {int(t)}")

    def same_partition(a, b):
        # Same components (labels may be numbered differently): a one-to-one map of labels.
        pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
        return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})

    for name, value, conn in (("cc8.i32", 1, 8), ("cc4.i32", 0, 4)):
        n, lab = cv2.connectedComponents((mask == value).astype(np.uint8), connectivity=conn)
        got = raw(name, np.int32, (h, w))
        if not same_partition(np.where(lab == 0, -1, lab - 1), got) or got.max() != n - 2:
            bad.append(f"{conn}-connected components differ from cv2.connectedComponents")
        # Numbered in raster order of the first pixel.
        firsts = [int(np.flatnonzero(got.ravel() == c)[0]) for c in range(got.max() + 1)]
        if firsts != sorted(firsts):
            bad.append(f"{conn}-connected components are not numbered in raster order")

    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = mask.copy()
    for c in range(1, n):
        if stats[c, cv2.CC_STAT_AREA] < 5:
            keep[lab == c] = 0
    if not np.array_equal(keep, raw("drop.u8", np.uint8, (h, w))):
        bad.append("dropping components under 5 pixels differs")

    for b in bad:
        print("FAIL", b)
    print(f"cv_reference: {len(bad)} mismatches" if bad else
          "cv_reference: every function matches OpenCV's own")
    return 1 if bad else 0


sys.exit(main())
