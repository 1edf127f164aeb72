/* Strict HTTP/1.1 message-head parser and chunked-body decoder (RFC 9112, RFC 9110).
 *
 * Pure functions: no event loop, no allocation, no global state. The caller gathers the bytes of a
 * message head into contiguous memory and calls rm_h1_parse_request / rm_h1_parse_response; every
 * pointer in the result (method, target, header names and values, reason) points into the caller's
 * buffer, so the buffer must outlive the use of the result. Each call parses from the start of the
 * buffer; on RM_H1_INCOMPLETE the caller appends more bytes and calls again.
 *
 * The parser is deliberately strict: anything that two HTTP implementations could frame
 * differently (bare CR or LF, obs-fold, whitespace before the colon, ambiguous Content-Length or
 * Transfer-Encoding) is rejected rather than repaired, because a proxy that repairs a message
 * differently from the next hop opens the door to request smuggling. */
#ifndef RM_HTTP_H1_PARSER_H
#define RM_HTTP_H1_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RM_H1_INCOMPLETE (-2)
#define RM_H1_ERROR      (-1)

/* Longest chunk-size line (size, extensions and CRLF) the chunked decoder accepts. */
#define RM_H1_CHUNK_LINE_MAX 4096

typedef struct {
    const char *name;
    size_t name_len;
    const char *value; /* optional whitespace trimmed at both ends */
    size_t value_len;
} rm_h1_header_t;

typedef struct {
    size_t max_request_line; /* request line bytes (excluding CRLF); longer -> 414 */
    size_t max_header_bytes; /* whole header section incl. start line; larger -> 431 (response: error) */
    size_t max_headers;      /* number of header fields; more -> 431 */
} rm_h1_limits_t;

/* Fills Envoy-like defaults: 16384, 60*1024, 100. */
void rm_h1_limits_default(rm_h1_limits_t *l);

typedef enum {
    RM_H1_BODY_NONE,
    RM_H1_BODY_LENGTH,
    RM_H1_BODY_CHUNKED,
    RM_H1_BODY_UNTIL_CLOSE
} rm_h1_body_kind_t;

typedef struct {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int version_minor; /* 0 or 1 */
    rm_h1_header_t *headers;
    size_t num_headers;          /* = the storage passed in */
    rm_h1_body_kind_t body_kind; /* requests: NONE, LENGTH or CHUNKED */
    uint64_t content_length;     /* valid when body_kind == LENGTH */
    bool keep_alive;             /* from version and Connection: close / keep-alive tokens */
    bool expect_continue;        /* Expect: 100-continue (case-insensitive) */
    bool upgrade;                /* Connection has "upgrade" token and an Upgrade header exists */
    const char *host;
    size_t host_len;   /* the Host header value, NULL if absent */
    int error_status;  /* on RM_H1_ERROR: 400, 414, 431, 501 or 505 */
    const char *error; /* on RM_H1_ERROR: short static reason, e.g. "invalid header name" */
} rm_h1_request_t;

/* Parses one request head from buf[0..len). Returns the number of bytes of the head (request line,
 * headers and the blank line; > 0) when complete, RM_H1_INCOMPLETE when more bytes are needed and no
 * limit is exceeded yet, RM_H1_ERROR with out->error_status/out->error set. Leading CRLFs before the
 * request line are skipped (and counted in the returned length).
 *
 * limits may be NULL (defaults). The returned length never exceeds limits->max_header_bytes (leading
 * CRLFs included). At most min(headers_cap, limits->max_headers) fields are accepted; more -> 431.
 * Content-Length: 0 gives body_kind LENGTH with content_length 0. The content of *out is defined only
 * when the result is > 0 or RM_H1_ERROR; on success error is NULL and error_status 0.
 * The result depends only on buf[0..returned length): bytes after the head are not looked at.
 *
 * Accepted targets: origin-form ("/..."), absolute-form with an http or https scheme and an authority
 * without userinfo, and "*" for OPTIONS; raw non-ASCII bytes in a target are a 400. The Host value must
 * consist of authority characters. Expect and Upgrade are ignored in HTTP/1.0 requests.
 *
 * Every call rescans from buf[0]. To bound the work for a head that trickles in byte by byte, call
 * again only when the new bytes contain '\n' or when the buffered length has passed max_request_line /
 * max_header_bytes (so the limit errors still fire): the line and field limits then bound the calls. */
int rm_h1_parse_request(const char *buf, size_t len, const rm_h1_limits_t *limits, rm_h1_header_t *headers,
                        size_t headers_cap, rm_h1_request_t *out);

typedef struct {
    int version_minor;
    int status;
    const char *reason;
    size_t reason_len;
    rm_h1_header_t *headers;
    size_t num_headers;
    rm_h1_body_kind_t body_kind;
    uint64_t content_length;
    bool keep_alive;
    const char *error;
} rm_h1_response_t;

/* Same contract for a response head. Body kind: NONE for a HEAD request, 1xx, 204, 304; CHUNKED when
 * Transfer-Encoding ends in chunked; UNTIL_CLOSE when TE does not end in chunked or when neither TE nor
 * CL is present; LENGTH with Content-Length. TE together with CL, bad/differing CL -> RM_H1_ERROR.
 *
 * Also an error: a Transfer-Encoding that lists chunked twice or appears in an HTTP/1.0 response. The
 * status line may omit the space after the status code when the reason is empty. keep_alive is false
 * whenever the body is delimited by the connection close. max_request_line does not apply here. */
int rm_h1_parse_response(const char *buf, size_t len, const rm_h1_limits_t *limits, bool request_was_head,
                         rm_h1_header_t *headers, size_t headers_cap, rm_h1_response_t *out);

/* Incremental chunked-body decoder. A plain struct so callers can embed it; fields starting with _
 * are private. */
typedef struct {
    uint64_t _remaining;    /* data bytes left in the current chunk */
    size_t _trailer_budget; /* trailer section bytes still allowed */
    size_t _trailers_left;  /* trailer fields still allowed */
    const char *_error;     /* sticky once in the error state */
    int _state;
} rm_h1_chunked_t;

typedef enum {
    RM_H1_CHUNK_NEED_MORE, /* consume *consumed bytes, then call again with more contiguous input */
    RM_H1_CHUNK_DATA,      /* out->data/out->data_len point into `in`: body bytes */
    RM_H1_CHUNK_TRAILER,   /* out->trailer is one trailer field (points into `in`) */
    RM_H1_CHUNK_DONE,      /* last chunk, trailers and final CRLF consumed */
    RM_H1_CHUNK_ERROR,     /* out->error set */
} rm_h1_chunk_event_t;

typedef struct {
    const char *data;
    size_t data_len;
    rm_h1_header_t trailer;
    const char *error;
} rm_h1_chunk_out_t;

/* limits may be NULL (defaults); only max_header_bytes and max_headers are used (copied, not kept). */
void rm_h1_chunked_init(rm_h1_chunked_t *c, const rm_h1_limits_t *limits);

/* Consumes from in[0..len): always sets *consumed (bytes the caller must drop before the next call).
 * Lines (chunk-size line with extensions, trailer fields) must be complete in `in` to be consumed: when a
 * line is incomplete it returns NEED_MORE with *consumed possibly 0, and the caller supplies more
 * contiguous bytes; a line longer than the limits is an ERROR (chunk-size line: 4096 bytes; trailers:
 * max_header_bytes / max_headers in total). DATA may return fewer bytes than available in the chunk.
 *
 * After DONE every call returns DONE and consumes nothing (bytes after the body belong to the next
 * message); after ERROR every call returns ERROR. */
rm_h1_chunk_event_t rm_h1_chunked_next(rm_h1_chunked_t *c, const char *in, size_t len, size_t *consumed,
                                       rm_h1_chunk_out_t *out);

/* True once the decoder has returned DONE. */
bool rm_h1_chunked_is_done(const rm_h1_chunked_t *c);

/* Helpers used by the proxy: case-insensitive name compare, and whether a header is hop-by-hop
 * (connection, keep-alive, proxy-connection, transfer-encoding, te, trailer, upgrade, and any
 * field named by a Connection header token of the same message).
 * lower_name must be NUL-terminated and lowercase. all[0..n) is the message's header list (h may be
 * one of them). */
bool rm_h1_header_name_eq(const rm_h1_header_t *h, const char *lower_name);
bool rm_h1_is_hop_by_hop(const rm_h1_header_t *h, const rm_h1_header_t *all, size_t n);

#endif
