/* libFuzzer harness for what remora-cp does with a DiscoveryRequest from the network: decode it, map
 * its type URL, classify it against a subscription that has a pending response (ACK, NACK, stale...),
 * and apply its resource names. Any input must be handled without crashing or leaking. */
#include "cp_xds_state.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest *req =
        envoy__service__discovery__v3__discovery_request__unpack(NULL, size, data);
    if (req == NULL)
        return 0;
    int type = rm_cp_type_from_url(req->type_url);
    rm_cp_sub_t sub;
    memset(&sub, 0, sizeof(sub));
    sub.state = RM_CP_RESP_PENDING;
    sub.sent_version = 3;
    memcpy(sub.sent_nonce, "7", 2);
    rm_cp_req_kind_t kind =
        rm_cp_sub_classify(&sub, req->response_nonce, req->version_info, req->error_detail != NULL);
    if (rm_cp_req_kind_name(kind) == NULL)
        __builtin_trap();
    uint64_t v;
    (void)rm_cp_version_parse(req->version_info != NULL ? req->version_info : "", &v);
    if (type >= 0) {
        rm_cp_sub_set_names(&sub, (rm_cp_type_t)type, (const char *const *)req->resource_names,
                            req->n_resource_names);
        for (size_t i = 0; i < req->n_resource_names; i++)
            (void)rm_cp_sub_wants(&sub, req->resource_names[i]);
    }
    rm_cp_sub_fini(&sub);
    envoy__service__discovery__v3__discovery_request__free_unpacked(req, NULL);
    return 0;
}
