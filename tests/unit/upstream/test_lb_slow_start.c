/* Slow start: Envoy's factor max(min_weight, time_factor ^ (1 / aggression)) as a table, the refresh
 * interval, the bounded recompute of a ramping scheduler (clock reads and reweights counted), and the
 * ramp seen through round robin and least request with a fake clock: a new host's share follows
 * its effective weight at each stage, then equal weights return to strict rotation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/lb/lb.h"
#include "upstream/lb/slow_start.h"
#include "upstream/lb/weighted.h"

#define T0 1000000u /* fake monotonic ms when the new host joined */

static void test_factor_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint64_t window;
        double aggression;
        double min_pct;
        bool joined_late; /* added_ms = T0, else 0 (present from the start) */
        int64_t elapsed;  /* now - T0 (negative: clock behind the join time) */
        uint32_t flags;
        double expect;
        bool ramping; /* inside its window (a 100% minimum keeps the factor at 1 while ramping) */
    } rows[] = {
        {"just joined: min weight", 10000, 1, 10, true, 0, 0, 0.1, true},
        {"below min", 10000, 1, 10, true, 999, 0, 0.1, true},
        {"at min", 10000, 1, 10, true, 1000, 0, 0.1, true},
        {"quarter", 10000, 1, 10, true, 2500, 0, 0.25, true},
        {"half", 10000, 1, 10, true, 5000, 0, 0.5, true},
        {"almost done", 10000, 1, 10, true, 9999, 0, 0.9999, true},
        {"window over", 10000, 1, 10, true, 10000, 0, 1, false},
        {"long after", 10000, 1, 10, true, 20000, 0, 1, false},
        {"aggression 2", 10000, 2, 10, true, 2500, 0, 0.5, true},
        {"aggression 0.5", 10000, 0.5, 10, true, 5000, 0, 0.25, true},
        {"aggression 0.5 under min", 10000, 0.5, 10, true, 2000, 0, 0.1, true},
        {"min 0, elapsed counts as 1 ms", 10000, 1, 0, true, 0, 0, 0.0001, true},
        {"min 0", 10000, 1, 0, true, 1, 0, 0.0001, true},
        {"min above 100 clamps", 10000, 1, 150, true, 5000, 0, 1, true},
        {"invalid aggression is 1", 10000, -1, 10, true, 5000, 0, 0.5, true},
        {"clock behind join time", 10000, 1, 10, true, -50, 0, 0.1, true},
        {"present from the start", 10000, 1, 10, false, 0, 0, 1, false},
        {"slow start off", 0, 1, 10, true, 0, 0, 1, false},
        {"unhealthy host does not ramp", 10000, 1, 10, true, 5000, RM_HOST_FAILED_ACTIVE_HC, 1, false},
        {"degraded host does not ramp", 10000, 1, 10, true, 5000, RM_HOST_DEGRADED_EDS_HEALTH, 1, false},
    };
    rm_host_t *h = rm_host_create("10.0.4.1", 80, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        rm_cluster_t c;
        memset(&c, 0, sizeof(c));
        c.slow_start_window_ms = rows[r].window;
        c.slow_start_aggression = rows[r].aggression;
        c.slow_start_min_weight_percent = rows[r].min_pct;
        rm_slow_start_t ss;
        rm_slow_start_init(&ss, &c);
        h->added_ms = rows[r].joined_late ? T0 : 0;
        atomic_store(&h->health_flags, rows[r].flags);
        uint64_t now = (uint64_t)((int64_t)T0 + rows[r].elapsed);
        double f = rm_slow_start_factor(&ss, h, now);
        if (fabs(f - rows[r].expect) > 1e-9)
            fail_msg("%s: factor %.6f, expected %.6f", rows[r].name, f, rows[r].expect);
        assert_int_equal(rm_slow_start_active(&ss, h, now), rows[r].ramping);
        assert_int_equal(rm_slow_start_end_ms(&ss, h, now), rows[r].ramping ? T0 + rows[r].window : 0);
    }
    rm_host_unref(h);
}

static void test_refresh_interval(void **state)
{
    (void)state;
    static const uint64_t cases[][2] = {{50, 1},      {100, 1},     {1000, 10},
                                        {10000, 100}, {60000, 250}, {3600000, 250}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rm_slow_start_t ss = {cases[i][0], 1.0, 0.1};
        assert_int_equal(rm_slow_start_refresh_ms(&ss), cases[i][1]);
    }
}

/* A fake clock that counts how often it is read. */
typedef struct {
    rm_clock_t super;
    rm_fake_clock_t *inner;
    int reads;
} counting_clock_t;

static uint64_t counting_now(rm_clock_t *c)
{
    counting_clock_t *cc = (counting_clock_t *)c;
    cc->reads++;
    return cc->inner->now_ms;
}

static double unit_weight(const rm_host_t *h, uint32_t w)
{
    (void)h;
    return (double)w;
}

static double entry_weight(const rm_lb_weighted_t *w, uint32_t item)
{
    for (size_t i = 0; i < w->edf.size; i++)
        if (w->edf.heap[i].item == item)
            return w->edf.heap[i].weight;
    fail_msg("item %u not scheduled", item);
    return 0;
}

/* Weights are recomputed at most once per refresh interval (100 ms for a 10 s window); once the
 * last host is at full weight the scheduler stops reading the clock. */
static void test_bounded_recompute(void **state)
{
    (void)state;
    rm_fake_clock_t fake;
    rm_fake_clock_init(&fake, T0 + 5000);
    counting_clock_t clock = {{counting_now, NULL, NULL}, &fake, 0};
    rm_host_t *a = rm_host_create("10.0.4.1", 80, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    rm_host_t *b = rm_host_create("10.0.4.2", 80, 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    b->added_ms = T0;
    rm_host_t *hosts[] = {a, b};
    uint32_t weights[] = {1, 1};
    rm_lb_source_t src = {hosts, weights, 2, 2, true};
    rm_slow_start_t ss = {10000, 1.0, 0.1};
    rm_rng_t rng;
    rm_rng_seed(&rng, 1);
    rm_lb_weighted_t w;
    rm_lb_weighted_init(&w);
    rm_lb_weighted_build(&w, &src, &ss, &clock.super, unit_weight, false, &rng);
    assert_true(rm_lb_weighted_ramping(&w));
    assert_true(fabs(entry_weight(&w, 1) - 0.5) < 1e-9);

    rm_lb_weighted_pick(&w);
    rm_fake_clock_advance(&fake, 50); /* within the interval: no recompute */
    rm_lb_weighted_pick(&w);
    assert_true(fabs(entry_weight(&w, 1) - 0.5) < 1e-9);
    rm_fake_clock_advance(&fake, 50); /* interval reached */
    rm_lb_weighted_pick(&w);
    assert_true(fabs(entry_weight(&w, 1) - 0.51) < 1e-9);
    assert_true(fabs(entry_weight(&w, 0) - 1.0) < 1e-9);

    rm_fake_clock_advance(&fake, 4900); /* T0 + 10000: window over */
    rm_lb_weighted_pick(&w);
    assert_false(rm_lb_weighted_ramping(&w));
    assert_true(fabs(entry_weight(&w, 1) - 1.0) < 1e-9);
    int reads = clock.reads;
    for (int i = 0; i < 100; i++)
        rm_lb_weighted_pick(&w);
    assert_int_equal(clock.reads, reads);

    rm_lb_weighted_free(&w);
    rm_host_unref(a);
    rm_host_unref(b);
}

typedef struct {
    rm_cluster_shared_t *shared;
    rm_cluster_t *cluster;
    rm_host_t *hosts[2];
    rm_rng_t rng;
    rm_fake_clock_t clock;
    rm_lb_t *lb;
} fx_t;

/* Host 0 present from the start, host 1 joined at T0; the LB is created at T0 + start_offset. */
static void fx_make(fx_t *f, rm_lb_policy_t policy, const uint32_t *w, uint64_t window, double aggression,
                    uint64_t start_offset)
{
    rm_cluster_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "ss";
    cfg.lb_policy = policy;
    cfg.slow_start_window_ms = window;
    cfg.slow_start_aggression = aggression;
    for (size_t i = 0; i < 2; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.5.%zu", i + 1);
        f->hosts[i] = rm_host_create(ip, 80, w ? w[i] : 1, 0, RM_HEALTH_STATUS_HEALTHY, NULL);
    }
    f->hosts[1]->added_ms = T0;
    f->shared = rm_cluster_shared_create("ss");
    f->cluster = rm_cluster_create(&cfg, f->shared, f->hosts, 2);
    rm_rng_seed(&f->rng, 77);
    rm_fake_clock_init(&f->clock, T0 + start_offset);
    f->lb = rm_lb_ops_for(policy)->create_with_clock(f->cluster, &f->rng, &f->clock.super);
}

static void fx_release(fx_t *f)
{
    f->lb->ops->destroy(f->lb);
    rm_cluster_unref(f->cluster);
    rm_cluster_shared_unref(f->shared);
    rm_host_unref(f->hosts[0]);
    rm_host_unref(f->hosts[1]);
}

static size_t new_host_picks(fx_t *f, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += f->lb->ops->pick(f->lb, NULL) == f->hosts[1];
    return c;
}

/* Round robin and least request (both idle, so least request's weight is the plain weight) ramp the
 * new host: 10% at first, then 50% and 75% of the old host's weight; the shares are those of an EDF
 * with these weights (+/- 3 picks for the schedule catching up after a reweight). */
static void test_ramp(void **state)
{
    (void)state;
    const rm_lb_policy_t policies[] = {RM_LB_ROUND_ROBIN, RM_LB_LEAST_REQUEST};
    for (size_t p = 0; p < 2; p++) {
        fx_t f;
        fx_make(&f, policies[p], NULL, 10000, 0, 0);
        assert_in_range(new_host_picks(&f, 1100), 97, 103); /* 0.1 / 1.1 */
        rm_fake_clock_advance(&f.clock, 5000);
        assert_in_range(new_host_picks(&f, 900), 297, 303); /* 0.5 / 1.5 */
        rm_fake_clock_advance(&f.clock, 2500);
        assert_in_range(new_host_picks(&f, 1750), 747, 753); /* 0.75 / 1.75 */
        rm_fake_clock_advance(&f.clock, 2500);
        if (policies[p] == RM_LB_ROUND_ROBIN) {
            /* ramp over, weights equal: strict rotation again */
            rm_host_t *prev = f.lb->ops->pick(f.lb, NULL);
            for (int i = 0; i < 50; i++) {
                rm_host_t *h = f.lb->ops->pick(f.lb, NULL);
                assert_ptr_not_equal(h, prev);
                prev = h;
            }
        } else {
            /* ramp over: two random choices among idle hosts, even split +/- 3 points */
            assert_in_range(new_host_picks(&f, 4000), 1880, 2120);
        }
        fx_release(&f);
    }
}

/* Aggression 2 at a quarter of the window: factor sqrt(0.25) = 0.5, share 1/3. */
static void test_ramp_aggression(void **state)
{
    (void)state;
    fx_t f;
    fx_make(&f, RM_LB_ROUND_ROBIN, NULL, 10000, 2.0, 2500);
    assert_in_range(new_host_picks(&f, 1500), 497, 503);
    fx_release(&f);
}

/* Unequal weights ramp too: weights 3 and 1, the new host at half its weight (0.5 against 3). After
 * the window, exact 3:1 cycles. */
static void test_ramp_weighted(void **state)
{
    (void)state;
    fx_t f;
    const uint32_t w[] = {3, 1};
    fx_make(&f, RM_LB_ROUND_ROBIN, w, 10000, 0, 5000);
    assert_in_range(new_host_picks(&f, 3500), 497, 503);
    rm_fake_clock_advance(&f.clock, 5000);
    f.lb->ops->pick(f.lb, NULL); /* applies the final weights */
    for (int i = 0; i < 3; i++)
        f.lb->ops->pick(f.lb, NULL);
    for (int cyc = 0; cyc < 20; cyc++)
        assert_int_equal(new_host_picks(&f, 4), 1);
    fx_release(&f);
}

/* Without slow start a new host gets its share at once (strict rotation). */
static void test_no_ramp_when_off(void **state)
{
    (void)state;
    fx_t f;
    fx_make(&f, RM_LB_ROUND_ROBIN, NULL, 0, 0, 0);
    assert_int_equal(new_host_picks(&f, 1000), 500);
    fx_release(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factor_table),      cmocka_unit_test(test_refresh_interval),
        cmocka_unit_test(test_bounded_recompute), cmocka_unit_test(test_ramp),
        cmocka_unit_test(test_ramp_aggression),   cmocka_unit_test(test_ramp_weighted),
        cmocka_unit_test(test_no_ramp_when_off),
    };
    return cmocka_run_group_tests_name("lb_slow_start", tests, NULL, NULL);
}
