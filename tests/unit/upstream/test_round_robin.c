/* Round robin: exact rotation over healthy hosts, health-epoch driven rebuilds, priority fallback,
 * panic when nothing is healthy, and avoidance of already-tried hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/lb/lb.h"

typedef struct {
    rm_cluster_shared_t *shared;
    rm_cluster_t *cluster;
    rm_host_t *hosts[8];
    size_t n;
    rm_rng_t rng;
} fixture_t;

static rm_cluster_t *make_cluster(fixture_t *f, const uint32_t *prio, size_t n)
{
    rm_cluster_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "c";
    cfg.connect_timeout_ms = 1000;
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.0.%zu", i + 1);
        f->hosts[i] = rm_host_create(ip, 80, 1, prio ? prio[i] : 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    }
    f->shared = rm_cluster_shared_create("c");
    f->cluster = rm_cluster_create(&cfg, f->shared, f->hosts, n);
    rm_rng_seed(&f->rng, 42);
    return f->cluster;
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
    /* degraded is not a failure: the host comes back */
    set_flags(&f, 1, RM_HOST_DEGRADED_EDS_HEALTH);
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
    /* nothing healthy anywhere: panic routes across all of priority 0 */
    set_flags(&f, 2, RM_HOST_EDS_STATUS_DRAINING);
    size_t counts[3] = {0};
    for (int i = 0; i < 10; i++)
        counts[index_of(&f, lb->ops->pick(lb, NULL))]++;
    assert_int_equal(counts[0], 5);
    assert_int_equal(counts[1], 5);
    assert_int_equal(counts[2], 0);
    bool panic;
    assert_int_equal(rm_lb_choose_priority(f.cluster, &panic), 0);
    assert_true(panic);
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
        rm_lb_context_t ctx = {tried, 1};
        assert_ptr_not_equal(lb->ops->pick(lb, &ctx), first);
    }
    /* every host tried: still returns one rather than failing */
    rm_lb_context_t all = {f.hosts, 3};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_even_rotation),
        cmocka_unit_test(test_skips_unhealthy_after_epoch_bump),
        cmocka_unit_test(test_priority_fallback_and_panic),
        cmocka_unit_test(test_avoids_tried_hosts),
        cmocka_unit_test(test_empty_cluster),
        cmocka_unit_test(test_workers_start_at_different_offsets),
    };
    return cmocka_run_group_tests_name("round_robin", tests, NULL, NULL);
}
