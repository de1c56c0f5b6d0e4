/* ingest.c - durable ingest throughput against what PostgreSQL itself
 * writes, measured in the same run.
 *
 * Baselines: a plain libpq INSERT loop of the same rows (16 KB bytea plus the
 * metadata columns, one transaction per row, synchronous_commit on) into an
 * equivalent unpartitioned table, from one connection and from C
 * connections at once.  End to end: this process runs the server (HTTP pool
 * + group committer) and C client threads, one device each, that encode,
 * sign and POST 16 KB snapshots for S seconds.  Each figure is the median of
 * R runs.  Needs DATABASE_URL (its database gets the schema); prints
 * `skip` without it.  Env: BENCH_CONC (64), BENCH_SECONDS (5), BENCH_RUNS (3). */
#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/wire.h"
#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/http/http.h"
#include "server/srv/srv.h"

#define NSAMP 4096              /* f32 noise: ~16 KB after zstd */
#define MAXC 256

static const char *url;
static unsigned conc = 64, seconds = 5, runs = 3;
static atomic_int stop_flag;
static atomic_ullong done_ok, done_err;
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
    uint8_t *blob = malloc(16384);
    char seq[24], dev[32];
    unsigned long long n = 0;

    if (!c || !blob)
        return NULL;
    randombytes_buf(blob, 16384);
    snprintf(dev, sizeof dev, "base-%llu-%ld", (unsigned long long)atomic_load(&run_id), id);
    exec_ok(c, "SET synchronous_commit = on");
    while (!atomic_load(&stop_flag)) {
        const char *vals[3] = { dev, seq, (const char *)blob };
        int lens[3] = { 0, 0, 16384 }, fmts[3] = { 0, 0, 1 };
        PGresult *r;

        snprintf(seq, sizeof seq, "%llu", ++n);
        r = PQexecParams(c, "INSERT INTO bench_baseline (device_id, seq, trigger_time, sample_rate,"
                         " sample_type, channel_count, channels, pre_samples, post_samples, detector,"
                         " score, envelope, bytes, sha256) VALUES ($1, $2::bigint, now(), 1000, 2, 1,"
                         " '[{\"name\":\"x\",\"unit\":\"g\"}]', 2048, 2048, 'threshold', 0.5, $3::bytea,"
                         " 16384, sha256($3::bytea))", 3, NULL, vals, lens, fmts, 0);
        if (r && PQresultStatus(r) == PGRES_COMMAND_OK)
            atomic_fetch_add(&done_ok, 1);
        else
            atomic_fetch_add(&done_err, 1);
        PQclear(r);
    }
    free(blob);
    PQfinish(c);
    return NULL;
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p; (void)u;
    return s * n;
}

static void *e2e_thread(void *arg)
{
    long id = (long)arg;
    struct wire_meta *m = calloc(1, sizeof *m);
    float *samples = malloc(NSAMP * sizeof(float));
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    char u[128];
    int i;

    if (!m || !samples || !c)
        return NULL;
    snprintf(u, sizeof u, "%s/api/v1/snapshots", base);
    snprintf(m->device_id, sizeof m->device_id, "bench-%ld", id);
    m->trigger_time_us = 1714564800000000LL;
    m->sample_rate = 1000;
    m->sample_type = WIRE_F32;
    m->channel_count = 1;
    m->pre_samples = NSAMP / 2;
    m->post_samples = NSAMP / 2;
    snprintf(m->detector, sizeof m->detector, "threshold");
    snprintf(m->channels[0].name, sizeof m->channels[0].name, "x");
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    while (!atomic_load(&stop_flag)) {
        uint8_t *env = NULL;
        size_t len;
        long st = 0;

        for (i = 0; i < NSAMP; i++)
            samples[i] = (float)randombytes_uniform(1u << 20) / 1024.0f;
        m->seq = ++next_seq[id];
        if (wire_encode(m, samples, sks[id], 1, &env, &len) != 0)
            break;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, env);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        if (st == 201)
            atomic_fetch_add(&done_ok, 1);
        else
            atomic_fetch_add(&done_err, 1);
        free(env);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(samples);
    free(m);
    return NULL;
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

static double median(void *(*fn)(void *), unsigned n, unsigned long long *errs)
{
    double v[16];
    unsigned i;

    for (i = 0; i < runs; i++)
        v[i] = run(fn, n, errs);
    qsort(v, runs, sizeof v[0], cmpd);
    return v[runs / 2];
}

int main(void)
{
    struct srv_config cfg = { 0 };
    struct http_server *hs = NULL;
    char dir[4096], *e;
    unsigned long long errs_b = 0, errs_e = 0;
    double b1, bc, e2e;
    PGconn *c;
    int applied, newest;
    unsigned i;

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
    if (conc < 1 || conc > MAXC || runs < 1 || runs > 15 || seconds < 1)
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
    b1 = median(base_thread, 1, &errs_b);
    bc = median(base_thread, conc, &errs_b);
    exec_ok(c, "DROP TABLE bench_baseline");

    {
        char *argv[] = { "--device-rate", "0", NULL };
        fleet_opts_take(2, argv);
    }
    cfg.database_url = url;
    cfg.threads = conc;
    cfg.max_body = 1u << 20;
    if (db_init(url) != SRV_OK || fleet_start(url) != SRV_OK || http_start(&cfg, &hs) != SRV_OK)
        return 1;
    snprintf(base, sizeof base, "http://127.0.0.1:%u", http_port(hs));
    e2e = median(e2e_thread, conc, &errs_e);
    http_stop(hs);
    fleet_stop();
    db_shutdown();
    exec_ok(c, "DELETE FROM snapshot_seqs WHERE device_id LIKE 'bench-%'");
    exec_ok(c, "DELETE FROM snapshots WHERE device_id LIKE 'bench-%'");
    PQfinish(c);
    printf("ingest: 16 KB rows, %u connections/devices, median of %u x %u s\n", conc, runs, seconds);
    printf("  baseline INSERT, 1 connection      %8.0f rows/s\n", b1);
    printf("  baseline INSERT, %3u connections   %8.0f rows/s\n", conc, bc);
    printf("  end to end (HTTP+verify+group commit) %8.0f snapshots/s (errors %llu)\n", e2e, errs_e);
    printf("  ratio e2e / baseline %u conns = %.2f; e2e / baseline 1 conn = %.2f\n", conc,
           bc > 0 ? e2e / bc : 0, b1 > 0 ? e2e / b1 : 0);
    curl_global_cleanup();
    return 0;
}
