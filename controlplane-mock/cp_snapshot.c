#include "cp_snapshot.h"

#include "config/yaml_decode.h"
#include "core/mem.h"
#include "cp_pbyaml.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Config__Cluster__V3__Cluster pb_cluster_t;

/* Cluster fields sent as the file gives them. Fields the mock sets itself (name, type,
 * eds_cluster_config, load_assignment) are not among them. */
#define PASSTHROUGH_FIELDS(X)                                                                                \
    X("outlier_detection")                                                                                   \
    X("health_checks")                                                                                       \
    X("circuit_breakers")                                                                                    \
    X("common_lb_config")                                                                                    \
    X("least_request_lb_config")                                                                             \
    X("round_robin_lb_config")                                                                               \
    X("per_connection_buffer_limit_bytes")                                                                   \
    X("http2_protocol_options")                                                                              \
    X("typed_extension_protocol_options")                                                                    \
    X("ignore_health_on_host_removal")                                                                       \
    X("transport_socket")

const char *rm_cp_snapshot_passthrough_fields(void)
{
#define AS_WORD(name) name " "
    static const char words[] = PASSTHROUGH_FIELDS(AS_WORD);
#undef AS_WORD
    return words;
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- enums ---- */

static const rm_yaml_enum_value_t lb_policy_values[] = {
    {"ROUND_ROBIN", 0, false},
    {"LEAST_REQUEST", 1, false},
    {"RING_HASH", 2, false},
    {"RANDOM", 3, false},
    {"MAGLEV", 5, false},
    {"CLUSTER_PROVIDED", 6, false},
    {"LOAD_BALANCING_POLICY_CONFIG", 7, false},
};
static const rm_yaml_enum_t lb_policy_enum = {lb_policy_values, RM_ARRAY_LEN(lb_policy_values)};

static const rm_yaml_enum_value_t health_values[] = {
    {"UNKNOWN", 0, false},  {"HEALTHY", 1, false}, {"UNHEALTHY", 2, false},
    {"DRAINING", 3, false}, {"TIMEOUT", 4, false}, {"DEGRADED", 5, false},
};
static const rm_yaml_enum_t health_enum = {health_values, RM_ARRAY_LEN(health_values)};

static int enum_parse(const rm_yaml_enum_t *e, const char *name, int *out)
{
    for (size_t i = 0; i < e->count; i++) {
        if (strcasecmp(e->values[i].name, name) == 0) {
            *out = e->values[i].value;
            return 0;
        }
    }
    return -1;
}

static const char *enum_name(const rm_yaml_enum_t *e, int value)
{
    for (size_t i = 0; i < e->count; i++)
        if (e->values[i].value == value)
            return e->values[i].name;
    return NULL;
}

int rm_cp_lb_policy_parse(const char *name, int *out)
{
    return enum_parse(&lb_policy_enum, name, out);
}

const char *rm_cp_lb_policy_name(int value)
{
    return enum_name(&lb_policy_enum, value);
}

int rm_cp_health_parse(const char *name, int *out)
{
    return enum_parse(&health_enum, name, out);
}

const char *rm_cp_health_name(int value)
{
    return enum_name(&health_enum, value);
}

/* ---- addresses ---- */

static int parse_port(const char *s, uint32_t *port)
{
    size_t len = strlen(s);
    uint64_t v;
    if (len == 0 || rm_yaml_parse_uint64(s, len, &v) != 0 || v == 0 || v > 65535)
        return -1;
    *port = (uint32_t)v;
    return 0;
}

int rm_cp_parse_address(const char *text, char **host, uint32_t *port, char *err, size_t errlen)
{
    const char *host_start, *host_end, *port_text;
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return fail(err, errlen, -1,
                        "invalid address \"%s\": must not contain spaces or control characters", text);
    if (text[0] == '[') {
        host_start = text + 1;
        host_end = strchr(host_start, ']');
        if (host_end == NULL || host_end[1] != ':')
            return fail(err, errlen, -1, "invalid address \"%s\" (expected [ipv6]:port)", text);
        port_text = host_end + 2;
    } else {
        host_start = text;
        host_end = strrchr(text, ':');
        if (host_end == NULL)
            return fail(err, errlen, -1, "invalid address \"%s\" (expected host:port)", text);
        if (memchr(text, ':', (size_t)(host_end - text)) != NULL)
            return fail(err, errlen, -1, "invalid address \"%s\" (write IPv6 addresses as [addr]:port)",
                        text);
        port_text = host_end + 1;
    }
    if (host_end == host_start)
        return fail(err, errlen, -1, "invalid address \"%s\": the host is empty", text);
    if (parse_port(port_text, port) != 0)
        return fail(err, errlen, -1, "invalid address \"%s\": the port must be 1..65535", text);
    *host = rm_strndup(host_start, (size_t)(host_end - host_start));
    return 0;
}

char *rm_cp_format_address(const char *host, uint32_t port)
{
    if (strchr(host, ':') != NULL)
        return rm_asprintf("[%s]:%u", host, port);
    return rm_asprintf("%s:%u", host, port);
}

/* ---- lifetime and lookups ---- */

rm_cp_snapshot_t *rm_cp_snapshot_new(void)
{
    return RM_NEW(rm_cp_snapshot_t);
}

void rm_cp_cluster_free(rm_cp_cluster_t *c)
{
    free(c->name);
    free(c->extra);
    for (size_t i = 0; i < c->num_endpoints; i++)
        free(c->endpoints[i].host);
    free(c->endpoints);
    memset(c, 0, sizeof(*c));
}

void rm_cp_snapshot_free(rm_cp_snapshot_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->num_clusters; i++)
        rm_cp_cluster_free(&s->clusters[i]);
    free(s->clusters);
    free(s);
}

rm_cp_cluster_t *rm_cp_snapshot_find_cluster(rm_cp_snapshot_t *s, const char *name)
{
    for (size_t i = 0; i < s->num_clusters; i++)
        if (strcmp(s->clusters[i].name, name) == 0)
            return &s->clusters[i];
    return NULL;
}

rm_cp_endpoint_t *rm_cp_cluster_find_endpoint(rm_cp_cluster_t *c, const char *host, uint32_t port)
{
    for (size_t i = 0; i < c->num_endpoints; i++)
        if (c->endpoints[i].port == port && strcmp(c->endpoints[i].host, host) == 0)
            return &c->endpoints[i];
    return NULL;
}

/* ---- YAML ---- */

/* Decoder state: the pass-through settings of the cluster being decoded. */
typedef struct {
    pb_cluster_t *extra;
} load_ctx_t;

static load_ctx_t *L(rm_yaml_decoder_t *d)
{
    return d->user;
}

static int decode_address(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    char *text = NULL, msg[256];
    rm_yaml_field_t tmp = {f->name, NULL, 0, NULL, RM_YAML_NONEMPTY};
    if (rm_yaml_decode_string(d, n, &text, &tmp) != 0)
        return -1;
    rm_cp_endpoint_t *e = obj;
    int rc = rm_cp_parse_address(text, &e->host, &e->port, msg, sizeof(msg));
    free(text);
    return rc == 0 ? 0 : rm_yaml_fail(d, "%s", msg);
}

static void endpoint_init(rm_yaml_decoder_t *d, void *obj)
{
    ((rm_cp_endpoint_t *)obj)->weight = 1;
}

static const rm_yaml_range_t weight_range = {1, UINT32_MAX};
static const rm_yaml_field_t endpoint_fields[] = {
    {"address", decode_address, 0, NULL, RM_YAML_REQUIRED},
    RM_YAML_FIELD("weight", rm_yaml_decode_uint32, rm_cp_endpoint_t, weight, &weight_range, 0),
    RM_YAML_FIELD("priority", rm_yaml_decode_uint32, rm_cp_endpoint_t, priority, NULL, 0),
    RM_YAML_FIELD("health", rm_yaml_decode_enum, rm_cp_endpoint_t, health, &health_enum, 0),
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t endpoint_message = {"Endpoint", endpoint_fields, NULL, endpoint_init, NULL};

static const rm_yaml_seq_t endpoints_seq = {rm_yaml_decode_submessage,
                                            &endpoint_message,
                                            sizeof(rm_cp_endpoint_t),
                                            offsetof(rm_cp_cluster_t, num_endpoints),
                                            0,
                                            0,
                                            NULL,
                                            NULL,
                                            0};

static int decode_connect_timeout(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    rm_cp_cluster_t *c = obj;
    if (rm_cp_pbyaml_decode_duration(d, n, &c->connect_timeout_seconds, &c->connect_timeout_nanos) != 0)
        return -1;
    c->has_connect_timeout = true;
    return 0;
}

static int decode_passthrough(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    return rm_cp_pbyaml_decode_field(d, n, &L(d)->extra->base, f->name);
}

static void cluster_init(rm_yaml_decoder_t *d, void *obj)
{
    load_ctx_t *ctx = L(d);
    if (ctx->extra != NULL)
        protobuf_c_message_free_unpacked(&ctx->extra->base, NULL);
    ctx->extra = rm_malloc(sizeof(*ctx->extra));
    envoy__config__cluster__v3__cluster__init(ctx->extra);
}

static int cluster_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_cp_cluster_t *c = obj;
    load_ctx_t *ctx = L(d);
    c->extra_len = protobuf_c_message_get_packed_size(&ctx->extra->base);
    if (c->extra_len > 0) {
        c->extra = rm_malloc(c->extra_len);
        protobuf_c_message_pack(&ctx->extra->base, c->extra);
    }
    protobuf_c_message_free_unpacked(&ctx->extra->base, NULL);
    ctx->extra = NULL;

    for (size_t j = 1; j < c->num_endpoints; j++) {
        for (size_t i = 0; i < j; i++) {
            if (c->endpoints[i].port != c->endpoints[j].port ||
                strcmp(c->endpoints[i].host, c->endpoints[j].host))
                continue;
            char *addr = rm_cp_format_address(c->endpoints[j].host, c->endpoints[j].port);
            rm_yaml_path_push_key(d, "endpoints");
            rm_yaml_path_push_index(d, j);
            rm_yaml_path_push_key(d, "address");
            rm_yaml_fail(d, "duplicate endpoint %s (also endpoints[%zu])", addr, i);
            free(addr);
            return -1;
        }
    }
    return 0;
}

#define PASSTHROUGH_FIELD(name) {name, decode_passthrough, 0, NULL, 0},
static const rm_yaml_field_t cluster_fields[] = {
    RM_YAML_FIELD("name", rm_yaml_decode_string, rm_cp_cluster_t, name, NULL,
                  RM_YAML_REQUIRED | RM_YAML_NONEMPTY),
    RM_YAML_FIELD("lb_policy", rm_yaml_decode_enum, rm_cp_cluster_t, lb_policy, &lb_policy_enum, 0),
    {"connect_timeout", decode_connect_timeout, 0, NULL, 0},
    RM_YAML_FIELD("endpoints", rm_yaml_decode_seq, rm_cp_cluster_t, endpoints, &endpoints_seq, 0),
    PASSTHROUGH_FIELDS(PASSTHROUGH_FIELD) RM_YAML_FIELDS_END,
};
#undef PASSTHROUGH_FIELD
static const rm_yaml_message_t cluster_message = {"Cluster", cluster_fields, NULL, cluster_init,
                                                  cluster_check};

static const rm_yaml_seq_t clusters_seq = {rm_yaml_decode_submessage,
                                           &cluster_message,
                                           sizeof(rm_cp_cluster_t),
                                           offsetof(rm_cp_snapshot_t, num_clusters),
                                           0,
                                           0,
                                           NULL,
                                           NULL,
                                           0};

static int snapshot_check(rm_yaml_decoder_t *d, void *obj)
{
    rm_cp_snapshot_t *s = obj;
    for (size_t j = 1; j < s->num_clusters; j++) {
        for (size_t i = 0; i < j; i++) {
            if (strcmp(s->clusters[i].name, s->clusters[j].name) != 0)
                continue;
            rm_yaml_path_push_key(d, "clusters");
            rm_yaml_path_push_index(d, j);
            rm_yaml_path_push_key(d, "name");
            return rm_yaml_fail(d, "duplicate cluster name \"%s\" (also clusters[%zu])", s->clusters[j].name,
                                i);
        }
    }
    return 0;
}

static const rm_yaml_field_t snapshot_fields[] = {
    RM_YAML_FIELD("clusters", rm_yaml_decode_seq, rm_cp_snapshot_t, clusters, &clusters_seq, 0),
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t snapshot_message = {"Snapshot", snapshot_fields, NULL, NULL, snapshot_check};

int rm_cp_snapshot_parse(const char *text, size_t len, rm_cp_snapshot_t **out, char *err, size_t errlen)
{
    rm_yaml_decoder_t d;
    load_ctx_t ctx = {NULL};
    *out = NULL;
    if (rm_yaml_decoder_init(&d, text, len, err, errlen) != 0) {
        rm_yaml_decoder_fini(&d);
        return RM_CP_EINVAL;
    }
    d.user = &ctx;
    rm_cp_snapshot_t *s = rm_cp_snapshot_new();
    int rc = rm_yaml_decode_message(&d, rm_yaml_root(&d), &snapshot_message, s);
    if (ctx.extra != NULL)
        protobuf_c_message_free_unpacked(&ctx.extra->base, NULL);
    rm_yaml_decoder_fini(&d);
    if (rc != 0) {
        rm_cp_snapshot_free(s);
        return RM_CP_EINVAL;
    }
    *out = s;
    return RM_CP_OK;
}

int rm_cp_snapshot_load_file(const char *path, rm_cp_snapshot_t **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, errlen, RM_CP_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = rm_malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = rm_realloc(buf, cap *= 2);
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(buf);
        return fail(err, errlen, RM_CP_EIO, "%s: read error", path);
    }
    char msg[1024];
    int rc = rm_cp_snapshot_parse(buf, len, out, msg, sizeof(msg));
    free(buf);
    if (rc != 0)
        return fail(err, errlen, rc, "%s: %s", path, msg);
    return RM_CP_OK;
}

/* ---- mutations ---- */

/* Finds cluster and endpoint for a mutation; host/port are set when the address is valid. */
static int lookup(rm_cp_snapshot_t *s, const char *cluster, const char *address, rm_cp_cluster_t **c_out,
                  rm_cp_endpoint_t **e_out, char **host, uint32_t *port, char *err, size_t errlen)
{
    *host = NULL;
    if (cluster == NULL || cluster[0] == '\0')
        return fail(err, errlen, RM_CP_EINVAL, "a cluster name is required");
    if (address == NULL || address[0] == '\0')
        return fail(err, errlen, RM_CP_EINVAL, "an endpoint address (host:port) is required");
    if (rm_cp_parse_address(address, host, port, err, errlen) != 0)
        return RM_CP_EINVAL;
    *c_out = rm_cp_snapshot_find_cluster(s, cluster);
    if (*c_out == NULL)
        return fail(err, errlen, RM_CP_ENOENT, "unknown cluster \"%s\"", cluster);
    *e_out = rm_cp_cluster_find_endpoint(*c_out, *host, *port);
    return RM_CP_OK;
}

int rm_cp_snapshot_add_endpoint(rm_cp_snapshot_t *s, const char *cluster, const char *address,
                                uint32_t weight, uint32_t priority, int health, char *err, size_t errlen)
{
    rm_cp_cluster_t *c;
    rm_cp_endpoint_t *e;
    char *host;
    uint32_t port;
    int rc = lookup(s, cluster, address, &c, &e, &host, &port, err, errlen);
    if (rc == RM_CP_OK && rm_cp_health_name(health) == NULL)
        rc = fail(err, errlen, RM_CP_EINVAL, "unknown health status %d", health);
    if (rc == RM_CP_OK && e != NULL)
        rc = fail(err, errlen, RM_CP_EEXIST, "cluster \"%s\" already has endpoint %s", cluster, address);
    if (rc != RM_CP_OK) {
        free(host);
        return rc;
    }
    c->endpoints = rm_realloc(c->endpoints, (c->num_endpoints + 1) * sizeof(*c->endpoints));
    c->endpoints[c->num_endpoints++] = (rm_cp_endpoint_t){host, port, weight ? weight : 1, priority, health};
    return RM_CP_OK;
}

int rm_cp_snapshot_remove_endpoint(rm_cp_snapshot_t *s, const char *cluster, const char *address, char *err,
                                   size_t errlen)
{
    rm_cp_cluster_t *c;
    rm_cp_endpoint_t *e;
    char *host;
    uint32_t port;
    int rc = lookup(s, cluster, address, &c, &e, &host, &port, err, errlen);
    free(host);
    if (rc != RM_CP_OK)
        return rc;
    if (e == NULL)
        return fail(err, errlen, RM_CP_ENOENT, "cluster \"%s\" has no endpoint %s", cluster, address);
    free(e->host);
    size_t i = (size_t)(e - c->endpoints);
    memmove(e, e + 1, (c->num_endpoints - i - 1) * sizeof(*e));
    c->num_endpoints--;
    return RM_CP_OK;
}

int rm_cp_snapshot_set_endpoint(rm_cp_snapshot_t *s, const char *cluster, const char *address,
                                rm_cp_endpoint_attr_t attr, uint32_t value, char *err, size_t errlen)
{
    rm_cp_cluster_t *c;
    rm_cp_endpoint_t *e;
    char *host;
    uint32_t port;
    int rc = lookup(s, cluster, address, &c, &e, &host, &port, err, errlen);
    free(host);
    if (rc != RM_CP_OK)
        return rc;
    if (e == NULL)
        return fail(err, errlen, RM_CP_ENOENT, "cluster \"%s\" has no endpoint %s", cluster, address);
    switch (attr) {
    case RM_CP_SET_WEIGHT:
        e->weight = value ? value : 1;
        break;
    case RM_CP_SET_PRIORITY:
        e->priority = value;
        break;
    case RM_CP_SET_HEALTH:
        if (value > INT32_MAX || rm_cp_health_name((int)value) == NULL)
            return fail(err, errlen, RM_CP_EINVAL, "unknown health status %u", value);
        e->health = (int)value;
        break;
    }
    return RM_CP_OK;
}

int rm_cp_cluster_check(const rm_cp_cluster_t *c, char *err, size_t errlen)
{
    if (c->name == NULL || c->name[0] == '\0')
        return fail(err, errlen, RM_CP_EINVAL, "a cluster name is required");
    if (rm_cp_lb_policy_name(c->lb_policy) == NULL)
        return fail(err, errlen, RM_CP_EINVAL, "unknown lb_policy %d", c->lb_policy);
    if (c->has_connect_timeout && (c->connect_timeout_seconds < 0 || c->connect_timeout_nanos < 0 ||
                                   c->connect_timeout_nanos > 999999999))
        return fail(err, errlen, RM_CP_EINVAL, "connect_timeout must be a non-negative duration");
    for (size_t j = 0; j < c->num_endpoints; j++) {
        const rm_cp_endpoint_t *e = &c->endpoints[j];
        if (e->weight == 0)
            return fail(err, errlen, RM_CP_EINVAL, "endpoints[%zu]: weight must be at least 1", j);
        if (rm_cp_health_name(e->health) == NULL)
            return fail(err, errlen, RM_CP_EINVAL, "endpoints[%zu]: unknown health status %d", j, e->health);
        for (size_t i = 0; i < j; i++)
            if (c->endpoints[i].port == e->port && strcmp(c->endpoints[i].host, e->host) == 0)
                return fail(err, errlen, RM_CP_EINVAL,
                            "endpoints[%zu]: duplicate endpoint %s:%u (also endpoints[%zu])", j, e->host,
                            e->port, i);
    }
    return RM_CP_OK;
}

void rm_cp_snapshot_upsert_cluster(rm_cp_snapshot_t *s, rm_cp_cluster_t *c)
{
    rm_cp_cluster_t *old = rm_cp_snapshot_find_cluster(s, c->name);
    if (old == NULL) {
        s->clusters = rm_realloc(s->clusters, (s->num_clusters + 1) * sizeof(*s->clusters));
        old = &s->clusters[s->num_clusters++];
        memset(old, 0, sizeof(*old));
    } else if (c->extra_len == 0) {
        c->extra = old->extra;
        c->extra_len = old->extra_len;
        old->extra = NULL;
        old->extra_len = 0;
    }
    rm_cp_cluster_free(old);
    *old = *c;
    memset(c, 0, sizeof(*c));
}

int rm_cp_snapshot_remove_cluster(rm_cp_snapshot_t *s, const char *name, char *err, size_t errlen)
{
    if (name == NULL || name[0] == '\0')
        return fail(err, errlen, RM_CP_EINVAL, "a cluster name is required");
    rm_cp_cluster_t *c = rm_cp_snapshot_find_cluster(s, name);
    if (c == NULL)
        return fail(err, errlen, RM_CP_ENOENT, "unknown cluster \"%s\"", name);
    rm_cp_cluster_free(c);
    size_t i = (size_t)(c - s->clusters);
    memmove(c, c + 1, (s->num_clusters - i - 1) * sizeof(*c));
    s->num_clusters--;
    return RM_CP_OK;
}

/* ---- rendering ---- */

static ProtobufCBinaryData pack(const ProtobufCMessage *m, const uint8_t *suffix, size_t suffix_len)
{
    ProtobufCBinaryData out;
    size_t len = protobuf_c_message_get_packed_size(m);
    out.len = len + suffix_len;
    out.data = rm_malloc(out.len ? out.len : 1);
    protobuf_c_message_pack(m, out.data);
    if (suffix_len > 0)
        memcpy(out.data + len, suffix, suffix_len);
    return out;
}

static ProtobufCBinaryData render_cluster(const rm_cp_cluster_t *c)
{
    /* `self`: the endpoints come from this same server, whether the sidecar uses ADS or the
     * separate CDS/EDS services. */
    Envoy__Config__Core__V3__SelfConfigSource self = ENVOY__CONFIG__CORE__V3__SELF_CONFIG_SOURCE__INIT;
    self.transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    Envoy__Config__Core__V3__ConfigSource source = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    source.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_SELF;
    source.self = &self;
    source.resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig eds =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT;
    eds.eds_config = &source;

    pb_cluster_t pc = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    pc.name = c->name;
    pc.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    pc.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    pc.eds_cluster_config = &eds;
    pc.lb_policy = (Envoy__Config__Cluster__V3__Cluster__LbPolicy)c->lb_policy;
    Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
    if (c->has_connect_timeout) {
        timeout.seconds = c->connect_timeout_seconds;
        timeout.nanos = c->connect_timeout_nanos;
        pc.connect_timeout = &timeout;
    }
    return pack(&pc.base, c->extra, c->extra_len);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* One LocalityLbEndpoints per priority level (ascending); endpoints keep their snapshot order. */
static ProtobufCBinaryData render_cla(const rm_cp_cluster_t *c)
{
    size_t n = c->num_endpoints;
    Envoy__Config__Core__V3__SocketAddress *sock = rm_calloc(n, sizeof(*sock));
    Envoy__Config__Core__V3__Address *addr = rm_calloc(n, sizeof(*addr));
    Envoy__Config__Endpoint__V3__Endpoint *ep = rm_calloc(n, sizeof(*ep));
    Google__Protobuf__UInt32Value *weight = rm_calloc(n, sizeof(*weight));
    Envoy__Config__Endpoint__V3__LbEndpoint *lb = rm_calloc(n, sizeof(*lb));
    Envoy__Config__Endpoint__V3__LbEndpoint **lb_ptrs = rm_calloc(n, sizeof(*lb_ptrs));
    uint32_t *prios = rm_calloc(n, sizeof(*prios));
    for (size_t i = 0; i < n; i++) {
        const rm_cp_endpoint_t *e = &c->endpoints[i];
        envoy__config__core__v3__socket_address__init(&sock[i]);
        sock[i].address = e->host;
        sock[i].port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
        sock[i].port_value = e->port;
        envoy__config__core__v3__address__init(&addr[i]);
        addr[i].address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
        addr[i].socket_address = &sock[i];
        envoy__config__endpoint__v3__endpoint__init(&ep[i]);
        ep[i].address = &addr[i];
        google__protobuf__uint32_value__init(&weight[i]);
        weight[i].value = e->weight;
        envoy__config__endpoint__v3__lb_endpoint__init(&lb[i]);
        lb[i].host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
        lb[i].endpoint = &ep[i];
        lb[i].health_status = (Envoy__Config__Core__V3__HealthStatus)e->health;
        lb[i].load_balancing_weight = &weight[i];
        prios[i] = e->priority;
    }
    qsort(prios, n, sizeof(*prios), cmp_u32);
    size_t levels = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || prios[i] != prios[i - 1])
            prios[levels++] = prios[i];

    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc = rm_calloc(levels, sizeof(*loc));
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints **loc_ptrs = rm_calloc(levels, sizeof(*loc_ptrs));
    size_t used = 0;
    for (size_t l = 0; l < levels; l++) {
        envoy__config__endpoint__v3__locality_lb_endpoints__init(&loc[l]);
        loc[l].priority = prios[l];
        loc[l].lb_endpoints = lb_ptrs + used;
        for (size_t i = 0; i < n; i++)
            if (c->endpoints[i].priority == prios[l])
                lb_ptrs[used + loc[l].n_lb_endpoints++] = &lb[i];
        used += loc[l].n_lb_endpoints;
        loc_ptrs[l] = &loc[l];
    }

    Envoy__Config__Endpoint__V3__ClusterLoadAssignment cla =
        ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
    cla.cluster_name = c->name;
    cla.n_endpoints = levels;
    cla.endpoints = loc_ptrs;
    ProtobufCBinaryData out = pack(&cla.base, NULL, 0);

    free(loc_ptrs);
    free(loc);
    free(prios);
    free(lb_ptrs);
    free(lb);
    free(weight);
    free(ep);
    free(addr);
    free(sock);
    return out;
}

rm_cp_rendered_t *rm_cp_snapshot_render(const rm_cp_snapshot_t *s)
{
    rm_cp_rendered_t *r = RM_NEW(rm_cp_rendered_t);
    r->num_resources = s->num_clusters;
    r->resources = rm_calloc(s->num_clusters, sizeof(*r->resources));
    for (size_t i = 0; i < s->num_clusters; i++) {
        r->resources[i].name = rm_strdup(s->clusters[i].name);
        r->resources[i].cluster = render_cluster(&s->clusters[i]);
        r->resources[i].cla = render_cla(&s->clusters[i]);
    }
    return r;
}

static bool bytes_equal(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

bool rm_cp_rendered_equal(const rm_cp_rendered_t *a, const rm_cp_rendered_t *b)
{
    if (a->num_resources != b->num_resources)
        return false;
    for (size_t i = 0; i < a->num_resources; i++) {
        const rm_cp_resource_t *x = &a->resources[i], *y = &b->resources[i];
        if (strcmp(x->name, y->name) != 0 || !bytes_equal(&x->cluster, &y->cluster) ||
            !bytes_equal(&x->cla, &y->cla))
            return false;
    }
    return true;
}

void rm_cp_rendered_free(rm_cp_rendered_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->num_resources; i++) {
        free(r->resources[i].name);
        free(r->resources[i].cluster.data);
        free(r->resources[i].cla.data);
    }
    free(r->resources);
    free(r);
}
