/* Priority load: Envoy's documented tables (priority levels, degraded endpoints, panic threshold),
 * the cases of Envoy's own load balancer tests, overprovisioning factor and panic threshold
 * variations, the "nothing can serve" corner, and the choice function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "upstream/priority_load.h"

#define MAXL 3

typedef struct {
    const char *name;
    size_t n;
    rm_priority_counts_t c[MAXL]; /* {total, healthy, degraded} */
    uint32_t factor;
    double threshold;
    uint32_t healthy[MAXL];
    uint32_t degraded[MAXL];
    bool panic[MAXL];
    uint32_t normalized;
} row_t;

#define H(t, h)                                                                                              \
    {                                                                                                        \
        t, h, 0                                                                                              \
    }
#define HD(t, h, d)                                                                                          \
    {                                                                                                        \
        t, h, d                                                                                              \
    }

static const row_t rows[] = {
    /* Envoy docs, "Priority levels": two levels, P1 100% healthy (100 hosts per level so host
     * counts read as percentages). */
    {"doc P0 100%", 2, {H(100, 100), H(100, 100)}, 140, 50, {100, 0}, {0}, {0}, 100},
    {"doc P0 72%", 2, {H(100, 72), H(100, 100)}, 140, 50, {100, 0}, {0}, {0}, 100},
    {"doc P0 71%", 2, {H(100, 71), H(100, 100)}, 140, 50, {99, 1}, {0}, {0}, 100},
    {"doc P0 50%", 2, {H(100, 50), H(100, 100)}, 140, 50, {70, 30}, {0}, {0}, 100},
    {"doc P0 25%", 2, {H(100, 25), H(100, 100)}, 140, 50, {35, 65}, {0}, {0}, 100},
    {"doc P0 0%", 2, {H(100, 0), H(100, 100)}, 140, 50, {0, 100}, {0}, {0}, 100},
    /* Docs: both levels degrading; the normalized total drops below 100 in the last row. */
    {"doc 72/72", 2, {H(100, 72), H(100, 72)}, 140, 50, {100, 0}, {0}, {0}, 100},
    {"doc 71/71", 2, {H(100, 71), H(100, 71)}, 140, 50, {99, 1}, {0}, {0}, 100},
    {"doc 50/50", 2, {H(100, 50), H(100, 50)}, 140, 50, {70, 30}, {0}, {0}, 100},
    {"doc 25/100", 2, {H(100, 25), H(100, 100)}, 140, 50, {35, 65}, {0}, {0}, 100},
    /* 35+35 = 70 < 100 and 25% < 50%: both levels panic (total panic: loads by host count). */
    {"doc 25/25", 2, {H(100, 25), H(100, 25)}, 140, 50, {50, 50}, {0}, {1, 1}, 70},
    /* Docs, three levels. */
    {"doc 3L 100/100/100", 3, {H(100, 100), H(100, 100), H(100, 100)}, 140, 50, {100, 0, 0}, {0}, {0}, 100},
    {"doc 3L 72/72/100", 3, {H(100, 72), H(100, 72), H(100, 100)}, 140, 50, {100, 0, 0}, {0}, {0}, 100},
    {"doc 3L 71/71/100", 3, {H(100, 71), H(100, 71), H(100, 100)}, 140, 50, {99, 1, 0}, {0}, {0}, 100},
    {"doc 3L 50/50/100", 3, {H(100, 50), H(100, 50), H(100, 100)}, 140, 50, {70, 30, 0}, {0}, {0}, 100},
    {"doc 3L 25/100/100", 3, {H(100, 25), H(100, 100), H(100, 100)}, 140, 50, {35, 65, 0}, {0}, {0}, 100},
    {"doc 3L 25/25/100", 3, {H(100, 25), H(100, 25), H(100, 100)}, 140, 50, {35, 35, 30}, {0}, {0}, 100},
    /* The docs print 36/36/28 for this row (rounded shares). Envoy's code floors each share
     * (35, 35, 28 of 98) and gives the remaining 2 to the first healthy level: 37/35/28. We follow
     * the code. The docs' priority tables ignore panic, so panic is off here: with the default 50
     * every level (25%, 25%, 20%) would panic and the loads would follow host counts. */
    {"doc 3L 25/25/20 (code)", 3, {H(100, 25), H(100, 25), H(100, 20)}, 140, 0, {37, 35, 28}, {0}, {0}, 98},
    {"doc 3L 25/25/20 panic 50",
     3,
     {H(100, 25), H(100, 25), H(100, 20)},
     140,
     50,
     {34, 33, 33},
     {0},
     {1, 1, 1},
     98},
    /* Docs, "Panic threshold" (threshold 50). */
    {"panic doc 50/60", 2, {H(100, 50), H(100, 60)}, 140, 50, {70, 30}, {0}, {0}, 100},
    /* Docs print 7/93; the code floors 7.14 and 92.86 and gives the remaining 1 to P0: 8/92. */
    {"panic doc 5/65 (code)", 2, {H(100, 5), H(100, 65)}, 140, 50, {8, 92}, {0}, {1, 0}, 98},
    /* Docs, "Degraded endpoints": one level, healthy/degraded/unhealthy percentages. */
    {"degraded doc 100/0/0", 1, {HD(100, 100, 0)}, 140, 50, {100}, {0}, {0}, 100},
    {"degraded doc 71/0/29", 1, {HD(100, 71, 0)}, 140, 50, {100}, {0}, {0}, 99},
    {"degraded doc 71/29/0", 1, {HD(100, 71, 29)}, 140, 50, {99}, {1}, {0}, 100},
    {"degraded doc 25/65/10", 1, {HD(100, 25, 65)}, 140, 50, {35}, {65}, {0}, 100},
    /* 7% available, 5% < 50%: the only level panics, i.e. total panic, all load to P0's hosts. */
    {"degraded doc 5/0/95", 1, {HD(100, 5, 0)}, 140, 50, {100}, {0}, {1}, 7},
    /* Envoy's load_balancer_impl_base tests. */
    {"envoy overprov 1.4", 2, {H(4, 2), H(4, 2)}, 140, 50, {70, 30}, {0}, {0}, 100},
    {"envoy overprov 1.0", 2, {H(4, 2), H(4, 2)}, 100, 50, {50, 50}, {0}, {0}, 100},
    {"envoy gentle 1", 2, {H(1, 1), H(1, 1)}, 140, 50, {100, 0}, {0}, {0}, 100},
    {"envoy gentle 2", 2, {H(4, 1), H(2, 2)}, 140, 50, {35, 65}, {0}, {0}, 100},
    {"envoy gentle 3", 2, {H(4, 1), H(4, 1)}, 140, 50, {50, 50}, {0}, {1, 1}, 70},
    {"envoy total panic 1/1", 2, {H(1, 0), H(1, 0)}, 140, 50, {50, 50}, {0}, {1, 1}, 0},
    {"envoy total panic 1/2", 2, {H(1, 0), H(2, 0)}, 140, 50, {34, 66}, {0}, {1, 1}, 0},
    {"envoy P2 takes all", 3, {H(1, 0), H(1, 0), H(1, 1)}, 140, 50, {0, 0, 100}, {0}, {0}, 100},
    {"envoy 3L 70/30/0", 3, {H(2, 1), H(2, 1), H(2, 1)}, 140, 50, {70, 30, 0}, {0}, {0}, 100},
    {"envoy 3L 35/35/30", 3, {H(4, 1), H(4, 1), H(4, 1)}, 140, 50, {35, 35, 30}, {0}, {0}, 100},
    {"envoy 3L 20% each", 3, {H(5, 1), H(5, 1), H(5, 1)}, 140, 50, {34, 33, 33}, {0}, {1, 1, 1}, 84},
    {"envoy 3L P2 80%", 3, {H(5, 0), H(5, 0), H(5, 4)}, 140, 50, {0, 0, 100}, {0}, {0}, 100},
    {"envoy 3L P2 40%", 3, {H(5, 0), H(5, 0), H(5, 2)}, 140, 50, {34, 33, 33}, {0}, {1, 1, 1}, 56},
    {"envoy 3L degraded P0", 3, {HD(5, 0, 5), HD(5, 2, 2), H(5, 2)}, 140, 50, {0, 56, 44}, {0}, {0}, 100},
    {"envoy 3L all down 5/3/2", 3, {H(5, 0), H(3, 0), H(2, 0)}, 140, 50, {50, 30, 20}, {0}, {1, 1, 1}, 0},
    {"envoy 3L rounding 5/6/3", 3, {H(5, 0), H(6, 2), H(3, 1)}, 140, 50, {37, 42, 21}, {0}, {1, 1, 1}, 92},
    {"envoy spill to degraded",
     3,
     {HD(5, 0, 1), HD(5, 0, 5), H(5, 1)},
     140,
     50,
     {0, 0, 28},
     {28, 44, 0},
     {0},
     100},
    {"envoy degraded rounding, no panic",
     3,
     {H(5, 0), HD(5, 0, 2), HD(5, 0, 1)},
     140,
     0,
     {0},
     {0, 67, 33},
     {0},
     84},
    {"envoy degraded total panic",
     3,
     {H(5, 0), HD(5, 0, 2), HD(5, 0, 1)},
     140,
     50,
     {34, 33, 33},
     {0},
     {1, 1, 1},
     84},
    {"envoy empty P0 total panic", 3, {H(0, 0), H(6, 0), H(3, 0)}, 140, 50, {0, 67, 33}, {0}, {1, 1, 1}, 0},
    /* Overprovisioning factor variations. */
    {"factor 2.0 50%", 2, {H(10, 5), H(10, 10)}, 200, 50, {100, 0}, {0}, {0}, 100},
    {"factor 2.0 25%", 2, {H(100, 25), H(100, 100)}, 200, 50, {50, 50}, {0}, {0}, 100},
    {"factor 1000x one of ten", 2, {H(10, 1), H(10, 10)}, 100000, 50, {100, 0}, {0}, {0}, 100},
    {"factor 1000x none of ten", 2, {H(10, 0), H(10, 10)}, 100000, 50, {0, 100}, {0}, {0}, 100},
    /* Panic threshold variations (two levels at 25%: normalized 70). */
    {"threshold 0: no panic", 2, {H(4, 1), H(4, 1)}, 140, 0, {50, 50}, {0}, {0}, 70},
    {"threshold 25: not below", 2, {H(4, 1), H(4, 1)}, 140, 25, {50, 50}, {0}, {0}, 70},
    {"threshold 25.4 rounds to 25", 2, {H(4, 1), H(4, 1)}, 140, 25.4, {50, 50}, {0}, {0}, 70},
    {"threshold 25.5 rounds to 26", 2, {H(4, 1), H(4, 1)}, 140, 25.5, {50, 50}, {0}, {1, 1}, 70},
    {"threshold 150 caps at 100", 1, {H(4, 3)}, 100, 150, {100}, {0}, {1}, 75},
    /* Partial panic: P0 panics (20% < 50%) while P1 (60%) does not; loads stay health-based. */
    {"partial panic", 2, {H(5, 1), H(5, 3)}, 100, 50, {25, 75}, {0}, {1, 0}, 80},
    /* Nothing can serve. */
    {"all down, panic off", 2, {H(3, 0), H(2, 0)}, 140, 0, {100, 0}, {0}, {0}, 0},
    {"empty cluster, panic off", 1, {H(0, 0)}, 140, 0, {100}, {0}, {0}, 0},
    {"empty cluster, panic on", 1, {H(0, 0)}, 140, 50, {100}, {0}, {1}, 0},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        const row_t *row = &rows[r];
        rm_priority_level_load_t levels[MAXL];
        rm_priority_load_t pl = {.levels = levels};
        rm_priority_load_compute(row->c, row->n, row->factor, row->threshold, &pl);
        bool ok = pl.normalized_total == row->normalized;
        uint32_t sum = 0;
        bool all_panic = true;
        for (size_t i = 0; i < row->n; i++) {
            ok = ok && levels[i].healthy_load == row->healthy[i] &&
                 levels[i].degraded_load == row->degraded[i] && levels[i].panic == row->panic[i];
            sum += levels[i].healthy_load + levels[i].degraded_load;
            all_panic = all_panic && levels[i].panic;
        }
        if (!ok || sum != 100 || pl.total_panic != all_panic) {
            char got[256];
            int off = snprintf(got, sizeof(got), "norm %u:", pl.normalized_total);
            for (size_t i = 0; i < row->n; i++)
                off += snprintf(got + off, sizeof(got) - (size_t)off, " P%zu h%u d%u%s", i,
                                levels[i].healthy_load, levels[i].degraded_load,
                                levels[i].panic ? " panic" : "");
            fail_msg("row '%s': got %s", row->name, got);
        }
    }
}

/* Every r in [0, 100) maps to a level; each level and source is hit exactly load-percent times. */
static void test_choose_matches_loads(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        const row_t *row = &rows[r];
        rm_priority_level_load_t levels[MAXL];
        rm_priority_load_t pl = {.levels = levels};
        rm_priority_load_compute(row->c, row->n, row->factor, row->threshold, &pl);
        uint32_t hits[MAXL][3] = {{0}};
        for (uint32_t x = 0; x < 100; x++) {
            rm_priority_choice_t ch = rm_priority_load_choose(&pl, x);
            assert_true(ch.level < row->n);
            hits[ch.level][ch.source]++;
        }
        for (size_t i = 0; i < row->n; i++) {
            if (levels[i].panic) {
                /* A panicking level's whole share goes to all of its hosts. */
                assert_int_equal(hits[i][RM_PRIORITY_SOURCE_ALL],
                                 levels[i].healthy_load + levels[i].degraded_load);
                assert_int_equal(hits[i][RM_PRIORITY_SOURCE_HEALTHY] + hits[i][RM_PRIORITY_SOURCE_DEGRADED],
                                 0);
            } else {
                assert_int_equal(hits[i][RM_PRIORITY_SOURCE_HEALTHY], levels[i].healthy_load);
                assert_int_equal(hits[i][RM_PRIORITY_SOURCE_DEGRADED], levels[i].degraded_load);
                assert_int_equal(hits[i][RM_PRIORITY_SOURCE_ALL], 0);
            }
        }
        rm_priority_choice_t single;
        bool is_single = rm_priority_load_single(&pl, &single);
        bool expect_single = false;
        for (size_t i = 0; i < row->n; i++)
            expect_single = expect_single || levels[i].healthy_load == 100 || levels[i].degraded_load == 100;
        assert_int_equal(is_single, expect_single);
        if (is_single) {
            rm_priority_choice_t any = rm_priority_load_choose(&pl, 42);
            assert_int_equal(single.level, any.level);
            assert_int_equal(single.source, any.source);
        }
    }
}

static void test_choose_boundaries(void **state)
{
    (void)state;
    rm_priority_level_load_t levels[2];
    rm_priority_load_t pl = {.levels = levels};
    const rm_priority_counts_t c[] = {{100, 50, 0}, {100, 100, 0}}; /* 70/30 */
    rm_priority_load_compute(c, 2, 140, 50, &pl);
    assert_int_equal(rm_priority_load_choose(&pl, 0).level, 0);
    assert_int_equal(rm_priority_load_choose(&pl, 69).level, 0);
    assert_int_equal(rm_priority_load_choose(&pl, 70).level, 1);
    assert_int_equal(rm_priority_load_choose(&pl, 99).level, 1);
    assert_int_equal(rm_priority_load_choose(&pl, 99).source, RM_PRIORITY_SOURCE_HEALTHY);

    const rm_priority_counts_t d[] = {{100, 71, 29}}; /* 99 healthy, 1 degraded */
    rm_priority_load_compute(d, 1, 140, 50, &pl);
    assert_int_equal(rm_priority_load_choose(&pl, 98).source, RM_PRIORITY_SOURCE_HEALTHY);
    assert_int_equal(rm_priority_load_choose(&pl, 99).source, RM_PRIORITY_SOURCE_DEGRADED);
}

/* Seeded random counts: loads always sum to 100, no level gets load without something to serve it
 * (availability, or hosts under panic), and panic only appears below a normalized total of 100. */
static void test_random_invariants(void **state)
{
    (void)state;
    rm_rng_t rng;
    rm_rng_seed(&rng, 2024);
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 1 + (size_t)rm_rng_below(&rng, MAXL);
        rm_priority_counts_t c[MAXL];
        for (size_t i = 0; i < n; i++) {
            c[i].total = (uint32_t)rm_rng_below(&rng, 12);
            c[i].healthy = c[i].total ? (uint32_t)rm_rng_below(&rng, c[i].total + 1) : 0;
            uint32_t rest = c[i].total - c[i].healthy;
            c[i].degraded = rest ? (uint32_t)rm_rng_below(&rng, rest + 1) : 0;
        }
        static const uint32_t factors[] = {100, 140, 200, 100000};
        static const double thresholds[] = {0, 25, 50, 100};
        uint32_t factor = factors[rm_rng_below(&rng, 4)];
        double threshold = thresholds[rm_rng_below(&rng, 4)];
        rm_priority_level_load_t levels[MAXL];
        rm_priority_load_t pl = {.levels = levels};
        rm_priority_load_compute(c, n, factor, threshold, &pl);
        uint32_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            sum += levels[i].healthy_load + levels[i].degraded_load;
            if (levels[i].panic) {
                assert_true(pl.normalized_total < 100);
                continue;
            }
            if (levels[i].healthy_load > 0 && !(threshold == 0 && pl.normalized_total == 0))
                assert_true(c[i].healthy > 0);
            if (levels[i].degraded_load > 0)
                assert_true(c[i].degraded > 0);
        }
        assert_int_equal(sum, 100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_choose_matches_loads),
        cmocka_unit_test(test_choose_boundaries),
        cmocka_unit_test(test_random_invariants),
    };
    return cmocka_run_group_tests_name("priority_load", tests, NULL, NULL);
}
