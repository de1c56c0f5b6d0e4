/* check_tls.c - the server's TLS flags and PEM checks (server/tls), its
 * option table (server/options.c) and the agent's public-key pin syntax
 * (upload_pin_valid): what is refused before any handshake.  The handshakes themselves are tested with real processes
 * in tests/security/tls.sh. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/upload/upload.h"
#include "server/options.h"
#include "server/tls/tls.h"

Suite *tls_suite(void);

/* A literal and its length. */
#define LIT(s) s, strlen(s)

static const char cert[] =
    "-----BEGIN CERTIFICATE-----\nMIIBfzCCASWgAwIBAgIU\n-----END CERTIFICATE-----\n";
static const char key[] =
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n";

START_TEST(test_pem_check)
{
    ck_assert_int_eq(tls_pem_check(cert, strlen(cert), "CERTIFICATE"), TLS_OK);
    ck_assert_int_eq(tls_pem_check(key, strlen(key), "PRIVATE KEY"), TLS_OK);
    ck_assert_int_eq(tls_pem_check(cert, strlen(cert), "PRIVATE KEY"), TLS_EFORMAT);
    ck_assert_int_eq(tls_pem_check(key, strlen(key), "CERTIFICATE"), TLS_EFORMAT);
    /* "EC PRIVATE KEY" and "RSA PRIVATE KEY" are keys too. */
    ck_assert_int_eq(tls_pem_check(LIT("-----BEGIN EC PRIVATE KEY-----\nAA\n-----END EC PRIVATE KEY-----"),
                                   "PRIVATE KEY"), TLS_OK);
    /* No END, mismatched END, empty body, cut short by len. */
    ck_assert_int_eq(tls_pem_check(LIT("-----BEGIN CERTIFICATE-----\nAA\n"), "CERTIFICATE"),
                     TLS_EFORMAT);
    ck_assert_int_eq(tls_pem_check(LIT("-----BEGIN CERTIFICATE-----\nAA\n-----END PRIVATE KEY-----"),
                                   "CERTIFICATE"), TLS_EFORMAT);
    ck_assert_int_eq(tls_pem_check(LIT("-----BEGIN CERTIFICATE----------END CERTIFICATE-----"),
                                   "CERTIFICATE"), TLS_EFORMAT);
    ck_assert_int_eq(tls_pem_check(cert, 40, "CERTIFICATE"), TLS_EFORMAT);
    ck_assert_int_eq(tls_pem_check("", 0, "CERTIFICATE"), TLS_EFORMAT);
}
END_TEST

/* A mkstemp template in $TMPDIR (or the system's temporary folder). */
static void tmp_template(char *buf, size_t n, const char *name)
{
    const char *d = getenv("TMPDIR");

    snprintf(buf, n, "%s/%s_XXXXXX", d && *d ? d : P_tmpdir, name);
}

static void write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, n, f), n);
    fclose(f);
}

START_TEST(test_pem_read_bounds)
{
    char path[512];
    int fd;
    char *big, *out = NULL;
    size_t n = TLS_PEM_MAX + 1, len = 0;

    tmp_template(path, sizeof path, "check_tls");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, cert, strlen(cert));
    ck_assert_int_eq(tls_pem_read(path, "CERTIFICATE", &out, &len), TLS_OK);
    ck_assert_uint_eq(len, strlen(cert));
    ck_assert_str_eq(out, cert);
    free(out);
    out = NULL;
    ck_assert_int_eq(tls_pem_read(path, "PRIVATE KEY", &out, &len), TLS_EFORMAT);
    ck_assert_ptr_null(out);
    big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, 'A', n);
    memcpy(big, cert, strlen(cert));
    write_file(path, big, n);
    free(big);
    ck_assert_int_eq(tls_pem_read(path, "CERTIFICATE", &out, &len), TLS_ETOOBIG);
    unlink(path);
    ck_assert_int_eq(tls_pem_read(path, "CERTIFICATE", &out, &len), TLS_EIO);
    ck_assert_int_eq(tls_pem_read("/", "CERTIFICATE", &out, &len), TLS_EIO);
}
END_TEST

/* A real self-signed P-256 certificate and its key as PEM (malloc'd),
 * the key encrypted under a passphrase when asked. */
/* n bytes of a memory BIO (not NUL-terminated: strndup would read past
 * them), as a C string. */
static char *bytes_z(const char *p, long n)
{
    char *s = malloc((size_t)n + 1);

    ck_assert_ptr_nonnull(s);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static void make_pair(char **cert_pem, char **key_pem, int encrypted)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    char *p;
    long n;

    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, k);
    ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
    ck_assert_int_eq(PEM_write_bio_X509(cb, x), 1);
    if (encrypted)
        ck_assert_int_eq(PEM_write_bio_PKCS8PrivateKey(kb, k, EVP_aes_256_cbc(), "pass", 4,
                                                       NULL, NULL), 1);
    else
        ck_assert_int_eq(PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(cb, &p);
    *cert_pem = bytes_z(p, n);
    n = BIO_get_mem_data(kb, &p);
    *key_pem = bytes_z(p, n);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* A key that is not the certificate's, one under a passphrase, a file that
 * only looks like PEM: refused at load, so serve stops before it migrates
 * (it stopped only when libmicrohttpd could not listen, after migrating). */
START_TEST(test_pair_must_match)
{
    char *c1, *k1, *c2, *k2, *c3, *k3;
    char cp[512], kp[512];
    int fd;

    make_pair(&c1, &k1, 0);
    make_pair(&c2, &k2, 0);
    make_pair(&c3, &k3, 1);
    ck_assert_int_eq(tls_pair_check(c1, k1), TLS_OK);
    ck_assert_int_eq(tls_pair_check(c1, k2), TLS_EMISMATCH);
    ck_assert_int_eq(tls_pair_check(c3, k3), TLS_EENCRYPTED);
    ck_assert_int_eq(tls_pair_check(cert, k1), TLS_EFORMAT);
    ck_assert_int_eq(tls_pair_check(c1, key), TLS_EFORMAT);
    tmp_template(cp, sizeof cp, "check_tls_c");
    tmp_template(kp, sizeof kp, "check_tls_k");
    fd = mkstemp(cp);
    close(fd);
    fd = mkstemp(kp);
    close(fd);
    write_file(cp, c1, strlen(c1));
    write_file(kp, k2, strlen(k2));
    ck_assert_int_eq(tls_load(cp, kp), TLS_EMISMATCH);
    ck_assert_ptr_null(tls_cert_pem());
    ck_assert_ptr_null(tls_key_pem());
    write_file(kp, k1, strlen(k1));
    ck_assert_int_eq(tls_load(cp, kp), TLS_OK);
    tls_release();
    unlink(cp);
    unlink(kp);
    free(c1); free(k1); free(c2); free(k2); free(c3); free(k3);
}
END_TEST

START_TEST(test_load_pair)
{
    char *cert_real, *key_real;
    char cp[512], kp[512];
    char a0[] = "--port", a1[] = "8443", a2[] = "--tls-cert", a4[] = "--threads", a5[] = "2";
    char a3[512], a6[600];
    char *argv[8];
    struct server_options o;
    unsigned port;
    int fd;

    tmp_template(cp, sizeof cp, "check_tls_c");
    tmp_template(kp, sizeof kp, "check_tls_k");
    fd = mkstemp(cp);
    close(fd);
    fd = mkstemp(kp);
    close(fd);
    make_pair(&cert_real, &key_real, 0);
    write_file(cp, cert_real, strlen(cert_real));
    write_file(kp, key_real, strlen(key_real));
    /* The serve options carry the pair, in both spellings of a value. */
    snprintf(a3, sizeof a3, "%s", cp);
    snprintf(a6, sizeof a6, "--tls-key=%s", kp);
    argv[0] = a0; argv[1] = a1; argv[2] = a2; argv[3] = a3;
    argv[4] = a4; argv[5] = a5; argv[6] = a6;
    options_defaults(&o);
    ck_assert_int_eq(options_parse(OPT_SERVE, 7, argv, &o), 0);
    ck_assert_str_eq(o.tls_cert, cp);
    ck_assert_str_eq(o.tls_key, kp);
    ck_assert_uint_eq(o.port, 8443);
    ck_assert_int_eq(options_port(&o, &port), 0);
    ck_assert_uint_eq(port, 8443);
    ck_assert_uint_eq(o.threads, 2);
    ck_assert_int_eq(tls_load(o.tls_cert, o.tls_key), TLS_OK);
    ck_assert_ptr_nonnull(tls_cert_pem());
    ck_assert_str_eq(tls_key_pem(), key_real);
    tls_release();
    ck_assert_ptr_null(tls_cert_pem());
    ck_assert_ptr_null(tls_key_pem());
    /* Half a pair, a missing value, swapped files: refused. */
    ck_assert_int_eq(tls_load(cp, NULL), TLS_EUSAGE);
    ck_assert_int_eq(tls_load(NULL, kp), TLS_EUSAGE);
    ck_assert_int_eq(tls_load(cp, ""), TLS_EUSAGE);
    argv[0] = a2;
    options_defaults(&o);
    ck_assert_int_eq(options_parse(OPT_SERVE, 1, argv, &o), -1);
    ck_assert_int_ne(tls_load(kp, cp), TLS_OK);
    ck_assert_ptr_null(tls_cert_pem());
    /* Neither: nothing loaded. */
    ck_assert_int_eq(tls_load(NULL, NULL), TLS_OK);
    ck_assert_ptr_null(tls_cert_pem());
    unlink(cp);
    unlink(kp);
    free(cert_real);
    free(key_real);
}
END_TEST

/* The one option table: ranges, unknown options, options of another
 * command and stray arguments are refused; defaults stand otherwise. */
START_TEST(test_options_table)
{
    char a0[] = "--threads", a1[] = "0", a2[] = "--batch-max=64", a3[] = "--nope", a4[] = "x";
    char a5[] = "--username", a6[] = "--device-rate", a7[] = "0.5";
    char *argv[4];
    struct server_options o;

    options_defaults(&o);
    ck_assert_uint_eq(o.threads, 4);
    ck_assert_uint_eq(o.committers, 2);
    argv[0] = a0; argv[1] = a1;
    ck_assert_int_eq(options_parse(OPT_SERVE, 2, argv, &o), -1);
    argv[0] = a2; argv[1] = a6; argv[2] = a7;
    ck_assert_int_eq(options_parse(OPT_SERVE, 3, argv, &o), 0);
    ck_assert_uint_eq(o.batch_max, 64);
    ck_assert(o.device_rate == 0.5);
    argv[0] = a3;
    ck_assert_int_eq(options_parse(OPT_SERVE, 1, argv, &o), -1);
    argv[0] = a4;
    ck_assert_int_eq(options_parse(OPT_SERVE, 1, argv, &o), -1);
    argv[0] = a5; argv[1] = a4;
    ck_assert_int_eq(options_parse(OPT_SERVE, 2, argv, &o), -1);
    ck_assert_int_eq(options_parse(OPT_USER_ADD, 2, argv, &o), 0);
    ck_assert_str_eq(o.username, "x");
}
END_TEST

/* A number is written in decimal digits: strtod's other spellings (space,
 * hex, exponent, a fraction for a count) gave --port 0x10 as port 16. */
START_TEST(test_options_numbers_strict)
{
    static const char *const refused[] = { "0x10", " 80", "80 ", "8e3", "80.0", "+80", "", "-1",
                                           "1e1", ".5" };
    char flag[] = "--port", rate[] = "--device-rate", val[16];
    char *argv[2] = { flag, val };
    struct server_options o;
    size_t i;

    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(val, sizeof val, "%s", refused[i]);
        options_defaults(&o);
        argv[0] = flag;
        ck_assert_msg(options_parse(OPT_SERVE, 2, argv, &o) == -1, "--port '%s'", val);
        argv[0] = rate;
        ck_assert_msg(options_parse(OPT_SERVE, 2, argv, &o) == -1 || strcmp(val, "80.0") == 0,
                      "--device-rate '%s'", val);
    }
    argv[0] = (char *)"--id";
    snprintf(val, sizeof val, " 3");
    ck_assert_int_eq(options_parse(OPT_TOKEN_REVOKE, 2, argv, &o), -1);
    snprintf(val, sizeof val, "+3");
    ck_assert_int_eq(options_parse(OPT_TOKEN_REVOKE, 2, argv, &o), -1);
    snprintf(val, sizeof val, "3");
    ck_assert_int_eq(options_parse(OPT_TOKEN_REVOKE, 2, argv, &o), 0);
    ck_assert_uint_eq(o.id, 3);
    snprintf(val, sizeof val, "18100");
    argv[0] = flag;
    ck_assert_int_eq(options_parse(OPT_SERVE, 2, argv, &o), 0);
    ck_assert_uint_eq(o.port, 18100);
    snprintf(val, sizeof val, "2.5");
    argv[0] = rate;
    ck_assert_int_eq(options_parse(OPT_SERVE, 2, argv, &o), 0);
    ck_assert(o.device_rate == 2.5);
}
END_TEST

/* Each command takes, and its --help lists, only the options it reads:
 * token list has no --id (token revoke's), so `token list --id 3` is
 * refused, not ignored. */
START_TEST(test_options_per_command)
{
    char a0[] = "--id", a1[] = "3", a2[] = "--username", a3[] = "x", a4[] = "--role";
    char a5[] = "admin";
    char *argv[2], *help = NULL;
    struct server_options o;
    size_t len = 0;
    FILE *f;

    argv[0] = a0; argv[1] = a1;
    options_defaults(&o);
    ck_assert_int_eq(options_parse(OPT_TOKEN_LIST, 2, argv, &o), -1);
    ck_assert_int_eq(options_parse(OPT_TOKEN_REVOKE, 2, argv, &o), 0);
    ck_assert_uint_eq(o.id, 3);
    argv[0] = a2; argv[1] = a3;
    ck_assert_int_eq(options_parse(OPT_USER_DISABLE, 2, argv, &o), 0);
    ck_assert_int_eq(options_parse(OPT_USER_PASSWD, 2, argv, &o), 0);
    ck_assert_int_eq(options_parse(OPT_TOKEN_LIST, 2, argv, &o), -1);
    argv[0] = a4; argv[1] = a5;
    ck_assert_int_eq(options_parse(OPT_USER_DISABLE, 2, argv, &o), -1);
    ck_assert_int_eq(options_parse(OPT_TOKEN_CREATE, 2, argv, &o), 0);

    f = open_memstream(&help, &len);
    ck_assert_ptr_nonnull(f);
    options_help(OPT_TOKEN_LIST, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(help, "--database-url"));
    ck_assert_ptr_null(strstr(help, "--id"));
    free(help);
    help = NULL;
    f = open_memstream(&help, &len);
    ck_assert_ptr_nonnull(f);
    options_help(OPT_TOKEN_REVOKE, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(help, "--id N"));
    free(help);
}
END_TEST

START_TEST(test_pin_syntax)
{
    static const char one[] = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    char two[200];

    ck_assert_int_eq(upload_pin_valid(one), 1);
    snprintf(two, sizeof two, "%s;%s", one, one);
    ck_assert_int_eq(upload_pin_valid(two), 1);
    ck_assert_int_eq(upload_pin_valid(""), 0);
    ck_assert_int_eq(upload_pin_valid(NULL), 0);
    ck_assert_int_eq(upload_pin_valid("sha256//short"), 0);
    ck_assert_int_eq(upload_pin_valid("sha1//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="), 0);
    ck_assert_int_eq(upload_pin_valid("sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"), 0);
    ck_assert_int_eq(upload_pin_valid("sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU==x"), 0);
    snprintf(two, sizeof two, "%s;", one);
    ck_assert_int_eq(upload_pin_valid(two), 0);
    ck_assert_int_eq(upload_pin_valid("sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS\"FU="), 0);
}
END_TEST

Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_pem_check);
    tcase_add_test(tc, test_pem_read_bounds);
    tcase_add_test(tc, test_load_pair);
    tcase_add_test(tc, test_pair_must_match);
    tcase_add_test(tc, test_options_table);
    tcase_add_test(tc, test_options_numbers_strict);
    tcase_add_test(tc, test_options_per_command);
    tcase_add_test(tc, test_pin_syntax);
    suite_add_tcase(s, tc);
    return s;
}
