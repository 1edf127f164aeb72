/* The cluster fail-fast breaker's state machine, driven with explicit times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "upstream/fail_fast.h"

static rm_fail_fast_config_t config(uint32_t failures, uint64_t open_ms, uint32_t probes)
{
    rm_fail_fast_config_t c;
    memset(&c, 0, sizeof(c));
    c.enabled = true;
    c.consecutive_failures = failures;
    c.open_duration_ms = open_ms;
    c.half_open_requests = probes;
    return c;
}

/* Admits one request at `now` and reports its outcome; returns what the report did. */
static rm_ff_transition_t one(rm_fail_fast_t *ff, const rm_fail_fast_config_t *c, uint64_t now, bool failure,
                              bool *allowed)
{
    rm_ff_admission_t a = rm_fail_fast_admit(ff, c, now);
    *allowed = a.allowed;
    return rm_fail_fast_report(ff, c, &a, failure, now);
}

static void test_disabled_admits_everything(void **state)
{
    (void)state;
    rm_fail_fast_t ff;
    memset(&ff, 0, sizeof(ff));
    rm_fail_fast_config_t c = config(1, 1000, 1);
    c.enabled = false;
    for (int i = 0; i < 10; i++) {
        bool ok;
        rm_ff_transition_t t = one(&ff, &c, 0, true, &ok);
        assert_true(ok);
        assert_false(t.opened);
    }
    assert_int_equal(rm_fail_fast_state(&ff), RM_FF_CLOSED);
}

static void test_opens_after_consecutive_failures_only(void **state)
{
    (void)state;
    rm_fail_fast_t ff;
    memset(&ff, 0, sizeof(ff));
    rm_fail_fast_config_t c = config(3, 1000, 1);
    bool ok;
    /* Two failures, a success (resets the count), two failures: still closed. */
    one(&ff, &c, 0, true, &ok);
    one(&ff, &c, 0, true, &ok);
    one(&ff, &c, 0, false, &ok);
    one(&ff, &c, 0, true, &ok);
    assert_false(one(&ff, &c, 0, true, &ok).opened);
    assert_int_equal(rm_fail_fast_state(&ff), RM_FF_CLOSED);
    /* The third in a row opens it, exactly once. */
    assert_true(one(&ff, &c, 10, true, &ok).opened);
    assert_true(ok);
    assert_int_equal(rm_fail_fast_state(&ff), RM_FF_OPEN);
    /* Open: refused until open_duration has passed. */
    rm_ff_admission_t a = rm_fail_fast_admit(&ff, &c, 10);
    assert_false(a.allowed);
    a = rm_fail_fast_admit(&ff, &c, 1009);
    assert_false(a.allowed);
}

static void test_half_open_probe_success_closes(void **state)
{
    (void)state;
    rm_fail_fast_t ff;
    memset(&ff, 0, sizeof(ff));
    rm_fail_fast_config_t c = config(1, 500, 1);
    bool ok;
    assert_true(one(&ff, &c, 100, true, &ok).opened);
    rm_ff_admission_t probe = rm_fail_fast_admit(&ff, &c, 600);
    assert_true(probe.allowed);
    assert_true(probe.probe);
    assert_int_equal(probe.transition_to, RM_FF_HALF_OPEN);
    assert_int_equal(rm_fail_fast_state(&ff), RM_FF_HALF_OPEN);
    /* Only one probe at a time. */
    rm_ff_admission_t other = rm_fail_fast_admit(&ff, &c, 601);
    assert_false(other.allowed);
    rm_ff_transition_t t = rm_fail_fast_report(&ff, &c, &probe, false, 650);
    assert_true(t.closed);
    assert_int_equal(rm_fail_fast_state(&ff), RM_FF_CLOSED);
    /* Closed again, with a fresh failure count. */
    assert_true(rm_fail_fast_admit(&ff, &c, 651).allowed);
}

static void test_half_open_probe_failure_reopens(void **state)
{
    (void)state;
    rm_fail_fast_t ff;
    memset(&ff, 0, sizeof(ff));
    rm_fail_fast_config_t c = config(2, 1000, 2);
    bool ok;
    one(&ff, &c, 0, true, &ok);
    assert_true(one(&ff, &c, 0, true, &ok).opened);
    rm_ff_admission_t p1 = rm_fail_fast_admit(&ff, &c, 1000);
    rm_ff_admission_t p2 = rm_fail_fast_admit(&ff, &c, 1000);
    rm_ff_admission_t p3 = rm_fail_fast_admit(&ff, &c, 1000);
    assert_true(p1.allowed && p1.probe);
    assert_true(p2.allowed && p2.probe);
    assert_false(p3.allowed);
    /* One success is not enough with two probes; the second failing reopens for a new period. */
    assert_false(rm_fail_fast_report(&ff, &c, &p1, false, 1001).closed);
    rm_ff_transition_t t = rm_fail_fast_report(&ff, &c, &p2, true, 1200);
    assert_true(t.opened);
    assert_int_equal(rm_fail_fast_state(&ff), RM_FF_OPEN);
    assert_false(rm_fail_fast_admit(&ff, &c, 2199).allowed);
    assert_true(rm_fail_fast_admit(&ff, &c, 2200).allowed);
}

static void test_stale_results_do_not_count(void **state)
{
    (void)state;
    rm_fail_fast_t ff;
    memset(&ff, 0, sizeof(ff));
    rm_fail_fast_config_t c = config(1, 100, 1);
    /* A request admitted while closed finishes after the breaker opened: ignored. */
    rm_ff_admission_t slow = rm_fail_fast_admit(&ff, &c, 0);
    bool ok;
    assert_true(one(&ff, &c, 0, true, &ok).opened);
    rm_ff_transition_t t = rm_fail_fast_report(&ff, &c, &slow, true, 1);
    assert_false(t.opened);
    assert_false(t.closed);
    /* A probe from an earlier round does not close a later round. */
    rm_ff_admission_t old_probe = rm_fail_fast_admit(&ff, &c, 100);
    assert_true(old_probe.probe);
    rm_fail_fast_report(&ff, &c, &old_probe, true, 100); /* reopens */
    rm_ff_admission_t new_probe = rm_fail_fast_admit(&ff, &c, 200);
    assert_true(new_probe.probe);
    assert_false(rm_fail_fast_report(&ff, &c, &old_probe, false, 201).closed);
    assert_int_equal(rm_fail_fast_state(&ff), RM_FF_HALF_OPEN);
    assert_true(rm_fail_fast_report(&ff, &c, &new_probe, false, 202).closed);
}

static void test_released_probe_frees_its_slot(void **state)
{
    (void)state;
    rm_fail_fast_t ff;
    memset(&ff, 0, sizeof(ff));
    rm_fail_fast_config_t c = config(1, 100, 1);
    bool ok;
    one(&ff, &c, 0, true, &ok);
    rm_ff_admission_t p = rm_fail_fast_admit(&ff, &c, 100);
    assert_true(p.probe);
    assert_false(rm_fail_fast_admit(&ff, &c, 100).allowed);
    /* The client left before the probe had an outcome: another request may probe. */
    rm_fail_fast_release(&ff, &p);
    rm_ff_admission_t q = rm_fail_fast_admit(&ff, &c, 101);
    assert_true(q.allowed && q.probe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disabled_admits_everything),
        cmocka_unit_test(test_opens_after_consecutive_failures_only),
        cmocka_unit_test(test_half_open_probe_success_closes),
        cmocka_unit_test(test_half_open_probe_failure_reopens),
        cmocka_unit_test(test_stale_results_do_not_count),
        cmocka_unit_test(test_released_probe_frees_its_slot),
    };
    return cmocka_run_group_tests_name("fail_fast", tests, NULL, NULL);
}
