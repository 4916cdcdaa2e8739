/* Replays every input the fuzzer once failed on, or should have (the .onnx files in
 * tests/fuzz/regressions: null inputs in shape inference, overflowing shapes, float shape values
 * beyond int64, tiny files claiming billions of elements, a Flatten whose output's first dim is
 * not the batch) through the same steps as the fuzzer. Each must end in an error with a
 * message or a clean run; in the sanitizer build any undefined behaviour fails the test too. */
#include <dirent.h>
#include <string.h>

#include "fuzz/model_exercise.h"
#include "util/testutil.h"

int main(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions", hp_test_env("HP_SOURCE_DIR", "."));
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    int files = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".onnx"))
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int rc = hp_exercise_model_file(path);
        CHECK_MSG(rc == 0, "%s: a failure without a message", e->d_name);
        files++;
    }
    if (d)
        closedir(d);
    CHECK_MSG(files >= 5, "only %d regression inputs found in %s", files, dir);
    return hp_test_finish("test_fuzz_regressions", files);
}
