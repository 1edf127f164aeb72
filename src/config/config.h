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
    /* endpoint.health_check_config: where active checks go instead of the endpoint address.
     * hc_port 0 = the endpoint's port; hc_address NULL = the endpoint's address (IP literal). */
    uint32_t hc_port;
    char *hc_address;
} rm_endpoint_config_t;

/* Cluster.outlier_detection (Envoy's fields; defaults filled in by the loaders). Durations in ms,
 * percentages 0..100. */
typedef struct {
    bool enabled;                                        /* the field was present */
    uint32_t consecutive_5xx;                            /* 5 */
    uint32_t consecutive_gateway_failure;                /* 5 */
    uint32_t consecutive_local_origin_failure;           /* 5 */
    uint64_t interval_ms;                                /* 10000 */
    uint64_t base_ejection_time_ms;                      /* 30000 */
    uint64_t max_ejection_time_ms;                       /* 300000 */
    uint64_t max_ejection_time_jitter_ms;                /* 0 */
    uint32_t max_ejection_percent;                       /* 10 */
    uint32_t enforcing_consecutive_5xx;                  /* 100 */
    uint32_t enforcing_consecutive_gateway_failure;      /* 0 */
    uint32_t enforcing_consecutive_local_origin_failure; /* 100 */
    uint32_t enforcing_success_rate;                     /* 100 */
    uint32_t enforcing_local_origin_success_rate;        /* 100 */
    uint32_t success_rate_minimum_hosts;                 /* 5 */
    uint32_t success_rate_request_volume;                /* 100 */
    uint32_t success_rate_stdev_factor;                  /* 1900 (= 1.9) */
    uint32_t failure_percentage_threshold;               /* 85 */
    uint32_t enforcing_failure_percentage;               /* 0 */
    uint32_t enforcing_failure_percentage_local_origin;  /* 0 */
    uint32_t failure_percentage_minimum_hosts;           /* 5 */
    uint32_t failure_percentage_request_volume;          /* 50 */
    bool split_external_local_origin_errors;             /* false */
    bool successful_active_health_check_uneject_host;    /* true */
    bool always_eject_one_host;                          /* false */
} rm_outlier_detection_config_t;

/* Fills Envoy's defaults and sets enabled. */
void rm_outlier_detection_config_defaults(rm_outlier_detection_config_t *od);

typedef enum {
    RM_HEALTH_CHECK_HTTP = 0,
    RM_HEALTH_CHECK_TCP = 1,
} rm_health_check_kind_t;

/* A request header added to HTTP checks (request_headers_to_add). */
typedef struct {
    char *key;
    char *value;
} rm_hc_header_t;

/* Bytes to send or expect in a check. */
typedef struct {
    unsigned char *data; /* NULL: none */
    size_t len;
} rm_hc_payload_t;

/* Half-open status range [start, end). */
typedef struct {
    int64_t start, end;
} rm_hc_status_range_t;

/* Cluster.health_checks[i]. Payloads are raw bytes (text payloads are hex in config and decoded by
 * the loaders). */
typedef struct {
    rm_health_check_kind_t kind;
    uint64_t timeout_ms;              /* required */
    uint64_t interval_ms;             /* required */
    uint64_t initial_jitter_ms;       /* 0 */
    uint64_t interval_jitter_ms;      /* 0 */
    uint32_t interval_jitter_percent; /* 0 */
    uint32_t unhealthy_threshold;     /* required */
    uint32_t healthy_threshold;       /* required */
    uint64_t unhealthy_interval_ms;   /* 0 = interval */
    uint64_t no_traffic_interval_ms;  /* 60000 */
    bool reuse_connection;            /* true */
    /* HTTP */
    char *host;   /* NULL = the cluster name */
    char *path;   /* required for HTTP */
    char *method; /* NULL = GET */
    bool http2;   /* codec_client_type HTTP2: prior-knowledge h2c */
    rm_hc_header_t *headers;
    size_t num_headers;
    rm_hc_status_range_t *expected_statuses; /* none = [200, 201) */
    size_t num_expected_statuses;
    /* TCP send; HTTP and TCP receive (all receive blocks must appear, in order). */
    rm_hc_payload_t send;
    rm_hc_payload_t *receive;
    size_t num_receive;
} rm_health_check_config_t;

void rm_health_check_config_free(rm_health_check_config_t *hc); /* frees members */
/* Decodes a health-check payload written as hex text (Envoy's Payload.text): an even number of hex
 * digits, case-insensitive, nothing else. Returns 0 with a new buffer in *out (NUL-terminated for
 * convenience, *out_len excludes it), or -1 with *err set to a static reason. */
int rm_config_hex_decode(const char *hex, size_t len, unsigned char **out, size_t *out_len, const char **err);
/* A DataSource as Envoy writes it: exactly one of a file name or an inline string. */
typedef struct {
    char *filename;
    char *inline_string;
} rm_data_source_t;

/* TlsParameters.TlsProtocol numbers. */
typedef enum {
    RM_TLS_AUTO = 0,
    RM_TLS_V1_0 = 1,
    RM_TLS_V1_1 = 2,
    RM_TLS_V1_2 = 3,
    RM_TLS_V1_3 = 4,
} rm_tls_protocol_t;

/* The transport_socket of a listener's filter chain (DownstreamTlsContext) or of a cluster
 * (UpstreamTlsContext), flattened: CommonTlsContext's supported fields plus the side-specific ones.
 * `enabled` is false for plaintext. */
typedef struct {
    bool enabled;
    bool has_certificate; /* tls_certificates[0] given */
    rm_data_source_t certificate_chain;
    rm_data_source_t private_key;
    bool has_trusted_ca; /* validation_context.trusted_ca given */
    rm_data_source_t trusted_ca;
    /* validation_context.match_typed_subject_alt_names: DNS exact names, one must match. */
    char **verify_san_dns;
    size_t num_verify_san_dns;
    char **alpn_protocols;
    size_t num_alpn_protocols;
    rm_tls_protocol_t min_protocol;  /* tls_params.tls_minimum_protocol_version */
    rm_tls_protocol_t max_protocol;  /* tls_params.tls_maximum_protocol_version */
    bool require_client_certificate; /* downstream only */
    char *sni;                       /* upstream only */
} rm_tls_config_t;

void rm_tls_config_free(rm_tls_config_t *t); /* frees members, not t itself */
/* Deep equality (for deciding whether a cluster update changes anything). */
bool rm_tls_config_equal(const rm_tls_config_t *a, const rm_tls_config_t *b);

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

/* circuit_breakers.thresholds for one routing priority (Envoy's defaults: 1024, 1024, 1024, 3). */
typedef struct {
    uint32_t max_connections;
    uint32_t max_pending_requests;
    uint32_t max_requests;
    uint32_t max_retries;
} rm_circuit_breaker_thresholds_t;

/* Envoy's core.v3.RoutingPriority. Routes are always DEFAULT in Remora (no route priority yet), so
 * the HIGH thresholds are accepted and shown but do not limit any request. */
typedef enum {
    RM_ROUTING_PRIORITY_DEFAULT = 0,
    RM_ROUTING_PRIORITY_HIGH = 1,
} rm_routing_priority_t;

/* The cluster fail-fast breaker, a Remora extension (Envoy has no equivalent): after
 * `consecutive_failures` failed or slow requests in a row, the whole cluster answers 503 at once for
 * `open_duration_ms`; then up to `half_open_requests` probe requests go through, and their outcome
 * closes the breaker (all succeed) or opens it again. Carried in
 * typed_extension_protocol_options["remora.fail_fast"] (type remora.config.v1.FailFastBreaker). */
#define RM_FAIL_FAST_EXTENSION "remora.fail_fast"
#define RM_FAIL_FAST_TYPE_URL  "type.googleapis.com/remora.config.v1.FailFastBreaker"

typedef struct {
    bool enabled;
    uint32_t consecutive_failures; /* default 5 */
    uint64_t slow_call_ms;         /* a response head slower than this counts as a failure; 0 = off */
    uint64_t open_duration_ms;     /* default 30000 */
    uint32_t half_open_requests;   /* default 1 */
    bool ignore_5xx;               /* 5xx responses do not count (only resets, connect failures, timeouts) */
} rm_fail_fast_config_t;
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
    rm_outlier_detection_config_t outlier_detection;
    rm_health_check_config_t *health_checks;
    size_t num_health_checks;
    /* circuit_breakers.thresholds, indexed by rm_routing_priority_t. When circuit_breakers_set is
     * false (the field was absent, or a hand-built config) Envoy's defaults apply to both. */
    bool circuit_breakers_set;
    rm_circuit_breaker_thresholds_t circuit_breakers[2];
    rm_fail_fast_config_t fail_fast;
    rm_tls_config_t tls; /* transport_socket (UpstreamTlsContext) */
} rm_cluster_config_t;

/* Envoy's defaults for circuit_breakers thresholds (the same for both priorities). */
void rm_circuit_breaker_thresholds_default(rm_circuit_breaker_thresholds_t *t);

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

/* RetryPolicy.retry_on conditions: X(enum suffix, Envoy's name). */
#define RM_RETRY_ON_CONDITIONS(X)                                                                            \
    X(5XX, "5xx")                                                                                            \
    X(GATEWAY_ERROR, "gateway-error")                                                                        \
    X(RESET, "reset")                                                                                        \
    X(CONNECT_FAILURE, "connect-failure")                                                                    \
    X(RETRIABLE_4XX, "retriable-4xx")                                                                        \
    X(REFUSED_STREAM, "refused-stream")                                                                      \
    X(RETRIABLE_STATUS_CODES, "retriable-status-codes")

enum {
#define RM_RETRY_ON_BIT(e, s) RM_RETRY_ON_BIT_##e,
    RM_RETRY_ON_CONDITIONS(RM_RETRY_ON_BIT)
#undef RM_RETRY_ON_BIT
};
enum {
#define RM_RETRY_ON_MASK(e, s) RM_RETRY_ON_##e = 1u << RM_RETRY_ON_BIT_##e,
    RM_RETRY_ON_CONDITIONS(RM_RETRY_ON_MASK)
#undef RM_RETRY_ON_MASK
};

#define RM_RETRY_MAX_STATUS_CODES 16

/* route.v3.RetryPolicy (on a route, or on its virtual host for routes without one). */
typedef struct {
    bool set;
    uint32_t retry_on;    /* RM_RETRY_ON_* bits */
    uint32_t num_retries; /* default 1 */
    uint64_t per_try_timeout_ms;
    uint32_t retriable_status_codes[RM_RETRY_MAX_STATUS_CODES];
    size_t num_retriable_status_codes;
    bool previous_hosts; /* retry_host_predicate envoy.retry_host_predicates.previous_hosts */
    uint32_t host_selection_retry_max_attempts; /* default 1 */
    bool previous_priorities;           /* retry_priority envoy.retry_priorities.previous_priorities */
    uint32_t priority_update_frequency; /* PreviousPrioritiesConfig.update_frequency, >= 1 */
    uint64_t back_off_base_ms;          /* retry_back_off.base_interval, default 25 */
    uint64_t back_off_max_ms;           /* retry_back_off.max_interval, default 10x base */
} rm_retry_policy_config_t;

typedef struct {
    rm_route_match_kind_t match_kind;
    char *match_value;   /* the prefix or exact path */
    char *cluster;       /* route.cluster */
    uint64_t timeout_ms; /* route.timeout; default 15000, 0 disables */
    /* The route's retry_policy, or its virtual host's when the route has none. */
    rm_retry_policy_config_t retry_policy;
    /* per_request_buffer_limit_bytes of the route or its virtual host: how much request body is kept
     * for retries. 0 = unset (the listener's per_connection_buffer_limit_bytes applies). */
    uint32_t per_request_buffer_limit_bytes;
    bool include_request_attempt_count;     /* VirtualHost.include_request_attempt_count */
    bool include_attempt_count_in_response; /* VirtualHost.include_attempt_count_in_response */
} rm_route_config_t;

typedef struct {
    char *name;
    char **domains;
    size_t num_domains;
    rm_route_config_t *routes;
    size_t num_routes;
    /* Virtual-host defaults, copied into each route at load time (a route's own settings win). */
    rm_retry_policy_config_t retry_policy;
    uint32_t per_request_buffer_limit_bytes;
    bool include_request_attempt_count;
    bool include_attempt_count_in_response;
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
    rm_tls_config_t tls;                        /* filter_chains[0].transport_socket (DownstreamTlsContext) */
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
