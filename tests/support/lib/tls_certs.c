#include "tls_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static int write_pem(const harness_cert_t *out, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(out->cert, "w");
    if (f == NULL)
        return -1;
    int ok = PEM_write_X509(f, x);
    fclose(f);
    f = fopen(out->key, "w");
    if (f == NULL)
        return -1;
    ok &= PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return ok ? 0 : -1;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, long not_before_s, long not_after_s)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), not_before_s);
    X509_gmtime_adj(X509_getm_notAfter(x), not_after_s);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Remora tests", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    return x;
}

static void set_paths(const char *name, harness_cert_t *out)
{
    snprintf(out->name, sizeof(out->name), "%s", name);
    snprintf(out->cert, sizeof(out->cert), "%s/%s.crt", harness_tmpdir(), name);
    snprintf(out->key, sizeof(out->key), "%s/%s.key", harness_tmpdir(), name);
}

int harness_cert_make_ca(const char *name, harness_cert_t *out)
{
    set_paths(name, out);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL)
        return -1;
    X509 *x = new_cert(key, name, -3600, 30L * 86400);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    int rc = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    rc |= add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    rc |= add_ext(x, x, NID_subject_key_identifier, "hash");
    if (rc == 0 && X509_sign(x, key, EVP_sha256()) == 0)
        rc = -1;
    if (rc == 0)
        rc = write_pem(out, x, key);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

int harness_cert_make(const harness_cert_t *ca, const char *name, const harness_cert_spec_t *spec,
                      harness_cert_t *out)
{
    set_paths(name, out);
    X509 *ca_x = read_cert(ca->cert);
    EVP_PKEY *ca_k = read_key(ca->key);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    int rc = -1;
    if (ca_x != NULL && ca_k != NULL && key != NULL) {
        X509 *x = new_cert(key, spec->cn, spec->not_before_s, spec->not_after_s);
        X509_set_issuer_name(x, X509_get_subject_name(ca_x));
        rc = add_ext(x, ca_x, NID_basic_constraints, "critical,CA:FALSE");
        rc |= add_ext(x, ca_x, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        rc |= add_ext(x, ca_x, NID_ext_key_usage, spec->client ? "clientAuth" : "serverAuth");
        rc |= add_ext(x, ca_x, NID_authority_key_identifier, "keyid:always");
        char san[1024] = "";
        size_t n = 0;
        if (spec->dns_names != NULL) {
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "%s", spec->dns_names);
            for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
                n += (size_t)snprintf(san + n, sizeof(san) - n, "%sDNS:%s", n ? "," : "", t);
        }
        if (spec->ip_localhost)
            n += (size_t)snprintf(san + n, sizeof(san) - n, "%sIP:127.0.0.1", n ? "," : "");
        if (n > 0)
            rc |= add_ext(x, ca_x, NID_subject_alt_name, san);
        if (rc == 0 && X509_sign(x, ca_k, EVP_sha256()) == 0)
            rc = -1;
        if (rc == 0)
            rc = write_pem(out, x, key);
        X509_free(x);
    }
    X509_free(ca_x);
    EVP_PKEY_free(ca_k);
    EVP_PKEY_free(key);
    return rc;
}
