/* Behaviour every policy shares, run through each of round robin, random and least request:
 * unhealthy exclusion and recovery, degraded hosts, priority spill, partial and total panic, panic
 * disabled (no host: 503 UH), the strict "secondary only when all primaries are down" setup, retry
 * avoidance, hosts_changed, and the policy table. Shares are checked over N seeded picks with a
 * stated tolerance (the level draw is random even for round robin). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/lb/lb.h"

#define MAXH 16

typedef struct {
    uint32_t weight; /* 0 means 1 */
    uint32_t priority;
    uint32_t flags;
} hspec_t;

typedef struct {
    double panic_threshold;           /* < 0: unset (Envoy's default 50) */
    uint32_t overprovisioning_factor; /* 0: default 140 */
} cspec_t;

typedef struct {
    rm_cluster_shared_t *shared;
    rm_cluster_t *cluster;
    rm_host_t *hosts[MAXH];
    size_t n;
    rm_rng_t rng;
    rm_lb_t *lb;
} fx_t;

static const rm_lb_policy_t policies[] = {RM_LB_ROUND_ROBIN, RM_LB_RANDOM, RM_LB_LEAST_REQUEST};
#define NUM_POLICIES (sizeof(policies) / sizeof(policies[0]))

static void fx_make(fx_t *f, rm_lb_policy_t policy, const hspec_t *hs, size_t n, cspec_t cs)
{
    rm_cluster_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "c";
    cfg.connect_timeout_ms = 1000;
    cfg.lb_policy = policy;
    cfg.overprovisioning_factor = cs.overprovisioning_factor;
    if (cs.panic_threshold >= 0) {
        cfg.healthy_panic_threshold_set = true;
        cfg.healthy_panic_threshold = cs.panic_threshold;
    }
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.1.%zu", i + 1);
        f->hosts[i] = rm_host_create(ip, 80, hs[i].weight ? hs[i].weight : 1, hs[i].priority,
                                     RM_HEALTH_STATUS_HEALTHY, NULL);
        atomic_store(&f->hosts[i]->health_flags, hs[i].flags);
    }
    f->shared = rm_cluster_shared_create("c");
    f->cluster = rm_cluster_create(&cfg, f->shared, f->hosts, n);
    rm_rng_seed(&f->rng, 1234 + (uint64_t)policy);
    f->lb = rm_lb_create(f->cluster, &f->rng, NULL);
    assert_non_null(f->lb);
}

static void fx_release(fx_t *f)
{
    f->lb->ops->destroy(f->lb);
    rm_cluster_unref(f->cluster);
    rm_cluster_shared_unref(f->shared);
    for (size_t i = 0; i < f->n; i++)
        rm_host_unref(f->hosts[i]);
}

static size_t index_of(fx_t *f, rm_host_t *h)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->hosts[i] == h)
            return i;
    fail_msg("picked %p, not a host of the cluster", (void *)h);
    return 0;
}

static void set_flags(fx_t *f, size_t i, uint32_t flags)
{
    atomic_store(&f->hosts[i]->health_flags, flags);
    rm_cluster_bump_health_epoch(f->cluster);
}

static void pick_n(fx_t *f, size_t n, size_t *counts)
{
    memset(counts, 0, MAXH * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        rm_host_t *h = f->lb->ops->pick(f->lb, NULL);
        assert_non_null(h);
        counts[index_of(f, h)]++;
    }
}

static size_t sum_of(const size_t *counts, size_t from, size_t to)
{
    size_t s = 0;
    for (size_t i = from; i < to; i++)
        s += counts[i];
    return s;
}

/* share in [expect - tol, expect + tol], both in percent of n */
static void assert_share(const char *what, rm_lb_policy_t p, size_t got, size_t n, double expect, double tol)
{
    double pct = 100.0 * (double)got / (double)n;
    if (pct < expect - tol || pct > expect + tol)
        fail_msg("policy %d, %s: %.2f%% of picks, expected %.1f%% +/- %.1f", (int)p, what, pct, expect, tol);
}

#define FAIL RM_HOST_FAILED_ACTIVE_HC
#define DEGR RM_HOST_DEGRADED_ACTIVE_HC
static const cspec_t defaults = {-1, 0};

static void test_policy_table(void **state)
{
    (void)state;
    assert_ptr_equal(rm_lb_ops_for(RM_LB_ROUND_ROBIN), &rm_lb_round_robin_ops);
    assert_ptr_equal(rm_lb_ops_for(RM_LB_RANDOM), &rm_lb_random_ops);
    assert_ptr_equal(rm_lb_ops_for(RM_LB_LEAST_REQUEST), &rm_lb_least_request_ops);
    assert_null(rm_lb_ops_for((rm_lb_policy_t)2));
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, 0}};
        fx_make(&f, policies[p], hs, 1, defaults);
        assert_ptr_equal(f.lb->ops, rm_lb_ops_for(policies[p]));
        assert_ptr_equal(f.lb->cluster, f.cluster);
        assert_ptr_equal(f.lb->ops->pick(f.lb, NULL), f.hosts[0]);
        fx_release(&f);
    }
}

static void test_unhealthy_excluded_and_recovers(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 0, 0}};
        fx_make(&f, policies[p], hs, 4, defaults);
        size_t c[MAXH];
        set_flags(&f, 1, RM_HOST_FAILED_OUTLIER_CHECK);
        pick_n(&f, 3000, c);
        assert_int_equal(c[1], 0);
        set_flags(&f, 1, 0);
        pick_n(&f, 4000, c);
        assert_share("recovered host", policies[p], c[1], 4000, 25, 3);
        fx_release(&f);
    }
}

/* hosts_changed rebuilds at once, without waiting for an epoch bump. */
static void test_hosts_changed_rebuilds(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, 0}, {1, 0, 0}};
        fx_make(&f, policies[p], hs, 2, defaults);
        atomic_store(&f.hosts[0]->health_flags, RM_HOST_FAILED_EDS_HEALTH);
        f.lb->ops->hosts_changed(f.lb);
        for (int i = 0; i < 200; i++)
            assert_ptr_equal(f.lb->ops->pick(f.lb, NULL), f.hosts[1]);
        fx_release(&f);
    }
}

/* Degraded hosts get only the degraded share: 2 healthy + 1 degraded of 3 gives health 93 and
 * degraded 46, normalized 100: 93% to the healthy hosts, 7% to the degraded one. */
static void test_degraded_share(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, 0}, {1, 0, 0}, {1, 0, DEGR}};
        fx_make(&f, policies[p], hs, 3, defaults);
        size_t c[MAXH];
        const size_t n = 20000;
        pick_n(&f, n, c);
        assert_share("degraded host", policies[p], c[2], n, 7, 1);
        /* all hosts degraded: they take everything */
        set_flags(&f, 0, DEGR);
        set_flags(&f, 1, RM_HOST_DEGRADED_EDS_HEALTH);
        pick_n(&f, 3000, c);
        assert_share("all degraded", policies[p], sum_of(c, 0, 3), 3000, 100, 0);
        fx_release(&f);
    }
}

/* Spill: P0 has 4 hosts, 2 fail: health 70, so P0 keeps 70% and P1 takes 30%. */
static void test_priority_spill(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, 0}, {1, 0, 0}, {1, 0, FAIL}, {1, 0, FAIL}, {1, 1, 0}, {1, 1, 0}};
        fx_make(&f, policies[p], hs, 6, defaults);
        size_t c[MAXH];
        const size_t n = 20000;
        pick_n(&f, n, c);
        assert_int_equal(c[2] + c[3], 0);
        assert_share("P0", policies[p], c[0] + c[1], n, 70, 1.5);
        assert_share("P1", policies[p], c[4] + c[5], n, 30, 1.5);
        /* 8 of 10 healthy is still 100% (8 * 1.4 >= 10); 7 of 10 gives 98/2. */
        fx_release(&f);
        hspec_t big[11];
        for (size_t i = 0; i < 10; i++)
            big[i] = (hspec_t){1, 0, i < 3 ? FAIL : 0};
        big[10] = (hspec_t){1, 1, 0};
        fx_make(&f, policies[p], big, 11, defaults);
        pick_n(&f, n, c);
        assert_share("P0 at 70% healthy", policies[p], sum_of(c, 0, 10), n, 98, 0.5);
        set_flags(&f, 2, 0);
        pick_n(&f, 2000, c);
        assert_int_equal(c[10], 0);
        fx_release(&f);
    }
}

/* Partial panic: P0 has 1 healthy of 5 (20%), P1 3 of 5; factor 1.0 so health is 20 and 60,
 * normalized 80 < 100. P0 (20% < 50%) panics and its 25% goes to all five P0 hosts; P1 (60%) does
 * not panic and its 75% goes to its healthy hosts only. */
static void test_partial_panic(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, 0}, {1, 0, FAIL}, {1, 0, FAIL}, {1, 0, FAIL}, {1, 0, FAIL},
                              {1, 1, 0}, {1, 1, 0},    {1, 1, 0},    {1, 1, FAIL}, {1, 1, FAIL}};
        fx_make(&f, policies[p], hs, 10, (cspec_t){-1, 100});
        size_t c[MAXH];
        const size_t n = 30000;
        pick_n(&f, n, c);
        assert_share("P0", policies[p], sum_of(c, 0, 5), n, 25, 1.5);
        assert_share("unhealthy P0 host (panic)", policies[p], c[3], n, 5, 1);
        assert_share("P1", policies[p], sum_of(c, 5, 10), n, 75, 1.5);
        assert_int_equal(c[8] + c[9], 0);
        fx_release(&f);
    }
}

/* Total panic: nothing healthy, every level panics, the load follows host counts (P0 2 of 3 hosts:
 * 67%; P1: 33%) and unhealthy hosts are used. */
static void test_total_panic(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, FAIL}, {1, 0, FAIL}, {1, 1, FAIL}};
        fx_make(&f, policies[p], hs, 3, defaults);
        size_t c[MAXH];
        const size_t n = 30000;
        pick_n(&f, n, c);
        assert_share("P0", policies[p], c[0] + c[1], n, 67, 1.5);
        assert_share("P1", policies[p], c[2], n, 33, 1.5);
        fx_release(&f);
    }
}

/* Panic disabled and nothing healthy: no host (the proxy answers 503 UH). Same for an empty
 * cluster, with or without panic. */
static void test_nothing_can_serve(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, FAIL}, {1, 1, FAIL}};
        fx_make(&f, policies[p], hs, 2, (cspec_t){0, 0});
        for (int i = 0; i < 50; i++)
            assert_null(f.lb->ops->pick(f.lb, NULL));
        /* one host recovers: traffic resumes */
        set_flags(&f, 1, 0);
        assert_ptr_equal(f.lb->ops->pick(f.lb, NULL), f.hosts[1]);
        fx_release(&f);

        fx_make(&f, policies[p], NULL, 0, defaults);
        assert_null(f.lb->ops->pick(f.lb, NULL));
        fx_release(&f);
        fx_make(&f, policies[p], NULL, 0, (cspec_t){0, 0});
        assert_null(f.lb->ops->pick(f.lb, NULL));
        fx_release(&f);
    }
}

/* The Gravitee "secondary endpoint" made strict: overprovisioning factor 100000 keeps P0 at 100% while
 * any P0 host is healthy, panic threshold 0 keeps panic from spreading load to unhealthy primaries. */
static void test_strict_secondary(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 1, 0}};
        fx_make(&f, policies[p], hs, 4, (cspec_t){0, 100000});
        size_t c[MAXH];
        set_flags(&f, 0, FAIL);
        set_flags(&f, 1, FAIL);
        pick_n(&f, 2000, c);
        assert_int_equal(c[2], 2000); /* one primary of three left: still all of the traffic */
        set_flags(&f, 2, FAIL);
        pick_n(&f, 2000, c);
        assert_int_equal(c[3], 2000); /* all primaries down: the secondary takes over */
        set_flags(&f, 3, FAIL);
        assert_null(f.lb->ops->pick(f.lb, NULL));
        set_flags(&f, 1, 0);
        pick_n(&f, 500, c);
        assert_int_equal(c[1], 500); /* a primary is back: traffic returns at once */
        fx_release(&f);
    }
}

/* With the defaults, a secondary (P1) takes traffic gradually as P0 health drops below ~71%. */
static void test_gradual_secondary(void **state)
{
    (void)state;
    static const struct {
        size_t p0_failed; /* of 10 */
        double p1_share;
    } steps[] = {{0, 0}, {2, 0}, {3, 2}, {5, 30}, {10, 100}};
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            fx_t f;
            hspec_t hs[12];
            for (size_t i = 0; i < 10; i++)
                hs[i] = (hspec_t){1, 0, i < steps[s].p0_failed ? FAIL : 0};
            hs[10] = hs[11] = (hspec_t){1, 1, 0};
            fx_make(&f, policies[p], hs, 12, defaults);
            size_t c[MAXH];
            const size_t n = 20000;
            pick_n(&f, n, c);
            assert_share("secondary", policies[p], c[10] + c[11], n, steps[s].p1_share, 1.5);
            fx_release(&f);
        }
    }
}

/* Retries get a host not tried yet whenever the chosen list has one. */
static void test_retry_avoidance(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        const hspec_t hs[] = {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}};
        fx_make(&f, policies[p], hs, 3, defaults);
        for (int i = 0; i < 200; i++) {
            rm_host_t *tried[3];
            tried[0] = f.lb->ops->pick(f.lb, NULL);
            rm_lb_context_t ctx = {tried, 1, 0};
            tried[1] = f.lb->ops->pick(f.lb, &ctx);
            assert_ptr_not_equal(tried[1], tried[0]);
            ctx.num_tried = 2;
            tried[2] = f.lb->ops->pick(f.lb, &ctx);
            assert_ptr_not_equal(tried[2], tried[0]);
            assert_ptr_not_equal(tried[2], tried[1]);
            /* everything tried: still a host rather than a failure */
            ctx.num_tried = 3;
            assert_non_null(f.lb->ops->pick(f.lb, &ctx));
        }
        fx_release(&f);
    }
}

/* previous_priorities: with P0 excluded the load is recomputed over the other levels (P1 and P2 share
 * it as Envoy's math says when P0 has no hosts); excluding every level is ignored. */
static void test_excluded_priorities(void **state)
{
    (void)state;
    for (size_t p = 0; p < NUM_POLICIES; p++) {
        fx_t f;
        /* P0: 2 healthy; P1: 1 of 2 healthy (health 70); P2: 1 healthy. */
        const hspec_t hs[] = {{1, 0, 0}, {1, 0, 0}, {1, 1, 0}, {1, 1, RM_HOST_FAILED_EDS_HEALTH}, {1, 2, 0}};
        fx_make(&f, policies[p], hs, 5, defaults);
        size_t counts[5] = {0};
        rm_lb_context_t ex0 = {NULL, 0, 1u << 0};
        const int n = 10000;
        for (int i = 0; i < n; i++)
            counts[index_of(&f, f.lb->ops->pick(f.lb, &ex0))]++;
        assert_int_equal(counts[0] + counts[1], 0);
        assert_int_equal(counts[3], 0);
        /* P1 health 70, P2 100: normalized 100, P1 gets 70%, P2 30%. */
        assert_in_range(counts[2], n * 70 / 100 - 300, n * 70 / 100 + 300);
        assert_in_range(counts[4], n * 30 / 100 - 300, n * 30 / 100 + 300);
        /* Everything excluded: the exclusion is dropped, P0 serves. */
        rm_lb_context_t all = {NULL, 0, 0x7};
        for (int i = 0; i < 100; i++) {
            size_t k = index_of(&f, f.lb->ops->pick(f.lb, &all));
            assert_true(k == 0 || k == 1);
        }
        fx_release(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_excluded_priorities),
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_unhealthy_excluded_and_recovers),
        cmocka_unit_test(test_hosts_changed_rebuilds),
        cmocka_unit_test(test_degraded_share),
        cmocka_unit_test(test_priority_spill),
        cmocka_unit_test(test_partial_panic),
        cmocka_unit_test(test_total_panic),
        cmocka_unit_test(test_nothing_can_serve),
        cmocka_unit_test(test_strict_secondary),
        cmocka_unit_test(test_gradual_secondary),
        cmocka_unit_test(test_retry_avoidance),
    };
    return cmocka_run_group_tests_name("lb_common", tests, NULL, NULL);
}
