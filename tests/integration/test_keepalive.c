/* Connection management: upstream connection pooling and reuse, pipelined requests answered in
 * order, the downstream idle timeout and the request headers timeout.
 *
 * remora --workers 1 with three listeners: "ingress" (defaults), "idle" (idle_timeout: 1s) and
 * "hdrs" (request_headers_timeout: 1s), all routed to one fresh upstream. The upstream numbers its
 * TCP connections (x-upstream-conn) and counts them (/stats), so reuse is observed from its side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static harness_remora_t *g_remora;
static int g_port, g_idle_port, g_hdrs_port;
static int g_u1;

static int group_setup(void **state)
{
    g_u1 = harness_start_upstream("pool", NULL);
    if (g_u1 < 0)
        return -1;
    char *cluster = harness_yaml_cluster("backend", &g_u1, 1, NULL);
    harness_listener_spec_t listeners[3] = {
        {.name = "ingress", .stat_prefix = "ingress_http"},
        {.name = "idle",
         .stat_prefix = "idle_http",
         .hcm_extra = "common_http_protocol_options: {idle_timeout: 1s}"},
        {.name = "hdrs", .stat_prefix = "hdrs_http", .hcm_extra = "request_headers_timeout: 1s"},
    };
    char *yaml = harness_yaml_bootstrap(listeners, 3, &cluster, 1);
    free(cluster);
    const char *args[] = {"--workers", "1", NULL};
    g_remora = harness_start_remora(yaml, args);
    free(yaml);
    if (g_remora == NULL)
        return -1;
    g_port = harness_listener_port(g_remora, "ingress");
    g_idle_port = harness_listener_port(g_remora, "idle");
    g_hdrs_port = harness_listener_port(g_remora, "hdrs");
    if (g_port < 0 || g_idle_port < 0 || g_hdrs_port < 0) {
        fprintf(stderr, "listeners ingress/idle/hdrs not all in /listeners\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    harness_kill_all();
    return 0;
}

/* Connections the upstream has accepted, asked directly (this query's own connection included). */
static long upstream_connections(void)
{
    char *url = harness_fmt("http://127.0.0.1:%d/stats", g_u1);
    harness_resp_t resp;
    long n = -1;
    if (harness_http_get(url, &resp) == 0 && resp.status == 200 &&
        strncmp(resp.body, "connections ", 12) == 0)
        n = atol(resp.body + 12);
    harness_resp_free(&resp);
    free(url);
    return n;
}

/* Must run first: the upstream has seen no connection yet. */
static void test_upstream_connection_reused_keepalive_client(void **state)
{
    harness_client_t *c = harness_client_new();
    char *url = harness_fmt("http://127.0.0.1:%d/status/200", g_port);
    char first_conn[32] = "";
    long downstream_connects = 0;
    for (int i = 0; i < 50; i++) {
        harness_req_t req = {.url = url};
        harness_resp_t resp;
        IT_ASSERT(harness_client_do(c, &req, &resp) == 0 && resp.status == 200, "request %d: status %ld %s",
                  i, resp.status, resp.error);
        downstream_connects += resp.num_connects;
        char *conn = harness_resp_header(&resp, "x-upstream-conn");
        IT_ASSERT(conn != NULL, "request %d: no x-upstream-conn", i);
        if (i == 0)
            snprintf(first_conn, sizeof(first_conn), "%s", conn ? conn : "");
        IT_ASSERT(strcmp(conn, first_conn) == 0,
                  "request %d went over upstream connection %s, the first over %s: the pool did not reuse it",
                  i, conn, first_conn);
        free(conn);
        harness_resp_free(&resp);
    }
    free(url);
    harness_client_free(c);
    IT_ASSERT(downstream_connects == 1, "the downstream keep-alive connection was not kept: %ld connects",
              downstream_connects);
    long up = upstream_connections();
    IT_ASSERT(up == 2, "the upstream accepted %ld connections: expected 1 from the proxy + 1 for this query",
              up - 1);
    IT_ASSERT(harness_wait_stat(g_remora->admin, "cluster.backend.upstream_cx_total", HARNESS_EQ, 1, 2000) ==
                  0,
              "cluster.backend.upstream_cx_total should be 1");
    IT_ASSERT(harness_wait_stat(g_remora->admin, "cluster.backend.upstream_rq_total", HARNESS_EQ, 50, 2000) ==
                  0,
              "cluster.backend.upstream_rq_total should be 50");
}

/* The pool belongs to the worker, not to a downstream connection. */
static void test_upstream_connection_reused_across_downstream_connections(void **state)
{
    uint64_t cx_before = 0;
    IT_ASSERT(harness_stat(g_remora->admin, "cluster.backend.upstream_cx_total", &cx_before) == 0,
              "cluster.backend.upstream_cx_total missing");
    char *url = harness_fmt("http://127.0.0.1:%d/status/200", g_port);
    char first_conn[32] = "";
    for (int i = 0; i < 20; i++) {
        harness_resp_t resp;
        IT_ASSERT(harness_http_get(url, &resp) == 0 && resp.status == 200, "request %d: status %ld %s", i,
                  resp.status, resp.error);
        char *conn = harness_resp_header(&resp, "x-upstream-conn");
        IT_ASSERT(conn != NULL, "request %d: no x-upstream-conn", i);
        if (i == 0)
            snprintf(first_conn, sizeof(first_conn), "%s", conn ? conn : "");
        IT_ASSERT(strcmp(conn, first_conn) == 0,
                  "request %d (new downstream connection) used upstream connection %s, "
                  "the first used %s",
                  i, conn, first_conn);
        free(conn);
        harness_resp_free(&resp);
    }
    free(url);
    uint64_t cx_after = 0;
    harness_stat(g_remora->admin, "cluster.backend.upstream_cx_total", &cx_after);
    IT_ASSERT(cx_after <= cx_before + 1, "20 sequential requests opened %llu upstream connections",
              (unsigned long long)(cx_after - cx_before));
}

static void test_pipelined_requests_answered_in_order(void **state)
{
    const char *pipeline = "GET /delay/300 HTTP/1.1\r\nHost: p\r\n\r\n"
                           "GET /status/201 HTTP/1.1\r\nHost: p\r\n\r\n"
                           "POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\nabc"
                           "GET /bytes/100000 HTTP/1.1\r\nHost: p\r\n\r\n"
                           "GET /status/404 HTTP/1.1\r\nHost: p\r\n\r\n"
                           "GET /headers HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n";
    harness_buf_t buf = {0};
    int64_t t0 = harness_now_ms();
    harness_read_result_t rr = harness_tcp_exchange(g_port, pipeline, strlen(pipeline), 10000, &buf);
    int64_t elapsed = harness_now_ms() - t0;
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET,
              "the connection should close after the last (Connection: close) response: %s after %zu bytes",
              harness_read_result_str(rr), buf.len);
    IT_ASSERT(elapsed >= 300, "the first response waits 300 ms, all came after %lld ms", (long long)elapsed);

    static const int want_status[] = {200, 201, 200, 200, 404, 200};
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        harness_msg_t m;
        long n = harness_parse_response(buf.data + off, buf.len - off, false, &m);
        IT_ASSERT(n > 0, "response %d missing or incomplete; got so far: %.300s", i, buf.data + off);
        IT_ASSERT(m.status == want_status[i], "response %d: status %d, expected %d", i, m.status,
                  want_status[i]);
        switch (i) {
        case 0:
            IT_ASSERT(m.body_len == 12 && memcmp(m.body, "delayed 300\n", 12) == 0, "response 0 body: %.*s",
                      (int)m.body_len, m.body);
            break;
        case 2:
            IT_ASSERT(m.body_len == 3 && memcmp(m.body, "abc", 3) == 0, "response 2 body: %.*s",
                      (int)m.body_len, m.body);
            break;
        case 3: {
            bool ok = m.body_len == 100000;
            for (size_t k = 0; ok && k < m.body_len; k++)
                ok = m.body[k] == (char)('a' + k % 26);
            IT_ASSERT(ok, "response 3: 100000 pattern bytes expected, got %zu bytes", m.body_len);
            break;
        }
        case 5:
            IT_ASSERT(m.body_len > 13 && memcmp(m.body, "GET /headers ", 13) == 0, "response 5 body: %.*s",
                      (int)m.body_len, m.body);
            break;
        default:
            break;
        }
        off += (size_t)n;
        harness_msg_free(&m);
    }
    IT_ASSERT(off == buf.len, "%zu extra bytes after the six responses: %.100s", buf.len - off,
              buf.data + off);
    harness_buf_free(&buf);
}

/* Reads one complete response from fd (appending to *buf). */
static void read_one_response(int fd, harness_buf_t *buf, harness_msg_t *m, const char *what)
{
    int64_t deadline = harness_now_ms() + 5000;
    memset(m, 0, sizeof(*m));
    for (;;) {
        long n = buf->data != NULL ? harness_parse_response(buf->data, buf->len, false, m) : 0;
        if (n > 0 && (m->has_content_length || m->chunked))
            return;
        harness_msg_free(m);
        int left = (int)(deadline - harness_now_ms());
        IT_ASSERT(left > 0, "%s: no complete response within 5 s (%zu bytes)", what, buf->len);
        harness_read_result_t rr = harness_tcp_read(fd, buf, NULL, buf->len + 1, left);
        IT_ASSERT(rr == HARNESS_READ_MATCH, "%s: read ended with %s after %zu bytes", what,
                  harness_read_result_str(rr), buf->len);
    }
}

static void test_idle_timeout_closes_idle_connection(void **state)
{
    int fd = harness_tcp_connect(g_idle_port, 2000);
    IT_ASSERT(fd >= 0, "connect to the idle listener");
    IT_ASSERT(harness_tcp_send(fd, "GET /status/200 HTTP/1.1\r\nHost: i\r\n\r\n", (size_t)-1) == 0, "send");
    harness_buf_t buf = {0};
    harness_msg_t m;
    read_one_response(fd, &buf, &m, "idle listener request");
    IT_ASSERT(m.status == 200, "status %d", m.status);
    harness_msg_free(&m);
    size_t seen = buf.len;
    int64_t t0 = harness_now_ms();
    harness_read_result_t rr = harness_tcp_read(fd, &buf, NULL, 0, 5000);
    int64_t idle_ms = harness_now_ms() - t0;
    close(fd);
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET,
              "the idle keep-alive connection should be closed after idle_timeout 1s; read ended with %s",
              harness_read_result_str(rr));
    IT_ASSERT(idle_ms >= 700 && idle_ms < 3000, "closed after %lld ms of idleness, idle_timeout is 1 s",
              (long long)idle_ms);
    IT_ASSERT(buf.len == seen || harness_parse_status(buf.data + seen) == 408,
              "unexpected bytes before the idle close: %.100s", buf.data + seen);
    harness_buf_free(&buf);
    IT_ASSERT(
        harness_wait_stat(g_remora->admin, "http.idle_http.downstream_cx_active", HARNESS_EQ, 0, 2000) == 0,
        "http.idle_http.downstream_cx_active should drop back to 0");
}

/* idle_timeout does not cut a connection whose request is in flight. */
static void test_idle_timeout_spares_active_request(void **state)
{
    char *url = harness_fmt("http://127.0.0.1:%d/delay/1500", g_idle_port);
    harness_resp_t resp;
    int rc = harness_http_get(url, &resp);
    free(url);
    IT_ASSERT(rc == 0 && resp.status == 200,
              "a 1.5 s request on a listener with idle_timeout 1s: status %ld, %s", resp.status, resp.error);
    harness_resp_free(&resp);
}

static void test_request_headers_timeout(void **state)
{
    int fd = harness_tcp_connect(g_hdrs_port, 2000);
    IT_ASSERT(fd >= 0, "connect to the hdrs listener");
    /* half a request: the head never ends */
    IT_ASSERT(harness_tcp_send(fd, "GET /status/200 HTTP/1.1\r\nHost: h\r\nX-Partial: yes\r\n", (size_t)-1) ==
                  0,
              "send");
    harness_buf_t buf = {0};
    int64_t t0 = harness_now_ms();
    harness_read_result_t rr = harness_tcp_read(fd, &buf, NULL, 0, 5000);
    int64_t ms = harness_now_ms() - t0;
    close(fd);
    IT_ASSERT(
        rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET,
        "with request_headers_timeout 1s an unfinished head should get the connection closed; read ended "
        "with %s",
        harness_read_result_str(rr));
    IT_ASSERT(ms >= 700 && ms < 3000, "closed after %lld ms, request_headers_timeout is 1 s", (long long)ms);
    IT_ASSERT(buf.len == 0 || harness_parse_status(buf.data) == 408,
              "only a 408 may be sent before closing, got: %.200s", buf.data);
    harness_buf_free(&buf);

    /* a complete request on the same listener is unaffected */
    char *url = harness_fmt("http://127.0.0.1:%d/status/200", g_hdrs_port);
    harness_resp_t resp;
    IT_ASSERT(harness_http_get(url, &resp) == 0 && resp.status == 200,
              "complete request on hdrs listener: %ld", resp.status);
    harness_resp_free(&resp);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_connection_reused_keepalive_client),
        cmocka_unit_test(test_upstream_connection_reused_across_downstream_connections),
        cmocka_unit_test(test_pipelined_requests_answered_in_order),
        cmocka_unit_test(test_idle_timeout_closes_idle_connection),
        cmocka_unit_test(test_idle_timeout_spares_active_request),
        cmocka_unit_test(test_request_headers_timeout),
    };
    return cmocka_run_group_tests_name("keepalive", tests, group_setup, group_teardown);
}
