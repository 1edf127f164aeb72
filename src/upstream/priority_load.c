#include "upstream/priority_load.h"

#include <assert.h>
#include <math.h>
#include <string.h>

static uint32_t min_u32(uint64_t a, uint64_t b)
{
    return (uint32_t)(a < b ? a : b);
}

/* Hands out `total_load` level by level, each level taking at most its normalized share. Returns
 * the load left over (rounding) and sets *first to the first level with availability, or -1. */
static uint32_t distribute(rm_priority_level_load_t *lv, size_t n, bool degraded, uint32_t total_load,
                           uint32_t normalized, long *first)
{
    *first = -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t avail = degraded ? lv[i].degraded_health : lv[i].health;
        if (*first < 0 && avail > 0)
            *first = (long)i;
        uint32_t share = min_u32(total_load, (uint64_t)avail * 100 / normalized);
        if (degraded)
            lv[i].degraded_load = share;
        else
            lv[i].healthy_load = share;
        total_load -= share;
    }
    return total_load;
}

/* Every level panics: loads follow host counts, health ignored. The remainder goes to the first
 * non-empty level; with no host at all, P0 takes everything (and has nothing to pick). */
static void total_panic_loads(const rm_priority_counts_t *counts, size_t n, rm_priority_level_load_t *lv)
{
    uint64_t total_hosts = 0;
    for (size_t i = 0; i < n; i++)
        total_hosts += counts[i].total;
    for (size_t i = 0; i < n; i++)
        lv[i].healthy_load = lv[i].degraded_load = 0;
    if (total_hosts == 0) {
        lv[0].healthy_load = 100;
        return;
    }
    uint32_t left = 100;
    size_t first_nonempty = n;
    for (size_t i = 0; i < n; i++) {
        if (first_nonempty == n && counts[i].total != 0)
            first_nonempty = i;
        lv[i].healthy_load = (uint32_t)(100 * (uint64_t)counts[i].total / total_hosts);
        left -= lv[i].healthy_load;
    }
    lv[first_nonempty].healthy_load += left;
}

static bool level_in_panic(const rm_priority_counts_t *c, uint32_t threshold)
{
    double healthy_pct = c->total == 0 ? 0.0 : 100.0 * c->healthy / c->total;
    double degraded_pct = c->total == 0 ? 0.0 : 100.0 * c->degraded / c->total;
    return healthy_pct + degraded_pct < (double)threshold;
}

void rm_priority_load_compute(const rm_priority_counts_t *counts, size_t num_levels,
                              uint32_t overprovisioning_factor, double panic_threshold_percent,
                              rm_priority_load_t *out)
{
    assert(num_levels >= 1);
    rm_priority_level_load_t *lv = out->levels;
    memset(lv, 0, num_levels * sizeof(*lv));
    out->num_levels = num_levels;
    out->total_panic = false;

    uint64_t sum = 0;
    for (size_t i = 0; i < num_levels; i++) {
        const rm_priority_counts_t *c = &counts[i];
        if (c->total == 0)
            continue;
        lv[i].health = min_u32(100, (uint64_t)overprovisioning_factor * c->healthy / c->total);
        lv[i].degraded_health = min_u32(100, (uint64_t)overprovisioning_factor * c->degraded / c->total);
        sum += lv[i].health + lv[i].degraded_health;
    }
    uint32_t normalized = min_u32(100, sum);
    out->normalized_total = normalized;

    if (normalized > 0) {
        long first_healthy, first_degraded;
        uint32_t left = distribute(lv, num_levels, false, 100, normalized, &first_healthy);
        left = distribute(lv, num_levels, true, left, normalized, &first_degraded);
        if (left != 0) {
            if (first_healthy >= 0)
                lv[first_healthy].healthy_load += left;
            else
                lv[first_degraded].degraded_load += left;
        }
    }

    /* Envoy converts the configured percent with rounding, then caps it at 100. */
    double t = isnan(panic_threshold_percent) ? 0.0 : round(panic_threshold_percent);
    uint32_t threshold = t <= 0.0 ? 0 : t >= 100.0 ? 100 : (uint32_t)t;

    if (threshold == 0 && normalized == 0) {
        /* Panic disabled and nothing available: the load must still add up to 100. P0 gets it and
         * its healthy list is empty, so no host is chosen (503 UH). */
        lv[0].healthy_load = 100;
        return;
    }

    bool all = true;
    for (size_t i = 0; i < num_levels; i++) {
        /* With a normalized total of 100 the levels together have enough capacity: never panic. */
        lv[i].panic = normalized == 100 ? false : level_in_panic(&counts[i], threshold);
        all = all && lv[i].panic;
    }
    if (all) {
        out->total_panic = true;
        total_panic_loads(counts, num_levels, lv);
    }
}

static rm_priority_choice_t make_choice(const rm_priority_load_t *pl, size_t level, bool degraded)
{
    rm_priority_choice_t c;
    c.level = level;
    if (pl->levels[level].panic)
        c.source = RM_PRIORITY_SOURCE_ALL;
    else
        c.source = degraded ? RM_PRIORITY_SOURCE_DEGRADED : RM_PRIORITY_SOURCE_HEALTHY;
    return c;
}

rm_priority_choice_t rm_priority_load_choose(const rm_priority_load_t *pl, uint32_t r)
{
    uint32_t acc = 0;
    for (size_t i = 0; i < pl->num_levels; i++) {
        acc += pl->levels[i].healthy_load;
        if (r < acc)
            return make_choice(pl, i, false);
    }
    for (size_t i = 0; i < pl->num_levels; i++) {
        acc += pl->levels[i].degraded_load;
        if (r < acc)
            return make_choice(pl, i, true);
    }
    /* Unreachable while the loads sum to 100 and r < 100. */
    return make_choice(pl, 0, false);
}

bool rm_priority_load_single(const rm_priority_load_t *pl, rm_priority_choice_t *out)
{
    for (size_t i = 0; i < pl->num_levels; i++) {
        if (pl->levels[i].healthy_load == 100) {
            *out = make_choice(pl, i, false);
            return true;
        }
        if (pl->levels[i].degraded_load == 100) {
            *out = make_choice(pl, i, true);
            return true;
        }
    }
    return false;
}
