/* Resilience of dynamic configuration: an invalid push is NACKed and changes nothing; losing the
 * control plane changes nothing; a control plane restarted on the same port is reconnected to, ACKed
 * and obeyed.
 *
 * Each test runs its own remora-cp and remora (--workers 2, node "sidecar") in front of two test
 * upstreams (r1, r2), with one cluster "svc" (r1 + r2) that comes by CDS, and a background load (two
 * keep-alive connections, paced) that runs through every step and must not see a single failure.
 * Shares are measured per x-upstream-id over windows of the load (see test_xds_updates.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE             "sidecar"
#define CLUSTER_TYPE_URL "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define LOAD_CONNECTIONS 2
#define LOAD_RATE        150
#define LOAD_MAX         30000
#define LOAD_MAX_MS      45000
#define SETTLE           20
#define TOLERANCE        0.05

enum { R1, R2, NUM_UPSTREAMS };
static const char *const g_names[NUM_UPSTREAMS] = {"r1", "r2"};
static char g_addr[NUM_UPSTREAMS][32];
static harness_cp_t *g_cp;
static harness_remora_t *g_remora;
static int g_port;

/* The snapshot: svc = r1 (weight w1) + r2. */
static char *snapshot(int w1)
{
    return harness_fmt("clusters:\n"
                       "- name: svc\n"
                       "  connect_timeout: 1s\n"
                       "  endpoints:\n"
                       "  - {address: %s, weight: %d}\n"
                       "  - {address: %s}\n",
                       g_addr[R1], w1, g_addr[R2]);
}

static int setup(void **state)
{
    for (int i = 0; i < NUM_UPSTREAMS; i++) {
        int port = harness_start_upstream(g_names[i], NULL);
        if (port < 0)
            return -1;
        snprintf(g_addr[i], sizeof(g_addr[i]), "127.0.0.1:%d", port);
    }
    char *snap = snapshot(1);
    g_cp = harness_start_cp(snap, 0);
    free(snap);
    if (g_cp == NULL)
        return -1;
    char *xds = harness_yaml_cluster("xds_cluster", &g_cp->port, 1, NULL);
    harness_listener_spec_t l = {.virtual_hosts = "[{name: all, domains: [\"*\"], routes: [{match: {prefix: "
                                                  "\"/\"}, route: {cluster: svc, timeout: 10s}}]}]"};
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

static int teardown(void **state)
{
    harness_kill_all(); /* the load first, then every process */
    return 0;
}

static harness_load_t *start_load(void)
{
    char *url = harness_fmt("http://127.0.0.1:%d/status/200", g_port);
    harness_load_spec_t spec = {.url = url,
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

static void load_more(harness_load_t *l, uint64_t n, harness_load_stats_t *out)
{
    harness_load_stats_t s;
    harness_load_snapshot(l, &s);
    IT_ASSERT(harness_load_wait(l, s.completed + n, 20000) == 0,
              "the load did not complete %llu more requests", (unsigned long long)n);
    harness_load_snapshot(l, out);
}

typedef struct {
    uint64_t total;
    uint64_t by[NUM_UPSTREAMS];
    uint64_t failed;
} window_t;

/* A window of n requests, starting SETTLE requests from now. */
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

/* r1's share of the window is want (+- TOLERANCE), r2 has the rest, nothing failed. */
static void assert_split(const window_t *w, double want, const char *what)
{
    double got = w->total > 0 ? (double)w->by[R1] / (double)w->total : 0;
    IT_ASSERT(w->failed == 0 && w->by[R1] + w->by[R2] == w->total,
              "%s: of %llu requests %llu failed, r1 answered %llu, r2 %llu", what,
              (unsigned long long)w->total, (unsigned long long)w->failed, (unsigned long long)w->by[R1],
              (unsigned long long)w->by[R2]);
    IT_ASSERT(got >= want - TOLERANCE && got <= want + TOLERANCE,
              "%s: r1 got %.3f of %llu requests (r1 %llu, r2 %llu), expected %.3f +- %.2f", what, got,
              (unsigned long long)w->total, (unsigned long long)w->by[R1], (unsigned long long)w->by[R2],
              want, TOLERANCE);
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

static uint64_t stat_or_fail(const char *name)
{
    uint64_t v = 0;
    IT_ASSERT(harness_stat(g_remora->admin, name, &v) == 0, "stat %s missing from /stats", name);
    return v;
}

/* The value of "key": "..." in the first JSON object of text after `after` (remora-cpctl --json output
 * is indented, one key per line); "" if absent. Unescapes nothing: the tests compare plain text. */
static void json_field(const char *text, const char *after, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    const char *p = after != NULL ? strstr(text, after) : text;
    if (p == NULL)
        return;
    const char *end = strchr(p, '}');
    char *k = harness_fmt("\"%s\": \"", key);
    const char *v = strstr(p, k);
    if (v != NULL && (end == NULL || v < end)) {
        v += strlen(k);
        const char *q = v;
        while (*q != '\0' && !(*q == '"' && q[-1] != '\\'))
            q++;
        snprintf(out, cap, "%.*s", (int)(q - v), v);
    }
    free(k);
}

/* An invalid cluster (lb_policy MAGLEV, which remora does not support; the endpoints kept as they are)
 * is NACKed with a message naming the cluster and the field, counted in update_rejected, and changes
 * nothing: the same upstreams in the same shares, no failed request. A valid push afterwards is
 * accepted again. */
static void test_invalid_cluster_nacked_traffic_unchanged(void **state)
{
    harness_load_t *l = start_load();
    window_t w;
    measure(l, 300, &w);
    assert_split(&w, 0.5, "before the invalid push");
    uint64_t success_before = stat_or_fail("cluster_manager.cds.update_success");
    uint64_t version_before = stat_or_fail("cluster_manager.cds.version");
    IT_ASSERT(stat_or_fail("cluster_manager.cds.update_rejected") == 0, "nothing rejected yet");

    char ep1[48], ep2[48];
    snprintf(ep1, sizeof(ep1), "%s,1", g_addr[R1]);
    snprintf(ep2, sizeof(ep2), "%s,1", g_addr[R2]);
    long bad =
        harness_cp_mutate(g_cp->address, "upsert-cluster", "--name", "svc", "--lb-policy", "MAGLEV",
                          "--connect-timeout", "1s", "--endpoint", ep1, "--endpoint", ep2, (char *)NULL);
    IT_ASSERT(bad > 1, "upsert-cluster (MAGLEV) failed");
    char v[32], t[32];
    snprintf(v, sizeof(v), "%ld", bad);
    snprintf(t, sizeof(t), "%dms", 10000);
    harness_cmd_t cmd;
    int rc = harness_cpctl(g_cp->address, 20000, &cmd, "wait-ack", "--node", NODE, "--version", v,
                           "--timeout", t, (char *)NULL);
    IT_ASSERT(rc == 1 && strstr(cmd.out, "not acked") != NULL && strstr(cmd.out, "MAGLEV") != NULL,
              "wait-ack for the invalid version %ld should report the NACK (exit 1): exit %d, \"%s\" \"%s\"",
              bad, rc, cmd.out, cmd.err);
    harness_cmd_free(&cmd);

    rc = harness_cpctl(g_cp->address, 10000, &cmd, "--json", "nodes", (char *)NULL);
    IT_ASSERT(rc == 0, "remora-cpctl --json nodes: exit %d %s", rc, cmd.err);
    char acked[32], nacked[32], message[512], connected[8];
    json_field(cmd.out, CLUSTER_TYPE_URL, "acked_version", acked, sizeof(acked));
    json_field(cmd.out, CLUSTER_TYPE_URL, "nacked_version", nacked, sizeof(nacked));
    json_field(cmd.out, CLUSTER_TYPE_URL, "nack_message", message, sizeof(message));
    IT_ASSERT(strstr(cmd.out, "\"node_id\": \"" NODE "\"") != NULL, "node %s not listed: %s", NODE, cmd.out);
    snprintf(connected, sizeof(connected), "%s",
             strstr(cmd.out, "\"connected\": true") != NULL ? "yes" : "no");
    IT_ASSERT(strcmp(nacked, v) == 0, "CDS nacked_version \"%s\", expected \"%s\": %s", nacked, v, cmd.out);
    IT_ASSERT(strcmp(acked, v) != 0 && atol(acked) == bad - 1,
              "CDS acked_version \"%s\": should stay at the version before the invalid one (%ld)", acked,
              bad - 1);
    IT_ASSERT(strstr(message, "cluster 'svc'") != NULL && strstr(message, "lb_policy") != NULL &&
                  strstr(message, "MAGLEV") != NULL,
              "the NACK message should name the cluster, the field and the value: \"%s\"", message);
    IT_ASSERT(strcmp(connected, "yes") == 0, "the node should still be connected: %s", cmd.out);
    harness_cmd_free(&cmd);

    IT_ASSERT(
        harness_wait_stat(g_remora->admin, "cluster_manager.cds.update_rejected", HARNESS_EQ, 1, 5000) == 0,
        "cluster_manager.cds.update_rejected should be 1");
    IT_ASSERT(stat_or_fail("cluster_manager.cds.update_success") == success_before,
              "the rejected update must not count as a success");
    IT_ASSERT(stat_or_fail("cluster_manager.cds.version") == version_before,
              "cluster_manager.cds.version must stay at the accepted version");
    measure(l, 300, &w);
    assert_split(&w, 0.5, "after the NACKed push");

    /* a valid update after the NACK is accepted */
    long good =
        harness_cp_mutate(g_cp->address, "upsert-cluster", "--name", "svc", "--lb-policy", "ROUND_ROBIN",
                          "--connect-timeout", "1s", "--endpoint", ep1, "--endpoint", ep2, (char *)NULL);
    IT_ASSERT(good > bad, "upsert-cluster (ROUND_ROBIN) failed");
    IT_ASSERT(harness_cp_wait_ack(g_cp->address, NODE, good, 10000) == 0, "version %ld should be ACKed",
              good);
    IT_ASSERT(stat_or_fail("cluster_manager.cds.update_rejected") == 1, "update_rejected should stay 1");
    IT_ASSERT(harness_wait_stat(g_remora->admin, "cluster_manager.cds.update_success", HARNESS_EQ,
                                success_before + 1, 5000) == 0,
              "the valid update should count as a success");
    measure(l, 300, &w);
    assert_split(&w, 0.5, "after the valid push");
    stop_and_check(l, "invalid push under load");
}

/* SIGKILL remora-cp under load: no request fails and remora keeps serving the last accepted
 * configuration (a non-default split, 3:1); connected_state goes 0. remora-cp restarted on the same
 * port with the same content: remora reconnects (connected_state 1), ACKs the new control plane's
 * version, still splits 3:1, and applies an update made after the restart (back to 1:1). */
static void test_control_plane_loss_and_restart(void **state)
{
    harness_load_t *l = start_load();
    long v = harness_cp_mutate(g_cp->address, "set-weight", "--cluster", "svc", "--address", g_addr[R1],
                               "--weight", "3", (char *)NULL);
    IT_ASSERT(v > 1, "set-weight failed");
    IT_ASSERT(harness_cp_wait_ack(g_cp->address, NODE, v, 10000) == 0, "version %ld not ACKed", v);
    char *needle = harness_fmt("svc::%s::weight::3", g_addr[R1]);
    IT_ASSERT(harness_wait_admin_body(g_remora->admin, "/clusters", needle, true, 5000) == 0,
              "/clusters should show %s", needle);
    free(needle);
    window_t w;
    measure(l, 400, &w);
    assert_split(&w, 0.75, "3:1 with the control plane up");
    IT_ASSERT(stat_or_fail("control_plane.connected_state") == 1, "connected_state should be 1");
    uint64_t success_before = stat_or_fail("cluster_manager.cds.update_success");
    IT_ASSERT(stat_or_fail("cluster_manager.eds.version") == (uint64_t)v, "eds.version should be %ld", v);

    int port = g_cp->port;
    harness_proc_terminate(g_cp->proc, SIGKILL, 5000, NULL);
    IT_ASSERT(harness_wait_stat(g_remora->admin, "control_plane.connected_state", HARNESS_EQ, 0, 10000) == 0,
              "connected_state should drop to 0 once remora-cp is gone");
    /* short, so that remora's reconnect backoff stays short too */
    measure(l, 200, &w);
    assert_split(&w, 0.75, "3:1 without a control plane");

    /* the same content as the killed one served (the 3:1 it had after set-weight) */
    char *snap = snapshot(3);
    harness_cp_t *cp2 = harness_start_cp(snap, port);
    free(snap);
    IT_ASSERT(cp2 != NULL, "remora-cp did not restart on port %d", port);
    g_cp = cp2;
    IT_ASSERT(harness_wait_stat(g_remora->admin, "control_plane.connected_state", HARNESS_EQ, 1, 40000) == 0,
              "remora should reconnect to the restarted remora-cp");
    IT_ASSERT(harness_cp_wait_ack(g_cp->address, NODE, 1, 20000) == 0,
              "remora should ACK the restarted control plane's version 1");
    IT_ASSERT(harness_wait_stat(g_remora->admin, "cluster_manager.cds.update_success", HARNESS_GE,
                                success_before + 1, 5000) == 0,
              "the restarted control plane's CDS response should be accepted");
    IT_ASSERT(stat_or_fail("cluster_manager.cds.version") == 1, "cds.version should be the new server's 1");
    /* it was 2 (set-weight) from the first server: 1 proves the new server's EDS was applied */
    IT_ASSERT(stat_or_fail("cluster_manager.eds.version") == 1, "eds.version should be the new server's 1");
    measure(l, 400, &w);
    assert_split(&w, 0.75, "3:1 after reconnecting");

    v = harness_cp_mutate(g_cp->address, "set-weight", "--cluster", "svc", "--address", g_addr[R1],
                          "--weight", "1", (char *)NULL);
    IT_ASSERT(v == 2, "set-weight on the restarted control plane: version %ld, expected 2", v);
    IT_ASSERT(harness_cp_wait_ack(g_cp->address, NODE, v, 10000) == 0, "version %ld not ACKed", v);
    needle = harness_fmt("svc::%s::weight::1", g_addr[R1]);
    IT_ASSERT(harness_wait_admin_body(g_remora->admin, "/clusters", needle, true, 5000) == 0,
              "/clusters should show %s", needle);
    free(needle);
    measure(l, 400, &w);
    assert_split(&w, 0.5, "1:1 pushed after the restart");
    stop_and_check(l, "control plane loss and restart under load");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invalid_cluster_nacked_traffic_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_plane_loss_and_restart, setup, teardown),
    };
    return cmocka_run_group_tests_name("xds_resilience", tests, NULL, NULL);
}
