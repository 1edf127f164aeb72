/* The control plane's snapshot: clusters with their endpoints, loaded from a YAML file, changed by the
 * admin API, and rendered into the xDS resources that are served (envoy Cluster for CDS,
 * ClusterLoadAssignment for EDS).
 *
 * Snapshot file (YAML; cluster settings use Envoy's Cluster field names):
 *
 *   clusters:
 *   - name: backend                 # required, unique
 *     lb_policy: ROUND_ROBIN        # any Envoy LbPolicy name; default ROUND_ROBIN (not sent)
 *     connect_timeout: 1s           # optional; not sent when absent (the sidecar's default applies)
 *     endpoints:
 *     - {address: 127.0.0.1:8081, weight: 2}                       # "host:port" or "[v6]:port"
 *     - {address: 127.0.0.1:8083, priority: 1, health: HEALTHY}    # health: Envoy HealthStatus name
 *     outlier_detection: {...}      # passed through (see rm_cp_snapshot_passthrough_fields)
 *
 * Every served cluster is an EDS cluster whose endpoints come over ADS (eds_cluster_config
 * {eds_config {ads {}}}), and its ClusterLoadAssignment has the cluster's name.
 *
 * Ownership: a snapshot owns all its clusters, endpoints and strings. Single-threaded. */
#ifndef RM_CP_SNAPSHOT_H
#define RM_CP_SNAPSHOT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *host; /* IP literal or name, without brackets */
    uint32_t port;
    uint32_t weight; /* >= 1 */
    uint32_t priority;
    int health; /* envoy.config.core.v3.HealthStatus */
} rm_cp_endpoint_t;

typedef struct {
    char *name;
    int lb_policy; /* envoy.config.cluster.v3.Cluster.LbPolicy */
    bool has_connect_timeout;
    int64_t connect_timeout_seconds;
    int32_t connect_timeout_nanos;
    /* The pass-through settings as a serialized envoy Cluster that sets nothing else (may be empty).
     * Appending it to the serialized base cluster merges the two messages. */
    uint8_t *extra;
    size_t extra_len;
    rm_cp_endpoint_t *endpoints;
    size_t num_endpoints;
} rm_cp_cluster_t;

typedef struct {
    rm_cp_cluster_t *clusters;
    size_t num_clusters;
} rm_cp_snapshot_t;

/* Result codes of loading and of mutations; the matching gRPC status is in parentheses. */
typedef enum {
    RM_CP_OK = 0,
    RM_CP_EINVAL = -1, /* invalid argument (INVALID_ARGUMENT) */
    RM_CP_ENOENT = -2, /* no such cluster or endpoint (NOT_FOUND) */
    RM_CP_EEXIST = -3, /* endpoint already exists (ALREADY_EXISTS) */
    RM_CP_EIO = -4,    /* the file could not be read */
} rm_cp_result_t;

/* Cluster fields that a snapshot file may set and that are sent unchanged, space-separated. */
const char *rm_cp_snapshot_passthrough_fields(void);

/* Parses a snapshot document (an empty document is a snapshot without clusters). Returns 0 and a new
 * snapshot in *out, or RM_CP_EINVAL with "<path>: <problem>" in err. */
int rm_cp_snapshot_parse(const char *text, size_t len, rm_cp_snapshot_t **out, char *err, size_t errlen);
/* Reads and parses path; RM_CP_EIO if it cannot be read. The error names the file. */
int rm_cp_snapshot_load_file(const char *path, rm_cp_snapshot_t **out, char *err, size_t errlen);

rm_cp_snapshot_t *rm_cp_snapshot_new(void);
void rm_cp_snapshot_free(rm_cp_snapshot_t *s);
void rm_cp_cluster_free(rm_cp_cluster_t *c); /* members only */

rm_cp_cluster_t *rm_cp_snapshot_find_cluster(rm_cp_snapshot_t *s, const char *name);
rm_cp_endpoint_t *rm_cp_cluster_find_endpoint(rm_cp_cluster_t *c, const char *host, uint32_t port);

/* "host:port" or "[v6]:port" -> host (new string, brackets removed) and port 1..65535.
 * Returns 0 or -1 with a message in err. */
int rm_cp_parse_address(const char *text, char **host, uint32_t *port, char *err, size_t errlen);
/* The inverse: a new "host:port" string (brackets around an IPv6 host). */
char *rm_cp_format_address(const char *host, uint32_t port);

/* Envoy enum names <-> numbers. Lookups return 0 or -1 for an unknown name; names are upper case. */
int rm_cp_lb_policy_parse(const char *name, int *out);
const char *rm_cp_lb_policy_name(int value);
int rm_cp_health_parse(const char *name, int *out);
const char *rm_cp_health_name(int value);

/* ---- mutations (the admin API). Each validates first and changes nothing on error; err gets a
 * one-line message. weight 0 means 1. ---- */

int rm_cp_snapshot_add_endpoint(rm_cp_snapshot_t *s, const char *cluster, const char *address,
                                uint32_t weight, uint32_t priority, int health, char *err, size_t errlen);
int rm_cp_snapshot_remove_endpoint(rm_cp_snapshot_t *s, const char *cluster, const char *address, char *err,
                                   size_t errlen);

typedef enum {
    RM_CP_SET_WEIGHT,
    RM_CP_SET_PRIORITY,
    RM_CP_SET_HEALTH,
} rm_cp_endpoint_attr_t;
int rm_cp_snapshot_set_endpoint(rm_cp_snapshot_t *s, const char *cluster, const char *address,
                                rm_cp_endpoint_attr_t attr, uint32_t value, char *err, size_t errlen);

/* Moves *c (which the caller built and validated, e.g. with rm_cp_cluster_check) into the snapshot,
 * replacing a cluster of the same name. When replacing, pass-through settings the new cluster does
 * not have are kept from the old one (the admin API cannot express them). *c is zeroed. */
void rm_cp_snapshot_upsert_cluster(rm_cp_snapshot_t *s, rm_cp_cluster_t *c);
/* Checks a cluster built outside the YAML loader: a name, known lb_policy and health values,
 * unique endpoint addresses, weights >= 1. */
int rm_cp_cluster_check(const rm_cp_cluster_t *c, char *err, size_t errlen);
int rm_cp_snapshot_remove_cluster(rm_cp_snapshot_t *s, const char *name, char *err, size_t errlen);

/* ---- rendering ---- */

/* One cluster's resources, serialized. */
typedef struct {
    char *name;
    ProtobufCBinaryData cluster; /* envoy.config.cluster.v3.Cluster */
    ProtobufCBinaryData cla;     /* envoy.config.endpoint.v3.ClusterLoadAssignment */
} rm_cp_resource_t;

typedef struct {
    rm_cp_resource_t *resources; /* in snapshot order */
    size_t num_resources;
} rm_cp_rendered_t;

rm_cp_rendered_t *rm_cp_snapshot_render(const rm_cp_snapshot_t *s);
/* Whether two renderings serve exactly the same resources. */
bool rm_cp_rendered_equal(const rm_cp_rendered_t *a, const rm_cp_rendered_t *b);
void rm_cp_rendered_free(rm_cp_rendered_t *r);

#endif
