/* Bootstrap loader: a real Envoy-style bootstrap loads unchanged with every value where it belongs;
 * defaults match Envoy's; every invalid or unsupported input fails with the field's full path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config/bootstrap.h"
#include "config/yaml_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An Envoy bootstrap in the block style of Envoy's own examples, using every supported field. */
static const char full_yaml[] =
    "node:\n"
    "  id: sidecar-1\n"
    "  cluster: web\n"
    "admin:\n"
    "  access_log_path: /dev/null\n"
    "  address:\n"
    "    socket_address: { address: 127.0.0.1, port_value: 9901 }\n"
    "static_resources:\n"
    "  listeners:\n"
    "  - name: ingress\n"
    "    per_connection_buffer_limit_bytes: 32768\n"
    "    address:\n"
    "      socket_address:\n"
    "        protocol: TCP\n"
    "        address: 0.0.0.0\n"
    "        port_value: 10000\n"
    "    filter_chains:\n"
    "    - filters:\n"
    "      - name: envoy.filters.network.http_connection_manager\n"
    "        typed_config:\n"
    "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager\n"
    "          stat_prefix: ingress_http\n"
    "          codec_type: HTTP1\n"
    "          generate_request_id: false\n"
    "          use_remote_address: true\n"
    "          request_headers_timeout: 2s\n"
    "          stream_idle_timeout: 30s\n"
    "          drain_timeout: 0.5s\n"
    "          max_request_headers_kb: 96\n"
    "          common_http_protocol_options:\n"
    "            idle_timeout: 120s\n"
    "            max_headers_count: 50\n"
    "          access_log:\n"
    "          - name: envoy.access_loggers.stdout\n"
    "            typed_config:\n"
    "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers."
    "stream.v3.StdoutAccessLog\n"
    "          - name: envoy.access_loggers.file\n"
    "            typed_config:\n"
    "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers."
    "file.v3.FileAccessLog\n"
    "              path: /var/log/remora.log\n"
    "          route_config:\n"
    "            name: local_route\n"
    "            virtual_hosts:\n"
    "            - name: api\n"
    "              domains: [\"api.example.com\", \"api.example.com:8443\"]\n"
    "              routes:\n"
    "              - match: { path: /healthz }\n"
    "                route: { cluster: backend, timeout: 1.5s }\n"
    "              - name: everything\n"
    "                match: { prefix: / }\n"
    "                route: { cluster: backend, timeout: 0s }\n"
    "            - name: catch_all\n"
    "              domains: [\"*\"]\n"
    "              routes:\n"
    "              - match: { prefix: /static/ }\n"
    "                route: { cluster: dns_backend }\n"
    "          http_filters:\n"
    "          - name: envoy.filters.http.router\n"
    "            typed_config:\n"
    "              \"@type\": type.googleapis.com/envoy.extensions.filters.http."
    "router.v3.Router\n"
    "  clusters:\n"
    "  - name: backend\n"
    "    connect_timeout: 0.25s\n"
    "    type: STATIC\n"
    "    lb_policy: ROUND_ROBIN\n"
    "    per_connection_buffer_limit_bytes: 65536\n"
    "    load_assignment:\n"
    "      cluster_name: backend\n"
    "      policy: { overprovisioning_factor: 200 }\n"
    "      endpoints:\n"
    "      - lb_endpoints:\n"
    "        - endpoint:\n"
    "            address:\n"
    "              socket_address: { address: 10.0.0.1, port_value: 8080 }\n"
    "          load_balancing_weight: 3\n"
    "        - endpoint:\n"
    "            address:\n"
    "              socket_address: { address: \"::1\", port_value: 8081 }\n"
    "          health_status: DRAINING\n"
    "      - priority: 1\n"
    "        lb_endpoints:\n"
    "        - endpoint:\n"
    "            address:\n"
    "              socket_address: { address: 10.0.1.1, port_value: 8080 }\n"
    "  - name: dns_backend\n"
    "    type: STRICT_DNS\n"
    "    dns_refresh_rate: 10s\n"
    "    dns_lookup_family: V4_ONLY\n"
    "    load_assignment:\n"
    "      cluster_name: dns_backend\n"
    "      endpoints:\n"
    "      - lb_endpoints:\n"
    "        - endpoint:\n"
    "            address:\n"
    "              socket_address: { address: backend.internal, port_value: 80 }\n";

static rm_bootstrap_config_t *load_ok(const char *yaml)
{
    rm_bootstrap_config_t *b = NULL;
    char err[512] = "";
    int rc = rm_bootstrap_load_string(yaml, strlen(yaml), &b, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(b);
    return b;
}

static void test_full_bootstrap(void **state)
{
    rm_bootstrap_config_t *b = load_ok(full_yaml);
    assert_string_equal(b->node.id, "sidecar-1");
    assert_string_equal(b->node.cluster, "web");
    assert_true(b->admin.enabled);
    assert_string_equal(b->admin.address.address, "127.0.0.1");
    assert_int_equal(b->admin.address.port, 9901);
    assert_string_equal(b->admin.access_log_path, "/dev/null");

    assert_int_equal(b->num_listeners, 1);
    const rm_listener_config_t *l = &b->listeners[0];
    assert_string_equal(l->name, "ingress");
    assert_string_equal(l->address.address, "0.0.0.0");
    assert_int_equal(l->address.port, 10000);
    assert_int_equal(l->per_connection_buffer_limit_bytes, 32768);
    const rm_http_connection_manager_config_t *h = &l->hcm;
    assert_string_equal(h->stat_prefix, "ingress_http");
    assert_int_equal(h->codec_type, RM_HTTP_CODEC_HTTP1);
    assert_false(h->generate_request_id);
    assert_true(h->use_remote_address);
    assert_int_equal(h->request_headers_timeout_ms, 2000);
    assert_int_equal(h->stream_idle_timeout_ms, 30000);
    assert_int_equal(h->drain_timeout_ms, 500);
    assert_int_equal(h->max_request_headers_kb, 96);
    assert_int_equal(h->idle_timeout_ms, 120000);
    assert_int_equal(h->max_headers_count, 50);
    assert_int_equal(h->num_access_logs, 2);
    assert_int_equal(h->access_logs[0].kind, RM_ACCESS_LOG_STDOUT);
    assert_null(h->access_logs[0].path);
    assert_int_equal(h->access_logs[1].kind, RM_ACCESS_LOG_FILE);
    assert_string_equal(h->access_logs[1].path, "/var/log/remora.log");

    const rm_route_table_config_t *rt = &h->route_config;
    assert_string_equal(rt->name, "local_route");
    assert_int_equal(rt->num_virtual_hosts, 2);
    const rm_virtual_host_config_t *api = &rt->virtual_hosts[0];
    assert_string_equal(api->name, "api");
    assert_int_equal(api->num_domains, 2);
    assert_string_equal(api->domains[0], "api.example.com");
    assert_string_equal(api->domains[1], "api.example.com:8443");
    assert_int_equal(api->num_routes, 2);
    assert_int_equal(api->routes[0].match_kind, RM_ROUTE_MATCH_PATH);
    assert_string_equal(api->routes[0].match_value, "/healthz");
    assert_string_equal(api->routes[0].cluster, "backend");
    assert_int_equal(api->routes[0].timeout_ms, 1500);
    assert_int_equal(api->routes[1].match_kind, RM_ROUTE_MATCH_PREFIX);
    assert_string_equal(api->routes[1].match_value, "/");
    assert_int_equal(api->routes[1].timeout_ms, 0);
    assert_int_equal(rt->virtual_hosts[1].routes[0].timeout_ms, 15000);
    assert_string_equal(rt->virtual_hosts[1].routes[0].cluster, "dns_backend");

    assert_int_equal(b->num_clusters, 2);
    const rm_cluster_config_t *c = &b->clusters[0];
    assert_string_equal(c->name, "backend");
    assert_int_equal(c->type, RM_CLUSTER_STATIC);
    assert_int_equal(c->connect_timeout_ms, 250);
    assert_int_equal(c->lb_policy, RM_LB_ROUND_ROBIN);
    assert_int_equal(c->per_connection_buffer_limit_bytes, 65536);
    assert_int_equal(c->overprovisioning_factor, 200);
    assert_int_equal(c->num_endpoints, 3);
    assert_string_equal(c->endpoints[0].address.address, "10.0.0.1");
    assert_int_equal(c->endpoints[0].address.port, 8080);
    assert_int_equal(c->endpoints[0].weight, 3);
    assert_int_equal(c->endpoints[0].priority, 0);
    assert_int_equal(c->endpoints[0].health_status, RM_HEALTH_STATUS_UNKNOWN);
    assert_string_equal(c->endpoints[1].address.address, "::1");
    assert_int_equal(c->endpoints[1].weight, 1);
    assert_int_equal(c->endpoints[1].health_status, RM_HEALTH_STATUS_DRAINING);
    assert_int_equal(c->endpoints[2].priority, 1);

    const rm_cluster_config_t *dns = &b->clusters[1];
    assert_int_equal(dns->type, RM_CLUSTER_STRICT_DNS);
    assert_int_equal(dns->dns_refresh_rate_ms, 10000);
    assert_int_equal(dns->dns_lookup_family, RM_DNS_LOOKUP_V4_ONLY);
    assert_string_equal(dns->endpoints[0].address.address, "backend.internal");
    rm_bootstrap_config_free(b);
}

/* A small document built from flow-style pieces, so each case below changes only what it tests.
 * The pieces are: extra top-level keys, the clusters list, extra HCM keys, the virtual hosts. */
#define HCM_TYPE                                                                                             \
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define DEFAULT_CLUSTER                                                                                      \
    "{name: c0, load_assignment: {cluster_name: c0, endpoints: [{lb_endpoints: [{endpoint: {address: "       \
    "{socket_address: {address: 127.0.0.1, port_value: 9000}}}}]}]}}"
#define DEFAULT_VHOST "{name: v0, domains: [\"*\"], routes: [{match: {prefix: /}, route: {cluster: c0}}]}"

static char *build(const char *top, const char *clusters, const char *hcm, const char *vhosts)
{
    char *out = NULL;
    int n =
        asprintf(&out,
                 "%s\n"
                 "static_resources:\n"
                 "  clusters: [%s]\n"
                 "  listeners: [{name: l0, address: {socket_address: {address: 0.0.0.0, port_value: 8080}},\n"
                 "    filter_chains: [{filters: [{name: envoy.filters.network.http_connection_manager,\n"
                 "      typed_config: {\"@type\": \"" HCM_TYPE "\", stat_prefix: in, %s\n"
                 "        http_filters: [{name: envoy.filters.http.router}],\n"
                 "        route_config: {name: r, virtual_hosts: [%s]}}}]}]}]\n",
                 top ? top : "", clusters ? clusters : DEFAULT_CLUSTER, hcm ? hcm : "",
                 vhosts ? vhosts : DEFAULT_VHOST);
    assert_true(n > 0);
    return out;
}

static void test_defaults(void **state)
{
    char *yaml = build(NULL, NULL, NULL, NULL);
    rm_bootstrap_config_t *b = load_ok(yaml);
    free(yaml);
    assert_false(b->admin.enabled);
    assert_null(b->admin.access_log_path);
    assert_null(b->node.id);
    const rm_cluster_config_t *c = &b->clusters[0];
    assert_int_equal(c->type, RM_CLUSTER_STATIC);
    assert_int_equal(c->connect_timeout_ms, 5000);
    assert_int_equal(c->lb_policy, RM_LB_ROUND_ROBIN);
    assert_int_equal(c->dns_refresh_rate_ms, 5000);
    assert_int_equal(c->dns_lookup_family, RM_DNS_LOOKUP_AUTO);
    assert_int_equal(c->overprovisioning_factor, 140);
    assert_int_equal(c->per_connection_buffer_limit_bytes, 1u << 20);
    assert_int_equal(c->endpoints[0].weight, 1);
    assert_int_equal(c->endpoints[0].priority, 0);
    const rm_listener_config_t *l = &b->listeners[0];
    assert_int_equal(l->per_connection_buffer_limit_bytes, 1u << 20);
    const rm_http_connection_manager_config_t *h = &l->hcm;
    assert_int_equal(h->codec_type, RM_HTTP_CODEC_AUTO);
    assert_int_equal(h->idle_timeout_ms, 3600000);
    assert_int_equal(h->request_headers_timeout_ms, 10000);
    assert_int_equal(h->stream_idle_timeout_ms, 300000);
    assert_int_equal(h->drain_timeout_ms, 5000);
    assert_int_equal(h->max_request_headers_kb, 60);
    assert_int_equal(h->max_headers_count, 100);
    assert_int_equal(h->max_request_line_bytes, 16384);
    assert_true(h->generate_request_id);
    assert_false(h->use_remote_address);
    assert_int_equal(h->num_access_logs, 0);
    assert_int_equal(h->route_config.virtual_hosts[0].routes[0].timeout_ms, 15000);
    rm_bootstrap_config_free(b);
}

typedef struct {
    const char *top, *clusters, *hcm, *vhosts;
    const char *want; /* the full error line, or its start when it ends in '*' */
} error_case_t;

#define LA(eps)     "load_assignment: {cluster_name: c, endpoints: [" eps "]}"
#define EP(addr)    "{endpoint: {address: {socket_address: {address: " addr "}}}}"
#define LA_EP(addr) LA("{lb_endpoints: [" EP(addr) "]}")
#define CL(fields)  "{name: c0, " fields "}"
#define VH(name, domains)                                                                                    \
    "{name: " name ", domains: [" domains "], routes: [{match: {prefix: /}, route: {cluster: c0}}]}"
#define LF0 "static_resources.listeners[0].filter_chains[0].filters[0].typed_config."

static const error_case_t error_cases[] = {
    /* The examples of the loader's contract. */
    {NULL, DEFAULT_CLUSTER ", {name: c1, connect_timeout: 5x}", NULL, NULL,
     "static_resources.clusters[1].connect_timeout: invalid duration \"5x\" (expected e.g. \"0.25s\")"},
    {NULL, NULL, NULL, VH("a", "\"a.com\"") ", " VH("b", "\"a.com\""),
     LF0 "route_config.virtual_hosts[1].domains[0]: duplicate domain \"a.com\" (also in virtual_hosts[0])"},
    /* Unsupported sections. */
    {"dynamic_resources: {ads_config: {}}", NULL, NULL, NULL,
     "dynamic_resources.ads_config.api_type: required field is missing"},
    {"layered_runtime: {}", NULL, NULL, NULL, "layered_runtime: not supported yet"},
    {"stats_sinks: []", NULL, NULL, NULL, "stats_sinks: not supported yet"},
    {"static_resources_typo: {}", NULL, NULL, NULL,
     "static_resources_typo: unknown field (Bootstrap supports: *"},
    {"node: {id: a, metadata: {}}", NULL, NULL, NULL, "node.metadata: not supported yet"},
    {"admin: {address: {socket_address: {address: localhost, port_value: 1}}}", NULL, NULL, NULL,
     "admin.address.socket_address.address: expected an IP address, got \"localhost\""},
    {"admin: {address: {pipe: {path: /tmp/a}}}", NULL, NULL, NULL, "admin.address.pipe: not supported yet"},
    /* Clusters. */
    {NULL, CL("conect_timeout: 1s"), NULL, NULL,
     "static_resources.clusters[0].conect_timeout: unknown field *"},
    {NULL, "{connect_timeout: 1s}", NULL, NULL,
     "static_resources.clusters[0].name: required field is missing"},
    {NULL, "{name: \"\"}", NULL, NULL, "static_resources.clusters[0].name: must not be empty"},
    {NULL, CL("type: EDS"), NULL, NULL,
     "static_resources.clusters[0].eds_cluster_config: required for type EDS (it says where the endpoints "
     "come "
     "from)"},
    {NULL, CL("type: LOGICAL_DNS"), NULL, NULL,
     "static_resources.clusters[0].type: LOGICAL_DNS is not supported yet*"},
    {NULL, CL("type: ORIGINAL_DST"), NULL, NULL,
     "static_resources.clusters[0].type: ORIGINAL_DST is not supported yet*"},
    {NULL, CL("type: STATICK"), NULL, NULL,
     "static_resources.clusters[0].type: unknown value \"STATICK\" (expected one of *"},
    {NULL, CL("lb_policy: MAGLEV"), NULL, NULL,
     "static_resources.clusters[0].lb_policy: MAGLEV is not supported yet (supported: ROUND_ROBIN, "
     "LEAST_REQUEST, "
     "RANDOM)"},
    {NULL, CL("dns_lookup_family: V5_ONLY"), NULL, NULL,
     "static_resources.clusters[0].dns_lookup_family: unknown value*"},
    {NULL, CL("health_checks: [{grpc_health_check: {}}]"), NULL, NULL,
     "static_resources.clusters[0].health_checks[0].grpc_health_check: not supported yet"},
    {NULL, CL("health_checks: [{timeout: 1s, interval: 1s}]"), NULL, NULL,
     "static_resources.clusters[0].health_checks[0]: one of http_health_check, tcp_health_check is "
     "required*"},
    {NULL,
     CL("health_checks: [{timeout: 1s, interval: 1s, healthy_threshold: 1, unhealthy_threshold: 1, "
        "http_health_check: {path: /h, codec_client_type: HTTP3}}]"),
     NULL, NULL,
     "static_resources.clusters[0].health_checks[0].http_health_check.codec_client_type: HTTP3 *"},
    {NULL,
     CL("health_checks: [{timeout: 1s, interval: 1s, healthy_threshold: 1, unhealthy_threshold: 1, "
        "tcp_health_check: {send: {text: 0g}}}]"),
     NULL, NULL,
     "static_resources.clusters[0].health_checks[0].tcp_health_check.send.text: invalid hex payload: *"},
    {NULL, CL("outlier_detection: {max_ejection_percent: 101}"), NULL, NULL,
     "static_resources.clusters[0].outlier_detection.max_ejection_percent: 101 is out of range (0..100)"},
    {NULL, CL("outlier_detection: {monitors: []}"), NULL, NULL,
     "static_resources.clusters[0].outlier_detection.monitors: not supported yet"},
    {NULL, CL("connect_timeout: 0s"), NULL, NULL,
     "static_resources.clusters[0].connect_timeout: must be greater than 0s"},
    {NULL, CL("dns_refresh_rate: 0.001s"), NULL, NULL,
     "static_resources.clusters[0].dns_refresh_rate: must be greater than 0.001s"},
    {NULL, CL("per_connection_buffer_limit_bytes: \"100\""), NULL, NULL,
     "static_resources.clusters[0].per_connection_buffer_limit_bytes: expected an integer, got the quoted "
     "string*"},
    {NULL, CL("per_connection_buffer_limit_bytes: 4294967296"), NULL, NULL,
     "static_resources.clusters[0].per_connection_buffer_limit_bytes: 4294967296 is out of range "
     "(0..4294967295)"},
    {NULL, CL("per_connection_buffer_limit_bytes: 1.5"), NULL, NULL,
     "static_resources.clusters[0].per_connection_buffer_limit_bytes: expected a non-negative integer, got "
     "\"1.5\""},
    {NULL, CL("per_connection_buffer_limit_bytes: -1"), NULL, NULL,
     "static_resources.clusters[0].per_connection_buffer_limit_bytes: must not be negative, got \"-1\""},
    {NULL, DEFAULT_CLUSTER ", " DEFAULT_CLUSTER, NULL, NULL,
     "static_resources.clusters[1].name: duplicate cluster name \"c0\" (also clusters[0])"},
    {NULL, CL("load_assignment: {endpoints: []}"), NULL, NULL,
     "static_resources.clusters[0].load_assignment.cluster_name: required field is missing"},
    {NULL, CL(LA_EP("1.2.3.4")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_"
     "address."
     "port_value: an upstream endpoint needs a port (1..65535)"},
    {NULL, CL(LA_EP("1.2.3.4, port_value: 65536")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_"
     "address."
     "port_value: 65536 is out of range (0..65535)"},
    {NULL, CL(LA_EP("1.2.3.4, port_value: \"80\"")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_"
     "address."
     "port_value: expected an integer, got the quoted string \"80\" (remove the quotes)"},
    {NULL, CL(LA_EP("backend.local, port_value: 80")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_"
     "address."
     "address: STATIC clusters need an IP address, got \"backend.local\" (use STRICT_DNS for names)"},
    {NULL, CL("type: STRICT_DNS, " LA_EP("\"bad host\", port_value: 80")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_"
     "address."
     "address: invalid host name \"bad host\""},
    {NULL,
     CL(LA("{lb_endpoints: [{endpoint: {address: {socket_address: {address: 1.2.3.4, port_value: 1}}}, "
           "load_balancing_weight: 0}]}")),
     NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].load_balancing_weight: 0 is "
     "out of "
     "range (1..4294967295)"},
    {NULL,
     CL(LA("{lb_endpoints: [{endpoint: {address: {socket_address: {address: 1.2.3.4, port_value: 1}}}, "
           "health_status: SICK}]}")),
     NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].health_status: unknown "
     "value*"},
    {NULL, CL(LA("{priority: 1, lb_endpoints: []}")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints: priorities must be contiguous from 0: priority "
     "1 is "
     "used but not 0"},
    {NULL, CL(LA("{priority: 0}, {priority: 2}")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints: priorities must be contiguous from 0: priority "
     "2 is "
     "used but not 1"},
    {NULL, CL(LA("{priority: 129}")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].priority: 129 is out of range (0..128)"},
    {NULL, CL(LA("{locality: {zone: a}}")), NULL, NULL,
     "static_resources.clusters[0].load_assignment.endpoints[0].locality: not supported yet"},
    {NULL, CL("load_assignment: {cluster_name: c, policy: {overprovisioning_factor: 0}}"), NULL, NULL,
     "static_resources.clusters[0].load_assignment.policy.overprovisioning_factor: 0 is out of range "
     "(1..4294967295)"},
    {NULL, CL("name: c1"), NULL, NULL, "static_resources.clusters[0].name: duplicate key"},
    {NULL, "\"name: c0\"", NULL, NULL,
     "static_resources.clusters[0]: expected a mapping (Cluster), got \"name: c0\""},
    /* Listeners and the HTTP connection manager. */
    {NULL, NULL, "codec_type: HTTP3,", NULL,
     LF0 "codec_type: HTTP3 is not supported yet (supported: AUTO, HTTP1, HTTP2)"},
    {NULL, NULL, "http2_protocol_options: {max_concurrent_streams: 0},", NULL,
     LF0 "http2_protocol_options.max_concurrent_streams: 0 is out of range (1..2147483647)"},
    {NULL, NULL, "http2_protocol_options: {allow_connect: true},", NULL,
     LF0 "http2_protocol_options.allow_connect: not supported yet"},
    {NULL, NULL, "rds: {route_config_name: r},", NULL, LF0 "rds: not supported yet"},
    {NULL, NULL, "max_request_headers_kb: 0,", NULL,
     LF0 "max_request_headers_kb: 0 is out of range (1..8192)"},
    {NULL, NULL, "max_request_headers_kb: 8193,", NULL,
     LF0 "max_request_headers_kb: 8193 is out of range (1..8192)"},
    {NULL, NULL, "common_http_protocol_options: {max_headers_count: 0},", NULL,
     LF0 "common_http_protocol_options.max_headers_count: 0 is out of range (1..4294967295)"},
    {NULL, NULL, "generate_request_id: yes,", NULL,
     LF0 "generate_request_id: expected true or false, got \"yes\""},
    {NULL, NULL, "use_remote_address: \"true\",", NULL,
     LF0 "use_remote_address: expected true or false, got \"true\""},
    {NULL, NULL, "stream_idle_timeout: -1s,", NULL,
     LF0 "stream_idle_timeout: must not be negative, got \"-1s\""},
    {NULL, NULL, "drain_timeout: 5,", NULL,
     LF0 "drain_timeout: invalid duration \"5\" (expected e.g. \"0.25s\")"},
    {NULL, NULL, "access_log: [{name: envoy.access_loggers.syslog}],", NULL,
     LF0 "access_log[0].name: access logger \"envoy.access_loggers.syslog\" is not supported*"},
    {NULL, NULL, "access_log: [{name: envoy.access_loggers.file}],", NULL,
     LF0 "access_log[0].typed_config: envoy.access_loggers.file needs a typed_config with a path"},
    {NULL, NULL,
     "access_log: [{name: envoy.access_loggers.file, typed_config: {\"@type\": "
     "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog}}],",
     NULL,
     LF0 "access_log[0].typed_config.@type: expected "
         "\"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\", got*"},
    {NULL, NULL, "access_log: [{name: envoy.access_loggers.stdout, filter: {}}],", NULL,
     LF0 "access_log[0].filter: not supported yet"},
    {NULL, NULL, "http_filters: [{name: envoy.filters.http.cors}, {name: envoy.filters.http.router}],", NULL,
     LF0 "http_filters: duplicate key"},
    {NULL, NULL, "tracing: {},", NULL, LF0 "tracing: not supported yet"},
    {NULL, NULL, NULL, "{name: v, domains: [a.com], routes: [{match: {prefix: /}, route: {cluster: nope}}]}",
     LF0 "route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster \"nope\" (not defined in "
         "static_resources.clusters)"},
    {NULL, NULL, NULL,
     "{name: v, domains: [a.com], routes: [{match: {prefix: /, path: /x}, route: {cluster: c0}}]}",
     LF0 "route_config.virtual_hosts[0].routes[0].match.path: only one of prefix, path may be set"},
    {NULL, NULL, NULL, "{name: v, domains: [a.com], routes: [{match: {}, route: {cluster: c0}}]}",
     LF0 "route_config.virtual_hosts[0].routes[0].match: one of prefix, path is required"},
    {NULL, NULL, NULL,
     "{name: v, domains: [a.com], routes: [{match: {safe_regex: {regex: x}}, route: {cluster: c0}}]}",
     LF0 "route_config.virtual_hosts[0].routes[0].match.safe_regex: not supported yet"},
    {NULL, NULL, NULL, "{name: v, domains: [a.com], routes: [{match: {prefix: /}, redirect: {}}]}",
     LF0 "route_config.virtual_hosts[0].routes[0].redirect: not supported yet"},
    {NULL, NULL, NULL, "{name: v, domains: [a.com], routes: [{match: {prefix: /}}]}",
     LF0 "route_config.virtual_hosts[0].routes[0].route: required field is missing"},
    {NULL, NULL, NULL,
     "{name: v, domains: [a.com], routes: [{match: {prefix: /}, route: {cluster: c0, weighted_clusters: "
     "{}}}]}",
     LF0 "route_config.virtual_hosts[0].routes[0].route.weighted_clusters: not supported yet"},
    {NULL, NULL, NULL,
     "{name: v, domains: [a.com], routes: [{match: {prefix: /}, route: {cluster: c0, timeout: 1m}}]}",
     LF0 "route_config.virtual_hosts[0].routes[0].route.timeout: invalid duration \"1m\" (expected e.g. "
         "\"0.25s\")"},
    {NULL, NULL, NULL, "{name: v, domains: []}",
     LF0 "route_config.virtual_hosts[0].domains: needs at least 1 item"},
    {NULL, NULL, NULL, "{name: v}", LF0 "route_config.virtual_hosts[0].domains: required field is missing"},
    {NULL, NULL, NULL, "{domains: [a]}", LF0 "route_config.virtual_hosts[0].name: required field is missing"},
    {NULL, NULL, NULL, VH("a", "\"a.*.com\""),
     LF0 "route_config.virtual_hosts[0].domains[0]: invalid domain \"a.*.com\": a wildcard may only be the "
         "first or "
         "the last character"},
    {NULL, NULL, NULL, VH("a", "\"*.a.*\""), LF0 "route_config.virtual_hosts[0].domains[0]: invalid domain*"},
    {NULL, NULL, NULL, VH("a", "\"a b\""), LF0 "route_config.virtual_hosts[0].domains[0]: invalid domain*"},
    {NULL, NULL, NULL, VH("a", "\"\""), LF0 "route_config.virtual_hosts[0].domains[0]: must not be empty"},
    {NULL, NULL, NULL, VH("a", "\"A.com\", \"b.com\"") ", " VH("b", "\"c.com\", \"a.COM\""),
     LF0 "route_config.virtual_hosts[1].domains[1]: duplicate domain \"a.COM\" (also in virtual_hosts[0])"},
    {NULL, NULL, NULL, VH("a", "\"x.com\", \"x.com\""),
     LF0 "route_config.virtual_hosts[0].domains[1]: duplicate domain \"x.com\" in the same virtual host"},
    {NULL, NULL, NULL, VH("a", "\"*\"") ", " VH("b", "\"*\""),
     LF0 "route_config.virtual_hosts[1].domains[0]: only one virtual host may use the \"*\" domain "
         "(virtual_hosts[0] "
         "does)"},
    {NULL, NULL, NULL, "{name: v, domains: [a], virtual_clusters: []}",
     LF0 "route_config.virtual_hosts[0].virtual_clusters: not supported yet"},
};

static const char *const listener_error_docs[][2] = {
    {"static_resources: {clusters: [], listeners: [{name: a, address: {socket_address: {address: "
     "0.0.0.0}}}]}",
     "static_resources.listeners[0].filter_chains: required field is missing"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{}, "
     "{}]}]}",
     "static_resources.listeners[0].filter_chains: exactly one filter chain is supported for now"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filters: []}]}]}",
     "static_resources.listeners[0].filter_chains[0].filters: must contain "
     "envoy.filters.network.http_connection_manager"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filters: [{name: envoy.filters.network.tcp_proxy}]}]}]}",
     "static_resources.listeners[0].filter_chains[0].filters[0].name: network filter "
     "\"envoy.filters.network.tcp_proxy\" is not supported (only "
     "envoy.filters.network.http_connection_manager)"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": x}}]}]}]}",
     "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.@type: expected \"" HCM_TYPE
     "\", got \"x\""},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": \"" HCM_TYPE
     "\", stat_prefix: s, route_config: {}}}]}]}]}",
     "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters: must contain "
     "envoy.filters.http.router"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": \"" HCM_TYPE
     "\", stat_prefix: s, route_config: {}, http_filters: [{name: envoy.filters.http.router}, {name: "
     "envoy.filters.http.router}]}}]}]}]}",
     "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1].name: "
     "envoy.filters.http.router is listed more than once"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": \"" HCM_TYPE
     "\", stat_prefix: s, route_config: {}, http_filters: [{name: envoy.filters.http.router, typed_config: "
     "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, "
     "suppress_envoy_headers: "
     "true}}]}}]}]}]}",
     "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config."
     "suppress_envoy_headers: not supported yet"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": \"" HCM_TYPE
     "\", stat_prefix: s, route_config: {}, http_filters: [{name: envoy.filters.http.cors}]}}]}]}]}",
     "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].name: HTTP "
     "filter "
     "\"envoy.filters.http.cors\" is not supported (only envoy.filters.http.router)"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: {\"@type\": \"" HCM_TYPE
     "\", route_config: {}, http_filters: [{name: envoy.filters.http.router}]}}]}]}]}",
     "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix: required field is "
     "missing"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0}}, filter_chains: "
     "[{filter_chain_match: {}}]}]}",
     "static_resources.listeners[0].filter_chains[0].filter_chain_match: not supported yet"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: \"::\", port_value: "
     "70000}}}]}",
     "static_resources.listeners[0].address.socket_address.port_value: 70000 is out of range (0..65535)"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: my-host, port_value: "
     "1}}}]}",
     "static_resources.listeners[0].address.socket_address.address: expected an IP address, got \"my-host\""},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0, named_port: "
     "http}}}]}",
     "static_resources.listeners[0].address.socket_address.named_port: not supported yet"},
    {"static_resources: {listeners: [{name: a, address: {socket_address: {address: 0.0.0.0, protocol: "
     "UDP}}}]}",
     "static_resources.listeners[0].address.socket_address.protocol: UDP is not supported yet (supported: "
     "TCP)"},
    {"static_resources: {listeners: [{address: {socket_address: {address: 0.0.0.0}}}]}",
     "static_resources.listeners[0].name: required field is missing"},
    {"static_resources: {listeners: [{name: a, listener_filters: []}]}",
     "static_resources.listeners[0].listener_filters: not supported yet"},
    {"static_resources: {listeners: {name: a}}",
     "static_resources.listeners: expected a list, got a mapping"},
    {"static_resources: {secrets: []}", "static_resources.secrets: not supported yet"},
    {"static_resources: [1]", "static_resources: expected a mapping (StaticResources), got a list"},
    /* Whole-document errors. */
    {"- a\n- b\n", "expected a mapping (Bootstrap), got a list"},
    {"node: {id: a}\n---\nnode: {id: b}\n", "YAML error at line 2: more than one document in the file"},
    {"node:\n  id: [a\n", "YAML syntax error at line 3, column 1: *"},
    {"node: {id: a}\nnode: {id: b}\n", "node: duplicate key"},
    {"node: {id: *undefined}\n", "YAML syntax error at line 1, column 12: found undefined alias*"},
    {"? [a]\n: b\n", "keys must be strings, got a list"},
    {"node: {id: \"a\\0b\"}\n", "node.id: must not contain a NUL character"},
    {"node: {id: {x: 1}}\n", "node.id: expected a string, got a mapping"},
};

static void check_error(const char *yaml, const char *want)
{
    rm_bootstrap_config_t *b = (rm_bootstrap_config_t *)0x1;
    char err[1024] = "";
    int rc = rm_bootstrap_load_string(yaml, strlen(yaml), &b, err, sizeof(err));
    if (rc != -1)
        fail_msg("loaded but expected error \"%s\"\n--- document:\n%s", want, yaml);
    assert_ptr_equal(b, (rm_bootstrap_config_t *)0x1); /* *out untouched on error */
    size_t n = strlen(want);
    bool ok = want[n - 1] == '*' ? strncmp(err, want, n - 1) == 0 : strcmp(err, want) == 0;
    if (!ok)
        fail_msg("error mismatch\n  want: %s\n  got:  %s\n--- document:\n%s", want, err, yaml);
}

static void test_errors_name_their_path(void **state)
{
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const error_case_t *c = &error_cases[i];
        char *yaml = build(c->top, c->clusters, c->hcm, c->vhosts);
        check_error(yaml, c->want);
        free(yaml);
    }
    for (size_t i = 0; i < sizeof(listener_error_docs) / sizeof(listener_error_docs[0]); i++)
        check_error(listener_error_docs[i][0], listener_error_docs[i][1]);
}

/* Durations in both proto-JSON forms; stored as milliseconds, sub-millisecond rest rounded up. */
static void test_durations(void **state)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } ok[] = {
        {"5s", 5000},
        {"0.25s", 250},
        {"1.5s", 1500},
        {"0s", 0},
        {"0.000000001s", 1},
        {"0.0015s", 2},
        {"3600s", 3600000},
        {"\"2s\"", 2000},
        {"{seconds: 2, nanos: 500000000}", 2500},
        {"{seconds: \"3\"}", 3000},
        {"{nanos: 1000}", 1},
        {"{}", 0},
        {"315576000000s", 315576000000000ull},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char vh[256];
        snprintf(vh, sizeof(vh),
                 "{name: v, domains: [a], routes: [{match: {prefix: /}, route: {cluster: c0, timeout: %s}}]}",
                 ok[i].text);
        char *yaml = build(NULL, NULL, NULL, vh);
        rm_bootstrap_config_t *b = load_ok(yaml);
        free(yaml);
        if (b->listeners[0].hcm.route_config.virtual_hosts[0].routes[0].timeout_ms != ok[i].ms)
            fail_msg(
                "%s: got %llu ms", ok[i].text,
                (unsigned long long)b->listeners[0].hcm.route_config.virtual_hosts[0].routes[0].timeout_ms);
        rm_bootstrap_config_free(b);
    }
    static const struct {
        const char *text, *sub, *want;
    } bad[] = {
        {"5x", "", "invalid duration \"5x\" (expected e.g. \"0.25s\")"},
        {"5", "", "invalid duration \"5\" (expected e.g. \"0.25s\")"},
        {"\"5\"", "", "invalid duration \"5\" (expected e.g. \"0.25s\")"},
        {"s", "", "invalid duration \"s\" (expected e.g. \"0.25s\")"},
        {".5s", "", "invalid duration \".5s\" (expected e.g. \"0.25s\")"},
        {"1.s", "", "invalid duration \"1.s\" (expected e.g. \"0.25s\")"},
        {"1.0000000001s", "", "invalid duration \"1.0000000001s\" (expected e.g. \"0.25s\")"},
        {"1e3s", "", "invalid duration \"1e3s\" (expected e.g. \"0.25s\")"},
        {"\" 1s\"", "", "invalid duration \" 1s\" (expected e.g. \"0.25s\")"},
        {"315576000001s", "", "invalid duration \"315576000001s\" (expected e.g. \"0.25s\")"},
        {"-0.5s", "", "must not be negative, got \"-0.5s\""},
        {"[1s]", "", "invalid duration a list (expected e.g. \"0.25s\")"},
        {"{seconds: -1}", ".seconds", "must not be negative, got \"-1\""},
        {"{seconds: 315576000001}", ".seconds", "315576000001 is out of range (0..315576000000)"},
        {"{nanos: 1000000000}", ".nanos", "1000000000 is out of range (0..999999999)"},
        {"{nanos: \"5\"}", ".nanos", "expected an integer, got the quoted string \"5\" (remove the quotes)"},
        {"{minutes: 1}", ".minutes", "unknown field (Duration supports: seconds, nanos)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char vh[256], want[512];
        snprintf(vh, sizeof(vh),
                 "{name: v, domains: [a], routes: [{match: {prefix: /}, route: {cluster: c0, timeout: %s}}]}",
                 bad[i].text);
        snprintf(want, sizeof(want), "%sroute_config.virtual_hosts[0].routes[0].route.timeout%s: %s", LF0,
                 bad[i].sub, bad[i].want);
        char *yaml = build(NULL, NULL, NULL, vh);
        check_error(yaml, want);
        free(yaml);
    }
}

static void test_duration_parser(void **state)
{
    uint64_t s = 0;
    uint32_t ns = 0;
    assert_int_equal(rm_yaml_parse_duration("1.000000001s", 12, &s, &ns), 0);
    assert_int_equal(s, 1);
    assert_int_equal(ns, 1);
    assert_int_equal(rm_yaml_parse_duration("0.5s", 4, &s, &ns), 0);
    assert_int_equal(ns, 500000000);
    /* Length-bounded: the parser must not read past len. */
    assert_int_equal(rm_yaml_parse_duration("2s9", 2, &s, &ns), 0);
    assert_int_equal(s, 2);
    assert_int_equal(rm_yaml_parse_duration("", 0, &s, &ns), -1);
    assert_int_equal(rm_yaml_parse_duration("1", 1, &s, &ns), -1);
    uint64_t v;
    assert_int_equal(rm_yaml_parse_uint64("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(rm_yaml_parse_uint64("18446744073709551616", 20, &v), -1);
    assert_int_equal(rm_yaml_parse_uint64("007", 3, &v), -1);
    assert_int_equal(rm_yaml_parse_uint64("0", 1, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(rm_yaml_parse_uint64("+1", 2, &v), -1);
}

static void test_enums_and_numbers(void **state)
{
    /* Enum names and, as proto-JSON allows, numbers. */
    char *yaml =
        build(NULL,
              "{name: c0, type: 1, dns_lookup_family: V4_PREFERRED, lb_policy: 0, " LA(
                  "{lb_endpoints: [{endpoint: {address: {socket_address: {address: svc, port_value: 80}}}, "
                  "health_status: DEGRADED}]}") "}",
              "codec_type: AUTO,", NULL);
    rm_bootstrap_config_t *b = load_ok(yaml);
    free(yaml);
    assert_int_equal(b->clusters[0].type, RM_CLUSTER_STRICT_DNS);
    assert_int_equal(b->clusters[0].dns_lookup_family, RM_DNS_LOOKUP_V4_PREFERRED);
    assert_int_equal(b->clusters[0].endpoints[0].health_status, RM_HEALTH_STATUS_DEGRADED);
    rm_bootstrap_config_free(b);

    yaml = build(NULL, "{name: c0, dns_lookup_family: ALL, type: 4}", NULL, NULL);
    check_error(yaml,
                "static_resources.clusters[0].type: ORIGINAL_DST is not supported yet (supported: STATIC, "
                "STRICT_DNS, EDS)");
    free(yaml);
}

static void test_health_config(void **state)
{
    (void)state;
    char root[4096];
    snprintf(root, sizeof(root), "%s", __FILE__);
    char *cut = strstr(root, "tests/unit/config/test_bootstrap.c");
    if (cut == NULL)
        fail_msg("cannot locate the source tree from %s", __FILE__);
    snprintf(cut, sizeof(root) - (size_t)(cut - root), "tests/fuzz/corpus/bootstrap/health.yaml");
    FILE *f = fopen(root, "rb");
    assert_non_null(f);
    char doc[8192];
    size_t len = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[len] = '\0';
    rm_bootstrap_config_t *b = load_ok(doc);
    const rm_cluster_config_t *web = &b->clusters[0];
    const rm_outlier_detection_config_t *od = &web->outlier_detection;
    assert_true(od->enabled);
    assert_int_equal(od->consecutive_5xx, 3);
    assert_int_equal(od->interval_ms, 1000);
    assert_int_equal(od->base_ejection_time_ms, 5000);
    assert_int_equal(od->max_ejection_percent, 50);
    assert_true(od->split_external_local_origin_errors);
    assert_int_equal(od->consecutive_local_origin_failure, 2);
    assert_int_equal(od->enforcing_failure_percentage, 100);
    assert_int_equal(od->max_ejection_time_jitter_ms, 1000);
    /* Untouched fields keep Envoy's defaults. */
    assert_int_equal(od->max_ejection_time_ms, 300000);
    assert_int_equal(od->success_rate_stdev_factor, 1900);
    assert_int_equal(od->enforcing_consecutive_gateway_failure, 0);
    assert_int_equal(web->num_health_checks, 1);
    const rm_health_check_config_t *hc = &web->health_checks[0];
    assert_int_equal(hc->kind, RM_HEALTH_CHECK_HTTP);
    assert_int_equal(hc->timeout_ms, 1000);
    assert_int_equal(hc->interval_ms, 2000);
    assert_int_equal(hc->unhealthy_threshold, 2);
    assert_int_equal(hc->healthy_threshold, 1);
    assert_true(hc->reuse_connection);
    assert_int_equal(hc->no_traffic_interval_ms, 60000);
    assert_string_equal(hc->path, "/healthz");
    assert_string_equal(hc->host, "web.local");
    assert_string_equal(hc->method, "HEAD");
    assert_int_equal(hc->num_headers, 1);
    assert_string_equal(hc->headers[0].key, "x-probe");
    assert_string_equal(hc->headers[0].value, "1");
    assert_int_equal(hc->num_expected_statuses, 1);
    assert_int_equal(hc->expected_statuses[0].start, 200);
    assert_int_equal(hc->expected_statuses[0].end, 300);
    assert_int_equal(hc->num_receive, 1);
    assert_int_equal(hc->receive[0].len, 2);
    assert_memory_equal(hc->receive[0].data, "ok", 2);
    assert_int_equal(web->endpoints[0].hc_port, 9901);
    assert_null(web->endpoints[0].hc_address);
    const rm_cluster_config_t *tcp = &b->clusters[1];
    assert_false(tcp->outlier_detection.enabled);
    assert_int_equal(tcp->health_checks[0].kind, RM_HEALTH_CHECK_TCP);
    assert_memory_equal(tcp->health_checks[0].send.data, "PING", 4);
    assert_memory_equal(tcp->health_checks[0].receive[0].data, "PONG", 4);
    assert_string_equal(tcp->endpoints[0].hc_address, "127.0.0.2");
    assert_int_equal(tcp->endpoints[0].hc_port, 6380);
    rm_bootstrap_config_free(b);
}

static void test_priorities_flatten(void **state)
{
    char *yaml =
        build(NULL,
              CL(LA("{priority: 1, lb_endpoints: [" EP("10.0.0.2, port_value: 2") "]}, {lb_endpoints: [" EP(
                  "10.0.0.1, port_value: 1") ", " EP("10.0.0.3, port_value: 3") "]}, {priority: 1}")),
              NULL, NULL);
    rm_bootstrap_config_t *b = load_ok(yaml);
    free(yaml);
    const rm_cluster_config_t *c = &b->clusters[0];
    assert_int_equal(c->num_endpoints, 3);
    assert_int_equal(c->endpoints[0].address.port, 2);
    assert_int_equal(c->endpoints[0].priority, 1);
    assert_int_equal(c->endpoints[1].address.port, 1);
    assert_int_equal(c->endpoints[1].priority, 0);
    assert_int_equal(c->endpoints[2].address.port, 3);
    assert_int_equal(c->endpoints[2].priority, 0);
    rm_bootstrap_config_free(b);
}

static void test_empty_and_null(void **state)
{
    /* Envoy accepts an empty bootstrap; so do we (nothing to serve, but valid). */
    rm_bootstrap_config_t *b = load_ok("");
    assert_int_equal(b->num_listeners, 0);
    assert_int_equal(b->num_clusters, 0);
    rm_bootstrap_config_free(b);
    b = load_ok("# only a comment\n");
    rm_bootstrap_config_free(b);
    /* null means "not set". */
    b = load_ok("admin: ~\nnode: {id: null, cluster: x}\nstatic_resources: {clusters: }\n");
    assert_false(b->admin.enabled);
    assert_null(b->node.id);
    assert_string_equal(b->node.cluster, "x");
    rm_bootstrap_config_free(b);
}

static void test_json_and_anchors(void **state)
{
    /* JSON is YAML: an Envoy JSON bootstrap loads too. */
    const char *json = "{\"node\": {\"id\": \"n\"}, \"admin\": {\"address\": {\"socket_address\": "
                       "{\"address\": \"::1\", \"port_value\": 0}}}}";
    rm_bootstrap_config_t *b = load_ok(json);
    assert_string_equal(b->node.id, "n");
    assert_true(b->admin.enabled);
    assert_int_equal(b->admin.address.port, 0);
    rm_bootstrap_config_free(b);

    /* Anchors and aliases are resolved (a common way to share endpoint lists). */
    const char *anchors =
        "static_resources:\n"
        "  clusters:\n"
        "  - name: a\n"
        "    load_assignment:\n"
        "      cluster_name: a\n"
        "      endpoints: &eps\n"
        "      - lb_endpoints:\n"
        "        - endpoint: {address: {socket_address: {address: 10.1.1.1, port_value: 80}}}\n"
        "  - name: b\n"
        "    load_assignment: {cluster_name: b, endpoints: *eps}\n";
    b = load_ok(anchors);
    assert_int_equal(b->num_clusters, 2);
    assert_int_equal(b->clusters[1].num_endpoints, 1);
    assert_string_equal(b->clusters[1].endpoints[0].address.address, "10.1.1.1");
    rm_bootstrap_config_free(b);
}

/* An alias bomb is a small file that names one subtree a huge number of times: it must fail fast
 * with a clear error rather than build millions of endpoints. Here 200 clusters alias one cluster
 * whose 200 localities alias one list of 200 endpoints: 8M endpoints from ~30 KB. */
static void test_alias_bomb(void **state)
{
    char *doc = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&doc, &len);
    fprintf(f, "static_resources:\n  clusters:\n");
    fprintf(f, "  - name: c0\n    load_assignment:\n      cluster_name: c0\n      endpoints:\n");
    fprintf(f, "      - lb_endpoints: &eps [");
    for (int j = 0; j < 200; j++)
        fprintf(f, "%s{endpoint: {address: {socket_address: {address: 1.1.1.1, port_value: 1}}}}",
                j ? ", " : "");
    fprintf(f, "]\n");
    fprintf(f, "  - &c1\n    name: c1\n    load_assignment:\n      cluster_name: c1\n      endpoints: [");
    for (int j = 0; j < 200; j++)
        fprintf(f, "%s{lb_endpoints: *eps}", j ? ", " : "");
    fprintf(f, "]\n");
    for (int k = 0; k < 200; k++)
        fprintf(f, "  - *c1\n");
    fclose(f);
    rm_bootstrap_config_t *b = NULL;
    char err[512] = "";
    assert_int_equal(rm_bootstrap_load_string(doc, len, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "document expands to too many nodes (aliases used too often)"));
    free(doc);
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/remora-bootstrap-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, full_yaml, strlen(full_yaml)), (ssize_t)strlen(full_yaml));
    close(fd);
    rm_bootstrap_config_t *b = NULL;
    char err[512] = "";
    assert_int_equal(rm_bootstrap_load_file(path, &b, err, sizeof(err)), 0);
    assert_int_equal(b->num_clusters, 2);
    rm_bootstrap_config_free(b);
    unlink(path);

    b = NULL;
    assert_int_equal(rm_bootstrap_load_file(path, &b, err, sizeof(err)), -1);
    assert_null(b);
    char want[256];
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_int_equal(rm_bootstrap_load_file("/tmp", &b, err, sizeof(err)), -1);
    /* A NULL error buffer is allowed. */
    assert_int_equal(rm_bootstrap_load_file(path, &b, NULL, 0), -1);
}

/* Load balancer settings with Envoy's names: policy, panic threshold, least-request choices and slow
 * start, into the fields the LB code reads (0 / unset meaning Envoy's defaults). */
static void test_lb_settings(void **state)
{
    char *yaml =
        build(NULL,
              "{name: c0, lb_policy: LEAST_REQUEST, common_lb_config: {healthy_panic_threshold: {value: "
              "25.5}}, least_request_lb_config: {choice_count: 3, slow_start_config: {slow_start_window: "
              "30s, aggression: {default_value: 1.5, runtime_key: a.b}, min_weight_percent: {value: 20}}}}, "
              "{name: c1, lb_policy: RANDOM, common_lb_config: {healthy_panic_threshold: {value: 0}}}, "
              "{name: c2, round_robin_lb_config: {slow_start_config: {slow_start_window: 0.5s}}}",
              NULL, "{name: v, domains: [a], routes: [{match: {prefix: /}, route: {cluster: c0}}]}");
    rm_bootstrap_config_t *b = load_ok(yaml);
    free(yaml);
    const rm_cluster_config_t *c = &b->clusters[0];
    assert_int_equal(c->lb_policy, RM_LB_LEAST_REQUEST);
    assert_true(c->healthy_panic_threshold_set);
    assert_true(c->healthy_panic_threshold == 25.5);
    assert_int_equal(c->choice_count, 3);
    assert_int_equal(c->slow_start_window_ms, 30000);
    assert_true(c->slow_start_aggression == 1.5);
    assert_true(c->slow_start_min_weight_percent == 20);
    c = &b->clusters[1];
    assert_int_equal(c->lb_policy, RM_LB_RANDOM);
    assert_true(c->healthy_panic_threshold_set); /* 0 disables panic mode: a value, not "unset" */
    assert_true(c->healthy_panic_threshold == 0);
    assert_int_equal(c->choice_count, 0);
    c = &b->clusters[2];
    assert_int_equal(c->lb_policy, RM_LB_ROUND_ROBIN);
    assert_false(c->healthy_panic_threshold_set);
    assert_int_equal(c->slow_start_window_ms, 500);
    assert_true(c->slow_start_aggression == 0);
    rm_bootstrap_config_free(b);

    static const error_case_t cases[] = {
        {NULL, CL("least_request_lb_config: {choice_count: 1}"), NULL, NULL,
         "static_resources.clusters[0].least_request_lb_config.choice_count: 1 is out of range "
         "(2..4294967295)"},
        {NULL, CL("least_request_lb_config: {}"), NULL, NULL,
         "static_resources.clusters[0].least_request_lb_config: only valid with lb_policy LEAST_REQUEST"},
        {NULL, CL("lb_policy: RANDOM, round_robin_lb_config: {}"), NULL, NULL,
         "static_resources.clusters[0].round_robin_lb_config: only valid with lb_policy ROUND_ROBIN"},
        {NULL, CL("lb_policy: LEAST_REQUEST, least_request_lb_config: {}, round_robin_lb_config: {}"), NULL,
         NULL,
         "static_resources.clusters[0].round_robin_lb_config: only one of least_request_lb_config, "
         "round_robin_lb_config may be set"},
        {NULL, CL("common_lb_config: {healthy_panic_threshold: {value: 101}}"), NULL, NULL,
         "static_resources.clusters[0].common_lb_config.healthy_panic_threshold.value: 101 is out of range "
         "(0..100)"},
        {NULL, CL("common_lb_config: {healthy_panic_threshold: {value: \"50\"}}"), NULL, NULL,
         "static_resources.clusters[0].common_lb_config.healthy_panic_threshold.value: expected a number, "
         "got the "
         "quoted string*"},
        {NULL, CL("common_lb_config: {healthy_panic_threshold: {value: .nan}}"), NULL, NULL,
         "static_resources.clusters[0].common_lb_config.healthy_panic_threshold.value: expected a number, "
         "got*"},
        {NULL, CL("common_lb_config: {healthy_panic_threshold: {value: 0x10}}"), NULL, NULL,
         "static_resources.clusters[0].common_lb_config.healthy_panic_threshold.value: expected a number, "
         "got*"},
        {NULL, CL("common_lb_config: {update_merge_window: 1s}"), NULL, NULL,
         "static_resources.clusters[0].common_lb_config.update_merge_window: not supported yet"},
        {NULL, CL("round_robin_lb_config: {slow_start_config: {aggression: {default_value: 0}}}"), NULL, NULL,
         "static_resources.clusters[0].round_robin_lb_config.slow_start_config.aggression.default_value: 0 "
         "is out "
         "of range (above 0..1e+09)"},
        {NULL, CL("round_robin_lb_config: {slow_start_config: {min_weight_percent: {value: 0}}}"), NULL, NULL,
         "static_resources.clusters[0].round_robin_lb_config.slow_start_config.min_weight_percent.value: 0 "
         "is out "
         "of range (above 0..100)"},
        {NULL, CL("lb_policy: LEAST_REQUEST, least_request_lb_config: {active_request_bias: {}}"), NULL, NULL,
         "static_resources.clusters[0].least_request_lb_config.active_request_bias: not supported yet"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *y = build(cases[i].top, cases[i].clusters, cases[i].hcm, cases[i].vhosts);
        check_error(y, cases[i].want);
        free(y);
    }
}

/* ---- retries, circuit breakers, the fail-fast breaker ---- */

#define PH_TYPE "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
#define PP_TYPE                                                                                              \
    "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig"

static void test_retry_policy(void **state)
{
    (void)state;
    char *yaml =
        build(NULL, NULL, NULL,
              "{name: v, domains: [\"*\"], include_request_attempt_count: true, "
              "per_request_buffer_limit_bytes: 4096,"
              " retry_policy: {retry_on: \"5xx, connect-failure\", num_retries: 2},"
              " routes: [{match: {prefix: /a}, per_request_buffer_limit_bytes: 100, route: {cluster: c0,"
              "   retry_policy: {retry_on: \"gateway-error,retriable-status-codes\", retriable_status_codes: "
              "[418, 409],"
              "     per_try_timeout: 0.5s, host_selection_retry_max_attempts: 4,"
              "     retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts,"
              "       typed_config: {\"@type\": \"" PH_TYPE "\"}}],"
              "     retry_priority: {name: envoy.retry_priorities.previous_priorities,"
              "       typed_config: {\"@type\": \"" PP_TYPE "\", update_frequency: 2}},"
              "     retry_back_off: {base_interval: 0.01s, max_interval: 0.2s}}}},"
              "  {match: {prefix: /}, route: {cluster: c0}}]}");
    rm_bootstrap_config_t *b = load_ok(yaml);
    free(yaml);
    const rm_virtual_host_config_t *vh = &b->listeners[0].hcm.route_config.virtual_hosts[0];
    const rm_route_config_t *a = &vh->routes[0], *rest = &vh->routes[1];
    assert_true(a->retry_policy.set);
    assert_int_equal(a->retry_policy.retry_on,
                     RM_RETRY_ON_GATEWAY_ERROR | RM_RETRY_ON_RETRIABLE_STATUS_CODES);
    assert_int_equal(a->retry_policy.num_retries, 1); /* Envoy's default, not the virtual host's 2 */
    assert_int_equal(a->retry_policy.num_retriable_status_codes, 2);
    assert_int_equal(a->retry_policy.retriable_status_codes[0], 418);
    assert_int_equal(a->retry_policy.per_try_timeout_ms, 500);
    assert_true(a->retry_policy.previous_hosts);
    assert_int_equal(a->retry_policy.host_selection_retry_max_attempts, 4);
    assert_true(a->retry_policy.previous_priorities);
    assert_int_equal(a->retry_policy.priority_update_frequency, 2);
    assert_int_equal(a->retry_policy.back_off_base_ms, 10);
    assert_int_equal(a->retry_policy.back_off_max_ms, 200);
    assert_int_equal(a->per_request_buffer_limit_bytes, 100);
    assert_true(a->include_request_attempt_count);
    assert_false(a->include_attempt_count_in_response);
    /* The second route inherits the virtual host's policy and buffer limit. */
    assert_true(rest->retry_policy.set);
    assert_int_equal(rest->retry_policy.retry_on, RM_RETRY_ON_5XX | RM_RETRY_ON_CONNECT_FAILURE);
    assert_int_equal(rest->retry_policy.num_retries, 2);
    assert_int_equal(rest->retry_policy.back_off_base_ms, 25);
    assert_false(rest->retry_policy.previous_hosts);
    assert_int_equal(rest->per_request_buffer_limit_bytes, 4096);
    rm_bootstrap_config_free(b);

#define RV(policy)                                                                                           \
    "{name: v, domains: [\"*\"], routes: [{match: {prefix: /}, route: {cluster: c0, retry_policy: " policy   \
    "}}]}"
#define RP LF0 "route_config.virtual_hosts[0].routes[0].route.retry_policy."
    static const error_case_t cases[] = {
        {NULL, NULL, NULL, RV("{retry_on: \"5xx,bogus\"}"),
         RP "retry_on: unknown condition \"bogus\" (supported: 5xx, gateway-error, reset, connect-failure, "
            "retriable-4xx, refused-stream, retriable-status-codes)"},
        {NULL, NULL, NULL, RV("{retry_on: retriable-headers}"),
         RP "retry_on: condition \"retriable-headers\" is not supported yet*"},
        {NULL, NULL, NULL, RV("{retriable_status_codes: [99]}"),
         RP "retriable_status_codes[0]: 99 is out of range (100..599)"},
        {NULL, NULL, NULL, RV("{retry_back_off: {max_interval: 1s}}"),
         RP "retry_back_off.base_interval: required field is missing"},
        {NULL, NULL, NULL, RV("{retry_back_off: {base_interval: 1s, max_interval: 0.5s}}"),
         RP "retry_back_off.max_interval: must not be shorter than base_interval"},
        {NULL, NULL, NULL,
         RV("{retry_host_predicate: [{name: envoy.retry_host_predicates.omit_canary_hosts}]}"),
         RP "retry_host_predicate[0].name: retry host predicate \"envoy.retry_host_predicates.omit_canary*"},
        {NULL, NULL, NULL, RV("{retry_priority: {name: envoy.retry_priorities.previous_priorities}}"),
         RP "retry_priority.typed_config: required field is missing"},
        {NULL, NULL, NULL, RV("{per_try_idle_timeout: 1s}"), RP "per_try_idle_timeout: not supported yet"},
        {NULL, NULL, NULL, RV("{retriable_headers: []}"), RP "retriable_headers: not supported yet"},
    };
#undef RV
#undef RP
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *y = build(cases[i].top, cases[i].clusters, cases[i].hcm, cases[i].vhosts);
        check_error(y, cases[i].want);
        free(y);
    }
}

#define FF_TYPE "type.googleapis.com/remora.config.v1.FailFastBreaker"

static void test_circuit_breakers_and_fail_fast(void **state)
{
    (void)state;
    char *yaml = build(NULL,
                       "{name: c0, circuit_breakers: {thresholds: [{max_connections: 2, max_retries: 0},"
                       " {priority: HIGH, max_requests: 5}]},"
                       " typed_extension_protocol_options: {remora.fail_fast: {\"@type\": \"" FF_TYPE "\","
                       "   consecutive_failures: 3, slow_call_threshold: 0.25s, open_duration: 2s,"
                       "   half_open_requests: 2, ignore_5xx: true}}},"
                       "{name: c1}",
                       NULL, NULL);
    rm_bootstrap_config_t *b = load_ok(yaml);
    free(yaml);
    const rm_cluster_config_t *c = &b->clusters[0];
    assert_true(c->circuit_breakers_set);
    assert_int_equal(c->circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT].max_connections, 2);
    assert_int_equal(c->circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT].max_retries, 0);
    assert_int_equal(c->circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT].max_pending_requests, 1024);
    assert_int_equal(c->circuit_breakers[RM_ROUTING_PRIORITY_HIGH].max_requests, 5);
    assert_int_equal(c->circuit_breakers[RM_ROUTING_PRIORITY_HIGH].max_retries, 3);
    assert_true(c->fail_fast.enabled);
    assert_int_equal(c->fail_fast.consecutive_failures, 3);
    assert_int_equal(c->fail_fast.slow_call_ms, 250);
    assert_int_equal(c->fail_fast.open_duration_ms, 2000);
    assert_int_equal(c->fail_fast.half_open_requests, 2);
    assert_true(c->fail_fast.ignore_5xx);
    c = &b->clusters[1];
    assert_false(c->circuit_breakers_set);
    assert_false(c->fail_fast.enabled);
    rm_bootstrap_config_free(b);

    static const error_case_t cases[] = {
        {NULL, CL("circuit_breakers: {thresholds: [{}, {priority: DEFAULT}]}"), NULL, NULL,
         "static_resources.clusters[0].circuit_breakers.thresholds[1].priority: thresholds for priority "
         "DEFAULT "
         "are given twice"},
        {NULL, CL("circuit_breakers: {thresholds: [{retry_budget: {}}]}"), NULL, NULL,
         "static_resources.clusters[0].circuit_breakers.thresholds[0].retry_budget: not supported yet"},
        {NULL, CL("circuit_breakers: {per_host_thresholds: []}"), NULL, NULL,
         "static_resources.clusters[0].circuit_breakers.per_host_thresholds: not supported yet"},
        {NULL, CL("typed_extension_protocol_options: {remora.fail_fast: {consecutive_failures: 3}}"), NULL,
         NULL,
         "static_resources.clusters[0].typed_extension_protocol_options.remora.fail_fast.@type: required "
         "field "
         "is missing"},
        {NULL,
         CL("typed_extension_protocol_options: {remora.fail_fast: {\"@type\": \"" FF_TYPE
            "\", open_duration: 0s}}"),
         NULL, NULL,
         "static_resources.clusters[0].typed_extension_protocol_options.remora.fail_fast.open_duration: *"},
        {NULL, CL("typed_extension_protocol_options: {x.y: {}}"), NULL, NULL,
         "static_resources.clusters[0].typed_extension_protocol_options.x.y: unknown extension (supported: "
         "envoy.extensions.upstreams.http.v3.HttpProtocolOptions, remora.fail_fast)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *y = build(cases[i].top, cases[i].clusters, cases[i].hcm, cases[i].vhosts);
        check_error(y, cases[i].want);
        free(y);
    }
}

/* ---- dynamic_resources and EDS clusters ---- */

#define XDS_CLUSTER                                                                                          \
    "{name: xds, load_assignment: {cluster_name: xds, endpoints: [{lb_endpoints: [{endpoint: {address: "     \
    "{socket_address: {address: 127.0.0.1, port_value: 18000}}}}]}]}}"
#define NODE "node: {id: sidecar-1, cluster: web}\n"
#define GRPC_SRC                                                                                             \
    "{api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}"
#define ADS_DYN                                                                                              \
    "dynamic_resources: {ads_config: " GRPC_SRC ", cds_config: {ads: {}, resource_api_version: V3}}\n"
#define CDS_DYN "dynamic_resources: {cds_config: {api_config_source: " GRPC_SRC "}}\n"
#define EDS_ADS "eds_cluster_config: {eds_config: {ads: {}, resource_api_version: V3}"

/* Envoy's ADS bootstrap: the management server is a static cluster; routes may name clusters that
 * CDS has not delivered yet; static EDS clusters get their endpoints over ADS. */
static void test_dynamic_resources_ads(void **state)
{
    char *yaml = build(
        NODE "dynamic_resources:\n"
             "  ads_config:\n"
             "    api_type: GRPC\n"
             "    transport_api_version: V3\n"
             "    grpc_services:\n"
             "    - envoy_grpc: {cluster_name: xds}\n"
             "  cds_config:\n"
             "    ads: {}\n"
             "    resource_api_version: V3\n"
             "    initial_fetch_timeout: 3s\n",
        XDS_CLUSTER ", {name: c0, type: EDS, " EDS_ADS ", service_name: c0-v2}}, {name: c1, "
                    "type: EDS, " EDS_ADS "}}",
        NULL, "{name: v0, domains: [\"*\"], routes: [{match: {prefix: /}, route: {cluster: from_cds}}]}");
    rm_bootstrap_config_t *b = load_ok(yaml);
    free(yaml);
    const rm_dynamic_resources_config_t *dr = &b->dynamic_resources;
    assert_true(dr->enabled);
    assert_true(dr->ads_config.set);
    assert_false(dr->ads_config.ads);
    assert_string_equal(dr->ads_config.grpc_cluster, "xds");
    assert_true(dr->cds_config.set);
    assert_true(dr->cds_config.ads);
    assert_null(dr->cds_config.grpc_cluster);
    assert_int_equal(dr->cds_config.initial_fetch_timeout_ms, 3000);
    assert_int_equal(b->num_clusters, 3);
    assert_int_equal(b->clusters[1].type, RM_CLUSTER_EDS);
    assert_string_equal(b->clusters[1].eds_service_name, "c0-v2");
    assert_int_equal(b->clusters[1].num_endpoints, 0);
    /* Without service_name the cluster's name is the EDS resource name, as in Envoy. */
    assert_string_equal(b->clusters[2].eds_service_name, "c1");
    assert_null(b->clusters[0].eds_service_name);
    rm_bootstrap_config_free(b);
}

static void test_dynamic_resources_separate_streams(void **state)
{
    char *yaml =
        build(NODE CDS_DYN,
              XDS_CLUSTER
              ", {name: c0, type: EDS, eds_cluster_config: {eds_config: {api_config_source: " GRPC_SRC "}}}",
              NULL, NULL);
    rm_bootstrap_config_t *b = load_ok(yaml);
    free(yaml);
    const rm_dynamic_resources_config_t *dr = &b->dynamic_resources;
    assert_true(dr->enabled);
    assert_false(dr->ads_config.set);
    assert_true(dr->cds_config.set);
    assert_false(dr->cds_config.ads);
    assert_string_equal(dr->cds_config.grpc_cluster, "xds");
    assert_int_equal(dr->cds_config.initial_fetch_timeout_ms, 15000); /* Envoy's default */
    assert_string_equal(b->clusters[1].eds_service_name, "c0");
    rm_bootstrap_config_free(b);

    /* Without dynamic_resources nothing is enabled. */
    yaml = build(NULL, NULL, NULL, NULL);
    b = load_ok(yaml);
    free(yaml);
    assert_false(b->dynamic_resources.enabled);
    assert_false(b->dynamic_resources.cds_config.set);
    rm_bootstrap_config_free(b);
}

static void test_dynamic_resources_errors(void **state)
{
    static const error_case_t cases[] = {
        /* The proxy must identify itself to the management server. */
        {ADS_DYN, XDS_CLUSTER, NULL, NULL,
         "node.id: required when dynamic_resources is set (the management server identifies this proxy by "
         "node "
         "id and cluster)"},
        {"node: {id: a}\n" ADS_DYN, XDS_CLUSTER, NULL, NULL,
         "node.cluster: required when dynamic_resources is set*"},
        /* The management server is a static, non-EDS cluster with an endpoint. */
        {NODE ADS_DYN, DEFAULT_CLUSTER, NULL, NULL,
         "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown cluster \"xds\" "
         "(the "
         "management server must be a cluster in static_resources.clusters)"},
        {NODE CDS_DYN, DEFAULT_CLUSTER, NULL, NULL,
         "dynamic_resources.cds_config.api_config_source.grpc_services[0].envoy_grpc.cluster_name: unknown "
         "cluster \"xds\"*"},
        {NODE ADS_DYN, "{name: xds, type: EDS, " EDS_ADS "}}", NULL, NULL,
         "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: cluster \"xds\" is an EDS "
         "cluster; the management server needs a STATIC or STRICT_DNS cluster"},
        {NODE ADS_DYN, "{name: xds}", NULL, NULL,
         "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: cluster \"xds\" has no "
         "endpoints (Remora connects to its first endpoint)"},
        /* ApiConfigSource. */
        {NODE "dynamic_resources: {ads_config: {api_type: GRPC, grpc_services: [{envoy_grpc: {cluster_name: "
              "xds}}]}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.ads_config.transport_api_version: required field is missing (must be V3; the V2 "
         "and "
         "AUTO transports were removed from xDS)"},
        {NODE "dynamic_resources: {ads_config: {api_type: GRPC, transport_api_version: V2, grpc_services: "
              "[{envoy_grpc: {cluster_name: xds}}]}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.ads_config.transport_api_version: must be V3 (the V2 and AUTO transports were "
         "removed from xDS)"},
        {NODE "dynamic_resources: {ads_config: {api_type: REST, transport_api_version: V3}}", XDS_CLUSTER,
         NULL, NULL, "dynamic_resources.ads_config.api_type: REST is not supported yet (supported: GRPC)"},
        {NODE "dynamic_resources: {ads_config: {api_type: DELTA_GRPC, transport_api_version: V3}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.ads_config.api_type: DELTA_GRPC is not supported yet (supported: GRPC)"},
        {NODE "dynamic_resources: {ads_config: {api_type: GRPC, transport_api_version: V3}}", XDS_CLUSTER,
         NULL, NULL, "dynamic_resources.ads_config.grpc_services: required field is missing"},
        {NODE "dynamic_resources: {ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: "
              "[{envoy_grpc: {cluster_name: xds}}, {envoy_grpc: {cluster_name: xds}}]}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.ads_config.grpc_services: only one gRPC service is supported for now"},
        {NODE "dynamic_resources: {ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: "
              "[{google_grpc: {}}]}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.ads_config.grpc_services[0].google_grpc: not supported yet"},
        {NODE "dynamic_resources: {ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: "
              "[{envoy_grpc: {cluster_name: \"\"}}]}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: must not be empty"},
        {NODE "dynamic_resources: {ads_config: {api_type: GRPC, transport_api_version: V3, set_node_on_first_"
              "message_only: true, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.ads_config.set_node_on_first_message_only: not supported yet"},
        /* ConfigSource and DynamicResources. */
        {NODE "dynamic_resources: {lds_config: {ads: {}}}", XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.lds_config: not supported yet"},
        {NODE "dynamic_resources: {cds_config: {}}", XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.cds_config: one of ads, api_config_source is required"},
        {NODE "dynamic_resources: {ads_config: " GRPC_SRC
              ", cds_config: {ads: {}, api_config_source: " GRPC_SRC "}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.cds_config.ads: only one of api_config_source, ads may be set"},
        {NODE "dynamic_resources: {cds_config: {ads: {}}}", XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.cds_config.ads: needs dynamic_resources.ads_config (the ADS server)"},
        {NODE "dynamic_resources: {ads_config: " GRPC_SRC ", cds_config: {api_config_source: " GRPC_SRC "}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.cds_config.api_config_source: not supported together with ads_config yet (use "
         "ads: "
         "{}; Remora talks to one management server)"},
        {NODE "dynamic_resources: {ads_config: " GRPC_SRC
              ", cds_config: {ads: {}, resource_api_version: V2}}",
         XDS_CLUSTER, NULL, NULL,
         "dynamic_resources.cds_config.resource_api_version: V2 resources are not supported "
         "(use V3)"},
        {NODE "dynamic_resources: {ads_config: " GRPC_SRC ", cds_config: {ads: {x: 1}}}", XDS_CLUSTER, NULL,
         NULL, "dynamic_resources.cds_config.ads.x: unknown field (AggregatedConfigSource supports: )"},
        {NODE "dynamic_resources: {ads_config: " GRPC_SRC ", cds_config: {ads: {}, path: /x}}", XDS_CLUSTER,
         NULL, NULL, "dynamic_resources.cds_config.path: not supported yet"},
        {NODE "dynamic_resources: {ads_config: " GRPC_SRC
              ", cds_config: {ads: {}, initial_fetch_timeout: 1x}}",
         XDS_CLUSTER, NULL, NULL, "dynamic_resources.cds_config.initial_fetch_timeout: invalid duration*"},
        /* EDS clusters. */
        {NULL, "{name: c0, type: EDS, " EDS_ADS "}}", NULL, NULL,
         "static_resources.clusters[0].eds_cluster_config.eds_config.ads: needs dynamic_resources.ads_config "
         "(the ADS server)"},
        {NULL, "{name: c0, type: EDS, eds_cluster_config: {eds_config: {api_config_source: " GRPC_SRC "}}}",
         NULL, NULL,
         "static_resources.clusters[0].eds_cluster_config.eds_config.api_config_source: needs "
         "dynamic_resources.cds_config.api_config_source naming the same cluster (Remora talks to one "
         "management "
         "server)"},
        {NODE CDS_DYN,
         XDS_CLUSTER
         ", {name: c0, type: EDS, eds_cluster_config: {eds_config: {api_config_source: {api_type: "
         "GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: other}}]}}}}",
         NULL, NULL,
         "static_resources.clusters[1].eds_cluster_config.eds_config.api_config_source.grpc_services[0]."
         "envoy_"
         "grpc.cluster_name: must be \"xds\", the cluster of dynamic_resources.cds_config (Remora talks to "
         "one "
         "management server)"},
        {NODE ADS_DYN,
         XDS_CLUSTER ", {name: c0, type: EDS, eds_cluster_config: {eds_config: {api_config_source: " GRPC_SRC
                     "}}}",
         NULL, NULL,
         "static_resources.clusters[1].eds_cluster_config.eds_config.api_config_source: not supported "
         "together "
         "with dynamic_resources.ads_config yet*"},
        {NODE ADS_DYN,
         XDS_CLUSTER ", {name: c0, type: EDS, eds_cluster_config: {eds_config: {ads: {}, "
                     "initial_fetch_timeout: 1s}}}",
         NULL, NULL,
         "static_resources.clusters[1].eds_cluster_config.eds_config.initial_fetch_timeout: not supported "
         "yet"},
        {NODE ADS_DYN, XDS_CLUSTER ", {name: c0, type: EDS, eds_cluster_config: {service_name: x}}", NULL,
         NULL, "static_resources.clusters[1].eds_cluster_config.eds_config: required field is missing"},
        {NODE ADS_DYN, XDS_CLUSTER ", {name: c0, " EDS_ADS "}}", NULL, NULL,
         "static_resources.clusters[1].eds_cluster_config: only valid for type EDS"},
        {NODE ADS_DYN,
         XDS_CLUSTER ", {name: c0, type: EDS, " EDS_ADS
                     "}, load_assignment: {cluster_name: c0, endpoints: []}}",
         NULL, NULL,
         "static_resources.clusters[1].load_assignment: not allowed for type EDS (the endpoints come from "
         "EDS)"},
        /* Without CDS, routes are still checked against the static clusters. */
        {NODE "dynamic_resources: {ads_config: " GRPC_SRC "}", XDS_CLUSTER, NULL,
         "{name: v, domains: [a], routes: [{match: {prefix: /}, route: {cluster: nope}}]}",
         LF0
         "route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster \"nope\" (not defined in "
         "static_resources.clusters)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const error_case_t *c = &cases[i];
        char *yaml = build(c->top, c->clusters, c->hcm, c->vhosts);
        check_error(yaml, c->want);
        free(yaml);
    }
}

/* The example shipped in docs/ must stay loadable. The source tree is found from this file's path. */
static void test_docs_example_loads(void **state)
{
    char root[4096];
    snprintf(root, sizeof(root), "%s", __FILE__);
    char *cut = strstr(root, "tests/unit/config/test_bootstrap.c");
    if (cut == NULL)
        fail_msg("cannot locate the source tree from %s", __FILE__);
    snprintf(cut, sizeof(root) - (size_t)(cut - root), "docs/examples/static.yaml");
    rm_bootstrap_config_t *b = NULL;
    char err[512] = "";
    if (rm_bootstrap_load_file(root, &b, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(b->num_listeners, 1);
    assert_int_equal(b->num_clusters, 2);
    assert_true(b->listeners[0].hcm.route_config.num_virtual_hosts >= 2);
    rm_bootstrap_config_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_bootstrap),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors_name_their_path),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_duration_parser),
        cmocka_unit_test(test_enums_and_numbers),
        cmocka_unit_test(test_priorities_flatten),
        cmocka_unit_test(test_health_config),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_json_and_anchors),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_lb_settings),
        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_circuit_breakers_and_fail_fast),
        cmocka_unit_test(test_dynamic_resources_ads),
        cmocka_unit_test(test_dynamic_resources_separate_streams),
        cmocka_unit_test(test_dynamic_resources_errors),
        cmocka_unit_test(test_docs_example_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
