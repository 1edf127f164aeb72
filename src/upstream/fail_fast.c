#include "upstream/fail_fast.h"

const char *rm_fail_fast_state_str(rm_ff_state_t s)
{
    switch (s) {
    case RM_FF_CLOSED:
        return "closed";
    case RM_FF_OPEN:
        return "open";
    case RM_FF_HALF_OPEN:
        return "half_open";
    }
    return "?";
}

/* Moves from `from` to `to` if the state is still `from`; true for the one caller that did it. */
static bool transition(rm_fail_fast_t *ff, rm_ff_state_t from, rm_ff_state_t to)
{
    int expected = (int)from;
    if (!atomic_compare_exchange_strong_explicit(&ff->state, &expected, (int)to, memory_order_acq_rel,
                                                 memory_order_acquire))
        return false;
    atomic_fetch_add_explicit(&ff->generation, 1, memory_order_acq_rel);
    return true;
}

static void open_now(rm_fail_fast_t *ff, const rm_fail_fast_config_t *cfg, uint64_t now_ms)
{
    /* Written before the state flips, so whoever sees OPEN sees its deadline and a fresh probe count
     * (nobody admits probes while the breaker is open). */
    atomic_store_explicit(&ff->probes_admitted, 0, memory_order_relaxed);
    atomic_store_explicit(&ff->probe_successes, 0, memory_order_relaxed);
    atomic_store_explicit(&ff->open_until_ms, now_ms + cfg->open_duration_ms, memory_order_release);
}

rm_ff_admission_t rm_fail_fast_admit(rm_fail_fast_t *ff, const rm_fail_fast_config_t *cfg, uint64_t now_ms)
{
    rm_ff_admission_t a = {.allowed = true, .probe = false, .generation = 0, .transition_to = RM_FF_CLOSED};
    if (!cfg->enabled)
        return a;
    for (;;) {
        rm_ff_state_t s = rm_fail_fast_state(ff);
        a.generation = atomic_load_explicit(&ff->generation, memory_order_acquire);
        if (s == RM_FF_CLOSED)
            return a;
        if (s == RM_FF_OPEN) {
            if (now_ms < atomic_load_explicit(&ff->open_until_ms, memory_order_acquire)) {
                a.allowed = false;
                return a;
            }
            /* The open time is over: the first caller starts a half-open round. */
            if (transition(ff, RM_FF_OPEN, RM_FF_HALF_OPEN))
                a.transition_to = RM_FF_HALF_OPEN;
            continue;
        }
        /* HALF_OPEN: let a bounded number of probes through. */
        uint32_t n = atomic_load_explicit(&ff->probes_admitted, memory_order_relaxed);
        while (n < cfg->half_open_requests) {
            if (atomic_compare_exchange_weak_explicit(&ff->probes_admitted, &n, n + 1, memory_order_acq_rel,
                                                      memory_order_relaxed)) {
                a.probe = true;
                return a;
            }
        }
        a.allowed = false;
        return a;
    }
}

rm_ff_transition_t rm_fail_fast_report(rm_fail_fast_t *ff, const rm_fail_fast_config_t *cfg,
                                       const rm_ff_admission_t *adm, bool failure, uint64_t now_ms)
{
    rm_ff_transition_t t = {false, false};
    if (!cfg->enabled || !adm->allowed)
        return t;
    uint64_t gen = atomic_load_explicit(&ff->generation, memory_order_acquire);
    if (adm->probe) {
        /* A probe from an earlier round (the breaker moved on since) says nothing about now. */
        if (gen != adm->generation || rm_fail_fast_state(ff) != RM_FF_HALF_OPEN)
            return t;
        if (failure) {
            open_now(ff, cfg, now_ms);
            t.opened = transition(ff, RM_FF_HALF_OPEN, RM_FF_OPEN);
            return t;
        }
        uint32_t ok = atomic_fetch_add_explicit(&ff->probe_successes, 1, memory_order_acq_rel) + 1;
        if (ok >= cfg->half_open_requests) {
            atomic_store_explicit(&ff->consecutive_failures, 0, memory_order_relaxed);
            t.closed = transition(ff, RM_FF_HALF_OPEN, RM_FF_CLOSED);
        }
        return t;
    }
    /* Requests admitted while closed count only while the breaker is still closed. */
    if (rm_fail_fast_state(ff) != RM_FF_CLOSED)
        return t;
    if (!failure) {
        if (atomic_load_explicit(&ff->consecutive_failures, memory_order_relaxed) != 0)
            atomic_store_explicit(&ff->consecutive_failures, 0, memory_order_relaxed);
        return t;
    }
    uint32_t n = atomic_fetch_add_explicit(&ff->consecutive_failures, 1, memory_order_acq_rel) + 1;
    if (n >= cfg->consecutive_failures) {
        open_now(ff, cfg, now_ms);
        if (transition(ff, RM_FF_CLOSED, RM_FF_OPEN)) {
            atomic_store_explicit(&ff->consecutive_failures, 0, memory_order_relaxed);
            t.opened = true;
        }
    }
    return t;
}

void rm_fail_fast_release(rm_fail_fast_t *ff, const rm_ff_admission_t *adm)
{
    if (!adm->allowed || !adm->probe)
        return;
    if (atomic_load_explicit(&ff->generation, memory_order_acquire) != adm->generation ||
        rm_fail_fast_state(ff) != RM_FF_HALF_OPEN)
        return;
    uint32_t n = atomic_load_explicit(&ff->probes_admitted, memory_order_relaxed);
    while (n > 0 && !atomic_compare_exchange_weak_explicit(&ff->probes_admitted, &n, n - 1,
                                                           memory_order_acq_rel, memory_order_relaxed)) {
    }
}
