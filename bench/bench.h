/* bench.h - the few helpers every benchmark program wants: a monotonic
 * clock in seconds, a qsort comparator for medians, the median of a few
 * runs, a write that finishes, key=value arguments split, and the agent
 * the agent benchmarks run.  Static inline, included by the programs under
 * bench/ that use them. */
#ifndef PRECURSOR_BENCH_H
#define PRECURSOR_BENCH_H

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Wall-clock seconds on the monotonic clock (for rates and latencies). */
static inline double bench_now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* qsort comparator of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Most runs bench_median takes (the agent benchmarks' --runs limit). */
#define BENCH_MEDIAN_MAX 16

/* The median of n runs' figures (1 <= n <= BENCH_MEDIAN_MAX; NAN otherwise),
 * the mean of the middle two when n is even.  Sorted in a copy: the caller
 * keeps each run's figure where it put it. */
static inline double bench_median(const double *v, int n)
{
    double s[BENCH_MEDIAN_MAX];

    if (n < 1 || n > BENCH_MEDIAN_MAX)
        return NAN;
    memcpy(s, v, (size_t)n * sizeof(double));
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            double x = s[j];
            s[j] = s[j - 1];
            s[j - 1] = x;
        }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* All len bytes to fd, through EINTR and short writes: 0 or -1. */
static inline int bench_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* A "key=value" argument split: the key copied into key (cap bytes, NUL
 * included), *value pointing into arg after the '='.  0, or -1 when arg
 * has no '=' or its key does not fit. */
static inline int bench_key_value(const char *arg, char *key, size_t cap, const char **value)
{
    const char *eq = strchr(arg, '=');

    if (!eq || (size_t)(eq - arg) >= cap)
        return -1;
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    *value = eq + 1;
    return 0;
}

/* The agent binary an agent benchmark runs: path as given (--agent), or,
 * when empty, precursor-agent beside the benchmark program (argv0's
 * folder), so that a build folder's bench runs that build's agent.  0, or
 * -1 with "<prog>: <path>: not built" said when it is not executable. */
static inline int bench_agent_path(char *path, size_t cap, const char *argv0, const char *prog)
{
    if (path[0] == '\0') {
        const char *slash = strrchr(argv0, '/');

        snprintf(path, cap, "%.*sprecursor-agent", slash ? (int)(slash - argv0 + 1) : 0, argv0);
    }
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "%s: %s: not built\n", prog, path);
        return -1;
    }
    return 0;
}

#endif
