/* libFuzzer harness for CDS (and, via fuzz_xds_eds.c, EDS) responses: arbitrary bytes as a serialized
 * DiscoveryResponse, through unpack, Cluster conversion and validation in the xDS state machine. The input is
 * first fed as is; if it parses, it is fed again with its type_url (and every resource's) forced to the
 * harness's type, so that mutations reach the conversion rather than stopping at the type check. Every
 * response must be ACKed or NACKed with one well-formed request, and an accepted set must respect the rules
 * the conversion promises. */
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "xds/xds_state.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_xds_eds.c includes this file with FUZZ_XDS_TYPE set to RM_XDS_EDS. */
#ifndef FUZZ_XDS_TYPE
#define FUZZ_XDS_TYPE RM_XDS_CDS
#endif

static rm_xds_state_t *new_state(void)
{
    static const char *const statics[] = {"xds"};
    static const char *const eds_names[] = {"a", "b", "svc"};
    rm_xds_state_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.node_id = "fuzz";
    cfg.node_cluster = "fuzz";
    cfg.carries[RM_XDS_CDS] = true;
    cfg.carries[RM_XDS_EDS] = true;
    cfg.convert.ads = true;
    cfg.static_clusters = statics;
    cfg.num_static_clusters = 1;
    cfg.static_eds_names = eds_names;
    cfg.num_static_eds_names = 3;
    rm_xds_state_t *s = rm_xds_state_create(&cfg);
    rm_xds_output_t out;
    rm_xds_output_init(&out);
    rm_xds_state_stream_start(s, &out);
    rm_xds_output_fini(&out);
    return s;
}

static void check_endpoints(const rm_endpoint_config_t *eps, size_t n)
{
    uint32_t max_priority = 0;
    for (size_t i = 0; i < n; i++) {
        if (eps[i].address.address == NULL || eps[i].address.address[0] == '\0' || eps[i].address.port == 0 ||
            eps[i].address.port > 65535 || eps[i].weight == 0 || eps[i].priority > 128)
            __builtin_trap();
        if (eps[i].priority > max_priority)
            max_priority = eps[i].priority;
    }
    for (uint32_t p = 0; p < max_priority; p++) {
        bool used = false;
        for (size_t i = 0; i < n && !used; i++)
            used = eps[i].priority == p;
        if (!used)
            __builtin_trap();
    }
}

static void check_output(const rm_xds_output_t *out, const char *nonce)
{
    if (out->verdict != RM_XDS_ACCEPTED && out->verdict != RM_XDS_REJECTED)
        return;
    if (out->num_requests < 1)
        __builtin_trap();
    Envoy__Service__Discovery__V3__DiscoveryRequest *req =
        envoy__service__discovery__v3__discovery_request__unpack(NULL, out->requests[0].len,
                                                                 out->requests[0].data);
    if (req == NULL || strcmp(req->type_url, rm_xds_type_url(out->type)) != 0)
        __builtin_trap();
    if (nonce != NULL && strcmp(req->response_nonce, nonce) != 0)
        __builtin_trap();
    if (out->verdict == RM_XDS_REJECTED) {
        /* A NACK: the error is one non-empty line, and nothing was accepted before it. */
        if (req->error_detail == NULL || req->error_detail->code != 3 ||
            req->error_detail->message[0] == '\0' || strchr(req->error_detail->message, '\n') != NULL ||
            strcmp(req->version_info, "") != 0)
            __builtin_trap();
        if (out->has_clusters || out->has_assignments || out->clusters != NULL || out->clas != NULL)
            __builtin_trap();
    } else if (req->error_detail != NULL) {
        __builtin_trap();
    }
    envoy__service__discovery__v3__discovery_request__free_unpacked(req, NULL);
    for (size_t i = 0; i < out->num_clusters; i++) {
        const rm_cluster_config_t *c = &out->clusters[i];
        if (c->name == NULL || c->name[0] == '\0' || c->connect_timeout_ms == 0)
            __builtin_trap();
        if ((c->type == RM_CLUSTER_EDS) != (c->eds_service_name != NULL))
            __builtin_trap();
        check_endpoints(c->endpoints, c->num_endpoints);
    }
    for (size_t i = 0; i < out->num_clas; i++)
        check_endpoints(out->clas[i].endpoints, out->clas[i].num_endpoints);
}

static void feed(const uint8_t *data, size_t size, const char *nonce)
{
    rm_xds_state_t *s = new_state();
    rm_xds_output_t out;
    rm_xds_output_init(&out);
    if (rm_xds_state_on_response(s, data, size, &out) == 0)
        check_output(&out, nonce);
    else if (out.num_requests != 0 || out.error[0] == '\0')
        __builtin_trap();
    rm_xds_output_fini(&out);
    rm_xds_state_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    feed(data, size, NULL);
    Envoy__Service__Discovery__V3__DiscoveryResponse *resp =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, size, data);
    if (resp == NULL)
        return 0;
    /* Point the strings at constants only for packing; free_unpacked must see the originals. */
    char *saved = resp->type_url;
    char **saved_any = calloc(resp->n_resources + 1, sizeof(char *));
    resp->type_url = (char *)rm_xds_type_url(FUZZ_XDS_TYPE);
    for (size_t i = 0; i < resp->n_resources; i++) {
        saved_any[i] = resp->resources[i]->type_url;
        resp->resources[i]->type_url = (char *)rm_xds_type_url(FUZZ_XDS_TYPE);
    }
    size_t len = envoy__service__discovery__v3__discovery_response__get_packed_size(resp);
    uint8_t *buf = malloc(len ? len : 1);
    envoy__service__discovery__v3__discovery_response__pack(resp, buf);
    resp->type_url = saved;
    for (size_t i = 0; i < resp->n_resources; i++)
        resp->resources[i]->type_url = saved_any[i];
    feed(buf, len, resp->nonce);
    free(buf);
    free(saved_any);
    envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
    return 0;
}
