/* The xDS client: a thread of its own that talks to the management server named in the bootstrap
 * (dynamic_resources) over gRPC, with the SotW protocol of xds_state.h, and hands accepted updates
 * to the consumer's thread.
 *
 * Transport: grpc C core, insecure channel to the first endpoint of the static cluster named by
 * ads_config (one ADS stream, StreamAggregatedResources) or by cds_config.api_config_source (separate
 * StreamClusters and StreamEndpoints streams). A stream that ends or fails is reopened after a
 * jittered exponential backoff (500 ms base, 30 s max; reset after a stream that got a response),
 * and its first requests carry the accepted versions and the current resource names.
 *
 * Validation happens on the xDS thread, before the ACK; the consumer only receives accepted updates.
 * Callbacks run on the consumer's thread: the client queues them under a mutex and wakes an event
 * of the consumer's event_base with event_active, so that base must have been created after
 * evthread_use_pthreads(). */
#ifndef RM_XDS_XDS_CLIENT_H
#define RM_XDS_XDS_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/stats.h"
#include "xds/xds_state.h"

struct event_base;

typedef struct {
    /* An accepted CDS response: the complete set of dynamic clusters (clusters absent from it are
     * removed). The array and its contents pass to the callee (free each with rm_cluster_config_free,
     * then the array); n may be 0, clusters then NULL. version is borrowed for the call. */
    void (*on_clusters)(void *ctx, rm_cluster_config_t *clusters, size_t n, const char *version);
    /* An accepted EDS response: the assignments it contained among those subscribed (the others keep
     * their previous assignment). Ownership as above (rm_cluster_load_assignment_free); n >= 1. */
    void (*on_assignments)(void *ctx, rm_cluster_load_assignment_t *clas, size_t n, const char *version);
    /* Connected (true): the server has answered on every stream that asked it something (its initial
     * metadata or a first response). Disconnected (false): one of those streams ended. Called on
     * changes only; also the value of control_plane.connected_state. May be NULL. */
    void (*on_connection)(void *ctx, bool connected);
} rm_xds_callbacks_t;

/* X(field, prefix, name, kind): Envoy's names where Envoy has one (cluster_manager.cds.*,
 * control_plane.connected_state). Envoy keeps EDS counters per cluster; Remora's xDS client counts
 * EDS responses in one block under cluster_manager.eds. update_attempt counts responses processed
 * and stream failures (= success + rejected + failure). version is Envoy's: the numeric version_info,
 * or its xxHash64 (rm_xds_version_stat). */
#define RM_XDS_STATS(X)                                                                                      \
    X(cds_update_attempt, "cluster_manager.cds.", "update_attempt", C)                                       \
    X(cds_update_success, "cluster_manager.cds.", "update_success", C)                                       \
    X(cds_update_rejected, "cluster_manager.cds.", "update_rejected", C)                                     \
    X(cds_update_failure, "cluster_manager.cds.", "update_failure", C)                                       \
    X(cds_version, "cluster_manager.cds.", "version", G)                                                     \
    X(eds_update_attempt, "cluster_manager.eds.", "update_attempt", C)                                       \
    X(eds_update_success, "cluster_manager.eds.", "update_success", C)                                       \
    X(eds_update_rejected, "cluster_manager.eds.", "update_rejected", C)                                     \
    X(eds_update_failure, "cluster_manager.eds.", "update_failure", C)                                       \
    X(eds_version, "cluster_manager.eds.", "version", G)                                                     \
    X(connected_state, "control_plane.", "connected_state", G)

#define RM_XDS_STAT_FIELD(field, prefix, name, kind) _Atomic uint64_t field;

typedef struct {
    RM_XDS_STATS(RM_XDS_STAT_FIELD)
    /* The last accepted version_info per type (truncated), under mu: use rm_xds_stats_version_text. */
    pthread_mutex_t mu;
    char version_text[RM_XDS_NUM_TYPES][64];
} rm_xds_stats_t;

/* Calls cb(ctx, prefix, name, value, is_gauge) for each stat (any thread). */
void rm_xds_stats_visit(const rm_xds_stats_t *s, rm_stats_visit_cb cb, void *ctx);
/* Copies the last accepted version_info of a type ("" when none) into buf (any thread). */
void rm_xds_stats_version_text(const rm_xds_stats_t *s, rm_xds_type_t type, char *buf, size_t buflen);

typedef struct rm_xds_client rm_xds_client_t;

/* Creates a client for the bootstrap's dynamic_resources (b must outlive the client; cbs is copied).
 * Returns NULL with err set when the bootstrap has no management server to talk to. Consumer thread. */
rm_xds_client_t *rm_xds_client_create(const rm_bootstrap_config_t *b, struct event_base *consumer_base,
                                      const rm_xds_callbacks_t *cbs, void *ctx, char *err, size_t errlen);
/* Starts the xDS thread, which connects at once. Returns 0 or a negative errno. */
int rm_xds_client_start(rm_xds_client_t *c);
/* Cancels the streams and joins the thread. Updates already queued are still delivered by the
 * consumer's loop until destroy. Idempotent; any thread but the xDS thread. */
void rm_xds_client_stop(rm_xds_client_t *c);
/* Stops if needed and frees everything, including updates not delivered yet. Consumer thread. */
void rm_xds_client_destroy(rm_xds_client_t *c);
/* Borrowed; valid until destroy; readable from any thread. */
const rm_xds_stats_t *rm_xds_client_stats(const rm_xds_client_t *c);

/* The management server's address as a gRPC target ("ipv4:10.0.0.1:18000", "ipv6:[::1]:18000",
 * "dns:///xds.internal:18000"), from the first endpoint of the static cluster the bootstrap names.
 * Returns a new string, or NULL with err set. */
char *rm_xds_client_target(const rm_bootstrap_config_t *b, char *err, size_t errlen);

/* Jittered exponential backoff: each delay is drawn from [interval/2, interval], then the interval
 * doubles up to max. Pure, for tests. */
typedef struct {
    uint64_t base_ms, max_ms, interval_ms;
} rm_xds_backoff_t;

void rm_xds_backoff_init(rm_xds_backoff_t *b, uint64_t base_ms, uint64_t max_ms);
/* rnd: a uniformly random 64-bit value. */
uint64_t rm_xds_backoff_next(rm_xds_backoff_t *b, uint64_t rnd);
void rm_xds_backoff_reset(rm_xds_backoff_t *b);

#endif
