/* Dynamic service discovery: clusters and endpoints that arrive over ADS from a real remora-cp.
 *
 * Each test runs its own remora-cp and remora (node "sidecar") in front of two test upstreams (d1,
 * d2). The listener routes Host "late" to cluster "late" and everything else to cluster "backend";
 * neither is in the bootstrap: both come by CDS, their endpoints by EDS. Every change is made with
 * remora-cpctl and waited for with `remora-cpctl wait-ack` (the node has ACKed the version that holds
 * it), never with a sleep.
 *
 * What remora answers, precisely:
 * - a route to a cluster that CDS has not delivered (or has removed): 503 "no cluster", access log
 *   flag NC, http.<prefix>.no_cluster counted;
 * - a cluster that exists with no endpoint: 503 "no healthy upstream", flag UH;
 * - /ready: 503 "PRE_INITIALIZING" until the first CDS response and the EDS of its clusters have
 *   been applied, then 200; the listeners are bound from the start but accept only then, so a
 *   request sent early waits and is served. */
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

#define NODE "sidecar"
#define VHOSTS                                                                                               \
    "[{name: late, domains: [\"late\"], routes: [{match: {prefix: \"/\"}, route: {cluster: late, timeout: "  \
    "5s}}]},"                                                                                                \
    " {name: all, domains: [\"*\"], routes: [{match: {prefix: \"/\"}, route: {cluster: backend, timeout: "   \
    "5s}}]}]"

static int g_d1, g_d2;
static char *g_access_log;

static int setup(void **state)
{
    g_d1 = harness_start_upstream("d1", NULL);
    g_d2 = harness_start_upstream("d2", NULL);
    g_access_log = harness_path("access.log");
    unlink(g_access_log);
    return g_d1 > 0 && g_d2 > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    harness_kill_all();
    free(g_access_log);
    g_access_log = NULL;
    return 0;
}

/* The bootstrap: node + ADS on cp_port, one listener with VHOSTS and an access log, and xds_cluster. */
static char *bootstrap(int cp_port, const char *cds_extra)
{
    char *xds = harness_yaml_cluster("xds_cluster", &cp_port, 1, NULL);
    harness_listener_spec_t l = {.access_log_path = g_access_log, .virtual_hosts = VHOSTS};
    char *body = harness_yaml_bootstrap(&l, 1, &xds, 1);
    char *ads = harness_yaml_ads(NODE, cds_extra);
    char *y = harness_fmt("%s%s", ads, body);
    free(xds);
    free(body);
    free(ads);
    return y;
}

/* A snapshot with cluster backend -> d1 and, when with_late, cluster late -> d2. */
static char *snapshot(bool with_late)
{
    char *s = harness_fmt("clusters:\n"
                          "- name: backend\n"
                          "  connect_timeout: 1s\n"
                          "  endpoints:\n"
                          "  - {address: 127.0.0.1:%d}\n",
                          g_d1);
    if (with_late) {
        char *t = harness_fmt("%s- name: late\n"
                              "  connect_timeout: 1s\n"
                              "  endpoints:\n"
                              "  - {address: 127.0.0.1:%d}\n",
                              s, g_d2);
        free(s);
        s = t;
    }
    return s;
}

/* Starts remora-cp with the snapshot, then remora, and waits for /ready. */
static void start_both(bool with_late, harness_cp_t **cp_out, harness_remora_t **r_out)
{
    char *snap = snapshot(with_late);
    harness_cp_t *cp = harness_start_cp(snap, 0);
    free(snap);
    IT_ASSERT(cp != NULL, "remora-cp did not start");
    char *yaml = bootstrap(cp->port, NULL);
    const char *args[] = {"--workers", "2", NULL};
    harness_remora_t *r = harness_start_remora(yaml, args);
    free(yaml);
    IT_ASSERT(r != NULL, "remora did not become ready with clusters from remora-cp");
    *cp_out = cp;
    *r_out = r;
}

/* GET http://127.0.0.1:port<path> with Host: host. Returns the status (0 on transport failure); the
 * x-upstream-id and body are copied to id/body (may be NULL). */
static long get(int port, const char *host, const char *path, char *id, size_t id_len, char *body,
                size_t body_len)
{
    char *url = harness_fmt("http://127.0.0.1:%d%s", port, path);
    char *hdr = harness_fmt("Host: %s", host);
    const char *headers[] = {hdr, NULL};
    harness_req_t req = {.url = url, .headers = headers, .timeout_ms = 5000};
    harness_resp_t resp;
    int rc = harness_http(&req, &resp);
    long status = rc == 0 ? resp.status : 0;
    if (id != NULL) {
        char *v = harness_resp_header(&resp, "x-upstream-id");
        snprintf(id, id_len, "%s", v != NULL ? v : "");
        free(v);
    }
    if (body != NULL)
        snprintf(body, body_len, "%s", rc == 0 ? resp.body : resp.error);
    harness_resp_free(&resp);
    free(url);
    free(hdr);
    return status;
}

/* The access log entry of the request whose path contains marker. */
static void access_entry(const char *marker, harness_access_entry_t *e)
{
    char *line = harness_wait_line_containing(g_access_log, marker, 3000);
    IT_ASSERT(line != NULL, "no access log line for %s in %s", marker, g_access_log);
    IT_ASSERT(harness_parse_access_line(line, e) == 0, "unparsable access log line: %s", line);
    free(line);
}

static uint64_t stat_or_fail(const harness_remora_t *r, const char *name)
{
    uint64_t v = 0;
    IT_ASSERT(harness_stat(r->admin, name, &v) == 0, "stat %s missing from /stats", name);
    return v;
}

/* remora starts before its control plane: /ready stays 503 PRE_INITIALIZING (and the listener
 * serves nothing) while remora cannot reach remora-cp, and turns 200 once remora-cp is up and the
 * first CDS response and the EDS of its cluster have been applied. */
static void test_ready_waits_for_first_cds_and_eds(void **state)
{
    int cp_port = harness_free_port();
    IT_ASSERT(cp_port > 0, "no free port for the control plane");
    /* initial_fetch_timeout far beyond the test: only the control plane can make remora ready */
    char *yaml = bootstrap(cp_port, "initial_fetch_timeout: 120s");
    const char *args[] = {"--workers", "2", NULL};
    harness_remora_t *r = harness_spawn_remora(yaml, args);
    free(yaml);
    IT_ASSERT(r != NULL, "remora did not start");

    /* remora has tried the control plane and failed twice (a stream failure is counted per type) */
    IT_ASSERT(harness_wait_stat(r->admin, "cluster_manager.cds.update_failure", HARNESS_GE, 2, 15000) == 0,
              "remora should keep failing to reach the (absent) control plane on 127.0.0.1:%d", cp_port);
    harness_resp_t resp;
    IT_ASSERT(harness_admin_get(r, "/ready", &resp) == 0, "GET /ready: %s", resp.error);
    IT_ASSERT(resp.status == 503 && strcmp(resp.body, "PRE_INITIALIZING\n") == 0,
              "/ready without a control plane: %ld \"%s\", expected 503 \"PRE_INITIALIZING\"", resp.status,
              resp.body);
    harness_resp_free(&resp);
    IT_ASSERT(stat_or_fail(r, "control_plane.connected_state") == 0, "connected_state should be 0");
    IT_ASSERT(stat_or_fail(r, "cluster_manager.cds.update_success") == 0, "no CDS response can have arrived");

    /* the listener is bound (the kernel completes connections) but remora does not serve it yet: a
     * request sent now gets no answer, and is served once remora is ready */
    IT_ASSERT(harness_admin_get(r, "/listeners", &resp) == 0 && resp.status == 200, "GET /listeners: %ld",
              resp.status);
    const char *colon = strrchr(resp.body, ':');
    int early_port = strncmp(resp.body, "ingress::", 9) == 0 && colon != NULL ? atoi(colon + 1) : -1;
    harness_resp_free(&resp);
    IT_ASSERT(early_port > 0, "/listeners should name the ingress listener before remora is ready");
    int fd = harness_tcp_connect(early_port, 2000);
    IT_ASSERT(fd >= 0, "connect to the not yet initialized listener");
    const char *early_req = "GET /status/200?step=early HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n";
    IT_ASSERT(harness_tcp_send(fd, early_req, (size_t)-1) == 0, "send the early request");
    harness_buf_t early = {0};
    /* a short look for a premature answer (asserted at the end, so that the rest is checked too) */
    harness_read_result_t early_rr = harness_tcp_read(fd, &early, NULL, 1, 200);
    char premature[256];
    snprintf(premature, sizeof(premature), "%s", early.data != NULL ? early.data : "");

    char *snap = snapshot(false);
    harness_cp_t *cp = harness_start_cp(snap, cp_port);
    free(snap);
    IT_ASSERT(cp != NULL, "remora-cp could not start on port %d (taken in the meantime?)", cp_port);

    /* remora's stream backoff is at most a few seconds at this point */
    IT_ASSERT(harness_remora_wait_ready(r, 20000) == 0, "remora did not become ready once remora-cp was up");
    IT_ASSERT(stat_or_fail(r, "cluster_manager.cds.update_success") >= 1, "ready before a CDS response");
    IT_ASSERT(stat_or_fail(r, "cluster_manager.eds.update_success") >= 1, "ready before an EDS response");
    IT_ASSERT(stat_or_fail(r, "control_plane.connected_state") == 1, "connected_state should be 1");
    IT_ASSERT(stat_or_fail(r, "cluster_manager.warming_clusters") == 0, "no cluster may still be warming");
    IT_ASSERT(stat_or_fail(r, "cluster_manager.active_clusters") == 2,
              "active clusters: xds_cluster and backend expected");
    IT_ASSERT(harness_cp_wait_ack(cp->address, NODE, 1, 10000) == 0, "node should have ACKed version 1");

    int port = harness_listener_port(r, "ingress");
    IT_ASSERT(port == early_port, "ingress listener on %d, was %d before ready", port, early_port);

    harness_read_result_t rr = early.len == 0 ? harness_tcp_read(fd, &early, NULL, 0, 5000) : early_rr;
    close(fd);
    char id[64], body[256];
    long st = get(port, "app", "/status/200", id, sizeof(id), body, sizeof(body));
    IT_ASSERT(st == 200 && strcmp(id, "d1") == 0,
              "request to backend: %ld from \"%s\" (%s), expected 200 from d1", st, id, body);

    IT_ASSERT(premature[0] == '\0',
              "before the first CDS/EDS (/ready 503) the listener must not serve requests; a request sent "
              "then was answered at once (%s): %.200s",
              harness_read_result_str(early_rr), premature);
    IT_ASSERT(rr == HARNESS_READ_EOF,
              "the early request (Connection: close) should be answered and closed: %s",
              harness_read_result_str(rr));
    harness_msg_t m;
    IT_ASSERT(harness_parse_response(early.data, early.len, false, &m) > 0,
              "early response unparsable: %.200s", early.data);
    char *early_id = harness_msg_header(&m, "x-upstream-id");
    IT_ASSERT(m.status == 200 && early_id != NULL && strcmp(early_id, "d1") == 0,
              "the request sent before ready: %d from %s, expected 200 from d1", m.status,
              early_id != NULL ? early_id : "(none)");
    free(early_id);
    harness_msg_free(&m);
    harness_buf_free(&early);
}

/* A route may name a cluster CDS has not delivered: 503 NC. Once the cluster arrives it exists but
 * has no endpoint (503 UH); once an endpoint arrives by EDS the route answers 200 from it. */
static void test_cluster_routable_once_cds_and_eds_arrive(void **state)
{
    harness_cp_t *cp;
    harness_remora_t *r;
    start_both(false, &cp, &r);
    int port = harness_listener_port(r, "ingress");
    char id[64], body[256];
    harness_access_entry_t e;

    long st = get(port, "late", "/status/200?step=before-cds", id, sizeof(id), body, sizeof(body));
    IT_ASSERT(st == 503 && strcmp(body, "no cluster") == 0,
              "route to a cluster that does not exist yet: %ld \"%s\", expected 503 \"no cluster\"", st,
              body);
    access_entry("step=before-cds", &e);
    IT_ASSERT(e.status == 503 && strcmp(e.flags, "NC") == 0 && strcmp(e.upstream_host, "-") == 0,
              "access log: status %d flags %s upstream %s, expected 503 NC -", e.status, e.flags,
              e.upstream_host);
    IT_ASSERT(stat_or_fail(r, "http.ingress_http.no_cluster") == 1,
              "http.ingress_http.no_cluster should be 1");

    /* the cluster, without endpoints */
    long v = harness_cp_mutate(cp->address, "upsert-cluster", "--name", "late", "--connect-timeout", "1s",
                               (char *)NULL);
    IT_ASSERT(v > 1, "upsert-cluster late failed");
    IT_ASSERT(harness_cp_wait_ack(cp->address, NODE, v, 10000) == 0, "version %ld (cluster late) not ACKed",
              v);
    IT_ASSERT(harness_wait_stat(r->admin, "cluster_manager.active_clusters", HARNESS_EQ, 3, 5000) == 0,
              "cluster late should be active after the ACK");
    st = get(port, "late", "/status/200?step=no-endpoints", id, sizeof(id), body, sizeof(body));
    IT_ASSERT(st == 503 && strcmp(body, "no healthy upstream") == 0,
              "cluster without endpoints: %ld \"%s\", expected 503 \"no healthy upstream\"", st, body);
    access_entry("step=no-endpoints", &e);
    IT_ASSERT(strcmp(e.flags, "UH") == 0, "access log flags %s, expected UH", e.flags);

    /* its endpoint, by EDS */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", g_d2);
    v = harness_cp_mutate(cp->address, "add-endpoint", "--cluster", "late", "--address", addr, (char *)NULL);
    IT_ASSERT(v > 1, "add-endpoint failed");
    IT_ASSERT(harness_cp_wait_ack(cp->address, NODE, v, 10000) == 0, "version %ld (endpoint) not ACKed", v);
    /* the first request after the ACK */
    st = get(port, "late", "/status/200?step=routable", id, sizeof(id), body, sizeof(body));
    IT_ASSERT(st == 200 && strcmp(id, "d2") == 0,
              "first request after the endpoint was ACKed: %ld from \"%s\" (%s), expected 200 from d2", st,
              id, body);
    access_entry("step=routable", &e);
    IT_ASSERT(e.status == 200 && strcmp(e.flags, "-") == 0, "access log: %d %s, expected 200 -", e.status,
              e.flags);
    IT_ASSERT(strcmp(e.upstream_host, addr) == 0, "access log upstream host %s, expected %s", e.upstream_host,
              addr);
    /* and on every worker: enough new connections to reach both */
    for (int i = 0; i < 20; i++) {
        st = get(port, "late", "/status/200", id, sizeof(id), body, sizeof(body));
        IT_ASSERT(st == 200 && strcmp(id, "d2") == 0, "request %d: %ld from \"%s\" (%s)", i, st, id, body);
    }
    st = get(port, "app", "/status/200", id, sizeof(id), body, sizeof(body));
    IT_ASSERT(st == 200 && strcmp(id, "d1") == 0, "backend unaffected: %ld from \"%s\"", st, id);
}

/* remove-cluster: new requests for it get 503 NC at once (after the ACK), a request already in flight
 * on it completes, and other clusters are unaffected. */
static void test_removed_cluster_answers_503(void **state)
{
    harness_cp_t *cp;
    harness_remora_t *r;
    start_both(true, &cp, &r);
    int port = harness_listener_port(r, "ingress");
    char id[64], body[256];
    long st = get(port, "late", "/status/200", id, sizeof(id), body, sizeof(body));
    IT_ASSERT(st == 200 && strcmp(id, "d2") == 0, "late before the removal: %ld from \"%s\" (%s)", st, id,
              body);
    uint64_t removed_before = stat_or_fail(r, "cluster_manager.cluster_removed");

    /* one slow request in flight on the cluster (the only request on it, so the gauge is its own) */
    char *slow_url = harness_fmt("http://127.0.0.1:%d/delay/2000", port);
    harness_load_spec_t slow_spec = {.url = slow_url, .host = "late", .max_requests = 1, .timeout_ms = 10000};
    harness_load_t *slow = harness_load_start(&slow_spec);
    free(slow_url);
    IT_ASSERT(slow != NULL, "cannot start the slow request");
    IT_ASSERT(harness_wait_stat(r->admin, "cluster.late.upstream_rq_active", HARNESS_EQ, 1, 5000) == 0,
              "the slow request should be in flight on cluster late");

    long v = harness_cp_mutate(cp->address, "remove-cluster", "--name", "late", (char *)NULL);
    IT_ASSERT(v > 1, "remove-cluster failed");
    IT_ASSERT(harness_cp_wait_ack(cp->address, NODE, v, 10000) == 0, "version %ld (removal) not ACKed", v);
    st = get(port, "late", "/status/200?step=removed", id, sizeof(id), body, sizeof(body));
    IT_ASSERT(
        st == 503 && strcmp(body, "no cluster") == 0,
        "first request after the removal was ACKed: %ld \"%s\" from \"%s\", expected 503 \"no cluster\"", st,
        body, id);
    harness_access_entry_t e;
    access_entry("step=removed", &e);
    IT_ASSERT(e.status == 503 && strcmp(e.flags, "NC") == 0, "access log: %d %s, expected 503 NC", e.status,
              e.flags);
    for (int i = 0; i < 10; i++) {
        st = get(port, "late", "/status/200", id, sizeof(id), body, sizeof(body));
        IT_ASSERT(st == 503, "request %d after the removal: %ld from \"%s\"", i, st, id);
    }
    IT_ASSERT(stat_or_fail(r, "cluster_manager.cluster_removed") == removed_before + 1,
              "cluster_manager.cluster_removed should count the removal");
    IT_ASSERT(stat_or_fail(r, "cluster_manager.active_clusters") == 2, "active: xds_cluster and backend");
    st = get(port, "app", "/status/200", id, sizeof(id), body, sizeof(body));
    IT_ASSERT(st == 200 && strcmp(id, "d1") == 0, "backend unaffected: %ld from \"%s\" (%s)", st, id, body);

    IT_ASSERT(harness_load_wait(slow, 1, 10000) == 0, "the slow request never finished");
    harness_load_stats_t s;
    harness_load_stop(slow, &s);
    IT_ASSERT(s.ok == 1 && harness_load_id_count(&s, "d2") == 1,
              "the request in flight when its cluster was removed should complete with 200 from d2: %s",
              s.first_failure);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_waits_for_first_cds_and_eds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_routable_once_cds_and_eds_arrive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_cluster_answers_503, setup, teardown),
    };
    return cmocka_run_group_tests_name("xds_discovery", tests, NULL, NULL);
}
