#include "http/router.h"

#include "core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Domains live in one hash table keyed by (kind, lowercased text without the '*'). A wildcard
 * lookup probes once per distinct wildcard length, longest first, so the cost depends on how many
 * different lengths are configured, not on how many virtual hosts there are. */
enum { KIND_EXACT = 0, KIND_SUFFIX = 1, KIND_PREFIX = 2 };

typedef struct {
    char *key; /* NULL: empty slot */
    size_t len;
    int kind;
    size_t vh;
} domain_entry_t;

typedef struct {
    size_t *lens; /* distinct, descending */
    size_t count;
} length_list_t;

struct rm_router {
    rm_route_table_config_t cfg;
    domain_entry_t *slots;
    size_t cap; /* power of two */
    length_list_t wildcard_lens[3];
    const rm_virtual_host_config_t *default_vh; /* the "*" domain, or NULL */
};

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static uint64_t domain_hash(int kind, const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;
    for (size_t i = 0; i < len; i++)
        h = (h ^ lower((unsigned char)s[i])) * 1099511628211ull;
    return h;
}

/* key is already lowercase; s is not. */
static bool key_equals(const domain_entry_t *e, int kind, const char *s, size_t len)
{
    if (e->kind != kind || e->len != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)e->key[i] != lower((unsigned char)s[i]))
            return false;
    return true;
}

static const domain_entry_t *lookup(const rm_router_t *r, int kind, const char *s, size_t len)
{
    if (r->cap == 0)
        return NULL;
    for (size_t i = domain_hash(kind, s, len) & (r->cap - 1);; i = (i + 1) & (r->cap - 1)) {
        const domain_entry_t *e = &r->slots[i];
        if (e->key == NULL)
            return NULL;
        if (key_equals(e, kind, s, len))
            return e;
    }
}

static void add_length(length_list_t *l, size_t len)
{
    size_t i = 0;
    while (i < l->count && l->lens[i] > len)
        i++;
    if (i < l->count && l->lens[i] == len)
        return;
    l->lens = rm_realloc(l->lens, (l->count + 1) * sizeof(*l->lens));
    memmove(&l->lens[i + 1], &l->lens[i], (l->count - i) * sizeof(*l->lens));
    l->lens[i] = len;
    l->count++;
}

static void add_domain(rm_router_t *r, const char *domain, size_t vh)
{
    size_t len = strlen(domain);
    if (len == 1 && domain[0] == '*') {
        if (r->default_vh == NULL)
            r->default_vh = &r->cfg.virtual_hosts[vh];
        return;
    }
    int kind = KIND_EXACT;
    const char *text = domain;
    if (len > 1 && domain[0] == '*') {
        kind = KIND_SUFFIX;
        text++;
        len--;
    } else if (len > 1 && domain[len - 1] == '*') {
        kind = KIND_PREFIX;
        len--;
    }
    if (lookup(r, kind, text, len) != NULL)
        return; /* first virtual host listing a domain wins */
    size_t i = domain_hash(kind, text, len) & (r->cap - 1);
    while (r->slots[i].key != NULL)
        i = (i + 1) & (r->cap - 1);
    domain_entry_t *e = &r->slots[i];
    e->key = rm_strndup(text, len);
    for (size_t k = 0; k < len; k++)
        e->key[k] = (char)lower((unsigned char)e->key[k]);
    e->len = len;
    e->kind = kind;
    e->vh = vh;
    if (kind != KIND_EXACT)
        add_length(&r->wildcard_lens[kind], len);
}

rm_router_t *rm_router_create(const rm_route_table_config_t *cfg)
{
    rm_router_t *r = RM_NEW(rm_router_t);
    rm_route_table_config_copy(&r->cfg, cfg);
    size_t total = 0;
    for (size_t i = 0; i < r->cfg.num_virtual_hosts; i++)
        total += r->cfg.virtual_hosts[i].num_domains;
    /* Load factor at most 1/2 keeps linear probing short. */
    r->cap = 8;
    while (r->cap < total * 2)
        r->cap *= 2;
    r->slots = rm_calloc(r->cap, sizeof(*r->slots));
    for (size_t i = 0; i < r->cfg.num_virtual_hosts; i++)
        for (size_t j = 0; j < r->cfg.virtual_hosts[i].num_domains; j++)
            add_domain(r, r->cfg.virtual_hosts[i].domains[j], i);
    return r;
}

void rm_router_destroy(rm_router_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->cap; i++)
        free(r->slots[i].key);
    free(r->slots);
    for (size_t k = 0; k < RM_ARRAY_LEN(r->wildcard_lens); k++)
        free(r->wildcard_lens[k].lens);
    rm_route_table_config_free(&r->cfg);
    free(r);
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Length of host without a trailing ":port", or len if there is no port. A bare IPv6 address
 * ("::1", invalid in Host but seen in the wild) has several colons and is left alone. */
static size_t strip_port(const char *host, size_t len)
{
    if (len == 0)
        return 0;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', len);
        if (close == NULL)
            return len;
        size_t end = (size_t)(close - host) + 1;
        if (end < len && host[end] == ':' && all_digits(host + end + 1, len - end - 1))
            return end;
        return len;
    }
    const char *colon = memchr(host, ':', len);
    if (colon == NULL)
        return len;
    size_t pos = (size_t)(colon - host);
    if (memchr(colon + 1, ':', len - pos - 1) != NULL || !all_digits(colon + 1, len - pos - 1))
        return len;
    return pos;
}

static const domain_entry_t *find_wildcard(const rm_router_t *r, int kind, const char *host, size_t len)
{
    const length_list_t *l = &r->wildcard_lens[kind];
    for (size_t i = 0; i < l->count; i++) {
        size_t n = l->lens[i];
        /* The '*' must stand for at least one character. */
        if (n >= len)
            continue;
        const char *part = kind == KIND_SUFFIX ? host + len - n : host;
        const domain_entry_t *e = lookup(r, kind, part, n);
        if (e != NULL)
            return e;
    }
    return NULL;
}

const rm_virtual_host_config_t *rm_router_match_virtual_host(const rm_router_t *r, const char *host,
                                                             size_t host_len)
{
    if (host == NULL)
        host_len = 0;
    size_t lens[2] = {host_len, strip_port(host, host_len)};
    size_t tries = lens[1] < lens[0] ? 2 : 1;
    /* Exactness beats keeping the port: "example.com" must win over "example.*" for
     * "example.com:8080", as it does for "example.com". */
    for (int kind = KIND_EXACT; kind <= KIND_PREFIX; kind++) {
        for (size_t t = 0; t < tries; t++) {
            const domain_entry_t *e = kind == KIND_EXACT
                                          ? (lens[t] > 0 ? lookup(r, kind, host, lens[t]) : NULL)
                                          : find_wildcard(r, kind, host, lens[t]);
            if (e != NULL)
                return &r->cfg.virtual_hosts[e->vh];
        }
    }
    return r->default_vh;
}

static bool route_matches(const rm_route_config_t *route, const char *path, size_t len)
{
    size_t n = strlen(route->match_value);
    if (route->match_kind == RM_ROUTE_MATCH_PATH ? n != len : n > len)
        return false;
    return n == 0 || memcmp(route->match_value, path, n) == 0;
}

const rm_route_config_t *rm_router_match(const rm_router_t *r, const char *host, size_t host_len,
                                         const char *path, size_t path_len)
{
    const rm_virtual_host_config_t *vh = rm_router_match_virtual_host(r, host, host_len);
    if (vh == NULL)
        return NULL;
    if (path == NULL)
        path_len = 0;
    const char *query = path_len > 0 ? memchr(path, '?', path_len) : NULL;
    if (query != NULL)
        path_len = (size_t)(query - path);
    for (size_t i = 0; i < vh->num_routes; i++)
        if (route_matches(&vh->routes[i], path, path_len))
            return &vh->routes[i];
    return NULL;
}
