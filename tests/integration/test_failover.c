/* Primary-to-secondary failover under continuous load, with zero client errors.
 *
 * Cluster "tiered": priority 0 = p1, p2 (primaries), priority 1 = s1 (the secondary endpoint). The
 * route retries connect failures and resets on another host (previous_hosts) and another priority
 * (previous_priorities). Both primaries are killed while requests keep flowing: every request still
 * succeeds, answered by s1. The primaries come back on the same ports: traffic returns to them and
 * s1 stops receiving any. Also: weighted shares measured at the upstreams for a static 3:1 split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static harness_remora_t *g_remora;
static int g_port;
static int g_p1, g_p2, g_s1, g_w1, g_w3;
static harness_proc_t *g_p1_proc, *g_p2_proc;

#define EP "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}"

static int group_setup(void **state)
{
    (void)state;
    g_p1 = harness_start_upstream("p1", &g_p1_proc);
    g_p2 = harness_start_upstream("p2", &g_p2_proc);
    g_s1 = harness_start_upstream("s1", NULL);
    g_w1 = harness_start_upstream("w1", NULL);
    g_w3 = harness_start_upstream("w3", NULL);
    if (g_p1 < 0 || g_p2 < 0 || g_s1 < 0 || g_w1 < 0 || g_w3 < 0)
        return -1;
    char *clusters[2];
    clusters[0] =
        harness_fmt("{name: tiered, connect_timeout: 1s, load_assignment: {cluster_name: tiered, endpoints: ["
                    "{priority: 0, lb_endpoints: [" EP ", " EP "]},"
                    "{priority: 1, lb_endpoints: [" EP "]}]}}",
                    g_p1, g_p2, g_s1);
    clusters[1] =
        harness_fmt("{name: weighted, connect_timeout: 1s, load_assignment: {cluster_name: weighted, "
                    "endpoints: [{lb_endpoints: ["
                    "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}, "
                    "load_balancing_weight: 1},"
                    "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}, "
                    "load_balancing_weight: 3}]}]}}",
                    g_w1, g_w3);
    harness_listener_spec_t listener = {
        .virtual_hosts =
            "[{name: tiered, domains: [tiered], routes: [{match: {prefix: /}, route: {cluster: tiered,"
            "  retry_policy: {retry_on: \"connect-failure,reset,5xx\", num_retries: 3,"
            "   retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}],"
            "   retry_priority: {name: envoy.retry_priorities.previous_priorities, typed_config: {\"@type\": "
            "    "
            "type.googleapis.com/"
            "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig,"
            "    update_frequency: 1}}}}}]},"
            " {name: weighted, domains: [weighted], routes: [{match: {prefix: /}, route: {cluster: "
            "weighted}}]}]",
    };
    char *yaml = harness_yaml_bootstrap(&listener, 1, clusters, 2);
    free(clusters[0]);
    free(clusters[1]);
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
    harness_load_stop_all();
    harness_kill_all();
    return 0;
}

static void snapshot_after(harness_load_t *l, uint64_t more, harness_load_stats_t *s)
{
    harness_load_stats_t now;
    harness_load_snapshot(l, &now);
    IT_ASSERT(harness_load_wait(l, now.completed + more, 20000) == 0,
              "the load stopped making progress (%llu completed)", (unsigned long long)now.completed);
    harness_load_snapshot(l, s);
    IT_ASSERT(s->bad_status == 0 && s->transport_errors == 0,
              "clients saw errors: %llu bad statuses, %llu transport errors; first: %s",
              (unsigned long long)s->bad_status, (unsigned long long)s->transport_errors, s->first_failure);
}

static int restart_on(const char *name, int port, harness_proc_t **proc)
{
    char *listen = harness_fmt("127.0.0.1:%d", port);
    const char *args[] = {"--listen", listen, NULL};
    int got = harness_start_upstream_args(name, args, proc);
    free(listen);
    return got;
}

static void test_primaries_fail_over_and_back(void **state)
{
    (void)state;
    char *url = harness_fmt("http://127.0.0.1:%d/headers", g_port);
    harness_load_spec_t spec = {.url = url,
                                .host = "tiered",
                                .connections = 2,
                                .rate_per_s = 150,
                                .max_requests = 20000,
                                .max_duration_ms = 60000};
    harness_load_t *l = harness_load_start(&spec);
    free(url);
    IT_ASSERT(l != NULL, "load did not start");

    harness_load_stats_t s;
    snapshot_after(l, 100, &s);
    IT_ASSERT(harness_load_id_count(&s, "s1") == 0, "with both primaries up the secondary got %llu requests",
              (unsigned long long)harness_load_id_count(&s, "s1"));

    /* Both primaries die. */
    IT_ASSERT(harness_proc_terminate(g_p1_proc, SIGKILL, 5000, NULL) == 0, "could not kill p1");
    IT_ASSERT(harness_proc_terminate(g_p2_proc, SIGKILL, 5000, NULL) == 0, "could not kill p2");
    harness_load_stats_t down0;
    harness_load_snapshot(l, &down0);
    snapshot_after(l, 200, &s);
    uint64_t s1_down = harness_load_id_count(&s, "s1") - harness_load_id_count(&down0, "s1");
    IT_ASSERT(s1_down >= 190,
              "after the primaries died the secondary should answer (nearly) every request, got %llu "
              "of 200",
              (unsigned long long)s1_down);
    uint64_t retries = 0;
    IT_ASSERT(harness_stat(g_remora->admin, "cluster.tiered.upstream_rq_retry", &retries) == 0 &&
                  retries >= 190,
              "the requests should reach s1 through retries (%llu)", (unsigned long long)retries);

    /* They come back on the same addresses: traffic returns to priority 0. */
    IT_ASSERT(restart_on("p1", g_p1, &g_p1_proc) == g_p1, "p1 did not restart on port %d", g_p1);
    IT_ASSERT(restart_on("p2", g_p2, &g_p2_proc) == g_p2, "p2 did not restart on port %d", g_p2);
    snapshot_after(l, 50, &s); /* let requests in flight at the restart finish */
    harness_load_stats_t back0 = s;
    snapshot_after(l, 200, &s);
    uint64_t s1_back = harness_load_id_count(&s, "s1") - harness_load_id_count(&back0, "s1");
    uint64_t p_back = harness_load_id_count(&s, "p1") + harness_load_id_count(&s, "p2") -
                      harness_load_id_count(&back0, "p1") - harness_load_id_count(&back0, "p2");
    IT_ASSERT(s1_back == 0 && p_back >= 200, "after recovery: secondary %llu, primaries %llu of the last 200",
              (unsigned long long)s1_back, (unsigned long long)p_back);

    harness_load_stats_t final;
    harness_load_stop(l, &final);
    IT_ASSERT(final.bad_status == 0 && final.transport_errors == 0 && final.ok == final.completed,
              "%llu of %llu requests failed; first: %s", (unsigned long long)(final.completed - final.ok),
              (unsigned long long) final.completed, final.first_failure);
}

/* load_balancing_weight 1:3 with round robin: over whole cycles the shares are exact. */
static void test_weighted_shares(void **state)
{
    (void)state;
    char *url = harness_fmt("http://127.0.0.1:%d/headers", g_port);
    harness_load_spec_t spec = {.url = url, .host = "weighted", .connections = 1, .max_requests = 400};
    harness_load_t *l = harness_load_start(&spec);
    free(url);
    IT_ASSERT(l != NULL, "load did not start");
    IT_ASSERT(harness_load_wait(l, 400, 20000) == 0, "400 requests did not complete");
    harness_load_stats_t s;
    harness_load_stop(l, &s);
    uint64_t w1 = harness_load_id_count(&s, "w1"), w3 = harness_load_id_count(&s, "w3");
    IT_ASSERT(s.ok == 400, "%llu of 400 succeeded", (unsigned long long)s.ok);
    /* One worker, one LB: 100 cycles of 4 picks, whatever the starting point (+-1 for a partial cycle). */
    IT_ASSERT(w1 >= 99 && w1 <= 101 && w3 >= 299 && w3 <= 301, "shares w1 %llu, w3 %llu (expected 100:300)",
              (unsigned long long)w1, (unsigned long long)w3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_shares),
        cmocka_unit_test(test_primaries_fail_over_and_back),
    };
    return cmocka_run_group_tests_name("failover", tests, group_setup, group_teardown);
}
