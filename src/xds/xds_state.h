/* The xDS protocol state machine (state-of-the-world variant), separated from the transport so that
 * it can be driven by a fake stream in tests. One state per gRPC stream: with ADS one state carries
 * both CDS and EDS; without ADS there is one state per resource type (one stream each), and the
 * client hands the EDS names the CDS state derives to the EDS state.
 *
 * Rules (Envoy's xds_protocol document):
 *  - the first request on a stream carries the node; later ones do not;
 *  - CDS is a wildcard subscription (no resource names); EDS subscribes by the service names of the
 *    EDS clusters (static ones from the bootstrap and those CDS delivered);
 *  - ACK = the response's version_info + its nonce; NACK = the last accepted version_info of that type
 *    + the response's nonce + error_detail (google.rpc.Status, code 3 INVALID_ARGUMENT, the reason);
 *  - versions are per type and survive reconnects; nonces are per stream and do not;
 *  - a CDS response is the complete set, all or nothing: one invalid cluster rejects the response and
 *    nothing changes; a cluster absent from an accepted response is removed;
 *  - an EDS response updates only the assignments it contains (absence is not deletion, an empty
 *    response is a no-op); assignments that were not requested are ignored; an invalid one rejects
 *    the whole response;
 *  - a response that repeats a resource name is rejected;
 *  - a response for a type this stream does not carry (or EDS while nothing is subscribed) is ignored
 *    without ACK, as Envoy does for types without watchers.
 *
 * Not thread-safe: one thread drives a state (the xDS thread, or a test). */
#ifndef RM_XDS_XDS_STATE_H
#define RM_XDS_XDS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "xds/xds_convert.h"

typedef enum {
    RM_XDS_CDS = 0,
    RM_XDS_EDS = 1,
} rm_xds_type_t;
#define RM_XDS_NUM_TYPES 2

/* "type.googleapis.com/envoy.config.cluster.v3.Cluster" and the ClusterLoadAssignment one. */
const char *rm_xds_type_url(rm_xds_type_t type);
/* "cds", "eds" */
const char *rm_xds_type_name(rm_xds_type_t type);

typedef struct {
    const char *node_id;      /* required */
    const char *node_cluster; /* required */
    bool carries[RM_XDS_NUM_TYPES];
    rm_xds_convert_opts_t convert;
    /* Names of the bootstrap's static clusters: CDS may not redefine them. */
    const char *const *static_clusters;
    size_t num_static_clusters;
    /* EDS service names of the bootstrap's static EDS clusters: always subscribed. */
    const char *const *static_eds_names;
    size_t num_static_eds_names;
} rm_xds_state_config_t;

typedef struct rm_xds_state rm_xds_state_t;

/* A serialized envoy.service.discovery.v3.DiscoveryRequest to send on the stream. */
typedef struct {
    rm_xds_type_t type;
    uint8_t *data; /* owned by the output */
    size_t len;
} rm_xds_request_t;

typedef enum {
    RM_XDS_NONE = 0,     /* no response was processed (stream start, subscription change) */
    RM_XDS_ACCEPTED = 1, /* ACKed; the update is in the output */
    RM_XDS_REJECTED = 2, /* NACKed; error says why, nothing changed */
    RM_XDS_IGNORED = 3,  /* not for this stream or nothing subscribed: no ACK, nothing changed */
} rm_xds_verdict_t;

#define RM_XDS_MAX_REQUESTS 4
#define RM_XDS_ERROR_MAX    1024

/* What one step produced. The caller sends requests[] in order. The update arrays are owned by the
 * output until the caller takes them (setting the pointers to NULL); rm_xds_output_fini frees
 * whatever is still owned. */
typedef struct {
    rm_xds_request_t requests[RM_XDS_MAX_REQUESTS];
    size_t num_requests;
    rm_xds_verdict_t verdict;
    rm_xds_type_t type; /* of the response */
    char error[RM_XDS_ERROR_MAX];
    char *version; /* accepted: the response's version_info */
    /* Accepted CDS: the complete cluster set (possibly empty). */
    bool has_clusters;
    rm_cluster_config_t *clusters;
    size_t num_clusters;
    /* Accepted EDS: the requested assignments the response contained. */
    bool has_assignments;
    rm_cluster_load_assignment_t *clas;
    size_t num_clas;
    /* The EDS names derived from CDS changed (without ADS, hand them to the EDS stream's state). */
    bool eds_names_changed;
} rm_xds_output_t;

void rm_xds_output_init(rm_xds_output_t *out);
void rm_xds_output_fini(rm_xds_output_t *out);

/* Copies what it needs from cfg. */
rm_xds_state_t *rm_xds_state_create(const rm_xds_state_config_t *cfg);
void rm_xds_state_destroy(rm_xds_state_t *s);

/* A new stream is open: forgets the nonces and produces its first requests (one per carried type
 * that has something to subscribe to), carrying the accepted versions and the current EDS names. */
void rm_xds_state_stream_start(rm_xds_state_t *s, rm_xds_output_t *out);
/* The stream ended: later subscription changes wait for the next stream start. */
void rm_xds_state_stream_end(rm_xds_state_t *s);

/* Feeds one DiscoveryResponse (serialized). Returns 0 with the verdict, requests and update in out,
 * or -1 when the bytes are not a DiscoveryResponse (nothing to ACK or NACK: the caller should restart
 * the stream; out->error says why). */
int rm_xds_state_on_response(rm_xds_state_t *s, const uint8_t *data, size_t len, rm_xds_output_t *out);

/* The EDS names this state wants (static EDS names + those of the accepted CDS clusters), sorted,
 * borrowed until the next call on s. */
const char *const *rm_xds_state_eds_names(const rm_xds_state_t *s, size_t *n);
/* Replaces the EDS subscription (without ADS: the names from the CDS stream's state). When it changes
 * on an open stream, out gets the new EDS request. */
void rm_xds_state_set_eds_names(rm_xds_state_t *s, const char *const *names, size_t n, rm_xds_output_t *out);

/* The last accepted version_info of a type ("" when none), borrowed. */
const char *rm_xds_state_version(const rm_xds_state_t *s, rm_xds_type_t type);

/* The value of Envoy's *.version stat for a version_info: the number itself when it is a plain
 * decimal that fits in 64 bits, else the xxHash64 of the string (seed 0) as Envoy reports it. */
uint64_t rm_xds_version_stat(const char *version);
/* xxHash64 (seed 0), exposed for tests. */
uint64_t rm_xds_xxhash64(const void *data, size_t len);

#endif
