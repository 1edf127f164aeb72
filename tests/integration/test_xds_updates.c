/* Endpoint updates from a real remora-cp while traffic flows: each test keeps a background load (two
 * keep-alive connections, paced) running through all of its changes and ends by checking that not a
 * single request failed.
 *
 * One remora-cp and one remora (--workers 2, node "sidecar") in front of three test upstreams
 * (u1, u2, u3). Three clusters come by CDS, one per test, each behind its own virtual host: "grow"
 * (u1), "drain" (u1) and "split" (u1 and u2, weight 1 each). Which upstream answered is read from
 * x-upstream-id. Weighted round robin is exact over a cycle per worker, so shares over a window of a
 * few hundred requests are checked within +-5 points.
 *
 * Changes are synchronised on `remora-cpctl wait-ack` (the node has ACKed the version holding the
 * change), then on remora's /clusters showing the change (the xDS thread ACKs as soon as it has
 * handed the update to the main thread), then on the load's own counters: shares are measured over
 * a window that starts 20 requests later (workers adopt the new snapshot on their next loop turn). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE "sidecar"
#define VHOSTS                                                                                               \
    "[{name: grow, domains: [\"grow\"], routes: [{match: {prefix: \"/\"}, route: {cluster: grow, timeout: "  \
    "10s}}]},"                                                                                               \
    " {name: drain, domains: [\"drain\"], routes: [{match: {prefix: \"/\"}, route: {cluster: drain, "        \
    "timeout: "                                                                                              \
    "10s}}]},"                                                                                               \
    " {name: split, domains: [\"split\"], routes: [{match: {prefix: \"/\"}, route: {cluster: split, "        \
    "timeout: "                                                                                              \
    "10s}}]}]"

/* The load of every test: 2 connections x 150 requests/s, bounded well beyond what a test needs. */
#define LOAD_CONNECTIONS 2
#define LOAD_RATE        150
#define LOAD_MAX         30000
#define LOAD_MAX_MS      45000
#define SETTLE           20 /* requests after a change is visible before a share window starts */
#define TOLERANCE        0.05

enum { U1, U2, U3, NUM_UPSTREAMS };
static const char *const g_names[NUM_UPSTREAMS] = {"u1", "u2", "u3"};
static int g_ports[NUM_UPSTREAMS];
static char g_addr[NUM_UPSTREAMS][32];
static harness_cp_t *g_cp;
static harness_remora_t *g_remora;
static int g_port;

static int group_setup(void **state)
{
    for (int i = 0; i < NUM_UPSTREAMS; i++) {
        g_ports[i] = harness_start_upstream(g_names[i], NULL);
        if (g_ports[i] < 0)
            return -1;
        snprintf(g_addr[i], sizeof(g_addr[i]), "127.0.0.1:%d", g_ports[i]);
    }
    char *snap =
        harness_fmt("clusters:\n"
                    "- {name: grow, connect_timeout: 1s, endpoints: [{address: %s}]}\n"
                    "- {name: drain, connect_timeout: 1s, endpoints: [{address: %s}]}\n"
                    "- {name: split, connect_timeout: 1s, endpoints: [{address: %s}, {address: %s}]}\n",
                    g_addr[U1], g_addr[U1], g_addr[U1], g_addr[U2]);
    g_cp = harness_start_cp(snap, 0);
    free(snap);
    if (g_cp == NULL)
        return -1;
    char *xds = harness_yaml_cluster("xds_cluster", &g_cp->port, 1, NULL);
    harness_listener_spec_t l = {.virtual_hosts = VHOSTS};
    char *body = harness_yaml_bootstrap(&l, 1, &xds, 1);
    char *ads = harness_yaml_ads(NODE, NULL);
    char *yaml = harness_fmt("%s%s", ads, body);
    free(xds);
    free(body);
    free(ads);
    const char *args[] = {"--workers", "2", NULL};
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
    return 0;
}

/* A failed check leaves its test's load running: stop it before the next test. */
static int test_teardown(void **state)
{
    harness_load_stop_all();
    return 0;
}

static harness_load_t *start_load(const char *host)
{
    char *url = harness_fmt("http://127.0.0.1:%d/status/200", g_port);
    harness_load_spec_t spec = {.url = url,
                                .host = host,
                                .connections = LOAD_CONNECTIONS,
                                .rate_per_s = LOAD_RATE,
                                .max_requests = LOAD_MAX,
                                .max_duration_ms = LOAD_MAX_MS,
                                .timeout_ms = 10000};
    harness_load_t *l = harness_load_start(&spec);
    free(url);
    IT_ASSERT(l != NULL, "cannot start the load");
    return l;
}

/* Waits for n more completed requests of l. */
static void load_more(harness_load_t *l, uint64_t n, harness_load_stats_t *out)
{
    harness_load_stats_t s;
    harness_load_snapshot(l, &s);
    IT_ASSERT(harness_load_wait(l, s.completed + n, 20000) == 0,
              "the load did not complete %llu more requests", (unsigned long long)n);
    if (out != NULL)
        harness_load_snapshot(l, out);
}

/* Counts per upstream over a window of n requests that starts SETTLE requests from now. */
typedef struct {
    uint64_t total;
    uint64_t by[NUM_UPSTREAMS];
    uint64_t failed;
} window_t;

static void measure(harness_load_t *l, uint64_t n, window_t *w)
{
    harness_load_stats_t a, b;
    load_more(l, SETTLE, &a);
    load_more(l, n, &b);
    w->total = b.completed - a.completed;
    for (int i = 0; i < NUM_UPSTREAMS; i++)
        w->by[i] = harness_load_id_count(&b, g_names[i]) - harness_load_id_count(&a, g_names[i]);
    w->failed = (b.bad_status + b.transport_errors) - (a.bad_status + a.transport_errors);
}

static void assert_share(const window_t *w, int u, double want, const char *what)
{
    double got = w->total > 0 ? (double)w->by[u] / (double)w->total : 0;
    IT_ASSERT(got >= want - TOLERANCE && got <= want + TOLERANCE,
              "%s: %s got %.3f of %llu requests (u1 %llu, u2 %llu, u3 %llu), expected %.3f +- %.2f", what,
              g_names[u], got, (unsigned long long)w->total, (unsigned long long)w->by[U1],
              (unsigned long long)w->by[U2], (unsigned long long)w->by[U3], want, TOLERANCE);
}

/* Applies a mutation (NULL-terminated cpctl arguments) and waits for the node's ACK. */
#define MUTATE(...)                                                                                          \
    do {                                                                                                     \
        long v_ = harness_cp_mutate(g_cp->address, __VA_ARGS__, (char *)NULL);                               \
        IT_ASSERT(v_ > 0, "remora-cpctl mutation failed");                                                   \
        IT_ASSERT(harness_cp_wait_ack(g_cp->address, NODE, v_, 10000) == 0, "version %ld not ACKed", v_);    \
    } while (0)

/* Waits until remora's /clusters shows (or no longer shows) "cluster::addr::suffix". */
static void wait_clusters(const char *cluster, int u, const char *suffix, bool present)
{
    char *needle = harness_fmt("%s::%s::%s", cluster, g_addr[u], suffix);
    int rc = harness_wait_admin_body(g_remora->admin, "/clusters", needle, present, 5000);
    IT_ASSERT(rc == 0, "/clusters should %s %s", present ? "show" : "no longer show", needle);
    free(needle);
}

static void stop_and_check(harness_load_t *l, const char *what)
{
    harness_load_stats_t s;
    harness_load_stop(l, &s);
    IT_ASSERT(s.bad_status == 0 && s.transport_errors == 0,
              "%s: %llu of %llu requests failed (%llu bad statuses, %llu without a response); first: %s; "
              "last: %s",
              what, (unsigned long long)(s.bad_status + s.transport_errors), (unsigned long long)s.completed,
              (unsigned long long)s.bad_status, (unsigned long long)s.transport_errors, s.first_failure,
              s.last_failure);
    IT_ASSERT(s.ok == s.completed && s.completed > 0, "%s: %llu ok of %llu", what, (unsigned long long)s.ok,
              (unsigned long long)s.completed);
}

/* add-endpoint under load: the new endpoint takes its share at once (1/2, then with a third endpoint
 * of weight 2: 1/4, 1/4, 1/2). */
static void test_added_endpoint_takes_its_share(void **state)
{
    harness_load_t *l = start_load("grow");
    window_t w;
    measure(l, 100, &w);
    IT_ASSERT(w.by[U1] == w.total && w.failed == 0,
              "before any change every request goes to u1: %llu of %llu", (unsigned long long)w.by[U1],
              (unsigned long long)w.total);

    MUTATE("add-endpoint", "--cluster", "grow", "--address", g_addr[U2]);
    wait_clusters("grow", U2, "weight::1", true);
    measure(l, 400, &w);
    assert_share(&w, U2, 0.5, "after adding u2");
    assert_share(&w, U1, 0.5, "after adding u2");

    MUTATE("add-endpoint", "--cluster", "grow", "--address", g_addr[U3], "--weight", "2");
    wait_clusters("grow", U3, "weight::2", true);
    measure(l, 600, &w);
    assert_share(&w, U3, 0.5, "after adding u3 (weight 2)");
    assert_share(&w, U1, 0.25, "after adding u3 (weight 2)");
    assert_share(&w, U2, 0.25, "after adding u3 (weight 2)");
    stop_and_check(l, "adding endpoints under load");
}

/* remove-endpoint under load: no request fails, the removed endpoint gets no new request, and a slow
 * request already in flight on it completes with 200. */
static void test_removed_endpoint_drains_without_failures(void **state)
{
    /* The slow request first, while drain has u1 only and nothing else runs on it: the cluster's
     * active-request gauge then proves that it is in flight on u1. */
    char *slow_url = harness_fmt("http://127.0.0.1:%d/delay/4000", g_port);
    harness_load_spec_t slow_spec = {
        .url = slow_url, .host = "drain", .max_requests = 1, .timeout_ms = 15000};
    harness_load_t *slow = harness_load_start(&slow_spec);
    free(slow_url);
    IT_ASSERT(slow != NULL, "cannot start the slow request");
    IT_ASSERT(harness_wait_stat(g_remora->admin, "cluster.drain.upstream_rq_active", HARNESS_EQ, 1, 5000) ==
                  0,
              "the slow request should be in flight on drain's only endpoint, u1");

    harness_load_t *l = start_load("drain");
    window_t w;
    measure(l, 60, &w);
    IT_ASSERT(w.by[U1] == w.total, "drain has u1 only: %llu of %llu", (unsigned long long)w.by[U1],
              (unsigned long long)w.total);

    MUTATE("add-endpoint", "--cluster", "drain", "--address", g_addr[U2]);
    wait_clusters("drain", U2, "weight::1", true);
    measure(l, 100, &w);
    assert_share(&w, U2, 0.5, "drain after adding u2");

    MUTATE("remove-endpoint", "--cluster", "drain", "--address", g_addr[U1]);
    wait_clusters("drain", U1, "weight::", false);
    harness_load_stats_t s;
    harness_load_snapshot(slow, &s);
    IT_ASSERT(s.completed == 0,
              "the slow request finished before u1 was removed (after %lld ms): the test proves nothing; "
              "make it slower",
              (long long)s.elapsed_ms);
    measure(l, 300, &w);
    IT_ASSERT(w.by[U1] == 0 && w.by[U2] == w.total,
              "after removing u1: u1 got %llu, u2 %llu of %llu requests", (unsigned long long)w.by[U1],
              (unsigned long long)w.by[U2], (unsigned long long)w.total);

    IT_ASSERT(harness_load_wait(slow, 1, 10000) == 0, "the slow request never finished");
    harness_load_stop(slow, &s);
    IT_ASSERT(s.ok == 1 && harness_load_id_count(&s, "u1") == 1,
              "the request in flight on u1 when u1 was removed should complete with 200 from u1: %s",
              s.first_failure[0] != '\0' ? s.first_failure : "(it came from another upstream)");
    stop_and_check(l, "removing an endpoint under load");
}

/* set-weight under load: 1:1 -> 3:1 moves the split from 1/2 to 3/4 for u1. */
static void test_weight_change_moves_the_split(void **state)
{
    harness_load_t *l = start_load("split");
    window_t w;
    measure(l, 400, &w);
    assert_share(&w, U1, 0.5, "split at 1:1");
    assert_share(&w, U2, 0.5, "split at 1:1");

    MUTATE("set-weight", "--cluster", "split", "--address", g_addr[U1], "--weight", "3");
    wait_clusters("split", U1, "weight::3", true);
    measure(l, 800, &w);
    assert_share(&w, U1, 0.75, "split at 3:1");
    assert_share(&w, U2, 0.25, "split at 3:1");
    IT_ASSERT(w.by[U3] == 0, "u3 is not in split");

    MUTATE("set-weight", "--cluster", "split", "--address", g_addr[U1], "--weight", "1");
    wait_clusters("split", U1, "weight::1", true);
    measure(l, 400, &w);
    assert_share(&w, U1, 0.5, "split back at 1:1");
    stop_and_check(l, "changing weights under load");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_added_endpoint_takes_its_share, test_teardown),
        cmocka_unit_test_teardown(test_removed_endpoint_drains_without_failures, test_teardown),
        cmocka_unit_test_teardown(test_weight_change_moves_the_split, test_teardown),
    };
    return cmocka_run_group_tests_name("xds_updates", tests, group_setup, group_teardown);
}
