/* A weighted scheduler over one host list (lb/host_sets.h source): an EDF scheduler whose weights are
 * the algorithm's base weight times the slow start factor. Shared by round robin (static weights)
 * and least request (weights recomputed from active requests on every pick, as Envoy does).
 *
 * Slow start cost is bounded: while some host of the list ramps, every pick reads the clock and at
 * most once per rm_slow_start_refresh_ms() all weights are recomputed and the heap reordered (O(n)),
 * keeping each host's progress towards its next turn. When the last host leaves its window the
 * weights are set to their final values once and the clock is no longer read. */
#ifndef RM_UPSTREAM_LB_WEIGHTED_H
#define RM_UPSTREAM_LB_WEIGHTED_H

#include <stdbool.h>
#include <stdint.h>

#include "upstream/lb/edf.h"
#include "upstream/lb/host_sets.h"
#include "upstream/lb/slow_start.h"

/* The weight of a host before slow start, from its configured weight (>= 1). Must be > 0. */
typedef double (*rm_lb_base_weight_cb)(const rm_host_t *h, uint32_t weight);

typedef struct {
    rm_edf_t edf;
    const rm_lb_source_t *src; /* borrowed; valid until the host sets' next rebuild */
    const rm_slow_start_t *ss;
    rm_clock_t *clock;
    rm_lb_base_weight_cb base_weight;
    bool dynamic;         /* recompute the picked host's weight on each pick */
    uint64_t ramp_end_ms; /* when the last ramping host leaves its window; 0: none ramping */
    uint64_t next_reweight_ms;
    uint64_t reweight_now; /* scratch for the reweight callback */
} rm_lb_weighted_t;

void rm_lb_weighted_init(rm_lb_weighted_t *w);
void rm_lb_weighted_free(rm_lb_weighted_t *w);

/* (Re)builds the scheduler for src (non-empty). Items start at phases spread evenly over one period
 * from a random offset, so equal weights interleave and workers do not start in lockstep. */
void rm_lb_weighted_build(rm_lb_weighted_t *w, const rm_lb_source_t *src, const rm_slow_start_t *ss,
                          rm_clock_t *clock, rm_lb_base_weight_cb base_weight, bool dynamic, rm_rng_t *rng);

static inline bool rm_lb_weighted_ramping(const rm_lb_weighted_t *w)
{
    return w->ramp_end_ms != 0;
}

/* Returns the index in src->hosts of the host with the earliest deadline and reschedules it. */
size_t rm_lb_weighted_pick_index(rm_lb_weighted_t *w);

/* Same, returning the host. */
static inline rm_host_t *rm_lb_weighted_pick(rm_lb_weighted_t *w)
{
    return w->src->hosts[rm_lb_weighted_pick_index(w)];
}

/* The effective weight used for src->hosts[i] at now_ms (exposed for tests and admin output). */
double rm_lb_weighted_effective(const rm_lb_weighted_t *w, size_t i, uint64_t now_ms);

#endif
