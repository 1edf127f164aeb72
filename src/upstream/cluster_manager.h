/* The main-thread cluster manager. It owns every cluster's configuration (static ones from the
 * bootstrap, dynamic ones from CDS), the last ClusterLoadAssignment of each EDS service, and the
 * resolution state of STRICT_DNS clusters. Whenever the set of active clusters or their membership
 * changes it builds a new immutable snapshot and publishes it. Hosts keep their identity (stats,
 * health, pooled connections) across updates as long as their address stays. Main thread only.
 *
 * Warming: a new or changed EDS cluster becomes active only when its assignment arrives (or when its
 * initial fetch timeout passes, then with no hosts); meanwhile the previous version keeps serving. */
#ifndef RM_UPSTREAM_CLUSTER_MANAGER_H
#define RM_UPSTREAM_CLUSTER_MANAGER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/stats.h"
#include "upstream/snapshot.h"

struct event_base;

typedef struct rm_cluster_manager rm_cluster_manager_t;

/* Receives each new snapshot; `snap` is a new reference owned by the callee. */
typedef void (*rm_cm_publish_cb)(void *ctx, rm_snapshot_t *snap);

#define RM_CM_STATS(X)                                                                                       \
    X(cluster_added, C)                                                                                      \
    X(cluster_modified, C)                                                                                   \
    X(cluster_removed, C)                                                                                    \
    X(cluster_updated, C)                                                                                    \
    X(active_clusters, G)                                                                                    \
    X(warming_clusters, G)                                                                                   \
    X(snapshots_published, C)

typedef struct {
    RM_CM_STATS(RM_STAT_FIELD)
} rm_cm_stats_t;

/* Builds the initial snapshot from the bootstrap's static clusters (blocking DNS resolution at
 * start-up for STRICT_DNS). Returns NULL with err set when a cluster cannot be built. The bootstrap
 * must outlive the manager. */
rm_cluster_manager_t *rm_cluster_manager_create(struct event_base *base, const rm_bootstrap_config_t *b,
                                                rm_cm_publish_cb publish, void *ctx, char *err,
                                                size_t errlen);
/* The current snapshot (borrowed). */
rm_snapshot_t *rm_cluster_manager_snapshot(rm_cluster_manager_t *cm);
/* Starts periodic DNS refresh timers. */
void rm_cluster_manager_start(rm_cluster_manager_t *cm);

/* Applies a full CDS set (validated already; ownership of the array and its contents passes here).
 * Static clusters are never replaced or removed by CDS. */
void rm_cluster_manager_apply_cds(rm_cluster_manager_t *cm, rm_cluster_config_t *clusters, size_t n,
                                  uint64_t initial_fetch_timeout_ms);
/* Applies EDS assignments (ownership passes here). */
void rm_cluster_manager_apply_eds(rm_cluster_manager_t *cm, rm_cluster_load_assignment_t *clas, size_t n);
/* True when no cluster is warming (used for the initial readiness). */
bool rm_cluster_manager_warm(const rm_cluster_manager_t *cm);
/* Called once whenever the manager becomes warm (after CDS/EDS progress or a warming timeout). */
void rm_cluster_manager_on_warm(rm_cluster_manager_t *cm, void (*cb)(void *ctx), void *ctx);
rm_cm_stats_t *rm_cluster_manager_stats(rm_cluster_manager_t *cm);
void rm_cluster_manager_destroy(rm_cluster_manager_t *cm);

#endif
