#include "upstream/lb/host_sets.h"

#include <stdlib.h>

#include "core/mem.h"

#define DEGRADED_MASK (RM_HOST_DEGRADED_ACTIVE_HC | RM_HOST_DEGRADED_EDS_HEALTH)

void rm_lb_host_sets_init(rm_lb_host_sets_t *hs, const rm_cluster_t *cluster)
{
    hs->cluster = cluster;
    hs->generation = 0;
    /* A cluster always has at least one level (possibly empty); be defensive anyway. */
    hs->num_levels = cluster->num_levels ? cluster->num_levels : 1;
    hs->num_sources = hs->num_levels * RM_LB_SOURCES_PER_LEVEL;
    hs->sources = rm_calloc(hs->num_sources, sizeof(rm_lb_source_t));
    for (size_t p = 0; p < hs->num_levels; p++) {
        size_t n = p < cluster->num_levels ? cluster->levels[p].num_hosts : 0;
        for (size_t s = 0; s < RM_LB_SOURCES_PER_LEVEL; s++) {
            rm_lb_source_t *src = &hs->sources[rm_lb_source_index(p, (rm_priority_source_t)s)];
            src->hosts = rm_calloc(n ? n : 1, sizeof(rm_host_t *));
            src->weights = rm_calloc(n ? n : 1, sizeof(uint32_t));
        }
    }
    hs->counts = rm_calloc(hs->num_levels, sizeof(rm_priority_counts_t));
    hs->load.levels = rm_calloc(hs->num_levels, sizeof(rm_priority_level_load_t));
    hs->load.num_levels = hs->num_levels;
    rm_lb_host_sets_rebuild(hs);
}

void rm_lb_host_sets_free(rm_lb_host_sets_t *hs)
{
    for (size_t i = 0; i < hs->num_sources; i++) {
        free(hs->sources[i].hosts);
        free(hs->sources[i].weights);
    }
    free(hs->sources);
    free(hs->counts);
    free(hs->load.levels);
}

static void source_add(rm_lb_source_t *src, rm_host_t *h, uint32_t w)
{
    if (src->num_hosts > 0 && w != src->weights[0])
        src->weights_equal = false;
    src->hosts[src->num_hosts] = h;
    src->weights[src->num_hosts] = w;
    src->num_hosts++;
    src->total_weight += w;
}

void rm_lb_host_sets_rebuild(rm_lb_host_sets_t *hs)
{
    const rm_cluster_t *c = hs->cluster;
    /* Read the epoch before the flags: a change racing with this rebuild bumps it again afterwards,
     * and the next pick rebuilds once more. */
    hs->epoch = atomic_load_explicit(&c->shared->health_epoch, memory_order_acquire);
    hs->generation++;
    for (size_t i = 0; i < hs->num_sources; i++) {
        hs->sources[i].num_hosts = 0;
        hs->sources[i].total_weight = 0;
        hs->sources[i].weights_equal = true;
    }
    for (size_t p = 0; p < hs->num_levels; p++) {
        rm_priority_counts_t *cnt = &hs->counts[p];
        cnt->total = cnt->healthy = cnt->degraded = 0;
        if (p >= c->num_levels)
            continue;
        const rm_priority_level_t *lvl = &c->levels[p];
        for (size_t i = 0; i < lvl->num_hosts; i++) {
            rm_host_t *h = lvl->hosts[i];
            uint32_t flags = atomic_load_explicit(&h->health_flags, memory_order_relaxed);
            uint32_t w = atomic_load_explicit(&h->weight, memory_order_relaxed);
            if (w == 0)
                w = 1; /* EDS weights are >= 1; never let a zero weight into a scheduler */
            cnt->total++;
            source_add(&hs->sources[rm_lb_source_index(p, RM_PRIORITY_SOURCE_ALL)], h, w);
            if (flags & RM_HOST_FAILURE_MASK)
                continue;
            if (flags & DEGRADED_MASK) {
                cnt->degraded++;
                source_add(&hs->sources[rm_lb_source_index(p, RM_PRIORITY_SOURCE_DEGRADED)], h, w);
            } else {
                cnt->healthy++;
                source_add(&hs->sources[rm_lb_source_index(p, RM_PRIORITY_SOURCE_HEALTHY)], h, w);
            }
        }
    }
    rm_priority_load_compute(hs->counts, hs->num_levels, c->overprovisioning_factor,
                             c->healthy_panic_threshold, &hs->load);
    rm_priority_choice_t only;
    hs->single = rm_priority_load_single(&hs->load, &only);
    hs->single_index = hs->single ? rm_lb_source_index(only.level, only.source) : 0;
}

/* The priority load without the excluded levels, for one retry pick (O(levels)). */
static size_t choose_excluding(const rm_lb_host_sets_t *hs, rm_rng_t *rng, uint64_t excluded)
{
    size_t n = hs->num_levels;
    rm_priority_counts_t counts_small[8];
    rm_priority_level_load_t levels_small[8];
    rm_priority_counts_t *counts = n <= 8 ? counts_small : rm_calloc(n, sizeof(*counts));
    rm_priority_level_load_t *levels = n <= 8 ? levels_small : rm_calloc(n, sizeof(*levels));
    bool any_left = false;
    for (size_t p = 0; p < n; p++) {
        bool skip = p < 64 && (excluded & (1ull << p));
        if (skip)
            counts[p] = (rm_priority_counts_t){0, 0, 0};
        else
            counts[p] = hs->counts[p];
        any_left = any_left || counts[p].total > 0;
    }
    size_t idx;
    if (!any_left) {
        idx = rm_lb_host_sets_choose(hs, rng, NULL);
    } else {
        rm_priority_load_t load = {.levels = levels, .num_levels = n};
        rm_priority_load_compute(counts, n, hs->cluster->overprovisioning_factor,
                                 hs->cluster->healthy_panic_threshold, &load);
        rm_priority_choice_t ch = rm_priority_load_choose(&load, (uint32_t)rm_rng_below(rng, 100));
        idx = rm_lb_source_index(ch.level, ch.source);
    }
    if (counts != counts_small) {
        free(counts);
        free(levels);
    }
    return idx;
}

size_t rm_lb_host_sets_choose(const rm_lb_host_sets_t *hs, rm_rng_t *rng, const rm_lb_context_t *ctx)
{
    if (ctx != NULL && ctx->excluded_priorities != 0)
        return choose_excluding(hs, rng, ctx->excluded_priorities);
    if (hs->single)
        return hs->single_index;
    rm_priority_choice_t ch = rm_priority_load_choose(&hs->load, (uint32_t)rm_rng_below(rng, 100));
    return rm_lb_source_index(ch.level, ch.source);
}

rm_host_t *rm_lb_pick_untried(const rm_lb_source_t *src, const rm_lb_context_t *ctx, rm_rng_t *rng,
                              rm_lb_pick_once_cb once, void *arg)
{
    rm_host_t *h = once(arg);
    if (ctx == NULL || ctx->num_tried == 0 || !rm_lb_context_tried(ctx, h))
        return h;
    for (size_t attempt = 0; attempt < ctx->num_tried; attempt++) {
        h = once(arg);
        if (!rm_lb_context_tried(ctx, h))
            return h;
    }
    size_t n = src->num_hosts;
    size_t start = (size_t)rm_rng_below(rng, n);
    for (size_t i = 0; i < n; i++) {
        rm_host_t *c = src->hosts[(start + i) % n];
        if (!rm_lb_context_tried(ctx, c))
            return c;
    }
    return h;
}
