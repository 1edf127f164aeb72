#include "upstream/h1_pool.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/h1_body.h"
#include "http/h1_parser.h"
#include "tls/tls.h"
#include "upstream/upstream_ops.h"

typedef enum {
    CONN_CONNECTING,
    CONN_IDLE,
    CONN_BUSY,
} conn_state_t;

typedef struct h1_conn h1_conn_t;
typedef struct h1_pool h1_pool_t;

struct h1_conn {
    rm_upstream_conn_t super; /* first: the protocol-neutral handle the proxy holds */
    h1_pool_t *pool;
    struct bufferevent *bev;
    struct event *timer; /* connect timeout, then idle timeout */
    conn_state_t state;
    h1_conn_t *prev, *next; /* in pool->idle or pool->busy */

    const rm_upstream_callbacks_t *cbs;
    void *ctx;

    /* Request direction. */
    bool req_chunked;
    bool req_complete;
    bool req_head_sent;
    bool req_is_head;
    bool req_close; /* request asked for Connection: close */
    /* Response direction. */
    bool resp_head_done;
    bool resp_complete;
    bool resp_keep_alive;
    bool read_disabled;
    bool any_response_bytes;
    rm_h1_body_reader_t body;
    struct evbuffer *body_out;
    size_t head_scan_from;
    /* Callbacks may release or abort the connection; destruction waits until they return. */
    int in_cb;
    bool write_armed; /* EV_WRITE enabled: output left over after a direct write */
    bool destroy_pending;
    bool destroy_remote;
};

/* A stream queued behind the cluster's max_connections circuit breaker. */
typedef struct pool_waiter {
    const rm_upstream_callbacks_t *cbs;
    void *ctx;
    struct pool_waiter *next;
} pool_waiter_t;

struct h1_pool {
    rm_h1_pool_t super; /* first: the protocol-neutral pool handle */
    struct event_base *base;
    rm_host_t *host;
    rm_cluster_shared_t *shared;
    rm_h1_pool_options_t opts;
    h1_conn_t *idle; /* MRU first */
    h1_conn_t *busy; /* connecting or busy */
    size_t num_conns;
    pool_waiter_t *waiters, **waiters_tail; /* FIFO */
    size_t num_waiters;
    struct event *wake_ev; /* serves waiters outside of the callback that freed a connection */
    bool draining;
};

static const char *const reset_names[] = {
#define RM_UPSTREAM_RESET_NAME(e, s) s,
    RM_UPSTREAM_RESETS(RM_UPSTREAM_RESET_NAME)
#undef RM_UPSTREAM_RESET_NAME
};

const char *rm_upstream_reset_str(rm_upstream_reset_t r)
{
    return (size_t)r < RM_ARRAY_LEN(reset_names) ? reset_names[r] : "unknown";
}

static void list_remove(h1_conn_t **head, h1_conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void list_push(h1_conn_t **head, h1_conn_t *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void pool_maybe_free(h1_pool_t *pool)
{
    if (pool->draining && pool->num_conns == 0 && pool->num_waiters == 0) {
        event_free(pool->wake_ev);
        rm_host_unref(pool->host);
        rm_cluster_shared_unref(pool->shared);
        rm_tls_ctx_unref(pool->opts.tls);
        free(pool);
    }
}

static void pool_wake_cb(evutil_socket_t fd, short what, void *arg);
static const rm_upstream_pool_ops_t h1_pool_ops;
static const rm_upstream_conn_ops_t h1_conn_ops;

rm_h1_pool_t *rm_h1_pool_create(struct event_base *base, rm_host_t *host, rm_cluster_shared_t *shared,
                                const rm_h1_pool_options_t *opts)
{
    h1_pool_t *p = RM_NEW(h1_pool_t);
    p->super.ops = &h1_pool_ops;
    p->base = base;
    p->host = rm_host_ref(host);
    p->shared = rm_cluster_shared_ref(shared);
    p->opts = *opts;
    p->waiters_tail = &p->waiters;
    p->wake_ev = evtimer_new(base, pool_wake_cb, p);
    if (p->opts.tls != NULL)
        rm_tls_ctx_ref(p->opts.tls);
    return &p->super;
}

rm_tls_ctx_t *h1_pool_tls(const h1_pool_t *pool)
{
    return pool->opts.tls;
}

static size_t h1_num_connections(const h1_pool_t *pool)
{
    return pool->num_conns;
}

static rm_host_t *h1_host(const h1_conn_t *c)
{
    return c->pool->host;
}

static void pool_wake(h1_pool_t *pool)
{
    struct timeval zero = {0, 0};
    evtimer_add(pool->wake_ev, &zero);
}

/* Closes and frees a connection. `remote` says who closed it (for stats). */
static void conn_destroy(h1_conn_t *c, bool remote)
{
    if (c->in_cb > 0) {
        c->destroy_pending = true;
        c->destroy_remote = remote;
        c->cbs = NULL;
        c->ctx = NULL;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    h1_pool_t *pool = c->pool;
    if (c->state == CONN_IDLE)
        list_remove(&pool->idle, c);
    else
        list_remove(&pool->busy, c);
    if (c->state != CONN_CONNECTING) {
        RM_STAT_DEC(pool->shared->stats.upstream_cx_active);
        RM_STAT_DEC(pool->host->stats.cx_active);
        RM_STAT_INC(pool->shared->stats.upstream_cx_destroy);
        if (remote)
            RM_STAT_INC(pool->shared->stats.upstream_cx_destroy_remote);
        else
            RM_STAT_INC(pool->shared->stats.upstream_cx_destroy_local);
    }
    bufferevent_free(c->bev);
    event_free(c->timer);
    evbuffer_free(c->body_out);
    rm_h1_body_reader_free(&c->body);
    free(c);
    pool->num_conns--;
    rm_cluster_cx_close(pool->shared);
    if (pool->num_waiters > 0)
        pool_wake(pool);
    pool_maybe_free(pool);
}

/* Reports a broken exchange to the bound stream (if any) and destroys the connection. */
static void conn_fail(h1_conn_t *c, rm_upstream_reset_t reason, bool remote)
{
    const rm_upstream_callbacks_t *cbs = c->cbs;
    void *ctx = c->ctx;
    conn_state_t state = c->state;
    c->cbs = NULL;
    c->ctx = NULL;
    conn_destroy(c, remote);
    if (cbs == NULL)
        return;
    if (state == CONN_CONNECTING)
        cbs->on_pool_failure(ctx, reason);
    else
        cbs->on_reset(ctx, reason);
}

static void conn_to_idle(h1_conn_t *c)
{
    h1_pool_t *pool = c->pool;
    list_remove(&pool->busy, c);
    c->state = CONN_IDLE;
    c->cbs = NULL;
    c->ctx = NULL;
    rm_h1_body_reader_free(&c->body);
    memset(&c->body, 0, sizeof(c->body));
    c->resp_head_done = c->resp_complete = c->req_complete = c->req_head_sent = false;
    c->any_response_bytes = false;
    c->head_scan_from = 0;
    list_push(&pool->idle, c);
    if (pool->num_waiters > 0)
        pool_wake(pool);
    /* Keep reading while idle: an EOF from the upstream removes the connection before reuse. */
    bufferevent_enable(c->bev, EV_READ);
    c->read_disabled = false;
    if (pool->opts.idle_timeout_ms > 0) {
        struct timeval tv = {(time_t)(pool->opts.idle_timeout_ms / 1000),
                             (suseconds_t)(pool->opts.idle_timeout_ms % 1000) * 1000};
        evtimer_add(c->timer, &tv);
    }
}

/* Both directions of the exchange are done: detach the stream's callbacks happen in release. */
static void conn_exchange_done(h1_conn_t *c)
{
    bool reusable = c->resp_keep_alive && !c->req_close && !c->pool->draining &&
                    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
                    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
    if (reusable)
        conn_to_idle(c);
    else
        conn_destroy(c, false);
}

static int parse_head(h1_conn_t *c, struct evbuffer *in)
{
    h1_pool_t *pool = c->pool;
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return 0;
        /* Find the end of the head first so the parser runs once per head, not once per read. */
        struct evbuffer_ptr start;
        evbuffer_ptr_set(in, &start, c->head_scan_from, EVBUFFER_PTR_SET);
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, &start);
        if (end.pos < 0) {
            if (len > pool->opts.max_response_header_bytes) {
                RM_LOG_DEBUG("upstream %s: response head over %zu bytes", pool->host->address_str,
                             pool->opts.max_response_header_bytes);
                return -1;
            }
            c->head_scan_from = len >= 3 ? len - 3 : 0;
            return 0;
        }
        size_t head_len = (size_t)end.pos + 4;
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)head_len);
        rm_h1_limits_t limits;
        rm_h1_limits_default(&limits);
        limits.max_header_bytes = pool->opts.max_response_header_bytes;
        limits.max_headers = pool->opts.max_response_headers;
        rm_h1_header_t hdrs[256];
        size_t cap = limits.max_headers < RM_ARRAY_LEN(hdrs) ? limits.max_headers : RM_ARRAY_LEN(hdrs);
        rm_h1_response_t resp;
        memset(&resp, 0, sizeof(resp));
        int rc = rm_h1_parse_response(p, head_len, &limits, c->req_is_head, hdrs, cap, &resp);
        if (rc < 0) {
            RM_LOG_DEBUG("upstream %s: bad response: %s", pool->host->address_str,
                         resp.error ? resp.error : "incomplete head");
            return -1;
        }
        c->head_scan_from = 0;
        if (resp.status >= 100 && resp.status < 200) {
            if (resp.status == 101) {
                RM_LOG_DEBUG("upstream %s: unexpected 101 Switching Protocols", pool->host->address_str);
                return -1;
            }
            evbuffer_drain(in, (size_t)rc);
            continue; /* interim response: the proxy answers 100-continue itself */
        }
        rm_response_head_t head;
        memset(&head, 0, sizeof(head));
        head.status = resp.status;
        head.content_length = resp.body_kind == RM_H1_BODY_LENGTH ? (int64_t)resp.content_length : -1;
        if (c->req_is_head) {
            /* A HEAD response announces the length the GET would have had: pass it on. */
            for (size_t i = 0; i < resp.num_headers; i++)
                if (rm_h1_header_name_eq(&resp.headers[i], "content-length"))
                    head.content_length = (int64_t)resp.content_length;
        }
        for (size_t i = 0; i < resp.num_headers; i++) {
            const rm_h1_header_t *h = &resp.headers[i];
            if (rm_h1_is_hop_by_hop(h, resp.headers, resp.num_headers) ||
                rm_h1_header_name_eq(h, "content-length"))
                continue;
            rm_headers_add(&head.headers, h->name, h->name_len, h->value, h->value_len);
        }
        c->resp_keep_alive = resp.keep_alive && resp.body_kind != RM_H1_BODY_UNTIL_CLOSE;
        rm_h1_body_reader_init(&c->body, resp.body_kind, resp.content_length, &limits);
        evbuffer_drain(in, (size_t)rc);
        c->resp_head_done = true;
        bool end_stream = c->body.done;
        if (end_stream)
            c->resp_complete = true;
        c->in_cb++;
        c->cbs->on_response_headers(c->ctx, &head, end_stream);
        c->in_cb--;
        rm_response_head_free(&head);
        return 1;
    }
}

/* Drives response parsing. Returns false when the connection was destroyed. */
static bool conn_process_input(h1_conn_t *c, bool eof)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    h1_pool_t *pool = c->pool;
    if (c->state == CONN_IDLE) {
        /* Bytes or EOF on an idle connection: it cannot be reused. */
        if (evbuffer_get_length(in) > 0)
            RM_LOG_DEBUG("upstream %s: unexpected bytes on an idle connection", pool->host->address_str);
        conn_destroy(c, eof);
        return false;
    }
    if (c->state != CONN_BUSY || c->cbs == NULL)
        return true;
    if (evbuffer_get_length(in) > 0)
        c->any_response_bytes = true;
    if (!c->resp_head_done) {
        int rc = parse_head(c, in);
        if (rc < 0) {
            RM_STAT_INC(pool->shared->stats.upstream_cx_protocol_error);
            conn_fail(c, RM_UPSTREAM_RESET_PROTOCOL_ERROR, false);
            return false;
        }
        if (rc == 0) {
            if (eof) {
                conn_fail(c, RM_UPSTREAM_RESET_REMOTE_CLOSE, true);
                return false;
            }
            return true;
        }
        if (c->destroy_pending) {
            conn_destroy(c, c->destroy_remote);
            return false;
        }
        if (c->cbs == NULL) /* the stream released the connection from the headers callback */
            return true;
        if (c->resp_complete)
            return true;
    }
    while (!c->body.done && !c->read_disabled && c->cbs != NULL) {
        const char *err = NULL;
        size_t before = evbuffer_get_length(c->body_out);
        if (rm_h1_body_reader_read(&c->body, in, c->body_out, 1u << 20, eof, &err) != 0) {
            RM_LOG_DEBUG("upstream %s: %s", pool->host->address_str, err);
            if (!eof)
                RM_STAT_INC(pool->shared->stats.upstream_cx_protocol_error);
            conn_fail(c, eof ? RM_UPSTREAM_RESET_REMOTE_CLOSE : RM_UPSTREAM_RESET_PROTOCOL_ERROR, eof);
            return false;
        }
        size_t produced = evbuffer_get_length(c->body_out) - before;
        bool done = c->body.done;
        if (done)
            c->resp_complete = true;
        if (produced == 0 && !done)
            break;
        c->in_cb++;
        if (done && c->body.trailers.n > 0) {
            if (produced > 0)
                c->cbs->on_response_data(c->ctx, c->body_out, false);
            if (c->cbs != NULL)
                c->cbs->on_response_trailers(c->ctx, &c->body.trailers);
        } else {
            c->cbs->on_response_data(c->ctx, c->body_out, done);
        }
        c->in_cb--;
        evbuffer_drain(c->body_out, evbuffer_get_length(c->body_out));
        if (c->destroy_pending) {
            conn_destroy(c, c->destroy_remote);
            return false;
        }
    }
    return true;
}

/* Writes the request now rather than on the next loop turn; only what the socket does not take is
 * left to the bufferevent (EV_WRITE armed until the buffer drains), which saves toggling EPOLLOUT
 * twice per request. A write error surfaces through the bufferevent's own next write. */
static void flush_out(h1_conn_t *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->state != CONN_BUSY || c->destroy_pending || evbuffer_get_length(out) == 0 || c->write_armed)
        return;
    if (c->pool->opts.tls == NULL) /* OpenSSL bufferevents write through SSL_write themselves */
        evbuffer_write(out, bufferevent_getfd(c->bev));
    if (evbuffer_get_length(out) > 0) {
        c->write_armed = true;
        bufferevent_enable(c->bev, EV_WRITE);
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    h1_conn_t *c = arg;
    (void)bev;
    conn_process_input(c, false);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    h1_conn_t *c = arg;
    if (c->write_armed && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        c->write_armed = false;
        bufferevent_disable(bev, EV_WRITE);
    }
    if (c->state == CONN_BUSY && c->cbs != NULL && c->cbs->on_write_drained != NULL)
        c->cbs->on_write_drained(c->ctx);
}

static void arm_timer(struct event *ev, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    h1_conn_t *c = arg;
    h1_pool_t *pool = c->pool;
    if (what & BEV_EVENT_CONNECTED) {
        evtimer_del(c->timer);
        /* With TLS this reports the completed handshake. Only HTTP/1.1 is offered (OpenSSL refuses a
         * server that picks anything else); an HTTP/2 pool would check rm_tls_bufferevent_alpn here. */
        if (pool->opts.tls != NULL)
            rm_tls_record_handshake(pool->opts.tls_stats, bev);
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        RM_STAT_INC(pool->shared->stats.upstream_cx_active);
        RM_STAT_INC(pool->host->stats.cx_active);
        c->state = CONN_BUSY;
        bufferevent_disable(bev, EV_WRITE); /* from now on writes go through flush_out */
        if (c->cbs == NULL) {
            /* The stream went away while connecting: keep the connection for the next request. */
            conn_to_idle(c);
            return;
        }
        c->cbs->on_ready(c->ctx, &c->super);
        return;
    }
    if (c->state == CONN_CONNECTING) {
        rm_tls_upstream_connect_failed(pool->opts.tls, pool->opts.tls_stats, bev, false,
                                       pool->host->address_str, pool->shared->name);
        RM_STAT_INC(pool->shared->stats.upstream_cx_connect_fail);
        RM_STAT_INC(pool->host->stats.cx_connect_fail);
        conn_fail(c, RM_UPSTREAM_RESET_CONNECT_FAIL, true);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        if (!conn_process_input(c, true))
            return;
        if (c->state == CONN_BUSY && c->cbs != NULL && !c->resp_complete) {
            conn_fail(c, RM_UPSTREAM_RESET_REMOTE_CLOSE, true);
            return;
        }
        if (c->state == CONN_BUSY && c->cbs != NULL) {
            /* Response complete; the stream will release us. Mark as not reusable. */
            c->resp_keep_alive = false;
            bufferevent_disable(bev, EV_READ);
            return;
        }
        if (c->state == CONN_IDLE || c->cbs == NULL)
            conn_destroy(c, true);
        return;
    }
    /* BEV_EVENT_ERROR */
    if (c->state == CONN_BUSY && c->cbs != NULL) {
        conn_fail(c, RM_UPSTREAM_RESET_REMOTE_CLOSE, true);
        return;
    }
    conn_destroy(c, true);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h1_conn_t *c = arg;
    h1_pool_t *pool = c->pool;
    if (c->state == CONN_CONNECTING) {
        rm_tls_upstream_connect_failed(pool->opts.tls, pool->opts.tls_stats, c->bev, true,
                                       pool->host->address_str, pool->shared->name);
        RM_STAT_INC(pool->shared->stats.upstream_cx_connect_timeout);
        RM_STAT_INC(pool->shared->stats.upstream_cx_connect_fail);
        RM_STAT_INC(pool->host->stats.cx_connect_fail);
        conn_fail(c, RM_UPSTREAM_RESET_CONNECT_TIMEOUT, false);
    } else if (c->state == CONN_IDLE) {
        RM_STAT_INC(pool->shared->stats.upstream_cx_idle_timeout);
        conn_destroy(c, false);
    }
}

static h1_conn_t *take_idle(h1_pool_t *pool, const rm_upstream_callbacks_t *cbs, void *ctx)
{
    h1_conn_t *c = pool->idle;
    list_remove(&pool->idle, c);
    evtimer_del(c->timer);
    c->state = CONN_BUSY;
    c->cbs = cbs;
    c->ctx = ctx;
    list_push(&pool->busy, c);
    return c;
}

static h1_conn_t *start_connect(h1_pool_t *pool, const rm_upstream_callbacks_t *cbs, void *ctx)
{
    h1_conn_t *c = RM_NEW(h1_conn_t);
    c->super.ops = &h1_conn_ops;
    c->pool = pool;
    c->cbs = cbs;
    c->ctx = ctx;
    c->state = CONN_CONNECTING;
    c->body_out = evbuffer_new();
    c->bev = pool->opts.tls != NULL ? rm_tls_bufferevent_connect(pool->opts.tls, pool->base)
                                    : bufferevent_socket_new(pool->base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(pool->base, conn_timer_cb, c);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    /* Write callback fires when the output drains to half the limit: resume the downstream. */
    bufferevent_setwatermark(c->bev, EV_WRITE, pool->opts.buffer_limit_bytes / 2, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    list_push(&pool->busy, c);
    pool->num_conns++;
    atomic_fetch_add_explicit(&pool->shared->cx_open, 1, memory_order_relaxed);
    RM_STAT_INC(pool->shared->stats.upstream_cx_total);
    RM_STAT_INC(pool->host->stats.cx_total);
    if (pool->opts.connect_timeout_ms > 0)
        arm_timer(c->timer, pool->opts.connect_timeout_ms);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&pool->host->addr, (int)pool->host->addr_len) !=
        0) {
        /* Immediate failure (e.g. no route): report it asynchronously like any other. */
        RM_LOG_DEBUG("connect to %s failed immediately", pool->host->address_str);
        evtimer_del(c->timer);
        struct timeval zero = {0, 0};
        /* Reuse the timer as a deferred failure: CONNECTING + fire = connect failure. */
        evtimer_add(c->timer, &zero);
    }
    return c;
}

/* max_connections: a pool may open a connection while the cluster is under the limit, and always
 * when it has none at all (otherwise its queued streams would wait on connections of other hosts or
 * workers that can never serve them). */
static bool may_connect(h1_pool_t *pool)
{
    return pool->num_conns == 0 || rm_cluster_cx_can_open(pool->shared);
}

static h1_conn_t *h1_acquire(h1_pool_t *pool, const rm_upstream_callbacks_t *cbs, void *ctx, bool *ready)
{
    *ready = false;
    if (pool->idle != NULL) {
        *ready = true;
        return take_idle(pool, cbs, ctx);
    }
    if (pool->num_waiters == 0 && may_connect(pool))
        return start_connect(pool, cbs, ctx);
    /* Over the cluster's connection limit: wait for one of this pool's connections. */
    RM_STAT_INC(pool->shared->stats.upstream_cx_overflow);
    pool_waiter_t *w = RM_NEW(pool_waiter_t);
    w->cbs = cbs;
    w->ctx = ctx;
    *pool->waiters_tail = w;
    pool->waiters_tail = &w->next;
    pool->num_waiters++;
    return NULL;
}

static pool_waiter_t *pop_waiter(h1_pool_t *pool)
{
    pool_waiter_t *w = pool->waiters;
    pool->waiters = w->next;
    if (pool->waiters == NULL)
        pool->waiters_tail = &pool->waiters;
    pool->num_waiters--;
    return w;
}

static void h1_cancel_wait(h1_pool_t *pool, void *ctx)
{
    for (pool_waiter_t **pp = &pool->waiters; *pp != NULL; pp = &(*pp)->next) {
        pool_waiter_t *w = *pp;
        if (w->ctx != ctx)
            continue;
        *pp = w->next;
        if (pool->waiters_tail == &w->next)
            pool->waiters_tail = pp;
        pool->num_waiters--;
        free(w);
        pool_maybe_free(pool);
        return;
    }
}

static void pool_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h1_pool_t *pool = arg;
    /* Hand idle connections to waiters in order, then open connections while the limit allows.
     * Callbacks may cancel other waiters or release connections; re-check the lists each time. */
    while (pool->num_waiters > 0 && !pool->draining) {
        if (pool->idle != NULL) {
            pool_waiter_t *w = pop_waiter(pool);
            h1_conn_t *c = take_idle(pool, w->cbs, w->ctx);
            const rm_upstream_callbacks_t *cbs = w->cbs;
            void *ctx = w->ctx;
            free(w);
            cbs->on_ready(ctx, &c->super);
            continue;
        }
        if (!may_connect(pool))
            break;
        pool_waiter_t *w = pop_waiter(pool);
        start_connect(pool, w->cbs, w->ctx);
        free(w);
    }
    if (pool->draining) {
        /* The host left: streams still queued cannot be served by it. */
        while (pool->num_waiters > 0) {
            pool_waiter_t *w = pop_waiter(pool);
            const rm_upstream_callbacks_t *cbs = w->cbs;
            void *ctx = w->ctx;
            free(w);
            cbs->on_pool_failure(ctx, RM_UPSTREAM_RESET_LOCAL);
        }
        pool_maybe_free(pool);
    }
}

static bool h1_has_idle(const h1_pool_t *pool)
{
    return pool->idle != NULL;
}

static void h1_drain(h1_pool_t *pool)
{
    /* Close idle connections before flagging the drain, so the last close does not free the pool
     * under this loop. */
    while (pool->idle != NULL)
        conn_destroy(pool->idle, false);
    pool->draining = true;
    if (pool->num_waiters > 0)
        pool_wake(pool);
    pool_maybe_free(pool);
}

static void h1_send_head(h1_conn_t *c, const rm_request_head_t *req, bool has_body, bool end_stream)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    c->req_is_head = strcmp(req->method, "HEAD") == 0;
    c->req_close = false;
    c->req_head_sent = true;
    evbuffer_add_printf(out, "%s %s HTTP/1.1\r\n", req->method, req->path);
    if (req->authority != NULL)
        evbuffer_add_printf(out, "host: %s\r\n", req->authority);
    rm_h1_write_headers(out, &req->headers);
    c->req_chunked = false;
    if (has_body) {
        if (req->content_length >= 0) {
            evbuffer_add_printf(out, "content-length: %lld\r\n", (long long)req->content_length);
        } else {
            evbuffer_add(out, "transfer-encoding: chunked\r\n", 28);
            c->req_chunked = true;
        }
    } else if (req->content_length == 0 || strcmp(req->method, "POST") == 0 ||
               strcmp(req->method, "PUT") == 0) {
        evbuffer_add(out, "content-length: 0\r\n", 19);
    }
    evbuffer_add(out, "\r\n", 2);
    if (end_stream)
        c->req_complete = true;
    flush_out(c);
}

static void h1_send_data(h1_conn_t *c, struct evbuffer *data, bool end_stream)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->req_chunked) {
        rm_h1_write_chunk(out, data);
        if (end_stream)
            rm_h1_write_last_chunk(out, NULL);
    } else {
        evbuffer_add_buffer(out, data);
    }
    if (end_stream)
        c->req_complete = true;
    flush_out(c);
}

static void h1_send_trailers(h1_conn_t *c, const rm_headers_t *trailers)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->req_chunked)
        rm_h1_write_last_chunk(out, trailers);
    c->req_complete = true;
    flush_out(c);
}

static size_t h1_write_buffered(const h1_conn_t *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void h1_read_disable(h1_conn_t *c, bool disable)
{
    if (c->read_disabled == disable)
        return;
    c->read_disabled = disable;
    if (disable) {
        bufferevent_disable(c->bev, EV_READ);
    } else {
        bufferevent_enable(c->bev, EV_READ);
        /* Bytes may already be waiting in the input buffer. */
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
            conn_process_input(c, false);
    }
}

static void h1_release(h1_conn_t *c)
{
    c->cbs = NULL;
    c->ctx = NULL;
    if (c->state == CONN_CONNECTING)
        return; /* becomes idle once connected */
    if (c->resp_complete && c->req_complete)
        conn_exchange_done(c);
    else
        conn_destroy(c, false);
}

static void h1_abort(h1_conn_t *c)
{
    c->cbs = NULL;
    c->ctx = NULL;
    if (c->state == CONN_CONNECTING) {
        conn_destroy(c, false);
        return;
    }
    conn_destroy(c, false);
}

/* ---- ops tables (the handles are the first members, so the casts are exact) ---- */

static rm_upstream_conn_t *op_acquire(rm_h1_pool_t *p, const rm_upstream_callbacks_t *cbs, void *ctx,
                                      bool *ready)
{
    h1_conn_t *c = h1_acquire((h1_pool_t *)p, cbs, ctx, ready);
    return c != NULL ? &c->super : NULL;
}
static void op_drain(rm_h1_pool_t *p)
{
    h1_drain((h1_pool_t *)p);
}
static size_t op_num_connections(const rm_h1_pool_t *p)
{
    return h1_num_connections((const h1_pool_t *)p);
}
static bool op_has_idle(const rm_h1_pool_t *p)
{
    return h1_has_idle((const h1_pool_t *)p);
}
static void op_cancel_wait(rm_h1_pool_t *p, void *ctx)
{
    h1_cancel_wait((h1_pool_t *)p, ctx);
}
static void op_send_head(rm_upstream_conn_t *c, const rm_request_head_t *req, bool has_body, bool end_stream)
{
    h1_send_head((h1_conn_t *)c, req, has_body, end_stream);
}
static void op_send_data(rm_upstream_conn_t *c, struct evbuffer *data, bool end_stream)
{
    h1_send_data((h1_conn_t *)c, data, end_stream);
}
static void op_send_trailers(rm_upstream_conn_t *c, const rm_headers_t *trailers)
{
    h1_send_trailers((h1_conn_t *)c, trailers);
}
static size_t op_write_buffered(const rm_upstream_conn_t *c)
{
    return h1_write_buffered((const h1_conn_t *)c);
}
static void op_read_disable(rm_upstream_conn_t *c, bool disable)
{
    h1_read_disable((h1_conn_t *)c, disable);
}
static void op_release(rm_upstream_conn_t *c)
{
    h1_release((h1_conn_t *)c);
}
static void op_abort(rm_upstream_conn_t *c)
{
    h1_abort((h1_conn_t *)c);
}
static rm_host_t *op_host(const rm_upstream_conn_t *c)
{
    return h1_host((const h1_conn_t *)c);
}

static const rm_upstream_pool_ops_t h1_pool_ops = {
    .acquire = op_acquire,
    .drain = op_drain,
    .num_connections = op_num_connections,
    .has_idle = op_has_idle,
    .cancel_wait = op_cancel_wait,
};
static const rm_upstream_conn_ops_t h1_conn_ops = {
    .send_head = op_send_head,
    .send_data = op_send_data,
    .send_trailers = op_send_trailers,
    .write_buffered = op_write_buffered,
    .read_disable = op_read_disable,
    .release = op_release,
    .abort = op_abort,
    .host = op_host,
};
