#include "http/headers.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

static char *dup_lower(const char *s, size_t n)
{
    char *d = rm_malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        d[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    d[n] = '\0';
    return d;
}

void rm_headers_add(rm_headers_t *h, const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = rm_realloc(h->v, h->cap * sizeof(rm_header_t));
    }
    rm_header_t *e = &h->v[h->n++];
    e->name = dup_lower(name, name_len);
    e->name_len = name_len;
    e->value = rm_strndup(value, value_len);
    e->value_len = value_len;
}

void rm_headers_add_cstr(rm_headers_t *h, const char *name, const char *value)
{
    rm_headers_add(h, name, strlen(name), value, strlen(value));
}

const rm_header_t *rm_headers_get(const rm_headers_t *h, const char *lname)
{
    size_t len = strlen(lname);
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].name_len == len && memcmp(h->v[i].name, lname, len) == 0)
            return &h->v[i];
    return NULL;
}

size_t rm_headers_remove(rm_headers_t *h, const char *lname)
{
    size_t len = strlen(lname), out = 0, removed = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (h->v[i].name_len == len && memcmp(h->v[i].name, lname, len) == 0) {
            free(h->v[i].name);
            free(h->v[i].value);
            removed++;
        } else {
            h->v[out++] = h->v[i];
        }
    }
    h->n = out;
    return removed;
}

void rm_headers_set(rm_headers_t *h, const char *lname, const char *value, size_t value_len)
{
    rm_headers_remove(h, lname);
    rm_headers_add(h, lname, strlen(lname), value, value_len);
}

void rm_headers_append_all(rm_headers_t *dst, const rm_headers_t *src)
{
    for (size_t i = 0; i < src->n; i++)
        rm_headers_add(dst, src->v[i].name, src->v[i].name_len, src->v[i].value, src->v[i].value_len);
}

void rm_headers_free(rm_headers_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

size_t rm_headers_byte_size(const rm_headers_t *h)
{
    size_t total = 0;
    for (size_t i = 0; i < h->n; i++)
        total += h->v[i].name_len + h->v[i].value_len;
    return total;
}

void rm_request_head_free(rm_request_head_t *r)
{
    free(r->method);
    free(r->path);
    free(r->authority);
    free(r->scheme);
    rm_headers_free(&r->headers);
    memset(r, 0, sizeof(*r));
}

void rm_response_head_free(rm_response_head_t *r)
{
    rm_headers_free(&r->headers);
    memset(r, 0, sizeof(*r));
}
