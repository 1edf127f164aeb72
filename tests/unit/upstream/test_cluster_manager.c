/* Cluster manager updates: CDS adds, changes and removes clusters; EDS assignments warm clusters and
 * update membership while hosts keep their identity; unchanged pushes publish nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/mem.h"
#include "upstream/cluster_manager.h"
#include "upstream/outlier.h"

typedef struct {
    int published;
    rm_snapshot_t *last;
} sink_t;

static void on_publish(void *ctx, rm_snapshot_t *snap)
{
    sink_t *s = ctx;
    s->published++;
    if (s->last)
        rm_snapshot_unref(s->last);
    s->last = snap;
}

static int warm_calls;
static void on_warm(void *ctx)
{
    (void)ctx;
    warm_calls++;
}

static rm_cluster_config_t eds_cluster(const char *name, uint64_t connect_ms)
{
    rm_cluster_config_t c;
    memset(&c, 0, sizeof(c));
    c.name = rm_strdup(name);
    c.type = RM_CLUSTER_EDS;
    c.connect_timeout_ms = connect_ms;
    return c;
}

static rm_cluster_config_t *cds_set(size_t n, ...)
{
    rm_cluster_config_t *v = rm_calloc(n, sizeof(*v));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        v[i] = va_arg(ap, rm_cluster_config_t);
    va_end(ap);
    return v;
}

/* "ip:port:weight:priority" items */
static rm_cluster_load_assignment_t *cla(const char *name, size_t n, const char *const *eps)
{
    rm_cluster_load_assignment_t *a = rm_calloc(1, sizeof(*a));
    a->cluster_name = rm_strdup(name);
    a->endpoints = rm_calloc(n ? n : 1, sizeof(rm_endpoint_config_t));
    a->num_endpoints = n;
    for (size_t i = 0; i < n; i++) {
        char ip[64];
        unsigned port, w, p;
        assert_int_equal(sscanf(eps[i], "%63[^:]:%u:%u:%u", ip, &port, &w, &p), 4);
        a->endpoints[i].address.address = rm_strdup(ip);
        a->endpoints[i].address.port = port;
        a->endpoints[i].weight = w;
        a->endpoints[i].priority = p;
    }
    return a;
}

static rm_cluster_t *find(sink_t *s, const char *name)
{
    return rm_snapshot_find(s->last, name, strlen(name), NULL);
}

static rm_host_t *host_at(rm_cluster_t *c, const char *addr)
{
    for (size_t i = 0; i < c->num_hosts; i++)
        if (strcmp(c->hosts[i]->address_str, addr) == 0)
            return c->hosts[i];
    return NULL;
}

static void test_cds_eds_lifecycle(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    rm_bootstrap_config_t b;
    memset(&b, 0, sizeof(b));
    sink_t s = {0};
    char err[256];
    rm_cluster_manager_t *cm = rm_cluster_manager_create(base, &b, on_publish, &s, err, sizeof(err));
    assert_non_null(cm);
    assert_true(rm_cluster_manager_warm(cm));
    warm_calls = 0;

    /* A new EDS cluster warms: not routable yet, the manager is not warm. */
    rm_cluster_manager_apply_cds(cm, cds_set(1, eds_cluster("web", 1000)), 1, 60000);
    assert_false(rm_cluster_manager_warm(cm));
    rm_cluster_manager_on_warm(cm, on_warm, NULL);
    assert_null(find(&s, "web"));
    assert_int_equal(RM_STAT_GET(rm_cluster_manager_stats(cm)->warming_clusters), 1);

    /* Its assignment arrives: active with both hosts, warm. */
    const char *eps1[] = {"10.0.0.1:80:1:0", "10.0.0.2:80:1:0"};
    rm_cluster_manager_apply_eds(cm, cla("web", 2, eps1), 1);
    rm_cluster_t *web = find(&s, "web");
    assert_non_null(web);
    assert_int_equal(web->num_hosts, 2);
    assert_true(rm_cluster_manager_warm(cm));
    assert_int_equal(warm_calls, 1);
    rm_host_t *h2 = host_at(web, "10.0.0.2:80");
    assert_non_null(h2);
    atomic_fetch_add(&h2->stats.rq_total, 7);

    /* Membership change: .1 leaves, .3 joins, .2 changes weight and priority but keeps identity. */
    const char *eps2[] = {"10.0.0.2:80:5:1", "10.0.0.3:80:1:0"};
    rm_cluster_manager_apply_eds(cm, cla("web", 2, eps2), 1);
    web = find(&s, "web");
    assert_int_equal(web->num_hosts, 2);
    assert_ptr_equal(host_at(web, "10.0.0.2:80"), h2);
    assert_int_equal(RM_STAT_GET(h2->stats.rq_total), 7);
    assert_int_equal(atomic_load(&h2->weight), 5);
    assert_int_equal(web->num_levels, 2);
    assert_ptr_equal(web->levels[1].hosts[0], h2);
    assert_null(host_at(web, "10.0.0.1:80"));

    /* The same CDS set again publishes nothing. */
    int before = s.published;
    rm_cluster_manager_apply_cds(cm, cds_set(1, eds_cluster("web", 1000)), 1, 60000);
    assert_int_equal(s.published, before);

    /* A changed cluster with a known assignment switches at once and keeps the hosts and stats. */
    rm_cluster_shared_t *shared = web->shared;
    rm_cluster_manager_apply_cds(cm, cds_set(1, eds_cluster("web", 250)), 1, 60000);
    web = find(&s, "web");
    assert_int_equal(web->connect_timeout_ms, 250);
    assert_ptr_equal(web->shared, shared);
    assert_ptr_equal(host_at(web, "10.0.0.2:80"), h2);

    /* Changes only to LB settings, breakers, the fail-fast breaker or the protocol are changes too. */
    rm_cluster_config_t v = eds_cluster("web", 250);
    v.healthy_panic_threshold_set = true;
    v.healthy_panic_threshold = 0;
    rm_cluster_manager_apply_cds(cm, cds_set(1, v), 1, 60000);
    web = find(&s, "web");
    assert_true(web->healthy_panic_threshold == 0);
    v = eds_cluster("web", 250);
    v.healthy_panic_threshold_set = true;
    v.circuit_breakers_set = true;
    rm_circuit_breaker_thresholds_default(&v.circuit_breakers[0]);
    rm_circuit_breaker_thresholds_default(&v.circuit_breakers[1]);
    v.circuit_breakers[0].max_requests = 7;
    rm_cluster_manager_apply_cds(cm, cds_set(1, v), 1, 60000);
    web = find(&s, "web");
    assert_int_equal(web->cb.max_requests, 7);
    v = eds_cluster("web", 250);
    v.healthy_panic_threshold_set = true;
    v.circuit_breakers_set = true;
    rm_circuit_breaker_thresholds_default(&v.circuit_breakers[0]);
    rm_circuit_breaker_thresholds_default(&v.circuit_breakers[1]);
    v.circuit_breakers[0].max_requests = 7;
    v.fail_fast.enabled = true;
    v.fail_fast.consecutive_failures = 2;
    v.fail_fast.open_duration_ms = 100;
    v.fail_fast.half_open_requests = 1;
    rm_cluster_manager_apply_cds(cm, cds_set(1, v), 1, 60000);
    web = find(&s, "web");
    assert_true(web->fail_fast.enabled);
    assert_int_equal(web->fail_fast.consecutive_failures, 2);
    assert_ptr_equal(web->shared, shared);

    /* Absent from the next set: removed. */
    rm_cluster_manager_apply_cds(cm, cds_set(0), 0, 60000);
    assert_null(find(&s, "web"));
    assert_int_equal(RM_STAT_GET(rm_cluster_manager_stats(cm)->cluster_removed), 1);

    rm_cluster_manager_destroy(cm);
    rm_snapshot_unref(s.last);
    event_base_free(base);
}

static bool ejected(rm_host_t *h)
{
    return (atomic_load(&h->health_flags) & RM_HOST_FAILED_OUTLIER_CHECK) != 0;
}

/* Outlier and active-check state lives with the host: updates that keep a host keep it, removed hosts
 * take it away, and a cluster whose config drops the feature returns its hosts. */
static void test_health_state_across_updates(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    rm_bootstrap_config_t b;
    memset(&b, 0, sizeof(b));
    sink_t s = {0};
    char err[256];
    rm_cluster_manager_t *cm = rm_cluster_manager_create(base, &b, on_publish, &s, err, sizeof(err));
    assert_non_null(cm);
    rm_cluster_config_t cfg = eds_cluster("web", 1000);
    rm_outlier_detection_config_defaults(&cfg.outlier_detection);
    cfg.outlier_detection.consecutive_5xx = 2;
    cfg.outlier_detection.max_ejection_percent = 100;
    rm_cluster_manager_apply_cds(cm, cds_set(1, cfg), 1, 60000);
    const char *eps1[] = {"10.0.0.1:80:1:0", "10.0.0.2:80:1:0", "10.0.0.3:80:1:0"};
    rm_cluster_manager_apply_eds(cm, cla("web", 3, eps1), 1);
    rm_cluster_t *web = find(&s, "web");
    rm_host_t *h1 = host_at(web, "10.0.0.1:80"), *h2 = host_at(web, "10.0.0.2:80");
    rm_cluster_od_stats_t *od = &web->shared->stats.od;

    /* A worker's reports wake the main loop, which ejects. */
    rm_outlier_put_http_status(web, h1, 500);
    rm_outlier_put_http_status(web, h1, 503);
    assert_false(ejected(h1));
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_true(ejected(h1));
    assert_int_equal(RM_STAT_GET(od->ejections_active), 1);
    assert_int_equal(RM_STAT_GET(web->shared->stats.membership_healthy), 2);

    /* .3 leaves, .1 stays: still ejected, same history. */
    const char *eps2[] = {"10.0.0.1:80:1:0", "10.0.0.2:80:1:0"};
    rm_cluster_manager_apply_eds(cm, cla("web", 2, eps2), 1);
    web = find(&s, "web");
    assert_ptr_equal(host_at(web, "10.0.0.1:80"), h1);
    assert_true(ejected(h1));
    assert_int_equal(h1->outlier.num_ejections, 1);
    assert_int_equal(RM_STAT_GET(od->ejections_active), 1);

    /* .1 leaves: no longer counted as ejected. */
    const char *eps3[] = {"10.0.0.2:80:1:0", "10.0.0.4:80:1:0"};
    rm_cluster_manager_apply_eds(cm, cla("web", 2, eps3), 1);
    web = find(&s, "web");
    assert_null(host_at(web, "10.0.0.1:80"));
    assert_int_equal(RM_STAT_GET(od->ejections_active), 0);

    /* Eject .2, then a config without outlier_detection but with an active check: .2 returns to
     * service, and every host waits for its first check. */
    rm_outlier_put_http_status(web, h2, 500);
    rm_outlier_put_http_status(web, h2, 500);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_true(ejected(h2));
    rm_cluster_config_t plain = eds_cluster("web", 1000);
    plain.health_checks = rm_calloc(1, sizeof(rm_health_check_config_t));
    plain.num_health_checks = 1;
    plain.health_checks[0].kind = RM_HEALTH_CHECK_TCP;
    plain.health_checks[0].timeout_ms = 1000;
    plain.health_checks[0].interval_ms = 60000;
    plain.health_checks[0].initial_jitter_ms = 60000; /* no check runs during the test */
    plain.health_checks[0].unhealthy_threshold = 1;
    plain.health_checks[0].healthy_threshold = 1;
    rm_cluster_manager_apply_cds(cm, cds_set(1, plain), 1, 60000);
    web = find(&s, "web");
    assert_ptr_equal(host_at(web, "10.0.0.2:80"), h2);
    assert_false(web->outlier.enabled);
    assert_false(ejected(h2));
    assert_int_equal(atomic_load(&h2->health_flags), RM_HOST_FAILED_ACTIVE_HC);
    assert_int_equal(RM_STAT_GET(web->shared->stats.hc.healthy), 0);
    /* Without the check again, the active-check flag goes too. */
    rm_cluster_manager_apply_cds(cm, cds_set(1, eds_cluster("web", 1000)), 1, 60000);
    assert_int_equal(atomic_load(&h2->health_flags), 0);

    rm_cluster_manager_destroy(cm);
    rm_snapshot_unref(s.last);
    event_base_free(base);
}

static void test_static_clusters_survive_cds(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    rm_bootstrap_config_t b;
    memset(&b, 0, sizeof(b));
    rm_endpoint_config_t ep = {
        .address = {"127.0.0.1", 9000}, .weight = 1, .health_status = RM_HEALTH_STATUS_UNKNOWN};
    rm_cluster_config_t st = {.name = "xds",
                              .type = RM_CLUSTER_STATIC,
                              .connect_timeout_ms = 1000,
                              .endpoints = &ep,
                              .num_endpoints = 1};
    b.clusters = &st;
    b.num_clusters = 1;
    sink_t s = {0};
    char err[256];
    rm_cluster_manager_t *cm = rm_cluster_manager_create(base, &b, on_publish, &s, err, sizeof(err));
    assert_non_null(cm);
    s.last = rm_snapshot_ref(rm_cluster_manager_snapshot(cm));
    rm_cluster_t *x = find(&s, "xds");
    assert_non_null(x);
    /* CDS can neither replace nor remove a static cluster. */
    rm_cluster_manager_apply_cds(cm, cds_set(1, eds_cluster("xds", 5)), 1, 60000);
    rm_cluster_manager_apply_cds(cm, cds_set(0), 0, 60000);
    assert_ptr_equal(find(&s, "xds"), x);
    rm_cluster_manager_destroy(cm);
    rm_snapshot_unref(s.last);
    event_base_free(base);
}

static void test_warming_timeout_activates_empty(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    rm_bootstrap_config_t b;
    memset(&b, 0, sizeof(b));
    sink_t s = {0};
    char err[256];
    rm_cluster_manager_t *cm = rm_cluster_manager_create(base, &b, on_publish, &s, err, sizeof(err));
    rm_cluster_manager_apply_cds(cm, cds_set(1, eds_cluster("slow", 1000)), 1, 5);
    assert_false(rm_cluster_manager_warm(cm));
    /* The loop runs until the warming timer fires: no fixed sleep. */
    event_base_loop(base, EVLOOP_ONCE);
    assert_true(rm_cluster_manager_warm(cm));
    rm_cluster_t *c = find(&s, "slow");
    assert_non_null(c);
    assert_int_equal(c->num_hosts, 0);
    rm_cluster_manager_destroy(cm);
    rm_snapshot_unref(s.last);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cds_eds_lifecycle),
        cmocka_unit_test(test_static_clusters_survive_cds),
        cmocka_unit_test(test_health_state_across_updates),
        cmocka_unit_test(test_warming_timeout_activates_empty),
    };
    return cmocka_run_group_tests_name("cluster_manager", tests, NULL, NULL);
}
