#include "config/yaml_decode.h"

#include "core/mem.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* proto Duration's documented range: +-10000 years. */
#define MAX_DURATION_SECONDS 315576000000ull
/* Tables are small; a fixed bound lets decode_message track fields on the stack. */
#define MAX_FIELDS 64

/* ---- errors and paths ---- */

int rm_yaml_fail(rm_yaml_decoder_t *d, const char *fmt, ...)
{
    if (d->err == NULL || d->errlen == 0)
        return -1;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (d->path_len > 0)
        snprintf(d->err, d->errlen, "%s: %s", d->path, msg);
    else
        snprintf(d->err, d->errlen, "%s", msg);
    /* Keys and values from the file end up in the message; keep it one printable line. */
    for (char *p = d->err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return -1;
}

static size_t path_append(rm_yaml_decoder_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_append(rm_yaml_decoder_t *d, const char *fmt, ...)
{
    size_t mark = d->path_len;
    size_t room = sizeof(d->path) - d->path_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->path + d->path_len, room, fmt, ap);
    va_end(ap);
    /* A path too long to show in full is still better shown truncated than not at all. */
    if (n < 0)
        n = 0;
    d->path_len += (size_t)n < room ? (size_t)n : room - 1;
    return mark;
}

size_t rm_yaml_path_push_key(rm_yaml_decoder_t *d, const char *key)
{
    return path_append(d, "%s%s", d->path_len > 0 ? "." : "", key);
}

size_t rm_yaml_path_push_index(rm_yaml_decoder_t *d, size_t index)
{
    return path_append(d, "[%zu]", index);
}

void rm_yaml_path_pop(rm_yaml_decoder_t *d, size_t mark)
{
    d->path_len = mark;
    d->path[mark] = '\0';
}

/* ---- document ---- */

static void format_parser_error(const yaml_parser_t *p, char *err, size_t errlen)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        snprintf(err, errlen, "YAML error at byte offset %zu: %s", p->problem_offset, problem);
        return;
    }
    if (p->context != NULL)
        snprintf(err, errlen, "YAML syntax error at line %zu, column %zu: %s (%s at line %zu, column %zu)",
                 p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    else
        snprintf(err, errlen, "YAML syntax error at line %zu, column %zu: %s", p->problem_mark.line + 1,
                 p->problem_mark.column + 1, problem);
}

int rm_yaml_decoder_init(rm_yaml_decoder_t *d, const char *text, size_t len, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->err = err;
    d->errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        abort(); /* only fails on allocation failure */
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &d->doc)) {
        format_parser_error(&parser, err, errlen);
        yaml_parser_delete(&parser);
        return -1;
    }
    d->loaded = true;

    /* A second document would be silently ignored by a loader that stops at the first one. */
    yaml_document_t next;
    if (!yaml_parser_load(&parser, &next)) {
        format_parser_error(&parser, err, errlen);
        yaml_parser_delete(&parser);
        return -1;
    }
    bool more = yaml_document_get_root_node(&next) != NULL;
    size_t line = next.start_mark.line + 1;
    yaml_document_delete(&next);
    yaml_parser_delete(&parser);
    if (more) {
        snprintf(err, errlen, "YAML error at line %zu: more than one document in the file", line);
        return -1;
    }
    return 0;
}

void rm_yaml_decoder_fini(rm_yaml_decoder_t *d)
{
    if (d->loaded)
        yaml_document_delete(&d->doc);
    d->loaded = false;
}

yaml_node_t *rm_yaml_root(rm_yaml_decoder_t *d)
{
    return d->loaded ? yaml_document_get_root_node(&d->doc) : NULL;
}

/* Aliases let a small file name the same subtree many times over (the "billion laughs"); decoding
 * each use separately is what users expect, so bound the total work instead of banning aliases. */
static int count_visit(rm_yaml_decoder_t *d)
{
    size_t nodes = (size_t)(d->doc.nodes.top - d->doc.nodes.start);
    size_t budget = 100 * nodes + 100000;
    if (++d->visits > budget)
        return rm_yaml_fail(d, "document expands to too many nodes (aliases used too often)");
    return 0;
}

/* ---- node helpers ---- */

static const char *scalar(const yaml_node_t *n, size_t *len)
{
    *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
    size_t len;
    const char *v = scalar(n, &len);
    return len == strlen(s) && memcmp(v, s, len) == 0;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool rm_yaml_is_null(const yaml_node_t *n)
{
    if (n == NULL)
        return true;
    if (n->type != YAML_SCALAR_NODE)
        return false;
    if (n->tag != NULL && strcmp((const char *)n->tag, YAML_NULL_TAG) == 0)
        return true;
    if (!is_plain(n))
        return false;
    return scalar_is(n, "") || scalar_is(n, "~") || scalar_is(n, "null") || scalar_is(n, "Null") ||
           scalar_is(n, "NULL");
}

yaml_node_t *rm_yaml_map_get(rm_yaml_decoder_t *d, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && scalar_is(k, key))
            return yaml_document_get_node(&d->doc, p->value);
    }
    return NULL;
}

const char *rm_yaml_kind(const yaml_node_t *n, char *buf, size_t buflen)
{
    if (rm_yaml_is_null(n))
        return "null";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    size_t len;
    const char *v = scalar(n, &len);
    /* Keep messages one short line even for huge or binary scalars. */
    char shown[48];
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < sizeof(shown); i++)
        shown[k++] = (v[i] >= 0x20 && v[i] < 0x7f && v[i] != '"') ? v[i] : '?';
    shown[k] = '\0';
    snprintf(buf, buflen, "\"%s\"%s", shown, k < len ? "..." : "");
    return buf;
}

/* ---- scalar parsing ---- */

int rm_yaml_parse_uint64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || (len > 1 && s[0] == '0'))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned digit = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

int rm_yaml_parse_duration(const char *s, size_t len, uint64_t *seconds_out, uint32_t *nanos_out)
{
    if (len < 2 || s[len - 1] != 's')
        return -1;
    len--;
    size_t i = 0;
    uint64_t secs = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        secs = secs * 10 + (uint64_t)(s[i] - '0');
        if (secs > MAX_DURATION_SECONDS)
            return -1;
        i++;
    }
    if (i == 0)
        return -1;
    uint32_t nanos = 0;
    if (i < len) {
        if (s[i] != '.')
            return -1;
        i++;
        size_t digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 9) {
            nanos = nanos * 10 + (uint32_t)(s[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || i != len)
            return -1;
        for (; digits < 9; digits++)
            nanos *= 10;
    }
    if (secs == MAX_DURATION_SECONDS && nanos > 0)
        return -1;
    *seconds_out = secs;
    *nanos_out = nanos;
    return 0;
}

/* ---- decoders ---- */

static void *field_ptr(void *obj, const rm_yaml_field_t *f)
{
    return (char *)obj + f->offset;
}

static int expect_scalar(rm_yaml_decoder_t *d, const yaml_node_t *n, const char *what)
{
    char buf[64];
    if (n->type != YAML_SCALAR_NODE || rm_yaml_is_null(n))
        return rm_yaml_fail(d, "expected %s, got %s", what, rm_yaml_kind(n, buf, sizeof(buf)));
    return 0;
}

static int string_value(rm_yaml_decoder_t *d, const yaml_node_t *n, const rm_yaml_field_t *f, const char **v,
                        size_t *len)
{
    if (expect_scalar(d, n, "a string") != 0)
        return -1;
    *v = scalar(n, len);
    /* C strings cannot carry NUL; a value cut short at one would mean something else. */
    if (memchr(*v, '\0', *len) != NULL)
        return rm_yaml_fail(d, "must not contain a NUL character");
    if ((f->flags & RM_YAML_NONEMPTY) && *len == 0)
        return rm_yaml_fail(d, "must not be empty");
    return 0;
}

int rm_yaml_decode_string(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    const char *v;
    size_t len;
    if (string_value(d, n, f, &v, &len) != 0)
        return -1;
    char **dst = field_ptr(obj, f);
    free(*dst);
    *dst = rm_strndup(v, len);
    return 0;
}

int rm_yaml_check_string(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    const char *v;
    size_t len;
    return string_value(d, n, f, &v, &len);
}

/* Integers follow proto-JSON as Envoy reads YAML: a plain number. A quoted "80" is a string, and
 * for 32-bit fields we reject it rather than guess (proto-JSON only needs strings for 64-bit
 * values, which JavaScript cannot hold). */
static int integer_value(rm_yaml_decoder_t *d, const yaml_node_t *n, bool allow_quoted, uint64_t *out)
{
    char buf[64];
    if (expect_scalar(d, n, "an integer") != 0)
        return -1;
    size_t len;
    const char *v = scalar(n, &len);
    if (!allow_quoted && !is_plain(n))
        return rm_yaml_fail(d, "expected an integer, got the quoted string %s (remove the quotes)",
                            rm_yaml_kind(n, buf, sizeof(buf)));
    if (len > 0 && v[0] == '-' && rm_yaml_parse_uint64(v + 1, len - 1, out) == 0)
        return rm_yaml_fail(d, "must not be negative, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    if (rm_yaml_parse_uint64(v, len, out) != 0)
        return rm_yaml_fail(d, "expected a non-negative integer, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    return 0;
}

int rm_yaml_decode_uint32(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    uint64_t v;
    if (integer_value(d, n, false, &v) != 0)
        return -1;
    const rm_yaml_range_t *r = f->arg;
    uint64_t min = r ? r->min : 0, max = r ? r->max : UINT32_MAX;
    if (max > UINT32_MAX)
        max = UINT32_MAX;
    if (v < min || v > max)
        return rm_yaml_fail(d, "%" PRIu64 " is out of range (%" PRIu64 "..%" PRIu64 ")", v, min, max);
    *(uint32_t *)field_ptr(obj, f) = (uint32_t)v;
    return 0;
}

int rm_yaml_scalar_bool(rm_yaml_decoder_t *d, const yaml_node_t *n, bool *out)
{
    char buf[64];
    if (is_plain(n)) {
        if (scalar_is(n, "true") || scalar_is(n, "True") || scalar_is(n, "TRUE")) {
            *out = true;
            return 0;
        }
        if (scalar_is(n, "false") || scalar_is(n, "False") || scalar_is(n, "FALSE")) {
            *out = false;
            return 0;
        }
    }
    return rm_yaml_fail(d, "expected true or false, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
}

int rm_yaml_decode_bool(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    return rm_yaml_scalar_bool(d, n, field_ptr(obj, f));
}

static void enum_list(const rm_yaml_enum_t *e, bool supported_only, char *buf, size_t buflen)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < e->count; i++) {
        if (supported_only && e->values[i].unsupported)
            continue;
        int n = snprintf(buf + k, buflen - k, "%s%s", k > 0 ? ", " : "", e->values[i].name);
        if (n < 0 || (size_t)n >= buflen - k)
            break;
        k += (size_t)n;
    }
}

int rm_yaml_decode_enum(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    const rm_yaml_enum_t *e = f->arg;
    char buf[64], list[256];
    if (expect_scalar(d, n, "an enum name") != 0)
        return -1;
    size_t len;
    const char *v = scalar(n, &len);
    uint64_t num;
    /* proto-JSON also accepts an enum's number in place of its name. */
    bool by_number = is_plain(n) && rm_yaml_parse_uint64(v, len, &num) == 0;
    for (size_t i = 0; i < e->count; i++) {
        const rm_yaml_enum_value_t *ev = &e->values[i];
        bool match = by_number ? (uint64_t)ev->value == num : scalar_is(n, ev->name);
        if (!match)
            continue;
        if (ev->unsupported) {
            enum_list(e, true, list, sizeof(list));
            return rm_yaml_fail(d, "%s is not supported yet (supported: %s)", ev->name, list);
        }
        *(int *)field_ptr(obj, f) = ev->value;
        return 0;
    }
    enum_list(e, false, list, sizeof(list));
    return rm_yaml_fail(d, "unknown value %s (expected one of %s)", rm_yaml_kind(n, buf, sizeof(buf)), list);
}

typedef struct {
    uint64_t seconds;
    uint32_t nanos;
} duration_t;

static int decode_int64_seconds(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    uint64_t v;
    if (integer_value(d, n, true, &v) != 0)
        return -1;
    if (v > MAX_DURATION_SECONDS)
        return rm_yaml_fail(d, "%" PRIu64 " is out of range (0..%llu)", v, MAX_DURATION_SECONDS);
    ((duration_t *)obj)->seconds = v;
    return 0;
}

static const rm_yaml_range_t nanos_range = {0, 999999999};
static const rm_yaml_field_t duration_fields[] = {
    RM_YAML_FIELD("seconds", decode_int64_seconds, duration_t, seconds, NULL, 0),
    RM_YAML_FIELD("nanos", rm_yaml_decode_uint32, duration_t, nanos, &nanos_range, 0),
    RM_YAML_FIELDS_END,
};
static const rm_yaml_message_t duration_message = {"Duration", duration_fields, NULL, NULL, NULL};

static void format_seconds(uint64_t ns, char *buf, size_t buflen)
{
    uint64_t s = ns / 1000000000u, frac = ns % 1000000000u;
    if (frac == 0) {
        snprintf(buf, buflen, "%" PRIu64 "s", s);
        return;
    }
    char digits[16];
    snprintf(digits, sizeof(digits), "%09" PRIu64, frac);
    size_t k = strlen(digits);
    while (k > 0 && digits[k - 1] == '0')
        digits[--k] = '\0';
    snprintf(buf, buflen, "%" PRIu64 ".%ss", s, digits);
}

int rm_yaml_decode_duration_ms(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    char buf[64];
    duration_t v = {0, 0};
    if (n->type == YAML_MAPPING_NODE) {
        if (rm_yaml_decode_message(d, n, &duration_message, &v) != 0)
            return -1;
    } else {
        size_t len = 0;
        const char *s = n->type == YAML_SCALAR_NODE ? scalar(n, &len) : NULL;
        if (s != NULL && len > 1 && s[0] == '-' &&
            rm_yaml_parse_duration(s + 1, len - 1, &v.seconds, &v.nanos) == 0)
            return rm_yaml_fail(d, "must not be negative, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
        if (s == NULL || rm_yaml_is_null(n) || rm_yaml_parse_duration(s, len, &v.seconds, &v.nanos) != 0)
            return rm_yaml_fail(d, "invalid duration %s (expected e.g. \"0.25s\")",
                                rm_yaml_kind(n, buf, sizeof(buf)));
    }
    const rm_yaml_duration_rule_t *rule = f->arg;
    if (rule != NULL) {
        uint64_t min_s = rule->min_ns / 1000000000u;
        uint32_t min_n = (uint32_t)(rule->min_ns % 1000000000u);
        bool below = v.seconds < min_s || (v.seconds == min_s && v.nanos < min_n);
        bool equal = v.seconds == min_s && v.nanos == min_n;
        if (below || (rule->exclusive && equal)) {
            format_seconds(rule->min_ns, buf, sizeof(buf));
            return rm_yaml_fail(d, "must be %s %s", rule->exclusive ? "greater than" : "at least", buf);
        }
    }
    /* Stored in milliseconds; round a sub-millisecond remainder up so that a small non-zero duration
     * never turns into 0, which several timeouts read as "disabled". */
    *(uint64_t *)field_ptr(obj, f) = v.seconds * 1000u + v.nanos / 1000000u + (v.nanos % 1000000u != 0);
    return 0;
}

int rm_yaml_decode_submessage(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    return rm_yaml_decode_message(d, n, f->arg, field_ptr(obj, f));
}

int rm_yaml_decode_type_url(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    char buf[64];
    const char *want = f->arg;
    if (n->type != YAML_SCALAR_NODE || !scalar_is(n, want))
        return rm_yaml_fail(d, "expected \"%s\", got %s", want, rm_yaml_kind(n, buf, sizeof(buf)));
    return 0;
}

int rm_yaml_decode_seq(rm_yaml_decoder_t *d, yaml_node_t *n, void *obj, const rm_yaml_field_t *f)
{
    const rm_yaml_seq_t *s = f->arg;
    char buf[64];
    if (n->type != YAML_SEQUENCE_NODE)
        return rm_yaml_fail(d, "expected a list, got %s", rm_yaml_kind(n, buf, sizeof(buf)));
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count < s->min_items) {
        if (s->min_message != NULL)
            return rm_yaml_fail(d, "%s", s->min_message);
        return rm_yaml_fail(d, "needs at least %zu item%s", s->min_items, s->min_items == 1 ? "" : "s");
    }
    if (s->max_items > 0 && count > s->max_items) {
        if (s->max_message != NULL)
            return rm_yaml_fail(d, "%s", s->max_message);
        return rm_yaml_fail(d, "at most %zu item%s supported", s->max_items, s->max_items == 1 ? "" : "s");
    }

    char **array = NULL;
    size_t *num = NULL;
    if (s->elem_size > 0) {
        array = field_ptr(obj, f);
        num = (size_t *)((char *)obj + s->count_offset);
        if (count > 0) {
            *array = rm_realloc(*array, (*num + count) * s->elem_size);
            memset(*array + *num * s->elem_size, 0, count * s->elem_size);
        }
    }
    rm_yaml_field_t elem_field = {NULL, s->elem, 0, s->elem_arg, s->elem_flags};
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(&d->doc, n->data.sequence.items.start[i]);
        size_t mark = rm_yaml_path_push_index(d, i);
        void *target = obj;
        if (array != NULL)
            target = *array + (*num)++ * s->elem_size;
        int rc = count_visit(d);
        if (rc == 0)
            rc = s->elem(d, item, target, &elem_field);
        if (rc != 0)
            return -1; /* keep the path: it names the failing item */
        rm_yaml_path_pop(d, mark);
    }
    return 0;
}

/* ---- messages ---- */

static void field_list(const rm_yaml_message_t *m, char *buf, size_t buflen)
{
    size_t k = 0;
    buf[0] = '\0';
    for (const rm_yaml_field_t *f = m->fields; f->name != NULL; f++) {
        int n = snprintf(buf + k, buflen - k, "%s%s", k > 0 ? ", " : "", f->name);
        if (n < 0 || (size_t)n >= buflen - k)
            break;
        k += (size_t)n;
    }
}

/* Whether key is one of the space-separated words of list. */
static bool in_list(const char *list, const char *key, size_t len)
{
    if (list == NULL || len == 0)
        return false;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, " ");
        if (n == len && memcmp(p, key, len) == 0)
            return true;
        p += n;
        p += strspn(p, " ");
    }
    return false;
}

int rm_yaml_decode_message(rm_yaml_decoder_t *d, yaml_node_t *n, const rm_yaml_message_t *m, void *obj)
{
    char buf[64];
    yaml_node_t *values[MAX_FIELDS] = {NULL};
    size_t nfields = 0;
    while (m->fields[nfields].name != NULL)
        nfields++;
    assert(nfields <= MAX_FIELDS);

    if (m->init != NULL)
        m->init(d, obj);
    if (!rm_yaml_is_null(n) && n->type != YAML_MAPPING_NODE)
        return rm_yaml_fail(d, "expected a mapping (%s), got %s", m->name, rm_yaml_kind(n, buf, sizeof(buf)));

    /* Pass 1, document order: every key must be known and appear once. */
    if (!rm_yaml_is_null(n)) {
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
            if (k->type != YAML_SCALAR_NODE)
                return rm_yaml_fail(d, "keys must be strings, got %s", rm_yaml_kind(k, buf, sizeof(buf)));
            size_t len;
            const char *key = scalar(k, &len);
            size_t i = 0;
            while (i < nfields &&
                   !(strlen(m->fields[i].name) == len && memcmp(m->fields[i].name, key, len) == 0))
                i++;
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(len < 100 ? len : 100), key);
            if (i == nfields) {
                rm_yaml_path_push_key(d, name);
                if (in_list(m->unsupported, key, len))
                    return rm_yaml_fail(d, "not supported yet");
                char list[512];
                field_list(m, list, sizeof(list));
                return rm_yaml_fail(d, "unknown field (%s supports: %s)", m->name, list);
            }
            if (values[i] != NULL) {
                rm_yaml_path_push_key(d, name);
                return rm_yaml_fail(d, "duplicate key");
            }
            values[i] = yaml_document_get_node(&d->doc, p->value);
        }
    }

    /* Pass 2, table order: decode. */
    for (size_t i = 0; i < nfields; i++) {
        const rm_yaml_field_t *f = &m->fields[i];
        size_t mark = rm_yaml_path_push_key(d, f->name);
        if (rm_yaml_is_null(values[i])) {
            if (f->flags & RM_YAML_REQUIRED)
                return rm_yaml_fail(d, "required field is missing");
        } else if (count_visit(d) != 0 || f->decode(d, values[i], obj, f) != 0) {
            return -1;
        }
        rm_yaml_path_pop(d, mark);
    }
    return m->check != NULL ? m->check(d, obj) : 0;
}
