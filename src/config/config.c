/* Destructors and copies for the plain-C configuration model (config.h). Every function here
 * tolerates partially filled structs (NULL arrays, zero counts), because the bootstrap loader frees
 * whatever it has built so far when it rejects a file half-way. */
#include "config/config.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

void rm_circuit_breaker_thresholds_default(rm_circuit_breaker_thresholds_t *t)
{
    t->max_connections = 1024;
    t->max_pending_requests = 1024;
    t->max_requests = 1024;
    t->max_retries = 3;
}

static void socket_address_free(rm_socket_address_config_t *a)
{
    free(a->address);
    a->address = NULL;
}

static void data_source_free(rm_data_source_t *d)
{
    free(d->filename);
    free(d->inline_string);
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void rm_tls_config_free(rm_tls_config_t *t)
{
    if (t == NULL)
        return;
    data_source_free(&t->certificate_chain);
    data_source_free(&t->private_key);
    data_source_free(&t->trusted_ca);
    strv_free(t->verify_san_dns, t->num_verify_san_dns);
    strv_free(t->alpn_protocols, t->num_alpn_protocols);
    free(t->sni);
    memset(t, 0, sizeof(*t));
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool data_source_eq(const rm_data_source_t *a, const rm_data_source_t *b)
{
    return str_eq(a->filename, b->filename) && str_eq(a->inline_string, b->inline_string);
}

static bool strv_eq(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return false;
    return true;
}

bool rm_tls_config_equal(const rm_tls_config_t *a, const rm_tls_config_t *b)
{
    return a->enabled == b->enabled && a->has_certificate == b->has_certificate &&
           data_source_eq(&a->certificate_chain, &b->certificate_chain) &&
           data_source_eq(&a->private_key, &b->private_key) && a->has_trusted_ca == b->has_trusted_ca &&
           data_source_eq(&a->trusted_ca, &b->trusted_ca) &&
           strv_eq(a->verify_san_dns, a->num_verify_san_dns, b->verify_san_dns, b->num_verify_san_dns) &&
           strv_eq(a->alpn_protocols, a->num_alpn_protocols, b->alpn_protocols, b->num_alpn_protocols) &&
           a->min_protocol == b->min_protocol && a->max_protocol == b->max_protocol &&
           a->require_client_certificate == b->require_client_certificate && str_eq(a->sni, b->sni);
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
    rm_tls_config_free(&c->tls);
    free(c->name);
    for (size_t i = 0; i < c->num_endpoints; i++) {
        socket_address_free(&c->endpoints[i].address);
        free(c->endpoints[i].hc_address);
    }
    free(c->endpoints);
    free(c->eds_service_name);
    for (size_t i = 0; i < c->num_health_checks; i++)
        rm_health_check_config_free(&c->health_checks[i]);
    free(c->health_checks);
    memset(c, 0, sizeof(*c));
}

void rm_health_check_config_free(rm_health_check_config_t *hc)
{
    if (hc == NULL)
        return;
    free(hc->host);
    free(hc->path);
    free(hc->method);
    for (size_t i = 0; i < hc->num_headers; i++) {
        free(hc->headers[i].key);
        free(hc->headers[i].value);
    }
    free(hc->headers);
    free(hc->expected_statuses);
    free(hc->send.data);
    for (size_t i = 0; i < hc->num_receive; i++)
        free(hc->receive[i].data);
    free(hc->receive);
    memset(hc, 0, sizeof(*hc));
}

void rm_outlier_detection_config_defaults(rm_outlier_detection_config_t *od)
{
    memset(od, 0, sizeof(*od));
    od->enabled = true;
    od->consecutive_5xx = 5;
    od->consecutive_gateway_failure = 5;
    od->consecutive_local_origin_failure = 5;
    od->interval_ms = 10000;
    od->base_ejection_time_ms = 30000;
    od->max_ejection_time_ms = 300000;
    od->max_ejection_percent = 10;
    od->enforcing_consecutive_5xx = 100;
    od->enforcing_consecutive_local_origin_failure = 100;
    od->enforcing_success_rate = 100;
    od->enforcing_local_origin_success_rate = 100;
    od->success_rate_minimum_hosts = 5;
    od->success_rate_request_volume = 100;
    od->success_rate_stdev_factor = 1900;
    od->failure_percentage_threshold = 85;
    od->failure_percentage_minimum_hosts = 5;
    od->failure_percentage_request_volume = 50;
    od->successful_active_health_check_uneject_host = true;
}

void rm_cluster_load_assignment_free(rm_cluster_load_assignment_t *cla)
{
    if (cla == NULL)
        return;
    free(cla->cluster_name);
    for (size_t i = 0; i < cla->num_endpoints; i++) {
        socket_address_free(&cla->endpoints[i].address);
        free(cla->endpoints[i].hc_address);
    }
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
    rm_tls_config_free(&l->tls);
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

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rm_config_hex_decode(const char *hex, size_t len, unsigned char **out, size_t *out_len, const char **err)
{
    if (len == 0) {
        *err = "empty payload";
        return -1;
    }
    if (len % 2 != 0) {
        *err = "odd number of hex digits";
        return -1;
    }
    unsigned char *buf = rm_malloc(len / 2 + 1);
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            free(buf);
            *err = "not a hex digit";
            return -1;
        }
        buf[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    buf[len / 2] = 0;
    *out = buf;
    *out_len = len / 2;
    return 0;
}
