/* Load balancer interface. One instance per (worker, cluster version): state is thread-local and
 * pick never locks. Implementations embed rm_lb_t as `super` and provide a const ops table. */
#ifndef RM_UPSTREAM_LB_LB_H
#define RM_UPSTREAM_LB_LB_H

#include <stdbool.h>
#include <stddef.h>

#include "core/clock.h"
#include "upstream/cluster.h"

typedef struct rm_lb rm_lb_t;

/* What a pick may need to know: hosts already tried by this request (retries avoid them). */
typedef struct {
    rm_host_t *const *tried;
    size_t num_tried;
} rm_lb_context_t;

typedef struct {
    const char *name;
    /* Creates an instance for `cluster` (borrowed; outlives the instance). */
    rm_lb_t *(*create)(const rm_cluster_t *cluster, rm_rng_t *rng);
    /* Returns a host (borrowed from the cluster) or NULL when no host can serve. */
    rm_host_t *(*pick)(rm_lb_t *lb, const rm_lb_context_t *ctx);
    /* Health flags changed: rebuild derived state. */
    void (*hosts_changed)(rm_lb_t *lb);
    void (*destroy)(rm_lb_t *lb);
} rm_lb_ops_t;

struct rm_lb {
    const rm_lb_ops_t *ops;
    const rm_cluster_t *cluster;
    rm_rng_t *rng;
};

extern const rm_lb_ops_t rm_lb_round_robin_ops;

/* The ops table for a policy, or NULL if unsupported. */
const rm_lb_ops_t *rm_lb_ops_for(rm_lb_policy_t policy);

/* Chooses the priority level to pick from: the first level that has a healthy host; when none has,
 * level 0 in panic mode (all its hosts). Returns the level index and sets *panic.
 * The full overprovisioning/panic-threshold math replaces this with the priority-load module. */
size_t rm_lb_choose_priority(const rm_cluster_t *cluster, bool *panic);

static inline bool rm_lb_context_tried(const rm_lb_context_t *ctx, const rm_host_t *h)
{
    for (size_t i = 0; ctx != NULL && i < ctx->num_tried; i++)
        if (ctx->tried[i] == h)
            return true;
    return false;
}

#endif
