/* SotW xDS state machine: see xds_state.h for the rules. */
#include "xds/xds_state.h"

#include "core/mem.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "remora_proto/xds.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Service__Discovery__V3__DiscoveryRequest DiscoveryRequest;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse DiscoveryResponse;
typedef Envoy__Config__Core__V3__Node Node;
typedef Google__Rpc__Status Status;
typedef Google__Protobuf__Any Any;

#define GRPC_INVALID_ARGUMENT 3
#define USER_AGENT_NAME       "remora"

const char *rm_xds_type_url(rm_xds_type_t type)
{
    return type == RM_XDS_CDS ? REMORA_TYPE_URL_CLUSTER : REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT;
}

const char *rm_xds_type_name(rm_xds_type_t type)
{
    return type == RM_XDS_CDS ? "cds" : "eds";
}

/* ---- sorted, unique name lists ---- */

typedef struct {
    char **v;
    size_t n;
} names_t;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(names_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Builds a sorted unique copy of the union of two lists. */
static names_t names_union(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    names_t l = {NULL, 0};
    if (na + nb == 0)
        return l;
    l.v = rm_calloc(na + nb, sizeof(char *));
    for (size_t i = 0; i < na; i++)
        l.v[l.n++] = rm_strdup(a[i]);
    for (size_t i = 0; i < nb; i++)
        l.v[l.n++] = rm_strdup(b[i]);
    qsort(l.v, l.n, sizeof(char *), cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (k > 0 && strcmp(l.v[k - 1], l.v[i]) == 0)
            free(l.v[i]);
        else
            l.v[k++] = l.v[i];
    }
    l.n = k;
    return l;
}

static bool names_equal(const names_t *a, const names_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

static bool names_contain(const names_t *l, const char *name)
{
    return l->n > 0 && bsearch(&name, l->v, l->n, sizeof(char *), cmp_str) != NULL;
}

/* ---- state ---- */

struct rm_xds_state {
    char *node_id;
    char *node_cluster;
    bool carries[RM_XDS_NUM_TYPES];
    bool ads;
    char *grpc_cluster;
    names_t static_clusters;
    names_t static_eds;

    char *version[RM_XDS_NUM_TYPES]; /* last accepted; NULL: none yet */
    char *nonce[RM_XDS_NUM_TYPES];   /* last received on this stream; NULL: none */
    bool stream_active;
    bool node_sent;         /* on this stream */
    bool eds_sent_nonempty; /* an EDS request with names went out on this stream */
    names_t wanted_eds;     /* static EDS names + those of the accepted CDS set */
    names_t eds;            /* the EDS subscription (== wanted_eds with ADS) */
};

void rm_xds_output_init(rm_xds_output_t *out)
{
    memset(out, 0, sizeof(*out));
}

void rm_xds_output_fini(rm_xds_output_t *out)
{
    for (size_t i = 0; i < out->num_requests; i++)
        free(out->requests[i].data);
    free(out->version);
    for (size_t i = 0; out->clusters != NULL && i < out->num_clusters; i++)
        rm_cluster_config_free(&out->clusters[i]);
    free(out->clusters);
    for (size_t i = 0; out->clas != NULL && i < out->num_clas; i++)
        rm_cluster_load_assignment_free(&out->clas[i]);
    free(out->clas);
    memset(out, 0, sizeof(*out));
}

rm_xds_state_t *rm_xds_state_create(const rm_xds_state_config_t *cfg)
{
    rm_xds_state_t *s = RM_NEW(rm_xds_state_t);
    s->node_id = rm_strdup(cfg->node_id ? cfg->node_id : "");
    s->node_cluster = rm_strdup(cfg->node_cluster ? cfg->node_cluster : "");
    memcpy(s->carries, cfg->carries, sizeof(s->carries));
    s->ads = cfg->convert.ads;
    s->grpc_cluster = rm_strdup(cfg->convert.grpc_cluster);
    s->static_clusters = names_union(cfg->static_clusters, cfg->num_static_clusters, NULL, 0);
    s->static_eds = names_union(cfg->static_eds_names, cfg->num_static_eds_names, NULL, 0);
    s->wanted_eds = names_union(cfg->static_eds_names, cfg->num_static_eds_names, NULL, 0);
    s->eds = names_union(cfg->static_eds_names, cfg->num_static_eds_names, NULL, 0);
    return s;
}

void rm_xds_state_destroy(rm_xds_state_t *s)
{
    if (s == NULL)
        return;
    free(s->node_id);
    free(s->node_cluster);
    free(s->grpc_cluster);
    names_free(&s->static_clusters);
    names_free(&s->static_eds);
    names_free(&s->wanted_eds);
    names_free(&s->eds);
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++) {
        free(s->version[t]);
        free(s->nonce[t]);
    }
    free(s);
}

const char *rm_xds_state_version(const rm_xds_state_t *s, rm_xds_type_t type)
{
    return s->version[type] ? s->version[type] : "";
}

const char *const *rm_xds_state_eds_names(const rm_xds_state_t *s, size_t *n)
{
    *n = s->wanted_eds.n;
    return (const char *const *)s->wanted_eds.v;
}

/* ---- requests ---- */

/* Appends a DiscoveryRequest of type t: the accepted version, the latest nonce of this stream, the
 * subscription, the node if it is the stream's first request, and error_detail for a NACK. */
static void emit(rm_xds_state_t *s, rm_xds_output_t *out, rm_xds_type_t t, const char *nack)
{
    if (out->num_requests == RM_XDS_MAX_REQUESTS)
        abort(); /* a step never produces more: a bug */
    DiscoveryRequest req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
    Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
    Status status = GOOGLE__RPC__STATUS__INIT;
    if (!s->node_sent) {
        node.id = s->node_id;
        node.cluster = s->node_cluster;
        node.user_agent_name = (char *)USER_AGENT_NAME;
        req.node = &node;
        s->node_sent = true;
    }
    req.version_info = s->version[t] ? s->version[t] : (char *)"";
    req.type_url = (char *)rm_xds_type_url(t);
    req.response_nonce = s->nonce[t] ? s->nonce[t] : (char *)"";
    if (t == RM_XDS_EDS) {
        req.n_resource_names = s->eds.n;
        req.resource_names = s->eds.v;
        if (s->eds.n > 0)
            s->eds_sent_nonempty = true;
    }
    if (nack != NULL) {
        status.code = GRPC_INVALID_ARGUMENT;
        status.message = (char *)nack;
        req.error_detail = &status;
    }
    size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(&req);
    uint8_t *buf = rm_malloc(len ? len : 1);
    envoy__service__discovery__v3__discovery_request__pack(&req, buf);
    out->requests[out->num_requests++] = (rm_xds_request_t){t, buf, len};
}

/* Sends the EDS subscription if this stream carries EDS and the request would mean what it says: an
 * empty list is sent only to withdraw names sent before (as a first request it would be a wildcard). */
static void maybe_emit_eds(rm_xds_state_t *s, rm_xds_output_t *out)
{
    if (s->carries[RM_XDS_EDS] && s->stream_active && (s->eds.n > 0 || s->eds_sent_nonempty))
        emit(s, out, RM_XDS_EDS, NULL);
}

void rm_xds_state_stream_start(rm_xds_state_t *s, rm_xds_output_t *out)
{
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++) {
        free(s->nonce[t]);
        s->nonce[t] = NULL;
    }
    s->stream_active = true;
    s->node_sent = false;
    s->eds_sent_nonempty = false;
    out->verdict = RM_XDS_NONE;
    if (s->carries[RM_XDS_CDS])
        emit(s, out, RM_XDS_CDS, NULL);
    if (s->eds.n > 0)
        maybe_emit_eds(s, out);
}

void rm_xds_state_stream_end(rm_xds_state_t *s)
{
    s->stream_active = false;
}

void rm_xds_state_set_eds_names(rm_xds_state_t *s, const char *const *names, size_t n, rm_xds_output_t *out)
{
    names_t next = names_union(names, n, NULL, 0);
    if (names_equal(&next, &s->eds)) {
        names_free(&next);
        return;
    }
    names_free(&s->eds);
    s->eds = next;
    maybe_emit_eds(s, out);
}

/* ---- responses ---- */

static void set_error(rm_xds_output_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(rm_xds_output_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof(out->error), fmt, ap);
    va_end(ap);
}

static bool type_url_is(const char *url, rm_xds_type_t t)
{
    return url != NULL && strcmp(url, rm_xds_type_url(t)) == 0;
}

/* Checks the envelope of resource i: it must be of the response's type. */
static int check_any(const Any *any, size_t i, rm_xds_type_t t, rm_xds_output_t *out)
{
    if (!type_url_is(any->type_url, t)) {
        char buf[280];
        set_error(out, "resources[%zu]: type_url '%s' does not match the response's type %s", i,
                  rm_xds_printable(any->type_url, buf, sizeof(buf)), rm_xds_type_url(t));
        return -1;
    }
    return 0;
}

typedef struct {
    const char *name;
    size_t index;
} named_t;

static int cmp_named(const void *a, const void *b)
{
    const named_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* Finds the first repeated name (by position of its second occurrence). Returns that position and
 * the first one in *prev, or SIZE_MAX. */
static size_t find_duplicate(const named_t *in, size_t n, size_t *prev)
{
    if (n < 2)
        return SIZE_MAX;
    named_t *v = rm_calloc(n, sizeof(*v));
    memcpy(v, in, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_named);
    size_t dup = SIZE_MAX;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1].name, v[i].name) == 0 && v[i].index < dup) {
            dup = v[i].index;
            *prev = v[i - 1].index;
        }
    }
    free(v);
    return dup;
}

static int on_cds(rm_xds_state_t *s, const DiscoveryResponse *resp, rm_xds_output_t *out)
{
    size_t n = resp->n_resources;
    rm_cluster_config_t *clusters = n ? rm_calloc(n, sizeof(*clusters)) : NULL;
    int rc = 0;
    rm_xds_convert_opts_t opts = {s->ads, s->grpc_cluster};
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Any *any = resp->resources[i];
        rc = check_any(any, i, RM_XDS_CDS, out);
        if (rc == 0)
            rc = rm_xds_cluster_decode(any->value.data, any->value.len, &opts, &clusters[i], out->error,
                                       sizeof(out->error));
        if (rc == 0) {
            if (names_contain(&s->static_clusters, clusters[i].name)) {
                char buf[280];
                set_error(out,
                          "cluster '%s': name: a static cluster of the bootstrap has this name (CDS cannot "
                          "replace it)",
                          rm_xds_printable(clusters[i].name, buf, sizeof(buf)));
                rc = -1;
            }
        }
    }
    size_t prev = 0, dup = SIZE_MAX;
    if (rc == 0 && n > 1) {
        named_t *names = rm_calloc(n, sizeof(*names));
        for (size_t i = 0; i < n; i++)
            names[i] = (named_t){clusters[i].name, i};
        dup = find_duplicate(names, n, &prev);
        free(names);
    }
    if (dup != SIZE_MAX) {
        char buf[280];
        set_error(out, "cluster '%s': name: duplicate (resources[%zu] and resources[%zu])",
                  rm_xds_printable(clusters[dup].name, buf, sizeof(buf)), prev, dup);
        rc = -1;
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            rm_cluster_config_free(&clusters[i]);
        free(clusters);
        return -1;
    }

    /* Accepted. */
    free(s->version[RM_XDS_CDS]);
    s->version[RM_XDS_CDS] = rm_strdup(resp->version_info);
    emit(s, out, RM_XDS_CDS, NULL);

    const char **from_cds = n ? rm_calloc(n, sizeof(char *)) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (clusters[i].type == RM_CLUSTER_EDS)
            from_cds[k++] = clusters[i].eds_service_name;
    names_t wanted = names_union((const char *const *)s->static_eds.v, s->static_eds.n, from_cds, k);
    free(from_cds);
    if (!names_equal(&wanted, &s->wanted_eds)) {
        names_free(&s->wanted_eds);
        s->wanted_eds = wanted;
        out->eds_names_changed = true;
        /* With ADS the subscription follows at once, after the ACK (make before break is the server's
         * job: it sends the assignments of new clusters after the clusters). */
        if (s->carries[RM_XDS_EDS])
            rm_xds_state_set_eds_names(s, (const char *const *)s->wanted_eds.v, s->wanted_eds.n, out);
    } else {
        names_free(&wanted);
    }
    out->has_clusters = true;
    out->clusters = clusters;
    out->num_clusters = n;
    return 0;
}

static int on_eds(rm_xds_state_t *s, const DiscoveryResponse *resp, rm_xds_output_t *out)
{
    size_t n = resp->n_resources;
    rm_cluster_load_assignment_t *clas = n ? rm_calloc(n, sizeof(*clas)) : NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Any *any = resp->resources[i];
        rc = check_any(any, i, RM_XDS_EDS, out);
        if (rc == 0)
            rc = rm_xds_cla_decode(any->value.data, any->value.len, &clas[i], out->error, sizeof(out->error));
    }
    size_t prev = 0, dup = SIZE_MAX;
    if (rc == 0 && n > 1) {
        named_t *names = rm_calloc(n, sizeof(*names));
        for (size_t i = 0; i < n; i++)
            names[i] = (named_t){clas[i].cluster_name, i};
        dup = find_duplicate(names, n, &prev);
        free(names);
    }
    if (dup != SIZE_MAX) {
        char buf[280];
        set_error(out,
                  "cluster_load_assignment '%s': cluster_name: duplicate (resources[%zu] and resources[%zu])",
                  rm_xds_printable(clas[dup].cluster_name, buf, sizeof(buf)), prev, dup);
        rc = -1;
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            rm_cluster_load_assignment_free(&clas[i]);
        free(clas);
        return -1;
    }

    /* Accepted. Keep only what was asked for (the client ignores what it did not request). */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (names_contain(&s->eds, clas[i].cluster_name))
            clas[k++] = clas[i];
        else
            rm_cluster_load_assignment_free(&clas[i]);
    }
    free(s->version[RM_XDS_EDS]);
    s->version[RM_XDS_EDS] = rm_strdup(resp->version_info);
    emit(s, out, RM_XDS_EDS, NULL);
    out->has_assignments = true;
    out->clas = clas;
    out->num_clas = k;
    if (k == 0) {
        free(clas);
        out->clas = NULL;
    }
    return 0;
}

int rm_xds_state_on_response(rm_xds_state_t *s, const uint8_t *data, size_t len, rm_xds_output_t *out)
{
    DiscoveryResponse *resp = envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);
    if (resp == NULL) {
        set_error(out, "not a valid serialized envoy.service.discovery.v3.DiscoveryResponse (%zu bytes)",
                  len);
        return -1;
    }
    rm_xds_type_t t;
    if (type_url_is(resp->type_url, RM_XDS_CDS))
        t = RM_XDS_CDS;
    else if (type_url_is(resp->type_url, RM_XDS_EDS))
        t = RM_XDS_EDS;
    else {
        char buf[280];
        out->verdict = RM_XDS_IGNORED;
        set_error(out, "type_url '%s' is not subscribed", rm_xds_printable(resp->type_url, buf, sizeof(buf)));
        envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
        return 0;
    }
    out->type = t;
    if (!s->carries[t] || (t == RM_XDS_EDS && s->eds.n == 0)) {
        out->verdict = RM_XDS_IGNORED;
        set_error(out, "%s is not subscribed on this stream", rm_xds_type_url(t));
        if (s->carries[t]) {
            /* Nothing is watched (e.g. the last EDS cluster just went away and the server answered
             * the withdrawal). Keep its nonce, so the next request of this type is not taken as
             * stale, and take the version of an empty answer, as Envoy does; no request is sent. */
            free(s->nonce[t]);
            s->nonce[t] = rm_strdup(resp->nonce);
            if (resp->n_resources == 0) {
                free(s->version[t]);
                s->version[t] = rm_strdup(resp->version_info);
            }
        }
        envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
        return 0;
    }
    /* The ACK or NACK of this response carries its nonce, and so does any later request of this type
     * on this stream until the next response. */
    free(s->nonce[t]);
    s->nonce[t] = rm_strdup(resp->nonce);
    int rc = t == RM_XDS_CDS ? on_cds(s, resp, out) : on_eds(s, resp, out);
    if (rc == 0) {
        out->verdict = RM_XDS_ACCEPTED;
        out->version = rm_strdup(resp->version_info);
    } else {
        out->verdict = RM_XDS_REJECTED;
        emit(s, out, t, out->error);
    }
    envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
    return 0;
}

/* ---- version stat ---- */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t rd32(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

static uint64_t xx_round(uint64_t acc, uint64_t input)
{
    acc += input * P2;
    acc = rotl(acc, 31);
    return acc * P1;
}

static uint64_t xx_merge(uint64_t acc, uint64_t v)
{
    acc ^= xx_round(0, v);
    return acc * P1 + P4;
}

uint64_t rm_xds_xxhash64(const void *data, size_t len)
{
    const uint8_t *p = data, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = 0 - P1;
        for (; end - p >= 32; p += 32) {
            v1 = xx_round(v1, rd64(p));
            v2 = xx_round(v2, rd64(p + 8));
            v3 = xx_round(v3, rd64(p + 16));
            v4 = xx_round(v4, rd64(p + 24));
        }
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = xx_merge(h, v1);
        h = xx_merge(h, v2);
        h = xx_merge(h, v3);
        h = xx_merge(h, v4);
    } else {
        h = P5;
    }
    h += (uint64_t)len;
    for (; end - p >= 8; p += 8) {
        h ^= xx_round(0, rd64(p));
        h = rotl(h, 27) * P1 + P4;
    }
    if (end - p >= 4) {
        h ^= rd32(p) * P1;
        h = rotl(h, 23) * P2 + P3;
        p += 4;
    }
    for (; p < end; p++) {
        h ^= (uint64_t)*p * P5;
        h = rotl(h, 11) * P1;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t rm_xds_version_stat(const char *version)
{
    if (version == NULL)
        return 0;
    size_t len = strlen(version);
    uint64_t v = 0;
    bool numeric = len > 0 && len <= 20 && !(len > 1 && version[0] == '0');
    for (size_t i = 0; numeric && i < len; i++) {
        unsigned d = (unsigned char)version[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            numeric = false;
        else
            v = v * 10 + d;
    }
    return numeric ? v : rm_xds_xxhash64(version, len);
}
