/* The SotW xDS state machine driven by a fake stream: responses go in as serialized
 * DiscoveryResponses, the requests it produces are parsed back and checked field by field against
 * Envoy's xds_protocol rules (node on the first request, ACK/NACK versions and nonces, per-type
 * versions, EDS names following CDS, reconnects, ignored and malformed responses). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "xds/xds_client.h"
#include "xds/xds_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Service__Discovery__V3__DiscoveryRequest DiscoveryRequest;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse DiscoveryResponse;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Google__Protobuf__Any Any;

#define CDS_URL "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define EDS_URL "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

/* ---- building responses ---- */

typedef struct {
    const char *type_url;
    uint8_t *data;
    size_t len;
} res_t;

static res_t pack(const ProtobufCMessage *m, const char *type_url)
{
    res_t r = {type_url, NULL, protobuf_c_message_get_packed_size(m)};
    r.data = malloc(r.len ? r.len : 1);
    protobuf_c_message_pack(m, r.data);
    return r;
}

/* A STATIC cluster (no endpoints), or an EDS one over ADS when service is not NULL ("" = its name).
 * bad: connect_timeout 0s, which must be rejected. */
static res_t cluster(const char *name, const char *service, bool bad)
{
    Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig eds =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT;
    Envoy__Config__Core__V3__ConfigSource cs = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    Envoy__Config__Core__V3__AggregatedConfigSource ads =
        ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT;
    Google__Protobuf__Duration zero = GOOGLE__PROTOBUF__DURATION__INIT;
    c.name = (char *)name;
    if (service != NULL) {
        c.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
        c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
        cs.config_source_specifier_case = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
        cs.ads = &ads;
        eds.eds_config = &cs;
        eds.service_name = (char *)service;
        c.eds_cluster_config = &eds;
    }
    if (bad)
        c.connect_timeout = &zero;
    return pack(&c.base, CDS_URL);
}

/* A ClusterLoadAssignment with one endpoint 10.0.0.1:port (port 0 is invalid). */
static res_t cla(const char *name, uint32_t port)
{
    Envoy__Config__Core__V3__SocketAddress sa = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT;
    sa.address = "10.0.0.1";
    sa.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    sa.port_value = port;
    Envoy__Config__Core__V3__Address addr = ENVOY__CONFIG__CORE__V3__ADDRESS__INIT;
    addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    addr.socket_address = &sa;
    Envoy__Config__Endpoint__V3__Endpoint ep = ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT;
    ep.address = &addr;
    Envoy__Config__Endpoint__V3__LbEndpoint lbe = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT;
    lbe.host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    lbe.endpoint = &ep;
    Envoy__Config__Endpoint__V3__LbEndpoint *lbes[1] = {&lbe};
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints loc =
        ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT;
    loc.n_lb_endpoints = 1;
    loc.lb_endpoints = lbes;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *locs[1] = {&loc};
    Cla c = ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    c.cluster_name = (char *)name;
    c.n_endpoints = 1;
    c.endpoints = locs;
    return pack(&c.base, EDS_URL);
}

/* Serializes a DiscoveryResponse holding the given resources (which it frees). */
static res_t response(const char *type_url, const char *version, const char *nonce, res_t *res, size_t n)
{
    DiscoveryResponse r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
    Any anys[8];
    Any *ptrs[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        anys[i] = (Any)GOOGLE__PROTOBUF__ANY__INIT;
        anys[i].type_url = (char *)res[i].type_url;
        anys[i].value.data = res[i].data;
        anys[i].value.len = res[i].len;
        ptrs[i] = &anys[i];
    }
    r.type_url = (char *)type_url;
    r.version_info = (char *)version;
    r.nonce = (char *)nonce;
    r.n_resources = n;
    r.resources = ptrs;
    res_t out = pack(&r.base, type_url);
    for (size_t i = 0; i < n; i++)
        free(res[i].data);
    return out;
}

#define RESOURCES(...) ((res_t[]){__VA_ARGS__}), (sizeof((res_t[]){__VA_ARGS__}) / sizeof(res_t))
#define NO_RESOURCES   NULL, 0

/* Feeds a response; returns the verdict (out must be fini'ed by the caller). */
static rm_xds_verdict_t feed(rm_xds_state_t *s, res_t resp, rm_xds_output_t *out)
{
    rm_xds_output_init(out);
    assert_int_equal(rm_xds_state_on_response(s, resp.data, resp.len, out), 0);
    free(resp.data);
    return out->verdict;
}

/* ---- checking requests ---- */

typedef struct {
    const char *type_url;
    const char *version;
    const char *nonce;
    const char *names; /* space-separated, "" = none */
    bool node;
    const char *nack; /* substring of error_detail.message, NULL = ACK/subscription */
} want_t;

static void check_request(const rm_xds_output_t *out, size_t i, want_t w)
{
    assert_true(i < out->num_requests);
    DiscoveryRequest *r = envoy__service__discovery__v3__discovery_request__unpack(NULL, out->requests[i].len,
                                                                                   out->requests[i].data);
    assert_non_null(r);
    assert_string_equal(r->type_url, w.type_url);
    assert_int_equal(out->requests[i].type, strcmp(w.type_url, CDS_URL) == 0 ? RM_XDS_CDS : RM_XDS_EDS);
    assert_string_equal(r->version_info, w.version);
    assert_string_equal(r->response_nonce, w.nonce);
    char names[256] = "";
    for (size_t k = 0; k < r->n_resource_names; k++)
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", k ? " " : "",
                 r->resource_names[k]);
    assert_string_equal(names, w.names);
    if (w.node) {
        assert_non_null(r->node);
        assert_string_equal(r->node->id, "sidecar-1");
        assert_string_equal(r->node->cluster, "web");
        assert_string_equal(r->node->user_agent_name, "remora");
    } else {
        assert_null(r->node);
    }
    if (w.nack != NULL) {
        assert_non_null(r->error_detail);
        assert_int_equal(r->error_detail->code, 3); /* INVALID_ARGUMENT */
        if (strstr(r->error_detail->message, w.nack) == NULL)
            fail_msg("NACK message \"%s\" does not contain \"%s\"", r->error_detail->message, w.nack);
    } else {
        assert_null(r->error_detail);
    }
    envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
}

/* ---- fixtures ---- */

static const char *const statics[] = {"xds", "local"};

static rm_xds_state_t *ads_state(const char *const *static_eds, size_t n_static_eds)
{
    rm_xds_state_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.node_id = "sidecar-1";
    cfg.node_cluster = "web";
    cfg.carries[RM_XDS_CDS] = true;
    cfg.carries[RM_XDS_EDS] = true;
    cfg.convert.ads = true;
    cfg.static_clusters = statics;
    cfg.num_static_clusters = 2;
    cfg.static_eds_names = static_eds;
    cfg.num_static_eds_names = n_static_eds;
    return rm_xds_state_create(&cfg);
}

static rm_xds_state_t *started(rm_xds_state_t *s)
{
    rm_xds_output_t out;
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(s, &out);
    rm_xds_output_fini(&out);
    return s;
}

/* ---- tests ---- */

static void test_first_request_carries_node(void **state)
{
    rm_xds_state_t *s = ads_state(NULL, 0);
    rm_xds_output_t out;
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(s, &out);
    /* CDS is a wildcard subscription; with no EDS cluster yet, no EDS request (an empty one would be
     * a wildcard too). */
    assert_int_equal(out.num_requests, 1);
    assert_int_equal(out.verdict, RM_XDS_NONE);
    check_request(&out, 0, (want_t){CDS_URL, "", "", "", true, NULL});
    rm_xds_output_fini(&out);

    /* The ACK of the first response is not the first request: no node. */
    feed(s, response(CDS_URL, "1", "n1", RESOURCES(cluster("a", NULL, false))), &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    assert_int_equal(out.num_requests, 1);
    check_request(&out, 0, (want_t){CDS_URL, "1", "n1", "", false, NULL});
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

static void test_ack_delivers_full_set(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;
    feed(
        s,
        response(CDS_URL, "v1", "n1",
                 RESOURCES(cluster("a", NULL, false), cluster("b", "", false), cluster("c", "svc-c", false))),
        &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    assert_int_equal(out.type, RM_XDS_CDS);
    assert_string_equal(out.version, "v1");
    assert_true(out.has_clusters);
    assert_int_equal(out.num_clusters, 3);
    assert_string_equal(out.clusters[0].name, "a");
    assert_int_equal(out.clusters[1].type, RM_CLUSTER_EDS);
    assert_string_equal(out.clusters[1].eds_service_name, "b");
    assert_string_equal(out.clusters[2].eds_service_name, "svc-c");
    /* ACK first, then the EDS subscription the new clusters need (sorted names). */
    assert_int_equal(out.num_requests, 2);
    check_request(&out, 0, (want_t){CDS_URL, "v1", "n1", "", false, NULL});
    check_request(&out, 1, (want_t){EDS_URL, "", "", "b svc-c", false, NULL});
    assert_true(out.eds_names_changed);
    assert_string_equal(rm_xds_state_version(s, RM_XDS_CDS), "v1");
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

static void test_nack_keeps_last_accepted_version(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;

    /* A NACK before anything was accepted carries the empty version. */
    feed(s, response(CDS_URL, "v0", "n0", RESOURCES(cluster("a", NULL, true))), &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    check_request(&out, 0,
                  (want_t){CDS_URL, "", "n0", "", false, "cluster 'a': connect_timeout: must be > 0"});
    assert_string_equal(out.error, "cluster 'a': connect_timeout: must be > 0");
    rm_xds_output_fini(&out);

    feed(s, response(CDS_URL, "v1", "n1", RESOURCES(cluster("a", NULL, false))), &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    rm_xds_output_fini(&out);

    /* All or nothing: one bad cluster rejects the response; no update is produced. */
    feed(s, response(CDS_URL, "v2", "n2", RESOURCES(cluster("a", NULL, false), cluster("b", "", true))),
         &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    assert_false(out.has_clusters);
    assert_null(out.clusters);
    assert_null(out.version);
    assert_false(out.eds_names_changed);
    assert_int_equal(out.num_requests, 1);
    check_request(&out, 0,
                  (want_t){CDS_URL, "v1", "n2", "", false, "cluster 'b': connect_timeout: must be > 0"});
    assert_string_equal(rm_xds_state_version(s, RM_XDS_CDS), "v1");
    rm_xds_output_fini(&out);

    /* The next good version is ACKed normally. */
    feed(s, response(CDS_URL, "v3", "n3", RESOURCES(cluster("a", NULL, false), cluster("b", "", false))),
         &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    check_request(&out, 0, (want_t){CDS_URL, "v3", "n3", "", false, NULL});
    check_request(&out, 1, (want_t){EDS_URL, "", "", "b", false, NULL});
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

static void test_cds_rejections(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;
    feed(s, response(CDS_URL, "v1", "n1", RESOURCES(cluster("a", NULL, false), cluster("a", NULL, false))),
         &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    assert_string_equal(out.error, "cluster 'a': name: duplicate (resources[0] and resources[1])");
    rm_xds_output_fini(&out);

    feed(s, response(CDS_URL, "v1", "n2", RESOURCES(cluster("local", NULL, false))), &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    assert_string_equal(
        out.error,
        "cluster 'local': name: a static cluster of the bootstrap has this name (CDS cannot replace it)");
    rm_xds_output_fini(&out);

    res_t wrong = cla("a", 80);
    feed(s, response(CDS_URL, "v1", "n3", &wrong, 1), &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    assert_string_equal(out.error, "resources[0]: type_url 'type.googleapis.com/envoy.config.endpoint.v3."
                                   "ClusterLoadAssignment' does not match the response's type " CDS_URL);
    check_request(&out, 0, (want_t){CDS_URL, "", "n3", "", false, "does not match"});
    rm_xds_output_fini(&out);

    /* A resource that is not a Cluster at all. */
    res_t junk = {CDS_URL, malloc(3), 3};
    memcpy(junk.data, "\x0a\x10x", 3);
    feed(s, response(CDS_URL, "v1", "n4", &junk, 1), &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    assert_string_equal(out.error, "cluster: not a valid serialized envoy.config.cluster.v3.Cluster");
    rm_xds_output_fini(&out);
    assert_string_equal(rm_xds_state_version(s, RM_XDS_CDS), "");
    rm_xds_state_destroy(s);
}

static void test_cluster_removal(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;
    feed(s, response(CDS_URL, "v1", "n1", RESOURCES(cluster("a", NULL, false), cluster("b", NULL, false))),
         &out);
    assert_int_equal(out.num_clusters, 2);
    rm_xds_output_fini(&out);
    /* SotW: the response is the whole set; b is gone. */
    feed(s, response(CDS_URL, "v2", "n2", RESOURCES(cluster("a", NULL, false))), &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    assert_true(out.has_clusters);
    assert_int_equal(out.num_clusters, 1);
    assert_string_equal(out.clusters[0].name, "a");
    rm_xds_output_fini(&out);
    /* An empty response removes every dynamic cluster. */
    feed(s, response(CDS_URL, "v3", "n3", NO_RESOURCES), &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    assert_true(out.has_clusters);
    assert_int_equal(out.num_clusters, 0);
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

static void test_eds_follows_cds(void **state)
{
    static const char *const static_eds[] = {"static-svc"};
    rm_xds_state_t *s = ads_state(static_eds, 1);
    rm_xds_output_t out;
    /* Static EDS clusters are subscribed from the first request on. */
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(s, &out);
    assert_int_equal(out.num_requests, 2);
    check_request(&out, 0, (want_t){CDS_URL, "", "", "", true, NULL});
    check_request(&out, 1, (want_t){EDS_URL, "", "", "static-svc", false, NULL});
    rm_xds_output_fini(&out);

    feed(s, response(CDS_URL, "1", "c1", RESOURCES(cluster("a", "", false))), &out);
    check_request(&out, 1, (want_t){EDS_URL, "", "", "a static-svc", false, NULL});
    rm_xds_output_fini(&out);
    feed(s, response(CDS_URL, "2", "c2", RESOURCES(cluster("a", "", false), cluster("b", "", false))), &out);
    check_request(&out, 1, (want_t){EDS_URL, "", "", "a b static-svc", false, NULL});
    rm_xds_output_fini(&out);
    /* A change that does not touch EDS clusters sends no EDS request. */
    feed(s,
         response(CDS_URL, "3", "c3",
                  RESOURCES(cluster("a", "", false), cluster("b", "", false), cluster("plain", NULL, false))),
         &out);
    assert_int_equal(out.num_requests, 1);
    assert_false(out.eds_names_changed);
    rm_xds_output_fini(&out);
    /* Two clusters sharing a service name subscribe to it once; a removed cluster's name goes. */
    feed(s, response(CDS_URL, "4", "c4", RESOURCES(cluster("b", "", false), cluster("b2", "b", false))),
         &out);
    check_request(&out, 1, (want_t){EDS_URL, "", "", "b static-svc", false, NULL});
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);

    /* Without static EDS clusters, losing the last EDS cluster sends an empty list: it withdraws the
     * names sent before on this stream. */
    s = started(ads_state(NULL, 0));
    feed(s, response(CDS_URL, "1", "c1", RESOURCES(cluster("a", "", false))), &out);
    check_request(&out, 1, (want_t){EDS_URL, "", "", "a", false, NULL});
    rm_xds_output_fini(&out);
    feed(s, response(CDS_URL, "2", "c2", RESOURCES(cluster("p", NULL, false))), &out);
    assert_int_equal(out.num_requests, 2);
    check_request(&out, 1, (want_t){EDS_URL, "", "", "", false, NULL});
    rm_xds_output_fini(&out);
    /* Nothing subscribed: EDS responses are ignored without an ACK. */
    feed(s, response(EDS_URL, "e1", "x", RESOURCES(cla("a", 80))), &out);
    assert_int_equal(out.verdict, RM_XDS_IGNORED);
    assert_int_equal(out.num_requests, 0);
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

static void test_eds_updates_only_what_it_contains(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;
    feed(s, response(CDS_URL, "1", "c1", RESOURCES(cluster("a", "", false), cluster("b", "", false))), &out);
    rm_xds_output_fini(&out);

    feed(s, response(EDS_URL, "e1", "d1", RESOURCES(cla("a", 80), cla("b", 81))), &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    assert_int_equal(out.type, RM_XDS_EDS);
    assert_true(out.has_assignments);
    assert_int_equal(out.num_clas, 2);
    assert_string_equal(out.clas[0].cluster_name, "a");
    assert_int_equal(out.clas[1].endpoints[0].address.port, 81);
    check_request(&out, 0, (want_t){EDS_URL, "e1", "d1", "a b", false, NULL});
    rm_xds_output_fini(&out);

    /* b is missing: it keeps its assignment (only a is delivered); "zzz" was not requested: ignored. */
    feed(s, response(EDS_URL, "e2", "d2", RESOURCES(cla("a", 90), cla("zzz", 1))), &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    assert_int_equal(out.num_clas, 1);
    assert_string_equal(out.clas[0].cluster_name, "a");
    assert_int_equal(out.clas[0].endpoints[0].address.port, 90);
    check_request(&out, 0, (want_t){EDS_URL, "e2", "d2", "a b", false, NULL});
    rm_xds_output_fini(&out);

    /* An empty EDS response is a no-op, still ACKed. */
    feed(s, response(EDS_URL, "e3", "d3", NO_RESOURCES), &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    assert_int_equal(out.num_clas, 0);
    assert_null(out.clas);
    rm_xds_output_fini(&out);

    /* One bad assignment rejects the response; duplicates too. */
    feed(s, response(EDS_URL, "e4", "d4", RESOURCES(cla("a", 91), cla("b", 0))), &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    assert_false(out.has_assignments);
    check_request(&out, 0, (want_t){EDS_URL, "e3", "d4", "a b", false, "cluster_load_assignment 'b': "});
    rm_xds_output_fini(&out);
    feed(s, response(EDS_URL, "e5", "d5", RESOURCES(cla("a", 91), cla("a", 92))), &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    assert_string_equal(
        out.error, "cluster_load_assignment 'a': cluster_name: duplicate (resources[0] and resources[1])");
    rm_xds_output_fini(&out);
    assert_string_equal(rm_xds_state_version(s, RM_XDS_EDS), "e3");
    rm_xds_state_destroy(s);
}

static void test_versions_are_per_type(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;
    feed(s, response(CDS_URL, "c-1", "n1", RESOURCES(cluster("a", "", false))), &out);
    rm_xds_output_fini(&out);
    feed(s, response(EDS_URL, "e-1", "n2", RESOURCES(cla("a", 80))), &out);
    check_request(&out, 0, (want_t){EDS_URL, "e-1", "n2", "a", false, NULL});
    rm_xds_output_fini(&out);
    /* A CDS NACK carries the CDS version, not the EDS one. */
    feed(s, response(CDS_URL, "c-2", "n3", RESOURCES(cluster("a", "", true))), &out);
    check_request(&out, 0, (want_t){CDS_URL, "c-1", "n3", "", false, "must be > 0"});
    rm_xds_output_fini(&out);
    /* An EDS NACK carries the EDS version. */
    feed(s, response(EDS_URL, "e-2", "n4", RESOURCES(cla("a", 0))), &out);
    check_request(&out, 0, (want_t){EDS_URL, "e-1", "n4", "a", false, "port_value"});
    rm_xds_output_fini(&out);
    assert_string_equal(rm_xds_state_version(s, RM_XDS_CDS), "c-1");
    assert_string_equal(rm_xds_state_version(s, RM_XDS_EDS), "e-1");
    rm_xds_state_destroy(s);
}

static void test_reconnect_resends_versions_and_names(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;
    feed(s, response(CDS_URL, "c-7", "n1", RESOURCES(cluster("a", "", false), cluster("b", "svc", false))),
         &out);
    rm_xds_output_fini(&out);
    feed(s, response(EDS_URL, "e-3", "n2", RESOURCES(cla("a", 80))), &out);
    rm_xds_output_fini(&out);

    rm_xds_state_stream_end(s);
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(s, &out);
    /* A new stream: node again, accepted versions, current names, no nonce (nonces are per stream). */
    assert_int_equal(out.num_requests, 2);
    check_request(&out, 0, (want_t){CDS_URL, "c-7", "", "", true, NULL});
    check_request(&out, 1, (want_t){EDS_URL, "e-3", "", "a svc", false, NULL});
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

static void test_nonces(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;
    /* Responses that arrive back to back are each answered with their own nonce. */
    feed(s, response(CDS_URL, "1", "n1", RESOURCES(cluster("a", "", false))), &out);
    check_request(&out, 0, (want_t){CDS_URL, "1", "n1", "", false, NULL});
    rm_xds_output_fini(&out);
    feed(s, response(CDS_URL, "2", "n2", RESOURCES(cluster("a", "", false))), &out);
    check_request(&out, 0, (want_t){CDS_URL, "2", "n2", "", false, NULL});
    rm_xds_output_fini(&out);
    feed(s, response(EDS_URL, "e1", "d1", RESOURCES(cla("a", 80))), &out);
    rm_xds_output_fini(&out);
    /* A subscription change carries the latest nonce of its own type (d1), never the CDS one (n3):
     * a request with an older nonce would be stale to the server. */
    feed(s, response(CDS_URL, "3", "n3", RESOURCES(cluster("a", "", false), cluster("b", "", false))), &out);
    check_request(&out, 0, (want_t){CDS_URL, "3", "n3", "", false, NULL});
    check_request(&out, 1, (want_t){EDS_URL, "e1", "d1", "a b", false, NULL});
    rm_xds_output_fini(&out);
    /* Before any EDS response on a new stream, EDS requests carry no nonce. */
    rm_xds_state_stream_end(s);
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(s, &out);
    check_request(&out, 1, (want_t){EDS_URL, "e1", "", "a b", false, NULL});
    rm_xds_output_fini(&out);
    feed(s, response(CDS_URL, "4", "m1", RESOURCES(cluster("b", "", false))), &out);
    check_request(&out, 0, (want_t){CDS_URL, "4", "m1", "", false, NULL});
    check_request(&out, 1, (want_t){EDS_URL, "e1", "", "b", false, NULL});
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

static void test_ignored_and_malformed(void **state)
{
    rm_xds_state_t *s = started(ads_state(NULL, 0));
    rm_xds_output_t out;
    feed(s, response("type.googleapis.com/envoy.config.listener.v3.Listener", "1", "n", NO_RESOURCES), &out);
    assert_int_equal(out.verdict, RM_XDS_IGNORED);
    assert_int_equal(out.num_requests, 0);
    assert_string_equal(out.error,
                        "type_url 'type.googleapis.com/envoy.config.listener.v3.Listener' is not subscribed");
    rm_xds_output_fini(&out);

    const uint8_t junk[] = {0x12, 0x05, 0x01};
    rm_xds_output_init(&out);
    assert_int_equal(rm_xds_state_on_response(s, junk, sizeof(junk), &out), -1);
    assert_int_equal(out.num_requests, 0);
    assert_non_null(strstr(out.error, "not a valid serialized envoy.service.discovery.v3.DiscoveryResponse"));
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

/* Without ADS: one state per stream; the CDS one derives the EDS names, the EDS one subscribes. */
static void test_separate_streams(void **state)
{
    rm_xds_state_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.node_id = "sidecar-1";
    cfg.node_cluster = "web";
    cfg.convert.ads = false;
    cfg.convert.grpc_cluster = "xds";
    cfg.carries[RM_XDS_CDS] = true;
    rm_xds_state_t *cds = started(rm_xds_state_create(&cfg));
    cfg.carries[RM_XDS_CDS] = false;
    cfg.carries[RM_XDS_EDS] = true;
    rm_xds_state_t *eds = rm_xds_state_create(&cfg);

    rm_xds_output_t out;
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(eds, &out);
    assert_int_equal(out.num_requests, 0); /* nothing to subscribe to yet */
    rm_xds_output_fini(&out);

    /* An ADS-style eds_config is rejected on a CDS-only stream. */
    feed(cds, response(CDS_URL, "1", "n1", RESOURCES(cluster("a", "", false))), &out);
    assert_int_equal(out.verdict, RM_XDS_REJECTED);
    assert_non_null(strstr(out.error, "this proxy does not use ADS"));
    rm_xds_output_fini(&out);

    /* The CDS stream does not answer EDS responses. */
    feed(cds, response(EDS_URL, "1", "n1", RESOURCES(cla("a", 80))), &out);
    assert_int_equal(out.verdict, RM_XDS_IGNORED);
    rm_xds_output_fini(&out);

    Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig ec =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT;
    Envoy__Config__Core__V3__ConfigSource cs = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    Envoy__Config__Core__V3__ApiConfigSource api = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__INIT;
    Envoy__Config__Core__V3__GrpcService g = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__INIT;
    Envoy__Config__Core__V3__GrpcService *gs[1] = {&g};
    Envoy__Config__Core__V3__GrpcService__EnvoyGrpc eg =
        ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__ENVOY_GRPC__INIT;
    eg.cluster_name = "xds";
    g.target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    g.envoy_grpc = &eg;
    api.api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
    api.transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    api.n_grpc_services = 1;
    api.grpc_services = gs;
    cs.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
    cs.api_config_source = &api;
    ec.eds_config = &cs;
    c.name = "a";
    c.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    c.eds_cluster_config = &ec;
    res_t r = pack(&c.base, CDS_URL);
    feed(cds, response(CDS_URL, "1", "n2", &r, 1), &out);
    assert_int_equal(out.verdict, RM_XDS_ACCEPTED);
    assert_int_equal(out.num_requests, 1); /* the CDS stream never sends EDS requests */
    assert_true(out.eds_names_changed);
    rm_xds_output_fini(&out);

    size_t n;
    const char *const *names = rm_xds_state_eds_names(cds, &n);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "a");
    rm_xds_output_init(&out);
    rm_xds_state_set_eds_names(eds, names, n, &out);
    assert_int_equal(out.num_requests, 1);
    /* The stream start sent nothing, so this is the stream's first request: it carries the node. */
    check_request(&out, 0, (want_t){EDS_URL, "", "", "a", true, NULL});
    rm_xds_output_fini(&out);
    /* And a new stream subscribes at once. */
    rm_xds_state_stream_end(eds);
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(eds, &out);
    check_request(&out, 0, (want_t){EDS_URL, "", "", "a", true, NULL});
    rm_xds_output_fini(&out);
    /* The same names again change nothing. */
    rm_xds_output_init(&out);
    rm_xds_state_set_eds_names(eds, names, n, &out);
    assert_int_equal(out.num_requests, 0);
    rm_xds_output_fini(&out);
    /* While the stream is down, a change waits for the next start. */
    rm_xds_state_stream_end(eds);
    rm_xds_output_init(&out);
    rm_xds_state_set_eds_names(eds, NULL, 0, &out);
    assert_int_equal(out.num_requests, 0);
    rm_xds_state_stream_start(eds, &out);
    assert_int_equal(out.num_requests, 0);
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(cds);
    rm_xds_state_destroy(eds);
}

static void test_version_stat(void **state)
{
    /* Reference values of xxHash64 with seed 0. */
    assert_true(rm_xds_xxhash64("", 0) == 0xEF46DB3751D8E999ull);
    assert_true(rm_xds_xxhash64("a", 1) == 0xD24EC4F1A98C6E5Bull);
    assert_true(rm_xds_xxhash64("abc", 3) == 0x44BC2CF5AD770999ull);
    const char *long_text = "Nobody inspects the spammish repetition";
    assert_true(rm_xds_xxhash64(long_text, strlen(long_text)) == 0xFBCEA83C8A378BF1ull);
    assert_int_equal(rm_xds_version_stat("42"), 42);
    assert_int_equal(rm_xds_version_stat("0"), 0);
    assert_true(rm_xds_version_stat("18446744073709551615") == UINT64_MAX);
    assert_true(rm_xds_version_stat("18446744073709551616") == rm_xds_xxhash64("18446744073709551616", 20));
    assert_true(rm_xds_version_stat("v1") == rm_xds_xxhash64("v1", 2));
    assert_true(rm_xds_version_stat("007") == rm_xds_xxhash64("007", 3));
    assert_true(rm_xds_version_stat("") == rm_xds_xxhash64("", 0));
}

static void test_backoff(void **state)
{
    rm_xds_backoff_t b;
    rm_xds_backoff_init(&b, 500, 30000);
    uint64_t interval = 500;
    for (int i = 0; i < 20; i++) {
        uint64_t lo = rm_xds_backoff_next(&b, 0);
        assert_int_equal(lo, interval / 2);
        interval = interval * 2 > 30000 ? 30000 : interval * 2;
    }
    assert_int_equal(b.interval_ms, 30000);
    /* The top of the range is reachable and never exceeded. */
    assert_int_equal(rm_xds_backoff_next(&b, 15000), 30000);
    assert_int_equal(rm_xds_backoff_next(&b, 15001), 15000);
    for (uint64_t r = 0; r < 100000; r += 997) {
        uint64_t d = rm_xds_backoff_next(&b, r * 0x9E3779B97F4A7C15ull);
        assert_true(d >= 15000 && d <= 30000);
    }
    rm_xds_backoff_reset(&b);
    uint64_t d = rm_xds_backoff_next(&b, 123456789);
    assert_true(d >= 250 && d <= 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_request_carries_node),
        cmocka_unit_test(test_ack_delivers_full_set),
        cmocka_unit_test(test_nack_keeps_last_accepted_version),
        cmocka_unit_test(test_cds_rejections),
        cmocka_unit_test(test_cluster_removal),
        cmocka_unit_test(test_eds_follows_cds),
        cmocka_unit_test(test_eds_updates_only_what_it_contains),
        cmocka_unit_test(test_versions_are_per_type),
        cmocka_unit_test(test_reconnect_resends_versions_and_names),
        cmocka_unit_test(test_nonces),
        cmocka_unit_test(test_ignored_and_malformed),
        cmocka_unit_test(test_separate_streams),
        cmocka_unit_test(test_version_stat),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
