/* Destructors and copies for the plain-C configuration model (config.h). Every function here
 * tolerates partially filled structs (NULL arrays, zero counts), because the bootstrap loader frees
 * whatever it has built so far when it rejects a file half-way. */
#include "config/config.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

static void socket_address_free(rm_socket_address_config_t *a)
{
    free(a->address);
    a->address = NULL;
}

void rm_http2_options_default(rm_http2_options_t *o)
{
    o->max_concurrent_streams = 100;
    o->initial_stream_window_size = 1u << 20;
    o->initial_connection_window_size = 16u << 20;
    o->hpack_table_size = 4096;
    o->max_outbound_control_frames = 1000;
    o->max_consecutive_inbound_frames_with_empty_payload = 1;
}

void rm_cluster_config_free(rm_cluster_config_t *c)
{
    if (c == NULL)
        return;
    free(c->name);
    for (size_t i = 0; i < c->num_endpoints; i++)
        socket_address_free(&c->endpoints[i].address);
    free(c->endpoints);
    free(c->eds_service_name);
    memset(c, 0, sizeof(*c));
}

void rm_cluster_load_assignment_free(rm_cluster_load_assignment_t *cla)
{
    if (cla == NULL)
        return;
    free(cla->cluster_name);
    for (size_t i = 0; i < cla->num_endpoints; i++)
        socket_address_free(&cla->endpoints[i].address);
    free(cla->endpoints);
    memset(cla, 0, sizeof(*cla));
}

static void route_free(rm_route_config_t *r)
{
    free(r->match_value);
    free(r->cluster);
}

static void virtual_host_free(rm_virtual_host_config_t *vh)
{
    free(vh->name);
    for (size_t i = 0; i < vh->num_domains; i++)
        free(vh->domains[i]);
    free(vh->domains);
    for (size_t i = 0; i < vh->num_routes; i++)
        route_free(&vh->routes[i]);
    free(vh->routes);
}

void rm_route_table_config_free(rm_route_table_config_t *t)
{
    if (t == NULL)
        return;
    free(t->name);
    for (size_t i = 0; i < t->num_virtual_hosts; i++)
        virtual_host_free(&t->virtual_hosts[i]);
    free(t->virtual_hosts);
    memset(t, 0, sizeof(*t));
}

void rm_route_table_config_copy(rm_route_table_config_t *dst, const rm_route_table_config_t *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->name = rm_strdup(src->name);
    if (src->num_virtual_hosts == 0)
        return;
    dst->virtual_hosts = rm_calloc(src->num_virtual_hosts, sizeof(*dst->virtual_hosts));
    dst->num_virtual_hosts = src->num_virtual_hosts;
    for (size_t i = 0; i < src->num_virtual_hosts; i++) {
        const rm_virtual_host_config_t *s = &src->virtual_hosts[i];
        rm_virtual_host_config_t *d = &dst->virtual_hosts[i];
        d->name = rm_strdup(s->name);
        if (s->num_domains > 0) {
            d->domains = rm_calloc(s->num_domains, sizeof(*d->domains));
            d->num_domains = s->num_domains;
            for (size_t j = 0; j < s->num_domains; j++)
                d->domains[j] = rm_strdup(s->domains[j]);
        }
        if (s->num_routes > 0) {
            d->routes = rm_calloc(s->num_routes, sizeof(*d->routes));
            d->num_routes = s->num_routes;
            for (size_t j = 0; j < s->num_routes; j++) {
                d->routes[j] = s->routes[j];
                d->routes[j].match_value = rm_strdup(s->routes[j].match_value);
                d->routes[j].cluster = rm_strdup(s->routes[j].cluster);
            }
        }
    }
}

static void hcm_free(rm_http_connection_manager_config_t *h)
{
    free(h->stat_prefix);
    rm_route_table_config_free(&h->route_config);
    for (size_t i = 0; i < h->num_access_logs; i++)
        free(h->access_logs[i].path);
    free(h->access_logs);
}

void rm_listener_config_free(rm_listener_config_t *l)
{
    if (l == NULL)
        return;
    free(l->name);
    socket_address_free(&l->address);
    hcm_free(&l->hcm);
    memset(l, 0, sizeof(*l));
}

void rm_bootstrap_config_free(rm_bootstrap_config_t *b)
{
    if (b == NULL)
        return;
    free(b->node.id);
    free(b->node.cluster);
    socket_address_free(&b->admin.address);
    free(b->admin.access_log_path);
    free(b->dynamic_resources.ads_config.grpc_cluster);
    free(b->dynamic_resources.cds_config.grpc_cluster);
    for (size_t i = 0; i < b->num_listeners; i++)
        rm_listener_config_free(&b->listeners[i]);
    free(b->listeners);
    for (size_t i = 0; i < b->num_clusters; i++)
        rm_cluster_config_free(&b->clusters[i]);
    free(b->clusters);
    free(b);
}
