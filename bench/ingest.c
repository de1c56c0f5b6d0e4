/* ingest.c - durable ingest throughput against what PostgreSQL itself
 * writes, measured in the same run.
 *
 * Baselines, into an equivalent unpartitioned table (same columns and
 * (device, seq) uniqueness), synchronous_commit on, the same 16 KB signed
 * envelopes: a plain libpq INSERT loop (one transaction per row) from one
 * connection and from C connections; and binary COPY (PQputCopyData, FORMAT
 * binary, BENCH_COPY_BATCH rows per transaction) from 1 and 2 connections,
 * the physical limit of this machine.  End to end: this process runs the
 * server (HTTP pool + group committer) and C client threads, one device
 * each, that POST snapshots for S seconds; once with envelopes encoded and
 * signed before the clock starts (the server's cost alone) and once
 * encoding and signing while sending (as devices would, but on the same two
 * cores), then once more paced at half the presigned peak for the p99.
 * Each figure is the median of R runs.  Needs DATABASE_URL (its database
 * gets the schema); prints `skip` without it.  Env: BENCH_CONC (64, at most
 * 512), BENCH_SECONDS (5), BENCH_RUNS (3), BENCH_COPY_BATCH (256), BENCH_THREADS
 * (server worker threads, default BENCH_CONC), BENCH_ONLY=copy (the
 * single-connection COPY baseline alone, for bench/loadgen.sh), BENCH_PRESIGN_RATE (20000: the
 * fleet-wide rate in snapshots/s the envelopes signed before each presigned
 * run can carry for the whole run; a run that uses them all up ends early
 * and says so, since its rate would then be the budget's and not the
 * server's). */
#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/wire.h"
#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/http/http.h"
#include "server/ingest/ingest.h"
#include "server/routes.h"
#include "server/srv/srv.h"

#define NSAMP 5000              /* f32 noise: ~16 KB after zstd */
#define MAXC 512

static const char *url;
static unsigned conc = 64, seconds = 5, runs = 3, threads = 0;
static atomic_int stop_flag;
static atomic_ullong done_ok, done_err;
static unsigned copy_batch = 256;
static int presigned;               /* e2e: send pre-encoded envelopes */
static double pace_hz;              /* e2e: per-device upload rate, 0 = flat out */
static uint8_t **pre_env[MAXC];     /* per device, npresign envelopes */
static size_t *pre_len[MAXC];
static unsigned npresign;          /* per device and run: budget rate x seconds / devices */
static unsigned presign_rate = 20000;
static atomic_uint presign_spent;   /* devices that used up their envelopes in a run */
static uint8_t *copy_env;           /* one real envelope, for the baselines */
static size_t copy_len;
/* latencies of successful uploads (ms), per device thread */
static double *lat[MAXC];
static size_t nlat[MAXC], lat_cap[MAXC];
static char base[64];
static uint8_t pks[MAXC][32], sks[MAXC][64];
static atomic_ullong run_id;
static uint64_t next_seq[MAXC];    /* per device, across runs */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        fprintf(stderr, "bench: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

static void *base_thread(void *arg)
{
    long id = (long)arg;
    PGconn *c = db_connect(url);
    char seq[24], dev[32];
    unsigned long long n = 0;

    if (!c)
        return NULL;
    snprintf(dev, sizeof dev, "base-%llu-%ld", (unsigned long long)atomic_load(&run_id), id);
    exec_ok(c, "SET synchronous_commit = on");
    while (!atomic_load(&stop_flag)) {
        const char *vals[3] = { dev, seq, (const char *)copy_env };
        int lens[3] = { 0, 0, (int)copy_len }, fmts[3] = { 0, 0, 1 };
        PGresult *r;

        snprintf(seq, sizeof seq, "%llu", ++n);
        r = PQexecParams(c, "INSERT INTO bench_baseline (device_id, seq, trigger_time, sample_rate,"
                         " sample_type, channel_count, channels, pre_samples, post_samples, detector,"
                         " score, envelope, bytes, sha256) VALUES ($1, $2::bigint, now(), 1000, 2, 1,"
                         " '[{\"name\":\"x\",\"unit\":\"g\"}]', 2048, 2048, 'threshold', 0.5, $3::bytea,"
                         " octet_length($3::bytea), sha256($3::bytea))", 3, NULL, vals, lens, fmts, 0);
        if (r && PQresultStatus(r) == PGRES_COMMAND_OK)
            atomic_fetch_add(&done_ok, 1);
        else
            atomic_fetch_add(&done_err, 1);
        PQclear(r);
    }
    PQfinish(c);
    return NULL;
}

/* Binary COPY field writers (network byte order, length-prefixed). */
static uint8_t *put32(uint8_t *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, 4);
    return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    p = put32(p, (uint32_t)(v >> 32));
    return put32(p, (uint32_t)v);
}

static uint8_t *field(uint8_t *p, const void *v, uint32_t n)
{
    p = put32(p, n);
    memcpy(p, v, n);
    return p + n;
}

/* One row of bench_baseline in COPY binary format; p has room. */
static uint8_t *copy_row(uint8_t *p, const char *dev, uint64_t seq, const uint8_t sha[32])
{
    static const char chans[] = "\001[{\"name\":\"x\",\"unit\":\"g\"}]";   /* jsonb v1 */
    double rate = 1000;
    float score = 0.5f;
    uint64_t u;
    uint32_t f;
    uint16_t nf = htons(14);
    int64_t pgnow = 0;
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    pgnow = ((int64_t)t.tv_sec - 946684800) * 1000000 + t.tv_nsec / 1000;
    memcpy(p, &nf, 2);
    p += 2;
    p = field(p, dev, (uint32_t)strlen(dev));
    p = put32(p, 8); p = put64(p, seq);
    p = put32(p, 8); p = put64(p, (uint64_t)pgnow);
    memcpy(&u, &rate, 8);
    p = put32(p, 8); p = put64(p, u);
    p = put32(p, 2); *p++ = 0; *p++ = 3;                    /* sample_type smallint */
    p = put32(p, 2); *p++ = 0; *p++ = 1;                    /* channel_count */
    p = field(p, chans, sizeof chans - 1);
    p = put32(p, 4); p = put32(p, 2048);
    p = put32(p, 4); p = put32(p, 2048);
    p = field(p, "threshold", 9);
    memcpy(&f, &score, 4);
    p = put32(p, 4); p = put32(p, f);
    p = field(p, copy_env, (uint32_t)copy_len);
    p = put32(p, 4); p = put32(p, (uint32_t)copy_len);
    return field(p, sha, 32);
}

static void *copy_thread(void *arg)
{
    static const uint8_t hdr[19] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0 };
    long id = (long)arg;
    PGconn *c = db_connect(url);
    size_t rowcap = copy_len + 512;
    uint8_t *buf = malloc(rowcap), sha[32];
    char dev[32];
    unsigned long long n = 0;

    if (!c || !buf)
        return NULL;
    crypto_hash_sha256(sha, copy_env, copy_len);
    snprintf(dev, sizeof dev, "copy-%llu-%ld", (unsigned long long)atomic_load(&run_id), id);
    exec_ok(c, "SET synchronous_commit = on");
    while (!atomic_load(&stop_flag)) {
        PGresult *r = PQexec(c, "COPY bench_baseline (device_id, seq, trigger_time, sample_rate,"
                             " sample_type, channel_count, channels, pre_samples, post_samples,"
                             " detector, score, envelope, bytes, sha256) FROM STDIN (FORMAT binary)");
        unsigned i, ok = r && PQresultStatus(r) == PGRES_COPY_IN;
        uint16_t trailer = 0xffff;

        PQclear(r);
        if (ok)
            ok = PQputCopyData(c, (const char *)hdr, sizeof hdr) == 1;
        for (i = 0; ok && i < copy_batch; i++) {
            uint8_t *e = copy_row(buf, dev, ++n, sha);

            ok = PQputCopyData(c, (const char *)buf, (int)(e - buf)) == 1;
        }
        if (ok)
            ok = PQputCopyData(c, (const char *)&trailer, 2) == 1;
        if (PQputCopyEnd(c, ok ? NULL : "bench abort") != 1)
            ok = 0;
        r = PQgetResult(c);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "bench: copy: %s", PQerrorMessage(c));
            ok = 0;
        }
        PQclear(r);
        while ((r = PQgetResult(c)))
            PQclear(r);
        if (ok)
            atomic_fetch_add(&done_ok, copy_batch);
        else {
            atomic_fetch_add(&done_err, 1);
            break;
        }
    }
    free(buf);
    PQfinish(c);
    return NULL;
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p; (void)u;
    return s * n;
}

static void meta_init(struct wire_meta *m, long id)
{
    memset(m, 0, sizeof *m);
    snprintf(m->device_id, sizeof m->device_id, "bench-%ld", id);
    m->trigger_time_us = 1714564800000000LL;
    m->sample_rate = 1000;
    m->sample_type = WIRE_F32;
    m->channel_count = 1;
    m->pre_samples = NSAMP / 2;
    m->post_samples = NSAMP / 2;
    snprintf(m->detector, sizeof m->detector, "threshold");
    snprintf(m->channels[0].name, sizeof m->channels[0].name, "x");
}

static int encode(struct wire_meta *m, float *samples, long id, uint64_t seq, uint8_t **env,
                  size_t *len)
{
    /* xorshift noise: randombytes per sample made presigning the bench's
     * longest step; the server cannot tell the difference. */
    uint64_t x = ((uint64_t)id << 32) ^ seq ^ 0x9e3779b97f4a7c15ull;
    int i;

    for (i = 0; i < NSAMP; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        samples[i] = (float)((x * 0x2545f4914f6cdd1dull) >> 44) / 1024.0f;
    }
    m->seq = seq;
    return wire_encode(m, samples, sks[id], 1, env, len);
}

static void lat_add(long id, double ms)
{
    if (nlat[id] == lat_cap[id]) {
        size_t cap = lat_cap[id] ? lat_cap[id] * 2 : 1024;
        double *p = realloc(lat[id], cap * sizeof *p);

        if (!p)
            return;
        lat[id] = p;
        lat_cap[id] = cap;
    }
    lat[id][nlat[id]++] = ms;
}

static void *e2e_thread(void *arg)
{
    long id = (long)arg;
    struct wire_meta *m = calloc(1, sizeof *m);
    float *samples = malloc(NSAMP * sizeof(float));
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    char u[128];
    unsigned k = 0;
    double next = now_s();

    if (!m || !samples || !c)
        return NULL;
    h = curl_slist_append(h, "Expect:");
    snprintf(u, sizeof u, "%s/api/v1/snapshots", base);
    meta_init(m, id);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    while (!atomic_load(&stop_flag)) {
        uint8_t *env = NULL;
        size_t len;
        long st = 0;
        double t0;

        if (pace_hz > 0) {
            /* open loop: a device triggers on its own clock */
            double wait = next - now_s();
            if (wait > 0) {
                struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
                nanosleep(&ts, NULL);
            }
            next += 1.0 / pace_hz;
        }
        if (presigned) {
            if (k >= npresign) {
                atomic_fetch_add(&presign_spent, 1);
                break;
            }
            env = pre_env[id][k];
            len = pre_len[id][k++];
        } else if (encode(m, samples, id, ++next_seq[id], &env, &len) != 0) {
            break;
        }
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, env);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        t0 = now_s();
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        if (st == 201) {
            atomic_fetch_add(&done_ok, 1);
            lat_add(id, (now_s() - t0) * 1000);
        } else {
            atomic_fetch_add(&done_err, 1);
        }
        if (!presigned)
            free(env);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(samples);
    free(m);
    return NULL;
}

/* Encode the next npresign envelopes of devices first, first + step, ...
 * (one of the presign threads). */
struct presign_part {
    unsigned first, step, n;
    int rc;
};

static void *presign_thread(void *arg)
{
    struct presign_part *pp = arg;
    struct wire_meta *m = calloc(1, sizeof *m);
    float *samples = malloc(NSAMP * sizeof(float));
    unsigned i, k;

    pp->rc = m && samples ? 0 : -1;
    for (i = pp->first; i < pp->n && pp->rc == 0; i += pp->step) {
        if (!pre_env[i]) {
            pre_env[i] = calloc(npresign, sizeof *pre_env[i]);
            pre_len[i] = calloc(npresign, sizeof *pre_len[i]);
            if (!pre_env[i] || !pre_len[i])
                pp->rc = -1;
        }
        meta_init(m, i);
        for (k = 0; k < npresign && pp->rc == 0; k++) {
            free(pre_env[i][k]);
            pre_env[i][k] = NULL;
            pp->rc = encode(m, samples, i, ++next_seq[i], &pre_env[i][k], &pre_len[i][k]);
        }
    }
    free(m);
    free(samples);
    return NULL;
}

/* Encode every device's envelopes for the next run, on both cores (this is
 * before the clock starts). */
static int presign(unsigned n)
{
    enum { PRESIGN_THREADS = 2 };
    struct presign_part parts[PRESIGN_THREADS];
    pthread_t t[PRESIGN_THREADS];
    unsigned i;
    int rc = 0;

    for (i = 0; i < PRESIGN_THREADS; i++) {
        parts[i] = (struct presign_part){ i, PRESIGN_THREADS, n, -1 };
        if (pthread_create(&t[i], NULL, presign_thread, &parts[i]) != 0)
            return -1;
    }
    for (i = 0; i < PRESIGN_THREADS; i++) {
        pthread_join(t[i], NULL);
        if (parts[i].rc != 0)
            rc = -1;
    }
    return rc;
}

static double run(void *(*fn)(void *), unsigned n, unsigned long long *errs)
{
    pthread_t t[MAXC];
    double t0, t1;
    unsigned i;

    atomic_store(&stop_flag, 0);
    atomic_store(&done_ok, 0);
    atomic_store(&done_err, 0);
    atomic_fetch_add(&run_id, 1);
    t0 = now_s();
    for (i = 0; i < n; i++)
        pthread_create(&t[i], NULL, fn, (void *)(long)i);
    while (now_s() - t0 < seconds) {
        struct timespec ts = { 0, 50000000 };
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop_flag, 1);
    for (i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    t1 = now_s();
    *errs += atomic_load(&done_err);
    return (double)atomic_load(&done_ok) / (t1 - t0);
}

struct fig {
    double rate, p50, p99;
};

/* Median rate of `runs` runs, and the p50/p99 of the run with that rate. */
static struct fig median(void *(*fn)(void *), unsigned n, unsigned long long *errs)
{
    struct fig v[16], f;
    unsigned i, j, r;

    for (r = 0; r < runs; r++) {
        size_t tot = 0, k = 0;
        double *all;

        if (fn == e2e_thread && presigned && presign(n) != 0) {
            fprintf(stderr, "bench: presign failed\n");
            exit(1);
        }
        for (i = 0; i < n; i++)
            nlat[i] = 0;
        v[r].rate = run(fn, n, errs);
        v[r].p50 = v[r].p99 = 0;
        for (i = 0; i < n; i++)
            tot += nlat[i];
        all = tot ? malloc(tot * sizeof *all) : NULL;
        for (i = 0; all && i < n; i++)
            for (j = 0; j < nlat[i]; j++)
                all[k++] = lat[i][j];
        if (all) {
            qsort(all, tot, sizeof *all, cmpd);
            v[r].p50 = all[tot / 2];
            v[r].p99 = all[(size_t)((double)tot * 0.99) < tot ? (size_t)((double)tot * 0.99) : tot - 1];
        }
        free(all);
    }
    /* sort by rate, keep the median run whole */
    for (i = 1; i < runs; i++)
        for (j = i; j > 0 && v[j - 1].rate > v[j].rate; j--) {
            f = v[j];
            v[j] = v[j - 1];
            v[j - 1] = f;
        }
    return v[runs / 2];
}

int main(void)
{
    struct srv_config cfg = { 0 };
    struct http_server *hs = NULL;
    struct wire_meta *m;
    float *samples;
    char dir[4096], *e;
    unsigned long long errs_b = 0, errs_e = 0, errs_s = 0, errs_h = 0;
    struct fig b1, bc, c1, c2, e2e, e2s, half;
    PGconn *c;
    int applied, newest;
    unsigned i, spent, budget;

    url = getenv("DATABASE_URL");
    if (!url || !*url) {
        printf("ingest: skip (DATABASE_URL unset)\n");
        return 0;
    }
    if ((e = getenv("BENCH_CONC")))
        conc = (unsigned)atoi(e);
    if ((e = getenv("BENCH_SECONDS")))
        seconds = (unsigned)atoi(e);
    if ((e = getenv("BENCH_RUNS")))
        runs = (unsigned)atoi(e);
    if ((e = getenv("BENCH_THREADS")))
        threads = (unsigned)atoi(e);
    if ((e = getenv("BENCH_COPY_BATCH")))
        copy_batch = (unsigned)atoi(e);
    if ((e = getenv("BENCH_PRESIGN_RATE")))
        presign_rate = (unsigned)atoi(e);
    if (conc < 1 || conc > MAXC || runs < 1 || runs > 15 || seconds < 1 || copy_batch < 1 ||
        copy_batch > 100000 || presign_rate < 1 || presign_rate > 1000000)
        return 2;
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    if (srv_find_dir(NULL, "migrations", "0001_devices_snapshots.sql", dir, sizeof dir) != 0 ||
        db_migrate(url, dir, &applied, &newest) != SRV_OK)
        return 1;
    c = db_connect(url);
    if (!c || !exec_ok(c, "DROP TABLE IF EXISTS bench_baseline") ||
        !exec_ok(c, "CREATE TABLE bench_baseline (LIKE snapshots INCLUDING DEFAULTS)") ||
        !exec_ok(c, "ALTER TABLE bench_baseline ALTER COLUMN id SET DEFAULT nextval('snapshots_id_seq')") ||
        !exec_ok(c, "ALTER TABLE bench_baseline ADD PRIMARY KEY (id), ADD UNIQUE (device_id, seq)") ||
        !exec_ok(c, "ALTER TABLE bench_baseline ALTER COLUMN envelope SET STORAGE EXTERNAL"))
        return 1;
    for (i = 0; i < conc; i++) {
        char sql[512], hex[65];

        crypto_sign_keypair(pks[i], sks[i]);
        sodium_bin2hex(hex, sizeof hex, pks[i], 32);
        snprintf(sql, sizeof sql, "INSERT INTO devices (id, public_key) VALUES ('bench-%u', '\\x%s') "
                 "ON CONFLICT (id) DO UPDATE SET public_key = EXCLUDED.public_key, status = 'active', last_seq = 0",
                 i, hex);
        if (!exec_ok(c, sql))
            return 1;
    }
    exec_ok(c, "DELETE FROM snapshot_seqs WHERE device_id LIKE 'bench-%'");
    exec_ok(c, "DELETE FROM snapshots WHERE device_id LIKE 'bench-%'");
    /* The baselines store a real envelope of the size the devices send. */
    m = calloc(1, sizeof *m);
    samples = malloc(NSAMP * sizeof(float));
    if (!m || !samples)
        return 1;
    meta_init(m, 0);
    if (encode(m, samples, 0, 1, &copy_env, &copy_len) != 0)
        return 1;
    free(m);
    free(samples);

    if ((e = getenv("BENCH_ONLY")) && strcmp(e, "copy") == 0) {
        /* The baseline alone, for bench/loadgen.sh's rounds. */
        c1 = median(copy_thread, 1, &errs_b);
        exec_ok(c, "DROP TABLE bench_baseline");
        PQfinish(c);
        printf("  baseline binary COPY, 1 connection     %8.0f rows/s (%u rows/commit)\n", c1.rate,
               copy_batch);
        return errs_b ? 1 : 0;
    }
    b1 = median(base_thread, 1, &errs_b);
    bc = median(base_thread, conc, &errs_b);
    c1 = median(copy_thread, 1, &errs_b);
    c2 = median(copy_thread, 2, &errs_b);
    exec_ok(c, "DROP TABLE bench_baseline");

    {
        /* No per-device rate limit: the bench measures the pipeline. */
        const struct fleet_settings fs = { NULL, 0, 0.0, 200.0 };

        fleet_configure(&fs);
    }
    cfg.database_url = url;
    cfg.threads = threads ? threads : conc;
    cfg.max_body = 1u << 20;
    routes_configure(&cfg);
    if (db_init(url) != SRV_OK || ingest_commit_start(url, 2, 4096, 256) != SRV_OK ||
        fleet_start(url) != SRV_OK || http_start(&cfg, &hs) != SRV_OK)
        return 1;
    snprintf(base, sizeof base, "http://127.0.0.1:%u", http_port(hs));
    npresign = (unsigned)(((unsigned long long)presign_rate * seconds + conc - 1) / conc);
    presigned = 1;
    e2s = median(e2e_thread, conc, &errs_s);
    spent = atomic_exchange(&presign_spent, 0);
    budget = npresign;
    pace_hz = e2s.rate / 2 / conc;
    /* paced: what the pace sends, and a margin */
    npresign = (unsigned)(pace_hz * seconds * 1.25) + 2;
    half = median(e2e_thread, conc, &errs_h);
    pace_hz = 0;
    presigned = 0;
    e2e = median(e2e_thread, conc, &errs_e);
    http_stop(hs);
    fleet_stop();
    ingest_commit_stop();
    db_shutdown();
    exec_ok(c, "DELETE FROM snapshot_seqs WHERE device_id LIKE 'bench-%'");
    exec_ok(c, "DELETE FROM snapshots WHERE device_id LIKE 'bench-%'");
    PQfinish(c);
    {
        double copy = c1.rate > c2.rate ? c1.rate : c2.rate;

        printf("ingest: %zu-byte signed envelopes, %u devices, %u server threads, median of %u x %u s\n",
               copy_len, conc, cfg.threads, runs, seconds);
        printf("  baseline INSERT, 1 connection          %8.0f rows/s\n", b1.rate);
        printf("  baseline INSERT, %3u connections       %8.0f rows/s\n", conc, bc.rate);
        printf("  baseline binary COPY, 1 connection     %8.0f rows/s (%u rows/commit)\n", c1.rate,
               copy_batch);
        printf("  baseline binary COPY, 2 connections    %8.0f rows/s\n", c2.rate);
        printf("  end to end, presigned                  %8.0f snapshots/s p50 %.1f ms p99 %.1f ms"
               " (errors %llu)\n", e2s.rate, e2s.p50, e2s.p99, errs_s);
        printf("  end to end, presigned, paced at half   %8.0f snapshots/s p50 %.1f ms p99 %.1f ms"
               " (errors %llu)\n", half.rate, half.p50, half.p99, errs_h);
        printf("  end to end, clients sign while sending %8.0f snapshots/s p50 %.1f ms p99 %.1f ms"
               " (errors %llu)\n", e2e.rate, e2e.p50, e2e.p99, errs_e);
        printf("  presigned budget: %u envelopes per device and run (%u/s fleet-wide); devices that"
               " used theirs up before the clock stopped: %u%s\n", budget, presign_rate, spent,
               spent ? " (the rate above is the budget's: raise BENCH_PRESIGN_RATE)" : "");
        printf("  ratio presigned e2e / best COPY = %.2f (target >= 0.60); / INSERT %u conns = %.2f\n",
               copy > 0 ? e2s.rate / copy : 0, conc, bc.rate > 0 ? e2s.rate / bc.rate : 0);
        printf("  target >= 5000/s: %s; p99 at half peak <= 100 ms: %s; errors: %s\n",
               e2s.rate >= 5000 ? "met" : "MISSED", half.p99 <= 100 ? "met" : "MISSED",
               errs_s + errs_h ? "SOME" : "none");
    }
    curl_global_cleanup();
    return 0;
}
