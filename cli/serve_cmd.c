/* `histoplan serve`: the lab batch service (server/service.h), and its token and audit
 * commands, which work on the store directly (no server needs to run). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/service_options.h"

#ifdef HP_HAVE_SERVER
#include "report/audit_log.h"
#include "server/db.h"
#include "server/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan serve --data DIR [options]\n"
            "       histoplan serve token create --data DIR --role submitter|pathologist|admin "
            "--name NAME [--json]\n"
            "       histoplan serve token list --data DIR [--json]\n"
            "       histoplan serve token revoke --data DIR TOKEN-ID\n"
            "       histoplan serve audit verify|export --data DIR [--out FILE]\n"
            "\n"
            "An HTTP API (docs/api.md) through which lab systems submit slide batches and collect\n"
            "findings and reports. Jobs are kept in a durable store: SQLite in DIR by default, or\n"
            "PostgreSQL (--db postgresql://...) shared with `histoplan worker` processes on other\n"
            "machines. Each slide is analyzed as `histoplan analyze` does. Stops on SIGTERM.\n"
            "The token and audit commands take --db too when the store is PostgreSQL.\n"
            "\n"
            "options:\n");
    hp_cli_service_usage(f, 1);
    fprintf(f, "\nexit status: 0 stopped cleanly, 1 failed to start, 2 bad usage\n");
}

static int parse_long(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

void hp_cli_service_usage(FILE *f, int with_http)
{
    fprintf(f,
            "  --data DIR             data folder: store, uploads, results, case reports\n"
            "  --db sqlite|URI        job store: sqlite (DIR/histoplan.db, default) or\n"
            "                         postgresql://... (libpq URI; Unix sockets via ?host=/path)\n");
    if (with_http)
        fprintf(f,
                "  --listen HOST:PORT     default 127.0.0.1:8480 (port 0: any free port)\n"
                "  --tls-cert C.pem --tls-key K.pem\n"
                "                         serve HTTPS (GnuTLS)\n"
                "  --insecure-listen      allow plain HTTP on a non-loopback address\n"
                "  --slide-root PATH      slides may be named by path inside PATH (repeatable);\n"
                "                         without one, slides must be uploaded\n"
                "  --max-upload BYTES     largest uploaded slide (default 4 GiB)\n"
                "  --max-body BYTES       largest JSON body (default 1 MiB)\n"
                "  --max-slides N         slides per batch (default 1000)\n"
                "  --rate-limit R         requests per second per token (default 100; 0: none)\n"
                "  --http-threads N       default 4\n"
                "  --tile-cache-mb N      memory for encoded slide tiles (default 256; 0: none)\n"
                "  --client-timeout S     close a connection idle S seconds (default 30)\n"
                "  --workers N            analyses at a time in this process (default 1; 0: API only)\n"
                "  --callback-retry-base-ms MS\n"
                "                         first retry of a failed callback (default 5000, doubling,\n"
                "                         for a day)\n");
    else
        fprintf(f, "  --workers N            analyses at a time in this process (default 1)\n"
                   "  --slide-root PATH      as given to histoplan serve (repeatable)\n");
    fprintf(f,
            "  --model M.onnx         model with its card (default: the zoo's default model)\n"
            "  --backend cpu|cuda     default cpu\n"
            "  --threads N            tile reader threads per analysis (default: all CPUs)\n"
            "  --batch N              tiles per model batch (default 16)\n"
            "  --lease-seconds S      a job's lease (default 180); renewed every\n"
            "  --heartbeat-seconds S  (default 30)\n"
            "  --max-attempts N       tries per job before it fails (default 3)\n"
            "  --retry-base-ms MS     backoff before a retry (default 30000, x4 each time)\n"
            "  --stop-grace-seconds S on SIGTERM, running analyses get S seconds to finish\n"
            "                         before their jobs are handed back (default 60)\n");
}

int hp_cli_service_option(const char *cmd, int argc, char **argv, int *i, hp_service_config *c,
                          int *stop_grace)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--insecure-listen")) {
        c->insecure_listen = 1;
        return 1;
    }
    static const char *const WITH_VALUE[] = {
        "--data", "--db", "--listen", "--tls-cert", "--tls-key", "--slide-root", "--max-upload",
        "--max-body", "--max-slides", "--rate-limit", "--http-threads", "--tile-cache-mb", "--workers", "--model",
        "--backend", "--threads", "--batch", "--client-timeout", "--lease-seconds", "--heartbeat-seconds",
        "--max-attempts", "--retry-base-ms", "--stop-grace-seconds", "--callback-retry-base-ms"};
    int known = 0;
    for (size_t k = 0; k < sizeof WITH_VALUE / sizeof *WITH_VALUE; k++)
        known |= !strcmp(a, WITH_VALUE[k]);
    if (!known)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n\n", cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    long long n = 0;
#define NUM(lo, hi)                                                                    \
    do {                                                                               \
        if (parse_long(v, lo, hi, &n)) {                                               \
            fprintf(stderr, "%s: %s takes %lld..%lld\n\n", cmd, a, (long long)(lo),    \
                    (long long)(hi));                                                  \
            return -1;                                                                 \
        }                                                                              \
    } while (0)
    if (!strcmp(a, "--data"))
        c->data_dir = v;
    else if (!strcmp(a, "--db"))
        c->db = v;
    else if (!strcmp(a, "--listen"))
        c->listen = v;
    else if (!strcmp(a, "--tls-cert"))
        c->tls_cert = v;
    else if (!strcmp(a, "--tls-key"))
        c->tls_key = v;
    else if (!strcmp(a, "--slide-root")) {
        if (c->n_slide_roots >= HP_SERVICE_MAX_ROOTS) {
            fprintf(stderr, "%s: at most %d --slide-root\n\n", cmd, HP_SERVICE_MAX_ROOTS);
            return -1;
        }
        c->slide_roots[c->n_slide_roots++] = v;
    } else if (!strcmp(a, "--model"))
        c->model_path = v;
    else if (!strcmp(a, "--backend")) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda")) {
            fprintf(stderr, "%s: --backend is cpu or cuda\n\n", cmd);
            return -1;
        }
        c->backend = v;
    } else if (!strcmp(a, "--max-upload")) {
        NUM(1, 1LL << 46);
        c->max_upload = n;
    } else if (!strcmp(a, "--max-body")) {
        NUM(1024, 1LL << 30);
        c->max_body = n;
    } else if (!strcmp(a, "--max-slides")) {
        NUM(1, 100000);
        c->max_slides = (int)n;
    } else if (!strcmp(a, "--rate-limit")) {
        NUM(0, 1000000);
        c->rate_limit = (double)n;
    } else if (!strcmp(a, "--http-threads")) {
        NUM(1, 256);
        c->http_threads = (int)n;
    } else if (!strcmp(a, "--tile-cache-mb")) {
        NUM(0, 1 << 20);
        c->tile_cache_mb = (int)n;
    } else if (!strcmp(a, "--client-timeout")) {
        NUM(1, 3600);
        c->client_timeout_s = (int)n;
    } else if (!strcmp(a, "--workers")) {
        NUM(0, 64);
        c->workers = (int)n;
    } else if (!strcmp(a, "--threads")) {
        NUM(1, 256);
        c->threads = (int)n;
    } else if (!strcmp(a, "--batch")) {
        NUM(1, 1024);
        c->batch = (int)n;
    } else if (!strcmp(a, "--lease-seconds")) {
        NUM(2, 86400);
        c->lease_s = (int)n;
    } else if (!strcmp(a, "--heartbeat-seconds")) {
        NUM(1, 3600);
        c->heartbeat_s = (int)n;
    } else if (!strcmp(a, "--max-attempts")) {
        NUM(1, 1000);
        c->max_attempts = (int)n;
    } else if (!strcmp(a, "--retry-base-ms")) {
        NUM(0, 86400000);
        c->retry_base_ms = n;
    } else if (!strcmp(a, "--callback-retry-base-ms")) {
        NUM(1, 86400000);
        c->callback_retry_base_ms = n;
    } else if (!strcmp(a, "--stop-grace-seconds")) {
        NUM(0, 86400);
        *stop_grace = (int)n;
    }
#undef NUM
    return 1;
}

static void on_listening(const char *url)
{
    if (*url)
        printf("histoplan serve: listening on %s\n", url);
    else
        printf("histoplan worker: ready\n");
    fflush(stdout);
}

int hp_cli_service_run(const char *cmd, hp_service_config *c, int stop_grace)
{
    c->on_listening = on_listening;
    hp_error err = {0};
    int still_running = 0;
    if (hp_service_run(c, stop_grace, &still_running, &err) != HP_OK) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return HP_EXIT_FAILED;
    }
    fprintf(stderr, "%s: stopped\n", cmd);
    if (still_running) {
        /* An analysis thread is still running (its job is back in the queue): end here, before
         * exit()'s destructors free what that thread uses. */
        fflush(stdout);
        fflush(stderr);
        _exit(HP_EXIT_OK);
    }
    return HP_EXIT_OK;
}

/* ---- token and audit commands ------------------------------------------------------------ */

typedef struct {
    const char *data, *db, *role, *name, *out, *arg;
    int json;
} admin_args;

static int parse_admin(int argc, char **argv, int from, admin_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = from; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--json")) {
            a->json = 1;
            continue;
        }
        const char **slot = !strcmp(k, "--data")   ? &a->data
                            : !strcmp(k, "--db")   ? &a->db
                            : !strcmp(k, "--role") ? &a->role
                            : !strcmp(k, "--name") ? &a->name
                            : !strcmp(k, "--out")  ? &a->out
                                                   : NULL;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "histoplan serve: %s needs a value\n", k);
                return -1;
            }
            *slot = argv[++i];
        } else if (k[0] == '-' || a->arg) {
            fprintf(stderr, "histoplan serve: unexpected argument %s\n", k);
            return -1;
        } else {
            a->arg = k;
        }
    }
    if (!a->data) {
        fprintf(stderr, "histoplan serve: --data DIR is required\n");
        return -1;
    }
    return 0;
}

static hp_db *open_store(const admin_args *a)
{
    char target[PATH_MAX + 64];
    hp_error err = {0};
    hp_db *db = NULL;
    /* A new deployment starts with its first token: the data folder may not exist yet. */
    if (mkdir(a->data, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "histoplan serve: cannot create the data folder %s: %s\n", a->data,
                strerror(errno));
        return NULL;
    }
    if (hp_service_db_target(a->data, a->db, target, sizeof target, &err) != HP_OK ||
        hp_db_open(target, &db, &err) != HP_OK || hp_store_migrate(db, NULL, &err) != HP_OK) {
        fprintf(stderr, "histoplan serve: %s\n", err.msg);
        hp_db_close(db);
        return NULL;
    }
    return db;
}

static int cmd_token(int argc, char **argv)
{
    admin_args a;
    if (argc < 3 || parse_admin(argc, argv, 3, &a))
        goto usage;
    const char *sub = argv[2];
    if (!strcmp(sub, "create") && (!a.role || !a.name || a.arg))
        goto usage;
    if (!strcmp(sub, "revoke") && !a.arg)
        goto usage;
    if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke"))
        goto usage;
    hp_db *db = open_store(&a);
    if (!db)
        return HP_EXIT_FAILED;
    hp_error err = {0};
    int rc = HP_EXIT_OK;
    if (!strcmp(sub, "create")) {
        char text[HP_TOKEN_TEXT_MAX];
        hp_token_info info;
        hp_role role = hp_role_parse(a.role);
        if (role == HP_ROLE_NONE) {
            fprintf(stderr, "histoplan serve: --role is submitter, pathologist or admin\n");
            hp_db_close(db);
            return HP_EXIT_USAGE;
        }
        if (hp_store_token_create(db, role, a.name, "cli", text, &info, &err) != HP_OK) {
            fprintf(stderr, "histoplan serve: %s\n", err.msg);
            rc = HP_EXIT_FAILED;
        } else if (a.json) {
            printf("{\"id\": \"%s\", \"role\": \"%s\", \"token\": \"%s\", \"webhook_secret\": "
                   "\"%s\"}\n", info.id, hp_role_name(role), text, info.webhook_secret);
        } else {
            printf("token id:       %s\nrole:           %s\ntoken:          %s\n"
                   "webhook secret: %s\n(the token is shown only now; it is stored hashed)\n",
                   info.id, hp_role_name(role), text, info.webhook_secret);
        }
    } else if (!strcmp(sub, "list")) {
        cJSON *arr = NULL;
        if (hp_store_token_list(db, &arr, &err) != HP_OK) {
            fprintf(stderr, "histoplan serve: %s\n", err.msg);
            rc = HP_EXIT_FAILED;
        } else if (a.json) {
            char *t = cJSON_PrintUnformatted(arr);
            printf("%s\n", t ? t : "[]");
            free(t);
        } else {
            const cJSON *t;
            cJSON_ArrayForEach(t, arr)
            {
                const cJSON *rev = cJSON_GetObjectItem(t, "revoked");
                printf("%s  %-11s  %s  %s%s\n", cJSON_GetObjectItem(t, "id")->valuestring,
                       cJSON_GetObjectItem(t, "role")->valuestring,
                       cJSON_GetObjectItem(t, "created")->valuestring,
                       cJSON_GetObjectItem(t, "name")->valuestring,
                       cJSON_IsString(rev) ? "  (revoked)" : "");
            }
        }
        cJSON_Delete(arr);
    } else {
        int k = hp_store_token_revoke(db, a.arg, "cli", &err);
        if (k < 0) {
            fprintf(stderr, "histoplan serve: %s\n", err.msg);
            rc = HP_EXIT_FAILED;
        } else if (k == 0) {
            fprintf(stderr, "histoplan serve: no active token %s\n", a.arg);
            rc = HP_EXIT_FAILED;
        } else {
            printf("revoked %s\n", a.arg);
        }
    }
    hp_db_close(db);
    return rc;
usage:
    usage(stderr);
    return HP_EXIT_USAGE;
}

static int cmd_audit(int argc, char **argv)
{
    admin_args a;
    if (argc < 3 || parse_admin(argc, argv, 3, &a) || a.arg)
        goto usage;
    int verify = !strcmp(argv[2], "verify");
    if (!verify && (strcmp(argv[2], "export") || !a.out))
        goto usage;
    hp_db *db = open_store(&a);
    if (!db)
        return HP_EXIT_FAILED;
    char tmp[PATH_MAX];
    const char *path = a.out;
    if (!path) {
        snprintf(tmp, sizeof tmp, "%s/.audit-verify-%d.jsonl", a.data, (int)getpid());
        path = tmp;
    }
    hp_error err = {0};
    size_t n = 0, checked = 0;
    int rc = HP_EXIT_OK;
    if (hp_store_audit_export(db, path, &n, &err) != HP_OK ||
        (verify && hp_audit_verify(path, &checked, &err) != HP_OK)) {
        fprintf(stderr, "histoplan serve: audit: %s\n", err.msg);
        rc = HP_EXIT_FAILED;
    } else if (verify) {
        printf("audit chain verified: %zu events\n", checked);
    } else {
        printf("exported %zu events to %s\n", n, path);
    }
    if (!a.out)
        unlink(tmp);
    hp_db_close(db);
    return rc;
usage:
    usage(stderr);
    return HP_EXIT_USAGE;
}

int hp_cli_serve(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "token"))
        return cmd_token(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "audit"))
        return cmd_audit(argc, argv);
    hp_service_config c;
    hp_service_config_init(&c);
    int grace = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return HP_EXIT_OK;
        }
        int k = hp_cli_service_option("histoplan serve", argc, argv, &i, &c, &grace);
        if (k == 0) {
            fprintf(stderr, "histoplan serve: unknown option %s\n\n", argv[i]);
            k = -1;
        }
        if (k < 0) {
            usage(stderr);
            return HP_EXIT_USAGE;
        }
    }
    if (!c.data_dir) {
        fprintf(stderr, "histoplan serve: --data DIR is required\n\n");
        usage(stderr);
        return HP_EXIT_USAGE;
    }
    return hp_cli_service_run("histoplan serve", &c, grace);
}

#else

int hp_cli_serve(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "histoplan serve: this histoplan was built without the lab batch service "
                    "(libmicrohttpd, SQLite, libpq or libcurl were missing; "
                    "scripts/install-deps.sh installs them)\n");
    return HP_EXIT_FAILED;
}

#endif
