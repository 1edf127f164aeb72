/* Health checking end to end: test upstreams switched at run time to answer 503, reset connections,
 * slow down or stop listening (/control/... on the upstream itself, or killing it). Checks that the
 * host is ejected after the configured number of failures (stats and /clusters flags), that traffic
 * moves to the rest of the level or to priority 1, and that the host comes back after its ejection
 * time or when an active check passes.
 *
 * Each test runs its own remora (--workers 1) and upstreams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

static harness_remora_t *g_remora;
static int g_port;
/* Route fields added to the route of the next start_remora (e.g. a retry_policy), or NULL. */
static const char *g_route_extra;

static int teardown(void **state)
{
    (void)state;
    harness_kill_all();
    g_remora = NULL;
    g_route_extra = NULL;
    return 0;
}

/* A STATIC cluster "backend" with endpoints (port, priority) and extra cluster fields. */
static char *cluster_yaml(const int *ports, const int *prios, size_t n, const char *extra)
{
    char *locs = harness_fmt("%s", "");
    for (size_t i = 0; i < n; i++) {
        char *next = harness_fmt("%s%s{priority: %d, lb_endpoints: [{endpoint: {address: {socket_address: "
                                 "{address: 127.0.0.1, port_value: %d}}}}]}",
                                 locs, i ? ", " : "", prios[i], ports[i]);
        free(locs);
        locs = next;
    }
    char *c = harness_fmt("{name: backend, type: STATIC, connect_timeout: 1s, lb_policy: ROUND_ROBIN, %s, "
                          "load_assignment: {cluster_name: backend, endpoints: [%s]}}",
                          extra, locs);
    free(locs);
    return c;
}

static void start_remora(const int *ports, const int *prios, size_t n, const char *extra,
                         const char *route_timeout)
{
    char *cluster = cluster_yaml(ports, prios, n, extra);
    char *vh = harness_fmt(
        "[{name: all, domains: [\"*\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "
        "backend, timeout: %s%s%s}}]}]",
        route_timeout ? route_timeout : "5s", g_route_extra ? ", " : "", g_route_extra ? g_route_extra : "");
    harness_listener_spec_t listener = {.virtual_hosts = vh};
    char *yaml = harness_yaml_bootstrap(&listener, 1, &cluster, 1);
    const char *args[] = {"--workers", "1", NULL};
    g_remora = harness_start_remora(yaml, args);
    free(yaml);
    free(vh);
    free(cluster);
    IT_ASSERT(g_remora != NULL, "remora did not start");
    g_port = harness_listener_port(g_remora, "ingress");
}

/* Switches an upstream's behaviour (fail, reset, slow/MS, normal) by talking to it directly. */
static void control(int port, const char *mode)
{
    char *url = harness_fmt("http://127.0.0.1:%d/control/%s", port, mode);
    harness_resp_t resp;
    int rc = harness_http_get(url, &resp);
    IT_ASSERT(rc == 0 && resp.status == 200, "control %s on port %d failed", mode, port);
    harness_resp_free(&resp);
    free(url);
}

/* One proxied GET /echo; returns the status (0 on a transport error) and the upstream id in id. */
static long proxy_get(char *id, size_t idlen)
{
    char *url = harness_fmt("http://127.0.0.1:%d/echo", g_port);
    harness_resp_t resp;
    long status = harness_http_get(url, &resp) == 0 ? resp.status : 0;
    char *who = status ? harness_resp_header(&resp, "x-upstream-id") : NULL;
    snprintf(id, idlen, "%s", who ? who : "");
    free(who);
    harness_resp_free(&resp);
    free(url);
    return status;
}

static uint64_t stat_of(const char *name)
{
    uint64_t v = 0;
    char *full = harness_fmt("cluster.backend.%s", name);
    int rc = harness_stat(g_remora->admin, full, &v);
    IT_ASSERT(rc == 0, "stat %s missing", full);
    free(full);
    return v;
}

static void wait_stat(const char *name, uint64_t value)
{
    char *full = harness_fmt("cluster.backend.%s", name);
    int rc = harness_wait_stat(g_remora->admin, full, HARNESS_EQ, value, WAIT_MS);
    IT_ASSERT(rc == 0, "%s never reached %llu", full, (unsigned long long)value);
    free(full);
}

static void wait_flags(int port, const char *flags)
{
    char *needle = harness_fmt("backend::127.0.0.1:%d::health_flags::%s\n", port, flags);
    int rc = harness_wait_admin_body(g_remora->admin, "/clusters", needle, true, WAIT_MS);
    IT_ASSERT(rc == 0, "/clusters never showed %s", needle);
    free(needle);
}

/* Sends n requests and checks that each got 200 from `want`. */
static void expect_all_from(int n, const char *want)
{
    for (int i = 0; i < n; i++) {
        char id[64];
        long st = proxy_get(id, sizeof(id));
        IT_ASSERT(st == 200 && strcmp(id, want) == 0, "request %d: status %ld from '%s', want 200 from %s", i,
                  st, id, want);
    }
}

/* Sends requests until `bad` answered `count` failures (status != 200), checking that the host is not
 * ejected before the last one. Returns how many requests it took. */
static int drive_failures(const char *bad, int count)
{
    int seen = 0, sent = 0;
    while (seen < count) {
        IT_ASSERT(sent < 20 * count, "only %d failures from %s after %d requests", seen, bad, sent);
        IT_ASSERT(stat_of("outlier_detection.ejections_active") == 0, "ejected after only %d failures", seen);
        char id[64];
        long st = proxy_get(id, sizeof(id));
        sent++;
        if (st != 200)
            seen++;
    }
    return sent;
}

/* consecutive_5xx: 3 x 503 eject u1, the rest of the level takes the traffic, u1 returns after the
 * ejection time. */
static void test_consecutive_5xx_ejects_and_returns(void **state)
{
    (void)state;
    int ports[2] = {harness_start_upstream("u1", NULL), harness_start_upstream("u2", NULL)};
    int prios[2] = {0, 0};
    start_remora(ports, prios, 2,
                 "outlier_detection: {consecutive_5xx: 3, interval: 0.2s, base_ejection_time: 1s, "
                 "max_ejection_percent: 50}",
                 NULL);
    wait_flags(ports[0], "healthy");
    control(ports[0], "fail");
    drive_failures("u1", 3);
    wait_stat("outlier_detection.ejections_active", 1);
    IT_ASSERT(stat_of("outlier_detection.ejections_enforced_consecutive_5xx") == 1, "one 5xx ejection");
    IT_ASSERT(stat_of("outlier_detection.ejections_enforced_total") == 1, "one ejection in total");
    wait_flags(ports[0], "/failed_outlier_check");
    wait_flags(ports[1], "healthy");
    char *line = harness_fmt("backend::127.0.0.1:%d::num_ejections::1\n", ports[0]);
    IT_ASSERT(harness_wait_admin_body(g_remora->admin, "/clusters", line, true, WAIT_MS) == 0,
              "num_ejections");
    free(line);
    expect_all_from(10, "u2");
    harness_resp_t js;
    IT_ASSERT(harness_admin_get(g_remora, "/clusters?format=json", &js) == 0 && js.status == 200, "json");
    IT_ASSERT(strstr(js.body, "\"health_flags\": \"/failed_outlier_check\"") != NULL &&
                  strstr(js.body, "\"num_ejections\": 1") != NULL,
              "/clusters?format=json shows the ejection: %s", js.body);
    harness_resp_free(&js);
    /* u1 recovers; it comes back once its 1 s ejection is over. */
    control(ports[0], "normal");
    wait_stat("outlier_detection.ejections_active", 0);
    wait_flags(ports[0], "healthy");
    int from_u1 = 0;
    for (int i = 0; i < 6; i++) {
        char id[64];
        IT_ASSERT(proxy_get(id, sizeof(id)) == 200, "request after return");
        from_u1 += strcmp(id, "u1") == 0;
    }
    IT_ASSERT(from_u1 == 3, "round robin over both hosts again, u1 served %d of 6", from_u1);
}

/* Connection resets (local-origin failures, counted as 5xx without the split) eject the only
 * priority-0 host: traffic fails over to priority 1. */
static void test_resets_fail_over_to_priority_1(void **state)
{
    (void)state;
    int ports[2] = {harness_start_upstream("p0", NULL), harness_start_upstream("p1", NULL)};
    int prios[2] = {0, 1};
    start_remora(ports, prios, 2,
                 "outlier_detection: {consecutive_5xx: 2, interval: 0.2s, base_ejection_time: 60s, "
                 "max_ejection_percent: 100}",
                 NULL);
    expect_all_from(3, "p0");
    control(ports[0], "reset");
    int sent = drive_failures("p0", 2);
    IT_ASSERT(sent == 2, "every request went to p0 before the ejection (%d sent)", sent);
    wait_stat("outlier_detection.ejections_active", 1);
    wait_flags(ports[0], "/failed_outlier_check");
    expect_all_from(10, "p1");
    IT_ASSERT(stat_of("outlier_detection.ejections_enforced_consecutive_5xx") == 1,
              "ejected by consecutive_5xx");
}

/* A slow upstream hits the route timeout: 504s count as gateway failures too. */
static void test_slow_upstream_is_ejected(void **state)
{
    (void)state;
    int ports[2] = {harness_start_upstream("s1", NULL), harness_start_upstream("s2", NULL)};
    int prios[2] = {0, 0};
    start_remora(ports, prios, 2,
                 "outlier_detection: {consecutive_5xx: 100, consecutive_gateway_failure: 2, "
                 "enforcing_consecutive_gateway_failure: 100, interval: 0.2s, base_ejection_time: 60s, "
                 "max_ejection_percent: 50}",
                 "0.3s");
    control(ports[1], "slow/3000");
    drive_failures("s2", 2);
    wait_stat("outlier_detection.ejections_active", 1);
    IT_ASSERT(stat_of("outlier_detection.ejections_enforced_consecutive_gateway_failure") == 1,
              "gateway ejection");
    wait_flags(ports[1], "/failed_outlier_check");
    expect_all_from(6, "s1");
}

/* Active HTTP checks: a 503 fails the host at once, healthy_threshold passes bring it back, and a
 * host that stops listening fails after unhealthy_threshold network failures. */
static void test_active_http_check(void **state)
{
    (void)state;
    harness_proc_t *p1 = NULL;
    int ports[2] = {harness_start_upstream("h1", &p1), harness_start_upstream("h2", NULL)};
    int prios[2] = {0, 0};
    start_remora(ports, prios, 2,
                 "health_checks: [{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, "
                 "unhealthy_threshold: 2, healthy_threshold: 2, "
                 "http_health_check: {path: /status/200, receive: [{text: \"3230\"}]}}]",
                 NULL);
    wait_stat("health_check.healthy", 2);
    wait_flags(ports[1], "healthy");
    control(ports[1], "fail");
    wait_flags(ports[1], "/failed_active_hc");
    IT_ASSERT(stat_of("health_check.healthy") == 1, "one healthy host");
    expect_all_from(6, "h1");
    control(ports[1], "normal");
    wait_flags(ports[1], "healthy");
    wait_stat("health_check.healthy", 2);
    /* h1 stops listening. */
    int status = 0;
    harness_proc_terminate(p1, SIGKILL, 5000, &status);
    wait_flags(ports[0], "/failed_active_hc");
    IT_ASSERT(stat_of("health_check.network_failure") >= 2, "network failures counted");
    expect_all_from(6, "h2");
}

/* health_check_config.port_value sends the checks elsewhere than the traffic: the traffic port
 * answers fine, the check port fails, and the host is taken out. */
static void test_health_check_port_override(void **state)
{
    (void)state;
    int traffic = harness_start_upstream("t1", NULL), checks = harness_start_upstream("c1", NULL),
        other = harness_start_upstream("t2", NULL);
    char *extra = harness_fmt("health_checks: [{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, "
                              "unhealthy_threshold: 1, healthy_threshold: 1, "
                              "http_health_check: {path: /status/200}}]");
    char *cluster = harness_fmt(
        "{name: backend, type: STATIC, connect_timeout: 1s, %s, load_assignment: {cluster_name: backend, "
        "endpoints: [{lb_endpoints: ["
        "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}, "
        "health_check_config: {port_value: %d}}}, "
        "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]}}",
        extra, traffic, checks, other);
    harness_listener_spec_t listener = {0};
    char *yaml = harness_yaml_bootstrap(&listener, 1, &cluster, 1);
    const char *args[] = {"--workers", "1", NULL};
    g_remora = harness_start_remora(yaml, args);
    free(yaml);
    free(cluster);
    free(extra);
    IT_ASSERT(g_remora != NULL, "remora did not start");
    g_port = harness_listener_port(g_remora, "ingress");
    wait_stat("health_check.healthy", 2);
    control(checks, "fail");
    wait_flags(traffic, "/failed_active_hc");
    expect_all_from(4, "t2");
    control(checks, "normal");
    wait_flags(traffic, "healthy");
}

/* With retries on the route, clients see no error while the failing host is found and ejected; once
 * it is out, no request tries it any more. */
static void test_retries_hide_the_ejection(void **state)
{
    (void)state;
    int ports[3] = {harness_start_upstream("r1", NULL), harness_start_upstream("r2", NULL),
                    harness_start_upstream("r3", NULL)};
    int prios[3] = {0, 0, 0};
    g_route_extra = "retry_policy: {retry_on: \"5xx,connect-failure,reset\", num_retries: 2, "
                    "retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config: "
                    "{\"@type\": type.googleapis.com/"
                    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}]}";
    start_remora(ports, prios, 3,
                 "outlier_detection: {consecutive_5xx: 3, interval: 0.2s, base_ejection_time: 60s, "
                 "max_ejection_percent: 50}",
                 NULL);
    control(ports[0], "fail");
    int sent = 0;
    while (stat_of("outlier_detection.ejections_active") == 0) {
        IT_ASSERT(sent < 60, "r1 not ejected after %d requests", sent);
        char id[64];
        long st = proxy_get(id, sizeof(id));
        sent++;
        IT_ASSERT(st == 200 && strcmp(id, "r1") != 0, "request %d: %ld from '%s' (retries should hide r1)",
                  sent, st, id);
    }
    IT_ASSERT(stat_of("outlier_detection.ejections_enforced_consecutive_5xx") == 1,
              "ejected by consecutive_5xx");
    IT_ASSERT(stat_of("upstream_rq_retry") >= 3, "the failures were retried");
    wait_flags(ports[0], "/failed_outlier_check");
    uint64_t retries = stat_of("upstream_rq_retry");
    for (int i = 0; i < 12; i++) {
        char id[64];
        long st = proxy_get(id, sizeof(id));
        IT_ASSERT(st == 200 && (strcmp(id, "r2") == 0 || strcmp(id, "r3") == 0),
                  "after the ejection: %ld from %s", st, id);
    }
    IT_ASSERT(stat_of("upstream_rq_retry") == retries, "no request tried r1 after its ejection");
}

/* An ejected host returns on a passing active check, long before its ejection time. */
static void test_active_check_returns_ejected_host(void **state)
{
    (void)state;
    int ports[2] = {harness_start_upstream("e1", NULL), harness_start_upstream("e2", NULL)};
    int prios[2] = {0, 0};
    /* The check accepts any status, so it keeps passing while requests get 503. */
    start_remora(ports, prios, 2,
                 "outlier_detection: {consecutive_5xx: 2, interval: 0.2s, base_ejection_time: 300s, "
                 "max_ejection_percent: 50}, "
                 "health_checks: [{timeout: 1s, interval: 0.5s, no_traffic_interval: 0.5s, "
                 "unhealthy_threshold: 2, healthy_threshold: 1, "
                 "http_health_check: {path: /status/200, expected_statuses: [{start: 200, end: 600}]}}]",
                 NULL);
    wait_stat("health_check.healthy", 2);
    control(ports[0], "fail");
    drive_failures("e1", 2);
    IT_ASSERT(harness_wait_stat(g_remora->admin, "cluster.backend.outlier_detection.ejections_enforced_total",
                                HARNESS_EQ, 1, WAIT_MS) == 0,
              "e1 ejected");
    control(ports[0], "normal");
    /* The next passing check (within 0.5 s) returns it, not the 300 s ejection time. */
    wait_stat("outlier_detection.ejections_active", 0);
    wait_flags(ports[0], "healthy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_consecutive_5xx_ejects_and_returns, teardown),
        cmocka_unit_test_teardown(test_resets_fail_over_to_priority_1, teardown),
        cmocka_unit_test_teardown(test_slow_upstream_is_ejected, teardown),
        cmocka_unit_test_teardown(test_active_http_check, teardown),
        cmocka_unit_test_teardown(test_active_check_returns_ejected_host, teardown),
        cmocka_unit_test_teardown(test_health_check_port_override, teardown),
        cmocka_unit_test_teardown(test_retries_hide_the_ejection, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
