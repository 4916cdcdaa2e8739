/* Options shared by `histoplan serve` and `histoplan worker` (cli/serve_cmd.c). */
#ifndef HP_CLI_SERVICE_OPTIONS_H
#define HP_CLI_SERVICE_OPTIONS_H

#include <stdio.h>

#ifdef HP_HAVE_SERVER
#include "cli/options.h"
#include "server/service.h"

/* The options of both commands, for hp_cli_parser_init (ids 1..99; a command adds none). */
extern const hp_cli_option hp_cli_service_options[];
/* Applies the option hp_cli_next just returned (`id`, value in p->value) to `c`; `stop_grace`
 * receives --stop-grace-seconds. Returns 0, or -1 after printing the usage error. */
int hp_cli_service_apply(const hp_cli_parser *p, int id, hp_service_config *c, int *stop_grace);
/* After the last option: the checks between options (--sr-precision needs --backend cuda).
 * Returns 0, or -1 after printing the usage error. */
int hp_cli_service_check(const hp_cli_parser *p, const hp_service_config *c);
/* The option lines of the usage text. */
void hp_cli_service_usage(FILE *f, int with_http);
/* Runs the service with `c` and prints what happened; the exit status. */
int hp_cli_service_run(const char *cmd, hp_service_config *c, int stop_grace);
#endif

#endif
