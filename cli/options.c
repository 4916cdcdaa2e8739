#include "cli/options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"

/* getopt_long's value for option k; --help has its own. */
#define VAL_BASE 256
#define VAL_HELP 4096

void hp_cli_parser_init(hp_cli_parser *p, const char *command, const char *help, const hp_cli_option *opts,
                        int argc, char **argv)
{
    memset(p, 0, sizeof *p);
    p->command = command;
    p->help = help;
    p->opts = opts;
    p->argc = argc;
    p->argv = argv;
    /* '-': positional arguments come back in order (as 1), whatever POSIXLY_CORRECT says;
     * ':': a missing value comes back as ':' rather than '?'. */
    char *s = p->shorts;
    *s++ = '-';
    *s++ = ':';
    *s++ = 'h';
    int n = 0;
    for (; opts[n].name && n < HP_CLI_MAX_OPTIONS; n++) {
        p->lo[n] = (struct option){opts[n].name, opts[n].has_value ? required_argument : no_argument, NULL,
                                   VAL_BASE + n};
        if (opts[n].letter) {
            *s++ = (char)opts[n].letter;
            if (opts[n].has_value)
                *s++ = ':';
        }
    }
    *s = '\0';
    p->n_opts = n;
    p->lo[n] = (struct option){"help", no_argument, NULL, VAL_HELP};
    p->lo[n + 1] = (struct option){0, 0, 0, 0};
    /* 0 makes glibc start afresh (a command may parse after another one did). */
    optind = 0;
    opterr = 0;
}

static void hint(const hp_cli_parser *p)
{
    fprintf(stderr, "see 'histoplan %s --help'\n", p->help);
}

int hp_cli_usage_error(const hp_cli_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "histoplan %s: ", p->command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    hint(p);
    return HP_EXIT_USAGE;
}

int hp_cli_usage_error_for(const char *command, const char *help, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "histoplan %s: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "see 'histoplan %s --help'\n", help);
    return HP_EXIT_USAGE;
}

/* A usage error found by the parser: printed, and HP_CLI_ERROR for the caller's loop. */
static int bad(const hp_cli_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const hp_cli_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "histoplan %s: ", p->command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    hint(p);
    return HP_CLI_ERROR;
}

static int by_letter(const hp_cli_parser *p, int c)
{
    for (int k = 0; k < p->n_opts; k++)
        if (p->opts[k].letter == c)
            return k;
    return -1;
}

/* An option that getopt did not take: unknown, or an abbreviation of several. */
static int unknown_long(hp_cli_parser *p, const char *text)
{
    const char *name = text + 2;
    size_t len = strcspn(name, "=");
    const char *first = NULL, *second = NULL;
    for (int k = 0; k <= p->n_opts; k++) {
        const char *cand = p->lo[k].name;
        if (!strncmp(cand, name, len)) {
            if (!first)
                first = cand;
            else if (!second)
                second = cand;
        }
    }
    if (len && second)
        return bad(p, "ambiguous option --%.*s (--%s, --%s, ...)", (int)len, name, first, second);
    return bad(p, "unknown option --%.*s", (int)len, name);
}

int hp_cli_next(hp_cli_parser *p)
{
    p->value = NULL;
    p->option = NULL;
    if (p->rest) {
        if (optind < p->argc) {
            p->value = p->argv[optind++];
            return HP_CLI_ARG;
        }
        return HP_CLI_END;
    }
    int c = getopt_long(p->argc, p->argv, p->shorts, p->lo, NULL);
    if (c == -1) {
        /* After "--" the rest are arguments, even those that start with '-'. */
        p->rest = 1;
        return hp_cli_next(p);
    }
    if (c == 1) {
        p->value = optarg;
        return HP_CLI_ARG;
    }
    if (c == 'h' || c == VAL_HELP)
        return HP_CLI_HELP;
    if (c == ':') {
        int k = optopt >= VAL_BASE && optopt < VAL_HELP ? optopt - VAL_BASE : by_letter(p, optopt);
        if (k < 0)
            return bad(p, "-%c needs a value", optopt);
        return bad(p, "--%s needs a value", p->opts[k].name);
    }
    if (c == '?') {
        const char *text = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
        if (optopt >= VAL_BASE && optopt < VAL_HELP)
            return bad(p, "--%s takes no value (got '%s')", p->opts[optopt - VAL_BASE].name, text);
        if (optopt == VAL_HELP)
            return bad(p, "--help takes no value");
        if (optopt)
            return bad(p, "unknown option -%c", optopt);
        if (!strncmp(text, "--", 2))
            return unknown_long(p, text);
        return bad(p, "unknown option %s", text);
    }
    int k = c >= VAL_BASE && c < VAL_HELP ? c - VAL_BASE : by_letter(p, c);
    if (k < 0)
        return bad(p, "unknown option -%c", c);
    p->option = p->lo[k].name; /* without "--"; messages add it */
    p->value = optarg;
    if (p->opts[k].has_value && (!optarg || !*optarg))
        return bad(p, "--%s needs a value (got an empty one)", p->opts[k].name);
    return p->opts[k].id;
}

int hp_cli_int_value(const hp_cli_parser *p, long long lo, long long hi, long long *out)
{
    const char *s = p->value ? p->value : "";
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        hp_cli_usage_error(p, "--%s must be an integer in %lld..%lld, not '%s'", p->option, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int hp_cli_double_value(const hp_cli_parser *p, double lo, double hi, double *out)
{
    const char *s = p->value ? p->value : "";
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi) {
        hp_cli_usage_error(p, "--%s must be a number in %g..%g, not '%s'", p->option, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int hp_cli_choice_value(const hp_cli_parser *p, const char *const *choices)
{
    const char *s = p->value ? p->value : "";
    int n = 0;
    for (; choices[n]; n++)
        if (!strcmp(s, choices[n]))
            return n;
    char list[256] = "";
    size_t used = 0;
    for (int k = 0; k < n && used < sizeof list; k++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", k == 0 ? "" : k == n - 1 ? " or " : ", ",
                         choices[k]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    hp_cli_usage_error(p, "--%s must be %s, not '%s'", p->option, list, s);
    return -1;
}

int hp_cli_precision_value(const hp_cli_parser *p, hp_precision *out)
{
    static const char *const names[] = {"fp32", "fp16", "bf16", NULL};
    static const hp_precision ids[] = {HP_PREC_FP32, HP_PREC_FP16, HP_PREC_BF16};
    int k = hp_cli_choice_value(p, names);
    if (k < 0)
        return -1;
    *out = ids[k];
    return 0;
}

void hp_cli_fail(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "histoplan %s: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void hp_cli_fail_path(const char *command, const char *path, const char *msg)
{
    if (!path || !*path || strstr(msg, path))
        fprintf(stderr, "histoplan %s: %s\n", command, msg);
    else
        fprintf(stderr, "histoplan %s: %s: %s\n", command, path, msg);
}

int hp_cli_is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int hp_cli_refuse_dir(const char *command, const char *path, const char *what)
{
    if (!hp_cli_is_dir(path))
        return 0;
    hp_cli_fail(command, "%s is a directory, not %s", path, what);
    return HP_EXIT_FAILED;
}

int hp_cli_refuse_dir_output(const char *command, const char *option, const char *path, const char *what)
{
    if (!hp_cli_is_dir(path))
        return 0;
    hp_cli_fail(command, "%s %s is a directory; it takes the name of %s to write", option, path, what);
    return HP_EXIT_FAILED;
}
