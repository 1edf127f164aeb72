/* HTTP/2 upstream connections (nghttp2 client sessions, h2c with prior knowledge) and their
 * per-(worker, host) pool. Requests are multiplexed as streams over few connections: a new
 * connection opens only when every open one has reached its stream limit (the smaller of the
 * cluster's max_concurrent_streams and the server's SETTINGS), and one that received GOAWAY takes no
 * new streams, finishes those it has and closes. Worker thread only.
 *
 * The pool is used through the protocol-neutral calls of h1_pool.h (rm_h1_pool_acquire,
 * rm_upstream_conn_*): each acquired rm_upstream_conn_t is one stream, with the same ownership
 * rules as an HTTP/1.1 connection (borrowed until release or abort; gone after on_reset or
 * on_pool_failure). Response bodies are acknowledged to the server (WINDOW_UPDATE) only while the
 * stream is not read-disabled, so downstream backpressure reaches the server as flow control. */
#ifndef RM_UPSTREAM_H2_POOL_H
#define RM_UPSTREAM_H2_POOL_H

#include "config/config.h"
#include "upstream/h1_pool.h"

/* Creates an HTTP/2 pool for `host` on `base`. Takes references on host and shared. */
rm_h1_pool_t *rm_h2_pool_create(struct event_base *base, rm_host_t *host, rm_cluster_shared_t *shared,
                                const rm_h1_pool_options_t *opts, const rm_http2_options_t *h2);

/* A detached pool with one connection (no socket) carrying two requests (a GET; a POST with body and
 * trailers), fed raw server bytes. For the fuzz harness only. */
typedef struct rm_h2_pool_fuzz rm_h2_pool_fuzz_t;
rm_h2_pool_fuzz_t *rm_h2_pool_fuzz_new(void);
/* Returns -1 once the connection has failed. */
int rm_h2_pool_fuzz_feed(rm_h2_pool_fuzz_t *f, const uint8_t *data, size_t len);
void rm_h2_pool_fuzz_free(rm_h2_pool_fuzz_t *f);

#endif
