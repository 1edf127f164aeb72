/* RANDOM. Priority level and host list by priority load, then a host drawn at random: uniformly when
 * the weights are equal, in proportion to weight otherwise (cumulative weights built once per host
 * list and rebuild, then a binary search: O(log n) per pick). Envoy's random policy ignores weights;
 * Remora honours them so that a weighted endpoint list means the same under every policy. No slow
 * start (as in Envoy, it applies to round robin and least request only). */
#include <stdlib.h>

#include "core/mem.h"
#include "upstream/lb/host_sets.h"
#include "upstream/lb/lb.h"

typedef struct {
    uint64_t generation;
    uint64_t *cumulative; /* cumulative[i] = weights[0] + ... + weights[i] */
} random_source_t;

typedef struct {
    rm_lb_t super;
    rm_lb_host_sets_t hs;
    random_source_t *state;
    random_source_t *cur;
    const rm_lb_source_t *cur_src;
} random_lb_t;

static rm_lb_t *random_create_with_clock(const rm_cluster_t *cluster, rm_rng_t *rng, rm_clock_t *clock)
{
    random_lb_t *r = RM_NEW(random_lb_t);
    r->super.ops = &rm_lb_random_ops;
    r->super.cluster = cluster;
    r->super.rng = rng;
    r->super.clock = clock;
    rm_lb_host_sets_init(&r->hs, cluster);
    r->state = rm_calloc(r->hs.num_sources, sizeof(random_source_t));
    for (size_t i = 0; i < r->hs.num_sources; i++) {
        size_t level = i / RM_LB_SOURCES_PER_LEVEL;
        size_t n = level < cluster->num_levels ? cluster->levels[level].num_hosts : 0;
        r->state[i].cumulative = rm_calloc(n ? n : 1, sizeof(uint64_t));
    }
    return &r->super;
}

static rm_lb_t *random_create(const rm_cluster_t *cluster, rm_rng_t *rng)
{
    return random_create_with_clock(cluster, rng, rm_clock_system());
}

static void prepare(random_lb_t *r, random_source_t *st, const rm_lb_source_t *src)
{
    st->generation = r->hs.generation;
    uint64_t acc = 0;
    for (size_t i = 0; i < src->num_hosts; i++) {
        acc += src->weights[i];
        st->cumulative[i] = acc;
    }
}

static rm_host_t *pick_once(void *arg)
{
    random_lb_t *r = arg;
    const rm_lb_source_t *src = r->cur_src;
    if (src->weights_equal)
        return src->hosts[rm_rng_below(r->super.rng, src->num_hosts)];
    /* First index whose cumulative weight exceeds x: host i owns [cum[i-1], cum[i]). */
    uint64_t x = rm_rng_below(r->super.rng, src->total_weight);
    const uint64_t *cum = r->cur->cumulative;
    size_t lo = 0, hi = src->num_hosts - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return src->hosts[lo];
}

static rm_host_t *random_pick(rm_lb_t *lb, const rm_lb_context_t *ctx)
{
    random_lb_t *r = (random_lb_t *)lb;
    rm_lb_host_sets_refresh(&r->hs);
    size_t idx = rm_lb_host_sets_choose(&r->hs, lb->rng, ctx);
    const rm_lb_source_t *src = &r->hs.sources[idx];
    if (src->num_hosts == 0)
        return NULL;
    random_source_t *st = &r->state[idx];
    if (st->generation != r->hs.generation)
        prepare(r, st, src);
    r->cur = st;
    r->cur_src = src;
    return rm_lb_pick_untried(src, ctx, lb->rng, pick_once, r);
}

static void random_hosts_changed(rm_lb_t *lb)
{
    rm_lb_host_sets_rebuild(&((random_lb_t *)lb)->hs);
}

static void random_destroy(rm_lb_t *lb)
{
    random_lb_t *r = (random_lb_t *)lb;
    for (size_t i = 0; i < r->hs.num_sources; i++)
        free(r->state[i].cumulative);
    free(r->state);
    rm_lb_host_sets_free(&r->hs);
    free(r);
}

const rm_lb_ops_t rm_lb_random_ops = {
    .name = "random",
    .create = random_create,
    .create_with_clock = random_create_with_clock,
    .pick = random_pick,
    .hosts_changed = random_hosts_changed,
    .destroy = random_destroy,
};
