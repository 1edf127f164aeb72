#include "upstream/cluster.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

rm_cluster_shared_t *rm_cluster_shared_create(const char *name)
{
    rm_cluster_shared_t *s = RM_NEW(rm_cluster_shared_t);
    atomic_init(&s->refcnt, 1);
    s->name = rm_strdup(name);
    pthread_mutex_init(&s->wake_lock, NULL);
    return s;
}

rm_cluster_shared_t *rm_cluster_shared_ref(rm_cluster_shared_t *s)
{
    atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
    return s;
}

void rm_cluster_shared_unref(rm_cluster_shared_t *s)
{
    if (s != NULL && atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) == 1) {
        pthread_mutex_destroy(&s->wake_lock);
        free(s->name);
        free(s);
    }
}

rm_cluster_t *rm_cluster_create(const rm_cluster_config_t *cfg, rm_cluster_shared_t *shared,
                                rm_host_t **hosts, size_t num_hosts)
{
    rm_cluster_t *c = RM_NEW(rm_cluster_t);
    atomic_init(&c->refcnt, 1);
    c->name = rm_strdup(cfg->name);
    c->shared = rm_cluster_shared_ref(shared);
    c->connect_timeout_ms = cfg->connect_timeout_ms;
    c->protocol = cfg->protocol;
    c->http2 = cfg->http2;
    c->lb_policy = cfg->lb_policy;
    c->overprovisioning_factor = cfg->overprovisioning_factor ? cfg->overprovisioning_factor : 140;
    c->buffer_limit_bytes =
        cfg->per_connection_buffer_limit_bytes ? cfg->per_connection_buffer_limit_bytes : 1u << 20;
    c->healthy_panic_threshold = cfg->healthy_panic_threshold_set ? cfg->healthy_panic_threshold : 50.0;
    c->choice_count = cfg->choice_count ? cfg->choice_count : 2;
    c->slow_start_window_ms = cfg->slow_start_window_ms;
    c->slow_start_aggression = cfg->slow_start_aggression > 0 ? cfg->slow_start_aggression : 1.0;
    c->slow_start_min_weight_percent =
        cfg->slow_start_min_weight_percent > 0 ? cfg->slow_start_min_weight_percent : 10.0;
    c->outlier = cfg->outlier_detection;
    if (cfg->circuit_breakers_set) {
        c->cb = cfg->circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT];
        c->cb_high = cfg->circuit_breakers[RM_ROUTING_PRIORITY_HIGH];
    } else {
        rm_circuit_breaker_thresholds_default(&c->cb);
        rm_circuit_breaker_thresholds_default(&c->cb_high);
    }
    atomic_store_explicit(&shared->max_connections, c->cb.max_connections, memory_order_relaxed);
    c->fail_fast = cfg->fail_fast;

    uint32_t max_prio = 0;
    for (size_t i = 0; i < num_hosts; i++)
        if (hosts[i]->priority > max_prio)
            max_prio = hosts[i]->priority;
    c->num_levels = num_hosts ? (size_t)max_prio + 1 : 1;
    c->levels = rm_calloc(c->num_levels, sizeof(rm_priority_level_t));
    c->hosts = rm_calloc(num_hosts ? num_hosts : 1, sizeof(rm_host_t *));
    /* Stable order: by priority, then as given. */
    size_t n = 0;
    for (size_t p = 0; p < c->num_levels; p++) {
        rm_priority_level_t *lvl = &c->levels[p];
        size_t count = 0;
        for (size_t i = 0; i < num_hosts; i++)
            if (hosts[i]->priority == p)
                count++;
        lvl->hosts = rm_calloc(count ? count : 1, sizeof(rm_host_t *));
        for (size_t i = 0; i < num_hosts; i++) {
            if (hosts[i]->priority != p)
                continue;
            lvl->hosts[lvl->num_hosts++] = rm_host_ref(hosts[i]);
            c->hosts[n++] = rm_host_ref(hosts[i]);
        }
    }
    c->num_hosts = n;
    atomic_store(&shared->stats.membership_total, (int64_t)n);
    return c;
}

rm_cluster_t *rm_cluster_ref(rm_cluster_t *c)
{
    atomic_fetch_add_explicit(&c->refcnt, 1, memory_order_relaxed);
    return c;
}

void rm_cluster_unref(rm_cluster_t *c)
{
    if (c == NULL || atomic_fetch_sub_explicit(&c->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t p = 0; p < c->num_levels; p++) {
        for (size_t i = 0; i < c->levels[p].num_hosts; i++)
            rm_host_unref(c->levels[p].hosts[i]);
        free(c->levels[p].hosts);
    }
    for (size_t i = 0; i < c->num_hosts; i++)
        rm_host_unref(c->hosts[i]);
    free(c->levels);
    free(c->hosts);
    rm_cluster_shared_unref(c->shared);
    rm_tls_ctx_unref(c->tls);
    free(c->name);
    free(c);
}
