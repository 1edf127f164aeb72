/* Names shared by the xDS client (src/xds) and the mock control plane: resource type URLs,
 * gRPC method paths, and the typed_extension_protocol_options key. Kept next to the .proto
 * files so the strings and the messages cannot drift apart. */
#ifndef REMORA_PROTO_XDS_H
#define REMORA_PROTO_XDS_H

#define REMORA_TYPE_URL_PREFIX "type.googleapis.com/"

#define REMORA_TYPE_URL_CLUSTER REMORA_TYPE_URL_PREFIX "envoy.config.cluster.v3.Cluster"
#define REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT                                                              \
    REMORA_TYPE_URL_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment"
#define REMORA_TYPE_URL_UPSTREAM_HTTP_PROTOCOL_OPTIONS                                                       \
    REMORA_TYPE_URL_PREFIX "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

#define REMORA_TYPE_URL_UPSTREAM_TLS_CONTEXT                                                                 \
    REMORA_TYPE_URL_PREFIX "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
#define REMORA_TYPE_URL_DOWNSTREAM_TLS_CONTEXT                                                               \
    REMORA_TYPE_URL_PREFIX "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
#define REMORA_TRANSPORT_SOCKET_TLS "envoy.transport_sockets.tls"

/* Key of Cluster.typed_extension_protocol_options that carries upstreams.http.v3.HttpProtocolOptions. */
#define REMORA_UPSTREAM_HTTP_PROTOCOL_OPTIONS_KEY "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

#define REMORA_METHOD_ADS_STREAM                                                                             \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define REMORA_METHOD_CDS_STREAM "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters"
#define REMORA_METHOD_CDS_FETCH  "/envoy.service.cluster.v3.ClusterDiscoveryService/FetchClusters"
#define REMORA_METHOD_EDS_STREAM "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints"

#define REMORA_METHOD_ADMIN_PREFIX                "/remora.controlplane.v1.Admin/"
#define REMORA_METHOD_ADMIN_ADD_ENDPOINT          REMORA_METHOD_ADMIN_PREFIX "AddEndpoint"
#define REMORA_METHOD_ADMIN_REMOVE_ENDPOINT       REMORA_METHOD_ADMIN_PREFIX "RemoveEndpoint"
#define REMORA_METHOD_ADMIN_SET_ENDPOINT_WEIGHT   REMORA_METHOD_ADMIN_PREFIX "SetEndpointWeight"
#define REMORA_METHOD_ADMIN_SET_ENDPOINT_PRIORITY REMORA_METHOD_ADMIN_PREFIX "SetEndpointPriority"
#define REMORA_METHOD_ADMIN_SET_ENDPOINT_HEALTH   REMORA_METHOD_ADMIN_PREFIX "SetEndpointHealth"
#define REMORA_METHOD_ADMIN_UPSERT_CLUSTER        REMORA_METHOD_ADMIN_PREFIX "UpsertCluster"
#define REMORA_METHOD_ADMIN_REMOVE_CLUSTER        REMORA_METHOD_ADMIN_PREFIX "RemoveCluster"
#define REMORA_METHOD_ADMIN_LIST_NODES            REMORA_METHOD_ADMIN_PREFIX "ListNodes"
#define REMORA_METHOD_ADMIN_WAIT_FOR_ACK          REMORA_METHOD_ADMIN_PREFIX "WaitForAck"

#endif
