#include "upstream/cluster_manager.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

typedef struct dns_cluster dns_cluster_t;

typedef struct {
    dns_cluster_t *owner;
    size_t index;                   /* endpoint index in the cluster config */
    struct sockaddr_storage *addrs; /* last good resolution */
    size_t num_addrs;
    struct evdns_getaddrinfo_request *req;
} dns_endpoint_t;

struct dns_cluster {
    rm_cluster_manager_t *cm;
    const rm_cluster_config_t *cfg;
    dns_endpoint_t *eps;
    size_t outstanding;
    bool changed;
    struct event *timer;
};

struct rm_cluster_manager {
    struct event_base *base;
    struct evdns_base *dns;
    const rm_bootstrap_config_t *bootstrap;
    rm_cm_publish_cb publish;
    void *ctx;
    rm_snapshot_t *current;
    uint64_t version;
    dns_cluster_t *dns_clusters;
    size_t num_dns_clusters;
};

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
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            if (memcmp(&a[j], p->ai_addr, p->ai_addrlen) == 0)
                dup = true;
        if (dup)
            continue;
        memcpy(&a[k], p->ai_addr, p->ai_addrlen);
        if (p->ai_family == AF_INET)
            ((struct sockaddr_in *)&a[k])->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)&a[k])->sin6_port = htons((uint16_t)port);
        k++;
    }
    *out = a;
    return k;
}

static socklen_t ss_len(const struct sockaddr_storage *s)
{
    return s->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* Finds a host with this address (and attributes) in the previous cluster to keep its identity. */
static rm_host_t *find_host(const rm_cluster_t *prev, const struct sockaddr_storage *ss, uint32_t weight,
                            uint32_t priority)
{
    if (prev == NULL)
        return NULL;
    for (size_t i = 0; i < prev->num_hosts; i++) {
        rm_host_t *h = prev->hosts[i];
        if (h->addr_len == ss_len(ss) && memcmp(&h->addr, ss, h->addr_len) == 0 && h->weight == weight &&
            h->priority == priority)
            return h;
    }
    return NULL;
}

/* Builds the cluster object of a config. For DNS clusters, `dc` carries resolved addresses. */
static rm_cluster_t *build_cluster(const rm_cluster_config_t *cfg, const rm_cluster_t *prev,
                                   dns_cluster_t *dc, char *err, size_t errlen)
{
    rm_host_t **hosts = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < cfg->num_endpoints; i++) {
        const rm_endpoint_config_t *ep = &cfg->endpoints[i];
        if (dc == NULL) {
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof(ss));
            rm_host_t *tmp_host = NULL;
            const char *why = NULL;
            tmp_host = rm_host_create(ep->address.address, ep->address.port, ep->weight, ep->priority,
                                      ep->health_status, &why);
            if (tmp_host == NULL) {
                snprintf(err, errlen, "cluster %s: endpoint %s: %s", cfg->name, ep->address.address, why);
                for (size_t j = 0; j < n; j++)
                    rm_host_unref(hosts[j]);
                free(hosts);
                return NULL;
            }
            rm_host_t *keep = find_host(prev, &tmp_host->addr, tmp_host->weight, tmp_host->priority);
            if (keep != NULL) {
                rm_host_unref(tmp_host);
                tmp_host = rm_host_ref(keep);
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                hosts = rm_realloc(hosts, cap * sizeof(*hosts));
            }
            hosts[n++] = tmp_host;
            continue;
        }
        dns_endpoint_t *de = &dc->eps[i];
        for (size_t k = 0; k < de->num_addrs; k++) {
            rm_host_t *h = find_host(prev, &de->addrs[k], ep->weight ? ep->weight : 1, ep->priority);
            h = h ? rm_host_ref(h)
                  : rm_host_create_sockaddr((struct sockaddr *)&de->addrs[k], ss_len(&de->addrs[k]),
                                            ep->weight, ep->priority);
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                hosts = rm_realloc(hosts, cap * sizeof(*hosts));
            }
            hosts[n++] = h;
        }
    }
    rm_cluster_shared_t *shared =
        prev ? rm_cluster_shared_ref(prev->shared) : rm_cluster_shared_create(cfg->name);
    rm_cluster_t *c = rm_cluster_create(cfg, shared, hosts, n);
    rm_cluster_shared_unref(shared);
    size_t healthy = 0;
    for (size_t j = 0; j < n; j++) {
        if (rm_host_healthy(hosts[j]))
            healthy++;
        rm_host_unref(hosts[j]);
    }
    atomic_store(&c->shared->stats.membership_healthy, (int64_t)healthy);
    free(hosts);
    return c;
}

static void publish(rm_cluster_manager_t *cm, rm_cluster_t **clusters, size_t n)
{
    rm_snapshot_t *snap = rm_snapshot_create(clusters, n, ++cm->version);
    if (cm->current)
        rm_snapshot_unref(cm->current);
    cm->current = snap;
    if (cm->publish)
        cm->publish(cm->ctx, rm_snapshot_ref(snap));
}

static void dns_rebuild(dns_cluster_t *dc)
{
    rm_cluster_manager_t *cm = dc->cm;
    rm_snapshot_t *cur = cm->current;
    size_t n = cur->num_clusters;
    rm_cluster_t **list = rm_calloc(n ? n : 1, sizeof(*list));
    char err[256];
    for (size_t i = 0; i < cur->num_clusters; i++) {
        rm_cluster_t *c = cur->clusters[i];
        if (strcmp(c->name, dc->cfg->name) == 0) {
            rm_cluster_t *nc = build_cluster(dc->cfg, c, dc, err, sizeof(err));
            list[i] = nc ? nc : rm_cluster_ref(c);
        } else {
            list[i] = rm_cluster_ref(c);
        }
    }
    publish(cm, list, n); /* may free `cur` */
    for (size_t i = 0; i < n; i++)
        rm_cluster_unref(list[i]);
    free(list);
}

static void arm_refresh(dns_cluster_t *dc)
{
    uint64_t ms = dc->cfg->dns_refresh_rate_ms ? dc->cfg->dns_refresh_rate_ms : 5000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(dc->timer, &tv);
}

static void dns_result_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    dns_endpoint_t *de = arg;
    dns_cluster_t *dc = de->owner;
    de->req = NULL;
    if (result == 0) {
        struct sockaddr_storage *a;
        size_t n = addrinfo_collect(res, dc->cfg->endpoints[de->index].address.port, &a);
        n = filter_family(dc->cfg->dns_lookup_family, a, n);
        bool same = n == de->num_addrs && memcmp(a, de->addrs, n * sizeof(*a)) == 0;
        if (!same) {
            free(de->addrs);
            de->addrs = a;
            de->num_addrs = n;
            dc->changed = true;
        } else {
            free(a);
        }
    } else if (result != EVUTIL_EAI_CANCEL) {
        RM_LOG_WARN("cluster %s: resolving %s failed: %s; keeping the previous addresses", dc->cfg->name,
                    dc->cfg->endpoints[de->index].address.address, evutil_gai_strerror(result));
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (result == EVUTIL_EAI_CANCEL)
        return;
    if (--dc->outstanding == 0) {
        if (dc->changed) {
            dc->changed = false;
            RM_LOG_INFO("cluster %s: DNS membership changed", dc->cfg->name);
            dns_rebuild(dc);
        }
        arm_refresh(dc);
    }
}

static void dns_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dns_cluster_t *dc = arg;
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family_for(dc->cfg->dns_lookup_family);
    hints.ai_socktype = SOCK_STREAM;
    dc->outstanding = dc->cfg->num_endpoints;
    for (size_t i = 0; i < dc->cfg->num_endpoints; i++) {
        dns_endpoint_t *de = &dc->eps[i];
        de->req = evdns_getaddrinfo(dc->cm->dns, dc->cfg->endpoints[i].address.address, NULL, &hints,
                                    dns_result_cb, de);
    }
}

static int resolve_initial(dns_cluster_t *dc, char *err, size_t errlen)
{
    for (size_t i = 0; i < dc->cfg->num_endpoints; i++) {
        const rm_endpoint_config_t *ep = &dc->cfg->endpoints[i];
        struct evutil_addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = family_for(dc->cfg->dns_lookup_family);
        hints.ai_socktype = SOCK_STREAM;
        int rc = evutil_getaddrinfo(ep->address.address, NULL, &hints, &res);
        if (rc != 0) {
            /* Envoy keeps a STRICT_DNS cluster empty until resolution works; so do we. */
            RM_LOG_WARN("cluster %s: resolving %s failed: %s", dc->cfg->name, ep->address.address,
                        evutil_gai_strerror(rc));
            continue;
        }
        dns_endpoint_t *de = &dc->eps[i];
        de->num_addrs = addrinfo_collect(res, ep->address.port, &de->addrs);
        de->num_addrs = filter_family(dc->cfg->dns_lookup_family, de->addrs, de->num_addrs);
        evutil_freeaddrinfo(res);
    }
    (void)err;
    (void)errlen;
    return 0;
}

rm_cluster_manager_t *rm_cluster_manager_create(struct event_base *base, const rm_bootstrap_config_t *b,
                                                rm_cm_publish_cb publish_cb, void *ctx, char *err,
                                                size_t errlen)
{
    rm_cluster_manager_t *cm = RM_NEW(rm_cluster_manager_t);
    cm->base = base;
    cm->bootstrap = b;
    cm->publish = publish_cb;
    cm->ctx = ctx;
    size_t n = b->num_clusters;
    rm_cluster_t **list = rm_calloc(n ? n : 1, sizeof(*list));
    cm->dns_clusters = rm_calloc(n ? n : 1, sizeof(dns_cluster_t));
    for (size_t i = 0; i < n; i++) {
        const rm_cluster_config_t *cfg = &b->clusters[i];
        dns_cluster_t *dc = NULL;
        if (cfg->type == RM_CLUSTER_STRICT_DNS) {
            dc = &cm->dns_clusters[cm->num_dns_clusters++];
            dc->cm = cm;
            dc->cfg = cfg;
            dc->eps = rm_calloc(cfg->num_endpoints ? cfg->num_endpoints : 1, sizeof(dns_endpoint_t));
            for (size_t k = 0; k < cfg->num_endpoints; k++) {
                dc->eps[k].owner = dc;
                dc->eps[k].index = k;
            }
            resolve_initial(dc, err, errlen);
        }
        list[i] = build_cluster(cfg, NULL, dc, err, errlen);
        if (list[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                rm_cluster_unref(list[j]);
            free(list);
            cm->publish = NULL;
            rm_cluster_manager_destroy(cm);
            return NULL;
        }
    }
    cm->publish = NULL; /* the initial snapshot is handed out by rm_cluster_manager_snapshot */
    publish(cm, list, n);
    cm->publish = publish_cb;
    for (size_t i = 0; i < n; i++)
        rm_cluster_unref(list[i]);
    free(list);
    return cm;
}

rm_snapshot_t *rm_cluster_manager_snapshot(rm_cluster_manager_t *cm)
{
    return cm->current;
}

void rm_cluster_manager_start(rm_cluster_manager_t *cm)
{
    if (cm->num_dns_clusters == 0)
        return;
    cm->dns = evdns_base_new(cm->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (cm->dns == NULL) {
        RM_LOG_ERROR(
            "DNS resolver could not start (no /etc/resolv.conf?): STRICT_DNS clusters will not refresh");
        return;
    }
    for (size_t i = 0; i < cm->num_dns_clusters; i++) {
        dns_cluster_t *dc = &cm->dns_clusters[i];
        dc->timer = evtimer_new(cm->base, dns_refresh_cb, dc);
        arm_refresh(dc);
    }
}

void rm_cluster_manager_destroy(rm_cluster_manager_t *cm)
{
    if (cm == NULL)
        return;
    for (size_t i = 0; i < cm->num_dns_clusters; i++) {
        dns_cluster_t *dc = &cm->dns_clusters[i];
        for (size_t k = 0; k < dc->cfg->num_endpoints; k++) {
            if (dc->eps[k].req)
                evdns_getaddrinfo_cancel(dc->eps[k].req);
            free(dc->eps[k].addrs);
        }
        free(dc->eps);
        if (dc->timer)
            event_free(dc->timer);
    }
    free(cm->dns_clusters);
    if (cm->dns)
        evdns_base_free(cm->dns, 0);
    if (cm->current)
        rm_snapshot_unref(cm->current);
    free(cm);
}
