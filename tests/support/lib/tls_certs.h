/* Test certificates made at test time with OpenSSL: a CA, and leaf certificates signed by it with
 * chosen names and validity (including already expired ones). Files are PEM in the harness tmpdir.
 * Test code only; aborts the test on OpenSSL failures. */
#ifndef HARNESS_TLS_CERTS_H
#define HARNESS_TLS_CERTS_H

#include <stdbool.h>

typedef struct {
    char cert[512]; /* PEM certificate path */
    char key[512];  /* PEM private key path */
    char name[64];
} harness_cert_t;

/* A self-signed CA named `name` (also its CN). Returns 0 or -1. */
int harness_cert_make_ca(const char *name, harness_cert_t *out);

typedef struct {
    const char *cn;        /* subject CN */
    const char *dns_names; /* comma-separated DNS SANs, NULL: none */
    bool ip_localhost;     /* add IP SAN 127.0.0.1 */
    long not_before_s;     /* validity start relative to now (negative: in the past) */
    long not_after_s;      /* validity end relative to now (negative: expired) */
    bool client;           /* extendedKeyUsage clientAuth (else serverAuth) */
} harness_cert_spec_t;

/* A leaf certificate for `spec` signed by `ca`, written as <name>.crt / <name>.key. */
int harness_cert_make(const harness_cert_t *ca, const char *name, const harness_cert_spec_t *spec,
                      harness_cert_t *out);

#endif
