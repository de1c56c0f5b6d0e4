/* agent_memory.c - resident memory and binary size of precursor-agent
 * (the target: ring size plus at most 1 MB; binary size).
 *
 * The bench feeds `precursor-agent run --source f32le` 8 channels at 10 kHz,
 * 60 s of simulated data (noise with a spike every 10 s; with the detector's
 * false triggers on noise about 20 snapshots are cut, encoded and spooled) as
 * fast as the agent takes it, with uploads refused (the device is marked
 * registered, so the uploader thread runs and reads spool files as on a
 * device).  While feeding it samples RssAnon every 10 blocks (the peak of
 * private memory: /proc has a peak only for RSS as a whole, VmHWM), and a
 * thread of its own polls /proc/PID/statm every --poll-us microseconds
 * (default 1000) for the whole run, start-up included: an encode and its
 * spool write last a few milliseconds, which the 0.1 s samples mostly miss.
 * With the agent idle at the end of the input (stdin still open) it reads
 * VmRSS, VmHWM, RssAnon and RssFile from /proc/PID/status.  Two
 * configurations, RUNS each (median):
 *   ring   --ring-s 10: 10 kHz x 10 s x (8 x 4-byte samples + an 8-byte
 *          timestamp) = 4.0 MB of ring (3.2 MB of it samples)
 *   base   --ring-s 1 (the smallest that holds the 1 s capture window)
 * Both capture 0.5 s before and after a trigger, so ring - base is the cost
 * of 9 s more ring, and the target is read as: peak RSS <= ring + 1 MB
 * (all of it), and private memory (RssAnon) <= ring + 1 MB.  Then the
 * binary: `size` of the agent and the bytes of a stripped copy.
 *
 * --smaps prints, for the first run of each configuration, where the private
 * memory is: /proc/PID/smaps' Anonymous kB summed by mapping (the heap, the
 * unnamed mappings, thread stacks, each shared library's relocated pages).
 * --server URL (with --ca-file PEM and --enroll-secret-file FILE) points the
 * agent at a real server instead of a closed port: a connected agent, its
 * uploads answered, over TLS when the URL is https.
 *
 *   make BUILD=build/bench build/bench/bin/precursor-agent build/bench/bin/bench-agent_memory
 *   build/bench/bin/bench-agent_memory [--agent PATH] [--runs R] [--smaps] [--poll-us US]
 *       [--server URL [--ca-file PEM] [--enroll-secret-file FILE]]
 *
 * The agent defaults to precursor-agent beside this program. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

extern char **environ;

#define CHANNELS 8
#define RATE 10000
#define SECONDS 60
#define BLOCK 1000              /* frames per write: 0.1 s */

static char work[512];
static char agent_path[1024];
static const char *ca_file, *enroll_secret;
static int want_smaps;
static long poll_us = 1000;

struct mem {
    double rss_kb, hwm_kb, anon_kb, file_kb, anon_peak_kb, anon_polled_kb;
    unsigned long long snapshots;
};

static uint64_t rng = 0x243f6a8885a308d3ull;

static float noise(void)
{
    /* Sum of 4 uniforms: cheap, roughly Gaussian, sd about 0.58. */
    float s = 0;

    for (int i = 0; i < 4; i++) {
        rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
        s += (float)((rng * 0x2545f4914f6cdd1dull) >> 40) / 16777216.0f - 0.5f;
    }
    return s;
}

static double status_kb(const char *status, const char *key)
{
    const char *p = strstr(status, key);

    return p != NULL ? strtod(p + strlen(key), NULL) : NAN;
}

/* /proc/PID/status into status (cap bytes, NUL-terminated; empty if
 * unreadable, so that status_kb answers NAN). */
static void read_status(pid_t pid, char *status, size_t cap)
{
    char proc[64];
    ssize_t n;
    int fd;

    snprintf(proc, sizeof(proc), "/proc/%ld/status", (long)pid);
    fd = open(proc, O_RDONLY);
    n = fd >= 0 ? read(fd, status, cap - 1) : -1;
    if (fd >= 0)
        close(fd);
    status[n > 0 ? n : 0] = '\0';
}

/* RssAnon of pid now, in kB; NAN if unreadable. */
static double anon_now(pid_t pid)
{
    char status[4096];

    read_status(pid, status, sizeof(status));
    return status_kb(status, "RssAnon:");
}

/* The poller: RssAnon from /proc/PID/statm (resident less file and shmem
 * pages), as often as poll_us allows, until stop is set. */
struct poller {
    pid_t pid;
    atomic_int stop;
    double peak_kb;
    long polls;
};

static void *poll_main(void *arg)
{
    struct poller *pl = arg;
    char path[64], buf[256];
    double page_kb = (double)sysconf(_SC_PAGESIZE) / 1024.0;
    struct timespec ts = { 0, poll_us * 1000L };
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pl->pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return NULL;
    while (!atomic_load(&pl->stop)) {
        unsigned long long size, resident, shared;
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

        if (n <= 0)
            break;              /* the agent is gone */
        buf[n] = '\0';
        if (sscanf(buf, "%llu %llu %llu", &size, &resident, &shared) == 3 && resident >= shared &&
            (double)(resident - shared) * page_kb > pl->peak_kb)
            pl->peak_kb = (double)(resident - shared) * page_kb;
        pl->polls++;
        nanosleep(&ts, NULL);
    }
    close(fd);
    return NULL;
}

/* Anonymous kB of pid's mappings, summed by what is mapped, largest first. */
static void print_smaps(pid_t pid)
{
    char path[64], line[512], cur[256] = "";
    struct { char name[64]; double kb; } agg[128];
    int na = 0;
    double total = 0, cur_size = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/smaps", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        double kb;
        char *sp;

        sp = strchr(line, ' ');
        if (sp && memchr(line, '-', (size_t)(sp - line)) && !memchr(line, ':', (size_t)(sp - line))) {
            /* a mapping line: "start-end perms offset dev inode [name]" */
            char *name = line;
            for (int k = 0; k < 5 && name; k++) {
                name = strchr(name, ' ');
                while (name && *name == ' ')
                    name++;
            }
            snprintf(cur, sizeof(cur), "%s", name && *name && *name != '\n' ? name : "[anon]\n");
            cur[strcspn(cur, "\n")] = '\0';
            if ((sp = strrchr(cur, '/')) != NULL)
                memmove(cur, sp + 1, strlen(sp + 1) + 1);
            continue;
        }
        if (sscanf(line, "Size: %lf kB", &kb) == 1) {
            cur_size = kb;
            continue;
        }
        if (sscanf(line, "Anonymous: %lf kB", &kb) != 1 || kb == 0)
            continue;
        if (want_smaps > 1 && (cur[0] == '['))
            printf("  smaps %s of %.0f kB: %.0f kB anonymous\n", cur, cur_size, kb);
        int i;
        for (i = 0; i < na && strncmp(agg[i].name, cur, sizeof(agg[i].name) - 1) != 0; i++)
            ;
        if (i == na && na < 128) {
            snprintf(agg[na].name, sizeof(agg[0].name), "%s", cur);
            agg[na++].kb = 0;
        }
        if (i < na)
            agg[i].kb += kb;
        total += kb;
    }
    fclose(f);
    for (int i = 1; i < na; i++)
        for (int j = i; j > 0 && agg[j - 1].kb < agg[j].kb; j--) {
            __typeof__(agg[0]) x = agg[j];
            agg[j] = agg[j - 1];
            agg[j - 1] = x;
        }
    printf("  smaps Anonymous %.0f kB:", total);
    for (int i = 0; i < na; i++)
        printf(" %s %.0f;", agg[i].name, agg[i].kb);
    printf("\n");
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int run_agent(const char *ring_s, const char *url, int idx, struct mem *m)
{
    char dir[600], keys[700], spool[700], logp[700], marker[760], status[4096];
    static float blk[BLOCK * CHANNELS];
    posix_spawn_file_actions_t fa;
    int pfd[2];
    pid_t pid;
    FILE *lf;

    memset(m, 0, sizeof(*m));
    snprintf(dir, sizeof(dir), "%s/run%d", work, idx);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(spool, sizeof(spool), "%s/spool", dir);
    snprintf(logp, sizeof(logp), "%s/agent.log", dir);
    if (mkdir(dir, 0700) != 0 || mkdir(keys, 0700) != 0 || pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    /* Registered already: the uploader starts at once and retries.  With an
     * enrollment secret the agent registers itself with the real server. */
    if (!enroll_secret) {
        snprintf(marker, sizeof(marker), "%s/registered", keys);
        if ((lf = fopen(marker, "w")) == NULL)
            return -1;
        fclose(lf);
    }
    char dev[64];
    snprintf(dev, sizeof(dev), "bench-memory-%ld-%d", (long)getpid(), idx);
    char *argv[32] = {
        agent_path, "run", "--device-id", dev, "--server", (char *)url,
        "--key-dir", keys, "--spool", spool, "--source", "f32le", "--channels", "8",
        "--rate", "10000", "--ring-s", (char *)ring_s, "--pre-s", "0.5", "--post-s", "0.5",
        "--hold-off-s", "1", "--max-per-hour", "0", NULL
    };
    int an = 0;
    while (argv[an])
        an++;
    if (ca_file) {
        argv[an++] = "--ca-file";
        argv[an++] = (char *)ca_file;
    }
    if (enroll_secret) {
        argv[an++] = "--enroll-secret-file";
        argv[an++] = (char *)enroll_secret;
    }
    argv[an] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
    posix_spawn_file_actions_addopen(&fa, 2, logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid, agent_path, &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[0]);
    struct poller pl = { .pid = pid };
    pthread_t poll_thread;
    int polling = pthread_create(&poll_thread, NULL, poll_main, &pl) == 0;
    for (long b = 0; b < (long)SECONDS * RATE / BLOCK; b++) {
        for (size_t i = 0; i < BLOCK * CHANNELS; i++)
            blk[i] = noise();
        if (b % 100 == 55)          /* 5.5 s, 15.5 s, ...: one spike each */
            for (size_t c = 0; c < CHANNELS; c++)
                blk[c] += 40.0f;
        if (bench_write_all(pfd[1], blk, sizeof(blk)) != 0)
            break;
        if (b % 10 == 9) {
            double a = anon_now(pid);
            if (a > m->anon_peak_kb)
                m->anon_peak_kb = a;
        }
    }
    /* The pipe is drained when write returns; give the last capture and its
     * spool write a moment, then read the figures while the agent is alive. */
    sleep_ms(1500);
    read_status(pid, status, sizeof(status));
    m->rss_kb = status_kb(status, "VmRSS:");
    m->hwm_kb = status_kb(status, "VmHWM:");
    m->anon_kb = status_kb(status, "RssAnon:");
    if (m->anon_kb > m->anon_peak_kb)
        m->anon_peak_kb = m->anon_kb;
    m->file_kb = status_kb(status, "RssFile:");
    if (polling) {
        atomic_store(&pl.stop, 1);
        pthread_join(poll_thread, NULL);
        m->anon_polled_kb = pl.peak_kb;
    }
    if (want_smaps && idx % 16 == 0)
        print_smaps(pid);
    close(pfd[1]);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if ((lf = fopen(logp, "r")) != NULL) {
        char line[1024];
        while (fgets(line, sizeof(line), lf) != NULL) {
            char *p = strstr(line, "snapshots ");
            if (p != NULL && strstr(line, "triggers") != NULL)
                m->snapshots = strtoull(p + 10, NULL, 10);
        }
        fclose(lf);
    }
    return isnan(m->rss_kb) ? -1 : 0;
}

static int closed_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Runs argv (stdout passed through); returns its exit status. */
static int run_tool(char *const argv[])
{
    pid_t pid;
    int status;

    fflush(stdout);
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(int argc, char **argv)
{
    int runs = 3, fail = 0, port;
    const char *t = getenv("TMPDIR");
    char url[512];
    const char *server = NULL;
    const char *rings[2] = { "1", "10" };
    const char *names[2] = { "base", "ring" };
    /* The ring keeps a float per channel and an int64 timestamp per frame. */
    double ring_mb[2] = { RATE * 1.0 * (CHANNELS * 4 + 8) / 1e6,
                          RATE * 10.0 * (CHANNELS * 4 + 8) / 1e6 };
    double med_hwm[2] = { 0 }, med_anon[2] = { 0 }, med_rss[2] = { 0 }, med_peak[2] = { 0 };
    double med_polled[2] = { 0 };

    agent_path[0] = '\0';
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--agent") && i + 1 < argc)
            snprintf(agent_path, sizeof(agent_path), "%s", argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--smaps"))
            want_smaps++;       /* twice: every unnamed mapping too */
        else if (!strcmp(argv[i], "--poll-us") && i + 1 < argc)
            poll_us = atol(argv[++i]);
        else if (!strcmp(argv[i], "--server") && i + 1 < argc)
            server = argv[++i];
        else if (!strcmp(argv[i], "--ca-file") && i + 1 < argc)
            ca_file = argv[++i];
        else if (!strcmp(argv[i], "--enroll-secret-file") && i + 1 < argc)
            enroll_secret = argv[++i];
        else {
            fprintf(stderr, "usage: bench-agent_memory [--agent PATH] [--runs R] [--smaps] "
                    "[--poll-us US] [--server URL [--ca-file PEM] [--enroll-secret-file FILE]]\n");
            return 2;
        }
    }
    if (poll_us < 50 || poll_us > 999999) {
        fprintf(stderr, "agent_memory: --poll-us 50..999999\n");
        return 2;
    }
    if (runs < 1 || runs > BENCH_MEDIAN_MAX) {
        fprintf(stderr, "agent_memory: runs 1..%d\n", BENCH_MEDIAN_MAX);
        return 2;
    }
    if (bench_agent_path(agent_path, sizeof(agent_path), argv[0], "agent_memory") != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    snprintf(work, sizeof(work), "%s/precursor-memory-XXXXXX", t && *t ? t : P_tmpdir);
    if (mkdtemp(work) == NULL || (port = closed_port()) < 0) {
        perror("agent_memory: set-up");
        return 1;
    }
    if (server)
        snprintf(url, sizeof(url), "%s", server);
    else
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);

    for (int c = 0; c < 2; c++) {
        double hwm[BENCH_MEDIAN_MAX], anon[BENCH_MEDIAN_MAX], rss[BENCH_MEDIAN_MAX];
        double peak[BENCH_MEDIAN_MAX], polled[BENCH_MEDIAN_MAX];
        for (int r = 0; r < runs; r++) {
            struct mem m;
            if (run_agent(rings[c], url, c * 16 + r, &m) != 0) {
                fprintf(stderr, "agent_memory: %s run %d failed\n", names[c], r);
                fail = 1;
                hwm[r] = anon[r] = rss[r] = peak[r] = polled[r] = NAN;
                continue;
            }
            printf("%s (--ring-s %s, ring %.1f MB) run %d: VmRSS %.0f kB VmHWM %.0f kB "
                   "RssAnon %.0f kB (peak %.0f kB, polled peak %.0f kB) RssFile %.0f kB, "
                   "snapshots %llu\n",
                   names[c], rings[c], ring_mb[c], r, m.rss_kb, m.hwm_kb, m.anon_kb,
                   m.anon_peak_kb, m.anon_polled_kb, m.file_kb, m.snapshots);
            if (m.snapshots < 5)
                fail = 1;       /* the captures are part of what is measured */
            hwm[r] = m.hwm_kb;
            anon[r] = m.anon_kb;
            rss[r] = m.rss_kb;
            peak[r] = m.anon_peak_kb;
            polled[r] = m.anon_polled_kb;
        }
        med_polled[c] = bench_median(polled, runs);
        med_peak[c] = bench_median(peak, runs);
        med_hwm[c] = bench_median(hwm, runs);
        med_anon[c] = bench_median(anon, runs);
        med_rss[c] = bench_median(rss, runs);
    }
    /* 1 MB = 10^6 bytes throughout; /proc's kB are 1024 bytes. */
    double hwm_mb = med_hwm[1] * 1024 / 1e6, anon_mb = med_anon[1] * 1024 / 1e6;
    double limit = ring_mb[1] + 1.0;
    printf("memory ring=%.1f MB: VmHWM %.2f MB, VmRSS %.2f MB, RssAnon %.2f MB (median of %d)\n",
           ring_mb[1], hwm_mb, med_rss[1] * 1024 / 1e6, anon_mb, runs);
    printf("memory ring=%.1f MB: RssAnon peak while fed %.2f MB (median of %d)\n", ring_mb[1],
           med_peak[1] * 1024 / 1e6, runs);
    printf("memory ring=%.1f MB: RssAnon peak polled every %ld us %.2f MB (median of %d)\n",
           ring_mb[1], poll_us, med_polled[1] * 1024 / 1e6, runs);
    printf("memory base (ring %.1f MB): VmHWM %.2f MB, RssAnon %.2f MB, RssAnon peak %.2f MB, "
           "polled %.2f MB\n",
           ring_mb[0], med_hwm[0] * 1024 / 1e6, med_anon[0] * 1024 / 1e6,
           med_peak[0] * 1024 / 1e6, med_polled[0] * 1024 / 1e6);
    printf("memory ring-base: VmHWM +%.2f MB, RssAnon +%.2f MB for +%.1f MB of ring (ratio %.2f)\n",
           (med_hwm[1] - med_hwm[0]) * 1024 / 1e6, (med_anon[1] - med_anon[0]) * 1024 / 1e6,
           ring_mb[1] - ring_mb[0],
           (med_anon[1] - med_anon[0]) * 1024 / 1e6 / (ring_mb[1] - ring_mb[0]));
    printf("memory target VmHWM <= ring + 1 MB (%.1f MB): %s by %.2f MB\n", limit,
           hwm_mb <= limit ? "met" : "MISSED", fabs(hwm_mb - limit));
    printf("memory target RssAnon <= ring + 1 MB (%.1f MB): %s by %.2f MB\n", limit,
           anon_mb <= limit ? "met" : "MISSED", fabs(anon_mb - limit));
    printf("memory target RssAnon peak <= ring + 1 MB (%.1f MB): %s by %.2f MB\n", limit,
           med_peak[1] * 1024 / 1e6 <= limit ? "met" : "MISSED",
           fabs(med_peak[1] * 1024 / 1e6 - limit));
    printf("memory target RssAnon polled peak <= ring + 1 MB (%.1f MB): %s by %.2f MB\n", limit,
           med_polled[1] * 1024 / 1e6 <= limit ? "met" : "MISSED",
           fabs(med_polled[1] * 1024 / 1e6 - limit));

    /* Binary size: sections as built (-O2 -g), and a stripped copy. */
    char stripped[700];
    struct stat st;
    snprintf(stripped, sizeof(stripped), "%s/precursor-agent.stripped", work);
    char *size_argv[] = { "size", agent_path, NULL };
    char *strip_argv[] = { "strip", "-o", stripped, agent_path, NULL };
    if (run_tool(size_argv) != 0)
        printf("binary: size(1) not available\n");
    if (run_tool(strip_argv) == 0 && stat(stripped, &st) == 0)
        printf("binary stripped: %lld bytes\n", (long long)st.st_size);
    if (stat(agent_path, &st) == 0)
        printf("binary as built: %lld bytes\n", (long long)st.st_size);

    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
    if (system(cmd) != 0)
        fprintf(stderr, "agent_memory: could not remove %s\n", work);
    return fail;
}
