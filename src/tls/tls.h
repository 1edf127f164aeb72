/* TLS contexts built from the config model (rm_tls_config_t), for both directions: a server context
 * for a listener's DownstreamTlsContext and a client context for a cluster's UpstreamTlsContext.
 * Also the ALPN policy (which application protocols Remora can serve), handshake outcome
 * classification into Envoy's ssl.* stats, and readable failure reasons.
 *
 * Ownership: a context is refcounted and immutable after creation, so any worker may create SSL
 * objects from it without locking. The creator holds one reference; rm_tls_ctx_ref/unref from any
 * thread. OpenSSL stays inside this module and the two codecs that wrap sockets with it. */
#ifndef RM_TLS_TLS_H
#define RM_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/stats.h"

struct bufferevent;
struct event_base;
typedef struct ssl_st SSL;

/* Envoy's names, shown as "<listener or cluster prefix>.ssl.<name>". */
#define RM_TLS_STATS(X)                                                                                      \
    X(handshake, C)                                                                                          \
    X(connection_error, C)                                                                                   \
    X(fail_verify_no_cert, C)                                                                                \
    X(fail_verify_error, C)                                                                                  \
    X(fail_verify_san, C)                                                                                    \
    X(no_certificate, C)

typedef struct {
    RM_TLS_STATS(RM_STAT_FIELD)
} rm_tls_stats_t;

void rm_tls_stats_visit(rm_tls_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx);

/* Application protocols Remora knows by ALPN name. Whether one can be served is decided by
 * rm_tls_alpn_servable, the single place to change when a codec is added. */
#define RM_ALPN_PROTOCOLS(X)                                                                                 \
    X(HTTP11, "http/1.1")                                                                                    \
    X(H2, "h2")

typedef enum {
    RM_ALPN_NONE = 0, /* nothing negotiated (peer without ALPN, or no overlap): HTTP/1.1 */
#define RM_ALPN_ENUM(e, s) RM_ALPN_##e,
    RM_ALPN_PROTOCOLS(RM_ALPN_ENUM)
#undef RM_ALPN_ENUM
        RM_ALPN_OTHER, /* a name Remora does not know (cannot happen for what it selects or offers) */
} rm_alpn_t;

/* True when Remora has a codec for the protocol: HTTP/1.1 and h2. A listener selects only these; the
 * downstream codec hands a connection that negotiated h2 to the HTTP/2 codec. */
bool rm_tls_alpn_servable(rm_alpn_t p);
/* The first protocol of `ours` (wire format: length-prefixed names, in preference order) that the
 * peer's `offer` (same format, untrusted) contains. Returns 0 with *out pointing into offer, or -1
 * when there is none. A malformed offer is read up to its first bad entry. */
int rm_tls_alpn_select(const unsigned char *ours, size_t ours_len, const unsigned char *offer,
                       size_t offer_len, const unsigned char **out, unsigned char *out_len);
const char *rm_alpn_name(rm_alpn_t p); /* "http/1.1", "h2", "" for NONE */

typedef struct rm_tls_ctx rm_tls_ctx_t;

/* Builds a server context: certificate chain and key (required), optional client verification
 * against trusted_ca (required when require_client_certificate), SAN matching, protocol versions,
 * and the ALPN select callback. Returns NULL with a one-line reason in err (naming the file that
 * failed). */
rm_tls_ctx_t *rm_tls_server_ctx_create(const rm_tls_config_t *cfg, char *err, size_t errlen);
/* Builds a client context: optional client certificate, server verification against trusted_ca
 * (with the name check against match_typed_subject_alt_names, or else against sni), SNI, ALPN
 * offer (the configured protocols Remora can serve). Without trusted_ca the server is not verified
 * (as in Envoy). Returns NULL with err set. */
rm_tls_ctx_t *rm_tls_client_ctx_create(const rm_tls_config_t *cfg, char *err, size_t errlen);
rm_tls_ctx_t *rm_tls_ctx_ref(rm_tls_ctx_t *t);
void rm_tls_ctx_unref(rm_tls_ctx_t *t);

/* A new SSL object for one connection (client contexts: with SNI set). The caller owns it. */
SSL *rm_tls_ssl_new(rm_tls_ctx_t *t);

/* A bufferevent that runs the server side of a handshake on an accepted socket (takes ownership of
 * fd and closes it on free). BEV_EVENT_CONNECTED reports the completed handshake. */
struct bufferevent *rm_tls_bufferevent_accept(rm_tls_ctx_t *t, struct event_base *base, int fd);
/* A bufferevent for an outgoing connection (fd -1; call bufferevent_socket_connect on it).
 * BEV_EVENT_CONNECTED reports the completed handshake, SNI and verification included. */
struct bufferevent *rm_tls_bufferevent_connect(rm_tls_ctx_t *t, struct event_base *base);

/* True once the handshake has sent bytes: the TCP connection was up, so a failure is TLS's. */
bool rm_tls_bufferevent_handshake_started(struct bufferevent *bev);
/* The protocol ALPN settled on for a connection made by the two functions above. */
rm_alpn_t rm_tls_bufferevent_alpn(struct bufferevent *bev);

/* Counts a completed handshake (ssl.handshake, and ssl.no_certificate when the peer presented
 * none). */
void rm_tls_record_handshake(rm_tls_stats_t *st, struct bufferevent *bev);
/* Counts a failed handshake under the matching stat (verification failures apart from other
 * connection errors) and writes a one-line reason for the log. Consumes the bufferevent's queued
 * OpenSSL errors. */
void rm_tls_record_failure(rm_tls_stats_t *st, struct bufferevent *bev, char *reason, size_t len);

/* An upstream connection on `bev` failed (timed_out: its connect timeout expired) before it was
 * established. When the TLS handshake had started, counts and logs it (info level, with the host and
 * cluster); a TCP failure is left to the caller's connect-failure stats. ctx NULL: plaintext. */
void rm_tls_upstream_connect_failed(const rm_tls_ctx_t *ctx, rm_tls_stats_t *st, struct bufferevent *bev,
                                    bool timed_out, const char *host, const char *cluster);

#endif
