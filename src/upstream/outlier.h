/* Outlier detection (passive health checking), with Envoy's detectors and defaults.
 *
 * Two halves:
 *  - Workers report each request's outcome with rm_outlier_put_*(): lock-free atomic counters on the
 *    host. When a consecutive-failure counter reaches its threshold the worker marks the host pending
 *    and wakes the main thread (the only lock taken, and only on that crossing).
 *  - The detector (main thread) makes every decision: consecutive ejections when woken, and on each
 *    `interval` sweep the success-rate and failure-percentage detectors plus the return of hosts whose
 *    ejection time passed. Ejecting sets RM_HOST_FAILED_OUTLIER_CHECK and bumps the health epoch.
 *
 * Ejection time = base_ejection_time x backoff (backoff grows by one per ejection while that product
 * stays below max(base, max_ejection_time), and shrinks by one for each interval the host stays in),
 * capped at max(base_ejection_time, max_ejection_time), plus a random jitter up to
 * max_ejection_time_jitter. */
#ifndef RM_UPSTREAM_OUTLIER_H
#define RM_UPSTREAM_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/clock.h"
#include "upstream/cluster.h"
#include "upstream/host.h"

struct event_base;

/* Detector types: X(enum suffix, name used in logs and stats). */
#define RM_OUTLIER_TYPES(X)                                                                                  \
    X(CONSECUTIVE_5XX, "consecutive_5xx")                                                                    \
    X(CONSECUTIVE_GATEWAY_FAILURE, "consecutive_gateway_failure")                                            \
    X(CONSECUTIVE_LOCAL_ORIGIN_FAILURE, "consecutive_local_origin_failure")                                  \
    X(SUCCESS_RATE, "success_rate")                                                                          \
    X(LOCAL_ORIGIN_SUCCESS_RATE, "local_origin_success_rate")                                                \
    X(FAILURE_PERCENTAGE, "failure_percentage")                                                              \
    X(FAILURE_PERCENTAGE_LOCAL_ORIGIN, "failure_percentage_local_origin")

typedef enum {
#define RM_OUTLIER_TYPE_ENUM(e, s) RM_OUTLIER_##e,
    RM_OUTLIER_TYPES(RM_OUTLIER_TYPE_ENUM)
#undef RM_OUTLIER_TYPE_ENUM
} rm_outlier_type_t;

const char *rm_outlier_type_str(rm_outlier_type_t t);

/* Outcomes that do not come with an upstream HTTP status (Envoy's local-origin results). */
typedef enum {
    RM_OUTLIER_LOCAL_CONNECT_FAILED, /* connect failure or reset by the upstream */
    RM_OUTLIER_LOCAL_TIMEOUT,        /* connect timeout or request timeout */
    RM_OUTLIER_LOCAL_CONNECT_SUCCESS,
} rm_outlier_local_t;

/* Worker side (any thread; `c` and `h` borrowed; no-ops when the cluster has no outlier_detection). */
void rm_outlier_put_http_status(rm_cluster_t *c, rm_host_t *h, int status);
void rm_outlier_put_local(rm_cluster_t *c, rm_host_t *h, rm_outlier_local_t r);

/* ---- main thread ---- */

typedef struct rm_outlier_detector rm_outlier_detector_t;

/* Creates a detector for the cluster whose shared part is `shared` (referenced). With a `base`, it
 * arms its interval timer there and registers the worker wake-up event in `shared`; without one
 * (unit tests) the caller drives rm_outlier_detector_process_pending / _sweep itself. `clock` is
 * borrowed and must outlive the detector. `cfg` is copied. */
rm_outlier_detector_t *rm_outlier_detector_create(struct event_base *base, rm_clock_t *clock,
                                                  rm_cluster_shared_t *shared,
                                                  const rm_outlier_detection_config_t *cfg);
/* Replaces the configuration (timers re-armed when the interval changed). */
void rm_outlier_detector_set_config(rm_outlier_detector_t *d, const rm_outlier_detection_config_t *cfg);
/* Sets the hosts watched (borrowed array, hosts referenced). Hosts kept from the previous set keep
 * their state; removed ones are dropped. */
void rm_outlier_detector_set_hosts(rm_outlier_detector_t *d, rm_host_t *const *hosts, size_t n);
/* Seeds the generator used for enforcement percentages and jitter (tests). */
void rm_outlier_detector_seed(rm_outlier_detector_t *d, uint64_t seed);
/* Handles the consecutive-failure crossings workers reported. */
void rm_outlier_detector_process_pending(rm_outlier_detector_t *d);
/* The interval sweep: returns hosts whose time passed, then runs success rate and failure percentage. */
void rm_outlier_detector_sweep(rm_outlier_detector_t *d);
/* An active health check passed for `h`: returns it when successful_active_health_check_uneject_host. */
void rm_outlier_detector_on_active_hc_success(rm_outlier_detector_t *d, rm_host_t *h);
/* Stops the detector and returns all hosts it ejected (clears their flags). */
void rm_outlier_detector_destroy(rm_outlier_detector_t *d);

#endif
