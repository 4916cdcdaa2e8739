/* The one option parser of every histoplan command (getopt_long underneath), and the messages a
 * command prints about its arguments.
 *
 * Each command lists its options once (long name, optional one-letter form, whether it takes a
 * value) and loops on hp_cli_next. Options may come before, between or after the positional
 * arguments, as `--out DIR`, `--out=DIR` or `-o DIR`; `--` ends the options. The parser itself
 * reports what a user gets wrong, naming it, on one line, followed by a one-line hint instead of
 * the whole usage text (which would push the error off the screen):
 *
 *   histoplan analyze: unknown option --foo
 *   see 'histoplan analyze --help'
 *
 * for an unknown option, a missing or empty value ("--out needs a value"), a value given to an
 * option that takes none, and an abbreviation that fits several options. Commands use
 * hp_cli_usage_error for their own usage errors, so every one looks the same, and the value
 * helpers below for numbers and choices.
 *
 * Messages about files name the path once: the library's messages usually start with the path
 * already, so hp_cli_fail_path adds it only when the message lacks it.
 *
 * Not thread-safe (getopt's state is global); one parser at a time. */
#ifndef HP_CLI_OPTIONS_H
#define HP_CLI_OPTIONS_H

#include <getopt.h>
#include <stdarg.h>

#include "kernels/backend.h"

/* What hp_cli_next returns besides an option's id. */
enum {
    HP_CLI_END = -1,   /* no more arguments */
    HP_CLI_HELP = -2,  /* -h or --help: print the usage on stdout and exit 0 */
    HP_CLI_ERROR = -3, /* a usage error, already printed with the hint: exit 2 */
    HP_CLI_ARG = -4,   /* a positional argument, in p->value */
};

typedef struct {
    const char *name; /* long name without "--"; NULL ends the list */
    int letter;       /* the one-letter form (-o), 0 for none */
    int has_value;    /* 1: the option takes a value */
    int id;           /* what hp_cli_next returns for it: > 0, distinct */
} hp_cli_option;

#define HP_CLI_MAX_OPTIONS 40

typedef struct {
    const char *command; /* "analyze", "model run": the prefix of every message */
    const char *help;    /* "analyze", "model": the command whose --help the hint names */
    const char *value;   /* the value of the option just returned, or the positional argument */
    const char *option;  /* "--out": the option just returned, by its long name */
    /* private */
    const hp_cli_option *opts;
    int argc, n_opts, rest;
    char **argv;
    struct option lo[HP_CLI_MAX_OPTIONS + 2];
    char shorts[3 * HP_CLI_MAX_OPTIONS + 4];
} hp_cli_parser;

/* Prepares to parse argv[1..argc) (argv[0] is the command's own name). `opts` ends with a
 * zeroed entry and must outlive the parser; --help/-h are added. */
void hp_cli_parser_init(hp_cli_parser *p, const char *command, const char *help, const hp_cli_option *opts,
                        int argc, char **argv);

/* The next option's id (p->value its value, p->option its name), HP_CLI_ARG for a positional
 * argument (in p->value), HP_CLI_HELP, HP_CLI_END, or HP_CLI_ERROR after printing the error. */
int hp_cli_next(hp_cli_parser *p);

/* Prints "histoplan COMMAND: MESSAGE" and the hint; returns 2 (HP_EXIT_USAGE). */
int hp_cli_usage_error(const hp_cli_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same for callers without a parser (a missing subcommand): command and help named. */
int hp_cli_usage_error_for(const char *command, const char *help, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The value of the current option as an integer in lo..hi, or as a number in lo..hi. On a bad
 * value prints the usage error ("--threads must be an integer in 1..256, not 'x'") and returns
 * -1; 0 when *out is set. */
int hp_cli_int_value(const hp_cli_parser *p, long long lo, long long hi, long long *out);
int hp_cli_double_value(const hp_cli_parser *p, double lo, double hi, double *out);

/* The index of the current option's value in `choices` (NULL-terminated), or -1 after printing
 * "--backend must be cpu or cuda, not 'tpu'". */
int hp_cli_choice_value(const hp_cli_parser *p, const char *const *choices);

/* The value of a precision option: fp32, fp16 or bf16 (hp_precision_name's words). Returns 0,
 * or -1 after a usage error that lists them. */
int hp_cli_precision_value(const hp_cli_parser *p, hp_precision *out);

/* Prints "histoplan COMMAND: MESSAGE" (a failure, not a usage error; no hint). */
void hp_cli_fail(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints a failure about `path`: "histoplan COMMAND: MESSAGE" when the message already names
 * the path, else "histoplan COMMAND: PATH: MESSAGE", so the path appears once. */
void hp_cli_fail_path(const char *command, const char *path, const char *msg);

/* 1 when `path` names a directory (following links). */
int hp_cli_is_dir(const char *path);

/* For a file argument: when `path` is a directory prints "histoplan COMMAND: PATH is a
 * directory, not WHAT" and returns 1 (HP_EXIT_FAILED); else 0. Anything else (a missing file,
 * a FIFO) is left to the reader, whose messages name it. */
int hp_cli_refuse_dir(const char *command, const char *path, const char *what);

/* For an output file argument (--out T.png): the same when it names an existing directory. */
int hp_cli_refuse_dir_output(const char *command, const char *option, const char *path, const char *what);

#endif
