/* Stats declared once with X-macros so names, storage and admin output cannot drift. Counters and
 * gauges are atomics: workers update them on the request path without locks; the admin thread reads
 * them. Names follow Envoy's where Envoy has one. */
#ifndef RM_CORE_STATS_H
#define RM_CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t rm_counter_t;
typedef _Atomic int64_t rm_gauge_t;

#define RM_STAT_INC(c)    atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)
#define RM_STAT_ADD(c, n) atomic_fetch_add_explicit(&(c), (n), memory_order_relaxed)
#define RM_STAT_DEC(c)    atomic_fetch_sub_explicit(&(c), 1, memory_order_relaxed)
#define RM_STAT_GET(c)    atomic_load_explicit(&(c), memory_order_relaxed)

/* X(name, kind) with kind C (counter) or G (gauge). Names are the suffix after "cluster.<name>.". */
#define RM_CLUSTER_STATS(X)                                                                                  \
    X(upstream_cx_total, C)                                                                                  \
    X(upstream_cx_active, G)                                                                                 \
    X(upstream_cx_connect_fail, C)                                                                           \
    X(upstream_cx_connect_timeout, C)                                                                        \
    X(upstream_cx_destroy, C)                                                                                \
    X(upstream_cx_destroy_remote, C)                                                                         \
    X(upstream_cx_destroy_local, C)                                                                          \
    X(upstream_cx_idle_timeout, C)                                                                           \
    X(upstream_cx_protocol_error, C)                                                                         \
    X(upstream_rq_total, C)                                                                                  \
    X(upstream_rq_active, G)                                                                                 \
    X(upstream_rq_completed, C)                                                                              \
    X(upstream_rq_timeout, C)                                                                                \
    X(upstream_rq_rx_reset, C)                                                                               \
    X(upstream_rq_tx_reset, C)                                                                               \
    X(upstream_rq_pending_total, C)                                                                          \
    X(upstream_rq_pending_active, G)                                                                         \
    X(upstream_rq_1xx, C)                                                                                    \
    X(upstream_rq_2xx, C)                                                                                    \
    X(upstream_rq_3xx, C)                                                                                    \
    X(upstream_rq_4xx, C)                                                                                    \
    X(upstream_rq_5xx, C)                                                                                    \
    X(upstream_cx_none_healthy, C)                                                                           \
    X(upstream_cx_overflow, C)                                                                               \
    X(upstream_rq_pending_overflow, C)                                                                       \
    X(upstream_rq_per_try_timeout, C)                                                                        \
    X(upstream_rq_retry, C)                                                                                  \
    X(upstream_rq_retry_success, C)                                                                          \
    X(upstream_rq_retry_overflow, C)                                                                         \
    X(upstream_rq_retry_limit_exceeded, C)                                                                   \
    X(upstream_rq_retry_backoff_exponential, C)                                                              \
    X(retry_or_shadow_abandoned, C)                                                                          \
    X(membership_total, G)                                                                                   \
    X(membership_healthy, G)

/* Outlier detection, shown as cluster.<name>.outlier_detection.<stat> (Envoy's names). */
#define RM_CLUSTER_OD_STATS(X)                                                                               \
    X(ejections_active, G)                                                                                   \
    X(ejections_enforced_total, C)                                                                           \
    X(ejections_overflow, C)                                                                                 \
    X(ejections_enforced_consecutive_5xx, C)                                                                 \
    X(ejections_detected_consecutive_5xx, C)                                                                 \
    X(ejections_enforced_consecutive_gateway_failure, C)                                                     \
    X(ejections_detected_consecutive_gateway_failure, C)                                                     \
    X(ejections_enforced_consecutive_local_origin_failure, C)                                                \
    X(ejections_detected_consecutive_local_origin_failure, C)                                                \
    X(ejections_enforced_success_rate, C)                                                                    \
    X(ejections_detected_success_rate, C)                                                                    \
    X(ejections_enforced_local_origin_success_rate, C)                                                       \
    X(ejections_detected_local_origin_success_rate, C)                                                       \
    X(ejections_enforced_failure_percentage, C)                                                              \
    X(ejections_detected_failure_percentage, C)                                                              \
    X(ejections_enforced_failure_percentage_local_origin, C)                                                 \
    X(ejections_detected_failure_percentage_local_origin, C)

/* Active health checking, shown as cluster.<name>.health_check.<stat> (Envoy's names). */
#define RM_CLUSTER_HC_STATS(X)                                                                               \
    X(attempt, C)                                                                                            \
    X(success, C)                                                                                            \
    X(failure, C)                                                                                            \
    X(network_failure, C)                                                                                    \
    X(healthy, G)                                                                                            \
    X(degraded, G)
/* Cluster stats whose names contain dots: X(field, kind, name after "cluster.<name>."). The
 * circuit_breakers gauges are 1 while the breaker is open (at its limit), as in Envoy; fail_fast.* is
 * Remora's cluster fail-fast breaker (state: 0 closed, 1 open, 2 half-open). */
#define RM_CLUSTER_DOTTED_STATS(X)                                                                           \
    X(cb_default_cx_open, G, "circuit_breakers.default.cx_open")                                             \
    X(cb_default_rq_pending_open, G, "circuit_breakers.default.rq_pending_open")                             \
    X(cb_default_rq_open, G, "circuit_breakers.default.rq_open")                                             \
    X(cb_default_rq_retry_open, G, "circuit_breakers.default.rq_retry_open")                                 \
    X(ff_state, G, "fail_fast.state")                                                                        \
    X(ff_opened, C, "fail_fast.opened")                                                                      \
    X(ff_closed, C, "fail_fast.closed")                                                                      \
    X(ff_rejected, C, "fail_fast.rejected")

/* Suffixes after "http.<stat_prefix>.". */
#define RM_HCM_STATS(X)                                                                                      \
    X(downstream_cx_total, C)                                                                                \
    X(downstream_cx_active, G)                                                                               \
    X(downstream_cx_http1_total, C)                                                                          \
    X(downstream_cx_http2_total, C)                                                                          \
    X(downstream_cx_protocol_error, C)                                                                       \
    X(downstream_cx_idle_timeout, C)                                                                         \
    X(downstream_cx_destroy_remote_active_rq, C)                                                             \
    X(downstream_rq_total, C)                                                                                \
    X(downstream_rq_active, G)                                                                               \
    X(downstream_rq_http1_total, C)                                                                          \
    X(downstream_rq_http2_total, C)                                                                          \
    X(downstream_rq_1xx, C)                                                                                  \
    X(downstream_rq_2xx, C)                                                                                  \
    X(downstream_rq_3xx, C)                                                                                  \
    X(downstream_rq_4xx, C)                                                                                  \
    X(downstream_rq_5xx, C)                                                                                  \
    X(downstream_rq_timeout, C)                                                                              \
    X(downstream_rq_header_timeout, C)                                                                       \
    X(downstream_rq_rx_reset, C)                                                                             \
    X(no_route, C)                                                                                           \
    X(no_cluster, C)

/* HTTP/2 codec of a listener, suffixes after "http.<stat_prefix>.http2." (Envoy's http2.* names). */
#define RM_H2_STATS(X)                                                                                       \
    X(rx_reset, C)                                                                                           \
    X(tx_reset, C)                                                                                           \
    X(header_overflow, C)                                                                                    \
    X(too_many_headers, C)                                                                                   \
    X(rx_messaging_error, C)                                                                                 \
    X(trailers, C)                                                                                           \
    X(goaway_sent, C)                                                                                        \
    X(inbound_empty_frames_flood, C)                                                                         \
    X(outbound_control_flood, C)                                                                             \
    X(rapid_reset, C)                                                                                        \
    X(streams_active, G)

/* Per host (shown in /clusters as cluster::host::<name>::value). */
#define RM_HOST_STATS(X)                                                                                     \
    X(cx_total, C)                                                                                           \
    X(cx_active, G)                                                                                          \
    X(cx_connect_fail, C)                                                                                    \
    X(rq_total, C)                                                                                           \
    X(rq_active, G)                                                                                          \
    X(rq_success, C)                                                                                         \
    X(rq_error, C)                                                                                           \
    X(rq_timeout, C)

#define RM_STAT_FIELD_C(name)     rm_counter_t name;
#define RM_STAT_FIELD_G(name)     rm_gauge_t name;
#define RM_STAT_FIELD(name, kind) RM_STAT_FIELD_##kind(name)

#define RM_STAT_FIELD_DOTTED(field, kind, name) RM_STAT_FIELD_##kind(field)

typedef struct {
    RM_CLUSTER_OD_STATS(RM_STAT_FIELD)
} rm_cluster_od_stats_t;

typedef struct {
    RM_CLUSTER_HC_STATS(RM_STAT_FIELD)
} rm_cluster_hc_stats_t;

typedef struct {
    RM_CLUSTER_STATS(RM_STAT_FIELD)
    rm_cluster_od_stats_t od;
    rm_cluster_hc_stats_t hc;
    RM_CLUSTER_DOTTED_STATS(RM_STAT_FIELD_DOTTED)
} rm_cluster_stats_t;

typedef struct {
    RM_HCM_STATS(RM_STAT_FIELD)
} rm_hcm_stats_t;

typedef struct {
    RM_HOST_STATS(RM_STAT_FIELD)
} rm_host_stats_t;

typedef struct {
    RM_H2_STATS(RM_STAT_FIELD)
} rm_h2_stats_t;

/* Visitor used by the admin: called with a full name and value for each stat of a block. */
typedef void (*rm_stats_visit_cb)(void *ctx, const char *prefix, const char *name, int64_t value,
                                  int is_gauge);

void rm_cluster_stats_visit(rm_cluster_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx);
void rm_hcm_stats_visit(rm_hcm_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx);
void rm_h2_stats_visit(rm_h2_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx);
void rm_host_stats_visit(rm_host_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx);

/* Adds one response to the Nxx class counters of a block. */
#define RM_STAT_STATUS_CLASS(stats, prefix, status)                                                          \
    do {                                                                                                     \
        int _cls = (status) / 100;                                                                           \
        if (_cls == 1)                                                                                       \
            RM_STAT_INC((stats)->prefix##1xx);                                                               \
        else if (_cls == 2)                                                                                  \
            RM_STAT_INC((stats)->prefix##2xx);                                                               \
        else if (_cls == 3)                                                                                  \
            RM_STAT_INC((stats)->prefix##3xx);                                                               \
        else if (_cls == 4)                                                                                  \
            RM_STAT_INC((stats)->prefix##4xx);                                                               \
        else                                                                                                 \
            RM_STAT_INC((stats)->prefix##5xx);                                                               \
    } while (0)

#endif
