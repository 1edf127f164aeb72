/* Slow start (Envoy's slow_start_config for round robin and least request): a host that joined the
 * cluster less than `window` ago has its weight scaled down, ramping up to the full weight:
 *
 *   effective = weight * max(min_weight_percent / 100, time_factor ^ (1 / aggression))
 *   time_factor = max(elapsed_ms, 1) / window_ms
 *
 * Only hosts that are healthy (no failure and no degraded bit) ramp, as in Envoy. A host's join time
 * is rm_host_t.added_ms (0: present since the cluster's first build, never ramps). Pure functions
 * of the configuration, the host and the current time. */
#ifndef RM_UPSTREAM_LB_SLOW_START_H
#define RM_UPSTREAM_LB_SLOW_START_H

#include <stdbool.h>
#include <stdint.h>

#include "upstream/cluster.h"

typedef struct {
    uint64_t window_ms; /* 0: slow start off */
    double aggression;  /* > 0 */
    double min_weight;  /* fraction in [0, 1] */
} rm_slow_start_t;

/* Reads the cluster's slow start settings (invalid aggression falls back to 1.0, the minimum weight
 * percent is clamped to [0, 100]). */
void rm_slow_start_init(rm_slow_start_t *ss, const rm_cluster_t *cluster);

static inline bool rm_slow_start_enabled(const rm_slow_start_t *ss)
{
    return ss->window_ms > 0;
}

/* Whether host h is ramping at now_ms. */
bool rm_slow_start_active(const rm_slow_start_t *ss, const rm_host_t *h, uint64_t now_ms);

/* The factor in (0, 1] applied to h's weight at now_ms (1 when h is not ramping). */
double rm_slow_start_factor(const rm_slow_start_t *ss, const rm_host_t *h, uint64_t now_ms);

/* When h stops ramping (added_ms + window), or 0 if it is not ramping at now_ms. */
uint64_t rm_slow_start_end_ms(const rm_slow_start_t *ss, const rm_host_t *h, uint64_t now_ms);

/* How often a scheduler with ramping hosts recomputes their weights: window / 100, clamped to
 * [1 ms, 250 ms]. Bounds the cost to one O(n) reweight per interval per host list and worker. */
uint64_t rm_slow_start_refresh_ms(const rm_slow_start_t *ss);

#endif
