#include "cp_xds_state.h"

#include "config/yaml_decode.h"
#include "core/mem.h"
#include "remora_proto/xds.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_urls[RM_CP_TYPE_COUNT] = {
    [RM_CP_TYPE_CLUSTER] = REMORA_TYPE_URL_CLUSTER,
    [RM_CP_TYPE_ENDPOINT] = REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT,
};
static const char *const short_names[RM_CP_TYPE_COUNT] = {
    [RM_CP_TYPE_CLUSTER] = "cds",
    [RM_CP_TYPE_ENDPOINT] = "eds",
};

int rm_cp_type_from_url(const char *type_url)
{
    for (int i = 0; i < RM_CP_TYPE_COUNT; i++)
        if (type_url != NULL && strcmp(type_url, type_urls[i]) == 0)
            return i;
    return -1;
}

const char *rm_cp_type_url(rm_cp_type_t type)
{
    return type_urls[type];
}

const char *rm_cp_type_short_name(rm_cp_type_t type)
{
    return short_names[type];
}

int rm_cp_version_parse(const char *text, uint64_t *out)
{
    if (text == NULL)
        return -1;
    return rm_yaml_parse_uint64(text, strlen(text), out);
}

const char *rm_cp_req_kind_name(rm_cp_req_kind_t kind)
{
    switch (kind) {
    case RM_CP_REQ_INITIAL:
        return "initial";
    case RM_CP_REQ_ACK:
        return "ACK";
    case RM_CP_REQ_NACK:
        return "NACK";
    case RM_CP_REQ_UPDATE:
        return "update";
    case RM_CP_REQ_STALE:
        return "stale";
    }
    return "?";
}

/* ---- subscriptions ---- */

static void free_names(rm_cp_sub_t *sub)
{
    for (size_t i = 0; i < sub->num_names; i++)
        free(sub->names[i]);
    free(sub->names);
    sub->names = NULL;
    sub->num_names = 0;
}

void rm_cp_sub_fini(rm_cp_sub_t *sub)
{
    free_names(sub);
    free(sub->sent_content);
    memset(sub, 0, sizeof(*sub));
}

rm_cp_req_kind_t rm_cp_sub_classify(const rm_cp_sub_t *sub, const char *nonce, const char *version_info,
                                    bool has_error)
{
    if (nonce == NULL || nonce[0] == '\0')
        return RM_CP_REQ_INITIAL;
    if (sub->state == RM_CP_RESP_NONE || strcmp(nonce, sub->sent_nonce) != 0)
        return RM_CP_REQ_STALE;
    if (has_error)
        return RM_CP_REQ_NACK;
    char sent[24];
    snprintf(sent, sizeof(sent), "%" PRIu64, sub->sent_version);
    if (version_info != NULL && strcmp(version_info, sent) == 0)
        return RM_CP_REQ_ACK;
    return RM_CP_REQ_UPDATE;
}

void rm_cp_sub_set_names(rm_cp_sub_t *sub, rm_cp_type_t type, const char *const *names, size_t n)
{
    free_names(sub);
    sub->subscribed = true;
    sub->wildcard = type == RM_CP_TYPE_CLUSTER && n == 0;
    if (n > 0)
        sub->names = rm_calloc(n, sizeof(*sub->names));
    for (size_t i = 0; i < n; i++) {
        sub->names[i] = rm_strdup(names[i]);
        if (type == RM_CP_TYPE_CLUSTER && strcmp(names[i], "*") == 0)
            sub->wildcard = true;
    }
    sub->num_names = n;
}

bool rm_cp_sub_wants(const rm_cp_sub_t *sub, const char *name)
{
    if (sub->wildcard)
        return true;
    for (size_t i = 0; i < sub->num_names; i++)
        if (strcmp(sub->names[i], name) == 0)
            return true;
    return false;
}

bool rm_cp_sub_needs_send(const rm_cp_sub_t *sub, const uint8_t *content, size_t len)
{
    if (sub->state == RM_CP_RESP_NONE)
        return true;
    return len != sub->sent_len || (len > 0 && memcmp(content, sub->sent_content, len) != 0);
}

void rm_cp_sub_on_sent(rm_cp_sub_t *sub, uint64_t version, const char *nonce, const uint8_t *content,
                       size_t len)
{
    free(sub->sent_content);
    sub->sent_content = rm_malloc(len ? len : 1);
    if (len > 0)
        memcpy(sub->sent_content, content, len);
    sub->sent_len = len;
    sub->sent_version = version;
    snprintf(sub->sent_nonce, sizeof(sub->sent_nonce), "%s", nonce);
    sub->current_through = version;
    sub->state = RM_CP_RESP_PENDING;
}

/* ---- nodes ---- */

rm_cp_node_t *rm_cp_node_new(const char *id, const char *cluster)
{
    rm_cp_node_t *node = RM_NEW(rm_cp_node_t);
    node->id = rm_strdup(id ? id : "");
    node->cluster = rm_strdup(cluster ? cluster : "");
    return node;
}

void rm_cp_node_free(rm_cp_node_t *node)
{
    if (node == NULL)
        return;
    for (int i = 0; i < RM_CP_TYPE_COUNT; i++)
        free(node->types[i].nack_message);
    free(node->id);
    free(node->cluster);
    free(node);
}

void rm_cp_node_seen(rm_cp_node_type_t *nt, int64_t now_ms)
{
    nt->ever_subscribed = true;
    nt->last_seen_ms = now_ms;
}

static void record_ack(rm_cp_node_type_t *nt, uint64_t version)
{
    if (!nt->has_ack || version > nt->acked_version)
        nt->acked_version = version;
    nt->has_ack = true;
}

void rm_cp_on_ack(rm_cp_sub_t *sub, rm_cp_node_type_t *nt)
{
    sub->state = RM_CP_RESP_ACKED;
    record_ack(nt, sub->current_through);
    nt->has_nack = false;
    free(nt->nack_message);
    nt->nack_message = NULL;
}

void rm_cp_on_nack(rm_cp_sub_t *sub, rm_cp_node_type_t *nt, const char *message)
{
    sub->state = RM_CP_RESP_NACKED;
    nt->has_nack = true;
    nt->nacked_version = sub->current_through;
    free(nt->nack_message);
    nt->nack_message = rm_strdup(message ? message : "");
}

void rm_cp_on_unchanged(rm_cp_sub_t *sub, rm_cp_node_type_t *nt, uint64_t version)
{
    if (version <= sub->current_through)
        return;
    sub->current_through = version;
    if (sub->state == RM_CP_RESP_ACKED)
        record_ack(nt, version);
    else if (sub->state == RM_CP_RESP_NACKED && nt->has_nack && version > nt->nacked_version)
        nt->nacked_version = version;
}

rm_cp_wait_result_t rm_cp_wait_eval(const rm_cp_node_t *node, uint64_t version, int type, uint64_t *acked_out,
                                    const char **message)
{
    if (acked_out != NULL)
        *acked_out = 0;
    if (message != NULL)
        *message = "";
    if (node == NULL)
        return RM_CP_WAIT_PENDING;
    bool any = false, all_acked = true;
    uint64_t lowest = UINT64_MAX;
    for (int t = 0; t < RM_CP_TYPE_COUNT; t++) {
        const rm_cp_node_type_t *nt = &node->types[t];
        if (type >= 0 ? t != type : !nt->ever_subscribed)
            continue;
        any = true;
        bool acked = nt->has_ack && nt->acked_version >= version;
        if (!acked && nt->has_nack && nt->nacked_version >= version) {
            if (acked_out != NULL)
                *acked_out = nt->has_ack ? nt->acked_version : 0;
            if (message != NULL)
                *message = nt->nack_message ? nt->nack_message : "";
            return RM_CP_WAIT_NACKED;
        }
        all_acked = all_acked && acked;
        uint64_t v = nt->has_ack ? nt->acked_version : 0;
        if (v < lowest)
            lowest = v;
    }
    if (acked_out != NULL && any)
        *acked_out = lowest;
    return any && all_acked ? RM_CP_WAIT_ACKED : RM_CP_WAIT_PENDING;
}
