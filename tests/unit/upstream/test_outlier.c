/* Outlier detection with a fake clock: each detector (consecutive 5xx, gateway and local-origin
 * failures, success rate, failure percentage) with its guards and enforcement percentages, the
 * ejection time back-off with its cap and jitter, max_ejection_percent, the return of hosts on expiry
 * and on a passing active check, host-set updates, and how the failure flags combine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "upstream/cluster.h"
#include "upstream/host.h"
#include "upstream/outlier.h"

#define MAXH 8

typedef struct {
    rm_fake_clock_t clock;
    rm_cluster_config_t cfg;
    rm_cluster_shared_t *shared;
    rm_host_t *hosts[MAXH];
    size_t n;
    rm_cluster_t *c;
    rm_outlier_detector_t *d;
} fx_t;

/* Builds n hosts 10.0.0.1..n with the given outlier config (already defaulted by the caller). */
static void fx_init(fx_t *f, size_t n, const rm_outlier_detection_config_t *od)
{
    memset(f, 0, sizeof(*f));
    rm_fake_clock_init(&f->clock, 1000000);
    f->cfg.name = "svc";
    f->cfg.outlier_detection = *od;
    f->shared = rm_cluster_shared_create("svc");
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.0.%zu", i + 1);
        f->hosts[i] = rm_host_create(ip, 80, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    }
    f->c = rm_cluster_create(&f->cfg, f->shared, f->hosts, n);
    f->d = rm_outlier_detector_create(NULL, &f->clock.super, f->shared, od);
    rm_outlier_detector_seed(f->d, 42);
    rm_outlier_detector_set_hosts(f->d, f->hosts, n);
}

static void fx_fini(fx_t *f)
{
    rm_outlier_detector_destroy(f->d);
    rm_cluster_unref(f->c);
    for (size_t i = 0; i < f->n; i++)
        rm_host_unref(f->hosts[i]);
    rm_cluster_shared_unref(f->shared);
}

static rm_outlier_detection_config_t od_defaults(void)
{
    rm_outlier_detection_config_t od;
    rm_outlier_detection_config_defaults(&od);
    return od;
}

static bool is_ejected(const rm_host_t *h)
{
    return (atomic_load(&((rm_host_t *)h)->health_flags) & RM_HOST_FAILED_OUTLIER_CHECK) != 0;
}

static void statuses(fx_t *f, size_t host, int status, int count)
{
    for (int i = 0; i < count; i++)
        rm_outlier_put_http_status(f->c, f->hosts[host], status);
}

static int64_t od_stat(fx_t *f, size_t offset)
{
    return (int64_t)atomic_load((rm_counter_t *)((char *)&f->shared->stats.od + offset));
}
#define OD(f, name) od_stat(f, offsetof(rm_cluster_od_stats_t, name))

static void test_defaults_are_envoys(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    assert_true(od.enabled);
    assert_int_equal(od.consecutive_5xx, 5);
    assert_int_equal(od.consecutive_gateway_failure, 5);
    assert_int_equal(od.consecutive_local_origin_failure, 5);
    assert_int_equal(od.interval_ms, 10000);
    assert_int_equal(od.base_ejection_time_ms, 30000);
    assert_int_equal(od.max_ejection_time_ms, 300000);
    assert_int_equal(od.max_ejection_percent, 10);
    assert_int_equal(od.enforcing_consecutive_5xx, 100);
    assert_int_equal(od.enforcing_consecutive_gateway_failure, 0);
    assert_int_equal(od.enforcing_success_rate, 100);
    assert_int_equal(od.success_rate_minimum_hosts, 5);
    assert_int_equal(od.success_rate_request_volume, 100);
    assert_int_equal(od.success_rate_stdev_factor, 1900);
    assert_int_equal(od.failure_percentage_threshold, 85);
    assert_int_equal(od.enforcing_failure_percentage, 0);
    assert_int_equal(od.failure_percentage_minimum_hosts, 5);
    assert_int_equal(od.failure_percentage_request_volume, 50);
    assert_true(od.successful_active_health_check_uneject_host);
    assert_false(od.split_external_local_origin_errors);
}

static void test_consecutive_5xx(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    fx_t f;
    fx_init(&f, 4, &od);
    uint64_t epoch = atomic_load(&f.shared->health_epoch);
    statuses(&f, 0, 500, 4);
    rm_outlier_detector_process_pending(f.d);
    assert_false(is_ejected(f.hosts[0]));
    /* A success restarts the count. */
    statuses(&f, 0, 200, 1);
    statuses(&f, 0, 500, 4);
    rm_outlier_detector_process_pending(f.d);
    assert_false(is_ejected(f.hosts[0]));
    statuses(&f, 0, 500, 1);
    rm_outlier_detector_process_pending(f.d);
    assert_true(is_ejected(f.hosts[0]));
    assert_false(rm_host_healthy(f.hosts[0]));
    assert_false(is_ejected(f.hosts[1]));
    assert_true(atomic_load(&f.shared->health_epoch) > epoch);
    assert_int_equal(OD(&f, ejections_active), 1);
    assert_int_equal(OD(&f, ejections_enforced_total), 1);
    assert_int_equal(OD(&f, ejections_enforced_consecutive_5xx), 1);
    assert_int_equal(f.hosts[0]->outlier.num_ejections, 1);
    assert_int_equal(atomic_load(&f.shared->stats.membership_healthy), 3);
    fx_fini(&f);
}

static void test_gateway_failure_enforcement(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    od.consecutive_5xx = 1000;
    fx_t f;
    fx_init(&f, 4, &od);
    /* Default enforcement 0: detected, counted, not ejected. */
    statuses(&f, 0, 502, 5);
    rm_outlier_detector_process_pending(f.d);
    assert_false(is_ejected(f.hosts[0]));
    assert_int_equal(OD(&f, ejections_detected_consecutive_gateway_failure), 1);
    assert_int_equal(OD(&f, ejections_enforced_total), 0);
    fx_fini(&f);

    od.enforcing_consecutive_gateway_failure = 100;
    fx_init(&f, 4, &od);
    /* A 500 is a 5xx but not a gateway error: it restarts the gateway count. */
    statuses(&f, 1, 503, 4);
    statuses(&f, 1, 500, 1);
    statuses(&f, 1, 504, 4);
    rm_outlier_detector_process_pending(f.d);
    assert_false(is_ejected(f.hosts[1]));
    statuses(&f, 1, 502, 1);
    rm_outlier_detector_process_pending(f.d);
    assert_true(is_ejected(f.hosts[1]));
    assert_int_equal(OD(&f, ejections_enforced_consecutive_gateway_failure), 1);
    fx_fini(&f);
}

static void test_local_origin_without_split(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    fx_t f;
    fx_init(&f, 4, &od);
    /* Connect failures and timeouts count as 503/504 towards consecutive_5xx; a connect success does
     * not reset the count (only a response does). */
    for (int i = 0; i < 2; i++) {
        rm_outlier_put_local(f.c, f.hosts[2], RM_OUTLIER_LOCAL_CONNECT_FAILED);
        rm_outlier_put_local(f.c, f.hosts[2], RM_OUTLIER_LOCAL_CONNECT_SUCCESS);
        rm_outlier_put_local(f.c, f.hosts[2], RM_OUTLIER_LOCAL_TIMEOUT);
    }
    rm_outlier_detector_process_pending(f.d);
    assert_false(is_ejected(f.hosts[2]));
    rm_outlier_put_local(f.c, f.hosts[2], RM_OUTLIER_LOCAL_CONNECT_FAILED);
    rm_outlier_detector_process_pending(f.d);
    assert_true(is_ejected(f.hosts[2]));
    assert_int_equal(OD(&f, ejections_enforced_consecutive_5xx), 1);
    fx_fini(&f);
}

static void test_local_origin_split(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    od.split_external_local_origin_errors = true;
    od.consecutive_local_origin_failure = 3;
    fx_t f;
    fx_init(&f, 4, &od);
    /* Local failures do not count towards consecutive_5xx any more ... */
    for (int i = 0; i < 2; i++)
        rm_outlier_put_local(f.c, f.hosts[0], RM_OUTLIER_LOCAL_CONNECT_FAILED);
    rm_outlier_put_local(f.c, f.hosts[0], RM_OUTLIER_LOCAL_CONNECT_SUCCESS); /* restarts the count */
    for (int i = 0; i < 2; i++)
        rm_outlier_put_local(f.c, f.hosts[0], RM_OUTLIER_LOCAL_TIMEOUT);
    rm_outlier_detector_process_pending(f.d);
    assert_false(is_ejected(f.hosts[0]));
    assert_int_equal(atomic_load(&f.hosts[0]->outlier.consecutive_5xx), 0);
    rm_outlier_put_local(f.c, f.hosts[0], RM_OUTLIER_LOCAL_CONNECT_FAILED);
    rm_outlier_detector_process_pending(f.d);
    assert_true(is_ejected(f.hosts[0]));
    assert_int_equal(OD(&f, ejections_enforced_consecutive_local_origin_failure), 1);
    /* ... while upstream 5xx still do. */
    statuses(&f, 1, 500, 5);
    rm_outlier_detector_process_pending(f.d);
    assert_true(is_ejected(f.hosts[1]));
    fx_fini(&f);
}

/* Ejects host 0 through consecutive 5xx. */
static void eject0(fx_t *f)
{
    statuses(f, 0, 500, (int)f->cfg.outlier_detection.consecutive_5xx);
    rm_outlier_detector_process_pending(f->d);
    assert_true(is_ejected(f->hosts[0]));
}

static void test_ejection_backoff_and_cap(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    od.base_ejection_time_ms = 10000;
    od.max_ejection_time_ms = 25000;
    od.interval_ms = 1000;
    fx_t f;
    fx_init(&f, 4, &od);
    const uint64_t expect[] = {10000, 20000, 25000, 25000};
    for (size_t k = 0; k < 4; k++) {
        eject0(&f);
        assert_int_equal(f.hosts[0]->outlier.eject_for_ms, expect[k]);
        rm_fake_clock_advance(&f.clock, expect[k] - 1);
        rm_outlier_detector_sweep(f.d);
        assert_true(is_ejected(f.hosts[0]));
        rm_fake_clock_advance(&f.clock, 1);
        rm_outlier_detector_sweep(f.d);
        assert_false(is_ejected(f.hosts[0]));
        assert_int_equal(OD(&f, ejections_active), 0);
    }
    assert_int_equal(f.hosts[0]->outlier.num_ejections, 4);
    /* Staying in for an interval earns back one step per sweep: 3 -> 1 after two intervals. */
    assert_int_equal(f.hosts[0]->outlier.backoff, 3);
    rm_fake_clock_advance(&f.clock, 1000);
    rm_outlier_detector_sweep(f.d);
    rm_fake_clock_advance(&f.clock, 1000);
    rm_outlier_detector_sweep(f.d);
    assert_int_equal(f.hosts[0]->outlier.backoff, 1);
    eject0(&f);
    assert_int_equal(f.hosts[0]->outlier.eject_for_ms, 20000);
    fx_fini(&f);
}

static void test_ejection_jitter(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    od.base_ejection_time_ms = 10000;
    od.max_ejection_time_jitter_ms = 5000;
    fx_t f;
    fx_init(&f, 4, &od);
    bool saw_jitter = false;
    for (int k = 0; k < 20; k++) {
        eject0(&f);
        uint64_t t = f.hosts[0]->outlier.eject_for_ms;
        uint64_t base = (uint64_t)f.hosts[0]->outlier.backoff * 10000;
        assert_true(t >= base && t <= base + 5000);
        saw_jitter |= t != base;
        rm_fake_clock_advance(&f.clock, t);
        rm_outlier_detector_sweep(f.d);
        assert_false(is_ejected(f.hosts[0]));
    }
    assert_true(saw_jitter);
    fx_fini(&f);
}

static void test_max_ejection_percent(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 25;
    fx_t f;
    fx_init(&f, 4, &od);
    statuses(&f, 0, 500, 5);
    statuses(&f, 1, 500, 5);
    rm_outlier_detector_process_pending(f.d);
    assert_true(is_ejected(f.hosts[0]));
    assert_false(is_ejected(f.hosts[1]));
    assert_int_equal(OD(&f, ejections_overflow), 1);
    assert_int_equal(OD(&f, ejections_active), 1);
    fx_fini(&f);

    /* Default 10% of 3 hosts: one host may always go, the second may not. */
    od = od_defaults();
    fx_init(&f, 3, &od);
    statuses(&f, 0, 500, 5);
    statuses(&f, 1, 500, 5);
    rm_outlier_detector_process_pending(f.d);
    assert_true(is_ejected(f.hosts[0]));
    assert_false(is_ejected(f.hosts[1]));
    assert_int_equal(OD(&f, ejections_overflow), 1);
    /* Once the first is back, another may go. */
    rm_outlier_detector_on_active_hc_success(f.d, f.hosts[0]);
    statuses(&f, 1, 500, 5);
    rm_outlier_detector_process_pending(f.d);
    assert_true(is_ejected(f.hosts[1]));
    fx_fini(&f);
}

/* n requests to a host with the given number of 5xx among them. */
static void traffic(fx_t *f, size_t host, int n, int failures)
{
    statuses(f, host, 200, n - failures);
    for (int i = 0; i < failures; i++) {
        rm_outlier_put_http_status(f->c, f->hosts[host], 500);
        if (i % 3 == 2) /* keep the consecutive detector out of the way */
            rm_outlier_put_http_status(f->c, f->hosts[host], 200), n++;
    }
}

static void test_success_rate(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    fx_t f;
    fx_init(&f, 5, &od);
    for (size_t h = 0; h < 4; h++)
        traffic(&f, h, 100, 0);
    traffic(&f, 4, 100, 50);
    rm_outlier_detector_process_pending(f.d);
    assert_false(is_ejected(f.hosts[4]));
    rm_outlier_detector_sweep(f.d);
    assert_true(is_ejected(f.hosts[4]));
    for (size_t h = 0; h < 4; h++)
        assert_false(is_ejected(f.hosts[h]));
    assert_int_equal(OD(&f, ejections_enforced_success_rate), 1);
    assert_true(f.hosts[0]->outlier.sr_ext > 99.9);
    /* The next interval starts empty: no volume, no decision. */
    rm_outlier_detector_sweep(f.d);
    assert_int_equal(OD(&f, ejections_enforced_success_rate), 1);
    assert_true(f.hosts[0]->outlier.sr_ext < 0);
    fx_fini(&f);

    /* Guards: four hosts with volume are fewer than success_rate_minimum_hosts (5). */
    fx_init(&f, 5, &od);
    for (size_t h = 0; h < 3; h++)
        traffic(&f, h, 100, 0);
    traffic(&f, 3, 99, 0); /* below success_rate_request_volume */
    traffic(&f, 4, 100, 50);
    rm_outlier_detector_sweep(f.d);
    assert_false(is_ejected(f.hosts[4]));
    assert_int_equal(OD(&f, ejections_detected_success_rate), 0);
    fx_fini(&f);

    /* enforcing_success_rate 0: detected only. */
    od.enforcing_success_rate = 0;
    fx_init(&f, 5, &od);
    for (size_t h = 0; h < 4; h++)
        traffic(&f, h, 100, 0);
    traffic(&f, 4, 100, 50);
    rm_outlier_detector_sweep(f.d);
    assert_false(is_ejected(f.hosts[4]));
    assert_int_equal(OD(&f, ejections_detected_success_rate), 1);
    fx_fini(&f);
}

static void test_failure_percentage(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    od.enforcing_success_rate = 0;
    od.enforcing_failure_percentage = 100;
    fx_t f;
    fx_init(&f, 5, &od);
    for (size_t h = 0; h < 3; h++)
        traffic(&f, h, 60, 0);
    traffic(&f, 3, 60, 40); /* 40 of 73: 55% failures, under 85 */
    traffic(&f, 4, 60, 60); /* 60 of 80: 75% */
    rm_outlier_detector_sweep(f.d);
    assert_false(is_ejected(f.hosts[3]));
    assert_false(is_ejected(f.hosts[4]));
    /* All failures: 100% >= 85. */
    for (size_t h = 0; h < 4; h++)
        traffic(&f, h, 60, 0);
    statuses(&f, 4, 503, 3);
    for (int i = 0; i < 60; i++) {
        rm_outlier_put_http_status(f.c, f.hosts[4], 500);
        atomic_store(&f.hosts[4]->outlier.pending, 0); /* only the interval detector here */
    }
    rm_outlier_detector_sweep(f.d);
    assert_true(is_ejected(f.hosts[4]));
    assert_int_equal(OD(&f, ejections_enforced_failure_percentage), 1);
    fx_fini(&f);

    /* failure_percentage_request_volume guard. */
    fx_init(&f, 5, &od);
    for (size_t h = 0; h < 4; h++)
        traffic(&f, h, 60, 0);
    for (int i = 0; i < 49; i++)
        rm_outlier_put_http_status(f.c, f.hosts[4], 500);
    atomic_store(&f.hosts[4]->outlier.pending, 0);
    rm_outlier_detector_sweep(f.d);
    assert_false(is_ejected(f.hosts[4]));
    fx_fini(&f);
}

static void test_active_check_returns_host(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    fx_t f;
    fx_init(&f, 4, &od);
    eject0(&f);
    rm_outlier_detector_on_active_hc_success(f.d, f.hosts[1]); /* not ejected: nothing */
    assert_true(is_ejected(f.hosts[0]));
    rm_outlier_detector_on_active_hc_success(f.d, f.hosts[0]);
    assert_false(is_ejected(f.hosts[0]));
    assert_int_equal(OD(&f, ejections_active), 0);
    fx_fini(&f);

    od.successful_active_health_check_uneject_host = false;
    fx_init(&f, 4, &od);
    eject0(&f);
    rm_outlier_detector_on_active_hc_success(f.d, f.hosts[0]);
    assert_true(is_ejected(f.hosts[0]));
    fx_fini(&f);
}

static void test_host_set_update(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    fx_t f;
    fx_init(&f, 4, &od);
    eject0(&f);
    statuses(&f, 1, 500, 5);
    rm_outlier_detector_process_pending(f.d);
    assert_int_equal(OD(&f, ejections_active), 2);
    /* Host 0 leaves, host 1 stays ejected with its state. */
    rm_outlier_detector_set_hosts(f.d, &f.hosts[1], 3);
    assert_int_equal(OD(&f, ejections_active), 1);
    assert_true(is_ejected(f.hosts[1]));
    assert_int_equal(f.hosts[1]->outlier.num_ejections, 1);
    /* Destroying the detector (outlier_detection removed) returns the hosts it ejected. */
    rm_outlier_detector_destroy(f.d);
    f.d = rm_outlier_detector_create(NULL, &f.clock.super, f.shared, &od);
    assert_false(is_ejected(f.hosts[1]));
    assert_int_equal(OD(&f, ejections_active), 0);
    fx_fini(&f);
}

static void test_flags_combine(void **state)
{
    (void)state;
    rm_outlier_detection_config_t od = od_defaults();
    od.max_ejection_percent = 100;
    fx_t f;
    fx_init(&f, 4, &od);
    atomic_fetch_or(&f.hosts[0]->health_flags, RM_HOST_FAILED_EDS_HEALTH);
    eject0(&f);
    char buf[128];
    rm_host_health_flags_str(atomic_load(&f.hosts[0]->health_flags), buf, sizeof(buf));
    assert_string_equal(buf, "/failed_outlier_check/failed_eds_health");
    rm_outlier_detector_on_active_hc_success(f.d, f.hosts[0]);
    /* Returned by the detector, still failed by EDS. */
    assert_false(is_ejected(f.hosts[0]));
    assert_false(rm_host_healthy(f.hosts[0]));
    /* Degraded alone is not a failure. */
    atomic_store(&f.hosts[1]->health_flags, RM_HOST_DEGRADED_ACTIVE_HC | RM_HOST_DEGRADED_EDS_HEALTH);
    assert_true(rm_host_healthy(f.hosts[1]));
    atomic_store(&f.hosts[1]->health_flags, RM_HOST_FAILED_ACTIVE_HC | RM_HOST_FAILED_OUTLIER_CHECK);
    rm_host_health_flags_str(atomic_load(&f.hosts[1]->health_flags), buf, sizeof(buf));
    assert_string_equal(buf, "/failed_active_hc/failed_outlier_check");
    atomic_store(&f.hosts[1]->health_flags, 0);
    fx_fini(&f);
}

static void test_disabled_cluster_ignores_reports(void **state)
{
    (void)state;
    rm_cluster_config_t cfg = {.name = "plain"};
    rm_cluster_shared_t *sh = rm_cluster_shared_create("plain");
    rm_host_t *h = rm_host_create("10.0.0.9", 80, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    rm_cluster_t *c = rm_cluster_create(&cfg, sh, &h, 1);
    for (int i = 0; i < 10; i++)
        rm_outlier_put_http_status(c, h, 500);
    assert_int_equal(atomic_load(&h->outlier.consecutive_5xx), 0);
    assert_int_equal(atomic_load(&h->outlier.pending), 0);
    rm_cluster_unref(c);
    rm_host_unref(h);
    rm_cluster_shared_unref(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_envoys),
        cmocka_unit_test(test_consecutive_5xx),
        cmocka_unit_test(test_gateway_failure_enforcement),
        cmocka_unit_test(test_local_origin_without_split),
        cmocka_unit_test(test_local_origin_split),
        cmocka_unit_test(test_ejection_backoff_and_cap),
        cmocka_unit_test(test_ejection_jitter),
        cmocka_unit_test(test_max_ejection_percent),
        cmocka_unit_test(test_success_rate),
        cmocka_unit_test(test_failure_percentage),
        cmocka_unit_test(test_active_check_returns_host),
        cmocka_unit_test(test_host_set_update),
        cmocka_unit_test(test_flags_combine),
        cmocka_unit_test(test_disabled_cluster_ignores_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
