#include "upstream/lb/weighted.h"

void rm_lb_weighted_init(rm_lb_weighted_t *w)
{
    rm_edf_init(&w->edf, 8);
    w->src = NULL;
    w->ramp_end_ms = 0;
    w->next_reweight_ms = 0;
}

void rm_lb_weighted_free(rm_lb_weighted_t *w)
{
    rm_edf_free(&w->edf);
}

double rm_lb_weighted_effective(const rm_lb_weighted_t *w, size_t i, uint64_t now_ms)
{
    const rm_host_t *h = w->src->hosts[i];
    double base = w->base_weight(h, w->src->weights[i]);
    if (w->ramp_end_ms == 0)
        return base;
    return base * rm_slow_start_factor(w->ss, h, now_ms);
}

void rm_lb_weighted_build(rm_lb_weighted_t *w, const rm_lb_source_t *src, const rm_slow_start_t *ss,
                          rm_clock_t *clock, rm_lb_base_weight_cb base_weight, bool dynamic, rm_rng_t *rng)
{
    w->src = src;
    w->ss = ss;
    w->clock = clock;
    w->base_weight = base_weight;
    w->dynamic = dynamic;
    w->ramp_end_ms = 0;
    uint64_t now = 0;
    if (rm_slow_start_enabled(ss)) {
        now = rm_clock_now_ms(clock);
        for (size_t i = 0; i < src->num_hosts; i++) {
            uint64_t end = rm_slow_start_end_ms(ss, src->hosts[i], now);
            if (end > w->ramp_end_ms)
                w->ramp_end_ms = end;
        }
        w->next_reweight_ms = now + rm_slow_start_refresh_ms(ss);
    }
    rm_edf_clear(&w->edf);
    size_t n = src->num_hosts;
    size_t offset = n ? (size_t)rm_rng_below(rng, n) : 0;
    for (size_t i = 0; i < n; i++) {
        /* Phase (j + 0.5) / n: item i's first deadline is a fraction of its period, and items of
         * equal weight come due at evenly spaced times rather than all together. */
        double phase = ((double)((i + offset) % n) + 0.5) / (double)n;
        rm_edf_add(&w->edf, (uint32_t)i, rm_lb_weighted_effective(w, i, now), phase);
    }
}

static double reweight_cb(void *ctx, uint32_t item)
{
    rm_lb_weighted_t *w = ctx;
    return rm_lb_weighted_effective(w, item, w->reweight_now);
}

size_t rm_lb_weighted_pick_index(rm_lb_weighted_t *w)
{
    uint64_t now = 0;
    if (w->ramp_end_ms != 0) {
        now = rm_clock_now_ms(w->clock);
        if (now >= w->next_reweight_ms || now >= w->ramp_end_ms) {
            if (now >= w->ramp_end_ms)
                w->ramp_end_ms = 0; /* effective weights are now the base weights */
            w->reweight_now = now;
            rm_edf_reweight(&w->edf, reweight_cb, w);
            w->next_reweight_ms = now + rm_slow_start_refresh_ms(w->ss);
        }
    }
    double new_weight = 0.0; /* keep the current weight */
    if (w->dynamic)
        new_weight = rm_lb_weighted_effective(w, rm_edf_peek(&w->edf), now);
    return rm_edf_pick(&w->edf, new_weight);
}
