/* An immutable, refcounted view of every cluster, built by the main thread and adopted by each
 * worker. Requests hold a reference to the snapshot they started with, so an update never pulls a
 * cluster or host from under an in-flight request. */
#ifndef RM_UPSTREAM_SNAPSHOT_H
#define RM_UPSTREAM_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream/cluster.h"

typedef struct rm_snapshot {
    _Atomic int refcnt;
    uint64_t version;
    rm_cluster_t **clusters; /* sorted by name; references */
    size_t num_clusters;
} rm_snapshot_t;

/* Creates a snapshot with refcount 1; takes a new reference on each cluster (array borrowed). */
rm_snapshot_t *rm_snapshot_create(rm_cluster_t **clusters, size_t n, uint64_t version);
rm_snapshot_t *rm_snapshot_ref(rm_snapshot_t *s);
void rm_snapshot_unref(rm_snapshot_t *s);
/* Binary search by name; returns a borrowed cluster or NULL. Returns the index in *index if non-NULL. */
rm_cluster_t *rm_snapshot_find(const rm_snapshot_t *s, const char *name, size_t name_len, size_t *index);

#endif
