#include "upstream/h2_pool.h"

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
#include "tls/tls.h"
#include "upstream/upstream_ops.h"

/* Frames handed to the socket before we stop asking nghttp2 for more (see the downstream codec). */
#define OUT_HIGH_WATER (64u * 1024u)

typedef struct h2_pool h2_pool_t;
typedef struct h2_conn h2_conn_t;
typedef struct h2_stream h2_stream_t;

struct h2_pool {
    rm_h1_pool_t super; /* first: the protocol-neutral pool handle */
    struct event_base *base;
    rm_host_t *host;
    rm_cluster_shared_t *shared;
    rm_h1_pool_options_t opts;
    rm_http2_options_t h2;
    h2_conn_t *conns;
    size_t num_conns;
    bool draining;
};

struct h2_conn {
    h2_pool_t *pool;
    h2_conn_t *prev, *next;
    struct bufferevent *bev;
    nghttp2_session *session;
    struct event *timer; /* connect timeout, then idle timeout */
    struct event *flush_ev;
    struct event *free_ev;
    h2_stream_t *streams; /* attached streams (pending ones have id 0) */
    size_t num_streams;
    bool connected;
    bool goaway; /* no new streams */
    bool dead;
    int in_recv;
};

struct h2_stream {
    rm_upstream_conn_t super; /* first: the handle the proxy holds */
    h2_conn_t *conn;
    h2_stream_t *prev, *next;
    const rm_upstream_callbacks_t *cbs; /* NULL once the proxy released or aborted it */
    void *ctx;
    int32_t id;
    bool closed; /* nghttp2 closed it (or it never opened) */
    struct evbuffer *out;
    bool out_eof;
    bool data_deferred;
    bool has_trailers;
    bool drain_wanted;
    rm_headers_t trailers;
    rm_response_head_t resp;
    bool resp_head_done;
    bool resp_complete;
    rm_headers_t resp_trailers;
    bool read_paused;
    size_t unconsumed;
};

static const rm_upstream_pool_ops_t h2_pool_ops;
static const rm_upstream_conn_ops_t h2_stream_ops;
static void conn_flush(h2_conn_t *c);
static void conn_fail(h2_conn_t *c, rm_upstream_reset_t reason, bool remote);

static void arm_timer(struct event *ev, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void schedule_flush(h2_conn_t *c)
{
    if (!c->dead)
        event_active(c->flush_ev, EV_WRITE, 0);
}

static void pool_maybe_free(h2_pool_t *pool)
{
    if (pool->draining && pool->num_conns == 0) {
        rm_host_unref(pool->host);
        rm_cluster_shared_unref(pool->shared);
        rm_tls_ctx_unref(pool->opts.tls);
        free(pool);
    }
}

/* ---- streams ---- */

static void stream_unlink(h2_stream_t *s)
{
    h2_conn_t *c = s->conn;
    if (c == NULL)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->num_streams--;
    s->conn = NULL;
    if (c->num_streams > 0 || c->dead)
        return;
    if (c->goaway) {
        /* Drained (GOAWAY either way, or the pool is going): nothing will use it again. */
        conn_fail(c, RM_UPSTREAM_RESET_LOCAL, false);
    } else if (c->connected && c->pool->opts.idle_timeout_ms > 0) {
        arm_timer(c->timer, c->pool->opts.idle_timeout_ms);
    }
}

static void stream_free(h2_stream_t *s)
{
    stream_unlink(s);
    evbuffer_free(s->out);
    rm_headers_free(&s->trailers);
    rm_headers_free(&s->resp_trailers);
    rm_response_head_free(&s->resp);
    free(s);
}

/* Both sides are done with the stream: the proxy let go and nghttp2 closed it. */
static void stream_maybe_free(h2_stream_t *s)
{
    if (s->cbs == NULL && s->closed)
        stream_free(s);
}

/* Tells the proxy the stream broke (if it still listens); the proxy lets go of it. */
static void stream_fail(h2_stream_t *s, rm_upstream_reset_t reason, bool before_connect)
{
    const rm_upstream_callbacks_t *cbs = s->cbs;
    void *ctx = s->ctx;
    s->cbs = NULL;
    s->ctx = NULL;
    if (cbs == NULL)
        return;
    if (before_connect)
        cbs->on_pool_failure(ctx, reason);
    else
        cbs->on_reset(ctx, reason);
}

/* ---- connection lifetime ---- */

static void conn_destroy_now(h2_conn_t *c)
{
    h2_pool_t *pool = c->pool;
    while (c->streams != NULL) {
        h2_stream_t *s = c->streams;
        stream_unlink(s);
        s->closed = true;
        stream_maybe_free(s);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        pool->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->connected) {
        RM_STAT_DEC(pool->shared->stats.upstream_cx_active);
        RM_STAT_DEC(pool->host->stats.cx_active);
        RM_STAT_INC(pool->shared->stats.upstream_cx_destroy);
    }
    nghttp2_session_del(c->session);
    bufferevent_free(c->bev);
    event_free(c->timer);
    event_free(c->flush_ev);
    event_free(c->free_ev);
    free(c);
    pool->num_conns--;
    pool_maybe_free(pool);
}

static void free_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_destroy_now(arg);
}

/* Fails every attached stream and frees the connection on the next loop turn. */
static void conn_fail(h2_conn_t *c, rm_upstream_reset_t reason, bool remote)
{
    if (c->dead)
        return;
    c->dead = true;
    c->goaway = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    evtimer_del(c->timer);
    if (c->connected) {
        if (remote)
            RM_STAT_INC(c->pool->shared->stats.upstream_cx_destroy_remote);
        else
            RM_STAT_INC(c->pool->shared->stats.upstream_cx_destroy_local);
    }
    bool before_connect = !c->connected;
    for (h2_stream_t *s = c->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (!s->resp_complete)
            stream_fail(s, reason, before_connect);
    }
    event_active(c->free_ev, EV_READ, 0);
}

/* ---- nghttp2 callbacks ---- */

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
            size_t k = 0;
            for (size_t i = 0; i < s->trailers.n; i++) {
                rm_header_t *h = &s->trailers.v[i];
                nv[k++] = (nghttp2_nv){(uint8_t *)h->name, (uint8_t *)h->value, h->name_len, h->value_len,
                                       NGHTTP2_NV_FLAG_NONE};
            }
            if (nghttp2_submit_trailer(session, stream_id, nv, k) == 0)
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            free(nv);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        s->data_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    h2_conn_t *c = user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (s->resp_head_done) {
        if (namelen > 0 && name[0] != ':')
            rm_headers_add(&s->resp_trailers, (const char *)name, namelen, (const char *)value, valuelen);
        return 0;
    }
    if (rm_headers_byte_size(&s->resp.headers) > c->pool->opts.max_response_header_bytes ||
        s->resp.headers.n >= c->pool->opts.max_response_headers)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        s->resp.status = st;
        return 0;
    }
    if (namelen > 0 && name[0] == ':')
        return 0;
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        char tmp[24];
        size_t n = valuelen < sizeof(tmp) - 1 ? valuelen : sizeof(tmp) - 1;
        memcpy(tmp, value, n);
        tmp[n] = '\0';
        s->resp.content_length = strtoll(tmp, NULL, 10);
        return 0;
    }
    rm_headers_add(&s->resp.headers, (const char *)name, namelen, (const char *)value, valuelen);
    return 0;
}

static void deliver_end(h2_stream_t *s)
{
    s->resp_complete = true;
    struct evbuffer *empty = evbuffer_new();
    if (s->cbs != NULL)
        s->cbs->on_response_data(s->ctx, empty, true);
    evbuffer_free(empty);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2_conn_t *c = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        /* Streams above last_stream_id are closed by nghttp2 (REFUSED_STREAM); the rest finish. */
        c->goaway = true;
        return 0;
    }
    h2_stream_t *s =
        frame->hd.stream_id ? nghttp2_session_get_stream_user_data(session, frame->hd.stream_id) : NULL;
    if (s == NULL)
        return 0;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        if (!s->resp_head_done) {
            if (s->resp.status >= 100 && s->resp.status < 200) {
                /* Interim response: dropped, the final one follows. */
                rm_headers_free(&s->resp.headers);
                memset(&s->resp.headers, 0, sizeof(s->resp.headers));
                s->resp.status = 0;
                return 0;
            }
            s->resp_head_done = true;
            if (end)
                s->resp_complete = true;
            if (s->cbs != NULL)
                s->cbs->on_response_headers(s->ctx, &s->resp, end);
        } else if (end) {
            s->resp_complete = true;
            if (s->cbs != NULL)
                s->cbs->on_response_trailers(s->ctx, &s->resp_trailers);
        }
    } else if (frame->hd.type == NGHTTP2_DATA && end) {
        deliver_end(s);
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL || s->cbs == NULL) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, data, len);
    s->cbs->on_response_data(s->ctx, b, false);
    evbuffer_free(b);
    /* The proxy may have paused us during that call: acknowledge later, when it resumes. */
    if (s->cbs != NULL && s->read_paused)
        s->unconsumed += len;
    else
        nghttp2_session_consume(session, stream_id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    (void)user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (s->unconsumed > 0)
        nghttp2_session_consume_connection(session, s->unconsumed);
    s->unconsumed = 0;
    s->closed = true;
    stream_unlink(s);
    if (!s->resp_complete && s->cbs != NULL) {
        RM_LOG_DEBUG("upstream h2 stream %d closed early: %s", stream_id, nghttp2_http2_strerror(error_code));
        /* REFUSED_STREAM (also what streams beyond a GOAWAY's last id get): the server did not
         * process it, so a retry policy with refused-stream may send it again. */
        rm_upstream_reset_t reason = error_code == NGHTTP2_PROTOCOL_ERROR   ? RM_UPSTREAM_RESET_PROTOCOL_ERROR
                                     : error_code == NGHTTP2_REFUSED_STREAM ? RM_UPSTREAM_RESET_REFUSED_STREAM
                                                                            : RM_UPSTREAM_RESET_REMOTE_CLOSE;
        stream_fail(s, reason, false);
    }
    stream_maybe_free(s);
    return 0;
}

/* ---- I/O ---- */

static void conn_notify_drained(h2_conn_t *c)
{
    for (h2_stream_t *s = c->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (!s->drain_wanted || evbuffer_get_length(s->out) >= c->pool->opts.buffer_limit_bytes / 2)
            continue;
        s->drain_wanted = false;
        if (s->cbs != NULL && s->cbs->on_write_drained != NULL)
            s->cbs->on_write_drained(s->ctx);
    }
}

static void conn_flush(h2_conn_t *c)
{
    if (c->dead || c->in_recv > 0 || !c->connected)
        return;
    for (h2_stream_t *s = c->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (s->id == -1 && s->cbs != NULL) {
            stream_fail(s, RM_UPSTREAM_RESET_PROTOCOL_ERROR, false);
            s->closed = true;
            stream_maybe_free(s);
        }
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (evbuffer_get_length(out) < OUT_HIGH_WATER) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            conn_fail(c, RM_UPSTREAM_RESET_PROTOCOL_ERROR, false);
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    conn_notify_drained(c);
    if (c->dead)
        return;
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
        evbuffer_get_length(out) == 0) {
        /* GOAWAY exchanged and no stream left. */
        conn_fail(c, RM_UPSTREAM_RESET_REMOTE_CLOSE, true);
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    h2_conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!c->dead && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        c->in_recv++;
        ssize_t rv = nghttp2_session_mem_recv(c->session, v.iov_base, v.iov_len);
        c->in_recv--;
        evbuffer_drain(in, v.iov_len);
        if (rv < 0) {
            RM_LOG_DEBUG("upstream h2 %s: %s", c->pool->host->address_str, nghttp2_strerror((int)rv));
            RM_STAT_INC(c->pool->shared->stats.upstream_cx_protocol_error);
            conn_fail(c, RM_UPSTREAM_RESET_PROTOCOL_ERROR, false);
            return;
        }
    }
    conn_flush(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_flush(arg);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_flush(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    h2_conn_t *c = arg;
    h2_pool_t *pool = c->pool;
    if (c->dead)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        evtimer_del(c->timer);
        if (pool->opts.tls != NULL) {
            /* With TLS this reports the completed handshake. A server that chose HTTP/1.1 over
             * ALPN cannot be spoken to in HTTP/2; one without ALPN gets HTTP/2 with prior knowledge. */
            rm_tls_record_handshake(pool->opts.tls_stats, bev);
            if (rm_tls_bufferevent_alpn(bev) == RM_ALPN_HTTP11) {
                RM_LOG_INFO("upstream %s (cluster %s): the server chose http/1.1 over ALPN; the cluster "
                            "speaks HTTP/2",
                            pool->host->address_str, pool->shared->name);
                RM_STAT_INC(pool->shared->stats.upstream_cx_connect_fail);
                RM_STAT_INC(pool->host->stats.cx_connect_fail);
                conn_fail(c, RM_UPSTREAM_RESET_CONNECT_FAIL, true);
                return;
            }
        }
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        RM_STAT_INC(pool->shared->stats.upstream_cx_active);
        RM_STAT_INC(pool->host->stats.cx_active);
        c->connected = true;
        /* Streams that waited for the connection may send now. */
        for (h2_stream_t *s = c->streams, *next; s != NULL; s = next) {
            next = s->next;
            if (s->cbs != NULL)
                s->cbs->on_ready(s->ctx, &s->super);
        }
        if (c->num_streams == 0 && pool->opts.idle_timeout_ms > 0)
            arm_timer(c->timer, pool->opts.idle_timeout_ms);
        conn_flush(c);
        return;
    }
    if (!c->connected) {
        rm_tls_upstream_connect_failed(pool->opts.tls, pool->opts.tls_stats, bev, false,
                                       pool->host->address_str, pool->shared->name);
        RM_STAT_INC(pool->shared->stats.upstream_cx_connect_fail);
        RM_STAT_INC(pool->host->stats.cx_connect_fail);
        conn_fail(c, RM_UPSTREAM_RESET_CONNECT_FAIL, true);
        return;
    }
    conn_fail(c, RM_UPSTREAM_RESET_REMOTE_CLOSE, true);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h2_conn_t *c = arg;
    h2_pool_t *pool = c->pool;
    if (!c->connected) {
        rm_tls_upstream_connect_failed(pool->opts.tls, pool->opts.tls_stats, c->bev, true,
                                       pool->host->address_str, pool->shared->name);
        RM_STAT_INC(pool->shared->stats.upstream_cx_connect_timeout);
        RM_STAT_INC(pool->shared->stats.upstream_cx_connect_fail);
        RM_STAT_INC(pool->host->stats.cx_connect_fail);
        conn_fail(c, RM_UPSTREAM_RESET_CONNECT_TIMEOUT, false);
    } else if (c->num_streams == 0) {
        RM_STAT_INC(pool->shared->stats.upstream_cx_idle_timeout);
        conn_fail(c, RM_UPSTREAM_RESET_LOCAL, false);
    }
}

/* ---- pool ---- */

/* A connection object around `bev` (not yet connected), linked into the pool. */
static h2_conn_t *conn_alloc(h2_pool_t *pool, struct bufferevent *bev)
{
    h2_conn_t *c = RM_NEW(h2_conn_t);
    c->pool = pool;
    c->bev = bev;
    c->timer = evtimer_new(pool->base, timer_cb, c);
    c->flush_ev = event_new(pool->base, -1, 0, flush_cb, c);
    c->free_ev = event_new(pool->base, -1, 0, free_cb, c);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, pool->h2.max_outbound_control_frames);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_session_client_new2(&c->session, cbs, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, pool->h2.initial_stream_window_size},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, pool->h2.hpack_table_size},
    };
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, RM_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)pool->h2.initial_connection_window_size);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_HIGH_WATER / 2, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = pool->conns;
    if (pool->conns)
        pool->conns->prev = c;
    pool->conns = c;
    pool->num_conns++;
    RM_STAT_INC(pool->shared->stats.upstream_cx_total);
    RM_STAT_INC(pool->host->stats.cx_total);
    return c;
}

static h2_conn_t *conn_new(h2_pool_t *pool)
{
    struct bufferevent *bev = pool->opts.tls != NULL
                                  ? rm_tls_bufferevent_connect(pool->opts.tls, pool->base)
                                  : bufferevent_socket_new(pool->base, -1, BEV_OPT_CLOSE_ON_FREE);
    h2_conn_t *c = conn_alloc(pool, bev);
    if (pool->opts.connect_timeout_ms > 0)
        arm_timer(c->timer, pool->opts.connect_timeout_ms);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&pool->host->addr, (int)pool->host->addr_len) !=
        0) {
        RM_LOG_DEBUG("connect to %s failed immediately", pool->host->address_str);
        evtimer_del(c->timer);
        struct timeval zero = {0, 0};
        evtimer_add(c->timer, &zero); /* reported as a connect failure on the next turn */
    }
    return c;
}

/* How many streams a connection may carry: ours and the server's limit. */
static size_t conn_capacity(const h2_conn_t *c)
{
    size_t cap = c->pool->h2.max_concurrent_streams;
    if (c->connected) {
        uint32_t remote =
            nghttp2_session_get_remote_settings(c->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        if (remote < cap)
            cap = remote;
    }
    return cap;
}

static rm_upstream_conn_t *pool_acquire(rm_h1_pool_t *p, const rm_upstream_callbacks_t *cbs, void *ctx,
                                        bool *ready)
{
    h2_pool_t *pool = (h2_pool_t *)p;
    h2_conn_t *c = NULL;
    for (h2_conn_t *x = pool->conns; x != NULL; x = x->next) {
        if (x->dead || x->goaway || x->num_streams >= conn_capacity(x))
            continue;
        c = x;
        break;
    }
    if (c == NULL)
        c = conn_new(pool);
    h2_stream_t *s = RM_NEW(h2_stream_t);
    s->super.ops = &h2_stream_ops;
    s->conn = c;
    s->cbs = cbs;
    s->ctx = ctx;
    s->out = evbuffer_new();
    s->resp.content_length = -1;
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    c->num_streams++;
    if (c->connected)
        evtimer_del(c->timer);
    *ready = c->connected;
    return &s->super;
}

static void pool_drain(rm_h1_pool_t *p)
{
    h2_pool_t *pool = (h2_pool_t *)p;
    for (h2_conn_t *c = pool->conns, *next; c != NULL; c = next) {
        next = c->next;
        c->goaway = true;
        if (c->num_streams == 0 && !c->dead)
            conn_fail(c, RM_UPSTREAM_RESET_LOCAL, false);
    }
    pool->draining = true;
    pool_maybe_free(pool);
}

static size_t pool_num_connections(const rm_h1_pool_t *p)
{
    return ((const h2_pool_t *)p)->num_conns;
}

static bool pool_has_idle(const rm_h1_pool_t *p)
{
    const h2_pool_t *pool = (const h2_pool_t *)p;
    for (const h2_conn_t *x = pool->conns; x != NULL; x = x->next)
        if (x->connected && !x->dead && !x->goaway && x->num_streams < conn_capacity(x))
            return true;
    return false;
}

/* Streams never queue in the HTTP/2 pool: acquire always binds them to a connection. */
static void pool_cancel_wait(rm_h1_pool_t *p, void *ctx)
{
    (void)p;
    (void)ctx;
}

rm_h1_pool_t *rm_h2_pool_create(struct event_base *base, rm_host_t *host, rm_cluster_shared_t *shared,
                                const rm_h1_pool_options_t *opts, const rm_http2_options_t *h2)
{
    h2_pool_t *p = RM_NEW(h2_pool_t);
    p->super.ops = &h2_pool_ops;
    p->base = base;
    p->host = rm_host_ref(host);
    p->shared = rm_cluster_shared_ref(shared);
    p->opts = *opts;
    if (p->opts.tls != NULL)
        rm_tls_ctx_ref(p->opts.tls);
    p->h2 = *h2;
    return &p->super;
}

/* ---- stream ops ---- */

static bool connection_specific(const rm_header_t *h)
{
    static const char *const names[] = {"connection",        "keep-alive", "proxy-connection", "upgrade",
                                        "transfer-encoding", "host",       "content-length"};
    for (size_t i = 0; i < RM_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == h->name_len && memcmp(h->name, names[i], h->name_len) == 0)
            return true;
    /* TE is allowed in HTTP/2 only as "trailers" (gRPC relies on it). */
    if (h->name_len == 2 && memcmp(h->name, "te", 2) == 0)
        return !(h->value_len == 8 && strncasecmp(h->value, "trailers", 8) == 0);
    return false;
}

#define NV(n, nl, v, vl)                                                                                     \
    (nghttp2_nv)                                                                                             \
    {                                                                                                        \
        (uint8_t *)(n), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE                                     \
    }

static void op_send_head(rm_upstream_conn_t *uc, const rm_request_head_t *req, bool has_body, bool end_stream)
{
    h2_stream_t *s = (h2_stream_t *)uc;
    h2_conn_t *c = s->conn;
    if (c == NULL || c->dead)
        return;
    nghttp2_nv *nv = rm_calloc(req->headers.n + 6, sizeof(nghttp2_nv));
    size_t n = 0;
    const char *scheme = "http"; /* the upstream leg is plaintext h2c */
    const char *authority = req->authority ? req->authority : c->pool->host->address_str;
    nv[n++] = NV(":method", 7, req->method, strlen(req->method));
    nv[n++] = NV(":scheme", 7, scheme, strlen(scheme));
    nv[n++] = NV(":authority", 10, authority, strlen(authority));
    nv[n++] = NV(":path", 5, req->path, strlen(req->path));
    for (size_t i = 0; i < req->headers.n; i++) {
        const rm_header_t *h = &req->headers.v[i];
        if (connection_specific(h) || h->name_len == 0 || h->name[0] == ':')
            continue;
        nv[n++] = NV(h->name, h->name_len, h->value, h->value_len);
    }
    char clen[24];
    if (has_body && req->content_length >= 0) {
        int l = snprintf(clen, sizeof(clen), "%lld", (long long)req->content_length);
        nv[n++] = NV("content-length", 14, clen, (size_t)l);
    }
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = data_read_cb};
    if (end_stream)
        s->out_eof = true;
    int32_t id = nghttp2_submit_request(c->session, NULL, nv, n, end_stream ? NULL : &prd, s);
    free(nv);
    if (id < 0) {
        RM_LOG_WARN("upstream h2 %s: cannot open a stream: %s", c->pool->host->address_str,
                    nghttp2_strerror(id));
        /* The proxy is inside its own callback: the reset is reported from the next flush. */
        c->goaway = true;
        s->id = -1;
        schedule_flush(c);
        return;
    }
    s->id = id;
    schedule_flush(c);
}

static void op_send_data(rm_upstream_conn_t *uc, struct evbuffer *data, bool end_stream)
{
    h2_stream_t *s = (h2_stream_t *)uc;
    evbuffer_add_buffer(s->out, data);
    if (end_stream)
        s->out_eof = true;
    if (s->conn != NULL && s->data_deferred && s->id > 0) {
        s->data_deferred = false;
        nghttp2_session_resume_data(s->conn->session, s->id);
    }
    if (s->conn != NULL)
        schedule_flush(s->conn);
}

static void op_send_trailers(rm_upstream_conn_t *uc, const rm_headers_t *trailers)
{
    h2_stream_t *s = (h2_stream_t *)uc;
    rm_headers_append_all(&s->trailers, trailers);
    s->has_trailers = s->trailers.n > 0;
    op_send_data(uc, s->out, true); /* adds nothing; ends the body and wakes the data source */
}

static size_t op_write_buffered(const rm_upstream_conn_t *uc)
{
    h2_stream_t *s = (h2_stream_t *)uc;
    size_t n = evbuffer_get_length(s->out);
    if (s->conn != NULL && n >= s->conn->pool->opts.buffer_limit_bytes / 2)
        s->drain_wanted = true;
    return n;
}

static void op_read_disable(rm_upstream_conn_t *uc, bool disable)
{
    h2_stream_t *s = (h2_stream_t *)uc;
    s->read_paused = disable;
    if (!disable && s->unconsumed > 0 && s->conn != NULL && s->id > 0) {
        nghttp2_session_consume(s->conn->session, s->id, s->unconsumed);
        s->unconsumed = 0;
        schedule_flush(s->conn);
    }
}

/* The proxy lets go of the stream; cancel it on the wire if the exchange is not complete. */
static void detach(h2_stream_t *s)
{
    s->cbs = NULL;
    s->ctx = NULL;
    h2_conn_t *c = s->conn;
    if (c != NULL && !c->dead && s->id > 0 && !s->closed) {
        if (!s->resp_complete || !s->out_eof)
            nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        schedule_flush(c);
    }
    if (s->id <= 0)
        s->closed = true; /* never opened on the wire */
    stream_maybe_free(s);
}

static void op_release(rm_upstream_conn_t *uc)
{
    detach((h2_stream_t *)uc);
}

static void op_abort(rm_upstream_conn_t *uc)
{
    detach((h2_stream_t *)uc);
}

static rm_host_t *op_host(const rm_upstream_conn_t *uc)
{
    const h2_stream_t *s = (const h2_stream_t *)uc;
    return s->conn != NULL ? s->conn->pool->host : NULL;
}

static const rm_upstream_pool_ops_t h2_pool_ops = {
    .acquire = pool_acquire,
    .drain = pool_drain,
    .num_connections = pool_num_connections,
    .has_idle = pool_has_idle,
    .cancel_wait = pool_cancel_wait,
};

static const rm_upstream_conn_ops_t h2_stream_ops = {
    .send_head = op_send_head,
    .send_data = op_send_data,
    .send_trailers = op_send_trailers,
    .write_buffered = op_write_buffered,
    .read_disable = op_read_disable,
    .release = op_release,
    .abort = op_abort,
    .host = op_host,
};

/* ---- fuzzing: one connection over a socket pair stand-in, fed raw server bytes ---- */

typedef struct {
    rm_upstream_conn_t *conn;
    bool done;
} fuzz_req_t;

struct rm_h2_pool_fuzz {
    struct event_base *base;
    rm_host_t *host;
    rm_cluster_shared_t *shared;
    h2_pool_t *pool;
    h2_conn_t *conn;
    struct bufferevent *pair[2];
    fuzz_req_t reqs[2];
};

static void fz_ready(void *ctx, rm_upstream_conn_t *conn)
{
    ((fuzz_req_t *)ctx)->conn = conn;
}
static void fz_gone(void *ctx, rm_upstream_reset_t reason)
{
    (void)reason;
    fuzz_req_t *r = ctx;
    r->conn = NULL;
    r->done = true;
}
static void fz_finish(fuzz_req_t *r)
{
    if (r->conn != NULL)
        rm_upstream_conn_release(r->conn);
    r->conn = NULL;
    r->done = true;
}
static void fz_headers(void *ctx, rm_response_head_t *head, bool end_stream)
{
    (void)head;
    fuzz_req_t *r = ctx;
    if (r->conn != NULL)
        rm_upstream_conn_read_disable(r->conn, true); /* exercise the held-window path */
    if (end_stream)
        fz_finish(r);
}
static void fz_data(void *ctx, struct evbuffer *data, bool end_stream)
{
    fuzz_req_t *r = ctx;
    evbuffer_drain(data, evbuffer_get_length(data));
    if (r->conn != NULL)
        rm_upstream_conn_read_disable(r->conn, false);
    if (end_stream)
        fz_finish(r);
}
static void fz_trailers(void *ctx, rm_headers_t *trailers)
{
    (void)trailers;
    fz_finish(ctx);
}
static const rm_upstream_callbacks_t fz_cbs = {
    .on_ready = fz_ready,
    .on_pool_failure = fz_gone,
    .on_response_headers = fz_headers,
    .on_response_data = fz_data,
    .on_response_trailers = fz_trailers,
    .on_reset = fz_gone,
};

rm_h2_pool_fuzz_t *rm_h2_pool_fuzz_new(void)
{
    rm_h2_pool_fuzz_t *f = RM_NEW(rm_h2_pool_fuzz_t);
    f->base = event_base_new();
    const char *err = NULL;
    f->host = rm_host_create("127.0.0.1", 9, 1, 0, RM_HEALTH_STATUS_UNKNOWN, &err);
    f->shared = rm_cluster_shared_create("fuzz");
    rm_h1_pool_options_t opts = {
        .buffer_limit_bytes = 16384, .max_response_header_bytes = 8192, .max_response_headers = 50};
    rm_http2_options_t h2;
    rm_http2_options_default(&h2);
    h2.initial_stream_window_size = 65535;
    h2.initial_connection_window_size = 65535;
    f->pool = (h2_pool_t *)rm_h2_pool_create(f->base, f->host, f->shared, &opts, &h2);
    bufferevent_pair_new(f->base, 0, f->pair);
    f->conn = conn_alloc(f->pool, f->pair[0]);
    bufferevent_setcb(f->pair[0], NULL, NULL, NULL, NULL);
    f->conn->connected = true;
    RM_STAT_INC(f->shared->stats.upstream_cx_active);
    RM_STAT_INC(f->host->stats.cx_active);
    /* Two requests: a GET, and a POST with a body and trailers. */
    rm_request_head_t req = {.method = "GET", .path = "/a", .authority = "fuzz", .content_length = -1};
    bool ready = false;
    rm_upstream_conn_t *a = pool_acquire(&f->pool->super, &fz_cbs, &f->reqs[0], &ready);
    f->reqs[0].conn = a;
    rm_upstream_conn_send_head(a, &req, false, true);
    req.method = "POST";
    req.path = "/b";
    rm_upstream_conn_t *b = pool_acquire(&f->pool->super, &fz_cbs, &f->reqs[1], &ready);
    f->reqs[1].conn = b;
    rm_upstream_conn_send_head(b, &req, true, false);
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, "hello", 5);
    rm_upstream_conn_send_data(b, body, false);
    evbuffer_free(body);
    rm_headers_t tr = {0};
    rm_headers_add_cstr(&tr, "x-sum", "1");
    rm_upstream_conn_send_trailers(b, &tr);
    rm_headers_free(&tr);
    conn_flush(f->conn);
    return f;
}

int rm_h2_pool_fuzz_feed(rm_h2_pool_fuzz_t *f, const uint8_t *data, size_t len)
{
    h2_conn_t *c = f->conn;
    if (c == NULL || c->dead)
        return -1;
    c->in_recv++;
    ssize_t rv = nghttp2_session_mem_recv(c->session, data, len);
    c->in_recv--;
    if (rv < 0)
        conn_fail(c, RM_UPSTREAM_RESET_PROTOCOL_ERROR, false);
    else
        conn_flush(c);
    struct evbuffer *out = bufferevent_get_output(f->pair[0]);
    evbuffer_drain(out, evbuffer_get_length(out));
    return c->dead ? -1 : 0;
}

void rm_h2_pool_fuzz_free(rm_h2_pool_fuzz_t *f)
{
    for (size_t i = 0; i < 2; i++)
        if (f->reqs[i].conn != NULL)
            rm_upstream_conn_abort(f->reqs[i].conn);
    if (!f->conn->dead)
        conn_fail(f->conn, RM_UPSTREAM_RESET_LOCAL, false);
    pool_drain(&f->pool->super);
    /* Runs the deferred free of the connection (which frees pair[0]), then the pool goes. */
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    bufferevent_free(f->pair[1]);
    rm_host_unref(f->host);
    rm_cluster_shared_unref(f->shared);
    event_base_free(f->base);
    free(f);
}
