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
#include "server/signing_keys.h"
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
            "       histoplan serve signer add --data DIR --token TOKEN-ID --pathologist ID "
            "--key KEY.enc.pem\n"
            "\n"
            "An HTTP API (docs/api.md) through which lab systems submit slide batches and collect\n"
            "findings and reports. Jobs are kept in a durable store: SQLite in DIR by default, or\n"
            "PostgreSQL (--db postgresql://...) shared with `histoplan worker` processes on other\n"
            "machines. Each slide is analyzed as `histoplan analyze` does. Stops on SIGTERM.\n"
            "The token and audit commands take --db too when the store is PostgreSQL.\n"
            "signer add enrols a pathologist's own Ed25519 key, encrypted with their passphrase,\n"
            "so that they can sign from the viewer (docs/viewer.md); the signer registry\n"
            "DIR/signers/registry.json must bind the key to ID (histoplan report signers add).\n"
            "\n"
            "options:\n");
    hp_cli_service_usage(f, 1);
    fprintf(f, "\nexit status: 0 stopped cleanly, 1 failed to start, 2 bad usage\n");
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
            "  --sr-precision P       fp32 (default); fp16 or bf16 runs the super-resolution\n"
            "                         models (a batch's \"super_resolution\": \"auto\") in half\n"
            "                         precision; --backend cuda only\n"
            "  --threads N            tile reader threads per analysis (default: all CPUs)\n"
            "  --batch N              tiles per model batch (default 16)\n"
            "  --lease-seconds S      a job's lease (default 180); renewed every\n"
            "  --heartbeat-seconds S  (default 30)\n"
            "  --max-attempts N       tries per job before it fails (default 3)\n"
            "  --retry-base-ms MS     backoff before a retry (default 30000, x4 each time)\n"
            "  --stop-grace-seconds S on SIGTERM, running analyses get S seconds to finish\n"
            "                         before their jobs are handed back (default 60)\n");
}

enum {
    S_DATA = 1, S_DB, S_LISTEN, S_TLS_CERT, S_TLS_KEY, S_INSECURE, S_SLIDE_ROOT, S_MAX_UPLOAD,
    S_MAX_BODY, S_MAX_SLIDES, S_RATE, S_HTTP_THREADS, S_WORKERS, S_MODEL, S_BACKEND, S_THREADS,
    S_BATCH, S_CLIENT_TIMEOUT, S_LEASE, S_HEARTBEAT, S_ATTEMPTS, S_RETRY, S_GRACE, S_CB_RETRY,
    S_TILE_CACHE, S_SR_PRECISION
};

static const hp_cli_option service_options[] = {
    {"data", 0, 1, S_DATA},
    {"db", 0, 1, S_DB},
    {"listen", 0, 1, S_LISTEN},
    {"tls-cert", 0, 1, S_TLS_CERT},
    {"tls-key", 0, 1, S_TLS_KEY},
    {"insecure-listen", 0, 0, S_INSECURE},
    {"slide-root", 0, 1, S_SLIDE_ROOT},
    {"max-upload", 0, 1, S_MAX_UPLOAD},
    {"max-body", 0, 1, S_MAX_BODY},
    {"max-slides", 0, 1, S_MAX_SLIDES},
    {"rate-limit", 0, 1, S_RATE},
    {"http-threads", 0, 1, S_HTTP_THREADS},
    {"tile-cache-mb", 0, 1, S_TILE_CACHE},
    {"workers", 0, 1, S_WORKERS},
    {"model", 'm', 1, S_MODEL},
    {"backend", 0, 1, S_BACKEND},
    {"sr-precision", 0, 1, S_SR_PRECISION},
    {"threads", 'j', 1, S_THREADS},
    {"batch", 'b', 1, S_BATCH},
    {"client-timeout", 0, 1, S_CLIENT_TIMEOUT},
    {"lease-seconds", 0, 1, S_LEASE},
    {"heartbeat-seconds", 0, 1, S_HEARTBEAT},
    {"max-attempts", 0, 1, S_ATTEMPTS},
    {"retry-base-ms", 0, 1, S_RETRY},
    {"stop-grace-seconds", 0, 1, S_GRACE},
    {"callback-retry-base-ms", 0, 1, S_CB_RETRY},
    {0},
};

/* Applies the option hp_cli_next just returned (`id`, value in p->value) to `c`. Returns 0, or -1
 * after printing the usage error. */
static int service_apply(const hp_cli_parser *p, int id, hp_service_config *c, int *stop_grace)
{
    static const char *const backends[] = {"cpu", "cuda", NULL};
    long long n = 0;
    /* The numeric options: where the value goes and its range. */
    static const struct {
        int id;
        long long lo, hi;
    } ranges[] = {
        {S_MAX_UPLOAD, 1, 1LL << 46}, {S_MAX_BODY, 1024, 1LL << 30}, {S_MAX_SLIDES, 1, 100000},
        {S_RATE, 0, 1000000},          {S_HTTP_THREADS, 1, 256},      {S_CLIENT_TIMEOUT, 1, 3600},
        {S_WORKERS, 0, 64},            {S_THREADS, 1, 256},           {S_BATCH, 1, 1024},
        {S_LEASE, 2, 86400},           {S_HEARTBEAT, 1, 3600},        {S_ATTEMPTS, 1, 1000},
        {S_RETRY, 0, 86400000},        {S_CB_RETRY, 1, 86400000},     {S_GRACE, 0, 86400},
        {S_TILE_CACHE, 0, 1 << 20},
    };
    for (size_t k = 0; k < sizeof ranges / sizeof *ranges; k++)
        if (ranges[k].id == id && hp_cli_int_value(p, ranges[k].lo, ranges[k].hi, &n))
            return -1;
    switch (id) {
    case S_DATA: c->data_dir = p->value; break;
    case S_DB: c->db = p->value; break;
    case S_LISTEN: c->listen = p->value; break;
    case S_TLS_CERT: c->tls_cert = p->value; break;
    case S_TLS_KEY: c->tls_key = p->value; break;
    case S_INSECURE: c->insecure_listen = 1; break;
    case S_MODEL: c->model_path = p->value; break;
    case S_SLIDE_ROOT:
        if (c->n_slide_roots >= HP_SERVICE_MAX_ROOTS) {
            hp_cli_usage_error(p, "at most %d --slide-root", HP_SERVICE_MAX_ROOTS);
            return -1;
        }
        c->slide_roots[c->n_slide_roots++] = p->value;
        break;
    case S_BACKEND:
        if (hp_cli_choice_value(p, backends) < 0)
            return -1;
        c->backend = p->value;
        break;
    case S_SR_PRECISION:
        if (hp_cli_precision_value(p, &c->sr_precision))
            return -1;
        break;
    case S_MAX_UPLOAD: c->max_upload = n; break;
    case S_MAX_BODY: c->max_body = n; break;
    case S_MAX_SLIDES: c->max_slides = (int)n; break;
    case S_RATE: c->rate_limit = (double)n; break;
    case S_HTTP_THREADS: c->http_threads = (int)n; break;
    case S_TILE_CACHE: c->tile_cache_mb = (int)n; break;
    case S_CLIENT_TIMEOUT: c->client_timeout_s = (int)n; break;
    case S_WORKERS: c->workers = (int)n; break;
    case S_THREADS: c->threads = (int)n; break;
    case S_BATCH: c->batch = (int)n; break;
    case S_LEASE: c->lease_s = (int)n; break;
    case S_HEARTBEAT: c->heartbeat_s = (int)n; break;
    case S_ATTEMPTS: c->max_attempts = (int)n; break;
    case S_RETRY: c->retry_base_ms = n; break;
    case S_CB_RETRY: c->callback_retry_base_ms = n; break;
    case S_GRACE: *stop_grace = (int)n; break;
    default: return -1;
    }
    return 0;
}

/* After the last option: what options say of each other. */
static int service_check(const hp_cli_parser *p, const hp_service_config *c)
{
    if (c->sr_precision != HP_PREC_FP32 && strcmp(c->backend, "cuda")) {
        hp_cli_usage_error(p, "--sr-precision %s needs --backend cuda (the CPU backend runs in fp32)",
                           hp_precision_name(c->sr_precision));
        return -1;
    }
    return 0;
}

int hp_cli_service_parse(hp_cli_parser *ps, const char *cmd, int argc, char **argv, hp_service_config *c,
                         int *stop_grace, void (*usage)(FILE *))
{
    hp_cli_parser_init(ps, cmd, cmd, service_options, argc, argv);
    int k;
    while ((k = hp_cli_next(ps)) != HP_CLI_END) {
        if (k == HP_CLI_HELP) {
            usage(stdout);
            return HP_EXIT_OK;
        }
        if (k == HP_CLI_ARG)
            return hp_cli_usage_error(ps, "unexpected argument '%s'", ps->value);
        if (k < 0 || service_apply(ps, k, c, stop_grace))
            return HP_EXIT_USAGE;
    }
    return service_check(ps, c) ? HP_EXIT_USAGE : HP_CLI_SERVICE_PARSED;
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
    const char *data, *db, *role, *name, *out, *arg, *token, *pathologist, *key;
    int json;
} admin_args;

/* Parses the options after `serve token|audit SUB`. Returns ADMIN_PARSED, or the exit status
 * for the caller to return (--help, or a usage error already printed). */
#define ADMIN_PARSED (-1)
static int parse_admin(int argc, char **argv, const char *command, admin_args *a)
{
    enum { A_DATA = 1, A_DB, A_ROLE, A_NAME, A_OUT, A_JSON, A_TOKEN, A_PATHOLOGIST, A_KEY };
    static const hp_cli_option opts[] = {
        {"data", 0, 1, A_DATA}, {"db", 0, 1, A_DB},   {"role", 0, 1, A_ROLE},
        {"name", 0, 1, A_NAME}, {"out", 'o', 1, A_OUT}, {"json", 0, 0, A_JSON},
        {"token", 0, 1, A_TOKEN}, {"pathologist", 0, 1, A_PATHOLOGIST}, {"key", 0, 1, A_KEY},
        {0},
    };
    memset(a, 0, sizeof *a);
    hp_cli_parser ps;
    /* argv[0] is "serve", argv[1] "token", "audit" or "signer", argv[2] the subcommand. */
    hp_cli_parser_init(&ps, command, "serve", opts, argc - 2, argv + 2);
    int c;
    while ((c = hp_cli_next(&ps)) != HP_CLI_END) {
        switch (c) {
        case A_DATA: a->data = ps.value; break;
        case A_DB: a->db = ps.value; break;
        case A_ROLE: a->role = ps.value; break;
        case A_NAME: a->name = ps.value; break;
        case A_OUT: a->out = ps.value; break;
        case A_JSON: a->json = 1; break;
        case A_TOKEN: a->token = ps.value; break;
        case A_PATHOLOGIST: a->pathologist = ps.value; break;
        case A_KEY: a->key = ps.value; break;
        case HP_CLI_ARG:
            if (a->arg)
                return hp_cli_usage_error(&ps, "unexpected argument '%s'", ps.value);
            a->arg = ps.value;
            break;
        case HP_CLI_HELP: usage(stdout); return HP_EXIT_OK;
        default: return HP_EXIT_USAGE;
        }
    }
    if (!a->data)
        return hp_cli_usage_error(&ps, "--data DIR is required");
    return ADMIN_PARSED;
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
    if (argc < 3)
        return hp_cli_usage_error_for("serve token", "serve", "create, list or revoke?");
    const char *sub = argv[2];
    if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke"))
        return hp_cli_usage_error_for("serve token", "serve",
                                      "unknown subcommand '%s' (create, list or revoke)", sub);
    char command[64];
    snprintf(command, sizeof command, "serve token %s", sub);
    int k = parse_admin(argc, argv, command, &a);
    if (k != ADMIN_PARSED)
        return k;
    if (!strcmp(sub, "create") && (!a.role || !a.name))
        return hp_cli_usage_error_for(command, "serve", "--role and --name are required");
    if (!strcmp(sub, "create") && a.arg)
        return hp_cli_usage_error_for(command, "serve", "unexpected argument '%s'", a.arg);
    if (!strcmp(sub, "revoke") && !a.arg)
        return hp_cli_usage_error_for(command, "serve", "which TOKEN-ID?");
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
}

static int cmd_audit(int argc, char **argv)
{
    admin_args a;
    if (argc < 3 || (strcmp(argv[2], "verify") && strcmp(argv[2], "export")))
        return hp_cli_usage_error_for("serve audit", "serve", "verify or export?");
    int verify = !strcmp(argv[2], "verify");
    const char *command = verify ? "serve audit verify" : "serve audit export";
    int k = parse_admin(argc, argv, command, &a);
    if (k != ADMIN_PARSED)
        return k;
    if (a.arg)
        return hp_cli_usage_error_for(command, "serve", "unexpected argument '%s'", a.arg);
    if (!verify && !a.out)
        return hp_cli_usage_error_for(command, "serve", "--out FILE is required");
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
}

/* serve signer add: the key is checked and copied; the token must be a pathologist's. */
static int cmd_signer(int argc, char **argv)
{
    admin_args a;
    if (argc < 3 || strcmp(argv[2], "add"))
        return hp_cli_usage_error_for("serve signer", "serve", "add?");
    int k = parse_admin(argc, argv, "serve signer add", &a);
    if (k != ADMIN_PARSED)
        return k;
    if (a.arg)
        return hp_cli_usage_error_for("serve signer add", "serve", "unexpected argument '%s'", a.arg);
    if (!a.token || !a.pathologist || !a.key)
        return hp_cli_usage_error_for("serve signer add", "serve", "--token, --pathologist and --key are required");
    hp_db *db = open_store(&a);
    if (!db)
        return HP_EXIT_FAILED;
    hp_error err = {0};
    int rc = HP_EXIT_OK;
    cJSON *list = NULL;
    const cJSON *t, *found = NULL;
    if (hp_store_token_list(db, &list, &err) != HP_OK) {
        fprintf(stderr, "histoplan serve: %s\n", err.msg);
        rc = HP_EXIT_FAILED;
        goto out;
    }
    cJSON_ArrayForEach(t, list)
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "id")), a.token))
            found = t;
    if (!found || strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(found, "role")), "pathologist") ||
        !cJSON_IsNull(cJSON_GetObjectItem(found, "revoked"))) {
        fprintf(stderr, "histoplan serve: signer add: %s is not a live pathologist token (histoplan serve token list)\n",
                a.token);
        rc = HP_EXIT_FAILED;
        goto out;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "token", a.token);
    if (hp_signing_key_enrol(a.data, a.token, a.pathologist, a.key, &err) != HP_OK ||
        hp_store_audit_event(db, "signer.enrol", "cli", d, &err) != HP_OK) {
        fprintf(stderr, "histoplan serve: signer add: %s\n", err.msg);
        rc = HP_EXIT_FAILED;
    } else {
        printf("enrolled the signing key of %s for token %s; the signer registry %s/%s must bind it to %s\n",
               a.pathologist, a.token, a.data, HP_SIGNER_REGISTRY, a.pathologist);
    }
    cJSON_Delete(d);
out:
    cJSON_Delete(list);
    hp_db_close(db);
    return rc;
}

int hp_cli_serve(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "signer"))
        return cmd_signer(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "token"))
        return cmd_token(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "audit"))
        return cmd_audit(argc, argv);
    hp_service_config c;
    hp_service_config_init(&c);
    int grace = 60;
    hp_cli_parser ps;
    int rc = hp_cli_service_parse(&ps, "serve", argc, argv, &c, &grace, usage);
    if (rc != HP_CLI_SERVICE_PARSED)
        return rc;
    if (!c.data_dir)
        return hp_cli_usage_error(&ps, "--data DIR is required");
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
