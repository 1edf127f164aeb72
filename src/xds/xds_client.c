/* xDS client transport: grpc C core on a thread of its own, one completion queue, one or two
 * bidirectional streams. The protocol itself (what to send, what to accept) is xds_state.c.
 *
 * Per stream, the batches in flight are: SEND_INITIAL_METADATA, then RECV_INITIAL_METADATA followed
 * by one RECV_MESSAGE at a time, one SEND_MESSAGE at a time (later requests wait in a queue), and
 * RECV_STATUS_ON_CLIENT for the whole call. A stream is over when its status has arrived and every
 * batch has completed; only then are the call and its channel released and a retry scheduled.
 *
 * Locking: `mu` guards `stopping` and every grpc call on a call object that can race with
 * rm_xds_client_stop (start_batch, cancel, unref) and the completion queue's shutdown: stop sets
 * `stopping`, cancels the calls and shuts the queue down under it, so the xDS thread never starts a
 * batch on a queue that is shutting down. `qmu` guards the queue of updates for the consumer. The
 * streams themselves are touched only by the xDS thread. */
#include "xds/xds_client.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "remora_proto/xds.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_BASE_MS 500u
#define BACKOFF_MAX_MS  30000u
#define MAX_RECV_BYTES  (64 << 20)
#define MAX_STREAMS     2

/* ---- backoff ---- */

void rm_xds_backoff_init(rm_xds_backoff_t *b, uint64_t base_ms, uint64_t max_ms)
{
    b->base_ms = base_ms ? base_ms : 1;
    b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
    b->interval_ms = b->base_ms;
}

uint64_t rm_xds_backoff_next(rm_xds_backoff_t *b, uint64_t rnd)
{
    uint64_t half = b->interval_ms / 2;
    uint64_t delay = half + rnd % (b->interval_ms - half + 1);
    b->interval_ms = b->interval_ms > b->max_ms / 2 ? b->max_ms : b->interval_ms * 2;
    return delay;
}

void rm_xds_backoff_reset(rm_xds_backoff_t *b)
{
    b->interval_ms = b->base_ms;
}

/* ---- stats ---- */

void rm_xds_stats_visit(const rm_xds_stats_t *s, rm_stats_visit_cb cb, void *ctx)
{
#define RM_XDS_VISIT(field, prefix, name, kind)                                                              \
    cb(ctx, prefix, name, (int64_t)atomic_load_explicit(&s->field, memory_order_relaxed), #kind[0] == 'G');
    RM_XDS_STATS(RM_XDS_VISIT)
#undef RM_XDS_VISIT
}

void rm_xds_stats_version_text(const rm_xds_stats_t *s, rm_xds_type_t type, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    /* The mutex is the only mutable part of a const stats block. */
    pthread_mutex_t *mu = (pthread_mutex_t *)&s->mu;
    pthread_mutex_lock(mu);
    snprintf(buf, buflen, "%s", s->version_text[type]);
    pthread_mutex_unlock(mu);
}

/* ---- types ---- */

typedef enum {
    TAG_SEND_META,
    TAG_RECV_META,
    TAG_RECV,
    TAG_SEND,
    TAG_STATUS,
    TAG_COUNT,
} tag_kind_t;

typedef struct stream stream_t;

typedef struct {
    stream_t *s;
    tag_kind_t kind;
} tag_t;

typedef struct send_item {
    struct send_item *next;
    grpc_byte_buffer *bb;
} send_item_t;

typedef enum {
    PHASE_IDLE,    /* no call: waiting for retry_at */
    PHASE_OPEN,    /* call running */
    PHASE_CLOSING, /* status received or call cancelled: waiting for the batches in flight */
} phase_t;

struct stream {
    rm_xds_client_t *c;
    const char *label;  /* "ADS", "CDS", "EDS" for logs */
    const char *method; /* gRPC method path */
    rm_xds_state_t *state;
    bool carries[RM_XDS_NUM_TYPES];
    phase_t phase;
    grpc_channel *channel;
    grpc_call *call;
    unsigned pending; /* batches in flight */
    bool established; /* the server answered (initial metadata or a message) */
    bool used;        /* a request was ever sent: without one (an EDS stream with nothing to ask
                         for), the server has no reason to answer and the stream does not count */
    bool got_response;
    send_item_t *sendq, *sendq_tail;
    bool send_busy;
    grpc_byte_buffer *recv_buf;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice status_details;
    const char *error_string; /* gpr_malloc'ed by grpc */
    tag_t tags[TAG_COUNT];
    rm_xds_backoff_t backoff;
    gpr_timespec retry_at;
    unsigned failures; /* consecutive attempts without a response, to keep logs quiet */
};

typedef enum {
    ITEM_CLUSTERS,
    ITEM_ASSIGNMENTS,
    ITEM_CONNECTION,
} item_kind_t;

typedef struct item {
    struct item *next;
    item_kind_t kind;
    rm_cluster_config_t *clusters;
    rm_cluster_load_assignment_t *clas;
    size_t n;
    char *version;
    bool connected;
} item_t;

struct rm_xds_client {
    char *target;
    struct event *wakeup;
    rm_xds_callbacks_t cbs;
    void *ctx;
    rm_xds_stats_t stats;
    bool ads;
    stream_t streams[MAX_STREAMS];
    size_t num_streams;
    stream_t *cds_stream, *eds_stream; /* without ADS */
    grpc_completion_queue *cq;
    bool cq_shut;
    pthread_t thread;
    bool thread_started, thread_joined;
    pthread_mutex_t mu; /* see the file comment */
    bool stopping;
    pthread_mutex_t qmu;
    item_t *qhead, *qtail;
    /* An update is ACKed only once the consumer has applied it, so a control plane (and a test)
     * that sees the ACK knows the configuration is live. Under qmu. */
    pthread_cond_t applied_cv;
    uint64_t posted_updates, applied_updates;
    bool consumer_gone;
    rm_rng_t rng;   /* xDS thread */
    bool connected; /* xDS thread */
};

/* ---- consumer side ---- */

static void item_free(item_t *it)
{
    for (size_t i = 0; it->clusters != NULL && i < it->n; i++)
        rm_cluster_config_free(&it->clusters[i]);
    free(it->clusters);
    for (size_t i = 0; it->clas != NULL && i < it->n; i++)
        rm_cluster_load_assignment_free(&it->clas[i]);
    free(it->clas);
    free(it->version);
    free(it);
}

/* Consumer thread: runs the callbacks of everything queued, in order. */
static void on_wakeup(evutil_socket_t fd, short what, void *arg)
{
    rm_xds_client_t *c = arg;
    pthread_mutex_lock(&c->qmu);
    item_t *it = c->qhead;
    c->qhead = c->qtail = NULL;
    pthread_mutex_unlock(&c->qmu);
    while (it != NULL) {
        item_t *next = it->next;
        switch (it->kind) {
        case ITEM_CLUSTERS:
            if (c->cbs.on_clusters != NULL) {
                c->cbs.on_clusters(c->ctx, it->clusters, it->n, it->version ? it->version : "");
                it->clusters = NULL;
            }
            break;
        case ITEM_ASSIGNMENTS:
            if (c->cbs.on_assignments != NULL) {
                c->cbs.on_assignments(c->ctx, it->clas, it->n, it->version ? it->version : "");
                it->clas = NULL;
            }
            break;
        case ITEM_CONNECTION:
            if (c->cbs.on_connection != NULL)
                c->cbs.on_connection(c->ctx, it->connected);
            break;
        }
        if (it->kind != ITEM_CONNECTION) {
            pthread_mutex_lock(&c->qmu);
            c->applied_updates++;
            pthread_cond_broadcast(&c->applied_cv);
            pthread_mutex_unlock(&c->qmu);
        }
        item_free(it);
        it = next;
    }
}

/* xDS thread: queues an item for the consumer and wakes its loop. */
static void post(rm_xds_client_t *c, item_t *it)
{
    pthread_mutex_lock(&c->qmu);
    if (c->qtail != NULL)
        c->qtail->next = it;
    else
        c->qhead = it;
    c->qtail = it;
    if (it->kind != ITEM_CONNECTION)
        c->posted_updates++;
    pthread_mutex_unlock(&c->qmu);
    event_active(c->wakeup, EV_READ, 0);
}

/* xDS thread: waits until the consumer applied every update posted so far (or is going away). */
static void wait_applied(rm_xds_client_t *c)
{
    pthread_mutex_lock(&c->qmu);
    while (c->applied_updates < c->posted_updates && !c->consumer_gone)
        pthread_cond_wait(&c->applied_cv, &c->qmu);
    pthread_mutex_unlock(&c->qmu);
}

/* ---- helpers (xDS thread) ---- */

static void stat_inc(_Atomic uint64_t *v)
{
    atomic_fetch_add_explicit(v, 1, memory_order_relaxed);
}

static void stat_set(_Atomic uint64_t *v, uint64_t x)
{
    atomic_store_explicit(v, x, memory_order_relaxed);
}

/* Connected: some stream has an answer, and every stream that asked for something has one. */
static void update_connected(rm_xds_client_t *c)
{
    bool any = false, all = true;
    for (size_t i = 0; i < c->num_streams; i++) {
        any = any || c->streams[i].established;
        if (c->streams[i].used && !c->streams[i].established)
            all = false;
    }
    all = all && any;
    if (all == c->connected)
        return;
    c->connected = all;
    stat_set(&c->stats.connected_state, all);
    item_t *it = RM_NEW(item_t);
    it->kind = ITEM_CONNECTION;
    it->connected = all;
    post(c, it);
}

static gpr_timespec after_ms(uint64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

/* Starts a batch; mu must be held. False when stopping or when grpc refuses (a bug, logged). */
static bool start_batch(stream_t *s, const grpc_op *ops, size_t n, tag_kind_t kind)
{
    if (s->c->stopping || s->call == NULL)
        return false;
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, &s->tags[kind], NULL);
    if (e != GRPC_CALL_OK) {
        RM_LOG_ERROR("xds: %s stream: grpc_call_start_batch failed (%d)", s->label, (int)e);
        return false;
    }
    s->pending++;
    return true;
}

/* Ends the call early (bad response, failed batch); its status completes the teardown. */
static void fail_stream(stream_t *s)
{
    if (s->phase != PHASE_OPEN)
        return;
    s->phase = PHASE_CLOSING;
    pthread_mutex_lock(&s->c->mu);
    if (s->call != NULL)
        grpc_call_cancel(s->call, NULL);
    pthread_mutex_unlock(&s->c->mu);
}

static void start_recv(stream_t *s)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_buf;
    pthread_mutex_lock(&s->c->mu);
    bool ok = start_batch(s, &op, 1, TAG_RECV);
    pthread_mutex_unlock(&s->c->mu);
    if (!ok)
        fail_stream(s);
}

static void kick_send(stream_t *s)
{
    if (s->send_busy || s->sendq == NULL || s->phase != PHASE_OPEN)
        return;
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->sendq->bb;
    pthread_mutex_lock(&s->c->mu);
    bool ok = start_batch(s, &op, 1, TAG_SEND);
    pthread_mutex_unlock(&s->c->mu);
    if (ok) {
        s->send_busy = true;
        s->used = true;
    } else {
        fail_stream(s);
    }
}

static void queue_requests(stream_t *s, rm_xds_output_t *out)
{
    for (size_t i = 0; i < out->num_requests; i++) {
        if (s->phase != PHASE_OPEN)
            break; /* the next stream start sends the current state anyway */
        grpc_slice sl =
            grpc_slice_from_copied_buffer((const char *)out->requests[i].data, out->requests[i].len);
        send_item_t *it = RM_NEW(send_item_t);
        it->bb = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        if (s->sendq_tail != NULL)
            s->sendq_tail->next = it;
        else
            s->sendq = it;
        s->sendq_tail = it;
    }
    kick_send(s);
}

static void clear_sendq(stream_t *s)
{
    while (s->sendq != NULL) {
        send_item_t *next = s->sendq->next;
        grpc_byte_buffer_destroy(s->sendq->bb);
        free(s->sendq);
        s->sendq = next;
    }
    s->sendq_tail = NULL;
    s->send_busy = false;
}

/* ---- processing responses (xDS thread) ---- */

static void record_accepted(rm_xds_client_t *c, rm_xds_type_t t, const char *version)
{
    stat_inc(t == RM_XDS_CDS ? &c->stats.cds_update_success : &c->stats.eds_update_success);
    stat_set(t == RM_XDS_CDS ? &c->stats.cds_version : &c->stats.eds_version, rm_xds_version_stat(version));
    pthread_mutex_lock(&c->stats.mu);
    snprintf(c->stats.version_text[t], sizeof(c->stats.version_text[t]), "%s", version);
    pthread_mutex_unlock(&c->stats.mu);
}

static void handle_output(stream_t *s, rm_xds_output_t *out)
{
    rm_xds_client_t *c = s->c;
    rm_xds_type_t t = out->type;
    char vbuf[280];
    switch (out->verdict) {
    case RM_XDS_ACCEPTED:
        stat_inc(t == RM_XDS_CDS ? &c->stats.cds_update_attempt : &c->stats.eds_update_attempt);
        record_accepted(c, t, out->version);
        if (out->has_clusters) {
            RM_LOG_INFO("xds: cds: accepted version '%s' (%zu clusters)",
                        rm_xds_printable(out->version, vbuf, sizeof(vbuf)), out->num_clusters);
            item_t *it = RM_NEW(item_t);
            it->kind = ITEM_CLUSTERS;
            it->clusters = out->clusters;
            it->n = out->num_clusters;
            it->version = out->version;
            out->clusters = NULL;
            out->num_clusters = 0;
            out->version = NULL;
            post(c, it);
        } else if (out->has_assignments) {
            RM_LOG_INFO("xds: eds: accepted version '%s' (%zu assignments)",
                        rm_xds_printable(out->version, vbuf, sizeof(vbuf)), out->num_clas);
            if (out->num_clas > 0) {
                item_t *it = RM_NEW(item_t);
                it->kind = ITEM_ASSIGNMENTS;
                it->clas = out->clas;
                it->n = out->num_clas;
                it->version = out->version;
                out->clas = NULL;
                out->num_clas = 0;
                out->version = NULL;
                post(c, it);
            }
        }
        break;
    case RM_XDS_REJECTED:
        stat_inc(t == RM_XDS_CDS ? &c->stats.cds_update_attempt : &c->stats.eds_update_attempt);
        stat_inc(t == RM_XDS_CDS ? &c->stats.cds_update_rejected : &c->stats.eds_update_rejected);
        RM_LOG_WARN("xds: %s: rejected an update (NACK, keeping version '%s'): %s", rm_xds_type_name(t),
                    rm_xds_printable(rm_xds_state_version(s->state, t), vbuf, sizeof(vbuf)), out->error);
        break;
    case RM_XDS_IGNORED:
        RM_LOG_DEBUG("xds: %s stream: ignored a response: %s", s->label, out->error);
        break;
    case RM_XDS_NONE:
        break;
    }
    if (out->verdict == RM_XDS_ACCEPTED)
        wait_applied(c);
    queue_requests(s, out);

    /* Without ADS, the EDS stream subscribes to what the CDS stream's clusters need. */
    if (out->eds_names_changed && c->eds_stream != NULL && s == c->cds_stream) {
        size_t n;
        const char *const *names = rm_xds_state_eds_names(s->state, &n);
        rm_xds_output_t o2;
        rm_xds_output_init(&o2);
        rm_xds_state_set_eds_names(c->eds_stream->state, names, n, &o2);
        queue_requests(c->eds_stream, &o2);
        rm_xds_output_fini(&o2);
    }
}

static void on_message(stream_t *s)
{
    grpc_byte_buffer_reader r;
    grpc_byte_buffer *bb = s->recv_buf;
    s->recv_buf = NULL;
    if (!grpc_byte_buffer_reader_init(&r, bb)) {
        grpc_byte_buffer_destroy(bb);
        RM_LOG_WARN("xds: %s stream: cannot read a response (compressed?); restarting the stream", s->label);
        fail_stream(s);
        return;
    }
    grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    grpc_byte_buffer_destroy(bb);

    s->got_response = true;
    s->failures = 0;
    if (!s->established) {
        s->established = true;
        update_connected(s->c);
    }
    rm_xds_output_t out;
    rm_xds_output_init(&out);
    int rc = rm_xds_state_on_response(s->state, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), &out);
    grpc_slice_unref(sl);
    if (rc != 0) {
        RM_LOG_WARN("xds: %s stream: %s; restarting the stream", s->label, out.error);
        rm_xds_output_fini(&out);
        fail_stream(s);
        return;
    }
    handle_output(s, &out);
    rm_xds_output_fini(&out);
    if (s->phase == PHASE_OPEN)
        start_recv(s);
}

/* ---- stream lifecycle (xDS thread) ---- */

static grpc_channel *make_channel(const char *target)
{
    grpc_arg args[3];
    memset(args, 0, sizeof(args));
    /* A channel of its own per attempt, with no subchannel shared with earlier attempts, so that the
     * stream backoff here is the only one (grpc's own reconnect backoff would stack on top). */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = MAX_RECV_BYTES;
    args[2].type = GRPC_ARG_STRING;
    args[2].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[2].value.string = (char *)"remora";
    grpc_channel_args ca = {RM_ARRAY_LEN(args), args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

static void stream_finish(stream_t *s);

static void stream_open(stream_t *s)
{
    rm_xds_client_t *c = s->c;
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    s->channel = make_channel(c->target);
    grpc_slice method = grpc_slice_from_static_string(s->method);
    s->call = grpc_channel_create_call(s->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, method, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    s->phase = PHASE_OPEN;
    s->pending = 0;
    s->established = false;
    s->got_response = false;
    s->status = GRPC_STATUS_OK;
    s->status_details = grpc_empty_slice();
    s->error_string = NULL;
    grpc_metadata_array_init(&s->md_initial);
    grpc_metadata_array_init(&s->md_trailing);

    grpc_op ops[1];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    bool ok = start_batch(s, ops, 1, TAG_SEND_META);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->md_trailing;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->status_details;
    ops[0].data.recv_status_on_client.error_string = &s->error_string;
    ok = ok && start_batch(s, ops, 1, TAG_STATUS);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
    ok = ok && start_batch(s, ops, 1, TAG_RECV_META);
    if (!ok && s->call != NULL)
        grpc_call_cancel(s->call, NULL);
    pthread_mutex_unlock(&c->mu);
    if (!ok) {
        s->phase = PHASE_CLOSING;
        if (s->pending == 0)
            stream_finish(s);
        return;
    }
    RM_LOG_DEBUG("xds: %s stream: opening %s to %s", s->label, s->method, c->target);

    rm_xds_output_t out;
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(s->state, &out);
    queue_requests(s, &out);
    rm_xds_output_fini(&out);
}

/* Releases the finished call and schedules the next attempt. */
static void stream_finish(stream_t *s)
{
    rm_xds_client_t *c = s->c;
    pthread_mutex_lock(&c->mu);
    grpc_call_unref(s->call);
    s->call = NULL;
    bool stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    grpc_channel_destroy(s->channel);
    s->channel = NULL;
    clear_sendq(s);

    char *details = grpc_slice_to_c_string(s->status_details);
    if (!stopping) {
        uint64_t delay;
        if (s->got_response)
            rm_xds_backoff_reset(&s->backoff);
        delay = rm_xds_backoff_next(&s->backoff, rm_rng_next(&c->rng));
        s->retry_at = after_ms(delay);
        /* Log the first failure of a series, then stay quiet until the server answers again. */
        /* grpc's details say what happened ("failed to connect to all addresses; ... Connection
         * refused"); its debug error string only when they are empty. */
        const char *why = details[0] != '\0' ? details : s->error_string != NULL ? s->error_string : "";
        if (s->failures++ == 0)
            RM_LOG_WARN("xds: %s stream to %s closed: status %d (%s); reconnecting in %llu ms", s->label,
                        c->target, (int)s->status, why, (unsigned long long)delay);
        else
            RM_LOG_DEBUG("xds: %s stream to %s: attempt failed, status %d (%s); next in %llu ms", s->label,
                         c->target, (int)s->status, why, (unsigned long long)delay);
        for (int t = 0; t < RM_XDS_NUM_TYPES; t++) {
            if (!s->carries[t])
                continue;
            stat_inc(t == RM_XDS_CDS ? &c->stats.cds_update_attempt : &c->stats.eds_update_attempt);
            stat_inc(t == RM_XDS_CDS ? &c->stats.cds_update_failure : &c->stats.eds_update_failure);
        }
    }
    gpr_free(details);
    gpr_free((void *)s->error_string);
    s->error_string = NULL;
    grpc_slice_unref(s->status_details);
    grpc_metadata_array_destroy(&s->md_initial);
    grpc_metadata_array_destroy(&s->md_trailing);
    rm_xds_state_stream_end(s->state);
    s->phase = PHASE_IDLE;
    if (s->established) {
        s->established = false;
        update_connected(c);
    }
}

static void on_complete(stream_t *s, tag_kind_t kind, bool success)
{
    s->pending--;
    switch (kind) {
    case TAG_SEND_META:
        if (!success)
            fail_stream(s);
        break;
    case TAG_RECV_META:
        /* Initial metadata also "arrives" (empty) when the call fails without an answer, so only a
         * non-empty set proves that the server answered; otherwise the first message does. */
        if (success && s->phase == PHASE_OPEN) {
            if (s->md_initial.count > 0 && !s->established) {
                s->established = true;
                update_connected(s->c);
            }
            start_recv(s);
        }
        break;
    case TAG_RECV:
        if (success && s->recv_buf != NULL && s->phase == PHASE_OPEN)
            on_message(s);
        else if (s->recv_buf != NULL) {
            grpc_byte_buffer_destroy(s->recv_buf);
            s->recv_buf = NULL;
        }
        /* Otherwise the server closed its side: the status follows. */
        break;
    case TAG_SEND:
        if (s->sendq != NULL) {
            send_item_t *done = s->sendq;
            s->sendq = done->next;
            if (s->sendq == NULL)
                s->sendq_tail = NULL;
            grpc_byte_buffer_destroy(done->bb);
            free(done);
        }
        s->send_busy = false;
        if (!success)
            fail_stream(s);
        else
            kick_send(s);
        break;
    case TAG_STATUS:
        s->phase = PHASE_CLOSING;
        break;
    case TAG_COUNT:
        break;
    }
    if (s->phase == PHASE_CLOSING && s->pending == 0)
        stream_finish(s);
}

static gpr_timespec next_deadline(rm_xds_client_t *c)
{
    gpr_timespec d = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    for (size_t i = 0; i < c->num_streams; i++)
        if (c->streams[i].phase == PHASE_IDLE && gpr_time_cmp(c->streams[i].retry_at, d) < 0)
            d = c->streams[i].retry_at;
    return d;
}

static void *run(void *arg)
{
    rm_xds_client_t *c = arg;
    for (size_t i = 0; i < c->num_streams; i++)
        stream_open(&c->streams[i]);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(c->cq, next_deadline(c), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
            for (size_t i = 0; i < c->num_streams; i++) {
                stream_t *s = &c->streams[i];
                if (s->phase == PHASE_IDLE && gpr_time_cmp(s->retry_at, now) <= 0) {
                    s->retry_at = gpr_inf_future(GPR_CLOCK_MONOTONIC);
                    stream_open(s);
                }
            }
            continue;
        }
        tag_t *t = ev.tag;
        on_complete(t->s, t->kind, ev.success != 0);
    }
    return NULL;
}

/* ---- public ---- */

static const rm_cluster_config_t *find_cluster(const rm_bootstrap_config_t *b, const char *name)
{
    for (size_t i = 0; name != NULL && i < b->num_clusters; i++)
        if (strcmp(b->clusters[i].name, name) == 0)
            return &b->clusters[i];
    return NULL;
}

static const char *server_cluster(const rm_bootstrap_config_t *b)
{
    const rm_dynamic_resources_config_t *dr = &b->dynamic_resources;
    if (dr->ads_config.set)
        return dr->ads_config.grpc_cluster;
    if (dr->cds_config.set)
        return dr->cds_config.grpc_cluster;
    return NULL;
}

char *rm_xds_client_target(const rm_bootstrap_config_t *b, char *err, size_t errlen)
{
    const char *name = server_cluster(b);
    if (!b->dynamic_resources.enabled || name == NULL) {
        snprintf(err, errlen,
                 "no management server: dynamic_resources needs ads_config or cds_config.api_config_source");
        return NULL;
    }
    const rm_cluster_config_t *c = find_cluster(b, name);
    if (c == NULL || c->num_endpoints == 0) {
        snprintf(err, errlen, "management server cluster \"%s\" is not a static cluster with endpoints",
                 name);
        return NULL;
    }
    const rm_socket_address_config_t *a = &c->endpoints[0].address;
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, a->address, buf) == 1)
        return rm_asprintf("ipv4:%s:%u", a->address, a->port);
    if (inet_pton(AF_INET6, a->address, buf) == 1)
        return rm_asprintf("ipv6:[%s]:%u", a->address, a->port);
    return rm_asprintf("dns:///%s:%u", a->address, a->port);
}

static void stream_init(rm_xds_client_t *c, stream_t *s, const char *label, const char *method,
                        const rm_xds_state_config_t *cfg)
{
    s->c = c;
    s->label = label;
    s->method = method;
    s->state = rm_xds_state_create(cfg);
    memcpy(s->carries, cfg->carries, sizeof(s->carries));
    s->phase = PHASE_IDLE;
    s->retry_at = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    for (int k = 0; k < TAG_COUNT; k++)
        s->tags[k] = (tag_t){s, (tag_kind_t)k};
    rm_xds_backoff_init(&s->backoff, BACKOFF_BASE_MS, BACKOFF_MAX_MS);
}

rm_xds_client_t *rm_xds_client_create(const rm_bootstrap_config_t *b, struct event_base *consumer_base,
                                      const rm_xds_callbacks_t *cbs, void *ctx, char *err, size_t errlen)
{
    char ignored[1];
    if (err == NULL || errlen == 0) {
        err = ignored;
        errlen = sizeof(ignored);
    }
    char *target = rm_xds_client_target(b, err, errlen);
    if (target == NULL)
        return NULL;
    if (b->node.id == NULL || b->node.id[0] == '\0' || b->node.cluster == NULL ||
        b->node.cluster[0] == '\0') {
        snprintf(err, errlen, "node.id and node.cluster are required with dynamic_resources");
        free(target);
        return NULL;
    }
    rm_xds_client_t *c = RM_NEW(rm_xds_client_t);
    c->target = target;
    c->cbs = *cbs;
    c->ctx = ctx;
    c->ads = b->dynamic_resources.ads_config.set;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->qmu, NULL);
    pthread_cond_init(&c->applied_cv, NULL);
    pthread_mutex_init(&c->stats.mu, NULL);
    rm_rng_seed(&c->rng, (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c);

    const char **statics = rm_calloc(b->num_clusters + 1, sizeof(char *));
    const char **eds_names = rm_calloc(b->num_clusters + 1, sizeof(char *));
    size_t num_eds = 0;
    for (size_t i = 0; i < b->num_clusters; i++) {
        statics[i] = b->clusters[i].name;
        if (b->clusters[i].type == RM_CLUSTER_EDS && b->clusters[i].eds_service_name != NULL)
            eds_names[num_eds++] = b->clusters[i].eds_service_name;
    }
    rm_xds_state_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.node_id = b->node.id;
    cfg.node_cluster = b->node.cluster;
    cfg.convert.ads = c->ads;
    cfg.convert.grpc_cluster = c->ads ? NULL : server_cluster(b);
    cfg.static_clusters = statics;
    cfg.num_static_clusters = b->num_clusters;
    cfg.static_eds_names = eds_names;
    cfg.num_static_eds_names = num_eds;
    if (c->ads) {
        cfg.carries[RM_XDS_CDS] = b->dynamic_resources.cds_config.set;
        cfg.carries[RM_XDS_EDS] = true;
        stream_init(c, &c->streams[c->num_streams++], "ADS", REMORA_METHOD_ADS_STREAM, &cfg);
    } else {
        cfg.carries[RM_XDS_CDS] = true;
        c->cds_stream = &c->streams[c->num_streams];
        stream_init(c, &c->streams[c->num_streams++], "CDS", REMORA_METHOD_CDS_STREAM, &cfg);
        cfg.carries[RM_XDS_CDS] = false;
        cfg.carries[RM_XDS_EDS] = true;
        c->eds_stream = &c->streams[c->num_streams];
        stream_init(c, &c->streams[c->num_streams++], "EDS", REMORA_METHOD_EDS_STREAM, &cfg);
    }
    free(statics);
    free(eds_names);

    grpc_init();
    c->cq = grpc_completion_queue_create_for_next(NULL);
    c->wakeup = event_new(consumer_base, -1, 0, on_wakeup, c);
    return c;
}

int rm_xds_client_start(rm_xds_client_t *c)
{
    if (c->thread_started)
        return -EALREADY;
    int rc = pthread_create(&c->thread, NULL, run, c);
    if (rc != 0)
        return -rc;
    c->thread_started = true;
    return 0;
}

void rm_xds_client_stop(rm_xds_client_t *c)
{
    if (c == NULL)
        return;
    /* The consumer stops delivering now: release an ACK waiting for it. */
    pthread_mutex_lock(&c->qmu);
    c->consumer_gone = true;
    pthread_cond_broadcast(&c->applied_cv);
    pthread_mutex_unlock(&c->qmu);
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    for (size_t i = 0; i < c->num_streams; i++)
        if (c->streams[i].call != NULL)
            grpc_call_cancel(c->streams[i].call, NULL);
    if (!c->cq_shut) {
        grpc_completion_queue_shutdown(c->cq);
        c->cq_shut = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started && !c->thread_joined) {
        pthread_join(c->thread, NULL);
        c->thread_joined = true;
    }
}

void rm_xds_client_destroy(rm_xds_client_t *c)
{
    if (c == NULL)
        return;
    rm_xds_client_stop(c);
    if (!c->thread_started) {
        /* Nothing ran: drain the (empty) queue so that it can be destroyed. */
        while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
    }
    grpc_completion_queue_destroy(c->cq);
    for (size_t i = 0; i < c->num_streams; i++) {
        stream_t *s = &c->streams[i];
        /* Every batch completed before the queue shut down, so every call was finished. */
        if (s->call != NULL)
            grpc_call_unref(s->call);
        if (s->channel != NULL)
            grpc_channel_destroy(s->channel);
        clear_sendq(s);
        rm_xds_state_destroy(s->state);
    }
    grpc_shutdown();
    event_free(c->wakeup);
    item_t *it = c->qhead;
    while (it != NULL) {
        item_t *next = it->next;
        item_free(it);
        it = next;
    }
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->qmu);
    pthread_cond_destroy(&c->applied_cv);
    pthread_mutex_destroy(&c->stats.mu);
    free(c->target);
    free(c);
}

const rm_xds_stats_t *rm_xds_client_stats(const rm_xds_client_t *c)
{
    return &c->stats;
}
