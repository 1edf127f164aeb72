/* Load balancer interface. One instance per (worker, cluster version): state is thread-local and
 * pick never locks. Implementations embed rm_lb_t as `super` and provide a const ops table.
 *
 * Every algorithm first chooses a priority level and host list with Envoy's priority load
 * (upstream/priority_load.h, cached per worker in lb/host_sets.h), then picks within that list.
 * Derived state is rebuilt lazily: a pick first compares the cluster's health epoch with the one it
 * last saw. Policies: round_robin.c (strict rotation, EDF when weights differ), random.c (weighted
 * random), least_request.c (power of N choices, weighted EDF when weights differ). Round robin and
 * least request honour slow start (lb/slow_start.h) with the instance's clock. */
#ifndef RM_UPSTREAM_LB_LB_H
#define RM_UPSTREAM_LB_LB_H

#include <stdbool.h>
#include <stddef.h>

#include "core/clock.h"
#include "upstream/cluster.h"

typedef struct rm_lb rm_lb_t;

/* What a pick may need to know about the request: hosts already tried (a retry with the
 * previous_hosts predicate avoids them) and priority levels to skip (the previous_priorities retry
 * priority: bit p set = level p was already attempted). When every level that has hosts is
 * excluded, the exclusion is ignored, as Envoy resets it. */
typedef struct {
    rm_host_t *const *tried;
    size_t num_tried;
    uint64_t excluded_priorities;
} rm_lb_context_t;

typedef struct {
    const char *name;
    /* Creates an instance for `cluster` (borrowed; outlives the instance) using the system clock.
     * `rng` is borrowed (the worker's) and used only on the owning thread. */
    rm_lb_t *(*create)(const rm_cluster_t *cluster, rm_rng_t *rng);
    /* Same with an injected clock (borrowed; tests pass a fake clock for slow start). */
    rm_lb_t *(*create_with_clock)(const rm_cluster_t *cluster, rm_rng_t *rng, rm_clock_t *clock);
    /* Returns a host (borrowed from the cluster) or NULL when no host can serve (503 UH). `ctx` may
     * be NULL. A retry gets a host it has not tried yet whenever the chosen host list has one. */
    rm_host_t *(*pick)(rm_lb_t *lb, const rm_lb_context_t *ctx);
    /* Health flags or weights changed: rebuild derived state now instead of on the next pick. */
    void (*hosts_changed)(rm_lb_t *lb);
    void (*destroy)(rm_lb_t *lb);
} rm_lb_ops_t;

struct rm_lb {
    const rm_lb_ops_t *ops;
    const rm_cluster_t *cluster;
    rm_rng_t *rng;
    rm_clock_t *clock;
};

extern const rm_lb_ops_t rm_lb_round_robin_ops;
extern const rm_lb_ops_t rm_lb_random_ops;
extern const rm_lb_ops_t rm_lb_least_request_ops;

/* The ops table for a policy, or NULL if unsupported. */
const rm_lb_ops_t *rm_lb_ops_for(rm_lb_policy_t policy);

/* Creates an instance of the cluster's policy, or NULL if the policy is unsupported. `clock` may be
 * NULL for the system clock. */
rm_lb_t *rm_lb_create(const rm_cluster_t *cluster, rm_rng_t *rng, rm_clock_t *clock);

static inline bool rm_lb_context_tried(const rm_lb_context_t *ctx, const rm_host_t *h)
{
    for (size_t i = 0; ctx != NULL && i < ctx->num_tried; i++)
        if (ctx->tried[i] == h)
            return true;
    return false;
}

#endif
