/* Bootstrap loader: Envoy v3 Bootstrap subset (YAML) -> config.h structs.
 *
 * The schema is the tables below, one rm_yaml_message_t per Envoy message, innermost first. Field
 * names, enum numbers, defaults and bounds follow Envoy's v3 protos (api/envoy/...), so that a real
 * Envoy bootstrap restricted to these fields loads unchanged. Where Envoy's YAML nesting differs from
 * the C structs (endpoints flattened across localities, one filter chain folded into its listener),
 * a YAML list is decoded "inline" into the enclosing struct.
 *
 * Cross-references are checked while decoding, which is why static_resources decodes clusters
 * before listeners: a route naming a missing cluster fails at the route's own path. */
#include "config/bootstrap.h"
#include "core/net.h"

#include "config/yaml_decode.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* rm_yaml_decode_enum stores an int. */
_Static_assert(sizeof(rm_cluster_type_t) == sizeof(int), "enum size");
_Static_assert(sizeof(rm_lb_policy_t) == sizeof(int), "enum size");
_Static_assert(sizeof(rm_dns_lookup_family_t) == sizeof(int), "enum size");
_Static_assert(sizeof(rm_health_status_t) == sizeof(int), "enum size");
_Static_assert(sizeof(rm_http_codec_type_t) == sizeof(int), "enum size");
_Static_assert(sizeof(rm_tls_protocol_t) == sizeof(int), "enum size");

#define MAX_FILE_BYTES (64u << 20)

#define TYPE_HCM                                                                                             \
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define TYPE_ROUTER     "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
#define TYPE_STDOUT_LOG "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
#define TYPE_STDERR_LOG "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog"
#define TYPE_FILE_LOG   "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"

#define NAME_HCM            "envoy.filters.network.http_connection_manager"
#define NAME_ROUTER         "envoy.filters.http.router"
#define NAME_STDOUT_LOG     "envoy.access_loggers.stdout"
#define NAME_STDERR_LOG     "envoy.access_loggers.stderr"
#define NAME_FILE_LOG       "envoy.access_loggers.file"
#define TYPE_FAIL_FAST      RM_FAIL_FAST_TYPE_URL
#define NAME_FAIL_FAST      RM_FAIL_FAST_EXTENSION
#define NAME_PREVIOUS_HOSTS "envoy.retry_host_predicates.previous_hosts"
#define TYPE_PREVIOUS_HOSTS                                                                                  \
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
#define NAME_PREVIOUS_PRIORITIES "envoy.retry_priorities.previous_priorities"
#define TYPE_PREVIOUS_PRIORITIES                                                                             \
    "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig"
#define TYPE_DOWNSTREAM_TLS                                                                                  \
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
#define TYPE_UPSTREAM_TLS "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

#define NAME_TLS "envoy.transport_sockets.tls"

/* ---- a small string set (names and domains must be unique) ---- */

typedef struct {
    const char *key;
    size_t len;
    size_t value;
} strset_entry_t;

typedef struct {
    strset_entry_t *slots;
    size_t cap, used;
    bool nocase;
} strset_t;

static unsigned char fold(unsigned char c, bool nocase)
{
    return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static uint64_t strset_hash(const char *s, size_t len, bool nocase)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ fold((unsigned char)s[i], nocase)) * 1099511628211ull;
    return h;
}

static bool strset_eq(const char *a, const char *b, size_t len, bool nocase)
{
    for (size_t i = 0; i < len; i++)
        if (fold((unsigned char)a[i], nocase) != fold((unsigned char)b[i], nocase))
            return false;
    return true;
}

static void strset_init(strset_t *s, bool nocase)
{
    memset(s, 0, sizeof(*s));
    s->nocase = nocase;
}

static void strset_free(strset_t *s)
{
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

static strset_entry_t *strset_find(const strset_t *s, const char *key, size_t len)
{
    if (s->cap == 0)
        return NULL;
    for (size_t i = strset_hash(key, len, s->nocase) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        strset_entry_t *e = &s->slots[i];
        if (e->key == NULL)
            return NULL;
        if (e->len == len && strset_eq(e->key, key, len, s->nocase))
            return e;
    }
}

/* Adds key (borrowed: it must outlive the set) unless present. Returns the existing entry's value,
 * or SIZE_MAX when key was added. */
static size_t strset_add(strset_t *s, const char *key, size_t value)
{
    size_t len = strlen(key);
    strset_entry_t *e = strset_find(s, key, len);
    if (e != NULL)
        return e->value;
    if ((s->used + 1) * 2 > s->cap) {
        strset_t grown = {NULL, s->cap ? s->cap * 2 : 16, 0, s->nocase};
        grown.slots = rm_calloc(grown.cap, sizeof(*grown.slots));
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i].key != NULL)
                strset_add(&grown, s->slots[i].key, s->slots[i].value);
        free(s->slots);
        *s = grown;
    }
    size_t i = strset_hash(key, len, s->nocase) & (s->cap - 1);
    while (s->slots[i].key != NULL)
        i = (i + 1) & (s->cap - 1);
    s->slots[i] = (strset_entry_t){key, len, value};
    s->used++;
    return SIZE_MAX;
}

/* ---- loader state ---- */

/* A cluster's eds_cluster_config, kept aside while the cluster is decoded: rm_cluster_config_t only
 * keeps the service name, the config source is checked and dropped. */
typedef struct {
    bool present;
    rm_config_source_t eds_config;
    char *service_name;
} eds_cluster_tmp_t;

typedef struct {
    rm_bootstrap_config_t *b;
    strset_t cluster_names;                /* filled once clusters are decoded; routes look names up here */
    rm_cluster_config_t *cluster;          /* the cluster being decoded */
    uint32_t priority;                     /* of the LocalityLbEndpoints being decoded */
    uint64_t priorities_seen[3];           /* bit per priority 0..128 in the current load_assignment */
    bool router_seen;                      /* in the current http_filters */
    bool load_assignment_seen;             /* in the current cluster */
    bool transport_version_seen;           /* in the current ApiConfigSource */
    eds_cluster_tmp_t eds;                 /* of the current cluster */
    bool least_request_seen;               /* least_request_lb_config in the current cluster */
    bool round_robin_seen;                 /* round_robin_lb_config in the current cluster */
    rm_socket_address_config_t hc_address; /* health_check_config.address being decoded */
    bool hc_kind_seen;                     /* a health checker in the current HealthCheck */
    bool cb_priority_seen[2];              /* circuit_breakers thresholds priorities in the current cluster */
    bool explicit_seen;                    /* explicit_http_config in the current HttpProtocolOptions */
} loader_t;

static loader_t *L(rm_yaml_decoder_t *d)
{
    return d->user;
}

/* Fails naming a field of the message being checked. */
static int fail_at(rm_yaml_decoder_t *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(rm_yaml_decoder_t *d, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rm_yaml_path_push_key(d, key);
    return rm_yaml_fail(d, "%s", msg);
}

/* ---- enums (Envoy's names and numbers) ---- */

#define ENUM(values)                                                                                         \
    {                                                                                                        \
        (values), RM_ARRAY_LEN(values)                                                                       \
    }

static const rm_yaml_enum_value_t protocol_values[] = {{"TCP", 0, false}, {"UDP", 1, true}};
static const rm_yaml_enum_t protocol_enum = ENUM(protocol_values);

static const rm_yaml_enum_value_t health_status_values[] = {
    {"UNKNOWN", RM_HEALTH_STATUS_UNKNOWN, false},     {"HEALTHY", RM_HEALTH_STATUS_HEALTHY, false},
    {"UNHEALTHY", RM_HEALTH_STATUS_UNHEALTHY, false}, {"DRAINING", RM_HEALTH_STATUS_DRAINING, false},
    {"TIMEOUT", RM_HEALTH_STATUS_TIMEOUT, false},     {"DEGRADED", RM_HEALTH_STATUS_DEGRADED, false},
};
static const rm_yaml_enum_t health_status_enum = ENUM(health_status_values);

static const rm_yaml_enum_value_t cluster_type_values[] = {
    {"STATIC", RM_CLUSTER_STATIC, false},
    {"STRICT_DNS", RM_CLUSTER_STRICT_DNS, false},
    {"LOGICAL_DNS", RM_CLUSTER_LOGICAL_DNS, true},
    {"EDS", RM_CLUSTER_EDS, false},
    {"ORIGINAL_DST", 4, true},
};
static const rm_yaml_enum_t cluster_type_enum = ENUM(cluster_type_values);

static const rm_yaml_enum_value_t lb_policy_values[] = {
    {"ROUND_ROBIN", RM_LB_ROUND_ROBIN, false},
    {"LEAST_REQUEST", RM_LB_LEAST_REQUEST, false},
    {"RING_HASH", 2, true},
    {"RANDOM", RM_LB_RANDOM, false},
    {"MAGLEV", 5, true},
    {"CLUSTER_PROVIDED", 6, true},
    {"LOAD_BALANCING_POLICY_CONFIG", 7, true},
};
static const rm_yaml_enum_t lb_policy_enum = ENUM(lb_policy_values);

static const rm_yaml_enum_value_t dns_family_values[] = {
    {"AUTO", RM_DNS_LOOKUP_AUTO, false},       {"V4_ONLY", RM_DNS_LOOKUP_V4_ONLY, false},
    {"V6_ONLY", RM_DNS_LOOKUP_V6_ONLY, false}, {"V4_PREFERRED", RM_DNS_LOOKUP_V4_PREFERRED, false},
    {"ALL", RM_DNS_LOOKUP_ALL, false},
};
static const rm_yaml_enum_t dns_family_enum = ENUM(dns_family_values);

static const rm_yaml_enum_value_t codec_values[] = {
    {"AUTO", RM_HTTP_CODEC_AUTO, false},
    {"HTTP1", RM_HTTP_CODEC_HTTP1, false},
    {"HTTP2", RM_HTTP_CODEC_HTTP2, false},
    {"HTTP3", 3, true},
};
static const rm_yaml_enum_t codec_enum = ENUM(codec_values);

/* ---- shared rules ---- */

static const rm_yaml_range_t port_range = {0, 65535};
static const rm_yaml_range_t at_least_one = {1, UINT32_MAX};
static const rm_yaml_range_t priority_range = {0, 128};
static const rm_yaml_range_t headers_kb_range = {1, 8192};
static const rm_yaml_range_t h2_window_range = {65535, 2147483647};
static const rm_yaml_range_t h2_streams_range = {1, 2147483647};
static const rm_yaml_duration_rule_t positive = {0, true};
static const rm_yaml_duration_rule_t above_1ms = {1000000, true};

/* config.core.v3.Http2ProtocolOptions, decoded into an rm_http2_options_t. */
#define H2_FIELD(name, range) RM_YAML_FIELD(#name, rm_yaml_decode_uint32, rm_http2_options_t, name, range, 0)
static const rm_yaml_field_t http2_options_fields[] = {
    H2_FIELD(max_concurrent_streams, &h2_streams_range),
    H2_FIELD(initial_stream_window_size, &h2_window_range),
    H2_FIELD(initial_connection_window_size, &h2_window_range),
    H2_FIELD(hpack_table_size, NULL),
    H2_FIELD(max_outbound_control_frames, &at_least_one),
    H2_FIELD(max_consecutive_inbound_frames_with_empty_payload, NULL),
    RM_YAML_FIELDS_END,
};
static const char http2_options_unsupported[] =
    "allow_connect allow_metadata max_outbound_frames max_inbound_priority_frames_per_stream "
    "max_inbound_window_update_frames_per_data_frame_sent stream_error_on_invalid_http_messaging "
    "override_stream_error_on_invalid_http_message custom_settings_parameters connection_keepalive "
    "use_oghttp2_codec max_metadata_size";
static const rm_yaml_message_t http2_options_message = {"Http2ProtocolOptions", http2_options_fields,
                                                        http2_options_unsupported, NULL, NULL};

#define NAME_UPSTREAM_HTTP_OPTIONS "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define TYPE_UPSTREAM_HTTP_OPTIONS "type.googleapis.com/" NAME_UPSTREAM_HTTP_OPTIONS

/* config.core.v3.Http1ProtocolOptions: accepted only empty (HTTP/1.1 with Remora's defaults). */
static const rm_yaml_field_t http1_options_fields[] = {
    RM_YAML_FIELDS_END,
};
static const char http1_options_unsupported[] =
    "allow_absolute_url accept_http_10 default_host_for_http_10 header_key_format enable_trailers "
    "allow_chunked_length override_stream_error_on_invalid_http_message send_fully_qualified_url "
    "use_balsa_parser allow_custom_methods ignore_http_11_upgrade";
static const rm_yaml_message_t http1_options_message = {"Http1ProtocolOptions", http1_options_fields,
                                                        http1_options_unsupported, NULL, NULL};

/* Per-cluster protocol choice; obj is the rm_cluster_config_t. */
static int decode_explicit_h1(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    (void)f;
    rm_cluster_config_t *c = obj;
    if (c->protocol == RM_UPSTREAM_HTTP2)
        return rm_yaml_fail(d, "only one of http_protocol_options, http2_protocol_options may be set");
    c->protocol = RM_UPSTREAM_HTTP1;
    return rm_yaml_decode_message(d, n, &http1_options_message, c);
}

static int decode_cluster_h2(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    (void)f;
    rm_cluster_config_t *c = obj;
    c->protocol = RM_UPSTREAM_HTTP2;
    return rm_yaml_decode_message(d, n, &http2_options_message, &c->http2);
}

static const rm_yaml_field_t explicit_http_fields[] = {
    {"http2_protocol_options", decode_cluster_h2, 0, NULL, 0},
    {"http_protocol_options", decode_explicit_h1, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t explicit_http_message = {"ExplicitHttpConfig", explicit_http_fields,
                                                        "http3_protocol_options", NULL, NULL};

static int upstream_http_options_check(rm_yaml_decoder_t *d, void *obj)
{
    (void)obj;
    if (L(d)->explicit_seen)
        return 0;
    return rm_yaml_fail(d,
                        "explicit_http_config is required (the other protocol selections are not supported)");
}

static int decode_explicit_http(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    (void)f;
    L(d)->explicit_seen = true;
    return rm_yaml_decode_message(d, n, &explicit_http_message, obj);
}

static const rm_yaml_field_t upstream_http_options_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_UPSTREAM_HTTP_OPTIONS, RM_YAML_REQUIRED},
    {"explicit_http_config", decode_explicit_http, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char upstream_http_options_unsupported[] =
    "common_http_protocol_options upstream_http_protocol_options use_downstream_protocol_config "
    "auto_config http_filters header_validation_config";
static const rm_yaml_message_t upstream_http_options_message = {
    "HttpProtocolOptions", upstream_http_options_fields, upstream_http_options_unsupported, NULL,
    upstream_http_options_check};

/* ---- core.v3.Address ---- */

static int decode_protocol(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    /* Only TCP exists for Remora, so the value is checked and not stored. */
    int value;
    rm_yaml_field_t tmp = {f->name, NULL, 0, &protocol_enum, 0};
    return rm_yaml_decode_enum(d, n, &value, &tmp);
}

static int check_ip_address(rm_yaml_decoder_t *d, void *obj)
{
    rm_socket_address_config_t *a = obj;
    if (!rm_is_ip_literal(a->address))
        return fail_at(d, "address", "expected an IP address, got \"%s\"", a->address);
    return 0;
}

static int check_endpoint_address(rm_yaml_decoder_t *d, void *obj)
{
    rm_socket_address_config_t *a = obj;
    if (L(d)->cluster->type == RM_CLUSTER_STATIC && !rm_is_ip_literal(a->address))
        return fail_at(d, "address",
                       "STATIC clusters need an IP address, got \"%s\" (use STRICT_DNS for names)",
                       a->address);
    if (L(d)->cluster->type == RM_CLUSTER_STRICT_DNS && !rm_is_ip_literal(a->address) &&
        !rm_is_hostname(a->address))
        return fail_at(d, "address", "invalid host name \"%s\"", a->address);
    if (a->port == 0)
        return fail_at(d, "port_value", "an upstream endpoint needs a port (1..65535)");
    return 0;
}

static const rm_yaml_field_t socket_address_fields[] = {
    RM_YAML_FIELD("address", rm_yaml_decode_string, rm_socket_address_config_t, address, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELD("port_value", rm_yaml_decode_uint32, rm_socket_address_config_t, port, &port_range, 0),
    {"protocol", decode_protocol, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char socket_address_unsupported[] =
    "named_port resolver_name ipv4_compat network_namespace_filepath";
/* Listeners and admin bind to an IP literal (port 0: ephemeral); endpoints depend on cluster type. */
static const rm_yaml_message_t listen_socket_address = {"SocketAddress", socket_address_fields,
                                                        socket_address_unsupported, NULL, check_ip_address};
static const rm_yaml_message_t endpoint_socket_address = {
    "SocketAddress", socket_address_fields, socket_address_unsupported, NULL, check_endpoint_address};

static const char address_unsupported[] = "pipe envoy_internal_address";
static const rm_yaml_field_t listen_address_fields[] = {
    {"socket_address", rm_yaml_decode_submessage, 0, &listen_socket_address, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t listen_address = {"Address", listen_address_fields, address_unsupported, NULL,
                                                 NULL};
static const rm_yaml_field_t endpoint_address_fields[] = {
    {"socket_address", rm_yaml_decode_submessage, 0, &endpoint_socket_address, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t endpoint_address = {"Address", endpoint_address_fields, address_unsupported,
                                                   NULL, NULL};

/* ---- core.v3.ConfigSource / ApiConfigSource / GrpcService (into rm_config_source_t) ---- */

static const rm_yaml_enum_value_t api_type_values[] = {
    {"DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE", 0, true},
    {"REST", 1, true},
    {"GRPC", 2, false},
    {"DELTA_GRPC", 3, true},
    {"AGGREGATED_GRPC", 5, true},
    {"AGGREGATED_DELTA_GRPC", 6, true},
};
static const rm_yaml_enum_t api_type_enum = ENUM(api_type_values);

#define API_V3 2
static const rm_yaml_enum_value_t api_version_values[] = {
    {"AUTO", 0, false}, {"V2", 1, false}, {"V3", API_V3, false}};
static const rm_yaml_enum_t api_version_enum = ENUM(api_version_values);

/* Only GRPC exists for Remora, so the value is checked and not stored. */
static int decode_api_type(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    int value;
    rm_yaml_field_t tmp = {f->name, NULL, 0, &api_type_enum, 0};
    return rm_yaml_decode_enum(d, n, &value, &tmp);
}

/* Envoy rejects the v2 transport and AUTO (which meant v2) since v2 was removed; so do we. */
static int decode_transport_api_version(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj,
                                        const rm_yaml_field_t *f)
{
    int value;
    rm_yaml_field_t tmp = {f->name, NULL, 0, &api_version_enum, 0};
    if (rm_yaml_decode_enum(d, n, &value, &tmp) != 0)
        return -1;
    if (value != API_V3)
        return rm_yaml_fail(d, "must be V3 (the V2 and AUTO transports were removed from xDS)");
    L(d)->transport_version_seen = true;
    return 0;
}

static int decode_resource_api_version(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj,
                                       const rm_yaml_field_t *f)
{
    int value;
    rm_yaml_field_t tmp = {f->name, NULL, 0, &api_version_enum, 0};
    if (rm_yaml_decode_enum(d, n, &value, &tmp) != 0)
        return -1;
    if (value == 1)
        return rm_yaml_fail(d, "V2 resources are not supported (use V3)");
    return 0;
}

static const rm_yaml_field_t envoy_grpc_fields[] = {
    RM_YAML_FIELD("cluster_name", rm_yaml_decode_string, rm_config_source_t, grpc_cluster, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELDS_END,
};
static const char envoy_grpc_unsupported[] =
    "authority retry_policy max_receive_message_length skip_envoy_headers";
static const rm_yaml_message_t envoy_grpc_message = {"EnvoyGrpc", envoy_grpc_fields, envoy_grpc_unsupported,
                                                     NULL, NULL};

static const rm_yaml_field_t grpc_service_fields[] = {
    {"envoy_grpc", rm_yaml_decode_submessage, 0, &envoy_grpc_message, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const char grpc_service_unsupported[] = "google_grpc timeout initial_metadata retry_policy";
static const rm_yaml_message_t grpc_service_message = {"GrpcService", grpc_service_fields,
                                                       grpc_service_unsupported, NULL, NULL};

/* Decoded into the rm_config_source_t itself: Remora talks to one management server. */
static const rm_yaml_seq_t grpc_services_seq = {
    rm_yaml_decode_submessage,
    &grpc_service_message,
    0,
    0,
    1,
    1,
    "needs one gRPC service (envoy_grpc: {cluster_name: ...})",
    "only one gRPC service is supported for now",
    0,
};

static void api_config_source_init(rm_yaml_decoder_t *d, void *obj)
{
    L(d)->transport_version_seen = false;
}

static int api_config_source_check(rm_yaml_decoder_t *d, void *obj)
{
    if (!L(d)->transport_version_seen)
        return fail_at(
            d, "transport_api_version",
            "required field is missing (must be V3; the V2 and AUTO transports were removed from xDS)");
    return 0;
}

static const rm_yaml_field_t api_config_source_fields[] = {
    {"api_type", decode_api_type, 0, NULL, RM_YAML_REQUIRED},
    {"transport_api_version", decode_transport_api_version, 0, NULL, 0},
    {"grpc_services", rm_yaml_decode_seq, 0, &grpc_services_seq, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const char api_config_source_unsupported[] =
    "cluster_names refresh_delay request_timeout rate_limit_settings set_node_on_first_message_only "
    "config_validators";
static const rm_yaml_message_t api_config_source_message = {"ApiConfigSource", api_config_source_fields,
                                                            api_config_source_unsupported,
                                                            api_config_source_init, api_config_source_check};

static const rm_yaml_field_t aggregated_config_source_fields[] = {RM_YAML_FIELDS_END};
static const rm_yaml_message_t aggregated_config_source_message = {
    "AggregatedConfigSource", aggregated_config_source_fields, NULL, NULL, NULL};

static int decode_ads(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    ((rm_config_source_t *)obj)->ads = true;
    return rm_yaml_decode_message(d, n, &aggregated_config_source_message, obj);
}

static void config_source_init(rm_yaml_decoder_t *d, void *obj)
{
    rm_config_source_t *cs = obj;
    cs->set = true;
    cs->initial_fetch_timeout_ms = 15000;
}

/* Envoy's config_source_specifier oneof: exactly one way of getting the resources. */
static int config_source_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_config_source_t *cs = obj;
    if (cs->ads && cs->grpc_cluster != NULL)
        return fail_at(d, "ads", "only one of api_config_source, ads may be set");
    if (!cs->ads && cs->grpc_cluster == NULL)
        return rm_yaml_fail(d, "one of ads, api_config_source is required");
    return 0;
}

static const rm_yaml_field_t config_source_fields[] = {
    {"api_config_source", rm_yaml_decode_submessage, 0, &api_config_source_message, 0},
    {"ads", decode_ads, 0, NULL, 0},
    RM_YAML_FIELD("initial_fetch_timeout", rm_yaml_decode_duration_ms, rm_config_source_t,
                  initial_fetch_timeout_ms, NULL, 0),
    {"resource_api_version", decode_resource_api_version, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char config_source_unsupported[] = "authorities path path_config_source self";
static const rm_yaml_message_t config_source_message = {
    "ConfigSource", config_source_fields, config_source_unsupported, config_source_init, config_source_check};

/* A cluster's eds_config: the same, except that a per-cluster initial_fetch_timeout is not supported yet
 * (the one of cds_config bounds the whole initial fetch). */
static const rm_yaml_field_t eds_config_source_fields[] = {
    {"api_config_source", rm_yaml_decode_submessage, 0, &api_config_source_message, 0},
    {"ads", decode_ads, 0, NULL, 0},
    {"resource_api_version", decode_resource_api_version, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char eds_config_source_unsupported[] =
    "authorities path path_config_source self initial_fetch_timeout";
static const rm_yaml_message_t eds_config_source_message = {"ConfigSource", eds_config_source_fields,
                                                            eds_config_source_unsupported, config_source_init,
                                                            config_source_check};

/* ---- endpoint.v3 (into rm_cluster_config_t / rm_endpoint_config_t) ---- */

/* Endpoint.HealthCheckConfig: where active health checks go (into rm_endpoint_config_t). */
static void hc_config_init(rm_yaml_decoder_t *d, void *obj)
{
    free(L(d)->hc_address.address);
    memset(&L(d)->hc_address, 0, sizeof(L(d)->hc_address));
}

static int decode_hc_address(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    return rm_yaml_decode_message(d, n, &listen_address, &L(d)->hc_address);
}

static int hc_config_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_endpoint_config_t *e = obj;
    rm_socket_address_config_t *a = &L(d)->hc_address;
    if (a->address != NULL) {
        e->hc_address = a->address;
        a->address = NULL;
        if (e->hc_port == 0)
            e->hc_port = a->port;
        if (e->hc_port == 0)
            return fail_at(d, "port_value", "a health check address needs a port (here or in address)");
    }
    return 0;
}

static const rm_yaml_field_t hc_config_fields[] = {
    RM_YAML_FIELD("port_value", rm_yaml_decode_uint32, rm_endpoint_config_t, hc_port, &port_range, 0),
    {"address", decode_hc_address, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char hc_config_unsupported[] = "hostname disable_active_health_check";
static const rm_yaml_message_t hc_config_message = {"Endpoint.HealthCheckConfig", hc_config_fields,
                                                    hc_config_unsupported, hc_config_init, hc_config_check};

static const rm_yaml_field_t endpoint_fields[] = {
    RM_YAML_FIELD("address", rm_yaml_decode_submessage, rm_endpoint_config_t, address, &endpoint_address,
                  RM_YAML_REQUIRED),
    {"health_check_config", rm_yaml_decode_submessage, 0, &hc_config_message, 0},
    RM_YAML_FIELDS_END,
};
static const char endpoint_unsupported[] = "hostname additional_addresses";
static const rm_yaml_message_t endpoint_message = {"Endpoint", endpoint_fields, endpoint_unsupported, NULL,
                                                   NULL};

static void lb_endpoint_init(rm_yaml_decoder_t *d, void *obj)
{
    rm_endpoint_config_t *e = obj;
    e->weight = 1;
    e->priority = L(d)->priority;
}

static const rm_yaml_field_t lb_endpoint_fields[] = {
    {"endpoint", rm_yaml_decode_submessage, 0, &endpoint_message, RM_YAML_REQUIRED},
    RM_YAML_FIELD("health_status", rm_yaml_decode_enum, rm_endpoint_config_t, health_status,
                  &health_status_enum, 0),
    RM_YAML_FIELD("load_balancing_weight", rm_yaml_decode_uint32, rm_endpoint_config_t, weight, &at_least_one,
                  0),
    RM_YAML_FIELDS_END,
};
static const char lb_endpoint_unsupported[] = "metadata endpoint_name";
static const rm_yaml_message_t lb_endpoint_message = {"LbEndpoint", lb_endpoint_fields,
                                                      lb_endpoint_unsupported, lb_endpoint_init, NULL};

static int decode_priority(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    uint32_t p;
    rm_yaml_field_t tmp = {f->name, NULL, 0, &priority_range, 0};
    if (rm_yaml_decode_uint32(d, n, &p, &tmp) != 0)
        return -1;
    L(d)->priority = p;
    return 0;
}

static void locality_init(rm_yaml_decoder_t *d, void *obj)
{
    L(d)->priority = 0;
}

static int locality_check(rm_yaml_decoder_t *d, void *obj)
{
    uint32_t p = L(d)->priority;
    L(d)->priorities_seen[p / 64] |= 1ull << (p % 64);
    return 0;
}

static const rm_yaml_seq_t lb_endpoints_seq = {
    rm_yaml_decode_submessage,
    &lb_endpoint_message,
    sizeof(rm_endpoint_config_t),
    offsetof(rm_cluster_config_t, num_endpoints),
    0,
    0,
    NULL,
    NULL,
    0,
};
/* Decoded into the cluster: its endpoints are appended to the cluster's flat list. priority comes
 * first so each LbEndpoint's init can stamp it. */
static const rm_yaml_field_t locality_fields[] = {
    {"priority", decode_priority, 0, NULL, 0},
    RM_YAML_FIELD("lb_endpoints", rm_yaml_decode_seq, rm_cluster_config_t, endpoints, &lb_endpoints_seq, 0),
    RM_YAML_FIELDS_END,
};
static const char locality_unsupported[] =
    "locality load_balancing_weight proximity load_balancer_endpoints leds_cluster_locality_config "
    "metadata";
static const rm_yaml_message_t locality_message = {"LocalityLbEndpoints", locality_fields,
                                                   locality_unsupported, locality_init, locality_check};

static const rm_yaml_field_t policy_fields[] = {
    RM_YAML_FIELD("overprovisioning_factor", rm_yaml_decode_uint32, rm_cluster_config_t,
                  overprovisioning_factor, &at_least_one, 0),
    RM_YAML_FIELDS_END,
};
static const char policy_unsupported[] = "drop_overloads endpoint_stale_after weighted_priority_health";
static const rm_yaml_message_t policy_message = {"ClusterLoadAssignment.Policy", policy_fields,
                                                 policy_unsupported, NULL, NULL};

static void load_assignment_init(rm_yaml_decoder_t *d, void *obj)
{
    memset(L(d)->priorities_seen, 0, sizeof(L(d)->priorities_seen));
    L(d)->load_assignment_seen = true;
}

/* Envoy's priority levels must run from 0 without gaps (failover walks them in order). */
static int load_assignment_check(rm_yaml_decoder_t *d, void *obj)
{
    const uint64_t *seen = L(d)->priorities_seen;
    bool gap = false;
    for (unsigned p = 0; p <= 128; p++) {
        bool used = seen[p / 64] & (1ull << (p % 64));
        if (!used) {
            gap = true;
            continue;
        }
        if (gap) {
            rm_yaml_path_push_key(d, "endpoints");
            return rm_yaml_fail(d, "priorities must be contiguous from 0: priority %u is used but not %u", p,
                                p - 1);
        }
    }
    return 0;
}

static const rm_yaml_seq_t localities_seq = {
    rm_yaml_decode_submessage, &locality_message, 0, 0, 0, 0, NULL, NULL, 0};
static const rm_yaml_field_t load_assignment_fields[] = {
    {"cluster_name", rm_yaml_check_string, 0, NULL, RM_YAML_REQUIRED | RM_YAML_NONEMPTY},
    {"endpoints", rm_yaml_decode_seq, 0, &localities_seq, 0},
    {"policy", rm_yaml_decode_submessage, 0, &policy_message, 0},
    RM_YAML_FIELDS_END,
};
static const char load_assignment_unsupported[] = "named_endpoints";
static const rm_yaml_message_t load_assignment_message = {"ClusterLoadAssignment", load_assignment_fields,
                                                          load_assignment_unsupported, load_assignment_init,
                                                          load_assignment_check};

/* ---- load balancer settings (into rm_cluster_config_t) ---- */

typedef struct {
    double min, max;
    bool min_exclusive;
} double_range_t;

/* A double (proto-JSON number, written plain: quoted numbers are rejected like quoted integers). arg:
 * a double_range_t or NULL. [double] */
static int decode_double(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    char buf[64];
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return rm_yaml_fail(d, "expected a number, got the quoted string %s (remove the quotes)",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    if (n->type != YAML_SCALAR_NODE)
        return rm_yaml_fail(d, "expected a number, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    const char *text = (const char *)n->data.scalar.value;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (text[0] == '\0' || end != text + n->data.scalar.length || errno != 0 || !isfinite(v) ||
        strpbrk(text, "xXnN") != NULL) /* no hex floats, NaN or infinities */
        return rm_yaml_fail(d, "expected a number, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    const double_range_t *r = f->arg;
    if (r != NULL && (v < r->min || v > r->max || (r->min_exclusive && v == r->min)))
        return rm_yaml_fail(d, "%s is out of range (%s%g..%g)", text, r->min_exclusive ? "above " : "",
                            r->min, r->max);
    *(double *)((char *)obj + f->offset) = v;
    return 0;
}

static const double_range_t percent_range = {0, 100, false};
static const double_range_t weight_percent_range = {0, 100, true};
static const double_range_t aggression_range = {0, 1e9, true};

/* type.v3.Percent, decoded into the double it wraps. */
static const rm_yaml_field_t percent_fields[] = {
    {"value", decode_double, 0, &percent_range, 0},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t percent_message = {"Percent", percent_fields, NULL, NULL, NULL};
/* A slow-start host's minimum weight: 0 would give it no traffic at all, and 0 also means "default"
 * in rm_cluster_config_t, so it is refused. */
static const rm_yaml_field_t weight_percent_fields[] = {
    {"value", decode_double, 0, &weight_percent_range, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t weight_percent_message = {"Percent", weight_percent_fields, NULL, NULL, NULL};

/* core.v3.RuntimeDouble: Remora has no runtime layer, so runtime_key never overrides the default (as
 * in an Envoy whose runtime does not set the key); it is checked and dropped. */
static const rm_yaml_field_t runtime_double_fields[] = {
    {"default_value", decode_double, 0, &aggression_range, RM_YAML_REQUIRED},
    {"runtime_key", rm_yaml_check_string, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t runtime_double_message = {"RuntimeDouble", runtime_double_fields, NULL, NULL,
                                                         NULL};

static const rm_yaml_field_t slow_start_fields[] = {
    RM_YAML_FIELD("slow_start_window", rm_yaml_decode_duration_ms, rm_cluster_config_t, slow_start_window_ms,
                  NULL, 0),
    RM_YAML_FIELD("aggression", rm_yaml_decode_submessage, rm_cluster_config_t, slow_start_aggression,
                  &runtime_double_message, 0),
    RM_YAML_FIELD("min_weight_percent", rm_yaml_decode_submessage, rm_cluster_config_t,
                  slow_start_min_weight_percent, &weight_percent_message, 0),
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t slow_start_message = {"SlowStartConfig", slow_start_fields, NULL, NULL, NULL};

static const rm_yaml_range_t choice_count_range = {2, UINT32_MAX};
static const rm_yaml_field_t least_request_fields[] = {
    RM_YAML_FIELD("choice_count", rm_yaml_decode_uint32, rm_cluster_config_t, choice_count,
                  &choice_count_range, 0),
    {"slow_start_config", rm_yaml_decode_submessage, 0, &slow_start_message, 0},
    RM_YAML_FIELDS_END,
};
static const char least_request_unsupported[] = "active_request_bias locality_lb_config enable_full_scan "
                                                "selection_method";
static const rm_yaml_message_t least_request_message = {"LeastRequestLbConfig", least_request_fields,
                                                        least_request_unsupported, NULL, NULL};

static int decode_least_request(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    L(d)->least_request_seen = true;
    return rm_yaml_decode_message(d, n, &least_request_message, obj);
}

static const rm_yaml_field_t round_robin_fields[] = {
    {"slow_start_config", rm_yaml_decode_submessage, 0, &slow_start_message, 0},
    RM_YAML_FIELDS_END,
};
static const char round_robin_unsupported[] = "locality_lb_config";
static const rm_yaml_message_t round_robin_message = {"RoundRobinLbConfig", round_robin_fields,
                                                      round_robin_unsupported, NULL, NULL};

static int decode_round_robin(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    L(d)->round_robin_seen = true;
    return rm_yaml_decode_message(d, n, &round_robin_message, obj);
}

static int decode_panic_threshold(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    rm_cluster_config_t *c = obj;
    c->healthy_panic_threshold_set = true;
    return rm_yaml_decode_message(d, n, &percent_message, &c->healthy_panic_threshold);
}

static const rm_yaml_field_t common_lb_fields[] = {
    {"healthy_panic_threshold", decode_panic_threshold, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char common_lb_unsupported[] =
    "zone_aware_lb_config locality_weighted_lb_config update_merge_window ignore_new_hosts_until_first_hc "
    "close_connections_on_host_set_change consistent_hashing_lb_config override_host_status";
static const rm_yaml_message_t common_lb_message = {"CommonLbConfig", common_lb_fields, common_lb_unsupported,
                                                    NULL, NULL};

/* ---- cluster.v3.OutlierDetection ---- */

static const rm_yaml_range_t percent_u32 = {0, 100};

static void outlier_init(rm_yaml_decoder_t *d, void *obj)
{
    rm_outlier_detection_config_defaults(obj);
}

#define OD_U32(name, range)                                                                                  \
    RM_YAML_FIELD(#name, rm_yaml_decode_uint32, rm_outlier_detection_config_t, name, range, 0)
#define OD_MS(name, json)                                                                                    \
    RM_YAML_FIELD(json, rm_yaml_decode_duration_ms, rm_outlier_detection_config_t, name, &positive, 0)
#define OD_BOOL(name) RM_YAML_FIELD(#name, rm_yaml_decode_bool, rm_outlier_detection_config_t, name, NULL, 0)
static const rm_yaml_field_t outlier_fields[] = {
    OD_U32(consecutive_5xx, NULL),
    OD_MS(interval_ms, "interval"),
    OD_MS(base_ejection_time_ms, "base_ejection_time"),
    OD_U32(max_ejection_percent, &percent_u32),
    OD_U32(enforcing_consecutive_5xx, &percent_u32),
    OD_U32(enforcing_success_rate, &percent_u32),
    OD_U32(success_rate_minimum_hosts, NULL),
    OD_U32(success_rate_request_volume, NULL),
    OD_U32(success_rate_stdev_factor, NULL),
    OD_U32(consecutive_gateway_failure, NULL),
    OD_U32(enforcing_consecutive_gateway_failure, &percent_u32),
    OD_BOOL(split_external_local_origin_errors),
    OD_U32(consecutive_local_origin_failure, NULL),
    OD_U32(enforcing_consecutive_local_origin_failure, &percent_u32),
    OD_U32(enforcing_local_origin_success_rate, &percent_u32),
    OD_U32(failure_percentage_threshold, &percent_u32),
    OD_U32(enforcing_failure_percentage, &percent_u32),
    OD_U32(enforcing_failure_percentage_local_origin, &percent_u32),
    OD_U32(failure_percentage_minimum_hosts, NULL),
    OD_U32(failure_percentage_request_volume, NULL),
    OD_MS(max_ejection_time_ms, "max_ejection_time"),
    RM_YAML_FIELD("max_ejection_time_jitter", rm_yaml_decode_duration_ms, rm_outlier_detection_config_t,
                  max_ejection_time_jitter_ms, NULL, 0),
    OD_BOOL(successful_active_health_check_uneject_host),
    OD_BOOL(always_eject_one_host),
    RM_YAML_FIELDS_END,
};
#undef OD_U32
#undef OD_MS
#undef OD_BOOL
static const char outlier_unsupported[] = "monitors detect_degraded_hosts";
static const rm_yaml_message_t outlier_message = {"OutlierDetection", outlier_fields, outlier_unsupported,
                                                  outlier_init, NULL};

/* ---- core.v3.HealthCheck ---- */

static int decode_payload_text(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    rm_hc_payload_t *p = obj;
    char *text = NULL;
    rm_yaml_field_t tmp = {f->name, NULL, 0, NULL, 0};
    if (rm_yaml_decode_string(d, n, &text, &tmp) != 0)
        return -1;
    const char *err = NULL;
    free(p->data);
    p->data = NULL;
    int rc = rm_config_hex_decode(text, strlen(text), &p->data, &p->len, &err);
    free(text);
    if (rc != 0)
        return rm_yaml_fail(d, "invalid hex payload: %s", err);
    return 0;
}

static int payload_check(rm_yaml_decoder_t *d, void *obj)
{
    if (((rm_hc_payload_t *)obj)->data == NULL)
        return rm_yaml_fail(d, "text is required (hex bytes)");
    return 0;
}

static const rm_yaml_field_t payload_fields[] = {
    {"text", decode_payload_text, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char payload_unsupported[] = "binary";
static const rm_yaml_message_t payload_message = {"HealthCheck.Payload", payload_fields, payload_unsupported,
                                                  NULL, payload_check};

static const rm_yaml_seq_t receive_seq = {
    rm_yaml_decode_submessage,
    &payload_message,
    sizeof(rm_hc_payload_t),
    offsetof(rm_health_check_config_t, num_receive),
    0,
    0,
    NULL,
    NULL,
    0,
};

static int decode_range_bound(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    static const rm_yaml_range_t status_bound = {100, 600};
    uint32_t v;
    rm_yaml_field_t tmp = {f->name, NULL, 0, &status_bound, 0};
    if (rm_yaml_decode_uint32(d, n, &v, &tmp) != 0)
        return -1;
    *(int64_t *)((char *)obj + f->offset) = v;
    return 0;
}

static int status_range_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_hc_status_range_t *r = obj;
    if (r->end <= r->start)
        return fail_at(d, "end", "must be greater than start (the range is [start, end))");
    return 0;
}

static const rm_yaml_field_t status_range_fields[] = {
    {"start", decode_range_bound, offsetof(rm_hc_status_range_t, start), NULL, RM_YAML_REQUIRED},
    {"end", decode_range_bound, offsetof(rm_hc_status_range_t, end), NULL, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t status_range_message = {"Int64Range", status_range_fields, NULL, NULL,
                                                       status_range_check};
static const rm_yaml_seq_t statuses_seq = {
    rm_yaml_decode_submessage,
    &status_range_message,
    sizeof(rm_hc_status_range_t),
    offsetof(rm_health_check_config_t, num_expected_statuses),
    0,
    0,
    NULL,
    NULL,
    0,
};

static int hc_header_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_hc_header_t *h = obj;
    for (const char *p = h->key; *p; p++)
        if (*p <= ' ' || *p == ':' || *p == 127)
            return fail_at(d, "key", "invalid header name \"%s\"", h->key);
    for (const char *p = h->value ? h->value : ""; *p; p++)
        if ((*p < ' ' && *p != '\t') || *p == 127)
            return fail_at(d, "value", "control characters are not allowed in a header value");
    if (h->value == NULL)
        h->value = rm_strdup("");
    return 0;
}

static const rm_yaml_field_t hc_header_fields[] = {
    RM_YAML_FIELD("key", rm_yaml_decode_string, rm_hc_header_t, key, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELD("value", rm_yaml_decode_string, rm_hc_header_t, value, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char hc_header_unsupported[] = "raw_value";
static const rm_yaml_message_t hc_header_message = {"HeaderValue", hc_header_fields, hc_header_unsupported,
                                                    NULL, hc_header_check};
static const rm_yaml_field_t hc_header_option_fields[] = {
    {"header", rm_yaml_decode_submessage, 0, &hc_header_message, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const char hc_header_option_unsupported[] = "append append_action keep_empty_value";
static const rm_yaml_message_t hc_header_option_message = {"HeaderValueOption", hc_header_option_fields,
                                                           hc_header_option_unsupported, NULL, NULL};
static const rm_yaml_seq_t hc_headers_seq = {
    rm_yaml_decode_submessage,
    &hc_header_option_message,
    sizeof(rm_hc_header_t),
    offsetof(rm_health_check_config_t, num_headers),
    0,
    0,
    NULL,
    NULL,
    0,
};

/* RequestMethod names (CONNECT is not allowed for checks, as in Envoy). */
static int decode_hc_method(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST",  "PUT",
                                          "DELETE", "OPTIONS", "TRACE", "PATCH"};
    rm_health_check_config_t *hc = obj;
    char *m = NULL;
    rm_yaml_field_t tmp = {f->name, NULL, 0, NULL, 0};
    if (rm_yaml_decode_string(d, n, &m, &tmp) != 0)
        return -1;
    if (strcmp(m, "METHOD_UNSPECIFIED") == 0) {
        free(m);
        return 0;
    }
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i]) == 0) {
            free(hc->method);
            hc->method = m;
            return 0;
        }
    }
    rm_yaml_fail(d, "\"%s\" is not supported (one of GET HEAD POST PUT DELETE OPTIONS TRACE PATCH)", m);
    free(m);
    return -1;
}

static int decode_hc_codec(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    static const rm_yaml_enum_value_t values[] = {
        {"HTTP1", 0, false},
        {"HTTP2", 1, false},
        {"HTTP3", 2, true},
    };
    static const rm_yaml_enum_t codec = {values, 3};
    int v;
    rm_yaml_field_t tmp = {f->name, NULL, 0, &codec, 0};
    if (rm_yaml_decode_enum(d, n, &v, &tmp) != 0)
        return -1;
    ((rm_health_check_config_t *)obj)->http2 = v == 1;
    return 0;
}

static int http_hc_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_health_check_config_t *hc = obj;
    if (hc->path == NULL || hc->path[0] != '/')
        return fail_at(d, "path", "required, starting with '/'");
    for (const char *p = hc->path; *p; p++)
        if (*p <= ' ' || *p == 127)
            return fail_at(d, "path", "must not contain spaces or control characters");
    for (const char *p = hc->host ? hc->host : ""; *p; p++)
        if (*p <= ' ' || *p == 127)
            return fail_at(d, "host", "must not contain spaces or control characters");
    return 0;
}

static const rm_yaml_field_t http_hc_fields[] = {
    RM_YAML_FIELD("host", rm_yaml_decode_string, rm_health_check_config_t, host, NULL, 0),
    RM_YAML_FIELD("path", rm_yaml_decode_string, rm_health_check_config_t, path, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELD("receive", rm_yaml_decode_seq, rm_health_check_config_t, receive, &receive_seq, 0),
    RM_YAML_FIELD("request_headers_to_add", rm_yaml_decode_seq, rm_health_check_config_t, headers,
                  &hc_headers_seq, 0),
    RM_YAML_FIELD("expected_statuses", rm_yaml_decode_seq, rm_health_check_config_t, expected_statuses,
                  &statuses_seq, 0),
    {"codec_client_type", decode_hc_codec, 0, NULL, 0},
    {"method", decode_hc_method, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char http_hc_unsupported[] = "send response_buffer_size request_headers_to_remove "
                                          "retriable_statuses service_name_matcher";
static const rm_yaml_message_t http_hc_message = {"HealthCheck.HttpHealthCheck", http_hc_fields,
                                                  http_hc_unsupported, NULL, http_hc_check};

static const rm_yaml_field_t tcp_hc_fields[] = {
    RM_YAML_FIELD("send", rm_yaml_decode_submessage, rm_health_check_config_t, send, &payload_message, 0),
    RM_YAML_FIELD("receive", rm_yaml_decode_seq, rm_health_check_config_t, receive, &receive_seq, 0),
    RM_YAML_FIELDS_END,
};
static const char tcp_hc_unsupported[] = "proxy_protocol_config";
static const rm_yaml_message_t tcp_hc_message = {"HealthCheck.TcpHealthCheck", tcp_hc_fields,
                                                 tcp_hc_unsupported, NULL, NULL};

static int decode_checker(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, rm_health_check_kind_t kind)
{
    if (L(d)->hc_kind_seen)
        return rm_yaml_fail(d, "only one of http_health_check, tcp_health_check may be set");
    L(d)->hc_kind_seen = true;
    rm_health_check_config_t *hc = obj;
    hc->kind = kind;
    return rm_yaml_decode_message(d, n, kind == RM_HEALTH_CHECK_HTTP ? &http_hc_message : &tcp_hc_message,
                                  obj);
}

static int decode_http_hc(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    return decode_checker(d, n, obj, RM_HEALTH_CHECK_HTTP);
}

static int decode_tcp_hc(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    return decode_checker(d, n, obj, RM_HEALTH_CHECK_TCP);
}

static void health_check_init(rm_yaml_decoder_t *d, void *obj)
{
    rm_health_check_config_t *hc = obj;
    L(d)->hc_kind_seen = false;
    hc->reuse_connection = true;
    hc->no_traffic_interval_ms = 60000;
}

static int health_check_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_health_check_config_t *hc = obj;
    if (!L(d)->hc_kind_seen)
        return rm_yaml_fail(d, "one of http_health_check, tcp_health_check is required (grpc_health_check "
                               "and custom_health_check are not supported)");
    if (hc->timeout_ms == 0)
        return fail_at(d, "timeout", "required (> 0)");
    if (hc->interval_ms == 0)
        return fail_at(d, "interval", "required (> 0)");
    if (hc->unhealthy_threshold == 0)
        return fail_at(d, "unhealthy_threshold", "required (>= 1)");
    if (hc->healthy_threshold == 0)
        return fail_at(d, "healthy_threshold", "required (>= 1)");
    return 0;
}

static const rm_yaml_field_t health_check_fields[] = {
    RM_YAML_FIELD("timeout", rm_yaml_decode_duration_ms, rm_health_check_config_t, timeout_ms, &positive, 0),
    RM_YAML_FIELD("interval", rm_yaml_decode_duration_ms, rm_health_check_config_t, interval_ms, &positive,
                  0),
    RM_YAML_FIELD("initial_jitter", rm_yaml_decode_duration_ms, rm_health_check_config_t, initial_jitter_ms,
                  NULL, 0),
    RM_YAML_FIELD("interval_jitter", rm_yaml_decode_duration_ms, rm_health_check_config_t, interval_jitter_ms,
                  NULL, 0),
    RM_YAML_FIELD("interval_jitter_percent", rm_yaml_decode_uint32, rm_health_check_config_t,
                  interval_jitter_percent, NULL, 0),
    RM_YAML_FIELD("unhealthy_threshold", rm_yaml_decode_uint32, rm_health_check_config_t, unhealthy_threshold,
                  &at_least_one, 0),
    RM_YAML_FIELD("healthy_threshold", rm_yaml_decode_uint32, rm_health_check_config_t, healthy_threshold,
                  &at_least_one, 0),
    RM_YAML_FIELD("unhealthy_interval", rm_yaml_decode_duration_ms, rm_health_check_config_t,
                  unhealthy_interval_ms, &positive, 0),
    RM_YAML_FIELD("no_traffic_interval", rm_yaml_decode_duration_ms, rm_health_check_config_t,
                  no_traffic_interval_ms, &positive, 0),
    RM_YAML_FIELD("reuse_connection", rm_yaml_decode_bool, rm_health_check_config_t, reuse_connection, NULL,
                  0),
    {"http_health_check", decode_http_hc, 0, NULL, 0},
    {"tcp_health_check", decode_tcp_hc, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char health_check_unsupported[] =
    "grpc_health_check custom_health_check alt_port unhealthy_edge_interval healthy_edge_interval "
    "no_traffic_healthy_interval event_log_path event_logger event_service "
    "always_log_health_check_failures always_log_health_check_success tls_options "
    "transport_socket_match_criteria";
static const rm_yaml_message_t health_check_message = {
    "HealthCheck", health_check_fields, health_check_unsupported, health_check_init, health_check_check};
static const rm_yaml_seq_t health_checks_seq = {
    rm_yaml_decode_submessage,
    &health_check_message,
    sizeof(rm_health_check_config_t),
    offsetof(rm_cluster_config_t, num_health_checks),
    0,
    1,
    NULL,
    "Remora runs one active health check per cluster",
    0,
};

/* ---- cluster.v3.CircuitBreakers ---- */

static const rm_yaml_enum_value_t routing_priority_values[] = {
    {"DEFAULT", RM_ROUTING_PRIORITY_DEFAULT, false}, {"HIGH", RM_ROUTING_PRIORITY_HIGH, false}};
static const rm_yaml_enum_t routing_priority_enum = ENUM(routing_priority_values);

typedef struct {
    rm_routing_priority_t priority;
    rm_circuit_breaker_thresholds_t t;
} thresholds_tmp_t;

static void thresholds_init(rm_yaml_decoder_t *d, void *obj)
{
    (void)d;
    thresholds_tmp_t *t = obj;
    t->priority = RM_ROUTING_PRIORITY_DEFAULT;
    rm_circuit_breaker_thresholds_default(&t->t);
}

static const rm_yaml_field_t thresholds_fields[] = {
    RM_YAML_FIELD("priority", rm_yaml_decode_enum, thresholds_tmp_t, priority, &routing_priority_enum, 0),
    RM_YAML_FIELD("max_connections", rm_yaml_decode_uint32, thresholds_tmp_t, t.max_connections, NULL, 0),
    RM_YAML_FIELD("max_pending_requests", rm_yaml_decode_uint32, thresholds_tmp_t, t.max_pending_requests,
                  NULL, 0),
    RM_YAML_FIELD("max_requests", rm_yaml_decode_uint32, thresholds_tmp_t, t.max_requests, NULL, 0),
    RM_YAML_FIELD("max_retries", rm_yaml_decode_uint32, thresholds_tmp_t, t.max_retries, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char thresholds_unsupported[] = "retry_budget track_remaining max_connection_pools";
static const rm_yaml_message_t thresholds_message = {"CircuitBreakers.Thresholds", thresholds_fields,
                                                     thresholds_unsupported, thresholds_init, NULL};

/* One thresholds entry, stored by its priority; a priority may appear once. */
static int decode_thresholds(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    (void)f;
    rm_cluster_config_t *c = obj;
    thresholds_tmp_t t;
    memset(&t, 0, sizeof(t));
    if (rm_yaml_decode_message(d, n, &thresholds_message, &t) != 0)
        return -1;
    bool *seen = &L(d)->cb_priority_seen[t.priority];
    if (*seen)
        return fail_at(d, "priority", "thresholds for priority %s are given twice",
                       t.priority == RM_ROUTING_PRIORITY_HIGH ? "HIGH" : "DEFAULT");
    *seen = true;
    c->circuit_breakers[t.priority] = t.t;
    return 0;
}

static const rm_yaml_seq_t thresholds_seq = {decode_thresholds, NULL, 0, 0, 0, 0, NULL, NULL, 0};
static const rm_yaml_field_t circuit_breakers_fields[] = {
    {"thresholds", rm_yaml_decode_seq, 0, &thresholds_seq, 0},
    RM_YAML_FIELDS_END,
};
static const char circuit_breakers_unsupported[] = "per_host_thresholds";
static const rm_yaml_message_t circuit_breakers_message = {"CircuitBreakers", circuit_breakers_fields,
                                                           circuit_breakers_unsupported, NULL, NULL};

static int decode_circuit_breakers(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    (void)f;
    rm_cluster_config_t *c = obj;
    c->circuit_breakers_set = true;
    rm_circuit_breaker_thresholds_default(&c->circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT]);
    rm_circuit_breaker_thresholds_default(&c->circuit_breakers[RM_ROUTING_PRIORITY_HIGH]);
    L(d)->cb_priority_seen[0] = L(d)->cb_priority_seen[1] = false;
    return rm_yaml_decode_message(d, n, &circuit_breakers_message, obj);
}

/* ---- typed_extension_protocol_options: remora.fail_fast ---- */

static void fail_fast_init(rm_yaml_decoder_t *d, void *obj)
{
    (void)d;
    rm_fail_fast_config_t *ff = obj;
    ff->enabled = true;
    ff->consecutive_failures = 5;
    ff->open_duration_ms = 30000;
    ff->half_open_requests = 1;
}

static const rm_yaml_field_t fail_fast_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_FAIL_FAST, RM_YAML_REQUIRED},
    RM_YAML_FIELD("consecutive_failures", rm_yaml_decode_uint32, rm_fail_fast_config_t, consecutive_failures,
                  &at_least_one, 0),
    RM_YAML_FIELD("slow_call_threshold", rm_yaml_decode_duration_ms, rm_fail_fast_config_t, slow_call_ms,
                  &positive, 0),
    RM_YAML_FIELD("open_duration", rm_yaml_decode_duration_ms, rm_fail_fast_config_t, open_duration_ms,
                  &positive, 0),
    RM_YAML_FIELD("half_open_requests", rm_yaml_decode_uint32, rm_fail_fast_config_t, half_open_requests,
                  &at_least_one, 0),
    RM_YAML_FIELD("ignore_5xx", rm_yaml_decode_bool, rm_fail_fast_config_t, ignore_5xx, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t fail_fast_message = {"FailFastBreaker", fail_fast_fields, NULL, fail_fast_init,
                                                    NULL};

/* A map from extension name to its options; Remora knows one name of its own. */
static int decode_typed_extension_options(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj,
                                          const rm_yaml_field_t *f)
{
    (void)f;
    char buf[64];
    rm_cluster_config_t *c = obj;
    if (rm_yaml_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return rm_yaml_fail(d, "expected a mapping from extension name to options, got %s",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&d->doc, p->value);
        if (k == NULL || k->type != YAML_SCALAR_NODE)
            return rm_yaml_fail(d, "extension names must be strings");
        const char *name = (const char *)k->data.scalar.value;
        size_t mark = rm_yaml_path_push_key(d, name);
        int rc;
        if (strcmp(name, NAME_FAIL_FAST) == 0)
            rc = rm_yaml_decode_message(d, v, &fail_fast_message, &c->fail_fast);
        else if (strcmp(name, NAME_UPSTREAM_HTTP_OPTIONS) == 0) {
            L(d)->explicit_seen = false;
            rc = rm_yaml_decode_message(d, v, &upstream_http_options_message, c);
        } else {
            rc = rm_yaml_fail(d, "unknown extension (supported: " NAME_UPSTREAM_HTTP_OPTIONS
                                 ", " NAME_FAIL_FAST ")");
        }
        if (rc != 0)
            return rc;
        rm_yaml_path_pop(d, mark);
    }
    return 0;
}

/* ---- cluster.v3.Cluster ---- */

static void eds_tmp_reset(loader_t *l)
{
    free(l->eds.eds_config.grpc_cluster);
    free(l->eds.service_name);
    memset(&l->eds, 0, sizeof(l->eds));
}

/* Remora talks to one management server: an EDS cluster's eds_config must lead to the server that
 * dynamic_resources configures (ads: {} with ads_config, or the same api_config_source cluster as
 * cds_config). The cluster named there is itself checked once all clusters are known. */
static int eds_cluster_config_check(rm_yaml_decoder_t *d, void *obj)
{
    const eds_cluster_tmp_t *e = obj;
    const rm_dynamic_resources_config_t *dr = &L(d)->b->dynamic_resources;
    rm_yaml_path_push_key(d, "eds_config");
    if (e->eds_config.ads) {
        if (!dr->ads_config.set)
            return fail_at(d, "ads", "needs dynamic_resources.ads_config (the ADS server)");
        return 0;
    }
    rm_yaml_path_push_key(d, "api_config_source");
    if (dr->ads_config.set)
        return rm_yaml_fail(d, "not supported together with dynamic_resources.ads_config yet (use ads: {}; "
                               "Remora talks to one management server)");
    const char *server = dr->cds_config.set ? dr->cds_config.grpc_cluster : NULL;
    if (server == NULL)
        return rm_yaml_fail(d, "needs dynamic_resources.cds_config.api_config_source naming the same cluster "
                               "(Remora talks to one management server)");
    if (strcmp(server, e->eds_config.grpc_cluster) != 0) {
        rm_yaml_path_push_key(d, "grpc_services");
        rm_yaml_path_push_index(d, 0);
        rm_yaml_path_push_key(d, "envoy_grpc");
        return fail_at(d, "cluster_name",
                       "must be \"%s\", the cluster of dynamic_resources.cds_config (Remora talks to one "
                       "management server)",
                       server);
    }
    return 0;
}

static const rm_yaml_field_t eds_cluster_config_fields[] = {
    RM_YAML_FIELD("eds_config", rm_yaml_decode_submessage, eds_cluster_tmp_t, eds_config,
                  &eds_config_source_message, RM_YAML_REQUIRED),
    RM_YAML_FIELD("service_name", rm_yaml_decode_string, eds_cluster_tmp_t, service_name, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t eds_cluster_config_message = {"EdsClusterConfig", eds_cluster_config_fields,
                                                             NULL, NULL, eds_cluster_config_check};

static int decode_eds_cluster_config(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj,
                                     const rm_yaml_field_t *f)
{
    L(d)->eds.present = true;
    return rm_yaml_decode_message(d, n, &eds_cluster_config_message, &L(d)->eds);
}

/* ---- transport sockets (extensions.transport_sockets.tls.v3) ---- */

static int data_source_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_data_source_t *ds = obj;
    if (ds->filename != NULL && ds->inline_string != NULL)
        return fail_at(d, "inline_string", "only one of filename, inline_string may be set");
    if (ds->filename == NULL && ds->inline_string == NULL)
        return rm_yaml_fail(d, "one of filename, inline_string is required");
    if (ds->filename != NULL && access(ds->filename, R_OK) != 0)
        return fail_at(d, "filename", "cannot read \"%s\": %s", ds->filename, strerror(errno));
    return 0;
}

static const rm_yaml_field_t data_source_fields[] = {
    RM_YAML_FIELD("filename", rm_yaml_decode_string, rm_data_source_t, filename, NULL, RM_YAML_NONEMPTY),
    RM_YAML_FIELD("inline_string", rm_yaml_decode_string, rm_data_source_t, inline_string, NULL,
                  RM_YAML_NONEMPTY),
    RM_YAML_FIELDS_END,
};
static const char data_source_unsupported[] = "inline_bytes environment_variable watched_directory";
static const rm_yaml_message_t data_source_message = {"DataSource", data_source_fields,
                                                      data_source_unsupported, NULL, data_source_check};

static int tls_certificate_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_tls_config_t *t = obj;
    if (t->certificate_chain.filename == NULL && t->certificate_chain.inline_string == NULL)
        return fail_at(d, "certificate_chain", "required");
    if (t->private_key.filename == NULL && t->private_key.inline_string == NULL)
        return fail_at(d, "private_key", "required");
    t->has_certificate = true;
    return 0;
}

static const rm_yaml_field_t tls_certificate_fields[] = {
    RM_YAML_FIELD("certificate_chain", rm_yaml_decode_submessage, rm_tls_config_t, certificate_chain,
                  &data_source_message, 0),
    RM_YAML_FIELD("private_key", rm_yaml_decode_submessage, rm_tls_config_t, private_key,
                  &data_source_message, 0),
    RM_YAML_FIELDS_END,
};
static const char tls_certificate_unsupported[] =
    "pkcs12 watched_directory private_key_provider password ocsp_staple signed_certificate_timestamp";
static const rm_yaml_message_t tls_certificate_message = {
    "TlsCertificate", tls_certificate_fields, tls_certificate_unsupported, NULL, tls_certificate_check};

static const rm_yaml_seq_t tls_certificates_seq = {
    rm_yaml_decode_submessage,
    &tls_certificate_message,
    0,
    0,
    0,
    1,
    NULL,
    "only one certificate is supported for now",
    0,
};

/* SubjectAltNameMatcher: only DNS names matched exactly. */
typedef struct {
    int san_type;
    char *exact;
} san_matcher_tmp_t;

static const rm_yaml_enum_value_t san_type_values[] = {
    {"SAN_TYPE_UNSPECIFIED", 0, true}, {"EMAIL", 1, true},      {"DNS", 2, false}, {"URI", 3, true},
    {"IP_ADDRESS", 4, true},           {"OTHER_NAME", 5, true},
};
static const rm_yaml_enum_t san_type_enum = ENUM(san_type_values);

static const rm_yaml_field_t string_matcher_fields[] = {
    RM_YAML_FIELD("exact", rm_yaml_decode_string, san_matcher_tmp_t, exact, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELDS_END,
};
static const char string_matcher_unsupported[] = "prefix suffix safe_regex contains custom ignore_case";
static const rm_yaml_message_t string_matcher_message = {"StringMatcher", string_matcher_fields,
                                                         string_matcher_unsupported, NULL, NULL};

static const rm_yaml_field_t san_matcher_fields[] = {
    RM_YAML_FIELD("san_type", rm_yaml_decode_enum, san_matcher_tmp_t, san_type, &san_type_enum,
                  RM_YAML_REQUIRED),
    {"matcher", rm_yaml_decode_submessage, 0, &string_matcher_message, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const char san_matcher_unsupported[] = "oid";
static const rm_yaml_message_t san_matcher_message = {"SubjectAltNameMatcher", san_matcher_fields,
                                                      san_matcher_unsupported, NULL, NULL};

static int decode_san_matcher(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    san_matcher_tmp_t tmp = {0, NULL};
    if (rm_yaml_decode_message(d, n, &san_matcher_message, &tmp) != 0) {
        free(tmp.exact);
        return -1;
    }
    *(char **)obj = tmp.exact; /* the list owns it now */
    return 0;
}

static const rm_yaml_seq_t san_matchers_seq = {decode_san_matcher,
                                               NULL,
                                               sizeof(char *),
                                               offsetof(rm_tls_config_t, num_verify_san_dns),
                                               0,
                                               0,
                                               NULL,
                                               NULL,
                                               0};

static int validation_context_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_tls_config_t *t = obj;
    if (t->trusted_ca.filename == NULL && t->trusted_ca.inline_string == NULL)
        return fail_at(d, "trusted_ca", "required (Remora verifies peers only against a configured CA)");
    t->has_trusted_ca = true;
    return 0;
}

static const rm_yaml_field_t validation_context_fields[] = {
    RM_YAML_FIELD("trusted_ca", rm_yaml_decode_submessage, rm_tls_config_t, trusted_ca, &data_source_message,
                  0),
    RM_YAML_FIELD("match_typed_subject_alt_names", rm_yaml_decode_seq, rm_tls_config_t, verify_san_dns,
                  &san_matchers_seq, 0),
    RM_YAML_FIELDS_END,
};
static const char validation_context_unsupported[] =
    "ca_certificate_provider_instance system_root_certs watched_directory verify_certificate_spki "
    "verify_certificate_hash match_subject_alt_names require_signed_certificate_timestamp crl "
    "allow_expired_certificate trust_chain_verification custom_validator_config only_verify_leaf_cert_crl "
    "max_verify_depth";
static const rm_yaml_message_t validation_context_message = {
    "CertificateValidationContext", validation_context_fields, validation_context_unsupported, NULL,
    validation_context_check};

static const rm_yaml_enum_value_t tls_protocol_values[] = {
    {"TLS_AUTO", RM_TLS_AUTO, false}, {"TLSv1_0", RM_TLS_V1_0, false}, {"TLSv1_1", RM_TLS_V1_1, false},
    {"TLSv1_2", RM_TLS_V1_2, false},  {"TLSv1_3", RM_TLS_V1_3, false},
};
static const rm_yaml_enum_t tls_protocol_enum = ENUM(tls_protocol_values);

static int tls_params_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_tls_config_t *t = obj;
    if (t->min_protocol != RM_TLS_AUTO && t->max_protocol != RM_TLS_AUTO && t->min_protocol > t->max_protocol)
        return fail_at(d, "tls_maximum_protocol_version", "is below tls_minimum_protocol_version");
    return 0;
}

static const rm_yaml_field_t tls_params_fields[] = {
    RM_YAML_FIELD("tls_minimum_protocol_version", rm_yaml_decode_enum, rm_tls_config_t, min_protocol,
                  &tls_protocol_enum, 0),
    RM_YAML_FIELD("tls_maximum_protocol_version", rm_yaml_decode_enum, rm_tls_config_t, max_protocol,
                  &tls_protocol_enum, 0),
    RM_YAML_FIELDS_END,
};
static const char tls_params_unsupported[] =
    "cipher_suites ecdh_curves signature_algorithms compliance_policies";
static const rm_yaml_message_t tls_params_message = {"TlsParameters", tls_params_fields,
                                                     tls_params_unsupported, NULL, tls_params_check};

static int decode_alpn(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    if (rm_yaml_decode_string(d, n, obj, f) != 0)
        return -1;
    if (strlen(*(char **)obj) > 255)
        return rm_yaml_fail(d, "an ALPN protocol name is at most 255 bytes");
    return 0;
}

static const rm_yaml_seq_t alpn_seq = {
    decode_alpn, NULL, sizeof(char *),  offsetof(rm_tls_config_t, num_alpn_protocols), 0, 0,
    NULL,        NULL, RM_YAML_NONEMPTY};

static const rm_yaml_field_t common_tls_context_fields[] = {
    {"tls_params", rm_yaml_decode_submessage, 0, &tls_params_message, 0},
    {"tls_certificates", rm_yaml_decode_seq, 0, &tls_certificates_seq, 0},
    {"validation_context", rm_yaml_decode_submessage, 0, &validation_context_message, 0},
    RM_YAML_FIELD("alpn_protocols", rm_yaml_decode_seq, rm_tls_config_t, alpn_protocols, &alpn_seq, 0),
    RM_YAML_FIELDS_END,
};
static const char common_tls_context_unsupported[] =
    "tls_certificate_sds_secret_configs tls_certificate_provider_instance "
    "tls_certificate_certificate_provider tls_certificate_certificate_provider_instance "
    "custom_tls_certificate_selector validation_context_sds_secret_config combined_validation_context "
    "validation_context_certificate_provider validation_context_certificate_provider_instance "
    "custom_handshaker key_log";
static const rm_yaml_message_t common_tls_context_message = {"CommonTlsContext", common_tls_context_fields,
                                                             common_tls_context_unsupported, NULL, NULL};

static int downstream_tls_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_tls_config_t *t = obj;
    if (!t->has_certificate)
        return fail_at(d, "common_tls_context",
                       "needs tls_certificates with a certificate_chain and private_key (a TLS listener "
                       "must present a certificate)");
    if (t->require_client_certificate && !t->has_trusted_ca)
        return fail_at(
            d, "require_client_certificate",
            "needs common_tls_context.validation_context.trusted_ca to verify client certificates");
    if (t->num_verify_san_dns > 0 && !t->has_trusted_ca)
        return fail_at(d, "common_tls_context", "match_typed_subject_alt_names needs trusted_ca");
    return 0;
}

static const rm_yaml_field_t downstream_tls_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_DOWNSTREAM_TLS, RM_YAML_REQUIRED},
    {"common_tls_context", rm_yaml_decode_submessage, 0, &common_tls_context_message, 0},
    RM_YAML_FIELD("require_client_certificate", rm_yaml_decode_bool, rm_tls_config_t,
                  require_client_certificate, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char downstream_tls_unsupported[] =
    "require_sni session_ticket_keys session_ticket_keys_sds_secret_config "
    "disable_stateless_session_resumption disable_stateful_session_resumption session_timeout "
    "ocsp_staple_policy full_scan_certs_on_sni_mismatch prefer_client_ciphers";
static const rm_yaml_message_t downstream_tls_message = {
    "DownstreamTlsContext", downstream_tls_fields, downstream_tls_unsupported, NULL, downstream_tls_check};

static int upstream_tls_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_tls_config_t *t = obj;
    if (t->num_verify_san_dns > 0 && !t->has_trusted_ca)
        return fail_at(d, "common_tls_context", "match_typed_subject_alt_names needs trusted_ca");
    if (t->sni != NULL && strlen(t->sni) > 255)
        return fail_at(d, "sni", "at most 255 characters");
    return 0;
}

static const rm_yaml_field_t upstream_tls_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_UPSTREAM_TLS, RM_YAML_REQUIRED},
    {"common_tls_context", rm_yaml_decode_submessage, 0, &common_tls_context_message, 0},
    RM_YAML_FIELD("sni", rm_yaml_decode_string, rm_tls_config_t, sni, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char upstream_tls_unsupported[] =
    "allow_renegotiation max_session_keys enforce_rsa_key_usage auto_host_sni auto_sni_san_validation";
static const rm_yaml_message_t upstream_tls_message = {"UpstreamTlsContext", upstream_tls_fields,
                                                       upstream_tls_unsupported, NULL, upstream_tls_check};

static int decode_transport_socket_name(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj,
                                        const rm_yaml_field_t *f)
{
    char buf[64];
    if (rm_yaml_check_string(d, n, obj, f) != 0)
        return -1;
    if (strcmp((const char *)n->data.scalar.value, NAME_TLS) != 0)
        return rm_yaml_fail(d, "transport socket %s is not supported (only " NAME_TLS ")",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    ((rm_tls_config_t *)obj)->enabled = true;
    return 0;
}

static int transport_socket_check(rm_yaml_decoder_t *d, void *obj)
{
    if (!((rm_tls_config_t *)obj)->enabled)
        return fail_at(d, "name", "required (" NAME_TLS ")");
    return 0;
}

static const rm_yaml_field_t downstream_transport_socket_fields[] = {
    {"name", decode_transport_socket_name, 0, NULL, RM_YAML_REQUIRED},
    {"typed_config", rm_yaml_decode_submessage, 0, &downstream_tls_message, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_field_t upstream_transport_socket_fields[] = {
    {"name", decode_transport_socket_name, 0, NULL, RM_YAML_REQUIRED},
    {"typed_config", rm_yaml_decode_submessage, 0, &upstream_tls_message, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t downstream_transport_socket_message = {
    "TransportSocket", downstream_transport_socket_fields, NULL, NULL, transport_socket_check};
static const rm_yaml_message_t upstream_transport_socket_message = {
    "TransportSocket", upstream_transport_socket_fields, NULL, NULL, transport_socket_check};

static int cluster_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_cluster_config_t *c = obj;
    loader_t *l = L(d);
    /* lb_config is a oneof, and its member must match lb_policy (as Envoy requires). */
    if (l->least_request_seen && l->round_robin_seen)
        return fail_at(d, "round_robin_lb_config",
                       "only one of least_request_lb_config, round_robin_lb_config may be set");
    if (l->least_request_seen && c->lb_policy != RM_LB_LEAST_REQUEST)
        return fail_at(d, "least_request_lb_config", "only valid with lb_policy LEAST_REQUEST");
    if (l->round_robin_seen && c->lb_policy != RM_LB_ROUND_ROBIN)
        return fail_at(d, "round_robin_lb_config", "only valid with lb_policy ROUND_ROBIN");
    if (c->type != RM_CLUSTER_EDS) {
        if (l->eds.present)
            return fail_at(d, "eds_cluster_config", "only valid for type EDS");
        return 0;
    }
    if (!l->eds.present)
        return fail_at(d, "eds_cluster_config",
                       "required for type EDS (it says where the endpoints come from)");
    if (l->load_assignment_seen)
        return fail_at(d, "load_assignment", "not allowed for type EDS (the endpoints come from EDS)");
    const char *service =
        l->eds.service_name != NULL && l->eds.service_name[0] != '\0' ? l->eds.service_name : c->name;
    c->eds_service_name = rm_strdup(service);
    return 0;
}

static void cluster_init(rm_yaml_decoder_t *d, void *obj)
{
    rm_cluster_config_t *c = obj;
    L(d)->cluster = c;
    L(d)->load_assignment_seen = false;
    L(d)->least_request_seen = false;
    L(d)->round_robin_seen = false;
    eds_tmp_reset(L(d));
    c->type = RM_CLUSTER_STATIC;
    c->connect_timeout_ms = 5000;
    c->lb_policy = RM_LB_ROUND_ROBIN;
    c->dns_refresh_rate_ms = 5000;
    c->dns_lookup_family = RM_DNS_LOOKUP_AUTO;
    c->overprovisioning_factor = 140;
    c->per_connection_buffer_limit_bytes = 1u << 20;
    c->protocol = RM_UPSTREAM_HTTP1;
    rm_http2_options_default(&c->http2);
}

/* type comes before load_assignment: endpoint addresses are checked against it. */
static const rm_yaml_field_t cluster_fields[] = {
    RM_YAML_FIELD("name", rm_yaml_decode_string, rm_cluster_config_t, name, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELD("type", rm_yaml_decode_enum, rm_cluster_config_t, type, &cluster_type_enum, 0),
    {"eds_cluster_config", decode_eds_cluster_config, 0, NULL, 0},
    RM_YAML_FIELD("connect_timeout", rm_yaml_decode_duration_ms, rm_cluster_config_t, connect_timeout_ms,
                  &positive, 0),
    RM_YAML_FIELD("lb_policy", rm_yaml_decode_enum, rm_cluster_config_t, lb_policy, &lb_policy_enum, 0),
    RM_YAML_FIELD("dns_refresh_rate", rm_yaml_decode_duration_ms, rm_cluster_config_t, dns_refresh_rate_ms,
                  &above_1ms, 0),
    RM_YAML_FIELD("dns_lookup_family", rm_yaml_decode_enum, rm_cluster_config_t, dns_lookup_family,
                  &dns_family_enum, 0),
    RM_YAML_FIELD("per_connection_buffer_limit_bytes", rm_yaml_decode_uint32, rm_cluster_config_t,
                  per_connection_buffer_limit_bytes, NULL, 0),
    {"http2_protocol_options", decode_cluster_h2, 0, NULL, 0},
    {"load_assignment", rm_yaml_decode_submessage, 0, &load_assignment_message, 0},
    {"common_lb_config", rm_yaml_decode_submessage, 0, &common_lb_message, 0},
    {"least_request_lb_config", decode_least_request, 0, NULL, 0},
    {"round_robin_lb_config", decode_round_robin, 0, NULL, 0},
    RM_YAML_FIELD("outlier_detection", rm_yaml_decode_submessage, rm_cluster_config_t, outlier_detection,
                  &outlier_message, 0),
    RM_YAML_FIELD("health_checks", rm_yaml_decode_seq, rm_cluster_config_t, health_checks, &health_checks_seq,
                  0),
    {"circuit_breakers", decode_circuit_breakers, 0, NULL, 0},
    {"typed_extension_protocol_options", decode_typed_extension_options, 0, NULL, 0},
    RM_YAML_FIELD("transport_socket", rm_yaml_decode_submessage, rm_cluster_config_t, tls,
                  &upstream_transport_socket_message, 0),
    RM_YAML_FIELDS_END,
};
static const char cluster_unsupported[] =
    "transport_socket_matches alt_stat_name cluster_type "
    "max_requests_per_connection upstream_http_protocol_options "
    "common_http_protocol_options http_protocol_options "
    "dns_failure_refresh_rate respect_dns_ttl dns_resolvers "
    "use_tcp_for_dns_lookups dns_resolution_config typed_dns_resolver_config wait_for_warm_on_init "
    "cleanup_interval upstream_bind_config lb_subset_config ring_hash_lb_config "
    "maglev_lb_config original_dst_lb_config metadata protocol_selection "
    "upstream_connection_options "
    "close_connections_on_host_health_failure ignore_health_on_host_removal filters "
    "load_balancing_policy lrs_server track_timeout_budgets upstream_config track_cluster_stats "
    "preconnect_policy connection_pool_per_downstream_connection";
static const rm_yaml_message_t cluster_message = {"Cluster", cluster_fields, cluster_unsupported,
                                                  cluster_init, cluster_check};

/* ---- route.v3.RetryPolicy ---- */

static const char *const retry_on_names[] = {
#define RM_RETRY_ON_NAME(e, s) s,
    RM_RETRY_ON_CONDITIONS(RM_RETRY_ON_NAME)
#undef RM_RETRY_ON_NAME
};
/* Conditions Envoy knows that Remora does not implement (rejected by name rather than ignored). */
static const char retry_on_unsupported[] = " envoy-ratelimited retriable-headers http3-post-connect-failure "
                                           "reset-before-request cancelled deadline-exceeded internal "
                                           "resource-exhausted unavailable ";
#define RETRY_ON_SUPPORTED                                                                                   \
    "5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, "                            \
    "retriable-status-codes"

static int decode_retry_on(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    char *text = NULL;
    rm_yaml_field_t tmp = {f->name, NULL, 0, NULL, 0};
    if (rm_yaml_decode_string(d, n, &text, &tmp) != 0)
        return -1;
    rm_retry_policy_config_t *rp = obj;
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, ",", &save); tok != NULL && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            tok[--len] = '\0';
        if (len == 0)
            continue;
        bool found = false;
        for (size_t i = 0; i < RM_ARRAY_LEN(retry_on_names) && !found; i++) {
            if (strcmp(tok, retry_on_names[i]) == 0) {
                rp->retry_on |= 1u << i;
                found = true;
            }
        }
        if (found)
            continue;
        char key[72];
        snprintf(key, sizeof(key), " %.64s ", tok);
        if (strstr(retry_on_unsupported, key) != NULL)
            rc = rm_yaml_fail(d, "condition \"%s\" is not supported yet (supported: " RETRY_ON_SUPPORTED ")",
                              tok);
        else
            rc = rm_yaml_fail(d, "unknown condition \"%s\" (supported: " RETRY_ON_SUPPORTED ")", tok);
    }
    free(text);
    return rc;
}

static const rm_yaml_range_t http_status_range = {100, 599};

static int decode_status_code(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    (void)f;
    rm_retry_policy_config_t *rp = obj;
    if (rp->num_retriable_status_codes >= RM_RETRY_MAX_STATUS_CODES)
        return rm_yaml_fail(d, "at most %d retriable status codes are supported", RM_RETRY_MAX_STATUS_CODES);
    rm_yaml_field_t tmp = {NULL, NULL, 0, &http_status_range, 0};
    if (rm_yaml_decode_uint32(d, n, &rp->retriable_status_codes[rp->num_retriable_status_codes], &tmp) != 0)
        return -1;
    rp->num_retriable_status_codes++;
    return 0;
}

static const rm_yaml_seq_t status_codes_seq = {decode_status_code, NULL, 0, 0, 0, 0, NULL, NULL, 0};

static int back_off_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_retry_policy_config_t *rp = obj;
    if (rp->back_off_max_ms != 0 && rp->back_off_max_ms < rp->back_off_base_ms)
        return fail_at(d, "max_interval", "must not be shorter than base_interval");
    return 0;
}

static const rm_yaml_field_t back_off_fields[] = {
    RM_YAML_FIELD("base_interval", rm_yaml_decode_duration_ms, rm_retry_policy_config_t, back_off_base_ms,
                  &positive, RM_YAML_REQUIRED),
    RM_YAML_FIELD("max_interval", rm_yaml_decode_duration_ms, rm_retry_policy_config_t, back_off_max_ms,
                  &positive, 0),
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t back_off_message = {"RetryPolicy.RetryBackOff", back_off_fields, NULL, NULL,
                                                   back_off_check};

/* retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config: ...}] */
static int decode_previous_hosts_name(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj,
                                      const rm_yaml_field_t *f)
{
    char buf[192];
    if (rm_yaml_check_string(d, n, obj, f) != 0)
        return -1;
    if (strcmp((const char *)n->data.scalar.value, NAME_PREVIOUS_HOSTS) != 0)
        return rm_yaml_fail(d, "retry host predicate %s is not supported (only " NAME_PREVIOUS_HOSTS ")",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    ((rm_retry_policy_config_t *)obj)->previous_hosts = true;
    return 0;
}

static const rm_yaml_field_t previous_hosts_config_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_PREVIOUS_HOSTS, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t previous_hosts_config_message = {
    "PreviousHostsPredicate", previous_hosts_config_fields, NULL, NULL, NULL};
static const rm_yaml_field_t host_predicate_fields[] = {
    {"name", decode_previous_hosts_name, 0, NULL, RM_YAML_REQUIRED},
    {"typed_config", rm_yaml_decode_submessage, 0, &previous_hosts_config_message, 0},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t host_predicate_message = {"RetryHostPredicate", host_predicate_fields, NULL,
                                                         NULL, NULL};
static const rm_yaml_seq_t host_predicates_seq = {
    rm_yaml_decode_submessage, &host_predicate_message, 0, 0, 0, 0, NULL, NULL, 0};

static int decode_previous_priorities_name(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj,
                                           const rm_yaml_field_t *f)
{
    char buf[192];
    if (rm_yaml_check_string(d, n, obj, f) != 0)
        return -1;
    if (strcmp((const char *)n->data.scalar.value, NAME_PREVIOUS_PRIORITIES) != 0)
        return rm_yaml_fail(d, "retry priority %s is not supported (only " NAME_PREVIOUS_PRIORITIES ")",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    ((rm_retry_policy_config_t *)obj)->previous_priorities = true;
    return 0;
}

static const rm_yaml_field_t previous_priorities_config_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_PREVIOUS_PRIORITIES, RM_YAML_REQUIRED},
    RM_YAML_FIELD("update_frequency", rm_yaml_decode_uint32, rm_retry_policy_config_t,
                  priority_update_frequency, &at_least_one, RM_YAML_REQUIRED),
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t previous_priorities_config_message = {
    "PreviousPrioritiesConfig", previous_priorities_config_fields, NULL, NULL, NULL};
static const rm_yaml_field_t retry_priority_fields[] = {
    {"name", decode_previous_priorities_name, 0, NULL, RM_YAML_REQUIRED},
    {"typed_config", rm_yaml_decode_submessage, 0, &previous_priorities_config_message, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t retry_priority_message = {"RetryPriority", retry_priority_fields, NULL, NULL,
                                                         NULL};

static void retry_policy_init(rm_yaml_decoder_t *d, void *obj)
{
    (void)d;
    rm_retry_policy_config_t *rp = obj;
    memset(rp, 0, sizeof(*rp));
    rp->set = true;
    rp->num_retries = 1;
    rp->host_selection_retry_max_attempts = 1;
    rp->back_off_base_ms = 25;
}

static const rm_yaml_field_t retry_policy_fields[] = {
    {"retry_on", decode_retry_on, 0, NULL, 0},
    RM_YAML_FIELD("num_retries", rm_yaml_decode_uint32, rm_retry_policy_config_t, num_retries, NULL, 0),
    RM_YAML_FIELD("per_try_timeout", rm_yaml_decode_duration_ms, rm_retry_policy_config_t, per_try_timeout_ms,
                  NULL, 0),
    {"retriable_status_codes", rm_yaml_decode_seq, 0, &status_codes_seq, 0},
    {"retry_host_predicate", rm_yaml_decode_seq, 0, &host_predicates_seq, 0},
    RM_YAML_FIELD("host_selection_retry_max_attempts", rm_yaml_decode_uint32, rm_retry_policy_config_t,
                  host_selection_retry_max_attempts, NULL, 0),
    {"retry_priority", rm_yaml_decode_submessage, 0, &retry_priority_message, 0},
    {"retry_back_off", rm_yaml_decode_submessage, 0, &back_off_message, 0},
    RM_YAML_FIELDS_END,
};
static const char retry_policy_unsupported[] = "per_try_idle_timeout retry_options_predicates "
                                               "rate_limited_retry_back_off retriable_headers "
                                               "retriable_request_headers";
static const rm_yaml_message_t retry_policy_message = {"RetryPolicy", retry_policy_fields,
                                                       retry_policy_unsupported, retry_policy_init, NULL};

/* ---- route.v3 ---- */

static int decode_match(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, rm_route_match_kind_t kind)
{
    rm_route_config_t *r = obj;
    if (r->match_value != NULL)
        return rm_yaml_fail(d, "only one of prefix, path may be set");
    rm_yaml_field_t tmp = {NULL, NULL, offsetof(rm_route_config_t, match_value), NULL, 0};
    if (rm_yaml_decode_string(d, n, obj, &tmp) != 0)
        return -1;
    r->match_kind = kind;
    return 0;
}

static int decode_prefix(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    return decode_match(d, n, obj, RM_ROUTE_MATCH_PREFIX);
}

static int decode_path(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    return decode_match(d, n, obj, RM_ROUTE_MATCH_PATH);
}

static int route_match_check(rm_yaml_decoder_t *d, void *obj)
{
    if (((rm_route_config_t *)obj)->match_value == NULL)
        return rm_yaml_fail(d, "one of prefix, path is required");
    return 0;
}

static const rm_yaml_field_t route_match_fields[] = {
    {"prefix", decode_prefix, 0, NULL, 0},
    {"path", decode_path, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char route_match_unsupported[] =
    "safe_regex connect_matcher path_separated_prefix path_match_policy case_sensitive "
    "runtime_fraction headers query_parameters grpc tls_context dynamic_metadata filter_state "
    "cel_matcher";
static const rm_yaml_message_t route_match_message = {"RouteMatch", route_match_fields,
                                                      route_match_unsupported, NULL, route_match_check};

static int decode_route_cluster(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    if (rm_yaml_decode_string(d, n, obj, f) != 0)
        return -1;
    const char *name = ((rm_route_config_t *)obj)->cluster;
    /* Envoy validates static route tables against the static clusters at load time. With CDS, a route
     * may name a cluster the management server has not sent yet; the router answers 503 for a cluster
     * that does not exist when a request arrives. */
    if (L(d)->b->dynamic_resources.cds_config.set)
        return 0;
    if (strset_find(&L(d)->cluster_names, name, strlen(name)) == NULL)
        return rm_yaml_fail(d, "unknown cluster \"%s\" (not defined in static_resources.clusters)", name);
    return 0;
}

static const rm_yaml_field_t route_action_fields[] = {
    RM_YAML_FIELD("cluster", decode_route_cluster, rm_route_config_t, cluster, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELD("timeout", rm_yaml_decode_duration_ms, rm_route_config_t, timeout_ms, NULL, 0),
    RM_YAML_FIELD("retry_policy", rm_yaml_decode_submessage, rm_route_config_t, retry_policy,
                  &retry_policy_message, 0),
    RM_YAML_FIELDS_END,
};
static const char route_action_unsupported[] =
    "cluster_header weighted_clusters cluster_specifier_plugin inline_cluster_specifier_plugin "
    "cluster_not_found_response_code metadata_match prefix_rewrite regex_rewrite path_rewrite_policy "
    "host_rewrite_literal auto_host_rewrite host_rewrite_header host_rewrite_path_regex "
    "append_x_forwarded_host idle_timeout early_data_policy retry_policy_typed_config "
    "request_mirror_policies priority rate_limits include_vh_rate_limits hash_policy cors "
    "max_grpc_timeout grpc_timeout_offset upgrade_configs internal_redirect_policy "
    "internal_redirect_action max_internal_redirects hedge_policy max_stream_duration";
static const rm_yaml_message_t route_action_message = {"RouteAction", route_action_fields,
                                                       route_action_unsupported, NULL, NULL};

static void route_init(rm_yaml_decoder_t *d, void *obj)
{
    ((rm_route_config_t *)obj)->timeout_ms = 15000;
}

/* route.name only labels the route in Envoy's stats and debug output; it is accepted and dropped. */
static const rm_yaml_field_t route_fields[] = {
    {"name", rm_yaml_check_string, 0, NULL, 0},
    {"match", rm_yaml_decode_submessage, 0, &route_match_message, RM_YAML_REQUIRED},
    {"route", rm_yaml_decode_submessage, 0, &route_action_message, RM_YAML_REQUIRED},
    RM_YAML_FIELD("per_request_buffer_limit_bytes", rm_yaml_decode_uint32, rm_route_config_t,
                  per_request_buffer_limit_bytes, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char route_unsupported[] =
    "redirect direct_response filter_action non_forwarding_action metadata decorator "
    "typed_per_filter_config request_headers_to_add request_headers_to_remove response_headers_to_add "
    "response_headers_to_remove tracing stat_prefix";
static const rm_yaml_message_t route_message = {"Route", route_fields, route_unsupported, route_init, NULL};

/* Envoy's domain forms: exact, "*", or one wildcard at the very start or very end. */
static int decode_domain(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    if (rm_yaml_decode_string(d, n, obj, f) != 0)
        return -1;
    const char *dom = *(char **)obj;
    size_t len = strlen(dom);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)dom[i];
        if (c <= 0x20 || c >= 0x7f)
            return rm_yaml_fail(d, "invalid domain \"%s\": spaces and control characters are not allowed",
                                dom);
        if (c == '*' && len > 1 && !((i == 0 && dom[len - 1] != '*') || (i == len - 1 && dom[0] != '*')))
            return rm_yaml_fail(
                d, "invalid domain \"%s\": a wildcard may only be the first or the last character", dom);
    }
    return 0;
}

static const rm_yaml_seq_t domains_seq = {
    decode_domain, NULL, sizeof(char *),  offsetof(rm_virtual_host_config_t, num_domains), 1, 0,
    NULL,          NULL, RM_YAML_NONEMPTY};
static const rm_yaml_seq_t routes_seq = {rm_yaml_decode_submessage,
                                         &route_message,
                                         sizeof(rm_route_config_t),
                                         offsetof(rm_virtual_host_config_t, num_routes),
                                         0,
                                         0,
                                         NULL,
                                         NULL,
                                         0};
static const rm_yaml_field_t virtual_host_fields[] = {
    RM_YAML_FIELD("name", rm_yaml_decode_string, rm_virtual_host_config_t, name, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELD("domains", rm_yaml_decode_seq, rm_virtual_host_config_t, domains, &domains_seq,
                  RM_YAML_REQUIRED),
    RM_YAML_FIELD("routes", rm_yaml_decode_seq, rm_virtual_host_config_t, routes, &routes_seq, 0),
    RM_YAML_FIELD("retry_policy", rm_yaml_decode_submessage, rm_virtual_host_config_t, retry_policy,
                  &retry_policy_message, 0),
    RM_YAML_FIELD("include_request_attempt_count", rm_yaml_decode_bool, rm_virtual_host_config_t,
                  include_request_attempt_count, NULL, 0),
    RM_YAML_FIELD("include_attempt_count_in_response", rm_yaml_decode_bool, rm_virtual_host_config_t,
                  include_attempt_count_in_response, NULL, 0),
    RM_YAML_FIELD("per_request_buffer_limit_bytes", rm_yaml_decode_uint32, rm_virtual_host_config_t,
                  per_request_buffer_limit_bytes, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char virtual_host_unsupported[] =
    "require_tls virtual_clusters rate_limits request_headers_to_add request_headers_to_remove "
    "response_headers_to_add response_headers_to_remove cors typed_per_filter_config "
    "retry_policy_typed_config hedge_policy request_mirror_policies metadata matcher";

/* Virtual-host settings are defaults for its routes: copy them where a route has none of its own. */
static int virtual_host_check(rm_yaml_decoder_t *d, void *obj)
{
    (void)d;
    rm_virtual_host_config_t *vh = obj;
    for (size_t i = 0; i < vh->num_routes; i++) {
        rm_route_config_t *r = &vh->routes[i];
        if (!r->retry_policy.set)
            r->retry_policy = vh->retry_policy;
        if (r->per_request_buffer_limit_bytes == 0)
            r->per_request_buffer_limit_bytes = vh->per_request_buffer_limit_bytes;
        r->include_request_attempt_count = vh->include_request_attempt_count;
        r->include_attempt_count_in_response = vh->include_attempt_count_in_response;
    }
    return 0;
}
static const rm_yaml_message_t virtual_host_message = {"VirtualHost", virtual_host_fields,
                                                       virtual_host_unsupported, NULL, virtual_host_check};

/* Domains are unique across the table, compared case-insensitively as hosts are (Envoy rejects
 * duplicates too; otherwise which virtual host wins would be an accident of order). */
static int route_table_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_route_table_config_t *t = obj;
    strset_t seen;
    strset_init(&seen, true);
    int rc = 0;
    for (size_t i = 0; i < t->num_virtual_hosts && rc == 0; i++) {
        const rm_virtual_host_config_t *vh = &t->virtual_hosts[i];
        for (size_t j = 0; j < vh->num_domains && rc == 0; j++) {
            size_t prev = strset_add(&seen, vh->domains[j], i);
            if (prev == SIZE_MAX)
                continue;
            rm_yaml_path_push_key(d, "virtual_hosts");
            rm_yaml_path_push_index(d, i);
            rm_yaml_path_push_key(d, "domains");
            rm_yaml_path_push_index(d, j);
            if (strcmp(vh->domains[j], "*") == 0)
                rc = rm_yaml_fail(
                    d, "only one virtual host may use the \"*\" domain (virtual_hosts[%zu] does)", prev);
            else if (prev == i)
                rc = rm_yaml_fail(d, "duplicate domain \"%s\" in the same virtual host", vh->domains[j]);
            else
                rc = rm_yaml_fail(d, "duplicate domain \"%s\" (also in virtual_hosts[%zu])", vh->domains[j],
                                  prev);
        }
    }
    strset_free(&seen);
    return rc;
}

static const rm_yaml_seq_t virtual_hosts_seq = {rm_yaml_decode_submessage,
                                                &virtual_host_message,
                                                sizeof(rm_virtual_host_config_t),
                                                offsetof(rm_route_table_config_t, num_virtual_hosts),
                                                0,
                                                0,
                                                NULL,
                                                NULL,
                                                0};
static const rm_yaml_field_t route_table_fields[] = {
    RM_YAML_FIELD("name", rm_yaml_decode_string, rm_route_table_config_t, name, NULL, 0),
    RM_YAML_FIELD("virtual_hosts", rm_yaml_decode_seq, rm_route_table_config_t, virtual_hosts,
                  &virtual_hosts_seq, 0),
    RM_YAML_FIELDS_END,
};
static const char route_table_unsupported[] =
    "vhds internal_only_headers response_headers_to_add response_headers_to_remove "
    "request_headers_to_add request_headers_to_remove most_specific_header_mutations_wins "
    "validate_clusters max_direct_response_body_size_bytes cluster_specifier_plugins "
    "request_mirror_policies ignore_port_in_host_matching ignore_path_parameters_in_path_matching "
    "typed_per_filter_config metadata";
static const rm_yaml_message_t route_table_message = {"RouteConfiguration", route_table_fields,
                                                      route_table_unsupported, NULL, route_table_check};

/* ---- HTTP filters: only the router ---- */

static const rm_yaml_field_t router_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_ROUTER, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const char router_unsupported[] =
    "dynamic_stats start_child_span upstream_log upstream_log_options suppress_envoy_headers "
    "strict_check_headers respect_expected_rq_timeout suppress_grpc_request_failure_code_stats "
    "upstream_http_filters";
static const rm_yaml_message_t router_message = {"Router", router_fields, router_unsupported, NULL, NULL};

static int decode_http_filter_name(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    char buf[64];
    if (rm_yaml_check_string(d, n, obj, f) != 0)
        return -1;
    if (strcmp((const char *)n->data.scalar.value, NAME_ROUTER) != 0)
        return rm_yaml_fail(d, "HTTP filter %s is not supported (only " NAME_ROUTER ")",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    if (L(d)->router_seen)
        return rm_yaml_fail(d, NAME_ROUTER " is listed more than once");
    L(d)->router_seen = true;
    return 0;
}

static const rm_yaml_field_t http_filter_fields[] = {
    {"name", decode_http_filter_name, 0, NULL, RM_YAML_REQUIRED},
    {"typed_config", rm_yaml_decode_submessage, 0, &router_message, 0},
    RM_YAML_FIELDS_END,
};
static const char http_filter_unsupported[] = "config_discovery is_optional disabled";
static const rm_yaml_message_t http_filter_message = {"HttpFilter", http_filter_fields,
                                                      http_filter_unsupported, NULL, NULL};

/* ---- access loggers ---- */

static const rm_yaml_field_t stdout_log_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_STDOUT_LOG, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_field_t stderr_log_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_STDERR_LOG, RM_YAML_REQUIRED},
    RM_YAML_FIELDS_END,
};
static const rm_yaml_field_t file_log_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_FILE_LOG, RM_YAML_REQUIRED},
    RM_YAML_FIELD("path", rm_yaml_decode_string, rm_access_log_config_t, path, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELDS_END,
};
static const char stream_log_unsupported[] = "log_format";
static const char file_log_unsupported[] = "format json_format typed_json_format log_format";
static const rm_yaml_message_t access_log_configs[] = {
    [RM_ACCESS_LOG_STDOUT] = {"StdoutAccessLog", stdout_log_fields, stream_log_unsupported, NULL, NULL},
    [RM_ACCESS_LOG_STDERR] = {"StderrAccessLog", stderr_log_fields, stream_log_unsupported, NULL, NULL},
    [RM_ACCESS_LOG_FILE] = {"FileAccessLog", file_log_fields, file_log_unsupported, NULL, NULL},
};
static const char *const access_log_names[] = {
    [RM_ACCESS_LOG_STDOUT] = NAME_STDOUT_LOG,
    [RM_ACCESS_LOG_STDERR] = NAME_STDERR_LOG,
    [RM_ACCESS_LOG_FILE] = NAME_FILE_LOG,
};

static int decode_access_log_name(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    char buf[64];
    if (rm_yaml_check_string(d, n, obj, f) != 0)
        return -1;
    for (size_t k = 0; k < RM_ARRAY_LEN(access_log_names); k++) {
        if (strcmp((const char *)n->data.scalar.value, access_log_names[k]) == 0) {
            ((rm_access_log_config_t *)obj)->kind = (rm_access_log_kind_t)k;
            return 0;
        }
    }
    return rm_yaml_fail(d,
                        "access logger %s is not supported (supported: " NAME_STDOUT_LOG ", " NAME_STDERR_LOG
                        ", " NAME_FILE_LOG ")",
                        rm_yaml_kind(n, buf, sizeof(buf)));
}

/* name is decoded first (table order) and selects the typed_config schema. */
static int decode_access_log_config(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    rm_access_log_config_t *a = obj;
    return rm_yaml_decode_message(d, n, &access_log_configs[a->kind], obj);
}

static int access_log_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_access_log_config_t *a = obj;
    if (a->kind == RM_ACCESS_LOG_FILE && a->path == NULL)
        return fail_at(d, "typed_config", NAME_FILE_LOG " needs a typed_config with a path");
    return 0;
}

static const rm_yaml_field_t access_log_fields[] = {
    {"name", decode_access_log_name, 0, NULL, RM_YAML_REQUIRED},
    {"typed_config", decode_access_log_config, 0, NULL, 0},
    RM_YAML_FIELDS_END,
};
static const char access_log_unsupported[] = "filter";
static const rm_yaml_message_t access_log_message = {"AccessLog", access_log_fields, access_log_unsupported,
                                                     NULL, access_log_check};

/* ---- HttpConnectionManager ---- */

static const rm_yaml_field_t http_protocol_options_fields[] = {
    RM_YAML_FIELD("idle_timeout", rm_yaml_decode_duration_ms, rm_http_connection_manager_config_t,
                  idle_timeout_ms, NULL, 0),
    RM_YAML_FIELD("max_headers_count", rm_yaml_decode_uint32, rm_http_connection_manager_config_t,
                  max_headers_count, &at_least_one, 0),
    RM_YAML_FIELDS_END,
};
static const char http_protocol_options_unsupported[] =
    "max_connection_duration max_stream_duration headers_with_underscores_action "
    "max_requests_per_connection max_response_headers_kb";
static const rm_yaml_message_t http_protocol_options_message = {
    "HttpProtocolOptions", http_protocol_options_fields, http_protocol_options_unsupported, NULL, NULL};

static void hcm_init(rm_yaml_decoder_t *d, void *obj)
{
    rm_http_connection_manager_config_t *h = obj;
    L(d)->router_seen = false;
    h->codec_type = RM_HTTP_CODEC_AUTO;
    h->idle_timeout_ms = 3600000;
    /* Envoy leaves request_headers_timeout disabled; a sidecar facing arbitrary clients is better off
     * with a bound on slow-header (slowloris) connections, so Remora defaults to 10s. */
    h->request_headers_timeout_ms = 10000;
    h->stream_idle_timeout_ms = 300000;
    h->drain_timeout_ms = 5000;
    h->max_request_headers_kb = 60;
    h->max_headers_count = 100;
    h->max_request_line_bytes = 16384;
    h->generate_request_id = true;
    h->use_remote_address = false;
    rm_http2_options_default(&h->http2);
}

static int hcm_check(rm_yaml_decoder_t *d, void *obj)
{
    if (!L(d)->router_seen)
        return fail_at(d, "http_filters", "must contain " NAME_ROUTER);
    return 0;
}

static const rm_yaml_seq_t http_filters_seq = {
    rm_yaml_decode_submessage, &http_filter_message, 0, 0, 0, 0, NULL, NULL, 0};
static const rm_yaml_seq_t access_logs_seq = {rm_yaml_decode_submessage,
                                              &access_log_message,
                                              sizeof(rm_access_log_config_t),
                                              offsetof(rm_http_connection_manager_config_t, num_access_logs),
                                              0,
                                              0,
                                              NULL,
                                              NULL,
                                              0};
#define HCM_FIELD(name, fn, member, arg, flags)                                                              \
    RM_YAML_FIELD(name, fn, rm_http_connection_manager_config_t, member, arg, flags)
static const rm_yaml_field_t hcm_fields[] = {
    {"@type", rm_yaml_decode_type_url, 0, TYPE_HCM, RM_YAML_REQUIRED},
    HCM_FIELD("stat_prefix", rm_yaml_decode_string, stat_prefix, NULL, RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    HCM_FIELD("codec_type", rm_yaml_decode_enum, codec_type, &codec_enum, 0),
    HCM_FIELD("route_config", rm_yaml_decode_submessage, route_config, &route_table_message,
              RM_YAML_REQUIRED),
    {"http_filters", rm_yaml_decode_seq, 0, &http_filters_seq, 0},
    {"common_http_protocol_options", rm_yaml_decode_submessage, 0, &http_protocol_options_message, 0},
    HCM_FIELD("http2_protocol_options", rm_yaml_decode_submessage, http2, &http2_options_message, 0),
    HCM_FIELD("request_headers_timeout", rm_yaml_decode_duration_ms, request_headers_timeout_ms, NULL, 0),
    HCM_FIELD("stream_idle_timeout", rm_yaml_decode_duration_ms, stream_idle_timeout_ms, NULL, 0),
    HCM_FIELD("drain_timeout", rm_yaml_decode_duration_ms, drain_timeout_ms, NULL, 0),
    HCM_FIELD("max_request_headers_kb", rm_yaml_decode_uint32, max_request_headers_kb, &headers_kb_range, 0),
    HCM_FIELD("generate_request_id", rm_yaml_decode_bool, generate_request_id, NULL, 0),
    HCM_FIELD("use_remote_address", rm_yaml_decode_bool, use_remote_address, NULL, 0),
    HCM_FIELD("access_log", rm_yaml_decode_seq, access_logs, &access_logs_seq, 0),
    RM_YAML_FIELDS_END,
};
static const char hcm_unsupported[] =
    "rds scoped_routes add_user_agent tracing http_protocol_options "
    "http3_protocol_options server_name server_header_transformation scheme_header_transformation "
    "stream_flush_timeout request_timeout delayed_close_timeout access_log_flush_interval "
    "flush_access_log_on_new_request access_log_options xff_num_trusted_hops "
    "original_ip_detection_extensions early_header_mutation_extensions internal_address_config "
    "skip_xff_append via preserve_external_request_id always_set_request_id_in_response "
    "forward_client_cert_details set_current_client_cert_details proxy_100_continue "
    "represent_ipv4_remote_address_as_ipv4_mapped_ipv6 upgrade_configs normalize_path merge_slashes "
    "path_with_escaped_slashes_action request_id_extension local_reply_config "
    "strip_matching_host_port strip_any_host_port stream_error_on_invalid_http_message "
    "strip_trailing_host_dot proxy_status_config typed_header_validation_config "
    "append_x_forwarded_port append_local_overload add_proxy_protocol_connection_state "
    "http1_safe_max_connection_duration drain_timeout_jitter forward_client_cert_matcher";
static const rm_yaml_message_t hcm_message = {"HttpConnectionManager", hcm_fields, hcm_unsupported, hcm_init,
                                              hcm_check};

/* ---- listener.v3 (into rm_listener_config_t) ---- */

static int decode_network_filter_name(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj,
                                      const rm_yaml_field_t *f)
{
    char buf[64];
    if (rm_yaml_check_string(d, n, obj, f) != 0)
        return -1;
    if (strcmp((const char *)n->data.scalar.value, NAME_HCM) != 0)
        return rm_yaml_fail(d, "network filter %s is not supported (only " NAME_HCM ")",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    return 0;
}

static const rm_yaml_field_t network_filter_fields[] = {
    {"name", decode_network_filter_name, 0, NULL, RM_YAML_REQUIRED},
    RM_YAML_FIELD("typed_config", rm_yaml_decode_submessage, rm_listener_config_t, hcm, &hcm_message,
                  RM_YAML_REQUIRED),
    RM_YAML_FIELDS_END,
};
static const char network_filter_unsupported[] = "config_discovery";
static const rm_yaml_message_t network_filter_message = {"Filter", network_filter_fields,
                                                         network_filter_unsupported, NULL, NULL};

static const rm_yaml_seq_t network_filters_seq = {
    rm_yaml_decode_submessage,
    &network_filter_message,
    0,
    0,
    1,
    1,
    "must contain " NAME_HCM,
    "only one network filter (" NAME_HCM ") is supported for now",
    0,
};
/* FilterChain.name only labels the chain; accepted and dropped. */
static const rm_yaml_field_t filter_chain_fields[] = {
    {"filters", rm_yaml_decode_seq, 0, &network_filters_seq, RM_YAML_REQUIRED},
    {"name", rm_yaml_check_string, 0, NULL, 0},
    RM_YAML_FIELD("transport_socket", rm_yaml_decode_submessage, rm_listener_config_t, tls,
                  &downstream_transport_socket_message, 0),
    RM_YAML_FIELDS_END,
};
static const char filter_chain_unsupported[] =
    "filter_chain_match use_proxy_proto metadata transport_socket_connect_timeout "
    "on_demand_configuration";
static const rm_yaml_message_t filter_chain_message = {"FilterChain", filter_chain_fields,
                                                       filter_chain_unsupported, NULL, NULL};

static void listener_init(rm_yaml_decoder_t *d, void *obj)
{
    ((rm_listener_config_t *)obj)->per_connection_buffer_limit_bytes = 1u << 20;
}

static const rm_yaml_seq_t filter_chains_seq = {
    rm_yaml_decode_submessage,
    &filter_chain_message,
    0,
    0,
    1,
    1,
    NULL,
    "exactly one filter chain is supported for now",
    0,
};
static const rm_yaml_field_t listener_fields[] = {
    RM_YAML_FIELD("name", rm_yaml_decode_string, rm_listener_config_t, name, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELD("address", rm_yaml_decode_submessage, rm_listener_config_t, address, &listen_address,
                  RM_YAML_REQUIRED),
    {"filter_chains", rm_yaml_decode_seq, 0, &filter_chains_seq, RM_YAML_REQUIRED},
    RM_YAML_FIELD("per_connection_buffer_limit_bytes", rm_yaml_decode_uint32, rm_listener_config_t,
                  per_connection_buffer_limit_bytes, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char listener_unsupported[] =
    "stat_prefix additional_addresses filter_chain_matcher use_original_dst default_filter_chain "
    "metadata deprecated_v1 drain_type listener_filters listener_filters_timeout "
    "continue_on_listener_filters_timeout transparent freebind socket_options "
    "tcp_fast_open_queue_length traffic_direction udp_listener_config api_listener "
    "connection_balance_config reuse_port enable_reuse_port access_log tcp_backlog_size "
    "max_connections_to_accept_per_socket_event bind_to_port internal_listener enable_mptcp "
    "ignore_global_conn_limit listener_specifier fcds_config";
static const rm_yaml_message_t listener_message = {"Listener", listener_fields, listener_unsupported,
                                                   listener_init, NULL};

/* ---- static_resources ---- */

static const rm_yaml_seq_t clusters_seq = {rm_yaml_decode_submessage,
                                           &cluster_message,
                                           sizeof(rm_cluster_config_t),
                                           offsetof(rm_bootstrap_config_t, num_clusters),
                                           0,
                                           0,
                                           NULL,
                                           NULL,
                                           0};
static const rm_yaml_seq_t listeners_seq = {rm_yaml_decode_submessage,
                                            &listener_message,
                                            sizeof(rm_listener_config_t),
                                            offsetof(rm_bootstrap_config_t, num_listeners),
                                            0,
                                            0,
                                            NULL,
                                            NULL,
                                            0};

/* Decodes the clusters, then indexes their names (unique, as Envoy requires) for the routes. */
static int decode_clusters(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    if (rm_yaml_decode_seq(d, n, obj, f) != 0)
        return -1;
    const rm_bootstrap_config_t *b = obj;
    for (size_t i = 0; i < b->num_clusters; i++) {
        size_t prev = strset_add(&L(d)->cluster_names, b->clusters[i].name, i);
        if (prev != SIZE_MAX) {
            rm_yaml_path_push_index(d, i);
            rm_yaml_path_push_key(d, "name");
            return rm_yaml_fail(d, "duplicate cluster name \"%s\" (also clusters[%zu])", b->clusters[i].name,
                                prev);
        }
    }
    return 0;
}

static int decode_listeners(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    if (rm_yaml_decode_seq(d, n, obj, f) != 0)
        return -1;
    const rm_bootstrap_config_t *b = obj;
    strset_t names;
    strset_init(&names, false);
    int rc = 0;
    for (size_t i = 0; i < b->num_listeners && rc == 0; i++) {
        size_t prev = strset_add(&names, b->listeners[i].name, i);
        if (prev != SIZE_MAX) {
            rm_yaml_path_push_index(d, i);
            rm_yaml_path_push_key(d, "name");
            rc = rm_yaml_fail(d, "duplicate listener name \"%s\" (also listeners[%zu])", b->listeners[i].name,
                              prev);
        }
    }
    strset_free(&names);
    return rc;
}

/* clusters first: routes are checked against them. */
static const rm_yaml_field_t static_resources_fields[] = {
    RM_YAML_FIELD("clusters", decode_clusters, rm_bootstrap_config_t, clusters, &clusters_seq, 0),
    RM_YAML_FIELD("listeners", decode_listeners, rm_bootstrap_config_t, listeners, &listeners_seq, 0),
    RM_YAML_FIELDS_END,
};
static const char static_resources_unsupported[] = "secrets";
static const rm_yaml_message_t static_resources_message = {"StaticResources", static_resources_fields,
                                                           static_resources_unsupported, NULL, NULL};

/* ---- dynamic_resources ---- */

static int decode_ads_config(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    rm_config_source_t *cs = &((rm_dynamic_resources_config_t *)obj)->ads_config;
    cs->set = true;
    return rm_yaml_decode_message(d, n, &api_config_source_message, cs);
}

static void dynamic_resources_init(rm_yaml_decoder_t *d, void *obj)
{
    ((rm_dynamic_resources_config_t *)obj)->enabled = true;
}

static int dynamic_resources_check(rm_yaml_decoder_t *d, void *obj)
{
    const rm_dynamic_resources_config_t *dr = obj;
    if (dr->cds_config.set && dr->cds_config.ads && !dr->ads_config.set) {
        rm_yaml_path_push_key(d, "cds_config");
        return fail_at(d, "ads", "needs dynamic_resources.ads_config (the ADS server)");
    }
    if (dr->cds_config.set && !dr->cds_config.ads && dr->ads_config.set) {
        rm_yaml_path_push_key(d, "cds_config");
        return fail_at(d, "api_config_source",
                       "not supported together with ads_config yet (use ads: {}; Remora talks to one "
                       "management server)");
    }
    return 0;
}

static const rm_yaml_field_t dynamic_resources_fields[] = {
    {"ads_config", decode_ads_config, 0, NULL, 0},
    RM_YAML_FIELD("cds_config", rm_yaml_decode_submessage, rm_dynamic_resources_config_t, cds_config,
                  &config_source_message, 0),
    RM_YAML_FIELDS_END,
};
static const char dynamic_resources_unsupported[] = "lds_config lds_resources_locator cds_resources_locator";
static const rm_yaml_message_t dynamic_resources_message = {"DynamicResources", dynamic_resources_fields,
                                                            dynamic_resources_unsupported,
                                                            dynamic_resources_init, dynamic_resources_check};

/* The management server is reached through a static cluster (as Envoy's envoy_grpc requires); Remora
 * connects to its first endpoint, so it needs one, and it cannot be an EDS cluster (its endpoints
 * would come from the server it leads to). */
static int check_xds_cluster(rm_yaml_decoder_t *d, const rm_bootstrap_config_t *b, const char *name,
                             const char *source, bool api_config_source)
{
    size_t mark = rm_yaml_path_push_key(d, "dynamic_resources");
    rm_yaml_path_push_key(d, source);
    if (api_config_source)
        rm_yaml_path_push_key(d, "api_config_source");
    rm_yaml_path_push_key(d, "grpc_services");
    rm_yaml_path_push_index(d, 0);
    rm_yaml_path_push_key(d, "envoy_grpc");
    rm_yaml_path_push_key(d, "cluster_name");
    strset_entry_t *e = strset_find(&L(d)->cluster_names, name, strlen(name));
    if (e == NULL)
        return rm_yaml_fail(d,
                            "unknown cluster \"%s\" (the management server must be a cluster in "
                            "static_resources.clusters)",
                            name);
    const rm_cluster_config_t *c = &b->clusters[e->value];
    if (c->type == RM_CLUSTER_EDS)
        return rm_yaml_fail(d,
                            "cluster \"%s\" is an EDS cluster; the management server needs a STATIC or "
                            "STRICT_DNS cluster",
                            name);
    if (c->num_endpoints == 0)
        return rm_yaml_fail(d, "cluster \"%s\" has no endpoints (Remora connects to its first endpoint)",
                            name);
    rm_yaml_path_pop(d, mark);
    return 0;
}

/* Checks that need the whole document: dynamic_resources against node and the static clusters. */
static int bootstrap_check(rm_yaml_decoder_t *d, void *obj)
{
    const rm_bootstrap_config_t *b = obj;
    const rm_dynamic_resources_config_t *dr = &b->dynamic_resources;
    if (!dr->enabled)
        return 0;
    /* Envoy's rule for every xDS subscription: the server identifies the proxy by both. */
    if (b->node.id == NULL || b->node.id[0] == '\0') {
        rm_yaml_path_push_key(d, "node");
        return fail_at(d, "id",
                       "required when dynamic_resources is set (the management server identifies "
                       "this proxy by node id and cluster)");
    }
    if (b->node.cluster == NULL || b->node.cluster[0] == '\0') {
        rm_yaml_path_push_key(d, "node");
        return fail_at(d, "cluster",
                       "required when dynamic_resources is set (the management server "
                       "identifies this proxy by node id and cluster)");
    }
    if (dr->ads_config.set && check_xds_cluster(d, b, dr->ads_config.grpc_cluster, "ads_config", false) != 0)
        return -1;
    if (dr->cds_config.set && dr->cds_config.grpc_cluster != NULL &&
        check_xds_cluster(d, b, dr->cds_config.grpc_cluster, "cds_config", true) != 0)
        return -1;
    return 0;
}

/* ---- node, admin, bootstrap ---- */

static const rm_yaml_field_t node_fields[] = {
    RM_YAML_FIELD("id", rm_yaml_decode_string, rm_node_config_t, id, NULL, 0),
    RM_YAML_FIELD("cluster", rm_yaml_decode_string, rm_node_config_t, cluster, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char node_unsupported[] =
    "metadata dynamic_parameters locality user_agent_name user_agent_version user_agent_build_version "
    "extensions client_features listening_addresses";
static const rm_yaml_message_t node_message = {"Node", node_fields, node_unsupported, NULL, NULL};

static int decode_admin_address(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    /* Envoy runs the admin listener only when an address is configured. */
    ((rm_admin_config_t *)obj)->enabled = true;
    return rm_yaml_decode_submessage(d, n, obj, f);
}

static const rm_yaml_field_t admin_fields[] = {
    RM_YAML_FIELD("address", decode_admin_address, rm_admin_config_t, address, &listen_address, 0),
    RM_YAML_FIELD("access_log_path", rm_yaml_decode_string, rm_admin_config_t, access_log_path, NULL, 0),
    RM_YAML_FIELDS_END,
};
static const char admin_unsupported[] = "access_log profile_path socket_options ignore_global_conn_limit";
static const rm_yaml_message_t admin_message = {"Admin", admin_fields, admin_unsupported, NULL, NULL};

static const rm_yaml_field_t bootstrap_fields[] = {
    RM_YAML_FIELD("node", rm_yaml_decode_submessage, rm_bootstrap_config_t, node, &node_message, 0),
    RM_YAML_FIELD("admin", rm_yaml_decode_submessage, rm_bootstrap_config_t, admin, &admin_message, 0),
    /* Before static_resources: EDS clusters and routes are checked against it. */
    RM_YAML_FIELD("dynamic_resources", rm_yaml_decode_submessage, rm_bootstrap_config_t, dynamic_resources,
                  &dynamic_resources_message, 0),
    {"static_resources", rm_yaml_decode_submessage, 0, &static_resources_message, 0},
    RM_YAML_FIELDS_END,
};
static const char bootstrap_unsupported[] =
    "node_context_params cluster_manager hds_config flags_path stats_sinks "
    "deferred_stat_options stats_config stats_flush_interval stats_flush_on_admin watchdog watchdogs "
    "tracing runtime layered_runtime overload_manager enable_dispatcher_stats header_prefix "
    "stats_server_version_override use_tcp_for_dns_lookups dns_resolution_config "
    "typed_dns_resolver_config bootstrap_extensions fatal_actions config_sources "
    "default_config_source default_socket_interface certificate_provider_instances inline_headers "
    "perf_tracing_file_path default_regex_engine xds_delegate_extension xds_config_tracker_extension "
    "listener_manager application_log_config grpc_async_client_manager_config "
    "memory_allocator_manager";
static const rm_yaml_message_t bootstrap_message = {"Bootstrap", bootstrap_fields, bootstrap_unsupported,
                                                    NULL, bootstrap_check};

/* ---- entry points ---- */

int rm_bootstrap_load_string(const char *yaml, size_t len, rm_bootstrap_config_t **out, char *err,
                             size_t errlen)
{
    char ignored[1];
    if (err == NULL || errlen == 0) {
        err = ignored;
        errlen = sizeof(ignored);
    }
    rm_yaml_decoder_t d;
    if (rm_yaml_decoder_init(&d, yaml, len, err, errlen) != 0) {
        rm_yaml_decoder_fini(&d);
        return -1;
    }
    loader_t loader;
    memset(&loader, 0, sizeof(loader));
    strset_init(&loader.cluster_names, false);
    loader.b = RM_NEW(rm_bootstrap_config_t);
    d.user = &loader;

    int rc = rm_yaml_decode_message(&d, rm_yaml_root(&d), &bootstrap_message, loader.b);
    strset_free(&loader.cluster_names);
    eds_tmp_reset(&loader);
    free(loader.hc_address.address);
    rm_yaml_decoder_fini(&d);
    if (rc != 0) {
        rm_bootstrap_config_free(loader.b);
        return -1;
    }
    *out = loader.b;
    return 0;
}

int rm_bootstrap_load_file(const char *path, rm_bootstrap_config_t **out, char *err, size_t errlen)
{
    char ignored[1];
    if (err == NULL || errlen == 0) {
        err = ignored;
        errlen = sizeof(ignored);
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path, MAX_FILE_BYTES);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    char *text = rm_malloc(size + 1);
    size_t got = fread(text, 1, size, f);
    bool read_error = ferror(f) != 0;
    fclose(f);
    if (read_error || got != size) {
        snprintf(err, errlen, "%s: read error", path);
        free(text);
        return -1;
    }
    int rc = rm_bootstrap_load_string(text, size, out, err, errlen);
    free(text);
    return rc;
}
