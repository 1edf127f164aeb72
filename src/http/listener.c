#include "http/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/net.h"

static int make_socket(const struct sockaddr *sa, socklen_t len, char *err, size_t errlen)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, len) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "bind/listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

rm_listener_t *rm_listener_create(const rm_listener_config_t *cfg, int num_workers, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (rm_sockaddr_from_ip(cfg->address.address, cfg->address.port, &ss, &len) != 0) {
        snprintf(err, errlen, "listener %s: address %s is not an IP address", cfg->name,
                 cfg->address.address);
        return NULL;
    }

    rm_listener_t *l = RM_NEW(rm_listener_t);
    l->cfg = cfg;
    l->num_workers = num_workers;
    l->fds = rm_calloc((size_t)num_workers, sizeof(int));
    for (int i = 0; i < num_workers; i++)
        l->fds[i] = -1;
    l->listeners = rm_calloc((size_t)num_workers, sizeof(struct evconnlistener *));
    char sub[512];
    for (int i = 0; i < num_workers; i++) {
        l->fds[i] = make_socket((struct sockaddr *)&ss, len, sub, sizeof(sub));
        if (l->fds[i] < 0) {
            snprintf(err, errlen, "listener %s on %s:%u: %s", cfg->name, cfg->address.address,
                     cfg->address.port, sub);
            rm_listener_destroy(l);
            return NULL;
        }
        if (i == 0) {
            /* Resolve port 0 so the other workers' sockets join the same port. */
            getsockname(l->fds[0], (struct sockaddr *)&ss, &len);
        }
    }
    rm_sockaddr_str((struct sockaddr *)&ss, l->bound_str, sizeof(l->bound_str));
    snprintf(l->stat_addr, sizeof(l->stat_addr), "%s", l->bound_str);
    for (char *p = l->stat_addr; *p; p++)
        if (*p == ':')
            *p = '_';
    if (cfg->tls.enabled) {
        l->tls = rm_tls_server_ctx_create(&cfg->tls, sub, sizeof(sub));
        if (l->tls == NULL) {
            snprintf(err, errlen, "listener %s: filter_chains[0].transport_socket: %s", cfg->name, sub);
            rm_listener_destroy(l);
            return NULL;
        }
    }

    l->router = rm_router_create(&cfg->hcm.route_config);
    rm_h1_limits_default(&l->limits);
    if (cfg->hcm.max_request_headers_kb)
        l->limits.max_header_bytes = (size_t)cfg->hcm.max_request_headers_kb * 1024;
    if (cfg->hcm.max_headers_count)
        l->limits.max_headers = cfg->hcm.max_headers_count;
    if (cfg->hcm.max_request_line_bytes)
        l->limits.max_request_line = cfg->hcm.max_request_line_bytes;
    if (rm_access_log_open(&l->access_log, cfg->hcm.access_logs, cfg->hcm.num_access_logs, err, errlen) !=
        0) {
        rm_listener_destroy(l);
        return NULL;
    }
    return l;
}

void rm_listener_destroy(rm_listener_t *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < l->num_workers; i++)
        if (l->fds[i] >= 0 && l->listeners[i] == NULL)
            close(l->fds[i]);
    free(l->fds);
    free(l->listeners);
    if (l->router)
        rm_router_destroy(l->router);
    rm_access_log_close(&l->access_log);
    rm_tls_ctx_unref(l->tls);
    free(l);
}
