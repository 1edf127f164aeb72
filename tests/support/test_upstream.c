/* remora-test-upstream: a small HTTP/1.1 origin server for integration tests.
 *
 * One libevent loop, one bufferevent per connection. A connection handles its requests strictly in
 * order: the next pipelined request is parsed only once the current response has been generated
 * completely (delays and streamed bodies included), so pipelined responses come back in order.
 * Memory per connection is bounded: the input buffer is capped by a read high-watermark, request
 * bodies are consumed as they arrive (only /echo keeps them), and /bytes refills the output only
 * when it drains below a low watermark.
 *
 * It is a test tool: parsing is minimal and lenient, never meant to judge a proxy's HTTP. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEAD_BYTES  (64 * 1024)
#define READ_HIGH_WATER (256 * 1024)
#define BYTES_LOW_WATER (64 * 1024)
#define BYTES_REFILL    (256 * 1024)
#define PATTERN_PERIOD  26

static const char *g_id = "upstream";
static long g_fail_status; /* --fail-status: answer every request but /stats with this status */
static uint64_t g_connections;
static uint64_t g_requests;
static struct event_base *g_base;
static SSL_CTX *g_tls; /* --tls-cert: serve HTTPS */

/* Misbehaviour switched on at run time through /control/..., to test health checking: every other
 * request is answered 503, reset, or delayed. */
typedef enum {
    MODE_NORMAL,
    MODE_FAIL,
    MODE_RESET,
    MODE_SLOW,
} mode_t_;
static mode_t_ g_mode = MODE_NORMAL;
static long g_slow_ms;

static const char *usage_text =
    "usage: remora-test-upstream --listen 127.0.0.1:PORT [--id NAME] [--port-file PATH]\n"
    "                            [--fail-status CODE]\n"
    "                            [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]\n"
    "\n"
    "A minimal HTTP/1.1 origin server for remora's integration tests. PORT may be 0; the bound\n"
    "port is written to --port-file (atomically, via rename) once listening.\n"
    "Every response carries x-upstream-id: NAME and x-upstream-conn: <connection serial>.\n"
    "\n"
    "Routes (query ignored unless noted):\n"
    "  /echo           200, body = request body (CL in -> CL out, chunked in -> chunked out)\n"
    "  /headers        200, body = the request line and header lines exactly as received\n"
    "  /status/CODE    that status, small body\n"
    "  /delay/MS       200 after MS milliseconds\n"
    "  /bytes/N        200 with N pattern bytes (byte i = 'a' + i %% 26), streamed with backpressure;\n"
    "                  ?chunked=1 uses chunked encoding; ?chunked=1&trailers=1 also ends it with the\n"
    "                  trailer x-bytes-sent: N\n"
    "  /sink           consumes the body; 200 \"<bytes> <1 if body is the pattern else 0>\"\n"
    "  /close-mid      headers with Content-Length: 1000, 10 body bytes, then close\n"
    "  /reset          close without a response\n"
    "  /garbage        \"NOT HTTP AT ALL\\r\\n\\r\\n\" then close\n"
    "  /stats          200 \"connections <accepted> requests <total>\"\n"
    "  /control/fail   from now on answer every other request with 503\n"
    "  /control/reset  from now on close every other request's connection without a response\n"
    "  /control/slow/MS  from now on delay every other request by MS milliseconds (200 after it)\n"
    "  /control/normal back to normal; the control routes always answer 200\n"
    "  /tls            200 \"sni=<name|-> client=<subject CN|-> alpn=<protocol|->\" (TLS mode)\n"
    "  anything else   404\n"
    "\n"
    "With --tls-cert/--tls-key it speaks HTTPS only; --tls-client-ca also requires a client\n"
    "certificate signed by that CA.\n"
    "With --fail-status CODE every request except /stats is answered like /status/CODE.\n";

typedef enum {
    ST_HEAD,    /* waiting for / parsing a request head */
    ST_BODY,    /* consuming a request body */
    ST_DELAY,   /* response timer armed */
    ST_STREAM,  /* generating /bytes output */
    ST_CLOSING, /* flush the output, then close */
} conn_state_t;

typedef enum {
    BODY_NONE,
    BODY_CL,
    BODY_CHUNK_SIZE, /* reading a chunk-size line */
    BODY_CHUNK_DATA, /* inside chunk data */
    BODY_CHUNK_CRLF, /* the CRLF after chunk data */
    BODY_TRAILERS,   /* trailer section until an empty line */
    BODY_DONE,
} body_state_t;

typedef enum {
    R_ECHO,
    R_HEADERS,
    R_STATUS,
    R_DELAY,
    R_BYTES,
    R_SINK,
    R_CLOSE_MID,
    R_RESET,
    R_GARBAGE,
    R_STATS,
    R_TLS,
    R_NOT_FOUND,
} route_t;

typedef struct conn {
    struct bufferevent *bev;
    uint64_t serial;
    conn_state_t state;
    bool peer_eof;

    /* current request */
    char method[16];
    route_t route;
    long arg;             /* status code, delay ms */
    uint64_t bytes_total; /* /bytes/N */
    bool chunked_out;     /* /bytes?chunked=1 */
    bool trailers_out;    /* /bytes?chunked=1&trailers=1 */
    bool head_request;
    bool close_after; /* Connection: close or HTTP/1.0 */
    char *raw_head;   /* request line + header lines as received (without the final CRLF) */
    size_t raw_head_len;

    body_state_t body_state;
    bool req_chunked;
    bool req_has_cl;
    uint64_t body_remaining; /* CL left, or chunk bytes left */
    uint64_t body_received;
    bool body_pattern_ok;
    struct evbuffer *echo_body;

    uint64_t stream_sent;
    struct event *timer;
} conn_t;

static void conn_process(conn_t *c);

static void conn_free(conn_t *c)
{
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->echo_body != NULL)
        evbuffer_free(c->echo_body);
    free(c->raw_head);
    bufferevent_free(c->bev);
    free(c);
}

static const char *reason_phrase(long code)
{
    switch (code) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* The pattern repeated, so that any window of BYTES_REFILL bytes at any offset is one memcpy. */
static char g_pattern[BYTES_REFILL + PATTERN_PERIOD];

static void pattern_init(void)
{
    for (size_t i = 0; i < sizeof(g_pattern); i++)
        g_pattern[i] = (char)('a' + i % PATTERN_PERIOD);
}

static bool check_pattern(const unsigned char *p, size_t len, uint64_t offset)
{
    while (len > 0) {
        size_t n = len < BYTES_REFILL ? len : BYTES_REFILL;
        if (memcmp(p, g_pattern + offset % PATTERN_PERIOD, n) != 0)
            return false;
        p += n;
        offset += n;
        len -= n;
    }
    return true;
}

/* Writes the status line and the common headers; the caller adds framing headers and the CRLF. */
static void write_status_line(conn_t *c, long code)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %ld %s\r\nx-upstream-id: %s\r\nx-upstream-conn: %" PRIu64 "\r\n", code,
                        reason_phrase(code), g_id, c->serial);
    if (c->close_after)
        evbuffer_add_printf(out, "connection: close\r\n");
}

/* A complete response with a Content-Length body (omitted for HEAD and bodiless statuses). */
static void respond_simple(conn_t *c, long code, const void *body, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    write_status_line(c, code);
    bool bodiless_status = code == 204 || code == 304 || (code >= 100 && code < 200);
    if (!bodiless_status)
        evbuffer_add_printf(out, "content-length: %zu\r\ncontent-type: text/plain\r\n", len);
    evbuffer_add(out, "\r\n", 2);
    if (!bodiless_status && !c->head_request && len > 0)
        evbuffer_add(out, body, len);
}

static void request_reset(conn_t *c)
{
    free(c->raw_head);
    c->raw_head = NULL;
    c->raw_head_len = 0;
    if (c->echo_body != NULL) {
        evbuffer_free(c->echo_body);
        c->echo_body = NULL;
    }
    c->body_state = BODY_NONE;
    c->req_chunked = false;
    c->req_has_cl = false;
    c->body_remaining = 0;
    c->body_received = 0;
    c->body_pattern_ok = true;
    c->head_request = false;
    c->close_after = false;
    c->chunked_out = false;
    c->trailers_out = false;
    c->stream_sent = 0;
    c->bytes_total = 0;
}

/* The response of the current request is fully queued: close or go on with the next request. */
static void response_done(conn_t *c)
{
    if (c->close_after) {
        c->state = ST_CLOSING;
        /* conn_process / write callback closes once the output has drained */
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            conn_free(c);
        }
        return;
    }
    request_reset(c);
    c->state = ST_HEAD;
    conn_process(c);
}

static void close_after_flush(conn_t *c)
{
    c->close_after = true;
    c->state = ST_CLOSING;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
}

/* ---- request head parsing ---- */

static bool header_name_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

static bool value_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    const char *p = v;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0)
            return true;
    }
    return false;
}

static void route_request(conn_t *c, const char *target)
{
    char path[1024];
    const char *q = strchr(target, '?');
    size_t plen = q != NULL ? (size_t)(q - target) : strlen(target);
    if (plen >= sizeof(path))
        plen = sizeof(path) - 1;
    memcpy(path, target, plen);
    path[plen] = '\0';
    const char *query = q != NULL ? q + 1 : "";

    c->route = R_NOT_FOUND;
    if (g_fail_status != 0 && strcmp(path, "/stats") != 0) {
        c->route = R_STATUS;
        c->arg = g_fail_status;
        return;
    }
    if (strcmp(path, "/echo") == 0) {
        c->route = R_ECHO;
    } else if (strcmp(path, "/headers") == 0) {
        c->route = R_HEADERS;
    } else if (strncmp(path, "/status/", 8) == 0) {
        char *end;
        long code = strtol(path + 8, &end, 10);
        if (*end == '\0' && code >= 100 && code <= 999) {
            c->route = R_STATUS;
            c->arg = code;
        }
    } else if (strncmp(path, "/delay/", 7) == 0) {
        char *end;
        long ms = strtol(path + 7, &end, 10);
        if (*end == '\0' && ms >= 0) {
            c->route = R_DELAY;
            c->arg = ms;
        }
    } else if (strncmp(path, "/bytes/", 7) == 0) {
        char *end;
        unsigned long long n = strtoull(path + 7, &end, 10);
        if (*end == '\0') {
            c->route = R_BYTES;
            c->bytes_total = n;
            c->chunked_out = strstr(query, "chunked=1") != NULL;
            c->trailers_out = c->chunked_out && strstr(query, "trailers=1") != NULL;
        }
    } else if (strcmp(path, "/sink") == 0) {
        c->route = R_SINK;
    } else if (strcmp(path, "/close-mid") == 0) {
        c->route = R_CLOSE_MID;
    } else if (strcmp(path, "/reset") == 0) {
        c->route = R_RESET;
    } else if (strcmp(path, "/garbage") == 0) {
        c->route = R_GARBAGE;
    } else if (strcmp(path, "/stats") == 0) {
        c->route = R_STATS;
    } else if (strcmp(path, "/tls") == 0) {
        c->route = R_TLS;
    }
    if (strncmp(path, "/control/", 9) == 0) {
        const char *m = path + 9;
        char *end;
        c->route = R_STATUS;
        c->arg = 200;
        if (strcmp(m, "fail") == 0) {
            g_mode = MODE_FAIL;
        } else if (strcmp(m, "reset") == 0) {
            g_mode = MODE_RESET;
        } else if (strcmp(m, "normal") == 0) {
            g_mode = MODE_NORMAL;
        } else if (strncmp(m, "slow/", 5) == 0 && (g_slow_ms = strtol(m + 5, &end, 10)) >= 0 &&
                   *end == '\0') {
            g_mode = MODE_SLOW;
        } else {
            c->route = R_NOT_FOUND;
        }
        fprintf(stderr, "%s: mode %d\n", g_id, (int)g_mode);
        return;
    }
    if (g_mode == MODE_FAIL) {
        c->route = R_STATUS;
        c->arg = 503;
    } else if (g_mode == MODE_RESET) {
        c->route = R_RESET;
    } else if (g_mode == MODE_SLOW) {
        c->route = R_DELAY;
        c->arg = g_slow_ms;
    }
}

/* Parses the head in raw_head. Returns false for a head it cannot make sense of. */
static bool parse_head(conn_t *c)
{
    char *head = c->raw_head;
    char *line_end = strstr(head, "\r\n");
    size_t line_len = line_end != NULL ? (size_t)(line_end - head) : strlen(head);

    /* request line: METHOD SP TARGET SP VERSION */
    char line[8192];
    if (line_len >= sizeof(line))
        return false;
    memcpy(line, head, line_len);
    line[line_len] = '\0';
    char *sp1 = strchr(line, ' ');
    if (sp1 == NULL)
        return false;
    *sp1 = '\0';
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (sp2 == NULL)
        return false;
    *sp2 = '\0';
    const char *version = sp2 + 1;
    size_t mlen = strnlen(line, sizeof(c->method) - 1);
    memcpy(c->method, line, mlen);
    c->method[mlen] = '\0';
    c->head_request = strcmp(line, "HEAD") == 0;
    bool http10 = strcmp(version, "HTTP/1.0") == 0;
    bool keep_alive_10 = false;
    route_request(c, target);

    uint64_t cl = 0;
    const char *p = line_end != NULL ? line_end + 2 : head + line_len;
    while (*p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (colon != NULL) {
            size_t name_len = (size_t)(colon - p);
            const char *v = colon + 1;
            while (v < p + len && (*v == ' ' || *v == '\t'))
                v++;
            char value[4096];
            size_t vlen = (size_t)(p + len - v);
            if (vlen >= sizeof(value))
                vlen = sizeof(value) - 1;
            memcpy(value, v, vlen);
            value[vlen] = '\0';
            if (header_name_is(p, name_len, "content-length")) {
                c->req_has_cl = true;
                cl = strtoull(value, NULL, 10);
            } else if (header_name_is(p, name_len, "transfer-encoding")) {
                if (value_has_token(value, "chunked"))
                    c->req_chunked = true;
            } else if (header_name_is(p, name_len, "connection")) {
                if (value_has_token(value, "close"))
                    c->close_after = true;
                if (value_has_token(value, "keep-alive"))
                    keep_alive_10 = true;
            } else if (header_name_is(p, name_len, "expect")) {
                if (strcasecmp(value, "100-continue") == 0)
                    evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
            }
        }
        if (eol == NULL)
            break;
        p = eol + 2;
    }
    if (http10 && !keep_alive_10)
        c->close_after = true;

    if (c->req_chunked) {
        c->body_state = BODY_CHUNK_SIZE;
    } else if (c->req_has_cl && cl > 0) {
        c->body_state = BODY_CL;
        c->body_remaining = cl;
    } else {
        c->body_state = BODY_DONE;
    }
    if (c->route == R_ECHO)
        c->echo_body = evbuffer_new();
    return true;
}

/* ---- request body ---- */

static void body_data(conn_t *c, struct evbuffer *in, size_t n)
{
    if (c->route == R_ECHO) {
        evbuffer_remove_buffer(in, c->echo_body, n);
    } else if (c->route == R_SINK) {
        while (n > 0) {
            struct evbuffer_iovec vec;
            if (evbuffer_peek(in, (ev_ssize_t)n, NULL, &vec, 1) < 1)
                break;
            size_t take = vec.iov_len < n ? vec.iov_len : n;
            if (c->body_pattern_ok && !check_pattern(vec.iov_base, take, c->body_received))
                c->body_pattern_ok = false;
            evbuffer_drain(in, take);
            c->body_received += take;
            n -= take;
        }
        return;
    } else {
        evbuffer_drain(in, n);
    }
    c->body_received += n;
}

/* Consumes what it can of the body. Returns 1 when the body is complete, 0 when it needs more
 * input, -1 on a malformed chunked body. */
static int body_consume(conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        switch (c->body_state) {
        case BODY_NONE:
        case BODY_DONE:
            return 1;
        case BODY_CL:
        case BODY_CHUNK_DATA: {
            size_t avail = evbuffer_get_length(in);
            if (avail == 0)
                return 0;
            size_t n = avail < c->body_remaining ? avail : (size_t)c->body_remaining;
            body_data(c, in, n);
            c->body_remaining -= n;
            if (c->body_remaining == 0)
                c->body_state = c->body_state == BODY_CL ? BODY_DONE : BODY_CHUNK_CRLF;
            break;
        }
        case BODY_CHUNK_SIZE: {
            size_t len;
            char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
            if (line == NULL)
                return evbuffer_get_length(in) > 1024 ? -1 : 0;
            char *end;
            errno = 0;
            unsigned long long sz = strtoull(line, &end, 16);
            bool bad = end == line || errno != 0 || (*end != '\0' && *end != ';' && *end != ' ');
            free(line);
            if (bad)
                return -1;
            c->body_remaining = sz;
            c->body_state = sz == 0 ? BODY_TRAILERS : BODY_CHUNK_DATA;
            break;
        }
        case BODY_CHUNK_CRLF: {
            if (evbuffer_get_length(in) < 2)
                return 0;
            char crlf[2];
            evbuffer_remove(in, crlf, 2);
            if (crlf[0] != '\r' || crlf[1] != '\n')
                return -1;
            c->body_state = BODY_CHUNK_SIZE;
            break;
        }
        case BODY_TRAILERS: {
            size_t len;
            char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
            if (line == NULL)
                return evbuffer_get_length(in) > MAX_HEAD_BYTES ? -1 : 0;
            free(line);
            if (len == 0)
                c->body_state = BODY_DONE;
            break;
        }
        }
    }
}

/* ---- responses ---- */

static void stream_refill(conn_t *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (c->stream_sent < c->bytes_total && evbuffer_get_length(out) < BYTES_REFILL) {
        uint64_t left = c->bytes_total - c->stream_sent;
        size_t n = left < BYTES_REFILL ? (size_t)left : BYTES_REFILL;
        if (c->chunked_out)
            evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add(out, g_pattern + c->stream_sent % PATTERN_PERIOD, n);
        if (c->chunked_out)
            evbuffer_add(out, "\r\n", 2);
        c->stream_sent += n;
    }
    if (c->stream_sent >= c->bytes_total) {
        if (c->trailers_out)
            evbuffer_add_printf(out, "0\r\nx-bytes-sent: %" PRIu64 "\r\n\r\n", c->stream_sent);
        else if (c->chunked_out)
            evbuffer_add(out, "0\r\n\r\n", 5);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        response_done(c);
    }
}

static void start_bytes(conn_t *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    write_status_line(c, 200);
    if (c->chunked_out)
        evbuffer_add_printf(out, "transfer-encoding: chunked\r\n");
    else
        evbuffer_add_printf(out, "content-length: %" PRIu64 "\r\n", c->bytes_total);
    evbuffer_add_printf(out, "content-type: application/octet-stream\r\n\r\n");
    if (c->head_request) {
        response_done(c);
        return;
    }
    c->state = ST_STREAM;
    bufferevent_setwatermark(c->bev, EV_WRITE, BYTES_LOW_WATER, 0);
    stream_refill(c);
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;
    char body[64];
    int n = snprintf(body, sizeof(body), "delayed %ld\n", c->arg);
    respond_simple(c, 200, body, (size_t)n);
    response_done(c);
}

/* The request (head and body) is complete: respond. */
static void respond(conn_t *c)
{
    char body[256];
    int n;
    switch (c->route) {
    case R_ECHO: {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        size_t len = evbuffer_get_length(c->echo_body);
        write_status_line(c, 200);
        if (c->req_chunked) {
            evbuffer_add_printf(
                out, "transfer-encoding: chunked\r\ncontent-type: application/octet-stream\r\n\r\n");
            if (!c->head_request) {
                if (len > 0) {
                    evbuffer_add_printf(out, "%zx\r\n", len);
                    evbuffer_add_buffer(out, c->echo_body);
                    evbuffer_add(out, "\r\n", 2);
                }
                evbuffer_add(out, "0\r\n\r\n", 5);
            }
        } else {
            evbuffer_add_printf(out, "content-length: %zu\r\ncontent-type: application/octet-stream\r\n\r\n",
                                len);
            if (!c->head_request)
                evbuffer_add_buffer(out, c->echo_body);
        }
        response_done(c);
        return;
    }
    case R_HEADERS: {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        write_status_line(c, 200);
        evbuffer_add_printf(out, "content-length: %zu\r\ncontent-type: text/plain\r\n\r\n", c->raw_head_len);
        if (!c->head_request)
            evbuffer_add(out, c->raw_head, c->raw_head_len);
        response_done(c);
        return;
    }
    case R_STATUS:
        n = snprintf(body, sizeof(body), "status %ld\n", c->arg);
        respond_simple(c, c->arg, body, (size_t)n);
        response_done(c);
        return;
    case R_DELAY: {
        struct timeval tv = {.tv_sec = c->arg / 1000, .tv_usec = (c->arg % 1000) * 1000};
        if (c->timer == NULL)
            c->timer = evtimer_new(g_base, delay_cb, c);
        c->state = ST_DELAY;
        evtimer_add(c->timer, &tv);
        return;
    }
    case R_BYTES:
        start_bytes(c);
        return;
    case R_SINK:
        n = snprintf(body, sizeof(body), "%" PRIu64 " %d", c->body_received, c->body_pattern_ok ? 1 : 0);
        respond_simple(c, 200, body, (size_t)n);
        response_done(c);
        return;
    case R_CLOSE_MID: {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        write_status_line(c, 200);
        evbuffer_add_printf(out, "content-length: 1000\r\ncontent-type: text/plain\r\n\r\n0123456789");
        close_after_flush(c);
        return;
    }
    case R_RESET:
        conn_free(c);
        return;
    case R_TLS: {
        SSL *ssl = g_tls != NULL ? bufferevent_openssl_get_ssl(c->bev) : NULL;
        const char *sni = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
        char cn[256] = "-";
        X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
        if (peer != NULL)
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
        const unsigned char *alpn = NULL;
        unsigned int alpn_len = 0;
        if (ssl)
            SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
        char info[768];
        int len = snprintf(info, sizeof(info), "sni=%s client=%s alpn=%.*s", sni ? sni : "-", cn,
                           alpn_len ? (int)alpn_len : 1, alpn_len ? (const char *)alpn : "-");
        respond_simple(c, 200, info, (size_t)len);
        response_done(c);
        return;
    }
    case R_GARBAGE:
        evbuffer_add_printf(bufferevent_get_output(c->bev), "NOT HTTP AT ALL\r\n\r\n");
        close_after_flush(c);
        return;
    case R_STATS:
        n = snprintf(body, sizeof(body), "connections %" PRIu64 " requests %" PRIu64, g_connections,
                     g_requests);
        respond_simple(c, 200, body, (size_t)n);
        response_done(c);
        return;
    case R_NOT_FOUND:
        n = snprintf(body, sizeof(body), "no such route\n");
        respond_simple(c, 404, body, (size_t)n);
        response_done(c);
        return;
    }
}

static void bad_request(conn_t *c)
{
    c->close_after = true;
    c->head_request = false;
    respond_simple(c, 400, "bad request\n", 12);
    close_after_flush(c);
}

/* Drives the state machine as far as the buffered input allows. May free c. */
static void conn_process(conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        if (c->state == ST_HEAD) {
            /* tolerate stray CRLFs between requests (RFC 9112 section 2.2) */
            while (evbuffer_get_length(in) >= 2) {
                char two[2];
                evbuffer_copyout(in, two, 2);
                if (two[0] != '\r' || two[1] != '\n')
                    break;
                evbuffer_drain(in, 2);
            }
            struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (end.pos < 0) {
                if (evbuffer_get_length(in) > MAX_HEAD_BYTES) {
                    bad_request(c);
                    return;
                }
                break;
            }
            size_t head_len = (size_t)end.pos;
            c->raw_head = malloc(head_len + 1);
            if (c->raw_head == NULL)
                abort();
            evbuffer_remove(in, c->raw_head, head_len);
            c->raw_head[head_len] = '\0';
            c->raw_head_len = head_len;
            evbuffer_drain(in, 4);
            g_requests++;
            if (!parse_head(c)) {
                bad_request(c);
                return;
            }
            c->state = ST_BODY;
        }
        if (c->state == ST_BODY) {
            int r = body_consume(c);
            if (r < 0) {
                bad_request(c);
                return;
            }
            if (r == 0)
                break;
            respond(c); /* may free c, may re-enter conn_process for the next request */
            return;
        }
        /* ST_DELAY, ST_STREAM, ST_CLOSING: leave further input buffered */
        break;
    }
    if (c->peer_eof && c->state == ST_HEAD) {
        /* no complete request can arrive any more */
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_free(c);
        else
            c->state = ST_CLOSING;
    } else if (c->peer_eof && c->state == ST_BODY) {
        conn_free(c); /* truncated body */
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    conn_process(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    if (c->state == ST_STREAM) {
        stream_refill(c);
        return;
    }
    if (c->state == ST_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn_t *c = arg;
    if (what & BEV_EVENT_ERROR) {
        conn_free(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->peer_eof = true;
        /* finish what is buffered (a half-closed client still gets its answers) */
        if (c->state == ST_HEAD || c->state == ST_BODY)
            conn_process(c);
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (g_tls != NULL) {
        SSL *ssl = SSL_new(g_tls);
        c->bev = ssl ? bufferevent_openssl_socket_new(g_base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (c->bev != NULL)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(g_base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL)
        abort();
    c->serial = ++g_connections;
    c->state = ST_HEAD;
    c->body_pattern_ok = true;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATER);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Accepts http/1.1 when offered (so tests can see what a client offered). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
    for (unsigned int i = 0; i + 1 <= inlen && i + 1u + in[i] <= inlen; i += 1u + in[i]) {
        if (in[i] == 8 && memcmp(&in[i + 1], "http/1.1", 8) == 0) {
            *out = &in[i + 1];
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(g_base, NULL);
}

/* "IPv4:PORT" with PORT 0 allowed (evutil_parse_sockaddr_port refuses port 0). */
static int parse_listen(const char *text, struct sockaddr_in *sin)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    const char *listen_addr = NULL;
    const char *port_file = NULL;
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"id", required_argument, NULL, 'i'},
        {"port-file", required_argument, NULL, 'p'},
        {"fail-status", required_argument, NULL, 'f'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"tls-client-ca", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    const char *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
    while ((opt = getopt_long(argc, argv, "l:i:p:f:c:k:a:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            g_fail_status = strtol(optarg, NULL, 10);
            if (g_fail_status < 100 || g_fail_status > 999) {
                fprintf(stderr, "remora-test-upstream: --fail-status wants 100..999\n");
                return 2;
            }
            break;
        case 'l':
            listen_addr = optarg;
            break;
        case 'i':
            g_id = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'c':
            tls_cert = optarg;
            break;
        case 'k':
            tls_key = optarg;
            break;
        case 'a':
            tls_ca = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (listen_addr == NULL) {
        fputs(usage_text, stderr);
        return 2;
    }
    /* die with the test that started us, even if it never gets to kill us */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    pattern_init();

    if (tls_cert != NULL && tls_key != NULL) {
        g_tls = SSL_CTX_new(TLS_server_method());
        if (g_tls == NULL || SSL_CTX_use_certificate_chain_file(g_tls, tls_cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(g_tls, tls_key, SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "remora-test-upstream: cannot load %s / %s\n", tls_cert, tls_key);
            return 1;
        }
        if (tls_ca != NULL) {
            if (SSL_CTX_load_verify_locations(g_tls, tls_ca, NULL) != 1) {
                fprintf(stderr, "remora-test-upstream: cannot load %s\n", tls_ca);
                return 1;
            }
            SSL_CTX_set_verify(g_tls, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
        static const unsigned char sid[] = "upstream";
        SSL_CTX_set_session_id_context(g_tls, sid, sizeof(sid) - 1);
        SSL_CTX_set_alpn_select_cb(g_tls, alpn_cb, NULL);
    }

    struct sockaddr_in sin;
    if (parse_listen(listen_addr, &sin) != 0) {
        fprintf(stderr, "remora-test-upstream: cannot parse --listen %s (want IPv4:PORT)\n", listen_addr);
        return 2;
    }
    g_base = event_base_new();
    if (g_base == NULL)
        return 1;
    struct evconnlistener *l =
        evconnlistener_new_bind(g_base, accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                                (struct sockaddr *)&sin, sizeof(sin));
    if (l == NULL) {
        fprintf(stderr, "remora-test-upstream: cannot listen on %s: %s\n", listen_addr, strerror(errno));
        return 1;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen);
    int port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    if (port_file != NULL && write_port_file(port_file, port) != 0) {
        fprintf(stderr, "remora-test-upstream: cannot write %s: %s\n", port_file, strerror(errno));
        return 1;
    }
    fprintf(stderr, "remora-test-upstream %s listening on port %d\n", g_id, port);

    struct event *sigterm = evsignal_new(g_base, SIGTERM, signal_cb, NULL);
    struct event *sigint = evsignal_new(g_base, SIGINT, signal_cb, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    event_base_dispatch(g_base);
    event_free(sigterm);
    event_free(sigint);
    evconnlistener_free(l);
    event_base_free(g_base);
    SSL_CTX_free(g_tls);
    return 0;
}
