/* The proxy stream: the router filter of one request. It picks a route and a host, borrows an
 * upstream connection, streams the request up and the response down with backpressure in both
 * directions, enforces the route timeout, answers local replies, and writes the access log line.
 *
 * A downstream codec (h1 today, h2 later) drives it through rm_proxy_* calls and receives the
 * response through the rm_downstream_ops_t it passes in. Worker thread only. */
#ifndef RM_HTTP_PROXY_H
#define RM_HTTP_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/worker.h"
#include "http/headers.h"
#include "http/listener.h"

struct evbuffer;

typedef struct rm_proxy_stream rm_proxy_stream_t;

typedef struct {
    /* Response head; borrowed for the call. */
    void (*send_headers)(void *ds, const rm_response_head_t *head, bool end_stream);
    /* Moves all of data. */
    void (*send_data)(void *ds, struct evbuffer *data, bool end_stream);
    void (*send_trailers)(void *ds, const rm_headers_t *trailers);
    /* Abort the downstream stream (h1: close the connection without finishing the response). */
    void (*reset)(void *ds);
    /* Bytes queued towards the client (for backpressure). */
    size_t (*write_buffered)(void *ds);
    /* Pause / resume reading the request body. */
    void (*read_disable)(void *ds, bool disable);
    /* The proxy is finished with the stream and has freed itself; called exactly once unless the
     * downstream reset the stream first. */
    void (*stream_done)(void *ds);
} rm_downstream_ops_t;

typedef struct {
    const char *protocol;  /* "HTTP/1.1" */
    const char *peer_addr; /* downstream peer "ip:port" (for x-forwarded-for) */
    size_t buffer_limit;   /* per-stream buffering bound in each direction */
} rm_proxy_stream_info_t;

/* Starts a stream for a complete request head (moved from *req, which is left empty). end_stream
 * says the request has no body. The stream may answer (a local reply) and finish inside this call. */
rm_proxy_stream_t *rm_proxy_stream_start(rm_worker_t *w, rm_listener_t *l, const rm_downstream_ops_t *ops,
                                         void *ds, rm_request_head_t *req, bool end_stream,
                                         const rm_proxy_stream_info_t *info);
/* Request body bytes (moved out of data). */
void rm_proxy_on_request_data(rm_proxy_stream_t *ps, struct evbuffer *data, bool end_stream);
void rm_proxy_on_request_trailers(rm_proxy_stream_t *ps, rm_headers_t *trailers);
/* The client went away or the codec failed: abort everything; ps is freed, stream_done is not called. */
void rm_proxy_on_downstream_reset(rm_proxy_stream_t *ps);
/* The downstream output drained below its low watermark: resume reading the upstream response. */
void rm_proxy_on_downstream_drained(rm_proxy_stream_t *ps);

/* Writes a local reply through `ops` (used by codecs for errors found before a stream exists too). */
void rm_proxy_send_local_reply(const rm_downstream_ops_t *ops, void *ds, int status, const char *body,
                               bool close_connection);

#endif
