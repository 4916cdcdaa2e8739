/* What the fuzzer does with one input file, shared with the regression test that replays the
 * inputs the fuzzer once failed on (tests/fuzz/regressions/, tests/unit/test_fuzz_regressions.c). */
#ifndef HP_MODEL_EXERCISE_H
#define HP_MODEL_EXERCISE_H

/* Opens `path` as a model (CPU, one thread, no card required), instantiates it for batch 1 and
 * runs it on zero inputs when they are small enough, through hp_model_run_all and (one input)
 * through hp_model_run with a buffer of exactly hp_model_output_size floats. Returns 0 when every failure on the way
 * came with a message (or nothing failed), -1 when a failure had an empty message. A crash or
 * sanitizer report is the caller's finding. */
int hp_exercise_model_file(const char *path);

#endif
