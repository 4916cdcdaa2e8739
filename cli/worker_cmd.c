/* `histoplan worker`: workers only, on another machine, sharing the PostgreSQL store and the
 * data folder with `histoplan serve` (server/service.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/service_options.h"

#ifdef HP_HAVE_SERVER

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan worker --data DIR --db postgresql://... [options]\n"
            "\n"
            "Claims jobs from the shared PostgreSQL store (SELECT ... FOR UPDATE SKIP LOCKED),\n"
            "analyzes each slide as `histoplan analyze` does into the shared data folder, holds a\n"
            "lease renewed by heartbeat, and writes each job's end only while it still holds the\n"
            "lease. Run one per GPU. Stops on SIGTERM (running jobs finish or go back to the\n"
            "queue).\n"
            "\n"
            "options:\n");
    hp_cli_service_usage(f, 0);
    fprintf(f, "\nexit status: 0 stopped cleanly, 1 failed to start, 2 bad usage\n");
}

int hp_cli_worker(int argc, char **argv)
{
    hp_service_config c;
    hp_service_config_init(&c);
    c.http = 0;
    c.db = NULL;
    int grace = 60;
    hp_cli_parser ps;
    int rc = hp_cli_service_parse(&ps, "worker", argc, argv, &c, &grace, usage);
    if (rc != HP_CLI_SERVICE_PARSED)
        return rc;
    if (!c.data_dir || !c.db)
        return hp_cli_usage_error(&ps, "--data DIR and --db postgresql://... are required");
    if (c.workers < 1)
        c.workers = 1;
    return hp_cli_service_run("histoplan worker", &c, grace);
}

#else

int hp_cli_worker(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "histoplan worker: this histoplan was built without the lab batch service "
                    "(libmicrohttpd, SQLite, libpq or libcurl were missing; "
                    "scripts/install-deps.sh installs them)\n");
    return HP_EXIT_FAILED;
}

#endif
