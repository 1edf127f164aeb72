#include "http/h2_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/net.h"
#include "http/h1_server.h"
#include "http/proxy.h"

/* Output handed to the bufferevent before we stop asking nghttp2 for more frames: beyond this the
 * socket (or the client's reading) is the bottleneck, and frames wait inside nghttp2 where flow
 * control and the outbound-ack bound apply. */
#define OUT_HIGH_WATER (64u * 1024u)
/* Streams reset by the client before their response completed: once a connection has at least
 * this many, and they are at least half of its streams, it is treated as a rapid-reset attack. */
#define RAPID_RESET_MIN 100u
/* A header block this many times over the advertised list size ends the connection instead of just
 * the stream (bounds the work an HPACK bomb can cause). */
#define HEADER_KILL_FACTOR 4u
/* After GOAWAY, how long a connection may take to flush before it is closed regardless: a flooding
 * client is often not reading at all. */
#define CLOSE_GRACE_MS 1000u

/* How the codec reaches the proxy; the fuzz harness swaps in an echo. */
typedef struct {
    rm_proxy_stream_t *(*start)(rm_worker_t *w, rm_listener_t *l, const rm_downstream_ops_t *ops, void *ds,
                                rm_request_head_t *req, bool end_stream, const rm_proxy_stream_info_t *info);
    void (*data)(rm_proxy_stream_t *ps, struct evbuffer *data, bool end_stream);
    void (*trailers)(rm_proxy_stream_t *ps, rm_headers_t *trailers);
    void (*reset)(rm_proxy_stream_t *ps);
    void (*drained)(rm_proxy_stream_t *ps);
} proxy_iface_t;

static const proxy_iface_t real_proxy = {
    .start = rm_proxy_stream_start,
    .data = rm_proxy_on_request_data,
    .trailers = rm_proxy_on_request_trailers,
    .reset = rm_proxy_on_downstream_reset,
    .drained = rm_proxy_on_downstream_drained,
};

typedef struct h2_stream h2_stream_t;

struct rm_h2_server_conn {
    rm_worker_t *worker;
    rm_listener_t *listener;
    rm_http_worker_t *hw;
    const proxy_iface_t *proxy;
    rm_h2_server_conn_t *prev, *next;
    struct bufferevent *bev;
    nghttp2_session *session;
    char peer[80];
    size_t buffer_limit;

    h2_stream_t *streams; /* every stream nghttp2 knows and we track */
    size_t num_streams;
    size_t num_drain_wanted;
    uint64_t streams_total;
    uint64_t premature_resets;
    uint32_t consecutive_empty;

    bool in_recv; /* inside nghttp2_session_mem_recv: never call mem_send */
    /* GOAWAY code + 1 asked for from inside mem_recv; sent once mem_recv returns (terminating the
     * session from nghttp2's own receive callbacks upsets its frame state machine). 0: none. */
    uint32_t goaway_pending;
    bool closing; /* no more reading; free once the output is flushed */
    bool dead;    /* free on the next loop turn */
    bool freeing; /* conn_free in progress: nghttp2 callbacks must not touch streams */
    bool goaway_sent;
    bool draining;
    rm_h2_server_conn_t **owner_slot; /* cleared when the connection is freed (fuzz harness) */
    struct event *idle_timer;
    struct event *close_timer;
    struct event *headers_timer; /* a header block is open (HEADERS without END_HEADERS yet) */
    struct event *resume_ev;     /* deliver held request bodies; frees the connection when dead */
    struct event *flush_ev;
};

struct h2_stream {
    rm_h2_server_conn_t *conn;
    h2_stream_t *prev, *next;
    int32_t id;
    rm_request_head_t req;
    size_t header_bytes;
    size_t header_count;
    int bad_status; /* the request head is refused with this status once complete */
    bool started;   /* the proxy stream started, or a local reply went out */
    bool in_trailers;
    rm_headers_t req_trailers;
    rm_proxy_stream_t *ps;
    bool ps_active;
    bool req_end;             /* END_STREAM received from the client */
    bool in_paused;           /* the proxy asked us to stop delivering the request body */
    bool in_eof_pending;      /* END_STREAM arrived while paused */
    struct evbuffer *in_hold; /* request body received while paused: not yet acknowledged */

    bool resp_started;
    bool resp_done; /* END_STREAM (or RST_STREAM) sent */
    bool out_eof;
    bool data_deferred;
    bool drain_wanted;
    bool has_trailers;
    struct evbuffer *out; /* response body not yet framed */
    rm_headers_t trailers;
};

static void conn_flush(rm_h2_server_conn_t *c);
static void schedule_flush(rm_h2_server_conn_t *c);

static void arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- stream bookkeeping ---- */

static h2_stream_t *stream_new(rm_h2_server_conn_t *c, int32_t id)
{
    h2_stream_t *s = RM_NEW(h2_stream_t);
    s->conn = c;
    s->id = id;
    s->out = evbuffer_new();
    s->in_hold = evbuffer_new();
    s->req.content_length = -1;
    s->req.version_minor = 2;
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    c->num_streams++;
    c->streams_total++;
    RM_STAT_INC(c->listener->h2_stats.streams_active);
    evtimer_del(c->idle_timer);
    return s;
}

static void stream_free(h2_stream_t *s)
{
    rm_h2_server_conn_t *c = s->conn;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->num_streams--;
    if (s->drain_wanted)
        c->num_drain_wanted--;
    RM_STAT_DEC(c->listener->h2_stats.streams_active);
    evbuffer_free(s->out);
    evbuffer_free(s->in_hold);
    rm_headers_free(&s->trailers);
    rm_headers_free(&s->req_trailers);
    rm_request_head_free(&s->req);
    free(s);
    if (c->num_streams == 0 && !c->dead && !c->closing && c->listener->cfg->hcm.idle_timeout_ms > 0)
        arm(c->idle_timer, c->listener->cfg->hcm.idle_timeout_ms);
}

/* The proxy is gone for this stream (finished, or told about a reset). */
static void stream_detach_proxy(h2_stream_t *s)
{
    s->ps = NULL;
    s->ps_active = false;
}

/* ---- connection lifetime ---- */

static void conn_free(rm_h2_server_conn_t *c)
{
    c->freeing = true;
    while (c->streams != NULL) {
        h2_stream_t *s = c->streams;
        if (s->ps_active) {
            rm_proxy_stream_t *ps = s->ps;
            stream_detach_proxy(s);
            RM_STAT_INC(c->listener->stats.downstream_cx_destroy_remote_active_rq);
            c->proxy->reset(ps);
        }
        stream_free(s);
    }
    rm_http_worker_t *hw = c->hw;
    if (c->prev)
        c->prev->next = c->next;
    else
        hw->h2_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    hw->num_h2_conns--;
    RM_STAT_DEC(c->listener->stats.downstream_cx_active);
    atomic_fetch_sub_explicit(&c->worker->active_downstream_conns, 1, memory_order_relaxed);
    nghttp2_session_del(c->session);
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->idle_timer);
    event_free(c->close_timer);
    event_free(c->headers_timer);
    event_free(c->resume_ev);
    event_free(c->flush_ev);
    if (c->owner_slot != NULL)
        *c->owner_slot = NULL;
    free(c);
}

/* Frees the connection on the next loop turn (never under a caller's feet). */
static void conn_kill(rm_h2_server_conn_t *c)
{
    if (c->dead)
        return;
    c->dead = true;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->resume_ev, EV_READ, 0);
}

/* Sends GOAWAY with `code` (after the frames already queued) and closes once it is written. */
static void conn_goaway(rm_h2_server_conn_t *c, uint32_t code)
{
    if (c->in_recv) {
        /* The callback that asks for this also makes mem_recv stop (NGHTTP2_ERR_CALLBACK_FAILURE). */
        if (c->goaway_pending == 0 && !c->goaway_sent)
            c->goaway_pending = code + 1;
        return;
    }
    if (!c->goaway_sent) {
        c->goaway_sent = true;
        RM_STAT_INC(c->listener->h2_stats.goaway_sent);
        nghttp2_session_terminate_session(c->session, code);
    }
    c->closing = true;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ);
    if (!evtimer_pending(c->close_timer, NULL))
        arm(c->close_timer, CLOSE_GRACE_MS);
    schedule_flush(c);
}

static void schedule_flush(rm_h2_server_conn_t *c)
{
    if (!c->dead)
        event_active(c->flush_ev, EV_WRITE, 0);
}

/* ---- downstream ops (the proxy's view of one stream) ---- */

static bool connection_specific(const rm_header_t *h)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                        "upgrade"};
    for (size_t i = 0; i < RM_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == h->name_len && memcmp(h->name, names[i], h->name_len) == 0)
            return true;
    return false;
}

#define MAKE_NV(n, nl, v, vl)                                                                                \
    (nghttp2_nv)                                                                                             \
    {                                                                                                        \
        (uint8_t *)(n), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE                                     \
    }

/* Header list -> nv array (borrowing the strings); connection-specific fields are dropped. */
static size_t headers_to_nv(const rm_headers_t *h, nghttp2_nv *nv, size_t at)
{
    for (size_t i = 0; i < h->n; i++) {
        const rm_header_t *x = &h->v[i];
        if (connection_specific(x) || x->name_len == 0 || x->name[0] == ':')
            continue;
        if (x->name_len == 14 && memcmp(x->name, "content-length", 14) == 0)
            continue; /* taken from content_length */
        nv[at++] = MAKE_NV(x->name, x->name_len, x->value, x->value_len);
    }
    return at;
}

static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    (void)user_data;
    h2_stream_t *s = source->ptr;
    size_t avail = evbuffer_get_length(s->out);
    size_t n = avail < length ? avail : length;
    if (n > 0)
        evbuffer_remove(s->out, buf, n);
    if (n == avail && s->out_eof) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->has_trailers) {
            nghttp2_nv *nv = rm_calloc(s->trailers.n + 1, sizeof(nghttp2_nv));
            size_t nn = headers_to_nv(&s->trailers, nv, 0);
            if (nghttp2_submit_trailer(session, stream_id, nv, nn) == 0)
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            free(nv);
            RM_STAT_INC(s->conn->listener->h2_stats.trailers);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        s->data_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void ds_send_headers(void *ds, const rm_response_head_t *head, bool end_stream)
{
    h2_stream_t *s = ds;
    rm_h2_server_conn_t *c = s->conn;
    if (s->resp_started || s->resp_done)
        return;
    s->resp_started = true;
    nghttp2_nv *nv = rm_calloc(head->headers.n + 2, sizeof(nghttp2_nv));
    char status[8], clen[24];
    int sl = snprintf(status, sizeof(status), "%d", head->status);
    size_t n = 0;
    nv[n++] = MAKE_NV(":status", 7, status, (size_t)sl);
    n = headers_to_nv(&head->headers, nv, n);
    bool bodyless = head->status == 204 || head->status == 304 || head->status < 200;
    if (head->content_length >= 0 && !bodyless) {
        int cl = snprintf(clen, sizeof(clen), "%lld", (long long)head->content_length);
        nv[n++] = MAKE_NV("content-length", 14, clen, (size_t)cl);
    }
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = data_read_cb};
    int rv = nghttp2_submit_response(c->session, s->id, nv, n, end_stream ? NULL : &prd);
    free(nv);
    if (rv != 0)
        RM_LOG_DEBUG("h2 downstream %s stream %d: submit response: %s", c->peer, s->id, nghttp2_strerror(rv));
    if (end_stream)
        s->out_eof = true;
    schedule_flush(c);
}

static void ds_send_data(void *ds, struct evbuffer *data, bool end_stream)
{
    h2_stream_t *s = ds;
    if (!s->resp_started || s->out_eof) {
        evbuffer_drain(data, evbuffer_get_length(data));
        return;
    }
    evbuffer_add_buffer(s->out, data);
    if (end_stream)
        s->out_eof = true;
    if (s->data_deferred) {
        s->data_deferred = false;
        nghttp2_session_resume_data(s->conn->session, s->id);
    }
    schedule_flush(s->conn);
}

static void ds_send_trailers(void *ds, const rm_headers_t *trailers)
{
    h2_stream_t *s = ds;
    if (!s->resp_started || s->out_eof)
        return;
    rm_headers_append_all(&s->trailers, trailers);
    s->has_trailers = s->trailers.n > 0;
    s->out_eof = true;
    if (s->data_deferred) {
        s->data_deferred = false;
        nghttp2_session_resume_data(s->conn->session, s->id);
    }
    schedule_flush(s->conn);
}

static void ds_reset(void *ds)
{
    h2_stream_t *s = ds;
    stream_detach_proxy(s);
    if (!s->resp_done) {
        s->resp_done = true;
        RM_STAT_INC(s->conn->listener->h2_stats.tx_reset);
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    }
    schedule_flush(s->conn);
}

static size_t ds_write_buffered(void *ds)
{
    h2_stream_t *s = ds;
    size_t n = evbuffer_get_length(s->out);
    /* The proxy only asks when deciding whether to pause the upstream: remember to tell it when the
     * client has taken enough. */
    if (n >= s->conn->buffer_limit / 2 && !s->drain_wanted) {
        s->drain_wanted = true;
        s->conn->num_drain_wanted++;
    }
    return n;
}

static void ds_read_disable(void *ds, bool disable)
{
    h2_stream_t *s = ds;
    s->in_paused = disable;
    if (!disable && (evbuffer_get_length(s->in_hold) > 0 || s->in_eof_pending) && !s->conn->dead)
        event_active(s->conn->resume_ev, EV_READ, 0);
}

static void ds_stream_done(void *ds)
{
    h2_stream_t *s = ds;
    stream_detach_proxy(s);
    /* Body bytes still held are no longer wanted: give the client its window back. */
    size_t held = evbuffer_get_length(s->in_hold);
    if (held > 0) {
        evbuffer_drain(s->in_hold, held);
        nghttp2_session_consume(s->conn->session, s->id, held);
    }
    schedule_flush(s->conn);
}

static const rm_downstream_ops_t h2_ops = {
    .send_headers = ds_send_headers,
    .send_data = ds_send_data,
    .send_trailers = ds_send_trailers,
    .reset = ds_reset,
    .write_buffered = ds_write_buffered,
    .read_disable = ds_read_disable,
    .stream_done = ds_stream_done,
};

/* ---- request side ---- */

static void local_reply(h2_stream_t *s, int status, const char *body)
{
    rm_listener_t *l = s->conn->listener;
    RM_STAT_INC(l->stats.downstream_rq_total);
    RM_STAT_INC(l->stats.downstream_rq_http2_total);
    RM_STAT_STATUS_CLASS(&l->stats, downstream_rq_, status);
    s->started = true;
    rm_proxy_send_local_reply(&h2_ops, s, status, body, false);
}

/* Moves pseudo-header values into the neutral head; merges cookie crumbs (RFC 9113 8.2.3). */
static void finish_head(h2_stream_t *s)
{
    rm_request_head_t *r = &s->req;
    const rm_header_t *host = rm_headers_get(&r->headers, "host");
    if (r->authority == NULL && host != NULL)
        r->authority = rm_strndup(host->value, host->value_len);
    rm_headers_remove(&r->headers, "host");
    const rm_header_t *cl = rm_headers_get(&r->headers, "content-length");
    if (cl != NULL) {
        char *end = NULL;
        long long v = strtoll(cl->value, &end, 10);
        r->content_length = (end != NULL && *end == '\0' && v >= 0) ? v : -1;
        rm_headers_remove(&r->headers, "content-length");
    }
    size_t ncookies = 0, total = 0;
    for (size_t i = 0; i < r->headers.n; i++)
        if (strcmp(r->headers.v[i].name, "cookie") == 0) {
            ncookies++;
            total += r->headers.v[i].value_len + 2;
        }
    if (ncookies > 1) {
        char *joined = rm_calloc(1, total + 1);
        size_t off = 0;
        for (size_t i = 0; i < r->headers.n; i++) {
            const rm_header_t *h = &r->headers.v[i];
            if (strcmp(h->name, "cookie") != 0)
                continue;
            if (off > 0) {
                memcpy(joined + off, "; ", 2);
                off += 2;
            }
            memcpy(joined + off, h->value, h->value_len);
            off += h->value_len;
        }
        rm_headers_set(&r->headers, "cookie", joined, off);
        free(joined);
    }
}

static void start_stream(h2_stream_t *s, bool end_stream)
{
    rm_h2_server_conn_t *c = s->conn;
    if (s->bad_status != 0) {
        local_reply(s, s->bad_status, s->bad_status == 431 ? "request headers too large" : "bad request");
        return;
    }
    if (s->req.method == NULL || s->req.path == NULL) {
        /* nghttp2 only lets CONNECT through without :path. */
        local_reply(s, 501, "CONNECT is not supported");
        return;
    }
    finish_head(s);
    s->req_end = end_stream;
    s->started = true;
    s->ps_active = true;
    rm_proxy_stream_info_t info = {
        .protocol = "HTTP/2",
        .peer_addr = c->peer,
        .buffer_limit = c->buffer_limit,
    };
    rm_proxy_stream_t *ps = c->proxy->start(c->worker, c->listener, &h2_ops, s, &s->req, end_stream, &info);
    rm_request_head_free(&s->req);
    if (s->ps_active)
        s->ps = ps;
}

/* Hands request body bytes to the proxy and returns them to the client's window. */
static void deliver_body(h2_stream_t *s, struct evbuffer *data, bool end_stream)
{
    rm_h2_server_conn_t *c = s->conn;
    size_t n = evbuffer_get_length(data);
    if (s->ps_active)
        c->proxy->data(s->ps, data, end_stream);
    evbuffer_drain(data, evbuffer_get_length(data));
    if (n > 0)
        nghttp2_session_consume(c->session, s->id, n);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    rm_h2_server_conn_t *c = user_data;
    uint64_t hto = c->listener->cfg->hcm.request_headers_timeout_ms;
    if (frame->hd.type == NGHTTP2_HEADERS && hto > 0)
        arm(c->headers_timer, hto); /* one header block at a time per connection (RFC 9113 6.10) */
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream_t *s = stream_new(c, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    rm_h2_server_conn_t *c = user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    const rm_listener_t *l = c->listener;
    size_t limit = (size_t)l->cfg->hcm.max_request_headers_kb * 1024;
    s->header_bytes += namelen + valuelen + 32; /* RFC 9113 6.5.2 accounting */
    s->header_count++;
    if (s->header_bytes > limit * HEADER_KILL_FACTOR) {
        RM_STAT_INC(c->listener->h2_stats.header_overflow);
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* ends the connection */
    }
    if (s->bad_status != 0)
        return 0;
    if (s->header_bytes > limit) {
        RM_STAT_INC(c->listener->h2_stats.header_overflow);
        s->bad_status = 431;
        return 0;
    }
    if (s->header_count > (size_t)l->cfg->hcm.max_headers_count + 4) { /* + the pseudo-headers */
        RM_STAT_INC(c->listener->h2_stats.too_many_headers);
        s->bad_status = 431;
        return 0;
    }
    if (s->in_trailers || frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
        if (namelen > 0 && name[0] != ':')
            rm_headers_add(&s->req_trailers, (const char *)name, namelen, (const char *)value, valuelen);
        return 0;
    }
    if (namelen > 0 && name[0] == ':') {
        char **dst = NULL;
        if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            dst = &s->req.method;
        else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            dst = &s->req.path;
        else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
            dst = &s->req.authority;
        else if (namelen == 7 && memcmp(name, ":scheme", 7) == 0)
            dst = &s->req.scheme;
        if (dst != NULL && *dst == NULL)
            *dst = rm_strndup((const char *)value, valuelen);
        return 0;
    }
    rm_headers_add(&s->req.headers, (const char *)name, namelen, (const char *)value, valuelen);
    return 0;
}

/* Counts frames without payload; returns false when the flood bound is passed (GOAWAY asked). */
static bool note_frame_payload(rm_h2_server_conn_t *c, const nghttp2_frame *frame)
{
    if (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS)
        return true;
    if (frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        uint32_t max = c->listener->cfg->hcm.http2.max_consecutive_inbound_frames_with_empty_payload;
        if (++c->consecutive_empty > max) {
            RM_STAT_INC(c->listener->h2_stats.inbound_empty_frames_flood);
            RM_LOG_DEBUG("h2 downstream %s: empty frame flood", c->peer);
            conn_goaway(c, NGHTTP2_ENHANCE_YOUR_CALM);
            return false;
        }
    } else {
        c->consecutive_empty = 0;
    }
    return true;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    rm_h2_server_conn_t *c = user_data;
    if (!note_frame_payload(c, frame))
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* stop reading; the GOAWAY follows */
    h2_stream_t *s =
        frame->hd.stream_id ? nghttp2_session_get_stream_user_data(session, frame->hd.stream_id) : NULL;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        evtimer_del(c->headers_timer);
        if (s == NULL || c->closing)
            break;
        if (!s->started && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            s->in_trailers = true; /* any later HEADERS frame carries trailers */
            start_stream(s, end);
        } else if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && end) {
            s->req_end = true;
            if (s->ps_active && !s->in_paused && evbuffer_get_length(s->in_hold) == 0) {
                RM_STAT_INC(c->listener->h2_stats.trailers);
                c->proxy->trailers(s->ps, &s->req_trailers);
            } else if (s->ps_active) {
                s->in_eof_pending = true; /* delivered (as a plain end) with the held body */
            }
        }
        break;
    case NGHTTP2_DATA:
        if (s == NULL || !end)
            break;
        s->req_end = true;
        if (s->in_paused || evbuffer_get_length(s->in_hold) > 0) {
            s->in_eof_pending = true;
        } else if (s->ps_active) {
            struct evbuffer *empty = evbuffer_new();
            deliver_body(s, empty, true);
            evbuffer_free(empty);
        }
        break;
    case NGHTTP2_RST_STREAM:
        RM_STAT_INC(c->listener->h2_stats.rx_reset);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
    (void)flags;
    rm_h2_server_conn_t *c = user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL || !s->ps_active) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    if (s->in_paused || evbuffer_get_length(s->in_hold) > 0) {
        evbuffer_add(s->in_hold, data, len); /* bounded by the stream window we advertised */
        return 0;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, data, len);
    deliver_body(s, b, false);
    evbuffer_free(b);
    (void)c;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    rm_h2_server_conn_t *c = user_data;
    if (c->freeing)
        return 0;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    size_t held = evbuffer_get_length(s->in_hold);
    if (held > 0)
        nghttp2_session_consume_connection(session, held);
    if (s->ps_active) {
        /* Closed before the proxy finished: the client reset it, or the connection failed. */
        rm_proxy_stream_t *ps = s->ps;
        stream_detach_proxy(s);
        if (error_code != NGHTTP2_NO_ERROR || !s->resp_done)
            c->premature_resets++;
        c->proxy->reset(ps);
    }
    stream_free(s);
    if (c->premature_resets >= RAPID_RESET_MIN && c->premature_resets * 2 >= c->streams_total &&
        !c->goaway_sent && c->goaway_pending == 0) {
        RM_STAT_INC(c->listener->h2_stats.rapid_reset);
        RM_LOG_WARN("h2 downstream %s: %llu of %llu streams reset early; closing the connection", c->peer,
                    (unsigned long long)c->premature_resets, (unsigned long long)c->streams_total);
        conn_goaway(c, NGHTTP2_ENHANCE_YOUR_CALM);
        if (c->in_recv)
            return NGHTTP2_ERR_CALLBACK_FAILURE; /* stop reading; the GOAWAY follows */
    }
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)user_data;
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    s->resp_done = true;
    if (!s->req_end) {
        /* The response is complete before the request: tell the client to stop sending. */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame, int lib_error_code,
                            void *user_data)
{
    (void)session;
    rm_h2_server_conn_t *c = user_data;
    RM_STAT_INC(c->listener->h2_stats.rx_messaging_error);
    RM_LOG_DEBUG("h2 downstream %s: invalid frame type %u on stream %d: %s", c->peer, frame->hd.type,
                 frame->hd.stream_id, nghttp2_strerror(lib_error_code));
    return 0;
}

/* ---- I/O ---- */

/* Feeds input to nghttp2. Returns -1 (after arranging the close) on a fatal error. */
static int conn_recv(rm_h2_server_conn_t *c, const uint8_t *data, size_t len)
{
    c->in_recv = true;
    ssize_t rv = nghttp2_session_mem_recv(c->session, data, len);
    c->in_recv = false;
    if (c->goaway_pending != 0) {
        /* A bound was passed inside a callback (flood, rapid reset): the GOAWAY it asked for. */
        uint32_t code = c->goaway_pending - 1;
        c->goaway_pending = 0;
        conn_goaway(c, code);
        return -1;
    }
    if (rv >= 0)
        return 0;
    rm_hcm_stats_t *st = &c->listener->stats;
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    switch ((int)rv) {
    case NGHTTP2_ERR_FLOODED:
        RM_STAT_INC(c->listener->h2_stats.outbound_control_flood);
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        break;
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
    case NGHTTP2_ERR_CALLBACK_FAILURE:
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        break;
    default:
        break;
    }
    RM_STAT_INC(st->downstream_cx_protocol_error);
    RM_LOG_DEBUG("h2 downstream %s: %s", c->peer, nghttp2_strerror((int)rv));
    conn_goaway(c, code);
    return -1;
}

static void conn_notify_drained(rm_h2_server_conn_t *c)
{
    if (c->num_drain_wanted == 0)
        return;
    for (h2_stream_t *s = c->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (!s->drain_wanted || evbuffer_get_length(s->out) >= c->buffer_limit / 2)
            continue;
        s->drain_wanted = false;
        c->num_drain_wanted--;
        if (s->ps_active)
            c->proxy->drained(s->ps);
    }
}

/* Moves frames from nghttp2 to the bufferevent while it has room, then closes when done. */
static void conn_flush(rm_h2_server_conn_t *c)
{
    if (c->dead || c->in_recv)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (evbuffer_get_length(out) < OUT_HIGH_WATER) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            RM_LOG_DEBUG("h2 downstream %s: send: %s", c->peer, nghttp2_strerror((int)n));
            conn_kill(c);
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    conn_notify_drained(c);
    if (c->dead)
        return;
    if (!c->closing && !nghttp2_session_want_read(c->session)) {
        /* nghttp2 ended the session (GOAWAY sent or received and no stream left). */
        c->closing = true;
        bufferevent_disable(c->bev, EV_READ);
        arm(c->close_timer, CLOSE_GRACE_MS);
    }
    if (c->closing && evbuffer_get_length(out) == 0 && !nghttp2_session_want_write(c->session))
        conn_kill(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    rm_h2_server_conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!c->dead && !c->closing && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        int rc = conn_recv(c, v.iov_base, v.iov_len);
        evbuffer_drain(in, v.iov_len);
        if (rc != 0)
            break;
    }
    if (c->closing)
        evbuffer_drain(in, evbuffer_get_length(in));
    conn_flush(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_flush(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    rm_h2_server_conn_t *c = arg;
    conn_kill(c);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_flush(arg);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_h2_server_conn_t *c = arg;
    if (c->dead) {
        conn_free(c);
        return;
    }
    for (h2_stream_t *s = c->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (s->in_paused || !s->ps_active)
            continue;
        if (evbuffer_get_length(s->in_hold) == 0 && !s->in_eof_pending)
            continue;
        bool eof = s->in_eof_pending;
        s->in_eof_pending = false;
        if (eof && s->req_trailers.n > 0) {
            deliver_body(s, s->in_hold, false);
            if (s->ps_active) {
                RM_STAT_INC(c->listener->h2_stats.trailers);
                c->proxy->trailers(s->ps, &s->req_trailers);
            }
        } else {
            deliver_body(s, s->in_hold, eof);
        }
    }
    conn_flush(c);
}

static void idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_h2_server_conn_t *c = arg;
    if (c->num_streams > 0 || c->dead)
        return;
    RM_STAT_INC(c->listener->stats.downstream_cx_idle_timeout);
    conn_goaway(c, NGHTTP2_NO_ERROR);
}

static void headers_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_h2_server_conn_t *c = arg;
    if (c->dead || c->closing)
        return;
    /* A header block left open holds the whole connection (nothing else may be sent meanwhile). */
    RM_STAT_INC(c->listener->stats.downstream_rq_header_timeout);
    RM_LOG_DEBUG("h2 downstream %s: request headers timeout", c->peer);
    conn_goaway(c, NGHTTP2_PROTOCOL_ERROR);
}

static void close_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_kill(arg);
}

/* ---- set-up ---- */

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    return cbs;
}

static void session_init(rm_h2_server_conn_t *c)
{
    const rm_http2_options_t *o = &c->listener->cfg->hcm.http2;
    nghttp2_session_callbacks *cbs = make_callbacks();
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1); /* we acknowledge what the proxy took */
    nghttp2_option_set_max_outbound_ack(opt, o->max_outbound_control_frames);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 100);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    nghttp2_session_server_new2(&c->session, cbs, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->initial_stream_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->listener->cfg->hcm.max_request_headers_kb * 1024u},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, o->hpack_table_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, RM_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)o->initial_connection_window_size);
}

static rm_h2_server_conn_t *conn_new(rm_worker_t *w, rm_listener_t *l, struct bufferevent *bev,
                                     const char *peer, const proxy_iface_t *proxy)
{
    rm_http_worker_t *hw = w->http;
    rm_h2_server_conn_t *c = RM_NEW(rm_h2_server_conn_t);
    c->worker = w;
    c->listener = l;
    c->hw = hw;
    c->proxy = proxy;
    c->bev = bev;
    snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "-");
    c->buffer_limit =
        l->cfg->per_connection_buffer_limit_bytes ? l->cfg->per_connection_buffer_limit_bytes : (1u << 20);
    c->idle_timer = evtimer_new(w->base, idle_timeout_cb, c);
    c->close_timer = evtimer_new(w->base, close_timeout_cb, c);
    c->headers_timer = evtimer_new(w->base, headers_timeout_cb, c);
    c->resume_ev = event_new(w->base, -1, 0, resume_cb, c);
    c->flush_ev = event_new(w->base, -1, 0, flush_cb, c);
    c->next = hw->h2_conns;
    if (hw->h2_conns)
        hw->h2_conns->prev = c;
    hw->h2_conns = c;
    hw->num_h2_conns++;
    RM_STAT_INC(l->stats.downstream_cx_http2_total);
    session_init(c);
    if (hw->draining) {
        c->draining = true;
        nghttp2_submit_shutdown_notice(c->session);
    }
    return c;
}

void rm_h2_server_start(rm_worker_t *w, rm_listener_t *l, struct bufferevent *bev, const char *peer)
{
    rm_h2_server_conn_t *c = conn_new(w, l, bev, peer, &real_proxy);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_setwatermark(bev, EV_WRITE, OUT_HIGH_WATER / 2, 0);
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (l->cfg->hcm.idle_timeout_ms > 0)
        arm(c->idle_timer, l->cfg->hcm.idle_timeout_ms);
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        read_cb(bev, c);
    else
        conn_flush(c);
}

void rm_h2_server_accept(rm_worker_t *w, rm_listener_t *l, int fd, const struct sockaddr *peer, int peer_len)
{
    (void)peer_len;
    char p[80];
    rm_sockaddr_str(peer, p, sizeof(p));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct bufferevent *bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    atomic_fetch_add_explicit(&w->active_downstream_conns, 1, memory_order_relaxed);
    RM_STAT_INC(l->stats.downstream_cx_total);
    RM_STAT_INC(l->stats.downstream_cx_active);
    rm_h2_server_start(w, l, bev, p);
}

void rm_h2_server_drain_worker(rm_worker_t *w)
{
    rm_http_worker_t *hw = w->http;
    for (rm_h2_server_conn_t *c = hw->h2_conns; c != NULL; c = c->next) {
        if (c->dead || c->closing || c->draining)
            continue;
        c->draining = true;
        /* GOAWAY naming the last stream we took: streams in flight finish, new ones go elsewhere. */
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR, NULL, 0);
        c->goaway_sent = true;
        RM_STAT_INC(c->listener->h2_stats.goaway_sent);
        schedule_flush(c);
    }
}

void rm_h2_server_close_all(rm_worker_t *w)
{
    rm_http_worker_t *hw = w->http;
    while (hw->h2_conns != NULL)
        conn_free(hw->h2_conns);
}

/* ---- fuzzing: a detached connection with an echoing stand-in for the proxy ---- */

typedef struct {
    const rm_downstream_ops_t *ops;
    void *ds;
} echo_stream_t;

static rm_proxy_stream_t *echo_start(rm_worker_t *w, rm_listener_t *l, const rm_downstream_ops_t *ops,
                                     void *ds, rm_request_head_t *req, bool end_stream,
                                     const rm_proxy_stream_info_t *info)
{
    (void)w;
    (void)l;
    (void)req;
    (void)info;
    rm_response_head_t head = {.status = 200, .content_length = -1};
    rm_headers_add_cstr(&head.headers, "x-echo", "1");
    ops->send_headers(ds, &head, false);
    rm_response_head_free(&head);
    if (end_stream) {
        struct evbuffer *b = evbuffer_new();
        ops->send_data(ds, b, true);
        evbuffer_free(b);
        ops->stream_done(ds);
        return NULL;
    }
    echo_stream_t *e = RM_NEW(echo_stream_t);
    e->ops = ops;
    e->ds = ds;
    return (rm_proxy_stream_t *)e;
}

static void echo_data(rm_proxy_stream_t *ps, struct evbuffer *data, bool end_stream)
{
    echo_stream_t *e = (echo_stream_t *)ps;
    const rm_downstream_ops_t *ops = e->ops;
    void *ds = e->ds;
    ops->send_data(ds, data, end_stream);
    if (ops->write_buffered(ds) > 4096)
        ops->read_disable(ds, true);
    if (end_stream) {
        free(e);
        ops->stream_done(ds);
    }
}

static void echo_trailers(rm_proxy_stream_t *ps, rm_headers_t *trailers)
{
    echo_stream_t *e = (echo_stream_t *)ps;
    const rm_downstream_ops_t *ops = e->ops;
    void *ds = e->ds;
    ops->send_trailers(ds, trailers);
    free(e);
    ops->stream_done(ds);
}

static void echo_reset(rm_proxy_stream_t *ps)
{
    free(ps);
}

static void echo_drained(rm_proxy_stream_t *ps)
{
    echo_stream_t *e = (echo_stream_t *)ps;
    e->ops->read_disable(e->ds, false);
}

static const proxy_iface_t echo_proxy = {
    .start = echo_start,
    .data = echo_data,
    .trailers = echo_trailers,
    .reset = echo_reset,
    .drained = echo_drained,
};

struct rm_h2_fuzz {
    struct event_base *base;
    rm_worker_t worker;
    rm_listener_config_t cfg;
    rm_listener_t listener;
    struct bufferevent *pair[2];
    rm_h2_server_conn_t *conn;
};

rm_h2_fuzz_t *rm_h2_fuzz_new(void)
{
    rm_h2_fuzz_t *f = RM_NEW(rm_h2_fuzz_t);
    f->base = event_base_new();
    f->worker.base = f->base;
    f->worker.http = rm_http_worker_create();
    f->cfg.hcm.max_request_headers_kb = 8;
    f->cfg.hcm.max_headers_count = 20;
    f->cfg.per_connection_buffer_limit_bytes = 16384;
    rm_http2_options_default(&f->cfg.hcm.http2);
    f->cfg.hcm.http2.initial_stream_window_size = 65535;
    f->cfg.hcm.http2.initial_connection_window_size = 65535;
    f->listener.cfg = &f->cfg;
    bufferevent_pair_new(f->base, 0, f->pair);
    f->conn = conn_new(&f->worker, &f->listener, f->pair[0], "fuzz", &echo_proxy);
    f->conn->owner_slot = &f->conn;
    atomic_fetch_add_explicit(&f->worker.active_downstream_conns, 1, memory_order_relaxed);
    RM_STAT_INC(f->listener.stats.downstream_cx_active);
    bufferevent_setcb(f->pair[0], NULL, NULL, NULL, NULL);
    return f;
}

int rm_h2_fuzz_feed(rm_h2_fuzz_t *f, const uint8_t *data, size_t len)
{
    rm_h2_server_conn_t *c = f->conn;
    if (c == NULL || c->dead || c->closing)
        return -1;
    int rc = conn_recv(c, data, len);
    conn_flush(c);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    /* Discard what the codec wrote; the pair delivers it to the other end. */
    struct evbuffer *peer_in = bufferevent_get_input(f->pair[1]);
    evbuffer_drain(peer_in, evbuffer_get_length(peer_in));
    struct evbuffer *out = bufferevent_get_output(f->pair[0]);
    evbuffer_drain(out, evbuffer_get_length(out));
    conn_flush(c);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    if (c->dead)
        return -1;
    return rc;
}

void rm_h2_fuzz_free(rm_h2_fuzz_t *f)
{
    if (f->conn != NULL) {
        f->conn->bev = NULL; /* the pair end is freed below */
        conn_free(f->conn);
        bufferevent_free(f->pair[0]);
    }
    bufferevent_free(f->pair[1]);
    event_base_free(f->base);
    rm_http_worker_destroy(f->worker.http);
    free(f);
}
