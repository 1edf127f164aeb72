/* remora-cp's snapshot: the YAML loader (valid shapes, defaults, pass-through cluster settings, and
 * every error with the path of the offending node), the admin mutations, and the rendering into the
 * envoy Cluster and ClusterLoadAssignment resources that are served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cp_snapshot.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "remora_proto/xds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;

static rm_cp_snapshot_t *parse_ok(const char *yaml)
{
    rm_cp_snapshot_t *s = NULL;
    char err[1024] = "";
    int rc = rm_cp_snapshot_parse(yaml, strlen(yaml), &s, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(s);
    return s;
}

/* Parses yaml, expects failure, and checks that the error starts with want (path and message). */
static void parse_fails(const char *yaml, const char *want)
{
    rm_cp_snapshot_t *s = NULL;
    char err[1024] = "";
    int rc = rm_cp_snapshot_parse(yaml, strlen(yaml), &s, err, sizeof(err));
    if (rc == 0)
        fail_msg("expected an error starting with \"%s\" for:\n%s", want, yaml);
    assert_int_equal(rc, RM_CP_EINVAL);
    assert_null(s);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error \"%s\"\n  does not start with \"%s\"", err, want);
}

static Cluster *render_cluster(const rm_cp_snapshot_t *s, size_t i)
{
    rm_cp_rendered_t *r = rm_cp_snapshot_render(s);
    assert_true(i < r->num_resources);
    Cluster *c =
        (Cluster *)protobuf_c_message_unpack(&envoy__config__cluster__v3__cluster__descriptor, NULL,
                                             r->resources[i].cluster.len, r->resources[i].cluster.data);
    assert_non_null(c);
    rm_cp_rendered_free(r);
    return c;
}

static Cla *render_cla(const rm_cp_snapshot_t *s, size_t i)
{
    rm_cp_rendered_t *r = rm_cp_snapshot_render(s);
    assert_true(i < r->num_resources);
    Cla *c =
        (Cla *)protobuf_c_message_unpack(&envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
                                         NULL, r->resources[i].cla.len, r->resources[i].cla.data);
    assert_non_null(c);
    rm_cp_rendered_free(r);
    return c;
}

/* ---- valid shapes ---- */

static const char brief_yaml[] = "clusters:\n"
                                 "- name: backend\n"
                                 "  lb_policy: ROUND_ROBIN\n"
                                 "  connect_timeout: 1s\n"
                                 "  endpoints:\n"
                                 "  - {address: 127.0.0.1:8081, weight: 2}\n"
                                 "  - {address: 127.0.0.1:8083, priority: 1, health: HEALTHY}\n";

static void test_basic_shape(void **state)
{
    rm_cp_snapshot_t *s = parse_ok(brief_yaml);
    assert_int_equal(s->num_clusters, 1);
    rm_cp_cluster_t *c = &s->clusters[0];
    assert_string_equal(c->name, "backend");
    assert_int_equal(c->lb_policy, 0);
    assert_true(c->has_connect_timeout);
    assert_int_equal(c->connect_timeout_seconds, 1);
    assert_int_equal(c->connect_timeout_nanos, 0);
    assert_int_equal(c->extra_len, 0);
    assert_int_equal(c->num_endpoints, 2);
    assert_string_equal(c->endpoints[0].host, "127.0.0.1");
    assert_int_equal(c->endpoints[0].port, 8081);
    assert_int_equal(c->endpoints[0].weight, 2);
    assert_int_equal(c->endpoints[0].priority, 0);
    assert_int_equal(c->endpoints[0].health, 0);
    assert_int_equal(c->endpoints[1].port, 8083);
    assert_int_equal(c->endpoints[1].weight, 1);
    assert_int_equal(c->endpoints[1].priority, 1);
    assert_int_equal(c->endpoints[1].health, 1);
    rm_cp_snapshot_free(s);
}

static void test_defaults_and_empty(void **state)
{
    rm_cp_snapshot_t *s = parse_ok("");
    assert_int_equal(s->num_clusters, 0);
    rm_cp_snapshot_free(s);
    s = parse_ok("clusters: []\n");
    assert_int_equal(s->num_clusters, 0);
    rm_cp_snapshot_free(s);
    s = parse_ok("clusters: ~\n");
    assert_int_equal(s->num_clusters, 0);
    rm_cp_snapshot_free(s);

    /* JSON is YAML too; a cluster without endpoints or settings is valid. */
    s = parse_ok("{\"clusters\": [{\"name\": \"a\"}, {\"name\": \"b\", \"lb_policy\": \"MAGLEV\", "
                 "\"connect_timeout\": \"0s\", \"endpoints\": [{\"address\": \"[::1]:80\"}]}]}");
    assert_int_equal(s->num_clusters, 2);
    assert_false(s->clusters[0].has_connect_timeout);
    assert_int_equal(s->clusters[0].num_endpoints, 0);
    /* The mock does not judge what the sidecar must reject: MAGLEV and a 0s timeout go through. */
    assert_int_equal(s->clusters[1].lb_policy, 5);
    assert_true(s->clusters[1].has_connect_timeout);
    assert_int_equal(s->clusters[1].connect_timeout_seconds, 0);
    assert_string_equal(s->clusters[1].endpoints[0].host, "::1");
    assert_int_equal(s->clusters[1].endpoints[0].port, 80);
    rm_cp_snapshot_free(s);
}

static void test_example_file_loads(void **state)
{
    const char *src = getenv("REMORA_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/controlplane-mock/examples/snapshot.yaml",
             src ? src : REMORA_CP_SOURCE_DIR);
    rm_cp_snapshot_t *s = NULL;
    char err[1024] = "";
    if (rm_cp_snapshot_load_file(path, &s, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(s->num_clusters, 2);
    assert_string_equal(s->clusters[0].name, "backend");
    assert_true(s->clusters[0].extra_len > 0);
    rm_cp_snapshot_free(s);
}

static void test_load_file_errors(void **state)
{
    rm_cp_snapshot_t *s = NULL;
    char err[1024] = "";
    assert_int_equal(rm_cp_snapshot_load_file("/nonexistent/snap.yaml", &s, err, sizeof(err)), RM_CP_EIO);
    assert_null(s);
    assert_non_null(strstr(err, "/nonexistent/snap.yaml"));

    char path[] = "/tmp/test_cp_snapshot_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *bad = "clusters:\n- name: a\n  endpoints:\n  - address: nope\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    assert_int_equal(rm_cp_snapshot_load_file(path, &s, err, sizeof(err)), RM_CP_EINVAL);
    unlink(path);
    char want[1100];
    snprintf(want, sizeof(want), "%s: clusters[0].endpoints[0].address: invalid address \"nope\"", path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err, want);
}

/* ---- rendering ---- */

static void test_render_cluster(void **state)
{
    rm_cp_snapshot_t *s = parse_ok(brief_yaml);
    Cluster *c = render_cluster(s, 0);
    assert_string_equal(c->name, "backend");
    assert_int_equal(c->cluster_discovery_type_case,
                     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE);
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    assert_non_null(c->eds_cluster_config);
    assert_non_null(c->eds_cluster_config->eds_config);
    assert_int_equal(c->eds_cluster_config->eds_config->config_source_specifier_case,
                     ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_SELF);
    assert_non_null(c->eds_cluster_config->eds_config->self);
    assert_non_null(c->connect_timeout);
    assert_int_equal(c->connect_timeout->seconds, 1);
    assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN);
    assert_null(c->outlier_detection);
    assert_null(c->load_assignment);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    rm_cp_snapshot_free(s);
}

static void test_render_cla_groups_priorities(void **state)
{
    rm_cp_snapshot_t *s = parse_ok("clusters:\n"
                                   "- name: web\n"
                                   "  endpoints:\n"
                                   "  - {address: 10.0.0.3:80, priority: 2, health: DRAINING}\n"
                                   "  - {address: 10.0.0.1:80, weight: 5}\n"
                                   "  - {address: 10.0.0.2:81, priority: 2}\n"
                                   "  - {address: '[fd00::1]:8080', health: UNHEALTHY}\n");
    Cla *cla = render_cla(s, 0);
    assert_string_equal(cla->cluster_name, "web");
    assert_int_equal(cla->n_endpoints, 2);
    /* Priority 0 first, endpoints in file order. */
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *p0 = cla->endpoints[0], *p2 = cla->endpoints[1];
    assert_int_equal(p0->priority, 0);
    assert_int_equal(p2->priority, 2);
    assert_int_equal(p0->n_lb_endpoints, 2);
    assert_int_equal(p2->n_lb_endpoints, 2);
    Envoy__Config__Endpoint__V3__LbEndpoint *e = p0->lb_endpoints[0];
    assert_string_equal(e->endpoint->address->socket_address->address, "10.0.0.1");
    assert_int_equal(e->endpoint->address->socket_address->port_value, 80);
    assert_int_equal(e->load_balancing_weight->value, 5);
    assert_int_equal(e->health_status, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNKNOWN);
    e = p0->lb_endpoints[1];
    assert_string_equal(e->endpoint->address->socket_address->address, "fd00::1");
    assert_int_equal(e->endpoint->address->socket_address->port_value, 8080);
    assert_int_equal(e->load_balancing_weight->value, 1);
    assert_int_equal(e->health_status, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY);
    e = p2->lb_endpoints[0];
    assert_string_equal(e->endpoint->address->socket_address->address, "10.0.0.3");
    assert_int_equal(e->health_status, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING);
    assert_int_equal(p2->lb_endpoints[1]->endpoint->address->socket_address->port_value, 81);
    protobuf_c_message_free_unpacked(&cla->base, NULL);

    /* No endpoints: an assignment without localities. */
    rm_cp_snapshot_free(s);
    s = parse_ok("clusters: [{name: empty}]");
    cla = render_cla(s, 0);
    assert_string_equal(cla->cluster_name, "empty");
    assert_int_equal(cla->n_endpoints, 0);
    protobuf_c_message_free_unpacked(&cla->base, NULL);
    rm_cp_snapshot_free(s);
}

static void test_passthrough_settings(void **state)
{
    rm_cp_snapshot_t *s = parse_ok(
        "clusters:\n"
        "- name: backend\n"
        "  lb_policy: LEAST_REQUEST\n"
        "  connect_timeout: 0.25s\n"
        "  least_request_lb_config: {choice_count: 3}\n"
        "  per_connection_buffer_limit_bytes: 32768\n"
        "  ignore_health_on_host_removal: true\n"
        "  outlier_detection:\n"
        "    consecutive_5xx: 3\n"
        "    interval: 1.5s\n"
        "    base_ejection_time: {seconds: 30, nanos: 5}\n"
        "    max_ejection_percent: 50\n"
        "    split_external_local_origin_errors: true\n"
        "  common_lb_config:\n"
        "    healthy_panic_threshold: {value: 25.5}\n"
        "  circuit_breakers:\n"
        "    thresholds:\n"
        "    - {priority: HIGH, max_connections: 7, track_remaining: true}\n"
        "    - {max_requests: 9}\n"
        "  health_checks:\n"
        "  - timeout: 1s\n"
        "    interval: 2s\n"
        "    unhealthy_threshold: 2\n"
        "    healthy_threshold: 1\n"
        "    http_health_check:\n"
        "      path: /healthz\n"
        "      expected_statuses: [{start: 200, end: 300}]\n"
        "  http2_protocol_options: {max_concurrent_streams: 100}\n"
        "  typed_extension_protocol_options:\n"
        "    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
        "      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
        "      explicit_http_config: {http2_protocol_options: {}}\n"
        "      common_http_protocol_options: {idle_timeout: 60s}\n");
    assert_true(s->clusters[0].has_connect_timeout);
    assert_int_equal(s->clusters[0].connect_timeout_nanos, 250000000);
    Cluster *c = render_cluster(s, 0);
    assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
    assert_int_equal(c->connect_timeout->nanos, 250000000);
    /* The base fields and the pass-through ones merge into one message. */
    assert_int_equal(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    assert_int_equal(c->lb_config_case,
                     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG);
    assert_int_equal(c->least_request_lb_config->choice_count->value, 3);
    assert_int_equal(c->per_connection_buffer_limit_bytes->value, 32768);
    assert_true(c->ignore_health_on_host_removal);

    Envoy__Config__Cluster__V3__OutlierDetection *od = c->outlier_detection;
    assert_non_null(od);
    assert_int_equal(od->consecutive_5xx->value, 3);
    assert_int_equal(od->interval->seconds, 1);
    assert_int_equal(od->interval->nanos, 500000000);
    assert_int_equal(od->base_ejection_time->seconds, 30);
    assert_int_equal(od->base_ejection_time->nanos, 5);
    assert_int_equal(od->max_ejection_percent->value, 50);
    assert_true(od->split_external_local_origin_errors);
    assert_null(od->enforcing_consecutive_5xx);

    assert_true(c->common_lb_config->healthy_panic_threshold->value == 25.5);
    assert_int_equal(c->circuit_breakers->n_thresholds, 2);
    assert_int_equal(c->circuit_breakers->thresholds[0]->priority,
                     ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH);
    assert_int_equal(c->circuit_breakers->thresholds[0]->max_connections->value, 7);
    assert_true(c->circuit_breakers->thresholds[0]->track_remaining);
    assert_int_equal(c->circuit_breakers->thresholds[1]->max_requests->value, 9);

    assert_int_equal(c->n_health_checks, 1);
    Envoy__Config__Core__V3__HealthCheck *hc = c->health_checks[0];
    assert_int_equal(hc->interval->seconds, 2);
    assert_int_equal(hc->unhealthy_threshold->value, 2);
    assert_string_equal(hc->http_health_check->path, "/healthz");
    assert_int_equal(hc->http_health_check->n_expected_statuses, 1);
    assert_int_equal(hc->http_health_check->expected_statuses[0]->start, 200);
    assert_int_equal(hc->http_health_check->expected_statuses[0]->end, 300);
    assert_int_equal(c->http2_protocol_options->max_concurrent_streams->value, 100);

    assert_int_equal(c->n_typed_extension_protocol_options, 1);
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *entry =
        c->typed_extension_protocol_options[0];
    assert_string_equal(entry->key, REMORA_UPSTREAM_HTTP_PROTOCOL_OPTIONS_KEY);
    assert_string_equal(entry->value->type_url, REMORA_TYPE_URL_UPSTREAM_HTTP_PROTOCOL_OPTIONS);
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *hpo = (void *)protobuf_c_message_unpack(
        &envoy__extensions__upstreams__http__v3__http_protocol_options__descriptor, NULL,
        entry->value->value.len, entry->value->value.data);
    assert_non_null(hpo);
    assert_non_null(hpo->explicit_http_config);
    assert_non_null(hpo->explicit_http_config->http2_protocol_options);
    assert_int_equal(hpo->common_http_protocol_options->idle_timeout->seconds, 60);
    protobuf_c_message_free_unpacked(&hpo->base, NULL);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    rm_cp_snapshot_free(s);
}

/* ---- errors, each with its path ---- */

static void test_errors_structure(void **state)
{
    parse_fails("clusters: [\n", "YAML syntax error");
    parse_fails("- a\n", "expected a mapping (Snapshot)");
    parse_fails("listeners: []\n", "listeners: unknown field (Snapshot supports: clusters)");
    parse_fails("clusters: {name: a}\n", "clusters: expected a list");
    parse_fails("clusters: [a]\n", "clusters[0]: expected a mapping (Cluster)");
    parse_fails("clusters:\n- lb_policy: RANDOM\n", "clusters[0].name: required field is missing");
    parse_fails("clusters:\n- name: ''\n", "clusters[0].name: must not be empty");
    parse_fails("clusters:\n- name: a\n- name: b\n- name: a\n",
                "clusters[2].name: duplicate cluster name \"a\" (also clusters[0])");
    parse_fails("clusters:\n- name: a\n  type: STATIC\n",
                "clusters[0].type: unknown field (Cluster supports: name,");
    parse_fails("clusters:\n- name: a\n  name: b\n", "clusters[0].name: duplicate key");
}

static void test_errors_cluster_fields(void **state)
{
    parse_fails("clusters:\n- name: a\n  lb_policy: FASTEST\n",
                "clusters[0].lb_policy: unknown value \"FASTEST\" (expected one of ROUND_ROBIN,");
    parse_fails("clusters:\n- name: a\n  connect_timeout: fast\n",
                "clusters[0].connect_timeout: invalid duration \"fast\"");
    parse_fails("clusters:\n- name: a\n  connect_timeout: -1s\n",
                "clusters[0].connect_timeout: must not be negative");
    parse_fails("clusters:\n- name: a\n  connect_timeout: 5\n",
                "clusters[0].connect_timeout: invalid duration \"5\"");
    parse_fails("clusters:\n- name: a\n  endpoints: {address: 1.2.3.4:80}\n",
                "clusters[0].endpoints: expected a list");
}

static void test_errors_endpoints(void **state)
{
    static const char head[] =
        "clusters:\n- name: ok\n  endpoints: [{address: 127.0.0.1:1}]\n- name: b\n  endpoints:\n";
    static const struct {
        const char *item;
        const char *want;
    } cases[] = {
        {"  - {address: nope}\n",
         "clusters[1].endpoints[0].address: invalid address \"nope\" (expected host:port)"},
        {"  - {address: 127.0.0.1:0}\n",
         "clusters[1].endpoints[0].address: invalid address \"127.0.0.1:0\": the port"},
        {"  - {address: 127.0.0.1:65536}\n",
         "clusters[1].endpoints[0].address: invalid address \"127.0.0.1:65536\""},
        {"  - {address: ':80'}\n",
         "clusters[1].endpoints[0].address: invalid address \":80\": the host is empty"},
        {"  - {address: '::1:80'}\n",
         "clusters[1].endpoints[0].address: invalid address \"::1:80\" (write IPv6"},
        {"  - {address: '[::1]80'}\n",
         "clusters[1].endpoints[0].address: invalid address \"[::1]80\" (expected [ipv6]"},
        {"  - {address: 'a b:80'}\n",
         "clusters[1].endpoints[0].address: invalid address \"a b:80\": must not"},
        {"  - {address: ''}\n", "clusters[1].endpoints[0].address: must not be empty"},
        {"  - {weight: 2}\n", "clusters[1].endpoints[0].address: required field is missing"},
        {"  - {address: 1.2.3.4:80, weight: 0}\n",
         "clusters[1].endpoints[0].weight: 0 is out of range (1..4294967295)"},
        {"  - {address: 1.2.3.4:80, weight: '3'}\n",
         "clusters[1].endpoints[0].weight: expected an integer, got the quoted"},
        {"  - {address: 1.2.3.4:80, priority: -1}\n",
         "clusters[1].endpoints[0].priority: must not be negative"},
        {"  - {address: 1.2.3.4:80, health: SICK}\n",
         "clusters[1].endpoints[0].health: unknown value \"SICK\""},
        {"  - {address: 1.2.3.4:80, port: 80}\n",
         "clusters[1].endpoints[0].port: unknown field (Endpoint supports: "
         "address, weight, priority, health)"},
        {"  - {address: 1.2.3.4:80}\n  - {address: 1.2.3.5:80}\n  - {address: 1.2.3.4:80, weight: 3}\n",
         "clusters[1].endpoints[2].address: duplicate endpoint 1.2.3.4:80 (also endpoints[0])"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), "%s%s", head, cases[i].item);
        parse_fails(yaml, cases[i].want);
    }
}

static void test_errors_passthrough(void **state)
{
    static const struct {
        const char *settings;
        const char *want;
    } cases[] = {
        {"outlier_detection: {interval: soon}",
         "clusters[0].outlier_detection.interval: invalid duration \"soon\""},
        {"outlier_detection: {consecutive_5xx: -1}",
         "clusters[0].outlier_detection.consecutive_5xx: must not be negative"},
        {"outlier_detection: {consecutive_5xx: '5'}",
         "clusters[0].outlier_detection.consecutive_5xx: expected an "
         "integer, got the quoted string"},
        {"outlier_detection: {consecutive_5xx: 4294967296}",
         "clusters[0].outlier_detection.consecutive_5xx: integer "
         "out of range"},
        {"outlier_detection: {eject: yes}",
         "clusters[0].outlier_detection.eject: unknown field (OutlierDetection "
         "supports: consecutive_5xx, interval,"},
        {"outlier_detection: {split_external_local_origin_errors: maybe}",
         "clusters[0].outlier_detection.split_external_local_origin_errors: expected true or false"},
        {"outlier_detection: 5",
         "clusters[0].outlier_detection: expected a mapping (OutlierDetection), got \"5\""},
        {"outlier_detection: {interval: 1s, interval: 2s}",
         "clusters[0].outlier_detection.interval: duplicate key"},
        {"circuit_breakers: {thresholds: [{priority: URGENT}]}",
         "clusters[0].circuit_breakers.thresholds[0].priority: unknown value \"URGENT\" (expected one of "
         "DEFAULT, HIGH)"},
        {"circuit_breakers: {thresholds: {priority: HIGH}}",
         "clusters[0].circuit_breakers.thresholds: expected a list"},
        {"common_lb_config: {healthy_panic_threshold: {value: lots}}",
         "clusters[0].common_lb_config.healthy_panic_threshold.value: expected a number"},
        {"least_request_lb_config: {}\n  round_robin_lb_config: {}",
         "clusters[0].round_robin_lb_config: conflicts with least_request_lb_config"},
        {"health_checks: [{tcp_health_check: {send: {binary: AAEC}}}]",
         "clusters[0].health_checks[0].tcp_health_check.send.binary: bytes fields are not supported"},
        {"health_checks: [{http_health_check: {path: /}, tcp_health_check: {}}]",
         "clusters[0].health_checks[0].tcp_health_check: conflicts with http_health_check"},
        {"typed_extension_protocol_options: {x: {\"@type\": type.googleapis.com/foo.Bar}}",
         "clusters[0].typed_extension_protocol_options.x.@type: unsupported type "
         "\"type.googleapis.com/foo.Bar\""},
        {"typed_extension_protocol_options: {x: {idle: 1}}",
         "clusters[0].typed_extension_protocol_options.x.@type: required field is missing"},
        {"typed_extension_protocol_options: [a]",
         "clusters[0].typed_extension_protocol_options: expected a mapping"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), "clusters:\n- name: a\n  %s\n", cases[i].settings);
        parse_fails(yaml, cases[i].want);
    }
}

static void test_alias_bomb(void **state)
{
    /* A small document that names one mapping many times: decoding every use is what users expect, up
     * to a budget that stops files which would take unbounded work. */
    static const char head[] =
        "clusters:\n- name: x\n  circuit_breakers:\n    thresholds: [&t {priority: HIGH, "
        "max_connections: 1, max_pending_requests: 2, max_requests: 3, max_retries: 4}";
    size_t aliases = 40000;
    char *yaml = malloc(sizeof(head) + aliases * 4 + 8);
    size_t k = (size_t)sprintf(yaml, "%s", head);
    for (size_t i = 0; i < aliases; i++)
        k += (size_t)sprintf(yaml + k, ", *t");
    sprintf(yaml + k, "]\n");
    parse_fails(yaml, "clusters[0].circuit_breakers.thresholds[");
    rm_cp_snapshot_t *s = NULL;
    char err[1024];
    assert_int_equal(rm_cp_snapshot_parse(yaml, strlen(yaml), &s, err, sizeof(err)), RM_CP_EINVAL);
    assert_non_null(strstr(err, "too many nodes"));

    /* A few aliases are fine. */
    sprintf(yaml, "%s, *t, *t]\n", head);
    s = parse_ok(yaml);
    Cluster *c = render_cluster(s, 0);
    assert_int_equal(c->circuit_breakers->n_thresholds, 3);
    assert_int_equal(c->circuit_breakers->thresholds[2]->max_retries->value, 4);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    rm_cp_snapshot_free(s);
    free(yaml);
}

/* ---- addresses and enums ---- */

static void test_addresses(void **state)
{
    char *host = NULL, err[256];
    uint32_t port;
    assert_int_equal(rm_cp_parse_address("backend.default.svc:8080", &host, &port, err, sizeof(err)), 0);
    assert_string_equal(host, "backend.default.svc");
    assert_int_equal(port, 8080);
    free(host);
    assert_int_equal(rm_cp_parse_address("[2001:db8::1]:443", &host, &port, err, sizeof(err)), 0);
    assert_string_equal(host, "2001:db8::1");
    char *text = rm_cp_format_address(host, port);
    assert_string_equal(text, "[2001:db8::1]:443");
    free(text);
    free(host);
    text = rm_cp_format_address("10.1.2.3", 1);
    assert_string_equal(text, "10.1.2.3:1");
    free(text);
    assert_int_equal(rm_cp_parse_address("1.2.3.4:080", &host, &port, err, sizeof(err)), -1);
    assert_int_equal(rm_cp_parse_address("1.2.3.4:", &host, &port, err, sizeof(err)), -1);
    assert_int_equal(rm_cp_parse_address("[]:80", &host, &port, err, sizeof(err)), -1);

    int v;
    assert_int_equal(rm_cp_lb_policy_parse("maglev", &v), 0);
    assert_int_equal(v, 5);
    assert_string_equal(rm_cp_lb_policy_name(3), "RANDOM");
    assert_null(rm_cp_lb_policy_name(4));
    assert_int_equal(rm_cp_health_parse("Draining", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(rm_cp_health_parse("ok", &v), -1);
}

/* ---- mutations ---- */

static void test_endpoint_mutations(void **state)
{
    rm_cp_snapshot_t *s = parse_ok(brief_yaml);
    rm_cp_rendered_t *before = rm_cp_snapshot_render(s);
    char err[512];

    assert_int_equal(rm_cp_snapshot_add_endpoint(s, "nope", "1.2.3.4:80", 1, 0, 0, err, sizeof(err)),
                     RM_CP_ENOENT);
    assert_string_equal(err, "unknown cluster \"nope\"");
    assert_int_equal(rm_cp_snapshot_add_endpoint(s, "backend", "127.0.0.1:8081", 1, 0, 0, err, sizeof(err)),
                     RM_CP_EEXIST);
    assert_int_equal(rm_cp_snapshot_add_endpoint(s, "backend", "bad", 1, 0, 0, err, sizeof(err)),
                     RM_CP_EINVAL);
    assert_int_equal(rm_cp_snapshot_add_endpoint(s, "backend", "1.2.3.4:80", 1, 0, 9, err, sizeof(err)),
                     RM_CP_EINVAL);
    assert_int_equal(rm_cp_snapshot_add_endpoint(s, "", "1.2.3.4:80", 1, 0, 0, err, sizeof(err)),
                     RM_CP_EINVAL);
    assert_int_equal(rm_cp_snapshot_remove_endpoint(s, "backend", "1.2.3.4:80", err, sizeof(err)),
                     RM_CP_ENOENT);
    assert_int_equal(
        rm_cp_snapshot_set_endpoint(s, "backend", "127.0.0.1:8081", RM_CP_SET_HEALTH, 17, err, sizeof(err)),
        RM_CP_EINVAL);
    /* Nothing changed after all those errors. */
    rm_cp_rendered_t *after = rm_cp_snapshot_render(s);
    assert_true(rm_cp_rendered_equal(before, after));
    rm_cp_rendered_free(after);

    assert_int_equal(rm_cp_snapshot_add_endpoint(s, "backend", "127.0.0.1:8085", 0, 1, 1, err, sizeof(err)),
                     RM_CP_OK);
    rm_cp_endpoint_t *e = rm_cp_cluster_find_endpoint(&s->clusters[0], "127.0.0.1", 8085);
    assert_non_null(e);
    assert_int_equal(e->weight, 1); /* 0 means 1 */
    assert_int_equal(e->priority, 1);
    after = rm_cp_snapshot_render(s);
    assert_false(rm_cp_rendered_equal(before, after));
    rm_cp_rendered_free(after);

    assert_int_equal(
        rm_cp_snapshot_set_endpoint(s, "backend", "127.0.0.1:8085", RM_CP_SET_WEIGHT, 7, err, sizeof(err)),
        RM_CP_OK);
    assert_int_equal(
        rm_cp_snapshot_set_endpoint(s, "backend", "127.0.0.1:8085", RM_CP_SET_PRIORITY, 0, err, sizeof(err)),
        RM_CP_OK);
    assert_int_equal(
        rm_cp_snapshot_set_endpoint(s, "backend", "127.0.0.1:8085", RM_CP_SET_HEALTH, 3, err, sizeof(err)),
        RM_CP_OK);
    e = rm_cp_cluster_find_endpoint(&s->clusters[0], "127.0.0.1", 8085);
    assert_int_equal(e->weight, 7);
    assert_int_equal(e->priority, 0);
    assert_int_equal(e->health, 3);

    assert_int_equal(rm_cp_snapshot_remove_endpoint(s, "backend", "127.0.0.1:8081", err, sizeof(err)),
                     RM_CP_OK);
    assert_int_equal(s->clusters[0].num_endpoints, 2);
    assert_string_equal(s->clusters[0].endpoints[0].host, "127.0.0.1");
    assert_int_equal(s->clusters[0].endpoints[0].port, 8083);
    rm_cp_rendered_free(before);
    rm_cp_snapshot_free(s);
}

static void test_cluster_mutations(void **state)
{
    rm_cp_snapshot_t *s = parse_ok("clusters:\n"
                                   "- name: a\n"
                                   "  outlier_detection: {consecutive_5xx: 2}\n"
                                   "  endpoints: [{address: 10.0.0.1:80}]\n"
                                   "- name: b\n");
    char err[512];
    rm_cp_cluster_t c = {0};
    c.name = strdup("a");
    c.lb_policy = 5; /* MAGLEV: the sidecar is the one to reject it */
    c.has_connect_timeout = true;
    c.endpoints = calloc(2, sizeof(*c.endpoints));
    c.endpoints[0] = (rm_cp_endpoint_t){strdup("10.0.0.9"), 90, 1, 0, 0};
    c.endpoints[1] = (rm_cp_endpoint_t){strdup("10.0.0.9"), 90, 1, 0, 0};
    c.num_endpoints = 2;
    assert_int_equal(rm_cp_cluster_check(&c, err, sizeof(err)), RM_CP_EINVAL);
    assert_non_null(strstr(err, "duplicate endpoint 10.0.0.9:90"));
    c.endpoints[1].port = 91;
    assert_int_equal(rm_cp_cluster_check(&c, err, sizeof(err)), RM_CP_OK);
    rm_cp_snapshot_upsert_cluster(s, &c);
    assert_null(c.name);
    assert_int_equal(s->num_clusters, 2);
    assert_int_equal(s->clusters[0].num_endpoints, 2);
    /* Replaced in place, with the settings the admin API cannot express kept. */
    Cluster *pc = render_cluster(s, 0);
    assert_int_equal(pc->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV);
    assert_int_equal(pc->connect_timeout->seconds, 0);
    assert_int_equal(pc->connect_timeout->nanos, 0);
    assert_non_null(pc->outlier_detection);
    assert_int_equal(pc->outlier_detection->consecutive_5xx->value, 2);
    protobuf_c_message_free_unpacked(&pc->base, NULL);

    rm_cp_cluster_t n = {0};
    n.name = strdup("c");
    rm_cp_snapshot_upsert_cluster(s, &n);
    assert_int_equal(s->num_clusters, 3);
    assert_string_equal(s->clusters[2].name, "c");

    assert_int_equal(rm_cp_snapshot_remove_cluster(s, "zzz", err, sizeof(err)), RM_CP_ENOENT);
    assert_int_equal(rm_cp_snapshot_remove_cluster(s, "", err, sizeof(err)), RM_CP_EINVAL);
    assert_int_equal(rm_cp_snapshot_remove_cluster(s, "a", err, sizeof(err)), RM_CP_OK);
    assert_int_equal(s->num_clusters, 2);
    assert_string_equal(s->clusters[0].name, "b");
    assert_null(rm_cp_snapshot_find_cluster(s, "a"));

    rm_cp_cluster_t bad = {0};
    assert_int_equal(rm_cp_cluster_check(&bad, err, sizeof(err)), RM_CP_EINVAL);
    bad.name = "x";
    bad.lb_policy = 4;
    assert_int_equal(rm_cp_cluster_check(&bad, err, sizeof(err)), RM_CP_EINVAL);
    assert_string_equal(err, "unknown lb_policy 4");
    rm_cp_snapshot_free(s);
}

static void test_render_equal(void **state)
{
    rm_cp_snapshot_t *a = parse_ok(brief_yaml), *b = parse_ok(brief_yaml);
    rm_cp_rendered_t *ra = rm_cp_snapshot_render(a), *rb = rm_cp_snapshot_render(b);
    assert_true(rm_cp_rendered_equal(ra, rb));
    rm_cp_rendered_free(rb);
    b->clusters[0].endpoints[1].health = 2;
    rb = rm_cp_snapshot_render(b);
    assert_false(rm_cp_rendered_equal(ra, rb));
    rm_cp_rendered_free(ra);
    rm_cp_rendered_free(rb);
    rm_cp_snapshot_free(a);
    rm_cp_snapshot_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_shape),
        cmocka_unit_test(test_defaults_and_empty),
        cmocka_unit_test(test_example_file_loads),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_render_cluster),
        cmocka_unit_test(test_render_cla_groups_priorities),
        cmocka_unit_test(test_passthrough_settings),
        cmocka_unit_test(test_errors_structure),
        cmocka_unit_test(test_errors_cluster_fields),
        cmocka_unit_test(test_errors_endpoints),
        cmocka_unit_test(test_errors_passthrough),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_endpoint_mutations),
        cmocka_unit_test(test_cluster_mutations),
        cmocka_unit_test(test_render_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
