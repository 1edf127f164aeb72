/* Random: uniform over equal weights, proportional to weight otherwise (chi-square against the
 * expected counts, plus an absolute tolerance per host), every host reachable at the edges of the
 * cumulative table, weight changes picked up on the epoch bump, slow start not applied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/lb/lb.h"

#define MAXH 8

typedef struct {
    rm_cluster_shared_t *shared;
    rm_cluster_t *cluster;
    rm_host_t *hosts[MAXH];
    size_t n;
    rm_rng_t rng;
    rm_lb_t *lb;
} fx_t;

static void fx_make(fx_t *f, const uint32_t *weights, size_t n, uint64_t seed)
{
    rm_cluster_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "r";
    cfg.connect_timeout_ms = 1000;
    cfg.lb_policy = RM_LB_RANDOM;
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.2.%zu", i + 1);
        f->hosts[i] = rm_host_create(ip, 80, weights[i], 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    }
    f->shared = rm_cluster_shared_create("r");
    f->cluster = rm_cluster_create(&cfg, f->shared, f->hosts, n);
    rm_rng_seed(&f->rng, seed);
    f->lb = rm_lb_random_ops.create(f->cluster, &f->rng);
}

static void fx_release(fx_t *f)
{
    f->lb->ops->destroy(f->lb);
    rm_cluster_unref(f->cluster);
    rm_cluster_shared_unref(f->shared);
    for (size_t i = 0; i < f->n; i++)
        rm_host_unref(f->hosts[i]);
}

static void count_picks(fx_t *f, size_t n, size_t *counts)
{
    memset(counts, 0, MAXH * sizeof(size_t));
    for (size_t k = 0; k < n; k++) {
        rm_host_t *h = f->lb->ops->pick(f->lb, NULL);
        size_t i = 0;
        while (i < f->n && f->hosts[i] != h)
            i++;
        assert_true(i < f->n);
        counts[i]++;
    }
}

/* Pearson's chi-square of counts against shares proportional to weights. */
static double chi_square(const size_t *counts, const uint32_t *weights, size_t n, size_t picks)
{
    double total_w = 0, chi = 0;
    for (size_t i = 0; i < n; i++)
        total_w += weights[i];
    for (size_t i = 0; i < n; i++) {
        double expect = (double)picks * weights[i] / total_w;
        double d = (double)counts[i] - expect;
        chi += d * d / expect;
    }
    return chi;
}

/* Critical chi-square values at p = 0.001 for 1..7 degrees of freedom. */
static const double chi_crit[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32};

static void test_weighted_shares(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        uint32_t w[MAXH];
    } cases[] = {
        {5, {1, 1, 1, 1, 1}}, {4, {1, 2, 3, 4}}, {3, {10, 1, 1}}, {2, {1, 9}}, {6, {5, 5, 1, 1, 20, 3}},
    };
    const size_t picks = 100000;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (uint64_t seed = 1; seed <= 3; seed++) {
            fx_t f;
            fx_make(&f, cases[c].w, cases[c].n, seed);
            size_t counts[MAXH];
            count_picks(&f, picks, counts);
            double chi = chi_square(counts, cases[c].w, f.n, picks);
            if (chi > chi_crit[f.n - 1])
                fail_msg("case %zu seed %lu: chi-square %.2f above %.2f", c, (unsigned long)seed, chi,
                         chi_crit[f.n - 1]);
            /* and each share within 0.7 percentage points of its weight share (> 4 sigma) */
            double total_w = 0;
            for (size_t i = 0; i < f.n; i++)
                total_w += cases[c].w[i];
            for (size_t i = 0; i < f.n; i++) {
                double got = 100.0 * (double)counts[i] / (double)picks;
                double want = 100.0 * cases[c].w[i] / total_w;
                if (got < want - 0.7 || got > want + 0.7)
                    fail_msg("case %zu host %zu: %.2f%%, expected %.2f%%", c, i, got, want);
            }
            fx_release(&f);
        }
    }
}

/* The first and last entries of the cumulative table are reachable, and a tiny weight gets its tiny
 * share (1 in 1002: about 200 of 200200 picks; the range is +/- 80, under 6 sigma). */
static void test_extreme_weights(void **state)
{
    (void)state;
    fx_t f;
    const uint32_t w[] = {1, 1000, 1};
    fx_make(&f, w, 3, 7);
    size_t counts[MAXH];
    count_picks(&f, 200200, counts);
    assert_in_range(counts[0], 120, 280);
    assert_in_range(counts[2], 120, 280);
    fx_release(&f);
}

static void test_weight_change_on_epoch(void **state)
{
    (void)state;
    fx_t f;
    const uint32_t w[] = {1, 1};
    fx_make(&f, w, 2, 11);
    size_t counts[MAXH];
    count_picks(&f, 10000, counts);
    assert_in_range(counts[0], 4700, 5300);
    atomic_store(&f.hosts[0]->weight, 3);
    rm_cluster_bump_health_epoch(f.cluster);
    count_picks(&f, 20000, counts);
    assert_in_range(counts[0], 14700, 15300); /* 75% +/- 1.5 points */
    fx_release(&f);
}

/* Slow start applies to round robin and least request only, as in Envoy: a new host gets its full
 * share under random at once. */
static void test_no_slow_start(void **state)
{
    (void)state;
    rm_cluster_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "r";
    cfg.lb_policy = RM_LB_RANDOM;
    cfg.slow_start_window_ms = 60000;
    rm_host_t *hosts[2];
    hosts[0] = rm_host_create("10.0.2.1", 80, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    hosts[1] = rm_host_create("10.0.2.2", 80, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    rm_fake_clock_t clock;
    rm_fake_clock_init(&clock, 1000000);
    hosts[1]->added_ms = 1000000;
    rm_cluster_shared_t *shared = rm_cluster_shared_create("r");
    rm_cluster_t *c = rm_cluster_create(&cfg, shared, hosts, 2);
    rm_rng_t rng;
    rm_rng_seed(&rng, 5);
    rm_lb_t *lb = rm_lb_random_ops.create_with_clock(c, &rng, &clock.super);
    size_t new_host = 0;
    for (int i = 0; i < 10000; i++)
        new_host += lb->ops->pick(lb, NULL) == hosts[1];
    assert_in_range(new_host, 4700, 5300);
    lb->ops->destroy(lb);
    rm_cluster_unref(c);
    rm_cluster_shared_unref(shared);
    rm_host_unref(hosts[0]);
    rm_host_unref(hosts[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_shares),
        cmocka_unit_test(test_extreme_weights),
        cmocka_unit_test(test_weight_change_on_epoch),
        cmocka_unit_test(test_no_slow_start),
    };
    return cmocka_run_group_tests_name("lb_random", tests, NULL, NULL);
}
