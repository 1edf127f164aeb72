/* The per-worker side of the cluster manager: the snapshot this worker currently serves, one LB
 * instance per cluster, and the connection pools per host. Worker thread only; nothing here locks. */
#ifndef RM_UPSTREAM_TL_CLUSTER_MANAGER_H
#define RM_UPSTREAM_TL_CLUSTER_MANAGER_H

#include <stddef.h>

#include "core/worker.h"
#include "upstream/h1_pool.h"
#include "upstream/lb/lb.h"
#include "upstream/snapshot.h"

typedef struct {
    rm_cluster_t *cluster; /* borrowed from the snapshot */
    rm_lb_t *lb;
} rm_tl_cluster_t;

typedef struct {
    rm_host_t *host; /* key; the pool holds the reference */
    rm_h1_pool_t *pool;
    rm_upstream_protocol_t protocol; /* what the pool speaks */
    struct rm_tls_ctx *tls;          /* the TLS context its connections use (NULL: plaintext) */
    rm_http2_options_t http2;        /* the HTTP/2 settings it was made with (HTTP/2 pools) */
} rm_tl_pool_slot_t;

typedef struct rm_tlcm {
    rm_worker_t *worker;
    rm_snapshot_t *snapshot;   /* reference */
    rm_tl_cluster_t *clusters; /* parallel to snapshot->clusters */
    rm_tl_pool_slot_t *slots;  /* open addressing by host pointer */
    size_t num_slots, used_slots;
    uint64_t upstream_idle_timeout_ms;
} rm_tlcm_t;

rm_tlcm_t *rm_tlcm_create(rm_worker_t *w);
/* Adopts a snapshot (takes ownership of one reference): LB instances are rebuilt for clusters that
 * changed, pools of hosts that are gone are drained (their in-flight requests finish). */
void rm_tlcm_adopt(rm_tlcm_t *tl, rm_snapshot_t *snap);
/* Cluster by name in the current snapshot, or NULL. */
rm_tl_cluster_t *rm_tlcm_get(rm_tlcm_t *tl, const char *name, size_t name_len);
/* The pool for `host` of `cluster`, created on first use (HTTP/1.1 or HTTP/2 as the cluster says;
 * when an update changes the cluster's protocol, the old pool drains and a new one takes over). */
rm_h1_pool_t *rm_tlcm_pool(rm_tlcm_t *tl, rm_cluster_t *cluster, rm_host_t *host);
void rm_tlcm_destroy(rm_tlcm_t *tl);

#endif
