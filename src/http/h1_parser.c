/* Strict HTTP/1.1 head parser and chunked decoder; see h1_parser.h for the contract.
 *
 * Design notes:
 * - One forward pass over the bytes of a head. Every check is made as soon as the bytes it needs are
 *   present, and every decision depends only on the bytes before the current position, so a prefix of
 *   a valid head is always INCOMPLETE and a prefix that already fails fails for good.
 * - The header-section limit is enforced by never looking past max_header_bytes: running out of bytes
 *   there means "too large" when the caller has more, "incomplete" otherwise. That bounds the work per
 *   call and detects oversized heads before they are complete.
 * - Byte classes come from one 256-entry table; the two long runs (request target, field values) are
 *   scanned 16 bytes at a time with SSE2 where available. */
#include "http/h1_parser.h"

#include <limits.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum {
    C_TOKEN = 0x01,  /* tchar (RFC 9110 5.6.2) */
    C_VALUE = 0x02,  /* field-vchar, SP, HTAB: bytes allowed inside a field value or reason phrase */
    C_TARGET = 0x04, /* VCHAR: bytes allowed in a request target */
    C_HEX = 0x08,    /* HEXDIG */
    C_HOST = 0x10,   /* reg-name / IP-literal / port characters allowed in Host */
    C_QDTEXT = 0x20, /* qdtext of a quoted-string */
};

static const uint8_t char_class[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x22, 0x37, 0x06, 0x27, 0x37, 0x37, 0x37, 0x37, 0x36, 0x36, 0x37, 0x37, 0x36, 0x37, 0x37, 0x26,
    0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x36, 0x36, 0x26, 0x36, 0x26, 0x26,
    0x26, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37,
    0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x36, 0x06, 0x36, 0x27, 0x37,
    0x27, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37,
    0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x26, 0x27, 0x26, 0x37, 0x00,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
};

#define IS(c, cls) ((char_class[(unsigned char)(c)] & (cls)) != 0)

/* Internal results of the sub-parsers. */
enum { P_OK = 0, P_MORE = 1, P_ERR = 2 };

void rm_h1_limits_default(rm_h1_limits_t *l)
{
    l->max_request_line = 16384;
    l->max_header_bytes = 60 * 1024;
    l->max_headers = 100;
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline unsigned char to_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* s[0..n) equals the lowercase literal lit[0..lit_len) ignoring ASCII case. */
static bool ci_eq(const char *s, size_t n, const char *lit, size_t lit_len)
{
    if (n != lit_len)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (to_lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return false;
    }
    return true;
}

#define CI_EQ(s, n, lit) ci_eq((s), (n), lit, sizeof(lit) - 1)

/* Both strings arbitrary case. */
static bool ci_eq2(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++) {
        if (to_lower((unsigned char)a[i]) != to_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

/* Index of the first byte in [pos, end) that may not appear in a field value, or end. */
static size_t scan_value(const char *buf, size_t pos, size_t end)
{
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i del = _mm_set1_epi8(0x7f);
    const __m128i zero = _mm_setzero_si128();
    while (end - pos >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(buf + pos));
        /* Signed compares: obs-text (0x80-0xFF) is negative and allowed, so only 0x00-0x1F and DEL
         * are flagged. HTAB is flagged too and handled below because it is rare. */
        __m128i ctl = _mm_andnot_si128(_mm_cmplt_epi8(x, zero), _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(x, del)));
        if (mask == 0) {
            pos += 16;
            continue;
        }
        size_t i = pos + (size_t)__builtin_ctz((unsigned)mask);
        if (buf[i] != '\t')
            return i;
        pos = i + 1;
    }
#endif
    while (pos < end && IS(buf[pos], C_VALUE))
        pos++;
    return pos;
}

/* Index of the first byte in [pos, end) that may not appear in a request target, or end. */
static size_t scan_target(const char *buf, size_t pos, size_t end)
{
#if defined(__SSE2__)
    const __m128i excl = _mm_set1_epi8(0x21);
    const __m128i del = _mm_set1_epi8(0x7f);
    while (end - pos >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(buf + pos));
        /* Signed compare: bytes >= 0x80 are negative, so "< 0x21" flags CTLs, SP and non-ASCII. */
        int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(x, excl), _mm_cmpeq_epi8(x, del)));
        if (mask != 0)
            return pos + (size_t)__builtin_ctz((unsigned)mask);
        pos += 16;
    }
#endif
    while (pos < end && IS(buf[pos], C_TARGET))
        pos++;
    return pos;
}

/* Splits a list-valued field at commas outside quoted strings. Yields each element with OWS trimmed
 * (possibly empty); *pos starts at 0. Returns false when the list is exhausted. An unterminated
 * quoted string simply runs to the end and is rejected by the element's own syntax check. */
static bool next_element(const char *v, size_t n, size_t *pos, const char **elem, size_t *elem_len)
{
    size_t i = *pos;
    if (i > n)
        return false;
    size_t start = i;
    bool quoted = false;
    for (; i < n; i++) {
        char c = v[i];
        if (quoted) {
            if (c == '\\' && i + 1 < n)
                i++;
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            break;
        }
    }
    *pos = i + 1;
    size_t e = i;
    while (start < e && is_ows(v[start]))
        start++;
    while (e > start && is_ows(v[e - 1]))
        e--;
    *elem = v + start;
    *elem_len = e - start;
    return true;
}

/* s[i] is the opening quote. Returns the index after the closing quote, or SIZE_MAX if malformed. */
static size_t skip_quoted_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        char c = s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            if (i + 1 >= n || !IS(s[i + 1], C_VALUE))
                return SIZE_MAX;
            i++;
        } else if (!IS(c, C_QDTEXT)) {
            return SIZE_MAX;
        }
    }
    return SIZE_MAX;
}

/* Validates *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ), the shared shape of
 * transfer-coding parameters (value required) and chunk extensions (value optional). Nothing may
 * follow the last parameter. */
static bool valid_params(const char *s, size_t n, bool value_required)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && is_ows(s[i]))
            i++;
        if (i == n || s[i] != ';')
            return false;
        i++;
        while (i < n && is_ows(s[i]))
            i++;
        size_t name = i;
        while (i < n && IS(s[i], C_TOKEN))
            i++;
        if (i == name)
            return false;
        size_t j = i;
        while (j < n && is_ows(s[j]))
            j++;
        if (j < n && s[j] == '=') {
            i = j + 1;
            while (i < n && is_ows(s[i]))
                i++;
            if (i < n && s[i] == '"') {
                i = skip_quoted_string(s, i, n);
                if (i == SIZE_MAX)
                    return false;
            } else {
                size_t val = i;
                while (i < n && IS(s[i], C_TOKEN))
                    i++;
                if (i == val)
                    return false;
            }
        } else if (value_required) {
            return false;
        }
    }
    return true;
}

/* Parses one field line at buf[*pos] (the caller has checked that it is not the blank line) up to
 * end. On P_OK fills *h and moves *pos past the line's CRLF. */
static int parse_field_line(const char *buf, size_t *ppos, size_t end, rm_h1_header_t *h, const char **err)
{
    size_t pos = *ppos;
    char c = buf[pos];
    if (c == '\n') {
        *err = "bare LF";
        return P_ERR;
    }
    if (is_ows(c)) {
        /* obs-fold, or whitespace before the first field: both rejected (RFC 9112 5.2 and 2.2). */
        *err = "obsolete line folding";
        return P_ERR;
    }
    size_t name = pos;
    while (pos < end && IS(buf[pos], C_TOKEN))
        pos++;
    if (pos == end)
        return P_MORE;
    c = buf[pos];
    if (c != ':') {
        if (is_ows(c))
            *err = "whitespace before colon";
        else if (c == '\r' || c == '\n')
            *err = "header line without colon";
        else
            *err = "invalid header name";
        return P_ERR;
    }
    if (pos == name) {
        *err = "empty header name";
        return P_ERR;
    }
    h->name = buf + name;
    h->name_len = pos - name;
    pos++;
    while (pos < end && is_ows(buf[pos]))
        pos++;
    size_t value = pos;
    pos = scan_value(buf, pos, end);
    if (pos == end)
        return P_MORE;
    c = buf[pos];
    if (c == '\r') {
        if (pos + 1 == end)
            return P_MORE;
        if (buf[pos + 1] != '\n') {
            *err = "bare CR";
            return P_ERR;
        }
    } else if (c == '\n') {
        *err = "bare LF";
        return P_ERR;
    } else {
        *err = "invalid character in header value";
        return P_ERR;
    }
    size_t vend = pos;
    while (vend > value && is_ows(buf[vend - 1]))
        vend--;
    h->value = buf + value;
    h->value_len = vend - value;
    *ppos = pos + 2;
    return P_OK;
}

/* What the framing-relevant fields of one head said so far. */
typedef struct {
    const char *error;
    int status;
    bool is_request;
    bool has_cl;
    bool has_te;
    bool te_last_chunked;
    bool te_other;
    bool conn_close;
    bool conn_keep_alive;
    bool conn_upgrade;
    bool has_upgrade;
    bool expect_continue;
    unsigned te_chunked;
    unsigned host_count;
    uint64_t content_length;
    const char *host;
    size_t host_len;
} head_state_t;

static int fail(head_state_t *st, int status, const char *error)
{
    st->status = status;
    st->error = error;
    return P_ERR;
}

/* Content-Length: 1*DIGIT, or a list of identical values (RFC 9110 8.6); every occurrence in the
 * head must carry the same number. */
static int on_content_length(head_state_t *st, const char *v, size_t n)
{
    size_t pos = 0;
    const char *e;
    size_t el;
    while (next_element(v, n, &pos, &e, &el)) {
        if (el == 0)
            return fail(st, 400, "invalid content-length");
        uint64_t x = 0;
        for (size_t i = 0; i < el; i++) {
            unsigned d = (unsigned)(unsigned char)e[i] - '0';
            if (d > 9)
                return fail(st, 400, "invalid content-length");
            if (x > (UINT64_MAX - d) / 10)
                return fail(st, 400, "content-length overflow");
            x = x * 10 + d;
        }
        if (st->has_cl && st->content_length != x)
            return fail(st, 400, "conflicting content-length");
        st->has_cl = true;
        st->content_length = x;
    }
    return P_OK;
}

/* Transfer-Encoding: a list of codings; repeated fields continue the same list. Only the order and
 * the names matter for framing; the verdict is made once the head is complete. */
static int on_transfer_encoding(head_state_t *st, const char *v, size_t n)
{
    size_t pos = 0;
    const char *e;
    size_t el;
    bool any = false;
    st->has_te = true;
    while (next_element(v, n, &pos, &e, &el)) {
        if (el == 0)
            continue; /* empty list elements are ignored (RFC 9110 5.6.1) */
        size_t i = 0;
        while (i < el && IS(e[i], C_TOKEN))
            i++;
        if (i == 0)
            return fail(st, 400, "invalid transfer-encoding");
        bool chunked = CI_EQ(e, i, "chunked");
        if (i < el && (chunked || !valid_params(e + i, el - i, true)))
            return fail(st, 400, "invalid transfer-encoding");
        if (chunked) {
            st->te_chunked++;
        } else {
            st->te_other = true;
        }
        st->te_last_chunked = chunked;
        any = true;
    }
    if (!any)
        return fail(st, 400, "invalid transfer-encoding");
    return P_OK;
}

static int on_connection(head_state_t *st, const char *v, size_t n)
{
    size_t pos = 0;
    const char *e;
    size_t el;
    while (next_element(v, n, &pos, &e, &el)) {
        if (el == 0)
            continue;
        for (size_t i = 0; i < el; i++) {
            if (!IS(e[i], C_TOKEN))
                return fail(st, 400, "invalid connection header");
        }
        if (CI_EQ(e, el, "close"))
            st->conn_close = true;
        else if (CI_EQ(e, el, "keep-alive"))
            st->conn_keep_alive = true;
        else if (CI_EQ(e, el, "upgrade"))
            st->conn_upgrade = true;
    }
    return P_OK;
}

static int on_host(head_state_t *st, const char *v, size_t n)
{
    if (++st->host_count > 1)
        return fail(st, 400, "multiple host headers");
    /* Only authority characters: a Host with '/', '@', spaces or the like would be routed on text
     * that the next hop may read differently. An empty Host is legal (RFC 9112 3.2). */
    for (size_t i = 0; i < n; i++) {
        if (!IS(v[i], C_HOST))
            return fail(st, 400, "invalid host header");
    }
    st->host = v;
    st->host_len = n;
    return P_OK;
}

/* Dispatches on the length first, so most fields cost one switch. */
static int on_field(head_state_t *st, const rm_h1_header_t *h)
{
    const char *name = h->name;
    switch (h->name_len) {
    case 4:
        if (st->is_request && CI_EQ(name, 4, "host"))
            return on_host(st, h->value, h->value_len);
        break;
    case 6:
        if (st->is_request && CI_EQ(name, 6, "expect") && CI_EQ(h->value, h->value_len, "100-continue"))
            st->expect_continue = true;
        break;
    case 7:
        if (CI_EQ(name, 7, "upgrade"))
            st->has_upgrade = true;
        break;
    case 10:
        if (CI_EQ(name, 10, "connection"))
            return on_connection(st, h->value, h->value_len);
        break;
    case 14:
        if (CI_EQ(name, 14, "content-length"))
            return on_content_length(st, h->value, h->value_len);
        break;
    case 17:
        if (CI_EQ(name, 17, "transfer-encoding"))
            return on_transfer_encoding(st, h->value, h->value_len);
        break;
    default:
        break;
    }
    return P_OK;
}

/* Parses field lines from *ppos through the blank line. */
static int parse_fields(const char *buf, size_t *ppos, size_t end, rm_h1_header_t *headers, size_t max_fields,
                        size_t *num, head_state_t *st)
{
    size_t pos = *ppos;
    for (;;) {
        if (pos >= end)
            return P_MORE;
        if (buf[pos] == '\r') {
            if (pos + 1 >= end)
                return P_MORE;
            if (buf[pos + 1] != '\n')
                return fail(st, 400, "bare CR");
            *ppos = pos + 2;
            return P_OK;
        }
        rm_h1_header_t h;
        int r = parse_field_line(buf, &pos, end, &h, &st->error);
        if (r == P_ERR)
            st->status = 400;
        if (r != P_OK)
            return r;
        if (*num >= max_fields)
            return fail(st, 431, "too many header fields");
        headers[(*num)++] = h;
        if (on_field(st, &h) != P_OK)
            return P_ERR;
    }
}

/* Skips the empty lines allowed before a start line (RFC 9112 2.2). */
static int skip_empty_lines(const char *buf, size_t *ppos, size_t end, head_state_t *st)
{
    size_t pos = *ppos;
    while (pos < end && buf[pos] == '\r') {
        if (pos + 1 >= end)
            return P_MORE;
        if (buf[pos + 1] != '\n')
            return fail(st, 400, "bare CR");
        pos += 2;
    }
    if (pos >= end)
        return P_MORE;
    if (buf[pos] == '\n')
        return fail(st, 400, "bare LF");
    *ppos = pos;
    return P_OK;
}

static size_t head_cap(const rm_h1_limits_t *limits)
{
    return limits->max_header_bytes < (size_t)INT_MAX ? limits->max_header_bytes : (size_t)INT_MAX;
}

static bool is_absolute_http_uri(const char *t, size_t n)
{
    size_t s;
    if (n > 7 && CI_EQ(t, 4, "http") && memcmp(t + 4, "://", 3) == 0)
        s = 7;
    else if (n > 8 && CI_EQ(t, 5, "https") && memcmp(t + 5, "://", 3) == 0)
        s = 8;
    else
        return false;
    /* A non-empty authority of host characters; userinfo ("user@") is refused as RFC 9110 4.2.4
     * recommends, since a "user@host" target reads as two different hosts to lax parsers. */
    size_t e = s;
    while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#') {
        if (!IS(t[e], C_HOST))
            return false;
        e++;
    }
    return e > s;
}

/* Parses the request line starting at buf[pos] (not CR/LF). */
static int parse_request_line(const char *buf, size_t *ppos, size_t end, const rm_h1_limits_t *limits,
                              rm_h1_request_t *out, head_state_t *st)
{
    size_t line = *ppos;
    size_t max_line = limits->max_request_line;
    size_t avail = end - line;
    /* Only look for the LF where a line within the limit could end (content, CR, LF). */
    size_t window = max_line < SIZE_MAX - 2 && avail > max_line + 2 ? max_line + 2 : avail;
    const char *lf = memchr(buf + line, '\n', window);
    if (lf == NULL) {
        /* More than max_line bytes without a line end: too long, unless the last byte is a CR that
         * may still be followed by LF. */
        if (avail > max_line && !(avail == max_line + 1 && buf[end - 1] == '\r'))
            return fail(st, 414, "request line too long");
        return P_MORE;
    }
    size_t eol = (size_t)(lf - buf);
    if (buf[eol - 1] != '\r')
        return fail(st, 400, "bare LF");
    size_t cr = eol - 1;

    size_t i = line;
    while (IS(buf[i], C_TOKEN))
        i++;
    if (i == line || buf[i] != ' ')
        return fail(st, 400, "invalid method");
    out->method = buf + line;
    out->method_len = i - line;

    size_t target = i + 1;
    size_t tend = scan_target(buf, target, cr);
    if (tend == target)
        return fail(st, 400, "invalid request target");
    if (tend == cr)
        return fail(st, 400, "missing HTTP version");
    if (buf[tend] != ' ')
        return fail(st, 400, "invalid character in request target");
    out->target = buf + target;
    out->target_len = tend - target;

    const char *v = buf + tend + 1;
    size_t vlen = cr - (tend + 1);
    if (vlen == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '0' || v[7] == '1')) {
        out->version_minor = v[7] - '0';
    } else if (vlen == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
               v[7] >= '0' && v[7] <= '9') {
        return fail(st, 505, "unsupported HTTP version");
    } else {
        return fail(st, 400, "invalid HTTP version");
    }

    /* Methods are case-sensitive; only the exact CONNECT tunnels. */
    if (out->method_len == 7 && memcmp(out->method, "CONNECT", 7) == 0)
        return fail(st, 501, "CONNECT not supported");
    const char *t = out->target;
    size_t tl = out->target_len;
    if (t[0] == '/') {
        /* origin-form */
    } else if (tl == 1 && t[0] == '*') {
        if (out->method_len != 7 || memcmp(out->method, "OPTIONS", 7) != 0)
            return fail(st, 400, "asterisk-form target outside OPTIONS");
    } else if (!is_absolute_http_uri(t, tl)) {
        return fail(st, 400, "invalid request target");
    }
    *ppos = eol + 1;
    return P_OK;
}

static int request_error(rm_h1_request_t *out, const head_state_t *st)
{
    out->error_status = st->status;
    out->error = st->error;
    return RM_H1_ERROR;
}

int rm_h1_parse_request(const char *buf, size_t len, const rm_h1_limits_t *limits, rm_h1_header_t *headers,
                        size_t headers_cap, rm_h1_request_t *out)
{
    rm_h1_limits_t defaults;
    if (limits == NULL) {
        rm_h1_limits_default(&defaults);
        limits = &defaults;
    }
    memset(out, 0, sizeof(*out));
    out->headers = headers;
    head_state_t st;
    memset(&st, 0, sizeof(st));
    st.is_request = true;

    size_t cap = head_cap(limits);
    size_t end = len < cap ? len : cap;
    size_t max_fields = headers_cap < limits->max_headers ? headers_cap : limits->max_headers;
    size_t pos = 0;

    int r = skip_empty_lines(buf, &pos, end, &st);
    if (r == P_OK)
        r = parse_request_line(buf, &pos, end, limits, out, &st);
    if (r == P_OK)
        r = parse_fields(buf, &pos, end, headers, max_fields, &out->num_headers, &st);
    if (r == P_MORE) {
        if (len > cap) {
            st.status = 431;
            st.error = "header section too large";
            return request_error(out, &st);
        }
        return RM_H1_INCOMPLETE;
    }
    if (r == P_ERR)
        return request_error(out, &st);

    bool http11 = out->version_minor == 1;
    if (http11 && st.host_count == 0) {
        fail(&st, 400, "missing host header");
        return request_error(out, &st);
    }
    if (st.has_te) {
        /* RFC 9112 6.1: TE in an HTTP/1.0 message means faulty framing. Only a final, single chunked
         * delimits a request body; CL alongside TE is the classic smuggling vector. */
        if (!http11)
            fail(&st, 400, "transfer-encoding in HTTP/1.0 request");
        else if (st.te_chunked > 1)
            fail(&st, 400, "chunked applied more than once");
        else if (!st.te_last_chunked)
            fail(&st, 400, "transfer-encoding does not end in chunked");
        else if (st.has_cl)
            fail(&st, 400, "both content-length and transfer-encoding");
        else if (st.te_other)
            fail(&st, 501, "unsupported transfer-coding");
        if (st.error != NULL)
            return request_error(out, &st);
        out->body_kind = RM_H1_BODY_CHUNKED;
    } else if (st.has_cl) {
        out->body_kind = RM_H1_BODY_LENGTH;
        out->content_length = st.content_length;
    } else {
        out->body_kind = RM_H1_BODY_NONE;
    }
    out->keep_alive = !st.conn_close && (http11 || st.conn_keep_alive);
    /* HTTP/1.0 recipients must ignore Expect: 100-continue and Upgrade (RFC 9110 10.1.1, 7.8). */
    out->expect_continue = http11 && st.expect_continue;
    out->upgrade = http11 && st.conn_upgrade && st.has_upgrade;
    out->host = st.host;
    out->host_len = st.host_len;
    return (int)pos;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]" at buf[pos] (not CR/LF). */
static int parse_status_line(const char *buf, size_t *ppos, size_t end, rm_h1_response_t *out,
                             head_state_t *st)
{
    size_t line = *ppos;
    const char *lf = memchr(buf + line, '\n', end - line);
    if (lf == NULL)
        return P_MORE;
    size_t eol = (size_t)(lf - buf);
    if (buf[eol - 1] != '\r')
        return fail(st, 0, "bare LF");
    size_t cr = eol - 1;
    const char *s = buf + line;
    size_t n = cr - line;
    if (n < 8 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1'))
        return fail(st, 0, "invalid HTTP version");
    out->version_minor = s[7] - '0';
    if (n < 12 || s[8] != ' ' || s[9] < '1' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
        s[11] > '9')
        return fail(st, 0, "invalid status code");
    out->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    out->reason = s + n; /* empty unless a reason follows */
    if (n > 12) {
        if (s[12] != ' ')
            return fail(st, 0, "invalid status code");
        if (scan_value(buf, line + 13, cr) != cr)
            return fail(st, 0, "invalid character in reason phrase");
        out->reason = s + 13;
        out->reason_len = n - 13;
    }
    *ppos = eol + 1;
    return P_OK;
}

int rm_h1_parse_response(const char *buf, size_t len, const rm_h1_limits_t *limits, bool request_was_head,
                         rm_h1_header_t *headers, size_t headers_cap, rm_h1_response_t *out)
{
    rm_h1_limits_t defaults;
    if (limits == NULL) {
        rm_h1_limits_default(&defaults);
        limits = &defaults;
    }
    memset(out, 0, sizeof(*out));
    out->headers = headers;
    head_state_t st;
    memset(&st, 0, sizeof(st));

    size_t cap = head_cap(limits);
    size_t end = len < cap ? len : cap;
    size_t max_fields = headers_cap < limits->max_headers ? headers_cap : limits->max_headers;
    size_t pos = 0;

    int r = skip_empty_lines(buf, &pos, end, &st);
    if (r == P_OK)
        r = parse_status_line(buf, &pos, end, out, &st);
    if (r == P_OK)
        r = parse_fields(buf, &pos, end, headers, max_fields, &out->num_headers, &st);
    if (r == P_MORE) {
        if (len > cap) {
            out->error = "header section too large";
            return RM_H1_ERROR;
        }
        return RM_H1_INCOMPLETE;
    }
    if (r == P_ERR) {
        out->error = st.error;
        return RM_H1_ERROR;
    }

    bool http11 = out->version_minor == 1;
    if (st.has_te) {
        if (!http11)
            out->error = "transfer-encoding in HTTP/1.0 response";
        else if (st.te_chunked > 1)
            out->error = "chunked applied more than once";
        else if (st.has_cl)
            out->error = "both content-length and transfer-encoding";
        if (out->error != NULL)
            return RM_H1_ERROR;
    }
    if (st.has_cl)
        out->content_length = st.content_length;
    int status = out->status;
    if (request_was_head || status < 200 || status == 204 || status == 304) {
        out->body_kind = RM_H1_BODY_NONE;
    } else if (st.has_te) {
        out->body_kind = st.te_last_chunked ? RM_H1_BODY_CHUNKED : RM_H1_BODY_UNTIL_CLOSE;
    } else if (st.has_cl) {
        out->body_kind = RM_H1_BODY_LENGTH;
    } else {
        out->body_kind = RM_H1_BODY_UNTIL_CLOSE;
    }
    out->keep_alive =
        !st.conn_close && (http11 || st.conn_keep_alive) && out->body_kind != RM_H1_BODY_UNTIL_CLOSE;
    return (int)pos;
}

/* ---- chunked transfer coding (RFC 9112 7.1) ---- */

enum { CS_SIZE, CS_DATA, CS_DATA_CR, CS_DATA_LF, CS_TRAILER, CS_DONE, CS_ERROR };

void rm_h1_chunked_init(rm_h1_chunked_t *c, const rm_h1_limits_t *limits)
{
    rm_h1_limits_t defaults;
    if (limits == NULL) {
        rm_h1_limits_default(&defaults);
        limits = &defaults;
    }
    memset(c, 0, sizeof(*c));
    c->_trailer_budget = limits->max_header_bytes;
    c->_trailers_left = limits->max_headers;
    c->_state = CS_SIZE;
}

bool rm_h1_chunked_is_done(const rm_h1_chunked_t *c)
{
    return c->_state == CS_DONE;
}

static unsigned hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    return (unsigned)(to_lower((unsigned char)c) - 'a' + 10);
}

/* s[0..n) is a chunk-size line up to, not including, its LF. */
static const char *parse_size_line(const char *s, size_t n, uint64_t *size)
{
    if (n == 0 || s[n - 1] != '\r')
        return "bare LF in chunk size line";
    n--;
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && IS(s[i], C_HEX)) {
        /* 16 hex digits always fit; a 17th (even after leading zeros) is refused outright. */
        if (i == 16)
            return "chunk size too large";
        v = (v << 4) | hex_value(s[i]);
        i++;
    }
    if (i == 0)
        return "invalid chunk size";
    if (i < n && !valid_params(s + i, n - i, false))
        return "invalid chunk extension";
    *size = v;
    return NULL;
}

static rm_h1_chunk_event_t chunk_fail(rm_h1_chunked_t *c, const char *error, size_t *consumed,
                                      rm_h1_chunk_out_t *out)
{
    c->_state = CS_ERROR;
    c->_error = error;
    *consumed = 0;
    out->error = error;
    return RM_H1_CHUNK_ERROR;
}

rm_h1_chunk_event_t rm_h1_chunked_next(rm_h1_chunked_t *c, const char *in, size_t len, size_t *consumed,
                                       rm_h1_chunk_out_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t pos = 0;
    for (;;) {
        switch (c->_state) {
        case CS_SIZE: {
            size_t avail = len - pos;
            size_t window = avail < RM_H1_CHUNK_LINE_MAX ? avail : RM_H1_CHUNK_LINE_MAX;
            const char *lf = window > 0 ? memchr(in + pos, '\n', window) : NULL;
            if (lf == NULL) {
                if (avail >= RM_H1_CHUNK_LINE_MAX)
                    return chunk_fail(c, "chunk size line too long", consumed, out);
                *consumed = pos;
                return RM_H1_CHUNK_NEED_MORE;
            }
            size_t eol = (size_t)(lf - in);
            uint64_t size = 0;
            const char *err = parse_size_line(in + pos, eol - pos, &size);
            if (err != NULL)
                return chunk_fail(c, err, consumed, out);
            pos = eol + 1;
            if (size == 0) {
                c->_state = CS_TRAILER;
            } else {
                c->_remaining = size;
                c->_state = CS_DATA;
            }
            break;
        }
        case CS_DATA: {
            size_t avail = len - pos;
            if (avail == 0) {
                *consumed = pos;
                return RM_H1_CHUNK_NEED_MORE;
            }
            size_t n = (uint64_t)avail < c->_remaining ? avail : (size_t)c->_remaining;
            out->data = in + pos;
            out->data_len = n;
            c->_remaining -= n;
            if (c->_remaining == 0)
                c->_state = CS_DATA_CR;
            *consumed = pos + n;
            return RM_H1_CHUNK_DATA;
        }
        case CS_DATA_CR:
        case CS_DATA_LF: {
            if (pos == len) {
                *consumed = pos;
                return RM_H1_CHUNK_NEED_MORE;
            }
            char want = c->_state == CS_DATA_CR ? '\r' : '\n';
            if (in[pos] != want)
                return chunk_fail(c, "missing CRLF after chunk data", consumed, out);
            pos++;
            c->_state = c->_state == CS_DATA_CR ? CS_DATA_LF : CS_SIZE;
            break;
        }
        case CS_TRAILER: {
            size_t avail = len - pos;
            size_t budget = c->_trailer_budget;
            if (avail > 0 && in[pos] == '\r') {
                if (budget < 2)
                    return chunk_fail(c, "trailer section too large", consumed, out);
                if (avail < 2) {
                    *consumed = pos;
                    return RM_H1_CHUNK_NEED_MORE;
                }
                if (in[pos + 1] != '\n')
                    return chunk_fail(c, "bare CR", consumed, out);
                c->_state = CS_DONE;
                *consumed = pos + 2;
                return RM_H1_CHUNK_DONE;
            }
            size_t end = avail < budget ? len : pos + budget;
            size_t next = pos;
            const char *err = NULL;
            int r = pos < end ? parse_field_line(in, &next, end, &out->trailer, &err) : P_MORE;
            if (r == P_ERR)
                return chunk_fail(c, err, consumed, out);
            if (r == P_MORE) {
                if (avail >= budget)
                    return chunk_fail(c, "trailer section too large", consumed, out);
                *consumed = pos;
                return RM_H1_CHUNK_NEED_MORE;
            }
            if (c->_trailers_left == 0)
                return chunk_fail(c, "too many trailer fields", consumed, out);
            c->_trailers_left--;
            c->_trailer_budget -= next - pos;
            *consumed = next;
            return RM_H1_CHUNK_TRAILER;
        }
        case CS_DONE:
            *consumed = 0;
            return RM_H1_CHUNK_DONE;
        default:
            *consumed = 0;
            out->error = c->_error;
            return RM_H1_CHUNK_ERROR;
        }
    }
}

/* ---- helpers ---- */

bool rm_h1_header_name_eq(const rm_h1_header_t *h, const char *lower_name)
{
    return ci_eq(h->name, h->name_len, lower_name, strlen(lower_name));
}

bool rm_h1_is_hop_by_hop(const rm_h1_header_t *h, const rm_h1_header_t *all, size_t n)
{
    static const struct {
        const char *name;
        size_t len;
    } fixed[] = {
        {"connection", 10}, {"keep-alive", 10}, {"proxy-connection", 16}, {"transfer-encoding", 17},
        {"te", 2},          {"trailer", 7},     {"upgrade", 7},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (ci_eq(h->name, h->name_len, fixed[i].name, fixed[i].len))
            return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ci_eq(all[i].name, all[i].name_len, "connection", 10))
            continue;
        size_t pos = 0;
        const char *e;
        size_t el;
        while (next_element(all[i].value, all[i].value_len, &pos, &e, &el)) {
            if (ci_eq2(e, el, h->name, h->name_len))
                return true;
        }
    }
    return false;
}
