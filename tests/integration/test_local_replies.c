/* Local replies: every error the proxy answers itself, with its status, access-log response flag
 * and stats counters; plus a proxied success and a proxied upstream 5xx for contrast.
 *
 * Upstream failure modes on loopback:
 *   refused   - a bound socket that does not listen (connect gets ECONNREFUSED)
 *   blackhole - a listener with backlog 0 whose accept queue is full (SYNs dropped: connect timeout)
 *   u1        - remora-test-upstream (/reset, /close-mid, /garbage, /delay/N)
 * Each request carries a unique x-request-id, which finds its access-log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static harness_remora_t *g_remora;
static int g_port;
static int g_u1;
static int g_refused_fd[1] = {-1};
static int g_refused_port;
static int g_blackhole_fds[2] = {-1, -1};
static int g_blackhole_port;
static char *g_access_log;
static unsigned g_seq;

static int group_setup(void **state)
{
    g_u1 = harness_start_upstream("u1", NULL);
    g_refused_port = harness_refused_port(g_refused_fd);
    g_blackhole_port = harness_blackhole_port(g_blackhole_fds);
    if (g_u1 < 0 || g_refused_port < 0 || g_blackhole_port < 0)
        return -1;
    g_access_log = harness_path("access.log");
    char *clusters[4] = {
        harness_yaml_cluster("backend", &g_u1, 1, NULL),
        harness_yaml_cluster("empty", NULL, 0, NULL),
        harness_yaml_cluster("refused", &g_refused_port, 1, NULL),
        harness_yaml_cluster("blackhole", &g_blackhole_port, 1, "0.5s"),
    };
    harness_listener_spec_t listener = {
        .access_log_path = g_access_log,
        .virtual_hosts = "[{name: all, domains: [\"*\"], routes: ["
                         " {match: {prefix: \"/nohost\"}, route: {cluster: empty}},"
                         " {match: {prefix: \"/refused\"}, route: {cluster: refused}},"
                         " {match: {prefix: \"/blackhole\"}, route: {cluster: blackhole, timeout: 5s}},"
                         " {match: {prefix: \"/delay/\"}, route: {cluster: backend, timeout: 1s}},"
                         " {match: {prefix: \"/reset\"}, route: {cluster: backend}},"
                         " {match: {prefix: \"/close-mid\"}, route: {cluster: backend}},"
                         " {match: {prefix: \"/garbage\"}, route: {cluster: backend}},"
                         " {match: {prefix: \"/status/\"}, route: {cluster: backend}}]}]",
    };
    char *yaml = harness_yaml_bootstrap(&listener, 1, clusters, 4);
    for (int i = 0; i < 4; i++)
        free(clusters[i]);
    const char *args[] = {"--workers", "1", NULL};
    g_remora = harness_start_remora(yaml, args);
    free(yaml);
    if (g_remora == NULL)
        return -1;
    g_port = harness_listener_port(g_remora, "ingress");
    return g_port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    harness_kill_all();
    harness_close_fds(g_refused_fd, 1);
    harness_close_fds(g_blackhole_fds, 2);
    free(g_access_log);
    return 0;
}

/* A stat's value, 0 when it does not exist (yet). */
static uint64_t stat_or_zero(const char *name)
{
    return harness_stat_or_zero(g_remora->admin, name);
}

static void expect_stat_delta(const char *name, uint64_t before, uint64_t delta)
{
    IT_ASSERT(harness_wait_stat(g_remora->admin, name, HARNESS_EQ, before + delta, 3000) == 0,
              "stat %s should go from %llu to %llu", name, (unsigned long long)before,
              (unsigned long long)(before + delta));
}

typedef struct {
    harness_resp_t resp;
    harness_access_entry_t log;
    char request_id[64];
    int64_t elapsed_ms;
} outcome_t;

/* GET path through the proxy with a fresh x-request-id, then find its access-log line. */
static void request_and_log(const char *path, outcome_t *o)
{
    snprintf(o->request_id, sizeof(o->request_id), "lr-%d-%u", (int)getpid(), ++g_seq);
    char *rid_header = harness_fmt("x-request-id: %s", o->request_id);
    const char *headers[] = {rid_header, NULL};
    char *url = harness_fmt("http://127.0.0.1:%d%s", g_port, path);
    harness_req_t req = {.url = url, .headers = headers, .timeout_ms = 8000};
    int64_t t0 = harness_now_ms();
    harness_http(&req, &o->resp);
    o->elapsed_ms = harness_now_ms() - t0;
    free(url);
    free(rid_header);

    char *needle = harness_fmt("\"%s\"", o->request_id);
    char *line = harness_wait_line_containing(g_access_log, needle, 3000);
    IT_ASSERT(line != NULL, "no access-log line for %s (request id %s) in %s", path, o->request_id,
              g_access_log);
    IT_ASSERT(harness_parse_access_line(line, &o->log) == 0,
              "access-log line not in Envoy's default format: %s", line);
    IT_ASSERT(strcmp(o->log.request_id, o->request_id) == 0, "request id field: %s", line);
    free(line);
    free(needle);
}

static void outcome_free(outcome_t *o)
{
    harness_resp_free(&o->resp);
}

static void expect_local_reply(const outcome_t *o, const char *path, long status, const char *flag)
{
    IT_ASSERT(o->resp.curl_code == 0, "%s: transport error %s", path, o->resp.error);
    IT_ASSERT(o->resp.status == status, "%s: status %ld, expected %ld (body \"%s\")", path, o->resp.status,
              status, o->resp.body);
    IT_ASSERT(o->log.status == status, "%s: access log status %d, expected %ld", path, o->log.status, status);
    IT_ASSERT(strcmp(o->log.flags, flag) == 0, "%s: access log flags \"%s\", expected \"%s\"", path,
              o->log.flags, flag);
    char *id = harness_resp_header(&o->resp, "x-upstream-id");
    IT_ASSERT(id == NULL, "%s: a local reply must not carry the upstream's headers (x-upstream-id: %s)", path,
              id);
}

static void test_success_is_proxied_with_no_flags(void **state)
{
    uint64_t rq2xx = stat_or_zero("http.ingress_http.downstream_rq_2xx");
    uint64_t rqtot = stat_or_zero("http.ingress_http.downstream_rq_total");
    uint64_t up_total = stat_or_zero("cluster.backend.upstream_rq_total");
    uint64_t up_2xx = stat_or_zero("cluster.backend.upstream_rq_2xx");
    outcome_t o;
    request_and_log("/status/200", &o);
    IT_ASSERT(o.resp.status == 200 && strcmp(o.resp.body, "status 200\n") == 0, "status %ld body %s",
              o.resp.status, o.resp.body);
    IT_ASSERT(o.log.status == 200 && strcmp(o.log.flags, "-") == 0, "log status %d flags %s", o.log.status,
              o.log.flags);
    IT_ASSERT(strcmp(o.log.method, "GET") == 0 && strcmp(o.log.path, "/status/200") == 0 &&
                  strcmp(o.log.protocol, "HTTP/1.1") == 0,
              "log request: %s %s %s", o.log.method, o.log.path, o.log.protocol);
    IT_ASSERT(o.log.bytes_received == 0 && o.log.bytes_sent == 11,
              "log bytes received %llu (want 0), sent %llu (want 11)",
              (unsigned long long)o.log.bytes_received, (unsigned long long)o.log.bytes_sent);
    char *authority = harness_fmt("127.0.0.1:%d", g_port);
    char *uhost = harness_fmt("127.0.0.1:%d", g_u1);
    IT_ASSERT(strcmp(o.log.authority, authority) == 0, "log authority %s, expected %s", o.log.authority,
              authority);
    IT_ASSERT(strcmp(o.log.upstream_host, uhost) == 0, "log upstream host %s, expected %s",
              o.log.upstream_host, uhost);
    IT_ASSERT(strcmp(o.log.upstream_time, "-") != 0, "log upstream service time should be a number");
    free(authority);
    free(uhost);
    outcome_free(&o);
    expect_stat_delta("http.ingress_http.downstream_rq_2xx", rq2xx, 1);
    expect_stat_delta("http.ingress_http.downstream_rq_total", rqtot, 1);
    expect_stat_delta("cluster.backend.upstream_rq_total", up_total, 1);
    expect_stat_delta("cluster.backend.upstream_rq_2xx", up_2xx, 1);
}

/* An upstream 503 is proxied, not a local reply. */
static void test_upstream_5xx_is_proxied(void **state)
{
    uint64_t up_5xx = stat_or_zero("cluster.backend.upstream_rq_5xx");
    uint64_t rq5xx = stat_or_zero("http.ingress_http.downstream_rq_5xx");
    outcome_t o;
    request_and_log("/status/503", &o);
    char *id = harness_resp_header(&o.resp, "x-upstream-id");
    IT_ASSERT(o.resp.status == 503 && id != NULL && strcmp(o.resp.body, "status 503\n") == 0,
              "the upstream's 503 must reach the client as is: status %ld, x-upstream-id %s, body %s",
              o.resp.status, id ? id : "(none)", o.resp.body);
    IT_ASSERT(o.log.status == 503 && strcmp(o.log.flags, "-") == 0, "log status %d flags %s (expected 503 -)",
              o.log.status, o.log.flags);
    free(id);
    outcome_free(&o);
    expect_stat_delta("cluster.backend.upstream_rq_5xx", up_5xx, 1);
    expect_stat_delta("http.ingress_http.downstream_rq_5xx", rq5xx, 1);
}

static void test_no_route_404_NR(void **state)
{
    uint64_t no_route = stat_or_zero("http.ingress_http.no_route");
    uint64_t rq4xx = stat_or_zero("http.ingress_http.downstream_rq_4xx");
    outcome_t o;
    request_and_log("/unrouted/path", &o);
    expect_local_reply(&o, "/unrouted/path", 404, "NR");
    IT_ASSERT(strcmp(o.log.upstream_host, "-") == 0, "no upstream host for NR, got %s", o.log.upstream_host);
    outcome_free(&o);
    expect_stat_delta("http.ingress_http.no_route", no_route, 1);
    expect_stat_delta("http.ingress_http.downstream_rq_4xx", rq4xx, 1);
}

static void test_no_healthy_upstream_503_UH(void **state)
{
    uint64_t rq5xx = stat_or_zero("http.ingress_http.downstream_rq_5xx");
    outcome_t o;
    request_and_log("/nohost", &o);
    expect_local_reply(&o, "/nohost", 503, "UH");
    IT_ASSERT(strcmp(o.resp.body, "no healthy upstream") == 0,
              "body \"%s\", expected \"no healthy upstream\"", o.resp.body);
    outcome_free(&o);
    expect_stat_delta("http.ingress_http.downstream_rq_5xx", rq5xx, 1);
}

static void test_connect_refused_503_UF(void **state)
{
    uint64_t fail = stat_or_zero("cluster.refused.upstream_cx_connect_fail");
    uint64_t rq5xx = stat_or_zero("http.ingress_http.downstream_rq_5xx");
    outcome_t o;
    request_and_log("/refused", &o);
    expect_local_reply(&o, "/refused", 503, "UF");
    outcome_free(&o);
    expect_stat_delta("cluster.refused.upstream_cx_connect_fail", fail, 1);
    expect_stat_delta("http.ingress_http.downstream_rq_5xx", rq5xx, 1);
}

static void test_connect_timeout_503_UF(void **state)
{
    uint64_t fail = stat_or_zero("cluster.blackhole.upstream_cx_connect_fail");
    outcome_t o;
    request_and_log("/blackhole", &o);
    expect_local_reply(&o, "/blackhole", 503, "UF");
    /* connect_timeout is 0.5 s, the route timeout 5 s */
    IT_ASSERT(o.elapsed_ms >= 400 && o.elapsed_ms < 3000,
              "the 503 should come after the 0.5 s connect timeout, came after %lld ms",
              (long long)o.elapsed_ms);
    outcome_free(&o);
    expect_stat_delta("cluster.blackhole.upstream_cx_connect_fail", fail, 1);
}

static void test_route_timeout_504_UT(void **state)
{
    uint64_t timeouts = stat_or_zero("cluster.backend.upstream_rq_timeout");
    uint64_t rq5xx = stat_or_zero("http.ingress_http.downstream_rq_5xx");
    outcome_t o;
    request_and_log("/delay/3000", &o);
    expect_local_reply(&o, "/delay/3000", 504, "UT");
    IT_ASSERT(o.elapsed_ms >= 900 && o.elapsed_ms < 2500,
              "504 after the 1 s route timeout expected, came after %lld ms", (long long)o.elapsed_ms);
    outcome_free(&o);
    expect_stat_delta("cluster.backend.upstream_rq_timeout", timeouts, 1);
    expect_stat_delta("http.ingress_http.downstream_rq_5xx", rq5xx, 1);
}

static void test_upstream_reset_503_UR(void **state)
{
    uint64_t rq5xx = stat_or_zero("http.ingress_http.downstream_rq_5xx");
    outcome_t o;
    request_and_log("/reset", &o);
    expect_local_reply(&o, "/reset", 503, "UR");
    outcome_free(&o);
    expect_stat_delta("http.ingress_http.downstream_rq_5xx", rq5xx, 1);
}

static void test_upstream_garbage_502_UPE(void **state)
{
    outcome_t o;
    request_and_log("/garbage", &o);
    expect_local_reply(&o, "/garbage", 502, "UPE");
    outcome_free(&o);
}

/* The upstream sends headers (Content-Length: 1000), 10 bytes, then closes. Either the proxy had not
 * sent the headers yet (503 UR), or the client must see a truncated response: never a "complete"
 * 1000-byte body, never a clean end of message. */
static void test_upstream_close_mid_body(void **state)
{
    outcome_t o;
    request_and_log("/close-mid", &o);
    if (o.resp.status == 503) {
        IT_ASSERT(strcmp(o.log.flags, "UR") == 0, "503 for close-mid should be flagged UR, got %s",
                  o.log.flags);
    } else {
        IT_ASSERT(o.resp.status == 200, "close-mid: status %ld, expected 200 (streamed) or 503",
                  o.resp.status);
        IT_ASSERT(o.resp.curl_code != 0 && o.resp.body_len < 1000,
                  "close-mid: the client must see the response cut short (curl code %d, %zu body bytes)",
                  o.resp.curl_code, o.resp.body_len);
        IT_ASSERT(strncmp(o.resp.body, "0123456789", o.resp.body_len < 10 ? o.resp.body_len : 10) == 0,
                  "close-mid: body bytes that were forwarded are wrong: %s", o.resp.body);
        IT_ASSERT(strcmp(o.log.flags, "-") != 0,
                  "close-mid: the access log must carry a failure flag, got \"-\"");
    }
    outcome_free(&o);
}

/* After all the failures above, the proxy still proxies and the upstream pool recovered. */
static void test_still_serving_after_errors(void **state)
{
    for (int i = 0; i < 5; i++) {
        outcome_t o;
        request_and_log("/status/200", &o);
        IT_ASSERT(o.resp.status == 200 && strcmp(o.log.flags, "-") == 0, "request %d: status %ld flags %s", i,
                  o.resp.status, o.log.flags);
        outcome_free(&o);
    }
    uint64_t v;
    IT_ASSERT(harness_stat(g_remora->admin, "cluster_manager.active_clusters", &v) == 0 && v == 4,
              "cluster_manager.active_clusters should be 4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_is_proxied_with_no_flags),
        cmocka_unit_test(test_upstream_5xx_is_proxied),
        cmocka_unit_test(test_no_route_404_NR),
        cmocka_unit_test(test_no_healthy_upstream_503_UH),
        cmocka_unit_test(test_connect_refused_503_UF),
        cmocka_unit_test(test_connect_timeout_503_UF),
        cmocka_unit_test(test_route_timeout_504_UT),
        cmocka_unit_test(test_upstream_reset_503_UR),
        cmocka_unit_test(test_upstream_garbage_502_UPE),
        cmocka_unit_test(test_upstream_close_mid_body),
        cmocka_unit_test(test_still_serving_after_errors),
    };
    return cmocka_run_group_tests_name("local_replies", tests, group_setup, group_teardown);
}
