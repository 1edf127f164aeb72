/* Envoy's priority load: how much of the traffic each priority level receives, given how many of its
 * hosts are healthy or degraded. Pure functions over plain counts (no hosts, no clock, no locks), so
 * the LB code on workers and the tests share one implementation of the math.
 *
 * The model (Envoy's "priority levels", "degraded endpoints" and "panic threshold" pages):
 *   health(P)      = min(100, overprovisioning_factor * healthy(P) / total(P))     integer division
 *   degraded(P)    = min(100, overprovisioning_factor * degraded(P) / total(P))
 *   normalized     = min(100, sum over P of health(P) + degraded(P))
 *   healthy load   : level by level, min(what is left of 100, health(P) * 100 / normalized)
 *   degraded load  : the same over degraded(P) with what the healthy pass left over
 *   rounding left  : added to the first level with health > 0, else the first with degraded > 0
 * A level is in panic when normalized < 100 and its (healthy + degraded) percentage of hosts is below
 * the panic threshold; a panicking level's share goes to all its hosts. When every level panics
 * (total panic), loads follow host counts instead. Threshold 0 disables panic: if nothing is
 * available, P0 gets the whole (empty) load and no host can be chosen. */
#ifndef RM_UPSTREAM_PRIORITY_LOAD_H
#define RM_UPSTREAM_PRIORITY_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Host counts of one priority level. healthy + degraded <= total. A degraded host has no failure bit
 * but a degraded bit; it is counted in `degraded`, not in `healthy`. */
typedef struct {
    uint32_t total;
    uint32_t healthy;
    uint32_t degraded;
} rm_priority_counts_t;

typedef struct {
    uint32_t health;          /* healthy availability, 0..100, after overprovisioning */
    uint32_t degraded_health; /* degraded availability, 0..100, after overprovisioning */
    uint32_t healthy_load;    /* percent of requests sent to this level's healthy hosts */
    uint32_t degraded_load;   /* percent of requests sent to this level's degraded hosts */
    bool panic;               /* requests for this level go to all of its hosts */
} rm_priority_level_load_t;

typedef struct {
    rm_priority_level_load_t *levels; /* caller-owned array of num_levels */
    size_t num_levels;
    uint32_t normalized_total; /* min(100, sum of health + degraded_health) */
    bool total_panic;          /* every level in panic: loads follow host counts */
} rm_priority_load_t;

/* Which host list of a level a request should use. */
typedef enum {
    RM_PRIORITY_SOURCE_HEALTHY = 0,
    RM_PRIORITY_SOURCE_DEGRADED = 1,
    RM_PRIORITY_SOURCE_ALL = 2, /* panic: health is ignored */
} rm_priority_source_t;

typedef struct {
    size_t level;
    rm_priority_source_t source;
} rm_priority_choice_t;

/* Fills out->levels[0..num_levels) and the summary fields from per-level counts.
 * overprovisioning_factor is in percent (140 = 1.4); panic_threshold_percent is rounded to an integer
 * and clamped to [0, 100] as Envoy does (0 disables panic). Preconditions: num_levels >= 1,
 * out->levels has room for num_levels entries. The healthy and degraded loads always sum to 100. */
void rm_priority_load_compute(const rm_priority_counts_t *counts, size_t num_levels,
                              uint32_t overprovisioning_factor, double panic_threshold_percent,
                              rm_priority_load_t *out);

/* Maps a uniform random number r in [0, 100) to a level and host list: healthy loads first (P0, P1,
 * ...), then degraded loads; a level in panic always yields RM_PRIORITY_SOURCE_ALL. */
rm_priority_choice_t rm_priority_load_choose(const rm_priority_load_t *pl, uint32_t r);

/* The (level, source) that receives 100% of the load, if there is exactly one; lets callers skip the
 * random draw in the common all-healthy case. Returns false when the load is split. */
bool rm_priority_load_single(const rm_priority_load_t *pl, rm_priority_choice_t *out);

#endif
