#include "upstream/lb/lb.h"

const rm_lb_ops_t *rm_lb_ops_for(rm_lb_policy_t policy)
{
    switch (policy) {
    case RM_LB_ROUND_ROBIN:
        return &rm_lb_round_robin_ops;
    default:
        return NULL;
    }
}

size_t rm_lb_choose_priority(const rm_cluster_t *cluster, bool *panic)
{
    for (size_t p = 0; p < cluster->num_levels; p++) {
        const rm_priority_level_t *lvl = &cluster->levels[p];
        for (size_t i = 0; i < lvl->num_hosts; i++) {
            if (rm_host_healthy(lvl->hosts[i])) {
                *panic = false;
                return p;
            }
        }
    }
    *panic = true;
    return 0;
}
