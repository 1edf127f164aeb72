/* An upstream host: one endpoint address of a cluster. Hosts are shared, refcounted objects: the
 * same rm_host_t survives snapshot updates that keep it, so its health state and counters persist.
 * Everything a worker touches on the request path is atomic. */
#ifndef RM_UPSTREAM_HOST_H
#define RM_UPSTREAM_HOST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "core/stats.h"

/* Health flags, Envoy's admin words. X(enum suffix, bit, admin word, is_failure). */
#define RM_HOST_HEALTH_FLAGS(X)                                                                              \
    X(FAILED_ACTIVE_HC, 0x01, "/failed_active_hc", 1)                                                        \
    X(FAILED_OUTLIER_CHECK, 0x02, "/failed_outlier_check", 1)                                                \
    X(FAILED_EDS_HEALTH, 0x04, "/failed_eds_health", 1)                                                      \
    X(DEGRADED_ACTIVE_HC, 0x08, "/degraded_active_hc", 0)                                                    \
    X(DEGRADED_EDS_HEALTH, 0x10, "/degraded_eds_health", 0)                                                  \
    X(PENDING_DYNAMIC_REMOVAL, 0x20, "/pending_dynamic_removal", 0)                                          \
    X(EDS_STATUS_DRAINING, 0x40, "/eds_status_draining", 1)

enum {
#define RM_HOST_FLAG_ENUM(e, bit, word, fail) RM_HOST_##e = bit,
    RM_HOST_HEALTH_FLAGS(RM_HOST_FLAG_ENUM)
#undef RM_HOST_FLAG_ENUM
};

#define RM_HOST_FAILURE_MASK                                                                                 \
    (RM_HOST_FAILED_ACTIVE_HC | RM_HOST_FAILED_OUTLIER_CHECK | RM_HOST_FAILED_EDS_HEALTH |                   \
     RM_HOST_EDS_STATUS_DRAINING)

/* Outlier-detection state of a host. Workers update the counters with atomics on the request path;
 * the rest belongs to the main thread (upstream/outlier.c), which alone ejects and returns hosts. It
 * lives in the host so it survives cluster updates that keep the host. */
typedef struct {
    _Atomic uint32_t consecutive_5xx;
    _Atomic uint32_t consecutive_gateway;
    _Atomic uint32_t consecutive_local;
    _Atomic uint32_t pending; /* detectors whose threshold a worker saw crossed (bit per type) */
    /* Requests of the current interval (external and local origin). */
    _Atomic uint64_t ext_total, ext_success, local_total, local_success;
    /* Main thread only. */
    uint32_t num_ejections; /* since the host joined */
    uint32_t backoff;       /* ejection time multiplier */
    uint64_t ejected_at_ms;
    uint64_t eject_for_ms;      /* length of the current ejection, jitter included */
    uint64_t last_unejected_ms; /* 0: never returned */
    double sr_ext, sr_local;    /* last success rates computed, -1 when not enough volume */
} rm_host_outlier_t;

typedef struct rm_host {
    _Atomic int refcnt;
    char *address_str; /* "ip:port", as shown in /clusters and access logs */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    /* Weight and priority may change in place through EDS (the host keeps its identity, stats,
     * health and connections); a new cluster object regroups levels by the new priority. */
    _Atomic uint32_t weight;
    _Atomic uint32_t priority;
    _Atomic uint32_t health_flags;
    /* Monotonic ms when the host joined its cluster after the cluster's first build (slow start);
     * 0 for hosts present from the start. */
    uint64_t added_ms;
    rm_host_stats_t stats;
    rm_host_outlier_t outlier;
    /* Where active health checks connect (health_check_config override); main thread only. */
    struct sockaddr_storage hc_addr;
    socklen_t hc_addr_len; /* 0: use addr */
} rm_host_t;

/* Creates a host with refcount 1 from a resolved address. Returns NULL (and sets *err) when the
 * address is not an IP literal. */
rm_host_t *rm_host_create(const char *ip, uint32_t port, uint32_t weight, uint32_t priority,
                          rm_health_status_t eds_status, const char **err);
/* Creates a host from an already resolved sockaddr (DNS clusters). */
rm_host_t *rm_host_create_sockaddr(const struct sockaddr *sa, socklen_t len, uint32_t weight,
                                   uint32_t priority);
rm_host_t *rm_host_ref(rm_host_t *h);
void rm_host_unref(rm_host_t *h);

static inline bool rm_host_healthy(const rm_host_t *h)
{
    return (atomic_load_explicit(&((rm_host_t *)h)->health_flags, memory_order_relaxed) &
            RM_HOST_FAILURE_MASK) == 0;
}

/* Maps an EDS/config health status to host flags. */
uint32_t rm_host_flags_from_eds(rm_health_status_t s);
/* Writes Envoy's health_flags admin text ("healthy" or "/failed_active_hc/..."). */
void rm_host_health_flags_str(uint32_t flags, char *buf, size_t len);

#endif
