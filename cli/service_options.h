/* Options shared by `histoplan serve` and `histoplan worker` (cli/serve_cmd.c). */
#ifndef HP_CLI_SERVICE_OPTIONS_H
#define HP_CLI_SERVICE_OPTIONS_H

#include <stdio.h>

#ifdef HP_HAVE_SERVER
#include "server/service.h"

/* Parses argv[i] (and its value, advancing *i) into `c`. Returns 1 taken, 0 not a service
 * option, -1 a bad value (message printed with `cmd`). `stop_grace` receives
 * --stop-grace-seconds. */
int hp_cli_service_option(const char *cmd, int argc, char **argv, int *i, hp_service_config *c,
                          int *stop_grace);
/* The option lines of the usage text. */
void hp_cli_service_usage(FILE *f, int with_http);
/* Runs the service with `c` and prints what happened; the exit status. */
int hp_cli_service_run(const char *cmd, hp_service_config *c, int stop_grace);
#endif

#endif
