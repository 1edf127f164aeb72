/* The admin listener (main thread): Envoy's admin paths and formats. It reads live state through
 * the view it is given; nothing here is on the request path. */
#ifndef RM_ADMIN_ADMIN_H
#define RM_ADMIN_ADMIN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/listener.h"
#include "upstream/cluster_manager.h"

struct event_base;

typedef enum {
    RM_SERVER_PRE_INITIALIZING = 0,
    RM_SERVER_LIVE = 1,
    RM_SERVER_DRAINING = 2,
} rm_server_state_t;

typedef struct {
    rm_listener_t **listeners;
    size_t num_listeners;
    rm_cluster_manager_t *cm;
    const rm_bootstrap_config_t *bootstrap;
    _Atomic int *state;     /* rm_server_state_t */
    _Atomic int *hc_failed; /* set by /healthcheck/fail */
    uint64_t start_time_s;  /* wall clock */
    int num_workers;
    const char *command_line;
    /* Stats owned elsewhere (the xDS client); may be NULL. */
    void (*extra_stats)(void *ctx, rm_stats_visit_cb cb, void *cb_ctx);
    void (*on_quit)(void *ctx); /* /quitquitquit */
    void (*on_drain_listeners)(void *ctx);
    void *ctx;
} rm_admin_view_t;

typedef struct rm_admin rm_admin_t;

/* Binds the admin address. Returns NULL with err set on failure; `bound` receives "ip:port". */
rm_admin_t *rm_admin_create(struct event_base *base, const rm_admin_config_t *cfg,
                            const rm_admin_view_t *view, char *bound, size_t bound_len, char *err,
                            size_t errlen);
void rm_admin_destroy(rm_admin_t *a);

#endif
