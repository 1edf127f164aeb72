/* remora-cpctl: command-line client of remora-cp's Admin API (remora.controlplane.v1.Admin). */
#include "cp_grpc.h"
#include "cp_snapshot.h"
#include "remora/controlplane/v1/admin.pb-c.h"
#include "remora_proto/xds.h"

#include <getopt.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    EXIT_NOT_ACKED = 1, /* wait-ack: the node did not ACK (timeout or NACK) */
    EXIT_USAGE = 2,
    EXIT_RPC = 3, /* the server could not be reached or answered with an error status */
};

#define DEFAULT_SERVER      "127.0.0.1:18000"
#define DEFAULT_DEADLINE_MS 5000
#define DEFAULT_WAIT_MS     10000

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: remora-cpctl [--server HOST:PORT] [--json] [--deadline DUR] COMMAND [FLAGS]\n"
        "\n"
        "commands:\n"
        "  add-endpoint    --cluster C --address H:P [--weight N] [--priority N] [--health H]\n"
        "  remove-endpoint --cluster C --address H:P\n"
        "  set-weight      --cluster C --address H:P --weight N\n"
        "  set-priority    --cluster C --address H:P --priority N\n"
        "  set-health      --cluster C --address H:P --health H\n"
        "  upsert-cluster  --name N [--lb-policy P] [--connect-timeout DUR] [--endpoint "
        "H:P[,W[,PRIO[,HEALTH]]]]...\n"
        "  remove-cluster  --name N\n"
        "  nodes\n"
        "  wait-ack        --node ID --version V [--type-url T|cds|eds] [--timeout DUR]\n"
        "\n"
        "  --server    the control plane (default " DEFAULT_SERVER ")\n"
        "  --json      print the answer as JSON\n"
        "  --deadline  how long to wait for the server to answer (default 5s; wait-ack adds its --timeout)\n"
        "  H (health): UNKNOWN, HEALTHY, UNHEALTHY, DRAINING, TIMEOUT, DEGRADED\n"
        "  DUR: 250ms, 1.5s, 2m, or a number of seconds\n"
        "\n"
        "Mutations print the snapshot version that contains them. wait-ack exits 0 once the node has\n"
        "ACKed the version, 1 if it NACKed it or the timeout passed. Exit 2: usage error; 3: the call\n"
        "failed (server unreachable, NOT_FOUND, ...).\n");
}

/* ---- argument parsing ---- */

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "250ms", "1.5s", "2m", "10" (seconds) -> milliseconds. */
static int parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    if ((s[0] < '0' || s[0] > '9') && s[0] != '.')
        return -1;
    double v = strtod(s, &end);
    double scale = 1000;
    if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        scale = 1000;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else
        return -1;
    double ms = v * scale;
    if (!(ms >= 0) || ms > 86400e3)
        return -1;
    *out = (int64_t)(ms + 0.5);
    return 0;
}

typedef struct {
    const char *server;
    bool json;
    int64_t deadline_ms;
    const char *cluster, *address, *weight, *priority, *health, *name, *lb_policy, *connect_timeout;
    const char *node, *version, *type_url, *timeout;
    const char **endpoints;
    size_t num_endpoints;
} args_t;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "remora-cpctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(remora-cpctl --help shows the usage)\n");
    return EXIT_USAGE;
}

/* ---- one unary call ---- */

typedef struct {
    grpc_status_code status;
    char *details;
    ProtobufCMessage *response;
} result_t;

static void result_free(result_t *r)
{
    free(r->details);
    if (r->response != NULL)
        protobuf_c_message_free_unpacked(r->response, NULL);
}

/* Calls method with req and waits up to deadline_ms (including the time to connect: the call waits for
 * the server to become reachable rather than failing at once). */
static void call_unary(const char *server, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp_desc, int64_t deadline_ms, result_t *out)
{
    memset(out, 0, sizeof(*out));
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *channel = grpc_channel_create(server, creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               grpc_slice_from_static_string(method), NULL, deadline, NULL);

    grpc_byte_buffer *send = rm_cp_grpc_pack(req), *recv = NULL;
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &out->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    static int tag;
    grpc_call_error e = grpc_call_start_batch(call, ops, 6, &tag, NULL);
    if (e != GRPC_CALL_OK) {
        out->status = GRPC_STATUS_INTERNAL;
        out->details = strdup(grpc_call_error_to_string(e));
    } else {
        grpc_event ev;
        do
            ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        while (ev.type != GRPC_OP_COMPLETE);
        char *text = grpc_slice_to_c_string(details);
        out->details = strdup(text);
        gpr_free(text);
        if (out->status == GRPC_STATUS_OK) {
            out->response = rm_cp_grpc_unpack(resp_desc, recv);
            if (out->response == NULL) {
                out->status = GRPC_STATUS_INTERNAL;
                free(out->details);
                out->details = strdup("the answer does not parse");
            }
        }
    }
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(details);
    gpr_free((void *)error_string);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_call_unref(call);
    grpc_channel_destroy(channel);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

/* Prints why the call failed; returns the exit code. */
static int report_failure(const args_t *a, const char *command, const result_t *r, int64_t deadline_ms)
{
    if (r->status == GRPC_STATUS_DEADLINE_EXCEEDED || r->status == GRPC_STATUS_UNAVAILABLE)
        fprintf(stderr, "remora-cpctl: %s: no answer from the control plane at %s within %.3gs (%s%s%s)\n",
                command, a->server, (double)deadline_ms / 1000, rm_cp_grpc_status_name(r->status),
                r->details && r->details[0] ? ": " : "", r->details ? r->details : "");
    else
        fprintf(stderr, "remora-cpctl: %s: %s: %s\n", command, rm_cp_grpc_status_name(r->status),
                r->details ? r->details : "");
    return EXIT_RPC;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", s);
    free(s);
    json_decref(j);
}

/* ---- commands ---- */

static int run_mutation(const args_t *a, const char *command, const char *method, const ProtobufCMessage *req)
{
    result_t r;
    call_unary(a->server, method, req, &remora__controlplane__v1__mutation_response__descriptor,
               a->deadline_ms, &r);
    int rc = 0;
    if (r.status != GRPC_STATUS_OK) {
        rc = report_failure(a, command, &r, a->deadline_ms);
    } else {
        const Remora__Controlplane__V1__MutationResponse *resp = (const void *)r.response;
        if (a->json)
            print_json(json_pack("{s:s}", "version", resp->version));
        else
            printf("version %s\n", resp->version);
    }
    result_free(&r);
    return rc;
}

static int need(const char *value, const char *flag, const char *command)
{
    if (value != NULL)
        return 0;
    fprintf(stderr, "remora-cpctl: %s needs %s\n", command, flag);
    return -1;
}

static int health_arg(const char *text, int *out)
{
    if (rm_cp_health_parse(text, out) != 0) {
        usage_error("unknown health \"%s\" (UNKNOWN, HEALTHY, UNHEALTHY, DRAINING, TIMEOUT, DEGRADED)", text);
        return -1;
    }
    return 0;
}

static int cmd_endpoint(const args_t *a, const char *command)
{
    if (need(a->cluster, "--cluster", command) || need(a->address, "--address", command))
        return EXIT_USAGE;
    Remora__Controlplane__V1__EndpointRef ref = REMORA__CONTROLPLANE__V1__ENDPOINT_REF__INIT;
    ref.cluster = (char *)a->cluster;
    ref.address = (char *)a->address;
    uint32_t n = 0;
    int health = 0;

    if (strcmp(command, "add-endpoint") == 0) {
        Remora__Controlplane__V1__Endpoint e = REMORA__CONTROLPLANE__V1__ENDPOINT__INIT;
        e.cluster = ref.cluster;
        e.address = ref.address;
        if (a->weight != NULL && (parse_u32(a->weight, &e.weight) != 0 || e.weight == 0))
            return usage_error("--weight must be an integer >= 1, got \"%s\"", a->weight);
        if (a->priority != NULL && parse_u32(a->priority, &e.priority) != 0)
            return usage_error("--priority must be a non-negative integer, got \"%s\"", a->priority);
        if (a->health != NULL && health_arg(a->health, &health) != 0)
            return EXIT_USAGE;
        e.health = (Envoy__Config__Core__V3__HealthStatus)health;
        Remora__Controlplane__V1__AddEndpointRequest req =
            REMORA__CONTROLPLANE__V1__ADD_ENDPOINT_REQUEST__INIT;
        req.endpoint = &e;
        return run_mutation(a, command, REMORA_METHOD_ADMIN_ADD_ENDPOINT, &req.base);
    }
    if (strcmp(command, "remove-endpoint") == 0) {
        Remora__Controlplane__V1__RemoveEndpointRequest req =
            REMORA__CONTROLPLANE__V1__REMOVE_ENDPOINT_REQUEST__INIT;
        req.endpoint = &ref;
        return run_mutation(a, command, REMORA_METHOD_ADMIN_REMOVE_ENDPOINT, &req.base);
    }
    if (strcmp(command, "set-weight") == 0) {
        if (need(a->weight, "--weight", command))
            return EXIT_USAGE;
        if (parse_u32(a->weight, &n) != 0 || n == 0)
            return usage_error("--weight must be an integer >= 1, got \"%s\"", a->weight);
        Remora__Controlplane__V1__SetEndpointWeightRequest req =
            REMORA__CONTROLPLANE__V1__SET_ENDPOINT_WEIGHT_REQUEST__INIT;
        req.endpoint = &ref;
        req.weight = n;
        return run_mutation(a, command, REMORA_METHOD_ADMIN_SET_ENDPOINT_WEIGHT, &req.base);
    }
    if (strcmp(command, "set-priority") == 0) {
        if (need(a->priority, "--priority", command))
            return EXIT_USAGE;
        if (parse_u32(a->priority, &n) != 0)
            return usage_error("--priority must be a non-negative integer, got \"%s\"", a->priority);
        Remora__Controlplane__V1__SetEndpointPriorityRequest req =
            REMORA__CONTROLPLANE__V1__SET_ENDPOINT_PRIORITY_REQUEST__INIT;
        req.endpoint = &ref;
        req.priority = n;
        return run_mutation(a, command, REMORA_METHOD_ADMIN_SET_ENDPOINT_PRIORITY, &req.base);
    }
    /* set-health */
    if (need(a->health, "--health", command) || health_arg(a->health, &health) != 0)
        return EXIT_USAGE;
    Remora__Controlplane__V1__SetEndpointHealthRequest req =
        REMORA__CONTROLPLANE__V1__SET_ENDPOINT_HEALTH_REQUEST__INIT;
    req.endpoint = &ref;
    req.health = (Envoy__Config__Core__V3__HealthStatus)health;
    return run_mutation(a, command, REMORA_METHOD_ADMIN_SET_ENDPOINT_HEALTH, &req.base);
}

/* "H:P[,WEIGHT[,PRIORITY[,HEALTH]]]" */
static int parse_endpoint_spec(const char *spec, Remora__Controlplane__V1__Endpoint *e, char **address)
{
    char *copy = strdup(spec);
    char *fields[4] = {NULL};
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == 4) {
            free(copy);
            return usage_error("--endpoint \"%s\": expected H:P[,WEIGHT[,PRIORITY[,HEALTH]]]", spec);
        }
        fields[n++] = tok;
    }
    int health = 0;
    if (n == 0 || (n > 1 && (parse_u32(fields[1], &e->weight) != 0 || e->weight == 0)) ||
        (n > 2 && parse_u32(fields[2], &e->priority) != 0) ||
        (n > 3 && rm_cp_health_parse(fields[3], &health) != 0)) {
        free(copy);
        return usage_error("--endpoint \"%s\": expected H:P[,WEIGHT>=1[,PRIORITY[,HEALTH]]]", spec);
    }
    e->health = (Envoy__Config__Core__V3__HealthStatus)health;
    *address = strdup(fields[0]);
    e->address = *address;
    free(copy);
    return 0;
}

static int cmd_upsert_cluster(const args_t *a)
{
    if (need(a->name, "--name", "upsert-cluster"))
        return EXIT_USAGE;
    Remora__Controlplane__V1__ClusterSpec spec = REMORA__CONTROLPLANE__V1__CLUSTER_SPEC__INIT;
    spec.name = (char *)a->name;
    spec.lb_policy = (char *)(a->lb_policy ? a->lb_policy : "");
    Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
    if (a->connect_timeout != NULL) {
        int64_t ms;
        if (parse_duration_ms(a->connect_timeout, &ms) != 0)
            return usage_error("--connect-timeout: invalid duration \"%s\"", a->connect_timeout);
        timeout.seconds = ms / 1000;
        timeout.nanos = (int32_t)(ms % 1000) * 1000000;
        spec.connect_timeout = &timeout;
    }
    Remora__Controlplane__V1__Endpoint *eps = calloc(a->num_endpoints + 1, sizeof(*eps));
    Remora__Controlplane__V1__Endpoint **ptrs = calloc(a->num_endpoints + 1, sizeof(*ptrs));
    char **addresses = calloc(a->num_endpoints + 1, sizeof(*addresses));
    int rc = 0;
    for (size_t i = 0; i < a->num_endpoints && rc == 0; i++) {
        remora__controlplane__v1__endpoint__init(&eps[i]);
        rc = parse_endpoint_spec(a->endpoints[i], &eps[i], &addresses[i]);
        ptrs[i] = &eps[i];
    }
    if (rc == 0) {
        spec.n_endpoints = a->num_endpoints;
        spec.endpoints = ptrs;
        Remora__Controlplane__V1__UpsertClusterRequest req =
            REMORA__CONTROLPLANE__V1__UPSERT_CLUSTER_REQUEST__INIT;
        req.cluster = &spec;
        rc = run_mutation(a, "upsert-cluster", REMORA_METHOD_ADMIN_UPSERT_CLUSTER, &req.base);
    }
    for (size_t i = 0; i < a->num_endpoints; i++)
        free(addresses[i]);
    free(addresses);
    free(ptrs);
    free(eps);
    return rc;
}

static int cmd_remove_cluster(const args_t *a)
{
    if (need(a->name, "--name", "remove-cluster"))
        return EXIT_USAGE;
    Remora__Controlplane__V1__RemoveClusterRequest req =
        REMORA__CONTROLPLANE__V1__REMOVE_CLUSTER_REQUEST__INIT;
    req.name = (char *)a->name;
    return run_mutation(a, "remove-cluster", REMORA_METHOD_ADMIN_REMOVE_CLUSTER, &req.base);
}

static const char *short_type(const char *type_url)
{
    if (strcmp(type_url, REMORA_TYPE_URL_CLUSTER) == 0)
        return "cds";
    if (strcmp(type_url, REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT) == 0)
        return "eds";
    return type_url;
}

static void format_time(const Google__Protobuf__Timestamp *ts, char *buf, size_t len)
{
    if (ts == NULL || (ts->seconds == 0 && ts->nanos == 0)) {
        snprintf(buf, len, "never");
        return;
    }
    time_t t = (time_t)ts->seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, ts->nanos / 1000000);
}

static int cmd_nodes(const args_t *a)
{
    Remora__Controlplane__V1__ListNodesRequest req = REMORA__CONTROLPLANE__V1__LIST_NODES_REQUEST__INIT;
    result_t r;
    call_unary(a->server, REMORA_METHOD_ADMIN_LIST_NODES, &req.base,
               &remora__controlplane__v1__list_nodes_response__descriptor, a->deadline_ms, &r);
    if (r.status != GRPC_STATUS_OK) {
        int rc = report_failure(a, "nodes", &r, a->deadline_ms);
        result_free(&r);
        return rc;
    }
    const Remora__Controlplane__V1__ListNodesResponse *resp = (const void *)r.response;
    char when[64];
    if (a->json) {
        json_t *nodes = json_array();
        for (size_t i = 0; i < resp->n_nodes; i++) {
            const Remora__Controlplane__V1__NodeStatus *n = resp->nodes[i];
            json_t *types = json_array();
            for (size_t k = 0; k < n->n_types; k++) {
                const Remora__Controlplane__V1__TypeStatus *t = n->types[k];
                format_time(t->last_seen, when, sizeof(when));
                json_array_append_new(types, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type_url", t->type_url,
                                                       "acked_version", t->acked_version, "nacked_version",
                                                       t->nacked_version, "nack_message", t->nack_message,
                                                       "last_seen", when));
            }
            json_array_append_new(nodes, json_pack("{s:s, s:s, s:b, s:o}", "node_id", n->node_id, "cluster",
                                                   n->cluster, "connected", n->connected, "types", types));
        }
        print_json(json_pack("{s:o}", "nodes", nodes));
    } else if (resp->n_nodes == 0) {
        printf("no node has connected yet\n");
    } else {
        for (size_t i = 0; i < resp->n_nodes; i++) {
            const Remora__Controlplane__V1__NodeStatus *n = resp->nodes[i];
            printf("node %s  cluster=%s  %s\n", n->node_id[0] ? n->node_id : "\"\"",
                   n->cluster[0] ? n->cluster : "-", n->connected ? "connected" : "disconnected");
            for (size_t k = 0; k < n->n_types; k++) {
                const Remora__Controlplane__V1__TypeStatus *t = n->types[k];
                format_time(t->last_seen, when, sizeof(when));
                printf("  %s  acked %s", short_type(t->type_url),
                       t->acked_version[0] ? t->acked_version : "-");
                if (t->nacked_version[0])
                    printf("  NACKED %s: %s", t->nacked_version, t->nack_message);
                printf("  last seen %s\n", when);
            }
        }
    }
    result_free(&r);
    return 0;
}

static int cmd_wait_ack(const args_t *a)
{
    if (need(a->node, "--node", "wait-ack") || need(a->version, "--version", "wait-ack"))
        return EXIT_USAGE;
    int64_t timeout_ms = DEFAULT_WAIT_MS;
    if (a->timeout != NULL && parse_duration_ms(a->timeout, &timeout_ms) != 0)
        return usage_error("--timeout: invalid duration \"%s\"", a->timeout);
    Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
    timeout.seconds = timeout_ms / 1000;
    timeout.nanos = (int32_t)(timeout_ms % 1000) * 1000000;
    Remora__Controlplane__V1__WaitForAckRequest req = REMORA__CONTROLPLANE__V1__WAIT_FOR_ACK_REQUEST__INIT;
    req.node_id = (char *)a->node;
    req.version = (char *)a->version;
    req.type_url = (char *)(a->type_url ? a->type_url : "");
    req.timeout = &timeout;
    result_t r;
    int64_t deadline = timeout_ms + a->deadline_ms;
    call_unary(a->server, REMORA_METHOD_ADMIN_WAIT_FOR_ACK, &req.base,
               &remora__controlplane__v1__wait_for_ack_response__descriptor, deadline, &r);
    if (r.status != GRPC_STATUS_OK) {
        int rc = report_failure(a, "wait-ack", &r, deadline);
        result_free(&r);
        return rc;
    }
    const Remora__Controlplane__V1__WaitForAckResponse *resp = (const void *)r.response;
    if (a->json)
        print_json(json_pack("{s:b, s:s, s:s}", "acked", resp->acked, "acked_version", resp->acked_version,
                             "message", resp->message));
    else if (resp->acked)
        printf("acked: node %s is at version %s\n", a->node, resp->acked_version);
    else
        printf("not acked: %s\n", resp->message[0] ? resp->message : "(no reason given)");
    int rc = resp->acked ? 0 : EXIT_NOT_ACKED;
    result_free(&r);
    return rc;
}

/* ---- main ---- */

/* Which flags each command takes (the global ones are always allowed). */
static const struct {
    const char *name;
    const char *flags;
} commands[] = {
    {"add-endpoint", "cluster address weight priority health"},
    {"remove-endpoint", "cluster address"},
    {"set-weight", "cluster address weight"},
    {"set-priority", "cluster address priority"},
    {"set-health", "cluster address health"},
    {"upsert-cluster", "name lb-policy connect-timeout endpoint"},
    {"remove-cluster", "name"},
    {"nodes", ""},
    {"wait-ack", "node version type-url timeout"},
};

static bool flag_allowed(const char *list, const char *flag)
{
    size_t len = strlen(flag);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, " ");
        if (n == len && strncmp(p, flag, n) == 0)
            return true;
        p += n;
        p += strspn(p, " ");
    }
    return false;
}

/* used: room for argc flag names. */
static int cli_main(int argc, char **argv, args_t *ap, const char **used)
{
    args_t a = *ap;
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 0},
        {"json", no_argument, NULL, 0},
        {"deadline", required_argument, NULL, 0},
        {"cluster", required_argument, NULL, 0},
        {"address", required_argument, NULL, 0},
        {"weight", required_argument, NULL, 0},
        {"priority", required_argument, NULL, 0},
        {"health", required_argument, NULL, 0},
        {"name", required_argument, NULL, 0},
        {"lb-policy", required_argument, NULL, 0},
        {"connect-timeout", required_argument, NULL, 0},
        {"endpoint", required_argument, NULL, 0},
        {"node", required_argument, NULL, 0},
        {"version", required_argument, NULL, 0},
        {"type-url", required_argument, NULL, 0},
        {"timeout", required_argument, NULL, 0},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    size_t num_used = 0;
    int c, index;
    while ((c = getopt_long(argc, argv, "h", longopts, &index)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c != 0) {
            usage(stderr);
            return EXIT_USAGE;
        }
        const char *name = longopts[index].name;
        used[num_used++] = name;
        if (strcmp(name, "server") == 0)
            a.server = optarg;
        else if (strcmp(name, "json") == 0)
            a.json = true;
        else if (strcmp(name, "deadline") == 0) {
            if (parse_duration_ms(optarg, &a.deadline_ms) != 0 || a.deadline_ms == 0)
                return usage_error("--deadline: invalid duration \"%s\"", optarg);
        } else if (strcmp(name, "cluster") == 0)
            a.cluster = optarg;
        else if (strcmp(name, "address") == 0)
            a.address = optarg;
        else if (strcmp(name, "weight") == 0)
            a.weight = optarg;
        else if (strcmp(name, "priority") == 0)
            a.priority = optarg;
        else if (strcmp(name, "health") == 0)
            a.health = optarg;
        else if (strcmp(name, "name") == 0)
            a.name = optarg;
        else if (strcmp(name, "lb-policy") == 0)
            a.lb_policy = optarg;
        else if (strcmp(name, "connect-timeout") == 0)
            a.connect_timeout = optarg;
        else if (strcmp(name, "endpoint") == 0)
            a.endpoints[a.num_endpoints++] = optarg;
        else if (strcmp(name, "node") == 0)
            a.node = optarg;
        else if (strcmp(name, "version") == 0)
            a.version = optarg;
        else if (strcmp(name, "type-url") == 0)
            a.type_url = optarg;
        else if (strcmp(name, "timeout") == 0)
            a.timeout = optarg;
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (optind + 1 < argc)
        return usage_error("unexpected argument \"%s\"", argv[optind + 1]);
    const char *command = argv[optind];
    int which = -1;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, command) == 0)
            which = (int)i;
    if (which < 0)
        return usage_error("unknown command \"%s\"", command);
    for (size_t i = 0; i < num_used; i++) {
        if (strcmp(used[i], "server") == 0 || strcmp(used[i], "json") == 0 ||
            strcmp(used[i], "deadline") == 0)
            continue;
        if (!flag_allowed(commands[which].flags, used[i])) {
            fprintf(stderr, "remora-cpctl: --%s is not a flag of %s\n", used[i], command);
            return EXIT_USAGE;
        }
    }

    grpc_init();
    int rc;
    if (strcmp(command, "upsert-cluster") == 0)
        rc = cmd_upsert_cluster(&a);
    else if (strcmp(command, "remove-cluster") == 0)
        rc = cmd_remove_cluster(&a);
    else if (strcmp(command, "nodes") == 0)
        rc = cmd_nodes(&a);
    else if (strcmp(command, "wait-ack") == 0)
        rc = cmd_wait_ack(&a);
    else
        rc = cmd_endpoint(&a, command);
    grpc_shutdown();
    return rc;
}

int main(int argc, char **argv)
{
    args_t a;
    memset(&a, 0, sizeof(a));
    a.server = DEFAULT_SERVER;
    a.deadline_ms = DEFAULT_DEADLINE_MS;
    a.endpoints = calloc((size_t)argc, sizeof(*a.endpoints));
    const char **used = calloc((size_t)argc, sizeof(*used));
    int rc = cli_main(argc, argv, &a, used);
    free(used);
    free(a.endpoints);
    return rc;
}
