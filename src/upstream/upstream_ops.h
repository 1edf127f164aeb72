/* The protocol-neutral handles behind h1_pool.h's call surface. rm_h1_pool_t and rm_upstream_conn_t
 * are base structs holding a const ops table; each protocol's pool (h1_pool.c, h2_pool.c) embeds
 * them as its first member (`super`), and upstream_conn.c dispatches the public rm_h1_pool_* /
 * rm_upstream_conn_* calls through the table. Only pool implementations include this header. */
#ifndef RM_UPSTREAM_UPSTREAM_OPS_H
#define RM_UPSTREAM_UPSTREAM_OPS_H

#include "upstream/h1_pool.h"

typedef struct {
    rm_upstream_conn_t *(*acquire)(rm_h1_pool_t *pool, const rm_upstream_callbacks_t *cbs, void *ctx,
                                   bool *ready);
    void (*drain)(rm_h1_pool_t *pool);
    size_t (*num_connections)(const rm_h1_pool_t *pool);
    /* An acquire now would be answered at once (an idle connection, or stream capacity). */
    bool (*has_idle)(const rm_h1_pool_t *pool);
    /* Forgets a stream queued by acquire (returned NULL); no-op if it is not queued. */
    void (*cancel_wait)(rm_h1_pool_t *pool, void *ctx);
} rm_upstream_pool_ops_t;

typedef struct {
    void (*send_head)(rm_upstream_conn_t *c, const rm_request_head_t *req, bool has_body, bool end_stream);
    void (*send_data)(rm_upstream_conn_t *c, struct evbuffer *data, bool end_stream);
    void (*send_trailers)(rm_upstream_conn_t *c, const rm_headers_t *trailers);
    size_t (*write_buffered)(const rm_upstream_conn_t *c);
    void (*read_disable)(rm_upstream_conn_t *c, bool disable);
    void (*release)(rm_upstream_conn_t *c);
    void (*abort)(rm_upstream_conn_t *c);
    rm_host_t *(*host)(const rm_upstream_conn_t *c);
} rm_upstream_conn_ops_t;

struct rm_h1_pool {
    const rm_upstream_pool_ops_t *ops;
};

struct rm_upstream_conn {
    const rm_upstream_conn_ops_t *ops;
};

#endif
