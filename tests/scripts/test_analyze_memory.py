"""Memory stays bounded whatever the slide's size: generating and analyzing a 50,000 x 50,000
synthetic slide keeps each process's peak resident memory under 2 GB (one RGB copy of level 0
alone would be 7.5 GB). A bound, not a time. Not part of the sanitizer pass (ASan's shadow memory
inflates RSS): exits 77 there."""
import json
import os
import resource
import subprocess
import sys
import tempfile

LIMIT_MB = 2048
SIZE = 50000


def peak_child_mb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main():
    if os.environ.get("HP_SANITIZE") == "1":
        print("skipped: memory bounds are checked in the plain build only")
        sys.exit(77)
    hp = os.environ.get("HP_BIN", "histoplan")
    src = os.environ.get("HP_SOURCE_DIR", ".")
    model = os.path.join(src, "models", "zoo", "histoplan-default-densenet.onnx")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        slide = os.path.join(tmp, "big.tiff")
        # Quality 60 keeps the file near 400 MB; memory, not image quality, is under test.
        r = subprocess.run(["nice", "-n", "10", hp, "synth", "--out", slide, "--size", f"{SIZE}x{SIZE}",
                            "--seed", "5001", "--quality", "60"], capture_output=True, text=True)
        synth_mb = peak_child_mb()
        print(r.stdout.strip() or r.stderr.strip())
        if r.returncode != 0:
            print(f"FAIL synth exited {r.returncode}: {r.stderr.strip()}")
            print("0 passed, 1 failed")
            sys.exit(1)
        ok = synth_mb < LIMIT_MB
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} synth {SIZE}x{SIZE}: peak RSS {synth_mb:.0f} MB (limit {LIMIT_MB} MB)")

        out = os.path.join(tmp, "out")
        r = subprocess.run(["nice", "-n", "10", hp, "analyze", slide, "--model", model, "--out", out],
                           capture_output=True, text=True)
        analyze_mb = peak_child_mb()  # the maximum over both children: analyze's unless synth's was larger
        print(r.stdout.strip()[-1500:])
        if r.returncode != 0:
            print(f"FAIL analyze exited {r.returncode}: {r.stderr.strip()}")
            failures += 1
        else:
            dirs = [d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))]
            with open(os.path.join(out, dirs[0], "findings.json")) as f:
                tiles = json.load(f)["analysis"]["tiles_analysed"]
            ok = tiles > 1000
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} analyze covered {tiles} tiles")
        ok = analyze_mb < LIMIT_MB
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} analyze {SIZE}x{SIZE}: peak RSS {analyze_mb:.0f} MB (limit {LIMIT_MB} MB)")
    passed = 3 - failures
    print(f"{passed} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
