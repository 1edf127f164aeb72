/* TLS contexts (src/tls): built from the config model and exercised with in-memory handshakes
 * between a client and a server context, so ALPN selection, SNI, peer verification (CA and name)
 * and the client-certificate requirement are checked without sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../test_certs.h"
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

static unit_cert_t g_server, g_client, g_other;

static int group_setup(void **state)
{
    if (unit_cert_make("server", "backend.test,alt.test", &g_server) != 0 ||
        unit_cert_make("client", NULL, &g_client) != 0 ||
        unit_cert_make("other", "backend.test", &g_other) != 0)
        return -1;
    return 0;
}

static rm_tls_config_t server_cfg(const char *const *alpn, size_t n_alpn, bool require_client)
{
    rm_tls_config_t c = {0};
    c.enabled = true;
    c.has_certificate = true;
    c.certificate_chain.filename = g_server.cert;
    c.private_key.filename = g_server.key;
    if (require_client) {
        c.has_trusted_ca = true;
        c.trusted_ca.filename = g_client.cert;
        c.require_client_certificate = true;
    }
    c.alpn_protocols = (char **)alpn;
    c.num_alpn_protocols = n_alpn;
    return c;
}

/* Runs a handshake between two SSL objects through memory BIOs. Returns 1 when both sides finished,
 * 0 when one failed. */
static int handshake(SSL *client, SSL *server)
{
    BIO *c2s = BIO_new(BIO_s_mem()), *s2c = BIO_new(BIO_s_mem());
    BIO_up_ref(c2s);
    BIO_up_ref(s2c);
    SSL_set_bio(client, s2c, c2s);
    SSL_set_bio(server, c2s, s2c);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(client);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ)
                return 0;
        }
        if (!sdone) {
            int r = SSL_do_handshake(server);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ)
                return 0;
        }
    }
    /* With TLS 1.3 the server may judge the client certificate after the client finished: let the
     * client read what the server sent last. */
    char b;
    int r = SSL_read(client, &b, 1);
    if (r <= 0 && SSL_get_error(client, r) == SSL_ERROR_SSL)
        return 0;
    return cdone && sdone;
}

static void pair(rm_tls_ctx_t *cli, rm_tls_ctx_t *srv, SSL **c, SSL **s)
{
    *c = rm_tls_ssl_new(cli);
    *s = rm_tls_ssl_new(srv);
}

static const char *selected(SSL *ssl)
{
    static char buf[64];
    const unsigned char *p = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &p, &len);
    snprintf(buf, sizeof(buf), "%.*s", (int)len, p ? (const char *)p : "");
    return buf;
}

static void test_alpn_policy(void **state)
{
    assert_true(rm_tls_alpn_servable(RM_ALPN_HTTP11));
    assert_true(rm_tls_alpn_servable(RM_ALPN_H2));
    assert_false(rm_tls_alpn_servable(RM_ALPN_NONE));
    assert_string_equal(rm_alpn_name(RM_ALPN_H2), "h2");
    assert_string_equal(rm_alpn_name(RM_ALPN_HTTP11), "http/1.1");
}

/* The listener picks, in its configured order, the first protocol the client offers; a listener
 * without h2 answers an h2-first client with http/1.1, and one offering only h2 with no ALPN. */
static void test_alpn_selection(void **state)
{
    char err[512];
    static const char *const both[] = {"h2", "http/1.1"};
    rm_tls_config_t sc = server_cfg(both, 2, false);
    rm_tls_ctx_t *srv = rm_tls_server_ctx_create(&sc, err, sizeof(err));
    assert_non_null(srv);

    SSL *c = NULL, *s = NULL;
    static const unsigned char offer_both[] = "\x02h2\x08http/1.1";
    static const unsigned char offer_h2[] = "\x02h2";
    rm_tls_config_t cc = {.enabled = true};
    rm_tls_ctx_t *cli = rm_tls_client_ctx_create(&cc, err, sizeof(err));
    assert_non_null(cli);

    static const unsigned char offer_h1[] = "\x08http/1.1";
    pair(cli, srv, &c, &s);
    SSL_set_alpn_protos(c, offer_both, sizeof(offer_both) - 1);
    assert_int_equal(handshake(c, s), 1);
    assert_string_equal(selected(s), "h2");
    SSL_free(c);
    SSL_free(s);

    pair(cli, srv, &c, &s);
    SSL_set_alpn_protos(c, offer_h1, sizeof(offer_h1) - 1);
    assert_int_equal(handshake(c, s), 1);
    assert_string_equal(selected(s), "http/1.1");
    SSL_free(c);
    SSL_free(s);
    rm_tls_ctx_unref(srv);

    /* A listener configured with http/1.1 only: h2-first clients get http/1.1, h2-only ones nothing. */
    static const char *const h1_only[] = {"http/1.1"};
    sc = server_cfg(h1_only, 1, false);
    srv = rm_tls_server_ctx_create(&sc, err, sizeof(err));
    assert_non_null(srv);
    pair(cli, srv, &c, &s);
    SSL_set_alpn_protos(c, offer_both, sizeof(offer_both) - 1);
    assert_int_equal(handshake(c, s), 1);
    assert_string_equal(selected(s), "http/1.1");
    SSL_free(c);
    SSL_free(s);
    pair(cli, srv, &c, &s);
    SSL_set_alpn_protos(c, offer_h2, sizeof(offer_h2) - 1);
    assert_int_equal(handshake(c, s), 1);
    assert_string_equal(selected(s), "");
    SSL_free(c);
    SSL_free(s);
    rm_tls_ctx_unref(srv);
    rm_tls_ctx_unref(cli);
}

/* A client context offers its configured protocols (the cluster manager narrows them to the
 * cluster's own), sends SNI, and verifies the server against the CA and against the SNI name. */
static void test_client_sni_verification_and_offer(void **state)
{
    char err[512];
    static const char *const both[] = {"h2", "http/1.1"};
    rm_tls_config_t sc = server_cfg(both, 2, false);
    rm_tls_ctx_t *srv = rm_tls_server_ctx_create(&sc, err, sizeof(err));
    assert_non_null(srv);

    rm_tls_config_t cc = {.enabled = true, .has_trusted_ca = true, .sni = "alt.test"};
    cc.trusted_ca.filename = g_server.cert;
    cc.alpn_protocols = (char **)both;
    cc.num_alpn_protocols = 2;
    rm_tls_ctx_t *cli = rm_tls_client_ctx_create(&cc, err, sizeof(err));
    assert_non_null(cli);
    SSL *c, *s;
    pair(cli, srv, &c, &s);
    assert_int_equal(handshake(c, s), 1);
    assert_string_equal(SSL_get_servername(s, TLSEXT_NAMETYPE_host_name), "alt.test");
    assert_string_equal(selected(c), "h2"); /* the server's first choice among what was offered */
    assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
    SSL_free(c);
    SSL_free(s);
    rm_tls_ctx_unref(cli);

    /* SNI that the certificate does not carry: name mismatch. */
    cc.sni = "nope.test";
    cli = rm_tls_client_ctx_create(&cc, err, sizeof(err));
    pair(cli, srv, &c, &s);
    assert_int_equal(handshake(c, s), 0);
    assert_int_equal(SSL_get_verify_result(c), X509_V_ERR_HOSTNAME_MISMATCH);
    SSL_free(c);
    SSL_free(s);
    rm_tls_ctx_unref(cli);

    /* Explicit subject alt names win over the SNI name. */
    char *sans[] = {"backend.test"};
    cc.verify_san_dns = sans;
    cc.num_verify_san_dns = 1;
    cli = rm_tls_client_ctx_create(&cc, err, sizeof(err));
    pair(cli, srv, &c, &s);
    assert_int_equal(handshake(c, s), 1);
    SSL_free(c);
    SSL_free(s);
    rm_tls_ctx_unref(cli);

    /* Another CA: unknown issuer. */
    cc.verify_san_dns = NULL;
    cc.num_verify_san_dns = 0;
    cc.sni = "backend.test";
    cc.trusted_ca.filename = g_other.cert;
    cli = rm_tls_client_ctx_create(&cc, err, sizeof(err));
    pair(cli, srv, &c, &s);
    assert_int_equal(handshake(c, s), 0);
    assert_int_not_equal(SSL_get_verify_result(c), X509_V_OK);
    SSL_free(c);
    SSL_free(s);
    rm_tls_ctx_unref(cli);
    rm_tls_ctx_unref(srv);
}

static void test_client_certificate_required(void **state)
{
    char err[512];
    rm_tls_config_t sc = server_cfg(NULL, 0, true);
    rm_tls_ctx_t *srv = rm_tls_server_ctx_create(&sc, err, sizeof(err));
    assert_non_null(srv);

    rm_tls_config_t cc = {.enabled = true};
    rm_tls_ctx_t *anon = rm_tls_client_ctx_create(&cc, err, sizeof(err));
    cc.has_certificate = true;
    cc.certificate_chain.filename = g_client.cert;
    cc.private_key.filename = g_client.key;
    rm_tls_ctx_t *with_cert = rm_tls_client_ctx_create(&cc, err, sizeof(err));
    cc.certificate_chain.filename = g_other.cert;
    cc.private_key.filename = g_other.key;
    rm_tls_ctx_t *rogue = rm_tls_client_ctx_create(&cc, err, sizeof(err));
    assert_non_null(anon);
    assert_non_null(with_cert);
    assert_non_null(rogue);

    SSL *c, *s;
    pair(with_cert, srv, &c, &s);
    assert_int_equal(handshake(c, s), 1);
    assert_non_null(SSL_get0_peer_certificate(s));
    SSL_free(c);
    SSL_free(s);

    pair(anon, srv, &c, &s);
    assert_int_equal(handshake(c, s), 0);
    SSL_free(c);
    SSL_free(s);

    pair(rogue, srv, &c, &s);
    assert_int_equal(handshake(c, s), 0);
    assert_int_not_equal(SSL_get_verify_result(s), X509_V_OK);
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
    rm_tls_ctx_unref(anon);
    rm_tls_ctx_unref(with_cert);
    rm_tls_ctx_unref(rogue);
    rm_tls_ctx_unref(srv);
}

static void expect_ctx_error(const rm_tls_config_t *cfg, bool server, const char *want)
{
    char err[512] = "";
    rm_tls_ctx_t *t = server ? rm_tls_server_ctx_create(cfg, err, sizeof(err))
                             : rm_tls_client_ctx_create(cfg, err, sizeof(err));
    if (t != NULL) {
        rm_tls_ctx_unref(t);
        fail_msg("built, expected \"%s\"", want);
    }
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_context_errors(void **state)
{
    rm_tls_config_t c = server_cfg(NULL, 0, false);
    c.private_key.filename = g_other.key; /* another certificate's key */
    expect_ctx_error(&c, true, "private_key does not match the certificate_chain");

    c = server_cfg(NULL, 0, false);
    c.certificate_chain.filename = g_server.key; /* a key where a certificate belongs */
    expect_ctx_error(&c, true, "certificate_chain (file ");

    c = server_cfg(NULL, 0, false);
    c.certificate_chain.filename = NULL;
    c.certificate_chain.inline_string =
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    expect_ctx_error(&c, true, "certificate_chain (inline string): no usable PEM certificate");

    rm_tls_config_t cc = {.enabled = true, .has_trusted_ca = true};
    cc.trusted_ca.filename = "/nonexistent/ca.pem";
    expect_ctx_error(&cc, false, "validation_context.trusted_ca (file /nonexistent/ca.pem)");

    rm_tls_config_t none = {.enabled = true};
    expect_ctx_error(&none, true, "needs a certificate");
}

/* PEM given inline works like a file. */
static void test_inline_pem(void **state)
{
    FILE *f = fopen(g_server.cert, "r");
    assert_non_null(f);
    static char cert[8192], key[8192];
    size_t n = fread(cert, 1, sizeof(cert) - 1, f);
    cert[n] = '\0';
    fclose(f);
    f = fopen(g_server.key, "r");
    assert_non_null(f);
    n = fread(key, 1, sizeof(key) - 1, f);
    key[n] = '\0';
    fclose(f);
    rm_tls_config_t c = {.enabled = true, .has_certificate = true};
    c.certificate_chain.inline_string = cert;
    c.private_key.inline_string = key;
    char err[512];
    rm_tls_ctx_t *t = rm_tls_server_ctx_create(&c, err, sizeof(err));
    if (t == NULL)
        fail_msg("%s", err);
    rm_tls_ctx_unref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alpn_policy),
        cmocka_unit_test(test_alpn_selection),
        cmocka_unit_test(test_client_sni_verification_and_offer),
        cmocka_unit_test(test_client_certificate_required),
        cmocka_unit_test(test_context_errors),
        cmocka_unit_test(test_inline_pem),
    };
    return cmocka_run_group_tests_name("tls", tests, group_setup, NULL);
}
