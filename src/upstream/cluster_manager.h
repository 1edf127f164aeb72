/* The main-thread cluster manager: turns cluster configs into rm_cluster_t objects (resolving
 * STRICT_DNS names and re-resolving them every dns_refresh_rate), keeps hosts' identity across
 * updates, and publishes a new snapshot whenever membership changes. Main thread only. */
#ifndef RM_UPSTREAM_CLUSTER_MANAGER_H
#define RM_UPSTREAM_CLUSTER_MANAGER_H

#include <stddef.h>

#include "config/config.h"
#include "upstream/snapshot.h"

struct event_base;

typedef struct rm_cluster_manager rm_cluster_manager_t;

/* Receives each new snapshot; `snap` is a new reference owned by the callee. */
typedef void (*rm_cm_publish_cb)(void *ctx, rm_snapshot_t *snap);

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
void rm_cluster_manager_destroy(rm_cluster_manager_t *cm);

#endif
