/* xDS resource conversion: Cluster and ClusterLoadAssignment protobufs -> config structs. Every
 * supported field lands where it belongs with Envoy's defaults; every unsupported, unknown or invalid
 * input is rejected with a message that names the resource and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "remora/config/v1/fail_fast.pb-c.h"
#include "xds/xds_convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Envoy__Config__Endpoint__V3__LocalityLbEndpoints Locality;
typedef Envoy__Config__Endpoint__V3__LbEndpoint LbEndpoint;
typedef Envoy__Config__Endpoint__V3__Endpoint Endpoint;
typedef Envoy__Config__Core__V3__Address Address;
typedef Envoy__Config__Core__V3__SocketAddress SocketAddress;
typedef Google__Protobuf__Duration Duration;
typedef Google__Protobuf__UInt32Value UInt32Value;

/* ---- fixtures: a valid cluster whose parts each test changes ---- */

#define MAX_EPS 4

typedef struct {
    SocketAddress sa[MAX_EPS];
    Address addr[MAX_EPS];
    Endpoint ep[MAX_EPS];
    LbEndpoint lbe[MAX_EPS];
    LbEndpoint *lbe_ptrs[2][MAX_EPS];
    UInt32Value weight[MAX_EPS];
    Locality loc[2];
    Locality *loc_ptrs[2];
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment__Policy policy;
    UInt32Value factor;
    Cla cla;
} cla_fixture_t;

/* Two localities: priority 0 with eps 0 and 1, priority 1 with ep 2. */
static void cla_fixture_init(cla_fixture_t *f, const char *name, const char *const addrs[3])
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < 3; i++) {
        f->sa[i] = (SocketAddress)ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT;
        f->sa[i].address = (char *)addrs[i];
        f->sa[i].port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
        f->sa[i].port_value = 8080 + (uint32_t)i;
        f->addr[i] = (Address)ENVOY__CONFIG__CORE__V3__ADDRESS__INIT;
        f->addr[i].address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
        f->addr[i].socket_address = &f->sa[i];
        f->ep[i] = (Endpoint)ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT;
        f->ep[i].address = &f->addr[i];
        f->lbe[i] = (LbEndpoint)ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT;
        f->lbe[i].host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
        f->lbe[i].endpoint = &f->ep[i];
        f->weight[i] = (UInt32Value)GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    }
    f->weight[0].value = 3;
    f->lbe[0].load_balancing_weight = &f->weight[0];
    f->lbe[1].health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING;
    f->lbe_ptrs[0][0] = &f->lbe[0];
    f->lbe_ptrs[0][1] = &f->lbe[1];
    f->lbe_ptrs[1][0] = &f->lbe[2];
    for (int i = 0; i < 2; i++) {
        f->loc[i] = (Locality)ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT;
        f->loc[i].lb_endpoints = f->lbe_ptrs[i];
        f->loc_ptrs[i] = &f->loc[i];
    }
    f->loc[0].n_lb_endpoints = 2;
    f->loc[1].n_lb_endpoints = 1;
    f->loc[1].priority = 1;
    f->factor = (UInt32Value)GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    f->factor.value = 200;
    f->policy = (Envoy__Config__Endpoint__V3__ClusterLoadAssignment__Policy)
        ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__POLICY__INIT;
    f->policy.overprovisioning_factor = &f->factor;
    f->cla = (Cla)ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    f->cla.cluster_name = (char *)name;
    f->cla.n_endpoints = 2;
    f->cla.endpoints = f->loc_ptrs;
    f->cla.policy = &f->policy;
}

static const char *const ip_addrs[3] = {"10.0.0.1", "::1", "10.0.1.1"};
static const char *const dns_addrs[3] = {"a.internal", "10.0.0.2", "b.internal"};

typedef struct {
    Cluster c;
    Duration connect_timeout, dns_refresh_rate;
    UInt32Value buffer_limit;
    cla_fixture_t la;
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig eds;
    Envoy__Config__Core__V3__ConfigSource eds_source;
    Envoy__Config__Core__V3__AggregatedConfigSource ads;
    Envoy__Config__Core__V3__ApiConfigSource api;
    Envoy__Config__Core__V3__GrpcService grpc;
    Envoy__Config__Core__V3__GrpcService *grpcs[2];
    Envoy__Config__Core__V3__GrpcService__EnvoyGrpc envoy_grpc;
} cluster_fixture_t;

static void cluster_fixture_init(cluster_fixture_t *f, int type)
{
    memset(f, 0, sizeof(*f));
    f->c = (Cluster)ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    f->c.name = "web";
    f->c.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    f->c.type = type;
    f->connect_timeout = (Duration)GOOGLE__PROTOBUF__DURATION__INIT;
    f->connect_timeout.nanos = 250000000;
    f->c.connect_timeout = &f->connect_timeout;
    f->buffer_limit = (UInt32Value)GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    f->buffer_limit.value = 65536;
    f->c.per_connection_buffer_limit_bytes = &f->buffer_limit;
    f->dns_refresh_rate = (Duration)GOOGLE__PROTOBUF__DURATION__INIT;
    f->dns_refresh_rate.seconds = 10;

    f->ads = (Envoy__Config__Core__V3__AggregatedConfigSource)
        ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT;
    f->envoy_grpc = (Envoy__Config__Core__V3__GrpcService__EnvoyGrpc)
        ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__ENVOY_GRPC__INIT;
    f->envoy_grpc.cluster_name = "xds";
    f->grpc = (Envoy__Config__Core__V3__GrpcService)ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__INIT;
    f->grpc.target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    f->grpc.envoy_grpc = &f->envoy_grpc;
    f->grpcs[0] = f->grpcs[1] = &f->grpc;
    f->api = (Envoy__Config__Core__V3__ApiConfigSource)ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__INIT;
    f->api.api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
    f->api.transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    f->api.n_grpc_services = 1;
    f->api.grpc_services = f->grpcs;
    f->eds_source = (Envoy__Config__Core__V3__ConfigSource)ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    f->eds_source.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    f->eds_source.ads = &f->ads;
    f->eds_source.resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    f->eds = (Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig)
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT;
    f->eds.eds_config = &f->eds_source;

    if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS) {
        f->c.eds_cluster_config = &f->eds;
    } else {
        cla_fixture_init(&f->la, "web",
                         type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS ? dns_addrs
                                                                                                 : ip_addrs);
        f->c.load_assignment = &f->la.cla;
    }
}

static void use_api_config_source(cluster_fixture_t *f)
{
    f->eds_source.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
    f->eds_source.api_config_source = &f->api;
}

#define STATIC     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC
#define STRICT_DNS ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS
#define EDS        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS

static const rm_xds_convert_opts_t ads_opts = {true, NULL};
static const rm_xds_convert_opts_t grpc_opts = {false, "xds"};

static void convert_ok(const Cluster *pb, const rm_xds_convert_opts_t *opts, rm_cluster_config_t *out)
{
    char err[512] = "";
    if (rm_xds_cluster_from_proto(pb, opts, out, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
}

static void expect_error(const Cluster *pb, const rm_xds_convert_opts_t *opts, const char *want)
{
    rm_cluster_config_t out;
    char err[512] = "";
    if (rm_xds_cluster_from_proto(pb, opts, &out, err, sizeof(err)) == 0) {
        rm_cluster_config_free(&out);
        fail_msg("accepted, expected \"%s\"", want);
    }
    /* Nothing is left to free after a failure. */
    assert_null(out.name);
    assert_null(out.endpoints);
    assert_null(out.eds_service_name);
    size_t n = strlen(want);
    bool ok = want[n - 1] == '*' ? strncmp(err, want, n - 1) == 0 : strcmp(err, want) == 0;
    if (!ok)
        fail_msg("error mismatch\n  want: %s\n  got:  %s", want, err);
}

/* ---- valid clusters ---- */

/* outlier_detection and health_checks convert with Envoy's defaults; unimplemented parts are named. */
static void test_health_fields(void **state)
{
    (void)state;
    cluster_fixture_t f;
    cluster_fixture_init(&f, STATIC);
    Envoy__Config__Cluster__V3__OutlierDetection od = ENVOY__CONFIG__CLUSTER__V3__OUTLIER_DETECTION__INIT;
    UInt32Value three = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    three.value = 3;
    Duration two_s = GOOGLE__PROTOBUF__DURATION__INIT;
    two_s.seconds = 2;
    od.consecutive_5xx = &three;
    od.base_ejection_time = &two_s;
    od.split_external_local_origin_errors = 1;
    f.c.outlier_detection = &od;
    Envoy__Config__Core__V3__HealthCheck hc = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__INIT;
    Envoy__Config__Core__V3__HealthCheck *hcs[1] = {&hc};
    Envoy__Config__Core__V3__HealthCheck__HttpHealthCheck http =
        ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HTTP_HEALTH_CHECK__INIT;
    Envoy__Config__Core__V3__HealthCheck__Payload pl = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__PAYLOAD__INIT;
    Envoy__Config__Core__V3__HealthCheck__Payload *pls[1] = {&pl};
    Envoy__Type__V3__Int64Range range = ENVOY__TYPE__V3__INT64_RANGE__INIT;
    Envoy__Type__V3__Int64Range *ranges[1] = {&range};
    pl.payload_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__PAYLOAD__PAYLOAD_TEXT;
    pl.text = "6f6b";
    range.start = 200;
    range.end = 204;
    http.path = "/healthz";
    http.method = ENVOY__CONFIG__CORE__V3__REQUEST_METHOD__HEAD;
    http.n_receive = 1;
    http.receive = pls;
    http.n_expected_statuses = 1;
    http.expected_statuses = ranges;
    hc.timeout = &two_s;
    hc.interval = &two_s;
    hc.unhealthy_threshold = &three;
    hc.healthy_threshold = &three;
    hc.health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK;
    hc.http_health_check = &http;
    f.c.n_health_checks = 1;
    f.c.health_checks = hcs;
    rm_cluster_config_t c;
    convert_ok(&f.c, &ads_opts, &c);
    assert_true(c.outlier_detection.enabled);
    assert_int_equal(c.outlier_detection.consecutive_5xx, 3);
    assert_int_equal(c.outlier_detection.base_ejection_time_ms, 2000);
    assert_int_equal(c.outlier_detection.interval_ms, 10000);
    assert_int_equal(c.outlier_detection.max_ejection_percent, 10);
    assert_true(c.outlier_detection.split_external_local_origin_errors);
    assert_true(c.outlier_detection.successful_active_health_check_uneject_host);
    assert_int_equal(c.num_health_checks, 1);
    assert_int_equal(c.health_checks[0].kind, RM_HEALTH_CHECK_HTTP);
    assert_string_equal(c.health_checks[0].path, "/healthz");
    assert_string_equal(c.health_checks[0].method, "HEAD");
    assert_int_equal(c.health_checks[0].timeout_ms, 2000);
    assert_int_equal(c.health_checks[0].healthy_threshold, 3);
    assert_true(c.health_checks[0].reuse_connection);
    assert_int_equal(c.health_checks[0].expected_statuses[0].end, 204);
    assert_memory_equal(c.health_checks[0].receive[0].data, "ok", 2);
    rm_cluster_config_free(&c);

    http.codec_client_type = ENVOY__TYPE__V3__CODEC_CLIENT_TYPE__HTTP3;
    cluster_fixture_init(&f, STATIC);
    f.c.n_health_checks = 1;
    f.c.health_checks = hcs;
    expect_error(&f.c, NULL,
                 "cluster 'web': health_checks[0].http_health_check.codec_client_type: HTTP3 is not "
                 "supported (HTTP1, HTTP2)");
    http.codec_client_type = ENVOY__TYPE__V3__CODEC_CLIENT_TYPE__HTTP2;
    convert_ok(&f.c, &ads_opts, &c);
    assert_true(c.health_checks[0].http2);
    rm_cluster_config_free(&c);
    cluster_fixture_init(&f, STATIC);
    f.c.n_health_checks = 1;
    f.c.health_checks = hcs;
    http.codec_client_type = ENVOY__TYPE__V3__CODEC_CLIENT_TYPE__HTTP1;
    pl.text = "6f6";
    expect_error(
        &f.c, NULL,
        "cluster 'web': health_checks[0].http_health_check.receive[0].text: invalid hex payload: odd "
        "number of hex digits");
    pl.text = "6f6b";
    hc.health_checker_case = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER__NOT_SET;
    expect_error(&f.c, NULL,
                 "cluster 'web': health_checks[0]: one of http_health_check, tcp_health_check is required*");
}

static void test_static_cluster(void **state)
{
    cluster_fixture_t f;
    cluster_fixture_init(&f, STATIC);
    f.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
    rm_cluster_config_t c;
    convert_ok(&f.c, &ads_opts, &c);
    assert_string_equal(c.name, "web");
    assert_int_equal(c.type, RM_CLUSTER_STATIC);
    assert_int_equal(c.connect_timeout_ms, 250);
    assert_int_equal(c.per_connection_buffer_limit_bytes, 65536);
    assert_int_equal(c.lb_policy, RM_LB_ROUND_ROBIN);
    assert_int_equal(c.overprovisioning_factor, 200);
    assert_null(c.eds_service_name);
    assert_int_equal(c.num_endpoints, 3);
    assert_string_equal(c.endpoints[0].address.address, "10.0.0.1");
    assert_int_equal(c.endpoints[0].address.port, 8080);
    assert_int_equal(c.endpoints[0].weight, 3);
    assert_int_equal(c.endpoints[0].priority, 0);
    assert_int_equal(c.endpoints[0].health_status, RM_HEALTH_STATUS_UNKNOWN);
    assert_string_equal(c.endpoints[1].address.address, "::1");
    assert_int_equal(c.endpoints[1].weight, 1);
    assert_int_equal(c.endpoints[1].health_status, RM_HEALTH_STATUS_DRAINING);
    assert_int_equal(c.endpoints[2].priority, 1);
    assert_int_equal(c.endpoints[2].address.port, 8082);
    rm_cluster_config_free(&c);
}

static void test_defaults(void **state)
{
    Cluster pb = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    pb.name = "bare";
    rm_cluster_config_t c;
    convert_ok(&pb, NULL, &c);
    assert_int_equal(c.type, RM_CLUSTER_STATIC);
    assert_int_equal(c.connect_timeout_ms, 5000);
    assert_int_equal(c.lb_policy, RM_LB_ROUND_ROBIN);
    assert_int_equal(c.dns_refresh_rate_ms, 5000);
    assert_int_equal(c.dns_lookup_family, RM_DNS_LOOKUP_AUTO);
    assert_int_equal(c.overprovisioning_factor, 140);
    assert_int_equal(c.per_connection_buffer_limit_bytes, 1u << 20);
    assert_int_equal(c.num_endpoints, 0);
    rm_cluster_config_free(&c);
}

static void test_strict_dns_cluster(void **state)
{
    cluster_fixture_t f;
    cluster_fixture_init(&f, STRICT_DNS);
    f.c.dns_refresh_rate = &f.dns_refresh_rate;
    f.c.dns_lookup_family = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY;
    f.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;
    rm_cluster_config_t c;
    convert_ok(&f.c, &ads_opts, &c);
    assert_int_equal(c.type, RM_CLUSTER_STRICT_DNS);
    assert_int_equal(c.dns_refresh_rate_ms, 10000);
    assert_int_equal(c.dns_lookup_family, RM_DNS_LOOKUP_V4_ONLY);
    assert_int_equal(c.lb_policy, RM_LB_LEAST_REQUEST);
    assert_string_equal(c.endpoints[0].address.address, "a.internal");
    assert_string_equal(c.endpoints[1].address.address, "10.0.0.2");
    rm_cluster_config_free(&c);
}

static void test_eds_cluster(void **state)
{
    cluster_fixture_t f;
    cluster_fixture_init(&f, EDS);
    f.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM;
    rm_cluster_config_t c;
    /* No service_name: the cluster's own name is subscribed. */
    convert_ok(&f.c, &ads_opts, &c);
    assert_int_equal(c.type, RM_CLUSTER_EDS);
    assert_int_equal(c.lb_policy, RM_LB_RANDOM);
    assert_string_equal(c.eds_service_name, "web");
    assert_int_equal(c.num_endpoints, 0);
    rm_cluster_config_free(&c);

    f.eds.service_name = "web-v2";
    convert_ok(&f.c, &ads_opts, &c);
    assert_string_equal(c.eds_service_name, "web-v2");
    rm_cluster_config_free(&c);

    /* Without ADS the config source names the management server's cluster. */
    use_api_config_source(&f);
    convert_ok(&f.c, &grpc_opts, &c);
    assert_string_equal(c.eds_service_name, "web-v2");
    rm_cluster_config_free(&c);
    /* NULL options accept either form. */
    convert_ok(&f.c, NULL, &c);
    rm_cluster_config_free(&c);

    /* `self` (same server as the cluster) is valid with and without ADS. */
    Envoy__Config__Core__V3__SelfConfigSource self = ENVOY__CONFIG__CORE__V3__SELF_CONFIG_SOURCE__INIT;
    self.transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    f.eds.eds_config->config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_SELF;
    f.eds.eds_config->self = &self;
    convert_ok(&f.c, &ads_opts, &c);
    rm_cluster_config_free(&c);
    convert_ok(&f.c, &grpc_opts, &c);
    assert_string_equal(c.eds_service_name, "web-v2");
    rm_cluster_config_free(&c);
    self.transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V2;
    rm_cluster_config_t bad;
    char err[256];
    assert_int_equal(rm_xds_cluster_from_proto(&f.c, &grpc_opts, &bad, err, sizeof(err)), -1);
}

/* ---- rejections ---- */

static void test_cluster_rejections(void **state)
{
    cluster_fixture_t f;
    Duration zero = GOOGLE__PROTOBUF__DURATION__INIT;
    Duration negative = GOOGLE__PROTOBUF__DURATION__INIT;
    negative.seconds = -1;
    Duration one_ms = GOOGLE__PROTOBUF__DURATION__INIT;
    one_ms.nanos = 1000000;
    Duration huge = GOOGLE__PROTOBUF__DURATION__INIT;
    huge.seconds = 315576000001;

#define CASE(type, mutate, opts, want)                                                                       \
    do {                                                                                                     \
        cluster_fixture_init(&f, type);                                                                      \
        mutate;                                                                                              \
        expect_error(&f.c, opts, want);                                                                      \
    } while (0)

    CASE(STATIC, f.c.connect_timeout = &zero, NULL, "cluster 'web': connect_timeout: must be > 0");
    CASE(STATIC, f.c.connect_timeout = &negative, NULL,
         "cluster 'web': connect_timeout: must not be negative");
    CASE(STATIC, f.c.connect_timeout = &huge, NULL, "cluster 'web': connect_timeout: out of range");
    CASE(STATIC, f.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV, NULL,
         "cluster 'web': lb_policy: MAGLEV is not supported (supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM)");
    CASE(STATIC, f.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH, NULL,
         "cluster 'web': lb_policy: RING_HASH is not supported*");
    CASE(STATIC, f.c.lb_policy = 42, NULL, "cluster 'web': lb_policy: unknown value 42");
    CASE(STATIC, f.c.lb_policy = 4, NULL, "cluster 'web': lb_policy: unknown value 4");
    CASE(STATIC, f.c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS, NULL,
         "cluster 'web': type: LOGICAL_DNS is not supported yet (supported: STATIC, STRICT_DNS, EDS)");
    CASE(STATIC, f.c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST, NULL,
         "cluster 'web': type: ORIGINAL_DST is not supported yet*");
    CASE(STATIC, f.c.type = 17, NULL, "cluster 'web': type: unknown value 17");
    CASE(STATIC, f.c.name = "", NULL, "cluster (unnamed): name: must not be empty");
    CASE(STATIC, f.c.name = "a\nb", NULL, "cluster 'a\\x0ab': name: must not contain control characters");
    CASE(STATIC, f.c.dns_refresh_rate = &one_ms, NULL, "cluster 'web': dns_refresh_rate: must be > 1ms");
    CASE(STATIC, f.c.dns_lookup_family = 5, NULL, "cluster 'web': dns_lookup_family: unknown value 5");
    CASE(STATIC, f.c.ignore_health_on_host_removal = 1, NULL,
         "cluster 'web': ignore_health_on_host_removal: not supported yet");

    /* Endpoints. */
    CASE(STATIC, f.la.sa[1].port_value = 0, NULL,
         "cluster 'web': "
         "load_assignment.endpoints[0].lb_endpoints[1].endpoint.address.socket_address.port_value: "
         "must be 1..65535 (an upstream endpoint needs a port), got 0");
    CASE(STATIC,
         f.la.sa[1].port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER__NOT_SET,
         NULL,
         "cluster 'web': load_assignment.endpoints[0].lb_endpoints[1].endpoint.address.socket_address.*");
    CASE(STATIC, f.la.sa[2].port_value = 70000, NULL,
         "cluster 'web': "
         "load_assignment.endpoints[1].lb_endpoints[0].endpoint.address.socket_address.port_value: "
         "must be 1..65535 (an upstream endpoint needs a port), got 70000");
    CASE(STATIC, f.la.weight[0].value = 0, NULL,
         "cluster 'web': load_assignment.endpoints[0].lb_endpoints[0].load_balancing_weight: must be >= 1");
    CASE(STATIC, f.la.loc[1].priority = 2, NULL,
         "cluster 'web': load_assignment.endpoints: priorities must be contiguous from 0: priority 2 is used "
         "but "
         "not 1");
    CASE(STATIC, f.la.loc[0].priority = 1; f.la.loc[1].priority = 2, NULL,
                                           "cluster 'web': load_assignment.endpoints: priorities must be "
                                           "contiguous from 0: priority 1 is used but "
                                           "not 0");
    CASE(STATIC, f.la.loc[1].priority = 129, NULL,
         "cluster 'web': load_assignment.endpoints[1].priority: 129 is out of range (0..128)");
    CASE(STATIC, f.la.sa[0].address = "backend.local", NULL,
         "cluster 'web': "
         "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "
         "expected an IP address, got 'backend.local' (use STRICT_DNS for names)");
    CASE(STRICT_DNS, f.la.sa[0].address = "bad host", NULL,
         "cluster 'web': "
         "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "
         "invalid host name 'bad host'");
    CASE(STATIC, f.la.sa[0].address = "", NULL,
         "cluster 'web': "
         "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "
         "must not be empty");
    CASE(STATIC, f.la.sa[0].protocol = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__UDP, NULL,
         "cluster 'web': "
         "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.protocol: "
         "UDP is not supported yet (supported: TCP)");
    CASE(STATIC, f.la.sa[0].ipv4_compat = 1, NULL,
         "cluster 'web': load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address."
         "ipv4_compat: not supported yet");
    CASE(STATIC, f.la.cla.cluster_name = "", NULL,
         "cluster 'web': load_assignment.cluster_name: must not be empty");
    CASE(STATIC, f.la.factor.value = 0, NULL,
         "cluster 'web': load_assignment.policy.overprovisioning_factor: must be >= 1");
    CASE(STATIC, f.la.lbe[1].health_status = 9, NULL,
         "cluster 'web': load_assignment.endpoints[0].lb_endpoints[1].health_status: unknown value 9");
    CASE(STATIC, f.la.ep[2].hostname = "h", NULL,
         "cluster 'web': load_assignment.endpoints[1].lb_endpoints[0].endpoint.hostname: not supported yet");
    CASE(STATIC, f.la.ep[2].address = NULL, NULL,
         "cluster 'web': load_assignment.endpoints[1].lb_endpoints[0].endpoint.address: required field is "
         "missing "
         "(a socket_address)");
    CASE(STATIC,
         f.la.lbe[2].host_identifier_case =
             ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER__NOT_SET,
         NULL,
         "cluster 'web': load_assignment.endpoints[1].lb_endpoints[0].endpoint: required field is missing");

    /* EDS and its config source. */
    CASE(EDS, f.c.eds_cluster_config = NULL, &ads_opts,
         "cluster 'web': eds_cluster_config: required for type EDS (it says where the endpoints come from)");
    CASE(EDS, cla_fixture_init(&f.la, "web", ip_addrs);
         f.c.load_assignment = &f.la.cla, &ads_opts,
         "cluster 'web': load_assignment: not allowed for type EDS (the endpoints come from EDS)");
    CASE(STATIC, f.c.eds_cluster_config = &f.eds, &ads_opts,
         "cluster 'web': eds_cluster_config: only valid for type EDS");
    CASE(EDS, f.eds.eds_config = NULL, &ads_opts,
         "cluster 'web': eds_cluster_config.eds_config: required field is missing");
    CASE(EDS,
         f.eds_source.config_source_specifier_case =
             ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER__NOT_SET,
         &ads_opts,
         "cluster 'web': eds_cluster_config.eds_config: one of ads, api_config_source, self is required");
    CASE(EDS, (void)0, &grpc_opts,
         "cluster 'web': eds_cluster_config.eds_config.ads: this proxy does not use ADS (use "
         "api_config_source "
         "naming the management server's cluster)");
    CASE(EDS, use_api_config_source(&f), &ads_opts,
         "cluster 'web': eds_cluster_config.eds_config.api_config_source: not supported with ADS yet*");
    CASE(EDS, use_api_config_source(&f);
         f.envoy_grpc.cluster_name = "other", &grpc_opts,
         "cluster 'web': "
         "eds_cluster_config.eds_config.api_config_source.grpc_services[0].envoy_grpc.cluster_name: "
         "'other' is not the management server's cluster 'xds' (Remora talks to one management server)");
    CASE(EDS, use_api_config_source(&f);
         f.api.api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__REST, &grpc_opts,
         "cluster 'web': eds_cluster_config.eds_config.api_config_source.api_type: only GRPC is supported, "
         "got 1");
    CASE(EDS, use_api_config_source(&f);
         f.api.transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__AUTO, &grpc_opts,
         "cluster 'web': eds_cluster_config.eds_config.api_config_source.transport_api_version: must be V3*");
    CASE(EDS, use_api_config_source(&f);
         f.api.n_grpc_services = 2, &grpc_opts,
         "cluster 'web': eds_cluster_config.eds_config.api_config_source.grpc_services: exactly one gRPC "
         "service is "
         "supported, got 2");
    CASE(EDS, f.eds_source.resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V2, &ads_opts,
         "cluster 'web': eds_cluster_config.eds_config.resource_api_version: V2 resources are not supported "
         "(use V3)");
    CASE(EDS, f.eds_source.initial_fetch_timeout = &f.connect_timeout, &ads_opts,
         "cluster 'web': eds_cluster_config.eds_config.initial_fetch_timeout: not supported yet");
    CASE(EDS, f.eds.service_name = "a\tb", &ads_opts,
         "cluster 'web': eds_cluster_config.service_name: must not contain control characters");
#undef CASE
}

/* Load balancer settings: common_lb_config.healthy_panic_threshold, least_request_lb_config and
 * round_robin_lb_config with slow start, into the fields the LB code reads. */
static void test_lb_settings(void **state)
{
    cluster_fixture_t f;
    Envoy__Type__V3__Percent panic = ENVOY__TYPE__V3__PERCENT__INIT;
    Envoy__Config__Cluster__V3__Cluster__CommonLbConfig common =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__INIT;
    Envoy__Config__Cluster__V3__Cluster__LeastRequestLbConfig lr =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LEAST_REQUEST_LB_CONFIG__INIT;
    Envoy__Config__Cluster__V3__Cluster__RoundRobinLbConfig rr =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__ROUND_ROBIN_LB_CONFIG__INIT;
    Envoy__Config__Cluster__V3__Cluster__SlowStartConfig ss =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__SLOW_START_CONFIG__INIT;
    Envoy__Config__Core__V3__RuntimeDouble aggression = ENVOY__CONFIG__CORE__V3__RUNTIME_DOUBLE__INIT;
    Envoy__Type__V3__Percent min_weight = ENVOY__TYPE__V3__PERCENT__INIT;
    UInt32Value choices = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    Duration window = GOOGLE__PROTOBUF__DURATION__INIT;
    window.seconds = 30;
    aggression.default_value = 1.5;
    aggression.runtime_key = "upstream.slow_start.aggression";
    min_weight.value = 20;
    ss.slow_start_window = &window;
    ss.aggression = &aggression;
    ss.min_weight_percent = &min_weight;
    choices.value = 3;
    lr.choice_count = &choices;
    lr.slow_start_config = &ss;
    panic.value = 25.5;
    common.healthy_panic_threshold = &panic;

    cluster_fixture_init(&f, STATIC);
    f.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;
    f.c.lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG;
    f.c.least_request_lb_config = &lr;
    f.c.common_lb_config = &common;
    rm_cluster_config_t c;
    convert_ok(&f.c, NULL, &c);
    assert_true(c.healthy_panic_threshold_set);
    assert_true(c.healthy_panic_threshold == 25.5);
    assert_int_equal(c.choice_count, 3);
    assert_int_equal(c.slow_start_window_ms, 30000);
    assert_true(c.slow_start_aggression == 1.5);
    assert_true(c.slow_start_min_weight_percent == 20);
    rm_cluster_config_free(&c);

    /* Round robin with slow start; a panic threshold of 0 (disabled) is a value, not "unset". */
    cluster_fixture_init(&f, STATIC);
    rr.slow_start_config = &ss;
    f.c.lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_ROUND_ROBIN_LB_CONFIG;
    f.c.round_robin_lb_config = &rr;
    panic.value = 0;
    f.c.common_lb_config = &common;
    convert_ok(&f.c, NULL, &c);
    assert_true(c.healthy_panic_threshold_set);
    assert_true(c.healthy_panic_threshold == 0);
    assert_int_equal(c.slow_start_window_ms, 30000);
    assert_int_equal(c.choice_count, 0); /* default */
    rm_cluster_config_free(&c);

    /* Unset: the defaults (the zero values the LB code maps to Envoy's defaults). */
    cluster_fixture_init(&f, STATIC);
    convert_ok(&f.c, NULL, &c);
    assert_false(c.healthy_panic_threshold_set);
    assert_int_equal(c.choice_count, 0);
    assert_int_equal(c.slow_start_window_ms, 0);
    assert_true(c.slow_start_aggression == 0);
    rm_cluster_config_free(&c);

#define CASE(mutate, want)                                                                                   \
    do {                                                                                                     \
        cluster_fixture_init(&f, STATIC);                                                                    \
        f.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;                       \
        f.c.lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG;         \
        f.c.least_request_lb_config = &lr;                                                                   \
        panic.value = 50;                                                                                    \
        choices.value = 2;                                                                                   \
        aggression.default_value = 1;                                                                        \
        min_weight.value = 10;                                                                               \
        window.seconds = 1;                                                                                  \
        mutate;                                                                                              \
        expect_error(&f.c, NULL, want);                                                                      \
    } while (0)

    CASE(choices.value = 1, "cluster 'web': least_request_lb_config.choice_count: must be >= 2");
    CASE(aggression.default_value = 0,
         "cluster 'web': least_request_lb_config.slow_start_config.aggression.default_value: must be > 0");
    CASE(aggression.default_value = NAN,
         "cluster 'web': least_request_lb_config.slow_start_config.aggression.default_value: must be > 0");
    CASE(min_weight.value = 0,
         "cluster 'web': least_request_lb_config.slow_start_config.min_weight_percent.value: 0 is not "
         "supported (a "
         "host in slow start gets at least some traffic)");
    CASE(min_weight.value = 100.5,
         "cluster 'web': least_request_lb_config.slow_start_config.min_weight_percent.value: must be 0..100");
    CASE(window.seconds = -1,
         "cluster 'web': least_request_lb_config.slow_start_config.slow_start_window: must not be negative");
    CASE((panic.value = -1, f.c.common_lb_config = &common),
         "cluster 'web': common_lb_config.healthy_panic_threshold.value: must be 0..100");
    CASE((common.ignore_new_hosts_until_first_hc = 1, f.c.common_lb_config = &common),
         "cluster 'web': common_lb_config.ignore_new_hosts_until_first_hc: not supported yet");
    common.ignore_new_hosts_until_first_hc = 0;
    CASE((common.close_connections_on_host_set_change = 1, f.c.common_lb_config = &common),
         "cluster 'web': common_lb_config.close_connections_on_host_set_change: not supported yet");
    common.close_connections_on_host_set_change = 0;
#undef CASE
}

/* Known Cluster fields that Remora does not implement yet are rejected, not ignored. */
static void test_unsupported_fields(void **state)
{
    cluster_fixture_t f;
    Envoy__Config__Core__V3__HealthCheck hc = ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__INIT;
    Envoy__Config__Core__V3__HealthCheck *hcs[1] = {&hc};
    Envoy__Config__Cluster__V3__OutlierDetection od = ENVOY__CONFIG__CLUSTER__V3__OUTLIER_DETECTION__INIT;
    Envoy__Config__Cluster__V3__Cluster__CommonLbConfig common =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__INIT;
    Envoy__Config__Core__V3__Http2ProtocolOptions h2 = ENVOY__CONFIG__CORE__V3__HTTP2_PROTOCOL_OPTIONS__INIT;
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry ext =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TYPED_EXTENSION_PROTOCOL_OPTIONS_ENTRY__INIT;
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *exts[1] = {&ext};
    Envoy__Config__Cluster__V3__Cluster__LeastRequestLbConfig lr =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LEAST_REQUEST_LB_CONFIG__INIT;
    Envoy__Config__Cluster__V3__Cluster__RoundRobinLbConfig rr =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__ROUND_ROBIN_LB_CONFIG__INIT;
    Envoy__Config__Core__V3__Locality locality = ENVOY__CONFIG__CORE__V3__LOCALITY__INIT;
    UInt32Value w = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    w.value = 1;

#define CASE(mutate, want)                                                                                   \
    do {                                                                                                     \
        cluster_fixture_init(&f, STATIC);                                                                    \
        mutate;                                                                                              \
        expect_error(&f.c, NULL, want);                                                                      \
    } while (0)

    CASE((f.c.n_health_checks = 1, f.c.health_checks = hcs),
         "cluster 'web': health_checks[0].timeout: required");
    UInt32Value too_big = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    too_big.value = 101;
    CASE((od.max_ejection_percent = &too_big, f.c.outlier_detection = &od),
         "cluster 'web': outlier_detection.max_ejection_percent: must be 0..100");
    CASE((common.update_merge_window = &f.connect_timeout, f.c.common_lb_config = &common),
         "cluster 'web': common_lb_config.update_merge_window: not supported yet");
    UInt32Value zero = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    CASE((h2.max_concurrent_streams = &zero, f.c.http2_protocol_options = &h2),
         "cluster 'web': http2_protocol_options.max_concurrent_streams: must be 1..2147483647");
    h2.max_concurrent_streams = NULL;
    ext.key = "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions";
    CASE((f.c.n_typed_extension_protocol_options = 1, f.c.typed_extension_protocol_options = exts),
         "cluster 'web': "
         "typed_extension_protocol_options.envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions: "
         "unknown extension (supported: envoy.extensions.upstreams.http.v3.HttpProtocolOptions, "
         "remora.fail_fast)");
    ext.key = "remora.other";
    CASE((f.c.n_typed_extension_protocol_options = 1, f.c.typed_extension_protocol_options = exts),
         "cluster 'web': typed_extension_protocol_options.remora.other: unknown extension (supported: "
         "envoy.extensions.upstreams.http.v3.HttpProtocolOptions, remora.fail_fast)");
    /* lb_config must match lb_policy, as Envoy requires. */
    CASE((f.c.lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG,
          f.c.least_request_lb_config = &lr),
         "cluster 'web': least_request_lb_config: only valid with lb_policy LEAST_REQUEST");
    CASE((f.c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM,
          f.c.lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_ROUND_ROBIN_LB_CONFIG,
          f.c.round_robin_lb_config = &rr),
         "cluster 'web': round_robin_lb_config: only valid with lb_policy ROUND_ROBIN");
    CASE(f.la.loc[0].locality = &locality,
         "cluster 'web': load_assignment.endpoints[0].locality: not supported yet");
    CASE(f.la.loc[1].load_balancing_weight = &w,
         "cluster 'web': load_assignment.endpoints[1].load_balancing_weight: not supported yet");
#undef CASE
}

/* circuit_breakers thresholds per priority, and the fail-fast breaker as a typed extension. */
static void test_breakers(void **state)
{
    (void)state;
    cluster_fixture_t f;
    rm_cluster_config_t out;
    UInt32Value seven = GOOGLE__PROTOBUF__UINT32_VALUE__INIT, nine = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    seven.value = 7;
    nine.value = 9;
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds t0 =
        ENVOY__CONFIG__CLUSTER__V3__CIRCUIT_BREAKERS__THRESHOLDS__INIT;
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds t1 =
        ENVOY__CONFIG__CLUSTER__V3__CIRCUIT_BREAKERS__THRESHOLDS__INIT;
    t0.max_connections = &seven;
    t1.priority = ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH;
    t1.max_requests = &nine;
    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *ts[2] = {&t0, &t1};
    Envoy__Config__Cluster__V3__CircuitBreakers cb = ENVOY__CONFIG__CLUSTER__V3__CIRCUIT_BREAKERS__INIT;
    cb.n_thresholds = 2;
    cb.thresholds = ts;

    cluster_fixture_init(&f, STATIC);
    convert_ok(&f.c, NULL, &out);
    assert_false(out.circuit_breakers_set);
    assert_false(out.fail_fast.enabled);
    rm_cluster_config_free(&out);

    cluster_fixture_init(&f, STATIC);
    f.c.circuit_breakers = &cb;
    convert_ok(&f.c, NULL, &out);
    assert_true(out.circuit_breakers_set);
    assert_int_equal(out.circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT].max_connections, 7);
    assert_int_equal(out.circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT].max_pending_requests, 1024);
    assert_int_equal(out.circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT].max_requests, 1024);
    assert_int_equal(out.circuit_breakers[RM_ROUTING_PRIORITY_DEFAULT].max_retries, 3);
    assert_int_equal(out.circuit_breakers[RM_ROUTING_PRIORITY_HIGH].max_requests, 9);
    assert_int_equal(out.circuit_breakers[RM_ROUTING_PRIORITY_HIGH].max_connections, 1024);
    rm_cluster_config_free(&out);

    t1.priority = ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__DEFAULT;
    cluster_fixture_init(&f, STATIC);
    f.c.circuit_breakers = &cb;
    expect_error(
        &f.c, NULL,
        "cluster 'web': circuit_breakers.thresholds[1].priority: thresholds for priority DEFAULT are "
        "given twice");
    t1.priority = ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH;
    t1.track_remaining = true;
    cluster_fixture_init(&f, STATIC);
    f.c.circuit_breakers = &cb;
    expect_error(&f.c, NULL,
                 "cluster 'web': circuit_breakers.thresholds[1].track_remaining: not supported yet");

    /* remora.fail_fast */
    Remora__Config__V1__FailFastBreaker ff = REMORA__CONFIG__V1__FAIL_FAST_BREAKER__INIT;
    UInt32Value three = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    three.value = 3;
    Duration two_s = GOOGLE__PROTOBUF__DURATION__INIT;
    two_s.seconds = 2;
    ff.consecutive_failures = &three;
    ff.open_duration = &two_s;
    ff.ignore_5xx = true;
    uint8_t packed[128];
    size_t plen = remora__config__v1__fail_fast_breaker__pack(&ff, packed);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/remora.config.v1.FailFastBreaker";
    any.value.data = packed;
    any.value.len = plen;
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry ext =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TYPED_EXTENSION_PROTOCOL_OPTIONS_ENTRY__INIT;
    ext.key = "remora.fail_fast";
    ext.value = &any;
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *exts[1] = {&ext};
    cluster_fixture_init(&f, STATIC);
    f.c.n_typed_extension_protocol_options = 1;
    f.c.typed_extension_protocol_options = exts;
    convert_ok(&f.c, NULL, &out);
    assert_true(out.fail_fast.enabled);
    assert_int_equal(out.fail_fast.consecutive_failures, 3);
    assert_int_equal(out.fail_fast.open_duration_ms, 2000);
    assert_int_equal(out.fail_fast.half_open_requests, 1);
    assert_int_equal(out.fail_fast.slow_call_ms, 0);
    assert_true(out.fail_fast.ignore_5xx);
    rm_cluster_config_free(&out);

    three.value = 0;
    plen = remora__config__v1__fail_fast_breaker__pack(&ff, packed);
    any.value.len = plen;
    cluster_fixture_init(&f, STATIC);
    f.c.n_typed_extension_protocol_options = 1;
    f.c.typed_extension_protocol_options = exts;
    expect_error(
        &f.c, NULL,
        "cluster 'web': typed_extension_protocol_options.remora.fail_fast.consecutive_failures: must be "
        ">= 1");
    any.type_url = "type.googleapis.com/remora.config.v1.Other";
    cluster_fixture_init(&f, STATIC);
    f.c.n_typed_extension_protocol_options = 1;
    f.c.typed_extension_protocol_options = exts;
    expect_error(&f.c, NULL,
                 "cluster 'web': typed_extension_protocol_options.remora.fail_fast: expected an Any of type "
                 "type.googleapis.com/remora.config.v1.FailFastBreaker, got "
                 "type.googleapis.com/remora.config.v1.Other");
}

/* Fields the trimmed protos do not know arrive in base.unknown_fields: rejected by number, with
 * Envoy's name when it is a Cluster field Remora knows about. */
/* typed_extension_protocol_options with HttpProtocolOptions: packs the options into an Any. */
static void test_upstream_protocol(void **state)
{
    (void)state;
    cluster_fixture_t f;
    rm_cluster_config_t out;

    cluster_fixture_init(&f, STATIC);
    convert_ok(&f.c, NULL, &out);
    assert_int_equal(out.protocol, RM_UPSTREAM_HTTP1);
    rm_cluster_config_free(&out);

    Envoy__Config__Core__V3__Http2ProtocolOptions h2 = ENVOY__CONFIG__CORE__V3__HTTP2_PROTOCOL_OPTIONS__INIT;
    UInt32Value streams = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    streams.value = 7;
    h2.max_concurrent_streams = &streams;
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig x =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__INIT;
    x.protocol_config_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS;
    x.http2_protocol_options = &h2;
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions o =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__INIT;
    o.upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG;
    o.explicit_http_config = &x;
    uint8_t buf[256];
    size_t len = envoy__extensions__upstreams__http__v3__http_protocol_options__pack(&o, buf);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    any.value.data = buf;
    any.value.len = len;
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry ext =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TYPED_EXTENSION_PROTOCOL_OPTIONS_ENTRY__INIT;
    ext.key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    ext.value = &any;
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *exts[1] = {&ext};

    cluster_fixture_init(&f, STATIC);
    f.c.n_typed_extension_protocol_options = 1;
    f.c.typed_extension_protocol_options = exts;
    convert_ok(&f.c, NULL, &out);
    assert_int_equal(out.protocol, RM_UPSTREAM_HTTP2);
    assert_int_equal(out.http2.max_concurrent_streams, 7);
    assert_int_equal(out.http2.initial_stream_window_size, 1u << 20); /* default kept */
    rm_cluster_config_free(&out);

    /* The older cluster-level field selects HTTP/2 too. */
    cluster_fixture_init(&f, STATIC);
    f.c.http2_protocol_options = &h2;
    convert_ok(&f.c, NULL, &out);
    assert_int_equal(out.protocol, RM_UPSTREAM_HTTP2);
    rm_cluster_config_free(&out);

    /* An explicit config without a protocol is refused. */
    x.protocol_config_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG__NOT_SET;
    len = envoy__extensions__upstreams__http__v3__http_protocol_options__pack(&o, buf);
    any.value.len = len;
    cluster_fixture_init(&f, STATIC);
    f.c.n_typed_extension_protocol_options = 1;
    f.c.typed_extension_protocol_options = exts;
    expect_error(
        &f.c, NULL,
        "cluster 'web': typed_extension_protocol_options.envoy.extensions.upstreams.http.v3."
        "HttpProtocolOptions.explicit_http_config: one of http_protocol_options, http2_protocol_options "
        "is required");
}

static void test_unknown_fields(void **state)
{
    cluster_fixture_t f;
    uint8_t empty = 0;
    ProtobufCMessageUnknownField metadata = {25, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 0, &empty};
    ProtobufCMessageUnknownField field_999 = {999, PROTOBUF_C_WIRE_TYPE_VARINT, 1, &empty};
    ProtobufCMessageUnknownField endpoint_name = {5, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 0, &empty};

    cluster_fixture_init(&f, STATIC);
    f.c.base.n_unknown_fields = 1;
    f.c.base.unknown_fields = &metadata;
    expect_error(&f.c, NULL, "cluster 'web': field 25 (metadata) is not supported yet");

    f.c.base.unknown_fields = &field_999;
    expect_error(&f.c, NULL, "cluster 'web': field 999 is not known to Remora (not supported)");

    cluster_fixture_init(&f, STATIC);
    f.la.lbe[1].base.n_unknown_fields = 1;
    f.la.lbe[1].base.unknown_fields = &endpoint_name;
    expect_error(
        &f.c, NULL,
        "cluster 'web': load_assignment.endpoints[0].lb_endpoints[1]: field 5 is not known to Remora (not "
        "supported)");

    cluster_fixture_init(&f, STATIC);
    f.la.sa[2].base.n_unknown_fields = 1;
    f.la.sa[2].base.unknown_fields = &endpoint_name;
    expect_error(&f.c, NULL,
                 "cluster 'web': "
                 "load_assignment.endpoints[1].lb_endpoints[0].endpoint.address.socket_address: field 5 "
                 "is not known to Remora (not supported)");

    cluster_fixture_init(&f, EDS);
    f.ads.base.n_unknown_fields = 1;
    f.ads.base.unknown_fields = &field_999;
    expect_error(
        &f.c, &ads_opts,
        "cluster 'web': eds_cluster_config.eds_config.ads: field 999 is not known to Remora (not supported)");

    cluster_fixture_init(&f, STATIC);
    f.connect_timeout.base.n_unknown_fields = 1;
    f.connect_timeout.base.unknown_fields = &field_999;
    expect_error(&f.c, NULL,
                 "cluster 'web': connect_timeout: field 999 is not known to Remora (not supported)");
}

/* The same rules reach a serialized Cluster with an extra field on the wire. */
static void test_decode_bytes(void **state)
{
    cluster_fixture_t f;
    cluster_fixture_init(&f, STATIC);
    size_t len = envoy__config__cluster__v3__cluster__get_packed_size(&f.c);
    uint8_t *buf = malloc(len + 8);
    envoy__config__cluster__v3__cluster__pack(&f.c, buf);
    rm_cluster_config_t c;
    char err[512] = "";
    assert_int_equal(rm_xds_cluster_decode(buf, len, NULL, &c, err, sizeof(err)), 0);
    assert_int_equal(c.num_endpoints, 3);
    rm_cluster_config_free(&c);
    /* metadata (25), an empty message: tag (25 << 3 | 2) = 0xca 0x01, length 0. */
    buf[len] = 0xca;
    buf[len + 1] = 0x01;
    buf[len + 2] = 0x00;
    assert_int_equal(rm_xds_cluster_decode(buf, len + 3, NULL, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "cluster 'web': field 25 (metadata) is not supported yet");
    /* Garbage: a truncated length-delimited field. */
    const uint8_t junk[] = {0x0a, 0x10, 'x'};
    assert_int_equal(rm_xds_cluster_decode(junk, sizeof(junk), NULL, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "cluster: not a valid serialized envoy.config.cluster.v3.Cluster");
    assert_int_equal(
        rm_xds_cla_decode(junk, sizeof(junk), &(rm_cluster_load_assignment_t){0}, err, sizeof(err)), -1);
    free(buf);
}

/* ---- ClusterLoadAssignment ---- */

static void test_cla(void **state)
{
    cla_fixture_t f;
    cla_fixture_init(&f, "web-v2", ip_addrs);
    rm_cluster_load_assignment_t cla;
    char err[512] = "";
    if (rm_xds_cla_from_proto(&f.cla, &cla, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(cla.cluster_name, "web-v2");
    assert_int_equal(cla.overprovisioning_factor, 200);
    assert_int_equal(cla.num_endpoints, 3);
    assert_int_equal(cla.endpoints[0].weight, 3);
    assert_int_equal(cla.endpoints[1].health_status, RM_HEALTH_STATUS_DRAINING);
    assert_string_equal(cla.endpoints[1].address.address, "::1");
    assert_int_equal(cla.endpoints[2].priority, 1);
    rm_cluster_load_assignment_free(&cla);

    /* Default overprovisioning factor; no endpoints is a valid (empty) assignment. */
    Cla empty = ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    empty.cluster_name = "none";
    assert_int_equal(rm_xds_cla_from_proto(&empty, &cla, err, sizeof(err)), 0);
    assert_int_equal(cla.overprovisioning_factor, 140);
    assert_int_equal(cla.num_endpoints, 0);
    rm_cluster_load_assignment_free(&cla);

    static const struct {
        int which;
        const char *want;
    } bad[] = {
        {0, "cluster_load_assignment 'web-v2': "
            "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "
            "expected an IP address, got 'name.internal'"},
        {1, "cluster_load_assignment (unnamed): cluster_name: must not be empty"},
        {2, "cluster_load_assignment 'web-v2': endpoints[1].lb_endpoints[0].endpoint.address.socket_address."
            "port_value: must be 1..65535 (an upstream endpoint needs a port), got 0"},
        {3, "cluster_load_assignment 'web-v2': field 5 (named_endpoints) is not supported yet"},
        {4, "cluster_load_assignment 'web-v2': endpoints[0].lb_endpoints[0].load_balancing_weight: must be "
            ">= 1"},
        {5, "cluster_load_assignment 'web-v2': endpoints: priorities must be contiguous from 0: priority 3 "
            "is used but not 2"},
    };
    uint8_t byte = 0;
    ProtobufCMessageUnknownField named = {5, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 0, &byte};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cla_fixture_init(&f, "web-v2", ip_addrs);
        switch (bad[i].which) {
        case 0:
            f.sa[0].address = "name.internal";
            break;
        case 1:
            f.cla.cluster_name = "";
            break;
        case 2:
            f.sa[2].port_value = 0;
            break;
        case 3:
            f.cla.base.n_unknown_fields = 1;
            f.cla.base.unknown_fields = &named;
            break;
        case 4:
            f.weight[0].value = 0;
            break;
        case 5:
            f.loc[1].priority = 3;
            break;
        }
        memset(err, 0, sizeof(err));
        assert_int_equal(rm_xds_cla_from_proto(&f.cla, &cla, err, sizeof(err)), -1);
        assert_null(cla.endpoints);
        assert_null(cla.cluster_name);
        if (strcmp(err, bad[i].want) != 0)
            fail_msg("case %zu\n  want: %s\n  got:  %s", i, bad[i].want, err);
    }
}

static void test_printable(void **state)
{
    char buf[300];
    assert_string_equal(rm_xds_printable("web", buf, sizeof(buf)), "web");
    assert_string_equal(rm_xds_printable("a'b\\c\x01\xff", buf, sizeof(buf)), "a\\x27b\\x5cc\\x01\\xff");
    char long_name[200];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    rm_xds_printable(long_name, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 128 + 3);
    assert_string_equal(buf + 128, "...");
    assert_string_equal(rm_xds_printable(NULL, buf, sizeof(buf)), "");
    char small[6];
    rm_xds_printable("abcdefgh", small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_cluster),
        cmocka_unit_test(test_health_fields),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_strict_dns_cluster),
        cmocka_unit_test(test_eds_cluster),
        cmocka_unit_test(test_cluster_rejections),
        cmocka_unit_test(test_unsupported_fields),
        cmocka_unit_test(test_breakers),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_upstream_protocol),
        cmocka_unit_test(test_lb_settings),
        cmocka_unit_test(test_decode_bytes),
        cmocka_unit_test(test_cla),
        cmocka_unit_test(test_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
