#include "upstream/lb/slow_start.h"

#include <math.h>

#define DEGRADED_MASK (RM_HOST_DEGRADED_ACTIVE_HC | RM_HOST_DEGRADED_EDS_HEALTH)

void rm_slow_start_init(rm_slow_start_t *ss, const rm_cluster_t *cluster)
{
    ss->window_ms = cluster->slow_start_window_ms;
    double a = cluster->slow_start_aggression;
    ss->aggression = (isnan(a) || a <= 0.0) ? 1.0 : a;
    double p = cluster->slow_start_min_weight_percent;
    if (isnan(p) || p < 0.0)
        p = 0.0;
    if (p > 100.0)
        p = 100.0;
    ss->min_weight = p / 100.0;
}

static uint64_t elapsed_ms(const rm_host_t *h, uint64_t now_ms)
{
    return now_ms > h->added_ms ? now_ms - h->added_ms : 0;
}

bool rm_slow_start_active(const rm_slow_start_t *ss, const rm_host_t *h, uint64_t now_ms)
{
    if (ss->window_ms == 0 || h->added_ms == 0)
        return false;
    uint32_t flags = atomic_load_explicit(&((rm_host_t *)h)->health_flags, memory_order_relaxed);
    if ((flags & (RM_HOST_FAILURE_MASK | DEGRADED_MASK)) != 0)
        return false;
    return elapsed_ms(h, now_ms) < ss->window_ms;
}

double rm_slow_start_factor(const rm_slow_start_t *ss, const rm_host_t *h, uint64_t now_ms)
{
    if (!rm_slow_start_active(ss, h, now_ms))
        return 1.0;
    uint64_t e = elapsed_ms(h, now_ms);
    double time_factor = (double)(e > 1 ? e : 1) / (double)ss->window_ms;
    double f =
        (ss->aggression == 1.0 || time_factor == 1.0) ? time_factor : pow(time_factor, 1.0 / ss->aggression);
    return f > ss->min_weight ? f : ss->min_weight;
}

uint64_t rm_slow_start_end_ms(const rm_slow_start_t *ss, const rm_host_t *h, uint64_t now_ms)
{
    return rm_slow_start_active(ss, h, now_ms) ? h->added_ms + ss->window_ms : 0;
}

uint64_t rm_slow_start_refresh_ms(const rm_slow_start_t *ss)
{
    uint64_t r = ss->window_ms / 100;
    if (r < 1)
        r = 1;
    if (r > 250)
        r = 250;
    return r;
}
