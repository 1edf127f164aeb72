/* LEAST_REQUEST (Envoy's least request balancer). Priority level and host list by priority load, then:
 * - equal weights and no host in slow start: power of N choices. Draw choice_count hosts at random
 *   (with replacement) and keep the one with the fewest active requests (host->stats.rq_active);
 *   on ties the first drawn wins. O(choice_count) per pick.
 * - otherwise: EDF (lb/weighted.h) where a host's weight is recomputed each time it is picked as
 *   weight / (active_requests + 1) ^ bias with bias 1.0, times the slow start factor. As in Envoy,
 *   only the picked host's weight is refreshed on a pick, so a host's place in the schedule reflects
 *   its load when it was last picked. O(log n) per pick. */
#include <stdlib.h>

#include "core/mem.h"
#include "upstream/lb/host_sets.h"
#include "upstream/lb/lb.h"
#include "upstream/lb/weighted.h"

typedef struct {
    uint64_t generation;
    bool use_edf;
    rm_lb_weighted_t sched;
} lr_source_t;

typedef struct {
    rm_lb_t super;
    rm_lb_host_sets_t hs;
    rm_slow_start_t ss;
    uint32_t choice_count;
    lr_source_t *state;
    lr_source_t *cur;
    const rm_lb_source_t *cur_src;
} lr_lb_t;

static uint64_t active_requests(const rm_host_t *h)
{
    int64_t v = RM_STAT_GET(((rm_host_t *)h)->stats.rq_active);
    return v > 0 ? (uint64_t)v : 0;
}

/* Envoy's weight / (active + 1)^bias with active_request_bias = 1.0. */
static double load_weight(const rm_host_t *h, uint32_t weight)
{
    return (double)weight / ((double)active_requests(h) + 1.0);
}

static rm_lb_t *lr_create_with_clock(const rm_cluster_t *cluster, rm_rng_t *rng, rm_clock_t *clock)
{
    lr_lb_t *lr = RM_NEW(lr_lb_t);
    lr->super.ops = &rm_lb_least_request_ops;
    lr->super.cluster = cluster;
    lr->super.rng = rng;
    lr->super.clock = clock;
    lr->choice_count = cluster->choice_count ? cluster->choice_count : 2;
    rm_lb_host_sets_init(&lr->hs, cluster);
    rm_slow_start_init(&lr->ss, cluster);
    lr->state = rm_calloc(lr->hs.num_sources, sizeof(lr_source_t));
    for (size_t i = 0; i < lr->hs.num_sources; i++)
        rm_lb_weighted_init(&lr->state[i].sched);
    return &lr->super;
}

static rm_lb_t *lr_create(const rm_cluster_t *cluster, rm_rng_t *rng)
{
    return lr_create_with_clock(cluster, rng, rm_clock_system());
}

static void prepare(lr_lb_t *lr, lr_source_t *st, const rm_lb_source_t *src)
{
    st->generation = lr->hs.generation;
    st->use_edf = false;
    if (src->num_hosts <= 1)
        return;
    bool ramping = false;
    if (rm_slow_start_enabled(&lr->ss)) {
        uint64_t now = rm_clock_now_ms(lr->super.clock);
        for (size_t i = 0; i < src->num_hosts && !ramping; i++)
            ramping = rm_slow_start_active(&lr->ss, src->hosts[i], now);
    }
    if (src->weights_equal && !ramping)
        return;
    st->use_edf = true;
    rm_lb_weighted_build(&st->sched, src, &lr->ss, lr->super.clock, load_weight, true, lr->super.rng);
}

static rm_host_t *n_choices(lr_lb_t *lr, const rm_lb_source_t *src)
{
    rm_host_t *best = NULL;
    uint64_t best_active = 0;
    for (uint32_t i = 0; i < lr->choice_count; i++) {
        rm_host_t *h = src->hosts[rm_rng_below(lr->super.rng, src->num_hosts)];
        uint64_t a = active_requests(h);
        if (best == NULL || a < best_active) {
            best = h;
            best_active = a;
        }
    }
    return best;
}

static rm_host_t *pick_once(void *arg)
{
    lr_lb_t *lr = arg;
    lr_source_t *st = lr->cur;
    const rm_lb_source_t *src = lr->cur_src;
    if (src->num_hosts == 1)
        return src->hosts[0];
    if (st->use_edf) {
        rm_host_t *h = rm_lb_weighted_pick(&st->sched);
        if (!rm_lb_weighted_ramping(&st->sched) && src->weights_equal)
            st->use_edf = false;
        return h;
    }
    return n_choices(lr, src);
}

static rm_host_t *lr_pick(rm_lb_t *lb, const rm_lb_context_t *ctx)
{
    lr_lb_t *lr = (lr_lb_t *)lb;
    rm_lb_host_sets_refresh(&lr->hs);
    size_t idx = rm_lb_host_sets_choose(&lr->hs, lb->rng, ctx);
    const rm_lb_source_t *src = &lr->hs.sources[idx];
    if (src->num_hosts == 0)
        return NULL;
    lr_source_t *st = &lr->state[idx];
    if (st->generation != lr->hs.generation)
        prepare(lr, st, src);
    lr->cur = st;
    lr->cur_src = src;
    return rm_lb_pick_untried(src, ctx, lb->rng, pick_once, lr);
}

static void lr_hosts_changed(rm_lb_t *lb)
{
    rm_lb_host_sets_rebuild(&((lr_lb_t *)lb)->hs);
}

static void lr_destroy(rm_lb_t *lb)
{
    lr_lb_t *lr = (lr_lb_t *)lb;
    for (size_t i = 0; i < lr->hs.num_sources; i++)
        rm_lb_weighted_free(&lr->state[i].sched);
    free(lr->state);
    rm_lb_host_sets_free(&lr->hs);
    free(lr);
}

const rm_lb_ops_t rm_lb_least_request_ops = {
    .name = "least_request",
    .create = lr_create,
    .create_with_clock = lr_create_with_clock,
    .pick = lr_pick,
    .hosts_changed = lr_hosts_changed,
    .destroy = lr_destroy,
};
