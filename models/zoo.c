/* The zoo's files' locations (see zoo.h). */
#include "models/zoo.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef HP_SOURCE_ZOO_DIR
#define HP_SOURCE_ZOO_DIR ""
#endif
#ifndef HP_INSTALLED_ZOO_DIR
#define HP_INSTALLED_ZOO_DIR ""
#endif

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Tries dir/name; records dir in `tried` when absent. */
static int try_dir(const char *dir, const char *name, char *out, size_t n, char *tried, size_t tried_n)
{
    if (!dir || !*dir)
        return -1;
    int w = snprintf(out, n, "%s/%s", dir, name);
    if (w > 0 && (size_t)w < n && file_exists(out))
        return 0;
    size_t used = strlen(tried);
    if (used < tried_n) {
        int k = snprintf(tried + used, tried_n - used, "%s%s", used ? ", " : "", dir);
        (void)k;
    }
    return -1;
}

int hp_zoo_file(const char *name, char *out, size_t n, char *tried, size_t tried_n)
{
    char none[1];
    if (!tried) {
        tried = none;
        tried_n = sizeof none;
    }
    if (tried_n)
        tried[0] = '\0';
    const char *env = getenv("HP_MODEL_DIR");
    if (env && *env) {
        /* An explicit choice: never fall back to another copy behind the user's back. */
        if (!try_dir(env, name, out, n, tried, 0))
            return 0;
        snprintf(tried, tried_n, "$HP_MODEL_DIR (%s)", env);
        return -1;
    }
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char dir[PATH_MAX + 32];
            snprintf(dir, sizeof dir, "%.*s/../share/histoplan/zoo", PATH_MAX - 32, exe);
            char real[PATH_MAX];
            if (!try_dir(realpath(dir, real) ? real : dir, name, out, n, tried, tried_n))
                return 0;
        }
    }
    if (!try_dir(HP_SOURCE_ZOO_DIR, name, out, n, tried, tried_n))
        return 0;
    if (!try_dir(HP_INSTALLED_ZOO_DIR, name, out, n, tried, tried_n))
        return 0;
    return -1;
}
