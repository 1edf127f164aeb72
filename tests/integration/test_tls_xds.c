/* Upstream TLS delivered over CDS: remora-cp passes a cluster's transport_socket (an
 * UpstreamTlsContext in an Any) through to Remora, which then talks TLS to the endpoint with SNI,
 * CA verification and its client certificate. A later snapshot whose TLS material cannot be used
 * (unreadable CA file) is NACKed, and the cluster Remora already has keeps serving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"
#include "tls_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODE "tls-node"

static harness_cert_t g_ca, g_backend, g_client;
static int g_upstream;

static int setup(void **state)
{
    harness_cert_spec_t backend = {
        .cn = "backend.test", .dns_names = "backend.test", .not_before_s = -3600, .not_after_s = 86400};
    harness_cert_spec_t client = {
        .cn = "sidecar", .not_before_s = -3600, .not_after_s = 86400, .client = true};
    if (harness_cert_make_ca("ca", &g_ca) != 0 ||
        harness_cert_make(&g_ca, "backend", &backend, &g_backend) != 0 ||
        harness_cert_make(&g_ca, "client", &client, &g_client) != 0)
        return -1;
    const char *args[] = {"--tls-cert",      g_backend.cert, "--tls-key", g_backend.key,
                          "--tls-client-ca", g_ca.cert,      NULL};
    g_upstream = harness_start_upstream_args("secure", args, NULL);
    return g_upstream > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    harness_kill_all();
    return 0;
}

static char *snapshot(const char *ca_file)
{
    return harness_fmt("clusters:\n"
                       "- name: backend\n"
                       "  connect_timeout: 2s\n"
                       "  endpoints:\n"
                       "  - {address: 127.0.0.1:%d}\n"
                       "  transport_socket:\n"
                       "    name: envoy.transport_sockets.tls\n"
                       "    typed_config:\n"
                       "      \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                       "UpstreamTlsContext\n"
                       "      sni: backend.test\n"
                       "      common_tls_context:\n"
                       "        tls_certificates:\n"
                       "        - certificate_chain: {filename: \"%s\"}\n"
                       "          private_key: {filename: \"%s\"}\n"
                       "        validation_context:\n"
                       "          trusted_ca: {filename: \"%s\"}\n"
                       "        alpn_protocols: [http/1.1]\n",
                       g_upstream, g_client.cert, g_client.key, ca_file);
}

static void test_cds_upstream_tls(void **state)
{
    char *snap = snapshot(g_ca.cert);
    harness_cp_t *cp = harness_start_cp(snap, 0);
    free(snap);
    IT_ASSERT(cp != NULL, "remora-cp did not start");
    char *xds = harness_yaml_cluster("xds_cluster", &cp->port, 1, NULL);
    harness_listener_spec_t l = {0};
    char *body = harness_yaml_bootstrap(&l, 1, &xds, 1);
    char *ads = harness_yaml_ads(NODE, NULL);
    char *yaml = harness_fmt("%s%s", ads, body);
    free(xds);
    free(body);
    free(ads);
    const char *args[] = {"--workers", "1", NULL};
    harness_remora_t *r = harness_start_remora(yaml, args);
    free(yaml);
    IT_ASSERT(r != NULL, "remora did not become ready with the TLS cluster from remora-cp");

    char *url = harness_fmt("http://127.0.0.1:%d/tls", harness_listener_port(r, NULL));
    harness_resp_t resp;
    IT_ASSERT(harness_http_get(url, &resp) == 0, "request failed: %s", resp.error);
    IT_ASSERT(resp.status == 200, "status %ld body %s", resp.status, resp.body);
    IT_ASSERT(strcmp(resp.body, "sni=backend.test client=sidecar alpn=http/1.1") == 0, "upstream saw: %s",
              resp.body);
    harness_resp_free(&resp);
    IT_ASSERT(harness_wait_stat(r->admin, "cluster.backend.ssl.handshake", HARNESS_GE, 1, 10000) == 0,
              "no upstream handshake counted");

    /* A snapshot whose CA file cannot be read: NACKed, the running cluster stays. */
    uint64_t rejected = 0;
    harness_stat(r->admin, "cluster_manager.cds.update_rejected", &rejected);
    char *bad = snapshot("/nonexistent/ca.pem");
    IT_ASSERT(harness_write_file(cp->snapshot_path, bad, strlen(bad)) == 0, "cannot rewrite the snapshot");
    free(bad);
    IT_ASSERT(harness_wait_stat(r->admin, "cluster_manager.cds.update_rejected", HARNESS_GE, rejected + 1,
                                15000) == 0,
              "the unusable TLS cluster was not rejected");
    IT_ASSERT(harness_http_get(url, &resp) == 0, "request after the NACK failed: %s", resp.error);
    IT_ASSERT(resp.status == 200 && strstr(resp.body, "sni=backend.test") != NULL,
              "after the NACK: status %ld body %s", resp.status, resp.body);
    harness_resp_free(&resp);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cds_upstream_tls),
    };
    return cmocka_run_group_tests_name("tls_xds", tests, setup, teardown);
}
