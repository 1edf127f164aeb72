#include "http/h1_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/net.h"
#include "http/h1_body.h"
#include "http/h1_parser.h"
#include "http/h2_server.h"
#include "http/proxy.h"
#include "tls/tls.h"

typedef enum {
    RS_HEAD, /* waiting for a request head */
    RS_BODY, /* reading the request body */
    RS_DONE, /* request fully read; waiting for the response to finish */
} req_state_t;

struct rm_h1_server_conn {
    rm_worker_t *worker;
    rm_listener_t *listener;
    rm_http_worker_t *hw;
    rm_h1_server_conn_t *prev, *next;
    struct bufferevent *bev;
    char peer[80];
    bool tls;       /* TLS listener: bev is an OpenSSL bufferevent, no direct writes */
    bool tls_ready; /* handshake complete */

    rm_proxy_stream_t *stream;
    bool stream_active;
    req_state_t rstate;
    rm_h1_body_reader_t body;
    struct evbuffer *body_tmp;
    bool req_keep_alive;
    bool req_is_head;
    int req_minor;
    size_t head_scan_from;

    bool resp_chunked;
    bool resp_no_body;
    bool close_after_response; /* Connection: close decided for the current response */

    bool proto_known; /* HTTP/1 decided (first bytes are not the HTTP/2 preface) */
    bool paused_by_proxy;
    bool write_armed; /* EV_WRITE enabled: output left over after a direct write */
    bool closing;     /* flush the output, then free */
    bool dead;        /* free on the next loop turn */
    struct event *idle_timer;
    struct event *headers_timer;
    struct event *resume_ev;
    struct event *flush_ev; /* deferred flush_out, later in the same loop turn */
};

static void conn_process(rm_h1_server_conn_t *c);

rm_http_worker_t *rm_http_worker_create(void)
{
    return RM_NEW(rm_http_worker_t);
}

void rm_http_worker_destroy(rm_http_worker_t *hw)
{
    free(hw);
}

static void arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void conn_free(rm_h1_server_conn_t *c)
{
    rm_hcm_stats_t *st = &c->listener->stats;
    if (c->stream_active) {
        rm_proxy_stream_t *ps = c->stream;
        c->stream = NULL;
        c->stream_active = false;
        rm_proxy_on_downstream_reset(ps);
    }
    rm_http_worker_t *hw = c->hw;
    if (c->prev)
        c->prev->next = c->next;
    else
        hw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    hw->num_conns--;
    RM_STAT_DEC(st->downstream_cx_active);
    atomic_fetch_sub_explicit(&c->worker->active_downstream_conns, 1, memory_order_relaxed);
    bufferevent_free(c->bev);
    event_free(c->idle_timer);
    event_free(c->headers_timer);
    event_free(c->resume_ev);
    event_free(c->flush_ev);
    evbuffer_free(c->body_tmp);
    rm_h1_body_reader_free(&c->body);
    free(c);
}

/* Frees the connection on the next loop turn (never under a caller's feet). */
static void conn_kill(rm_h1_server_conn_t *c)
{
    if (c->dead)
        return;
    c->dead = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->resume_ev, EV_READ, 0);
}

/* Writes the output now instead of waiting for the next loop turn; only what the socket does not
 * take is left to the bufferevent (EV_WRITE armed until the buffer drains). This saves the two
 * epoll_ctl calls per response that toggling EPOLLOUT would cost. A write error is left for the
 * bufferevent to meet (and report through event_cb) on its own write. */
static void flush_out(rm_h1_server_conn_t *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->dead || evbuffer_get_length(out) == 0)
        return;
    if (!c->write_armed) {
        if (!c->tls) {
            evbuffer_write(out, bufferevent_getfd(c->bev));
            if (evbuffer_get_length(out) == 0)
                return;
        }
        c->write_armed = true;
        bufferevent_enable(c->bev, EV_WRITE);
    }
}

/* Stops reading; frees the connection once the output is flushed. */
static void conn_close_after_flush(rm_h1_server_conn_t *c)
{
    flush_out(c);
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    evtimer_del(c->idle_timer);
    evtimer_del(c->headers_timer);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_kill(c);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* ---- downstream ops used by the proxy stream ---- */

static void ds_send_headers(void *ds, const rm_response_head_t *head, bool end_stream)
{
    rm_h1_server_conn_t *c = ds;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int st = head->status;
    bool bodyless_status = st == 204 || st == 304 || (st >= 100 && st < 200);
    c->resp_no_body = c->req_is_head || bodyless_status;
    c->resp_chunked = false;
    if (c->hw->draining || !c->req_keep_alive || c->rstate == RS_BODY)
        c->close_after_response = true;
    if (rm_headers_get(&head->headers, "connection") != NULL)
        c->close_after_response = true; /* a local reply asked for it */
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", st, reason_phrase(st));
    for (size_t i = 0; i < head->headers.n; i++) {
        const rm_header_t *h = &head->headers.v[i];
        if (h->name_len == 10 && memcmp(h->name, "connection", 10) == 0)
            continue;
        evbuffer_add(out, h->name, h->name_len);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, h->value, h->value_len);
        evbuffer_add(out, "\r\n", 2);
    }
    if (!bodyless_status) {
        if (head->content_length >= 0) {
            evbuffer_add_printf(out, "content-length: %lld\r\n", (long long)head->content_length);
        } else if (end_stream) {
            if (!c->req_is_head)
                evbuffer_add(out, "content-length: 0\r\n", 19);
        } else if (!c->req_is_head) {
            if (c->req_minor >= 1) {
                evbuffer_add(out, "transfer-encoding: chunked\r\n", 28);
                c->resp_chunked = true;
            } else {
                c->close_after_response = true; /* HTTP/1.0: the close delimits the body */
            }
        }
    }
    if (c->close_after_response)
        evbuffer_add(out, "connection: close\r\n", 19);
    else if (c->req_minor == 0)
        evbuffer_add(out, "connection: keep-alive\r\n", 24);
    evbuffer_add(out, "\r\n", 2);
    if (end_stream)
        flush_out(c);
    else
        event_active(c->flush_ev, EV_WRITE, 0); /* the body usually follows in this turn: one write */
}

static void ds_send_data(void *ds, struct evbuffer *data, bool end_stream)
{
    rm_h1_server_conn_t *c = ds;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->resp_no_body) {
        evbuffer_drain(data, evbuffer_get_length(data));
        flush_out(c);
        return;
    }
    if (c->resp_chunked) {
        rm_h1_write_chunk(out, data);
        if (end_stream)
            rm_h1_write_last_chunk(out, NULL);
    } else {
        evbuffer_add_buffer(out, data);
    }
    flush_out(c);
}

static void ds_send_trailers(void *ds, const rm_headers_t *trailers)
{
    rm_h1_server_conn_t *c = ds;
    if (c->resp_chunked && !c->resp_no_body)
        rm_h1_write_last_chunk(bufferevent_get_output(c->bev), trailers);
    flush_out(c);
}

static void ds_reset(void *ds)
{
    rm_h1_server_conn_t *c = ds;
    c->stream = NULL;
    c->stream_active = false;
    /* Flush what was already produced, then close: the client sees a response cut short (short
     * Content-Length body or a missing last chunk), which is how HTTP/1.1 signals a reset. */
    conn_close_after_flush(c);
}

static size_t ds_write_buffered(void *ds)
{
    rm_h1_server_conn_t *c = ds;
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void ds_read_disable(void *ds, bool disable)
{
    rm_h1_server_conn_t *c = ds;
    c->paused_by_proxy = disable;
    if (c->dead || c->closing)
        return;
    if (disable) {
        bufferevent_disable(c->bev, EV_READ);
    } else {
        bufferevent_enable(c->bev, EV_READ);
        event_active(c->resume_ev, EV_READ, 0); /* body bytes may already be buffered */
    }
}

static void ds_stream_done(void *ds)
{
    rm_h1_server_conn_t *c = ds;
    c->stream = NULL;
    c->stream_active = false;
    if (c->close_after_response || c->rstate == RS_BODY) {
        /* A response that ended before its request body was read leaves the connection out of
         * sync: it must close. */
        conn_close_after_flush(c);
        return;
    }
    c->rstate = RS_HEAD;
    rm_h1_body_reader_free(&c->body);
    memset(&c->body, 0, sizeof(c->body));
    c->paused_by_proxy = false;
    bufferevent_enable(c->bev, EV_READ);
    event_active(c->resume_ev, EV_READ, 0); /* a pipelined request may be waiting */
}

static const rm_downstream_ops_t h1_ops = {
    .send_headers = ds_send_headers,
    .send_data = ds_send_data,
    .send_trailers = ds_send_trailers,
    .reset = ds_reset,
    .write_buffered = ds_write_buffered,
    .read_disable = ds_read_disable,
    .stream_done = ds_stream_done,
};

/* Error before a stream exists: answer and close. */
static void reject(rm_h1_server_conn_t *c, int status, const char *why)
{
    RM_STAT_INC(c->listener->stats.downstream_cx_protocol_error);
    RM_STAT_INC(c->listener->stats.downstream_rq_total);
    RM_STAT_STATUS_CLASS(&c->listener->stats, downstream_rq_, status);
    RM_LOG_DEBUG("downstream %s: rejected with %d: %s", c->peer, status, why);
    c->req_is_head = false;
    c->req_keep_alive = false;
    c->close_after_response = true;
    c->rstate = RS_HEAD;
    rm_proxy_send_local_reply(&h1_ops, c, status, reason_phrase(status), true);
    conn_close_after_flush(c);
}

/* Builds the protocol-neutral head from a parsed request. */
static void build_head(const rm_h1_request_t *r, bool tls, rm_request_head_t *head)
{
    memset(head, 0, sizeof(*head));
    head->method = rm_strndup(r->method, r->method_len);
    head->version_minor = r->version_minor;
    const char *t = r->target;
    size_t tl = r->target_len;
    head->scheme = rm_strdup(tls ? "https" : "http");
    if (tl > 7 && (strncasecmp(t, "http://", 7) == 0 || (tl > 8 && strncasecmp(t, "https://", 8) == 0))) {
        /* absolute-form: the authority comes from the target (RFC 9112 3.2.2). */
        size_t skip = t[4] == ':' ? 7 : 8;
        const char *a = t + skip;
        const char *slash = memchr(a, '/', tl - skip);
        size_t alen = slash ? (size_t)(slash - a) : tl - skip;
        head->authority = rm_strndup(a, alen);
        head->path = slash ? rm_strndup(slash, tl - skip - alen) : rm_strdup("/");
    } else {
        head->path = rm_strndup(t, tl);
        if (r->host != NULL)
            head->authority = rm_strndup(r->host, r->host_len);
    }
    head->content_length = -1;
    if (r->body_kind == RM_H1_BODY_LENGTH)
        head->content_length = (int64_t)r->content_length;
    for (size_t i = 0; i < r->num_headers; i++) {
        const rm_h1_header_t *h = &r->headers[i];
        if (rm_h1_is_hop_by_hop(h, r->headers, r->num_headers) || rm_h1_header_name_eq(h, "host") ||
            rm_h1_header_name_eq(h, "content-length"))
            continue;
        if (r->expect_continue && rm_h1_header_name_eq(h, "expect"))
            continue;
        rm_headers_add(&head->headers, h->name, h->name_len, h->value, h->value_len);
    }
}

/* Tries to parse one request head. Returns 1 when a stream started, 0 when more bytes are
 * needed, -1 when the connection was rejected. */
static int parse_request(rm_h1_server_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    const rm_h1_limits_t *limits = &c->listener->limits;
    if (len == 0)
        return 0;
    struct evbuffer_ptr start;
    evbuffer_ptr_set(in, &start, c->head_scan_from, EVBUFFER_PTR_SET);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, &start);
    size_t avail = end.pos >= 0 ? (size_t)end.pos + 4 : len;
    size_t limit = limits->max_header_bytes + 4;
    if (avail > limit)
        avail = limit;
    /* Parse even when the end is not there yet: the parser detects errors and limits early. */
    const char *p = (const char *)evbuffer_pullup(in, (ssize_t)avail);
    rm_h1_header_t hdrs[512];
    size_t cap = limits->max_headers + 1 < RM_ARRAY_LEN(hdrs) ? limits->max_headers + 1 : RM_ARRAY_LEN(hdrs);
    rm_h1_request_t r;
    memset(&r, 0, sizeof(r));
    int rc = rm_h1_parse_request(p, avail, limits, hdrs, cap, &r);
    if (rc == RM_H1_INCOMPLETE) {
        if (end.pos < 0) {
            c->head_scan_from = len >= 3 ? len - 3 : 0;
            if (len > limit) {
                reject(c, 431, "request headers too large");
                return -1;
            }
        }
        return 0;
    }
    if (rc < 0) {
        reject(c, r.error_status ? r.error_status : 400, r.error ? r.error : "bad request");
        return -1;
    }
    c->head_scan_from = 0;
    evtimer_del(c->headers_timer);
    evtimer_del(c->idle_timer);

    rm_request_head_t head;
    build_head(&r, c->tls, &head);
    c->req_keep_alive = r.keep_alive;
    c->req_is_head = r.method_len == 4 && memcmp(r.method, "HEAD", 4) == 0;
    c->req_minor = r.version_minor;
    c->close_after_response = false;
    bool expect_continue = r.expect_continue && r.version_minor >= 1 && r.body_kind != RM_H1_BODY_NONE;
    rm_h1_body_reader_init(&c->body, r.body_kind, r.content_length, limits);
    evbuffer_drain(in, (size_t)rc);
    if (expect_continue) {
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        flush_out(c);
    }

    bool end_stream = c->body.done;
    c->rstate = end_stream ? RS_DONE : RS_BODY;
    rm_proxy_stream_info_t info = {
        .protocol = r.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1",
        .peer_addr = c->peer,
        .buffer_limit = c->listener->cfg->per_connection_buffer_limit_bytes
                            ? c->listener->cfg->per_connection_buffer_limit_bytes
                            : (1u << 20),
    };
    c->stream_active = true;
    rm_proxy_stream_t *ps =
        rm_proxy_stream_start(c->worker, c->listener, &h1_ops, c, &head, end_stream, &info);
    rm_request_head_free(&head);
    if (c->stream_active)
        c->stream = ps;
    return 1;
}

/* Feeds buffered request body bytes to the stream. */
static void read_body(rm_h1_server_conn_t *c, bool eof)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->stream_active && c->rstate == RS_BODY && !c->paused_by_proxy) {
        const char *err = NULL;
        if (rm_h1_body_reader_read(&c->body, in, c->body_tmp, 256 * 1024, eof, &err) != 0) {
            RM_LOG_DEBUG("downstream %s: %s", c->peer, err);
            RM_STAT_INC(c->listener->stats.downstream_cx_protocol_error);
            conn_kill(c);
            return;
        }
        size_t n = evbuffer_get_length(c->body_tmp);
        bool done = c->body.done;
        if (n == 0 && !done)
            return;
        if (done)
            c->rstate = RS_DONE;
        rm_proxy_stream_t *ps = c->stream;
        if (done && c->body.trailers.n > 0) {
            if (n > 0)
                rm_proxy_on_request_data(ps, c->body_tmp, false);
            if (c->stream_active)
                rm_proxy_on_request_trailers(ps, &c->body.trailers);
        } else {
            rm_proxy_on_request_data(ps, c->body_tmp, done);
        }
        evbuffer_drain(c->body_tmp, evbuffer_get_length(c->body_tmp));
    }
    if (!c->stream_active && c->rstate == RS_BODY) {
        /* The stream finished early (local reply) while the body was still coming: discard. */
        evbuffer_drain(in, evbuffer_get_length(in));
    }
}

/* The HTTP/2 client connection preface (RFC 9113 3.4). */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

/* Looks at the first bytes of a new connection: 1 = HTTP/2 preface, 0 = not enough bytes yet,
 * -1 = HTTP/1. */
static int detect_h2(rm_h1_server_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
    if (n == 0)
        return 0;
    const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
    if (memcmp(p, h2_preface, n) != 0)
        return -1;
    return n == H2_PREFACE_LEN ? 1 : 0;
}

/* Gives the connection (its socket, bufferevent and unread bytes) to the h2 codec and frees the h1
 * state. The connection stays counted as active; the h2 codec releases it. */
static void hand_to_h2(rm_h1_server_conn_t *c)
{
    rm_http_worker_t *hw = c->hw;
    struct bufferevent *bev = c->bev;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (c->prev)
        c->prev->next = c->next;
    else
        hw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    hw->num_conns--;
    rm_worker_t *w = c->worker;
    rm_listener_t *l = c->listener;
    char peer[sizeof(c->peer)];
    memcpy(peer, c->peer, sizeof(peer));
    event_free(c->idle_timer);
    event_free(c->headers_timer);
    event_free(c->resume_ev);
    event_free(c->flush_ev);
    evbuffer_free(c->body_tmp);
    rm_h1_body_reader_free(&c->body);
    free(c);
    rm_h2_server_start(w, l, bev, peer);
}

static void conn_process(rm_h1_server_conn_t *c)
{
    if (!c->proto_known && !c->dead && !c->closing) {
        int h2 = detect_h2(c);
        if (h2 > 0) {
            hand_to_h2(c); /* c is gone */
            return;
        }
        if (h2 < 0) {
            c->proto_known = true;
            RM_STAT_INC(c->listener->stats.downstream_cx_http1_total);
        }
    }
    while (!c->dead && !c->closing) {
        if (c->stream_active) {
            if (c->rstate == RS_BODY)
                read_body(c, false);
            return;
        }
        if (c->hw->draining && c->rstate == RS_HEAD) {
            conn_close_after_flush(c);
            return;
        }
        int rc = parse_request(c);
        if (rc <= 0) {
            if (rc == 0 && !c->closing && !c->dead) {
                struct evbuffer *in = bufferevent_get_input(c->bev);
                uint64_t hto = c->listener->cfg->hcm.request_headers_timeout_ms;
                if (evbuffer_get_length(in) > 0) {
                    if (hto > 0 && !evtimer_pending(c->headers_timer, NULL))
                        arm(c->headers_timer, hto);
                } else if (c->listener->cfg->hcm.idle_timeout_ms > 0 &&
                           !evtimer_pending(c->idle_timer, NULL)) {
                    arm(c->idle_timer, c->listener->cfg->hcm.idle_timeout_ms);
                }
            }
            return;
        }
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    rm_h1_server_conn_t *c = arg;
    if (c->dead)
        return;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && c->write_armed) {
        c->write_armed = false;
        bufferevent_disable(bev, EV_WRITE);
    }
    if (c->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            conn_kill(c);
        return;
    }
    if (c->stream_active)
        rm_proxy_on_downstream_drained(c->stream);
}

/* The TLS handshake finished (BEV_EVENT_CONNECTED) or failed. Returns true when the connection
 * goes on as HTTP/1.1. */
static bool tls_handshake_event(rm_h1_server_conn_t *c, short what)
{
    rm_listener_t *l = c->listener;
    if (!(what & BEV_EVENT_CONNECTED)) {
        char reason[300];
        rm_tls_record_failure(&l->ssl_stats, c->bev, reason, sizeof(reason));
        /* Debug level: clients are untrusted and may fail on purpose; the ssl.* stats count them. */
        RM_LOG_DEBUG("downstream %s: TLS handshake failed on listener %s: %s", c->peer, l->cfg->name, reason);
        conn_kill(c);
        return false;
    }
    c->tls_ready = true;
    evtimer_del(c->headers_timer);
    rm_tls_record_handshake(&l->ssl_stats, c->bev);
    rm_alpn_t proto = rm_tls_bufferevent_alpn(c->bev);
    if (proto == RM_ALPN_H2) {
        /* The HTTP/2 codec takes the connection (its OpenSSL bufferevent and any bytes read). */
        hand_to_h2(c);
        return false;
    }
    RM_LOG_DEBUG("downstream %s: TLS handshake done (ALPN %s)", c->peer,
                 proto == RM_ALPN_NONE ? "none" : rm_alpn_name(proto));
    if (l->cfg->hcm.idle_timeout_ms > 0)
        arm(c->idle_timer, l->cfg->hcm.idle_timeout_ms);
    return true;
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    rm_h1_server_conn_t *c = arg;
    (void)bev;
    if (c->dead)
        return;
    if (c->tls && !c->tls_ready) {
        tls_handshake_event(c, what);
        return;
    }
    if ((what & BEV_EVENT_EOF) && c->stream_active && c->rstate == RS_BODY) {
        /* Let the body reader see the EOF: a close-delimited body cannot happen in requests, so this
         * reports a truncated body. */
        read_body(c, true);
    }
    if (c->stream_active) {
        RM_STAT_INC(c->listener->stats.downstream_cx_destroy_remote_active_rq);
        rm_proxy_stream_t *ps = c->stream;
        c->stream = NULL;
        c->stream_active = false;
        rm_proxy_on_downstream_reset(ps);
    }
    conn_kill(c);
}

static void idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_h1_server_conn_t *c = arg;
    if (c->stream_active || c->dead)
        return;
    RM_STAT_INC(c->listener->stats.downstream_cx_idle_timeout);
    conn_kill(c);
}

static void headers_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_h1_server_conn_t *c = arg;
    if (c->stream_active || c->dead)
        return;
    if (c->tls && !c->tls_ready) {
        /* The handshake did not finish in time: nothing can be answered over TLS yet. */
        RM_STAT_INC(c->listener->ssl_stats.connection_error);
        RM_LOG_DEBUG("downstream %s: TLS handshake timed out on listener %s", c->peer,
                     c->listener->cfg->name);
        conn_kill(c);
        return;
    }
    RM_STAT_INC(c->listener->stats.downstream_rq_header_timeout);
    RM_STAT_INC(c->listener->stats.downstream_rq_total);
    RM_STAT_INC(c->listener->stats.downstream_rq_4xx);
    c->req_is_head = false;
    c->close_after_response = true;
    rm_proxy_send_local_reply(&h1_ops, c, 408, "request headers timeout", true);
    conn_close_after_flush(c);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_out(arg);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_h1_server_conn_t *c = arg;
    if (c->dead) {
        conn_free(c);
        return;
    }
    conn_process(c);
}

void rm_h1_server_accept(rm_worker_t *w, rm_listener_t *l, int fd, const struct sockaddr *peer, int peer_len)
{
    (void)peer_len;
    if (l->cfg->hcm.codec_type == RM_HTTP_CODEC_HTTP2) {
        rm_h2_server_accept(w, l, fd, peer, peer_len);
        return;
    }
    rm_http_worker_t *hw = w->http;
    rm_h1_server_conn_t *c = RM_NEW(rm_h1_server_conn_t);
    c->worker = w;
    c->listener = l;
    c->hw = hw;
    c->body_tmp = evbuffer_new();
    rm_sockaddr_str(peer, c->peer, sizeof(c->peer));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->tls = l->tls != NULL;
    c->bev = c->tls ? rm_tls_bufferevent_accept(l->tls, w->base, fd)
                    : bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->idle_timer = evtimer_new(w->base, idle_timeout_cb, c);
    c->headers_timer = evtimer_new(w->base, headers_timeout_cb, c);
    c->resume_ev = event_new(w->base, -1, 0, resume_cb, c);
    c->flush_ev = event_new(w->base, -1, 0, flush_cb, c);
    size_t limit =
        l->cfg->per_connection_buffer_limit_bytes ? l->cfg->per_connection_buffer_limit_bytes : (1u << 20);
    bufferevent_setwatermark(c->bev, EV_WRITE, limit / 2, 0);
    /* Bound how much of a request we buffer before the proxy asks for more. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, limit);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ); /* EV_WRITE only while output waits: see flush_out */
    c->next = hw->conns;
    if (hw->conns)
        hw->conns->prev = c;
    hw->conns = c;
    hw->num_conns++;
    atomic_fetch_add_explicit(&w->active_downstream_conns, 1, memory_order_relaxed);
    RM_STAT_INC(l->stats.downstream_cx_total);
    RM_STAT_INC(l->stats.downstream_cx_active);
    if (l->cfg->hcm.codec_type == RM_HTTP_CODEC_HTTP1) {
        c->proto_known = true;
        RM_STAT_INC(l->stats.downstream_cx_http1_total);
    }
    if (c->tls) {
        /* Bound the handshake like a request head; the idle timer starts once it is done. */
        uint64_t hto = l->cfg->hcm.request_headers_timeout_ms;
        arm(c->headers_timer, hto > 0 ? hto : 10000);
    } else if (l->cfg->hcm.idle_timeout_ms > 0) {
        arm(c->idle_timer, l->cfg->hcm.idle_timeout_ms);
    }
}

void rm_h1_server_drain_worker(rm_worker_t *w)
{
    rm_http_worker_t *hw = w->http;
    hw->draining = true;
    for (rm_h1_server_conn_t *c = hw->conns; c != NULL; c = c->next) {
        if (c->dead || c->closing)
            continue;
        if (!c->stream_active)
            conn_close_after_flush(c);
        else
            c->close_after_response = true;
    }
    rm_h2_server_drain_worker(w);
}

void rm_h1_server_close_all(rm_worker_t *w)
{
    rm_http_worker_t *hw = w->http;
    while (hw->conns != NULL)
        conn_free(hw->conns);
    rm_h2_server_close_all(w);
}
