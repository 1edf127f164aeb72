#include "http/proxy.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/retry.h"
#include "upstream/fail_fast.h"
#include "upstream/h1_pool.h"
#include "upstream/outlier.h"
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
    X(STREAM_IDLE_TIMEOUT, "SI")                                                                             \
    X(UPSTREAM_OVERFLOW, "UO")                                                                               \
    X(UPSTREAM_RETRY_LIMIT_EXCEEDED, "URX")

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

/* Hosts remembered for the previous_hosts retry predicate (more retries than this are rare; later
 * attempts then only avoid the first ones). */
#define RM_PROXY_MAX_TRIED 8

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

    /* The current upstream attempt. */
    rm_host_t *host;
    rm_upstream_conn_t *conn;
    rm_h1_pool_t *wait_pool; /* queued behind max_connections in this pool */
    bool conn_ready;
    bool pending;        /* waiting for a new upstream connection (Envoy's pending request) */
    bool attempt_active; /* host counters of the current attempt are open */
    bool ff_open;        /* the fail-fast admission of the current attempt awaits its outcome */
    rm_ff_admission_t ff;
    uint64_t attempt_start_ms;

    struct evbuffer *req_buf; /* request body not yet given to the current attempt's connection */
    rm_headers_t req_trailers;
    bool has_req_trailers;
    struct event *timeout_ev;
    struct event *idle_ev;    /* stream_idle_timeout: no bytes either way for this long */
    struct event *per_try_ev; /* retry_policy.per_try_timeout of the current attempt */
    struct event *retry_ev;   /* back-off before the next attempt */

    /* Retries (route retry_policy). retry_buf keeps every request body byte received so far so an
     * attempt can be replayed; it is dropped (and retries given up) past the buffer limit. */
    const rm_retry_policy_config_t *rp; /* NULL: no retries */
    struct evbuffer *retry_buf;
    uint32_t attempts; /* attempts started */
    uint32_t retries;  /* retries scheduled */
    bool retry_slot;   /* holds one of the cluster's max_retries */
    rm_host_t *tried[RM_PROXY_MAX_TRIED];
    size_t num_tried;
    uint64_t attempted_priorities;
    uint64_t excluded_priorities;

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
static bool start_attempt(rm_proxy_stream_t *ps, rm_tl_cluster_t *tc);
static void touch(rm_proxy_stream_t *ps);
static void arm_per_try_timeout(rm_proxy_stream_t *ps);

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

static void evtimer_arm_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* Appends a copy of src to dst (src is left as is). */
static void evbuffer_copy_into(struct evbuffer *dst, struct evbuffer *src)
{
    int n = evbuffer_peek(src, -1, NULL, NULL, 0);
    if (n <= 0)
        return;
    struct evbuffer_iovec small[8];
    struct evbuffer_iovec *v = n <= 8 ? small : rm_calloc((size_t)n, sizeof(*v));
    evbuffer_peek(src, -1, NULL, v, n);
    for (int i = 0; i < n; i++)
        evbuffer_add(dst, v[i].iov_base, v[i].iov_len);
    if (v != small)
        free(v);
}

/* ---- circuit breakers ---- */

static void gauge_set(rm_gauge_t *g, int64_t v)
{
    if (atomic_load_explicit(g, memory_order_relaxed) != v)
        atomic_store_explicit(g, v, memory_order_relaxed);
}

static void retry_slot_release(rm_proxy_stream_t *ps)
{
    if (!ps->retry_slot)
        return;
    ps->retry_slot = false;
    rm_cluster_shared_t *sh = ps->cluster->shared;
    int64_t left = atomic_fetch_sub_explicit(&sh->retries_active, 1, memory_order_relaxed) - 1;
    if (left < (int64_t)ps->cluster->cb.max_retries)
        gauge_set(&sh->stats.cb_default_rq_retry_open, 0);
}

/* ---- fail-fast breaker ---- */

static void ff_log_transition(rm_proxy_stream_t *ps, const char *what)
{
    const rm_fail_fast_config_t *cfg = &ps->cluster->fail_fast;
    rm_cluster_shared_t *sh = ps->cluster->shared;
    rm_ff_state_t st = rm_fail_fast_state(&sh->fail_fast);
    gauge_set(&sh->stats.ff_state, (int64_t)st);
    if (st == RM_FF_OPEN)
        RM_LOG_WARN("cluster %s: fail-fast breaker %s (last host %s); requests fail fast for %llu ms, then "
                    "%u probe(s)",
                    ps->cluster->name, what, ps->host ? ps->host->address_str : "-",
                    (unsigned long long)cfg->open_duration_ms, cfg->half_open_requests);
    else
        RM_LOG_INFO("cluster %s: fail-fast breaker %s", ps->cluster->name, what);
}

/* Reports the current attempt's outcome to the fail-fast breaker (once per attempt). */
static void ff_report(rm_proxy_stream_t *ps, bool failure)
{
    if (!ps->ff_open)
        return;
    ps->ff_open = false;
    rm_cluster_shared_t *sh = ps->cluster->shared;
    rm_ff_transition_t t = rm_fail_fast_report(&sh->fail_fast, &ps->cluster->fail_fast, &ps->ff, failure,
                                               rm_clock_now_ms(ps->worker->clock));
    if (t.opened) {
        RM_STAT_INC(sh->stats.ff_opened);
        ff_log_transition(ps, ps->ff.probe ? "reopened: a probe failed" : "opened");
    } else if (t.closed) {
        RM_STAT_INC(sh->stats.ff_closed);
        ff_log_transition(ps, "closed: probes succeeded");
    }
}

/* An attempt that ended without an outcome (the client left, a local decision): give its probe
 * back so the half-open round is not stuck waiting for it. */
static void ff_abandon(rm_proxy_stream_t *ps)
{
    if (!ps->ff_open)
        return;
    ps->ff_open = false;
    rm_fail_fast_release(&ps->cluster->shared->fail_fast, &ps->ff);
}

/* ---- attempts ---- */

/* Closes the current attempt's host counters. status: the upstream's response status, 0 when the
 * attempt failed without one (reset, connect failure, timeout). */
static void attempt_end(rm_proxy_stream_t *ps, int status)
{
    if (!ps->attempt_active)
        return;
    ps->attempt_active = false;
    if (ps->per_try_ev)
        evtimer_del(ps->per_try_ev);
    RM_STAT_DEC(ps->host->stats.rq_active);
    if (status >= 500 || status == 0)
        RM_STAT_INC(ps->host->stats.rq_error);
    else
        RM_STAT_INC(ps->host->stats.rq_success);
}

/* The current attempt ended without a response (connect failure, reset, timeout): outlier detection
 * and the fail-fast breaker hear of it, and its host counters close. No-op between attempts. */
static void attempt_failed(rm_proxy_stream_t *ps, rm_outlier_local_t why)
{
    rm_outlier_put_local(ps->cluster, ps->host, why);
    ff_report(ps, true);
    attempt_end(ps, 0);
}

static void detach_upstream(rm_proxy_stream_t *ps, bool abort)
{
    if (ps->wait_pool != NULL) {
        rm_h1_pool_cancel_wait(ps->wait_pool, ps);
        ps->wait_pool = NULL;
    }
    if (ps->conn == NULL)
        return;
    rm_upstream_conn_t *c = ps->conn;
    ps->conn = NULL;
    if (abort)
        rm_upstream_conn_abort(c);
    else
        rm_upstream_conn_release(c);
}

static void end_pending(rm_proxy_stream_t *ps)
{
    if (ps->pending) {
        ps->pending = false;
        RM_STAT_DEC(ps->cluster->shared->stats.upstream_rq_pending_active);
        if (RM_STAT_GET(ps->cluster->shared->stats.upstream_rq_pending_active) <
            (int64_t)ps->cluster->cb.max_pending_requests)
            gauge_set(&ps->cluster->shared->stats.cb_default_rq_pending_open, 0);
    }
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
    if (ps->per_try_ev)
        event_free(ps->per_try_ev);
    if (ps->retry_ev)
        event_free(ps->retry_ev);
    ps->per_try_ev = NULL;
    RM_STAT_DEC(st->downstream_rq_active);
    if (ps->status > 0)
        RM_STAT_STATUS_CLASS(st, downstream_rq_, ps->status);
    if (ps->cluster != NULL) {
        retry_slot_release(ps);
        if (ps->attempt_active) {
            /* The last attempt ends with the stream: it produced ps->status unless the client left. */
            if (call_done)
                ff_report(ps, ps->status >= 500 && !ps->cluster->fail_fast.ignore_5xx);
            attempt_end(ps, call_done ? ps->status : 0);
        }
        ff_abandon(ps);
        if (ps->upstream_rq_counted) {
            rm_cluster_shared_t *sh = ps->cluster->shared;
            RM_STAT_DEC(sh->stats.upstream_rq_active);
            RM_STAT_INC(sh->stats.upstream_rq_completed);
            if (RM_STAT_GET(sh->stats.upstream_rq_active) < (int64_t)ps->cluster->cb.max_requests)
                gauge_set(&sh->stats.cb_default_rq_open, 0);
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
    if (ps->retry_buf)
        evbuffer_free(ps->retry_buf);
    rm_headers_free(&ps->req_trailers);
    rm_request_head_free(&ps->req);
    free(ps->peer_addr);
    if (ps->snapshot)
        rm_snapshot_unref(ps->snapshot);
    free(ps);
    if (call_done)
        ops->stream_done(ds);
}

/* ---- retries ---- */

static void retry_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_proxy_stream_t *ps = arg;
    retry_slot_release(ps);
    /* Replay the whole body received so far to the next attempt. */
    evbuffer_drain(ps->req_buf, evbuffer_get_length(ps->req_buf));
    if (ps->retry_buf != NULL)
        evbuffer_copy_into(ps->req_buf, ps->retry_buf);
    start_attempt(ps, NULL);
}

/* Decides whether the failed attempt is retried; if so schedules the next one and returns true (the
 * caller must then leave the stream alone). The attempt's connection is already detached. */
static bool maybe_retry(rm_proxy_stream_t *ps, rm_retry_cause_t cause, int status)
{
    if (ps->rp == NULL || ps->resp_headers_sent || !rm_retry_retriable(ps->rp, cause, status))
        return false;
    rm_cluster_shared_t *sh = ps->cluster->shared;
    if (ps->retry_buf == NULL)
        return false; /* the body outgrew the retry buffer: it cannot be replayed */
    if (ps->retries >= ps->rp->num_retries) {
        RM_STAT_INC(sh->stats.upstream_rq_retry_limit_exceeded);
        ps->flags |= RF_UPSTREAM_RETRY_LIMIT_EXCEEDED;
        return false;
    }
    int64_t active = atomic_fetch_add_explicit(&sh->retries_active, 1, memory_order_relaxed);
    if (active >= (int64_t)ps->cluster->cb.max_retries) {
        atomic_fetch_sub_explicit(&sh->retries_active, 1, memory_order_relaxed);
        RM_STAT_INC(sh->stats.upstream_rq_retry_overflow);
        gauge_set(&sh->stats.cb_default_rq_retry_open, 1);
        ps->flags |= RF_UPSTREAM_OVERFLOW;
        return false;
    }
    if (active + 1 >= (int64_t)ps->cluster->cb.max_retries)
        gauge_set(&sh->stats.cb_default_rq_retry_open, 1);
    ps->retry_slot = true;
    ps->retries++;
    RM_STAT_INC(sh->stats.upstream_rq_retry);
    RM_STAT_INC(sh->stats.upstream_rq_retry_backoff_exponential);
    /* previous_priorities: after every update_frequency attempts, skip the levels tried so far. */
    if (ps->rp->previous_priorities) {
        uint32_t freq = ps->rp->priority_update_frequency ? ps->rp->priority_update_frequency : 1;
        if (ps->attempts % freq == 0)
            ps->excluded_priorities = ps->attempted_priorities;
    }
    rm_host_unref(ps->host);
    ps->host = NULL;
    ps->conn_ready = false;
    if (ps->retry_ev == NULL)
        ps->retry_ev = evtimer_new(ps->worker->base, retry_timer_cb, ps);
    evtimer_arm_ms(ps->retry_ev, rm_retry_backoff_ms(ps->rp, ps->retries, &ps->worker->rng));
    return true;
}

/* ---- upstream callbacks ---- */

static void flush_request_body(rm_proxy_stream_t *ps)
{
    size_t n = evbuffer_get_length(ps->req_buf);
    bool end = ps->req_complete && !ps->has_req_trailers;
    if (n > 0 || end)
        rm_upstream_conn_send_data(ps->conn, ps->req_buf, end);
    if (ps->req_complete && ps->has_req_trailers)
        rm_upstream_conn_send_trailers(ps->conn, &ps->req_trailers);
}

static void up_on_ready(void *ctx, rm_upstream_conn_t *conn)
{
    rm_proxy_stream_t *ps = ctx;
    end_pending(ps);
    ps->wait_pool = NULL;
    ps->conn = conn;
    ps->conn_ready = true;
    ps->upstream_start_ms = rm_clock_now_ms(ps->worker->clock);
    rm_outlier_put_local(ps->cluster, ps->host, RM_OUTLIER_LOCAL_CONNECT_SUCCESS);
    if (ps->route->include_request_attempt_count) {
        char n[16];
        int len = snprintf(n, sizeof(n), "%u", ps->attempts);
        rm_headers_set(&ps->req.headers, "x-envoy-attempt-count", n, (size_t)len);
    }
    bool has_body = !ps->req_complete || evbuffer_get_length(ps->req_buf) > 0 || ps->has_req_trailers;
    rm_upstream_conn_send_head(conn, &ps->req, has_body, !has_body);
    if (has_body)
        flush_request_body(ps);
    if (ps->req_paused && rm_upstream_conn_write_buffered(conn) < ps->info.buffer_limit) {
        ps->req_paused = false;
        ps->ops->read_disable(ps->ds, false);
    }
}

static void reset_reply(rm_proxy_stream_t *ps, int status, rm_upstream_reset_t reason, uint32_t flag)
{
    char body[160];
    snprintf(body, sizeof(body), "upstream connect error or disconnect/reset before headers. %s: %s",
             ps->retries > 0 ? "retried and the latest reset reason" : "reset reason",
             rm_upstream_reset_str(reason));
    local_reply(ps, status, body, flag);
}

static void up_on_pool_failure(void *ctx, rm_upstream_reset_t reason)
{
    rm_proxy_stream_t *ps = ctx;
    end_pending(ps);
    ps->wait_pool = NULL;
    ps->conn = NULL;
    attempt_failed(ps, reason == RM_UPSTREAM_RESET_CONNECT_TIMEOUT ? RM_OUTLIER_LOCAL_TIMEOUT
                                                                   : RM_OUTLIER_LOCAL_CONNECT_FAILED);
    if (maybe_retry(ps, RM_RETRY_CAUSE_CONNECT_FAILURE, 0))
        return;
    reset_reply(ps, 503, reason, RF_UPSTREAM_CONNECT_FAILURE);
}

static void up_on_response_headers(void *ctx, rm_response_head_t *head, bool end_stream)
{
    rm_proxy_stream_t *ps = ctx;
    touch(ps);
    uint64_t now = rm_clock_now_ms(ps->worker->clock);
    int64_t svc = (int64_t)(now - ps->upstream_start_ms);
    rm_cluster_t *c = ps->cluster;
    RM_STAT_STATUS_CLASS(&c->shared->stats, upstream_rq_, head->status);
    rm_outlier_put_http_status(c, ps->host, head->status);
    bool slow = c->fail_fast.slow_call_ms > 0 && (uint64_t)svc > c->fail_fast.slow_call_ms;
    ff_report(ps, slow || (head->status >= 500 && !c->fail_fast.ignore_5xx));
    if (ps->rp != NULL && rm_retry_retriable(ps->rp, RM_RETRY_CAUSE_STATUS, head->status)) {
        /* Drop this response and try again, if the policy still allows it. */
        attempt_end(ps, head->status);
        rm_upstream_conn_t *conn = ps->conn;
        ps->conn = NULL;
        if (maybe_retry(ps, RM_RETRY_CAUSE_STATUS, head->status)) {
            if (end_stream)
                rm_upstream_conn_release(conn);
            else
                rm_upstream_conn_abort(conn);
            return;
        }
        ps->conn = conn;
    } else if (ps->retries > 0) {
        RM_STAT_INC(c->shared->stats.upstream_rq_retry_success);
    }
    ps->upstream_svc_ms = svc;
    ps->status = head->status;
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)svc);
    rm_headers_set(&head->headers, "x-envoy-upstream-service-time", num, (size_t)n);
    if (ps->route->include_attempt_count_in_response) {
        n = snprintf(num, sizeof(num), "%u", ps->attempts);
        rm_headers_set(&head->headers, "x-envoy-attempt-count", num, (size_t)n);
    }
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
        attempt_failed(ps, RM_OUTLIER_LOCAL_CONNECT_FAILED);
        rm_retry_cause_t cause =
            reason == RM_UPSTREAM_RESET_REFUSED_STREAM ? RM_RETRY_CAUSE_REFUSED_STREAM : RM_RETRY_CAUSE_RESET;
        if (maybe_retry(ps, cause, 0))
            return;
        /* Like Envoy: 502 for a response that is not valid HTTP, 503 for a connection that broke. */
        reset_reply(ps, reason == RM_UPSTREAM_RESET_PROTOCOL_ERROR ? 502 : 503, reason, flag);
        return;
    }
    /* Broken after the response head, which the fail-fast breaker has already judged. */
    rm_outlier_put_local(ps->cluster, ps->host, RM_OUTLIER_LOCAL_CONNECT_FAILED);
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
    end_pending(ps);
    if (ps->cluster != NULL)
        attempt_failed(ps, RM_OUTLIER_LOCAL_TIMEOUT);
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
    evtimer_arm_ms(ps->timeout_ev, ps->route->timeout_ms);
}

static void per_try_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_proxy_stream_t *ps = arg;
    RM_STAT_INC(ps->cluster->shared->stats.upstream_rq_per_try_timeout);
    if (ps->host)
        RM_STAT_INC(ps->host->stats.rq_timeout);
    detach_upstream(ps, true);
    end_pending(ps);
    attempt_failed(ps, RM_OUTLIER_LOCAL_TIMEOUT);
    if (!ps->resp_headers_sent) {
        if (maybe_retry(ps, RM_RETRY_CAUSE_PER_TRY_TIMEOUT, 0))
            return;
        local_reply(ps, 504, "upstream request timeout", RF_UPSTREAM_REQUEST_TIMEOUT);
        return;
    }
    ps->flags |= RF_UPSTREAM_REQUEST_TIMEOUT;
    ps->ops->reset(ps->ds);
    stream_finish(ps, false);
}

/* The per-try timer starts once the request is complete and an attempt is under way (Envoy's
 * rule: the time spent receiving the request does not count against a try). */
static void arm_per_try_timeout(rm_proxy_stream_t *ps)
{
    if (ps->rp == NULL || ps->rp->per_try_timeout_ms == 0 || !ps->req_complete || !ps->attempt_active)
        return;
    if (ps->per_try_ev == NULL)
        ps->per_try_ev = evtimer_new(ps->worker->base, per_try_timeout_cb, ps);
    evtimer_arm_ms(ps->per_try_ev, ps->rp->per_try_timeout_ms);
}

static void stream_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_proxy_stream_t *ps = arg;
    detach_upstream(ps, true);
    end_pending(ps);
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
    evtimer_arm_ms(ps->idle_ev, ms);
}

/* ---- attempts ---- */

static void remember_attempt(rm_proxy_stream_t *ps, rm_host_t *h)
{
    if (ps->num_tried < RM_PROXY_MAX_TRIED)
        ps->tried[ps->num_tried++] = h; /* borrowed: the stream's snapshot keeps the host alive */
    uint32_t prio = atomic_load_explicit(&h->priority, memory_order_relaxed);
    if (prio < 64)
        ps->attempted_priorities |= 1ull << prio;
}

/* Picks a host and starts one upstream attempt (the first, or a retry after its back-off). tc is the
 * worker's entry for the cluster when the caller has just looked it up, else NULL. Returns false
 * when it answered locally and finished the stream (ps is freed). */
static bool start_attempt(rm_proxy_stream_t *ps, rm_tl_cluster_t *tc)
{
    rm_tlcm_t *tl = tlcm_of(ps->worker);
    rm_cluster_t *c = ps->cluster;
    rm_cluster_shared_t *sh = c->shared;
    /* A retry uses the worker's current version of the cluster (its LB and pools); the stream keeps
     * counting on the cluster it started with, which shares its stats. */
    if (tc == NULL)
        tc = rm_tlcm_get(tl, c->name, strlen(c->name));
    if (tc == NULL || tc->cluster->shared != sh) {
        RM_STAT_INC(ps->listener->stats.no_cluster);
        local_reply(ps, 503, "no cluster", RF_NO_CLUSTER_FOUND);
        return false;
    }
    uint64_t now = rm_clock_now_ms(ps->worker->clock);
    if (c->fail_fast.enabled) {
        ps->ff = rm_fail_fast_admit(&sh->fail_fast, &c->fail_fast, now);
        if (ps->ff.transition_to == RM_FF_HALF_OPEN)
            ff_log_transition(ps, "half-open: probing");
        if (!ps->ff.allowed) {
            RM_STAT_INC(sh->stats.ff_rejected);
            local_reply(ps, 503, "upstream fail-fast breaker open", RF_UPSTREAM_OVERFLOW);
            return false;
        }
        ps->ff_open = true;
    }
    bool avoid_hosts = ps->rp != NULL && ps->rp->previous_hosts;
    rm_lb_context_t lctx = {
        .tried = avoid_hosts ? ps->tried : NULL,
        .num_tried = avoid_hosts ? ps->num_tried : 0,
        .excluded_priorities = ps->excluded_priorities,
    };
    rm_host_t *h = tc->lb ? tc->lb->ops->pick(tc->lb, ps->attempts > 0 ? &lctx : NULL) : NULL;
    if (h == NULL) {
        ff_abandon(ps);
        RM_STAT_INC(sh->stats.upstream_cx_none_healthy);
        local_reply(ps, 503, "no healthy upstream", RF_NO_HEALTHY_UPSTREAM);
        return false;
    }
    rm_h1_pool_t *pool = rm_tlcm_pool(tl, tc->cluster, h);
    if (!rm_h1_pool_has_idle(pool) &&
        RM_STAT_GET(sh->stats.upstream_rq_pending_active) >= (int64_t)c->cb.max_pending_requests) {
        ff_abandon(ps);
        RM_STAT_INC(sh->stats.upstream_rq_pending_overflow);
        gauge_set(&sh->stats.cb_default_rq_pending_open, 1);
        ps->host = rm_host_ref(h);
        reset_reply(ps, 503, RM_UPSTREAM_RESET_OVERFLOW, RF_UPSTREAM_OVERFLOW);
        return false;
    }
    ps->host = rm_host_ref(h);
    ps->attempts++;
    if (ps->attempts > 1)
        RM_STAT_INC(sh->stats.upstream_rq_total);
    remember_attempt(ps, h);
    ps->attempt_active = true;
    ps->attempt_start_ms = now;
    RM_STAT_INC(h->stats.rq_total);
    RM_STAT_INC(h->stats.rq_active);
    touch(ps);
    arm_per_try_timeout(ps);
    bool ready = false;
    ps->conn = rm_h1_pool_acquire(pool, &upstream_cbs, ps, &ready);
    if (ready) {
        up_on_ready(ps, ps->conn);
        return true;
    }
    if (ps->conn == NULL)
        ps->wait_pool = pool;
    ps->pending = true;
    RM_STAT_INC(sh->stats.upstream_rq_pending_total);
    RM_STAT_INC(sh->stats.upstream_rq_pending_active);
    return true;
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
    rm_cluster_shared_t *sh = ps->cluster->shared;
    RM_STAT_INC(sh->stats.upstream_rq_total);
    /* max_requests: active requests of the cluster across all workers. */
    if (RM_STAT_GET(sh->stats.upstream_rq_active) >= (int64_t)ps->cluster->cb.max_requests) {
        RM_STAT_INC(sh->stats.upstream_rq_pending_overflow);
        gauge_set(&sh->stats.cb_default_rq_open, 1);
        reset_reply(ps, 503, RM_UPSTREAM_RESET_OVERFLOW, RF_UPSTREAM_OVERFLOW);
        return NULL;
    }
    RM_STAT_INC(sh->stats.upstream_rq_active);
    ps->upstream_rq_counted = true;
    const rm_retry_policy_config_t *rp = &ps->route->retry_policy;
    if (rp->set && rp->num_retries > 0 && rp->retry_on != 0) {
        ps->rp = rp;
        ps->retry_buf = evbuffer_new();
    }
    if (end_stream)
        arm_route_timeout(ps);
    return start_attempt(ps, tc) ? ps : NULL;
}

/* The limit on request body kept for replays: the route's per_request_buffer_limit_bytes, else the
 * connection's buffer limit (as Envoy does). */
static size_t retry_buffer_limit(const rm_proxy_stream_t *ps)
{
    uint32_t lim = ps->route->per_request_buffer_limit_bytes;
    return lim ? lim : ps->info.buffer_limit;
}

void rm_proxy_on_request_data(rm_proxy_stream_t *ps, struct evbuffer *data, bool end_stream)
{
    ps->bytes_received += evbuffer_get_length(data);
    touch(ps);
    if (ps->retry_buf != NULL) {
        if (evbuffer_get_length(ps->retry_buf) + evbuffer_get_length(data) > retry_buffer_limit(ps)) {
            /* Too big to replay: this request will not be retried. */
            evbuffer_free(ps->retry_buf);
            ps->retry_buf = NULL;
            RM_STAT_INC(ps->cluster->shared->stats.retry_or_shadow_abandoned);
        } else {
            evbuffer_copy_into(ps->retry_buf, data);
        }
    }
    if (end_stream) {
        ps->req_complete = true;
        arm_route_timeout(ps);
        arm_per_try_timeout(ps);
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
    arm_per_try_timeout(ps);
    /* Kept for a connection that is not ready yet and for replays. */
    rm_headers_free(&ps->req_trailers);
    rm_headers_append_all(&ps->req_trailers, trailers);
    ps->has_req_trailers = true;
    if (ps->conn_ready && ps->conn != NULL)
        rm_upstream_conn_send_trailers(ps->conn, trailers);
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
