#include "upstream/health_check.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/h1_body.h"
#include "http/h1_parser.h"

/* Envoy keeps the first 1 KiB of a check response body for `receive` matching. */
#define HC_BODY_KEEP  1024
#define HC_HEAD_MAX   (64u * 1024)
#define HC_HEADER_CAP 100

/* ---- pure parts (unit-tested) ---- */

void rm_hc_state_init(rm_hc_state_t *st, rm_host_t *h)
{
    memset(st, 0, sizeof(*st));
    st->first_check = true;
    atomic_fetch_or(&h->health_flags, RM_HOST_FAILED_ACTIVE_HC);
}

bool rm_hc_state_apply(rm_hc_state_t *st, rm_host_t *h, const rm_health_check_config_t *cfg, rm_hc_result_t r)
{
    bool failed = (atomic_load(&h->health_flags) & RM_HOST_FAILED_ACTIVE_HC) != 0;
    bool changed = false;
    if (r == RM_HC_SUCCESS) {
        st->num_unhealthy = 0;
        if (failed && (st->first_check || ++st->num_healthy >= cfg->healthy_threshold)) {
            atomic_fetch_and(&h->health_flags, ~(uint32_t)RM_HOST_FAILED_ACTIVE_HC);
            st->num_healthy = 0;
            changed = true;
        }
    } else {
        st->num_healthy = 0;
        if (!failed && (r == RM_HC_FAILURE_ACTIVE || ++st->num_unhealthy >= cfg->unhealthy_threshold)) {
            atomic_fetch_or(&h->health_flags, RM_HOST_FAILED_ACTIVE_HC);
            st->num_unhealthy = 0;
            changed = true;
        }
    }
    st->first_check = false;
    return changed;
}

bool rm_hc_status_expected(const rm_health_check_config_t *cfg, int status)
{
    if (cfg->num_expected_statuses == 0)
        return status == 200;
    for (size_t i = 0; i < cfg->num_expected_statuses; i++)
        if (status >= cfg->expected_statuses[i].start && status < cfg->expected_statuses[i].end)
            return true;
    return false;
}

bool rm_hc_receive_match(const rm_health_check_config_t *cfg, const unsigned char *data, size_t len)
{
    size_t pos = 0;
    for (size_t i = 0; i < cfg->num_receive; i++) {
        const unsigned char *p = cfg->receive[i].data;
        size_t plen = cfg->receive[i].len;
        bool found = false;
        while (!found && pos + plen <= len) {
            if (memcmp(data + pos, p, plen) == 0)
                found = true;
            else
                pos++;
        }
        if (!found)
            return false;
        pos += plen;
    }
    return true;
}

uint64_t rm_hc_next_interval_ms(const rm_health_check_config_t *cfg, bool host_failed, bool had_traffic,
                                rm_rng_t *rng)
{
    uint64_t base = cfg->interval_ms;
    if (!had_traffic)
        base = cfg->no_traffic_interval_ms ? cfg->no_traffic_interval_ms : 60000;
    else if (host_failed && cfg->unhealthy_interval_ms)
        base = cfg->unhealthy_interval_ms;
    uint64_t jitter = 0;
    if (cfg->interval_jitter_percent > 0 && base > 0) {
        uint64_t span = base * cfg->interval_jitter_percent / 100;
        if (span > 0)
            jitter += rm_rng_below(rng, span);
    }
    if (cfg->interval_jitter_ms > 0)
        jitter += rm_rng_below(rng, cfg->interval_jitter_ms);
    return base + jitter;
}

static bool bytes_eq(const unsigned char *a, size_t al, const unsigned char *b, size_t bl)
{
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static bool sz_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool rm_health_check_config_equal(const rm_health_check_config_t *a, const rm_health_check_config_t *b)
{
    if (a->kind != b->kind || a->timeout_ms != b->timeout_ms || a->interval_ms != b->interval_ms ||
        a->initial_jitter_ms != b->initial_jitter_ms || a->interval_jitter_ms != b->interval_jitter_ms ||
        a->interval_jitter_percent != b->interval_jitter_percent ||
        a->unhealthy_threshold != b->unhealthy_threshold || a->healthy_threshold != b->healthy_threshold ||
        a->unhealthy_interval_ms != b->unhealthy_interval_ms ||
        a->no_traffic_interval_ms != b->no_traffic_interval_ms ||
        a->reuse_connection != b->reuse_connection || a->http2 != b->http2 || !sz_eq(a->host, b->host) ||
        !sz_eq(a->path, b->path) || !sz_eq(a->method, b->method) || a->num_headers != b->num_headers ||
        a->num_expected_statuses != b->num_expected_statuses ||
        !bytes_eq(a->send.data, a->send.len, b->send.data, b->send.len) || a->num_receive != b->num_receive)
        return false;
    for (size_t i = 0; i < a->num_headers; i++)
        if (!sz_eq(a->headers[i].key, b->headers[i].key) || !sz_eq(a->headers[i].value, b->headers[i].value))
            return false;
    for (size_t i = 0; i < a->num_expected_statuses; i++)
        if (a->expected_statuses[i].start != b->expected_statuses[i].start ||
            a->expected_statuses[i].end != b->expected_statuses[i].end)
            return false;
    for (size_t i = 0; i < a->num_receive; i++)
        if (!bytes_eq(a->receive[i].data, a->receive[i].len, b->receive[i].data, b->receive[i].len))
            return false;
    return true;
}

static unsigned char *dup_bytes(const unsigned char *p, size_t n)
{
    if (p == NULL)
        return NULL;
    unsigned char *q = rm_malloc(n + 1);
    memcpy(q, p, n);
    q[n] = 0;
    return q;
}

static char *dup_str(const char *s)
{
    return s ? rm_strdup(s) : NULL;
}

static void config_copy(rm_health_check_config_t *dst, const rm_health_check_config_t *src)
{
    *dst = *src;
    dst->host = dup_str(src->host);
    dst->path = dup_str(src->path);
    dst->method = dup_str(src->method);
    dst->headers = rm_calloc(src->num_headers ? src->num_headers : 1, sizeof(rm_hc_header_t));
    for (size_t i = 0; i < src->num_headers; i++) {
        dst->headers[i].key = dup_str(src->headers[i].key);
        dst->headers[i].value = dup_str(src->headers[i].value);
    }
    dst->expected_statuses =
        rm_calloc(src->num_expected_statuses ? src->num_expected_statuses : 1, sizeof(rm_hc_status_range_t));
    if (src->num_expected_statuses)
        memcpy(dst->expected_statuses, src->expected_statuses,
               src->num_expected_statuses * sizeof(rm_hc_status_range_t));
    dst->send.data = dup_bytes(src->send.data, src->send.len);
    dst->receive = rm_calloc(src->num_receive ? src->num_receive : 1, sizeof(rm_hc_payload_t));
    for (size_t i = 0; i < src->num_receive; i++) {
        dst->receive[i].data = dup_bytes(src->receive[i].data, src->receive[i].len);
        dst->receive[i].len = src->receive[i].len;
    }
}

/* ---- sessions ---- */

typedef struct hc_session hc_session_t;

struct rm_health_checker {
    struct event_base *base;
    rm_clock_t *clock;
    rm_cluster_shared_t *shared;
    rm_health_check_config_t cfg;
    rm_outlier_detector_t *od;
    rm_rng_t rng;
    hc_session_t **sessions;
    size_t num_sessions;
};

struct hc_session {
    rm_health_checker_t *hc;
    rm_host_t *host; /* reference */
    rm_hc_state_t state;
    struct bufferevent *bev; /* the check connection; kept between checks when reusable */
    bool connected;
    bool in_flight;
    struct event *interval_timer;
    struct event *timeout_timer;
    /* response reading (HTTP) */
    bool head_done;
    int status;
    bool keep_alive;
    bool degraded;
    rm_h1_body_reader_t body;
    struct evbuffer *body_buf;
    /* TCP receive buffer */
    struct evbuffer *tcp_buf;
    /* HTTP/2 (prior knowledge): one session per check connection, one stream per check. The
     * callbacks only record; verdicts are taken after nghttp2 returns. */
    nghttp2_session *h2;
    int32_t h2_stream;
    bool h2_stream_done;
    uint32_t h2_stream_error;
    bool h2_goaway;
};

static void session_close_conn(hc_session_t *s)
{
    if (s->h2 != NULL) {
        nghttp2_session_del(s->h2);
        s->h2 = NULL;
    }
    if (s->bev != NULL) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    s->connected = false;
    if (s->head_done)
        rm_h1_body_reader_free(&s->body);
    s->head_done = false;
}

static void update_gauges(rm_health_checker_t *hc)
{
    int64_t healthy = 0, degraded = 0, members = 0;
    for (size_t i = 0; i < hc->num_sessions; i++) {
        uint32_t f = atomic_load(&hc->sessions[i]->host->health_flags);
        healthy += (f & RM_HOST_FAILED_ACTIVE_HC) == 0;
        degraded += (f & RM_HOST_DEGRADED_ACTIVE_HC) != 0;
        members += (f & RM_HOST_FAILURE_MASK) == 0;
    }
    atomic_store(&hc->shared->stats.hc.healthy, healthy);
    atomic_store(&hc->shared->stats.hc.degraded, degraded);
    atomic_store(&hc->shared->stats.membership_healthy, members);
}

static void schedule(hc_session_t *s, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(s->interval_timer, &tv);
}

static const char *result_str(rm_hc_result_t r)
{
    return r == RM_HC_SUCCESS          ? "passed"
           : r == RM_HC_FAILURE_ACTIVE ? "unexpected response"
                                       : "network failure";
}

/* Ends the check in flight with a verdict and schedules the next one. */
static void finish(hc_session_t *s, rm_hc_result_t r, const char *detail)
{
    rm_health_checker_t *hc = s->hc;
    s->in_flight = false;
    evtimer_del(s->timeout_timer);
    rm_cluster_hc_stats_t *st = &hc->shared->stats.hc;
    if (r == RM_HC_SUCCESS) {
        RM_STAT_INC(st->success);
    } else {
        RM_STAT_INC(st->failure);
        if (r == RM_HC_FAILURE_NETWORK)
            RM_STAT_INC(st->network_failure);
    }
    bool keep = r == RM_HC_SUCCESS && hc->cfg.reuse_connection && s->keep_alive &&
                !(hc->cfg.kind == RM_HEALTH_CHECK_TCP && hc->cfg.send.data == NULL);
    if (!keep)
        session_close_conn(s);
    else if (s->head_done) {
        rm_h1_body_reader_free(&s->body);
        s->head_done = false;
    }
    uint32_t before = atomic_load(&s->host->health_flags);
    uint32_t deg = r == RM_HC_SUCCESS && s->degraded ? RM_HOST_DEGRADED_ACTIVE_HC : 0;
    bool changed = rm_hc_state_apply(&s->state, s->host, &hc->cfg, r);
    if (r == RM_HC_SUCCESS && (before & RM_HOST_DEGRADED_ACTIVE_HC) != deg) {
        if (deg)
            atomic_fetch_or(&s->host->health_flags, RM_HOST_DEGRADED_ACTIVE_HC);
        else
            atomic_fetch_and(&s->host->health_flags, ~(uint32_t)RM_HOST_DEGRADED_ACTIVE_HC);
        changed = true;
    }
    bool failed = (atomic_load(&s->host->health_flags) & RM_HOST_FAILED_ACTIVE_HC) != 0;
    bool had_traffic = RM_STAT_GET(hc->shared->stats.upstream_cx_total) > 0;
    uint64_t next = rm_hc_next_interval_ms(&hc->cfg, failed, had_traffic, &hc->rng);
    if (changed) {
        atomic_fetch_add_explicit(&hc->shared->health_epoch, 1, memory_order_release);
        update_gauges(hc);
        if (failed)
            RM_LOG_WARN("cluster %s: host %s failed active health check (%s%s%s); next check in %llu ms",
                        hc->shared->name, s->host->address_str, result_str(r), detail ? ": " : "",
                        detail ? detail : "", (unsigned long long)next);
        else
            RM_LOG_INFO("cluster %s: host %s passed active health check%s; next check in %llu ms",
                        hc->shared->name, s->host->address_str, deg ? " (degraded)" : "",
                        (unsigned long long)next);
    }
    if (r == RM_HC_SUCCESS && hc->od != NULL)
        rm_outlier_detector_on_active_hc_success(hc->od, s->host);
    schedule(s, next);
}

/* ---- HTTP/2 ---- */

static ssize_t h2_send_cb(nghttp2_session *session, const uint8_t *data, size_t len, int flags, void *arg)
{
    (void)session;
    (void)flags;
    hc_session_t *s = arg;
    if (s->bev == NULL || bufferevent_write(s->bev, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static int h2_header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
    (void)session;
    (void)flags;
    hc_session_t *s = arg;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != s->h2_stream)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 4; i++)
            st = value[i] >= '0' && value[i] <= '9' ? st * 10 + (value[i] - '0') : -1000;
        if (st >= 200 || s->status == 0) /* a final status replaces an informational one */
            s->status = st;
    } else if (namelen == 16 && memcmp(name, "x-envoy-degraded", 16) == 0) {
        s->degraded = true;
    }
    return 0;
}

static int h2_data_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                      size_t len, void *arg)
{
    (void)session;
    (void)flags;
    hc_session_t *s = arg;
    if (stream_id != s->h2_stream)
        return 0;
    size_t have = evbuffer_get_length(s->body_buf);
    if (have < HC_BODY_KEEP)
        evbuffer_add(s->body_buf, data, len < HC_BODY_KEEP - have ? len : HC_BODY_KEEP - have);
    return 0;
}

static int h2_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *arg)
{
    (void)session;
    hc_session_t *s = arg;
    if (stream_id == s->h2_stream) {
        s->h2_stream_done = true;
        s->h2_stream_error = error_code;
    }
    return 0;
}

static int h2_frame_cb(nghttp2_session *session, const nghttp2_frame *frame, void *arg)
{
    (void)session;
    hc_session_t *s = arg;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        s->h2_goaway = true; /* no new streams here: the next check reconnects */
    return 0;
}

static int h2_open(hc_session_t *s)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cb, h2_send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_close_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_frame_cb);
    int rc = nghttp2_session_client_new(&s->h2, cb, s);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        s->h2 = NULL;
        return -1;
    }
    s->h2_goaway = false;
    return nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, NULL, 0) == 0 ? 0 : -1;
}

static nghttp2_nv nv(const char *name, const char *value)
{
    nghttp2_nv v = {(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE};
    return v;
}

/* Sends the check as a new stream; false when the session cannot take it. */
static bool h2_send_check(hc_session_t *s, const char *host)
{
    const rm_health_check_config_t *c = &s->hc->cfg;
    if ((s->h2 == NULL && h2_open(s) != 0) || s->h2_goaway)
        return false;
    size_t n = 0;
    nghttp2_nv *hdrs = rm_calloc(5 + c->num_headers, sizeof(nghttp2_nv));
    char **lower = rm_calloc(c->num_headers ? c->num_headers : 1, sizeof(char *));
    hdrs[n++] = nv(":method", c->method ? c->method : "GET");
    hdrs[n++] = nv(":scheme", "http");
    hdrs[n++] = nv(":authority", host);
    hdrs[n++] = nv(":path", c->path);
    hdrs[n++] = nv("user-agent", "Remora/HC");
    for (size_t i = 0; i < c->num_headers; i++) {
        lower[i] = rm_strdup(c->headers[i].key); /* HTTP/2 field names are lower case */
        for (char *p = lower[i]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        hdrs[n++] = nv(lower[i], c->headers[i].value);
    }
    s->h2_stream_done = false;
    s->h2_stream_error = 0;
    s->h2_stream = nghttp2_submit_request(s->h2, NULL, hdrs, n, NULL, s);
    for (size_t i = 0; i < c->num_headers; i++)
        free(lower[i]);
    free(lower);
    free(hdrs);
    return s->h2_stream > 0 && nghttp2_session_send(s->h2) == 0;
}

/* Feeds what arrived to the session and judges the check once its stream closed. */
static void read_h2(hc_session_t *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t len = evbuffer_get_length(in);
    const uint8_t *p = evbuffer_pullup(in, -1);
    ssize_t rc = len ? nghttp2_session_mem_recv(s->h2, p, len) : 0;
    if (rc >= 0)
        evbuffer_drain(in, (size_t)rc);
    if (rc < 0 || nghttp2_session_send(s->h2) != 0) {
        s->keep_alive = false;
        finish(s, RM_HC_FAILURE_NETWORK, "HTTP/2 protocol error");
        return;
    }
    if (!s->h2_stream_done)
        return;
    s->keep_alive = !s->h2_goaway;
    char why[96];
    if (s->h2_stream_error != 0 || s->status <= 0) {
        snprintf(why, sizeof(why), "HTTP/2 stream reset (%s)", nghttp2_http2_strerror(s->h2_stream_error));
        finish(s, RM_HC_FAILURE_NETWORK, why);
    } else if (!rm_hc_status_expected(&s->hc->cfg, s->status)) {
        snprintf(why, sizeof(why), "status %d", s->status);
        finish(s, RM_HC_FAILURE_ACTIVE, why);
    } else if (!rm_hc_receive_match(&s->hc->cfg, evbuffer_pullup(s->body_buf, -1),
                                    evbuffer_get_length(s->body_buf))) {
        finish(s, RM_HC_FAILURE_ACTIVE, "response body does not match receive");
    } else {
        finish(s, RM_HC_SUCCESS, NULL);
    }
}

static void send_check(hc_session_t *s)
{
    const rm_health_check_config_t *c = &s->hc->cfg;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    s->degraded = false;
    s->keep_alive = true;
    if (c->kind == RM_HEALTH_CHECK_TCP) {
        if (s->tcp_buf == NULL)
            s->tcp_buf = evbuffer_new();
        evbuffer_drain(s->tcp_buf, evbuffer_get_length(s->tcp_buf));
        if (c->send.data == NULL && c->num_receive == 0) {
            finish(s, RM_HC_SUCCESS, NULL); /* connect-only check */
            return;
        }
        if (c->send.data != NULL)
            evbuffer_add(out, c->send.data, c->send.len);
        if (c->num_receive == 0)
            finish(s, RM_HC_SUCCESS, NULL);
        return;
    }
    if (s->body_buf == NULL)
        s->body_buf = evbuffer_new();
    evbuffer_drain(s->body_buf, evbuffer_get_length(s->body_buf));
    const char *host = c->host && c->host[0] ? c->host : s->hc->shared->name;
    if (c->http2) {
        if (!h2_send_check(s, host)) {
            s->keep_alive = false;
            finish(s, RM_HC_FAILURE_NETWORK, "HTTP/2 session unusable");
        }
        return;
    }
    evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nhost: %s\r\nuser-agent: Remora/HC\r\n",
                        c->method ? c->method : "GET", c->path, host);
    for (size_t i = 0; i < c->num_headers; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", c->headers[i].key, c->headers[i].value);
    if (!c->reuse_connection)
        evbuffer_add_printf(out, "connection: close\r\n");
    evbuffer_add(out, "\r\n", 2);
}

/* Reads as much of the HTTP response as arrived; returns true when the check finished. */
static bool read_http(hc_session_t *s, bool eof)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    if (!s->head_done) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return false;
        size_t take = len < HC_HEAD_MAX ? len : HC_HEAD_MAX;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
        rm_h1_header_t hdrs[HC_HEADER_CAP];
        rm_h1_response_t resp;
        rm_h1_limits_t lim;
        rm_h1_limits_default(&lim);
        lim.max_header_bytes = HC_HEAD_MAX;
        int n = rm_h1_parse_response(p, take, &lim,
                                     strcmp(s->hc->cfg.method ? s->hc->cfg.method : "GET", "HEAD") == 0, hdrs,
                                     HC_HEADER_CAP, &resp);
        if (n == RM_H1_INCOMPLETE) {
            if (eof) {
                finish(s, RM_HC_FAILURE_NETWORK, "connection closed before the response head");
                return true;
            }
            return false;
        }
        if (n == RM_H1_ERROR) {
            char why[96];
            snprintf(why, sizeof(why), "malformed response: %s", resp.error ? resp.error : "?");
            s->keep_alive = false;
            finish(s, RM_HC_FAILURE_ACTIVE, why);
            return true;
        }
        if (resp.status < 200) { /* 1xx: skip it and wait for the final response */
            evbuffer_drain(in, (size_t)n);
            return read_http(s, eof);
        }
        s->status = resp.status;
        s->keep_alive = resp.keep_alive;
        for (size_t i = 0; i < resp.num_headers; i++)
            if (hdrs[i].name_len == 16 && strncasecmp(hdrs[i].name, "x-envoy-degraded", 16) == 0)
                s->degraded = true;
        rm_h1_body_reader_init(&s->body, resp.body_kind, resp.content_length, &lim);
        s->head_done = true;
        evbuffer_drain(in, (size_t)n);
    }
    const char *err = NULL;
    struct evbuffer *tmp = evbuffer_new();
    int rc = rm_h1_body_reader_read(&s->body, in, tmp, 1u << 20, eof, &err);
    size_t have = evbuffer_get_length(s->body_buf);
    if (have < HC_BODY_KEEP)
        evbuffer_remove_buffer(tmp, s->body_buf, HC_BODY_KEEP - have);
    evbuffer_free(tmp);
    if (rc != 0) {
        s->keep_alive = false;
        finish(s, RM_HC_FAILURE_NETWORK, err);
        return true;
    }
    if (!s->body.done)
        return false;
    char why[96];
    if (!rm_hc_status_expected(&s->hc->cfg, s->status)) {
        snprintf(why, sizeof(why), "status %d", s->status);
        finish(s, RM_HC_FAILURE_ACTIVE, why);
        return true;
    }
    size_t blen = evbuffer_get_length(s->body_buf);
    const unsigned char *b = evbuffer_pullup(s->body_buf, -1);
    if (!rm_hc_receive_match(&s->hc->cfg, b, blen)) {
        finish(s, RM_HC_FAILURE_ACTIVE, "response body does not match receive");
        return true;
    }
    finish(s, RM_HC_SUCCESS, NULL);
    return true;
}

static void read_tcp(hc_session_t *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    evbuffer_add_buffer(s->tcp_buf, in);
    size_t len = evbuffer_get_length(s->tcp_buf);
    if (len > HC_HEAD_MAX) {
        s->keep_alive = false;
        finish(s, RM_HC_FAILURE_ACTIVE, "too much data without a match");
        return;
    }
    const unsigned char *p = evbuffer_pullup(s->tcp_buf, -1);
    if (rm_hc_receive_match(&s->hc->cfg, p, len))
        finish(s, RM_HC_SUCCESS, NULL);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    hc_session_t *s = arg;
    if (!s->in_flight) {
        if (s->h2 != NULL) {
            /* An idle HTTP/2 connection still carries control frames (SETTINGS, PING). */
            struct evbuffer *in = bufferevent_get_input(s->bev);
            size_t len = evbuffer_get_length(in);
            ssize_t rc = nghttp2_session_mem_recv(s->h2, evbuffer_pullup(in, -1), len);
            if (rc >= 0)
                evbuffer_drain(in, (size_t)rc);
            if (rc < 0 || nghttp2_session_send(s->h2) != 0 || s->h2_goaway)
                session_close_conn(s);
            return;
        }
        /* Unsolicited bytes on an idle connection: it cannot be trusted for the next check. */
        session_close_conn(s);
        return;
    }
    if (s->hc->cfg.kind == RM_HEALTH_CHECK_TCP)
        read_tcp(s);
    else if (s->hc->cfg.http2)
        read_h2(s);
    else
        read_http(s, false);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    hc_session_t *s = arg;
    if (what & BEV_EVENT_CONNECTED) {
        s->connected = true;
        if (s->in_flight)
            send_check(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!s->in_flight) {
            session_close_conn(s); /* the server closed an idle kept connection */
            return;
        }
        s->keep_alive = false;
        if (s->hc->cfg.kind == RM_HEALTH_CHECK_HTTP && !s->hc->cfg.http2 && s->connected &&
            (what & BEV_EVENT_EOF)) {
            if (read_http(s, true))
                return;
        }
        finish(s, RM_HC_FAILURE_NETWORK, s->connected ? "connection closed" : "connect failed");
    }
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hc_session_t *s = arg;
    if (!s->in_flight)
        return;
    s->keep_alive = false;
    finish(s, RM_HC_FAILURE_NETWORK, "timeout");
}

static void start_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hc_session_t *s = arg;
    rm_health_checker_t *hc = s->hc;
    RM_STAT_INC(hc->shared->stats.hc.attempt);
    s->in_flight = true;
    s->status = 0;
    uint64_t ms = hc->cfg.timeout_ms ? hc->cfg.timeout_ms : 1000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(s->timeout_timer, &tv);
    if (s->bev != NULL && s->connected) {
        send_check(s);
        return;
    }
    session_close_conn(s);
    s->bev = bufferevent_socket_new(hc->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    const rm_host_t *h = s->host;
    const struct sockaddr *sa = (const struct sockaddr *)(h->hc_addr_len ? &h->hc_addr : &h->addr);
    int len = (int)(h->hc_addr_len ? h->hc_addr_len : h->addr_len);
    if (bufferevent_socket_connect(s->bev, sa, len) != 0) {
        /* Immediate failure (no route, no descriptors): judged like any connect error. */
        finish(s, RM_HC_FAILURE_NETWORK, "connect failed");
    }
}

static hc_session_t *session_new(rm_health_checker_t *hc, rm_host_t *h)
{
    hc_session_t *s = RM_NEW(hc_session_t);
    s->hc = hc;
    s->host = rm_host_ref(h);
    rm_hc_state_init(&s->state, h);
    if (hc->base != NULL) {
        s->interval_timer = evtimer_new(hc->base, start_check, s);
        s->timeout_timer = evtimer_new(hc->base, timeout_cb, s);
        uint64_t first =
            hc->cfg.initial_jitter_ms ? rm_rng_below(&hc->rng, hc->cfg.initial_jitter_ms + 1) : 0;
        schedule(s, first);
    }
    return s;
}

static void session_free(hc_session_t *s, bool clear_flags)
{
    session_close_conn(s);
    if (s->interval_timer)
        event_free(s->interval_timer);
    if (s->timeout_timer)
        event_free(s->timeout_timer);
    if (s->body_buf)
        evbuffer_free(s->body_buf);
    if (s->tcp_buf)
        evbuffer_free(s->tcp_buf);
    if (clear_flags)
        atomic_fetch_and(&s->host->health_flags,
                         ~(uint32_t)(RM_HOST_FAILED_ACTIVE_HC | RM_HOST_DEGRADED_ACTIVE_HC));
    rm_host_unref(s->host);
    free(s);
}

rm_health_checker_t *rm_health_checker_create(struct event_base *base, rm_clock_t *clock,
                                              rm_cluster_shared_t *shared,
                                              const rm_health_check_config_t *cfg)
{
    rm_health_checker_t *hc = RM_NEW(rm_health_checker_t);
    hc->base = base;
    hc->clock = clock;
    hc->shared = rm_cluster_shared_ref(shared);
    config_copy(&hc->cfg, cfg);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rm_rng_seed(&hc->rng, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 24) ^ (uintptr_t)hc);
    return hc;
}

const rm_health_check_config_t *rm_health_checker_config(const rm_health_checker_t *hc)
{
    return &hc->cfg;
}

void rm_health_checker_set_outlier(rm_health_checker_t *hc, rm_outlier_detector_t *od)
{
    hc->od = od;
}

void rm_health_checker_set_hosts(rm_health_checker_t *hc, rm_host_t *const *hosts, size_t n)
{
    hc_session_t **next = rm_calloc(n ? n : 1, sizeof(hc_session_t *));
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < hc->num_sessions; k++) {
            if (hc->sessions[k] != NULL && hc->sessions[k]->host == hosts[i]) {
                next[i] = hc->sessions[k];
                hc->sessions[k] = NULL;
                break;
            }
        }
        if (next[i] == NULL)
            next[i] = session_new(hc, hosts[i]);
    }
    for (size_t k = 0; k < hc->num_sessions; k++)
        if (hc->sessions[k] != NULL)
            session_free(hc->sessions[k], false); /* the host left the cluster */
    free(hc->sessions);
    hc->sessions = next;
    hc->num_sessions = n;
    atomic_fetch_add_explicit(&hc->shared->health_epoch, 1, memory_order_release);
    update_gauges(hc);
}

void rm_health_checker_destroy(rm_health_checker_t *hc)
{
    if (hc == NULL)
        return;
    for (size_t k = 0; k < hc->num_sessions; k++)
        session_free(hc->sessions[k], true);
    free(hc->sessions);
    atomic_store(&hc->shared->stats.hc.healthy, 0);
    atomic_store(&hc->shared->stats.hc.degraded, 0);
    atomic_fetch_add_explicit(&hc->shared->health_epoch, 1, memory_order_release);
    rm_cluster_shared_unref(hc->shared);
    rm_health_check_config_free(&hc->cfg);
    free(hc);
}
