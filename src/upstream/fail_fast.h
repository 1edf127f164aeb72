/* The cluster fail-fast breaker (a Remora extension; see rm_fail_fast_config_t in config/config.h).
 *
 * States: CLOSED (requests flow; consecutive failures are counted), OPEN (every request is refused
 * until open_until), HALF_OPEN (up to half_open_requests probes go through; one failure reopens,
 * all of them succeeding closes). The state is cluster-wide: it lives in rm_cluster_shared_t and
 * every worker updates it with atomics (compare-and-swap on transitions, so each transition happens
 * once and its winner logs it). No locks; any thread. Time comes from the caller so tests drive it. */
#ifndef RM_UPSTREAM_FAIL_FAST_H
#define RM_UPSTREAM_FAIL_FAST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

typedef enum {
    RM_FF_CLOSED = 0,
    RM_FF_OPEN = 1,
    RM_FF_HALF_OPEN = 2,
} rm_ff_state_t;

typedef struct {
    _Atomic int state; /* rm_ff_state_t */
    _Atomic uint32_t consecutive_failures;
    _Atomic uint64_t open_until_ms;
    _Atomic uint32_t probes_admitted; /* HALF_OPEN: probes let through in this round */
    _Atomic uint32_t probe_successes;
    _Atomic uint64_t generation; /* bumped on every transition; a probe only counts in its round */
} rm_fail_fast_t;

/* What admit decided. A probe's outcome must be reported with rm_fail_fast_report(probe = true). */
typedef struct {
    bool allowed;
    bool probe;
    uint64_t generation;
    rm_ff_state_t transition_to; /* a transition this call made (CLOSED = none, else HALF_OPEN) */
} rm_ff_admission_t;

/* A transition made by a report: RM_FF_OPEN (opened or reopened), RM_FF_CLOSED with closed = true. */
typedef struct {
    bool opened;
    bool closed;
} rm_ff_transition_t;

/* Decides whether a request may go to the cluster now. */
rm_ff_admission_t rm_fail_fast_admit(rm_fail_fast_t *ff, const rm_fail_fast_config_t *cfg, uint64_t now_ms);

/* Reports the outcome of an admitted request (failure: reset, connect failure, timeout, a 5xx unless
 * ignore_5xx, or slower than slow_call_ms). */
rm_ff_transition_t rm_fail_fast_report(rm_fail_fast_t *ff, const rm_fail_fast_config_t *cfg,
                                       const rm_ff_admission_t *adm, bool failure, uint64_t now_ms);

/* An admitted request ended without an outcome (the client went away, a local reply): a probe's
 * slot is given back so the half-open round can admit another one. */
void rm_fail_fast_release(rm_fail_fast_t *ff, const rm_ff_admission_t *adm);

static inline rm_ff_state_t rm_fail_fast_state(rm_fail_fast_t *ff)
{
    return (rm_ff_state_t)atomic_load_explicit(&ff->state, memory_order_acquire);
}

const char *rm_fail_fast_state_str(rm_ff_state_t s);

#endif
