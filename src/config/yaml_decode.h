/* Table-driven decoding of a YAML document into plain C structs, with the path of every node kept
 * for error messages ("static_resources.clusters[1].connect_timeout: invalid duration ...").
 *
 * A message (YAML mapping) is described by an rm_yaml_message_t: a table of fields, each naming a
 * decoder and where in the destination struct its value goes, plus the names of fields that exist
 * in the schema being mirrored (Envoy's protos) but are not supported yet, so that they get a clearer
 * error than "unknown field". Decoding follows proto-JSON rules as Envoy applies them to YAML:
 * unknown fields are errors, null means "not set", integers must be plain YAML integers, durations
 * are "<decimal>s" strings.
 *
 * Fields are decoded in table order, not document order, so a table can put the fields others
 * depend on first (a cluster's type before its endpoints, clusters before the routes naming them).
 * Unknown and duplicate keys are reported first, in document order.
 *
 * Not thread-safe; one decoder per document. Used by the bootstrap loader and meant for any other
 * YAML file with Envoy-shaped content (the control-plane mock's snapshot). */
#ifndef RM_CONFIG_YAML_DECODE_H
#define RM_CONFIG_YAML_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#define RM_YAML_PATH_MAX 1024

typedef struct {
    yaml_document_t doc;
    bool loaded;
    char path[RM_YAML_PATH_MAX];
    size_t path_len;
    char *err; /* caller's buffer for the one-line error */
    size_t errlen;
    size_t visits; /* nodes decoded so far; bounds work on alias bombs */
    void *user;    /* for custom decoders */
} rm_yaml_decoder_t;

typedef struct rm_yaml_field rm_yaml_field_t;

/* Decodes node into obj (the struct the field belongs to; the field's own storage is at
 * obj + f->offset). The decoder's path already names the field. Returns 0, or -1 after writing the
 * error with rm_yaml_fail. */
typedef int (*rm_yaml_decode_fn)(rm_yaml_decoder_t *d, yaml_node_t *node, void *obj,
                                 const rm_yaml_field_t *f);

enum {
    RM_YAML_REQUIRED = 1u << 0, /* error if absent or null */
    RM_YAML_NONEMPTY = 1u << 1, /* strings: "" is an error (proto min_len: 1) */
};

struct rm_yaml_field {
    const char *name;
    rm_yaml_decode_fn decode;
    size_t offset;
    const void *arg; /* decoder-specific, see each decoder */
    unsigned flags;
};

typedef struct {
    const char *name;                              /* for messages, e.g. "Cluster" */
    const rm_yaml_field_t *fields;                 /* terminated by an entry with name == NULL */
    const char *unsupported;                       /* space-separated field names, or NULL */
    void (*init)(rm_yaml_decoder_t *d, void *obj); /* defaults, before any field; may be NULL */
    int (*check)(rm_yaml_decoder_t *d, void *obj); /* cross-field checks, after all; may be NULL */
} rm_yaml_message_t;

/* A repeated field. The field's offset names a `T *` array and count_offset a `size_t` count in the
 * same struct; elements are zeroed before decoding and the count always covers every element that
 * was started, so the owner's free function can clean up after a failure half-way. Items are
 * appended to what is already there (several YAML lists may feed one C array).
 * With elem_size == 0 there is no array: every item is decoded into obj itself (a YAML list that
 * maps onto a flattened C struct). */
typedef struct {
    rm_yaml_decode_fn elem;
    const void *elem_arg;
    size_t elem_size;
    size_t count_offset;
    size_t min_items;
    size_t max_items;        /* 0: unlimited */
    const char *min_message; /* error text when fewer than min_items; NULL for a generic one */
    const char *max_message; /* error text when more than max_items; NULL for a generic one */
    unsigned elem_flags;     /* RM_YAML_NONEMPTY etc. for scalar items */
} rm_yaml_seq_t;

typedef struct {
    const char *name;
    int value;
    bool unsupported; /* a valid value in the schema that Remora does not support yet */
} rm_yaml_enum_value_t;

typedef struct {
    const rm_yaml_enum_value_t *values;
    size_t count;
} rm_yaml_enum_t;

typedef struct {
    uint64_t min, max;
} rm_yaml_range_t;

typedef struct {
    uint64_t min_ns;
    bool exclusive; /* the value must be > min_ns rather than >= */
} rm_yaml_duration_rule_t;

/* Parses text (one YAML document; JSON is YAML too). Returns 0, or -1 with "line L, column C: ..."
 * in err for a syntax error. err must stay valid until rm_yaml_decoder_fini. */
int rm_yaml_decoder_init(rm_yaml_decoder_t *d, const char *text, size_t len, char *err, size_t errlen);
void rm_yaml_decoder_fini(rm_yaml_decoder_t *d);
/* The root node, or NULL for an empty document. */
yaml_node_t *rm_yaml_root(rm_yaml_decoder_t *d);

/* Writes "<path>: <message>" into the error buffer (just the message at the root). Returns -1. */
int rm_yaml_fail(rm_yaml_decoder_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Path editing for checks that report on a node other than the one being decoded. Each push returns
 * a mark to hand to rm_yaml_path_pop. */
size_t rm_yaml_path_push_key(rm_yaml_decoder_t *d, const char *key);
size_t rm_yaml_path_push_index(rm_yaml_decoder_t *d, size_t index);
void rm_yaml_path_pop(rm_yaml_decoder_t *d, size_t mark);

/* Decodes a mapping (or null, meaning all defaults) into obj. */
int rm_yaml_decode_message(rm_yaml_decoder_t *d, yaml_node_t *node, const rm_yaml_message_t *m, void *obj);

/* Node helpers. */
bool rm_yaml_is_null(const yaml_node_t *node);
/* The value of key in a mapping node, or NULL (also for a non-mapping). */
yaml_node_t *rm_yaml_map_get(rm_yaml_decoder_t *d, yaml_node_t *map, const char *key);
/* A short description of the node kind for errors: "a mapping", "a list", "the string \"x\"". */
const char *rm_yaml_kind(const yaml_node_t *node, char *buf, size_t buflen);

/* Field decoders (use as rm_yaml_field_t.decode). The destination type is in brackets, arg after. */
int rm_yaml_decode_string(rm_yaml_decoder_t *, yaml_node_t *, void *, const rm_yaml_field_t *); /* [char *] */
int rm_yaml_check_string(rm_yaml_decoder_t *, yaml_node_t *, void *,
                         const rm_yaml_field_t *); /* validated, not stored */
int rm_yaml_decode_uint32(rm_yaml_decoder_t *, yaml_node_t *, void *,
                          const rm_yaml_field_t *); /* [uint32_t] rm_yaml_range_t or NULL */
/* A YAML boolean (true/True/TRUE, false/False/FALSE, plain scalars only) into *out. */
int rm_yaml_scalar_bool(rm_yaml_decoder_t *d, const yaml_node_t *n, bool *out);
int rm_yaml_decode_bool(rm_yaml_decoder_t *, yaml_node_t *, void *, const rm_yaml_field_t *); /* [bool] */
int rm_yaml_decode_enum(rm_yaml_decoder_t *, yaml_node_t *, void *,
                        const rm_yaml_field_t *); /* [int-sized enum] rm_yaml_enum_t */
int rm_yaml_decode_duration_ms(rm_yaml_decoder_t *, yaml_node_t *, void *,
                               const rm_yaml_field_t *); /* [uint64_t ms] rm_yaml_duration_rule_t or NULL */
int rm_yaml_decode_submessage(rm_yaml_decoder_t *, yaml_node_t *, void *,
                              const rm_yaml_field_t *); /* [struct at offset] rm_yaml_message_t */
int rm_yaml_decode_seq(rm_yaml_decoder_t *, yaml_node_t *, void *,
                       const rm_yaml_field_t *); /* rm_yaml_seq_t */
/* A field whose value must be the string in arg (for "@type" type URLs). */
int rm_yaml_decode_type_url(rm_yaml_decoder_t *, yaml_node_t *, void *, const rm_yaml_field_t *);

/* Scalar parsers on raw text, exposed for tests and for custom decoders. Both return 0 or -1. */
/* "<digits>[.<1-9 digits>]s", non-negative, at most 315576000000s (proto Duration's range). */
int rm_yaml_parse_duration(const char *s, size_t len, uint64_t *seconds_out, uint32_t *nanos_out);
/* Canonical unsigned decimal: no sign, no leading zeros, no overflow of uint64. */
int rm_yaml_parse_uint64(const char *s, size_t len, uint64_t *out);

#define RM_YAML_FIELD(name, fn, type, member, arg, flags)                                                    \
    {                                                                                                        \
        (name), (fn), offsetof(type, member), (arg), (flags)                                                 \
    }
#define RM_YAML_FIELDS_END                                                                                   \
    {                                                                                                        \
        NULL, NULL, 0, NULL, 0                                                                               \
    }

#endif
