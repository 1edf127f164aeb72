/* xDS resources -> config structs. The rules mirror the bootstrap loader's (config/bootstrap.c) so
 * that a cluster is accepted from a control plane exactly when the same cluster would be accepted
 * in a bootstrap, with Envoy's defaults and bounds (api/envoy/config/cluster/v3/cluster.proto,
 * endpoint/v3/endpoint*.proto). */
#include "xds/xds_convert.h"
#include "core/net.h"

#include "core/mem.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "remora/config/v1/fail_fast.pb-c.h"
#include "remora_proto/xds.h"
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig EdsClusterConfig;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Envoy__Config__Endpoint__V3__LocalityLbEndpoints LocalityLbEndpoints;
typedef Envoy__Config__Endpoint__V3__LbEndpoint LbEndpoint;
typedef Envoy__Config__Endpoint__V3__Endpoint Endpoint;
typedef Envoy__Config__Core__V3__SocketAddress SocketAddress;
typedef Envoy__Config__Core__V3__ConfigSource ConfigSource;
typedef Envoy__Config__Core__V3__ApiConfigSource ApiConfigSource;
typedef Envoy__Config__Core__V3__GrpcService GrpcService;
typedef Google__Protobuf__Duration Duration;
typedef Envoy__Config__Cluster__V3__Cluster__SlowStartConfig SlowStartConfig;
typedef Envoy__Config__Cluster__V3__Cluster__CommonLbConfig CommonLbConfig;
typedef Envoy__Type__V3__Percent Percent;
typedef Envoy__Config__Core__V3__Http2ProtocolOptions Http2Options;
typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions UpstreamHttpOptions;
typedef Envoy__Config__Cluster__V3__OutlierDetection OutlierDetection;
typedef Envoy__Config__Core__V3__HealthCheck HealthCheck;
typedef Envoy__Config__Core__V3__HealthCheck__Payload Payload;
typedef Envoy__Config__Core__V3__HealthCheck__HttpHealthCheck HttpHealthCheck;
typedef Envoy__Config__Core__V3__HealthCheck__TcpHealthCheck TcpHealthCheck;

#define MAX_PRIORITY          128u
#define MAX_DURATION_SECONDS  315576000000ll
#define DEFAULT_CONNECT_MS    5000u
#define DEFAULT_DNS_REFRESH   5000u
#define DEFAULT_OVERPROVISION 140u
#define DEFAULT_BUFFER_LIMIT  (1u << 20)

/* ---- messages ---- */

const char *rm_xds_printable(const char *s, char *buf, size_t buflen)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0, i = 0;
    if (buflen == 0)
        return buf;
    for (; s != NULL && s[i] != '\0' && k + 8 < buflen && i < 128; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            buf[k++] = (char)c;
        } else {
            buf[k++] = '\\';
            buf[k++] = 'x';
            buf[k++] = hex[c >> 4];
            buf[k++] = hex[c & 15];
        }
    }
    if (s != NULL && s[i] != '\0' && k + 4 <= buflen) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

/* The conversion context: which resource, where in it, and the caller's error buffer. */
typedef struct {
    const char *kind; /* "cluster", "cluster_load_assignment" */
    const char *name;
    char path[256];
    size_t len;
    char *err;
    size_t errlen;
} cv_t;

static size_t cv_push(cv_t *c, const char *key)
{
    size_t mark = c->len;
    int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "", key);
    if (n > 0)
        c->len = c->len + (size_t)n < sizeof(c->path) ? c->len + (size_t)n : sizeof(c->path) - 1;
    return mark;
}

static size_t cv_push_index(cv_t *c, size_t i)
{
    size_t mark = c->len;
    int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);
    if (n > 0)
        c->len = c->len + (size_t)n < sizeof(c->path) ? c->len + (size_t)n : sizeof(c->path) - 1;
    return mark;
}

static void cv_pop(cv_t *c, size_t mark)
{
    c->len = mark;
    c->path[mark] = '\0';
}

static int cv_fail(cv_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cv_fail(cv_t *c, const char *fmt, ...)
{
    char msg[384], name[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->errlen == 0)
        return -1;
    if (c->name == NULL || c->name[0] == '\0')
        snprintf(name, sizeof(name), "%s (unnamed)", c->kind);
    else {
        char buf[280];
        snprintf(name, sizeof(name), "%s '%s'", c->kind, rm_xds_printable(c->name, buf, sizeof(buf)));
    }
    if (c->len > 0)
        snprintf(c->err, c->errlen, "%s: %s: %s", name, c->path, msg);
    else
        snprintf(c->err, c->errlen, "%s: %s", name, msg);
    return -1;
}

/* Fails naming a field of the message at the current path. */
static int cv_fail_at(cv_t *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int cv_fail_at(cv_t *c, const char *key, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cv_push(c, key);
    return cv_fail(c, "%s", msg);
}

/* ---- fields the trimmed protos do not know ---- */

typedef struct {
    uint32_t number;
    const char *name;
} field_name_t;

/* Envoy's Cluster fields that the trimmed cluster.proto leaves out, so that an error can name them. */
static const field_name_t cluster_field_names[] = {
    {9, "max_requests_per_connection"},
    {13, "http_protocol_options"},
    {18, "dns_resolvers"},
    {20, "cleanup_interval"},
    {21, "upstream_bind_config"},
    {22, "lb_subset_config"},
    {23, "ring_hash_lb_config"},
    {25, "metadata"},
    {26, "protocol_selection"},
    {28, "alt_stat_name"},
    {29, "common_http_protocol_options"},
    {30, "upstream_connection_options"},
    {31, "close_connections_on_host_health_failure"},
    {34, "original_dst_lb_config"},
    {38, "cluster_type"},
    {39, "respect_dns_ttl"},
    {40, "filters"},
    {41, "load_balancing_policy"},
    {42, "lrs_server"},
    {43, "transport_socket_matches"},
    {44, "dns_failure_refresh_rate"},
    {45, "use_tcp_for_dns_lookups"},
    {46, "upstream_http_protocol_options"},
    {47, "track_timeout_budgets"},
    {48, "upstream_config"},
    {49, "track_cluster_stats"},
    {50, "preconnect_policy"},
    {51, "connection_pool_per_downstream_connection"},
    {52, "maglev_lb_config"},
    {53, "dns_resolver_options"},
    {54, "wait_for_warm_on_init"},
    {55, "typed_dns_resolver_config"},
    {0, NULL},
};

static const field_name_t health_check_field_names[] = {
    {6, "alt_port"},
    {11, "grpc_health_check"},
    {13, "custom_health_check"},
    {17, "event_log_path"},
    {21, "tls_options"},
    {22, "event_service"},
    {23, "transport_socket_match_criteria"},
    {25, "event_logger"},
    {26, "always_log_health_check_success"},
    {0, NULL},
};

static const field_name_t http_health_check_field_names[] = {
    {11, "service_name_matcher"},
    {12, "retriable_statuses"},
    {14, "response_buffer_size"},
    {0, NULL},
};

static const field_name_t tcp_health_check_field_names[] = {
    {3, "proxy_protocol_config"},
    {0, NULL},
};

static const field_name_t hc_config_field_names[] = {
    {4, "disable_active_health_check"},
    {0, NULL},
};

static const field_name_t cla_field_names[] = {
    {5, "named_endpoints"},
    {0, NULL},
};

/* Rejects the first unknown field of m itself. */
static int check_unknown_here(cv_t *c, const ProtobufCMessage *m, const field_name_t *names)
{
    if (m->n_unknown_fields == 0)
        return 0;
    uint32_t tag = m->unknown_fields[0].tag;
    for (const field_name_t *f = names; f != NULL && f->name != NULL; f++)
        if (f->number == tag)
            return cv_fail(c, "field %u (%s) is not supported yet", tag, f->name);
    return cv_fail(c, "field %u is not known to Remora (not supported)", tag);
}

/* Rejects the first unknown field anywhere in m, naming the path to it. Oneof members are looked at
 * only when they are the member set (the others share its storage). */
static int check_unknown_deep(cv_t *c, const ProtobufCMessage *m)
{
    if (check_unknown_here(c, m, NULL) != 0)
        return -1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++) {
                size_t mark = cv_push(c, f->name);
                cv_push_index(c, j);
                if (items[j] != NULL && check_unknown_deep(c, items[j]) != 0)
                    return -1;
                cv_pop(c, mark);
            }
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
            if (sub == NULL)
                continue;
            size_t mark = cv_push(c, f->name);
            if (check_unknown_deep(c, sub) != 0)
                return -1;
            cv_pop(c, mark);
        }
    }
    return 0;
}

/* ---- scalars ---- */

static int check_name(cv_t *c, const char *key, const char *s, bool required)
{
    if (s == NULL || s[0] == '\0') {
        if (required)
            return cv_fail_at(c, key, "must not be empty");
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return cv_fail_at(c, key, "must not contain control characters");
    return 0;
}

/* A Duration in milliseconds, a sub-millisecond remainder rounded up (as the bootstrap does). */
static int duration_ms(cv_t *c, const char *key, const Duration *d, uint64_t *ms)
{
    if (d->seconds < 0 || d->nanos < 0)
        return cv_fail_at(c, key, "must not be negative");
    if (d->seconds > MAX_DURATION_SECONDS || d->nanos > 999999999)
        return cv_fail_at(c, key, "out of range");
    *ms = (uint64_t)d->seconds * 1000u + (uint64_t)d->nanos / 1000000u + ((uint64_t)d->nanos % 1000000u != 0);
    return 0;
}

/* ---- ClusterLoadAssignment ---- */

typedef enum {
    ADDR_IP,   /* STATIC and EDS: IP literals */
    ADDR_HOST, /* STRICT_DNS: names (or IP literals) */
} addr_rule_t;

static int convert_socket_address(cv_t *c, const SocketAddress *sa, addr_rule_t rule,
                                  rm_socket_address_config_t *out)
{
    if (sa->protocol != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__TCP) {
        if (sa->protocol == ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__UDP)
            return cv_fail_at(c, "protocol", "UDP is not supported yet (supported: TCP)");
        return cv_fail_at(c, "protocol", "unknown value %d", (int)sa->protocol);
    }
    if (sa->ipv4_compat)
        return cv_fail_at(c, "ipv4_compat", "not supported yet");
    char buf[280];
    const char *a = sa->address;
    if (a == NULL || a[0] == '\0')
        return cv_fail_at(c, "address", "must not be empty");
    if (rule == ADDR_IP && !rm_is_ip_literal(a))
        return cv_fail_at(c, "address", "expected an IP address, got '%s'%s",
                          rm_xds_printable(a, buf, sizeof(buf)),
                          strcmp(c->kind, "cluster") == 0 ? " (use STRICT_DNS for names)" : "");
    if (rule == ADDR_HOST && !rm_is_ip_literal(a) && !rm_is_hostname(a))
        return cv_fail_at(c, "address", "invalid host name '%s'", rm_xds_printable(a, buf, sizeof(buf)));
    uint32_t port =
        sa->port_specifier_case == ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE
            ? sa->port_value
            : 0;
    if (port == 0 || port > 65535)
        return cv_fail_at(c, "port_value", "must be 1..65535 (an upstream endpoint needs a port), got %u",
                          port);
    out->address = rm_strdup(a);
    out->port = port;
    return 0;
}

static int convert_lb_endpoint(cv_t *c, const LbEndpoint *lbe, addr_rule_t rule, rm_endpoint_config_t *out)
{
    out->weight = 1;
    if (lbe->host_identifier_case != ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
        lbe->endpoint == NULL)
        return cv_fail_at(c, "endpoint", "required field is missing");
    if ((unsigned)lbe->health_status > RM_HEALTH_STATUS_DEGRADED)
        return cv_fail_at(c, "health_status", "unknown value %d", (int)lbe->health_status);
    out->health_status = (rm_health_status_t)lbe->health_status;
    if (lbe->load_balancing_weight != NULL) {
        if (lbe->load_balancing_weight->value == 0)
            return cv_fail_at(c, "load_balancing_weight", "must be >= 1");
        out->weight = lbe->load_balancing_weight->value;
    }
    const Endpoint *ep = lbe->endpoint;
    size_t mark = cv_push(c, "endpoint");
    if (ep->health_check_config != NULL) {
        const Envoy__Config__Endpoint__V3__Endpoint__HealthCheckConfig *hcc = ep->health_check_config;
        size_t m2 = cv_push(c, "health_check_config");
        if (check_unknown_here(c, &hcc->base, hc_config_field_names) != 0)
            return -1;
        if (hcc->hostname != NULL && hcc->hostname[0] != '\0')
            return cv_fail_at(c, "hostname", "not supported yet");
        if (hcc->port_value > 65535)
            return cv_fail_at(c, "port_value", "must be <= 65535");
        out->hc_port = hcc->port_value;
        if (hcc->address != NULL) {
            if (hcc->address->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS ||
                hcc->address->socket_address == NULL)
                return cv_fail_at(c, "address", "a socket_address is required");
            rm_socket_address_config_t a = {0};
            cv_push(c, "address");
            cv_push(c, "socket_address");
            if (convert_socket_address(c, hcc->address->socket_address, ADDR_IP, &a) != 0) {
                free(a.address);
                return -1;
            }
            cv_pop(c, m2);
            cv_push(c, "health_check_config");
            out->hc_address = a.address;
            if (out->hc_port == 0)
                out->hc_port = a.port;
            if (out->hc_port == 0)
                return cv_fail_at(c, "port_value", "a health check address needs a port");
        }
        cv_pop(c, m2);
    }
    if (ep->hostname != NULL && ep->hostname[0] != '\0')
        return cv_fail_at(c, "hostname", "not supported yet");
    if (ep->address == NULL ||
        ep->address->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS ||
        ep->address->socket_address == NULL)
        return cv_fail_at(c, "address", "required field is missing (a socket_address)");
    cv_push(c, "address");
    cv_push(c, "socket_address");
    if (convert_socket_address(c, ep->address->socket_address, rule, &out->address) != 0)
        return -1;
    cv_pop(c, mark);
    return 0;
}

/* Flattens the localities of a CLA into one endpoint list (each endpoint carrying its priority), as
 * the bootstrap loader does. *eps and *n always cover every endpoint started, for the caller's free. */
static int convert_assignment(cv_t *c, const Cla *pb, addr_rule_t rule, rm_endpoint_config_t **eps, size_t *n,
                              uint32_t *overprovisioning_factor)
{
    if (check_name(c, "cluster_name", pb->cluster_name, true) != 0)
        return -1;
    *overprovisioning_factor = DEFAULT_OVERPROVISION;
    if (pb->policy != NULL && pb->policy->overprovisioning_factor != NULL) {
        if (pb->policy->overprovisioning_factor->value == 0) {
            cv_push(c, "policy");
            return cv_fail_at(c, "overprovisioning_factor", "must be >= 1");
        }
        *overprovisioning_factor = pb->policy->overprovisioning_factor->value;
    }
    size_t total = 0;
    for (size_t i = 0; i < pb->n_endpoints; i++)
        total += pb->endpoints[i]->n_lb_endpoints;
    if (total > 0)
        *eps = rm_calloc(total, sizeof(**eps));
    uint64_t seen[3] = {0, 0, 0};
    for (size_t i = 0; i < pb->n_endpoints; i++) {
        const LocalityLbEndpoints *loc = pb->endpoints[i];
        size_t mark = cv_push(c, "endpoints");
        cv_push_index(c, i);
        if (loc->locality != NULL)
            return cv_fail_at(c, "locality", "not supported yet");
        if (loc->load_balancing_weight != NULL)
            return cv_fail_at(c, "load_balancing_weight", "not supported yet");
        if (loc->priority > MAX_PRIORITY)
            return cv_fail_at(c, "priority", "%u is out of range (0..%u)", loc->priority, MAX_PRIORITY);
        seen[loc->priority / 64] |= 1ull << (loc->priority % 64);
        for (size_t j = 0; j < loc->n_lb_endpoints; j++) {
            size_t mark2 = cv_push(c, "lb_endpoints");
            cv_push_index(c, j);
            rm_endpoint_config_t *ep = &(*eps)[(*n)++];
            ep->priority = loc->priority;
            if (convert_lb_endpoint(c, loc->lb_endpoints[j], rule, ep) != 0)
                return -1;
            cv_pop(c, mark2);
        }
        cv_pop(c, mark);
    }
    /* Envoy's priority levels run from 0 without gaps (failover walks them in order). */
    bool gap = false;
    for (unsigned p = 0; p <= MAX_PRIORITY; p++) {
        bool used = (seen[p / 64] >> (p % 64)) & 1u;
        if (!used)
            gap = true;
        else if (gap)
            return cv_fail_at(c, "endpoints",
                              "priorities must be contiguous from 0: priority %u is used but not %u", p,
                              p - 1);
    }
    return 0;
}

int rm_xds_cla_from_proto(const Cla *pb, rm_cluster_load_assignment_t *out, char *err, size_t errlen)
{
    cv_t c = {"cluster_load_assignment", pb->cluster_name, "", 0, err, errlen};
    memset(out, 0, sizeof(*out));
    int rc = check_name(&c, "cluster_name", pb->cluster_name, true);
    if (rc == 0)
        rc = check_unknown_here(&c, &pb->base, cla_field_names);
    if (rc == 0)
        rc = check_unknown_deep(&c, &pb->base);
    if (rc == 0)
        rc = convert_assignment(&c, pb, ADDR_IP, &out->endpoints, &out->num_endpoints,
                                &out->overprovisioning_factor);
    if (rc != 0) {
        rm_cluster_load_assignment_free(out);
        return -1;
    }
    out->cluster_name = rm_strdup(pb->cluster_name);
    return 0;
}

/* ---- Cluster ---- */

static const char *const lb_policy_names[] = {
    [0] = "ROUND_ROBIN",
    [1] = "LEAST_REQUEST",
    [2] = "RING_HASH",
    [3] = "RANDOM",
    [5] = "MAGLEV",
    [6] = "CLUSTER_PROVIDED",
    [7] = "LOAD_BALANCING_POLICY_CONFIG",
};

static int convert_lb_policy(cv_t *c, int value, rm_lb_policy_t *out)
{
    switch (value) {
    case RM_LB_ROUND_ROBIN:
    case RM_LB_LEAST_REQUEST:
    case RM_LB_RANDOM:
        *out = (rm_lb_policy_t)value;
        return 0;
    default:
        if (value >= 0 && (size_t)value < RM_ARRAY_LEN(lb_policy_names) && lb_policy_names[value] != NULL)
            return cv_fail_at(c, "lb_policy",
                              "%s is not supported (supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM)",
                              lb_policy_names[value]);
        return cv_fail_at(c, "lb_policy", "unknown value %d", value);
    }
}

static int convert_type(cv_t *c, const Cluster *pb, rm_cluster_type_t *out)
{
    /* Envoy's default is STATIC (the enum's zero), also when the oneof is not set at all. */
    int value =
        pb->cluster_discovery_type_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE
            ? (int)pb->type
            : 0;
    switch (value) {
    case RM_CLUSTER_STATIC:
    case RM_CLUSTER_STRICT_DNS:
    case RM_CLUSTER_EDS:
        *out = (rm_cluster_type_t)value;
        return 0;
    case RM_CLUSTER_LOGICAL_DNS:
        return cv_fail_at(c, "type", "LOGICAL_DNS is not supported yet (supported: STATIC, STRICT_DNS, EDS)");
    case 4:
        return cv_fail_at(c, "type",
                          "ORIGINAL_DST is not supported yet (supported: STATIC, STRICT_DNS, EDS)");
    default:
        return cv_fail_at(c, "type", "unknown value %d", value);
    }
}

/* An api_config_source that leads to the management server: GRPC, the V3 transport, one envoy_grpc
 * service naming its cluster. */
static int check_api_config_source(cv_t *c, const ApiConfigSource *api, const rm_xds_convert_opts_t *opts)
{
    if (api->api_type != ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC)
        return cv_fail_at(c, "api_type", "only GRPC is supported, got %d", (int)api->api_type);
    if (api->transport_api_version != ENVOY__CONFIG__CORE__V3__API_VERSION__V3)
        return cv_fail_at(c, "transport_api_version",
                          "must be V3 (the V2 and AUTO transports were removed from xDS)");
    if (api->n_grpc_services != 1)
        return cv_fail_at(c, "grpc_services", "exactly one gRPC service is supported, got %zu",
                          api->n_grpc_services);
    const GrpcService *g = api->grpc_services[0];
    cv_push(c, "grpc_services");
    cv_push_index(c, 0);
    if (g->timeout != NULL)
        return cv_fail_at(c, "timeout", "not supported yet");
    if (g->target_specifier_case != ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC ||
        g->envoy_grpc == NULL)
        return cv_fail_at(c, "envoy_grpc", "required field is missing");
    cv_push(c, "envoy_grpc");
    if (g->envoy_grpc->authority != NULL && g->envoy_grpc->authority[0] != '\0')
        return cv_fail_at(c, "authority", "not supported yet");
    const char *name = g->envoy_grpc->cluster_name;
    if (check_name(c, "cluster_name", name, true) != 0)
        return -1;
    if (opts != NULL && opts->grpc_cluster != NULL && strcmp(name, opts->grpc_cluster) != 0) {
        char buf[280];
        return cv_fail_at(c, "cluster_name",
                          "'%s' is not the management server's cluster '%s' (Remora talks to one management "
                          "server)",
                          rm_xds_printable(name, buf, sizeof(buf)), opts->grpc_cluster);
    }
    return 0;
}

static int convert_eds_cluster_config(cv_t *c, const Cluster *pb, const rm_xds_convert_opts_t *opts,
                                      rm_cluster_config_t *out)
{
    const EdsClusterConfig *e = pb->eds_cluster_config;
    if (e == NULL)
        return cv_fail_at(c, "eds_cluster_config",
                          "required for type EDS (it says where the endpoints come from)");
    size_t mark = cv_push(c, "eds_cluster_config");
    if (check_name(c, "service_name", e->service_name, false) != 0)
        return -1;
    const ConfigSource *cs = e->eds_config;
    if (cs == NULL)
        return cv_fail_at(c, "eds_config", "required field is missing");
    cv_push(c, "eds_config");
    if (cs->initial_fetch_timeout != NULL)
        return cv_fail_at(c, "initial_fetch_timeout", "not supported yet");
    if (cs->resource_api_version == ENVOY__CONFIG__CORE__V3__API_VERSION__V2)
        return cv_fail_at(c, "resource_api_version", "V2 resources are not supported (use V3)");
    if ((int)cs->resource_api_version < 0 ||
        (int)cs->resource_api_version > ENVOY__CONFIG__CORE__V3__API_VERSION__V3)
        return cv_fail_at(c, "resource_api_version", "unknown value %d", (int)cs->resource_api_version);
    switch (cs->config_source_specifier_case) {
    case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS:
        if (opts != NULL && !opts->ads)
            return cv_fail_at(c, "ads",
                              "this proxy does not use ADS (use api_config_source naming the management "
                              "server's cluster)");
        break;
    case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE:
        if (opts != NULL && opts->ads)
            return cv_fail_at(
                c, "api_config_source",
                "not supported with ADS yet (use ads: {}; Remora talks to one management server)");
        cv_push(c, "api_config_source");
        if (check_api_config_source(c, cs->api_config_source, opts) != 0)
            return -1;
        break;
    case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_SELF:
        /* Same server as the cluster came from: valid with ADS and with separate streams. */
        if (cs->self != NULL && cs->self->transport_api_version != ENVOY__CONFIG__CORE__V3__API_VERSION__V3 &&
            cs->self->transport_api_version != ENVOY__CONFIG__CORE__V3__API_VERSION__AUTO)
            return cv_fail_at(c, "self.transport_api_version", "must be V3");
        break;
    default:
        return cv_fail(c, "one of ads, api_config_source, self is required");
    }
    cv_pop(c, mark);
    const char *service = e->service_name != NULL && e->service_name[0] != '\0' ? e->service_name : pb->name;
    out->eds_service_name = rm_strdup(service);
    return 0;
}

/* Known Cluster fields that Remora does not implement yet: rejected so that none is silently ignored. */
static int check_unsupported(cv_t *c, const Cluster *pb)
{
    for (size_t i = 0; i < pb->n_health_checks; i++) {
        const HealthCheck *hc = pb->health_checks[i];
        size_t mark = cv_push(c, "health_checks");
        cv_push_index(c, i);
        if (check_unknown_here(c, &hc->base, health_check_field_names) != 0)
            return -1;
        if (hc->health_checker_case ==
                ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK &&
            hc->http_health_check != NULL) {
            cv_push(c, "http_health_check");
            if (check_unknown_here(c, &hc->http_health_check->base, http_health_check_field_names) != 0)
                return -1;
        }
        if (hc->health_checker_case ==
                ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK &&
            hc->tcp_health_check != NULL) {
            cv_push(c, "tcp_health_check");
            if (check_unknown_here(c, &hc->tcp_health_check->base, tcp_health_check_field_names) != 0)
                return -1;
        }
        cv_pop(c, mark);
    }
    if (pb->outlier_detection != NULL && pb->outlier_detection->n_monitors > 0) {
        cv_push(c, "outlier_detection");
        return cv_fail_at(c, "monitors", "not supported yet");
    }
    if (pb->ignore_health_on_host_removal)
        return cv_fail_at(c, "ignore_health_on_host_removal", "not supported yet");
    return 0;
}

/* ---- upstream protocol ---- */

static int convert_http2_options(cv_t *c, const char *key, const Http2Options *h, rm_http2_options_t *out)
{
    size_t mark = cv_push(c, key);
    if (h->max_concurrent_streams != NULL) {
        if (h->max_concurrent_streams->value < 1 || h->max_concurrent_streams->value > 2147483647u)
            return cv_fail_at(c, "max_concurrent_streams", "must be 1..2147483647");
        out->max_concurrent_streams = h->max_concurrent_streams->value;
    }
    if (h->initial_stream_window_size != NULL) {
        uint32_t v = h->initial_stream_window_size->value;
        if (v < 65535 || v > 2147483647u)
            return cv_fail_at(c, "initial_stream_window_size", "must be 65535..2147483647");
        out->initial_stream_window_size = v;
    }
    if (h->initial_connection_window_size != NULL) {
        uint32_t v = h->initial_connection_window_size->value;
        if (v < 65535 || v > 2147483647u)
            return cv_fail_at(c, "initial_connection_window_size", "must be 65535..2147483647");
        out->initial_connection_window_size = v;
    }
    cv_pop(c, mark);
    return 0;
}

/* typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]: the
 * cluster's protocol from explicit_http_config. The path already names the map entry. */
static int convert_http_protocol_options(cv_t *c, const Google__Protobuf__Any *any, rm_cluster_config_t *out)
{
    if (any == NULL || any->type_url == NULL ||
        strcmp(any->type_url, REMORA_TYPE_URL_UPSTREAM_HTTP_PROTOCOL_OPTIONS) != 0)
        return cv_fail(c, "typed config must be a " REMORA_UPSTREAM_HTTP_PROTOCOL_OPTIONS_KEY);
    UpstreamHttpOptions *o = envoy__extensions__upstreams__http__v3__http_protocol_options__unpack(
        NULL, any->value.len, any->value.data);
    if (o == NULL)
        return cv_fail(c, "cannot decode the typed config");
    int rc = -1;
    if (check_unknown_deep(c, &o->base) != 0)
        goto out;
    if (o->common_http_protocol_options != NULL) {
        cv_fail_at(c, "common_http_protocol_options", "not supported yet");
        goto out;
    }
    if (o->upstream_protocol_options_case !=
            ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG ||
        o->explicit_http_config == NULL) {
        cv_fail(c, "explicit_http_config is required (the other protocol selections are not supported)");
        goto out;
    }
    cv_push(c, "explicit_http_config");
    const Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig *x =
        o->explicit_http_config;
    switch (x->protocol_config_case) {
    case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP_PROTOCOL_OPTIONS:
        out->protocol = RM_UPSTREAM_HTTP1;
        rc = 0;
        break;
    case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS:
        out->protocol = RM_UPSTREAM_HTTP2;
        rc = convert_http2_options(c, "http2_protocol_options", x->http2_protocol_options, &out->http2);
        break;
    default:
        cv_fail(c, "one of http_protocol_options, http2_protocol_options is required");
        break;
    }
out:
    envoy__extensions__upstreams__http__v3__http_protocol_options__free_unpacked(o, NULL);
    return rc;
}

/* The older cluster-level http2_protocol_options; typed_extension_protocol_options may override. */
static int convert_upstream_protocol(cv_t *c, const Cluster *pb, rm_cluster_config_t *out)
{
    out->protocol = RM_UPSTREAM_HTTP1;
    rm_http2_options_default(&out->http2);
    if (pb->http2_protocol_options != NULL) {
        out->protocol = RM_UPSTREAM_HTTP2;
        if (convert_http2_options(c, "http2_protocol_options", pb->http2_protocol_options, &out->http2) != 0)
            return -1;
    }
    return 0;
}

/* ---- circuit breakers and the fail-fast breaker ---- */

static int convert_circuit_breakers(cv_t *c, const Envoy__Config__Cluster__V3__CircuitBreakers *cb,
                                    rm_cluster_config_t *out)
{
    size_t mark = cv_push(c, "circuit_breakers");
    out->circuit_breakers_set = true;
    rm_circuit_breaker_thresholds_default(&out->circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT]);
    rm_circuit_breaker_thresholds_default(&out->circuit_breakers[RM_ROUTING_PRIORITY_HIGH]);
    bool seen[2] = {false, false};
    for (size_t i = 0; i < cb->n_thresholds; i++) {
        const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t = cb->thresholds[i];
        size_t m2 = cv_push(c, "thresholds");
        cv_push_index(c, i);
        int prio = (int)t->priority;
        if (prio != RM_ROUTING_PRIORITY_DEFAULT && prio != RM_ROUTING_PRIORITY_HIGH)
            return cv_fail_at(c, "priority", "unknown value %d (DEFAULT or HIGH)", prio);
        if (seen[prio])
            return cv_fail_at(c, "priority", "thresholds for priority %s are given twice",
                              prio == RM_ROUTING_PRIORITY_HIGH ? "HIGH" : "DEFAULT");
        seen[prio] = true;
        if (t->track_remaining)
            return cv_fail_at(c, "track_remaining", "not supported yet");
        rm_circuit_breaker_thresholds_t *o = &out->circuit_breakers[prio];
        if (t->max_connections != NULL)
            o->max_connections = t->max_connections->value;
        if (t->max_pending_requests != NULL)
            o->max_pending_requests = t->max_pending_requests->value;
        if (t->max_requests != NULL)
            o->max_requests = t->max_requests->value;
        if (t->max_retries != NULL)
            o->max_retries = t->max_retries->value;
        cv_pop(c, m2);
    }
    cv_pop(c, mark);
    return 0;
}

static int convert_fail_fast(cv_t *c, const Google__Protobuf__Any *any, rm_fail_fast_config_t *out)
{
    char buf[128];
    if (any == NULL || any->type_url == NULL || strcmp(any->type_url, RM_FAIL_FAST_TYPE_URL) != 0)
        return cv_fail(c, "expected an Any of type " RM_FAIL_FAST_TYPE_URL ", got %s",
                       any && any->type_url ? rm_xds_printable(any->type_url, buf, sizeof(buf)) : "nothing");
    Remora__Config__V1__FailFastBreaker *ff =
        remora__config__v1__fail_fast_breaker__unpack(NULL, any->value.len, any->value.data);
    if (ff == NULL)
        return cv_fail(c, "malformed FailFastBreaker");
    int rc = check_unknown_deep(c, &ff->base);
    out->enabled = true;
    out->consecutive_failures = 5;
    out->open_duration_ms = 30000;
    out->half_open_requests = 1;
    if (rc == 0 && ff->consecutive_failures != NULL) {
        if (ff->consecutive_failures->value == 0)
            rc = cv_fail_at(c, "consecutive_failures", "must be >= 1");
        out->consecutive_failures = ff->consecutive_failures->value;
    }
    if (rc == 0 && ff->half_open_requests != NULL) {
        if (ff->half_open_requests->value == 0)
            rc = cv_fail_at(c, "half_open_requests", "must be >= 1");
        out->half_open_requests = ff->half_open_requests->value;
    }
    if (rc == 0 && ff->slow_call_threshold != NULL)
        rc = duration_ms(c, "slow_call_threshold", ff->slow_call_threshold, &out->slow_call_ms);
    if (rc == 0 && ff->open_duration != NULL) {
        rc = duration_ms(c, "open_duration", ff->open_duration, &out->open_duration_ms);
        if (rc == 0 && out->open_duration_ms == 0)
            rc = cv_fail_at(c, "open_duration", "must be > 0");
    }
    out->ignore_5xx = ff->ignore_5xx;
    remora__config__v1__fail_fast_breaker__free_unpacked(ff, NULL);
    return rc;
}

static int convert_extension_options(cv_t *c, const Cluster *pb, rm_cluster_config_t *out)
{
    for (size_t i = 0; i < pb->n_typed_extension_protocol_options; i++) {
        const Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
            pb->typed_extension_protocol_options[i];
        char buf[128];
        const char *key = rm_xds_printable(e->key ? e->key : "", buf, sizeof(buf));
        size_t mark = cv_push(c, "typed_extension_protocol_options");
        cv_push(c, key);
        int rc;
        if (strcmp(key, RM_FAIL_FAST_EXTENSION) == 0)
            rc = convert_fail_fast(c, e->value, &out->fail_fast);
        else if (strcmp(key, REMORA_UPSTREAM_HTTP_PROTOCOL_OPTIONS_KEY) == 0)
            rc = convert_http_protocol_options(c, e->value, out);
        else
            rc = cv_fail(c, "unknown extension (supported: " REMORA_UPSTREAM_HTTP_PROTOCOL_OPTIONS_KEY
                            ", " RM_FAIL_FAST_EXTENSION ")");
        if (rc != 0)
            return rc;
        cv_pop(c, mark);
    }
    return 0;
}

/* ---- transport_socket (UpstreamTlsContext) ---- */

typedef Envoy__Config__Core__V3__TransportSocket TransportSocket;
typedef Envoy__Config__Core__V3__DataSource DataSource;
typedef Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext UpstreamTlsContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext CommonTlsContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate TlsCertificate;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters TlsParameters;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext ValidationContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher SanMatcher;

static const field_name_t upstream_tls_field_names[] = {
    {5, "enforce_rsa_key_usage"},
    {0, NULL},
};
static const field_name_t common_tls_field_names[] = {
    {6, "tls_certificate_sds_secret_configs"},
    {7, "validation_context_sds_secret_config"},
    {8, "combined_validation_context"},
    {9, "tls_certificate_certificate_provider"},
    {10, "validation_context_certificate_provider"},
    {11, "tls_certificate_certificate_provider_instance"},
    {12, "validation_context_certificate_provider_instance"},
    {13, "custom_handshaker"},
    {14, "tls_certificate_provider_instance"},
    {15, "key_log"},
    {16, "custom_tls_certificate_selector"},
    {17, "read_ahead_buffer_size"},
    {0, NULL},
};
static const field_name_t tls_certificate_field_names[] = {
    {5, "signed_certificate_timestamp"},
    {6, "private_key_provider"},
    {7, "watched_directory"},
    {0, NULL},
};
static const field_name_t validation_context_field_names[] = {
    {11, "watched_directory"},
    {12, "custom_validator_config"},
    {13, "ca_certificate_provider_instance"},
    {17, "system_root_certs"},
    {0, NULL},
};
static const field_name_t data_source_field_names[] = {
    {5, "watched_directory"},
    {0, NULL},
};

static int convert_data_source(cv_t *c, const char *key, const DataSource *ds, rm_data_source_t *out)
{
    size_t mark = cv_push(c, key);
    if (check_unknown_here(c, &ds->base, data_source_field_names) != 0)
        return -1;
    switch (ds->specifier_case) {
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME:
        if (ds->filename[0] == '\0')
            return cv_fail_at(c, "filename", "must not be empty");
        /* Read now, so that a missing file is refused here rather than failing every connection. */
        if (access(ds->filename, R_OK) != 0) {
            char buf[280];
            return cv_fail_at(c, "filename", "cannot read '%s': %s",
                              rm_xds_printable(ds->filename, buf, sizeof(buf)), strerror(errno));
        }
        out->filename = rm_strdup(ds->filename);
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
        if (ds->inline_string[0] == '\0')
            return cv_fail_at(c, "inline_string", "must not be empty");
        out->inline_string = rm_strdup(ds->inline_string);
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
        return cv_fail_at(c, "inline_bytes", "not supported yet (use inline_string or filename)");
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE:
        return cv_fail_at(c, "environment_variable", "not supported yet (use inline_string or filename)");
    default:
        return cv_fail(c, "one of filename, inline_string is required");
    }
    cv_pop(c, mark);
    return 0;
}

static int convert_tls_params(cv_t *c, const TlsParameters *p, rm_tls_config_t *out)
{
    size_t mark = cv_push(c, "tls_params");
    if (p->n_cipher_suites > 0)
        return cv_fail_at(c, "cipher_suites", "not supported yet");
    if (p->n_ecdh_curves > 0)
        return cv_fail_at(c, "ecdh_curves", "not supported yet");
    if (p->n_signature_algorithms > 0)
        return cv_fail_at(c, "signature_algorithms", "not supported yet");
    if ((unsigned)p->tls_minimum_protocol_version > RM_TLS_V1_3)
        return cv_fail_at(c, "tls_minimum_protocol_version", "unknown value %d",
                          (int)p->tls_minimum_protocol_version);
    if ((unsigned)p->tls_maximum_protocol_version > RM_TLS_V1_3)
        return cv_fail_at(c, "tls_maximum_protocol_version", "unknown value %d",
                          (int)p->tls_maximum_protocol_version);
    out->min_protocol = (rm_tls_protocol_t)p->tls_minimum_protocol_version;
    out->max_protocol = (rm_tls_protocol_t)p->tls_maximum_protocol_version;
    if (out->min_protocol != RM_TLS_AUTO && out->max_protocol != RM_TLS_AUTO &&
        out->min_protocol > out->max_protocol)
        return cv_fail_at(c, "tls_maximum_protocol_version", "is below tls_minimum_protocol_version");
    cv_pop(c, mark);
    return 0;
}

static int convert_certificate(cv_t *c, const TlsCertificate *tc, rm_tls_config_t *out)
{
    if (check_unknown_here(c, &tc->base, tls_certificate_field_names) != 0)
        return -1;
    if (tc->password != NULL)
        return cv_fail_at(c, "password", "not supported yet");
    if (tc->ocsp_staple != NULL)
        return cv_fail_at(c, "ocsp_staple", "not supported yet");
    if (tc->pkcs12 != NULL)
        return cv_fail_at(c, "pkcs12", "not supported yet");
    if (tc->certificate_chain == NULL)
        return cv_fail_at(c, "certificate_chain", "required");
    if (tc->private_key == NULL)
        return cv_fail_at(c, "private_key", "required");
    if (convert_data_source(c, "certificate_chain", tc->certificate_chain, &out->certificate_chain) != 0 ||
        convert_data_source(c, "private_key", tc->private_key, &out->private_key) != 0)
        return -1;
    out->has_certificate = true;
    return 0;
}

static int convert_validation_context(cv_t *c, const ValidationContext *v, rm_tls_config_t *out)
{
    size_t mark = cv_push(c, "validation_context");
    if (check_unknown_here(c, &v->base, validation_context_field_names) != 0)
        return -1;
    if (v->n_verify_certificate_hash > 0)
        return cv_fail_at(c, "verify_certificate_hash", "not supported yet");
    if (v->n_verify_certificate_spki > 0)
        return cv_fail_at(c, "verify_certificate_spki", "not supported yet");
    if (v->require_signed_certificate_timestamp != NULL)
        return cv_fail_at(c, "require_signed_certificate_timestamp", "not supported yet");
    if (v->crl != NULL)
        return cv_fail_at(c, "crl", "not supported yet");
    if (v->allow_expired_certificate)
        return cv_fail_at(c, "allow_expired_certificate", "not supported yet");
    if (v->n_match_subject_alt_names > 0)
        return cv_fail_at(c, "match_subject_alt_names", "not supported (use match_typed_subject_alt_names)");
    if (v->trust_chain_verification != 0)
        return cv_fail_at(c, "trust_chain_verification", "not supported yet");
    if (v->only_verify_leaf_cert_crl)
        return cv_fail_at(c, "only_verify_leaf_cert_crl", "not supported yet");
    if (v->max_verify_depth != NULL)
        return cv_fail_at(c, "max_verify_depth", "not supported yet");
    if (v->trusted_ca == NULL)
        return cv_fail_at(c, "trusted_ca", "required (Remora verifies peers only against a configured CA)");
    if (convert_data_source(c, "trusted_ca", v->trusted_ca, &out->trusted_ca) != 0)
        return -1;
    out->has_trusted_ca = true;
    if (v->n_match_typed_subject_alt_names > 0)
        out->verify_san_dns = rm_calloc(v->n_match_typed_subject_alt_names, sizeof(char *));
    for (size_t i = 0; i < v->n_match_typed_subject_alt_names; i++) {
        const SanMatcher *m = v->match_typed_subject_alt_names[i];
        size_t m2 = cv_push(c, "match_typed_subject_alt_names");
        cv_push_index(c, i);
        if (m->san_type !=
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__DNS)
            return cv_fail_at(c, "san_type", "only DNS is supported yet");
        if (m->oid != NULL && m->oid[0] != '\0')
            return cv_fail_at(c, "oid", "not supported yet");
        const Envoy__Type__Matcher__V3__StringMatcher *sm = m->matcher;
        if (sm == NULL)
            return cv_fail_at(c, "matcher", "required");
        cv_push(c, "matcher");
        if (sm->ignore_case)
            return cv_fail_at(c, "ignore_case", "not supported yet");
        if (sm->match_pattern_case != ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT)
            return cv_fail(c, "only exact is supported yet");
        if (sm->exact[0] == '\0')
            return cv_fail_at(c, "exact", "must not be empty");
        out->verify_san_dns[out->num_verify_san_dns++] = rm_strdup(sm->exact);
        cv_pop(c, m2);
    }
    cv_pop(c, mark);
    return 0;
}

static int convert_common_tls(cv_t *c, const CommonTlsContext *ctx, rm_tls_config_t *out)
{
    size_t mark = cv_push(c, "common_tls_context");
    if (check_unknown_here(c, &ctx->base, common_tls_field_names) != 0)
        return -1;
    if (ctx->tls_params != NULL && convert_tls_params(c, ctx->tls_params, out) != 0)
        return -1;
    if (ctx->n_tls_certificates > 1)
        return cv_fail_at(c, "tls_certificates", "only one certificate is supported for now");
    if (ctx->n_tls_certificates == 1) {
        size_t m2 = cv_push(c, "tls_certificates");
        cv_push_index(c, 0);
        if (convert_certificate(c, ctx->tls_certificates[0], out) != 0)
            return -1;
        cv_pop(c, m2);
    }
    if (ctx->validation_context_type_case ==
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT &&
        convert_validation_context(c, ctx->validation_context, out) != 0)
        return -1;
    if (ctx->n_alpn_protocols > 0)
        out->alpn_protocols = rm_calloc(ctx->n_alpn_protocols, sizeof(char *));
    for (size_t i = 0; i < ctx->n_alpn_protocols; i++) {
        size_t len = strlen(ctx->alpn_protocols[i]);
        if (len == 0 || len > 255) {
            cv_push(c, "alpn_protocols");
            cv_push_index(c, i);
            return cv_fail(c, "an ALPN protocol name is 1..255 bytes");
        }
        out->alpn_protocols[out->num_alpn_protocols++] = rm_strdup(ctx->alpn_protocols[i]);
    }
    cv_pop(c, mark);
    return 0;
}

static int convert_upstream_tls(cv_t *c, const UpstreamTlsContext *u, rm_tls_config_t *out)
{
    if (check_unknown_here(c, &u->base, upstream_tls_field_names) != 0)
        return -1;
    if (u->allow_renegotiation)
        return cv_fail_at(c, "allow_renegotiation", "not supported yet");
    if (u->max_session_keys != NULL)
        return cv_fail_at(c, "max_session_keys", "not supported yet");
    if (u->auto_host_sni)
        return cv_fail_at(c, "auto_host_sni", "not supported yet");
    if (u->auto_sni_san_validation)
        return cv_fail_at(c, "auto_sni_san_validation", "not supported yet");
    if (u->sni != NULL && u->sni[0] != '\0') {
        if (strlen(u->sni) > 255)
            return cv_fail_at(c, "sni", "at most 255 bytes");
        if (check_name(c, "sni", u->sni, false) != 0)
            return -1;
        out->sni = rm_strdup(u->sni);
    }
    if (u->common_tls_context != NULL && convert_common_tls(c, u->common_tls_context, out) != 0)
        return -1;
    return 0;
}

static int convert_transport_socket(cv_t *c, const TransportSocket *ts, rm_tls_config_t *out)
{
    size_t mark = cv_push(c, "transport_socket");
    char buf[280];
    if (ts->name == NULL || strcmp(ts->name, REMORA_TRANSPORT_SOCKET_TLS) != 0)
        return cv_fail_at(c, "name",
                          "transport socket '%s' is not supported (only " REMORA_TRANSPORT_SOCKET_TLS ")",
                          rm_xds_printable(ts->name, buf, sizeof(buf)));
    if (ts->config_type_case != ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG ||
        ts->typed_config == NULL)
        return cv_fail_at(c, "typed_config", "required (an UpstreamTlsContext)");
    const Google__Protobuf__Any *any = ts->typed_config;
    cv_push(c, "typed_config");
    if (any->type_url == NULL || strcmp(any->type_url, REMORA_TYPE_URL_UPSTREAM_TLS_CONTEXT) != 0)
        return cv_fail(c, "expected type %s, got '%s'", REMORA_TYPE_URL_UPSTREAM_TLS_CONTEXT,
                       rm_xds_printable(any->type_url, buf, sizeof(buf)));
    UpstreamTlsContext *u = envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__unpack(
        NULL, any->value.len, any->value.data);
    if (u == NULL)
        return cv_fail(c, "not a valid serialized UpstreamTlsContext");
    out->enabled = true;
    int rc = convert_upstream_tls(c, u, out);
    if (rc == 0)
        rc = check_unknown_deep(c, &u->base);
    envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__free_unpacked(u, NULL);
    if (rc != 0)
        return -1;
    if (out->num_verify_san_dns > 0 && !out->has_trusted_ca)
        return cv_fail(c, "match_typed_subject_alt_names needs validation_context.trusted_ca");
    /* Build the context once here: unreadable PEM, a key that does not match its certificate, or a
     * CA file without certificates are refused (NACK) instead of failing every connection later. */
    char why[512];
    rm_tls_ctx_t *t = rm_tls_client_ctx_create(out, why, sizeof(why));
    if (t == NULL)
        return cv_fail(c, "%s", why);
    rm_tls_ctx_unref(t);
    cv_pop(c, mark);
    return 0;
}

/* ---- load balancer settings ---- */

static int convert_percent(cv_t *c, const char *key, const Percent *p, double *out)
{
    if (!isfinite(p->value) || p->value < 0 || p->value > 100) {
        cv_push(c, key);
        return cv_fail_at(c, "value", "must be 0..100");
    }
    *out = p->value;
    return 0;
}

static int convert_slow_start(cv_t *c, const SlowStartConfig *ss, rm_cluster_config_t *out)
{
    size_t mark = cv_push(c, "slow_start_config");
    if (ss->slow_start_window != NULL &&
        duration_ms(c, "slow_start_window", ss->slow_start_window, &out->slow_start_window_ms) != 0)
        return -1;
    if (ss->aggression != NULL) {
        /* Remora has no runtime layer, so the runtime_key never overrides: the default applies, as
         * in an Envoy whose runtime does not set that key. */
        double a = ss->aggression->default_value;
        if (!isfinite(a) || a <= 0) {
            cv_push(c, "aggression");
            return cv_fail_at(c, "default_value", "must be > 0");
        }
        out->slow_start_aggression = a;
    }
    if (ss->min_weight_percent != NULL) {
        double p = 0;
        if (convert_percent(c, "min_weight_percent", ss->min_weight_percent, &p) != 0)
            return -1;
        if (p == 0) {
            cv_push(c, "min_weight_percent");
            return cv_fail_at(c, "value",
                              "0 is not supported (a host in slow start gets at least some traffic)");
        }
        out->slow_start_min_weight_percent = p;
    }
    cv_pop(c, mark);
    return 0;
}

/* The lb_config oneof (which must match lb_policy, as Envoy requires) and common_lb_config. */
static int convert_lb_settings(cv_t *c, const Cluster *pb, rm_cluster_config_t *out)
{
    if (pb->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG &&
        pb->least_request_lb_config != NULL) {
        if (out->lb_policy != RM_LB_LEAST_REQUEST)
            return cv_fail_at(c, "least_request_lb_config", "only valid with lb_policy LEAST_REQUEST");
        size_t mark = cv_push(c, "least_request_lb_config");
        const Envoy__Config__Cluster__V3__Cluster__LeastRequestLbConfig *lr = pb->least_request_lb_config;
        if (lr->choice_count != NULL) {
            if (lr->choice_count->value < 2)
                return cv_fail_at(c, "choice_count", "must be >= 2");
            out->choice_count = lr->choice_count->value;
        }
        if (lr->slow_start_config != NULL && convert_slow_start(c, lr->slow_start_config, out) != 0)
            return -1;
        cv_pop(c, mark);
    }
    if (pb->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_ROUND_ROBIN_LB_CONFIG &&
        pb->round_robin_lb_config != NULL) {
        if (out->lb_policy != RM_LB_ROUND_ROBIN)
            return cv_fail_at(c, "round_robin_lb_config", "only valid with lb_policy ROUND_ROBIN");
        size_t mark = cv_push(c, "round_robin_lb_config");
        if (pb->round_robin_lb_config->slow_start_config != NULL &&
            convert_slow_start(c, pb->round_robin_lb_config->slow_start_config, out) != 0)
            return -1;
        cv_pop(c, mark);
    }
    const CommonLbConfig *cl = pb->common_lb_config;
    if (cl == NULL)
        return 0;
    size_t mark = cv_push(c, "common_lb_config");
    if (cl->locality_config_specifier_case !=
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__LOCALITY_CONFIG_SPECIFIER__NOT_SET)
        return cv_fail_at(c, "locality_weighted_lb_config", "not supported yet");
    if (cl->update_merge_window != NULL)
        return cv_fail_at(c, "update_merge_window", "not supported yet");
    if (cl->ignore_new_hosts_until_first_hc)
        return cv_fail_at(c, "ignore_new_hosts_until_first_hc", "not supported yet");
    if (cl->close_connections_on_host_set_change)
        return cv_fail_at(c, "close_connections_on_host_set_change", "not supported yet");
    if (cl->healthy_panic_threshold != NULL) {
        if (convert_percent(c, "healthy_panic_threshold", cl->healthy_panic_threshold,
                            &out->healthy_panic_threshold) != 0)
            return -1;
        out->healthy_panic_threshold_set = true;
    }
    cv_pop(c, mark);
    return 0;
}

/* ---- health ---- */

static int u32_percent(cv_t *c, const char *key, const Google__Protobuf__UInt32Value *v, uint32_t *out)
{
    if (v == NULL)
        return 0;
    if (v->value > 100)
        return cv_fail_at(c, key, "must be 0..100");
    *out = v->value;
    return 0;
}

static int positive_ms(cv_t *c, const char *key, const Duration *d, uint64_t *out)
{
    if (d == NULL)
        return 0;
    if (duration_ms(c, key, d, out) != 0)
        return -1;
    if (*out == 0)
        return cv_fail_at(c, key, "must be > 0");
    return 0;
}

static int convert_outlier(cv_t *c, const OutlierDetection *od, rm_outlier_detection_config_t *o)
{
    size_t mark = cv_push(c, "outlier_detection");
    rm_outlier_detection_config_defaults(o);
#define OD_U32(f)                                                                                            \
    if (od->f != NULL)                                                                                       \
        o->f = od->f->value;
#define OD_PCT(f)                                                                                            \
    if (u32_percent(c, #f, od->f, &o->f) != 0)                                                               \
        return -1;
    OD_U32(consecutive_5xx)
    OD_U32(consecutive_gateway_failure)
    OD_U32(consecutive_local_origin_failure)
    OD_U32(success_rate_minimum_hosts)
    OD_U32(success_rate_request_volume)
    OD_U32(success_rate_stdev_factor)
    OD_U32(failure_percentage_minimum_hosts)
    OD_U32(failure_percentage_request_volume)
    OD_PCT(max_ejection_percent)
    OD_PCT(enforcing_consecutive_5xx)
    OD_PCT(enforcing_consecutive_gateway_failure)
    OD_PCT(enforcing_consecutive_local_origin_failure)
    OD_PCT(enforcing_success_rate)
    OD_PCT(enforcing_local_origin_success_rate)
    OD_PCT(failure_percentage_threshold)
    OD_PCT(enforcing_failure_percentage)
    OD_PCT(enforcing_failure_percentage_local_origin)
#undef OD_U32
#undef OD_PCT
    if (positive_ms(c, "interval", od->interval, &o->interval_ms) != 0 ||
        positive_ms(c, "base_ejection_time", od->base_ejection_time, &o->base_ejection_time_ms) != 0 ||
        positive_ms(c, "max_ejection_time", od->max_ejection_time, &o->max_ejection_time_ms) != 0)
        return -1;
    if (od->max_ejection_time_jitter != NULL &&
        duration_ms(c, "max_ejection_time_jitter", od->max_ejection_time_jitter,
                    &o->max_ejection_time_jitter_ms) != 0)
        return -1;
    o->split_external_local_origin_errors = od->split_external_local_origin_errors;
    if (od->successful_active_health_check_uneject_host != NULL)
        o->successful_active_health_check_uneject_host =
            od->successful_active_health_check_uneject_host->value;
    if (od->always_eject_one_host != NULL)
        o->always_eject_one_host = od->always_eject_one_host->value;
    cv_pop(c, mark);
    return 0;
}

static int convert_payload(cv_t *c, const Payload *p, rm_hc_payload_t *out)
{
    if (p->payload_case == ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__PAYLOAD__PAYLOAD_BINARY) {
        if (p->binary.len == 0)
            return cv_fail_at(c, "binary", "must not be empty");
        out->data = rm_malloc(p->binary.len + 1);
        memcpy(out->data, p->binary.data, p->binary.len);
        out->data[p->binary.len] = 0;
        out->len = p->binary.len;
        return 0;
    }
    if (p->payload_case != ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__PAYLOAD__PAYLOAD_TEXT || p->text == NULL)
        return cv_fail(c, "one of text, binary is required");
    const char *err = NULL;
    if (rm_config_hex_decode(p->text, strlen(p->text), &out->data, &out->len, &err) != 0)
        return cv_fail_at(c, "text", "invalid hex payload: %s", err);
    return 0;
}

static int convert_receive(cv_t *c, Payload *const *items, size_t n, rm_health_check_config_t *o)
{
    o->receive = rm_calloc(n ? n : 1, sizeof(rm_hc_payload_t));
    for (size_t i = 0; i < n; i++) {
        size_t mark = cv_push(c, "receive");
        cv_push_index(c, i);
        if (convert_payload(c, items[i], &o->receive[i]) != 0)
            return -1;
        o->num_receive++;
        cv_pop(c, mark);
    }
    return 0;
}

static bool token_char(unsigned char ch)
{
    return ch > ' ' && ch < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", ch) == NULL;
}

static int convert_http_hc(cv_t *c, const HttpHealthCheck *h, rm_health_check_config_t *o)
{
    size_t mark = cv_push(c, "http_health_check");
    if (h->path == NULL || h->path[0] != '/')
        return cv_fail_at(c, "path", "required, starting with '/'");
    for (const unsigned char *p = (const unsigned char *)h->path; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return cv_fail_at(c, "path", "must not contain spaces or control characters");
    for (const unsigned char *p = (const unsigned char *)(h->host ? h->host : ""); *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return cv_fail_at(c, "host", "must not contain spaces or control characters");
    if (h->send != NULL)
        return cv_fail_at(c, "send", "not supported yet");
    if (h->n_request_headers_to_remove > 0)
        return cv_fail_at(c, "request_headers_to_remove", "not supported yet");
    if (h->codec_client_type == ENVOY__TYPE__V3__CODEC_CLIENT_TYPE__HTTP2)
        o->http2 = true;
    else if (h->codec_client_type != ENVOY__TYPE__V3__CODEC_CLIENT_TYPE__HTTP1)
        return cv_fail_at(c, "codec_client_type", "HTTP3 is not supported (HTTP1, HTTP2)");
    static const char *const methods[] = {NULL,     "GET", "HEAD",    "POST",  "PUT",
                                          "DELETE", NULL,  "OPTIONS", "TRACE", "PATCH"};
    if ((unsigned)h->method >= sizeof(methods) / sizeof(methods[0]) ||
        (h->method != 0 && methods[h->method] == NULL))
        return cv_fail_at(c, "method", "not supported (CONNECT and unknown values)");
    o->kind = RM_HEALTH_CHECK_HTTP;
    o->path = rm_strdup(h->path);
    if (h->host != NULL && h->host[0] != '\0')
        o->host = rm_strdup(h->host);
    if (h->method != 0)
        o->method = rm_strdup(methods[h->method]);
    o->headers =
        rm_calloc(h->n_request_headers_to_add ? h->n_request_headers_to_add : 1, sizeof(rm_hc_header_t));
    for (size_t i = 0; i < h->n_request_headers_to_add; i++) {
        const Envoy__Config__Core__V3__HeaderValueOption *hv = h->request_headers_to_add[i];
        size_t m2 = cv_push(c, "request_headers_to_add");
        cv_push_index(c, i);
        if (hv->append != NULL || hv->append_action != 0 || hv->keep_empty_value)
            return cv_fail(c, "append, append_action and keep_empty_value are not supported");
        if (hv->header == NULL || hv->header->key == NULL || hv->header->key[0] == '\0')
            return cv_fail_at(c, "header", "a key is required");
        if (hv->header->raw_value.len > 0)
            return cv_fail_at(c, "header.raw_value", "not supported yet");
        for (const unsigned char *p = (const unsigned char *)hv->header->key; *p; p++)
            if (!token_char(*p))
                return cv_fail_at(c, "header.key", "invalid header name");
        const char *v = hv->header->value ? hv->header->value : "";
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
            if ((*p < ' ' && *p != '\t') || *p == 0x7f)
                return cv_fail_at(c, "header.value", "control characters are not allowed");
        o->headers[o->num_headers].key = rm_strdup(hv->header->key);
        o->headers[o->num_headers].value = rm_strdup(v);
        o->num_headers++;
        cv_pop(c, m2);
    }
    o->expected_statuses =
        rm_calloc(h->n_expected_statuses ? h->n_expected_statuses : 1, sizeof(rm_hc_status_range_t));
    for (size_t i = 0; i < h->n_expected_statuses; i++) {
        const Envoy__Type__V3__Int64Range *r = h->expected_statuses[i];
        size_t m2 = cv_push(c, "expected_statuses");
        cv_push_index(c, i);
        if (r->start < 100 || r->start > 599)
            return cv_fail_at(c, "start", "must be 100..599");
        if (r->end <= r->start || r->end > 600)
            return cv_fail_at(c, "end",
                              "must be greater than start and at most 600 (the range is [start, end))");
        o->expected_statuses[o->num_expected_statuses].start = r->start;
        o->expected_statuses[o->num_expected_statuses].end = r->end;
        o->num_expected_statuses++;
        cv_pop(c, m2);
    }
    if (convert_receive(c, h->receive, h->n_receive, o) != 0)
        return -1;
    cv_pop(c, mark);
    return 0;
}

static int convert_health_check(cv_t *c, const HealthCheck *hc, rm_health_check_config_t *o)
{
    o->reuse_connection = true;
    o->no_traffic_interval_ms = 60000;
    if (hc->unhealthy_edge_interval != NULL)
        return cv_fail_at(c, "unhealthy_edge_interval", "not supported yet");
    if (hc->healthy_edge_interval != NULL)
        return cv_fail_at(c, "healthy_edge_interval", "not supported yet");
    if (hc->no_traffic_healthy_interval != NULL)
        return cv_fail_at(c, "no_traffic_healthy_interval", "not supported yet");
    if (hc->always_log_health_check_failures)
        return cv_fail_at(c, "always_log_health_check_failures", "not supported yet");
    if (hc->timeout == NULL)
        return cv_fail_at(c, "timeout", "required");
    if (hc->interval == NULL)
        return cv_fail_at(c, "interval", "required");
    if (hc->unhealthy_threshold == NULL || hc->unhealthy_threshold->value == 0)
        return cv_fail_at(c, "unhealthy_threshold", "required (>= 1)");
    if (hc->healthy_threshold == NULL || hc->healthy_threshold->value == 0)
        return cv_fail_at(c, "healthy_threshold", "required (>= 1)");
    if (positive_ms(c, "timeout", hc->timeout, &o->timeout_ms) != 0 ||
        positive_ms(c, "interval", hc->interval, &o->interval_ms) != 0 ||
        positive_ms(c, "unhealthy_interval", hc->unhealthy_interval, &o->unhealthy_interval_ms) != 0 ||
        positive_ms(c, "no_traffic_interval", hc->no_traffic_interval, &o->no_traffic_interval_ms) != 0)
        return -1;
    if (hc->initial_jitter != NULL &&
        duration_ms(c, "initial_jitter", hc->initial_jitter, &o->initial_jitter_ms) != 0)
        return -1;
    if (hc->interval_jitter != NULL &&
        duration_ms(c, "interval_jitter", hc->interval_jitter, &o->interval_jitter_ms) != 0)
        return -1;
    o->interval_jitter_percent = hc->interval_jitter_percent;
    o->unhealthy_threshold = hc->unhealthy_threshold->value;
    o->healthy_threshold = hc->healthy_threshold->value;
    if (hc->reuse_connection != NULL)
        o->reuse_connection = hc->reuse_connection->value;
    switch (hc->health_checker_case) {
    case ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK:
        return convert_http_hc(c, hc->http_health_check, o);
    case ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK: {
        size_t mark = cv_push(c, "tcp_health_check");
        o->kind = RM_HEALTH_CHECK_TCP;
        const TcpHealthCheck *t = hc->tcp_health_check;
        if (t->send != NULL) {
            cv_push(c, "send");
            if (convert_payload(c, t->send, &o->send) != 0)
                return -1;
            cv_pop(c, mark);
            cv_push(c, "tcp_health_check");
        }
        if (convert_receive(c, t->receive, t->n_receive, o) != 0)
            return -1;
        cv_pop(c, mark);
        return 0;
    }
    default:
        return cv_fail(c, "one of http_health_check, tcp_health_check is required (grpc_health_check and "
                          "custom_health_check are not supported)");
    }
}

static int convert_health(cv_t *c, const Cluster *pb, rm_cluster_config_t *out)
{
    if (pb->outlier_detection != NULL &&
        convert_outlier(c, pb->outlier_detection, &out->outlier_detection) != 0)
        return -1;
    if (pb->n_health_checks > 1)
        return cv_fail_at(c, "health_checks", "Remora runs one active health check per cluster");
    if (pb->n_health_checks == 1) {
        out->health_checks = RM_NEW(rm_health_check_config_t);
        out->num_health_checks = 1;
        size_t mark = cv_push(c, "health_checks");
        cv_push_index(c, 0);
        if (convert_health_check(c, pb->health_checks[0], &out->health_checks[0]) != 0)
            return -1;
        cv_pop(c, mark);
    }
    return 0;
}

static int convert_cluster(cv_t *c, const Cluster *pb, const rm_xds_convert_opts_t *opts,
                           rm_cluster_config_t *out)
{
    if (check_name(c, "name", pb->name, true) != 0)
        return -1;
    /* Unknown and unsupported fields first: a config using them must not be judged by the rest. */
    if (check_unknown_here(c, &pb->base, cluster_field_names) != 0 || check_unsupported(c, pb) != 0 ||
        check_unknown_deep(c, &pb->base) != 0)
        return -1;

    out->name = rm_strdup(pb->name);
    out->connect_timeout_ms = DEFAULT_CONNECT_MS;
    out->dns_refresh_rate_ms = DEFAULT_DNS_REFRESH;
    out->overprovisioning_factor = DEFAULT_OVERPROVISION;
    out->per_connection_buffer_limit_bytes = DEFAULT_BUFFER_LIMIT;
    if (convert_type(c, pb, &out->type) != 0)
        return -1;
    if (pb->connect_timeout != NULL) {
        if (duration_ms(c, "connect_timeout", pb->connect_timeout, &out->connect_timeout_ms) != 0)
            return -1;
        if (out->connect_timeout_ms == 0)
            return cv_fail_at(c, "connect_timeout", "must be > 0");
    }
    if (pb->per_connection_buffer_limit_bytes != NULL)
        out->per_connection_buffer_limit_bytes = pb->per_connection_buffer_limit_bytes->value;
    if (convert_lb_policy(c, (int)pb->lb_policy, &out->lb_policy) != 0 ||
        convert_lb_settings(c, pb, out) != 0)
        return -1;
    if (convert_upstream_protocol(c, pb, out) != 0)
        return -1;
    if (pb->circuit_breakers != NULL && convert_circuit_breakers(c, pb->circuit_breakers, out) != 0)
        return -1;
    if (convert_extension_options(c, pb, out) != 0)
        return -1;
    if (pb->dns_refresh_rate != NULL) {
        const Duration *d = pb->dns_refresh_rate;
        if (duration_ms(c, "dns_refresh_rate", d, &out->dns_refresh_rate_ms) != 0)
            return -1;
        if (d->seconds == 0 && d->nanos <= 1000000)
            return cv_fail_at(c, "dns_refresh_rate", "must be > 1ms");
    }
    if ((unsigned)pb->dns_lookup_family > RM_DNS_LOOKUP_ALL)
        return cv_fail_at(c, "dns_lookup_family", "unknown value %d", (int)pb->dns_lookup_family);
    out->dns_lookup_family = (rm_dns_lookup_family_t)pb->dns_lookup_family;
    if (convert_health(c, pb, out) != 0)
        return -1;
    if (pb->transport_socket != NULL && convert_transport_socket(c, pb->transport_socket, &out->tls) != 0)
        return -1;

    if (out->type == RM_CLUSTER_EDS) {
        if (pb->load_assignment != NULL)
            return cv_fail_at(c, "load_assignment", "not allowed for type EDS (the endpoints come from EDS)");
        return convert_eds_cluster_config(c, pb, opts, out);
    }
    if (pb->eds_cluster_config != NULL)
        return cv_fail_at(c, "eds_cluster_config", "only valid for type EDS");
    if (pb->load_assignment != NULL) {
        size_t mark = cv_push(c, "load_assignment");
        if (convert_assignment(c, pb->load_assignment,
                               out->type == RM_CLUSTER_STRICT_DNS ? ADDR_HOST : ADDR_IP, &out->endpoints,
                               &out->num_endpoints, &out->overprovisioning_factor) != 0)
            return -1;
        cv_pop(c, mark);
    }
    return 0;
}

int rm_xds_cluster_from_proto(const Cluster *pb, const rm_xds_convert_opts_t *opts, rm_cluster_config_t *out,
                              char *err, size_t errlen)
{
    cv_t c = {"cluster", pb->name, "", 0, err, errlen};
    memset(out, 0, sizeof(*out));
    if (convert_cluster(&c, pb, opts, out) != 0) {
        rm_cluster_config_free(out);
        return -1;
    }
    return 0;
}

/* ---- from bytes ---- */

int rm_xds_cluster_decode(const uint8_t *data, size_t len, const rm_xds_convert_opts_t *opts,
                          rm_cluster_config_t *out, char *err, size_t errlen)
{
    Cluster *pb = envoy__config__cluster__v3__cluster__unpack(NULL, len, data);
    if (pb == NULL) {
        memset(out, 0, sizeof(*out));
        if (errlen > 0)
            snprintf(err, errlen, "cluster: not a valid serialized envoy.config.cluster.v3.Cluster");
        return -1;
    }
    int rc = rm_xds_cluster_from_proto(pb, opts, out, err, errlen);
    envoy__config__cluster__v3__cluster__free_unpacked(pb, NULL);
    return rc;
}

int rm_xds_cla_decode(const uint8_t *data, size_t len, rm_cluster_load_assignment_t *out, char *err,
                      size_t errlen)
{
    Cla *pb = envoy__config__endpoint__v3__cluster_load_assignment__unpack(NULL, len, data);
    if (pb == NULL) {
        memset(out, 0, sizeof(*out));
        if (errlen > 0)
            snprintf(err, errlen,
                     "cluster_load_assignment: not a valid serialized "
                     "envoy.config.endpoint.v3.ClusterLoadAssignment");
        return -1;
    }
    int rc = rm_xds_cla_from_proto(pb, out, err, errlen);
    envoy__config__endpoint__v3__cluster_load_assignment__free_unpacked(pb, NULL);
    return rc;
}
