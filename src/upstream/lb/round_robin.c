/* ROUND_ROBIN. Priority level and host list by priority load, then within the list:
 * - equal weights and no host in slow start: strict rotation (Envoy's unweighted pick), one cursor
 *   per list that survives rebuilds, starting at a random offset per worker;
 * - otherwise an EDF scheduler (lb/weighted.h): over each cycle of sum(weights) picks every host gets
 *   exactly its weight, and a host's picks are spread over the cycle. Slow start ramps new hosts.
 * O(1) per pick for rotation, O(log n) for EDF. */
#include <stdlib.h>

#include "core/mem.h"
#include "upstream/lb/host_sets.h"
#include "upstream/lb/lb.h"
#include "upstream/lb/weighted.h"

typedef struct {
    uint64_t generation; /* host-set generation this state was built for; 0: never */
    uint64_t cursor;     /* rotation position; kept across rebuilds */
    bool use_edf;
    rm_lb_weighted_t sched;
} rr_source_t;

typedef struct {
    rm_lb_t super;
    rm_lb_host_sets_t hs;
    rm_slow_start_t ss;
    rr_source_t *state; /* one per host list */
    rr_source_t *cur;   /* scratch for the pick callback */
    const rm_lb_source_t *cur_src;
} rr_lb_t;

static double static_weight(const rm_host_t *h, uint32_t weight)
{
    (void)h;
    return (double)weight;
}

static rm_lb_t *rr_create_with_clock(const rm_cluster_t *cluster, rm_rng_t *rng, rm_clock_t *clock)
{
    rr_lb_t *rr = RM_NEW(rr_lb_t);
    rr->super.ops = &rm_lb_round_robin_ops;
    rr->super.cluster = cluster;
    rr->super.rng = rng;
    rr->super.clock = clock;
    rm_lb_host_sets_init(&rr->hs, cluster);
    rm_slow_start_init(&rr->ss, cluster);
    rr->state = rm_calloc(rr->hs.num_sources, sizeof(rr_source_t));
    for (size_t i = 0; i < rr->hs.num_sources; i++) {
        /* A random start per list so N workers do not all send their first request to host 0. */
        rr->state[i].cursor = rm_rng_next(rng);
        rm_lb_weighted_init(&rr->state[i].sched);
    }
    return &rr->super;
}

static rm_lb_t *rr_create(const rm_cluster_t *cluster, rm_rng_t *rng)
{
    return rr_create_with_clock(cluster, rng, rm_clock_system());
}

static void prepare(rr_lb_t *rr, rr_source_t *st, const rm_lb_source_t *src)
{
    st->generation = rr->hs.generation;
    st->use_edf = false;
    if (src->num_hosts <= 1)
        return;
    bool ramping = false;
    if (rm_slow_start_enabled(&rr->ss)) {
        uint64_t now = rm_clock_now_ms(rr->super.clock);
        for (size_t i = 0; i < src->num_hosts && !ramping; i++)
            ramping = rm_slow_start_active(&rr->ss, src->hosts[i], now);
    }
    if (src->weights_equal && !ramping)
        return;
    st->use_edf = true;
    rm_lb_weighted_build(&st->sched, src, &rr->ss, rr->super.clock, static_weight, false, rr->super.rng);
}

static rm_host_t *pick_once(void *arg)
{
    rr_lb_t *rr = arg;
    rr_source_t *st = rr->cur;
    const rm_lb_source_t *src = rr->cur_src;
    if (st->use_edf) {
        size_t i = rm_lb_weighted_pick_index(&st->sched);
        /* Once the last ramping host is at full weight, equal weights go back to plain rotation,
         * continuing after the host just picked. */
        if (!rm_lb_weighted_ramping(&st->sched) && src->weights_equal) {
            st->use_edf = false;
            st->cursor = i + 1;
        }
        return src->hosts[i];
    }
    return src->hosts[st->cursor++ % src->num_hosts];
}

static rm_host_t *rr_pick(rm_lb_t *lb, const rm_lb_context_t *ctx)
{
    rr_lb_t *rr = (rr_lb_t *)lb;
    rm_lb_host_sets_refresh(&rr->hs);
    size_t idx = rm_lb_host_sets_choose(&rr->hs, lb->rng, ctx);
    const rm_lb_source_t *src = &rr->hs.sources[idx];
    if (src->num_hosts == 0)
        return NULL;
    rr_source_t *st = &rr->state[idx];
    if (st->generation != rr->hs.generation)
        prepare(rr, st, src);
    rr->cur = st;
    rr->cur_src = src;
    return rm_lb_pick_untried(src, ctx, lb->rng, pick_once, rr);
}

static void rr_hosts_changed(rm_lb_t *lb)
{
    rm_lb_host_sets_rebuild(&((rr_lb_t *)lb)->hs);
}

static void rr_destroy(rm_lb_t *lb)
{
    rr_lb_t *rr = (rr_lb_t *)lb;
    for (size_t i = 0; i < rr->hs.num_sources; i++)
        rm_lb_weighted_free(&rr->state[i].sched);
    free(rr->state);
    rm_lb_host_sets_free(&rr->hs);
    free(rr);
}

const rm_lb_ops_t rm_lb_round_robin_ops = {
    .name = "round_robin",
    .create = rr_create,
    .create_with_clock = rr_create_with_clock,
    .pick = rr_pick,
    .hosts_changed = rr_hosts_changed,
    .destroy = rr_destroy,
};
