/* libFuzzer harness for model loading: the input is written to a file (model.h opens paths
 * only) and goes through hp_exercise_model_file (open, instantiate for batch 1, run on zero
 * inputs; model_exercise.c). Any crash, sanitizer report, leak, hang or runaway allocation is
 * a finding; an error return is the expected outcome for almost every input, and its message
 * must not be empty. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/model_exercise.h"

static char g_path[128];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0])
        snprintf(g_path, sizeof g_path, "/dev/shm/hp_fuzz_model_%d.onnx", (int)getpid());
    int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    if (off != size)
        return 0;

    if (hp_exercise_model_file(g_path) != 0)
        abort(); /* every failure must say why */
    return 0;
}
