/* The sidecar process: main thread (cluster manager, admin, signals, snapshot publication) and the
 * workers. */
#ifndef RM_SIDECAR_SERVER_H
#define RM_SIDECAR_SERVER_H

#include "config/config.h"

typedef struct {
    int num_workers;
    uint64_t drain_time_ms;
    const char *admin_address_path;
    const char *command_line;
} rm_server_options_t;

/* Runs until SIGTERM/SIGINT or /quitquitquit, then drains. Returns the process exit code. */
int rm_server_run(const rm_bootstrap_config_t *b, const rm_server_options_t *opts);

#endif
