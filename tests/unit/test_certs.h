/* Self-signed certificates for unit tests that need real PEM files (TLS contexts are built from
 * files). A certificate made here is its own CA, so it can serve as trusted_ca for itself. */
#ifndef REMORA_UNIT_TEST_CERTS_H
#define REMORA_UNIT_TEST_CERTS_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char cert[512];
    char key[512];
} unit_cert_t;

/* A directory for this test's files (mkdtemp under TMPDIR or /tmp). */
static inline const char *unit_tmpdir(void)
{
    static char dir[200];
    if (dir[0] == '\0') {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/remora-unit-XXXXXX", t && *t ? t : "/tmp");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    return dir;
}

/* Writes <name>.crt / <name>.key: a P-256 key and a self-signed CA certificate with CN = name and
 * DNS subject alt names from `dns` (comma-separated, may be NULL). Returns 0 or -1. */
static inline int unit_cert_make(const char *name, const char *dns, unit_cert_t *out)
{
    snprintf(out->cert, sizeof(out->cert), "%s/%s.crt", unit_tmpdir(), name);
    snprintf(out->key, sizeof(out->key), "%s/%s.key", unit_tmpdir(), name);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (key == NULL || x == NULL)
        return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)name, -1,
                               -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    char san[512] = "";
    size_t n = 0;
    if (dns != NULL) {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", dns);
        for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
            n += (size_t)snprintf(san + n, sizeof(san) - n, "%sDNS:%s", n ? "," : "", t);
    }
    const char *exts[][2] = {{"basicConstraints", "critical,CA:TRUE"}, {"subjectAltName", san}};
    for (size_t i = 0; i < 2; i++) {
        if (exts[i][1][0] == '\0')
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        if (e == NULL)
            return -1;
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    int rc = X509_sign(x, key, EVP_sha256()) ? 0 : -1;
    FILE *f = fopen(out->cert, "w");
    if (f == NULL || !PEM_write_X509(f, x))
        rc = -1;
    if (f)
        fclose(f);
    f = fopen(out->key, "w");
    if (f == NULL || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
        rc = -1;
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

#endif
