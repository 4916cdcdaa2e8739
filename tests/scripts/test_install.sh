#!/usr/bin/env bash
# `cmake --install` into a scratch prefix, then a small program built only from the installed
# headers, library and pkg-config file opens the demo model and runs it.
set -eu
build=${HP_BUILD_DIR:?} src=${HP_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib/x86_64-linux-gnu/pkgconfig"
test -x "$tmp/prefix/bin/histoplan"
"$tmp/prefix/bin/histoplan" --version
# The report's rule table and the schemas are installed beside the models.
test -f "$tmp/prefix/share/histoplan/rules/care-plan-rules.json"
test -f "$tmp/prefix/share/histoplan/schemas/report.schema.json"
test -f "$tmp/prefix/include/histoplan/report/report_dir.h"
cat >"$tmp/use.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "models/model.h"
int main(int argc, char **argv)
{
    hp_error err = {0};
    hp_model_options o = hp_model_default_options();
    hp_model *m = hp_model_open(argv[1], &o, &err);
    if (!m) { fprintf(stderr, "%s\n", err.msg); return 1; }
    float *x = calloc(3 * 224 * 224, sizeof(float)), y[4];
    int rc = hp_model_run(m, x, 1, y) != HP_OK;
    printf("%s: %g %g %g %g\n", rc ? hp_model_error(m) : "ok", y[0], y[1], y[2], y[3]);
    hp_model_destroy(m);
    free(x);
    return rc || argc < 2;
}
C
cc_flags=$(pkg-config --cflags histoplan)
libs=$(pkg-config --libs --static histoplan)
linker=cc
# A CUDA build links the CUDA runtime and cuDNN; give their folder to the linker.
if grep -q "HP_HAVE_CUDA:INTERNAL=ON" "$build/CMakeCache.txt" 2>/dev/null || nm -A "$tmp/prefix/lib/libhistoplan.a" 2>/dev/null | grep -q cudnnCreate; then
  libs="$libs -L/usr/local/cuda/lib64 -lcudart_static -lcublas -lcudnn -ldl -lrt -lstdc++"
fi
# A sanitizer build's library needs the sanitizer runtimes at link time too.
if grep -q "HP_SANITIZE:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null; then
  cc_flags="$cc_flags -fsanitize=address,undefined"
fi
$linker -std=c11 $cc_flags "$tmp/use.c" -o "$tmp/use" $libs
"$tmp/use" "$src/models/zoo/histoplan-demo-densenet.onnx"
echo "1 passed, 0 failed"
