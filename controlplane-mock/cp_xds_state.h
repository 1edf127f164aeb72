/* xDS state-of-the-world bookkeeping of the control plane, as pure functions (no gRPC, no clock):
 * per stream and resource type what was subscribed and sent, how each request relates to the last
 * response (initial, ACK, NACK, stale), and per node what it has ACKed or NACKed; plus the
 * evaluation of WaitForAck.
 *
 * Versions are the control plane's snapshot versions: decimal integers, compared numerically.
 *
 * "Effective" ACKs: a snapshot change bumps the global version, but a stream only gets a response for
 * a type whose resources changed. A node that has ACKed the resources a type still has at version V
 * has applied version V for that type, so it counts as having ACKed V (and a node that NACKed them
 * as having NACKed V). The acked/nacked versions kept per node are these effective versions; this is
 * what lets a test wait for "version V everywhere" after a change that touched one type only.
 *
 * Ownership: each struct owns its strings and arrays; *_fini/_free release them. Single-threaded. */
#ifndef RM_CP_XDS_STATE_H
#define RM_CP_XDS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The resource types served, in the order a stream sends them (clusters before their endpoints). */
typedef enum {
    RM_CP_TYPE_CLUSTER = 0,  /* CDS: envoy.config.cluster.v3.Cluster */
    RM_CP_TYPE_ENDPOINT = 1, /* EDS: envoy.config.endpoint.v3.ClusterLoadAssignment */
    RM_CP_TYPE_COUNT = 2,
} rm_cp_type_t;

/* Index of a type URL, or -1 for one that is not served. */
int rm_cp_type_from_url(const char *type_url);
const char *rm_cp_type_url(rm_cp_type_t type);
const char *rm_cp_type_short_name(rm_cp_type_t type); /* "cds", "eds" */

/* Parses a version: a canonical decimal integer. 0 or -1. */
int rm_cp_version_parse(const char *text, uint64_t *out);

typedef enum {
    RM_CP_RESP_NONE = 0, /* nothing sent yet */
    RM_CP_RESP_PENDING,  /* sent, no answer yet */
    RM_CP_RESP_ACKED,
    RM_CP_RESP_NACKED,
} rm_cp_resp_state_t;

/* One resource type on one stream. Zero-initialise. */
typedef struct {
    bool subscribed; /* a request for this type arrived */
    bool wildcard;   /* CDS with no resource names: every cluster */
    char **names;
    size_t num_names;
    rm_cp_resp_state_t state;
    uint64_t sent_version;
    char sent_nonce[24];
    uint8_t *sent_content; /* the resources of the last response, for change detection */
    size_t sent_len;
    /* The newest snapshot version whose resources for this subscription equal sent_content. */
    uint64_t current_through;
} rm_cp_sub_t;

void rm_cp_sub_fini(rm_cp_sub_t *sub);

typedef enum {
    RM_CP_REQ_INITIAL, /* no response_nonce: a new subscription (first request, or after a reconnect) */
    RM_CP_REQ_ACK,     /* nonce of the last response, no error_detail, same version_info */
    RM_CP_REQ_NACK,    /* nonce of the last response with error_detail */
    RM_CP_REQ_UPDATE,  /* nonce of the last response, no error, but another version_info: names only */
    RM_CP_REQ_STALE,   /* nonce of an older response: ignored */
} rm_cp_req_kind_t;

const char *rm_cp_req_kind_name(rm_cp_req_kind_t kind);

/* How a request relates to the subscription's last response. nonce and version_info may be NULL. */
rm_cp_req_kind_t rm_cp_sub_classify(const rm_cp_sub_t *sub, const char *nonce, const char *version_info,
                                    bool has_error);

/* Replaces the requested names (copied). For CDS an empty list (or one containing "*") is a wildcard
 * subscription; for EDS it selects nothing. */
void rm_cp_sub_set_names(rm_cp_sub_t *sub, rm_cp_type_t type, const char *const *names, size_t n);
/* Whether a resource named name belongs to the subscription. */
bool rm_cp_sub_wants(const rm_cp_sub_t *sub, const char *name);

/* Whether content (the resources a response would carry now) differs from what was last sent; also
 * true when nothing was sent yet, so the first request is always answered. */
bool rm_cp_sub_needs_send(const rm_cp_sub_t *sub, const uint8_t *content, size_t len);

/* Records a response (content copied). */
void rm_cp_sub_on_sent(rm_cp_sub_t *sub, uint64_t version, const char *nonce, const uint8_t *content,
                       size_t len);

/* xDS state of one node for one type. */
typedef struct {
    bool ever_subscribed;
    bool has_ack;
    uint64_t acked_version; /* effective, see the top of this file */
    bool has_nack;          /* cleared by a later ACK */
    uint64_t nacked_version;
    char *nack_message;
    int64_t last_seen_ms; /* wall clock of the last request for this type, 0 if none */
} rm_cp_node_type_t;

typedef struct {
    char *id;
    char *cluster;
    unsigned streams; /* open streams of this node */
    rm_cp_node_type_t types[RM_CP_TYPE_COUNT];
} rm_cp_node_t;

rm_cp_node_t *rm_cp_node_new(const char *id, const char *cluster);
void rm_cp_node_free(rm_cp_node_t *node);

/* A request of this type arrived from the node at now_ms (wall clock). */
void rm_cp_node_seen(rm_cp_node_type_t *nt, int64_t now_ms);

/* The request answers the last response with an ACK: records it on the subscription and the node. */
void rm_cp_on_ack(rm_cp_sub_t *sub, rm_cp_node_type_t *nt);
/* The request NACKs the last response; message may be NULL. */
void rm_cp_on_nack(rm_cp_sub_t *sub, rm_cp_node_type_t *nt, const char *message);
/* The snapshot moved to version, and the subscription's resources did not change: carries the last
 * ACK or NACK over to version. Call only when rm_cp_sub_needs_send() is false. */
void rm_cp_on_unchanged(rm_cp_sub_t *sub, rm_cp_node_type_t *nt, uint64_t version);

typedef enum {
    RM_CP_WAIT_PENDING,
    RM_CP_WAIT_ACKED,
    RM_CP_WAIT_NACKED,
} rm_cp_wait_result_t;

/* Whether node (NULL: not seen yet) has ACKed version for type, or for every type it has subscribed to
 * when type is -1 (a node without subscriptions is pending). A NACK of version or later on any of
 * those types is RM_CP_WAIT_NACKED, with *message (borrowed; may be "") set. *acked_out (may be NULL)
 * gets the relevant acked version (the lowest over the types), 0 if none. */
rm_cp_wait_result_t rm_cp_wait_eval(const rm_cp_node_t *node, uint64_t version, int type, uint64_t *acked_out,
                                    const char **message);

#endif
