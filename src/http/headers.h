/* Protocol-neutral message heads shared by the h1 codec, the (future) h2 codec and the proxy.
 * Names are stored lowercase (HTTP/2 requires it and h1 is case-insensitive), values as received.
 * Every string is owned by the list. */
#ifndef RM_HTTP_HEADERS_H
#define RM_HTTP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
} rm_header_t;

typedef struct {
    rm_header_t *v;
    size_t n;
    size_t cap;
} rm_headers_t;

/* Appends a copy; the name is lowercased. */
void rm_headers_add(rm_headers_t *h, const char *name, size_t name_len, const char *value, size_t value_len);
void rm_headers_add_cstr(rm_headers_t *h, const char *name, const char *value);
/* First header with this lowercase name, or NULL. */
const rm_header_t *rm_headers_get(const rm_headers_t *h, const char *lname);
/* Removes every header with this lowercase name; returns how many. */
size_t rm_headers_remove(rm_headers_t *h, const char *lname);
/* Replaces (or adds) a header. */
void rm_headers_set(rm_headers_t *h, const char *lname, const char *value, size_t value_len);
void rm_headers_free(rm_headers_t *h);
/* Appends a copy of every header of src to dst. */
void rm_headers_append_all(rm_headers_t *dst, const rm_headers_t *src);
/* Total bytes of names and values (for limits and stats). */
size_t rm_headers_byte_size(const rm_headers_t *h);

/* A request head in protocol-neutral form (pseudo-header values kept apart). */
typedef struct {
    char *method;
    char *path; /* origin-form target, including the query */
    char *authority;
    char *scheme;
    int version_minor;      /* downstream HTTP/1.x minor version; 2 means HTTP/2 */
    rm_headers_t headers;   /* regular headers; hop-by-hop removed */
    int64_t content_length; /* -1 when unknown (chunked / streaming) */
} rm_request_head_t;

typedef struct {
    int status;
    rm_headers_t headers;
    int64_t content_length; /* -1 when unknown */
} rm_response_head_t;

void rm_request_head_free(rm_request_head_t *r);
void rm_response_head_free(rm_response_head_t *r);

#endif
