/* Round robin over the healthy hosts of the chosen priority level. Healthy lists are rebuilt only
 * when the cluster's health epoch moves, so a pick is O(1) in the common case. */
#include <stdlib.h>

#include "core/mem.h"
#include "upstream/lb/lb.h"

typedef struct {
    rm_lb_t super;
    uint64_t epoch;
    size_t level;
    bool panic;
    rm_host_t **healthy; /* borrowed from the cluster */
    size_t num_healthy;
    size_t next;
} rr_lb_t;

static void rr_rebuild(rr_lb_t *rr)
{
    const rm_cluster_t *c = rr->super.cluster;
    rr->epoch = atomic_load_explicit(&c->shared->health_epoch, memory_order_acquire);
    rr->level = rm_lb_choose_priority(c, &rr->panic);
    const rm_priority_level_t *lvl = &c->levels[rr->level];
    rr->num_healthy = 0;
    for (size_t i = 0; i < lvl->num_hosts; i++)
        if (rr->panic || rm_host_healthy(lvl->hosts[i]))
            rr->healthy[rr->num_healthy++] = lvl->hosts[i];
}

static rm_lb_t *rr_create(const rm_cluster_t *cluster, rm_rng_t *rng)
{
    rr_lb_t *rr = RM_NEW(rr_lb_t);
    rr->super.ops = &rm_lb_round_robin_ops;
    rr->super.cluster = cluster;
    rr->super.rng = rng;
    rr->healthy = rm_calloc(cluster->num_hosts ? cluster->num_hosts : 1, sizeof(rm_host_t *));
    rr_rebuild(rr);
    /* Start each worker at a different offset so N workers do not all hit host 0 first. */
    rr->next = rr->num_healthy ? (size_t)rm_rng_below(rng, rr->num_healthy) : 0;
    return &rr->super;
}

static rm_host_t *rr_pick(rm_lb_t *lb, const rm_lb_context_t *ctx)
{
    rr_lb_t *rr = (rr_lb_t *)lb;
    if (atomic_load_explicit(&lb->cluster->shared->health_epoch, memory_order_acquire) != rr->epoch)
        rr_rebuild(rr);
    if (rr->num_healthy == 0)
        return NULL;
    /* Prefer a host not yet tried by this request; fall back to the plain next one. */
    for (size_t attempt = 0; attempt < rr->num_healthy; attempt++) {
        rm_host_t *h = rr->healthy[rr->next++ % rr->num_healthy];
        if (!rm_lb_context_tried(ctx, h))
            return h;
    }
    return rr->healthy[rr->next++ % rr->num_healthy];
}

static void rr_hosts_changed(rm_lb_t *lb)
{
    rr_rebuild((rr_lb_t *)lb);
}

static void rr_destroy(rm_lb_t *lb)
{
    rr_lb_t *rr = (rr_lb_t *)lb;
    free(rr->healthy);
    free(rr);
}

const rm_lb_ops_t rm_lb_round_robin_ops = {
    .name = "round_robin",
    .create = rr_create,
    .pick = rr_pick,
    .hosts_changed = rr_hosts_changed,
    .destroy = rr_destroy,
};
