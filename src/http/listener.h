/* A listener at run time: its config, compiled router, HTTP connection manager stats, access log
 * and the sockets (one per worker, SO_REUSEPORT). Created by the main thread before workers start;
 * read-only afterwards except for atomics. */
#ifndef RM_HTTP_LISTENER_H
#define RM_HTTP_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "core/stats.h"
#include "http/access_log.h"
#include "http/h1_parser.h"
#include "http/router.h"
#include "tls/tls.h"

struct evconnlistener;

typedef struct rm_listener {
    const rm_listener_config_t *cfg; /* borrowed from the bootstrap, which outlives listeners */
    rm_router_t *router;
    rm_hcm_stats_t stats;
    rm_h2_stats_t h2_stats;
    rm_access_log_t access_log;
    rm_h1_limits_t limits;
    char bound_str[80]; /* "ip:port" after bind (port 0 resolved) */
    /* TLS (filter chain transport_socket): the server context, or NULL for plaintext, and the
     * ssl.* stats shown as listener.<stat_addr>.ssl.* ("ip_port", as Envoy names listeners). */
    rm_tls_ctx_t *tls;
    rm_tls_stats_t ssl_stats;
    char stat_addr[80];
    int num_workers;
    int *fds;                          /* per worker */
    struct evconnlistener **listeners; /* per worker, created on that worker's base */
} rm_listener_t;

/* Binds one socket per worker (the first bind resolves port 0; the others share its port through
 * SO_REUSEPORT), compiles the router, opens the access log. Returns NULL with err set on failure. */
rm_listener_t *rm_listener_create(const rm_listener_config_t *cfg, int num_workers, char *err, size_t errlen);
void rm_listener_destroy(rm_listener_t *l);

#endif
