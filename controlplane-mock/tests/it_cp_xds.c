/* End to end: remora-cp and remora-cpctl as real processes, with a small gRPC C client playing the
 * sidecar on ADS (and on the separate CDS/EDS services): subscriptions, ACKs, NACKs, stale nonces,
 * pushes caused by admin mutations and by rewriting the snapshot file, WaitForAck, ListNodes, many
 * streams at once, and shutdown on SIGTERM. Every wait has a deadline and waits for a message, a
 * process exit or a log line; nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include "cp_grpc.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "remora_proto/xds.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

typedef Envoy__Service__Discovery__V3__DiscoveryRequest DiscoveryRequest;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse DiscoveryResponse;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;

#define CDS          REMORA_TYPE_URL_CLUSTER
#define EDS          REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT
#define WAIT_MS      5000
#define MANY_STREAMS 100

static const char default_snapshot[] = "clusters:\n"
                                       "- name: backend\n"
                                       "  connect_timeout: 1s\n"
                                       "  endpoints:\n"
                                       "  - {address: 127.0.0.1:8081, weight: 2}\n"
                                       "  - {address: 127.0.0.1:8083, priority: 1, health: HEALTHY}\n"
                                       "- name: other\n"
                                       "  lb_policy: LEAST_REQUEST\n"
                                       "  endpoints: [{address: 127.0.0.1:9091}]\n";

/* ---- the control plane under test ---- */

typedef struct {
    harness_proc_t *proc;
    char addr[64];
    char *snapshot_path;
    grpc_channel *channel;
    grpc_completion_queue *cq;
} cp_t;

static cp_t g_cp;
static unsigned g_serial;

static int start_cp(void **state)
{
    memset(&g_cp, 0, sizeof(g_cp));
    unsigned n = ++g_serial;
    char name[64];
    snprintf(name, sizeof(name), "snapshot-%u.yaml", n);
    g_cp.snapshot_path = harness_path(name);
    if (harness_write_file(g_cp.snapshot_path, default_snapshot, (size_t)-1) != 0)
        return -1;
    snprintf(name, sizeof(name), "cp-%u.port", n);
    char *port_file = harness_path(name);
    char *bin = harness_bin("remora-cp");
    char *argv[] = {bin,           "--listen", "127.0.0.1:0",     "--snapshot", g_cp.snapshot_path,
                    "--port-file", port_file,  "--poll-interval", "20",         "--log-level",
                    "debug",       NULL};
    snprintf(name, sizeof(name), "remora-cp-%u", n);
    g_cp.proc = harness_spawn(name, argv, NULL);
    free(bin);
    if (g_cp.proc == NULL || harness_wait_file(port_file, WAIT_MS) != 0) {
        free(port_file);
        return -1;
    }
    char *text = harness_read_file(port_file, NULL);
    free(port_file);
    int port = text ? atoi(text) : 0;
    free(text);
    if (port <= 0)
        return -1;
    snprintf(g_cp.addr, sizeof(g_cp.addr), "127.0.0.1:%d", port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    g_cp.channel = grpc_channel_create(g_cp.addr, creds, NULL);
    grpc_channel_credentials_release(creds);
    g_cp.cq = grpc_completion_queue_create_for_pluck(NULL);
    return 0;
}

/* ---- a sidecar's xDS stream ---- */

typedef struct {
    grpc_call *call;
    int recv_tag, send_tag, status_tag; /* their addresses are the tags */
    bool recv_pending, status_pending, got_initial_md;
    grpc_byte_buffer *recv_buf;
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details;
} xs_t;

/* Streams still open, closed by the teardown when a test fails half-way (the completion queue cannot
 * shut down while they have operations pending). */
static xs_t *g_open[MANY_STREAMS + 16];

static void xs_close(xs_t *x);

static bool pluck(void *tag, int timeout_ms)
{
    grpc_event ev =
        grpc_completion_queue_pluck(g_cp.cq, tag, rm_cp_deadline_ms(rm_cp_mono_ms() + timeout_ms), NULL);
    IT_ASSERT(ev.type == GRPC_OP_COMPLETE || ev.type == GRPC_QUEUE_TIMEOUT, "unexpected event %d", ev.type);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void xs_open(xs_t *x, const char *method)
{
    memset(x, 0, sizeof(*x));
    for (size_t i = 0; i < sizeof(g_open) / sizeof(g_open[0]); i++) {
        if (g_open[i] == NULL) {
            g_open[i] = x;
            break;
        }
    }
    grpc_metadata_array_init(&x->initial_md);
    grpc_metadata_array_init(&x->trailing_md);
    x->details = grpc_empty_slice();
    x->call = grpc_channel_create_call(g_cp.channel, NULL, GRPC_PROPAGATE_DEFAULTS, g_cp.cq,
                                       grpc_slice_from_static_string(method), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_op ops[1];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    IT_ASSERT(grpc_call_start_batch(x->call, ops, 1, &x->send_tag, NULL) == GRPC_CALL_OK, "start batch");
    IT_ASSERT(pluck(&x->send_tag, WAIT_MS), "sending initial metadata on %s", method);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &x->trailing_md;
    ops[0].data.recv_status_on_client.status = &x->status;
    ops[0].data.recv_status_on_client.status_details = &x->details;
    IT_ASSERT(grpc_call_start_batch(x->call, ops, 1, &x->status_tag, NULL) == GRPC_CALL_OK, "start batch");
    x->status_pending = true;
}

static void xs_send(xs_t *x, const DiscoveryRequest *req)
{
    grpc_byte_buffer *bb = rm_cp_grpc_pack(&req->base);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    IT_ASSERT(grpc_call_start_batch(x->call, &op, 1, &x->send_tag, NULL) == GRPC_CALL_OK, "start batch");
    IT_ASSERT(pluck(&x->send_tag, WAIT_MS), "sending a DiscoveryRequest");
    grpc_byte_buffer_destroy(bb);
}

/* The next response, or NULL if none arrives within timeout_ms (the receive then stays pending, so a later
 * call gets that response) or the stream ended. */
static DiscoveryResponse *xs_recv(xs_t *x, int timeout_ms)
{
    if (!x->recv_pending) {
        grpc_op ops[2];
        size_t n = 0;
        memset(ops, 0, sizeof(ops));
        if (!x->got_initial_md) {
            ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
            ops[n++].data.recv_initial_metadata.recv_initial_metadata = &x->initial_md;
            x->got_initial_md = true;
        }
        ops[n].op = GRPC_OP_RECV_MESSAGE;
        ops[n++].data.recv_message.recv_message = &x->recv_buf;
        IT_ASSERT(grpc_call_start_batch(x->call, ops, n, &x->recv_tag, NULL) == GRPC_CALL_OK, "start batch");
        x->recv_pending = true;
    }
    grpc_event ev = grpc_completion_queue_pluck(g_cp.cq, &x->recv_tag,
                                                rm_cp_deadline_ms(rm_cp_mono_ms() + timeout_ms), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT)
        return NULL;
    x->recv_pending = false;
    if (x->recv_buf == NULL)
        return NULL;
    ProtobufCMessage *m =
        rm_cp_grpc_unpack(&envoy__service__discovery__v3__discovery_response__descriptor, x->recv_buf);
    grpc_byte_buffer_destroy(x->recv_buf);
    x->recv_buf = NULL;
    IT_ASSERT(m != NULL, "a response that does not parse as DiscoveryResponse");
    return (DiscoveryResponse *)m;
}

/* The stream's status. gRPC reports it once the messages before it have been read, as a client that
 * always keeps a receive pending would; responses that are still in flight are dropped. */
static grpc_status_code xs_status(xs_t *x, int timeout_ms)
{
    int64_t deadline = rm_cp_mono_ms() + timeout_ms;
    DiscoveryResponse *r;
    while ((r = xs_recv(x, (int)(deadline - rm_cp_mono_ms()))) != NULL)
        protobuf_c_message_free_unpacked(&r->base, NULL);
    IT_ASSERT(!x->recv_pending, "the stream did not end within %d ms", timeout_ms);
    if (x->status_pending) {
        IT_ASSERT(pluck(&x->status_tag, (int)(deadline - rm_cp_mono_ms())), "no status within %d ms",
                  timeout_ms);
        x->status_pending = false;
    }
    return x->status;
}

static void xs_close(xs_t *x)
{
    grpc_call_cancel(x->call, NULL);
    if (x->recv_pending)
        grpc_completion_queue_pluck(g_cp.cq, &x->recv_tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (x->status_pending)
        grpc_completion_queue_pluck(g_cp.cq, &x->status_tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (x->recv_buf != NULL)
        grpc_byte_buffer_destroy(x->recv_buf);
    grpc_metadata_array_destroy(&x->initial_md);
    grpc_metadata_array_destroy(&x->trailing_md);
    grpc_slice_unref(x->details);
    grpc_call_unref(x->call);
    memset(x, 0, sizeof(*x));
    for (size_t i = 0; i < sizeof(g_open) / sizeof(g_open[0]); i++)
        if (g_open[i] == x)
            g_open[i] = NULL;
}

/* Sends a DiscoveryRequest. node_id NULL: no node; error: a NACK with that message. */
static void xs_request(xs_t *x, const char *node_id, const char *type_url, const char *version,
                       const char *nonce, const char *const *names, size_t num_names, const char *error)
{
    Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    DiscoveryRequest req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    if (node_id != NULL) {
        node.id = (char *)node_id;
        node.cluster = "it-cluster";
        req.node = &node;
    }
    req.type_url = (char *)type_url;
    req.version_info = (char *)(version ? version : "");
    req.response_nonce = (char *)(nonce ? nonce : "");
    req.resource_names = (char **)names;
    req.n_resource_names = num_names;
    if (error != NULL) {
        status.code = 3;
        status.message = (char *)error;
        req.error_detail = &status;
    }
    xs_send(x, &req);
}

/* Waits for the next response and checks its type, version and number of resources. */
static DiscoveryResponse *expect_response(xs_t *x, const char *type_url, const char *version,
                                          size_t resources)
{
    DiscoveryResponse *r = xs_recv(x, WAIT_MS);
    IT_ASSERT(r != NULL, "no %s response (version %s) within %d ms", type_url, version, WAIT_MS);
    IT_ASSERT(strcmp(r->type_url, type_url) == 0, "type_url %s, expected %s", r->type_url, type_url);
    IT_ASSERT(strcmp(r->version_info, version) == 0, "%s version_info %s, expected %s", type_url,
              r->version_info, version);
    IT_ASSERT(r->nonce[0] != '\0', "empty nonce");
    IT_ASSERT(r->n_resources == resources, "%s version %s has %zu resources, expected %zu", type_url, version,
              r->n_resources, resources);
    for (size_t i = 0; i < r->n_resources; i++)
        IT_ASSERT(strcmp(r->resources[i]->type_url, type_url) == 0, "resource type_url %s",
                  r->resources[i]->type_url);
    return r;
}

static void ack(xs_t *x, const char *node_id, const DiscoveryResponse *r, const char *const *names, size_t n)
{
    xs_request(x, node_id, r->type_url, r->version_info, r->nonce, names, n, NULL);
}

static Cluster *cluster_at(const DiscoveryResponse *r, size_t i)
{
    Cluster *c =
        (Cluster *)protobuf_c_message_unpack(&envoy__config__cluster__v3__cluster__descriptor, NULL,
                                             r->resources[i]->value.len, r->resources[i]->value.data);
    IT_ASSERT(c != NULL, "resource %zu is not a Cluster", i);
    return c;
}

static Cla *cla_at(const DiscoveryResponse *r, size_t i)
{
    Cla *c =
        (Cla *)protobuf_c_message_unpack(&envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
                                         NULL, r->resources[i]->value.len, r->resources[i]->value.data);
    IT_ASSERT(c != NULL, "resource %zu is not a ClusterLoadAssignment", i);
    return c;
}

static size_t cla_endpoints(const Cla *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_endpoints; i++)
        n += c->endpoints[i]->n_lb_endpoints;
    return n;
}

static void free_msg(void *m)
{
    protobuf_c_message_free_unpacked(m, NULL);
}

static int stop_cp(void **state)
{
    for (size_t i = 0; i < sizeof(g_open) / sizeof(g_open[0]); i++)
        if (g_open[i] != NULL)
            xs_close(g_open[i]);
    if (g_cp.channel != NULL)
        grpc_channel_destroy(g_cp.channel);
    if (g_cp.cq != NULL) {
        grpc_completion_queue_shutdown(g_cp.cq);
        while (grpc_completion_queue_pluck(g_cp.cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(g_cp.cq);
    }
    free(g_cp.snapshot_path);
    /* A clean exit on SIGTERM after every scenario (under the sanitizers this also checks for leaks). */
    int rc = 0, status = 0;
    if (g_cp.proc != NULL && harness_proc_alive(g_cp.proc)) {
        if (harness_proc_terminate(g_cp.proc, SIGTERM, WAIT_MS, &status) != 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "remora-cp did not exit cleanly on SIGTERM (status %d)\n", status);
            harness_dump_stderr(g_cp.proc, 4096);
            rc = -1;
        }
    }
    harness_kill_all();
    memset(&g_cp, 0, sizeof(g_cp));
    return rc;
}

/* ---- remora-cpctl ---- */

typedef struct {
    int exit_code;
    char *out, *err;
} cli_t;

static harness_proc_t *cpctl_spawn(const char *const *args)
{
    char *argv[32];
    size_t n = 0;
    argv[n++] = harness_bin("remora-cpctl");
    argv[n++] = "--server";
    argv[n++] = g_cp.addr;
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char name[64];
    snprintf(name, sizeof(name), "cpctl-%u", ++g_serial);
    harness_proc_t *p = harness_spawn(name, argv, NULL);
    free(argv[0]);
    IT_ASSERT(p != NULL, "spawn remora-cpctl");
    return p;
}

static cli_t cpctl_finish(harness_proc_t *p, int timeout_ms)
{
    cli_t r;
    int status;
    IT_ASSERT(harness_proc_wait(p, timeout_ms, &status) == 0, "remora-cpctl still running after %d ms",
              timeout_ms);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = harness_read_file(p->stdout_path, NULL);
    r.err = harness_read_file(p->stderr_path, NULL);
    if (r.out == NULL)
        r.out = strdup("");
    if (r.err == NULL)
        r.err = strdup("");
    return r;
}

static cli_t cpctl(const char *const *args)
{
    return cpctl_finish(cpctl_spawn(args), 15000);
}

static void cli_free(cli_t *r)
{
    free(r->out);
    free(r->err);
}

/* Runs a mutation and returns its version (the "version N" line). */
static char *mutate(const char *const *args)
{
    cli_t r = cpctl(args);
    IT_ASSERT(r.exit_code == 0, "remora-cpctl %s exited %d: %s", args[0], r.exit_code, r.err);
    char version[32];
    IT_ASSERT(sscanf(r.out, "version %31s", version) == 1, "unexpected output \"%s\"", r.out);
    cli_free(&r);
    return strdup(version);
}

/* `nodes --json`, parsed. */
static json_t *nodes_json(void)
{
    cli_t r = cpctl((const char *[]){"--json", "nodes", NULL});
    IT_ASSERT(r.exit_code == 0, "nodes exited %d: %s", r.exit_code, r.err);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    IT_ASSERT(j != NULL, "nodes --json printed invalid JSON (%s): %s", e.text, r.out);
    cli_free(&r);
    return j;
}

/* The type status object of node_id for type_url in a `nodes --json` answer (borrowed), or NULL. */
static json_t *node_type(json_t *nodes, const char *node_id, const char *type_url, bool *connected)
{
    size_t i, k;
    json_t *n, *t;
    json_array_foreach(json_object_get(nodes, "nodes"), i, n)
    {
        if (strcmp(json_string_value(json_object_get(n, "node_id")), node_id) != 0)
            continue;
        if (connected != NULL)
            *connected = json_is_true(json_object_get(n, "connected"));
        json_array_foreach(json_object_get(n, "types"), k,
                           t) if (strcmp(json_string_value(json_object_get(t, "type_url")), type_url) ==
                                  0) return t;
    }
    return NULL;
}

static const char *field(json_t *obj, const char *key)
{
    IT_ASSERT(obj != NULL, "no status object for %s", key);
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "(missing)";
}

/* ---- tests ---- */

static const char *const backend_only[] = {"backend"};
static const char *const both[] = {"backend", "other"};

/* Opens an ADS stream as node_id and brings it to "CDS v1 and EDS v1 ACKed" (EDS for names). */
static void ads_setup(xs_t *x, const char *node_id, const char *const *names, size_t n)
{
    xs_open(x, REMORA_METHOD_ADS_STREAM);
    xs_request(x, node_id, CDS, NULL, NULL, NULL, 0, NULL);
    DiscoveryResponse *r = expect_response(x, CDS, "1", 2);
    ack(x, node_id, r, NULL, 0);
    free_msg(r);
    xs_request(x, node_id, EDS, NULL, NULL, names, n, NULL);
    r = expect_response(x, EDS, "1", n);
    ack(x, node_id, r, names, n);
    free_msg(r);
}

static void test_ads_cds_eds_and_push(void **state)
{
    xs_t x;
    xs_open(&x, REMORA_METHOD_ADS_STREAM);
    xs_request(&x, "node-a", CDS, NULL, NULL, NULL, 0, NULL);
    DiscoveryResponse *r = expect_response(&x, CDS, "1", 2);
    Cluster *c = cluster_at(r, 0);
    IT_ASSERT(strcmp(c->name, "backend") == 0, "first cluster %s", c->name);
    IT_ASSERT(c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS, "type %d", c->type);
    IT_ASSERT(c->eds_cluster_config != NULL && c->eds_cluster_config->eds_config != NULL &&
                  c->eds_cluster_config->eds_config->self != NULL,
              "eds_config is not self");
    IT_ASSERT(c->connect_timeout != NULL && c->connect_timeout->seconds == 1, "connect_timeout");
    free_msg(c);
    c = cluster_at(r, 1);
    IT_ASSERT(c->lb_policy == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST, "lb_policy %d",
              c->lb_policy);
    free_msg(c);
    ack(&x, "node-a", r, NULL, 0);
    free_msg(r);

    xs_request(&x, NULL, EDS, NULL, NULL, backend_only, 1, NULL);
    r = expect_response(&x, EDS, "1", 1);
    Cla *cla = cla_at(r, 0);
    IT_ASSERT(strcmp(cla->cluster_name, "backend") == 0, "cla %s", cla->cluster_name);
    IT_ASSERT(cla->n_endpoints == 2 && cla->endpoints[0]->priority == 0 && cla->endpoints[1]->priority == 1,
              "priorities");
    IT_ASSERT(cla->endpoints[0]->lb_endpoints[0]->load_balancing_weight->value == 2, "weight");
    IT_ASSERT(cla->endpoints[1]->lb_endpoints[0]->health_status ==
                  ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY,
              "health");
    free_msg(cla);

    /* A wait-ack for the next version, started before the change exists, returns once the node ACKs it. */
    harness_proc_t *waiter = cpctl_spawn(
        (const char *[]){"wait-ack", "--node", "node-a", "--version", "2", "--timeout", "20s", NULL});
    char *line = harness_wait_line_containing(g_cp.proc->stderr_path,
                                              "\"node-a\" version 2 type (all): waiting", WAIT_MS);
    IT_ASSERT(line != NULL, "WaitForAck not parked");
    free(line);

    /* The ACK of EDS v1 comes after the wait started: it must not satisfy it. */
    ack(&x, "node-a", r, backend_only, 1);
    free_msg(r);

    char *v = mutate((const char *[]){"add-endpoint", "--cluster", "backend", "--address", "127.0.0.1:8085",
                                      "--weight", "4", NULL});
    IT_ASSERT(strcmp(v, "2") == 0, "version %s", v);
    free(v);
    /* Only EDS changed: the next response is EDS v2 with the new endpoint (no CDS response in between). */
    r = expect_response(&x, EDS, "2", 1);
    cla = cla_at(r, 0);
    IT_ASSERT(cla_endpoints(cla) == 3, "%zu endpoints", cla_endpoints(cla));
    Envoy__Config__Endpoint__V3__LbEndpoint *added = cla->endpoints[0]->lb_endpoints[1];
    IT_ASSERT(added->endpoint->address->socket_address->port_value == 8085 &&
                  added->load_balancing_weight->value == 4,
              "new endpoint");
    free_msg(cla);
    IT_ASSERT(harness_proc_alive(waiter), "wait-ack returned before the ACK of version 2");
    ack(&x, "node-a", r, backend_only, 1);
    free_msg(r);
    cli_t w = cpctl_finish(waiter, WAIT_MS);
    IT_ASSERT(w.exit_code == 0, "wait-ack exited %d: %s%s", w.exit_code, w.out, w.err);
    IT_ASSERT(strstr(w.out, "acked: node node-a is at version 2") != NULL, "wait-ack said: %s", w.out);
    cli_free(&w);

    /* CDS did not change in version 2, and the node had ACKed it: it counts as ACKed at 2. */
    json_t *nodes = nodes_json();
    bool connected = false;
    json_t *cds = node_type(nodes, "node-a", CDS, &connected);
    json_t *eds = node_type(nodes, "node-a", EDS, NULL);
    IT_ASSERT(connected, "node-a not connected");
    IT_ASSERT(strcmp(field(cds, "acked_version"), "2") == 0, "cds acked %s", field(cds, "acked_version"));
    IT_ASSERT(strcmp(field(eds, "acked_version"), "2") == 0, "eds acked %s", field(eds, "acked_version"));
    IT_ASSERT(strcmp(field(eds, "nacked_version"), "") == 0, "eds nacked %s", field(eds, "nacked_version"));
    IT_ASSERT(strncmp(field(eds, "last_seen"), "20", 2) == 0, "last_seen %s", field(eds, "last_seen"));
    json_decref(nodes);

    /* Subscribing to more names answers at once with the same version. */
    xs_request(&x, NULL, EDS, "2", NULL, both, 2, NULL);
    r = expect_response(&x, EDS, "2", 2);
    free_msg(r);

    /* Removing the cluster changes both types: CDS first, then EDS. */
    v = mutate((const char *[]){"remove-cluster", "--name", "other", NULL});
    r = expect_response(&x, CDS, v, 1);
    free_msg(r);
    r = expect_response(&x, EDS, v, 1);
    free_msg(r);
    free(v);
    xs_close(&x);

    /* The node is remembered after its stream closed. */
    nodes = nodes_json();
    connected = true;
    IT_ASSERT(node_type(nodes, "node-a", CDS, &connected) != NULL && !connected, "node-a still connected");
    json_decref(nodes);
}

static void test_nack_recorded(void **state)
{
    xs_t x;
    ads_setup(&x, "node-n", backend_only, 1);
    /* The mock passes settings the sidecar must reject. */
    char *v = mutate((const char *[]){"upsert-cluster", "--name", "backend", "--lb-policy", "MAGLEV",
                                      "--connect-timeout", "0s", "--endpoint", "127.0.0.1:8081,2", NULL});
    IT_ASSERT(strcmp(v, "2") == 0, "version %s", v);
    free(v);
    DiscoveryResponse *r = expect_response(&x, CDS, "2", 2);
    Cluster *c = cluster_at(r, 0);
    IT_ASSERT(c->lb_policy == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV, "lb_policy %d",
              c->lb_policy);
    IT_ASSERT(c->connect_timeout != NULL && c->connect_timeout->seconds == 0 &&
                  c->connect_timeout->nanos == 0,
              "connect_timeout");
    free_msg(c);
    /* NACK: the nonce of that response, the last good version, and an error. */
    xs_request(&x, NULL, CDS, "1", r->nonce, NULL, 0, "cluster backend: lb_policy MAGLEV is not supported");
    free_msg(r);
    /* The endpoints changed too (one endpoint left). */
    r = expect_response(&x, EDS, "2", 1);
    ack(&x, "node-n", r, backend_only, 1);
    free_msg(r);

    cli_t w =
        cpctl((const char *[]){"wait-ack", "--node", "node-n", "--version", "2", "--timeout", "20s", NULL});
    IT_ASSERT(w.exit_code == 1, "wait-ack exited %d: %s", w.exit_code, w.out);
    IT_ASSERT(strstr(w.out, "MAGLEV is not supported") != NULL, "wait-ack said: %s", w.out);
    cli_free(&w);
    w = cpctl((const char *[]){"wait-ack", "--node", "node-n", "--version", "2", "--type-url", "eds", NULL});
    IT_ASSERT(w.exit_code == 0, "wait-ack eds exited %d: %s", w.exit_code, w.out);
    cli_free(&w);

    json_t *nodes = nodes_json();
    json_t *cds = node_type(nodes, "node-n", CDS, NULL);
    IT_ASSERT(strcmp(field(cds, "acked_version"), "1") == 0, "acked %s", field(cds, "acked_version"));
    IT_ASSERT(strcmp(field(cds, "nacked_version"), "2") == 0, "nacked %s", field(cds, "nacked_version"));
    IT_ASSERT(strstr(field(cds, "nack_message"), "MAGLEV") != NULL, "message %s", field(cds, "nack_message"));
    json_decref(nodes);
    cli_t h = cpctl((const char *[]){"nodes", NULL});
    IT_ASSERT(strstr(h.out, "cds  acked 1  NACKED 2: cluster backend: lb_policy MAGLEV is not supported") !=
                  NULL,
              "nodes said: %s", h.out);
    cli_free(&h);

    /* The fix is pushed, ACKed, and clears the NACK. */
    v = mutate((const char *[]){"upsert-cluster", "--name", "backend", "--lb-policy", "ROUND_ROBIN",
                                "--endpoint", "127.0.0.1:8081,2", NULL});
    IT_ASSERT(strcmp(v, "3") == 0, "version %s", v);
    free(v);
    r = expect_response(&x, CDS, "3", 2);
    ack(&x, NULL, r, NULL, 0);
    free_msg(r);
    w = cpctl((const char *[]){"wait-ack", "--node", "node-n", "--version", "3", NULL});
    IT_ASSERT(w.exit_code == 0, "wait-ack exited %d: %s", w.exit_code, w.out);
    cli_free(&w);
    nodes = nodes_json();
    cds = node_type(nodes, "node-n", CDS, NULL);
    IT_ASSERT(strcmp(field(cds, "acked_version"), "3") == 0 && strcmp(field(cds, "nacked_version"), "") == 0,
              "after the fix: acked %s nacked %s", field(cds, "acked_version"), field(cds, "nacked_version"));
    json_decref(nodes);
    xs_close(&x);
}

static void test_stale_nonce_ignored(void **state)
{
    xs_t x;
    xs_open(&x, REMORA_METHOD_ADS_STREAM);
    xs_request(&x, "node-s", CDS, NULL, NULL, NULL, 0, NULL);
    DiscoveryResponse *r1 = expect_response(&x, CDS, "1", 2);
    /* Version 2 is pushed before the node answered version 1. */
    char *v = mutate((const char *[]){"upsert-cluster", "--name", "third", NULL});
    free(v);
    DiscoveryResponse *r2 = expect_response(&x, CDS, "2", 3);
    /* Late answers to version 1, ACK and NACK alike, are stale: no effect. */
    ack(&x, NULL, r1, NULL, 0);
    xs_request(&x, NULL, CDS, "", r1->nonce, NULL, 0, "late complaint");
    ack(&x, NULL, r2, NULL, 0);
    /* Requests on a stream are handled in order: once the ACK of 2 is seen, so were the stale ones. */
    cli_t w =
        cpctl((const char *[]){"wait-ack", "--node", "node-s", "--version", "2", "--type-url", CDS, NULL});
    IT_ASSERT(w.exit_code == 0, "wait-ack exited %d: %s", w.exit_code, w.out);
    cli_free(&w);
    json_t *nodes = nodes_json();
    json_t *cds = node_type(nodes, "node-s", CDS, NULL);
    IT_ASSERT(strcmp(field(cds, "acked_version"), "2") == 0, "acked %s", field(cds, "acked_version"));
    IT_ASSERT(strcmp(field(cds, "nacked_version"), "") == 0, "stale NACK recorded: %s",
              field(cds, "nacked_version"));
    json_decref(nodes);
    char *log = harness_read_file(g_cp.proc->stderr_path, NULL);
    IT_ASSERT(log != NULL && harness_count(log, "cds stale") == 2, "expected 2 stale requests in the log");
    free(log);
    /* An ACK does not cause a response: the next one is the next change. */
    v = mutate((const char *[]){"remove-cluster", "--name", "third", NULL});
    DiscoveryResponse *r3 = expect_response(&x, CDS, v, 2);
    free(v);
    free_msg(r1);
    free_msg(r2);
    free_msg(r3);
    xs_close(&x);
}

static void test_file_reload(void **state)
{
    xs_t x;
    xs_open(&x, REMORA_METHOD_ADS_STREAM);
    xs_request(&x, "node-f", CDS, NULL, NULL, NULL, 0, NULL);
    DiscoveryResponse *r = expect_response(&x, CDS, "1", 2);
    ack(&x, NULL, r, NULL, 0);
    free_msg(r);

    char *text = harness_fmt("%s- name: added\n  endpoints: [{address: 127.0.0.1:7000}]\n", default_snapshot);
    IT_ASSERT(harness_write_file(g_cp.snapshot_path, text, (size_t)-1) == 0, "rewrite snapshot");
    free(text);
    r = expect_response(&x, CDS, "2", 3);
    ack(&x, NULL, r, NULL, 0);
    free_msg(r);

    /* An invalid file is reported with the path of the error and changes nothing. */
    IT_ASSERT(harness_write_file(g_cp.snapshot_path,
                                 "clusters:\n- name: a\n- name: b\n  endpoints:\n  - {address: localhost}\n",
                                 (size_t)-1) == 0,
              "rewrite snapshot");
    char *line =
        harness_wait_line_containing(g_cp.proc->stderr_path, "clusters[1].endpoints[0].address", WAIT_MS);
    IT_ASSERT(line != NULL, "no error naming clusters[1].endpoints[0].address in the log");
    IT_ASSERT(strstr(line, "still serving version 2") != NULL, "log line: %s", line);
    free(line);
    char *v = mutate((const char *[]){"upsert-cluster", "--name", "after", NULL});
    IT_ASSERT(strcmp(v, "3") == 0, "the invalid file changed the version: %s", v);
    free(v);
    r = expect_response(&x, CDS, "3", 4);
    free_msg(r);
    xs_close(&x);
}

static void test_separate_services(void **state)
{
    xs_t cds, eds, bad;
    xs_open(&cds, REMORA_METHOD_CDS_STREAM);
    xs_open(&eds, REMORA_METHOD_EDS_STREAM);
    xs_request(&cds, "node-sep", CDS, NULL, NULL, NULL, 0, NULL);
    DiscoveryResponse *r = expect_response(&cds, CDS, "1", 2);
    ack(&cds, NULL, r, NULL, 0);
    free_msg(r);
    /* An empty type_url means the service's own type. */
    xs_request(&eds, "node-sep", "", NULL, NULL, both, 2, NULL);
    r = expect_response(&eds, EDS, "1", 2);
    ack(&eds, NULL, r, both, 2);
    free_msg(r);
    char *v = mutate((const char *[]){"set-weight", "--cluster", "other", "--address", "127.0.0.1:9091",
                                      "--weight", "9", NULL});
    r = expect_response(&eds, EDS, v, 2);
    Cla *cla = cla_at(r, 1);
    IT_ASSERT(cla->endpoints[0]->lb_endpoints[0]->load_balancing_weight->value == 9, "weight");
    free_msg(cla);
    ack(&eds, NULL, r, both, 2);
    free_msg(r);
    cli_t w = cpctl((const char *[]){"wait-ack", "--node", "node-sep", "--version", v, NULL});
    IT_ASSERT(w.exit_code == 0, "wait-ack exited %d: %s", w.exit_code, w.out);
    cli_free(&w);
    free(v);

    /* Asking the CDS service for endpoints is an error that ends the stream. */
    xs_open(&bad, REMORA_METHOD_CDS_STREAM);
    xs_request(&bad, "node-bad", EDS, NULL, NULL, both, 2, NULL);
    IT_ASSERT(xs_status(&bad, WAIT_MS) == GRPC_STATUS_INVALID_ARGUMENT, "status %d", bad.status);
    xs_close(&bad);
    xs_close(&cds);
    xs_close(&eds);
}

static void test_many_streams(void **state)
{
    static xs_t xs[MANY_STREAMS];
    char ids[MANY_STREAMS][32];
    int64_t t0 = harness_now_ms();
    for (int i = 0; i < MANY_STREAMS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "many-%d", i);
        ads_setup(&xs[i], ids[i], both, 2);
    }
    int64_t t1 = harness_now_ms();
    char *v = mutate((const char *[]){"set-health", "--cluster", "backend", "--address", "127.0.0.1:8081",
                                      "--health", "DRAINING", NULL});
    for (int i = 0; i < MANY_STREAMS; i++) {
        DiscoveryResponse *r = expect_response(&xs[i], EDS, v, 2);
        Cla *cla = cla_at(r, 0);
        IT_ASSERT(cla->endpoints[0]->lb_endpoints[0]->health_status ==
                      ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING,
                  "stream %d: health", i);
        free_msg(cla);
        ack(&xs[i], NULL, r, both, 2);
        free_msg(r);
    }
    int64_t t2 = harness_now_ms();
    /* Each node's ACK is recorded; check the last one with WaitForAck, and all through ListNodes. */
    cli_t w = cpctl((const char *[]){"wait-ack", "--node", ids[MANY_STREAMS - 1], "--version", v, NULL});
    IT_ASSERT(w.exit_code == 0, "wait-ack exited %d: %s", w.exit_code, w.out);
    cli_free(&w);
    json_t *nodes = nodes_json();
    for (int i = 0; i < MANY_STREAMS; i++) {
        bool connected = false;
        json_t *eds = node_type(nodes, ids[i], EDS, &connected);
        json_t *cds = node_type(nodes, ids[i], CDS, NULL);
        IT_ASSERT(connected && strcmp(field(eds, "acked_version"), v) == 0 &&
                      strcmp(field(cds, "acked_version"), v) == 0,
                  "node %s: connected %d, eds acked %s, cds acked %s", ids[i], connected,
                  field(eds, "acked_version"), field(cds, "acked_version"));
    }
    json_decref(nodes);
    fprintf(stderr, "%d streams: set up in %lld ms, update delivered and ACKed in %lld ms\n", MANY_STREAMS,
            (long long)(t1 - t0), (long long)(t2 - t1));
    free(v);
    for (int i = 0; i < MANY_STREAMS; i++)
        xs_close(&xs[i]);
}

static void test_cli_errors(void **state)
{
    cli_t r = cpctl((const char *[]){"add-endpoint", "--cluster", "nope", "--address", "1.2.3.4:80", NULL});
    IT_ASSERT(r.exit_code == 3 && strstr(r.err, "NOT_FOUND: unknown cluster \"nope\"") != NULL, "exit %d: %s",
              r.exit_code, r.err);
    cli_free(&r);
    r = cpctl((const char *[]){"add-endpoint", "--cluster", "backend", "--address", "127.0.0.1:8081", NULL});
    IT_ASSERT(r.exit_code == 3 && strstr(r.err, "ALREADY_EXISTS") != NULL, "exit %d: %s", r.exit_code, r.err);
    cli_free(&r);
    r = cpctl((const char *[]){"upsert-cluster", "--name", "x", "--lb-policy", "FASTEST", NULL});
    IT_ASSERT(r.exit_code == 3 && strstr(r.err, "INVALID_ARGUMENT: unknown lb_policy \"FASTEST\"") != NULL,
              "exit %d: %s", r.exit_code, r.err);
    cli_free(&r);
    r = cpctl((const char *[]){"wait-ack", "--node", "x", "--version", "seven", NULL});
    IT_ASSERT(r.exit_code == 3 && strstr(r.err, "INVALID_ARGUMENT") != NULL, "exit %d: %s", r.exit_code,
              r.err);
    cli_free(&r);
    r = cpctl((const char *[]){"wait-ack", "--node", "ghost", "--version", "1", "--timeout", "200ms", NULL});
    IT_ASSERT(r.exit_code == 1 && strstr(r.out, "node \"ghost\" has not connected") != NULL, "exit %d: %s",
              r.exit_code, r.out);
    cli_free(&r);
    r = cpctl((const char *[]){"--json", "wait-ack", "--node", "ghost", "--version", "1", "--timeout", "0.1s",
                               NULL});
    IT_ASSERT(r.exit_code == 1 && strstr(r.out, "\"acked\": false") != NULL, "exit %d: %s", r.exit_code,
              r.out);
    cli_free(&r);
    r = cpctl((const char *[]){"set-weight", "--cluster", "backend", "--address", "127.0.0.1:8081", NULL});
    IT_ASSERT(r.exit_code == 2 && strstr(r.err, "needs --weight") != NULL, "exit %d: %s", r.exit_code, r.err);
    cli_free(&r);
    r = cpctl((const char *[]){"nodes", "--weight", "3", NULL});
    IT_ASSERT(r.exit_code == 2 && strstr(r.err, "--weight is not a flag of nodes") != NULL, "exit %d: %s",
              r.exit_code, r.err);
    cli_free(&r);
    r = cpctl((const char *[]){"frobnicate", NULL});
    IT_ASSERT(r.exit_code == 2, "exit %d", r.exit_code);
    cli_free(&r);

    /* A server that is not there: a clear message within the deadline. */
    int fds[1];
    int port = harness_refused_port(fds);
    IT_ASSERT(port > 0, "refused port");
    char server[64];
    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    char *bin = harness_bin("remora-cpctl");
    char *argv[] = {bin, "--server", server, "--deadline", "300ms", "nodes", NULL};
    harness_proc_t *p = harness_spawn("cpctl-unreachable", argv, NULL);
    free(bin);
    r = cpctl_finish(p, WAIT_MS);
    IT_ASSERT(r.exit_code == 3 && strstr(r.err, "no answer from the control plane") != NULL, "exit %d: %s",
              r.exit_code, r.err);
    cli_free(&r);
    harness_close_fds(fds, 1);
}

static void test_sigterm(void **state)
{
    xs_t x;
    ads_setup(&x, "node-t", backend_only, 1);
    harness_proc_t *waiter = cpctl_spawn(
        (const char *[]){"wait-ack", "--node", "node-t", "--version", "99", "--timeout", "60s", NULL});
    /* The parked call is visible in the log before the signal goes out. */
    char *line =
        harness_wait_line_containing(g_cp.proc->stderr_path, "version 99 type (all): waiting", WAIT_MS);
    IT_ASSERT(line != NULL, "WaitForAck not parked");
    free(line);
    IT_ASSERT(kill(g_cp.proc->pid, SIGTERM) == 0, "kill");
    IT_ASSERT(xs_status(&x, WAIT_MS) == GRPC_STATUS_UNAVAILABLE, "stream status %d", x.status);
    cli_t w = cpctl_finish(waiter, WAIT_MS);
    IT_ASSERT(w.exit_code == 1 && strstr(w.out, "shutting down") != NULL, "wait-ack exit %d: %s", w.exit_code,
              w.out);
    cli_free(&w);
    int status;
    IT_ASSERT(harness_proc_wait(g_cp.proc, WAIT_MS, &status) == 0, "remora-cp still running after SIGTERM");
    IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "remora-cp exit status %d", status);
    xs_close(&x);
}

static int group_setup(void **state)
{
    grpc_init();
    return 0;
}

static int group_teardown(void **state)
{
    harness_kill_all();
    grpc_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ads_cds_eds_and_push, start_cp, stop_cp),
        cmocka_unit_test_setup_teardown(test_nack_recorded, start_cp, stop_cp),
        cmocka_unit_test_setup_teardown(test_stale_nonce_ignored, start_cp, stop_cp),
        cmocka_unit_test_setup_teardown(test_file_reload, start_cp, stop_cp),
        cmocka_unit_test_setup_teardown(test_separate_services, start_cp, stop_cp),
        cmocka_unit_test_setup_teardown(test_many_streams, start_cp, stop_cp),
        cmocka_unit_test_setup_teardown(test_cli_errors, start_cp, stop_cp),
        cmocka_unit_test_setup_teardown(test_sigterm, start_cp, stop_cp),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
