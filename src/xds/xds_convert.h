/* Conversion of xDS resources (protobuf-c messages of the trimmed Envoy v3 API) into the plain-C
 * config structs of config/config.h, with validation. Pure functions (see below for the one
 * exception), no global state, thread-safe.
 *
 * Supported Cluster fields: name, type (STATIC, STRICT_DNS, EDS), eds_cluster_config,
 * connect_timeout, lb_policy (ROUND_ROBIN, LEAST_REQUEST, RANDOM), least_request_lb_config,
 * round_robin_lb_config, common_lb_config.healthy_panic_threshold, per_connection_buffer_limit_bytes,
 * dns_refresh_rate, dns_lookup_family, load_assignment, transport_socket (envoy.transport_sockets.tls
 * with an UpstreamTlsContext); the same rules and defaults as the bootstrap.
 *
 * One exception to "no I/O": a transport_socket's certificate, key and CA files are read (and an
 * OpenSSL context built and dropped) so that a cluster whose TLS settings cannot work is refused
 * with a NACK naming the field, instead of failing every connection after an ACK.
 *
 * Everything else is rejected, never ignored: fields unknown to the trimmed protos (kept by
 * protobuf-c in base.unknown_fields, named by field number), known fields that are not supported
 * yet ("health_checks: not supported yet"), and invalid values. The error is one line that names
 * the resource and the field, e.g.
 *
 *   cluster 'web': connect_timeout: must be > 0
 *   cluster 'web': lb_policy: MAGLEV is not supported (supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM)
 *   cluster_load_assignment 'web': endpoints[1].lb_endpoints[0].endpoint.address.socket_address.
 *       port_value: must be 1..65535 (an upstream endpoint needs a port), got 0
 *
 * Resource names in messages are escaped (non-printable bytes as \xNN) and truncated, so that a
 * message is always one printable line.
 *
 * Protobuf types appear only here and in the other src/xds/ headers (see ARCHITECTURE.md). */
#ifndef RM_XDS_XDS_CONVERT_H
#define RM_XDS_XDS_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"

/* How an EDS cluster must say where its endpoints come from. Remora talks to one management
 * server, so an EDS cluster's eds_config must lead back to it. */
typedef struct {
    bool ads;                 /* the client uses ADS: eds_config must be {ads: {}} */
    const char *grpc_cluster; /* without ADS: the management server's cluster, which eds_config's
                                 api_config_source must name; NULL accepts any cluster name */
} rm_xds_convert_opts_t;

/* Converts a Cluster (borrowed) into *out (zeroed first; free with rm_cluster_config_free). Returns 0,
 * or -1 with *out left empty and the reason in err. opts may be NULL (either config source form is
 * accepted). */
int rm_xds_cluster_from_proto(const Envoy__Config__Cluster__V3__Cluster *pb,
                              const rm_xds_convert_opts_t *opts, rm_cluster_config_t *out, char *err,
                              size_t errlen);

/* Converts a ClusterLoadAssignment (an EDS resource; borrowed) into *out (zeroed first; free with
 * rm_cluster_load_assignment_free). Returns 0, or -1 with *out left empty and the reason in err. */
int rm_xds_cla_from_proto(const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *pb,
                          rm_cluster_load_assignment_t *out, char *err, size_t errlen);

/* Same, from a serialized message (e.g. the value of a google.protobuf.Any). */
int rm_xds_cluster_decode(const uint8_t *data, size_t len, const rm_xds_convert_opts_t *opts,
                          rm_cluster_config_t *out, char *err, size_t errlen);
int rm_xds_cla_decode(const uint8_t *data, size_t len, rm_cluster_load_assignment_t *out, char *err,
                      size_t errlen);

/* Writes s into buf as it appears in messages: printable ASCII kept, '\'' and '\\' and other bytes
 * escaped as \xNN, cut with "..." beyond 128 characters. Returns buf. */
const char *rm_xds_printable(const char *s, char *buf, size_t buflen);

#endif
