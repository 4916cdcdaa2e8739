/* `histoplan eval-wsi`: placeholder until the Part B scoring lands. */
#include <stdio.h>

#include "cli/commands.h"

int hp_cli_eval_wsi(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "histoplan eval-wsi: not built yet\n");
    return HP_EXIT_FAILED;
}
