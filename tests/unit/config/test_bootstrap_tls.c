/* Bootstrap TLS: a listener's filter chain transport_socket (DownstreamTlsContext) and a cluster's
 * (UpstreamTlsContext) load with every supported field where it belongs; unsupported fields are
 * refused by name, and invalid settings (unreadable files, a client-certificate requirement with
 * nothing to verify against, the wrong context type) fail with the field's full path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../test_certs.h"
#include "config/bootstrap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unit_cert_t g_cert;

static int group_setup(void **state)
{
    return unit_cert_make("server", "remora.test", &g_cert);
}

#define HCM                                                                                                  \
    "    - filters:\n"                                                                                       \
    "      - name: envoy.filters.network.http_connection_manager\n"                                          \
    "        typed_config:\n"                                                                                \
    "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."                             \
    "http_connection_manager.v3.HttpConnectionManager\n"                                                     \
    "          stat_prefix: ingress\n"                                                                       \
    "          route_config: {virtual_hosts: [{name: a, domains: [\"*\"], routes: [{match: {prefix: /}, "    \
    "route: {cluster: backend}}]}]}\n"                                                                       \
    "          http_filters: [{name: envoy.filters.http.router, typed_config: {\"@type\": "                  \
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]\n"

#define DOWNSTREAM_TYPE "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
#define UPSTREAM_TYPE   "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

/* A bootstrap with one listener whose transport_socket is `listener_ts` (a flow mapping, NULL for
 * none) and one cluster whose transport_socket is `cluster_ts`. */
static char *doc(const char *listener_ts, const char *cluster_ts)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    fprintf(f, "static_resources:\n"
               "  listeners:\n"
               "  - name: ingress\n"
               "    address: {socket_address: {address: 127.0.0.1, port_value: 8443}}\n"
               "    filter_chains:\n" HCM);
    if (listener_ts)
        fprintf(f, "      transport_socket: %s\n", listener_ts);
    fprintf(f,
            "  clusters:\n"
            "  - name: backend\n"
            "    load_assignment: {cluster_name: backend, endpoints: [{lb_endpoints: [{endpoint: {address: "
            "{socket_address: {address: 127.0.0.1, port_value: 9443}}}}]}]}\n");
    if (cluster_ts)
        fprintf(f, "    transport_socket: %s\n", cluster_ts);
    fclose(f);
    return out;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

static void test_full_tls_config(void **state)
{
    char *lts =
        fmt("{name: envoy.transport_sockets.tls, typed_config: {\"@type\": " DOWNSTREAM_TYPE ", "
            "require_client_certificate: true, common_tls_context: {"
            "tls_params: {tls_minimum_protocol_version: TLSv1_2, tls_maximum_protocol_version: TLSv1_3}, "
            "tls_certificates: [{certificate_chain: {filename: \"%s\"}, private_key: {filename: \"%s\"}}], "
            "validation_context: {trusted_ca: {filename: \"%s\"}, match_typed_subject_alt_names: "
            "[{san_type: DNS, matcher: {exact: client.test}}]}, alpn_protocols: [h2, http/1.1]}}}",
            g_cert.cert, g_cert.key, g_cert.cert);
    char *cts =
        fmt("{name: envoy.transport_sockets.tls, typed_config: {\"@type\": " UPSTREAM_TYPE ", "
            "sni: backend.test, common_tls_context: {tls_certificates: [{certificate_chain: {inline_string: "
            "\"PEM\"}, private_key: {filename: \"%s\"}}], validation_context: {trusted_ca: {filename: "
            "\"%s\"}}, alpn_protocols: [http/1.1]}}}",
            g_cert.key, g_cert.cert);
    char *y = doc(lts, cts);
    rm_bootstrap_config_t *b = NULL;
    char err[1024] = "";
    if (rm_bootstrap_load_string(y, strlen(y), &b, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s\n%s", err, y);
    const rm_tls_config_t *d = &b->listeners[0].tls;
    assert_true(d->enabled);
    assert_true(d->require_client_certificate);
    assert_true(d->has_certificate);
    assert_string_equal(d->certificate_chain.filename, g_cert.cert);
    assert_string_equal(d->private_key.filename, g_cert.key);
    assert_true(d->has_trusted_ca);
    assert_string_equal(d->trusted_ca.filename, g_cert.cert);
    assert_int_equal(d->num_verify_san_dns, 1);
    assert_string_equal(d->verify_san_dns[0], "client.test");
    assert_int_equal(d->num_alpn_protocols, 2);
    assert_string_equal(d->alpn_protocols[0], "h2");
    assert_string_equal(d->alpn_protocols[1], "http/1.1");
    assert_int_equal(d->min_protocol, RM_TLS_V1_2);
    assert_int_equal(d->max_protocol, RM_TLS_V1_3);
    const rm_tls_config_t *u = &b->clusters[0].tls;
    assert_true(u->enabled);
    assert_string_equal(u->sni, "backend.test");
    assert_string_equal(u->certificate_chain.inline_string, "PEM");
    assert_null(u->certificate_chain.filename);
    assert_true(u->has_trusted_ca);
    assert_int_equal(u->num_alpn_protocols, 1);
    assert_false(u->require_client_certificate);
    assert_int_equal(u->max_protocol, RM_TLS_AUTO);
    rm_bootstrap_config_free(b);
    free(y);

    /* Without transport_socket both stay plaintext. */
    y = doc(NULL, NULL);
    assert_int_equal(rm_bootstrap_load_string(y, strlen(y), &b, err, sizeof(err)), 0);
    assert_false(b->listeners[0].tls.enabled);
    assert_false(b->clusters[0].tls.enabled);
    rm_bootstrap_config_free(b);
    free(y);
    free(lts);
    free(cts);
}

static void check_error(const char *listener_ts, const char *cluster_ts, const char *want)
{
    char *y = doc(listener_ts, cluster_ts);
    rm_bootstrap_config_t *b = NULL;
    char err[1024] = "";
    if (rm_bootstrap_load_string(y, strlen(y), &b, err, sizeof(err)) == 0) {
        rm_bootstrap_config_free(b);
        fail_msg("loaded, expected \"%s\"\n%s", want, y);
    }
    size_t n = strlen(want);
    bool ok = want[n - 1] == '*' ? strncmp(err, want, n - 1) == 0 : strcmp(err, want) == 0;
    if (!ok)
        fail_msg("error mismatch\n  want: %s\n  got:  %s", want, err);
    free(y);
}

#define LTS     "static_resources.listeners[0].filter_chains[0].transport_socket"
#define CTS     "static_resources.clusters[0].transport_socket"
#define DS_HEAD "{name: envoy.transport_sockets.tls, typed_config: {\"@type\": " DOWNSTREAM_TYPE ", "
#define US_HEAD "{name: envoy.transport_sockets.tls, typed_config: {\"@type\": " UPSTREAM_TYPE ", "

static void test_errors(void **state)
{
    char *certs =
        fmt("tls_certificates: [{certificate_chain: {filename: \"%s\"}, private_key: {filename: \"%s\"}}]",
            g_cert.cert, g_cert.key);
    char *s;

    s = fmt(DS_HEAD "common_tls_context: {tls_certificates: [{certificate_chain: {filename: \"%s\"}, "
                    "private_key: {filename: /nonexistent/key.pem}}]}}}",
            g_cert.cert);
    check_error(s, NULL,
                LTS ".typed_config.common_tls_context.tls_certificates[0].private_key.filename: cannot read "
                    "\"/nonexistent/key.pem\": No such file or directory");
    free(s);

    check_error(DS_HEAD "common_tls_context: {alpn_protocols: [h2]}}}", NULL,
                LTS ".typed_config.common_tls_context: needs tls_certificates with a certificate_chain and "
                    "private_key (a TLS listener must present a certificate)");

    s = fmt(DS_HEAD "require_client_certificate: true, common_tls_context: {%s}}}", certs);
    check_error(s, NULL,
                LTS ".typed_config.require_client_certificate: needs "
                    "common_tls_context.validation_context.trusted_ca to verify client certificates");
    free(s);

    s = fmt(DS_HEAD "session_timeout: 10s, common_tls_context: {%s}}}", certs);
    check_error(s, NULL, LTS ".typed_config.session_timeout: not supported yet");
    free(s);

    s = fmt(DS_HEAD "common_tls_context: {%s, tls_params: {cipher_suites: [x]}}}}", certs);
    check_error(s, NULL, LTS ".typed_config.common_tls_context.tls_params.cipher_suites: not supported yet");
    free(s);

    s = fmt(
        DS_HEAD
        "common_tls_context: {tls_certificates: [{certificate_chain: {filename: \"%s\"}, private_key: "
        "{filename: \"%s\"}}, {certificate_chain: {filename: \"%s\"}, private_key: {filename: \"%s\"}}]}}}",
        g_cert.cert, g_cert.key, g_cert.cert, g_cert.key);
    check_error(
        s, NULL,
        LTS ".typed_config.common_tls_context.tls_certificates: only one certificate is supported for now");
    free(s);

    /* The wrong context type for the side. */
    s = fmt(US_HEAD "common_tls_context: {%s}}}", certs);
    check_error(s, NULL, LTS ".typed_config.@type: expected \"" DOWNSTREAM_TYPE "\", got *");
    free(s);

    check_error("{name: envoy.transport_sockets.raw_buffer}", NULL,
                LTS ".name: transport socket \"envoy.transport_sockets.raw_buffer\" is not supported "
                    "(only envoy.transport_sockets.tls)");

    /* Upstream side. */
    check_error(NULL, US_HEAD "auto_host_sni: true}}", CTS ".typed_config.auto_host_sni: not supported yet");
    check_error(
        NULL, US_HEAD "common_tls_context: {validation_context: {}}}}",
        CTS ".typed_config.common_tls_context.validation_context.trusted_ca: required (Remora verifies peers "
            "only against a configured CA)");
    check_error(
        NULL,
        US_HEAD "common_tls_context: {validation_context: {trusted_ca: {filename: /x, inline_string: y}}}}}",
        CTS ".typed_config.common_tls_context.validation_context.trusted_ca.inline_string: only one of "
            "filename, inline_string may be set");
    check_error(NULL,
                US_HEAD "common_tls_context: {tls_params: {tls_minimum_protocol_version: TLSv1_3, "
                        "tls_maximum_protocol_version: TLSv1_2}}}}",
                CTS ".typed_config.common_tls_context.tls_params.tls_maximum_protocol_version: is below "
                    "tls_minimum_protocol_version");
    s = fmt(US_HEAD "common_tls_context: {validation_context: {trusted_ca: {filename: \"%s\"}, "
                    "match_typed_subject_alt_names: [{san_type: URI, matcher: {exact: spiffe://x}}]}}}}",
            g_cert.cert);
    check_error(
        NULL, s,
        CTS
        ".typed_config.common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type: *");
    free(s);
    s = fmt(US_HEAD "common_tls_context: {validation_context: {trusted_ca: {filename: \"%s\"}, "
                    "match_typed_subject_alt_names: [{san_type: DNS, matcher: {prefix: a}}]}}}}",
            g_cert.cert);
    check_error(
        NULL, s,
        CTS ".typed_config.common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher."
            "prefix: not supported yet");
    free(s);
    check_error(NULL, US_HEAD "common_tls_context: {key_log: {path: /tmp/k}}}}",
                CTS ".typed_config.common_tls_context.key_log: not supported yet");
    free(certs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_tls_config),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("bootstrap_tls", tests, group_setup, NULL);
}
