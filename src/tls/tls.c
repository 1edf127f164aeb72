#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

struct rm_tls_ctx {
    _Atomic int refcnt;
    SSL_CTX *ssl_ctx;
    bool server;
    char *sni; /* client: sent in the ClientHello when set */
    /* ALPN, wire format (length-prefixed names): what a listener may select, in its preference
     * order, or what a client offers. Only protocols Remora can serve. */
    unsigned char alpn[512];
    size_t alpn_len;
};

/* ---- stats and ALPN policy ---- */

#define RM_TLS_VISIT_C(s, name)  cb(ctx, prefix, #name, (int64_t)RM_STAT_GET((s)->name), 0);
#define RM_TLS_VISIT(name, kind) RM_TLS_VISIT_##kind(s, name)

void rm_tls_stats_visit(rm_tls_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx)
{
    RM_TLS_STATS(RM_TLS_VISIT)
}

static const char *const alpn_names[] = {"",
#define RM_ALPN_NAME(e, s) s,
                                         RM_ALPN_PROTOCOLS(RM_ALPN_NAME)
#undef RM_ALPN_NAME
};

const char *rm_alpn_name(rm_alpn_t p)
{
    return (size_t)p < RM_ARRAY_LEN(alpn_names) ? alpn_names[p] : "other";
}

bool rm_tls_alpn_servable(rm_alpn_t p)
{
    switch (p) {
    case RM_ALPN_HTTP11:
        return true;
    case RM_ALPN_H2:
        return true; /* src/http/h2_server.c, handed over in h1_server.c's tls_handshake_event */
    default:
        return false;
    }
}

static rm_alpn_t alpn_lookup(const unsigned char *name, size_t len)
{
    for (size_t i = 1; i < RM_ARRAY_LEN(alpn_names); i++)
        if (strlen(alpn_names[i]) == len && memcmp(alpn_names[i], name, len) == 0)
            return (rm_alpn_t)i;
    return RM_ALPN_OTHER;
}

/* ---- building contexts ---- */

static void fail(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static const char *ds_name(const rm_data_source_t *ds, char *buf, size_t len)
{
    if (ds->filename != NULL)
        snprintf(buf, len, "file %s", ds->filename);
    else
        snprintf(buf, len, "inline string");
    return buf;
}

/* PEM files are small; the bound keeps a misconfigured path (a device, a huge file) from stalling
 * the thread that builds the context. */
#define MAX_PEM_FILE_BYTES (1u << 20)

/* Opens a data source as a memory BIO. Returns NULL with the reason in why. */
static BIO *ds_open(const rm_data_source_t *ds, char *why, size_t len)
{
    if (ds->inline_string != NULL)
        return BIO_new_mem_buf(ds->inline_string, -1);
    if (ds->filename == NULL) {
        snprintf(why, len, "not set");
        return NULL;
    }
    int fd = open(ds->filename, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, len, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_PEM_FILE_BYTES) {
        snprintf(why, len, "not a regular file of at most %u bytes", MAX_PEM_FILE_BYTES);
        close(fd);
        return NULL;
    }
    BIO *b = BIO_new(BIO_s_mem());
    char buf[16384];
    ssize_t n;
    size_t total = 0;
    while (total <= MAX_PEM_FILE_BYTES && (n = read(fd, buf, sizeof(buf))) > 0) {
        BIO_write(b, buf, (int)n);
        total += (size_t)n;
    }
    close(fd);
    return b;
}

static int version_of(rm_tls_protocol_t p, int fallback)
{
    switch (p) {
    case RM_TLS_V1_0:
        return TLS1_VERSION;
    case RM_TLS_V1_1:
        return TLS1_1_VERSION;
    case RM_TLS_V1_2:
        return TLS1_2_VERSION;
    case RM_TLS_V1_3:
        return TLS1_3_VERSION;
    default:
        return fallback;
    }
}

static int load_certificate(SSL_CTX *ctx, const rm_tls_config_t *cfg, char *err, size_t errlen)
{
    char name[300], what[600], why[200] = "no usable PEM certificate";
    BIO *b = ds_open(&cfg->certificate_chain, why, sizeof(why));
    X509 *leaf = b ? PEM_read_bio_X509_AUX(b, NULL, NULL, NULL) : NULL;
    if (leaf == NULL || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        snprintf(what, sizeof(what), "certificate_chain (%s): %s",
                 ds_name(&cfg->certificate_chain, name, sizeof(name)), why);
        fail(err, errlen, what);
        X509_free(leaf);
        BIO_free(b);
        return -1;
    }
    X509_free(leaf);
    X509 *extra;
    while ((extra = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            BIO_free(b);
            fail(err, errlen, "certificate_chain: cannot add an intermediate certificate");
            return -1;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(b);

    snprintf(why, sizeof(why), "no usable PEM private key");
    b = ds_open(&cfg->private_key, why, sizeof(why));
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (key == NULL) {
        snprintf(what, sizeof(what), "private_key (%s): %s", ds_name(&cfg->private_key, name, sizeof(name)),
                 why);
        fail(err, errlen, what);
        return -1;
    }
    int used = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        fail(err, errlen, "private_key does not match the certificate_chain");
        return -1;
    }
    return 0;
}

static int load_trusted_ca(SSL_CTX *ctx, const rm_tls_config_t *cfg, char *err, size_t errlen)
{
    char name[300], what[600], why[200] = "no PEM certificate";
    BIO *b = ds_open(&cfg->trusted_ca, why, sizeof(why));
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *x;
    while (b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(store, x);
        X509_free(x);
        n++;
    }
    BIO_free(b);
    if (n == 0) {
        snprintf(what, sizeof(what), "validation_context.trusted_ca (%s): %s",
                 ds_name(&cfg->trusted_ca, name, sizeof(name)), why);
        fail(err, errlen, what);
        return -1;
    }
    ERR_clear_error();
    return 0;
}

/* Names the peer certificate must carry (DNS SAN, or an IP SAN for an address literal). */
static int set_verify_names(SSL_CTX *ctx, char **names, size_t n, char *err, size_t errlen)
{
    X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    for (size_t i = 0; i < n; i++) {
        unsigned char tmp[16];
        bool ip = inet_pton(AF_INET, names[i], tmp) == 1 || inet_pton(AF_INET6, names[i], tmp) == 1;
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, names[i])
                    : (i == 0 ? X509_VERIFY_PARAM_set1_host(vp, names[i], 0)
                              : X509_VERIFY_PARAM_add1_host(vp, names[i], 0));
        if (ok != 1) {
            fail(err, errlen, "cannot use a subject alt name to match");
            return -1;
        }
    }
    return 0;
}

static void build_alpn(rm_tls_ctx_t *t, const rm_tls_config_t *cfg)
{
    for (size_t i = 0; i < cfg->num_alpn_protocols; i++) {
        const char *p = cfg->alpn_protocols[i];
        size_t len = strlen(p);
        if (len == 0 || len > 255 || !rm_tls_alpn_servable(alpn_lookup((const unsigned char *)p, len)))
            continue;
        if (t->alpn_len + 1 + len > sizeof(t->alpn))
            break;
        t->alpn[t->alpn_len++] = (unsigned char)len;
        memcpy(t->alpn + t->alpn_len, p, len);
        t->alpn_len += len;
    }
}

int rm_tls_alpn_select(const unsigned char *ours, size_t ours_len, const unsigned char *offer,
                       size_t offer_len, const unsigned char **out, unsigned char *out_len)
{
    for (size_t i = 0; i < ours_len && i + 1u + ours[i] <= ours_len; i += 1u + ours[i]) {
        const unsigned char *want = &ours[i + 1];
        unsigned char wlen = ours[i];
        for (size_t j = 0; j < offer_len; j += 1u + offer[j]) {
            if (j + 1u + offer[j] > offer_len)
                break; /* a malformed list: ignore the rest */
            if (offer[j] == wlen && memcmp(&offer[j + 1], want, wlen) == 0) {
                *out = &offer[j + 1];
                *out_len = wlen;
                return 0;
            }
        }
    }
    return -1;
}

/* Picks the listener's most preferred protocol that the client offers; without overlap the
 * handshake goes on without ALPN (the client then speaks HTTP/1.1). */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg)
{
    (void)ssl;
    const rm_tls_ctx_t *t = arg;
    return rm_tls_alpn_select(t->alpn, t->alpn_len, in, inlen, out, outlen) == 0 ? SSL_TLSEXT_ERR_OK
                                                                                 : SSL_TLSEXT_ERR_NOACK;
}

static rm_tls_ctx_t *ctx_new(bool server, const rm_tls_config_t *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        fail(err, errlen, "cannot create an OpenSSL context");
        return NULL;
    }
    rm_tls_ctx_t *t = RM_NEW(rm_tls_ctx_t);
    atomic_init(&t->refcnt, 1);
    t->ssl_ctx = ctx;
    t->server = server;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Envoy's defaults: TLS 1.2 at least; at most 1.3 for servers and 1.2 for clients. */
    if (SSL_CTX_set_min_proto_version(ctx, version_of(cfg->min_protocol, TLS1_2_VERSION)) != 1 ||
        SSL_CTX_set_max_proto_version(
            ctx, version_of(cfg->max_protocol, server ? TLS1_3_VERSION : TLS1_2_VERSION)) != 1) {
        fail(err, errlen, "tls_params: protocol versions not available");
        rm_tls_ctx_unref(t);
        return NULL;
    }
    if (cfg->has_certificate && load_certificate(ctx, cfg, err, errlen) != 0) {
        rm_tls_ctx_unref(t);
        return NULL;
    }
    if (cfg->has_trusted_ca && load_trusted_ca(ctx, cfg, err, errlen) != 0) {
        rm_tls_ctx_unref(t);
        return NULL;
    }
    build_alpn(t, cfg);
    return t;
}

rm_tls_ctx_t *rm_tls_server_ctx_create(const rm_tls_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->has_certificate) {
        snprintf(err, errlen, "a TLS listener needs a certificate and key");
        return NULL;
    }
    rm_tls_ctx_t *t = ctx_new(true, cfg, err, errlen);
    if (t == NULL)
        return NULL;
    SSL_CTX *ctx = t->ssl_ctx;
    /* Sessions resumed across connections must keep the client-verification outcome. */
    static const unsigned char sid_ctx[] = "remora";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (cfg->has_trusted_ca) {
        int mode = SSL_VERIFY_PEER;
        if (cfg->require_client_certificate)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
        if (set_verify_names(ctx, cfg->verify_san_dns, cfg->num_verify_san_dns, err, errlen) != 0) {
            rm_tls_ctx_unref(t);
            return NULL;
        }
    }
    if (t->alpn_len > 0)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, t);
    return t;
}

rm_tls_ctx_t *rm_tls_client_ctx_create(const rm_tls_config_t *cfg, char *err, size_t errlen)
{
    rm_tls_ctx_t *t = ctx_new(false, cfg, err, errlen);
    if (t == NULL)
        return NULL;
    SSL_CTX *ctx = t->ssl_ctx;
    if (cfg->sni != NULL && cfg->sni[0] != '\0')
        t->sni = rm_strdup(cfg->sni);
    if (cfg->has_trusted_ca) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int rc = 0;
        if (cfg->num_verify_san_dns > 0)
            rc = set_verify_names(ctx, cfg->verify_san_dns, cfg->num_verify_san_dns, err, errlen);
        else if (t->sni != NULL)
            rc = set_verify_names(ctx, &t->sni, 1, err, errlen);
        if (rc != 0) {
            rm_tls_ctx_unref(t);
            return NULL;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (t->alpn_len > 0 && SSL_CTX_set_alpn_protos(ctx, t->alpn, (unsigned int)t->alpn_len) != 0) {
        fail(err, errlen, "alpn_protocols: cannot be set");
        rm_tls_ctx_unref(t);
        return NULL;
    }
    return t;
}

rm_tls_ctx_t *rm_tls_ctx_ref(rm_tls_ctx_t *t)
{
    atomic_fetch_add_explicit(&t->refcnt, 1, memory_order_relaxed);
    return t;
}

void rm_tls_ctx_unref(rm_tls_ctx_t *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(t->ssl_ctx);
    free(t->sni);
    free(t);
}

/* ---- connections ---- */

SSL *rm_tls_ssl_new(rm_tls_ctx_t *t)
{
    SSL *ssl = SSL_new(t->ssl_ctx);
    if (ssl == NULL)
        abort(); /* allocation failure */
    if (t->sni != NULL)
        SSL_set_tlsext_host_name(ssl, t->sni);
    return ssl;
}

struct bufferevent *rm_tls_bufferevent_accept(rm_tls_ctx_t *t, struct event_base *base, int fd)
{
    SSL *ssl = rm_tls_ssl_new(t);
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        abort();
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *rm_tls_bufferevent_connect(rm_tls_ctx_t *t, struct event_base *base)
{
    SSL *ssl = rm_tls_ssl_new(t);
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        abort();
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

bool rm_tls_bufferevent_handshake_started(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    BIO *w = ssl != NULL ? SSL_get_wbio(ssl) : NULL;
    return w != NULL && BIO_number_written(w) > 0;
}

rm_alpn_t rm_tls_bufferevent_alpn(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    const unsigned char *p = NULL;
    unsigned int len = 0;
    if (ssl != NULL)
        SSL_get0_alpn_selected(ssl, &p, &len);
    return p == NULL || len == 0 ? RM_ALPN_NONE : alpn_lookup(p, len);
}

void rm_tls_record_handshake(rm_tls_stats_t *st, struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    RM_STAT_INC(st->handshake);
    if (ssl != NULL && SSL_is_server(ssl) && SSL_get0_peer_certificate(ssl) == NULL)
        RM_STAT_INC(st->no_certificate);
}

void rm_tls_record_failure(rm_tls_stats_t *st, struct bufferevent *bev, char *reason, size_t len)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    unsigned long e, first = 0;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        if (first == 0)
            first = e;
    while ((e = ERR_get_error()) != 0)
        if (first == 0)
            first = e;
    long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
            RM_STAT_INC(st->fail_verify_san);
        else
            RM_STAT_INC(st->fail_verify_error);
        snprintf(reason, len, "certificate verification failed: %s", X509_verify_cert_error_string(vr));
        return;
    }
    if (first != 0 && ERR_GET_REASON(first) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        RM_STAT_INC(st->fail_verify_no_cert);
        snprintf(reason, len, "peer did not present a certificate");
        return;
    }
    RM_STAT_INC(st->connection_error);
    if (first != 0) {
        char buf[256];
        ERR_error_string_n(first, buf, sizeof(buf));
        snprintf(reason, len, "%s", buf);
    } else {
        snprintf(reason, len, "connection closed during the handshake");
    }
}

void rm_tls_upstream_connect_failed(const rm_tls_ctx_t *ctx, rm_tls_stats_t *st, struct bufferevent *bev,
                                    bool timed_out, const char *host, const char *cluster)
{
    if (ctx == NULL || !rm_tls_bufferevent_handshake_started(bev))
        return;
    if (timed_out) {
        RM_STAT_INC(st->connection_error);
        RM_LOG_INFO("upstream %s (cluster %s): TLS handshake timed out", host, cluster);
        return;
    }
    char reason[300];
    rm_tls_record_failure(st, bev, reason, sizeof(reason));
    RM_LOG_INFO("upstream %s (cluster %s): TLS handshake failed: %s", host, cluster, reason);
}
