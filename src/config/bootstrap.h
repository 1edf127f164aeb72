/* The bootstrap loader: a subset of Envoy's v3 Bootstrap, in YAML (or JSON) with Envoy's nesting and
 * field names, decoded into config.h structs and validated. docs/configuration.md lists every
 * supported field; anything else (unknown, unsupported, wrongly typed or out of range) is rejected
 * with one line naming the field's path, never ignored. */
#ifndef RM_CONFIG_BOOTSTRAP_H
#define RM_CONFIG_BOOTSTRAP_H

#include "config/config.h"

#include <stddef.h>

/* Loads and validates a bootstrap. On success returns 0 and a new *out (free with
 * rm_bootstrap_config_free). On error returns -1, leaves *out untouched and writes one line into err
 * (if errlen > 0) naming the config path, e.g.
 * "static_resources.clusters[1].connect_timeout: invalid duration \"5x\" (expected e.g. \"0.25s\")".
 * YAML syntax errors name the line and column instead. Thread-safe (no shared state). */
int rm_bootstrap_load_file(const char *path, rm_bootstrap_config_t **out, char *err, size_t errlen);
/* Same, from memory: yaml need not be NUL-terminated. */
int rm_bootstrap_load_string(const char *yaml, size_t len, rm_bootstrap_config_t **out, char *err,
                             size_t errlen);

#endif
