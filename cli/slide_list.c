#include "cli/slide_list.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/output_dir.h"

#define MAX_DEPTH 64

static const char *const SLIDE_EXT[] = {".svs", ".tif",     ".tiff", ".ndpi", ".vms", ".vmu", ".scn",
                                        ".mrxs", ".svslide", ".bif",  ".png",  ".jpg", ".jpeg", NULL};

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcasecmp(s + n - k, suf);
}

static int is_slide_name(const char *name)
{
    if (name[0] == '.' || ends_with(name, ".truth.png"))
        return 0;
    for (int i = 0; SLIDE_EXT[i]; i++)
        if (ends_with(name, SLIDE_EXT[i]))
            return 1;
    return 0;
}

static int push(hp_cli_slide_list *l, char *p)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **np = realloc(l->paths, sizeof *np * (size_t)cap);
        if (!np) {
            free(p);
            return -1;
        }
        l->paths = np;
        l->cap = cap;
    }
    l->paths[l->n++] = p;
    return 0;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", a, a[0] && a[strlen(a) - 1] == '/' ? "" : "/", b);
    return p;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(hp_cli_slide_list *l, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "histoplan analyze: cannot read the folder %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0, rc = 0, vms = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, sizeof *nn * (size_t)cap);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        vms |= ends_with(names[n], ".vms") || ends_with(names[n], ".vmu");
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 1)
        qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n && rc == 0; i++) {
        char *p = join(dir, names[i]);
        struct stat ls, st;
        if (!p) {
            rc = -1;
            break;
        }
        if (lstat(p, &ls) != 0) {
            free(p);
            continue;
        }
        if (S_ISDIR(ls.st_mode)) {
            /* Results histoplan wrote are not slides, and a deep tree is not a slide folder. */
            if (depth < MAX_DEPTH && !hp_output_dir_is_kind(p, HP_OUTPUT_KIND_ANALYSIS) &&
                !hp_output_dir_is_kind(p, HP_OUTPUT_KIND_REPORT))
                rc = walk(l, p, depth + 1);
            free(p);
            continue;
        }
        int jpeg_piece = vms && (ends_with(names[i], ".jpg") || ends_with(names[i], ".jpeg"));
        if (is_slide_name(names[i]) && !jpeg_piece && stat(p, &st) == 0 && S_ISREG(st.st_mode))
            rc = push(l, p);
        else
            free(p);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc && errno == ENOMEM)
        fprintf(stderr, "histoplan analyze: out of memory listing %s\n", dir);
    return rc;
}

int hp_cli_slide_list_add(hp_cli_slide_list *l, const char *path, int recursive)
{
    struct stat st;
    if (recursive && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return walk(l, path, 0);
    char *p = strdup(path);
    return p ? push(l, p) : -1;
}

void hp_cli_slide_list_free(hp_cli_slide_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
    l->paths = NULL;
    l->n = l->cap = 0;
}
