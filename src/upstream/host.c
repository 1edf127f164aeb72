#include "upstream/host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/net.h"

static rm_host_t *host_new(uint32_t weight, uint32_t priority)
{
    rm_host_t *h = RM_NEW(rm_host_t);
    atomic_init(&h->refcnt, 1);
    atomic_init(&h->weight, weight ? weight : 1);
    atomic_init(&h->priority, priority);
    atomic_init(&h->health_flags, 0);
    h->outlier.sr_ext = -1;
    h->outlier.sr_local = -1;
    return h;
}

rm_host_t *rm_host_create(const char *ip, uint32_t port, uint32_t weight, uint32_t priority,
                          rm_health_status_t eds_status, const char **err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (rm_sockaddr_from_ip(ip, port, &ss, &len) != 0) {
        if (err)
            *err = "not an IP address";
        return NULL;
    }
    rm_host_t *h = rm_host_create_sockaddr((struct sockaddr *)&ss, len, weight, priority);
    atomic_store(&h->health_flags, rm_host_flags_from_eds(eds_status));
    return h;
}

rm_host_t *rm_host_create_sockaddr(const struct sockaddr *sa, socklen_t len, uint32_t weight,
                                   uint32_t priority)
{
    rm_host_t *h = host_new(weight, priority);
    memcpy(&h->addr, sa, len);
    h->addr_len = len;
    char buf[INET6_ADDRSTRLEN + 16];
    rm_sockaddr_str(sa, buf, sizeof(buf));
    h->address_str = rm_strdup(buf);
    return h;
}

rm_host_t *rm_host_ref(rm_host_t *h)
{
    atomic_fetch_add_explicit(&h->refcnt, 1, memory_order_relaxed);
    return h;
}

void rm_host_unref(rm_host_t *h)
{
    if (h == NULL)
        return;
    if (atomic_fetch_sub_explicit(&h->refcnt, 1, memory_order_acq_rel) == 1) {
        free(h->address_str);
        free(h);
    }
}

uint32_t rm_host_flags_from_eds(rm_health_status_t s)
{
    switch (s) {
    case RM_HEALTH_STATUS_UNHEALTHY:
    case RM_HEALTH_STATUS_TIMEOUT:
        return RM_HOST_FAILED_EDS_HEALTH;
    case RM_HEALTH_STATUS_DRAINING:
        return RM_HOST_EDS_STATUS_DRAINING;
    case RM_HEALTH_STATUS_DEGRADED:
        return RM_HOST_DEGRADED_EDS_HEALTH;
    default:
        return 0;
    }
}

void rm_host_health_flags_str(uint32_t flags, char *buf, size_t len)
{
    if (flags == 0) {
        snprintf(buf, len, "healthy");
        return;
    }
    size_t off = 0;
    buf[0] = '\0';
#define RM_HOST_FLAG_STR(e, bit, word, fail)                                                                 \
    if ((flags & (bit)) && off < len)                                                                        \
        off += (size_t)snprintf(buf + off, len - off, "%s", word);
    RM_HOST_HEALTH_FLAGS(RM_HOST_FLAG_STR)
#undef RM_HOST_FLAG_STR
}
