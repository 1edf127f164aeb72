#include "upstream/lb/lb.h"

const rm_lb_ops_t *rm_lb_ops_for(rm_lb_policy_t policy)
{
    switch (policy) {
    case RM_LB_ROUND_ROBIN:
        return &rm_lb_round_robin_ops;
    case RM_LB_LEAST_REQUEST:
        return &rm_lb_least_request_ops;
    case RM_LB_RANDOM:
        return &rm_lb_random_ops;
    default:
        return NULL;
    }
}

rm_lb_t *rm_lb_create(const rm_cluster_t *cluster, rm_rng_t *rng, rm_clock_t *clock)
{
    const rm_lb_ops_t *ops = rm_lb_ops_for(cluster->lb_policy);
    if (ops == NULL)
        return NULL;
    return ops->create_with_clock(cluster, rng, clock ? clock : rm_clock_system());
}
