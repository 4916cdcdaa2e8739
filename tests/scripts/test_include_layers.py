"""The include graph keeps to the layers of docs/architecture.md: a file includes only headers of
its own layer or of a lower one. Lists every upward include (file, line, header, both layers)
and fails on any; also fails when a source folder is not in the table, so a new folder gets a
layer on purpose rather than by accident."""
import os
import re
import sys

SRC = os.environ.get("HP_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")

# Lowest first. The graph IR lives in models/ but sits under the backends (as ggml's graph
# sits under its backends): kernels execute it and know nothing else of models.
LAYERS = [
    ("common", ["common/"]),
    ("graph IR", ["models/graph.", "models/plan."]),
    ("kernels, io", ["kernels/", "io/"]),
    ("models", ["models/", "onnx/"]),
    ("pipeline", ["pipeline/"]),
    ("eval", ["eval/"]),
    ("report", ["report/"]),
    ("server", ["server/"]),
    ("cli", ["cli/"]),
]
SOURCE_DIRS = ["common", "kernels", "io", "models", "pipeline", "eval", "report", "server", "cli"]
SUFFIXES = (".c", ".h", ".cu", ".cpp")


def layer_of(rel):
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if rel.startswith(p) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def main():
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    bad, files = [], 0
    for top in os.listdir(SRC):
        full = os.path.join(SRC, top)
        if (os.path.isdir(full) and not top.startswith(".") and top not in SOURCE_DIRS and
                any(f.endswith(SUFFIXES) for _, _, fs in os.walk(full) for f in fs) and
                top not in ("tests", "benchmarks", "build", "schemas", "scripts", "docs",
                            "node_modules") and not top.startswith("build")):
            bad.append(f"{top}/: a source folder with no layer in this test and docs/architecture.md")
    for d in SOURCE_DIRS:
        for root, _, names in os.walk(os.path.join(SRC, d)):
            for n in sorted(names):
                if not n.endswith(SUFFIXES):
                    continue
                path = os.path.join(root, n)
                rel = os.path.relpath(path, SRC).replace(os.sep, "/")
                mine = layer_of(rel)
                files += 1
                for lineno, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
                    m = inc.match(line)
                    if not m or "/" not in m.group(1):
                        continue
                    theirs = layer_of(m.group(1))
                    if theirs is not None and mine is not None and theirs > mine:
                        bad.append(f"{rel}:{lineno}: includes {m.group(1)} "
                                   f"({LAYERS[theirs][0]} is above {LAYERS[mine][0]})")
    if files < 50:
        print(f"FAIL: only {files} source files found under {SRC}")
        return 1
    for b in bad:
        print("FAIL", b)
    print(f"{files} files, {len(bad)} upward includes")
    return 1 if bad else 0


# A self-check: the rule must catch an upward include and pass a downward one.
assert layer_of("io/slide.c") == layer_of("kernels/backend.h") < layer_of("pipeline/heatmap.h")
assert layer_of("models/plan.h") < layer_of("kernels/backend.h") < layer_of("models/model.h")
sys.exit(main())
