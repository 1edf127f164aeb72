/* A worker's view of a cluster's hosts, as the LB algorithms need it: for each priority level three
 * host lists (healthy, degraded, all) with a snapshot of the hosts' weights, and the priority load
 * computed from them. Rebuilt when the cluster's health epoch moves (a change of health flags or
 * weights always bumps it or comes with a new cluster object), so a pick costs one atomic load in
 * the steady state. Thread-local: owned by one LB instance on one worker. */
#ifndef RM_UPSTREAM_LB_HOST_SETS_H
#define RM_UPSTREAM_LB_HOST_SETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream/lb/lb.h"
#include "upstream/priority_load.h"

/* A host list of one level. Host pointers are borrowed from the cluster. */
typedef struct {
    rm_host_t **hosts;
    uint32_t *weights; /* each host's weight when the list was built; 0 is read as 1 */
    size_t num_hosts;
    uint64_t total_weight;
    bool weights_equal;
} rm_lb_source_t;

#define RM_LB_SOURCES_PER_LEVEL 3

typedef struct {
    const rm_cluster_t *cluster;
    uint64_t epoch;      /* health epoch seen by the last rebuild */
    uint64_t generation; /* bumped by each rebuild; algorithms key their per-list state on it */
    size_t num_levels;
    size_t num_sources;      /* num_levels * RM_LB_SOURCES_PER_LEVEL */
    rm_lb_source_t *sources; /* index: rm_lb_source_index(level, rm_priority_source_t) */
    rm_priority_counts_t *counts;
    rm_priority_load_t load;
    bool single; /* one source takes 100% of the load: no random draw needed */
    size_t single_index;
} rm_lb_host_sets_t;

static inline size_t rm_lb_source_index(size_t level, rm_priority_source_t source)
{
    return level * RM_LB_SOURCES_PER_LEVEL + (size_t)source;
}

/* Allocates the lists for `cluster` (borrowed) and builds them. */
void rm_lb_host_sets_init(rm_lb_host_sets_t *hs, const rm_cluster_t *cluster);
void rm_lb_host_sets_free(rm_lb_host_sets_t *hs);

/* Re-reads health flags and weights, recomputes the priority load and bumps the generation. */
void rm_lb_host_sets_rebuild(rm_lb_host_sets_t *hs);

/* Rebuilds if the health epoch moved since the last build. */
static inline void rm_lb_host_sets_refresh(rm_lb_host_sets_t *hs)
{
    if (atomic_load_explicit(&hs->cluster->shared->health_epoch, memory_order_acquire) != hs->epoch)
        rm_lb_host_sets_rebuild(hs);
}

/* Chooses the host list for one request by priority load (one draw from rng when the load is split).
 * Returns a source index; the list may be empty (nothing can serve). With ctx->excluded_priorities
 * the load is recomputed as if the excluded levels had no hosts (retries only). ctx may be NULL. */
size_t rm_lb_host_sets_choose(const rm_lb_host_sets_t *hs, rm_rng_t *rng, const rm_lb_context_t *ctx);

/* One pick from a source, by the calling algorithm. */
typedef rm_host_t *(*rm_lb_pick_once_cb)(void *arg);

/* Retry handling shared by the algorithms. Precondition: src->num_hosts > 0. Calls once() and
 * returns its host unless ctx lists it as tried; then calls once() up to num_tried more times, and
 * if every result was tried, scans the list from a random position for a host not tried (O(n), on
 * retries only). Returns the last pick when every host of the list was tried. */
rm_host_t *rm_lb_pick_untried(const rm_lb_source_t *src, const rm_lb_context_t *ctx, rm_rng_t *rng,
                              rm_lb_pick_once_cb once, void *arg);

#endif
