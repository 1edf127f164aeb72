/* Round robin: exact rotation over healthy hosts, health-epoch driven rebuilds, priority fallback,
 * total panic when nothing is healthy, avoidance of already-tried hosts, and weighted round robin
 * (EDF): exact shares over each cycle, bounded runs, weight changes. Behaviour shared by every policy
 * (degraded hosts, spill, panic thresholds) is in test_lb_common.c. */
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
    rm_cluster_shared_t *shared;
    rm_cluster_t *cluster;
    rm_host_t *hosts[MAXH];
    size_t n;
    rm_rng_t rng;
} fixture_t;

static rm_cluster_t *make_weighted(fixture_t *f, const uint32_t *prio, const uint32_t *weight, size_t n)
{
    rm_cluster_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "c";
    cfg.connect_timeout_ms = 1000;
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.0.%zu", i + 1);
        f->hosts[i] = rm_host_create(ip, 80, weight ? weight[i] : 1, prio ? prio[i] : 0,
                                     RM_HEALTH_STATUS_HEALTHY, NULL);
    }
    f->shared = rm_cluster_shared_create("c");
    f->cluster = rm_cluster_create(&cfg, f->shared, f->hosts, n);
    rm_rng_seed(&f->rng, 42);
    return f->cluster;
}

static rm_cluster_t *make_cluster(fixture_t *f, const uint32_t *prio, size_t n)
{
    return make_weighted(f, prio, NULL, n);
}

static void release(fixture_t *f)
{
    rm_cluster_unref(f->cluster);
    rm_cluster_shared_unref(f->shared);
    for (size_t i = 0; i < f->n; i++)
        rm_host_unref(f->hosts[i]);
}

static size_t index_of(fixture_t *f, rm_host_t *h)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->hosts[i] == h)
            return i;
    fail_msg("picked a host that is not in the cluster");
    return 0;
}

static void set_flags(fixture_t *f, size_t i, uint32_t flags)
{
    atomic_store(&f->hosts[i]->health_flags, flags);
    rm_cluster_bump_health_epoch(f->cluster);
}

static void test_even_rotation(void **state)
{
    (void)state;
    fixture_t f;
    make_cluster(&f, NULL, 4);
    rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
    size_t counts[4] = {0};
    size_t prev = index_of(&f, lb->ops->pick(lb, NULL));
    counts[prev]++;
    for (int i = 1; i < 400; i++) {
        size_t k = index_of(&f, lb->ops->pick(lb, NULL));
        /* strict rotation: each pick is the successor of the previous one */
        assert_int_equal(k, (prev + 1) % 4);
        counts[k]++;
        prev = k;
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(counts[i], 100);
    lb->ops->destroy(lb);
    release(&f);
}

static void test_skips_unhealthy_after_epoch_bump(void **state)
{
    (void)state;
    fixture_t f;
    make_cluster(&f, NULL, 3);
    rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
    set_flags(&f, 1, RM_HOST_FAILED_OUTLIER_CHECK);
    for (int i = 0; i < 30; i++)
        assert_int_not_equal(index_of(&f, lb->ops->pick(lb, NULL)), 1);
    /* recovered: the host is back in the rotation */
    set_flags(&f, 1, 0);
    size_t seen1 = 0;
    for (int i = 0; i < 30; i++)
        seen1 += index_of(&f, lb->ops->pick(lb, NULL)) == 1;
    assert_int_equal(seen1, 10);
    lb->ops->destroy(lb);
    release(&f);
}

static void test_priority_fallback_and_panic(void **state)
{
    (void)state;
    fixture_t f;
    const uint32_t prio[] = {0, 0, 1};
    make_cluster(&f, prio, 3);
    rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
    for (int i = 0; i < 10; i++)
        assert_true(index_of(&f, lb->ops->pick(lb, NULL)) < 2);
    set_flags(&f, 0, RM_HOST_FAILED_ACTIVE_HC);
    set_flags(&f, 1, RM_HOST_FAILED_EDS_HEALTH);
    for (int i = 0; i < 10; i++)
        assert_int_equal(index_of(&f, lb->ops->pick(lb, NULL)), 2);
    /* Nothing healthy anywhere: every level panics (total panic) and Envoy spreads the load by host
     * count regardless of health: P0 (2 hosts) 67%, P1 (1 host) 33%. Within P0 the rotation stays
     * strict, so hosts 0 and 1 differ by at most one pick. */
    set_flags(&f, 2, RM_HOST_EDS_STATUS_DRAINING);
    size_t counts[3] = {0};
    const int n = 30000;
    for (int i = 0; i < n; i++)
        counts[index_of(&f, lb->ops->pick(lb, NULL))]++;
    assert_true(counts[0] <= counts[1] + 1 && counts[1] <= counts[0] + 1);
    /* P1 share: 33% +/- 1.5 points (about 6 standard deviations of the level draw). */
    assert_in_range(counts[2], (size_t)(n * 0.315), (size_t)(n * 0.345));
    lb->ops->destroy(lb);
    release(&f);
}

static void test_avoids_tried_hosts(void **state)
{
    (void)state;
    fixture_t f;
    make_cluster(&f, NULL, 3);
    rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
    for (int i = 0; i < 20; i++) {
        rm_host_t *first = lb->ops->pick(lb, NULL);
        rm_host_t *tried[] = {first};
        rm_lb_context_t ctx = {tried, 1, 0};
        assert_ptr_not_equal(lb->ops->pick(lb, &ctx), first);
    }
    /* every host tried: still returns one rather than failing */
    rm_lb_context_t all = {f.hosts, 3, 0};
    assert_non_null(lb->ops->pick(lb, &all));
    lb->ops->destroy(lb);
    release(&f);
}

static void test_empty_cluster(void **state)
{
    (void)state;
    fixture_t f;
    make_cluster(&f, NULL, 0);
    rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
    assert_null(lb->ops->pick(lb, NULL));
    lb->ops->destroy(lb);
    release(&f);
}

static void test_workers_start_at_different_offsets(void **state)
{
    (void)state;
    fixture_t f;
    make_cluster(&f, NULL, 8);
    size_t firsts[8] = {0};
    for (uint64_t seed = 0; seed < 64; seed++) {
        rm_rng_t rng;
        rm_rng_seed(&rng, seed);
        rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &rng);
        firsts[index_of(&f, lb->ops->pick(lb, NULL))]++;
        lb->ops->destroy(lb);
    }
    size_t distinct = 0;
    for (int i = 0; i < 8; i++)
        distinct += firsts[i] > 0;
    assert_true(distinct >= 6);
    release(&f);
}

static size_t longest_run(const size_t *seq, size_t len, size_t host)
{
    size_t run = 0, best = 0;
    for (size_t i = 0; i < len; i++) {
        run = seq[i] == host ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* Weighted round robin: over every cycle of sum(weights) consecutive picks each host gets exactly its
 * weight, whatever the worker's random start. Runs are bounded by EDF's guarantee: host i can be
 * picked at most floor(w_i / w_j) + 1 times in a row, w_j the heaviest other host (j comes due at
 * least once every 1/w_j of virtual time, i at most w_i / w_j + 1 times in such a span). */
static void test_weighted_exact_cycles_and_bounded_runs(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        uint32_t w[8];
    } cases[] = {
        {2, {2, 1}},          {3, {5, 1, 1}},
        {4, {1, 2, 3, 4}},    {3, {10, 1, 1}},
        {5, {7, 7, 3, 2, 1}}, {2, {100, 1}},
        {4, {3, 3, 3, 1}},    {6, {1, 1, 1, 1, 1, 2}},
        {3, {13, 8, 5}},      {8, {1, 2, 3, 4, 5, 6, 7, 8}},
    };
    enum { CYCLES = 12, MAXSEQ = 12 * 101 };
    static size_t seq[MAXSEQ];
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (uint64_t seed = 0; seed < 8; seed++) {
            fixture_t f;
            make_weighted(&f, NULL, cases[c].w, cases[c].n);
            rm_rng_seed(&f.rng, seed);
            rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
            size_t total = 0;
            for (size_t i = 0; i < f.n; i++)
                total += cases[c].w[i];
            size_t len = total * CYCLES;
            assert_true(len <= MAXSEQ);
            for (size_t k = 0; k < len; k++)
                seq[k] = index_of(&f, lb->ops->pick(lb, NULL));
            for (size_t cyc = 0; cyc < CYCLES; cyc++) {
                size_t counts[8] = {0};
                for (size_t k = cyc * total; k < (cyc + 1) * total; k++)
                    counts[seq[k]]++;
                for (size_t i = 0; i < f.n; i++)
                    if (counts[i] != cases[c].w[i])
                        fail_msg("case %zu seed %lu cycle %zu: host %zu got %zu picks, weight %u", c,
                                 (unsigned long)seed, cyc, i, counts[i], cases[c].w[i]);
            }
            for (size_t i = 0; i < f.n; i++) {
                uint32_t heaviest_other = 0;
                for (size_t j = 0; j < f.n; j++)
                    if (j != i && cases[c].w[j] > heaviest_other)
                        heaviest_other = cases[c].w[j];
                size_t bound = cases[c].w[i] / heaviest_other + 1;
                size_t run = longest_run(seq, len, i);
                if (run > bound)
                    fail_msg("case %zu seed %lu: host %zu ran %zu times in a row (bound %zu)", c,
                             (unsigned long)seed, i, run, bound);
            }
            lb->ops->destroy(lb);
            release(&f);
        }
    }
}

/* One heavy host among many light ones: the light hosts' turns are staggered over the cycle, so the
 * heavy host is interleaved with them (EDF alone would only promise runs of 11 here). */
static void test_weighted_heavy_host_interleaves(void **state)
{
    (void)state;
    uint32_t w[11] = {10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static size_t seq[20 * 20];
    for (uint64_t seed = 0; seed < 16; seed++) {
        fixture_t f;
        make_weighted(&f, NULL, w, 11);
        rm_rng_seed(&f.rng, seed);
        rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
        for (size_t k = 0; k < 20 * 20; k++)
            seq[k] = index_of(&f, lb->ops->pick(lb, NULL));
        assert_true(longest_run(seq, 20 * 20, 0) <= 2);
        lb->ops->destroy(lb);
        release(&f);
    }
}

/* A weight change arrives with a health epoch bump; the schedule is rebuilt with the new weights. */
static void test_weight_change_rebuilds(void **state)
{
    (void)state;
    fixture_t f;
    make_cluster(&f, NULL, 3);
    rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
    for (int i = 0; i < 7; i++)
        lb->ops->pick(lb, NULL);
    atomic_store(&f.hosts[0]->weight, 3);
    rm_cluster_bump_health_epoch(f.cluster);
    for (int cyc = 0; cyc < 10; cyc++) {
        size_t counts[3] = {0};
        for (int i = 0; i < 5; i++)
            counts[index_of(&f, lb->ops->pick(lb, NULL))]++;
        assert_int_equal(counts[0], 3);
        assert_int_equal(counts[1], 1);
        assert_int_equal(counts[2], 1);
    }
    /* back to equal weights: strict rotation again */
    atomic_store(&f.hosts[0]->weight, 1);
    rm_cluster_bump_health_epoch(f.cluster);
    size_t prev = index_of(&f, lb->ops->pick(lb, NULL));
    for (int i = 0; i < 30; i++) {
        size_t k = index_of(&f, lb->ops->pick(lb, NULL));
        assert_int_equal(k, (prev + 1) % 3);
        prev = k;
    }
    lb->ops->destroy(lb);
    release(&f);
}

/* A retry avoids the tried host even when it holds nearly all the weight. */
static void test_weighted_retry_avoids_heavy_host(void **state)
{
    (void)state;
    fixture_t f;
    const uint32_t w[] = {100, 1};
    make_weighted(&f, NULL, w, 2);
    rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &f.rng);
    rm_host_t *tried[] = {f.hosts[0]};
    rm_lb_context_t ctx = {tried, 1, 0};
    for (int i = 0; i < 50; i++)
        assert_ptr_equal(lb->ops->pick(lb, &ctx), f.hosts[1]);
    lb->ops->destroy(lb);
    release(&f);
}

/* Weighted lists also start at different places on different workers. */
static void test_weighted_workers_start_at_different_offsets(void **state)
{
    (void)state;
    fixture_t f;
    const uint32_t w[] = {1, 2, 3, 4, 4, 3, 2, 1};
    make_weighted(&f, NULL, w, 8);
    size_t firsts[8] = {0};
    for (uint64_t seed = 0; seed < 64; seed++) {
        rm_rng_t rng;
        rm_rng_seed(&rng, seed);
        rm_lb_t *lb = rm_lb_round_robin_ops.create(f.cluster, &rng);
        firsts[index_of(&f, lb->ops->pick(lb, NULL))]++;
        lb->ops->destroy(lb);
    }
    size_t distinct = 0;
    for (int i = 0; i < 8; i++)
        distinct += firsts[i] > 0;
    assert_true(distinct >= 4);
    release(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_even_rotation),
        cmocka_unit_test(test_skips_unhealthy_after_epoch_bump),
        cmocka_unit_test(test_priority_fallback_and_panic),
        cmocka_unit_test(test_avoids_tried_hosts),
        cmocka_unit_test(test_empty_cluster),
        cmocka_unit_test(test_workers_start_at_different_offsets),
        cmocka_unit_test(test_weighted_exact_cycles_and_bounded_runs),
        cmocka_unit_test(test_weighted_heavy_host_interleaves),
        cmocka_unit_test(test_weight_change_rebuilds),
        cmocka_unit_test(test_weighted_retry_avoids_heavy_host),
        cmocka_unit_test(test_weighted_workers_start_at_different_offsets),
    };
    return cmocka_run_group_tests_name("round_robin", tests, NULL, NULL);
}
