/* Plain-C configuration model: what the bootstrap loader (config/bootstrap.c) and, later, the xDS
 * conversion (src/xds/) produce. Nothing here knows about YAML or protobuf.
 *
 * Ownership: every string and array inside these structs is owned by the enclosing struct and
 * freed by the matching *_free function. Durations are milliseconds. */
#ifndef RM_CONFIG_CONFIG_H
#define RM_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address as written in config: "socket_address: {address, port_value}". The host is kept as
 * text; STATIC clusters and listeners need an IP literal, STRICT_DNS clusters a resolvable name. */
typedef struct {
    char *address; /* IPv4/IPv6 literal or DNS name */
    uint32_t port;
} rm_socket_address_config_t;

/* Envoy's core.v3.HealthStatus values (same numbers). */
typedef enum {
    RM_HEALTH_STATUS_UNKNOWN = 0,
    RM_HEALTH_STATUS_HEALTHY = 1,
    RM_HEALTH_STATUS_UNHEALTHY = 2,
    RM_HEALTH_STATUS_DRAINING = 3,
    RM_HEALTH_STATUS_TIMEOUT = 4,
    RM_HEALTH_STATUS_DEGRADED = 5,
} rm_health_status_t;

/* One lb_endpoint of a ClusterLoadAssignment, flattened with its locality's priority. */
typedef struct {
    rm_socket_address_config_t address;
    uint32_t weight;   /* load_balancing_weight, default 1 */
    uint32_t priority; /* from the enclosing LocalityLbEndpoints */
    rm_health_status_t health_status;
} rm_endpoint_config_t;

typedef enum {
    RM_CLUSTER_STATIC = 0,
    RM_CLUSTER_STRICT_DNS = 1,
    RM_CLUSTER_LOGICAL_DNS = 2, /* not accepted yet */
    RM_CLUSTER_EDS = 3,         /* not accepted yet */
} rm_cluster_type_t;

/* Envoy's Cluster.DnsLookupFamily numbers. */
typedef enum {
    RM_DNS_LOOKUP_AUTO = 0, /* IPv6 first, fall back to IPv4 */
    RM_DNS_LOOKUP_V4_ONLY = 1,
    RM_DNS_LOOKUP_V6_ONLY = 2,
    RM_DNS_LOOKUP_V4_PREFERRED = 3,
    RM_DNS_LOOKUP_ALL = 4,
} rm_dns_lookup_family_t;

/* Envoy's Cluster.LbPolicy numbers. */
typedef enum {
    RM_LB_ROUND_ROBIN = 0,
    RM_LB_LEAST_REQUEST = 1,
    RM_LB_RANDOM = 3,
} rm_lb_policy_t;

/* config.core.v3.Http2ProtocolOptions (the subset Remora implements). Defaults: see docs/http2.md. */
typedef struct {
    uint32_t max_concurrent_streams;         /* default 100 */
    uint32_t initial_stream_window_size;     /* default 1 MiB; 65535..2^31-1 */
    uint32_t initial_connection_window_size; /* default 16 MiB; 65535..2^31-1 */
    uint32_t hpack_table_size;               /* default 4096 */
    uint32_t max_outbound_control_frames;    /* queued PING/SETTINGS/RST acks; default 1000 */
    /* DATA/HEADERS frames without payload and without END_STREAM in a row; default 1 */
    uint32_t max_consecutive_inbound_frames_with_empty_payload;
} rm_http2_options_t;

/* Fills the defaults above. */
void rm_http2_options_default(rm_http2_options_t *o);

/* The protocol a cluster speaks to its hosts. */
typedef enum {
    RM_UPSTREAM_HTTP1 = 0, /* default */
    RM_UPSTREAM_HTTP2 = 1, /* h2c with prior knowledge (h2 over TLS once upstream TLS exists) */
} rm_upstream_protocol_t;

typedef struct {
    char *name;
    rm_cluster_type_t type;
    /* typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
     * .explicit_http_config, or the older cluster-level http2_protocol_options. */
    rm_upstream_protocol_t protocol;
    rm_http2_options_t http2;         /* used when protocol is HTTP2 */
    uint64_t connect_timeout_ms;      /* default 5000 */
    rm_lb_policy_t lb_policy;         /* only ROUND_ROBIN accepted for now */
    uint64_t dns_refresh_rate_ms;     /* STRICT_DNS re-resolution, default 5000 */
    uint32_t overprovisioning_factor; /* load_assignment.policy.overprovisioning_factor, default 140 */
    uint32_t per_connection_buffer_limit_bytes; /* default 1 MiB */
    rm_endpoint_config_t *endpoints;
    size_t num_endpoints;
    rm_dns_lookup_family_t dns_lookup_family; /* STRICT_DNS only, default AUTO */
    /* EDS clusters: the ClusterLoadAssignment name to subscribe to (eds_cluster_config.service_name,
     * or the cluster name when empty); endpoints then come from EDS, not from the config. */
    char *eds_service_name;
    /* common_lb_config.healthy_panic_threshold (percent); unset means Envoy's default 50, 0 disables. */
    bool healthy_panic_threshold_set;
    double healthy_panic_threshold;
    /* least_request_lb_config.choice_count; 0 means the default 2. */
    uint32_t choice_count;
    /* round_robin_lb_config / least_request_lb_config .slow_start_config; window 0 = off. */
    uint64_t slow_start_window_ms;
    double slow_start_aggression;         /* 0 means the default 1.0 */
    double slow_start_min_weight_percent; /* 0 means the default 10 */
} rm_cluster_config_t;

/* One EDS resource (ClusterLoadAssignment), converted. */
typedef struct {
    char *cluster_name; /* the CLA's cluster_name = the EDS service name */
    rm_endpoint_config_t *endpoints;
    size_t num_endpoints;
    uint32_t overprovisioning_factor; /* policy.overprovisioning_factor, default 140 */
} rm_cluster_load_assignment_t;

void rm_cluster_load_assignment_free(rm_cluster_load_assignment_t *cla); /* frees members, not cla itself */

typedef enum {
    RM_ROUTE_MATCH_PREFIX = 0,
    RM_ROUTE_MATCH_PATH = 1,
} rm_route_match_kind_t;

typedef struct {
    rm_route_match_kind_t match_kind;
    char *match_value;   /* the prefix or exact path */
    char *cluster;       /* route.cluster */
    uint64_t timeout_ms; /* route.timeout; default 15000, 0 disables */
} rm_route_config_t;

typedef struct {
    char *name;
    char **domains;
    size_t num_domains;
    rm_route_config_t *routes;
    size_t num_routes;
} rm_virtual_host_config_t;

typedef struct {
    char *name;
    rm_virtual_host_config_t *virtual_hosts;
    size_t num_virtual_hosts;
} rm_route_table_config_t;

typedef enum {
    RM_ACCESS_LOG_STDOUT = 0,
    RM_ACCESS_LOG_STDERR = 1,
    RM_ACCESS_LOG_FILE = 2,
} rm_access_log_kind_t;

typedef struct {
    rm_access_log_kind_t kind;
    char *path; /* for FILE */
} rm_access_log_config_t;

/* HttpConnectionManager.CodecType numbers. */
typedef enum {
    RM_HTTP_CODEC_AUTO = 0,
    RM_HTTP_CODEC_HTTP1 = 1,
    RM_HTTP_CODEC_HTTP2 = 2, /* every connection is HTTP/2 with prior knowledge (h2c) */
} rm_http_codec_type_t;

/* envoy.filters.network.http_connection_manager */
typedef struct {
    char *stat_prefix;
    rm_route_table_config_t route_config;
    uint64_t idle_timeout_ms;            /* common_http_protocol_options.idle_timeout, default 3600000 */
    uint64_t request_headers_timeout_ms; /* default 0 (disabled) as in Envoy; we default 10000 */
    uint64_t stream_idle_timeout_ms;     /* default 300000 */
    uint64_t drain_timeout_ms;           /* default 5000 */
    uint32_t max_request_headers_kb;     /* default 60 */
    uint32_t max_headers_count;          /* common_http_protocol_options.max_headers_count, default 100 */
    uint32_t max_request_line_bytes;     /* Remora extension default 16384; not an Envoy field */
    rm_access_log_config_t *access_logs;
    size_t num_access_logs;
    rm_http_codec_type_t codec_type; /* default AUTO: HTTP/1.1, or h2c when the client sends the preface */
    rm_http2_options_t http2;        /* http2_protocol_options */
    bool generate_request_id;        /* default true, as in Envoy */
    bool use_remote_address;         /* default false */
} rm_http_connection_manager_config_t;

typedef struct {
    char *name;
    rm_socket_address_config_t address;
    rm_http_connection_manager_config_t hcm;
    uint32_t per_connection_buffer_limit_bytes; /* default 1 MiB */
} rm_listener_config_t;

typedef struct {
    char *id;
    char *cluster;
} rm_node_config_t;

typedef struct {
    bool enabled; /* an admin.address was given */
    rm_socket_address_config_t address;
    char *access_log_path; /* admin.access_log_path, NULL if absent */
} rm_admin_config_t;

/* A config source: ADS, or a gRPC API config source pointing at a static cluster. */
typedef struct {
    bool set;                          /* the field was present */
    bool ads;                          /* {ads: {}} */
    char *grpc_cluster;                /* api_config_source.grpc_services[0].envoy_grpc.cluster_name */
    uint64_t initial_fetch_timeout_ms; /* default 15000 */
} rm_config_source_t;

/* bootstrap.dynamic_resources */
typedef struct {
    bool enabled;
    rm_config_source_t ads_config; /* api_type GRPC with one envoy_grpc service */
    rm_config_source_t cds_config;
} rm_dynamic_resources_config_t;

typedef struct {
    rm_node_config_t node;
    rm_admin_config_t admin;
    rm_dynamic_resources_config_t dynamic_resources;
    rm_listener_config_t *listeners;
    size_t num_listeners;
    rm_cluster_config_t *clusters;
    size_t num_clusters;
} rm_bootstrap_config_t;

void rm_cluster_config_free(rm_cluster_config_t *c); /* frees members, not c itself */
/* Deep copy of src into *dst (whose previous contents are overwritten, not freed). */
void rm_route_table_config_copy(rm_route_table_config_t *dst, const rm_route_table_config_t *src);
void rm_route_table_config_free(rm_route_table_config_t *t); /* frees members, not t itself */
void rm_listener_config_free(rm_listener_config_t *l);       /* frees members, not l itself */
void rm_bootstrap_config_free(rm_bootstrap_config_t *b);     /* frees members and b */

#endif
