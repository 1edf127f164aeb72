/* Retries, circuit breakers and the cluster fail-fast breaker through real traffic.
 *
 * Upstreams: a1, a2 (healthy test upstreams), bad (answers 503 to everything), a refused port.
 * Each virtual host (chosen by the Host header) exercises one policy:
 *   retry   5xx, 2 retries, previous_hosts, attempt count in request and response -> trio [a1, bad, a2]
 *   plain   no retries                                                           -> trio
 *   small   retries, but a 1 KiB per-request buffer                              -> trio
 *   mixed   connect-failure retries                                              -> [refused, a1]
 *   slow    per_try_timeout 0.3s, 1 retry                                        -> [a1, a2]
 *   narrow  max_requests 2                                                       -> [a1]
 *   queue   max_connections 1, max_pending_requests 1                            -> [a2]
 *   allbad  5xx retries with max_retries 0                                       -> [bad]
 *   ff      fail-fast breaker: 3 failures, 1s open                               -> [a1]
 * One worker, so round robin is a strict rotation and counts are exact where the test says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static harness_remora_t *g_remora;
static int g_port;
static int g_a1, g_a2, g_bad;
static int g_refused_fd[1] = {-1};
static int g_refused_port;
static char *g_access_log;
static unsigned g_seq;

#define FF_TYPE "type.googleapis.com/remora.config.v1.FailFastBreaker"
#define PREVIOUS_HOSTS                                                                                       \
    "retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config: {\"@type\": "   \
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}]"

/* harness_yaml_cluster plus extra Cluster fields (a flow-mapping fragment). */
static char *cluster_with(const char *name, const int *ports, size_t n, const char *extra)
{
    char *c = harness_yaml_cluster(name, ports, n, NULL);
    size_t len = strlen(c);
    c[len - 1] = '\0'; /* drop the closing brace */
    char *out = harness_fmt("%s, %s}", c, extra);
    free(c);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    const char *fail_args[] = {"--fail-status", "503", NULL};
    g_a1 = harness_start_upstream("a1", NULL);
    g_a2 = harness_start_upstream("a2", NULL);
    g_bad = harness_start_upstream_args("bad", fail_args, NULL);
    g_refused_port = harness_refused_port(g_refused_fd);
    if (g_a1 < 0 || g_a2 < 0 || g_bad < 0 || g_refused_port < 0)
        return -1;
    g_access_log = harness_path("access.log");
    int trio[3] = {g_a1, g_bad, g_a2};
    int mixed[2] = {g_refused_port, g_a1};
    int pair[2] = {g_a1, g_a2};
    char *clusters[] = {
        harness_yaml_cluster("trio", trio, 3, NULL),
        harness_yaml_cluster("mixed", mixed, 2, NULL),
        harness_yaml_cluster("slow", pair, 2, NULL),
        cluster_with("narrow", &g_a1, 1, "circuit_breakers: {thresholds: [{max_requests: 2}]}"),
        cluster_with("queue", &g_a2, 1,
                     "circuit_breakers: {thresholds: [{max_connections: 1, max_pending_requests: 1}]}"),
        cluster_with("allbad", &g_bad, 1, "circuit_breakers: {thresholds: [{max_retries: 0}]}"),
        harness_yaml_cluster("backoff", &g_bad, 1, NULL),
        cluster_with("ff", &g_a1, 1,
                     "typed_extension_protocol_options: {remora.fail_fast: {\"@type\": \"" FF_TYPE "\", "
                     "consecutive_failures: 3, open_duration: 1s}}"),
    };
    const size_t nclusters = sizeof(clusters) / sizeof(clusters[0]);
    harness_listener_spec_t listener = {
        .access_log_path = g_access_log,
        .virtual_hosts =
            "[{name: retry, domains: [retry], include_request_attempt_count: true,"
            "  include_attempt_count_in_response: true,"
            "  retry_policy: {retry_on: 5xx, num_retries: 2, " PREVIOUS_HOSTS "},"
            "  routes: [{match: {prefix: /}, route: {cluster: trio}}]},"
            " {name: plain, domains: [plain], routes: [{match: {prefix: /}, route: {cluster: trio}}]},"
            " {name: small, domains: [small], per_request_buffer_limit_bytes: 1024,"
            "  retry_policy: {retry_on: 5xx, num_retries: 2, " PREVIOUS_HOSTS "},"
            "  routes: [{match: {prefix: /}, route: {cluster: trio}}]},"
            " {name: mixed, domains: [mixed], routes: [{match: {prefix: /}, route: {cluster: mixed,"
            "  retry_policy: {retry_on: connect-failure, num_retries: 2, " PREVIOUS_HOSTS "}}}]},"
            " {name: slow, domains: [slow], routes: [{match: {prefix: /}, route: {cluster: slow, timeout: 5s,"
            "  retry_policy: {retry_on: 5xx, num_retries: 1, per_try_timeout: 0.3s}}}]},"
            " {name: narrow, domains: [narrow], routes: [{match: {prefix: /}, route: {cluster: narrow}}]},"
            " {name: queue, domains: [queue], routes: [{match: {prefix: /}, route: {cluster: queue}}]},"
            " {name: allbad, domains: [allbad], retry_policy: {retry_on: 5xx, num_retries: 3},"
            "  routes: [{match: {prefix: /}, route: {cluster: allbad}}]},"
            " {name: backoff, domains: [backoff], routes: [{match: {prefix: /}, route: {cluster: backoff,"
            "  retry_policy: {retry_on: 5xx, num_retries: 3,"
            "   retry_back_off: {base_interval: 5s, max_interval: 10s}}}}]},"
            " {name: ff, domains: [ff], routes: [{match: {prefix: /}, route: {cluster: ff}}]}]",
    };
    char *yaml = harness_yaml_bootstrap(&listener, 1, clusters, nclusters);
    for (size_t i = 0; i < nclusters; i++)
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
    (void)state;
    harness_kill_all();
    harness_close_fds(g_refused_fd, 1);
    free(g_access_log);
    return 0;
}

static uint64_t stat_or_zero(const char *name)
{
    return harness_stat_or_zero(g_remora->admin, name);
}

static void expect_stat(const char *name, harness_cmp_t cmp, uint64_t value)
{
    IT_ASSERT(harness_wait_stat(g_remora->admin, name, cmp, value, 3000) == 0,
              "stat %s should be %s %llu (is %llu)", name,
              cmp == HARNESS_EQ ? "==" : ">=", (unsigned long long)value,
              (unsigned long long)stat_or_zero(name));
}

/* Requests served by a test upstream so far (its own /stats, read directly). */
static uint64_t upstream_requests(int port)
{
    harness_resp_t r;
    char *url = harness_fmt("http://127.0.0.1:%d/stats", port);
    uint64_t conns = 0, reqs = 0;
    if (harness_http_get(url, &r) == 0 && r.body != NULL)
        sscanf(r.body, "connections %lu requests %lu", &conns, &reqs);
    harness_resp_free(&r);
    free(url);
    return reqs;
}

/* Requests a test upstream served between two upstream_requests() readings (the first reading's own
 * /stats request excluded). */
static uint64_t served_since(int port, uint64_t before)
{
    return upstream_requests(port) - before - 1;
}

typedef struct {
    harness_resp_t resp;
    harness_access_entry_t log;
    bool logged;
} outcome_t;

/* One request through the proxy to virtual host `vhost`; optionally finds its access-log line. */
static void request(const char *vhost, const char *method, const char *path, const void *body,
                    size_t body_len, bool want_log, outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    char rid[64];
    snprintf(rid, sizeof(rid), "rs-%d-%u", (int)getpid(), ++g_seq);
    char *host = harness_fmt("Host: %s", vhost);
    char *rid_header = harness_fmt("x-request-id: %s", rid);
    const char *headers[] = {host, rid_header, NULL};
    char *url = harness_fmt("http://127.0.0.1:%d%s", g_port, path);
    harness_req_t req = {.method = method,
                         .url = url,
                         .headers = headers,
                         .body = body,
                         .body_len = body_len,
                         .timeout_ms = 8000};
    harness_http(&req, &o->resp);
    free(url);
    free(host);
    free(rid_header);
    if (!want_log)
        return;
    char *needle = harness_fmt("\"%s\"", rid);
    char *line = harness_wait_line_containing(g_access_log, needle, 3000);
    free(needle);
    IT_ASSERT(line != NULL, "no access-log line for request %s", rid);
    IT_ASSERT(harness_parse_access_line(line, &o->log) == 0, "cannot parse access-log line: %s", line);
    free(line);
    o->logged = true;
}

static void pause_ms(int ms)
{
    poll(NULL, 0, ms); /* pacing between polls of a condition, never used as synchronisation */
}

/* ---- retries ---- */

/* One host of three answers 503: with retries on 5xx and previous_hosts every client request
 * succeeds, each failed attempt is retried exactly once, on another host. */
static void test_retry_hides_a_failing_host(void **state)
{
    (void)state;
    uint64_t bad0 = upstream_requests(g_bad);
    uint64_t retry0 = stat_or_zero("cluster.trio.upstream_rq_retry");
    uint64_t success0 = stat_or_zero("cluster.trio.upstream_rq_retry_success");
    int second_attempts = 0;
    for (int i = 0; i < 60; i++) {
        outcome_t o;
        request("retry", "GET", "/headers", NULL, 0, false, &o);
        IT_ASSERT(o.resp.status == 200, "request %d: status %ld (%s)", i, o.resp.status, o.resp.error);
        char *id = harness_resp_header(&o.resp, "x-upstream-id");
        IT_ASSERT(id != NULL && strcmp(id, "bad") != 0, "request %d answered by %s", i, id ? id : "?");
        free(id);
        bool second = strstr(o.resp.body, "x-envoy-attempt-count: 2") != NULL;
        bool first = strstr(o.resp.body, "x-envoy-attempt-count: 1") != NULL;
        IT_ASSERT(first != second, "request %d: the upstream saw neither attempt 1 nor 2:\n%s", i,
                  o.resp.body);
        char *count = harness_resp_header(&o.resp, "x-envoy-attempt-count");
        IT_ASSERT(count != NULL && atoi(count) == (second ? 2 : 1),
                  "request %d: response x-envoy-attempt-count %s, upstream saw attempt %d", i,
                  count ? count : "-", second ? 2 : 1);
        free(count);
        second_attempts += second;
        harness_resp_free(&o.resp);
    }
    uint64_t bad_hits = served_since(g_bad, bad0);
    IT_ASSERT(second_attempts >= 10,
              "only %d of 60 requests needed a retry; the failing host should get about a third",
              second_attempts);
    IT_ASSERT(bad_hits == (uint64_t)second_attempts,
              "the failing host got %llu requests, but %d requests were retried (previous_hosts must send "
              "each retry "
              "elsewhere)",
              (unsigned long long)bad_hits, second_attempts);
    expect_stat("cluster.trio.upstream_rq_retry", HARNESS_EQ, retry0 + (uint64_t)second_attempts);
    expect_stat("cluster.trio.upstream_rq_retry_success", HARNESS_EQ, success0 + (uint64_t)second_attempts);
}

/* The same cluster without a retry policy: the failing host's answers reach the client. */
static void test_without_retries_the_503s_show(void **state)
{
    (void)state;
    uint64_t bad0 = upstream_requests(g_bad);
    int n503 = 0;
    for (int i = 0; i < 30; i++) {
        outcome_t o;
        request("plain", "GET", "/headers", NULL, 0, false, &o);
        IT_ASSERT(o.resp.status == 200 || o.resp.status == 503, "request %d: status %ld", i, o.resp.status);
        n503 += o.resp.status == 503;
        harness_resp_free(&o.resp);
    }
    IT_ASSERT(n503 == 10,
              "strict rotation over 3 hosts: 10 of 30 requests should reach the failing host, got %d", n503);
    IT_ASSERT(served_since(g_bad, bad0) == 10, "the failing host should have seen 10 requests");
}

static char *pattern_body(size_t n, unsigned salt)
{
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + (i * 7 + salt) % 26);
    return b;
}

/* A request body is replayed byte for byte to the host that answers after a retry. */
static void test_request_body_is_replayed(void **state)
{
    (void)state;
    uint64_t retry0 = stat_or_zero("cluster.trio.upstream_rq_retry");
    for (unsigned i = 0; i < 30; i++) {
        size_t n = 4096 + i;
        char *body = pattern_body(n, i);
        outcome_t o;
        request("retry", "POST", "/echo", body, n, false, &o);
        IT_ASSERT(o.resp.status == 200, "POST %u: status %ld", i, o.resp.status);
        IT_ASSERT(o.resp.body_len == n && memcmp(o.resp.body, body, n) == 0,
                  "POST %u: echoed %zu bytes, sent %zu (replayed body differs)", i, o.resp.body_len, n);
        free(body);
        harness_resp_free(&o.resp);
    }
    uint64_t retries = stat_or_zero("cluster.trio.upstream_rq_retry") - retry0;
    IT_ASSERT(retries >= 5, "only %llu of 30 POSTs were retried", (unsigned long long)retries);
}

/* A body larger than the per-request buffer cannot be replayed: no retry, counted as abandoned. */
static void test_body_over_the_buffer_is_not_retried(void **state)
{
    (void)state;
    uint64_t abandoned0 = stat_or_zero("cluster.trio.retry_or_shadow_abandoned");
    uint64_t retry0 = stat_or_zero("cluster.trio.upstream_rq_retry");
    int n503 = 0;
    for (unsigned i = 0; i < 6; i++) {
        char *body = pattern_body(4096, i);
        outcome_t o;
        request("small", "POST", "/echo", body, 4096, true, &o);
        IT_ASSERT(o.resp.status == 200 || o.resp.status == 503, "POST %u: status %ld", i, o.resp.status);
        if (o.resp.status == 503)
            IT_ASSERT(strcmp(o.log.flags, "-") == 0, "the upstream's 503 is proxied as is, flags %s",
                      o.log.flags);
        n503 += o.resp.status == 503;
        free(body);
        harness_resp_free(&o.resp);
    }
    IT_ASSERT(n503 == 2, "6 requests over 3 hosts without retries: 2 answers from the failing host, got %d",
              n503);
    expect_stat("cluster.trio.retry_or_shadow_abandoned", HARNESS_EQ, abandoned0 + 6);
    expect_stat("cluster.trio.upstream_rq_retry", HARNESS_EQ, retry0);
}

/* connect-failure: a host that refuses connections is skipped by the retry. */
static void test_connect_failure_is_retried(void **state)
{
    (void)state;
    uint64_t fail0 = stat_or_zero("cluster.mixed.upstream_cx_connect_fail");
    uint64_t retry0 = stat_or_zero("cluster.mixed.upstream_rq_retry");
    for (int i = 0; i < 10; i++) {
        outcome_t o;
        request("mixed", "GET", "/headers", NULL, 0, false, &o);
        IT_ASSERT(o.resp.status == 200, "request %d: status %ld", i, o.resp.status);
        harness_resp_free(&o.resp);
    }
    uint64_t fails = stat_or_zero("cluster.mixed.upstream_cx_connect_fail") - fail0;
    IT_ASSERT(fails >= 3, "the refusing host should have been tried about every other request, %llu times",
              (unsigned long long)fails);
    expect_stat("cluster.mixed.upstream_rq_retry", HARNESS_EQ, retry0 + fails);
}

/* per_try_timeout: each try is cut at 0.3s, the retry too; then 504 with UT and URX. */
static void test_per_try_timeout(void **state)
{
    (void)state;
    uint64_t ptt0 = stat_or_zero("cluster.slow.upstream_rq_per_try_timeout");
    uint64_t retry0 = stat_or_zero("cluster.slow.upstream_rq_retry");
    int64_t t0 = harness_now_ms();
    outcome_t o;
    request("slow", "GET", "/delay/3000", NULL, 0, true, &o);
    int64_t took = harness_now_ms() - t0;
    IT_ASSERT(o.resp.status == 504, "status %ld, expected 504", o.resp.status);
    IT_ASSERT(strstr(o.log.flags, "UT") != NULL && strstr(o.log.flags, "URX") != NULL,
              "flags %s, expected UT and URX", o.log.flags);
    IT_ASSERT(took >= 550 && took < 2500, "two tries of 0.3s should take about 0.6s, took %lld ms",
              (long long)took);
    harness_resp_free(&o.resp);
    expect_stat("cluster.slow.upstream_rq_per_try_timeout", HARNESS_EQ, ptt0 + 2);
    expect_stat("cluster.slow.upstream_rq_retry", HARNESS_EQ, retry0 + 1);
}

/* ---- circuit breakers ---- */

typedef struct {
    const char *vhost;
    const char *path;
    long status;
} bg_req_t;

static void *bg_request(void *arg)
{
    bg_req_t *b = arg;
    char *host = harness_fmt("Host: %s", b->vhost);
    const char *headers[] = {host, NULL};
    char *url = harness_fmt("http://127.0.0.1:%d%s", g_port, b->path);
    harness_req_t req = {.url = url, .headers = headers, .timeout_ms = 8000};
    harness_resp_t resp;
    harness_http(&req, &resp);
    b->status = resp.status;
    harness_resp_free(&resp);
    free(url);
    free(host);
    return NULL;
}

typedef struct {
    const char *url;
    long status;
} bg_url_t;

static void *bg_get(void *arg)
{
    bg_url_t *b = arg;
    harness_req_t req = {.url = b->url, .timeout_ms = 8000};
    harness_resp_t resp;
    harness_http(&req, &resp);
    b->status = resp.status;
    harness_resp_free(&resp);
    return NULL;
}

/* max_requests 2: a third concurrent request fails fast with 503 UO. */
static void test_max_requests(void **state)
{
    (void)state;
    uint64_t overflow0 = stat_or_zero("cluster.narrow.upstream_rq_pending_overflow");
    bg_req_t bg[2] = {{"narrow", "/delay/1500", 0}, {"narrow", "/delay/1500", 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, bg_request, &bg[i]);
    expect_stat("cluster.narrow.upstream_rq_active", HARNESS_EQ, 2);
    outcome_t o;
    request("narrow", "GET", "/headers", NULL, 0, true, &o);
    IT_ASSERT(o.resp.status == 503 && strcmp(o.log.flags, "UO") == 0, "third request: status %ld flags %s",
              o.resp.status, o.log.flags);
    IT_ASSERT(o.resp.body != NULL && strstr(o.resp.body, "overflow") != NULL, "body: %s",
              o.resp.body ? o.resp.body : "");
    harness_resp_free(&o.resp);
    expect_stat("cluster.narrow.upstream_rq_pending_overflow", HARNESS_EQ, overflow0 + 1);
    expect_stat("cluster.narrow.circuit_breakers.default.rq_open", HARNESS_EQ, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        IT_ASSERT(bg[i].status == 200, "request %d under the limit: status %ld", i, bg[i].status);
    }
    expect_stat("cluster.narrow.circuit_breakers.default.rq_open", HARNESS_EQ, 0);
    request("narrow", "GET", "/headers", NULL, 0, false, &o);
    IT_ASSERT(o.resp.status == 200, "after the burst: status %ld", o.resp.status);
    harness_resp_free(&o.resp);
}

/* The limits are cluster-wide: with 2 workers and max_requests 2, once 2 requests are in flight
 * (wherever they landed) every further request fails fast, on whichever worker accepts it. With
 * per-worker limits some of them would get through. */
static void test_limits_are_cluster_wide_across_workers(void **state)
{
    (void)state;
    char *cluster = cluster_with("wide", &g_a1, 1, "circuit_breakers: {thresholds: [{max_requests: 2}]}");
    harness_listener_spec_t listener = {
        .virtual_hosts =
            "[{name: all, domains: [\"*\"], routes: [{match: {prefix: /}, route: {cluster: wide}}]}]",
    };
    char *yaml = harness_yaml_bootstrap(&listener, 1, &cluster, 1);
    free(cluster);
    const char *args[] = {"--workers", "2", NULL};
    harness_remora_t *r = harness_start_remora(yaml, args);
    free(yaml);
    IT_ASSERT(r != NULL, "second remora did not start");
    int port = harness_listener_port(r, "ingress");
    char *slow_url = harness_fmt("http://127.0.0.1:%d/delay/1500", port);
    char *fast_url = harness_fmt("http://127.0.0.1:%d/headers", port);
    bg_url_t bg[2] = {{slow_url, 0}, {slow_url, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, bg_get, &bg[i]);
    IT_ASSERT(harness_wait_stat(r->admin, "cluster.wide.upstream_rq_active", HARNESS_EQ, 2, 5000) == 0,
              "the two slow requests did not become active");
    int overflow = 0;
    for (int i = 0; i < 8; i++) {
        harness_resp_t resp;
        harness_req_t req = {.url = fast_url, .timeout_ms = 5000};
        harness_http(&req, &resp); /* a new connection each: the kernel spreads them over both workers */
        overflow += resp.status == 503;
        harness_resp_free(&resp);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        IT_ASSERT(bg[i].status == 200, "slow request %d: status %ld", i, bg[i].status);
    }
    IT_ASSERT(overflow == 8, "%d of 8 requests beyond the limit were refused (all must be)", overflow);
    IT_ASSERT(harness_stat_or_zero(r->admin, "cluster.wide.upstream_rq_pending_overflow") == 8,
              "pending_overflow should count the 8 refusals");
    free(slow_url);
    free(fast_url);
}

/* max_connections 1 + max_pending_requests 1: the second request waits for the one connection, the
 * third overflows. */
static void test_max_connections_and_pending(void **state)
{
    (void)state;
    uint64_t cx0 = stat_or_zero("cluster.queue.upstream_cx_total");
    uint64_t cxo0 = stat_or_zero("cluster.queue.upstream_cx_overflow");
    bg_req_t first = {"queue", "/delay/1200", 0}, second = {"queue", "/headers", 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, bg_request, &first);
    expect_stat("cluster.queue.upstream_rq_active", HARNESS_EQ, 1);
    expect_stat("cluster.queue.upstream_cx_active", HARNESS_EQ, 1);
    pthread_create(&t2, NULL, bg_request, &second);
    expect_stat("cluster.queue.upstream_rq_pending_active", HARNESS_EQ, 1);
    expect_stat("cluster.queue.upstream_cx_overflow", HARNESS_GE, cxo0 + 1);
    outcome_t o;
    request("queue", "GET", "/headers", NULL, 0, true, &o);
    IT_ASSERT(o.resp.status == 503 && strcmp(o.log.flags, "UO") == 0, "third request: status %ld flags %s",
              o.resp.status, o.log.flags);
    harness_resp_free(&o.resp);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    IT_ASSERT(first.status == 200 && second.status == 200, "queued requests: %ld %ld", first.status,
              second.status);
    /* The queued request was served on the same connection once it was free. */
    uint64_t cx = stat_or_zero("cluster.queue.upstream_cx_total") - cx0;
    IT_ASSERT(cx <= 1, "max_connections 1 but %llu connections were opened", (unsigned long long)cx);
}

/* max_retries 0: a retriable failure is not retried, the answer is flagged UO. */
static void test_max_retries(void **state)
{
    (void)state;
    uint64_t ovf0 = stat_or_zero("cluster.allbad.upstream_rq_retry_overflow");
    uint64_t retry0 = stat_or_zero("cluster.allbad.upstream_rq_retry");
    outcome_t o;
    request("allbad", "GET", "/headers", NULL, 0, true, &o);
    IT_ASSERT(o.resp.status == 503 && strcmp(o.log.flags, "UO") == 0, "status %ld flags %s", o.resp.status,
              o.log.flags);
    harness_resp_free(&o.resp);
    expect_stat("cluster.allbad.upstream_rq_retry_overflow", HARNESS_EQ, ovf0 + 1);
    expect_stat("cluster.allbad.upstream_rq_retry", HARNESS_EQ, retry0);
}

/* ---- clients that leave ---- */

/* A GET through virtual host `vhost` whose client gives up after timeout_ms. Returns curl's code. */
static int impatient_get(const char *vhost, const char *path, int timeout_ms)
{
    char *host = harness_fmt("Host: %s", vhost);
    const char *headers[] = {host, NULL};
    char *url = harness_fmt("http://127.0.0.1:%d%s", g_port, path);
    harness_req_t req = {.url = url, .headers = headers, .timeout_ms = timeout_ms};
    harness_resp_t resp;
    harness_http(&req, &resp);
    int code = resp.curl_code;
    harness_resp_free(&resp);
    free(url);
    free(host);
    return code;
}

/* The client goes away while its retry waits out the back-off: the stream is cleaned up (no
 * request left active, the retry slot given back) and the proxy keeps serving. */
static void test_client_leaves_during_backoff(void **state)
{
    (void)state;
    uint64_t retry0 = stat_or_zero("cluster.backoff.upstream_rq_retry");
    uint64_t rx_reset0 = stat_or_zero("http.ingress_http.downstream_rq_rx_reset");
    int code = impatient_get("backoff", "/headers", 400);
    IT_ASSERT(code != 0, "the request should still be waiting for its retry when the client leaves");
    expect_stat("cluster.backoff.upstream_rq_retry", HARNESS_GE, retry0 + 1);
    expect_stat("http.ingress_http.downstream_rq_rx_reset", HARNESS_GE, rx_reset0 + 1);
    expect_stat("cluster.backoff.upstream_rq_active", HARNESS_EQ, 0);
    expect_stat("cluster.backoff.circuit_breakers.default.rq_retry_open", HARNESS_EQ, 0);
    outcome_t o;
    request("plain", "GET", "/headers", NULL, 0, false, &o);
    IT_ASSERT(o.resp.status == 200 || o.resp.status == 503, "still serving: status %ld", o.resp.status);
    harness_resp_free(&o.resp);
}

/* The client goes away while its request waits for the cluster's only connection: it leaves the
 * queue, and the connection serves the next request once free. */
static void test_client_leaves_while_queued(void **state)
{
    (void)state;
    uint64_t cx0 = stat_or_zero("cluster.queue.upstream_cx_total");
    bg_req_t first = {"queue", "/delay/1200", 0};
    pthread_t t1;
    pthread_create(&t1, NULL, bg_request, &first);
    expect_stat("cluster.queue.upstream_rq_active", HARNESS_EQ, 1);
    expect_stat("cluster.queue.upstream_cx_active", HARNESS_EQ, 1);
    int code = impatient_get("queue", "/headers", 300);
    IT_ASSERT(code != 0, "the queued request should not have been answered within 300 ms");
    expect_stat("cluster.queue.upstream_rq_pending_active", HARNESS_EQ, 0);
    expect_stat("cluster.queue.upstream_rq_active", HARNESS_EQ, 1);
    pthread_join(t1, NULL);
    IT_ASSERT(first.status == 200, "the request holding the connection: status %ld", first.status);
    outcome_t o;
    request("queue", "GET", "/headers", NULL, 0, false, &o);
    IT_ASSERT(o.resp.status == 200, "after the queue emptied: status %ld", o.resp.status);
    harness_resp_free(&o.resp);
    IT_ASSERT(stat_or_zero("cluster.queue.upstream_cx_total") - cx0 <= 1,
              "max_connections 1 but %llu connections were opened",
              (unsigned long long)(stat_or_zero("cluster.queue.upstream_cx_total") - cx0));
}

/* ---- the fail-fast breaker ---- */

/* Sends GET path to the ff cluster until a request is not refused by the open breaker; returns its
 * status (0 if the breaker stayed open past the deadline). */
static long first_admitted(const char *path)
{
    int64_t deadline = harness_now_ms() + 5000;
    while (harness_now_ms() < deadline) {
        outcome_t o;
        request("ff", "GET", path, NULL, 0, true, &o);
        long st = o.resp.status;
        bool refused = st == 503 && strcmp(o.log.flags, "UO") == 0;
        harness_resp_free(&o.resp);
        if (!refused)
            return st;
        pause_ms(25);
    }
    return 0;
}

static void fail_three(void)
{
    for (int i = 0; i < 3; i++) {
        outcome_t o;
        request("ff", "GET", "/status/503", NULL, 0, true, &o);
        IT_ASSERT(o.resp.status == 503 && strcmp(o.log.flags, "-") == 0,
                  "failure %d should be the upstream's own 503: status %ld flags %s", i, o.resp.status,
                  o.log.flags);
        harness_resp_free(&o.resp);
    }
}

static void test_fail_fast_breaker(void **state)
{
    (void)state;
    fail_three();
    expect_stat("cluster.ff.fail_fast.opened", HARNESS_EQ, 1);
    expect_stat("cluster.ff.fail_fast.state", HARNESS_EQ, 1);
    outcome_t o;
    request("ff", "GET", "/status/200", NULL, 0, true, &o);
    IT_ASSERT(o.resp.status == 503 && strcmp(o.log.flags, "UO") == 0 && o.resp.body != NULL &&
                  strstr(o.resp.body, "fail-fast") != NULL,
              "open breaker: status %ld flags %s body %s", o.resp.status, o.log.flags,
              o.resp.body ? o.resp.body : "");
    harness_resp_free(&o.resp);
    expect_stat("cluster.ff.fail_fast.rejected", HARNESS_GE, 1);

    /* After open_duration a probe goes through; it succeeds and closes the breaker. */
    IT_ASSERT(first_admitted("/status/200") == 200,
              "the half-open probe should reach the upstream and succeed");
    expect_stat("cluster.ff.fail_fast.closed", HARNESS_EQ, 1);
    expect_stat("cluster.ff.fail_fast.state", HARNESS_EQ, 0);
    request("ff", "GET", "/status/200", NULL, 0, true, &o);
    IT_ASSERT(o.resp.status == 200, "closed again: status %ld", o.resp.status);
    harness_resp_free(&o.resp);

    /* Open it again; this time the probe fails and the breaker reopens. */
    fail_three();
    expect_stat("cluster.ff.fail_fast.opened", HARNESS_EQ, 2);
    IT_ASSERT(first_admitted("/status/503") == 503, "the probe should reach the upstream");
    expect_stat("cluster.ff.fail_fast.opened", HARNESS_EQ, 3);
    expect_stat("cluster.ff.fail_fast.state", HARNESS_EQ, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_hides_a_failing_host),
        cmocka_unit_test(test_without_retries_the_503s_show),
        cmocka_unit_test(test_request_body_is_replayed),
        cmocka_unit_test(test_body_over_the_buffer_is_not_retried),
        cmocka_unit_test(test_connect_failure_is_retried),
        cmocka_unit_test(test_per_try_timeout),
        cmocka_unit_test(test_max_requests),
        cmocka_unit_test(test_limits_are_cluster_wide_across_workers),
        cmocka_unit_test(test_max_connections_and_pending),
        cmocka_unit_test(test_max_retries),
        cmocka_unit_test(test_client_leaves_during_backoff),
        cmocka_unit_test(test_client_leaves_while_queued),
        cmocka_unit_test(test_fail_fast_breaker),
    };
    return cmocka_run_group_tests_name("resilience", tests, group_setup, group_teardown);
}
