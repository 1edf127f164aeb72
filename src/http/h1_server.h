/* The downstream HTTP/1.1 codec: accepts connections of a listener on a worker, parses requests
 * strictly (h1_parser), drives one proxy stream at a time (pipelined requests wait in the input
 * buffer and are answered in order), frames responses, and enforces the idle and request-headers
 * timeouts. Worker thread only. */
#ifndef RM_HTTP_H1_SERVER_H
#define RM_HTTP_H1_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/worker.h"
#include "http/listener.h"

typedef struct rm_h1_server_conn rm_h1_server_conn_t;
typedef struct rm_h2_server_conn rm_h2_server_conn_t;

/* Per-worker HTTP state: the live downstream connections of both codecs (for draining). */
typedef struct {
    rm_h1_server_conn_t *conns;
    size_t num_conns;
    rm_h2_server_conn_t *h2_conns;
    size_t num_h2_conns;
    bool draining;
} rm_http_worker_t;

rm_http_worker_t *rm_http_worker_create(void);
void rm_http_worker_destroy(rm_http_worker_t *hw);

/* Takes ownership of an accepted, non-blocking socket. With codec_type AUTO a connection that opens
 * with the HTTP/2 client preface is handed to the h2 codec (h2c with prior knowledge); with HTTP2
 * every connection is. */
void rm_h1_server_accept(rm_worker_t *w, rm_listener_t *l, int fd, const struct sockaddr *peer, int peer_len);

/* Graceful drain on this worker: idle connections close now, busy ones after their current
 * response (answered with Connection: close); HTTP/2 connections get GOAWAY. */
void rm_h1_server_drain_worker(rm_worker_t *w);
/* Closes every downstream connection (both codecs) of this worker at once (end of the drain period). */
void rm_h1_server_close_all(rm_worker_t *w);

#endif
