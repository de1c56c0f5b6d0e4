/* keys.c - device key pair on disk and registration over HTTP (agent/net). */
#include "agent/fleet/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/net/net.h"
#include "agent/upload/upload.h"

#define SECRET_MAX 1024

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* mkdir -p with mode for the last component and any created parent. */
static int mkdirs(const char *dir, mode_t mode)
{
    char buf[1024];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, dir, len + 1);
    for (char *q = buf + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *q = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int read_exact(const char *path, uint8_t *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    size_t got = 0;

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || st.st_size != (off_t)len) {
        close(fd);
        errno = EINVAL;
        return -2;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            close(fd);
            return -2;
        }
        got += (size_t)r;
    }
    close(fd);
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Temporary name, write, fsync, rename, fsync the folder. */
static int write_atomic(const char *dir, const char *name, const uint8_t *buf, size_t len,
                        mode_t mode)
{
    char path[1100], tmp[1120];
    size_t off = 0;
    int fd;

    if (path_join(path, sizeof(path), dir, name) != 0)
        return -1;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) != 0)
        goto fail;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    close(fd);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return fsync_dir(dir);
fail:
    close(fd);
    unlink(tmp);
    return -1;
}

int keys_load_or_create(const char *dir, struct keys *k, char *err, size_t errlen)
{
    char skp[1100], pkp[1100];
    uint8_t derived[WIRE_PK_LEN], seed[crypto_sign_SEEDBYTES], check_sk[WIRE_SK_LEN];
    int rc;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return KEYS_EIO;
    }
    if (path_join(skp, sizeof(skp), dir, "device.key") != 0 ||
        path_join(pkp, sizeof(pkp), dir, "device.pub") != 0) {
        snprintf(err, errlen, "key-dir path too long");
        return KEYS_EINVAL;
    }
    if (mkdirs(dir, 0700) != 0) {
        snprintf(err, errlen, "create key-dir %s: %s", dir, strerror(errno));
        return KEYS_EIO;
    }
    rc = read_exact(skp, k->sk, WIRE_SK_LEN);
    if (rc == 0) {
        /* Recompute the public key from the seed (the first half): the
         * stored second half is only a copy, so comparing it would miss a
         * damaged seed and the device would sign with a key nobody knows. */
        if (crypto_sign_ed25519_sk_to_seed(seed, k->sk) != 0 ||
            crypto_sign_seed_keypair(derived, check_sk, seed) != 0 ||
            sodium_memcmp(check_sk, k->sk, WIRE_SK_LEN) != 0 ||
            read_exact(pkp, k->pk, WIRE_PK_LEN) != 0 ||
            sodium_memcmp(derived, k->pk, WIRE_PK_LEN) != 0) {
            sodium_memzero(seed, sizeof(seed));
            sodium_memzero(check_sk, sizeof(check_sk));
            sodium_memzero(k->sk, sizeof(k->sk));
            snprintf(err, errlen, "%s and %s do not form a key pair", skp, pkp);
            return KEYS_EBADKEY;
        }
        sodium_memzero(seed, sizeof(seed));
        sodium_memzero(check_sk, sizeof(check_sk));
        k->created = 0;
        return 0;
    }
    if (rc == -2 || errno != ENOENT) {
        snprintf(err, errlen, "read %s: %s", skp, rc == -2 ? "not a 64-byte key" : strerror(errno));
        return KEYS_EBADKEY;
    }
    crypto_sign_keypair(k->pk, k->sk);
    /* Public key first: a crash between the two leaves no secret without it
     * that would be regenerated over. */
    if (write_atomic(dir, "device.pub", k->pk, WIRE_PK_LEN, 0644) != 0 ||
        write_atomic(dir, "device.key", k->sk, WIRE_SK_LEN, 0600) != 0) {
        snprintf(err, errlen, "write key pair in %s: %s", dir, strerror(errno));
        sodium_memzero(k->sk, sizeof(k->sk));
        return KEYS_EIO;
    }
    k->created = 1;
    return 0;
}

void keys_wipe(struct keys *k)
{
    sodium_memzero(k, sizeof(*k));
}

#define MARKER_MAX 4096

/* A server URL's length without trailing '/'. */
static size_t server_len(const char *s)
{
    size_t n = strlen(s);

    while (n > 0 && s[n - 1] == '/')
        n--;
    return n;
}

static int same_server(const char *a, size_t alen, const char *b)
{
    return alen == server_len(b) && strncasecmp(a, b, alen) == 0;
}

/* The value of "name=" in the marker's lines, as pointer and length; NULL
 * when absent. */
static const char *marker_value(const char *text, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *line = text;

    while (*line) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);

        if (ll > n && strncmp(line, name, n) == 0 && line[n] == '=') {
            *len = ll - n - 1;
            if (*len > 0 && line[n + 1 + *len - 1] == '\r')
                (*len)--;
            return line + n + 1;
        }
        line += ll + (end != NULL);
    }
    return NULL;
}

enum keys_marker keys_registration(const char *dir, const char *server, const char *device_id,
                                   const uint8_t pk[WIRE_PK_LEN], char *what, size_t cap)
{
    char p[1100], text[MARKER_MAX], b64[sodium_base64_ENCODED_LEN(WIRE_PK_LEN,
                                                                 sodium_base64_VARIANT_ORIGINAL)];
    const char *srv, *dev, *key;
    size_t n, srv_len = 0, dev_len = 0, key_len = 0;
    FILE *f;

    if (cap > 0)
        what[0] = '\0';
    if (path_join(p, sizeof(p), dir, "registered") != 0 || (f = fopen(p, "r")) == NULL)
        return KEYS_MARKER_NONE;
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    srv = marker_value(text, "server", &srv_len);
    dev = marker_value(text, "device-id", &dev_len);
    key = marker_value(text, "public-key", &key_len);
    /* Written before the marker named anything ("ok", or a file made by
     * hand): registered, with what the config says then. */
    if (srv == NULL && dev == NULL && key == NULL)
        return KEYS_MARKER_LEGACY;
    if (srv == NULL || dev == NULL || !same_server(srv, srv_len, server) ||
        dev_len != strlen(device_id) || strncmp(dev, device_id, dev_len) != 0) {
        /* Bounded: the marker is a file anyone with the folder can edit. */
        int dl = dev ? (int)(dev_len < 64 ? dev_len : 64) : 1;
        int sl = srv ? (int)(srv_len < 300 ? srv_len : 300) : 1;

        snprintf(what, cap, "device %.*s with server %.*s", dl, dev ? dev : "?", sl,
                 srv ? srv : "?");
        return KEYS_MARKER_OTHER;
    }
    if (pk != NULL && key != NULL) {
        sodium_bin2base64(b64, sizeof(b64), pk, WIRE_PK_LEN, sodium_base64_VARIANT_ORIGINAL);
        if (key_len != strlen(b64) || strncmp(key, b64, key_len) != 0) {
            snprintf(what, cap, "device %s with server %.300s, but another key", device_id,
                     server);
            return KEYS_MARKER_OTHER;
        }
    }
    return KEYS_MARKER_MATCH;
}

static int read_secret(const char *path, char *out, size_t cap, char *err, size_t errlen)
{
    FILE *f;
    size_t n;

    out[0] = '\0';
    if (path == NULL || *path == '\0')
        return 0;
    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "enroll-secret-file %s: %s", path, strerror(errno));
        return KEYS_EIO;
    }
    n = fread(out, 1, cap - 1, f);
    if (n == cap - 1 && fgetc(f) != EOF) {
        fclose(f);
        snprintf(err, errlen, "enroll-secret-file %s: longer than %d bytes", path, SECRET_MAX - 1);
        return KEYS_EINVAL;
    }
    fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' ||
                     out[n - 1] == '\t'))
        out[--n] = '\0';
    return 0;
}

/* keys_post_json, cut short when *abort is set (abort may be NULL). */
static int post_json(const char *url, const char *json, const char *ca_file, const char *pin,
                     const atomic_bool *abort, long *status, char *reply, size_t reply_cap)
{
    struct net_client *c;
    struct net_request rq = {
        .method = "POST", .url = url, .headers = "Content-Type: application/json\r\n",
        .body = json, .body_len = strlen(json), .connect_timeout_s = 10, .timeout_s = 30,
        .truncate = 1,          /* only the start of a body is kept: it is for messages */
        .abort = abort,
    };
    struct net_response rs = { .body = (uint8_t *)reply, .body_cap = reply_cap };
    int rc;

    *status = 0;
    reply[0] = '\0';
    if ((rc = net_client_new(ca_file, pin, &c)) != 0) {
        snprintf(reply, reply_cap, "the HTTP client could not be set up: %s", net_strerror(rc));
        return -1;
    }
    rc = net_request(c, &rq, &rs);
    net_client_free(c);
    if (rc != 0) {
        snprintf(reply, reply_cap, "%s", rs.err);
        return -1;
    }
    *status = rs.status;
    return 0;
}

int keys_post_json(const char *url, const char *json, const char *ca_file, const char *pin,
                   long *status, char *reply, size_t reply_cap)
{
    return post_json(url, json, ca_file, pin, NULL, status, reply, reply_cap);
}

int keys_mark_registered(const char *dir, const char *server, const char *device_id,
                         const uint8_t pk[WIRE_PK_LEN])
{
    char text[MARKER_MAX], b64[sodium_base64_ENCODED_LEN(WIRE_PK_LEN,
                                                          sodium_base64_VARIANT_ORIGINAL)];
    int n;

    sodium_bin2base64(b64, sizeof(b64), pk, WIRE_PK_LEN, sodium_base64_VARIANT_ORIGINAL);
    /* "ok" first: an older agent reads only that the file is there. */
    n = snprintf(text, sizeof(text), "ok\nserver=%.*s\ndevice-id=%s\npublic-key=%s\n",
                 (int)server_len(server), server, device_id, b64);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return write_atomic(dir, "registered", (const uint8_t *)text, (size_t)n, 0644);
}

static void sleep_stoppable(unsigned ms, atomic_int *stop)
{
    while (ms > 0 && (stop == NULL || !atomic_load(stop))) {
        unsigned step = ms < 100 ? ms : 100;
        struct timespec ts = { 0, (long)step * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Borrowed from the agent's config, which outlives every registration. */
static const char *tls_ca_file, *tls_pin;

void keys_tls(const char *ca_file, const char *pin_sha256)
{
    tls_ca_file = ca_file;
    tls_pin = pin_sha256;
}

/* The registration request's body, malloc'd; NULL (err says why) when the
 * secret cannot be read or memory is short.  *have_secret: one was given. */
static char *register_body(const char *device_id, const struct keys *k, const char *secret_file,
                           int *have_secret, int *rc, char *err, size_t errlen)
{
    char secret[SECRET_MAX], b64[sodium_base64_ENCODED_LEN(WIRE_PK_LEN,
                                                            sodium_base64_VARIANT_ORIGINAL)];
    json_t *j;
    char *json;

    *rc = read_secret(secret_file, secret, sizeof(secret), err, errlen);
    if (*rc != 0)
        return NULL;
    sodium_bin2base64(b64, sizeof(b64), k->pk, WIRE_PK_LEN, sodium_base64_VARIANT_ORIGINAL);
    j = json_pack("{s:s, s:s, s:s}", "device_id", device_id, "public_key", b64,
                  "enroll_secret", secret);
    json = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    *have_secret = secret[0] != '\0';
    sodium_memzero(secret, sizeof(secret));
    if (json == NULL) {
        snprintf(err, errlen, "out of memory");
        *rc = KEYS_EINVAL;
    }
    return json;
}

/* One request: KEYS_OK (marker written), KEYS_ENET (no answer, or one that
 * may change: 5xx, 408, 429; reply says which) or KEYS_EREFUSED (err). */
static int register_attempt(const char *url, const char *json, int have_secret, const char *dir,
                            const char *server, const char *device_id, const struct keys *k,
                            const atomic_bool *abort, char *reply, size_t reply_cap,
                            char *err, size_t errlen)
{
    long status = 0;
    int net = post_json(url, json, tls_ca_file, tls_pin, abort, &status, reply, reply_cap);

    if (status == 200 || status == 201) {
        if (keys_mark_registered(dir, server, device_id, k->pk) != 0)
            snprintf(err, errlen, "registered, but cannot write marker in %s: %s", dir,
                     strerror(errno));
        return KEYS_OK;
    }
    if (status == 403 || status == 409 || (status >= 400 && status < 500 && status != 408 &&
                                            status != 429)) {
        snprintf(err, errlen, "registration of %s refused (HTTP %ld%s): %.300s", device_id,
                 status,
                 status == 403 && !have_secret
                     ? ": not enrolled with this server and no --enroll-secret-file; "
                       "enroll it first (precursor-agent enroll --token-file, "
                       "docs/FLEET.md) or give the secret" :
                 status == 403 ? ", enrollment secret wrong" :
                 status == 409 ? ", this device id is registered with another key" : "",
                 reply);
        return KEYS_EREFUSED;
    }
    if (net == 0)
        snprintf(reply, reply_cap, "server error (HTTP %ld)", status);
    return KEYS_ENET;
}

/* The registration's URL (into url, cap bytes) and its JSON body
 * (malloc'd; NULL with *rc and err saying why). */
static char *register_request(const char *server, const char *device_id, const struct keys *k,
                              const char *secret_file, char *url, size_t cap, int *have_secret,
                              int *rc, char *err, size_t errlen)
{
    if (snprintf(url, cap, "%s/api/v1/devices/register", server) >= (int)cap) {
        snprintf(err, errlen, "server URL too long");
        *rc = KEYS_EINVAL;
        return NULL;
    }
    return register_body(device_id, k, secret_file, have_secret, rc, err, errlen);
}

int keys_register_once(const char *dir, const char *server, const char *device_id,
                       const struct keys *k, const char *secret_file, const atomic_bool *abort,
                       char *err, size_t errlen)
{
    char url[1200], reply[1024];
    char *json;
    int rc, have_secret = 0;

    if (errlen > 0)
        err[0] = '\0';
    json = register_request(server, device_id, k, secret_file, url, sizeof(url), &have_secret, &rc,
                            err, errlen);
    if (json == NULL)
        return rc;
    rc = register_attempt(url, json, have_secret, dir, server, device_id, k, abort, reply,
                          sizeof(reply), err, errlen);
    if (rc == KEYS_ENET)
        snprintf(err, errlen, "%s: %s", url, reply);
    free(json);
    return rc;
}

int keys_register(const char *dir, const char *server, const char *device_id,
                  const struct keys *k, const char *secret_file, atomic_int *stop,
                  char *err, size_t errlen)
{
    char url[1200];
    char *json;
    unsigned delay_ms = 1000;
    int rc, have_secret = 0;

    json = register_request(server, device_id, k, secret_file, url, sizeof(url), &have_secret, &rc,
                            err, errlen);
    if (json == NULL)
        return rc;
    for (;;) {
        char reply[1024];

        rc = register_attempt(url, json, have_secret, dir, server, device_id, k, NULL, reply,
                              sizeof(reply), err, errlen);
        if (rc != KEYS_ENET)
            break;
        fprintf(stderr, "agent: register %s: %s; retrying in %u ms\n", url, reply, delay_ms);
        sleep_stoppable(delay_ms, stop);
        if (stop != NULL && atomic_load(stop)) {
            snprintf(err, errlen, "stopped before registration succeeded");
            rc = KEYS_ENET;
            break;
        }
        delay_ms = delay_ms * 2 > 60000 ? 60000 : delay_ms * 2;
    }
    free(json);
    return rc;
}
