/* tls.h - HTTPS for the server: the --tls-cert/--tls-key files, the PEM
 * files they name (read once at start, bounded, checked) and the TLS
 * settings the http module hands libmicrohttpd.  This module knows no
 * libmicrohttpd types: http.c asks it for the PEM text and the priority
 * string, so the TLS library underneath (GnuTLS in Debian's libmicrohttpd)
 * stays the http module's business. */
#ifndef PRECURSOR_TLS_H
#define PRECURSOR_TLS_H

#include <stddef.h>

#define TLS_PEM_MAX (64u * 1024u)   /* a certificate chain or key file */

/* Errors, negative, in the server's style. */
enum tls_error {
    TLS_OK = 0,
    TLS_EIO = -1,           /* cannot open or read the file */
    TLS_ETOOBIG = -2,       /* over TLS_PEM_MAX */
    TLS_EFORMAT = -3,       /* not PEM of the expected kind */
    TLS_EUSAGE = -4,        /* one of the pair given without the other, no value */
    TLS_EMISMATCH = -5,     /* the key is not the (leaf) certificate's */
    TLS_EENCRYPTED = -6,    /* the key asks for a passphrase */
};

const char *tls_strerror(int err);

/* Does pem (len bytes, need not be NUL-terminated) hold at least one
 * complete "-----BEGIN <kind>-----" ... "-----END <kind>-----" block whose
 * kind ends with want ("CERTIFICATE", "PRIVATE KEY")?  0 or TLS_EFORMAT. */
int tls_pem_check(const char *pem, size_t len, const char *want);

/* Read a PEM file of the given kind into a malloc'd NUL-terminated string
 * (taken by the caller).  0 or TLS_EIO/TLS_ETOOBIG/TLS_EFORMAT. */
int tls_pem_read(const char *path, const char *want, char **out, size_t *out_len);

/* Do the first certificate of cert_pem and the key of key_pem (NUL-terminated
 * PEM) parse, and is the key the certificate's?  TLS_OK, TLS_EFORMAT,
 * TLS_EENCRYPTED or TLS_EMISMATCH.  A swapped or mismatched pair is found
 * here, before serve migrates or listens, not as a failure to listen. */
int tls_pair_check(const char *cert_pem, const char *key_pem);

/* Load the certificate and key files named by --tls-cert and --tls-key:
 * both or neither (NULL, NULL: plain HTTP, TLS_OK), each bounded and PEM of
 * its kind, the key the certificate's (tls_pair_check).  TLS_OK, or an
 * error after a message on stderr. */
int tls_load(const char *cert, const char *key);

/* The loaded certificate (chain) and key as NUL-terminated PEM, owned by the
 * module; NULL when the server speaks plain HTTP. */
const char *tls_cert_pem(void);
const char *tls_key_pem(void);

/* GnuTLS priority string: TLS 1.2 and newer only. */
const char *tls_priorities(void);

/* Forget the loaded pair (the key is wiped first). */
void tls_release(void);

#endif
