"""The printed report's first page is the synoptic summary.

Runs `histoplan synth`, `analyze` and `report build --slide` as a user does, prints report.html
to PDF with headless Chromium (`chromium --headless --print-to-pdf`, as a user's browser prints
it) and reads the PDF with poppler (pdftotext, pdfimages, pdftoppm):
- page 1 holds the summary's fields: the suggested category and its id, the model confidence,
  the out-of-domain and QC state, the largest invasive focus (its number from report.json), the
  in situ extent, isolated tiles, the class table (every class), the one line on class area
  versus region area, the overlay with its legend (an image on page 1), the sign-off block; and
  nothing of what follows (the statements start page 2);
- a QC flag histoplan does not know (out_of_domain with its reason, as findings may carry) is
  shown by its name and reason on page 1, without code for it;
- a signed revision's first page names the pathologist in the sign-off block;
- page 1 rasterizes (pdftoppm) to a page with the overlay's colours on it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import report_testlib as lib  # noqa: E402
import sign_testlib as sl  # noqa: E402

TOOLS = ["chromium", "pdftotext", "pdftoppm", "pdfimages"]
missing = [t for t in TOOLS if not shutil.which(t)]
if missing:
    print(f"skipped: {', '.join(missing)} not installed (Debian: chromium, poppler-utils)")
    sys.exit(77)

ck = lib.Checks()


def to_pdf(html, pdf, tmp):
    prof = tempfile.mkdtemp(dir=tmp)
    p = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                        f"--user-data-dir={prof}", f"--print-to-pdf={pdf}", "file://" + os.path.abspath(html)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
    return os.path.exists(pdf), p.stdout[-300:]


def page_text(pdf, n):
    return subprocess.run(["pdftotext", "-layout", "-f", str(n), "-l", str(n), pdf, "-"],
                          stdout=subprocess.PIPE, text=True).stdout


def norm(s):
    return " ".join(s.split())


def check_first_page(name, d, tmp, signed_by=None, flag=None):
    rj = lib.load(os.path.join(d, "report.json"))
    pdf = os.path.join(tmp, name + ".pdf")
    ok, log = to_pdf(os.path.join(d, "report.html"), pdf, tmp)
    if not ck(ok, f"{name}: Chromium printed the report to PDF {log if not ok else ''}"):
        return None
    p1, p2 = norm(page_text(pdf, 1)), norm(page_text(pdf, 2))
    dx = rj["diagnosis"]
    cf = rj["case_findings"]
    for what, want in [("heading", "Synoptic summary"), ("category", dx["display"]),
                       ("category id", "category"), ("confidence", "Model confidence"),
                       ("confidence level", rj["confidence"]["level"]),
                       ("out-of-domain and QC state", "Out of domain and QC"),
                       ("largest invasive focus", "Largest invasive focus"),
                       ("in situ extent", "In situ extent"), ("isolated tiles", "Isolated tiles"),
                       ("class table", "Classes over all slides"),
                       ("class vs region area", "Class area counts every analysed tile"),
                       ("sign-off block", "Sign-off")]:
        ck(want in p1, f"{name}: page 1 shows the {what} ({want!r})")
    inv = cf["invasive"]
    if inv and inv["present"]:
        num = f"largest focus {json.dumps(inv['largest_focus_mm'])} mm"
        ck(num in p1, f"{name}: page 1 gives the largest invasive focus from report.json ({num})")
    for c in cf["classes"]:
        ck(c["name"] in p1, f"{name}: class {c['name']} in page 1's class table")
    ck("Statements" not in p1 and p2.startswith("Statements"),
       f"{name}: the statements start on page 2, not on the summary page ({p2[:40]!r})")
    imgs = subprocess.run(["pdfimages", "-list", "-f", "1", "-l", "1", pdf], stdout=subprocess.PIPE,
                          text=True).stdout.splitlines()[2:]
    ck(len(imgs) >= 1, f"{name}: the overlay with its legend is an image on page 1 ({len(imgs)} image(s))")
    if signed_by:
        ck(signed_by in p1, f"{name}: page 1's sign-off block names {signed_by}")
    if flag:
        ck(flag[0] in p1 and norm(flag[1]) in p1, f"{name}: page 1 shows the QC flag {flag[0]} and its reason")
    png = os.path.join(tmp, name + "-p1")
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "100", "-png", pdf, png], check=False)
    got = [f for f in os.listdir(tmp) if f.startswith(name + "-p1") and f.endswith(".png")]
    ck(len(got) == 1, f"{name}: page 1 rasterizes to a PNG")
    if got:
        try:
            from PIL import Image
            im = Image.open(os.path.join(tmp, got[0])).convert("RGB")
            px = list(im.getdata())
            key = [(0, 114, 178), (213, 94, 0), (0, 158, 115)]  # in situ, invasive, normal swatches
            near = sum(1 for p in px if any(max(abs(a - b) for a, b in zip(p, k)) < 30 for k in key))
            ck(near > 60, f"{name}: page 1 shows the overlay's class colours ({near} pixels)")
        except ImportError:
            pass
    return pdf


with tempfile.TemporaryDirectory() as tmp:
    slide = os.path.join(tmp, "synth.tiff")
    findings = lib.synthetic_findings(tmp)
    case = lib.case_file(tmp)
    d = os.path.join(tmp, "report")
    rc, log = lib.build(case, [findings], d, ["--slide", slide])
    ck(rc == 0, f"build: {log.strip()[-200:]}")
    check_first_page("draft", d, tmp)

    # Any QC flag, by name and reason (out of domain, as the analysis may record it).
    reason = "model not valid for this slide: the tissue is not breast"
    def flag(doc):
        doc["qc"]["flags"] = doc["qc"]["flags"] + ["out_of_domain"]
        doc["qc"]["flag_descriptions"]["out_of_domain"] = reason
    fv = lib.variant(findings, os.path.join(tmp, "ood", "findings.json"), flag)
    d2 = os.path.join(tmp, "report-ood")
    rc, log = lib.build(case, [fv], d2)
    ck(rc == 0, f"build with an out_of_domain flag: {log.strip()[-200:]}")
    if rc == 0:
        check_first_page("ood", d2, tmp, flag=("out_of_domain", reason))

    key, pub = sl.keypair(tmp, "okafor")
    rc, log = lib.run(["report", "sign", d, "--pathologist", "dr-okafor", "--key", key])
    ck(rc == 0, f"sign: {log.strip()[-200:]}")
    if rc == 0:
        check_first_page("signed", os.path.join(d, "revisions", "1"), tmp, signed_by="dr-okafor")
ck.exit()
