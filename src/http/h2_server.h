/* The downstream HTTP/2 codec (nghttp2): one connection carries many concurrent streams, each of
 * which drives its own proxy stream through rm_downstream_ops_t. Request bodies are acknowledged to
 * the client (WINDOW_UPDATE) only once the proxy took them, so a slow upstream closes the client's
 * stream window instead of growing buffers; responses are framed as DATA only while the client's
 * window and the socket accept them. Abuse bounds (rapid reset, floods, header limits) end the
 * offending connection with GOAWAY. Worker thread only.
 *
 * Entry points:
 * - plaintext listeners: the h1 codec sees the client connection preface on a new connection and
 *   hands its bufferevent over with rm_h2_server_start (h2c with prior knowledge);
 * - codec_type HTTP2: rm_h2_server_accept takes the accepted socket directly;
 * - TLS listeners (ALPN "h2"): the TLS layer passes its established bufferevent to
 *   rm_h2_server_start; the codec only reads and writes through the bufferevent, so a filtering
 *   (OpenSSL) bufferevent works the same as a socket one. */
#ifndef RM_HTTP_H2_SERVER_H
#define RM_HTTP_H2_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/worker.h"
#include "http/listener.h"

struct bufferevent;

typedef struct rm_h2_server_conn rm_h2_server_conn_t;

/* Takes ownership of `bev` (callbacks and watermarks are replaced; it is freed with the connection).
 * Bytes already read stay in its input buffer and are processed first: they must start with the
 * client connection preface. The caller has already counted the connection (listener
 * downstream_cx_total / downstream_cx_active and the worker's active_downstream_conns); the codec
 * counts downstream_cx_http2_total and releases the active counts when the connection ends.
 * peer is "ip:port", copied. */
void rm_h2_server_start(rm_worker_t *w, rm_listener_t *l, struct bufferevent *bev, const char *peer);

/* Takes ownership of an accepted, non-blocking socket (listeners with codec_type HTTP2). Counts the
 * connection like rm_h1_server_accept. */
void rm_h2_server_accept(rm_worker_t *w, rm_listener_t *l, int fd, const struct sockaddr *peer, int peer_len);

/* Graceful drain on this worker: every HTTP/2 connection gets GOAWAY (last stream id = the highest
 * one it accepted), finishes its open streams and closes. */
void rm_h2_server_drain_worker(rm_worker_t *w);
/* Closes every HTTP/2 connection of this worker at once. */
void rm_h2_server_close_all(rm_worker_t *w);

/* Feeds raw client bytes to a detached codec instance (no socket, no proxy: requests are answered
 * with a local 404 through the real downstream ops). For the fuzz harness only. */
typedef struct rm_h2_fuzz rm_h2_fuzz_t;
rm_h2_fuzz_t *rm_h2_fuzz_new(void);
/* Returns -1 once the codec has decided to close the connection. */
int rm_h2_fuzz_feed(rm_h2_fuzz_t *f, const uint8_t *data, size_t len);
void rm_h2_fuzz_free(rm_h2_fuzz_t *f);

#endif
