#include "upstream/tl_cluster_manager.h"

#include "upstream/h2_pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

rm_tlcm_t *rm_tlcm_create(rm_worker_t *w)
{
    rm_tlcm_t *tl = RM_NEW(rm_tlcm_t);
    tl->worker = w;
    tl->num_slots = 64;
    tl->slots = rm_calloc(tl->num_slots, sizeof(rm_tl_pool_slot_t));
    tl->upstream_idle_timeout_ms = 3600 * 1000;
    return tl;
}

static size_t slot_hash(const rm_host_t *h, size_t n)
{
    uintptr_t x = (uintptr_t)h;
    x ^= x >> 17;
    x *= 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 20) & (n - 1);
}

static rm_tl_pool_slot_t *slot_find(rm_tlcm_t *tl, const rm_host_t *h)
{
    size_t i = slot_hash(h, tl->num_slots);
    for (;;) {
        rm_tl_pool_slot_t *s = &tl->slots[i];
        if (s->host == h || s->host == NULL)
            return s;
        i = (i + 1) & (tl->num_slots - 1);
    }
}

static void slots_rehash(rm_tlcm_t *tl, size_t new_size)
{
    rm_tl_pool_slot_t *old = tl->slots;
    size_t old_n = tl->num_slots;
    tl->slots = rm_calloc(new_size, sizeof(rm_tl_pool_slot_t));
    tl->num_slots = new_size;
    tl->used_slots = 0;
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].host != NULL) {
            *slot_find(tl, old[i].host) = old[i];
            tl->used_slots++;
        }
    }
    free(old);
}

static rm_h1_pool_t *pool_new(rm_tlcm_t *tl, rm_cluster_t *cluster, rm_host_t *host)
{
    rm_h1_pool_options_t opts = {
        .connect_timeout_ms = cluster->connect_timeout_ms,
        .idle_timeout_ms = tl->upstream_idle_timeout_ms,
        .buffer_limit_bytes = cluster->buffer_limit_bytes,
        .max_response_header_bytes = 60 * 1024,
        .max_response_headers = 100,
        .tls = cluster->tls,
        .tls_stats = &cluster->shared->ssl_stats,
    };
    if (cluster->protocol == RM_UPSTREAM_HTTP2)
        return rm_h2_pool_create(tl->worker->base, host, cluster->shared, &opts, &cluster->http2);
    return rm_h1_pool_create(tl->worker->base, host, cluster->shared, &opts);
}

rm_h1_pool_t *rm_tlcm_pool(rm_tlcm_t *tl, rm_cluster_t *cluster, rm_host_t *host)
{
    rm_tl_pool_slot_t *s = slot_find(tl, host);
    if (s->host != NULL) {
        if (s->protocol == cluster->protocol && s->tls == cluster->tls &&
            (cluster->protocol != RM_UPSTREAM_HTTP2 ||
             memcmp(&s->http2, &cluster->http2, sizeof(s->http2)) == 0))
            return s->pool;
        /* The cluster switched protocols, TLS or HTTP/2 settings: new connections need the new
         * ones. The old pool finishes its in-flight exchanges and goes away. */
        rm_h1_pool_drain(s->pool);
    } else {
        if ((tl->used_slots + 1) * 2 > tl->num_slots) {
            slots_rehash(tl, tl->num_slots * 2);
            s = slot_find(tl, host);
        }
        s->host = host;
        tl->used_slots++;
    }
    s->protocol = cluster->protocol;
    s->tls = cluster->tls;
    s->http2 = cluster->http2;
    s->pool = pool_new(tl, cluster, host);
    return s->pool;
}

static bool snapshot_has_host(const rm_snapshot_t *snap, const rm_host_t *h)
{
    /* Hosts carry no back-pointer to clusters; a linear scan is fine for the sizes where pools are
     * rebuilt (updates are rare and this runs once per update per worker). */
    for (size_t i = 0; i < snap->num_clusters; i++) {
        const rm_cluster_t *c = snap->clusters[i];
        for (size_t j = 0; j < c->num_hosts; j++)
            if (c->hosts[j] == h)
                return true;
    }
    return false;
}

void rm_tlcm_adopt(rm_tlcm_t *tl, rm_snapshot_t *snap)
{
    rm_snapshot_t *old = tl->snapshot;
    rm_tl_cluster_t *old_clusters = tl->clusters;
    tl->clusters = rm_calloc(snap->num_clusters ? snap->num_clusters : 1, sizeof(rm_tl_cluster_t));
    for (size_t i = 0; i < snap->num_clusters; i++) {
        rm_cluster_t *c = snap->clusters[i];
        size_t oi;
        rm_cluster_t *prev = old ? rm_snapshot_find(old, c->name, strlen(c->name), &oi) : NULL;
        tl->clusters[i].cluster = c;
        if (prev == c) {
            /* Unchanged cluster object: keep the LB state (round-robin position etc.). */
            tl->clusters[i].lb = old_clusters[oi].lb;
            old_clusters[oi].lb = NULL;
        } else {
            const rm_lb_ops_t *ops = rm_lb_ops_for(c->lb_policy);
            tl->clusters[i].lb = ops ? ops->create(c, &tl->worker->rng) : NULL;
        }
    }
    if (old != NULL) {
        for (size_t i = 0; i < old->num_clusters; i++)
            if (old_clusters[i].lb != NULL)
                old_clusters[i].lb->ops->destroy(old_clusters[i].lb);
        /* Drain the pools of hosts that left every cluster. */
        size_t removed = 0;
        for (size_t i = 0; i < tl->num_slots; i++) {
            rm_tl_pool_slot_t *s = &tl->slots[i];
            if (s->host != NULL && !snapshot_has_host(snap, s->host)) {
                rm_h1_pool_drain(s->pool);
                s->host = NULL;
                s->pool = NULL;
                removed++;
            }
        }
        if (removed > 0) {
            tl->used_slots -= removed;
            slots_rehash(tl, tl->num_slots); /* restore probe chains broken by the removals */
        }
        rm_snapshot_unref(old);
    }
    free(old_clusters);
    tl->snapshot = snap;
}

rm_tl_cluster_t *rm_tlcm_get(rm_tlcm_t *tl, const char *name, size_t name_len)
{
    size_t idx;
    if (tl->snapshot == NULL || rm_snapshot_find(tl->snapshot, name, name_len, &idx) == NULL)
        return NULL;
    return &tl->clusters[idx];
}

void rm_tlcm_destroy(rm_tlcm_t *tl)
{
    if (tl == NULL)
        return;
    for (size_t i = 0; i < tl->num_slots; i++)
        if (tl->slots[i].host != NULL)
            rm_h1_pool_drain(tl->slots[i].pool);
    if (tl->snapshot != NULL) {
        for (size_t i = 0; i < tl->snapshot->num_clusters; i++)
            if (tl->clusters[i].lb != NULL)
                tl->clusters[i].lb->ops->destroy(tl->clusters[i].lb);
        rm_snapshot_unref(tl->snapshot);
    }
    free(tl->clusters);
    free(tl->slots);
    free(tl);
}
