/* config_int.h: loader limits, shared by config.c and its tests.
 *
 * Every input-driven allocation in the loader has a ceiling. The numbers are far
 * above any real configuration (Prometheus configs are kilobytes) and low enough
 * that a hostile or corrupted file cannot make the loader use unbounded memory.
 */
#ifndef SS_CONFIG_INT_H
#define SS_CONFIG_INT_H

#define CFG_MAX_FILE_BYTES    (16u << 20) /* whole file or string */
#define CFG_MAX_DEPTH         64          /* nested mappings/sequences */
#define CFG_MAX_SCALAR_BYTES  (1u << 20)  /* one scalar, before and after ${VAR} */
#define CFG_MAX_NODES         1000000u    /* YAML nodes and alias references */
#define CFG_MAX_ANCHORS       4096u       /* distinct &anchors */
#define CFG_MAX_VISITS        4000000u    /* nodes decoded, aliases expanded */
#define CFG_MAX_DECODED_BYTES (64u << 20) /* string bytes copied into struct cfg */

#endif
