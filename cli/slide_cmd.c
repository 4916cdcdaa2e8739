/* `histoplan slide`: not yet implemented; the slide-reading and synthetic-slide work fills it in. */
#include <stdio.h>

#include "cli/commands.h"

int hp_cli_slide(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "histoplan: 'slide' is not available in this build yet\n");
    return HP_EXIT_FAILED;
}
