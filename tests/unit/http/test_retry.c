/* Retry decisions: which failures each retry_on condition covers, and the back-off bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "core/clock.h"
#include "http/retry.h"

static rm_retry_policy_config_t policy(uint32_t on)
{
    rm_retry_policy_config_t rp;
    memset(&rp, 0, sizeof(rp));
    rp.set = true;
    rp.retry_on = on;
    rp.num_retries = 1;
    rp.back_off_base_ms = 25;
    return rp;
}

typedef struct {
    uint32_t on;
    rm_retry_cause_t cause;
    int status;
    bool expect;
} row_t;

static void test_retry_on_table(void **state)
{
    (void)state;
    const row_t rows[] = {
        /* 5xx: every 5xx and every failure without a response. */
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_STATUS, 500, true},
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_STATUS, 503, true},
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_STATUS, 599, true},
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_STATUS, 404, false},
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_STATUS, 409, false},
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_CONNECT_FAILURE, 0, true},
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_RESET, 0, true},
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_PER_TRY_TIMEOUT, 0, true},
        {RM_RETRY_ON_5XX, RM_RETRY_CAUSE_REFUSED_STREAM, 0, true},
        /* gateway-error: only 502, 503, 504 among responses. */
        {RM_RETRY_ON_GATEWAY_ERROR, RM_RETRY_CAUSE_STATUS, 500, false},
        {RM_RETRY_ON_GATEWAY_ERROR, RM_RETRY_CAUSE_STATUS, 502, true},
        {RM_RETRY_ON_GATEWAY_ERROR, RM_RETRY_CAUSE_STATUS, 504, true},
        {RM_RETRY_ON_GATEWAY_ERROR, RM_RETRY_CAUSE_CONNECT_FAILURE, 0, true},
        {RM_RETRY_ON_GATEWAY_ERROR, RM_RETRY_CAUSE_RESET, 0, true},
        /* reset: failures without a response, never a response. */
        {RM_RETRY_ON_RESET, RM_RETRY_CAUSE_RESET, 0, true},
        {RM_RETRY_ON_RESET, RM_RETRY_CAUSE_CONNECT_FAILURE, 0, true},
        {RM_RETRY_ON_RESET, RM_RETRY_CAUSE_STATUS, 503, false},
        /* connect-failure: only that. */
        {RM_RETRY_ON_CONNECT_FAILURE, RM_RETRY_CAUSE_CONNECT_FAILURE, 0, true},
        {RM_RETRY_ON_CONNECT_FAILURE, RM_RETRY_CAUSE_RESET, 0, false},
        {RM_RETRY_ON_CONNECT_FAILURE, RM_RETRY_CAUSE_PER_TRY_TIMEOUT, 0, false},
        {RM_RETRY_ON_CONNECT_FAILURE, RM_RETRY_CAUSE_STATUS, 503, false},
        /* retriable-4xx: 409 only. */
        {RM_RETRY_ON_RETRIABLE_4XX, RM_RETRY_CAUSE_STATUS, 409, true},
        {RM_RETRY_ON_RETRIABLE_4XX, RM_RETRY_CAUSE_STATUS, 429, false},
        {RM_RETRY_ON_RETRIABLE_4XX, RM_RETRY_CAUSE_STATUS, 503, false},
        /* refused-stream: only REFUSED_STREAM. */
        {RM_RETRY_ON_REFUSED_STREAM, RM_RETRY_CAUSE_REFUSED_STREAM, 0, true},
        {RM_RETRY_ON_REFUSED_STREAM, RM_RETRY_CAUSE_RESET, 0, false},
        /* nothing configured: nothing retried. */
        {0, RM_RETRY_CAUSE_CONNECT_FAILURE, 0, false},
        {0, RM_RETRY_CAUSE_STATUS, 503, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        rm_retry_policy_config_t rp = policy(rows[i].on);
        bool got = rm_retry_retriable(&rp, rows[i].cause, rows[i].status);
        if (got != rows[i].expect)
            fail_msg("row %zu: retry_on 0x%x cause %d status %d: got %d", i, rows[i].on, (int)rows[i].cause,
                     rows[i].status, got);
    }
}

static void test_retriable_status_codes(void **state)
{
    (void)state;
    rm_retry_policy_config_t rp = policy(RM_RETRY_ON_RETRIABLE_STATUS_CODES);
    rp.retriable_status_codes[0] = 418;
    rp.retriable_status_codes[1] = 503;
    rp.num_retriable_status_codes = 2;
    assert_true(rm_retry_retriable(&rp, RM_RETRY_CAUSE_STATUS, 418));
    assert_true(rm_retry_retriable(&rp, RM_RETRY_CAUSE_STATUS, 503));
    assert_false(rm_retry_retriable(&rp, RM_RETRY_CAUSE_STATUS, 502));
    assert_false(rm_retry_retriable(&rp, RM_RETRY_CAUSE_CONNECT_FAILURE, 0));
    /* The list alone does nothing without the condition. */
    rp.retry_on = RM_RETRY_ON_CONNECT_FAILURE;
    assert_false(rm_retry_retriable(&rp, RM_RETRY_CAUSE_STATUS, 418));
}

/* The n-th retry waits below (2^n - 1) * base, capped at max; over many draws the whole range is used. */
static void test_backoff_bounds(void **state)
{
    (void)state;
    rm_rng_t rng;
    rm_rng_seed(&rng, 42);
    rm_retry_policy_config_t rp = policy(RM_RETRY_ON_5XX);
    rp.back_off_base_ms = 25;
    rp.back_off_max_ms = 0; /* default: 250 */
    const uint64_t ceilings[] = {25, 75, 175, 250, 250, 250};
    for (uint32_t n = 1; n <= 6; n++) {
        uint64_t max_seen = 0, min_seen = UINT64_MAX;
        for (int i = 0; i < 4000; i++) {
            uint64_t b = rm_retry_backoff_ms(&rp, n, &rng);
            assert_true(b < ceilings[n - 1]);
            max_seen = b > max_seen ? b : max_seen;
            min_seen = b < min_seen ? b : min_seen;
        }
        assert_true(max_seen >= ceilings[n - 1] * 9 / 10);
        assert_true(min_seen <= ceilings[n - 1] / 10);
    }
    rp.back_off_max_ms = 60;
    for (int i = 0; i < 1000; i++)
        assert_true(rm_retry_backoff_ms(&rp, 40, &rng) < 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_on_table),
        cmocka_unit_test(test_retriable_status_codes),
        cmocka_unit_test(test_backoff_bounds),
    };
    return cmocka_run_group_tests_name("retry", tests, NULL, NULL);
}
