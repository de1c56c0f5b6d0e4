/* check_keys.c - the device key pair on disk (agent/fleet/keys.c): generated once
 * into a 0600 file written atomically (no temporary left behind, whatever the
 * umask), reloaded to the same pair, and a damaged key file is a clear
 * KEYS_EBADKEY with a message, never a crash and never silently replaced by
 * a new identity; one registration request (keys_register_once) against a
 * scripted server says which answers may pass and which are refusals. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/fleet/enroll.h"
#include "agent/fleet/keys.h"

Suite *keys_suite(void);

static char dir[512], kdir[600];

static void setup(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/keys-test-XXXXXX", t && *t ? t : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    /* Two levels that do not exist yet: created on first start. */
    snprintf(kdir, sizeof(kdir), "%s/var/dev-1", dir);
}

static void teardown(void)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "check_keys: could not remove %s\n", dir);
}

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", kdir, name);
}

static void write_file(const char *name, const void *buf, size_t len)
{
    char p[700];
    FILE *f;

    path_in(p, sizeof(p), name);
    f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static size_t read_file(const char *name, void *buf, size_t cap)
{
    char p[700];
    FILE *f;
    size_t n;

    path_in(p, sizeof(p), name);
    f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Entries of the key folder other than the two key files (and "."/".."). */
static int stray_entries(void)
{
    DIR *d = opendir(kdir);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            strcmp(e->d_name, "device.key") && strcmp(e->d_name, "device.pub"))
            n++;
    closedir(d);
    return n;
}

START_TEST(test_generate_0600_atomic)
{
    struct keys k;
    struct stat st;
    char err[256] = "", p[700];
    uint8_t sk[WIRE_SK_LEN + 8], pk[WIRE_PK_LEN + 8], derived[WIRE_PK_LEN];
    uint8_t msg[] = "snapshot", sig[crypto_sign_BYTES];
    mode_t old = umask(0);      /* the mode must not depend on the caller's umask */

    int rc = keys_load_or_create(kdir, &k, err, sizeof(err));
    umask(old);
    ck_assert_msg(rc == 0, "create: %s", err);
    ck_assert_int_eq(k.created, 1);

    path_in(p, sizeof(p), "device.key");
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_msg((st.st_mode & 07777) == 0600, "device.key mode %o", st.st_mode & 07777);
    ck_assert_int_eq(st.st_size, WIRE_SK_LEN);
    ck_assert_int_eq(stat(kdir, &st), 0);
    ck_assert_msg((st.st_mode & 077) == 0, "key folder mode %o", st.st_mode & 07777);
    /* Written under a temporary name and renamed: nothing else is left. */
    ck_assert_int_eq(stray_entries(), 0);

    /* On disk is the pair in memory, and it is a working Ed25519 pair. */
    ck_assert_uint_eq(read_file("device.key", sk, sizeof(sk)), WIRE_SK_LEN);
    ck_assert_uint_eq(read_file("device.pub", pk, sizeof(pk)), WIRE_PK_LEN);
    ck_assert_mem_eq(sk, k.sk, WIRE_SK_LEN);
    ck_assert_mem_eq(pk, k.pk, WIRE_PK_LEN);
    ck_assert_int_eq(crypto_sign_ed25519_sk_to_pk(derived, k.sk), 0);
    ck_assert_mem_eq(derived, k.pk, WIRE_PK_LEN);
    crypto_sign_detached(sig, NULL, msg, sizeof(msg), k.sk);
    ck_assert_int_eq(crypto_sign_verify_detached(sig, msg, sizeof(msg), k.pk), 0);
    keys_wipe(&k);
}
END_TEST

START_TEST(test_reload_same_key)
{
    struct keys a, b, c;
    char err[256] = "";

    ck_assert_int_eq(keys_load_or_create(kdir, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(keys_load_or_create(kdir, &b, err, sizeof(err)), 0);
    ck_assert_int_eq(b.created, 0);
    ck_assert_mem_eq(a.sk, b.sk, WIRE_SK_LEN);
    ck_assert_mem_eq(a.pk, b.pk, WIRE_PK_LEN);

    /* A temporary left by a crash during an earlier write changes nothing. */
    write_file("device.key.tmp.99999", "half a k", 8);
    ck_assert_int_eq(keys_load_or_create(kdir, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.created, 0);
    ck_assert_mem_eq(a.sk, c.sk, WIRE_SK_LEN);

    /* Another folder is another device. */
    snprintf(kdir, sizeof(kdir), "%s/var/dev-2", dir);
    ck_assert_int_eq(keys_load_or_create(kdir, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.created, 1);
    ck_assert_msg(memcmp(a.pk, c.pk, WIRE_PK_LEN) != 0, "two devices with one key");
    keys_wipe(&a);
    keys_wipe(&b);
    keys_wipe(&c);
}
END_TEST

/* Loads kdir expecting KEYS_EBADKEY with a message naming the problem, and
 * checks the damaged file was left as it was for the operator. */
static void expect_bad(const char *what, const uint8_t *before, size_t before_len)
{
    struct keys k;
    char err[256] = "";
    uint8_t after[WIRE_SK_LEN + 64];
    int rc;

    memset(&k, 0xAA, sizeof(k));
    rc = keys_load_or_create(kdir, &k, err, sizeof(err));
    ck_assert_msg(rc == KEYS_EBADKEY, "%s: rc %d (%s)", what, rc, err);
    ck_assert_msg(err[0] != '\0', "%s: no message", what);
    ck_assert_msg(strstr(err, "device.") != NULL, "%s: message '%s' names no file", what, err);
    if (before != NULL) {
        ck_assert_uint_eq(read_file("device.key", after, sizeof(after)), before_len);
        ck_assert_mem_eq(after, before, before_len);
    }
}

START_TEST(test_corrupt_key_is_an_error)
{
    struct keys k;
    char err[256] = "";
    uint8_t good[WIRE_SK_LEN], bad[WIRE_SK_LEN + 1], pk[WIRE_PK_LEN];

    ck_assert_int_eq(keys_load_or_create(kdir, &k, err, sizeof(err)), 0);
    memcpy(good, k.sk, sizeof(good));
    memcpy(pk, k.pk, sizeof(pk));
    keys_wipe(&k);

    /* Truncated, as a power cut during a copy would leave it. */
    write_file("device.key", good, 10);
    expect_bad("truncated", good, 10);
    /* Empty. */
    write_file("device.key", good, 0);
    expect_bad("empty", NULL, 0);
    /* Too long. */
    memcpy(bad, good, WIRE_SK_LEN);
    bad[WIRE_SK_LEN] = '\n';
    write_file("device.key", bad, sizeof(bad));
    expect_bad("too long", bad, sizeof(bad));
    /* Right size, flipped bits in the seed: no longer matches device.pub. */
    memcpy(bad, good, WIRE_SK_LEN);
    bad[3] ^= 0x40;
    write_file("device.key", bad, WIRE_SK_LEN);
    expect_bad("flipped", bad, WIRE_SK_LEN);
    /* Right key, public half damaged. */
    write_file("device.key", good, WIRE_SK_LEN);
    pk[0] ^= 1;
    write_file("device.pub", pk, WIRE_PK_LEN);
    expect_bad("pub mismatch", good, WIRE_SK_LEN);
    /* Right key, public half missing. */
    {
        char p[700];
        path_in(p, sizeof(p), "device.pub");
        ck_assert_int_eq(unlink(p), 0);
    }
    expect_bad("pub missing", good, WIRE_SK_LEN);

    /* Repaired, it loads again as the same device. */
    pk[0] ^= 1;
    write_file("device.pub", pk, WIRE_PK_LEN);
    ck_assert_int_eq(keys_load_or_create(kdir, &k, err, sizeof(err)), 0);
    ck_assert_int_eq(k.created, 0);
    ck_assert_mem_eq(k.sk, good, WIRE_SK_LEN);
    keys_wipe(&k);
}
END_TEST

START_TEST(test_unusable_folder)
{
    struct keys k;
    char err[256] = "", p[700];
    FILE *f;

    /* The key folder's parent is a file. */
    snprintf(p, sizeof(p), "%s/var", dir);
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(keys_load_or_create(kdir, &k, err, sizeof(err)), KEYS_EIO);
    ck_assert_msg(strstr(err, "key-dir") != NULL, "message '%s'", err);
}
END_TEST

/* `precursor-agent enroll` refuses a usage error with status 2 before it
 * makes a key: an unknown option is named as such (not "needs a value"),
 * a missing one is named, --name=value works as it does for run. */
static int enroll_args(const char *a0, const char *a1, const char *a2, const char *a3,
                       const char *a4, const char *a5, const char *a6, const char *a7)
{
    char *argv[9] = { (char *)a0, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5,
                      (char *)a6, (char *)a7, NULL };
    int argc = 0;

    while (argc < 8 && argv[argc])
        argc++;
    return enroll_main(argc, argv);
}

START_TEST(test_enroll_usage_errors_make_no_key)
{
    static const char tok[] = "pen_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    struct stat st;

    ck_assert_int_eq(enroll_args("--bogus", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ck_assert_int_eq(enroll_args("--server", "http://127.0.0.1:9", "--token", tok, "--key-dir",
                                 kdir, NULL, NULL), 2);                  /* no --device-id */
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--token", tok, "--device-id",
                                 "a b", "--key-dir", kdir, NULL), 2);    /* bad id */
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--token=NOT-A-TOKEN",
                                 "--device-id=d1", "--key-dir", kdir, NULL, NULL, NULL), 2);
    ck_assert_int_eq(enroll_args("--server", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 2);
    /* A server left out before the next flag, and one that is no URL: usage
     * errors, not a key made and a request to "--token" or "foo". */
    ck_assert_int_eq(enroll_args("--server", "--token", tok, "--device-id=d1", "--key-dir", kdir,
                                 NULL, NULL), 2);
    ck_assert_int_eq(enroll_args("--server", "foo", "--token", tok, "--device-id=d1", "--key-dir",
                                 kdir, NULL), 2);
    /* A CA file for a plain-HTTP server would check nothing. */
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--token", tok, "--device-id=d1",
                                 "--key-dir", kdir, "--ca-file=ca.pem", NULL), 2);
    ck_assert_int_ne(stat(kdir, &st), 0);
    /* Well formed: past the usage checks, the key made, then refused by
     * the network (nothing listens on port 9 of loopback): 1, not 2. */
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--token", tok,
                                 "--device-id=d1", "--key-dir", kdir, NULL, NULL), 1);
    ck_assert_int_eq(stat(kdir, &st), 0);
}
END_TEST

/* The token kept out of argv: --token-file (- for standard input) or
 * PRECURSOR_ENROLL_TOKEN.  A missing or empty file, and two sources at once,
 * are usage errors (2) before any key is made; a good file gets as far as
 * the network (1). */
START_TEST(test_enroll_token_sources)
{
    static const char tok[] = "pen_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char tf[700], empty[700], blank[700];
    struct stat st;
    FILE *f;

    snprintf(tf, sizeof tf, "%s/token", dir);
    snprintf(empty, sizeof empty, "%s/empty", dir);
    snprintf(blank, sizeof blank, "%s/blank", dir);
    f = fopen(tf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", tok);             /* as `enroll create > file` leaves it */
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(tf, 0600), 0);
    f = fopen(empty, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fclose(f), 0);
    f = fopen(blank, "w");
    ck_assert_ptr_nonnull(f);
    fputs("\n", f);
    ck_assert_int_eq(fclose(f), 0);
    unsetenv("PRECURSOR_ENROLL_TOKEN");

    /* No token at all, a missing file, an empty one, one holding a newline only. */
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, NULL, NULL, NULL, NULL), 2);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, "--token-file", "/nonexistent/token", NULL, NULL), 2);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, "--token-file", empty, NULL, NULL), 2);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, "--token-file", blank, NULL, NULL), 2);
    /* Two sources: which one was meant is not guessed. */
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, "--token-file", tf, "--token", tok), 2);
    ck_assert_int_eq(setenv("PRECURSOR_ENROLL_TOKEN", tok, 1), 0);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, "--token-file", tf, NULL, NULL), 2);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, "--token", tok, NULL, NULL), 2);
    /* Set but empty: as if unset, so the flag alone is fine... */
    ck_assert_int_eq(setenv("PRECURSOR_ENROLL_TOKEN", "", 1), 0);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, NULL, NULL, NULL, NULL), 2);
    /* ...and an environment token that is not one is refused as such. */
    ck_assert_int_eq(setenv("PRECURSOR_ENROLL_TOKEN", "pen-NOT-A-TOKEN", 1), 0);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, NULL, NULL, NULL, NULL), 2);
    ck_assert_int_ne(stat(kdir, &st), 0);

    /* Each source alone, well formed: past the checks to the network. */
    ck_assert_int_eq(setenv("PRECURSOR_ENROLL_TOKEN", tok, 1), 0);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, NULL, NULL, NULL, NULL), 1);
    unsetenv("PRECURSOR_ENROLL_TOKEN");
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, "--token-file", tf, NULL, NULL), 1);
    ck_assert_int_eq(enroll_args("--server=http://127.0.0.1:9", "--device-id=d1", "--key-dir",
                                 kdir, "--token-file=" , NULL, NULL, NULL), 2);
    ck_assert_int_eq(stat(kdir, &st), 0);
}
END_TEST

/* The `registered` marker names what was registered: the same server (up
 * to a trailing '/' and case), id and key match; another of any is
 * KEYS_MARKER_OTHER with a message naming what the marker holds; an older
 * agent's "ok" (or an empty file made by hand) names nothing and is taken as
 * a match. */
START_TEST(test_marker_names_its_registration)
{
    struct keys k, other;
    char err[256] = "", what[400], text[512], p[700];
    uint8_t pk2[WIRE_PK_LEN];
    struct stat st;
    size_t n;

    ck_assert_int_eq(keys_load_or_create(kdir, &k, err, sizeof(err)), 0);
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_NONE);

    ck_assert_int_eq(keys_mark_registered(kdir, "http://a:8080/", "d1", k.pk), 0);
    path_in(p, sizeof(p), "registered");
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_msg((st.st_mode & 07777) == 0644, "marker mode %o", st.st_mode & 07777);
    n = read_file("registered", text, sizeof(text) - 1);
    text[n] = '\0';
    ck_assert_msg(strncmp(text, "ok\n", 3) == 0, "an older agent's reading: '%s'", text);
    ck_assert_msg(strstr(text, "\nserver=http://a:8080\n") && strstr(text, "\ndevice-id=d1\n") &&
                  strstr(text, "\npublic-key="), "marker '%s'", text);

    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_MATCH);
    ck_assert_int_eq(keys_registration(kdir, "HTTP://A:8080/", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_MATCH);
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", NULL, what, sizeof(what)),
                     KEYS_MARKER_MATCH);
    /* Another server, another id, another scheme, another key. */
    ck_assert_int_eq(keys_registration(kdir, "http://b:8080", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_OTHER);
    ck_assert_msg(strstr(what, "http://a:8080") && strstr(what, "d1"), "what '%s'", what);
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d2", k.pk, what, sizeof(what)),
                     KEYS_MARKER_OTHER);
    ck_assert_int_eq(keys_registration(kdir, "https://a:8080", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_OTHER);
    ck_assert_int_eq(keys_registration(kdir, "http://a:80801", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_OTHER);
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d", k.pk, what, sizeof(what)),
                     KEYS_MARKER_OTHER);
    memcpy(pk2, k.pk, sizeof(pk2));
    pk2[0] ^= 1;
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", pk2, what, sizeof(what)),
                     KEYS_MARKER_OTHER);
    ck_assert_msg(strstr(what, "another key") != NULL, "what '%s'", what);
    /* Written anew for the new registration: a temporary name, renamed. */
    ck_assert_int_eq(keys_mark_registered(kdir, "http://b:8080", "d2", pk2), 0);
    ck_assert_int_eq(keys_registration(kdir, "http://b:8080", "d2", pk2, what, sizeof(what)),
                     KEYS_MARKER_MATCH);
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_OTHER);
    ck_assert_int_eq(stray_entries(), 1);       /* the marker, no temporary */

    /* The upgrade path: what older agents wrote, and what a bench or a
     * person makes by hand. */
    write_file("registered", "ok\n", 3);
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_LEGACY);
    write_file("registered", "", 0);
    ck_assert_int_eq(keys_registration(kdir, "http://b:8080", "d9", k.pk, what, sizeof(what)),
                     KEYS_MARKER_LEGACY);
    /* Half a marker (a server, no id) is not a match for anything; CRLF
     * line ends (edited on another system) are read. */
    write_file("registered", "server=http://a:8080\n", strlen("server=http://a:8080\n"));
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_OTHER);
    {
        static const char crlf[] = "ok\r\nserver=http://a:8080\r\ndevice-id=d1\r\n";
        write_file("registered", crlf, strlen(crlf));
    }
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_MATCH);

    /* Another folder has no marker. */
    snprintf(kdir, sizeof(kdir), "%s/var/dev-2", dir);
    ck_assert_int_eq(keys_load_or_create(kdir, &other, err, sizeof(err)), 0);
    ck_assert_int_eq(keys_registration(kdir, "http://a:8080", "d1", other.pk, what,
                                       sizeof(what)), KEYS_MARKER_NONE);
    keys_wipe(&k);
    keys_wipe(&other);
}
END_TEST

/* ---- one registration request against a scripted server ---- */

static struct {
    unsigned status;                /* the next answer */
    const char *body;
    char got[1024];                 /* the last request's body */
    pthread_mutex_t mu;
} reg = { .mu = PTHREAD_MUTEX_INITIALIZER };

static enum MHD_Result reg_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *data,
                                   size_t *data_size, void **ctx)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls; (void)method; (void)version;
    if (*ctx == NULL) {
        *ctx = &reg;
        pthread_mutex_lock(&reg.mu);
        reg.got[0] = '\0';
        pthread_mutex_unlock(&reg.mu);
        return MHD_YES;
    }
    if (*data_size) {
        pthread_mutex_lock(&reg.mu);
        strncat(reg.got, data, *data_size < sizeof(reg.got) - strlen(reg.got) - 1
                                   ? *data_size : sizeof(reg.got) - strlen(reg.got) - 1);
        pthread_mutex_unlock(&reg.mu);
        *data_size = 0;
        return MHD_YES;
    }
    ck_assert_str_eq(url, "/api/v1/devices/register");
    r = MHD_create_response_from_buffer(strlen(reg.body), (void *)reg.body,
                                        MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, reg.status, r);
    MHD_destroy_response(r);
    return ret;
}

/* What an agent whose server forgot it sends: the same id and key with the
 * secret, once.  201 registers and writes the marker; 5xx, 429 and no
 * server at all may pass (KEYS_ENET); 403 and 409 are refusals; a set abort
 * flag ends it at once. */
START_TEST(test_register_once)
{
    struct MHD_Daemon *d;
    struct keys k;
    char err[512], url[64], secret[700], what[128];
    atomic_bool abort_flag = false;
    uint16_t port;

    ck_assert_int_eq(keys_load_or_create(kdir, &k, err, sizeof(err)), 0);
    snprintf(secret, sizeof(secret), "%s/secret", dir);
    {
        FILE *f = fopen(secret, "w");
        ck_assert_ptr_nonnull(f);
        fputs("s3cret\n", f);
        fclose(f);
    }
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, reg_handler, NULL,
                         MHD_OPTION_END);
    ck_assert_ptr_nonnull(d);
    port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    keys_tls(NULL, NULL);

    reg.status = 503;
    reg.body = "{\"error\":{\"code\":\"unavailable\"}}";
    ck_assert_int_eq(keys_register_once(kdir, url, "dev-1", &k, secret, &abort_flag, err,
                                        sizeof(err)), KEYS_ENET);
    ck_assert_ptr_nonnull(strstr(err, "503"));
    ck_assert_int_eq(keys_registration(kdir, url, "dev-1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_NONE);
    reg.status = 429;
    ck_assert_int_eq(keys_register_once(kdir, url, "dev-1", &k, secret, NULL, err,
                                        sizeof(err)), KEYS_ENET);
    reg.status = 403;
    reg.body = "{\"error\":{\"code\":\"enrollment_refused\"}}";
    ck_assert_int_eq(keys_register_once(kdir, url, "dev-1", &k, secret, NULL, err,
                                        sizeof(err)), KEYS_EREFUSED);
    ck_assert_ptr_nonnull(strstr(err, "enrollment secret wrong"));
    reg.status = 409;
    ck_assert_int_eq(keys_register_once(kdir, url, "dev-1", &k, secret, NULL, err,
                                        sizeof(err)), KEYS_EREFUSED);
    reg.status = 201;
    reg.body = "{\"device_id\":\"dev-1\",\"status\":\"active\"}";
    ck_assert_int_eq(keys_register_once(kdir, url, "dev-1", &k, secret, &abort_flag, err,
                                        sizeof(err)), KEYS_OK);
    ck_assert_str_eq(err, "");
    ck_assert_ptr_nonnull(strstr(reg.got, "\"device_id\":\"dev-1\""));
    ck_assert_ptr_nonnull(strstr(reg.got, "\"enroll_secret\":\"s3cret\""));
    ck_assert_int_eq(keys_registration(kdir, url, "dev-1", k.pk, what, sizeof(what)),
                     KEYS_MARKER_MATCH);
    /* Stopping: the request is not made (or is cut short). */
    atomic_store(&abort_flag, true);
    ck_assert_int_eq(keys_register_once(kdir, url, "dev-1", &k, secret, &abort_flag, err,
                                        sizeof(err)), KEYS_ENET);
    MHD_stop_daemon(d);
    /* Nobody listens now. */
    ck_assert_int_eq(keys_register_once(kdir, url, "dev-1", &k, secret, NULL, err,
                                        sizeof(err)), KEYS_ENET);
    ck_assert_ptr_nonnull(strstr(err, url));
    /* A secret file that cannot be read: said, no request. */
    ck_assert_int_eq(keys_register_once(kdir, url, "dev-1", &k, "/nonexistent/secret", NULL,
                                        err, sizeof(err)), KEYS_EIO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/secret"));
    keys_wipe(&k);
}
END_TEST

Suite *keys_suite(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_generate_0600_atomic);
    tcase_add_test(tc, test_reload_same_key);
    tcase_add_test(tc, test_corrupt_key_is_an_error);
    tcase_add_test(tc, test_unusable_folder);
    tcase_add_test(tc, test_enroll_usage_errors_make_no_key);
    tcase_add_test(tc, test_enroll_token_sources);
    tcase_add_test(tc, test_marker_names_its_registration);
    tcase_add_test(tc, test_register_once);
    suite_add_tcase(s, tc);
    return s;
}
