/* Options shared by `histoplan serve` and `histoplan worker` (cli/serve_cmd.c). */
#ifndef HP_CLI_SERVICE_OPTIONS_H
#define HP_CLI_SERVICE_OPTIONS_H

#include <stdio.h>

#ifdef HP_HAVE_SERVER
#include "cli/options.h"
#include "server/service.h"

/* Parses the command's options (`cmd`: "serve" or "worker") into `c` and `stop_grace`
 * (--stop-grace-seconds), `ps` left for the command's own usage errors, and checks what options
 * say of each other (--sr-precision needs --backend cuda). Returns HP_CLI_SERVICE_PARSED, or the
 * exit status for the command to return: 0 after printing `usage` for --help, 2 after printing a
 * usage error. */
#define HP_CLI_SERVICE_PARSED (-1)
int hp_cli_service_parse(hp_cli_parser *ps, const char *cmd, int argc, char **argv, hp_service_config *c,
                         int *stop_grace, void (*usage)(FILE *));
/* The option lines of the usage text. */
void hp_cli_service_usage(FILE *f, int with_http);
/* Runs the service with `c` and prints what happened; the exit status. */
int hp_cli_service_run(const char *cmd, hp_service_config *c, int stop_grace);
#endif

#endif
