/* CDS clusters with a transport_socket: an UpstreamTlsContext (packed in an Any, as a control plane
 * sends it) converts into rm_tls_config_t; everything Remora does not implement, malformed values
 * and TLS material that cannot be used are refused with the field's path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../test_certs.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "remora_proto/xds.h"
#include "xds/xds_convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext UpstreamTlsContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext CommonTlsContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate TlsCertificate;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext ValidationContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher SanMatcher;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters TlsParameters;
typedef Envoy__Type__Matcher__V3__StringMatcher StringMatcher;
typedef Envoy__Config__Core__V3__DataSource DataSource;

static unit_cert_t g_cert, g_other;

static int group_setup(void **state)
{
    return unit_cert_make("backend", "backend.test", &g_cert) == 0 &&
                   unit_cert_make("other", NULL, &g_other) == 0
               ? 0
               : -1;
}

/* A valid UpstreamTlsContext, every supported field set, that tests then break one way or another. */
typedef struct {
    UpstreamTlsContext up;
    CommonTlsContext common;
    TlsCertificate cert;
    TlsCertificate *certs[2];
    DataSource chain, key, ca;
    ValidationContext vc;
    SanMatcher san;
    SanMatcher *sans[1];
    StringMatcher sm;
    TlsParameters params;
    char *alpn[2];
    /* the cluster around it */
    Cluster c;
    Envoy__Config__Core__V3__TransportSocket ts;
    Google__Protobuf__Any any;
    uint8_t packed[8192];
    const char *type_url;
} fixture_t;

static void file_source(DataSource *d, const char *path)
{
    *d = (DataSource)ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    d->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
    d->filename = (char *)path;
}

static void fixture_init(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    file_source(&f->chain, g_cert.cert);
    file_source(&f->key, g_cert.key);
    file_source(&f->ca, g_cert.cert);
    f->cert = (TlsCertificate)ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT;
    f->cert.certificate_chain = &f->chain;
    f->cert.private_key = &f->key;
    f->certs[0] = f->certs[1] = &f->cert;
    f->sm = (StringMatcher)ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT;
    f->sm.match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
    f->sm.exact = "backend.test";
    f->san = (SanMatcher)ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__INIT;
    f->san.san_type = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__DNS;
    f->san.matcher = &f->sm;
    f->sans[0] = &f->san;
    f->vc = (ValidationContext)
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT;
    f->vc.trusted_ca = &f->ca;
    f->vc.n_match_typed_subject_alt_names = 1;
    f->vc.match_typed_subject_alt_names = f->sans;
    f->params = (TlsParameters)ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__INIT;
    f->params.tls_minimum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2;
    f->params.tls_maximum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    f->alpn[0] = "h2";
    f->alpn[1] = "http/1.1";
    f->common = (CommonTlsContext)ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT;
    f->common.tls_params = &f->params;
    f->common.n_tls_certificates = 1;
    f->common.tls_certificates = f->certs;
    f->common.validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
    f->common.validation_context = &f->vc;
    f->common.n_alpn_protocols = 2;
    f->common.alpn_protocols = f->alpn;
    f->up = (UpstreamTlsContext)ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT;
    f->up.common_tls_context = &f->common;
    f->up.sni = "backend.test";
    f->type_url = REMORA_TYPE_URL_UPSTREAM_TLS_CONTEXT;

    f->c = (Cluster)ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    f->c.name = "web";
    f->ts = (Envoy__Config__Core__V3__TransportSocket)ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT;
    f->ts.name = REMORA_TRANSPORT_SOCKET_TLS;
    f->ts.config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    f->ts.typed_config = &f->any;
    f->c.transport_socket = &f->ts;
}

/* Packs the context into the Any (after the test changed it). */
static const Cluster *cluster_of(fixture_t *f)
{
    size_t len = envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__get_packed_size(&f->up);
    assert_true(len <= sizeof(f->packed));
    envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__pack(&f->up, f->packed);
    f->any = (Google__Protobuf__Any)GOOGLE__PROTOBUF__ANY__INIT;
    f->any.type_url = (char *)f->type_url;
    f->any.value.data = f->packed;
    f->any.value.len = len;
    return &f->c;
}

static void expect_error(fixture_t *f, const char *want)
{
    rm_cluster_config_t out;
    char err[768] = "";
    const Cluster *c = cluster_of(f);
    if (rm_xds_cluster_from_proto(c, NULL, &out, err, sizeof(err)) == 0) {
        rm_cluster_config_free(&out);
        fail_msg("accepted, expected \"%s\"", want);
    }
    assert_false(out.tls.enabled); /* freed on failure */
    size_t n = strlen(want);
    bool ok = want[n - 1] == '*' ? strncmp(err, want, n - 1) == 0 : strcmp(err, want) == 0;
    if (!ok)
        fail_msg("error mismatch\n  want: %s\n  got:  %s", want, err);
}

#define PFX "cluster 'web': transport_socket.typed_config."

static void test_valid(void **state)
{
    fixture_t f;
    fixture_init(&f);
    rm_cluster_config_t out;
    char err[768] = "";
    if (rm_xds_cluster_from_proto(cluster_of(&f), NULL, &out, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
    const rm_tls_config_t *t = &out.tls;
    assert_true(t->enabled);
    assert_string_equal(t->sni, "backend.test");
    assert_true(t->has_certificate);
    assert_string_equal(t->certificate_chain.filename, g_cert.cert);
    assert_string_equal(t->private_key.filename, g_cert.key);
    assert_true(t->has_trusted_ca);
    assert_string_equal(t->trusted_ca.filename, g_cert.cert);
    assert_int_equal(t->num_verify_san_dns, 1);
    assert_string_equal(t->verify_san_dns[0], "backend.test");
    assert_int_equal(t->num_alpn_protocols, 2);
    assert_string_equal(t->alpn_protocols[0], "h2");
    assert_string_equal(t->alpn_protocols[1], "http/1.1");
    assert_int_equal(t->min_protocol, RM_TLS_V1_2);
    assert_int_equal(t->max_protocol, RM_TLS_V1_3);
    rm_cluster_config_free(&out);

    /* A cluster without transport_socket stays plaintext. */
    f.c.transport_socket = NULL;
    assert_int_equal(rm_xds_cluster_from_proto(&f.c, NULL, &out, err, sizeof(err)), 0);
    assert_false(out.tls.enabled);
    rm_cluster_config_free(&out);
}

static void test_envelope_errors(void **state)
{
    fixture_t f;
    fixture_init(&f);
    f.ts.name = "envoy.transport_sockets.raw_buffer";
    expect_error(
        &f, "cluster 'web': transport_socket.name: transport socket 'envoy.transport_sockets.raw_buffer' "
            "is not supported (only envoy.transport_sockets.tls)");
    fixture_init(&f);
    f.type_url = REMORA_TYPE_URL_DOWNSTREAM_TLS_CONTEXT;
    expect_error(
        &f,
        "cluster 'web': transport_socket.typed_config: expected type " REMORA_TYPE_URL_UPSTREAM_TLS_CONTEXT
        ", got '" REMORA_TYPE_URL_DOWNSTREAM_TLS_CONTEXT "'");
    fixture_init(&f);
    f.ts.config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE__NOT_SET;
    expect_error(&f, "cluster 'web': transport_socket.typed_config: required (an UpstreamTlsContext)");
    /* Bytes that are not an UpstreamTlsContext. */
    fixture_init(&f);
    cluster_of(&f);
    static uint8_t junk[] = {0x0a, 0x40, 'x'};
    f.any.value.data = junk;
    f.any.value.len = sizeof(junk);
    rm_cluster_config_t out;
    char err[768];
    assert_int_equal(rm_xds_cluster_from_proto(&f.c, NULL, &out, err, sizeof(err)), -1);
    assert_string_equal(
        err, "cluster 'web': transport_socket.typed_config: not a valid serialized UpstreamTlsContext");
}

static void test_unsupported_fields(void **state)
{
    fixture_t f;
    fixture_init(&f);
    f.up.allow_renegotiation = true;
    expect_error(&f, PFX "allow_renegotiation: not supported yet");
    fixture_init(&f);
    f.up.auto_host_sni = true;
    expect_error(&f, PFX "auto_host_sni: not supported yet");
    fixture_init(&f);
    static char *spki[] = {"abc"};
    f.vc.n_verify_certificate_spki = 1;
    f.vc.verify_certificate_spki = spki;
    expect_error(&f, PFX "common_tls_context.validation_context.verify_certificate_spki: not supported yet");
    fixture_init(&f);
    f.vc.allow_expired_certificate = true;
    expect_error(&f,
                 PFX "common_tls_context.validation_context.allow_expired_certificate: not supported yet");
    fixture_init(&f);
    static char *ciphers[] = {"ECDHE-ECDSA-AES128-GCM-SHA256"};
    f.params.n_cipher_suites = 1;
    f.params.cipher_suites = ciphers;
    expect_error(&f, PFX "common_tls_context.tls_params.cipher_suites: not supported yet");
    fixture_init(&f);
    f.san.san_type = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI;
    expect_error(&f, PFX
                 "common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type: only DNS "
                 "is supported yet");
    fixture_init(&f);
    f.sm.match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX;
    f.sm.suffix = ".test";
    expect_error(&f, PFX
                 "common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher: only exact "
                 "is supported yet");
    fixture_init(&f);
    f.common.n_tls_certificates = 2;
    expect_error(&f, PFX "common_tls_context.tls_certificates: only one certificate is supported for now");
    fixture_init(&f);
    f.chain.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
    f.chain.inline_bytes.data = (uint8_t *)"x";
    f.chain.inline_bytes.len = 1;
    expect_error(&f, PFX
                 "common_tls_context.tls_certificates[0].certificate_chain.inline_bytes: not supported yet "
                 "(use inline_string or filename)");
    /* A field the trimmed protos leave out (key_log = 15) arrives as an unknown field. */
    fixture_init(&f);
    uint8_t empty = 0;
    /* Packed as is after the tag: a length-prefixed field's data starts with its length (0). */
    ProtobufCMessageUnknownField key_log = {15, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 1, &empty};
    f.common.base.n_unknown_fields = 1;
    f.common.base.unknown_fields = &key_log;
    expect_error(&f, PFX "common_tls_context: field 15 (key_log) is not supported yet");
}

static void test_material_errors(void **state)
{
    fixture_t f;
    fixture_init(&f);
    f.ca.filename = "/nonexistent/ca.pem";
    expect_error(&f, PFX "common_tls_context.validation_context.trusted_ca.filename: cannot read "
                         "'/nonexistent/ca.pem': No such file or directory");
    fixture_init(&f);
    f.key.filename = g_other.key;
    expect_error(&f, "cluster 'web': transport_socket.typed_config: private_key does not match the "
                     "certificate_chain*");
    fixture_init(&f);
    f.vc.trusted_ca = NULL;
    expect_error(&f,
                 PFX "common_tls_context.validation_context.trusted_ca: required (Remora verifies peers only "
                     "against a configured CA)");
    fixture_init(&f);
    f.params.tls_minimum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    f.params.tls_maximum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2;
    expect_error(&f, PFX "common_tls_context.tls_params.tls_maximum_protocol_version: is below "
                         "tls_minimum_protocol_version");
    fixture_init(&f);
    static char *bad_alpn[] = {""};
    f.common.n_alpn_protocols = 1;
    f.common.alpn_protocols = bad_alpn;
    expect_error(&f, PFX "common_tls_context.alpn_protocols[0]: an ALPN protocol name is 1..255 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_envelope_errors),
        cmocka_unit_test(test_unsupported_fields),
        cmocka_unit_test(test_material_errors),
    };
    return cmocka_run_group_tests_name("xds_convert_tls", tests, group_setup, NULL);
}
