/* The viewer's page and assets, GET /viewer/ and /viewer/{file} (server/web/, with OpenSeadragon
 * from npm under vendor/), from the web folder: `web/` beside the histoplan binary (the build),
 * else `../share/histoplan/web` (the installed layout). No token needed: the page holds nothing
 * but code; everything it shows comes from the API with the session.
 *
 * Every answer carries a Content-Security-Policy that allows scripts only from this server
 * (no inline script, no eval), so an injected string cannot run, and forbids framing. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/api.h"
#include "server/file_response.h"
#include "server/service_internal.h"

#define CSP "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " \
            "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "        \
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static int web_root(char *out, size_t n)
{
    char exe[PATH_MAX - 64];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return -1;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = 0;
    struct stat st;
    if (snprintf(out, n, "%s/web", exe) < (int)n && stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (snprintf(out, n, "%s/../share/histoplan/web", exe) >= (int)n)
        return -1;
    return stat(out, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* A plain file name: letters, digits, '.', '-', '_', not starting with '.'. */
static int plain_name(const char *s)
{
    if (!*s || *s == '.' || strlen(s) > 100)
        return 0;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", *s))
            return 0;
    return 1;
}

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *const T[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".png", "image/png"},
        {".svg", "image/svg+xml"},             {".json", "application/json"},
        {".map", "application/json"}};
    for (size_t i = 0; dot && i < sizeof T / sizeof T[0]; i++)
        if (!strcmp(dot, T[i][0]))
            return T[i][1];
    return NULL;
}

static void serve(hp_request *r, const char *dir, const char *name)
{
    char root[PATH_MAX], path[PATH_MAX + 256];
    const char *type = type_of(name);
    if ((dir && !plain_name(dir)) || !plain_name(name) || !type) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such file of the viewer");
        return;
    }
    if (web_root(root, sizeof root) != 0) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "the viewer's assets are not installed beside this histoplan");
        return;
    }
    if (dir)
        snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    else
        snprintf(path, sizeof path, "%s/%s", root, name);
    hp_respond_header(r, "Content-Security-Policy", CSP);
    hp_respond_header(r, "X-Content-Type-Options", "nosniff");
    hp_respond_header(r, "Referrer-Policy", "no-referrer");
    hp_respond_header(r, "X-Frame-Options", "DENY");
    hp_respond_header(r, "Cache-Control", "no-cache");
    hp_respond_path(r, path, type);
}

void hp_api_web_redirect(hp_request *r)
{
    hp_respond_header(r, "Location", "/viewer/");
    hp_respond_text(r, 308, NULL, "", 0);
}

void hp_api_web_index(hp_request *r) { serve(r, NULL, "index.html"); }
void hp_api_web_file(hp_request *r) { serve(r, NULL, r->params[0]); }
void hp_api_web_dir_file(hp_request *r) { serve(r, r->params[0], r->params[1]); }
