/* cmd_scaler.c: `scrapeship scaler` (being built; see issue "Scaler"). */
#include <stdio.h>

#include "collector.h"

int collector_cmd_scaler(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scrapeship scaler: not built yet\n");
    return 2;
}
