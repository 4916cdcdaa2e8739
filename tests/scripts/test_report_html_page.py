#!/usr/bin/python3
"""The HTML report (report/report_html.c) parsed and checked against the report it came from.

`test_report_html --write DIR` renders the fixtures tests/data/report-example/report.json
(preliminary) and report-signed.json to DIR/preliminary.html and DIR/signed.html. This script
parses both with html.parser and checks, for each:

1. every <span class="num" data-pointer="P">TEXT</span> has float(TEXT) equal to the value at
   JSON Pointer P of the report (RFC 6901, ~0 and ~1 escapes);
2. with every span.num and every element of class "ref" taken out, the visible text holds no
   digit: no number reaches the page that is not tied to report.json; a "ref" element that
   names a pointer holds exactly the string there;
3. the page is self-contained: no http(s) URL in src, href or CSS url(), no <script src>, no
   stylesheet link, and every <img> is a data:image/png;base64 URI that decodes to a PNG;
4. the preliminary page says PRELIMINARY (banner and print watermark) and both carry the
   research-use notice at top and bottom; the signed page names the pathologist and the signing
   time, shows the amendments, and does not say PRELIMINARY;
5. every care-plan suggestion's rule id, guideline name and version, and the clinician-approval
   text appear in its card;
6. every case.missing field is shown as not given;
7. every statement's text appears, with its numbers as spans.

Exit 0 pass, 1 fail. Environment: HP_BUILD_DIR (where the test binary is), HP_SOURCE_DIR.
"""
import base64
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    return cond


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []  # Nodes and str

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def text(self, skip=lambda n: False):
        out = []
        for c in self.children:
            if isinstance(c, str):
                out.append(c)
            elif not skip(c):
                out.append(c.text(skip))
        return "".join(out)

    def walk(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.walk()


class TreeBuilder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", [], None)
        self.cur = self.root
        self.errors = []

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is None or n is self.root:
            self.errors.append(f"stray </{tag}>")
            return
        if n is not self.cur:
            self.errors.append(f"</{tag}> closes unclosed <{self.cur.tag}>")
        self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    b = TreeBuilder()
    b.feed(text)
    b.close()
    return text, b.root, b.errors


def resolve(doc, pointer):
    """RFC 6901; raises KeyError/IndexError/ValueError when the pointer names nothing."""
    if pointer == "":
        return doc
    if not pointer.startswith("/"):
        raise ValueError(pointer)
    node = doc
    for tok in pointer[1:].split("/"):
        tok = tok.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            if not re.fullmatch(r"0|[1-9][0-9]*", tok):
                raise ValueError(tok)
            node = node[int(tok)]
        elif isinstance(node, dict):
            node = node[tok]
        else:
            raise KeyError(tok)
    return node


def invisible(n):
    return n.tag in ("style", "script", "head", "title")


def is_num(n):
    return n.tag == "span" and "num" in n.classes()


def is_ref(n):
    return "ref" in n.classes()


def norm(s):
    return re.sub(r"\s+", " ", s).strip()


def check_page(name, path, report, signed):
    text, root, errors = parse(path)
    check(not errors, f"{name}: well-nested HTML ({errors[:3]})")
    body = next((n for n in root.walk() if n.tag == "body"), None)
    if not check(body is not None, f"{name}: has a body"):
        return
    visible = norm(body.text(invisible))

    # (1) numbers tied to the report.
    nums = [n for n in root.walk() if is_num(n)]
    check(len(nums) > 50, f"{name}: {len(nums)} numbers as span.num")
    bad = []
    for n in nums:
        ptr = n.attrs.get("data-pointer")
        try:
            value = resolve(report, ptr)
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and float(n.text()) == float(value))
        except (KeyError, IndexError, ValueError, TypeError):
            ok = False
        if not ok:
            bad.append((ptr, n.text()))
    check(not bad, f"{name}: every span.num equals the report's value at its pointer {bad[:5]}")

    # (2) no other digit; refs with a pointer quote the string there.
    rest = norm(body.text(lambda n: invisible(n) or is_num(n) or is_ref(n)))
    digits = [m.start() for m in re.finditer(r"[0-9]", rest)]
    check(not digits, f"{name}: no digit outside span.num and .ref "
                      f"({[rest[max(0, i - 30):i + 10] for i in digits[:5]]})")
    bad = []
    for n in root.walk():
        if is_ref(n) and "data-pointer" in n.attrs:
            try:
                value = resolve(report, n.attrs["data-pointer"])
            except (KeyError, IndexError, ValueError, TypeError):
                bad.append(n.attrs["data-pointer"])
                continue
            want = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            if n.text() != want:
                bad.append((n.attrs["data-pointer"], n.text()[:40]))
    check(not bad, f"{name}: every .ref with a pointer quotes the report ({bad[:5]})")

    # (3) self-contained.
    urls = re.findall(r"""(?:src|href)\s*=\s*["']?\s*https?:""", text, re.I)
    urls += re.findall(r"url\(\s*['\"]?\s*https?:", text, re.I)
    urls += re.findall(r"@import", text, re.I)
    check(not urls, f"{name}: no external URL in src, href or url() ({urls[:3]})")
    check(not any(n.tag == "script" for n in root.walk()), f"{name}: no script at all")
    check(not any(n.tag == "link" and "stylesheet" in (n.attrs.get("rel") or "")
                  for n in root.walk()), f"{name}: no stylesheet link")
    imgs = [n for n in root.walk() if n.tag == "img"]
    n_images = sum(1 for s in report["slides"] if s["overlay_image"]) + sum(
        1 for s in report["slides"] for r in s["regions"] for k in ("thumbnail", "tissue_thumbnail") if r[k]) + sum(
        1 for s in report["slides"] for r in s["regions"] for t in r["evidence_tiles"] if t.get("image"))
    check(len(imgs) == n_images, f"{name}: {len(imgs)} images, report names {n_images}")
    for img in imgs:
        src = img.attrs.get("src") or ""
        prefix = "data:image/png;base64,"
        ok = src.startswith(prefix)
        if ok:
            try:
                data = base64.b64decode(src[len(prefix):], validate=True)
                ok = data.startswith(b"\x89PNG\r\n\x1a\n")
            except ValueError:
                ok = False
        check(ok, f"{name}: image {img.attrs.get('data-pointer')} is an embedded PNG")

    # (4) status and notice.
    notice = report["research_use_notice"]
    for pid in ("notice-top", "notice-bottom"):
        el = next((n for n in root.walk() if n.attrs.get("id") == pid), None)
        check(el is not None and norm(el.text()) == notice, f"{name}: research-use notice ({pid})")
    banner = next((n for n in root.walk() if n.attrs.get("id") == "status-banner"), None)
    if not signed:
        check(banner is not None and "PRELIMINARY" in banner.text(), f"{name}: PRELIMINARY banner")
        wm = [n for n in root.walk() if "watermark" in n.classes()]
        check(wm and "PRELIMINARY" in wm[0].text(), f"{name}: PRELIMINARY print watermark")
        check(re.search(r"@media print\s*\{[^@]*\.watermark\s*\{[^}]*display:\s*block", text),
              f"{name}: the watermark is shown in print")
    else:
        so = report["sign_off"]
        check("preliminary" not in visible.lower(), f"{name}: does not say PRELIMINARY")
        btext = banner.text() if banner else ""
        check(so["pathologist_id"] in btext and so["signed_at"] in btext,
              f"{name}: banner names the pathologist and the signing time")
        want = "AMENDED" if report["status"] == "amended" else "SIGNED"
        check(want in btext, f"{name}: banner says {want}")
        sec = next((n for n in root.walk() if n.attrs.get("id") == "sign-off"), None)
        stext = sec.text() if sec else ""
        for a in so["amendments"]:
            check(a["id"] in stext and a["change"] in stext, f"{name}: amendment of {a['id']} {a['change']} shown")

    # (5) care-plan cards.
    cards = {n.attrs.get("data-rule"): n for n in root.walk() if "card" in n.classes()}
    for s in report["care_plan"]["suggestions"]:
        card = cards.get(s["rule_id"])
        if not check(card is not None, f"{name}: card for {s['rule_id']}"):
            continue
        ct = norm(card.text())
        for what, want in (("rule id", s["rule_id"]), ("guideline", s["guideline"]["name"]),
                           ("guideline version", s["guideline"]["version"]),
                           ("action", s["action"]), ("approval", "Requires clinician approval"),
                           ("decision", "decision: " + s["decision"])):
            check(norm(want) in ct, f"{name}: card {s['rule_id']} shows its {what}")
        if s["waits_for"]:
            check("Waits for " + s["waits_for"] in ct, f"{name}: card {s['rule_id']} waits")
    gate = report["care_plan"]["gate_rule_id"]
    if gate:
        g = next((n for n in root.walk() if n.attrs.get("id") == "gate"), None)
        check(g is not None and gate in g.text(), f"{name}: gate box in the summary")
    summary = next((n for n in root.walk() if n.attrs.get("id") == "summary"), None)
    if report["model"]["not_for_diagnosis"]:
        check(any(n.attrs.get("id") == "not-for-diagnosis" for n in summary.walk()),
              f"{name}: not-for-diagnosis box in the summary")
    na = next((n for n in root.walk() if "not-applied" in n.classes()), None)
    check(na is not None and not any(n.tag == "details" for n in root.walk()),
          f"{name}: not-applied rules listed in the open (printed too), no collapsed <details>")
    for r in report["care_plan"]["not_applied"]:
        check(na is not None and r["rule_id"] in na.text(), f"{name}: not applied {r['rule_id']}")

    # (6) missing case fields.
    rows = {n.attrs.get("data-field"): n for n in root.walk() if "data-field" in n.attrs}
    for field in report["case"]["missing"]:
        row = rows.get(field)
        check(row is not None and "not given" in row.text(), f"{name}: {field} shown as not given")

    # (7) statements.
    shown = {}
    for n in root.walk():
        if "statement" in n.classes() and n.attrs.get("id", "").startswith("stmt-"):
            shown[n.attrs["id"][5:]] = n
    for st in report["statements"]:
        el = shown.get(st["id"])
        if not check(el is not None, f"{name}: statement {st['id']} shown"):
            continue
        stext = next((n for n in el.walk() if "stext" in n.classes()), None)
        check(stext is not None and stext.text() == st["text"],
              f"{name}: statement {st['id']} text ({stext.text() if stext else None!r})")
        spans = [n for n in (stext.walk() if stext else []) if is_num(n)]
        want = [v for v in st["values"] if isinstance(v["value"], (int, float))]
        check([s.attrs.get("data-pointer") for s in spans] == [v["pointer"] for v in want],
              f"{name}: statement {st['id']} numbers are spans with their pointers")
    for sid in report["diagnosis"]["statement_ids"]:
        check(any(n.attrs.get("data-statement") == sid for n in summary.walk()),
              f"{name}: diagnosis statement {sid} in the summary")
    check(norm(report["diagnosis"]["display"]) in norm(summary.text()),
          f"{name}: suggested category in the summary")


def find_binary(build):
    for cand in ("tests/test_report_html", "test_report_html", "tests/unit/test_report_html"):
        p = os.path.join(build, cand)
        if os.access(p, os.X_OK):
            return p
    for dirpath, _, files in os.walk(build):
        if "test_report_html" in files:
            return os.path.join(dirpath, "test_report_html")
    return None


def main():
    src = os.environ.get("HP_SOURCE_DIR") or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))
    build = os.environ.get("HP_BUILD_DIR") or os.path.join(src, "build")
    binary = find_binary(build)
    if not binary:
        print(f"FAIL: test_report_html not found under {build}")
        return 1
    fixture = os.path.join(src, "tests", "data", "report-example")
    with open(os.path.join(fixture, "report.json"), encoding="utf-8") as f:
        prelim = json.load(f)
    with open(os.path.join(fixture, "report-signed.json"), encoding="utf-8") as f:
        signed = json.load(f)
    with tempfile.TemporaryDirectory(prefix="hp-report-html-") as tmp:
        env = dict(os.environ, HP_SOURCE_DIR=src)
        r = subprocess.run([binary, "--write", tmp], env=env, capture_output=True, text=True)
        if not check(r.returncode == 0, f"{binary} --write: {r.stderr.strip()}"):
            return 1
        check_page("preliminary.html", os.path.join(tmp, "preliminary.html"), prelim, False)
        check_page("signed.html", os.path.join(tmp, "signed.html"), signed, True)
    print(f"test_report_html_page.py: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
