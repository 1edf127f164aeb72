#include "cp_server.h"

#include "core/log.h"
#include "core/mem.h"
#include "cp_grpc.h"
#include "cp_snapshot.h"
#include "cp_xds_state.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "remora/controlplane/v1/admin.pb-c.h"
#include "remora_proto/xds.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Outstanding grpc_server_request_call slots: how many new calls can be accepted between two turns
 * of the loop. Each accepted call re-arms its slot at once. */
#define NUM_CALL_SLOTS  16
#define MAX_WAIT_MS     (3600 * 1000)
#define NEVER           INT64_MAX
#define SHUTDOWN_STATUS "control plane is shutting down"

typedef Envoy__Service__Discovery__V3__DiscoveryRequest discovery_request_t;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse discovery_response_t;

typedef enum {
    TAG_NEW_CALL,
    TAG_SHUTDOWN,
    TAG_STREAM_RECV,
    TAG_STREAM_SEND,
    TAG_STREAM_CLOSE,
    TAG_UNARY_RECV,
    TAG_UNARY_SEND,
    TAG_UNARY_CLOSE,
} tag_kind_t;

/* Every completion-queue tag points at one of these, embedded in the object it belongs to. */
typedef struct {
    tag_kind_t kind;
    void *owner;
} tag_t;

typedef struct {
    tag_t tag;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array metadata;
    bool armed;
} call_slot_t;

typedef enum {
    SVC_ADS,
    SVC_CDS,
    SVC_EDS,
} service_t;

static const char *const service_names[] = {"ADS", "CDS", "EDS"};

/* One xDS stream. Freed once the call is over (RECV_CLOSE_ON_SERVER completed) and no batch is in
 * flight; `ops` counts the batches. At most one send batch (message or status) is in flight. */
typedef struct stream {
    struct stream *prev, *next;
    rm_cp_server_t *srv;
    grpc_call *call;
    uint64_t id;
    service_t service;
    char *peer;
    tag_t recv_tag, send_tag, close_tag;
    grpc_byte_buffer *recv_buf, *send_buf;
    int cancelled;
    unsigned ops;
    bool closed;    /* the call is over */
    bool finishing; /* a status is due; no more responses */
    bool status_sent;
    bool send_busy;
    bool initial_md_sent;
    grpc_status_code finish_code;
    grpc_slice finish_details;
    bool warned_unknown_type;
    rm_cp_node_t *node; /* borrowed from the registry; NULL until the first request */
    rm_cp_sub_t subs[RM_CP_TYPE_COUNT];
} stream_t;

/* One Admin call (or a call to an unknown method, answered UNIMPLEMENTED). */
typedef struct unary {
    struct unary *prev, *next;
    rm_cp_server_t *srv;
    grpc_call *call;
    int method; /* index into admin_methods, -1: unknown */
    tag_t recv_tag, send_tag, close_tag;
    grpc_byte_buffer *recv_buf, *send_buf;
    int cancelled;
    unsigned ops;
    bool closed;
    bool responded;
    grpc_slice details;
    bool has_details;
    /* a parked WaitForAck */
    bool waiting;
    char *wait_node;
    uint64_t wait_version;
    int wait_type;
    int64_t wait_deadline_ms;
    int64_t wait_timeout_ms;
} unary_t;

typedef struct {
    bool valid;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_sig_t;

struct rm_cp_server {
    char *listen;
    char *snapshot_path;
    int poll_interval_ms;
    int default_wait_timeout_ms;
    int shutdown_grace_ms;

    grpc_server *server;
    grpc_completion_queue *cq;
    int port;
    call_slot_t slots[NUM_CALL_SLOTS];
    tag_t shutdown_tag;
    atomic_bool stop_requested;
    atomic_bool shutdown_called;
    bool started;
    bool stopping;
    bool shutdown_done;
    bool cancelled_all;
    int64_t cancel_at_ms;

    rm_cp_snapshot_t *snapshot;
    rm_cp_rendered_t *rendered;
    uint64_t version;
    uint64_t nonce_counter;
    uint64_t stream_counter;

    stream_t *streams;
    unary_t *unaries;
    size_t live; /* streams + unaries not yet freed */

    rm_cp_node_t **nodes; /* every node seen since start */
    size_t num_nodes;

    file_sig_t seen_sig;
    bool stat_failed_logged;
    int64_t next_poll_ms;
};

/* ---- small helpers ---- */

static bool start_batch(grpc_call *call, const grpc_op *ops, size_t n, tag_t *tag)
{
    grpc_call_error e = grpc_call_start_batch(call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        /* Only a misuse of the API gets here; the call cannot be trusted any more. */
        RM_LOG_ERROR("grpc_call_start_batch: %s", grpc_call_error_to_string(e));
        grpc_call_cancel(call, NULL);
        return false;
    }
    return true;
}

static char *version_str(uint64_t v, char buf[24])
{
    snprintf(buf, 24, "%" PRIu64, v);
    return buf;
}

static rm_cp_node_t *find_node(rm_cp_server_t *srv, const char *id)
{
    for (size_t i = 0; i < srv->num_nodes; i++)
        if (strcmp(srv->nodes[i]->id, id) == 0)
            return srv->nodes[i];
    return NULL;
}

static size_t count_endpoints(const rm_cp_snapshot_t *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->num_clusters; i++)
        n += s->clusters[i].num_endpoints;
    return n;
}

static void eval_waits(rm_cp_server_t *srv);
static void stream_pump(stream_t *s);

/* ---- snapshot ---- */

/* Renders the (possibly changed) snapshot; if what is served changes, bumps the version and pushes it to
 * every stream. Returns the version that holds the current snapshot. */
static uint64_t snapshot_changed(rm_cp_server_t *srv, const char *reason)
{
    rm_cp_rendered_t *r = rm_cp_snapshot_render(srv->snapshot);
    if (srv->rendered != NULL && rm_cp_rendered_equal(r, srv->rendered)) {
        rm_cp_rendered_free(r);
        RM_LOG_DEBUG("%s: no change, still version %" PRIu64, reason, srv->version);
        return srv->version;
    }
    rm_cp_rendered_free(srv->rendered);
    srv->rendered = r;
    srv->version++;
    RM_LOG_INFO("snapshot version %" PRIu64 " (%s): %zu clusters, %zu endpoints", srv->version, reason,
                srv->snapshot->num_clusters, count_endpoints(srv->snapshot));
    for (stream_t *s = srv->streams; s != NULL; s = s->next)
        stream_pump(s);
    eval_waits(srv);
    return srv->version;
}

static file_sig_t file_sig(const struct stat *st)
{
    file_sig_t sig = {true, st->st_dev, st->st_ino, st->st_size, st->st_mtim, st->st_ctim};
    return sig;
}

static bool sig_equal(const file_sig_t *a, const file_sig_t *b)
{
    return a->valid == b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Reloads the snapshot file if it changed since it was last read (also after a failed read, so a broken
 * file is reported once per change, not once per poll). */
static void check_file(rm_cp_server_t *srv)
{
    struct stat st;
    if (stat(srv->snapshot_path, &st) != 0) {
        if (!srv->stat_failed_logged)
            RM_LOG_WARN("snapshot file %s: %s; still serving version %" PRIu64, srv->snapshot_path,
                        strerror(errno), srv->version);
        srv->stat_failed_logged = true;
        return;
    }
    srv->stat_failed_logged = false;
    file_sig_t sig = file_sig(&st);
    if (sig_equal(&sig, &srv->seen_sig))
        return;
    srv->seen_sig = sig;
    rm_cp_snapshot_t *snap;
    char err[1024];
    if (rm_cp_snapshot_load_file(srv->snapshot_path, &snap, err, sizeof(err)) != 0) {
        RM_LOG_ERROR("snapshot reload failed, still serving version %" PRIu64 ": %s", srv->version, err);
        return;
    }
    rm_cp_snapshot_free(srv->snapshot);
    srv->snapshot = snap;
    snapshot_changed(srv, "file reload");
}

/* ---- xDS streams ---- */

static void stream_maybe_free(stream_t *s)
{
    if (!s->closed || s->ops > 0)
        return;
    rm_cp_server_t *srv = s->srv;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    srv->live--;
    for (int t = 0; t < RM_CP_TYPE_COUNT; t++)
        rm_cp_sub_fini(&s->subs[t]);
    if (s->send_buf != NULL)
        grpc_byte_buffer_destroy(s->send_buf);
    if (s->recv_buf != NULL)
        grpc_byte_buffer_destroy(s->recv_buf);
    grpc_slice_unref(s->finish_details);
    grpc_call_unref(s->call);
    free(s->peer);
    free(s);
}

static const char *stream_node_id(const stream_t *s)
{
    return s->node != NULL ? s->node->id : "?";
}

static void stream_arm_recv(stream_t *s)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_buf;
    if (start_batch(s->call, &op, 1, &s->recv_tag))
        s->ops++;
}

static void stream_send_status(stream_t *s)
{
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!s->initial_md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        s->initial_md_sent = true;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = s->finish_code;
    ops[n].data.send_status_from_server.status_details = &s->finish_details;
    n++;
    s->status_sent = true;
    if (start_batch(s->call, ops, n, &s->send_tag)) {
        s->ops++;
        s->send_busy = true;
    }
}

/* Ends the stream with a status (after the response being sent, if any). */
static void stream_finish(stream_t *s, grpc_status_code code, const char *message)
{
    if (s->finishing || s->closed)
        return;
    s->finishing = true;
    s->finish_code = code;
    s->finish_details = grpc_slice_from_copied_string(message ? message : "");
    if (code != GRPC_STATUS_OK)
        RM_LOG_INFO("stream %" PRIu64 " (node \"%s\"): closing with %s: %s", s->id, stream_node_id(s),
                    rm_cp_grpc_status_name(code), message ? message : "");
    if (!s->send_busy)
        stream_send_status(s);
}

/* The resources the subscription gets now, as a serialized DiscoveryResponse carrying only type_url and
 * resources (the version and nonce are prepended when sending). *count gets the number of resources. */
static uint8_t *build_content(rm_cp_server_t *srv, const rm_cp_sub_t *sub, rm_cp_type_t type, size_t *len,
                              size_t *count)
{
    const rm_cp_rendered_t *r = srv->rendered;
    Google__Protobuf__Any *anys = rm_calloc(r->num_resources, sizeof(*anys));
    Google__Protobuf__Any **ptrs = rm_calloc(r->num_resources, sizeof(*ptrs));
    size_t n = 0;
    for (size_t i = 0; i < r->num_resources; i++) {
        if (!rm_cp_sub_wants(sub, r->resources[i].name))
            continue;
        google__protobuf__any__init(&anys[n]);
        anys[n].type_url = (char *)rm_cp_type_url(type);
        anys[n].value = type == RM_CP_TYPE_CLUSTER ? r->resources[i].cluster : r->resources[i].cla;
        ptrs[n] = &anys[n];
        n++;
    }
    discovery_response_t resp = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
    resp.type_url = (char *)rm_cp_type_url(type);
    resp.n_resources = n;
    resp.resources = ptrs;
    *len = protobuf_c_message_get_packed_size(&resp.base);
    uint8_t *out = rm_malloc(*len ? *len : 1);
    protobuf_c_message_pack(&resp.base, out);
    free(ptrs);
    free(anys);
    *count = n;
    return out;
}

static void stream_send_response(stream_t *s, rm_cp_type_t type, const uint8_t *content, size_t len,
                                 size_t count)
{
    rm_cp_server_t *srv = s->srv;
    char version[24], nonce[24];
    version_str(srv->version, version);
    version_str(++srv->nonce_counter, nonce);
    discovery_response_t head = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
    head.version_info = version;
    head.nonce = nonce;
    s->send_buf = rm_cp_grpc_pack_concat(&head.base, content, len);

    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!s->initial_md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        s->initial_md_sent = true;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = s->send_buf;
    n++;
    if (!start_batch(s->call, ops, n, &s->send_tag))
        return;
    s->ops++;
    s->send_busy = true;
    rm_cp_sub_on_sent(&s->subs[type], srv->version, nonce, content, len);
    RM_LOG_DEBUG("stream %" PRIu64 " -> node \"%s\": %s version %s nonce %s, %zu resources", s->id,
                 stream_node_id(s), rm_cp_type_short_name(type), version, nonce, count);
}

/* Sends the next response the stream is owed (one at a time; the send completion calls this again),
 * clusters before endpoints; types whose resources did not change carry their ACK state forward. */
static void stream_pump(stream_t *s)
{
    rm_cp_server_t *srv = s->srv;
    if (s->closed || s->finishing || s->send_busy || s->node == NULL)
        return;
    bool carried = false;
    for (int t = 0; t < RM_CP_TYPE_COUNT; t++) {
        rm_cp_sub_t *sub = &s->subs[t];
        if (!sub->subscribed)
            continue;
        size_t len, count;
        uint8_t *content = build_content(srv, sub, (rm_cp_type_t)t, &len, &count);
        if (rm_cp_sub_needs_send(sub, content, len)) {
            stream_send_response(s, (rm_cp_type_t)t, content, len, count);
            free(content);
            break;
        }
        free(content);
        if (sub->current_through < srv->version) {
            rm_cp_on_unchanged(sub, &s->node->types[t], srv->version);
            carried = true;
        }
    }
    if (carried)
        eval_waits(srv);
}

static void stream_bind_node(stream_t *s, const discovery_request_t *req)
{
    rm_cp_server_t *srv = s->srv;
    const char *id = req->node != NULL && req->node->id != NULL ? req->node->id : "";
    const char *cluster = req->node != NULL && req->node->cluster != NULL ? req->node->cluster : "";
    rm_cp_node_t *node = find_node(srv, id);
    if (node == NULL) {
        node = rm_cp_node_new(id, cluster);
        srv->nodes = rm_realloc(srv->nodes, (srv->num_nodes + 1) * sizeof(*srv->nodes));
        srv->nodes[srv->num_nodes++] = node;
    } else if (cluster[0] != '\0' && strcmp(node->cluster, cluster) != 0) {
        free(node->cluster);
        node->cluster = rm_strdup(cluster);
    }
    node->streams++;
    s->node = node;
    if (id[0] == '\0')
        RM_LOG_WARN("stream %" PRIu64 " (%s) from %s: the first request has no node id; tracking it as \"\"",
                    s->id, service_names[s->service], s->peer);
    else
        RM_LOG_INFO("stream %" PRIu64 " (%s) from %s: node \"%s\" (cluster \"%s\")", s->id,
                    service_names[s->service], s->peer, id, cluster);
}

static void stream_handle_request(stream_t *s, const discovery_request_t *req)
{
    rm_cp_server_t *srv = s->srv;
    if (s->node == NULL)
        stream_bind_node(s, req);

    const char *type_url = req->type_url != NULL ? req->type_url : "";
    if (type_url[0] == '\0' && s->service != SVC_ADS)
        type_url = rm_cp_type_url(s->service == SVC_CDS ? RM_CP_TYPE_CLUSTER : RM_CP_TYPE_ENDPOINT);
    int t = rm_cp_type_from_url(type_url);
    if ((s->service == SVC_CDS && t != RM_CP_TYPE_CLUSTER) ||
        (s->service == SVC_EDS && t != RM_CP_TYPE_ENDPOINT)) {
        char msg[512];
        snprintf(msg, sizeof(msg), "type_url \"%s\" is not served by the %s service", type_url,
                 service_names[s->service]);
        stream_finish(s, GRPC_STATUS_INVALID_ARGUMENT, msg);
        return;
    }
    if (t < 0) {
        if (!s->warned_unknown_type)
            RM_LOG_WARN("stream %" PRIu64
                        " (node \"%s\"): ignoring requests for type \"%s\" (served: %s, %s)",
                        s->id, stream_node_id(s), type_url, REMORA_TYPE_URL_CLUSTER,
                        REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT);
        s->warned_unknown_type = true;
        return;
    }

    rm_cp_sub_t *sub = &s->subs[t];
    rm_cp_node_type_t *nt = &s->node->types[t];
    rm_cp_node_seen(nt, rm_cp_wall_ms());
    bool has_error = req->error_detail != NULL;
    rm_cp_req_kind_t kind = rm_cp_sub_classify(sub, req->response_nonce, req->version_info, has_error);
    RM_LOG_DEBUG("stream %" PRIu64 " <- node \"%s\": %s %s, version_info \"%s\", nonce \"%s\", %zu names",
                 s->id, stream_node_id(s), rm_cp_type_short_name((rm_cp_type_t)t), rm_cp_req_kind_name(kind),
                 req->version_info ? req->version_info : "", req->response_nonce ? req->response_nonce : "",
                 req->n_resource_names);
    switch (kind) {
    case RM_CP_REQ_STALE:
        return;
    case RM_CP_REQ_NACK: {
        const char *msg = req->error_detail->message ? req->error_detail->message : "";
        RM_LOG_WARN("node \"%s\" NACKed %s version %" PRIu64 " (nonce %s): %s", s->node->id,
                    rm_cp_type_short_name((rm_cp_type_t)t), sub->sent_version, sub->sent_nonce, msg);
        rm_cp_on_nack(sub, nt, msg);
        eval_waits(srv);
        break;
    }
    case RM_CP_REQ_ACK:
        rm_cp_on_ack(sub, nt);
        RM_LOG_DEBUG("node \"%s\" ACKed %s version %" PRIu64, s->node->id,
                     rm_cp_type_short_name((rm_cp_type_t)t), sub->current_through);
        eval_waits(srv);
        break;
    case RM_CP_REQ_UPDATE:
        RM_LOG_DEBUG("stream %" PRIu64
                     " (node \"%s\"): %s request with the last nonce but version_info \"%s\" "
                     "(sent %" PRIu64 ") and no error_detail: a subscription update (after a NACK)",
                     s->id, s->node->id, rm_cp_type_short_name((rm_cp_type_t)t),
                     req->version_info ? req->version_info : "", sub->sent_version);
        break;
    case RM_CP_REQ_INITIAL:
        break;
    }
    rm_cp_sub_set_names(sub, (rm_cp_type_t)t, (const char *const *)req->resource_names,
                        req->n_resource_names);
    stream_pump(s);
}

static void stream_on_recv(stream_t *s, bool ok)
{
    s->ops--;
    grpc_byte_buffer *bb = s->recv_buf;
    s->recv_buf = NULL;
    if (!ok || bb == NULL || s->closed) {
        /* The client half-closed (or the call broke): answer with a status. */
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        stream_finish(s, GRPC_STATUS_OK, NULL);
        stream_maybe_free(s);
        return;
    }
    ProtobufCMessage *msg =
        rm_cp_grpc_unpack(&envoy__service__discovery__v3__discovery_request__descriptor, bb);
    grpc_byte_buffer_destroy(bb);
    if (msg == NULL) {
        stream_finish(s, GRPC_STATUS_INVALID_ARGUMENT, "the message is not a valid DiscoveryRequest");
    } else {
        stream_handle_request(s, (discovery_request_t *)msg);
        protobuf_c_message_free_unpacked(msg, NULL);
        if (!s->finishing && !s->closed)
            stream_arm_recv(s);
    }
    stream_maybe_free(s);
}

static void stream_on_send(stream_t *s, bool ok)
{
    s->ops--;
    s->send_busy = false;
    if (s->send_buf != NULL) {
        grpc_byte_buffer_destroy(s->send_buf);
        s->send_buf = NULL;
    }
    if (ok && s->finishing && !s->status_sent)
        stream_send_status(s);
    else if (ok)
        stream_pump(s);
    stream_maybe_free(s);
}

static void stream_on_close(stream_t *s)
{
    s->ops--;
    s->closed = true;
    if (s->node != NULL) {
        s->node->streams--;
        RM_LOG_INFO("stream %" PRIu64 " (%s) of node \"%s\" closed%s", s->id, service_names[s->service],
                    s->node->id, s->cancelled ? " (cancelled)" : "");
    } else {
        RM_LOG_DEBUG("stream %" PRIu64 " (%s) from %s closed before its first request", s->id,
                     service_names[s->service], s->peer);
    }
    stream_maybe_free(s);
}

static void stream_start(rm_cp_server_t *srv, grpc_call *call, service_t service)
{
    stream_t *s = RM_NEW(stream_t);
    s->srv = srv;
    s->call = call;
    s->id = ++srv->stream_counter;
    s->service = service;
    s->recv_tag = (tag_t){TAG_STREAM_RECV, s};
    s->send_tag = (tag_t){TAG_STREAM_SEND, s};
    s->close_tag = (tag_t){TAG_STREAM_CLOSE, s};
    s->finish_details = grpc_empty_slice();
    char *peer = grpc_call_get_peer(call);
    s->peer = rm_strdup(peer ? peer : "?");
    gpr_free(peer);
    s->next = srv->streams;
    if (srv->streams != NULL)
        srv->streams->prev = s;
    srv->streams = s;
    srv->live++;

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &s->cancelled;
    if (!start_batch(call, &op, 1, &s->close_tag)) {
        /* Without a close notification the stream could never be freed safely; leak it rather than
         * risk a use after free (only an API misuse gets here). */
        return;
    }
    s->ops++;
    stream_arm_recv(s);
    RM_LOG_DEBUG("stream %" PRIu64 " (%s) opened by %s", s->id, service_names[service], s->peer);
}

/* ---- unary Admin calls ---- */

static void unary_maybe_free(unary_t *u)
{
    if (!u->closed || u->ops > 0)
        return;
    rm_cp_server_t *srv = u->srv;
    if (u->prev != NULL)
        u->prev->next = u->next;
    else
        srv->unaries = u->next;
    if (u->next != NULL)
        u->next->prev = u->prev;
    srv->live--;
    if (u->send_buf != NULL)
        grpc_byte_buffer_destroy(u->send_buf);
    if (u->recv_buf != NULL)
        grpc_byte_buffer_destroy(u->recv_buf);
    if (u->has_details)
        grpc_slice_unref(u->details);
    grpc_call_unref(u->call);
    free(u->wait_node);
    free(u);
}

/* Answers the call: status OK with resp, or an error status with message. */
static void unary_respond(unary_t *u, grpc_status_code code, const char *message,
                          const ProtobufCMessage *resp)
{
    if (u->responded || u->closed)
        return;
    u->responded = true;
    u->waiting = false;
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (code == GRPC_STATUS_OK && resp != NULL) {
        u->send_buf = rm_cp_grpc_pack(resp);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = u->send_buf;
        n++;
    }
    u->details = grpc_slice_from_copied_string(message ? message : "");
    u->has_details = true;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.status_details = &u->details;
    n++;
    if (start_batch(u->call, ops, n, &u->send_tag))
        u->ops++;
}

static grpc_status_code status_for(int rc)
{
    switch (rc) {
    case RM_CP_OK:
        return GRPC_STATUS_OK;
    case RM_CP_ENOENT:
        return GRPC_STATUS_NOT_FOUND;
    case RM_CP_EEXIST:
        return GRPC_STATUS_ALREADY_EXISTS;
    case RM_CP_EINVAL:
        return GRPC_STATUS_INVALID_ARGUMENT;
    default:
        return GRPC_STATUS_INTERNAL;
    }
}

/* The end of every mutation: the error, or the version that contains the change. */
static void finish_mutation(unary_t *u, int rc, const char *err, const char *what)
{
    rm_cp_server_t *srv = u->srv;
    if (rc != RM_CP_OK) {
        RM_LOG_INFO("admin %s rejected: %s", what, err);
        unary_respond(u, status_for(rc), err, NULL);
        return;
    }
    char reason[600];
    snprintf(reason, sizeof(reason), "admin %s", what);
    uint64_t v = snapshot_changed(srv, reason);
    char version[24];
    Remora__Controlplane__V1__MutationResponse resp = REMORA__CONTROLPLANE__V1__MUTATION_RESPONSE__INIT;
    resp.version = version_str(v, version);
    unary_respond(u, GRPC_STATUS_OK, NULL, &resp.base);
}

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static void admin_add_endpoint(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    const Remora__Controlplane__V1__AddEndpointRequest *req = (const void *)m;
    char err[512] = "", what[512];
    const Remora__Controlplane__V1__Endpoint *e = req->endpoint;
    if (e == NULL) {
        finish_mutation(u, RM_CP_EINVAL, "endpoint is required", "AddEndpoint");
        return;
    }
    snprintf(what, sizeof(what), "AddEndpoint %s %s", str_or_empty(e->cluster), str_or_empty(e->address));
    int rc = rm_cp_snapshot_add_endpoint(srv->snapshot, str_or_empty(e->cluster), str_or_empty(e->address),
                                         e->weight, e->priority, (int)e->health, err, sizeof(err));
    finish_mutation(u, rc, err, what);
}

static const Remora__Controlplane__V1__EndpointRef *
endpoint_ref(unary_t *u, const Remora__Controlplane__V1__EndpointRef *ref, const char *what)
{
    if (ref == NULL)
        finish_mutation(u, RM_CP_EINVAL, "endpoint (cluster and address) is required", what);
    return ref;
}

static void admin_remove_endpoint(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    const Remora__Controlplane__V1__RemoveEndpointRequest *req = (const void *)m;
    const Remora__Controlplane__V1__EndpointRef *ref = endpoint_ref(u, req->endpoint, "RemoveEndpoint");
    if (ref == NULL)
        return;
    char err[512] = "", what[512];
    snprintf(what, sizeof(what), "RemoveEndpoint %s %s", str_or_empty(ref->cluster),
             str_or_empty(ref->address));
    int rc = rm_cp_snapshot_remove_endpoint(srv->snapshot, str_or_empty(ref->cluster),
                                            str_or_empty(ref->address), err, sizeof(err));
    finish_mutation(u, rc, err, what);
}

static void set_endpoint(rm_cp_server_t *srv, unary_t *u, const Remora__Controlplane__V1__EndpointRef *ref,
                         rm_cp_endpoint_attr_t attr, uint32_t value, const char *method, const char *shown)
{
    if (endpoint_ref(u, ref, method) == NULL)
        return;
    char err[512] = "", what[600];
    snprintf(what, sizeof(what), "%s %s %s %s", method, str_or_empty(ref->cluster),
             str_or_empty(ref->address), shown);
    int rc = rm_cp_snapshot_set_endpoint(srv->snapshot, str_or_empty(ref->cluster),
                                         str_or_empty(ref->address), attr, value, err, sizeof(err));
    finish_mutation(u, rc, err, what);
}

static void admin_set_weight(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    const Remora__Controlplane__V1__SetEndpointWeightRequest *req = (const void *)m;
    char shown[32];
    snprintf(shown, sizeof(shown), "weight=%u", req->weight);
    set_endpoint(srv, u, req->endpoint, RM_CP_SET_WEIGHT, req->weight, "SetEndpointWeight", shown);
}

static void admin_set_priority(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    const Remora__Controlplane__V1__SetEndpointPriorityRequest *req = (const void *)m;
    char shown[32];
    snprintf(shown, sizeof(shown), "priority=%u", req->priority);
    set_endpoint(srv, u, req->endpoint, RM_CP_SET_PRIORITY, req->priority, "SetEndpointPriority", shown);
}

static void admin_set_health(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    const Remora__Controlplane__V1__SetEndpointHealthRequest *req = (const void *)m;
    char shown[48];
    const char *name = rm_cp_health_name((int)req->health);
    snprintf(shown, sizeof(shown), "health=%s", name ? name : "?");
    set_endpoint(srv, u, req->endpoint, RM_CP_SET_HEALTH, (uint32_t)req->health, "SetEndpointHealth", shown);
}

/* ClusterSpec -> cluster; 0 or an error in err. */
static int cluster_from_spec(const Remora__Controlplane__V1__ClusterSpec *spec, rm_cp_cluster_t *c, char *err,
                             size_t errlen)
{
    memset(c, 0, sizeof(*c));
    if (spec == NULL || spec->name == NULL || spec->name[0] == '\0') {
        snprintf(err, errlen, "cluster.name is required");
        return RM_CP_EINVAL;
    }
    c->name = rm_strdup(spec->name);
    if (spec->lb_policy != NULL && spec->lb_policy[0] != '\0' &&
        rm_cp_lb_policy_parse(spec->lb_policy, &c->lb_policy) != 0) {
        snprintf(err, errlen,
                 "unknown lb_policy \"%s\" (expected one of ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM, "
                 "MAGLEV, "
                 "CLUSTER_PROVIDED, LOAD_BALANCING_POLICY_CONFIG)",
                 spec->lb_policy);
        return RM_CP_EINVAL;
    }
    if (spec->connect_timeout != NULL) {
        c->has_connect_timeout = true;
        c->connect_timeout_seconds = spec->connect_timeout->seconds;
        c->connect_timeout_nanos = spec->connect_timeout->nanos;
    }
    c->endpoints = rm_calloc(spec->n_endpoints, sizeof(*c->endpoints));
    for (size_t i = 0; i < spec->n_endpoints; i++) {
        const Remora__Controlplane__V1__Endpoint *e = spec->endpoints[i];
        rm_cp_endpoint_t *out = &c->endpoints[c->num_endpoints];
        if (e->cluster != NULL && e->cluster[0] != '\0' && strcmp(e->cluster, spec->name) != 0) {
            snprintf(err, errlen, "endpoints[%zu].cluster is \"%s\", not \"%s\"", i, e->cluster, spec->name);
            return RM_CP_EINVAL;
        }
        char msg[256];
        if (rm_cp_parse_address(str_or_empty(e->address), &out->host, &out->port, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "endpoints[%zu].address: %s", i, msg);
            return RM_CP_EINVAL;
        }
        c->num_endpoints++;
        out->weight = e->weight ? e->weight : 1;
        out->priority = e->priority;
        out->health = (int)e->health;
    }
    return rm_cp_cluster_check(c, err, errlen);
}

static void admin_upsert_cluster(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    const Remora__Controlplane__V1__UpsertClusterRequest *req = (const void *)m;
    rm_cp_cluster_t c;
    char err[512] = "", what[512];
    int rc = cluster_from_spec(req->cluster, &c, err, sizeof(err));
    if (rc == RM_CP_OK) {
        snprintf(what, sizeof(what), "UpsertCluster %s (%s, %zu endpoints)", c.name,
                 rm_cp_lb_policy_name(c.lb_policy), c.num_endpoints);
        rm_cp_snapshot_upsert_cluster(srv->snapshot, &c);
    } else {
        snprintf(what, sizeof(what), "UpsertCluster %s",
                 req->cluster ? str_or_empty(req->cluster->name) : "");
    }
    rm_cp_cluster_free(&c);
    finish_mutation(u, rc, err, what);
}

static void admin_remove_cluster(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    const Remora__Controlplane__V1__RemoveClusterRequest *req = (const void *)m;
    char err[512] = "", what[512];
    snprintf(what, sizeof(what), "RemoveCluster %s", str_or_empty(req->name));
    int rc = rm_cp_snapshot_remove_cluster(srv->snapshot, str_or_empty(req->name), err, sizeof(err));
    finish_mutation(u, rc, err, what);
}

static void admin_list_nodes(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    size_t n = srv->num_nodes;
    Remora__Controlplane__V1__NodeStatus *nodes = rm_calloc(n, sizeof(*nodes));
    Remora__Controlplane__V1__NodeStatus **node_ptrs = rm_calloc(n, sizeof(*node_ptrs));
    Remora__Controlplane__V1__TypeStatus *types = rm_calloc(n * RM_CP_TYPE_COUNT, sizeof(*types));
    Remora__Controlplane__V1__TypeStatus **type_ptrs = rm_calloc(n * RM_CP_TYPE_COUNT, sizeof(*type_ptrs));
    Google__Protobuf__Timestamp *stamps = rm_calloc(n * RM_CP_TYPE_COUNT, sizeof(*stamps));
    char(*versions)[2][24] = rm_calloc(n * RM_CP_TYPE_COUNT, sizeof(*versions));
    for (size_t i = 0; i < n; i++) {
        const rm_cp_node_t *node = srv->nodes[i];
        Remora__Controlplane__V1__NodeStatus *ns = &nodes[i];
        remora__controlplane__v1__node_status__init(ns);
        ns->node_id = node->id;
        ns->cluster = node->cluster;
        ns->connected = node->streams > 0;
        ns->types = type_ptrs + i * RM_CP_TYPE_COUNT;
        for (int t = 0; t < RM_CP_TYPE_COUNT; t++) {
            const rm_cp_node_type_t *nt = &node->types[t];
            if (!nt->ever_subscribed)
                continue;
            size_t k = i * RM_CP_TYPE_COUNT + (size_t)t;
            Remora__Controlplane__V1__TypeStatus *ts = &types[k];
            remora__controlplane__v1__type_status__init(ts);
            ts->type_url = (char *)rm_cp_type_url((rm_cp_type_t)t);
            ts->acked_version = nt->has_ack ? version_str(nt->acked_version, versions[k][0]) : "";
            ts->nacked_version = nt->has_nack ? version_str(nt->nacked_version, versions[k][1]) : "";
            ts->nack_message = nt->has_nack && nt->nack_message ? nt->nack_message : "";
            google__protobuf__timestamp__init(&stamps[k]);
            stamps[k].seconds = nt->last_seen_ms / 1000;
            stamps[k].nanos = (int32_t)(nt->last_seen_ms % 1000) * 1000000;
            ts->last_seen = &stamps[k];
            ns->types[ns->n_types++] = ts;
        }
        node_ptrs[i] = ns;
    }
    Remora__Controlplane__V1__ListNodesResponse resp = REMORA__CONTROLPLANE__V1__LIST_NODES_RESPONSE__INIT;
    resp.n_nodes = n;
    resp.nodes = node_ptrs;
    unary_respond(u, GRPC_STATUS_OK, NULL, &resp.base);
    free(versions);
    free(stamps);
    free(type_ptrs);
    free(types);
    free(node_ptrs);
    free(nodes);
}

static void wait_respond(unary_t *u, rm_cp_wait_result_t result, uint64_t acked, const char *message)
{
    char version[24];
    Remora__Controlplane__V1__WaitForAckResponse resp = REMORA__CONTROLPLANE__V1__WAIT_FOR_ACK_RESPONSE__INIT;
    resp.acked = result == RM_CP_WAIT_ACKED;
    resp.acked_version = acked > 0 ? version_str(acked, version) : "";
    resp.message = (char *)(message ? message : "");
    RM_LOG_DEBUG("WaitForAck node \"%s\" version %" PRIu64 ": %s%s%s", u->wait_node, u->wait_version,
                 result == RM_CP_WAIT_ACKED ? "acked" : "not acked", message && message[0] ? ": " : "",
                 message ? message : "");
    unary_respond(u, GRPC_STATUS_OK, NULL, &resp.base);
}

static void eval_waits(rm_cp_server_t *srv)
{
    for (unary_t *u = srv->unaries; u != NULL; u = u->next) {
        if (!u->waiting || u->closed)
            continue;
        uint64_t acked;
        const char *msg;
        rm_cp_wait_result_t r =
            rm_cp_wait_eval(find_node(srv, u->wait_node), u->wait_version, u->wait_type, &acked, &msg);
        if (r != RM_CP_WAIT_PENDING)
            wait_respond(u, r, acked, msg);
    }
}

/* Answers every parked WaitForAck whose deadline has passed; returns the earliest remaining deadline. */
static int64_t expire_waits(rm_cp_server_t *srv, int64_t now)
{
    int64_t next = NEVER;
    for (unary_t *u = srv->unaries; u != NULL; u = u->next) {
        if (!u->waiting || u->closed)
            continue;
        if (u->wait_deadline_ms > now) {
            if (u->wait_deadline_ms < next)
                next = u->wait_deadline_ms;
            continue;
        }
        const rm_cp_node_t *node = find_node(srv, u->wait_node);
        uint64_t acked;
        rm_cp_wait_eval(node, u->wait_version, u->wait_type, &acked, NULL);
        char msg[512];
        if (node == NULL)
            snprintf(msg, sizeof(msg), "timed out after %" PRId64 " ms: node \"%s\" has not connected",
                     u->wait_timeout_ms, u->wait_node);
        else
            snprintf(msg, sizeof(msg),
                     "timed out after %" PRId64 " ms: node \"%s\" has ACKed version %" PRIu64 "%s",
                     u->wait_timeout_ms, u->wait_node, acked, node->streams > 0 ? "" : " (not connected)");
        wait_respond(u, RM_CP_WAIT_PENDING, acked, msg);
    }
    return next;
}

static void admin_wait_for_ack(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *m)
{
    const Remora__Controlplane__V1__WaitForAckRequest *req = (const void *)m;
    char err[512];
    uint64_t version;
    const char *type_url = str_or_empty(req->type_url);
    int type = -1;
    if (req->node_id == NULL || req->node_id[0] == '\0') {
        unary_respond(u, GRPC_STATUS_INVALID_ARGUMENT, "node_id is required", NULL);
        return;
    }
    if (rm_cp_version_parse(req->version, &version) != 0) {
        snprintf(err, sizeof(err), "version must be a decimal integer, got \"%s\"",
                 str_or_empty(req->version));
        unary_respond(u, GRPC_STATUS_INVALID_ARGUMENT, err, NULL);
        return;
    }
    if (type_url[0] != '\0') {
        type = rm_cp_type_from_url(type_url);
        for (int t = 0; t < RM_CP_TYPE_COUNT && type < 0; t++)
            if (strcmp(type_url, rm_cp_type_short_name((rm_cp_type_t)t)) == 0)
                type = t;
        if (type < 0) {
            snprintf(err, sizeof(err), "type_url \"%s\" is not served (expected %s or %s)", type_url,
                     REMORA_TYPE_URL_CLUSTER, REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT);
            unary_respond(u, GRPC_STATUS_INVALID_ARGUMENT, err, NULL);
            return;
        }
    }
    int64_t timeout = srv->default_wait_timeout_ms;
    if (req->timeout != NULL) {
        if (req->timeout->seconds < 0 || req->timeout->nanos < 0) {
            unary_respond(u, GRPC_STATUS_INVALID_ARGUMENT, "timeout must not be negative", NULL);
            return;
        }
        timeout = req->timeout->seconds > MAX_WAIT_MS / 1000
                      ? MAX_WAIT_MS
                      : req->timeout->seconds * 1000 + req->timeout->nanos / 1000000;
    }
    u->wait_node = rm_strdup(req->node_id);
    u->wait_version = version;
    u->wait_type = type;
    u->wait_timeout_ms = timeout;
    u->wait_deadline_ms = rm_cp_mono_ms() + timeout;
    uint64_t acked;
    const char *msg;
    rm_cp_wait_result_t r = rm_cp_wait_eval(find_node(srv, u->wait_node), version, type, &acked, &msg);
    if (r != RM_CP_WAIT_PENDING) {
        wait_respond(u, r, acked, msg);
        return;
    }
    if (srv->stopping) {
        wait_respond(u, RM_CP_WAIT_PENDING, acked, SHUTDOWN_STATUS);
        return;
    }
    u->waiting = true; /* answered by eval_waits or expire_waits */
    RM_LOG_DEBUG("WaitForAck node \"%s\" version %" PRIu64 " type %s: waiting up to %" PRId64 " ms",
                 u->wait_node, version, type < 0 ? "(all)" : rm_cp_type_short_name((rm_cp_type_t)type),
                 timeout);
}

typedef void (*admin_fn)(rm_cp_server_t *srv, unary_t *u, const ProtobufCMessage *req);

static const struct {
    const char *path;
    const ProtobufCMessageDescriptor *input;
    admin_fn fn;
} admin_methods[] = {
    {REMORA_METHOD_ADMIN_ADD_ENDPOINT, &remora__controlplane__v1__add_endpoint_request__descriptor,
     admin_add_endpoint},
    {REMORA_METHOD_ADMIN_REMOVE_ENDPOINT, &remora__controlplane__v1__remove_endpoint_request__descriptor,
     admin_remove_endpoint},
    {REMORA_METHOD_ADMIN_SET_ENDPOINT_WEIGHT,
     &remora__controlplane__v1__set_endpoint_weight_request__descriptor, admin_set_weight},
    {REMORA_METHOD_ADMIN_SET_ENDPOINT_PRIORITY,
     &remora__controlplane__v1__set_endpoint_priority_request__descriptor, admin_set_priority},
    {REMORA_METHOD_ADMIN_SET_ENDPOINT_HEALTH,
     &remora__controlplane__v1__set_endpoint_health_request__descriptor, admin_set_health},
    {REMORA_METHOD_ADMIN_UPSERT_CLUSTER, &remora__controlplane__v1__upsert_cluster_request__descriptor,
     admin_upsert_cluster},
    {REMORA_METHOD_ADMIN_REMOVE_CLUSTER, &remora__controlplane__v1__remove_cluster_request__descriptor,
     admin_remove_cluster},
    {REMORA_METHOD_ADMIN_LIST_NODES, &remora__controlplane__v1__list_nodes_request__descriptor,
     admin_list_nodes},
    {REMORA_METHOD_ADMIN_WAIT_FOR_ACK, &remora__controlplane__v1__wait_for_ack_request__descriptor,
     admin_wait_for_ack},
};

static void unary_on_recv(unary_t *u, bool ok)
{
    u->ops--;
    grpc_byte_buffer *bb = u->recv_buf;
    u->recv_buf = NULL;
    if (!ok || u->closed) {
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        unary_maybe_free(u);
        return;
    }
    if (bb == NULL) {
        unary_respond(u, GRPC_STATUS_INVALID_ARGUMENT, "no request message", NULL);
    } else {
        ProtobufCMessage *req = rm_cp_grpc_unpack(admin_methods[u->method].input, bb);
        grpc_byte_buffer_destroy(bb);
        if (req == NULL) {
            char msg[256];
            snprintf(msg, sizeof(msg), "the message is not a valid %s", admin_methods[u->method].input->name);
            unary_respond(u, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL);
        } else {
            admin_methods[u->method].fn(u->srv, u, req);
            protobuf_c_message_free_unpacked(req, NULL);
        }
    }
    unary_maybe_free(u);
}

static void unary_on_send(unary_t *u)
{
    u->ops--;
    unary_maybe_free(u);
}

static void unary_on_close(unary_t *u)
{
    u->ops--;
    u->closed = true;
    u->waiting = false;
    unary_maybe_free(u);
}

/* method: index into admin_methods, or -1 to answer `code` with `message` at once. */
static void unary_start(rm_cp_server_t *srv, grpc_call *call, int method, grpc_status_code code,
                        const char *message)
{
    unary_t *u = RM_NEW(unary_t);
    u->srv = srv;
    u->call = call;
    u->method = method;
    u->recv_tag = (tag_t){TAG_UNARY_RECV, u};
    u->send_tag = (tag_t){TAG_UNARY_SEND, u};
    u->close_tag = (tag_t){TAG_UNARY_CLOSE, u};
    u->next = srv->unaries;
    if (srv->unaries != NULL)
        srv->unaries->prev = u;
    srv->unaries = u;
    srv->live++;

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &u->cancelled;
    if (!start_batch(call, &op, 1, &u->close_tag))
        return; /* see stream_start */
    u->ops++;
    if (method < 0) {
        unary_respond(u, code, message, NULL);
        return;
    }
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &u->recv_buf;
    if (start_batch(call, &op, 1, &u->recv_tag))
        u->ops++;
}

/* ---- accepting calls ---- */

static void arm_slot(rm_cp_server_t *srv, call_slot_t *slot)
{
    if (srv->stopping || slot->armed || atomic_load(&srv->stop_requested))
        return;
    slot->call = NULL;
    grpc_call_details_init(&slot->details);
    grpc_metadata_array_init(&slot->metadata);
    grpc_call_error e = grpc_server_request_call(srv->server, &slot->call, &slot->details, &slot->metadata,
                                                 srv->cq, srv->cq, &slot->tag);
    if (e != GRPC_CALL_OK) {
        RM_LOG_ERROR("grpc_server_request_call: %s", grpc_call_error_to_string(e));
        grpc_call_details_destroy(&slot->details);
        grpc_metadata_array_destroy(&slot->metadata);
        return;
    }
    slot->armed = true;
}

static void on_new_call(rm_cp_server_t *srv, call_slot_t *slot, bool ok)
{
    slot->armed = false;
    if (ok && slot->call != NULL) {
        grpc_slice method = slot->details.method;
        if (srv->stopping) {
            unary_start(srv, slot->call, -1, GRPC_STATUS_UNAVAILABLE, SHUTDOWN_STATUS);
        } else if (grpc_slice_str_cmp(method, REMORA_METHOD_ADS_STREAM) == 0) {
            stream_start(srv, slot->call, SVC_ADS);
        } else if (grpc_slice_str_cmp(method, REMORA_METHOD_CDS_STREAM) == 0) {
            stream_start(srv, slot->call, SVC_CDS);
        } else if (grpc_slice_str_cmp(method, REMORA_METHOD_EDS_STREAM) == 0) {
            stream_start(srv, slot->call, SVC_EDS);
        } else {
            int found = -1;
            for (size_t i = 0; i < RM_ARRAY_LEN(admin_methods) && found < 0; i++)
                if (grpc_slice_str_cmp(method, admin_methods[i].path) == 0)
                    found = (int)i;
            if (found >= 0) {
                unary_start(srv, slot->call, found, GRPC_STATUS_OK, NULL);
            } else {
                char *name = grpc_slice_to_c_string(method);
                char msg[512];
                snprintf(msg, sizeof(msg), "method %s is not implemented by remora-cp", name);
                RM_LOG_INFO("%s", msg);
                gpr_free(name);
                unary_start(srv, slot->call, -1, GRPC_STATUS_UNIMPLEMENTED, msg);
            }
        }
    }
    grpc_call_details_destroy(&slot->details);
    grpc_metadata_array_destroy(&slot->metadata);
    arm_slot(srv, slot);
}

static void dispatch(rm_cp_server_t *srv, tag_t *tag, bool ok)
{
    switch (tag->kind) {
    case TAG_NEW_CALL:
        on_new_call(srv, tag->owner, ok);
        break;
    case TAG_SHUTDOWN:
        srv->shutdown_done = true;
        break;
    case TAG_STREAM_RECV:
        stream_on_recv(tag->owner, ok);
        break;
    case TAG_STREAM_SEND:
        stream_on_send(tag->owner, ok);
        break;
    case TAG_STREAM_CLOSE:
        stream_on_close(tag->owner);
        break;
    case TAG_UNARY_RECV:
        unary_on_recv(tag->owner, ok);
        break;
    case TAG_UNARY_SEND:
        unary_on_send(tag->owner);
        break;
    case TAG_UNARY_CLOSE:
        unary_on_close(tag->owner);
        break;
    }
}

/* ---- lifecycle ---- */

static void request_shutdown(rm_cp_server_t *srv)
{
    if (!atomic_exchange(&srv->shutdown_called, true))
        grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
}

static void begin_stop(rm_cp_server_t *srv)
{
    srv->stopping = true;
    request_shutdown(srv);
    size_t streams = 0, waits = 0;
    for (stream_t *s = srv->streams; s != NULL; s = s->next) {
        if (!s->closed && !s->finishing)
            streams++;
        stream_finish(s, GRPC_STATUS_UNAVAILABLE, SHUTDOWN_STATUS);
    }
    for (unary_t *u = srv->unaries; u != NULL; u = u->next) {
        if (u->waiting && !u->closed) {
            waits++;
            wait_respond(u, RM_CP_WAIT_PENDING, 0, SHUTDOWN_STATUS);
        }
    }
    srv->cancel_at_ms = rm_cp_mono_ms() + srv->shutdown_grace_ms;
    RM_LOG_INFO("shutting down: closing %zu streams, answering %zu waiting calls", streams, waits);
}

static size_t armed_slots(const rm_cp_server_t *srv)
{
    size_t n = 0;
    for (size_t i = 0; i < NUM_CALL_SLOTS; i++)
        n += srv->slots[i].armed;
    return n;
}

rm_cp_server_t *rm_cp_server_start(const rm_cp_server_options_t *opts, char *err, size_t errlen)
{
    rm_cp_server_t *srv = RM_NEW(rm_cp_server_t);
    srv->listen = rm_strdup(opts->listen);
    srv->snapshot_path = rm_strdup(opts->snapshot_path);
    srv->poll_interval_ms = opts->poll_interval_ms > 0 ? opts->poll_interval_ms : 500;
    srv->default_wait_timeout_ms = opts->default_wait_timeout_ms > 0 ? opts->default_wait_timeout_ms : 10000;
    srv->shutdown_grace_ms = opts->shutdown_grace_ms > 0 ? opts->shutdown_grace_ms : 2000;
    srv->shutdown_tag = (tag_t){TAG_SHUTDOWN, srv};
    atomic_init(&srv->stop_requested, false);
    atomic_init(&srv->shutdown_called, false);

    struct stat st;
    if (stat(srv->snapshot_path, &st) == 0)
        srv->seen_sig = file_sig(&st);
    if (rm_cp_snapshot_load_file(srv->snapshot_path, &srv->snapshot, err, errlen) != 0) {
        rm_cp_server_destroy(srv);
        return NULL;
    }
    snapshot_changed(srv, "loaded from file");

    srv->cq = grpc_completion_queue_create_for_next(NULL);
    /* One control plane per port: without this, grpc would let a second one bind the same port. Control
     * planes also get keepalive pings from idle sidecars; allow them. */
    grpc_arg args[3];
    memset(args, 0, sizeof(args));
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[0].value.integer = 0;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS;
    args[1].value.integer = 1;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
    args[2].value.integer = 1000;
    grpc_channel_args channel_args = {RM_ARRAY_LEN(args), args};
    srv->server = grpc_server_create(&channel_args, NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    srv->port = grpc_server_add_http2_port(srv->server, srv->listen, creds);
    grpc_server_credentials_release(creds);
    if (srv->port <= 0) {
        snprintf(err, errlen, "cannot listen on %s (address in use, or not a valid host:port)", srv->listen);
        rm_cp_server_destroy(srv);
        return NULL;
    }
    grpc_server_start(srv->server);
    srv->started = true;
    for (size_t i = 0; i < NUM_CALL_SLOTS; i++) {
        srv->slots[i].tag = (tag_t){TAG_NEW_CALL, &srv->slots[i]};
        arm_slot(srv, &srv->slots[i]);
    }
    return srv;
}

int rm_cp_server_port(const rm_cp_server_t *srv)
{
    return srv->port;
}

void rm_cp_server_stop(rm_cp_server_t *srv)
{
    atomic_store(&srv->stop_requested, true);
    /* Fails the pending request_call slots at once, which wakes the loop. */
    request_shutdown(srv);
}

void rm_cp_server_run(rm_cp_server_t *srv)
{
    srv->next_poll_ms = rm_cp_mono_ms() + srv->poll_interval_ms;
    int64_t next_wait = NEVER;
    for (;;) {
        if (atomic_load(&srv->stop_requested) && !srv->stopping)
            begin_stop(srv);
        if (srv->stopping && srv->shutdown_done && srv->live == 0 && armed_slots(srv) == 0)
            break;
        int64_t wake = srv->next_poll_ms;
        if (next_wait < wake)
            wake = next_wait;
        if (srv->stopping && !srv->cancelled_all && srv->cancel_at_ms < wake)
            wake = srv->cancel_at_ms;
        grpc_event ev = grpc_completion_queue_next(srv->cq, rm_cp_deadline_ms(wake), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            dispatch(srv, ev.tag, ev.success != 0);
        int64_t now = rm_cp_mono_ms();
        next_wait = expire_waits(srv, now);
        if (now >= srv->next_poll_ms) {
            if (!srv->stopping)
                check_file(srv);
            srv->next_poll_ms = now + srv->poll_interval_ms;
        }
        if (srv->stopping && !srv->cancelled_all && now >= srv->cancel_at_ms) {
            RM_LOG_WARN("shutdown: %zu calls still open after %d ms; cancelling them", srv->live,
                        srv->shutdown_grace_ms);
            grpc_server_cancel_all_calls(srv->server);
            srv->cancelled_all = true;
        }
    }
    RM_LOG_INFO("stopped at snapshot version %" PRIu64, srv->version);
}

void rm_cp_server_destroy(rm_cp_server_t *srv)
{
    if (srv == NULL)
        return;
    if (srv->server != NULL) {
        if (srv->started && !srv->shutdown_done) {
            /* run() did not finish the shutdown: do it here, dropping whatever is still open. */
            srv->stopping = true;
            request_shutdown(srv);
            grpc_server_cancel_all_calls(srv->server);
            while (!srv->shutdown_done || srv->live > 0 || armed_slots(srv) > 0) {
                grpc_event ev =
                    grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_OP_COMPLETE)
                    dispatch(srv, ev.tag, ev.success != 0);
            }
        }
        grpc_server_destroy(srv->server);
    }
    if (srv->cq != NULL) {
        grpc_completion_queue_shutdown(srv->cq);
        while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(srv->cq);
    }
    for (size_t i = 0; i < srv->num_nodes; i++)
        rm_cp_node_free(srv->nodes[i]);
    free(srv->nodes);
    rm_cp_snapshot_free(srv->snapshot);
    rm_cp_rendered_free(srv->rendered);
    free(srv->listen);
    free(srv->snapshot_path);
    free(srv);
}
