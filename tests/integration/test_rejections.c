/* Request rejections through a raw socket: each malformed or unsupported request gets its status
 * with Connection: close, the proxy closes the connection, and nothing reaches the upstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static harness_remora_t *g_remora;
static int g_port;
static int g_u1;

static int group_setup(void **state)
{
    g_u1 = harness_start_upstream("u1", NULL);
    if (g_u1 < 0)
        return -1;
    char *cluster = harness_yaml_cluster("backend", &g_u1, 1, NULL);
    harness_listener_spec_t listener = {.hcm_extra = "max_request_headers_kb: 32"};
    char *yaml = harness_yaml_bootstrap(&listener, 1, &cluster, 1);
    free(cluster);
    g_remora = harness_start_remora(yaml, NULL);
    free(yaml);
    if (g_remora == NULL)
        return -1;
    g_port = harness_listener_port(g_remora, "ingress");
    return g_port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    harness_kill_all();
    return 0;
}

/* Requests the upstream has received so far (asked directly, not through the proxy). */
static long upstream_requests(void)
{
    char *url = harness_fmt("http://127.0.0.1:%d/stats", g_u1);
    harness_resp_t resp;
    long n = -1;
    if (harness_http_get(url, &resp) == 0 && resp.status == 200) {
        const char *p = strstr(resp.body, "requests ");
        if (p != NULL)
            n = atol(p + 9);
    }
    harness_resp_free(&resp);
    free(url);
    return n;
}

/* Sends `request` on a new connection and checks: the first response has one of the allowed
 * statuses (alt 0: only `status`), carries Connection: close, and the proxy closes the connection;
 * the upstream saw nothing. */
static void expect_rejection_len(const char *what, const char *request, size_t len, int status, int alt)
{
    long before = upstream_requests();
    IT_ASSERT(before >= 0, "cannot read the upstream's request count");
    harness_buf_t buf = {0};
    harness_read_result_t rr = harness_tcp_exchange(g_port, request, len, 5000, &buf);
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET,
              "%s: the proxy should close the connection after rejecting; read ended with %s after %zu "
              "bytes: %.200s",
              what, harness_read_result_str(rr), buf.len, buf.data ? buf.data : "");
    int got = harness_parse_status(buf.data);
    IT_ASSERT(got == status || (alt != 0 && got == alt), "%s: status %d, expected %d%s; response: %.300s",
              what, got, status, alt != 0 ? " (or the alternative)" : "", buf.data);
    harness_msg_t msg;
    long n = harness_parse_response(buf.data, buf.len, false, &msg);
    IT_ASSERT(n > 0, "%s: incomplete or malformed response: %.300s", what, buf.data);
    char *conn = harness_msg_header(&msg, "connection");
    IT_ASSERT(conn != NULL && strcasecmp(conn, "close") == 0,
              "%s: response should carry Connection: close (got %s)", what, conn ? conn : "none");
    IT_ASSERT((size_t)n == buf.len, "%s: %zu unexpected bytes after the rejection: %.100s", what,
              buf.len - (size_t)n, buf.data + n);
    free(conn);
    harness_msg_free(&msg);
    harness_buf_free(&buf);
    long after = upstream_requests();
    IT_ASSERT(after == before + 1, /* +1: the /stats request itself */
              "%s: the rejected request reached the upstream (%ld requests before, %ld after)", what, before,
              after - 1);
}

static void expect_rejection(const char *what, const char *request, int status, int alt)
{
    expect_rejection_len(what, request, strlen(request), status, alt);
}

/* Sanity: the same connection set-up with a valid request is proxied. */
static void test_valid_request_passes(void **state)
{
    long before = upstream_requests();
    harness_buf_t buf = {0};
    const char *req = "GET /status/200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    harness_read_result_t rr = harness_tcp_exchange(g_port, req, strlen(req), 5000, &buf);
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET, "read: %s", harness_read_result_str(rr));
    IT_ASSERT(harness_parse_status(buf.data) == 200, "valid request: %.200s", buf.data);
    IT_ASSERT(upstream_requests() == before + 2, "the valid request should reach the upstream");
    harness_buf_free(&buf);
}

static void test_cl_and_te(void **state)
{
    expect_rejection(
        "Content-Length with Transfer-Encoding",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        400, 0);
}

static void test_duplicate_cl_differing(void **state)
{
    expect_rejection("two different Content-Length",
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                     400, 0);
    expect_rejection("Content-Length list with different values",
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", 400, 0);
}

static void test_te_not_ending_in_chunked(void **state)
{
    expect_rejection("Transfer-Encoding: chunked, gzip",
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
                     400, 0);
    expect_rejection("Transfer-Encoding: gzip",
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, 0);
}

static void test_obs_fold(void **state)
{
    expect_rejection("obs-fold", "GET /status/200 HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  continued\r\n\r\n",
                     400, 0);
}

static void test_space_before_colon(void **state)
{
    expect_rejection("space before colon", "GET /status/200 HTTP/1.1\r\nHost: x\r\nX-Foo : bar\r\n\r\n", 400,
                     0);
}

static void test_bare_cr(void **state)
{
    expect_rejection("bare CR in a header value",
                     "GET /status/200 HTTP/1.1\r\nHost: x\r\nX-Foo: a\rb\r\n\r\n", 400, 0);
    expect_rejection("bare CR as a line end", "GET /status/200 HTTP/1.1\r\nHost: x\rX-Foo: b\r\n\r\n", 400,
                     0);
}

static void test_invalid_header_name(void **state)
{
    expect_rejection("'@' in a header name", "GET /status/200 HTTP/1.1\r\nHost: x\r\nBad@Name: v\r\n\r\n",
                     400, 0);
    expect_rejection("'(' in a header name", "GET /status/200 HTTP/1.1\r\nHost: x\r\nX(y): v\r\n\r\n", 400,
                     0);
    expect_rejection("empty header name", "GET /status/200 HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400, 0);
}

static void test_missing_host(void **state)
{
    expect_rejection("HTTP/1.1 without Host", "GET /status/200 HTTP/1.1\r\nX-Foo: bar\r\n\r\n", 400, 0);
}

static void test_request_line_too_long(void **state)
{
    /* 20000-byte target: above the request-line limit (16 KiB), below max_request_headers_kb (32) */
    size_t n = 20000;
    char *target = malloc(n + 1);
    target[0] = '/';
    memset(target + 1, 'a', n - 1);
    target[n] = '\0';
    char *req = harness_fmt("GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    expect_rejection("request line over the limit", req, 414, 0);
    free(req);
    free(target);
}

static void test_headers_too_large(void **state)
{
    /* 40 headers of 1 KiB each: over max_request_headers_kb: 32 */
    char *req = harness_fmt("GET /status/200 HTTP/1.1\r\nHost: x\r\n");
    char value[1001];
    memset(value, 'v', 1000);
    value[1000] = '\0';
    for (int i = 0; i < 40; i++) {
        char *next = harness_fmt("%sX-Big-%02d: %s\r\n", req, i, value);
        free(req);
        req = next;
    }
    char *full = harness_fmt("%s\r\n", req);
    expect_rejection("headers over max_request_headers_kb", full, 431, 0);
    free(full);
    free(req);
}

static void test_connect_method(void **state)
{
    expect_rejection("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501, 0);
}

static void test_http2_version_in_h1(void **state)
{
    expect_rejection("HTTP/2.0 in an HTTP/1 request line", "GET /status/200 HTTP/2.0\r\nHost: x\r\n\r\n", 505,
                     400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_request_passes),
        cmocka_unit_test(test_cl_and_te),
        cmocka_unit_test(test_duplicate_cl_differing),
        cmocka_unit_test(test_te_not_ending_in_chunked),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_space_before_colon),
        cmocka_unit_test(test_bare_cr),
        cmocka_unit_test(test_invalid_header_name),
        cmocka_unit_test(test_missing_host),
        cmocka_unit_test(test_request_line_too_long),
        cmocka_unit_test(test_headers_too_large),
        cmocka_unit_test(test_connect_method),
        cmocka_unit_test(test_http2_version_in_h1),
    };
    return cmocka_run_group_tests_name("rejections", tests, group_setup, group_teardown);
}
