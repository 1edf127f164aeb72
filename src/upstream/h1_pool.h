/* HTTP/1.1 upstream connections and their per-(worker, host) pool. A connection carries one request
 * at a time; after a complete exchange with keep-alive it returns to the pool's idle list and is
 * reused (most recently used first). Worker thread only.
 *
 * Ownership: the pool owns its connections. A stream that acquires a connection borrows it until it
 * calls rm_upstream_conn_release (exchange complete: may be reused) or rm_upstream_conn_abort (close it).
 * After on_reset or on_pool_failure the stream must not touch the connection again. */
#ifndef RM_UPSTREAM_H1_POOL_H
#define RM_UPSTREAM_H1_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/headers.h"
#include "upstream/cluster.h"
#include "upstream/host.h"

struct evbuffer;
struct event_base;

typedef struct rm_h1_pool rm_h1_pool_t;
typedef struct rm_upstream_conn rm_upstream_conn_t;

#define RM_UPSTREAM_RESETS(X)                                                                                \
    X(CONNECT_FAIL, "connection failure")                                                                    \
    X(CONNECT_TIMEOUT, "connection timeout")                                                                 \
    X(REMOTE_CLOSE, "connection termination")                                                                \
    X(PROTOCOL_ERROR, "protocol error")                                                                      \
    X(LOCAL, "local reset")                                                                                  \
    X(OVERFLOW, "overflow")                                                                                  \
    X(REFUSED_STREAM, "remote refused stream reset")

typedef enum {
#define RM_UPSTREAM_RESET_ENUM(e, s) RM_UPSTREAM_RESET_##e,
    RM_UPSTREAM_RESETS(RM_UPSTREAM_RESET_ENUM)
#undef RM_UPSTREAM_RESET_ENUM
} rm_upstream_reset_t;

const char *rm_upstream_reset_str(rm_upstream_reset_t r);

typedef struct {
    /* The connection is established and bound to the stream; send the request now. */
    void (*on_ready)(void *ctx, rm_upstream_conn_t *conn);
    /* Connecting failed; the connection is gone. */
    void (*on_pool_failure)(void *ctx, rm_upstream_reset_t reason);
    /* Response head (final status, 1xx skipped). `head` is borrowed for the call; move what you keep. */
    void (*on_response_headers)(void *ctx, rm_response_head_t *head, bool end_stream);
    /* Body bytes; the callee must drain `data` (or move it). */
    void (*on_response_data)(void *ctx, struct evbuffer *data, bool end_stream);
    /* Trailers, then the response is complete. Borrowed. */
    void (*on_response_trailers)(void *ctx, rm_headers_t *trailers);
    /* The connection broke before the response completed; it is gone. */
    void (*on_reset)(void *ctx, rm_upstream_reset_t reason);
    /* The request body buffered towards the upstream drained below the low watermark. */
    void (*on_write_drained)(void *ctx);
} rm_upstream_callbacks_t;

typedef struct {
    uint64_t connect_timeout_ms;
    uint64_t idle_timeout_ms;    /* idle pooled connections are closed after this */
    uint32_t buffer_limit_bytes; /* high watermark for the write direction */
    size_t max_response_header_bytes;
    size_t max_response_headers;
    /* TLS towards the host: the cluster's client context (the pool takes a reference), NULL for
     * plaintext; handshake outcomes are counted in tls_stats (the cluster's ssl.* block). */
    rm_tls_ctx_t *tls;
    rm_tls_stats_t *tls_stats;
} rm_h1_pool_options_t;

/* Creates a pool for `host` on `base`. Takes references on host and shared. */
rm_h1_pool_t *rm_h1_pool_create(struct event_base *base, rm_host_t *host, rm_cluster_shared_t *shared,
                                const rm_h1_pool_options_t *opts);
/* Returns a connection bound to ctx: an idle one (*ready = true, send at once) or a new one being
 * established (*ready = false; on_ready or on_pool_failure follows). Returns NULL (*ready = false)
 * when the cluster's max_connections circuit breaker is reached and this pool already has
 * connections: the stream is queued and gets on_ready with a connection when one of this pool's
 * connections frees up (or on_pool_failure if the host leaves); rm_h1_pool_cancel_wait removes it. */
rm_upstream_conn_t *rm_h1_pool_acquire(rm_h1_pool_t *pool, const rm_upstream_callbacks_t *cbs, void *ctx,
                                       bool *ready);
/* Forgets a stream queued by rm_h1_pool_acquire (no-op if it is not queued). */
void rm_h1_pool_cancel_wait(rm_h1_pool_t *pool, void *ctx);
/* An acquire now is answered at once (an idle HTTP/1.1 connection, or an HTTP/2 connection with
 * stream capacity). */
bool rm_h1_pool_has_idle(const rm_h1_pool_t *pool);
/* The host left the cluster: close idle connections now, close busy ones when their exchange ends,
 * and free the pool when the last connection is gone. The caller must not use the pool afterwards. */
void rm_h1_pool_drain(rm_h1_pool_t *pool);
size_t rm_h1_pool_num_connections(const rm_h1_pool_t *pool);

/* Sends the request head. content_length >= 0 frames the body with Content-Length; -1 with
 * has_body uses chunked; !has_body sends no body. */
void rm_upstream_conn_send_head(rm_upstream_conn_t *c, const rm_request_head_t *req, bool has_body,
                                bool end_stream);
/* Moves all of `data` into the connection's output (chunk-framed when chunked). */
void rm_upstream_conn_send_data(rm_upstream_conn_t *c, struct evbuffer *data, bool end_stream);
void rm_upstream_conn_send_trailers(rm_upstream_conn_t *c, const rm_headers_t *trailers);
size_t rm_upstream_conn_write_buffered(const rm_upstream_conn_t *c);
/* Stops/resumes reading the response (downstream backpressure). */
void rm_upstream_conn_read_disable(rm_upstream_conn_t *c, bool disable);
/* Detaches the stream; the connection goes back to the pool if the exchange completed cleanly and
 * both sides allow keep-alive, else it is closed. */
void rm_upstream_conn_release(rm_upstream_conn_t *c);
/* Detaches the stream and closes the connection (stream aborted or timed out). */
void rm_upstream_conn_abort(rm_upstream_conn_t *c);
rm_host_t *rm_upstream_conn_host(const rm_upstream_conn_t *c);

#endif
