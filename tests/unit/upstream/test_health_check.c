/* Active health checking: the threshold hysteresis (first check, healthy/unhealthy thresholds, an
 * unexpected response failing at once), expected status ranges, the `receive` body match, interval
 * selection and jitter, hex payloads, and the HTTP and TCP checkers against in-process servers on
 * loopback (status flips, body assertions, connection reuse, connect failures). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <unistd.h>

#include "core/clock.h"
#include "upstream/cluster.h"
#include "upstream/health_check.h"
#include "upstream/host.h"

static rm_health_check_config_t base_cfg(void)
{
    rm_health_check_config_t c;
    memset(&c, 0, sizeof(c));
    c.kind = RM_HEALTH_CHECK_HTTP;
    c.timeout_ms = 2000;
    c.interval_ms = 50;
    c.unhealthy_threshold = 3;
    c.healthy_threshold = 2;
    c.no_traffic_interval_ms = 50;
    c.reuse_connection = true;
    c.path = "/health";
    return c;
}

static bool failed(rm_host_t *h)
{
    return (atomic_load(&h->health_flags) & RM_HOST_FAILED_ACTIVE_HC) != 0;
}

static void test_hysteresis(void **state)
{
    (void)state;
    rm_health_check_config_t cfg = base_cfg();
    rm_host_t *h = rm_host_create("10.0.0.1", 80, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    rm_hc_state_t st;
    rm_hc_state_init(&st, h);
    assert_true(failed(h)); /* a new host waits for its first check */
    /* The first check decides on its own, whatever healthy_threshold says. */
    assert_true(rm_hc_state_apply(&st, h, &cfg, RM_HC_SUCCESS));
    assert_false(failed(h));
    /* Network failures need unhealthy_threshold in a row; a success in between restarts them. */
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_NETWORK));
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_NETWORK));
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_SUCCESS));
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_NETWORK));
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_NETWORK));
    assert_false(failed(h));
    assert_true(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_NETWORK));
    assert_true(failed(h));
    /* Back needs healthy_threshold successes in a row. */
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_SUCCESS));
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_ACTIVE));
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_SUCCESS));
    assert_true(failed(h));
    assert_true(rm_hc_state_apply(&st, h, &cfg, RM_HC_SUCCESS));
    assert_false(failed(h));
    /* An unexpected answer fails the host at once. */
    assert_true(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_ACTIVE));
    assert_true(failed(h));
    /* A first check that fails keeps the host failed; it then needs the full threshold. */
    rm_hc_state_init(&st, h);
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_NETWORK));
    assert_false(rm_hc_state_apply(&st, h, &cfg, RM_HC_SUCCESS));
    assert_true(rm_hc_state_apply(&st, h, &cfg, RM_HC_SUCCESS));
    /* Other flags are left alone. */
    atomic_fetch_or(&h->health_flags, RM_HOST_FAILED_EDS_HEALTH);
    assert_true(rm_hc_state_apply(&st, h, &cfg, RM_HC_FAILURE_ACTIVE));
    assert_int_equal(atomic_load(&h->health_flags), RM_HOST_FAILED_EDS_HEALTH | RM_HOST_FAILED_ACTIVE_HC);
    rm_host_unref(h);
}

static void test_expected_statuses(void **state)
{
    (void)state;
    rm_health_check_config_t cfg = base_cfg();
    assert_true(rm_hc_status_expected(&cfg, 200));
    assert_false(rm_hc_status_expected(&cfg, 204));
    assert_false(rm_hc_status_expected(&cfg, 503));
    rm_hc_status_range_t r[] = {{200, 300}, {404, 405}};
    cfg.expected_statuses = r;
    cfg.num_expected_statuses = 2;
    assert_true(rm_hc_status_expected(&cfg, 204));
    assert_true(rm_hc_status_expected(&cfg, 299));
    assert_false(rm_hc_status_expected(&cfg, 300));
    assert_true(rm_hc_status_expected(&cfg, 404));
    assert_false(rm_hc_status_expected(&cfg, 405));
}

static void test_receive_match(void **state)
{
    (void)state;
    rm_health_check_config_t cfg = base_cfg();
    const unsigned char body[] = "status: ok; version: 7";
    size_t n = sizeof(body) - 1;
    assert_true(rm_hc_receive_match(&cfg, body, n)); /* nothing to find */
    rm_hc_payload_t p[] = {{(unsigned char *)"ok", 2}, {(unsigned char *)"7", 1}};
    cfg.receive = p;
    cfg.num_receive = 2;
    assert_true(rm_hc_receive_match(&cfg, body, n));
    rm_hc_payload_t q[] = {{(unsigned char *)"7", 1}, {(unsigned char *)"ok", 2}};
    cfg.receive = q; /* in order only */
    assert_false(rm_hc_receive_match(&cfg, body, n));
    rm_hc_payload_t r[] = {{(unsigned char *)"ok", 2}, {(unsigned char *)"ok", 2}};
    cfg.receive = r; /* a block is consumed once */
    assert_false(rm_hc_receive_match(&cfg, body, n));
    assert_false(rm_hc_receive_match(&cfg, body, 0));
}

static void test_intervals(void **state)
{
    (void)state;
    rm_health_check_config_t cfg = base_cfg();
    cfg.interval_ms = 1000;
    cfg.no_traffic_interval_ms = 60000;
    cfg.unhealthy_interval_ms = 3000;
    rm_rng_t rng;
    rm_rng_seed(&rng, 7);
    assert_int_equal(rm_hc_next_interval_ms(&cfg, false, false, &rng), 60000);
    assert_int_equal(rm_hc_next_interval_ms(&cfg, false, true, &rng), 1000);
    assert_int_equal(rm_hc_next_interval_ms(&cfg, true, true, &rng), 3000);
    cfg.unhealthy_interval_ms = 0;
    assert_int_equal(rm_hc_next_interval_ms(&cfg, true, true, &rng), 1000);
    cfg.interval_jitter_ms = 100;
    cfg.interval_jitter_percent = 10;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t v = rm_hc_next_interval_ms(&cfg, false, true, &rng);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    assert_true(lo >= 1000 && hi < 1000 + 100 + 100);
    assert_true(hi > lo);
}

static void test_hex_payloads(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    size_t len = 0;
    const char *err = NULL;
    assert_int_equal(rm_config_hex_decode("50494e47", 8, &out, &len, &err), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "PING", 4);
    free(out);
    assert_int_equal(rm_config_hex_decode("00fF", 4, &out, &len, &err), 0);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 255);
    free(out);
    assert_int_equal(rm_config_hex_decode("abc", 3, &out, &len, &err), -1);
    assert_string_equal(err, "odd number of hex digits");
    assert_int_equal(rm_config_hex_decode("zz", 2, &out, &len, &err), -1);
    assert_int_equal(rm_config_hex_decode("", 0, &out, &len, &err), -1);
}

/* ---- against real sockets ---- */

typedef struct {
    int status;
    const char *body;
    int requests;
    int connections;
    struct evhttp_connection *last_conn;
    char last_host[64];
    char last_extra[64];
} server_t;

static void http_handler(struct evhttp_request *req, void *arg)
{
    server_t *s = arg;
    s->requests++;
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    if (c != s->last_conn) {
        s->connections++;
        s->last_conn = c;
    }
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "host");
    snprintf(s->last_host, sizeof(s->last_host), "%s", host ? host : "");
    const char *x = evhttp_find_header(evhttp_request_get_input_headers(req), "x-check");
    snprintf(s->last_extra, sizeof(s->last_extra), "%s", x ? x : "");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s", s->body);
    evhttp_send_reply(req, s->status, "x", b);
    evbuffer_free(b);
}

typedef struct {
    struct event_base *base;
    rm_cluster_shared_t *shared;
    rm_health_checker_t *hc;
    rm_host_t *host;
} run_t;

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Runs the loop until the host's failed flag equals `want` and at least `min_success` checks passed
 * (or 10 s pass, which fails the test). */
static void run_until(run_t *r, bool want_failed, uint64_t min_attempts)
{
    for (int i = 0; i < 2000; i++) {
        if (failed(r->host) == want_failed && RM_STAT_GET(r->shared->stats.hc.attempt) >= min_attempts)
            return;
        struct event *t = evtimer_new(r->base, stop_cb, r->base);
        struct timeval tv = {0, 5000};
        evtimer_add(t, &tv);
        event_base_dispatch(r->base);
        event_free(t);
    }
    fail_msg("health checker did not reach failed=%d", want_failed);
}

static uint16_t bound_port(struct evhttp_bound_socket *bs)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);
    return ntohs(sin.sin_port);
}

static void test_http_checker(void **state)
{
    (void)state;
    run_t r = {0};
    r.base = event_base_new();
    server_t srv = {.status = 200, .body = "all good"};
    struct evhttp *http = evhttp_new(r.base);
    evhttp_set_gencb(http, http_handler, &srv);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    assert_non_null(bs);
    r.host = rm_host_create("127.0.0.1", bound_port(bs), 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    r.shared = rm_cluster_shared_create("svc");
    rm_health_check_config_t cfg = base_cfg();
    cfg.unhealthy_threshold = 2;
    rm_hc_payload_t want[] = {{(unsigned char *)"good", 4}};
    cfg.receive = want;
    cfg.num_receive = 1;
    rm_hc_header_t hdr[] = {{"x-check", "yes"}};
    cfg.headers = hdr;
    cfg.num_headers = 1;
    cfg.host = "health.local";
    r.hc = rm_health_checker_create(r.base, rm_clock_system(), r.shared, &cfg);
    rm_health_checker_set_hosts(r.hc, &r.host, 1);
    assert_true(failed(r.host));
    run_until(&r, false, 1);
    assert_int_equal(RM_STAT_GET(r.shared->stats.hc.healthy), 1);
    assert_string_equal(srv.last_host, "health.local");
    assert_string_equal(srv.last_extra, "yes");
    /* Several checks over one kept connection. */
    run_until(&r, false, 4);
    assert_true(srv.requests >= 3);
    assert_int_equal(srv.connections, 1);
    /* A 503 fails the host on the first answer (no unhealthy_threshold for bad responses). */
    uint64_t failures = RM_STAT_GET(r.shared->stats.hc.failure);
    srv.status = 503;
    run_until(&r, true, 0);
    assert_int_equal(RM_STAT_GET(r.shared->stats.hc.failure), failures + 1);
    assert_int_equal(RM_STAT_GET(r.shared->stats.hc.healthy), 0);
    /* Back to 200 but the body lacks the expected text: still failed. */
    srv.status = 200;
    srv.body = "degraded";
    uint64_t at = RM_STAT_GET(r.shared->stats.hc.attempt);
    run_until(&r, true, at + 3);
    assert_true(failed(r.host));
    /* Good again: healthy_threshold (2) successes bring it back. */
    srv.body = "good";
    run_until(&r, false, 0);
    assert_true(RM_STAT_GET(r.shared->stats.hc.success) >= 3);
    /* The server goes away: network failures need unhealthy_threshold (2). */
    evhttp_free(http);
    run_until(&r, true, 0);
    assert_true(RM_STAT_GET(r.shared->stats.hc.network_failure) >= 2);
    rm_health_checker_destroy(r.hc);
    assert_false(failed(r.host)); /* no checker, no active-check verdict */
    rm_host_unref(r.host);
    rm_cluster_shared_unref(r.shared);
    event_base_free(r.base);
}

typedef struct {
    int accepted;
    int open;
    const char *reply;
} tcp_server_t;

static void tcp_read(struct bufferevent *bev, void *arg)
{
    tcp_server_t *t = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    char buf[64] = "";
    evbuffer_remove(in, buf, n < sizeof(buf) - 1 ? n : sizeof(buf) - 1);
    if (strstr(buf, "PING") != NULL)
        bufferevent_write(bev, t->reply, strlen(t->reply));
}

static void tcp_event(struct bufferevent *bev, short what, void *arg)
{
    tcp_server_t *t = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        bufferevent_free(bev);
        t->open--;
    }
}

static void tcp_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)sa;
    (void)len;
    tcp_server_t *t = arg;
    t->accepted++;
    t->open++;
    struct bufferevent *bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, tcp_read, NULL, tcp_event, t);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void test_tcp_checker(void **state)
{
    (void)state;
    run_t r = {0};
    r.base = event_base_new();
    tcp_server_t ts = {0, 0, "PONG"};
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l =
        evconnlistener_new_bind(r.base, tcp_accept, &ts, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(l);
    socklen_t slen = sizeof(sin);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &slen);
    /* The endpoint's own port is wrong; health_check_config points the checks at the listener. */
    r.host = rm_host_create("127.0.0.1", 1, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    memcpy(&r.host->hc_addr, &sin, sizeof(sin));
    r.host->hc_addr_len = sizeof(sin);
    r.shared = rm_cluster_shared_create("tcp");
    rm_health_check_config_t cfg = base_cfg();
    cfg.kind = RM_HEALTH_CHECK_TCP;
    cfg.path = NULL;
    cfg.unhealthy_threshold = 1;
    cfg.healthy_threshold = 1;
    cfg.send.data = (unsigned char *)"PING";
    cfg.send.len = 4;
    rm_hc_payload_t want[] = {{(unsigned char *)"PO", 2}, {(unsigned char *)"NG", 2}};
    cfg.receive = want;
    cfg.num_receive = 2;
    r.hc = rm_health_checker_create(r.base, rm_clock_system(), r.shared, &cfg);
    rm_health_checker_set_hosts(r.hc, &r.host, 1);
    run_until(&r, false, 3);
    assert_int_equal(ts.accepted, 1); /* the check connection is reused */
    ts.reply = "NOPE";
    run_until(&r, true, 0);
    ts.reply = "PONG";
    run_until(&r, false, 0);
    rm_health_checker_destroy(r.hc);
    /* The checker closed its connection: let the server side see it and free its end. */
    for (int i = 0; i < 1000 && ts.open > 0; i++)
        event_base_loop(r.base, EVLOOP_ONCE);
    assert_int_equal(ts.open, 0);
    evconnlistener_free(l);
    rm_host_unref(r.host);
    rm_cluster_shared_unref(r.shared);
    event_base_free(r.base);
}

/* ---- an h2c (prior knowledge) server for the HTTP/2 checker ---- */

typedef struct {
    int status;
    const char *body;
    int streams;
    int connections;
    char last_authority[64];
} h2_server_t;

typedef struct {
    h2_server_t *srv;
    struct bufferevent *bev;
    nghttp2_session *session;
    size_t body_off;
} h2_conn_t;

static ssize_t h2s_send(nghttp2_session *session, const uint8_t *data, size_t len, int flags, void *arg)
{
    (void)session;
    (void)flags;
    h2_conn_t *c = arg;
    bufferevent_write(c->bev, data, len);
    return (ssize_t)len;
}

static ssize_t h2s_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *source, void *arg)
{
    (void)session;
    (void)stream_id;
    (void)source;
    h2_conn_t *c = arg;
    size_t total = strlen(c->srv->body), n = total - c->body_off < len ? total - c->body_off : len;
    memcpy(buf, c->srv->body + c->body_off, n);
    c->body_off += n;
    if (c->body_off == total)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int h2s_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
    (void)session;
    (void)frame;
    (void)flags;
    h2_conn_t *c = arg;
    if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
        snprintf(c->srv->last_authority, sizeof(c->srv->last_authority), "%.*s", (int)valuelen, value);
    return 0;
}

static int h2s_frame(nghttp2_session *session, const nghttp2_frame *frame, void *arg)
{
    h2_conn_t *c = arg;
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    c->srv->streams++;
    char st[8];
    snprintf(st, sizeof(st), "%d", c->srv->status);
    nghttp2_nv hdrs[] = {{(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), NGHTTP2_NV_FLAG_NONE}};
    c->body_off = 0;
    nghttp2_data_provider dp = {.read_callback = h2s_body};
    nghttp2_submit_response(session, frame->hd.stream_id, hdrs, 1, &dp);
    return 0;
}

static void h2c_free(h2_conn_t *c)
{
    nghttp2_session_del(c->session);
    bufferevent_free(c->bev);
    c->srv->connections--;
    free(c);
}

static void h2c_read(struct bufferevent *bev, void *arg)
{
    h2_conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    ssize_t rc = nghttp2_session_mem_recv(c->session, evbuffer_pullup(in, -1), len);
    if (rc < 0) {
        h2c_free(c);
        return;
    }
    evbuffer_drain(in, (size_t)rc);
    nghttp2_session_send(c->session);
}

static void h2c_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        h2c_free(arg);
}

static int g_h2_accepted;

static void h2_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)sa;
    (void)len;
    h2_conn_t *c = calloc(1, sizeof(*c));
    c->srv = arg;
    c->srv->connections++;
    g_h2_accepted++;
    c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, h2s_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2s_frame);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2s_header);
    nghttp2_session_server_new(&c->session, cb, c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_session_send(c->session);
    bufferevent_setcb(c->bev, h2c_read, NULL, h2c_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void test_http2_checker(void **state)
{
    (void)state;
    run_t r = {0};
    r.base = event_base_new();
    h2_server_t srv = {.status = 200, .body = "h2 says ok"};
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l =
        evconnlistener_new_bind(r.base, h2_accept, &srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(l);
    socklen_t slen = sizeof(sin);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &slen);
    r.host = rm_host_create("127.0.0.1", ntohs(sin.sin_port), 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    r.shared = rm_cluster_shared_create("h2svc");
    rm_health_check_config_t cfg = base_cfg();
    cfg.http2 = true;
    cfg.unhealthy_threshold = 1;
    rm_hc_payload_t want[] = {{(unsigned char *)"ok", 2}};
    cfg.receive = want;
    cfg.num_receive = 1;
    rm_hc_header_t hdr[] = {{"X-Check", "yes"}};
    cfg.headers = hdr;
    cfg.num_headers = 1;
    r.hc = rm_health_checker_create(r.base, rm_clock_system(), r.shared, &cfg);
    g_h2_accepted = 0;
    rm_health_checker_set_hosts(r.hc, &r.host, 1);
    run_until(&r, false, 4);
    assert_true(srv.streams >= 3);
    assert_int_equal(g_h2_accepted, 1); /* every check a new stream on one connection */
    assert_string_equal(srv.last_authority, "h2svc");
    srv.status = 503;
    run_until(&r, true, 0);
    srv.status = 200;
    run_until(&r, false, 0);
    srv.body = "nothing good";
    run_until(&r, true, 0);
    assert_true(RM_STAT_GET(r.shared->stats.hc.network_failure) == 0);
    rm_health_checker_destroy(r.hc);
    for (int i = 0; i < 1000 && srv.connections > 0; i++)
        event_base_loop(r.base, EVLOOP_ONCE);
    assert_int_equal(srv.connections, 0);
    evconnlistener_free(l);
    rm_host_unref(r.host);
    rm_cluster_shared_unref(r.shared);
    event_base_free(r.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hysteresis),    cmocka_unit_test(test_expected_statuses),
        cmocka_unit_test(test_receive_match), cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_hex_payloads),  cmocka_unit_test(test_http_checker),
        cmocka_unit_test(test_tcp_checker),   cmocka_unit_test(test_http2_checker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
