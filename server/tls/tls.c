/* tls.c - see tls.h.  The files are read whole at start-up because
 * libmicrohttpd takes certificate and key from memory; both are bounded
 * before they are trusted, and the key is wiped when released. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "server/tls/tls.h"

static char *g_cert, *g_key;
static size_t g_key_len;

const char *tls_strerror(int err)
{
    switch (err) {
    case TLS_OK: return "ok";
    case TLS_EIO: return "cannot read the file";
    case TLS_ETOOBIG: return "file larger than 64 KiB";
    case TLS_EFORMAT: return "not a PEM file of the expected kind";
    case TLS_EUSAGE: return "--tls-cert and --tls-key go together";
    case TLS_EMISMATCH: return "the key is not the certificate's";
    case TLS_EENCRYPTED: return "the key is encrypted (a passphrase); give it unencrypted, mode 0600";
    default: return "unknown error";
    }
}

/* memmem over a bounded buffer, without relying on a NUL. */
static const char *find(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);

    if (m == 0 || m > n)
        return NULL;
    return memmem(hay, n, needle, m);
}

int tls_pem_check(const char *pem, size_t len, const char *want)
{
    static const char begin[] = "-----BEGIN ", dashes[] = "-----";
    const char *p = pem, *end = pem + len;
    size_t wl = strlen(want);

    if (!pem || !want || wl == 0)
        return TLS_EFORMAT;
    while (p < end) {
        const char *b = find(p, (size_t)(end - p), begin), *kind, *ke, *close;
        char endline[96];
        size_t kl;

        if (!b)
            break;
        kind = b + sizeof begin - 1;
        ke = find(kind, (size_t)(end - kind), dashes);
        if (!ke)
            break;
        kl = (size_t)(ke - kind);
        p = ke + sizeof dashes - 1;
        /* "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY" all end in want. */
        if (kl < wl || kl > 64 || memcmp(kind + kl - wl, want, wl) != 0 ||
            memchr(kind, '\n', kl) != NULL)
            continue;
        snprintf(endline, sizeof endline, "-----END %.*s-----", (int)kl, kind);
        close = find(p, (size_t)(end - p), endline);
        if (close && close > p + 1)
            return TLS_OK;
    }
    return TLS_EFORMAT;
}

int tls_pem_read(const char *path, const char *want, char **out, size_t *out_len)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, err = TLS_EIO;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return TLS_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    if (st.st_size > (off_t)TLS_PEM_MAX) {
        err = TLS_ETOOBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto out;
    /* Read to EOF but never past the bound, whatever stat said. */
    for (;;) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        got += (size_t)n;
        if (got > (size_t)st.st_size) {
            err = TLS_ETOOBIG;      /* grew while we read it */
            goto out;
        }
    }
    buf[got] = '\0';
    if (tls_pem_check(buf, got, want) != TLS_OK) {
        err = TLS_EFORMAT;
        goto out;
    }
    *out = buf;
    if (out_len)
        *out_len = got;
    buf = NULL;
    err = TLS_OK;
out:
    if (buf) {
        memset(buf, 0, got);
        free(buf);
    }
    close(fd);
    return err;
}

static void wipe_free(char *p, size_t n)
{
    volatile char *v = p;
    size_t i;

    if (!p)
        return;
    for (i = 0; i < n; i++)
        v[i] = 0;
    free(p);
}

/* A key file asks for no passphrase here: OpenSSL would otherwise prompt on
 * the terminal, which a service has not. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

int tls_pair_check(const char *cert_pem, const char *key_pem)
{
    BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, no_passphrase, NULL) : NULL;
    EVP_PKEY *k = NULL;
    int err = TLS_OK;

    if (!x) {
        err = TLS_EFORMAT;
    } else if (strstr(key_pem, "ENCRYPTED")) {
        err = TLS_EENCRYPTED;
    } else if (!kb || !(k = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL))) {
        err = TLS_EFORMAT;
    } else if (X509_check_private_key(x, k) != 1) {
        err = TLS_EMISMATCH;
    }
    /* libmicrohttpd's own errors later should not meet ours in the queue. */
    ERR_clear_error();
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(kb);
    BIO_free(cb);
    return err;
}

int tls_load(const char *cert, const char *key)
{
    struct stat st;
    int err;

    if (!cert && !key)
        return TLS_OK;
    if (!cert || !key || !*cert || !*key) {
        fprintf(stderr, "precursor-server: %s\n", tls_strerror(TLS_EUSAGE));
        return TLS_EUSAGE;
    }
    tls_release();
    if ((err = tls_pem_read(cert, "CERTIFICATE", &g_cert, NULL)) != TLS_OK) {
        fprintf(stderr, "precursor-server: --tls-cert %s: %s\n", cert, tls_strerror(err));
        return err;
    }
    if ((err = tls_pem_read(key, "PRIVATE KEY", &g_key, &g_key_len)) != TLS_OK) {
        fprintf(stderr, "precursor-server: --tls-key %s: %s\n", key, tls_strerror(err));
        tls_release();
        return err;
    }
    if ((err = tls_pair_check(g_cert, g_key)) != TLS_OK) {
        if (err == TLS_EFORMAT)
            fprintf(stderr, "precursor-server: --tls-cert %s: the first certificate (the leaf) "
                    "cannot be parsed\n", cert);
        else if (err == TLS_EMISMATCH)
            fprintf(stderr, "precursor-server: --tls-key %s is not the key of the first "
                    "certificate (the leaf) in --tls-cert %s\n", key, cert);
        else
            fprintf(stderr, "precursor-server: --tls-key %s: %s\n", key, tls_strerror(err));
        tls_release();
        return err;
    }
    /* Not fatal (a container may mount it 0644), but worth a line. */
    if (stat(key, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "precursor-server: warning: --tls-key %s is readable by group or others\n",
                key);
    return TLS_OK;
}

const char *tls_cert_pem(void) { return g_cert; }
const char *tls_key_pem(void) { return g_key; }

const char *tls_priorities(void)
{
    return "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}

void tls_release(void)
{
    free(g_cert);
    g_cert = NULL;
    wipe_free(g_key, g_key_len);
    g_key = NULL;
    g_key_len = 0;
}
