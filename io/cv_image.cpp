// The OpenCV side of io/cv_image.h: the one C++ file of histoplan. Every entry point catches
// OpenCV's exceptions (cv::Exception, std::bad_alloc) and returns a status, so nothing C++ crosses
// into the C code. Buffers are wrapped in cv::Mat headers without copying where OpenCV allows it.
#include "io/cv_image.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace {

template <typename F> hp_status guarded(F &&f)
{
    try {
        return f();
    } catch (const std::bad_alloc &) {
        return HP_ERR_NOMEM;
    } catch (const cv::Exception &e) {
        return e.code == cv::Error::StsNoMem ? HP_ERR_NOMEM : HP_ERR_INVALID;
    } catch (...) {
        return HP_ERR_INVALID;
    }
}

bool bad_size(int w, int h)
{
    return w < 1 || h < 1 || (int64_t)w * h > INT32_MAX;
}

} // namespace

extern "C" hp_status hp_cv_resize_rgb8(const uint8_t *src, int sw, int sh, size_t src_stride,
                                       uint8_t *dst, int dw, int dh)
{
    if (!src || !dst || bad_size(sw, sh) || bad_size(dw, dh))
        return HP_ERR_INVALID;
    if (!src_stride)
        src_stride = (size_t)sw * 3;
    return guarded([&] {
        cv::Mat in(sh, sw, CV_8UC3, const_cast<uint8_t *>(src), src_stride);
        cv::Mat out(dh, dw, CV_8UC3, dst);
        if (sw == dw && sh == dh) {
            in.copyTo(out);
            return HP_OK;
        }
        // INTER_AREA is the exact area average when no axis grows; when both grow OpenCV turns
        // it into bilinear. With one axis shrinking and the other growing it would interpolate
        // both, so that case is done in two passes: the shrinking axis first, by area.
        bool grow_x = dw > sw, grow_y = dh > sh;
        if (grow_x != grow_y) {
            cv::Mat mid;
            cv::resize(in, mid, cv::Size(grow_x ? sw : dw, grow_y ? sh : dh), 0, 0, cv::INTER_AREA);
            cv::resize(mid, out, out.size(), 0, 0, cv::INTER_LINEAR);
        } else {
            cv::resize(in, out, out.size(), 0, 0, grow_x ? cv::INTER_LINEAR : cv::INTER_AREA);
        }
        return out.data == dst ? HP_OK : HP_ERR_NOMEM;
    });
}

extern "C" hp_status hp_cv_rgb8_to_hsv(const uint8_t *rgb, size_t n, float *hsv)
{
    if (!rgb || !hsv || n > (size_t)INT32_MAX)
        return HP_ERR_INVALID;
    if (n == 0)
        return HP_OK;
    return guarded([&] {
        cv::Mat in(1, (int)n, CV_8UC3, const_cast<uint8_t *>(rgb));
        cv::Mat out(1, (int)n, CV_32FC3, hsv);
        // On float input OpenCV gives hue in degrees and saturation as a fraction, dividing
        // by (V + FLT_EPSILON): with V in 0..255 rather than 0..1 that epsilon shifts a
        // saturation by at most 1.2e-7 relative even for the darkest pixels. V is then scaled
        // to 0..1.
        in.convertTo(out, CV_32FC3);
        cv::cvtColor(out, out, cv::COLOR_RGB2HSV);
        if (out.data != (uchar *)hsv)
            return HP_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
            hsv[3 * i + 2] /= 255.0f;
        return HP_OK;
    });
}

extern "C" hp_status hp_cv_rgb8_to_gray_f32(const uint8_t *rgb, size_t n, float *gray)
{
    if (!rgb || !gray || n > (size_t)INT32_MAX)
        return HP_ERR_INVALID;
    if (n == 0)
        return HP_OK;
    return guarded([&] {
        cv::Mat in(1, (int)n, CV_8UC3, const_cast<uint8_t *>(rgb)), f;
        cv::Mat out(1, (int)n, CV_32FC1, gray);
        in.convertTo(f, CV_32FC3);
        cv::cvtColor(f, out, cv::COLOR_RGB2GRAY);
        return out.data == (uchar *)gray ? HP_OK : HP_ERR_NOMEM;
    });
}

extern "C" hp_status hp_cv_box_blur_rgb8(const uint8_t *src, int w, int h, int r, uint8_t *dst)
{
    if (!src || !dst || bad_size(w, h))
        return HP_ERR_INVALID;
    return guarded([&] {
        cv::Mat in(h, w, CV_8UC3, const_cast<uint8_t *>(src));
        cv::Mat out(h, w, CV_8UC3, dst);
        if (r <= 0) {
            in.copyTo(out);
            return HP_OK;
        }
        cv::blur(in, out, cv::Size(2 * r + 1, 2 * r + 1), cv::Point(-1, -1), cv::BORDER_REPLICATE);
        return out.data == dst ? HP_OK : HP_ERR_NOMEM;
    });
}

static hp_status morph(uint8_t *mask, int w, int h, int r, int op)
{
    if (!mask || bad_size(w, h))
        return HP_ERR_INVALID;
    if (r <= 0)
        return HP_OK;
    return guarded([&] {
        cv::Mat m(h, w, CV_8UC1, mask);
        cv::Mat k = cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * r + 1, 2 * r + 1));
        // The default border value makes the outside neutral: unset for dilation, set for
        // erosion, as the header promises.
        if (op == cv::MORPH_DILATE)
            cv::dilate(m, m, k);
        else
            cv::erode(m, m, k);
        return m.data == mask ? HP_OK : HP_ERR_NOMEM;
    });
}

extern "C" hp_status hp_cv_dilate_square(uint8_t *mask, int w, int h, int r)
{
    return morph(mask, w, h, r, cv::MORPH_DILATE);
}

extern "C" hp_status hp_cv_erode_square(uint8_t *mask, int w, int h, int r)
{
    return morph(mask, w, h, r, cv::MORPH_ERODE);
}

extern "C" hp_status hp_cv_otsu_u8(const uint8_t *values, size_t n, int *threshold)
{
    if (!threshold || (!values && n) || n > (size_t)INT32_MAX)
        return HP_ERR_INVALID;
    *threshold = 255;
    if (n == 0)
        return HP_OK;
    // OpenCV answers 0 when nothing splits; say so explicitly instead (one distinct value).
    uint8_t lo = *std::min_element(values, values + n), hi = *std::max_element(values, values + n);
    if (lo == hi)
        return HP_OK;
    return guarded([&] {
        cv::Mat in(1, (int)n, CV_8UC1, const_cast<uint8_t *>(values)), out;
        double t = cv::threshold(in, out, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
        *threshold = (int)t;
        return HP_OK;
    });
}

extern "C" hp_status hp_cv_components(const uint8_t *mask, int w, int h, uint8_t value,
                                      int connectivity, int32_t *labels, hp_cv_component **comps,
                                      int32_t *n)
{
    if (comps)
        *comps = NULL;
    if (n)
        *n = 0;
    if (!mask || !labels || !n || bad_size(w, h) || (connectivity != 4 && connectivity != 8))
        return HP_ERR_INVALID;
    return guarded([&] {
        cv::Mat in(h, w, CV_8UC1, const_cast<uint8_t *>(mask)), bin = in == value, lab, stats,
                centroids;
        int count = cv::connectedComponentsWithStats(bin, lab, stats, centroids, connectivity,
                                                     CV_32S);
        // OpenCV's numbering depends on its algorithm; renumber in raster order of the first
        // pixel so callers get the same order whatever OpenCV's version does.
        std::vector<int32_t> order((size_t)count, -1);
        int32_t next = 0;
        for (int y = 0; y < h; y++) {
            const int32_t *l = lab.ptr<int32_t>(y);
            int32_t *o = labels + (size_t)y * w;
            for (int x = 0; x < w; x++) {
                int32_t c = l[x];
                if (c == 0) {
                    o[x] = -1;
                    continue;
                }
                if (order[(size_t)c] < 0)
                    order[(size_t)c] = next++;
                o[x] = order[(size_t)c];
            }
        }
        if (comps && next > 0) {
            hp_cv_component *cs = (hp_cv_component *)malloc((size_t)next * sizeof *cs);
            if (!cs)
                return HP_ERR_NOMEM;
            for (int c = 1; c < count; c++) {
                if (order[(size_t)c] < 0)
                    continue;
                const int *s = stats.ptr<int>(c);
                hp_cv_component *d = &cs[order[(size_t)c]];
                d->x0 = s[cv::CC_STAT_LEFT];
                d->y0 = s[cv::CC_STAT_TOP];
                d->x1 = d->x0 + s[cv::CC_STAT_WIDTH] - 1;
                d->y1 = d->y0 + s[cv::CC_STAT_HEIGHT] - 1;
                d->area = s[cv::CC_STAT_AREA];
            }
            *comps = cs;
        }
        *n = next;
        return HP_OK;
    });
}

extern "C" hp_status hp_cv_drop_small(uint8_t *mask, int w, int h, uint8_t value, int64_t min_area,
                                      int keep_border)
{
    if (!mask || bad_size(w, h) || value > 1)
        return HP_ERR_INVALID;
    if (min_area <= 1)
        return HP_OK;
    return guarded([&] {
        cv::Mat in(h, w, CV_8UC1, mask), bin = in == value, lab, stats, centroids;
        int count = cv::connectedComponentsWithStats(bin, lab, stats, centroids,
                                                     value == 1 ? 8 : 4, CV_32S);
        std::vector<uint8_t> drop((size_t)count, 0);
        int any = 0;
        for (int c = 1; c < count; c++) {
            const int *s = stats.ptr<int>(c);
            int border = s[cv::CC_STAT_LEFT] == 0 || s[cv::CC_STAT_TOP] == 0 ||
                         s[cv::CC_STAT_LEFT] + s[cv::CC_STAT_WIDTH] == w ||
                         s[cv::CC_STAT_TOP] + s[cv::CC_STAT_HEIGHT] == h;
            drop[(size_t)c] = s[cv::CC_STAT_AREA] < min_area && !(keep_border && border);
            any |= drop[(size_t)c];
        }
        if (!any)
            return HP_OK;
        for (int y = 0; y < h; y++) {
            const int32_t *l = lab.ptr<int32_t>(y);
            uint8_t *m = mask + (size_t)y * w;
            for (int x = 0; x < w; x++)
                if (drop[(size_t)l[x]])
                    m[x] = (uint8_t)!value;
        }
        return HP_OK;
    });
}

/* ---- outlines ---- */

namespace {

struct pt {
    int32_t x, y;
};

// Turns one contour of the doubled image into a ring of grid vertices. In the image drawn at
// twice the size with a one-pixel margin, cell (x, y) covers pixels 2x+1..2x+2; a border pixel p
// stands for the cell corner nearest to it, the vertex p >> 1 on each axis. Diagonal steps
// between two cells collapse onto the corner they share, so after removing repeats and
// straight-through points every edge is axis-aligned.
bool to_ring(const std::vector<cv::Point> &c, std::vector<pt> &out)
{
    std::vector<pt> v;
    v.reserve(c.size());
    for (const cv::Point &p : c) {
        pt q = {p.x >> 1, p.y >> 1};
        if (v.empty() || v.back().x != q.x || v.back().y != q.y)
            v.push_back(q);
    }
    while (v.size() > 1 && v.front().x == v.back().x && v.front().y == v.back().y)
        v.pop_back();
    // Drop points where the outline goes straight on (or, never expected, turns back).
    bool changed = true;
    while (changed && v.size() >= 3) {
        changed = false;
        std::vector<pt> k;
        k.reserve(v.size());
        size_t n = v.size();
        for (size_t i = 0; i < n; i++) {
            const pt &a = v[(i + n - 1) % n], &b = v[i], &d = v[(i + 1) % n];
            int64_t cross = (int64_t)(b.x - a.x) * (d.y - b.y) - (int64_t)(b.y - a.y) * (d.x - b.x);
            if (cross == 0)
                changed = true;
            else
                k.push_back(b);
        }
        v.swap(k);
    }
    if (v.size() < 4)
        return false;
    for (size_t i = 0; i < v.size(); i++) {
        const pt &a = v[i], &b = v[(i + 1) % v.size()];
        if (a.x != b.x && a.y != b.y)
            return false; // not a cell-edge outline: the mapping above was wrong
    }
    out.swap(v);
    return true;
}

int64_t area2(const std::vector<pt> &v)
{
    int64_t a = 0;
    for (size_t i = 0; i < v.size(); i++) {
        const pt &p = v[i], &q = v[(i + 1) % v.size()];
        a += (int64_t)p.x * q.y - (int64_t)q.x * p.y;
    }
    return a;
}

// Orients the ring (outer: positive twice-area in x-right, y-down coordinates, i.e. clockwise on
// screen; hole: negative) and starts it at its topmost, then leftmost vertex.
void normalize(std::vector<pt> &v, bool outer)
{
    if ((area2(v) > 0) != outer)
        std::reverse(v.begin(), v.end());
    size_t s = 0;
    for (size_t i = 1; i < v.size(); i++)
        if (v[i].y < v[s].y || (v[i].y == v[s].y && v[i].x < v[s].x))
            s = i;
    std::rotate(v.begin(), v.begin() + (long)s, v.end());
}

} // namespace

extern "C" hp_status hp_cv_trace_region(const uint8_t *mask, int w, int h, int32_t **xy,
                                        int32_t **ring_len, int *n_rings)
{
    if (xy)
        *xy = NULL;
    if (ring_len)
        *ring_len = NULL;
    if (n_rings)
        *n_rings = 0;
    if (!mask || !xy || !ring_len || !n_rings || w < 1 || h < 1 || w > (1 << 28) ||
        h > (1 << 28) || (int64_t)(2 * w + 2) * (2 * h + 2) > INT32_MAX)
        return HP_ERR_INVALID;
    return guarded([&] {
        // One 4-connected region, as the header requires (findContours would join cells that
        // touch only at a corner).
        cv::Mat cells(h, w, CV_8UC1, const_cast<uint8_t *>(mask)), on = cells != 0, lab;
        if (cv::connectedComponents(on, lab, 4, CV_32S) != 2)
            return HP_ERR_INVALID;
        cv::Mat big = cv::Mat::zeros(2 * h + 2, 2 * w + 2, CV_8UC1);
        for (int y = 0; y < h; y++) {
            const uint8_t *m = mask + (size_t)y * w;
            uint8_t *r0 = big.ptr<uint8_t>(2 * y + 1), *r1 = big.ptr<uint8_t>(2 * y + 2);
            for (int x = 0; x < w; x++)
                if (m[x])
                    r0[2 * x + 1] = r0[2 * x + 2] = r1[2 * x + 1] = r1[2 * x + 2] = 1;
        }
        std::vector<std::vector<cv::Point>> contours;
        std::vector<cv::Vec4i> hier;
        cv::findContours(big, contours, hier, cv::RETR_CCOMP, cv::CHAIN_APPROX_NONE);
        int outer = -1;
        for (size_t i = 0; i < contours.size(); i++) {
            if (hier[i][3] >= 0)
                continue;
            if (outer >= 0)
                return HP_ERR_INVALID; // two regions
            outer = (int)i;
        }
        if (outer < 0)
            return HP_ERR_INVALID; // nothing set
        std::vector<std::vector<pt>> rings(1);
        if (!to_ring(contours[(size_t)outer], rings[0]))
            return HP_ERR_INVALID;
        normalize(rings[0], true);
        for (int c = hier[(size_t)outer][2]; c >= 0; c = hier[(size_t)c][0]) {
            std::vector<pt> r;
            if (!to_ring(contours[(size_t)c], r))
                return HP_ERR_INVALID;
            normalize(r, false);
            rings.push_back(std::move(r));
        }
        std::sort(rings.begin() + 1, rings.end(), [](const std::vector<pt> &a, const std::vector<pt> &b) {
            return a[0].y != b[0].y ? a[0].y < b[0].y : a[0].x < b[0].x;
        });
        size_t total = 0;
        for (const auto &r : rings)
            total += r.size() + 1;
        int32_t *pts = (int32_t *)malloc(total * 2 * sizeof *pts);
        int32_t *lens = (int32_t *)malloc(rings.size() * sizeof *lens);
        if (!pts || !lens) {
            free(pts);
            free(lens);
            return HP_ERR_NOMEM;
        }
        size_t k = 0;
        for (size_t i = 0; i < rings.size(); i++) {
            for (const pt &p : rings[i]) {
                pts[2 * k] = p.x;
                pts[2 * k + 1] = p.y;
                k++;
            }
            pts[2 * k] = rings[i][0].x; // closed: the first point again
            pts[2 * k + 1] = rings[i][0].y;
            k++;
            lens[i] = (int32_t)(rings[i].size() + 1);
        }
        *xy = pts;
        *ring_len = lens;
        *n_rings = (int)rings.size();
        return HP_OK;
    });
}
