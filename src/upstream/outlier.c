#include "upstream/outlier.h"

#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"

const char *rm_outlier_type_str(rm_outlier_type_t t)
{
    switch (t) {
#define RM_OUTLIER_TYPE_CASE(e, s)                                                                           \
    case RM_OUTLIER_##e:                                                                                     \
        return s;
        RM_OUTLIER_TYPES(RM_OUTLIER_TYPE_CASE)
#undef RM_OUTLIER_TYPE_CASE
    }
    return "unknown";
}

/* ---- worker side ---- */

static void wake(rm_cluster_t *c, rm_host_t *h, rm_outlier_type_t t)
{
    atomic_fetch_or_explicit(&h->outlier.pending, 1u << t, memory_order_release);
    rm_cluster_shared_t *s = c->shared;
    pthread_mutex_lock(&s->wake_lock);
    if (s->outlier_wake != NULL)
        event_active(s->outlier_wake, EV_READ, 0);
    pthread_mutex_unlock(&s->wake_lock);
}

/* Counts a failure; fires exactly when the count reaches the threshold (as Envoy does), so a host
 * that keeps failing while the main thread decides is reported once. */
static void count_failure(rm_cluster_t *c, rm_host_t *h, _Atomic uint32_t *ctr, uint32_t threshold,
                          rm_outlier_type_t t)
{
    uint32_t n = atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed) + 1;
    if (threshold > 0 && n == threshold)
        wake(c, h, t);
}

static void put_code(rm_cluster_t *c, rm_host_t *h, int status)
{
    rm_host_outlier_t *o = &h->outlier;
    RM_STAT_INC(o->ext_total);
    if (status >= 500 && status <= 599) {
        if (status >= 502 && status <= 504)
            count_failure(c, h, &o->consecutive_gateway, c->outlier.consecutive_gateway_failure,
                          RM_OUTLIER_CONSECUTIVE_GATEWAY_FAILURE);
        else
            atomic_store_explicit(&o->consecutive_gateway, 0, memory_order_relaxed);
        count_failure(c, h, &o->consecutive_5xx, c->outlier.consecutive_5xx, RM_OUTLIER_CONSECUTIVE_5XX);
        return;
    }
    RM_STAT_INC(o->ext_success);
    atomic_store_explicit(&o->consecutive_5xx, 0, memory_order_relaxed);
    atomic_store_explicit(&o->consecutive_gateway, 0, memory_order_relaxed);
}

void rm_outlier_put_http_status(rm_cluster_t *c, rm_host_t *h, int status)
{
    if (c == NULL || h == NULL || !c->outlier.enabled)
        return;
    put_code(c, h, status);
}

void rm_outlier_put_local(rm_cluster_t *c, rm_host_t *h, rm_outlier_local_t r)
{
    if (c == NULL || h == NULL || !c->outlier.enabled)
        return;
    rm_host_outlier_t *o = &h->outlier;
    if (!c->outlier.split_external_local_origin_errors) {
        /* Without the split, local failures count as the status Remora answers with. */
        if (r == RM_OUTLIER_LOCAL_CONNECT_FAILED)
            put_code(c, h, 503);
        else if (r == RM_OUTLIER_LOCAL_TIMEOUT)
            put_code(c, h, 504);
        return;
    }
    RM_STAT_INC(o->local_total);
    if (r == RM_OUTLIER_LOCAL_CONNECT_SUCCESS) {
        RM_STAT_INC(o->local_success);
        atomic_store_explicit(&o->consecutive_local, 0, memory_order_relaxed);
        return;
    }
    count_failure(c, h, &o->consecutive_local, c->outlier.consecutive_local_origin_failure,
                  RM_OUTLIER_CONSECUTIVE_LOCAL_ORIGIN_FAILURE);
}

/* ---- main thread ---- */

struct rm_outlier_detector {
    struct event_base *base;
    rm_clock_t *clock;
    rm_cluster_shared_t *shared;
    rm_outlier_detection_config_t cfg;
    rm_rng_t rng;
    rm_host_t **hosts; /* references */
    size_t num_hosts;
    struct event *wake_ev;
    struct event *timer;
};

static rm_cluster_od_stats_t *ods(rm_outlier_detector_t *d)
{
    return &d->shared->stats.od;
}

static bool ejected(const rm_host_t *h)
{
    return (atomic_load(&((rm_host_t *)h)->health_flags) & RM_HOST_FAILED_OUTLIER_CHECK) != 0;
}

static void health_changed(rm_outlier_detector_t *d)
{
    size_t healthy = 0;
    for (size_t i = 0; i < d->num_hosts; i++)
        healthy += rm_host_healthy(d->hosts[i]);
    atomic_store(&d->shared->stats.membership_healthy, (int64_t)healthy);
    atomic_fetch_add_explicit(&d->shared->health_epoch, 1, memory_order_release);
}

static uint64_t max_time(const rm_outlier_detection_config_t *cfg)
{
    return cfg->max_ejection_time_ms > cfg->base_ejection_time_ms ? cfg->max_ejection_time_ms
                                                                  : cfg->base_ejection_time_ms;
}

static bool enforce(rm_outlier_detector_t *d, rm_outlier_type_t t)
{
    const rm_outlier_detection_config_t *c = &d->cfg;
    uint32_t pct = 0;
    switch (t) {
    case RM_OUTLIER_CONSECUTIVE_5XX:
        pct = c->enforcing_consecutive_5xx;
        break;
    case RM_OUTLIER_CONSECUTIVE_GATEWAY_FAILURE:
        pct = c->enforcing_consecutive_gateway_failure;
        break;
    case RM_OUTLIER_CONSECUTIVE_LOCAL_ORIGIN_FAILURE:
        pct = c->enforcing_consecutive_local_origin_failure;
        break;
    case RM_OUTLIER_SUCCESS_RATE:
        pct = c->enforcing_success_rate;
        break;
    case RM_OUTLIER_LOCAL_ORIGIN_SUCCESS_RATE:
        pct = c->enforcing_local_origin_success_rate;
        break;
    case RM_OUTLIER_FAILURE_PERCENTAGE:
        pct = c->enforcing_failure_percentage;
        break;
    case RM_OUTLIER_FAILURE_PERCENTAGE_LOCAL_ORIGIN:
        pct = c->enforcing_failure_percentage_local_origin;
        break;
    }
    return pct >= 100 || (pct > 0 && rm_rng_below(&d->rng, 100) < pct);
}

static void count_detected(rm_outlier_detector_t *d, rm_outlier_type_t t, bool enforced)
{
    rm_cluster_od_stats_t *s = ods(d);
    switch (t) {
#define RM_OD_COUNT(e, name)                                                                                 \
    case RM_OUTLIER_##e:                                                                                     \
        if (enforced)                                                                                        \
            RM_STAT_INC(s->ejections_enforced_##name);                                                       \
        else                                                                                                 \
            RM_STAT_INC(s->ejections_detected_##name);                                                       \
        break;
        RM_OD_COUNT(CONSECUTIVE_5XX, consecutive_5xx)
        RM_OD_COUNT(CONSECUTIVE_GATEWAY_FAILURE, consecutive_gateway_failure)
        RM_OD_COUNT(CONSECUTIVE_LOCAL_ORIGIN_FAILURE, consecutive_local_origin_failure)
        RM_OD_COUNT(SUCCESS_RATE, success_rate)
        RM_OD_COUNT(LOCAL_ORIGIN_SUCCESS_RATE, local_origin_success_rate)
        RM_OD_COUNT(FAILURE_PERCENTAGE, failure_percentage)
        RM_OD_COUNT(FAILURE_PERCENTAGE_LOCAL_ORIGIN, failure_percentage_local_origin)
#undef RM_OD_COUNT
    }
}

static void eject(rm_outlier_detector_t *d, rm_host_t *h, rm_outlier_type_t t)
{
    if (ejected(h))
        return;
    count_detected(d, t, false); /* every detection, enforced or not */
    if (!enforce(d, t))
        return;
    const rm_outlier_detection_config_t *c = &d->cfg;
    int64_t active = RM_STAT_GET(ods(d)->ejections_active);
    double pct = d->num_hosts ? 100.0 * (double)(active + 1) / (double)d->num_hosts : 100.0;
    uint32_t max_pct = c->max_ejection_percent > 100 ? 100 : c->max_ejection_percent;
    /* One host may always be ejected, whatever the percentage (Envoy's documented rule for
     * max_ejection_percent; always_eject_one_host asks for the same). */
    if (!(pct <= (double)max_pct || active == 0)) {
        RM_STAT_INC(ods(d)->ejections_overflow);
        RM_LOG_WARN("cluster %s: host %s is an outlier (%s) but max_ejection_percent %u%% is reached; "
                    "not ejected",
                    d->shared->name, h->address_str, rm_outlier_type_str(t), max_pct);
        return;
    }
    rm_host_outlier_t *o = &h->outlier;
    uint64_t now = rm_clock_now_ms(d->clock);
    if ((uint64_t)o->backoff * c->base_ejection_time_ms < max_time(c))
        o->backoff++;
    uint64_t t_ms = (uint64_t)o->backoff * c->base_ejection_time_ms;
    if (t_ms > max_time(c))
        t_ms = max_time(c);
    if (c->max_ejection_time_jitter_ms > 0)
        t_ms += rm_rng_below(&d->rng, c->max_ejection_time_jitter_ms + 1);
    o->ejected_at_ms = now;
    o->eject_for_ms = t_ms;
    o->num_ejections++;
    atomic_fetch_or(&h->health_flags, RM_HOST_FAILED_OUTLIER_CHECK);
    RM_STAT_INC(ods(d)->ejections_active);
    RM_STAT_INC(ods(d)->ejections_enforced_total);
    count_detected(d, t, true);
    health_changed(d);
    RM_LOG_WARN("cluster %s: host %s ejected (%s), ejection %u, returns in %llu ms", d->shared->name,
                h->address_str, rm_outlier_type_str(t), o->num_ejections, (unsigned long long)t_ms);
}

static void reset_counters(rm_host_t *h)
{
    atomic_store(&h->outlier.consecutive_5xx, 0);
    atomic_store(&h->outlier.consecutive_gateway, 0);
    atomic_store(&h->outlier.consecutive_local, 0);
}

static void uneject(rm_outlier_detector_t *d, rm_host_t *h, const char *why)
{
    rm_host_outlier_t *o = &h->outlier;
    atomic_fetch_and(&h->health_flags, ~(uint32_t)RM_HOST_FAILED_OUTLIER_CHECK);
    RM_STAT_DEC(ods(d)->ejections_active);
    o->last_unejected_ms = rm_clock_now_ms(d->clock);
    reset_counters(h);
    atomic_store(&h->outlier.pending, 0);
    health_changed(d);
    uint64_t next = (uint64_t)(o->backoff + 1) * d->cfg.base_ejection_time_ms;
    if (next > max_time(&d->cfg))
        next = max_time(&d->cfg);
    RM_LOG_INFO("cluster %s: host %s returned to service (%s) after %llu ms; a new ejection would last "
                "%llu ms",
                d->shared->name, h->address_str, why,
                (unsigned long long)(o->last_unejected_ms - o->ejected_at_ms), (unsigned long long)next);
}

void rm_outlier_detector_process_pending(rm_outlier_detector_t *d)
{
    for (size_t i = 0; i < d->num_hosts; i++) {
        rm_host_t *h = d->hosts[i];
        uint32_t bits = atomic_exchange_explicit(&h->outlier.pending, 0, memory_order_acquire);
        for (rm_outlier_type_t t = RM_OUTLIER_CONSECUTIVE_5XX;
             bits != 0 && t <= RM_OUTLIER_CONSECUTIVE_LOCAL_ORIGIN_FAILURE; t++) {
            if (!(bits & (1u << t)))
                continue;
            /* The counter restarts whether or not the host is ejected, as in Envoy. */
            if (t == RM_OUTLIER_CONSECUTIVE_5XX)
                atomic_store(&h->outlier.consecutive_5xx, 0);
            else if (t == RM_OUTLIER_CONSECUTIVE_GATEWAY_FAILURE)
                atomic_store(&h->outlier.consecutive_gateway, 0);
            else
                atomic_store(&h->outlier.consecutive_local, 0);
            eject(d, h, t);
        }
    }
}

/* Success-rate and failure-percentage detection over one bucket (external or local origin). */
static void rate_detect(rm_outlier_detector_t *d, const uint64_t *total, const uint64_t *success, bool local)
{
    const rm_outlier_detection_config_t *c = &d->cfg;
    size_t n = d->num_hosts, sr_hosts = 0, fp_hosts = 0;
    double sum = 0;
    double *rate = rm_calloc(n ? n : 1, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        rate[i] = -1;
        if (ejected(d->hosts[i]) || total[i] == 0)
            continue;
        rate[i] = 100.0 * (double)success[i] / (double)total[i];
        if (total[i] >= c->success_rate_request_volume) {
            sr_hosts++;
            sum += rate[i];
        }
        if (total[i] >= c->failure_percentage_request_volume)
            fp_hosts++;
    }
    for (size_t i = 0; i < n; i++) {
        if (local)
            d->hosts[i]->outlier.sr_local = total[i] >= c->success_rate_request_volume ? rate[i] : -1;
        else
            d->hosts[i]->outlier.sr_ext = total[i] >= c->success_rate_request_volume ? rate[i] : -1;
    }
    if (sr_hosts > 0 && sr_hosts >= c->success_rate_minimum_hosts) {
        double mean = sum / (double)sr_hosts, var = 0;
        for (size_t i = 0; i < n; i++)
            if (rate[i] >= 0 && total[i] >= c->success_rate_request_volume)
                var += (rate[i] - mean) * (rate[i] - mean);
        double stdev = sqrt(var / (double)sr_hosts);
        double threshold = mean - stdev * ((double)c->success_rate_stdev_factor / 1000.0);
        for (size_t i = 0; i < n; i++)
            if (rate[i] >= 0 && total[i] >= c->success_rate_request_volume && rate[i] < threshold)
                eject(d, d->hosts[i], local ? RM_OUTLIER_LOCAL_ORIGIN_SUCCESS_RATE : RM_OUTLIER_SUCCESS_RATE);
    }
    if (fp_hosts > 0 && fp_hosts >= c->failure_percentage_minimum_hosts) {
        for (size_t i = 0; i < n; i++)
            if (rate[i] >= 0 && total[i] >= c->failure_percentage_request_volume &&
                100.0 - rate[i] >= (double)c->failure_percentage_threshold)
                eject(d, d->hosts[i],
                      local ? RM_OUTLIER_FAILURE_PERCENTAGE_LOCAL_ORIGIN : RM_OUTLIER_FAILURE_PERCENTAGE);
    }
    free(rate);
}

void rm_outlier_detector_sweep(rm_outlier_detector_t *d)
{
    uint64_t now = rm_clock_now_ms(d->clock);
    for (size_t i = 0; i < d->num_hosts; i++) {
        rm_host_t *h = d->hosts[i];
        rm_host_outlier_t *o = &h->outlier;
        if (ejected(h)) {
            if (now - o->ejected_at_ms >= o->eject_for_ms)
                uneject(d, h, "ejection time elapsed");
        } else if (o->backoff > 0 && o->last_unejected_ms != 0 &&
                   now - o->last_unejected_ms >= d->cfg.interval_ms) {
            /* A host that stays in for an interval earns back one step of its ejection time. */
            o->backoff--;
        }
    }
    size_t n = d->num_hosts;
    uint64_t *tot = rm_calloc(n ? n : 1, sizeof(uint64_t)), *ok = rm_calloc(n ? n : 1, sizeof(uint64_t));
    uint64_t *ltot = rm_calloc(n ? n : 1, sizeof(uint64_t)), *lok = rm_calloc(n ? n : 1, sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        rm_host_outlier_t *o = &d->hosts[i]->outlier;
        /* Successes first: a request finishing between the two reads then counts in the next bucket
         * as a success without its total, never as a success above 100%. */
        ok[i] = atomic_exchange(&o->ext_success, 0);
        tot[i] = atomic_exchange(&o->ext_total, 0);
        lok[i] = atomic_exchange(&o->local_success, 0);
        ltot[i] = atomic_exchange(&o->local_total, 0);
        if (ok[i] > tot[i])
            ok[i] = tot[i];
        if (lok[i] > ltot[i])
            lok[i] = ltot[i];
    }
    rate_detect(d, tot, ok, false);
    if (d->cfg.split_external_local_origin_errors)
        rate_detect(d, ltot, lok, true);
    free(tot);
    free(ok);
    free(ltot);
    free(lok);
}

void rm_outlier_detector_on_active_hc_success(rm_outlier_detector_t *d, rm_host_t *h)
{
    if (d == NULL || !d->cfg.successful_active_health_check_uneject_host || !ejected(h))
        return;
    for (size_t i = 0; i < d->num_hosts; i++)
        if (d->hosts[i] == h) {
            uneject(d, h, "active health check passed");
            return;
        }
}

static void arm(rm_outlier_detector_t *d)
{
    if (d->timer == NULL)
        return;
    uint64_t ms = d->cfg.interval_ms ? d->cfg.interval_ms : 10000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(d->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_outlier_detector_t *d = arg;
    rm_outlier_detector_sweep(d);
    arm(d);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_outlier_detector_process_pending(arg);
}

rm_outlier_detector_t *rm_outlier_detector_create(struct event_base *base, rm_clock_t *clock,
                                                  rm_cluster_shared_t *shared,
                                                  const rm_outlier_detection_config_t *cfg)
{
    rm_outlier_detector_t *d = RM_NEW(rm_outlier_detector_t);
    d->base = base;
    d->clock = clock;
    d->shared = rm_cluster_shared_ref(shared);
    d->cfg = *cfg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rm_rng_seed(&d->rng, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uintptr_t)d);
    if (base != NULL) {
        d->timer = evtimer_new(base, timer_cb, d);
        d->wake_ev = event_new(base, -1, 0, wake_cb, d);
        pthread_mutex_lock(&shared->wake_lock);
        shared->outlier_wake = d->wake_ev;
        pthread_mutex_unlock(&shared->wake_lock);
        arm(d);
    }
    return d;
}

void rm_outlier_detector_set_config(rm_outlier_detector_t *d, const rm_outlier_detection_config_t *cfg)
{
    bool rearm = cfg->interval_ms != d->cfg.interval_ms;
    d->cfg = *cfg;
    if (rearm && d->timer != NULL) {
        evtimer_del(d->timer);
        arm(d);
    }
}

void rm_outlier_detector_seed(rm_outlier_detector_t *d, uint64_t seed)
{
    rm_rng_seed(&d->rng, seed);
}

void rm_outlier_detector_set_hosts(rm_outlier_detector_t *d, rm_host_t *const *hosts, size_t n)
{
    rm_host_t **next = rm_calloc(n ? n : 1, sizeof(rm_host_t *));
    for (size_t i = 0; i < n; i++)
        next[i] = rm_host_ref(hosts[i]);
    for (size_t i = 0; i < d->num_hosts; i++)
        rm_host_unref(d->hosts[i]);
    free(d->hosts);
    d->hosts = next;
    d->num_hosts = n;
    /* Removed hosts no longer count as ejected. */
    int64_t active = 0;
    for (size_t i = 0; i < n; i++)
        active += ejected(next[i]);
    atomic_store(&ods(d)->ejections_active, active);
}

void rm_outlier_detector_destroy(rm_outlier_detector_t *d)
{
    if (d == NULL)
        return;
    if (d->wake_ev != NULL) {
        pthread_mutex_lock(&d->shared->wake_lock);
        if (d->shared->outlier_wake == d->wake_ev)
            d->shared->outlier_wake = NULL;
        pthread_mutex_unlock(&d->shared->wake_lock);
        event_free(d->wake_ev);
    }
    if (d->timer != NULL)
        event_free(d->timer);
    bool changed = false;
    for (size_t i = 0; i < d->num_hosts; i++) {
        if (ejected(d->hosts[i])) {
            atomic_fetch_and(&d->hosts[i]->health_flags, ~(uint32_t)RM_HOST_FAILED_OUTLIER_CHECK);
            changed = true;
        }
    }
    if (changed)
        health_changed(d);
    atomic_store(&ods(d)->ejections_active, 0);
    for (size_t i = 0; i < d->num_hosts; i++)
        rm_host_unref(d->hosts[i]);
    free(d->hosts);
    rm_cluster_shared_unref(d->shared);
    free(d);
}
