/* Placeholder while the command is written; replaced in the same change. */
#include <stdio.h>

#include "cli/commands.h"

int hp_cli_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "histoplan report: not built yet\n");
    return HP_EXIT_FAILED;
}
