/* A cluster as workers see it: an immutable, refcounted object built by the main thread from a
 * cluster config and a resolved host list. A config or membership change builds a new rm_cluster_t;
 * the parts that must survive such updates (stats, health epoch) live in rm_cluster_shared_t, and hosts
 * are shared by reference. */
#ifndef RM_UPSTREAM_CLUSTER_H
#define RM_UPSTREAM_CLUSTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/stats.h"
#include "tls/tls.h"
#include "upstream/fail_fast.h"
#include "upstream/host.h"

typedef struct {
    _Atomic int refcnt;
    char *name;
    rm_cluster_stats_t stats;
    rm_tls_stats_t ssl_stats; /* cluster.<name>.ssl.*, shown when the cluster uses TLS */
    /* Bumped whenever a host's health flags change; workers rebuild healthy lists lazily. */
    _Atomic uint64_t health_epoch;
    /* Set by the main thread while an outlier detector runs for the cluster: workers make it active
     * (under the lock, which only threshold crossings take) so ejections are decided promptly. */
    pthread_mutex_t wake_lock;
    struct event *outlier_wake;
    /* Circuit breakers, cluster-wide across workers. The limits are those of the newest cluster
     * version (stored by rm_cluster_create); the counts are what the breakers compare with:
     * connections opened and not yet closed (connecting ones included), and retries scheduled and
     * not yet started. Requests and pending requests use upstream_rq_active / _pending_active. */
    _Atomic uint32_t max_connections;
    _Atomic int64_t cx_open;
    _Atomic int64_t retries_active;
    rm_fail_fast_t fail_fast;
} rm_cluster_shared_t;

typedef struct {
    rm_host_t **hosts; /* references */
    size_t num_hosts;
} rm_priority_level_t;

typedef struct rm_cluster {
    _Atomic int refcnt;
    char *name;
    rm_cluster_shared_t *shared;
    uint64_t connect_timeout_ms;
    rm_lb_policy_t lb_policy;
    uint32_t overprovisioning_factor;
    uint32_t buffer_limit_bytes;
    rm_upstream_protocol_t protocol; /* what the pools speak to the hosts */
    rm_http2_options_t http2;
    double healthy_panic_threshold; /* percent, 0 disables panic */
    uint32_t choice_count;          /* least request */
    uint64_t slow_start_window_ms;  /* 0: no slow start */
    double slow_start_aggression;
    double slow_start_min_weight_percent;
    rm_outlier_detection_config_t outlier; /* enabled false: no passive health checking */
    rm_circuit_breaker_thresholds_t cb;    /* the DEFAULT routing priority's thresholds */
    rm_circuit_breaker_thresholds_t cb_high;
    rm_fail_fast_config_t fail_fast;
    rm_priority_level_t *levels; /* index = priority */
    size_t num_levels;
    rm_host_t **hosts; /* all hosts, priority order; references */
    size_t num_hosts;
    /* transport_socket: client context (a reference), NULL for plaintext. Set by the cluster
     * manager right after rm_cluster_create, before the cluster is published. */
    rm_tls_ctx_t *tls;
} rm_cluster_t;

rm_cluster_shared_t *rm_cluster_shared_create(const char *name);
rm_cluster_shared_t *rm_cluster_shared_ref(rm_cluster_shared_t *s);
void rm_cluster_shared_unref(rm_cluster_shared_t *s);

/* Builds a cluster from its config and hosts (the hosts array is borrowed; each host gets a new
 * reference). `shared` is borrowed and referenced; pass the previous version's to keep stats. */
rm_cluster_t *rm_cluster_create(const rm_cluster_config_t *cfg, rm_cluster_shared_t *shared,
                                rm_host_t **hosts, size_t num_hosts);
rm_cluster_t *rm_cluster_ref(rm_cluster_t *c);
void rm_cluster_unref(rm_cluster_t *c);

/* Marks a health change so workers rebuild their healthy host lists. Any thread. */
static inline void rm_cluster_bump_health_epoch(rm_cluster_t *c)
{
    atomic_fetch_add_explicit(&c->shared->health_epoch, 1, memory_order_release);
}

/* max_connections: may one more connection be opened? */
static inline bool rm_cluster_cx_can_open(rm_cluster_shared_t *s)
{
    int64_t open = atomic_load_explicit(&s->cx_open, memory_order_relaxed);
    bool ok = open < (int64_t)atomic_load_explicit(&s->max_connections, memory_order_relaxed);
    atomic_store_explicit(&s->stats.cb_default_cx_open, ok ? 0 : 1, memory_order_relaxed);
    return ok;
}

static inline void rm_cluster_cx_close(rm_cluster_shared_t *s)
{
    int64_t open = atomic_fetch_sub_explicit(&s->cx_open, 1, memory_order_relaxed) - 1;
    if (open < (int64_t)atomic_load_explicit(&s->max_connections, memory_order_relaxed) &&
        atomic_load_explicit(&s->stats.cb_default_cx_open, memory_order_relaxed) != 0)
        atomic_store_explicit(&s->stats.cb_default_cx_open, 0, memory_order_relaxed);
}

#endif
