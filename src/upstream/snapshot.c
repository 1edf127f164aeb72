#include "upstream/snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

static int cmp_cluster(const void *a, const void *b)
{
    const rm_cluster_t *ca = *(rm_cluster_t *const *)a, *cb = *(rm_cluster_t *const *)b;
    return strcmp(ca->name, cb->name);
}

rm_snapshot_t *rm_snapshot_create(rm_cluster_t **clusters, size_t n, uint64_t version)
{
    rm_snapshot_t *s = RM_NEW(rm_snapshot_t);
    atomic_init(&s->refcnt, 1);
    s->version = version;
    s->clusters = rm_calloc(n ? n : 1, sizeof(rm_cluster_t *));
    for (size_t i = 0; i < n; i++)
        s->clusters[i] = rm_cluster_ref(clusters[i]);
    s->num_clusters = n;
    qsort(s->clusters, n, sizeof(rm_cluster_t *), cmp_cluster);
    return s;
}

rm_snapshot_t *rm_snapshot_ref(rm_snapshot_t *s)
{
    atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
    return s;
}

void rm_snapshot_unref(rm_snapshot_t *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->num_clusters; i++)
        rm_cluster_unref(s->clusters[i]);
    free(s->clusters);
    free(s);
}

rm_cluster_t *rm_snapshot_find(const rm_snapshot_t *s, const char *name, size_t name_len, size_t *index)
{
    size_t lo = 0, hi = s->num_clusters;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *mn = s->clusters[mid]->name;
        int c = strncmp(mn, name, name_len);
        if (c == 0 && mn[name_len] != '\0')
            c = 1;
        if (c == 0) {
            if (index)
                *index = mid;
            return s->clusters[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
