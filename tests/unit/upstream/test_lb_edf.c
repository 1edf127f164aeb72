/* EDF scheduler: exact picks per unit of virtual time for integer weights (random weight vectors,
 * seeded), EDF's run-length bound, no drift over millions of picks, FIFO tie-break, weight changes at
 * pick time (Envoy's pick-and-add) and in bulk (reweight keeps progress), and growth. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "upstream/lb/edf.h"

#define MAXN 12

static void add_staggered(rm_edf_t *e, const uint32_t *w, size_t n, size_t offset)
{
    for (size_t i = 0; i < n; i++)
        rm_edf_add(e, (uint32_t)i, w[i], ((double)((i + offset) % n) + 0.5) / (double)n);
}

/* Random weight vectors: every block of sum(w) picks holds exactly w_i picks of item i, and no item
 * is picked more than floor(w_i / w_max_other) + 1 times in a row. */
static void test_random_vectors_exact_and_bounded(void **state)
{
    (void)state;
    rm_rng_t rng;
    rm_rng_seed(&rng, 99);
    static uint32_t seq[4 * 12 * 100];
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = 2 + (size_t)rm_rng_below(&rng, MAXN - 1);
        uint32_t w[MAXN];
        uint32_t total = 0;
        for (size_t i = 0; i < n; i++) {
            w[i] = 1 + (uint32_t)rm_rng_below(&rng, trial % 2 ? 10 : 100);
            total += w[i];
        }
        rm_edf_t e;
        rm_edf_init(&e, n);
        add_staggered(&e, w, n, (size_t)rm_rng_below(&rng, n));
        size_t len = 4 * (size_t)total;
        for (size_t k = 0; k < len; k++)
            seq[k] = rm_edf_pick(&e, 0);
        for (size_t b = 0; b < 4; b++) {
            uint32_t cnt[MAXN] = {0};
            for (size_t k = b * total; k < (b + 1) * total; k++)
                cnt[seq[k]]++;
            for (size_t i = 0; i < n; i++)
                if (cnt[i] != w[i])
                    fail_msg("trial %d block %zu: item %zu picked %u times, weight %u", trial, b, i, cnt[i],
                             w[i]);
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t other = 0;
            for (size_t j = 0; j < n; j++)
                if (j != i && w[j] > other)
                    other = w[j];
            size_t run = 0, best = 0;
            for (size_t k = 0; k < len; k++) {
                run = seq[k] == i ? run + 1 : 0;
                best = run > best ? run : best;
            }
            if (best > w[i] / other + 1)
                fail_msg("trial %d: item %zu (w %u, heaviest other %u) ran %zu times", trial, i, w[i], other,
                         best);
        }
        rm_edf_free(&e);
    }
}

/* Ten million picks, every cycle exact. (Deadlines are origin + k / w, one rounding each rather
 * than a running sum; at this scale a running sum would pass too, so this guards the long-run
 * behaviour rather than telling the two apart.) */
static void test_no_drift(void **state)
{
    (void)state;
    rm_edf_t e;
    rm_edf_init(&e, 3);
    const uint32_t w[] = {3, 7, 11};
    add_staggered(&e, w, 3, 1);
    for (int cycle = 0; cycle < 476190; cycle++) {
        uint32_t cnt[3] = {0};
        for (int k = 0; k < 21; k++)
            cnt[rm_edf_pick(&e, 0)]++;
        if (cnt[0] != 3 || cnt[1] != 7 || cnt[2] != 11)
            fail_msg("cycle %d: %u/%u/%u", cycle, cnt[0], cnt[1], cnt[2]);
    }
    rm_edf_free(&e);
}

/* Equal deadlines are served first come, first served, and a re-queued item goes behind the others. */
static void test_fifo_ties(void **state)
{
    (void)state;
    rm_edf_t e;
    rm_edf_init(&e, 1); /* also exercises growth */
    for (uint32_t i = 0; i < 100; i++)
        rm_edf_add(&e, i, 1.0, 1.0);
    for (int round = 0; round < 3; round++)
        for (uint32_t i = 0; i < 100; i++)
            assert_int_equal(rm_edf_pick(&e, 0), i);
    rm_edf_free(&e);
}

static double deadline_of(const rm_edf_t *e, uint32_t item)
{
    for (size_t i = 0; i < e->size; i++)
        if (e->heap[i].item == item)
            return e->heap[i].deadline;
    fail_msg("item %u missing", item);
    return 0;
}

/* A weight given at pick time applies from that deadline on: next = deadline + 1 / new weight. */
static void test_pick_with_new_weight(void **state)
{
    (void)state;
    rm_edf_t e;
    rm_edf_init(&e, 2);
    rm_edf_add(&e, 0, 1.0, 0.5); /* due at 0.5 */
    rm_edf_add(&e, 1, 1.0, 1.0); /* due at 1.0 */
    assert_int_equal(rm_edf_pick(&e, 4.0), 0);
    assert_true(fabs(e.now - 0.5) < 1e-12);
    assert_true(fabs(deadline_of(&e, 0) - 0.75) < 1e-12);
    assert_int_equal(rm_edf_pick(&e, 0), 0); /* 0.75 < 1.0 */
    assert_true(fabs(deadline_of(&e, 0) - 1.0) < 1e-12);
    /* tie at 1.0: item 1 was queued first */
    assert_int_equal(rm_edf_pick(&e, 0), 1);
    rm_edf_free(&e);
}

static double double_item1(void *ctx, uint32_t item)
{
    (void)ctx;
    return item == 1 ? 2.0 : 1.0;
}

/* Reweight scales what is left to wait by old / new weight and reorders the heap. */
static void test_reweight_keeps_progress(void **state)
{
    (void)state;
    rm_edf_t e;
    rm_edf_init(&e, 2);
    rm_edf_add(&e, 0, 1.0, 0.25);            /* due 0.25 */
    rm_edf_add(&e, 1, 1.0, 1.0);             /* due 1.0 */
    assert_int_equal(rm_edf_pick(&e, 0), 0); /* now 0.25, item 0 next at 1.25 */
    rm_edf_reweight(&e, double_item1, NULL);
    /* item 1 had 0.75 left at weight 1: 0.375 at weight 2, due 0.625; then every 0.5 */
    assert_true(fabs(deadline_of(&e, 1) - 0.625) < 1e-12);
    assert_true(fabs(deadline_of(&e, 0) - 1.25) < 1e-12);
    assert_int_equal(rm_edf_pick(&e, 0), 1);
    assert_true(fabs(deadline_of(&e, 1) - 1.125) < 1e-12);
    assert_int_equal(rm_edf_pick(&e, 0), 1);
    assert_int_equal(rm_edf_pick(&e, 0), 0);
    rm_edf_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_vectors_exact_and_bounded),
        cmocka_unit_test(test_no_drift),
        cmocka_unit_test(test_fifo_ties),
        cmocka_unit_test(test_pick_with_new_weight),
        cmocka_unit_test(test_reweight_keeps_progress),
    };
    return cmocka_run_group_tests_name("lb_edf", tests, NULL, NULL);
}
