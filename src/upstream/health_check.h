/* Active health checking (Cluster.health_checks): HTTP and TCP checkers with Envoy's semantics.
 *
 * Runs on the main thread's event loop with non-blocking sockets. One session per host keeps the
 * check connection (reused while the server keeps it open and reuse_connection is on), the
 * consecutive success/failure counts and the timers. The verdict is the host flag
 * RM_HOST_FAILED_ACTIVE_HC (and RM_HOST_DEGRADED_ACTIVE_HC when an HTTP check answers with
 * x-envoy-degraded); changing it bumps the cluster's health epoch.
 *
 * Hysteresis, as in Envoy: a host added to the checker starts failed and passes on its first
 * successful check; after that it needs healthy_threshold consecutive successes to come back. A
 * network failure (connect error, reset, timeout) must repeat unhealthy_threshold times; a response
 * that is not expected (status outside expected_statuses, body not matching `receive`) fails the host
 * at once. */
#ifndef RM_UPSTREAM_HEALTH_CHECK_H
#define RM_UPSTREAM_HEALTH_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/clock.h"
#include "upstream/cluster.h"
#include "upstream/host.h"
#include "upstream/outlier.h"

struct event_base;

typedef enum {
    RM_HC_SUCCESS,
    RM_HC_FAILURE_ACTIVE,  /* the host answered, wrongly */
    RM_HC_FAILURE_NETWORK, /* connect failure, reset or timeout */
} rm_hc_result_t;

/* Per-host hysteresis state (main thread). */
typedef struct {
    uint32_t num_healthy;   /* consecutive successes while failed */
    uint32_t num_unhealthy; /* consecutive network failures while healthy */
    bool first_check;       /* no verdict yet since the host was added */
} rm_hc_state_t;

/* Initialises a host's state and marks it failed until its first check passes. */
void rm_hc_state_init(rm_hc_state_t *st, rm_host_t *h);
/* Applies one check result; returns true when the host's FAILED_ACTIVE_HC flag changed. */
bool rm_hc_state_apply(rm_hc_state_t *st, rm_host_t *h, const rm_health_check_config_t *cfg,
                       rm_hc_result_t r);

/* Whether `status` is expected: in one of the configured [start, end) ranges, or 200 without ranges. */
bool rm_hc_status_expected(const rm_health_check_config_t *cfg, int status);
/* Envoy's fuzzy `receive` match: every payload found in `data`, in order, not necessarily adjacent. */
bool rm_hc_receive_match(const rm_health_check_config_t *cfg, const unsigned char *data, size_t len);
/* Delay until the next check of a host (interval, unhealthy_interval or no_traffic_interval, plus
 * jitter drawn from `rng`). */
uint64_t rm_hc_next_interval_ms(const rm_health_check_config_t *cfg, bool host_failed, bool had_traffic,
                                rm_rng_t *rng);

/* Config equality (to keep a running checker across cluster updates). */
bool rm_health_check_config_equal(const rm_health_check_config_t *a, const rm_health_check_config_t *b);

typedef struct rm_health_checker rm_health_checker_t;

/* Creates a checker for one health_checks entry (`cfg` deep-copied). `shared` is referenced (stats,
 * epoch, name); `clock` borrowed. */
rm_health_checker_t *rm_health_checker_create(struct event_base *base, rm_clock_t *clock,
                                              rm_cluster_shared_t *shared,
                                              const rm_health_check_config_t *cfg);
const rm_health_check_config_t *rm_health_checker_config(const rm_health_checker_t *hc);
/* Sets the hosts to check (borrowed array; hosts referenced). New hosts start failed and are checked
 * after initial_jitter; kept hosts keep their sessions; removed hosts' sessions close. */
void rm_health_checker_set_hosts(rm_health_checker_t *hc, rm_host_t *const *hosts, size_t n);
/* The cluster's outlier detector (borrowed, may be NULL): a passing check may return an ejected host. */
void rm_health_checker_set_outlier(rm_health_checker_t *hc, rm_outlier_detector_t *od);
/* Closes every session and clears the active-check flags of the hosts. */
void rm_health_checker_destroy(rm_health_checker_t *hc);

#endif
