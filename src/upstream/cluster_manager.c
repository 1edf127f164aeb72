#include "upstream/cluster_manager.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/net.h"
#include "upstream/health_check.h"
#include "upstream/outlier.h"

typedef struct cm_entry cm_entry_t;

typedef struct {
    cm_entry_t *owner;
    size_t index;                   /* endpoint index in the cluster config */
    struct sockaddr_storage *addrs; /* last good resolution */
    size_t num_addrs;
    struct evdns_getaddrinfo_request *req;
} dns_endpoint_t;

/* One configured cluster: static (config borrowed from the bootstrap) or from CDS (owned). */
struct cm_entry {
    rm_cluster_manager_t *cm;
    char *name;
    rm_cluster_config_t *cfg; /* the config `active` was built from; NULL before the first warm-up */
    bool is_static;           /* from the bootstrap: configs are borrowed, CDS cannot touch it */
    rm_cluster_t *active;     /* what the snapshot serves; NULL until first warm */
    rm_cluster_shared_t *shared;
    /* Health state machines of the active cluster (NULL when not configured); they keep per-host
     * state in the hosts themselves, so it survives updates that keep a host. */
    rm_outlier_detector_t *od;
    rm_health_checker_t *hc;
    /* Warming: a pending config waiting for its assignment before it replaces `cfg`. */
    rm_cluster_config_t *pending;
    struct event *warm_timer;
    /* STRICT_DNS */
    dns_endpoint_t *eps;
    size_t outstanding;
    bool dns_changed;
    struct event *dns_timer;
    /* Client TLS context of `cfg` (built once per config, so membership updates keep it and the
     * workers' pools keep their connections); NULL for plaintext or before the first build. */
    rm_tls_ctx_t *tls;
};

typedef struct {
    rm_cluster_load_assignment_t *v;
    size_t n, cap;
} cla_cache_t;

struct rm_cluster_manager {
    struct event_base *base;
    struct evdns_base *dns;
    const rm_bootstrap_config_t *bootstrap;
    rm_cm_publish_cb publish;
    void *ctx;
    rm_snapshot_t *current;
    uint64_t version;
    cm_entry_t **entries;
    size_t num_entries, cap_entries;
    cla_cache_t clas;
    rm_cm_stats_t stats;
    void (*on_warm)(void *ctx);
    void *on_warm_ctx;
    bool started;
};

static socklen_t ss_len(const struct sockaddr_storage *s)
{
    return s->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static const char *eds_name(const rm_cluster_config_t *cfg)
{
    return cfg->eds_service_name && cfg->eds_service_name[0] ? cfg->eds_service_name : cfg->name;
}

static rm_cluster_load_assignment_t *cla_find(rm_cluster_manager_t *cm, const char *name)
{
    for (size_t i = 0; i < cm->clas.n; i++)
        if (strcmp(cm->clas.v[i].cluster_name, name) == 0)
            return &cm->clas.v[i];
    return NULL;
}

/* ---- building cluster objects ---- */

/* Previous hosts indexed by address so a large membership update stays linear. */
typedef struct {
    rm_host_t **slots;
    size_t n;
    bool first_build; /* hosts of a cluster's first build are not "new" (no slow start) */
} host_index_t;

static uint64_t addr_hash(const struct sockaddr_storage *ss)
{
    const unsigned char *p = (const unsigned char *)ss;
    uint64_t h = 1469598103934665603ull;
    for (socklen_t i = 0; i < ss_len(ss); i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void index_build(host_index_t *ix, const rm_cluster_t *prev)
{
    ix->n = 16;
    size_t want = prev ? prev->num_hosts * 2 : 0;
    while (ix->n < want)
        ix->n *= 2;
    ix->slots = rm_calloc(ix->n, sizeof(rm_host_t *));
    ix->first_build = prev == NULL;
    for (size_t i = 0; prev && i < prev->num_hosts; i++) {
        rm_host_t *h = prev->hosts[i];
        size_t k = addr_hash(&h->addr) & (ix->n - 1);
        while (ix->slots[k] != NULL)
            k = (k + 1) & (ix->n - 1);
        ix->slots[k] = h;
    }
}

static rm_host_t *index_take(host_index_t *ix, const struct sockaddr_storage *ss)
{
    size_t k = addr_hash(ss) & (ix->n - 1);
    while (ix->slots[k] != NULL) {
        rm_host_t *h = ix->slots[k];
        if (h != (rm_host_t *)ix && h->addr_len == ss_len(ss) && memcmp(&h->addr, ss, h->addr_len) == 0) {
            ix->slots[k] = (rm_host_t *)ix; /* tombstone: an address listed twice gets two hosts */
            return h;
        }
        k = (k + 1) & (ix->n - 1);
    }
    return NULL;
}

typedef struct {
    rm_host_t **v;
    size_t n, cap;
} host_list_t;

static void host_list_push(host_list_t *l, rm_host_t *h)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = rm_realloc(l->v, l->cap * sizeof(rm_host_t *));
    }
    l->v[l->n++] = h;
}

/* Reuses the previous host with this address (updating weight, priority and EDS health in place) or
 * makes a new one. Returns a new reference. */
/* Active health checks go to health_check_config's address/port when given. */
static void set_hc_addr(rm_host_t *h, const rm_endpoint_config_t *ep)
{
    h->hc_addr_len = 0;
    if (ep->hc_port == 0 && ep->hc_address == NULL)
        return;
    struct sockaddr_storage ss = h->addr;
    uint32_t port = ep->hc_port ? ep->hc_port
                                : (ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                                           : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    socklen_t len = 0;
    if (ep->hc_address != NULL) {
        if (rm_sockaddr_from_ip(ep->hc_address, port, &ss, &len) != 0)
            return; /* validated by the loaders */
    } else if (ss.ss_family == AF_INET) {
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        len = sizeof(struct sockaddr_in);
    } else {
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        len = sizeof(struct sockaddr_in6);
    }
    h->hc_addr = ss;
    h->hc_addr_len = len;
}

static rm_host_t *obtain_host_inner(host_index_t *ix, const struct sockaddr_storage *ss,
                                    const rm_endpoint_config_t *ep, bool *changed);

static rm_host_t *obtain_host(host_index_t *ix, const struct sockaddr_storage *ss,
                              const rm_endpoint_config_t *ep, bool *changed)
{
    rm_host_t *h = obtain_host_inner(ix, ss, ep, changed);
    set_hc_addr(h, ep);
    return h;
}

static rm_host_t *obtain_host_inner(host_index_t *ix, const struct sockaddr_storage *ss,
                                    const rm_endpoint_config_t *ep, bool *changed)
{
    uint32_t weight = ep->weight ? ep->weight : 1;
    uint32_t eds_flags = rm_host_flags_from_eds(ep->health_status);
    const uint32_t eds_mask =
        RM_HOST_FAILED_EDS_HEALTH | RM_HOST_EDS_STATUS_DRAINING | RM_HOST_DEGRADED_EDS_HEALTH;
    rm_host_t *h = index_take(ix, ss);
    if (h == NULL) {
        *changed = true;
        h = rm_host_create_sockaddr((const struct sockaddr *)ss, ss_len(ss), weight, ep->priority);
        atomic_store(&h->health_flags, eds_flags);
        if (!ix->first_build)
            h->added_ms = rm_clock_now_ms(rm_clock_system());
        return h;
    }
    if (atomic_load(&h->weight) != weight || atomic_load(&h->priority) != ep->priority)
        *changed = true;
    atomic_store(&h->weight, weight);
    atomic_store(&h->priority, ep->priority);
    uint32_t old = atomic_load(&h->health_flags);
    uint32_t next = (old & ~eds_mask) | eds_flags;
    if (next != old) {
        atomic_store(&h->health_flags, next);
        *changed = true;
    }
    return rm_host_ref(h);
}

static int literal_addr(const rm_socket_address_config_t *a, struct sockaddr_storage *ss)
{
    return rm_sockaddr_from_ip(a->address, a->port, ss, NULL);
}

/* Builds the cluster object for `cfg` with endpoints from `eps` (config endpoints, an EDS assignment,
 * or NULL for DNS clusters, whose addresses come from the entry). Returns NULL with err set when an
 * endpoint is not an IP address. *changed tells whether membership differs from `prev`. */
static rm_cluster_t *build_cluster(cm_entry_t *e, const rm_cluster_config_t *cfg,
                                   const rm_endpoint_config_t *eps, size_t num_eps, uint32_t overprovisioning,
                                   char *err, size_t errlen, bool *changed)
{
    const rm_cluster_t *prev = e->active;
    if (cfg->tls.enabled && e->tls == NULL) {
        char sub[512];
        /* ALPN offers the protocol the cluster's pools speak, whatever alpn_protocols lists: a
         * server picking another one would be spoken to in the wrong protocol. */
        rm_tls_config_t tcfg = cfg->tls;
        char *proto[1] = {(char *)(cfg->protocol == RM_UPSTREAM_HTTP2 ? "h2" : "http/1.1")};
        tcfg.alpn_protocols = proto;
        tcfg.num_alpn_protocols = 1;
        e->tls = rm_tls_client_ctx_create(&tcfg, sub, sizeof(sub));
        if (e->tls == NULL) {
            snprintf(err, errlen, "cluster %s: transport_socket: %s", cfg->name, sub);
            return NULL;
        }
    }
    host_index_t ix;
    index_build(&ix, prev);
    host_list_t hosts = {0};
    bool ch = prev == NULL;
    if (cfg->type == RM_CLUSTER_STRICT_DNS) {
        for (size_t i = 0; i < cfg->num_endpoints; i++) {
            dns_endpoint_t *de = &e->eps[i];
            for (size_t k = 0; k < de->num_addrs; k++)
                host_list_push(&hosts, obtain_host(&ix, &de->addrs[k], &cfg->endpoints[i], &ch));
        }
    } else {
        for (size_t i = 0; i < num_eps; i++) {
            struct sockaddr_storage ss;
            if (literal_addr(&eps[i].address, &ss) != 0) {
                snprintf(err, errlen, "cluster %s: endpoint %s is not an IP address", cfg->name,
                         eps[i].address.address);
                for (size_t j = 0; j < hosts.n; j++)
                    rm_host_unref(hosts.v[j]);
                free(hosts.v);
                free(ix.slots);
                return NULL;
            }
            host_list_push(&hosts, obtain_host(&ix, &ss, &eps[i], &ch));
        }
    }
    if (prev != NULL && prev->num_hosts != hosts.n)
        ch = true;
    free(ix.slots);
    rm_cluster_config_t tmp = *cfg;
    if (overprovisioning)
        tmp.overprovisioning_factor = overprovisioning;
    rm_cluster_t *c = rm_cluster_create(&tmp, e->shared, hosts.v, hosts.n);
    c->tls = cfg->tls.enabled ? rm_tls_ctx_ref(e->tls) : NULL;
    size_t healthy = 0;
    for (size_t j = 0; j < hosts.n; j++) {
        if (rm_host_healthy(hosts.v[j]))
            healthy++;
        rm_host_unref(hosts.v[j]);
    }
    free(hosts.v);
    atomic_store(&c->shared->stats.membership_healthy, (int64_t)healthy);
    if (changed)
        *changed = ch;
    if (ch)
        rm_cluster_bump_health_epoch(c);
    return c;
}

/* Builds the active cluster of an entry from its current config. */
static rm_cluster_t *build_entry(rm_cluster_manager_t *cm, cm_entry_t *e, const rm_cluster_config_t *cfg,
                                 char *err, size_t errlen)
{
    if (cfg->type == RM_CLUSTER_EDS) {
        rm_cluster_load_assignment_t *cla = cla_find(cm, eds_name(cfg));
        return build_cluster(e, cfg, cla ? cla->endpoints : NULL, cla ? cla->num_endpoints : 0,
                             cla ? cla->overprovisioning_factor : 0, err, errlen, NULL);
    }
    return build_cluster(e, cfg, cfg->endpoints, cfg->num_endpoints, cfg->overprovisioning_factor, err,
                         errlen, NULL);
}

/* ---- publication ---- */

static void publish(rm_cluster_manager_t *cm)
{
    rm_cluster_t **list = rm_calloc(cm->num_entries ? cm->num_entries : 1, sizeof(*list));
    size_t n = 0, warming = 0;
    for (size_t i = 0; i < cm->num_entries; i++) {
        if (cm->entries[i]->active != NULL)
            list[n++] = cm->entries[i]->active;
        if (cm->entries[i]->pending != NULL)
            warming++;
    }
    rm_snapshot_t *snap = rm_snapshot_create(list, n, ++cm->version);
    free(list);
    if (cm->current)
        rm_snapshot_unref(cm->current);
    cm->current = snap;
    atomic_store(&cm->stats.active_clusters, (int64_t)n);
    atomic_store(&cm->stats.warming_clusters, (int64_t)warming);
    RM_STAT_INC(cm->stats.snapshots_published);
    if (cm->publish)
        cm->publish(cm->ctx, rm_snapshot_ref(snap));
    RM_LOG_DEBUG("published snapshot %llu: %zu active clusters, %zu warming",
                 (unsigned long long)snap->version, n, warming);
}

/* Starts, reconfigures or stops the entry's outlier detector and health checker for its active
 * cluster, and hands them the current hosts. */
static void sync_health(cm_entry_t *e)
{
    const rm_cluster_config_t *cfg = e->active != NULL ? e->cfg : NULL;
    rm_cluster_t *c = e->active;
    if (cfg != NULL && cfg->outlier_detection.enabled) {
        if (e->od == NULL)
            e->od = rm_outlier_detector_create(e->cm->base, rm_clock_system(), e->shared,
                                               &cfg->outlier_detection);
        else
            rm_outlier_detector_set_config(e->od, &cfg->outlier_detection);
        rm_outlier_detector_set_hosts(e->od, c->hosts, c->num_hosts);
    } else if (e->od != NULL) {
        rm_outlier_detector_destroy(e->od);
        e->od = NULL;
    }
    if (cfg != NULL && cfg->num_health_checks > 0) {
        if (e->hc != NULL &&
            !rm_health_check_config_equal(rm_health_checker_config(e->hc), &cfg->health_checks[0])) {
            rm_health_checker_destroy(e->hc);
            e->hc = NULL;
        }
        if (e->hc == NULL)
            e->hc =
                rm_health_checker_create(e->cm->base, rm_clock_system(), e->shared, &cfg->health_checks[0]);
        rm_health_checker_set_outlier(e->hc, e->od);
        rm_health_checker_set_hosts(e->hc, c->hosts, c->num_hosts);
    } else if (e->hc != NULL) {
        rm_health_checker_destroy(e->hc);
        e->hc = NULL;
    }
}

static void set_active(cm_entry_t *e, rm_cluster_t *c)
{
    if (e->active)
        rm_cluster_unref(e->active);
    e->active = c;
    sync_health(e);
}

static void check_warm(rm_cluster_manager_t *cm)
{
    if (cm->on_warm != NULL && rm_cluster_manager_warm(cm)) {
        void (*cb)(void *) = cm->on_warm;
        cm->on_warm = NULL;
        cb(cm->on_warm_ctx);
    }
}

/* ---- STRICT_DNS ---- */

static int family_for(rm_dns_lookup_family_t f)
{
    switch (f) {
    case RM_DNS_LOOKUP_V4_ONLY:
        return AF_INET;
    case RM_DNS_LOOKUP_V6_ONLY:
        return AF_INET6;
    default:
        return AF_UNSPEC;
    }
}

/* Keeps the addresses of the family the policy prefers (all of them for ALL). */
static size_t filter_family(rm_dns_lookup_family_t f, struct sockaddr_storage *a, size_t n)
{
    if (f == RM_DNS_LOOKUP_ALL || f == RM_DNS_LOOKUP_V4_ONLY || f == RM_DNS_LOOKUP_V6_ONLY)
        return n;
    int prefer = f == RM_DNS_LOOKUP_V4_PREFERRED ? AF_INET : AF_INET6;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i].ss_family == prefer)
            a[k++] = a[i];
    return k > 0 ? k : n;
}

static size_t addrinfo_collect(struct evutil_addrinfo *ai, uint32_t port, struct sockaddr_storage **out)
{
    size_t n = 0;
    for (struct evutil_addrinfo *p = ai; p; p = p->ai_next)
        n++;
    struct sockaddr_storage *a = rm_calloc(n ? n : 1, sizeof(*a));
    size_t k = 0;
    for (struct evutil_addrinfo *p = ai; p; p = p->ai_next) {
        if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
            continue;
        struct sockaddr_storage tmp;
        memset(&tmp, 0, sizeof(tmp));
        memcpy(&tmp, p->ai_addr, p->ai_addrlen);
        if (p->ai_family == AF_INET)
            ((struct sockaddr_in *)&tmp)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)&tmp)->sin6_port = htons((uint16_t)port);
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = memcmp(&a[j], &tmp, sizeof(tmp)) == 0;
        if (!dup)
            a[k++] = tmp;
    }
    *out = a;
    return k;
}

static void dns_arm(cm_entry_t *e)
{
    uint64_t ms = e->cfg->dns_refresh_rate_ms ? e->cfg->dns_refresh_rate_ms : 5000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(e->dns_timer, &tv);
}

static void dns_result_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    dns_endpoint_t *de = arg;
    cm_entry_t *e = de->owner;
    de->req = NULL;
    if (result == EVUTIL_EAI_CANCEL) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    if (result == 0) {
        struct sockaddr_storage *a;
        size_t n = addrinfo_collect(res, e->cfg->endpoints[de->index].address.port, &a);
        n = filter_family(e->cfg->dns_lookup_family, a, n);
        bool same = n == de->num_addrs && memcmp(a, de->addrs, n * sizeof(*a)) == 0;
        if (!same) {
            free(de->addrs);
            de->addrs = a;
            de->num_addrs = n;
            e->dns_changed = true;
        } else {
            free(a);
        }
    } else {
        RM_LOG_WARN("cluster %s: resolving %s failed: %s; keeping the previous addresses", e->cfg->name,
                    e->cfg->endpoints[de->index].address.address, evutil_gai_strerror(result));
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (--e->outstanding == 0) {
        if (e->dns_changed) {
            e->dns_changed = false;
            char err[768];
            rm_cluster_t *c = build_cluster(e, e->cfg, NULL, 0, 0, err, sizeof(err), NULL);
            if (c != NULL) {
                RM_LOG_INFO("cluster %s: DNS membership changed (%zu hosts)", e->cfg->name, c->num_hosts);
                set_active(e, c);
                RM_STAT_INC(e->cm->stats.cluster_updated);
                publish(e->cm);
            }
        }
        dns_arm(e);
    }
}

static void dns_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cm_entry_t *e = arg;
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family_for(e->cfg->dns_lookup_family);
    hints.ai_socktype = SOCK_STREAM;
    e->outstanding = e->cfg->num_endpoints;
    if (e->outstanding == 0) {
        dns_arm(e);
        return;
    }
    for (size_t i = 0; i < e->cfg->num_endpoints; i++) {
        dns_endpoint_t *de = &e->eps[i];
        de->req = evdns_getaddrinfo(e->cm->dns, e->cfg->endpoints[i].address.address, NULL, &hints,
                                    dns_result_cb, de);
    }
}

static void dns_init(cm_entry_t *e)
{
    const rm_cluster_config_t *cfg = e->cfg;
    e->eps = rm_calloc(cfg->num_endpoints ? cfg->num_endpoints : 1, sizeof(dns_endpoint_t));
    for (size_t i = 0; i < cfg->num_endpoints; i++) {
        dns_endpoint_t *de = &e->eps[i];
        de->owner = e;
        de->index = i;
        struct evutil_addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = family_for(cfg->dns_lookup_family);
        hints.ai_socktype = SOCK_STREAM;
        /* Start-up resolution blocks once, so the first snapshot already has the hosts. */
        int rc = evutil_getaddrinfo(cfg->endpoints[i].address.address, NULL, &hints, &res);
        if (rc != 0) {
            RM_LOG_WARN("cluster %s: resolving %s failed: %s", cfg->name, cfg->endpoints[i].address.address,
                        evutil_gai_strerror(rc));
            continue;
        }
        de->num_addrs = addrinfo_collect(res, cfg->endpoints[i].address.port, &de->addrs);
        de->num_addrs = filter_family(cfg->dns_lookup_family, de->addrs, de->num_addrs);
        evutil_freeaddrinfo(res);
    }
    if (e->cm->started && e->cm->dns != NULL) {
        e->dns_timer = evtimer_new(e->cm->base, dns_refresh_cb, e);
        dns_arm(e);
    }
}

static void dns_fini(cm_entry_t *e)
{
    if (e->eps == NULL)
        return;
    for (size_t k = 0; k < e->cfg->num_endpoints; k++) {
        if (e->eps[k].req)
            evdns_getaddrinfo_cancel(e->eps[k].req);
        free(e->eps[k].addrs);
    }
    free(e->eps);
    e->eps = NULL;
    if (e->dns_timer) {
        event_free(e->dns_timer);
        e->dns_timer = NULL;
    }
}

/* ---- entries ---- */

static cm_entry_t *entry_find(rm_cluster_manager_t *cm, const char *name, size_t *index)
{
    for (size_t i = 0; i < cm->num_entries; i++) {
        if (strcmp(cm->entries[i]->name, name) == 0) {
            if (index)
                *index = i;
            return cm->entries[i];
        }
    }
    return NULL;
}

static cm_entry_t *entry_new(rm_cluster_manager_t *cm, const char *name, bool is_static)
{
    cm_entry_t *e = RM_NEW(cm_entry_t);
    e->cm = cm;
    e->name = rm_strdup(name);
    e->is_static = is_static;
    e->shared = rm_cluster_shared_create(name);
    if (cm->num_entries == cm->cap_entries) {
        cm->cap_entries = cm->cap_entries ? cm->cap_entries * 2 : 16;
        cm->entries = rm_realloc(cm->entries, cm->cap_entries * sizeof(*cm->entries));
    }
    cm->entries[cm->num_entries++] = e;
    return e;
}

static void entry_config_free(cm_entry_t *e, rm_cluster_config_t *cfg)
{
    if (cfg == NULL || e->is_static)
        return;
    rm_cluster_config_free(cfg);
    free(cfg);
}

static void entry_free(cm_entry_t *e)
{
    if (e->cfg)
        dns_fini(e);
    if (e->warm_timer)
        event_free(e->warm_timer);
    set_active(e, NULL);
    rm_tls_ctx_unref(e->tls);
    rm_cluster_shared_unref(e->shared);
    entry_config_free(e, e->cfg);
    entry_config_free(e, e->pending);
    free(e->name);
    free(e);
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b || (a && !*a) || (b && !*b);
    return strcmp(a, b) == 0;
}

static bool fail_fast_equal(const rm_fail_fast_config_t *a, const rm_fail_fast_config_t *b)
{
    return a->enabled == b->enabled && a->consecutive_failures == b->consecutive_failures &&
           a->slow_call_ms == b->slow_call_ms && a->open_duration_ms == b->open_duration_ms &&
           a->half_open_requests == b->half_open_requests && a->ignore_5xx == b->ignore_5xx;
}

/* Whether two cluster configs would build the same cluster (so an update can keep the old one). */
static bool config_equal(const rm_cluster_config_t *a, const rm_cluster_config_t *b)
{
    if (a->type != b->type || a->connect_timeout_ms != b->connect_timeout_ms ||
        a->lb_policy != b->lb_policy || a->dns_refresh_rate_ms != b->dns_refresh_rate_ms ||
        a->overprovisioning_factor != b->overprovisioning_factor ||
        a->per_connection_buffer_limit_bytes != b->per_connection_buffer_limit_bytes ||
        a->dns_lookup_family != b->dns_lookup_family || !str_eq(a->eds_service_name, b->eds_service_name) ||
        a->num_endpoints != b->num_endpoints || !rm_tls_config_equal(&a->tls, &b->tls) ||
        a->healthy_panic_threshold_set != b->healthy_panic_threshold_set ||
        a->healthy_panic_threshold != b->healthy_panic_threshold || a->choice_count != b->choice_count ||
        a->slow_start_window_ms != b->slow_start_window_ms ||
        a->slow_start_aggression != b->slow_start_aggression ||
        a->slow_start_min_weight_percent != b->slow_start_min_weight_percent ||
        a->circuit_breakers_set != b->circuit_breakers_set ||
        memcmp(a->circuit_breakers, b->circuit_breakers, sizeof(a->circuit_breakers)) != 0 ||
        !fail_fast_equal(&a->fail_fast, &b->fail_fast) || a->protocol != b->protocol ||
        memcmp(&a->http2, &b->http2, sizeof(a->http2)) != 0 ||
        memcmp(&a->outlier_detection, &b->outlier_detection, sizeof(a->outlier_detection)) != 0 ||
        a->num_health_checks != b->num_health_checks)
        return false;
    for (size_t i = 0; i < a->num_health_checks; i++)
        if (!rm_health_check_config_equal(&a->health_checks[i], &b->health_checks[i]))
            return false;
    for (size_t i = 0; i < a->num_endpoints; i++) {
        const rm_endpoint_config_t *x = &a->endpoints[i], *y = &b->endpoints[i];
        if (!str_eq(x->address.address, y->address.address) || x->address.port != y->address.port ||
            x->weight != y->weight || x->priority != y->priority || x->health_status != y->health_status ||
            x->hc_port != y->hc_port || !str_eq(x->hc_address, y->hc_address))
            return false;
    }
    return true;
}

static void warm_timeout_cb(evutil_socket_t fd, short what, void *arg);

/* Makes `cfg` the entry's config and (re)builds its active cluster. */
static void entry_activate(cm_entry_t *e, rm_cluster_config_t *cfg)
{
    rm_cluster_manager_t *cm = e->cm;
    char err[768];
    if (cfg != e->cfg) {
        if (e->cfg != NULL) {
            dns_fini(e);
            entry_config_free(e, e->cfg);
        }
        e->cfg = cfg;
        rm_tls_ctx_unref(e->tls); /* built again from the new config */
        e->tls = NULL;
        if (cfg->type == RM_CLUSTER_STRICT_DNS)
            dns_init(e);
    }
    rm_cluster_t *c = build_entry(cm, e, e->cfg, err, sizeof(err));
    if (c == NULL) {
        /* Validation before this point makes this unexpected; keep serving the old version. */
        RM_LOG_ERROR("%s", err);
        return;
    }
    set_active(e, c);
}

static void warm_done(cm_entry_t *e)
{
    rm_cluster_config_t *cfg = e->pending;
    e->pending = NULL;
    if (e->warm_timer)
        evtimer_del(e->warm_timer);
    entry_activate(e, cfg);
}

static void warm_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cm_entry_t *e = arg;
    if (e->pending == NULL)
        return;
    RM_LOG_WARN(
        "cluster %s: no assignment for '%s' within the initial fetch timeout; activating without hosts",
        e->name, eds_name(e->pending));
    warm_done(e);
    publish(e->cm);
    check_warm(e->cm);
}

static void start_warming(cm_entry_t *e, rm_cluster_config_t *cfg, uint64_t timeout_ms)
{
    if (e->pending != cfg)
        entry_config_free(e, e->pending);
    e->pending = cfg;
    if (e->warm_timer == NULL)
        e->warm_timer = evtimer_new(e->cm->base, warm_timeout_cb, e);
    uint64_t ms = timeout_ms ? timeout_ms : 15000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(e->warm_timer, &tv);
}

void rm_cluster_manager_apply_cds(rm_cluster_manager_t *cm, rm_cluster_config_t *clusters, size_t n,
                                  uint64_t initial_fetch_timeout_ms)
{
    bool changed = false;
    size_t old_entries = cm->num_entries;
    bool *seen = rm_calloc(old_entries + 1, sizeof(bool));
    for (size_t i = 0; i < n; i++) {
        rm_cluster_config_t *cfg = RM_NEW(rm_cluster_config_t);
        *cfg = clusters[i]; /* takes the members */
        size_t idx;
        cm_entry_t *e = entry_find(cm, cfg->name, &idx);
        if (e != NULL && idx < old_entries)
            seen[idx] = true;
        if (e != NULL && e->is_static) {
            RM_LOG_WARN("CDS cluster %s ignored: a static cluster has that name", cfg->name);
            rm_cluster_config_free(cfg);
            free(cfg);
            continue;
        }
        const rm_cluster_config_t *current = e ? (e->pending ? e->pending : e->cfg) : NULL;
        if (current != NULL && config_equal(current, cfg)) {
            rm_cluster_config_free(cfg);
            free(cfg);
            continue;
        }
        if (e == NULL) {
            e = entry_new(cm, cfg->name, false);
            RM_STAT_INC(cm->stats.cluster_added);
            RM_LOG_INFO("cluster %s added", cfg->name);
        } else {
            RM_STAT_INC(cm->stats.cluster_modified);
            RM_LOG_INFO("cluster %s updated", cfg->name);
        }
        if (cfg->type == RM_CLUSTER_EDS && cla_find(cm, eds_name(cfg)) == NULL) {
            /* Warm until the assignment arrives; a previous version keeps serving meanwhile. */
            start_warming(e, cfg, initial_fetch_timeout_ms);
            changed = true; /* the warming gauge moved */
        } else {
            if (e->pending != NULL) {
                entry_config_free(e, e->pending);
                e->pending = NULL;
                evtimer_del(e->warm_timer);
            }
            entry_activate(e, cfg);
            changed = true;
        }
    }
    free(clusters);
    /* Dynamic clusters absent from the set are removed; their in-flight requests finish on the
     * snapshot they started with. */
    size_t out = 0;
    for (size_t i = 0; i < cm->num_entries; i++) {
        cm_entry_t *e = cm->entries[i];
        if (i < old_entries && !e->is_static && !seen[i]) {
            RM_LOG_INFO("cluster %s removed", e->name);
            RM_STAT_INC(cm->stats.cluster_removed);
            entry_free(e);
            changed = true;
            continue;
        }
        cm->entries[out++] = e;
    }
    cm->num_entries = out;
    free(seen);
    if (changed)
        publish(cm);
    check_warm(cm);
}

void rm_cluster_manager_apply_eds(rm_cluster_manager_t *cm, rm_cluster_load_assignment_t *clas, size_t n)
{
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        rm_cluster_load_assignment_t *cla = cla_find(cm, clas[i].cluster_name);
        if (cla != NULL) {
            rm_cluster_load_assignment_free(cla);
            *cla = clas[i];
        } else {
            if (cm->clas.n == cm->clas.cap) {
                cm->clas.cap = cm->clas.cap ? cm->clas.cap * 2 : 16;
                cm->clas.v = rm_realloc(cm->clas.v, cm->clas.cap * sizeof(*cm->clas.v));
            }
            cla = &cm->clas.v[cm->clas.n++];
            *cla = clas[i];
        }
        for (size_t k = 0; k < cm->num_entries; k++) {
            cm_entry_t *e = cm->entries[k];
            if (e->pending != NULL && e->pending->type == RM_CLUSTER_EDS &&
                strcmp(eds_name(e->pending), cla->cluster_name) == 0) {
                warm_done(e);
                changed = true;
                continue;
            }
            if (e->active != NULL && e->cfg->type == RM_CLUSTER_EDS &&
                strcmp(eds_name(e->cfg), cla->cluster_name) == 0) {
                char err[768];
                bool ch = false;
                rm_cluster_t *c = build_cluster(e, e->cfg, cla->endpoints, cla->num_endpoints,
                                                cla->overprovisioning_factor, err, sizeof(err), &ch);
                if (c == NULL) {
                    RM_LOG_ERROR("%s", err);
                    continue;
                }
                set_active(e, c);
                RM_STAT_INC(cm->stats.cluster_updated);
                changed = true;
            }
        }
    }
    free(clas);
    if (changed)
        publish(cm);
    check_warm(cm);
}

bool rm_cluster_manager_warm(const rm_cluster_manager_t *cm)
{
    for (size_t i = 0; i < cm->num_entries; i++)
        if (cm->entries[i]->pending != NULL)
            return false;
    return true;
}

void rm_cluster_manager_on_warm(rm_cluster_manager_t *cm, void (*cb)(void *ctx), void *ctx)
{
    cm->on_warm = cb;
    cm->on_warm_ctx = ctx;
}

rm_cm_stats_t *rm_cluster_manager_stats(rm_cluster_manager_t *cm)
{
    return &cm->stats;
}

rm_cluster_manager_t *rm_cluster_manager_create(struct event_base *base, const rm_bootstrap_config_t *b,
                                                rm_cm_publish_cb publish_cb, void *ctx, char *err,
                                                size_t errlen)
{
    rm_cluster_manager_t *cm = RM_NEW(rm_cluster_manager_t);
    cm->base = base;
    cm->bootstrap = b;
    cm->ctx = ctx;
    for (size_t i = 0; i < b->num_clusters; i++) {
        rm_cluster_config_t *cfg = &b->clusters[i];
        cm_entry_t *e = entry_new(cm, cfg->name, true);
        if (cfg->type == RM_CLUSTER_EDS) {
            /* A static EDS cluster warms like a dynamic one. */
            start_warming(e, cfg, b->dynamic_resources.cds_config.initial_fetch_timeout_ms);
            continue;
        }
        e->cfg = cfg;
        if (cfg->type == RM_CLUSTER_STRICT_DNS)
            dns_init(e);
        rm_cluster_t *c = build_entry(cm, e, cfg, err, errlen);
        if (c == NULL) {
            rm_cluster_manager_destroy(cm);
            return NULL;
        }
        set_active(e, c);
    }
    publish(cm);
    cm->publish = publish_cb;
    return cm;
}

rm_snapshot_t *rm_cluster_manager_snapshot(rm_cluster_manager_t *cm)
{
    return cm->current;
}

void rm_cluster_manager_start(rm_cluster_manager_t *cm)
{
    cm->started = true;
    bool any_dns = false;
    for (size_t i = 0; i < cm->num_entries; i++)
        any_dns |= cm->entries[i]->cfg != NULL && cm->entries[i]->cfg->type == RM_CLUSTER_STRICT_DNS;
    if (!any_dns)
        return;
    cm->dns = evdns_base_new(cm->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (cm->dns == NULL) {
        RM_LOG_ERROR(
            "DNS resolver could not start (no /etc/resolv.conf?): STRICT_DNS clusters will not refresh");
        return;
    }
    for (size_t i = 0; i < cm->num_entries; i++) {
        cm_entry_t *e = cm->entries[i];
        if (e->cfg == NULL || e->cfg->type != RM_CLUSTER_STRICT_DNS)
            continue;
        e->dns_timer = evtimer_new(cm->base, dns_refresh_cb, e);
        dns_arm(e);
    }
}

void rm_cluster_manager_destroy(rm_cluster_manager_t *cm)
{
    if (cm == NULL)
        return;
    for (size_t i = 0; i < cm->num_entries; i++)
        entry_free(cm->entries[i]);
    free(cm->entries);
    for (size_t i = 0; i < cm->clas.n; i++)
        rm_cluster_load_assignment_free(&cm->clas.v[i]);
    free(cm->clas.v);
    if (cm->dns)
        evdns_base_free(cm->dns, 0);
    if (cm->current)
        rm_snapshot_unref(cm->current);
    free(cm);
}
