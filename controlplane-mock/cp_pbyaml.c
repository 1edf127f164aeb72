#include "cp_pbyaml.h"

#include "config/config.h"
#include "core/mem.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "remora/config/v1/fail_fast.pb-c.h"
#include "remora_proto/xds.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Message types an Any in a snapshot may carry. */
static const struct {
    const char *type_url;
    const ProtobufCMessageDescriptor *desc;
} any_types[] = {
    {REMORA_TYPE_URL_UPSTREAM_HTTP_PROTOCOL_OPTIONS,
     &envoy__extensions__upstreams__http__v3__http_protocol_options__descriptor},
    {RM_FAIL_FAST_TYPE_URL, &remora__config__v1__fail_fast_breaker__descriptor},
    {REMORA_TYPE_URL_UPSTREAM_TLS_CONTEXT,
     &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor},
};

const char *rm_cp_pbyaml_any_types(void)
{
    return REMORA_TYPE_URL_UPSTREAM_HTTP_PROTOCOL_OPTIONS ", " REMORA_TYPE_URL_UPSTREAM_TLS_CONTEXT
                                                          ", " RM_FAIL_FAST_TYPE_URL;
}

static int decode_message_node(rm_yaml_decoder_t *d, yaml_node_t *n, ProtobufCMessage *msg);

/* ---- node helpers ---- */

/* The same work bound as the table-driven decoder: aliases may repeat a subtree, but not without end. */
static int visit(rm_yaml_decoder_t *d)
{
    size_t nodes = (size_t)(d->doc.nodes.top - d->doc.nodes.start);
    if (++d->visits > 100 * nodes + 100000)
        return rm_yaml_fail(d, "document expands to too many nodes (aliases used too often)");
    return 0;
}

static const char *scalar(const yaml_node_t *n, size_t *len)
{
    *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
    size_t len;
    const char *v = scalar(n, &len);
    return len == strlen(s) && memcmp(v, s, len) == 0;
}

static int expect_scalar(rm_yaml_decoder_t *d, const yaml_node_t *n, const char *what)
{
    char buf[64];
    if (n->type != YAML_SCALAR_NODE || rm_yaml_is_null(n))
        return rm_yaml_fail(d, "expected %s, got %s", what, rm_yaml_kind(n, buf, sizeof(buf)));
    size_t len;
    const char *v = scalar(n, &len);
    if (memchr(v, '\0', len) != NULL)
        return rm_yaml_fail(d, "must not contain a NUL character");
    return 0;
}

/* ---- scalars ---- */

static int integer(rm_yaml_decoder_t *d, const yaml_node_t *n, bool wide, bool *neg, uint64_t *mag)
{
    char buf[64];
    if (expect_scalar(d, n, "an integer") != 0)
        return -1;
    /* proto-JSON quotes only 64-bit integers (JavaScript cannot hold them); elsewhere a quoted number is a
     * string, and guessing would hide a mistake. */
    if (!wide && !is_plain(n))
        return rm_yaml_fail(d, "expected an integer, got the quoted string %s (remove the quotes)",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    size_t len;
    const char *v = scalar(n, &len);
    *neg = len > 1 && v[0] == '-';
    if (rm_yaml_parse_uint64(v + *neg, len - *neg, mag) != 0 || (*neg && *mag == 0))
        return rm_yaml_fail(d, "expected an integer, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    return 0;
}

static int decode_signed(rm_yaml_decoder_t *d, const yaml_node_t *n, bool wide, int64_t *out)
{
    bool neg;
    uint64_t mag;
    if (integer(d, n, wide, &neg, &mag) != 0)
        return -1;
    uint64_t limit = wide ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
    if (mag > limit + (neg ? 1 : 0))
        return rm_yaml_fail(d, "integer out of range for a %s field", wide ? "64-bit" : "32-bit");
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static int decode_unsigned(rm_yaml_decoder_t *d, const yaml_node_t *n, bool wide, uint64_t *out)
{
    bool neg;
    uint64_t mag;
    if (integer(d, n, wide, &neg, &mag) != 0)
        return -1;
    if (neg)
        return rm_yaml_fail(d, "must not be negative");
    if (!wide && mag > UINT32_MAX)
        return rm_yaml_fail(d, "integer out of range for a 32-bit field");
    *out = mag;
    return 0;
}

static int decode_double(rm_yaml_decoder_t *d, const yaml_node_t *n, double *out)
{
    char buf[64], text[64];
    if (expect_scalar(d, n, "a number") != 0)
        return -1;
    size_t len;
    const char *v = scalar(n, &len);
    if (len == 0 || len >= sizeof(text))
        return rm_yaml_fail(d, "expected a number, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    memcpy(text, v, len);
    text[len] = '\0';
    char *end;
    double x = strtod(text, &end);
    if (*end != '\0' || end == text)
        return rm_yaml_fail(d, "expected a number, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    *out = x;
    return 0;
}

static int decode_bool(rm_yaml_decoder_t *d, const yaml_node_t *n, protobuf_c_boolean *out)
{
    bool b;
    if (rm_yaml_scalar_bool(d, n, &b) != 0)
        return -1;
    *out = b;
    return 0;
}

static void enum_names(const ProtobufCEnumDescriptor *e, char *buf, size_t buflen)
{
    size_t k = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < e->n_values; i++) {
        int w = snprintf(buf + k, buflen - k, "%s%s", k > 0 ? ", " : "", e->values[i].name);
        if (w < 0 || (size_t)w >= buflen - k)
            break;
        k += (size_t)w;
    }
}

static int decode_enum(rm_yaml_decoder_t *d, const yaml_node_t *n, const ProtobufCEnumDescriptor *e, int *out)
{
    char buf[64], list[512], name[128];
    if (expect_scalar(d, n, "an enum name") != 0)
        return -1;
    size_t len;
    const char *v = scalar(n, &len);
    uint64_t num;
    const ProtobufCEnumValue *ev = NULL;
    if (is_plain(n) && rm_yaml_parse_uint64(v, len, &num) == 0) {
        if (num <= INT32_MAX)
            ev = protobuf_c_enum_descriptor_get_value(e, (int)num);
    } else if (len < sizeof(name)) {
        memcpy(name, v, len);
        name[len] = '\0';
        ev = protobuf_c_enum_descriptor_get_value_by_name(e, name);
    }
    if (ev == NULL) {
        enum_names(e, list, sizeof(list));
        return rm_yaml_fail(d, "unknown value %s (expected one of %s)", rm_yaml_kind(n, buf, sizeof(buf)),
                            list);
    }
    *out = ev->value;
    return 0;
}

/* ---- messages ---- */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_wrapper(const ProtobufCMessageDescriptor *m)
{
    return has_prefix(m->name, "google.protobuf.") && strlen(m->name) > 5 &&
           strcmp(m->name + strlen(m->name) - 5, "Value") == 0 && m->n_fields == 1 &&
           strcmp(m->fields[0].name, "value") == 0;
}

/* protoc represents map<K, V> as a repeated nested "...Entry" message with fields key = 1, value = 2. */
static bool is_map_entry(const ProtobufCMessageDescriptor *m)
{
    size_t len = strlen(m->short_name);
    return len > 5 && strcmp(m->short_name + len - 5, "Entry") == 0 && m->n_fields == 2 &&
           strcmp(m->fields[0].name, "key") == 0 && strcmp(m->fields[1].name, "value") == 0;
}

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = rm_malloc(desc->sizeof_message);
    protobuf_c_message_init(desc, m);
    return m;
}

static size_t value_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Decodes one value of field f into dst (the field's storage, or one element of a repeated field). For
 * a message the new message is stored before it is decoded, so that it is freed with its parent. */
static int decode_value(rm_yaml_decoder_t *d, yaml_node_t *n, const ProtobufCFieldDescriptor *f, void *dst)
{
    int64_t s;
    uint64_t u;
    double x;
    size_t len;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (decode_signed(d, n, false, &s) != 0)
            return -1;
        *(int32_t *)dst = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (decode_signed(d, n, true, &s) != 0)
            return -1;
        *(int64_t *)dst = s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (decode_unsigned(d, n, false, &u) != 0)
            return -1;
        *(uint32_t *)dst = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (decode_unsigned(d, n, true, &u) != 0)
            return -1;
        *(uint64_t *)dst = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (decode_double(d, n, &x) != 0)
            return -1;
        *(float *)dst = (float)x;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (decode_double(d, n, &x) != 0)
            return -1;
        *(double *)dst = x;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        return decode_bool(d, n, dst);
    case PROTOBUF_C_TYPE_ENUM:
        return decode_enum(d, n, f->descriptor, dst);
    case PROTOBUF_C_TYPE_STRING: {
        if (expect_scalar(d, n, "a string") != 0)
            return -1;
        const char *v = scalar(n, &len);
        char **str = dst;
        /* Initialised string fields point at protobuf-c's shared empty default, which is not ours. */
        if (*str != (const char *)f->default_value)
            free(*str);
        *str = rm_strndup(v, len);
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return rm_yaml_fail(d, "bytes fields are not supported in snapshot files");
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage **m = dst;
        if (*m == NULL)
            *m = new_message(f->descriptor);
        return decode_message_node(d, n, *m);
    }
    }
    return rm_yaml_fail(d, "unsupported field type");
}

static const ProtobufCFieldDescriptor *oneof_member(const ProtobufCMessageDescriptor *m,
                                                    const ProtobufCFieldDescriptor *f, uint32_t id)
{
    for (unsigned i = 0; i < m->n_fields; i++)
        if ((m->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            m->fields[i].quantifier_offset == f->quantifier_offset && m->fields[i].id == id)
            return &m->fields[i];
    return NULL;
}

static int decode_repeated(rm_yaml_decoder_t *d, yaml_node_t *n, ProtobufCMessage *msg,
                           const ProtobufCFieldDescriptor *f)
{
    char buf[64];
    size_t *count = (size_t *)((char *)msg + f->quantifier_offset);
    char **array = (char **)((char *)msg + f->offset);
    size_t esize = value_size(f->type);
    bool map = f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor);

    if (map && n->type != YAML_MAPPING_NODE)
        return rm_yaml_fail(d, "expected a mapping, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    if (!map && n->type != YAML_SEQUENCE_NODE)
        return rm_yaml_fail(d, "expected a list, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    size_t items = map ? (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start)
                       : (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (items == 0)
        return 0;
    *array = rm_realloc(*array, (*count + items) * esize);
    memset(*array + *count * esize, 0, items * esize);

    for (size_t i = 0; i < items; i++) {
        void *slot = *array + (*count)++ * esize;
        if (!map) {
            yaml_node_t *item = yaml_document_get_node(&d->doc, n->data.sequence.items.start[i]);
            size_t mark = rm_yaml_path_push_index(d, i);
            if (visit(d) != 0 || decode_value(d, item, f, slot) != 0)
                return -1;
            rm_yaml_path_pop(d, mark);
            continue;
        }
        yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&d->doc, p->value);
        const ProtobufCMessageDescriptor *entry_desc = f->descriptor;
        ProtobufCMessage *entry = new_message(entry_desc);
        *(ProtobufCMessage **)slot = entry;
        if (expect_scalar(d, k, "a string key") != 0)
            return -1;
        size_t klen;
        const char *key = scalar(k, &klen);
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(klen < 100 ? klen : 100), key);
        size_t mark = rm_yaml_path_push_key(d, name);
        if (visit(d) != 0 ||
            decode_value(d, k, &entry_desc->fields[0], (char *)entry + entry_desc->fields[0].offset) != 0 ||
            decode_value(d, v, &entry_desc->fields[1], (char *)entry + entry_desc->fields[1].offset) != 0)
            return -1;
        rm_yaml_path_pop(d, mark);
    }
    return 0;
}

static int decode_field(rm_yaml_decoder_t *d, yaml_node_t *n, ProtobufCMessage *msg,
                        const ProtobufCFieldDescriptor *f)
{
    if (rm_yaml_is_null(n))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return decode_repeated(d, n, msg, f);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)((char *)msg + f->quantifier_offset);
        if (*which != 0 && *which != f->id) {
            const ProtobufCFieldDescriptor *other = oneof_member(msg->descriptor, f, *which);
            return rm_yaml_fail(d, "conflicts with %s (only one of them may be set)",
                                other ? other->name : "another field");
        }
        *which = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING) {
        *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
    }
    return decode_value(d, n, f, (char *)msg + f->offset);
}

static void field_names(const ProtobufCMessageDescriptor *m, char *buf, size_t buflen)
{
    size_t k = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < m->n_fields; i++) {
        int w = snprintf(buf + k, buflen - k, "%s%s", k > 0 ? ", " : "", m->fields[i].name);
        if (w < 0 || (size_t)w >= buflen - k)
            break;
        k += (size_t)w;
    }
}

/* The keys of mapping n as fields of msg; with any_body, the "@type" key is skipped (checked by the caller).
 */
static int decode_mapping(rm_yaml_decoder_t *d, yaml_node_t *n, ProtobufCMessage *msg, bool any_body)
{
    char buf[64];
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    if (rm_yaml_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return rm_yaml_fail(d, "expected a mapping (%s), got %s", desc->short_name,
                            rm_yaml_kind(n, buf, sizeof(buf)));
    bool *seen = rm_calloc(desc->n_fields ? desc->n_fields : 1, sizeof(bool));
    int rc = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; rc == 0 && p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
        if (k->type != YAML_SCALAR_NODE) {
            rc = rm_yaml_fail(d, "keys must be strings, got %s", rm_yaml_kind(k, buf, sizeof(buf)));
            break;
        }
        size_t len;
        const char *key = scalar(k, &len);
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(len < 100 ? len : 100), key);
        if (any_body && strcmp(name, "@type") == 0)
            continue;
        size_t mark = rm_yaml_path_push_key(d, name);
        const ProtobufCFieldDescriptor *f =
            len == strlen(name) ? protobuf_c_message_descriptor_get_field_by_name(desc, name) : NULL;
        if (f == NULL) {
            char list[768];
            field_names(desc, list, sizeof(list));
            rc = rm_yaml_fail(d, "unknown field (%s supports: %s)", desc->short_name, list);
            break;
        }
        size_t index = (size_t)(f - desc->fields);
        if (seen[index]) {
            rc = rm_yaml_fail(d, "duplicate key");
            break;
        }
        seen[index] = true;
        rc = visit(d);
        if (rc == 0)
            rc = decode_field(d, yaml_document_get_node(&d->doc, p->value), msg, f);
        if (rc == 0)
            rm_yaml_path_pop(d, mark);
    }
    free(seen);
    return rc;
}

static int decode_any(rm_yaml_decoder_t *d, yaml_node_t *n, Google__Protobuf__Any *any)
{
    char buf[64];
    if (n->type != YAML_MAPPING_NODE)
        return rm_yaml_fail(d, "expected a mapping with \"@type\", got %s",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    yaml_node_t *t = rm_yaml_map_get(d, n, "@type");
    if (t == NULL) {
        size_t mark = rm_yaml_path_push_key(d, "@type");
        int rc = rm_yaml_fail(d, "required field is missing");
        rm_yaml_path_pop(d, mark);
        return rc;
    }
    const ProtobufCMessageDescriptor *desc = NULL;
    for (size_t i = 0; i < sizeof(any_types) / sizeof(any_types[0]); i++)
        if (t->type == YAML_SCALAR_NODE && scalar_is(t, any_types[i].type_url))
            desc = any_types[i].desc;
    if (desc == NULL) {
        rm_yaml_path_push_key(d, "@type");
        return rm_yaml_fail(d, "unsupported type %s (supported: %s)", rm_yaml_kind(t, buf, sizeof(buf)),
                            rm_cp_pbyaml_any_types());
    }
    ProtobufCMessage *body = new_message(desc);
    int rc = decode_mapping(d, n, body, true);
    if (rc == 0) {
        size_t tlen;
        const char *url = scalar(t, &tlen);
        const ProtobufCFieldDescriptor *tf =
            protobuf_c_message_descriptor_get_field_by_name(any->base.descriptor, "type_url");
        if (any->type_url != (const char *)tf->default_value)
            free(any->type_url);
        any->type_url = rm_strndup(url, tlen);
        free(any->value.data);
        any->value.len = protobuf_c_message_get_packed_size(body);
        any->value.data = rm_malloc(any->value.len);
        protobuf_c_message_pack(body, any->value.data);
    }
    protobuf_c_message_free_unpacked(body, NULL);
    return rc;
}

static int decode_message_node(rm_yaml_decoder_t *d, yaml_node_t *n, ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    if (desc == &google__protobuf__duration__descriptor) {
        Google__Protobuf__Duration *dur = (Google__Protobuf__Duration *)msg;
        return rm_cp_pbyaml_decode_duration(d, n, &dur->seconds, &dur->nanos);
    }
    if (desc == &google__protobuf__any__descriptor)
        return decode_any(d, n, (Google__Protobuf__Any *)msg);
    if (is_wrapper(desc) && n->type == YAML_SCALAR_NODE)
        return decode_field(d, n, msg, &desc->fields[0]);
    return decode_mapping(d, n, msg, false);
}

/* ---- public ---- */

int rm_cp_pbyaml_decode_message(rm_yaml_decoder_t *d, yaml_node_t *node, ProtobufCMessage *msg)
{
    if (rm_yaml_is_null(node))
        return 0;
    return decode_message_node(d, node, msg);
}

int rm_cp_pbyaml_decode_field(rm_yaml_decoder_t *d, yaml_node_t *node, ProtobufCMessage *msg,
                              const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
    if (f == NULL)
        return rm_yaml_fail(d, "%s has no field %s", msg->descriptor->short_name, name);
    return decode_field(d, node, msg, f);
}

int rm_cp_pbyaml_decode_duration(rm_yaml_decoder_t *d, yaml_node_t *n, int64_t *seconds, int32_t *nanos)
{
    char buf[64];
    if (n->type == YAML_MAPPING_NODE) {
        Google__Protobuf__Duration tmp = GOOGLE__PROTOBUF__DURATION__INIT;
        if (decode_mapping(d, n, &tmp.base, false) != 0)
            return -1;
        if (tmp.seconds < 0 || tmp.nanos < 0 || tmp.nanos > 999999999)
            return rm_yaml_fail(d, "invalid duration (seconds must not be negative, nanos in 0..999999999)");
        *seconds = tmp.seconds;
        *nanos = tmp.nanos;
        return 0;
    }
    uint64_t s;
    uint32_t ns;
    size_t len = 0;
    const char *v = n->type == YAML_SCALAR_NODE ? scalar(n, &len) : NULL;
    if (v != NULL && len > 1 && v[0] == '-' && rm_yaml_parse_duration(v + 1, len - 1, &s, &ns) == 0)
        return rm_yaml_fail(d, "must not be negative, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    if (v == NULL || rm_yaml_is_null(n) || rm_yaml_parse_duration(v, len, &s, &ns) != 0)
        return rm_yaml_fail(d, "invalid duration %s (expected e.g. \"0.25s\")",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    *seconds = (int64_t)s;
    *nanos = (int32_t)ns;
    return 0;
}
