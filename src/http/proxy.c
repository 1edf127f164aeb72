#include "http/proxy.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "upstream/h1_pool.h"
#include "upstream/tl_cluster_manager.h"

/* Envoy's response flags, as they appear in access logs. */
#define RM_RESPONSE_FLAGS(X)                                                                                 \
    X(NO_ROUTE, "NR")                                                                                        \
    X(NO_HEALTHY_UPSTREAM, "UH")                                                                             \
    X(UPSTREAM_CONNECT_FAILURE, "UF")                                                                        \
    X(UPSTREAM_REMOTE_RESET, "UR")                                                                           \
    X(UPSTREAM_REQUEST_TIMEOUT, "UT")                                                                        \
    X(UPSTREAM_PROTOCOL_ERROR, "UPE")                                                                        \
    X(NO_CLUSTER_FOUND, "NC")                                                                                \
    X(DOWNSTREAM_CONNECTION_TERMINATION, "DC")                                                               \
    X(STREAM_IDLE_TIMEOUT, "SI")

enum {
#define RM_RF_ENUM(e, s) RF_BIT_##e,
    RM_RESPONSE_FLAGS(RM_RF_ENUM)
#undef RM_RF_ENUM
};
enum {
#define RM_RF_MASK(e, s) RF_##e = 1u << RF_BIT_##e,
    RM_RESPONSE_FLAGS(RM_RF_MASK)
#undef RM_RF_MASK
};

struct rm_proxy_stream {
    rm_worker_t *worker;
    rm_listener_t *listener;
    const rm_downstream_ops_t *ops;
    void *ds;
    rm_request_head_t req;
    rm_proxy_stream_info_t info;
    char *peer_addr;

    rm_snapshot_t *snapshot; /* the cluster set this request started with */
    rm_cluster_t *cluster;
    const rm_route_config_t *route;
    rm_host_t *host;
    rm_upstream_conn_t *conn;
    bool conn_ready;
    bool pending; /* waiting for a new upstream connection (Envoy's pending request) */

    struct evbuffer *req_buf;  /* request body waiting for the upstream connection */
    rm_headers_t req_trailers; /* request trailers that arrived before the upstream was ready */
    struct event *timeout_ev;
    struct event *idle_ev; /* stream_idle_timeout: no bytes either way for this long */

    bool req_complete;      /* downstream request fully received */
    bool req_paused;        /* downstream reads disabled by us */
    bool resp_headers_sent; /* response head went downstream */
    bool upstream_rq_counted;

    uint64_t start_ms;
    uint64_t start_us;
    uint64_t upstream_start_ms;
    int64_t upstream_svc_ms;
    int status;
    uint32_t flags;
    uint64_t bytes_received;
    uint64_t bytes_sent;
};

static void stream_finish(rm_proxy_stream_t *ps, bool call_done);
static void end_pending(rm_proxy_stream_t *ps);

static void flags_str(uint32_t flags, char *buf, size_t len)
{
    static const char *const names[] = {
#define RM_RF_NAME(e, s) s,
        RM_RESPONSE_FLAGS(RM_RF_NAME)
#undef RM_RF_NAME
    };
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < RM_ARRAY_LEN(names); i++) {
        if (!(flags & (1u << i)))
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", names[i]);
        if (off >= len)
            break;
    }
    if (off == 0)
        snprintf(buf, len, "-");
}

static rm_tlcm_t *tlcm_of(rm_worker_t *w)
{
    return (rm_tlcm_t *)w->upstream;
}

static void make_request_id(rm_rng_t *rng, char out[37])
{
    uint64_t a = rm_rng_next(rng), b = rm_rng_next(rng);
    /* UUID version 4, variant 10xx. */
    a = (a & 0xffffffffffff0fffull) | 0x0000000000004000ull;
    b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012" PRIx64, (unsigned)(a >> 32), (unsigned)((a >> 16) & 0xffff),
             (unsigned)(a & 0xffff), (unsigned)(b >> 48), (uint64_t)(b & 0xffffffffffffull));
}

void rm_proxy_send_local_reply(const rm_downstream_ops_t *ops, void *ds, int status, const char *body,
                               bool close_connection)
{
    rm_response_head_t head;
    memset(&head, 0, sizeof(head));
    head.status = status;
    size_t blen = body ? strlen(body) : 0;
    head.content_length = (int64_t)blen;
    if (blen > 0)
        rm_headers_add_cstr(&head.headers, "content-type", "text/plain");
    rm_headers_add_cstr(&head.headers, "server", "remora");
    if (close_connection)
        rm_headers_add_cstr(&head.headers, "connection", "close");
    ops->send_headers(ds, &head, blen == 0);
    if (blen > 0) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, body, blen);
        ops->send_data(ds, b, true);
        evbuffer_free(b);
    }
    rm_response_head_free(&head);
}

/* Answers locally (when no response head went downstream yet) and finishes the stream. */
static void local_reply(rm_proxy_stream_t *ps, int status, const char *body, uint32_t flag)
{
    ps->flags |= flag;
    ps->status = status;
    ps->resp_headers_sent = true;
    ps->bytes_sent += body ? strlen(body) : 0;
    rm_proxy_send_local_reply(ps->ops, ps->ds, status, body, false);
    stream_finish(ps, true);
}

static void detach_upstream(rm_proxy_stream_t *ps, bool abort)
{
    if (ps->conn == NULL)
        return;
    rm_upstream_conn_t *c = ps->conn;
    ps->conn = NULL;
    if (abort)
        rm_upstream_conn_abort(c);
    else
        rm_upstream_conn_release(c);
}

static void stream_finish(rm_proxy_stream_t *ps, bool call_done)
{
    rm_listener_t *l = ps->listener;
    rm_hcm_stats_t *st = &l->stats;
    detach_upstream(ps, !call_done);
    end_pending(ps);
    if (ps->timeout_ev)
        event_free(ps->timeout_ev);
    if (ps->idle_ev)
        event_free(ps->idle_ev);
    RM_STAT_DEC(st->downstream_rq_active);
    if (ps->status > 0)
        RM_STAT_STATUS_CLASS(st, downstream_rq_, ps->status);
    if (ps->cluster != NULL && ps->upstream_rq_counted) {
        RM_STAT_DEC(ps->cluster->shared->stats.upstream_rq_active);
        RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_completed);
        if (ps->host) {
            RM_STAT_DEC(ps->host->stats.rq_active);
            if (ps->status >= 500 || ps->status == 0)
                RM_STAT_INC(ps->host->stats.rq_error);
            else
                RM_STAT_INC(ps->host->stats.rq_success);
        }
    }

    if (l->access_log.num_fds > 0) {
        char fl[64];
        flags_str(ps->flags, fl, sizeof(fl));
        const rm_header_t *xff = rm_headers_get(&ps->req.headers, "x-forwarded-for");
        const rm_header_t *ua = rm_headers_get(&ps->req.headers, "user-agent");
        const rm_header_t *rid = rm_headers_get(&ps->req.headers, "x-request-id");
        rm_access_log_entry_t e = {
            .start_us = ps->start_us,
            .method = ps->req.method,
            .path = ps->req.path,
            .protocol = ps->info.protocol,
            .status = ps->status,
            .flags = fl,
            .bytes_received = ps->bytes_received,
            .bytes_sent = ps->bytes_sent,
            .duration_ms = rm_clock_now_ms(ps->worker->clock) - ps->start_ms,
            .upstream_service_time_ms = ps->upstream_svc_ms,
            .xff = xff ? xff->value : NULL,
            .user_agent = ua ? ua->value : NULL,
            .request_id = rid ? rid->value : NULL,
            .authority = ps->req.authority,
            .upstream_host = ps->host ? ps->host->address_str : NULL,
        };
        rm_access_log_write(&l->access_log, &e);
    }

    const rm_downstream_ops_t *ops = ps->ops;
    void *ds = ps->ds;
    rm_host_unref(ps->host);
    if (ps->req_buf)
        evbuffer_free(ps->req_buf);
    rm_headers_free(&ps->req_trailers);
    rm_request_head_free(&ps->req);
    free(ps->peer_addr);
    if (ps->snapshot)
        rm_snapshot_unref(ps->snapshot);
    free(ps);
    if (call_done)
        ops->stream_done(ds);
}

static void arm_route_timeout(rm_proxy_stream_t *ps);
static void touch(rm_proxy_stream_t *ps);

/* ---- upstream callbacks ---- */

static void end_pending(rm_proxy_stream_t *ps)
{
    if (ps->pending) {
        ps->pending = false;
        RM_STAT_DEC(ps->cluster->shared->stats.upstream_rq_pending_active);
    }
}

static void flush_request_body(rm_proxy_stream_t *ps)
{
    size_t n = evbuffer_get_length(ps->req_buf);
    bool trailers = ps->req_trailers.n > 0;
    if (n > 0 || (ps->req_complete && !trailers))
        rm_upstream_conn_send_data(ps->conn, ps->req_buf, ps->req_complete && !trailers);
    if (trailers)
        rm_upstream_conn_send_trailers(ps->conn, &ps->req_trailers);
}

static void up_on_ready(void *ctx, rm_upstream_conn_t *conn)
{
    rm_proxy_stream_t *ps = ctx;
    end_pending(ps);
    ps->conn = conn;
    ps->conn_ready = true;
    ps->upstream_start_ms = rm_clock_now_ms(ps->worker->clock);
    bool has_body = !ps->req_complete || evbuffer_get_length(ps->req_buf) > 0 || ps->req_trailers.n > 0;
    bool end = !has_body;
    rm_upstream_conn_send_head(conn, &ps->req, has_body, end);
    if (has_body)
        flush_request_body(ps);
    if (ps->req_paused && rm_upstream_conn_write_buffered(conn) < ps->info.buffer_limit) {
        ps->req_paused = false;
        ps->ops->read_disable(ps->ds, false);
    }
}

static void up_on_pool_failure(void *ctx, rm_upstream_reset_t reason)
{
    rm_proxy_stream_t *ps = ctx;
    end_pending(ps);
    ps->conn = NULL;
    char body[160];
    snprintf(body, sizeof(body),
             "upstream connect error or disconnect/reset before headers. reset reason: %s",
             rm_upstream_reset_str(reason));
    local_reply(ps, 502, body, RF_UPSTREAM_CONNECT_FAILURE);
}

static void up_on_response_headers(void *ctx, rm_response_head_t *head, bool end_stream)
{
    rm_proxy_stream_t *ps = ctx;
    touch(ps);
    uint64_t now = rm_clock_now_ms(ps->worker->clock);
    ps->upstream_svc_ms = (int64_t)(now - ps->upstream_start_ms);
    ps->status = head->status;
    RM_STAT_STATUS_CLASS(&ps->cluster->shared->stats, upstream_rq_, head->status);
    char svc[24];
    int n = snprintf(svc, sizeof(svc), "%lld", (long long)ps->upstream_svc_ms);
    rm_headers_set(&head->headers, "x-envoy-upstream-service-time", svc, (size_t)n);
    ps->resp_headers_sent = true;
    ps->ops->send_headers(ps->ds, head, end_stream);
    if (end_stream)
        stream_finish(ps, true);
}

static void up_on_response_data(void *ctx, struct evbuffer *data, bool end_stream)
{
    rm_proxy_stream_t *ps = ctx;
    touch(ps);
    ps->bytes_sent += evbuffer_get_length(data);
    ps->ops->send_data(ps->ds, data, end_stream);
    if (end_stream) {
        stream_finish(ps, true);
        return;
    }
    if (ps->conn != NULL && ps->ops->write_buffered(ps->ds) >= ps->info.buffer_limit)
        rm_upstream_conn_read_disable(ps->conn, true);
}

static void up_on_response_trailers(void *ctx, rm_headers_t *trailers)
{
    rm_proxy_stream_t *ps = ctx;
    ps->ops->send_trailers(ps->ds, trailers);
    stream_finish(ps, true);
}

static void up_on_reset(void *ctx, rm_upstream_reset_t reason)
{
    rm_proxy_stream_t *ps = ctx;
    ps->conn = NULL;
    RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_rx_reset);
    uint32_t flag =
        reason == RM_UPSTREAM_RESET_PROTOCOL_ERROR ? RF_UPSTREAM_PROTOCOL_ERROR : RF_UPSTREAM_REMOTE_RESET;
    if (!ps->resp_headers_sent) {
        char body[160];
        snprintf(body, sizeof(body),
                 "upstream connect error or disconnect/reset before headers. reset reason: %s",
                 rm_upstream_reset_str(reason));
        local_reply(ps, 502, body, flag);
        return;
    }
    ps->flags |= flag;
    ps->ops->reset(ps->ds);
    stream_finish(ps, false);
}

static void up_on_write_drained(void *ctx)
{
    rm_proxy_stream_t *ps = ctx;
    if (ps->req_paused && !ps->req_complete) {
        ps->req_paused = false;
        ps->ops->read_disable(ps->ds, false);
    }
}

static const rm_upstream_callbacks_t upstream_cbs = {
    .on_ready = up_on_ready,
    .on_pool_failure = up_on_pool_failure,
    .on_response_headers = up_on_response_headers,
    .on_response_data = up_on_response_data,
    .on_response_trailers = up_on_response_trailers,
    .on_reset = up_on_reset,
    .on_write_drained = up_on_write_drained,
};

/* ---- timeouts ---- */

static void route_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_proxy_stream_t *ps = arg;
    if (ps->cluster) {
        RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_timeout);
        if (ps->host)
            RM_STAT_INC(ps->host->stats.rq_timeout);
    }
    RM_STAT_INC(ps->listener->stats.downstream_rq_timeout);
    detach_upstream(ps, true);
    if (!ps->resp_headers_sent) {
        local_reply(ps, 504, "upstream request timeout", RF_UPSTREAM_REQUEST_TIMEOUT);
        return;
    }
    ps->flags |= RF_UPSTREAM_REQUEST_TIMEOUT;
    ps->ops->reset(ps->ds);
    stream_finish(ps, false);
}

static void arm_route_timeout(rm_proxy_stream_t *ps)
{
    if (ps->route == NULL || ps->route->timeout_ms == 0 || ps->timeout_ev != NULL)
        return;
    ps->timeout_ev = evtimer_new(ps->worker->base, route_timeout_cb, ps);
    struct timeval tv = {(time_t)(ps->route->timeout_ms / 1000),
                         (suseconds_t)(ps->route->timeout_ms % 1000) * 1000};
    evtimer_add(ps->timeout_ev, &tv);
}

static void stream_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_proxy_stream_t *ps = arg;
    detach_upstream(ps, true);
    if (!ps->resp_headers_sent) {
        /* Like Envoy: 408 while the request is still arriving, 504 while waiting for the response. */
        local_reply(ps, ps->req_complete ? 504 : 408, "stream timeout", RF_STREAM_IDLE_TIMEOUT);
        return;
    }
    ps->flags |= RF_STREAM_IDLE_TIMEOUT;
    ps->ops->reset(ps->ds);
    stream_finish(ps, false);
}

/* Pushes the stream idle deadline forward; called on any progress in either direction. */
static void touch(rm_proxy_stream_t *ps)
{
    uint64_t ms = ps->listener->cfg->hcm.stream_idle_timeout_ms;
    if (ms == 0)
        return;
    if (ps->idle_ev == NULL)
        ps->idle_ev = evtimer_new(ps->worker->base, stream_idle_cb, ps);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ps->idle_ev, &tv);
}

/* ---- downstream entry points ---- */

static void prepare_request_headers(rm_proxy_stream_t *ps)
{
    rm_headers_t *h = &ps->req.headers;
    if (ps->listener->cfg->hcm.generate_request_id && rm_headers_get(h, "x-request-id") == NULL) {
        char id[37];
        make_request_id(&ps->worker->rng, id);
        rm_headers_add(h, "x-request-id", 12, id, 36);
    }
    if (rm_headers_get(h, "x-forwarded-proto") == NULL)
        rm_headers_add_cstr(h, "x-forwarded-proto", ps->req.scheme ? ps->req.scheme : "http");
    if (ps->listener->cfg->hcm.use_remote_address && ps->peer_addr != NULL) {
        /* Append the peer's IP (without port) to x-forwarded-for, as an edge proxy does. */
        char ip[64];
        snprintf(ip, sizeof(ip), "%s", ps->peer_addr);
        char *colon = strrchr(ip, ':');
        if (colon != NULL && ip[0] != '[')
            *colon = '\0';
        const rm_header_t *xff = rm_headers_get(h, "x-forwarded-for");
        if (xff != NULL) {
            char *v = rm_asprintf("%s, %s", xff->value, ip);
            rm_headers_set(h, "x-forwarded-for", v, strlen(v));
            free(v);
        } else {
            rm_headers_add_cstr(h, "x-forwarded-for", ip);
        }
    }
}

rm_proxy_stream_t *rm_proxy_stream_start(rm_worker_t *w, rm_listener_t *l, const rm_downstream_ops_t *ops,
                                         void *ds, rm_request_head_t *req, bool end_stream,
                                         const rm_proxy_stream_info_t *info)
{
    rm_proxy_stream_t *ps = RM_NEW(rm_proxy_stream_t);
    ps->worker = w;
    ps->listener = l;
    ps->ops = ops;
    ps->ds = ds;
    ps->req = *req;
    memset(req, 0, sizeof(*req));
    ps->info = *info;
    ps->peer_addr = rm_strdup(info->peer_addr);
    ps->info.peer_addr = ps->peer_addr;
    ps->req_buf = evbuffer_new();
    ps->start_ms = rm_clock_now_ms(w->clock);
    ps->start_us = w->clock->realtime_us(w->clock);
    ps->upstream_svc_ms = -1;
    ps->req_complete = end_stream;
    RM_STAT_INC(l->stats.downstream_rq_total);
    if (ps->req.version_minor == 2)
        RM_STAT_INC(l->stats.downstream_rq_http2_total);
    else
        RM_STAT_INC(l->stats.downstream_rq_http1_total);
    RM_STAT_INC(l->stats.downstream_rq_active);

    prepare_request_headers(ps);

    const char *host = ps->req.authority ? ps->req.authority : "";
    ps->route = rm_router_match(l->router, host, strlen(host), ps->req.path, strlen(ps->req.path));
    if (ps->route == NULL) {
        RM_STAT_INC(l->stats.no_route);
        local_reply(ps, 404, NULL, RF_NO_ROUTE);
        return NULL;
    }
    rm_tlcm_t *tl = tlcm_of(w);
    rm_tl_cluster_t *tc = rm_tlcm_get(tl, ps->route->cluster, strlen(ps->route->cluster));
    if (tc == NULL) {
        RM_STAT_INC(l->stats.no_cluster);
        local_reply(ps, 503, "no cluster", RF_NO_CLUSTER_FOUND);
        return NULL;
    }
    ps->snapshot = rm_snapshot_ref(tl->snapshot);
    ps->cluster = tc->cluster;
    RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_total);
    RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_active);
    ps->upstream_rq_counted = true;
    rm_host_t *h = tc->lb ? tc->lb->ops->pick(tc->lb, NULL) : NULL;
    if (h == NULL) {
        RM_STAT_INC(ps->cluster->shared->stats.upstream_cx_none_healthy);
        local_reply(ps, 503, "no healthy upstream", RF_NO_HEALTHY_UPSTREAM);
        return NULL;
    }
    ps->host = rm_host_ref(h);
    touch(ps);
    RM_STAT_INC(h->stats.rq_total);
    RM_STAT_INC(h->stats.rq_active);
    if (end_stream)
        arm_route_timeout(ps);
    rm_h1_pool_t *pool = rm_tlcm_pool(tl, ps->cluster, h);
    bool ready = false;
    ps->conn = rm_h1_pool_acquire(pool, &upstream_cbs, ps, &ready);
    if (ready) {
        up_on_ready(ps, ps->conn);
    } else {
        ps->pending = true;
        RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_pending_total);
        RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_pending_active);
    }
    return ps;
}

void rm_proxy_on_request_data(rm_proxy_stream_t *ps, struct evbuffer *data, bool end_stream)
{
    ps->bytes_received += evbuffer_get_length(data);
    touch(ps);
    if (end_stream) {
        ps->req_complete = true;
        arm_route_timeout(ps);
    }
    if (ps->conn_ready && ps->conn != NULL) {
        rm_upstream_conn_send_data(ps->conn, data, end_stream);
        if (!end_stream && rm_upstream_conn_write_buffered(ps->conn) >= ps->info.buffer_limit &&
            !ps->req_paused) {
            ps->req_paused = true;
            ps->ops->read_disable(ps->ds, true);
        }
        return;
    }
    evbuffer_add_buffer(ps->req_buf, data);
    if (!end_stream && evbuffer_get_length(ps->req_buf) >= ps->info.buffer_limit && !ps->req_paused) {
        ps->req_paused = true;
        ps->ops->read_disable(ps->ds, true);
    }
}

void rm_proxy_on_request_trailers(rm_proxy_stream_t *ps, rm_headers_t *trailers)
{
    ps->req_complete = true;
    arm_route_timeout(ps);
    if (ps->conn_ready && ps->conn != NULL) {
        rm_upstream_conn_send_trailers(ps->conn, trailers);
        return;
    }
    /* Not connected yet: kept, and sent after the buffered body once the upstream is ready. */
    for (size_t i = 0; i < trailers->n; i++)
        rm_headers_add(&ps->req_trailers, trailers->v[i].name, trailers->v[i].name_len, trailers->v[i].value,
                       trailers->v[i].value_len);
}

void rm_proxy_on_downstream_reset(rm_proxy_stream_t *ps)
{
    ps->flags |= RF_DOWNSTREAM_CONNECTION_TERMINATION;
    RM_STAT_INC(ps->listener->stats.downstream_rq_rx_reset);
    if (ps->conn != NULL && ps->cluster != NULL)
        RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_tx_reset);
    stream_finish(ps, false);
}

void rm_proxy_on_downstream_drained(rm_proxy_stream_t *ps)
{
    if (ps->conn != NULL && ps->conn_ready)
        rm_upstream_conn_read_disable(ps->conn, false);
}
