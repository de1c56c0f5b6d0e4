/* precursor-loadgen - a fleet of N devices uploading signed snapshots, for
 * measuring a running server end to end (a contract outside tools rely on):
 *
 *   precursor-loadgen --url URL --devices N --seconds S --snapshot-bytes B
 *                     [--credentials FILE] [--presign K] [--rate R]
 *
 * It logs in as the admin of FILE (default var/demo-credentials: lines
 * admin_user=, admin_password=, optionally api_token=; an admin API token is
 * tried first, the browser session API otherwise), creates its own reusable,
 * pre-approved enrollment token, enrolls N fresh devices (keys made here, as
 * a device would), then runs N connections, one per device, each encoding
 * (zstd + Ed25519, the agent's own wire_encode) and POSTing snapshots of
 * about B bytes for S seconds.  429/503 are counted as errors and their
 * Retry-After honoured, as the agent does.  Stdout gets exactly one line:
 *
 *   snapshots_per_s=X p50_ms=Y p99_ms=Z errors=E
 *
 * (latency of the successful uploads, from the first byte sent to the
 * answer; errors = every upload not answered 2xx).  Everything else goes to
 * stderr.  --presign K encodes K envelopes per device before the clock
 * starts, so a run on the server's own machine measures the server and not
 * the client's compression and signatures; default 0: encode while sending,
 * like a real device.  --rate R paces the fleet at R snapshots/s in all
 * (each device at R/N, open loop, on its own clock with a random phase, as
 * devices trigger independently), and the line gets one more field,
 * p99_from_due_ms=W: the p99 counted from when each upload was due rather
 * than sent, so a device still busy with its previous upload (or a client
 * thread woken late by a loaded machine) adds its wait (no coordinated
 * omission).  Default 0: every device sends again as soon as answered. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "schema/wire.h"
#include "version.h"

#define LG_MAX_DEVICES 4096
#define LG_MAX_SECONDS 86400
#define LG_MIN_BYTES 256
#define LG_MAX_BYTES (16u << 20)
#define LG_BODY_CAP 65536           /* answers we read (JSON, small) */
#define LG_CRED_LINE 512

struct opts {
    const char *url;
    const char *credentials;
    unsigned devices;
    unsigned seconds;
    size_t snapshot_bytes;
    unsigned presign;
    double rate;            /* fleet-wide snapshots/s; 0: flat out */
};

struct buf {
    char *p;
    size_t len;
};

struct device {
    char id[WIRE_MAX_NAME + 1];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t **pre;          /* presigned envelopes, owned */
    size_t *pre_len;
    unsigned npre;
    /* results of this device's thread */
    double *lat_ms, *due_ms;      /* from send; from due (--rate) */
    size_t nlat, lat_cap;
    unsigned long long ok, errors;
    double phase;           /* --rate: where in the period this device starts, 0..1 */
    pthread_t thread;
};

static struct opts o = { .credentials = "var/demo-credentials" };
static char base[1024];
static unsigned nsamples;           /* per snapshot, calibrated to --snapshot-bytes */
static atomic_int started, stop_flag;
static double t_end;

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: precursor-loadgen --url URL --devices N --seconds S --snapshot-bytes B\n"
               "                         [--credentials FILE] [--presign K] [--rate R]\n"
               "  --url URL           the server's base URL, e.g. http://127.0.0.1:8080\n"
               "  --devices N         devices enrolled and uploading, one connection each\n"
               "                      (1..%u)\n"
               "  --seconds S         how long the uploads run (1..%u)\n"
               "  --snapshot-bytes B  about this many bytes per signed envelope (%u..%u)\n"
               "  --credentials FILE  admin_user=, admin_password= (and api_token=) lines\n"
               "                      (default var/demo-credentials)\n"
               "  --presign K         encode K envelopes per device before timing (default 0)\n"
               "  --rate R            pace the fleet at R snapshots/s in all, latency counted\n"
               "                      from when each upload was due (default 0: flat out)\n"
               "  --version           print this build's version and exit\n"
               "  --help              this text\n"
               "prints: snapshots_per_s=X p50_ms=Y p99_ms=Z errors=E\n"
               "        (with --rate, one more field: p99_from_due_ms=W)\n",
            (unsigned)LG_MAX_DEVICES, (unsigned)LG_MAX_SECONDS, (unsigned)LG_MIN_BYTES,
            (unsigned)LG_MAX_BYTES);
}

static int parse_u(const char *flag, const char *s, unsigned long long lo,
                   unsigned long long hi, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
        fprintf(stderr, "precursor-loadgen: %s must be an integer in %llu..%llu\n", flag, lo,
                hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        unsigned long long v;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--version") == 0) {
            printf("precursor-loadgen %s\n", PRECURSOR_VERSION_TEXT);
            exit(0);
        }
        static const char *const known[] = { "--url", "--credentials", "--devices", "--seconds",
                                             "--snapshot-bytes", "--presign", "--rate" };
        size_t k;

        for (k = 0; k < sizeof known / sizeof known[0] && strcmp(a, known[k]) != 0; k++)
            ;
        if (k == sizeof known / sizeof known[0]) {
            fprintf(stderr, "precursor-loadgen: unknown argument %s (see --help)\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "precursor-loadgen: %s needs a value\n", a);
            return -1;
        }
        if (strcmp(a, "--url") == 0) {
            o.url = argv[++i];
        } else if (strcmp(a, "--credentials") == 0) {
            o.credentials = argv[++i];
        } else if (strcmp(a, "--devices") == 0) {
            if (parse_u(a, argv[++i], 1, LG_MAX_DEVICES, &v) != 0)
                return -1;
            o.devices = (unsigned)v;
        } else if (strcmp(a, "--seconds") == 0) {
            if (parse_u(a, argv[++i], 1, LG_MAX_SECONDS, &v) != 0)
                return -1;
            o.seconds = (unsigned)v;
        } else if (strcmp(a, "--snapshot-bytes") == 0) {
            if (parse_u(a, argv[++i], LG_MIN_BYTES, LG_MAX_BYTES, &v) != 0)
                return -1;
            o.snapshot_bytes = (size_t)v;
        } else if (strcmp(a, "--presign") == 0) {
            if (parse_u(a, argv[++i], 0, 100000, &v) != 0)
                return -1;
            o.presign = (unsigned)v;
        } else if (strcmp(a, "--rate") == 0) {
            if (parse_u(a, argv[++i], 0, 1000000, &v) != 0)
                return -1;
            o.rate = (double)v;
        } else {
            fprintf(stderr, "precursor-loadgen: unknown argument %s\n", a);
            return -1;
        }
    }
    if (!o.url || !o.devices || !o.seconds || !o.snapshot_bytes) {
        fprintf(stderr, "precursor-loadgen: %s is required\n",
                !o.url ? "--url" : !o.devices ? "--devices" : !o.seconds ? "--seconds"
                                                                       : "--snapshot-bytes");
        usage(stderr);
        return -1;
    }
    if (strlen(o.url) >= sizeof base - 64) {
        fprintf(stderr, "precursor-loadgen: --url too long\n");
        return -1;
    }
    snprintf(base, sizeof base, "%s", o.url);
    while (strlen(base) && base[strlen(base) - 1] == '/')
        base[strlen(base) - 1] = '\0';
    return 0;
}

/* key=value from the credentials file; 0 and out filled, or -1. */
static int cred_get(const char *key, char *out, size_t cap)
{
    FILE *f = fopen(o.credentials, "r");
    char line[LG_CRED_LINE];
    size_t kl = strlen(key);
    int found = -1;

    if (!f)
        return -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");

        line[n] = '\0';
        if (strncmp(line, key, kl) == 0 && line[kl] == '=' && n - kl - 1 < cap) {
            snprintf(out, cap, "%s", line + kl + 1);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

static size_t collect(char *p, size_t s, size_t n, void *u)
{
    struct buf *b = u;
    size_t add = s * n;

    if (b->len + add > LG_BODY_CAP)
        return 0;           /* an answer this big is not ours: fail the transfer */
    memcpy(b->p + b->len, p, add);
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* Retry-After seconds of the last answer (0 when absent). */
static size_t header_cb(char *p, size_t s, size_t n, void *u)
{
    unsigned *ra = u;
    size_t len = s * n;

    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        unsigned long v = strtoul(p + 12, NULL, 10);

        *ra = v > 60 ? 60 : (unsigned)v;
    }
    return len;
}

/* One JSON request on handle c.  Returns the status (0: transport error);
 * the answer goes to body (cap LG_BODY_CAP + 1). */
static long request(CURL *c, const char *method, const char *path, const char *json,
                    struct curl_slist *hdr, char *body)
{
    char u[1200];
    struct buf b = { body, 0 };
    long st = 0;
    CURLcode rc;

    snprintf(u, sizeof u, "%s%s", base, path);
    body[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, json ? (long)strlen(json) : 0L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "precursor-loadgen: %s %s: %s\n", method, path, curl_easy_strerror(rc));
        return 0;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    return st;
}

/* The string value of "key" in a small flat JSON answer we trust to be
 * ours; 0 and out filled, or -1.  (Values here are hex tokens: no escapes.) */
static int json_str(const char *body, const char *key, char *out, size_t cap)
{
    char pat[64];
    const char *p, *e;

    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    p = strstr(body, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return 0;
}

/* Create a reusable, pre-approved enrollment token as the admin: with the
 * credentials' API token when it is an admin's, else through a session. */
static int make_enroll_token(char *tok, size_t cap)
{
    static const char spec[] = "{\"reusable\":true,\"pre_approved\":true,\"expires_in\":\"24h\","
                               "\"tags\":[\"loadgen\"]}";
    char *body = malloc(LG_BODY_CAP + 1);
    char line[LG_CRED_LINE + 32], user[LG_CRED_LINE], pw[LG_CRED_LINE], login[2 * LG_CRED_LINE + 64];
    char csrf[128];
    struct curl_slist *h = NULL;
    CURL *c = curl_easy_init();
    long st = 0;
    int rc = -1;

    if (!body || !c)
        goto out;
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");    /* cookie engine on, in memory */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (cred_get("api_token", line + 22, sizeof line - 22) == 0) {
        memcpy(line, "Authorization: Bearer ", 22);
        h = curl_slist_append(NULL, line);
        h = curl_slist_append(h, "Content-Type: application/json");
        st = request(c, "POST", "/api/v1/enrollment-tokens", spec, h, body);
        curl_slist_free_all(h);
        h = NULL;
        if (st == 201)
            goto parse;
        fprintf(stderr, "precursor-loadgen: api_token cannot create enrollment tokens (%ld); "
                        "logging in as admin\n", st);
    }
    if (cred_get("admin_user", user, sizeof user) != 0 ||
        cred_get("admin_password", pw, sizeof pw) != 0) {
        fprintf(stderr, "precursor-loadgen: %s: no admin_user/admin_password\n", o.credentials);
        goto out;
    }
    if (strpbrk(user, "\"\\") || strpbrk(pw, "\"\\")) {
        fprintf(stderr, "precursor-loadgen: credentials with quotes or backslashes unsupported\n");
        goto out;
    }
    snprintf(login, sizeof login, "{\"username\":\"%s\",\"password\":\"%s\"}", user, pw);
    sodium_memzero(pw, sizeof pw);
    h = curl_slist_append(NULL, "Content-Type: application/json");
    st = request(c, "POST", "/api/v1/session", login, h, body);
    sodium_memzero(login, sizeof login);
    curl_slist_free_all(h);
    h = NULL;
    if (st != 200 || json_str(body, "csrf", csrf, sizeof csrf) != 0) {
        fprintf(stderr, "precursor-loadgen: admin login failed (%ld): %s\n", st, body);
        goto out;
    }
    snprintf(line, sizeof line, "X-CSRF-Token: %s", csrf);
    h = curl_slist_append(NULL, line);
    h = curl_slist_append(h, "Content-Type: application/json");
    st = request(c, "POST", "/api/v1/enrollment-tokens", spec, h, body);
    if (st != 201) {
        fprintf(stderr, "precursor-loadgen: creating an enrollment token failed (%ld): %s\n", st,
                body);
        goto out;
    }
parse:
    if (json_str(body, "token", tok, cap) != 0) {
        fprintf(stderr, "precursor-loadgen: no token in the answer\n");
        goto out;
    }
    rc = 0;
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body);
    return rc;
}

static int enroll(CURL *c, struct device *d, const char *tok, char *body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char pk64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    char req[512];
    long st;

    sodium_bin2base64(pk64, sizeof pk64, d->pk, sizeof d->pk, sodium_base64_VARIANT_ORIGINAL);
    snprintf(req, sizeof req, "{\"token\":\"%s\",\"device_id\":\"%s\",\"public_key\":\"%s\"}",
             tok, d->id, pk64);
    st = request(c, "POST", "/api/v1/devices/enroll", req, h, body);
    curl_slist_free_all(h);
    if ((st != 201 && st != 200) || !strstr(body, "\"active\"")) {
        fprintf(stderr, "precursor-loadgen: enrolling %s failed (%ld): %s\n", d->id, st, body);
        return -1;
    }
    return 0;
}

/* Vibration-like samples: two tones, broadband noise, a decaying impulse
 * train; seeded per snapshot so no two envelopes are alike. */
static void make_samples(float *s, unsigned n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    double f1 = 0.013 + (double)(seed % 17) * 1e-4, f2 = 0.171;
    unsigned i;

    for (i = 0; i < n; i++) {
        double noise;

        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        noise = ((double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0 - 0.5) * 0.4;
        s[i] = (float)(sin(6.283185307 * f1 * i) + 0.3 * sin(6.283185307 * f2 * i) + noise +
                       ((i % 997) < 40 ? exp(-(double)(i % 997) / 8.0) : 0.0));
    }
}

static void meta_init(struct wire_meta *m, const struct device *d, unsigned n)
{
    memset(m, 0, sizeof *m);
    snprintf(m->device_id, sizeof m->device_id, "%s", d->id);
    m->sample_rate = 10000;
    m->sample_type = WIRE_F32;
    m->channel_count = 1;
    m->pre_samples = n / 2;
    m->post_samples = n - n / 2;
    m->score = 0.9f;
    snprintf(m->detector, sizeof m->detector, "loadgen");
    snprintf(m->channels[0].name, sizeof m->channels[0].name, "accel_x");
    snprintf(m->channels[0].unit, sizeof m->channels[0].unit, "g");
}

static int encode(const struct device *d, struct wire_meta *m, float *samples, uint64_t seq,
                  uint8_t **env, size_t *len)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    m->seq = seq;
    m->trigger_time_us = (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
    make_samples(samples, nsamples, seq ^ ((uint64_t)(uintptr_t)d << 7));
    return wire_encode(m, samples, d->sk, 0, env, len);
}

/* Sample count whose envelope is about --snapshot-bytes. */
static int calibrate(void)
{
    struct device d;
    struct wire_meta m;
    unsigned n = (unsigned)(o.snapshot_bytes / 4), round;
    float *s;

    memset(&d, 0, sizeof d);
    snprintf(d.id, sizeof d.id, "calibrate");
    crypto_sign_keypair(d.pk, d.sk);
    for (round = 0; round < 6; round++) {
        uint8_t *env = NULL;
        size_t len;
        double scale;

        if (n < 2)
            n = 2;
        if ((size_t)n * 4 > WIRE_MAX_SAMPLES_BYTES)
            n = WIRE_MAX_SAMPLES_BYTES / 4;
        s = malloc((size_t)n * sizeof *s);
        if (!s)
            return -1;
        nsamples = n;
        meta_init(&m, &d, n);
        if (encode(&d, &m, s, 1, &env, &len) != 0) {
            free(s);
            return -1;
        }
        free(s);
        free(env);
        scale = (double)o.snapshot_bytes / (double)len;
        if (fabs(scale - 1.0) < 0.02)
            break;
        n = (unsigned)((double)n * scale);
    }
    return 0;
}

static void lat_add(struct device *d, double ms, double from_due_ms)
{
    if (d->nlat == d->lat_cap) {
        size_t cap = d->lat_cap ? d->lat_cap * 2 : 1024;
        double *p = realloc(d->lat_ms, cap * sizeof *p), *q;

        if (!p)
            return;     /* the figure loses a sample, the run goes on */
        d->lat_ms = p;
        q = realloc(d->due_ms, cap * sizeof *q);
        if (!q)
            return;
        d->due_ms = q;
        d->lat_cap = cap;
    }
    d->due_ms[d->nlat] = from_due_ms;
    d->lat_ms[d->nlat++] = ms;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static void *device_main(void *arg)
{
    struct device *d = arg;
    struct wire_meta *m = malloc(sizeof *m);
    float *samples = malloc((size_t)nsamples * sizeof *samples);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    CURL *c = curl_easy_init();
    char u[1200];
    uint64_t seq = 0;
    double period = o.rate > 0 ? (double)o.devices / o.rate : 0, due = 0;

    if (!m || !samples || !c || !h) {
        d->errors++;
        goto out;
    }
    meta_init(m, d, nsamples);
    snprintf(u, sizeof u, "%s/api/v1/snapshots", base);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    /* Our own Expect: 100-continue round trip would only add latency. */
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    while (!atomic_load(&started))
        sched_yield();
    if (period > 0)
        due = now_s() + period * d->phase;
    while (!atomic_load(&stop_flag) && now_s() < t_end) {
        uint8_t *env = NULL;
        size_t len;
        unsigned retry_after = 0;
        long st = 0;
        double t0, t1;

        if (period > 0) {
            /* Open loop: sleep until due; a late device sends at once. */
            double wait = due - now_s();

            if (wait > 0) {
                struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };

                nanosleep(&ts, NULL);
            }
            if (atomic_load(&stop_flag) || now_s() >= t_end)
                break;
        }
        seq++;
        if (seq <= d->npre) {
            env = d->pre[seq - 1];
            len = d->pre_len[seq - 1];
        } else if (encode(d, m, samples, seq, &env, &len) != 0) {
            d->errors++;
            break;
        }
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, env);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &retry_after);
        t0 = now_s();
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        t1 = now_s();
        if (seq > d->npre)
            free(env);
        if (st == 201 || st == 200) {
            d->ok++;
            lat_add(d, (t1 - t0) * 1000.0, (t1 - (period > 0 && due < t0 ? due : t0)) * 1000.0);
        }
        if (period > 0)
            due += period;
        if (st == 201 || st == 200)
            continue;
        d->errors++;
        if (st == 429 || st == 503) {
            /* Same seq again later, as the agent's spool would. */
            double until = now_s() + (retry_after ? retry_after : 1);

            seq--;
            while (!atomic_load(&stop_flag) && now_s() < until && now_s() < t_end) {
                struct timespec ts = { 0, 20000000 };

                nanosleep(&ts, NULL);
            }
        } else if (st == 409 || st == 0) {
            /* Transport failure: the server may have stored it; a fresh
             * seq keeps the run going without an ambiguous retry. */
        } else {
            fprintf(stderr, "precursor-loadgen: %s: upload answered %ld\n", d->id, st);
        }
    }
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(samples);
    free(m);
    return NULL;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)ceil(p * (double)n) - 1;
    return v[i >= n ? n - 1 : i];
}

int main(int argc, char **argv)
{
    struct device *devs = NULL;
    char tok[128], run[9], *body = NULL;
    uint8_t rnd[4];
    unsigned long long ok = 0, errors = 0;
    double *all = NULL, *alld = NULL, t0, elapsed;
    size_t nall = 0, k;
    CURL *c = NULL;
    unsigned i, j;
    int rc = 1;

    if (parse_args(argc, argv) != 0)
        return 2;
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    if (calibrate() != 0) {
        fprintf(stderr, "precursor-loadgen: cannot encode a snapshot\n");
        goto out;
    }
    if (make_enroll_token(tok, sizeof tok) != 0)
        goto out;
    devs = calloc(o.devices, sizeof *devs);
    body = malloc(LG_BODY_CAP + 1);
    c = curl_easy_init();
    if (!devs || !body || !c)
        goto out;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(run, sizeof run, rnd, sizeof rnd);
    for (i = 0; i < o.devices; i++) {
        struct device *d = &devs[i];

        snprintf(d->id, sizeof d->id, "loadgen-%s-%u", run, i);
        d->phase = (double)randombytes_uniform(1000000) / 1e6;
        crypto_sign_keypair(d->pk, d->sk);
        if (enroll(c, d, tok, body) != 0)
            goto out;
    }
    if (o.presign) {
        struct wire_meta *m = malloc(sizeof *m);
        float *s = malloc((size_t)nsamples * sizeof *s);

        for (i = 0; m && s && i < o.devices; i++) {
            struct device *d = &devs[i];

            d->pre = calloc(o.presign, sizeof *d->pre);
            d->pre_len = calloc(o.presign, sizeof *d->pre_len);
            if (!d->pre || !d->pre_len)
                break;
            meta_init(m, d, nsamples);
            for (j = 0; j < o.presign; j++, d->npre++)
                if (encode(d, m, s, j + 1, &d->pre[j], &d->pre_len[j]) != 0)
                    break;
        }
        free(m);
        free(s);
        if (i < o.devices) {
            fprintf(stderr, "precursor-loadgen: out of memory presigning\n");
            goto out;
        }
    }
    fprintf(stderr, "precursor-loadgen: %u devices enrolled (loadgen-%s-*), %u samples f32 "
                    "per snapshot, %u s\n", o.devices, run, nsamples, o.seconds);
    for (i = 0; i < o.devices; i++)
        if (pthread_create(&devs[i].thread, NULL, device_main, &devs[i]) != 0) {
            fprintf(stderr, "precursor-loadgen: cannot start thread %u\n", i);
            atomic_store(&stop_flag, 1);
            break;
        }
    t0 = now_s();
    t_end = t0 + o.seconds;
    atomic_store(&started, 1);
    for (j = 0; j < i; j++)
        pthread_join(devs[j].thread, NULL);
    elapsed = now_s() - t0;
    if (i < o.devices)
        goto out;
    for (i = 0; i < o.devices; i++) {
        ok += devs[i].ok;
        errors += devs[i].errors;
        nall += devs[i].nlat;
    }
    all = malloc((nall ? nall : 1) * sizeof *all);
    alld = malloc((nall ? nall : 1) * sizeof *alld);
    if (!all || !alld)
        goto out;
    for (i = 0, k = 0; i < o.devices; i++) {
        memcpy(all + k, devs[i].lat_ms, devs[i].nlat * sizeof *all);
        memcpy(alld + k, devs[i].due_ms, devs[i].nlat * sizeof *alld);
        k += devs[i].nlat;
    }
    qsort(all, nall, sizeof *all, cmpd);
    qsort(alld, nall, sizeof *alld, cmpd);
    printf("snapshots_per_s=%.1f p50_ms=%.2f p99_ms=%.2f errors=%llu",
           (double)ok / (elapsed > 0 ? elapsed : 1), pct(all, nall, 0.50), pct(all, nall, 0.99),
           errors);
    if (o.rate > 0)
        printf(" p99_from_due_ms=%.2f", pct(alld, nall, 0.99));
    printf("\n");
    rc = 0;
out:
    for (i = 0; devs && i < o.devices; i++) {
        for (j = 0; j < devs[i].npre; j++)
            free(devs[i].pre[j]);
        free(devs[i].pre);
        free(devs[i].pre_len);
        free(devs[i].lat_ms);
        free(devs[i].due_ms);
        sodium_memzero(devs[i].sk, sizeof devs[i].sk);
    }
    free(devs);
    free(all);
    free(alld);
    free(body);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return rc;
}
