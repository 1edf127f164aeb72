/* The xDS client end to end against a scripted in-process gRPC server (grpc C core, 127.0.0.1, port
 * 0): it connects, subscribes, delivers accepted updates on the consumer's event loop, ACKs and NACKs,
 * and reconnects with the accepted versions after the server ends the stream. Every wait is on a
 * condition (a request seen by the server, a callback run by the consumer's loop) with a generous
 * watchdog that fails the test instead of hanging; nothing waits a fixed time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config/bootstrap.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "xds/xds_client.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef Envoy__Service__Discovery__V3__DiscoveryRequest DiscoveryRequest;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse DiscoveryResponse;

#define CDS_URL      "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define EDS_URL      "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define WATCHDOG_S   20
#define MAX_CALLS    16
#define MAX_REQUESTS 128

/* ---- a scripted control plane ---- */

typedef enum { T_NEW_CALL, T_RECV, T_CLOSED, T_SEND, T_STATUS, T_META, T_SHUTDOWN } srv_tag_kind_t;

typedef struct fake_call fake_call_t;
typedef struct fake_cp fake_cp_t;

typedef struct {
    fake_call_t *call; /* NULL for server-level tags */
    srv_tag_kind_t kind;
} srv_tag_t;

struct fake_call {
    fake_cp_t *cp;
    int index;
    char method[128];
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *recv;
    int cancelled;
    unsigned pending;
    bool closed, send_busy;
    srv_tag_t tags[T_SHUTDOWN + 1];
};

struct fake_cp {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fake_call_t *calls[MAX_CALLS];
    int num_calls;
    fake_call_t *accepting; /* the call slot waiting for grpc_server_request_call */
    DiscoveryRequest *reqs[MAX_REQUESTS];
    int req_call[MAX_REQUESTS];
    int num_reqs;
    srv_tag_t shutdown_tag;
    bool shut;
};

static struct timespec watchdog_deadline(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WATCHDOG_S;
    return ts;
}

/* mu held. */
static void cp_start(fake_call_t *fc, grpc_op *ops, size_t n, srv_tag_kind_t kind)
{
    assert_int_equal(grpc_call_start_batch(fc->call, ops, n, &fc->tags[kind], NULL), GRPC_CALL_OK);
    fc->pending++;
}

/* mu held. */
static void cp_accept_next(fake_cp_t *cp)
{
    fake_call_t *fc = calloc(1, sizeof(*fc));
    fc->cp = cp;
    for (int k = 0; k <= T_SHUTDOWN; k++)
        fc->tags[k] = (srv_tag_t){fc, (srv_tag_kind_t)k};
    grpc_call_details_init(&fc->details);
    grpc_metadata_array_init(&fc->md);
    cp->accepting = fc;
    assert_int_equal(grpc_server_request_call(cp->server, &fc->call, &fc->details, &fc->md, cp->cq, cp->cq,
                                              &fc->tags[T_NEW_CALL]),
                     GRPC_CALL_OK);
}

static void cp_free_call(fake_call_t *fc)
{
    if (fc->call != NULL)
        grpc_call_unref(fc->call);
    grpc_call_details_destroy(&fc->details);
    grpc_metadata_array_destroy(&fc->md);
    free(fc);
}

static void *cp_run(void *arg)
{
    fake_cp_t *cp = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cp->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        srv_tag_t *t = ev.tag;
        pthread_mutex_lock(&cp->mu);
        fake_call_t *fc = t->call;
        if (t->kind == T_SHUTDOWN) {
            cp->shut = true;
            grpc_completion_queue_shutdown(cp->cq);
        } else if (t->kind == T_NEW_CALL) {
            if (!ev.success) { /* the server is shutting down */
                cp_free_call(fc);
                cp->accepting = NULL;
            } else {
                char *m = grpc_slice_to_c_string(fc->details.method);
                snprintf(fc->method, sizeof(fc->method), "%s", m);
                gpr_free(m);
                assert_true(cp->num_calls < MAX_CALLS);
                fc->index = cp->num_calls;
                cp->calls[cp->num_calls++] = fc;
                grpc_op op;
                memset(&op, 0, sizeof(op));
                op.op = GRPC_OP_SEND_INITIAL_METADATA;
                cp_start(fc, &op, 1, T_META);
                memset(&op, 0, sizeof(op));
                op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
                op.data.recv_close_on_server.cancelled = &fc->cancelled;
                cp_start(fc, &op, 1, T_CLOSED);
                memset(&op, 0, sizeof(op));
                op.op = GRPC_OP_RECV_MESSAGE;
                op.data.recv_message.recv_message = &fc->recv;
                cp_start(fc, &op, 1, T_RECV);
                cp_accept_next(cp);
            }
        } else {
            fc->pending--;
            if (t->kind == T_RECV && fc->recv != NULL) {
                grpc_byte_buffer_reader r;
                assert_true(grpc_byte_buffer_reader_init(&r, fc->recv));
                grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
                grpc_byte_buffer_reader_destroy(&r);
                grpc_byte_buffer_destroy(fc->recv);
                fc->recv = NULL;
                DiscoveryRequest *req = envoy__service__discovery__v3__discovery_request__unpack(
                    NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
                grpc_slice_unref(sl);
                assert_non_null(req);
                assert_true(cp->num_reqs < MAX_REQUESTS);
                cp->reqs[cp->num_reqs] = req;
                cp->req_call[cp->num_reqs++] = fc->index;
                if (!fc->closed) {
                    grpc_op op;
                    memset(&op, 0, sizeof(op));
                    op.op = GRPC_OP_RECV_MESSAGE;
                    op.data.recv_message.recv_message = &fc->recv;
                    cp_start(fc, &op, 1, T_RECV);
                }
            } else if (t->kind == T_CLOSED) {
                fc->closed = true;
            } else if (t->kind == T_SEND) {
                fc->send_busy = false;
            }
        }
        pthread_cond_broadcast(&cp->cv);
        pthread_mutex_unlock(&cp->mu);
    }
    return NULL;
}

static fake_cp_t *cp_create(void)
{
    fake_cp_t *cp = calloc(1, sizeof(*cp));
    pthread_mutex_init(&cp->mu, NULL);
    pthread_cond_init(&cp->cv, NULL);
    cp->cq = grpc_completion_queue_create_for_next(NULL);
    cp->server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(cp->server, cp->cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    cp->port = grpc_server_add_http2_port(cp->server, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    assert_true(cp->port > 0);
    grpc_server_start(cp->server);
    pthread_mutex_lock(&cp->mu);
    cp_accept_next(cp);
    pthread_mutex_unlock(&cp->mu);
    assert_int_equal(pthread_create(&cp->thread, NULL, cp_run, cp), 0);
    return cp;
}

static void cp_destroy(fake_cp_t *cp)
{
    cp->shutdown_tag = (srv_tag_t){NULL, T_SHUTDOWN};
    grpc_server_shutdown_and_notify(cp->server, cp->cq, &cp->shutdown_tag);
    grpc_server_cancel_all_calls(cp->server);
    pthread_join(cp->thread, NULL);
    for (int i = 0; i < cp->num_calls; i++)
        cp_free_call(cp->calls[i]);
    if (cp->accepting != NULL)
        cp_free_call(cp->accepting);
    grpc_server_destroy(cp->server);
    grpc_completion_queue_destroy(cp->cq);
    for (int i = 0; i < cp->num_reqs; i++)
        envoy__service__discovery__v3__discovery_request__free_unpacked(cp->reqs[i], NULL);
    pthread_mutex_destroy(&cp->mu);
    pthread_cond_destroy(&cp->cv);
    free(cp);
}

/* Waits until the server has seen request number n (0-based, over all calls) and returns it. */
static const DiscoveryRequest *cp_wait_request(fake_cp_t *cp, int n, int *call_index)
{
    struct timespec deadline = watchdog_deadline();
    pthread_mutex_lock(&cp->mu);
    while (cp->num_reqs <= n)
        if (pthread_cond_timedwait(&cp->cv, &cp->mu, &deadline) == ETIMEDOUT)
            fail_msg("watchdog: the server never received request #%d", n);
    const DiscoveryRequest *r = cp->reqs[n];
    if (call_index != NULL)
        *call_index = cp->req_call[n];
    pthread_mutex_unlock(&cp->mu);
    return r;
}

static const char *cp_method(fake_cp_t *cp, int call_index)
{
    pthread_mutex_lock(&cp->mu);
    const char *m = cp->calls[call_index]->method;
    pthread_mutex_unlock(&cp->mu);
    return m;
}

/* Sends one DiscoveryResponse on a call and waits until grpc has taken it. */
static void cp_send(fake_cp_t *cp, int call_index, const char *type_url, const char *version,
                    const char *nonce, ProtobufCMessage **resources, size_t n)
{
    Google__Protobuf__Any anys[4], *ptrs[4];
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++) {
        anys[i] = (Google__Protobuf__Any)GOOGLE__PROTOBUF__ANY__INIT;
        anys[i].type_url = (char *)type_url;
        anys[i].value.len = protobuf_c_message_get_packed_size(resources[i]);
        anys[i].value.data = malloc(anys[i].value.len + 1);
        protobuf_c_message_pack(resources[i], anys[i].value.data);
        ptrs[i] = &anys[i];
    }
    DiscoveryResponse r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
    r.type_url = (char *)type_url;
    r.version_info = (char *)version;
    r.nonce = (char *)nonce;
    r.n_resources = n;
    r.resources = ptrs;
    size_t len = envoy__service__discovery__v3__discovery_response__get_packed_size(&r);
    uint8_t *buf = malloc(len + 1);
    envoy__service__discovery__v3__discovery_response__pack(&r, buf);
    for (size_t i = 0; i < n; i++)
        free(anys[i].value.data);
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)buf, len);
    free(buf);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);

    struct timespec deadline = watchdog_deadline();
    pthread_mutex_lock(&cp->mu);
    fake_call_t *fc = cp->calls[call_index];
    assert_false(fc->send_busy);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    fc->send_busy = true;
    cp_start(fc, &op, 1, T_SEND);
    while (fc->send_busy)
        if (pthread_cond_timedwait(&cp->cv, &cp->mu, &deadline) == ETIMEDOUT)
            fail_msg("watchdog: send did not complete");
    pthread_mutex_unlock(&cp->mu);
    grpc_byte_buffer_destroy(bb);
}

/* Ends a call with a status, as a server going away would. */
static void cp_end_call(fake_cp_t *cp, int call_index)
{
    pthread_mutex_lock(&cp->mu);
    fake_call_t *fc = cp->calls[call_index];
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = GRPC_STATUS_UNAVAILABLE;
    grpc_slice details = grpc_slice_from_static_string("going away");
    op.data.send_status_from_server.status_details = &details;
    cp_start(fc, &op, 1, T_STATUS);
    pthread_mutex_unlock(&cp->mu);
}

/* ---- resources ---- */

typedef struct {
    Envoy__Config__Cluster__V3__Cluster c;
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig eds;
    Envoy__Config__Core__V3__ConfigSource cs;
    Envoy__Config__Core__V3__AggregatedConfigSource ads;
    Envoy__Config__Core__V3__ApiConfigSource api;
    Envoy__Config__Core__V3__GrpcService g, *gs[1];
    Envoy__Config__Core__V3__GrpcService__EnvoyGrpc eg;
    Google__Protobuf__Duration zero;
} cluster_pb_t;

/* An EDS cluster getting its endpoints over ADS (ads) or from the "xds" cluster; bad: connect_timeout 0. */
static ProtobufCMessage *eds_cluster(cluster_pb_t *p, const char *name, bool ads, bool bad)
{
    memset(p, 0, sizeof(*p));
    p->c = (Envoy__Config__Cluster__V3__Cluster)ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    p->eds = (Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig)
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT;
    p->cs = (Envoy__Config__Core__V3__ConfigSource)ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    p->ads = (Envoy__Config__Core__V3__AggregatedConfigSource)
        ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT;
    p->api = (Envoy__Config__Core__V3__ApiConfigSource)ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__INIT;
    p->g = (Envoy__Config__Core__V3__GrpcService)ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__INIT;
    p->eg = (Envoy__Config__Core__V3__GrpcService__EnvoyGrpc)
        ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__ENVOY_GRPC__INIT;
    p->zero = (Google__Protobuf__Duration)GOOGLE__PROTOBUF__DURATION__INIT;
    p->c.name = (char *)name;
    p->c.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    p->c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    p->c.eds_cluster_config = &p->eds;
    p->eds.eds_config = &p->cs;
    if (ads) {
        p->cs.config_source_specifier_case =
            ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
        p->cs.ads = &p->ads;
    } else {
        p->eg.cluster_name = "xds";
        p->g.target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
        p->g.envoy_grpc = &p->eg;
        p->gs[0] = &p->g;
        p->api.api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
        p->api.transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
        p->api.n_grpc_services = 1;
        p->api.grpc_services = p->gs;
        p->cs.config_source_specifier_case =
            ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
        p->cs.api_config_source = &p->api;
    }
    if (bad)
        p->c.connect_timeout = &p->zero;
    return &p->c.base;
}

typedef struct {
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment cla;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints loc, *locs[1];
    Envoy__Config__Endpoint__V3__LbEndpoint lbe, *lbes[1];
    Envoy__Config__Endpoint__V3__Endpoint ep;
    Envoy__Config__Core__V3__Address addr;
    Envoy__Config__Core__V3__SocketAddress sa;
} cla_pb_t;

static ProtobufCMessage *cla_msg(cla_pb_t *p, const char *name, uint32_t port)
{
    memset(p, 0, sizeof(*p));
    p->sa = (Envoy__Config__Core__V3__SocketAddress)ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT;
    p->sa.address = "127.0.0.1";
    p->sa.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    p->sa.port_value = port;
    p->addr = (Envoy__Config__Core__V3__Address)ENVOY__CONFIG__CORE__V3__ADDRESS__INIT;
    p->addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    p->addr.socket_address = &p->sa;
    p->ep = (Envoy__Config__Endpoint__V3__Endpoint)ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT;
    p->ep.address = &p->addr;
    p->lbe = (Envoy__Config__Endpoint__V3__LbEndpoint)ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT;
    p->lbe.host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    p->lbe.endpoint = &p->ep;
    p->lbes[0] = &p->lbe;
    p->loc = (Envoy__Config__Endpoint__V3__LocalityLbEndpoints)
        ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT;
    p->loc.n_lb_endpoints = 1;
    p->loc.lb_endpoints = p->lbes;
    p->locs[0] = &p->loc;
    p->cla = (Envoy__Config__Endpoint__V3__ClusterLoadAssignment)
        ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    p->cla.cluster_name = (char *)name;
    p->cla.n_endpoints = 1;
    p->cla.endpoints = p->locs;
    return &p->cla.base;
}

/* ---- the consumer side ---- */

typedef struct {
    struct event_base *base;
    int clusters_calls, assignments_calls, connects, disconnects;
    bool connected;
    size_t last_num_clusters;
    char last_cluster[64], last_version[64], last_cla[64];
    uint32_t last_cla_port;
    bool timed_out;
} consumer_t;

static void on_clusters(void *ctx, rm_cluster_config_t *clusters, size_t n, const char *version)
{
    consumer_t *c = ctx;
    c->clusters_calls++;
    c->last_num_clusters = n;
    snprintf(c->last_cluster, sizeof(c->last_cluster), "%s", n ? clusters[0].name : "");
    snprintf(c->last_version, sizeof(c->last_version), "%s", version);
    for (size_t i = 0; i < n; i++)
        rm_cluster_config_free(&clusters[i]);
    free(clusters);
}

static void on_assignments(void *ctx, rm_cluster_load_assignment_t *clas, size_t n, const char *version)
{
    consumer_t *c = ctx;
    c->assignments_calls++;
    snprintf(c->last_cla, sizeof(c->last_cla), "%s", clas[0].cluster_name);
    c->last_cla_port = clas[0].num_endpoints ? clas[0].endpoints[0].address.port : 0;
    snprintf(c->last_version, sizeof(c->last_version), "%s", version);
    for (size_t i = 0; i < n; i++)
        rm_cluster_load_assignment_free(&clas[i]);
    free(clas);
}

static void on_connection(void *ctx, bool connected)
{
    consumer_t *c = ctx;
    c->connected = connected;
    if (connected)
        c->connects++;
    else
        c->disconnects++;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    ((consumer_t *)arg)->timed_out = true;
}

/* Runs the consumer's loop until *flag reaches want (or the watchdog fires). */
static void consume_until(consumer_t *c, const int *counter, int want, const char *what)
{
    struct event *wd = evtimer_new(c->base, on_watchdog, c);
    struct timeval tv = {WATCHDOG_S, 0};
    evtimer_add(wd, &tv);
    while (*counter < want && !c->timed_out)
        event_base_loop(c->base, EVLOOP_ONCE);
    event_free(wd);
    if (c->timed_out)
        fail_msg("watchdog: %s never happened", what);
}

static const rm_xds_callbacks_t callbacks = {on_clusters, on_assignments, on_connection};

static rm_bootstrap_config_t *bootstrap(int port, bool ads)
{
    char yaml[2048];
    const char *dyn = ads ? "dynamic_resources:\n"
                            "  ads_config:\n"
                            "    api_type: GRPC\n"
                            "    transport_api_version: V3\n"
                            "    grpc_services: [{envoy_grpc: {cluster_name: xds}}]\n"
                            "  cds_config: {ads: {}, resource_api_version: V3}\n"
                          : "dynamic_resources:\n"
                            "  cds_config:\n"
                            "    resource_api_version: V3\n"
                            "    api_config_source:\n"
                            "      api_type: GRPC\n"
                            "      transport_api_version: V3\n"
                            "      grpc_services: [{envoy_grpc: {cluster_name: xds}}]\n";
    snprintf(yaml, sizeof(yaml),
             "node: {id: sidecar-1, cluster: web}\n%s"
             "static_resources:\n"
             "  clusters:\n"
             "  - name: xds\n"
             "    load_assignment: {cluster_name: xds, endpoints: [{lb_endpoints: [{endpoint: {address: "
             "{socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]}\n",
             dyn, port);
    rm_bootstrap_config_t *b = NULL;
    char err[512];
    if (rm_bootstrap_load_string(yaml, strlen(yaml), &b, err, sizeof(err)) != 0)
        fail_msg("bootstrap: %s", err);
    return b;
}

static void assert_request(const DiscoveryRequest *r, const char *type_url, const char *version,
                           const char *nonce, const char *names, bool node, bool nack)
{
    assert_string_equal(r->type_url, type_url);
    assert_string_equal(r->version_info, version);
    assert_string_equal(r->response_nonce, nonce);
    char got[256] = "";
    for (size_t k = 0; k < r->n_resource_names; k++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? " " : "", r->resource_names[k]);
    assert_string_equal(got, names);
    if (node) {
        assert_non_null(r->node);
        assert_string_equal(r->node->id, "sidecar-1");
        assert_string_equal(r->node->cluster, "web");
    } else {
        assert_null(r->node);
    }
    if (nack)
        assert_non_null(r->error_detail);
    else
        assert_null(r->error_detail);
}

/* ---- tests ---- */

static void test_ads_end_to_end(void **state)
{
    fake_cp_t *cp = cp_create();
    rm_bootstrap_config_t *b = bootstrap(cp->port, true);
    consumer_t cons;
    memset(&cons, 0, sizeof(cons));
    cons.base = event_base_new();
    char err[256] = "";
    rm_xds_client_t *c = rm_xds_client_create(b, cons.base, &callbacks, &cons, err, sizeof(err));
    assert_non_null(c);
    const rm_xds_stats_t *st = rm_xds_client_stats(c);
    assert_int_equal(rm_xds_client_start(c), 0);

    /* The first request: wildcard CDS with the node, on the ADS method. */
    int call;
    const DiscoveryRequest *r = cp_wait_request(cp, 0, &call);
    assert_string_equal(cp_method(cp, call), "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
                                             "StreamAggregatedResources");
    assert_request(r, CDS_URL, "", "", "", true, false);

    cluster_pb_t a;
    ProtobufCMessage *res[1] = {eds_cluster(&a, "a", true, false)};
    cp_send(cp, call, CDS_URL, "v1", "n1", res, 1);
    consume_until(&cons, &cons.clusters_calls, 1, "on_clusters");
    assert_int_equal(cons.last_num_clusters, 1);
    assert_string_equal(cons.last_cluster, "a");
    assert_string_equal(cons.last_version, "v1");
    assert_true(cons.connected);
    assert_int_equal(cons.connects, 1);
    /* ACK, then the EDS subscription. */
    assert_request(cp_wait_request(cp, 1, NULL), CDS_URL, "v1", "n1", "", false, false);
    assert_request(cp_wait_request(cp, 2, NULL), EDS_URL, "", "", "a", false, false);
    assert_int_equal(atomic_load(&st->cds_update_success), 1);
    assert_int_equal(atomic_load(&st->connected_state), 1);
    assert_true(atomic_load(&st->cds_version) == rm_xds_version_stat("v1"));
    char vtext[64];
    rm_xds_stats_version_text(st, RM_XDS_CDS, vtext, sizeof(vtext));
    assert_string_equal(vtext, "v1");

    cla_pb_t ca;
    res[0] = cla_msg(&ca, "a", 8080);
    cp_send(cp, call, EDS_URL, "7", "n2", res, 1);
    consume_until(&cons, &cons.assignments_calls, 1, "on_assignments");
    assert_string_equal(cons.last_cla, "a");
    assert_int_equal(cons.last_cla_port, 8080);
    assert_request(cp_wait_request(cp, 3, NULL), EDS_URL, "7", "n2", "a", false, false);
    assert_int_equal(atomic_load(&st->eds_version), 7);

    /* An invalid update: NACKed with the last accepted version, nothing delivered. */
    res[0] = eds_cluster(&a, "a", true, true);
    cp_send(cp, call, CDS_URL, "v2", "n3", res, 1);
    r = cp_wait_request(cp, 4, NULL);
    assert_request(r, CDS_URL, "v1", "n3", "", false, true);
    assert_int_equal(r->error_detail->code, 3);
    assert_string_equal(r->error_detail->message, "cluster 'a': connect_timeout: must be > 0");
    assert_int_equal(atomic_load(&st->cds_update_rejected), 1);
    assert_int_equal(atomic_load(&st->cds_update_attempt), 2);

    /* The server ends the stream: the client reconnects (backoff reset: the stream had responses)
     * and resubscribes with what it accepted. */
    cp_end_call(cp, call);
    int call2;
    r = cp_wait_request(cp, 5, &call2);
    assert_int_not_equal(call2, call);
    assert_request(r, CDS_URL, "v1", "", "", true, false);
    assert_request(cp_wait_request(cp, 6, NULL), EDS_URL, "7", "", "a", false, false);
    consume_until(&cons, &cons.disconnects, 1, "on_connection(false)");
    assert_int_equal(cons.clusters_calls, 1); /* the NACKed update never reached the consumer */
    assert_int_equal(atomic_load(&st->cds_update_failure), 1);

    /* Updates flow on the new stream. */
    res[0] = eds_cluster(&a, "b", true, false);
    cp_send(cp, call2, CDS_URL, "v3", "m1", res, 1);
    consume_until(&cons, &cons.clusters_calls, 2, "second on_clusters");
    assert_string_equal(cons.last_cluster, "b");
    assert_request(cp_wait_request(cp, 7, NULL), CDS_URL, "v3", "m1", "", false, false);
    assert_request(cp_wait_request(cp, 8, NULL), EDS_URL, "7", "", "b", false, false);
    consume_until(&cons, &cons.connects, 2, "reconnected");

    rm_xds_client_stop(c);
    rm_xds_client_stop(c); /* idempotent */
    rm_xds_client_destroy(c);
    event_base_free(cons.base);
    rm_bootstrap_config_free(b);
    cp_destroy(cp);
}

static void test_separate_streams_end_to_end(void **state)
{
    fake_cp_t *cp = cp_create();
    rm_bootstrap_config_t *b = bootstrap(cp->port, false);
    consumer_t cons;
    memset(&cons, 0, sizeof(cons));
    cons.base = event_base_new();
    char err[256] = "";
    rm_xds_client_t *c = rm_xds_client_create(b, cons.base, &callbacks, &cons, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(rm_xds_client_start(c), 0);

    /* Two calls open; only the CDS one has something to ask for. */
    int cds_call;
    const DiscoveryRequest *r = cp_wait_request(cp, 0, &cds_call);
    assert_string_equal(cp_method(cp, cds_call),
                        "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters");
    assert_request(r, CDS_URL, "", "", "", true, false);

    cluster_pb_t a;
    ProtobufCMessage *res[1] = {eds_cluster(&a, "a", false, false)};
    cp_send(cp, cds_call, CDS_URL, "1", "c1", res, 1);
    consume_until(&cons, &cons.clusters_calls, 1, "on_clusters");
    /* The CDS ACK and the EDS stream's subscription travel on different streams, in either order.
     * The subscription is the EDS stream's first request: it carries the node. */
    int first_call, eds_call;
    const DiscoveryRequest *r1 = cp_wait_request(cp, 1, &first_call);
    const DiscoveryRequest *r2 = cp_wait_request(cp, 2, &eds_call);
    if (first_call != cds_call) {
        const DiscoveryRequest *t = r1;
        r1 = r2;
        r2 = t;
        eds_call = first_call;
    }
    assert_request(r1, CDS_URL, "1", "c1", "", false, false);
    assert_string_equal(cp_method(cp, eds_call),
                        "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints");
    assert_request(r2, EDS_URL, "", "", "a", true, false);

    cla_pb_t ca;
    res[0] = cla_msg(&ca, "a", 9000);
    cp_send(cp, eds_call, EDS_URL, "e1", "d1", res, 1);
    consume_until(&cons, &cons.assignments_calls, 1, "on_assignments");
    assert_int_equal(cons.last_cla_port, 9000);
    assert_request(cp_wait_request(cp, 3, NULL), EDS_URL, "e1", "d1", "a", false, false);
    consume_until(&cons, &cons.connects, 1, "connected (both streams answered)");

    rm_xds_client_destroy(c); /* stops on its own */
    event_base_free(cons.base);
    rm_bootstrap_config_free(b);
    cp_destroy(cp);
}

/* A server that is not there: the attempt fails and is counted, the client never reports a
 * connection, and stop wakes the thread out of its backoff wait at once. */
static void test_unreachable_server(void **state)
{
    fake_cp_t *cp = cp_create();
    int port = cp->port;
    cp_destroy(cp); /* the port is now closed */
    rm_bootstrap_config_t *b = bootstrap(port, true);
    consumer_t cons;
    memset(&cons, 0, sizeof(cons));
    cons.base = event_base_new();
    rm_xds_client_t *c = rm_xds_client_create(b, cons.base, &callbacks, &cons, NULL, 0);
    assert_non_null(c);
    const rm_xds_stats_t *st = rm_xds_client_stats(c);
    assert_int_equal(rm_xds_client_start(c), 0);
    /* The first attempt fails as soon as the connection is refused; wait for it on the stat (there
     * is no callback for failures), with the watchdog. */
    struct timespec deadline = watchdog_deadline();
    for (;;) {
        if (atomic_load(&st->cds_update_failure) >= 1)
            break;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec > deadline.tv_sec)
            fail_msg("watchdog: the failed attempt was not counted");
        sched_yield();
    }
    assert_int_equal(atomic_load(&st->connected_state), 0);
    rm_xds_client_destroy(c);
    assert_int_equal(cons.connects, 0);
    event_base_free(cons.base);
    rm_bootstrap_config_free(b);
}

static void test_create_errors_and_target(void **state)
{
    char err[256];
    rm_bootstrap_config_t *b = NULL;
    const char *no_dyn = "node: {id: a, cluster: b}\n";
    assert_int_equal(rm_bootstrap_load_string(no_dyn, strlen(no_dyn), &b, err, sizeof(err)), 0);
    struct event_base *base = event_base_new();
    assert_null(rm_xds_client_create(b, base, &callbacks, NULL, err, sizeof(err)));
    assert_string_equal(
        err, "no management server: dynamic_resources needs ads_config or cds_config.api_config_source");
    rm_bootstrap_config_free(b);

    const char *v6 =
        "node: {id: a, cluster: b}\n"
        "dynamic_resources: {ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: "
        "[{envoy_grpc: {cluster_name: x}}]}}\n"
        "static_resources: {clusters: [{name: x, load_assignment: {cluster_name: x, endpoints: "
        "[{lb_endpoints: [{endpoint: {address: {socket_address: {address: \"::1\", port_value: "
        "18000}}}}]}]}}]}\n";
    assert_int_equal(rm_bootstrap_load_string(v6, strlen(v6), &b, err, sizeof(err)), 0);
    char *t = rm_xds_client_target(b, err, sizeof(err));
    assert_string_equal(t, "ipv6:[::1]:18000");
    free(t);
    /* Created but never started: destroy still cleans up. */
    rm_xds_client_t *c = rm_xds_client_create(b, base, &callbacks, NULL, err, sizeof(err));
    assert_non_null(c);
    rm_xds_client_destroy(c);
    rm_bootstrap_config_free(b);

    const char *dns =
        "node: {id: a, cluster: b}\n"
        "dynamic_resources: {cds_config: {api_config_source: {api_type: GRPC, transport_api_version: "
        "V3, grpc_services: [{envoy_grpc: {cluster_name: x}}]}}}\n"
        "static_resources: {clusters: [{name: x, type: STRICT_DNS, load_assignment: {cluster_name: x, "
        "endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: cp.internal, "
        "port_value: 18000}}}}]}]}}]}\n";
    assert_int_equal(rm_bootstrap_load_string(dns, strlen(dns), &b, err, sizeof(err)), 0);
    t = rm_xds_client_target(b, err, sizeof(err));
    assert_string_equal(t, "dns:///cp.internal:18000");
    free(t);
    rm_bootstrap_config_free(b);
    event_base_free(base);
}

static int setup(void **state)
{
    evthread_use_pthreads();
    grpc_init();
    return 0;
}

static int teardown(void **state)
{
    grpc_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ads_end_to_end),
        cmocka_unit_test(test_separate_streams_end_to_end),
        cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test(test_create_errors_and_target),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
