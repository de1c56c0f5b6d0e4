/* check_spool.c - the spool: round trip, crash leftovers (temp files,
 * truncated, corrupt, bad header) quarantined and counted, sequence numbers
 * across re-open, the cap policy's order, dead letters, and removals a crash
 * interrupted after their commit point; the first four also with every
 * envelope put streamed (spool_stream_*), and the streamed put's edges. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/spool/spool.h"
#include "agent/command/command_int.h"

Suite *spool_suite(void);

static char dir[512];

static void mk_dir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/spool-test-XXXXXX", t && *t ? t : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_tree(const char *d)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", d);
}

static void teardown(void)
{
    rm_tree(dir);
}

/* Deterministic envelope content for seq, n bytes. */
static uint8_t *env_for(uint64_t seq, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seq * 31 + i * 7);
    return b;
}

/* 1: put() streams its envelope (spool_stream_*) as the agent's encoder
 * does; the tests that loop over both set it from _i. */
static int g_streamed;

/* As wire_encode_v2_planes_file writes: appended in pieces with a
 * placeholder the length field's way, patched, read back twice (the
 * signature's two passes), the last bytes appended, committed. */
static int put_streamed(struct spool *sp, uint64_t seq, uint8_t prio, const uint8_t *b, size_t n)
{
    size_t tail = n < 64 ? n : 64, body = n - tail, fix = body < 4 ? body : 4;
    uint8_t junk[4] = { 0xde, 0xad, 0xbe, 0xef }, back[997];
    int rc = spool_stream_begin(sp, seq);

    if (rc != 0)
        return rc;
    if (fix && spool_stream_append(sp, junk, fix) != 0)
        return -100;
    for (size_t at = fix; at < body; at += sizeof back) {
        size_t k = body - at < sizeof back ? body - at : sizeof back;
        ck_assert_int_eq(spool_stream_append(sp, b + at, k), 0);
    }
    if (fix)
        ck_assert_int_eq(spool_stream_patch(sp, 0, b, fix), 0);
    for (int pass = 0; pass < 2; pass++)
        for (size_t at = 0; at < body; at += sizeof back) {
            size_t k = body - at < sizeof back ? body - at : sizeof back;
            ck_assert_int_eq(spool_stream_read(sp, at, back, k), 0);
            ck_assert(memcmp(back, b + at, k) == 0);
        }
    ck_assert_int_eq(spool_stream_append(sp, b + body, tail), 0);
    return spool_stream_commit(sp, prio);
}

static int put(struct spool *sp, uint8_t prio, size_t n)
{
    uint64_t seq = spool_next_seq(sp);
    uint8_t *b = env_for(seq, n);
    int rc = g_streamed ? put_streamed(sp, seq, prio, b, n) : spool_put(sp, seq, prio, b, n);
    free(b);
    return rc;
}

static void path_of(char *out, size_t cap, const char *sub, uint64_t seq)
{
    snprintf(out, cap, "%s/%s%s%020" PRIu64 ".snap", dir, sub ? sub : "", sub ? "/" : "", seq);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int count_in(const char *sub)
{
    char p[600];
    DIR *d;
    struct dirent *de;
    int n = 0;
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    d = opendir(p);
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void check_take(struct spool *sp, uint64_t want, size_t n)
{
    uint64_t seq;
    uint8_t *b;
    size_t len;
    uint8_t *exp = env_for(want, n);
    ck_assert_int_eq(spool_take(sp, &seq, &b, &len), 0);
    ck_assert_uint_eq(seq, want);
    ck_assert_uint_eq(len, n);
    ck_assert_int_eq(memcmp(b, exp, n), 0);
    free(b);
    free(exp);
}

START_TEST(test_round_trip)
{
    g_streamed = _i;
    struct spool *sp;
    struct spool_stats st;

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), 1);
    ck_assert_int_eq(put(sp, 1, 1000), 0);
    ck_assert_int_eq(put(sp, 1, 0), 0);
    ck_assert_int_eq(put(sp, 2, 5000), 0);
    ck_assert_int_eq(spool_put(sp, 9, 1, (const uint8_t *)"x", 1), SPOOL_EINVAL);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 3);
    ck_assert_uint_eq(st.bytes, 6000 + 3 * 40);
    ck_assert_uint_eq(st.spooled, 3);
    spool_close(sp);

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), 4);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 3);
    ck_assert_uint_eq(st.quarantined, 0);
    check_take(sp, 1, 1000);
    check_take(sp, 2, 0);          /* the first is in flight: the next one comes */
    spool_release(sp, 1);
    check_take(sp, 1, 1000);
    ck_assert_int_eq(spool_done(sp, 1), 0);
    ck_assert_int_eq(spool_done(sp, 1), SPOOL_ENOENT);
    ck_assert_int_eq(spool_done(sp, 2), 0);
    check_take(sp, 3, 5000);
    ck_assert_int_eq(spool_done(sp, 3), 0);
    {
        uint64_t s;
        uint8_t *b;
        size_t l;
        ck_assert_int_eq(spool_take(sp, &s, &b, &l), SPOOL_ENOENT);
    }
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.uploaded, 3);
    spool_close(sp);
}
END_TEST

/* Everything uploaded and deleted: the next number must still not be reused. */
START_TEST(test_seq_persists_when_empty)
{
    g_streamed = _i;
    struct spool *sp;
    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(put(sp, 1, 100), 0);
    for (uint64_t s = 1; s <= 5; s++) {
        check_take(sp, s, 100);
        ck_assert_int_eq(spool_done(sp, s), 0);
    }
    spool_close(sp);
    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), 6);
    ck_assert_int_eq(put(sp, 1, 10), 0);
    spool_close(sp);
    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), 7);
    spool_close(sp);
}
END_TEST

static void write_bytes(const char *p, const void *b, size_t n, int flags)
{
    int fd = open(p, O_WRONLY | O_CREAT | flags, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
    close(fd);
}

START_TEST(test_crash_leftovers_quarantined)
{
    g_streamed = _i;
    struct spool *sp;
    struct spool_stats st;
    struct spool_gap g[8];
    size_t ng;
    uint64_t total;
    char p[600], q[620];

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(put(sp, 1, 300), 0);
    spool_close(sp);

    /* 2: truncated in the envelope; 3: one envelope byte flipped;
     * 4: bad magic; 6 (the highest): truncated inside the header;
     * a stray temp file of an unfinished 7. */
    path_of(p, sizeof p, NULL, 2);
    ck_assert_int_eq(truncate(p, 200), 0);
    path_of(p, sizeof p, NULL, 3);
    {
        int fd = open(p, O_RDWR);
        uint8_t c;
        ck_assert_int_eq(pread(fd, &c, 1, 100), 1);
        c ^= 0x40;
        ck_assert_int_eq(pwrite(fd, &c, 1, 100), 1);
        close(fd);
    }
    path_of(p, sizeof p, NULL, 4);
    {
        int fd = open(p, O_RDWR);
        ck_assert_int_eq(pwrite(fd, "XXXX", 4, 0), 4);
        close(fd);
    }
    path_of(p, sizeof p, NULL, 6);
    ck_assert_int_eq(truncate(p, 17), 0);
    path_of(p, sizeof p, NULL, 7);
    snprintf(q, sizeof q, "%s.tmp", p);
    write_bytes(q, "partial", 7, O_TRUNC);

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 2);
    ck_assert_uint_eq(st.quarantined, 4);
    ck_assert_uint_eq(st.next_seq, 7);   /* 7 never left the temp name: reuse is safe */
    ck_assert(!exists(q));
    ck_assert_int_eq(count_in("quarantine"), 4);
    ck_assert_int_eq(spool_gaps(sp, g, 8, &ng, &total), 0);
    ck_assert_uint_eq(total, 4);
    ck_assert_uint_eq(ng, 2);
    ck_assert_uint_eq(g[0].first, 2);
    ck_assert_uint_eq(g[0].last, 4);
    ck_assert_int_eq(g[0].kind, SPOOL_GAP_QUARANTINED);
    ck_assert_uint_eq(g[1].first, 6);
    check_take(sp, 1, 300);
    ck_assert_int_eq(spool_done(sp, 1), 0);
    check_take(sp, 5, 300);
    ck_assert_int_eq(spool_done(sp, 5), 0);
    spool_close(sp);

    /* A second open finds nothing more to do and keeps the gaps. */
    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 0);
    ck_assert_uint_eq(st.quarantined, 0);
    ck_assert_uint_eq(st.next_seq, 7);
    ck_assert_int_eq(spool_gaps(sp, g, 8, &ng, &total), 0);
    ck_assert_uint_eq(total, 4);
    spool_close(sp);
}
END_TEST

/* A file corrupted after open is quarantined when taken, and the next comes. */
START_TEST(test_corrupt_on_take)
{
    struct spool *sp;
    struct spool_stats st;
    char p[600];

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_int_eq(put(sp, 1, 50), 0);
    ck_assert_int_eq(put(sp, 1, 50), 0);
    path_of(p, sizeof p, NULL, 1);
    ck_assert_int_eq(truncate(p, 60), 0);
    check_take(sp, 2, 50);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.quarantined, 1);
    ck_assert_uint_eq(st.files, 1);
    spool_close(sp);
}
END_TEST

/* spool_take_fd: the same verification as spool_take, in pieces (an
 * envelope over several 4 KB pieces); the fd is at the envelope's first
 * byte; a file whose body was flipped after the put is quarantined and the
 * next one taken. */
START_TEST(test_take_fd)
{
    struct spool *sp;
    struct spool_stats st;
    uint64_t seq;
    size_t len;
    int fd;
    char p[600];
    uint8_t *exp, *got;
    FILE *f;

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_int_eq(put(sp, 1, 10000), 0);
    ck_assert_int_eq(put(sp, 1, 10000), 0);
    ck_assert_int_eq(put(sp, 1, 3), 0);
    /* flip one byte in the middle of the first envelope */
    path_of(p, sizeof p, NULL, 1);
    f = fopen(p, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 40 + 5000, SEEK_SET), 0);
    ck_assert_int_eq(fputc(0x5A ^ (int)(uint8_t)(31 + 5000 * 7), f), 0x5A ^ (int)(uint8_t)(31 + 5000 * 7));
    fclose(f);
    ck_assert_int_eq(spool_take_fd(sp, &seq, &fd, &len), 0);
    ck_assert_uint_eq(seq, 2);
    ck_assert_uint_eq(len, 10000);
    exp = env_for(2, len);
    got = malloc(len);
    ck_assert_int_eq(read(fd, got, len), (ssize_t)len);
    ck_assert_int_eq(memcmp(got, exp, len), 0);
    ck_assert_int_eq(read(fd, got, 1), 0);          /* nothing after the envelope */
    close(fd);
    free(got);
    free(exp);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.quarantined, 1);
    ck_assert_int_eq(spool_done(sp, 2), 0);
    ck_assert_int_eq(spool_take_fd(sp, &seq, &fd, &len), 0);
    ck_assert_uint_eq(seq, 3);
    ck_assert_uint_eq(len, 3);
    close(fd);
    spool_close(sp);
}
END_TEST

#define SZ 100      /* envelope bytes; 140 on disk */

START_TEST(test_cap_policy_order)
{
    g_streamed = _i;
    struct spool *sp;
    struct spool_stats st;
    struct spool_gap g[8];
    size_t ng;
    uint64_t total;
    char p[600];

    /* Room for three files of 140 bytes. */
    ck_assert_int_eq(spool_open(dir, 3 * (SZ + 40), &sp), 0);
    ck_assert_int_eq(put(sp, 5, SZ), 0);   /* 1 */
    ck_assert_int_eq(put(sp, 1, SZ), 0);   /* 2: lowest priority */
    ck_assert_int_eq(put(sp, 5, SZ), 0);   /* 3 */
    ck_assert_int_eq(put(sp, 5, SZ), 0);   /* 4: evicts 2 (lowest priority first) */
    path_of(p, sizeof p, NULL, 2);
    ck_assert(!exists(p));
    ck_assert_int_eq(put(sp, 5, SZ), 0);   /* 5: evicts 1 (then the oldest) */
    path_of(p, sizeof p, NULL, 1);
    ck_assert(!exists(p));
    /* 6 has a lower priority than everything waiting: it is the one dropped. */
    ck_assert_int_eq(put(sp, 2, SZ), SPOOL_EDROPPED);
    ck_assert_uint_eq(spool_next_seq(sp), 7);
    /* The one in flight is never evicted: 3 is taken, so 7 evicts 4. */
    check_take(sp, 3, SZ);
    ck_assert_int_eq(put(sp, 5, SZ), 0);
    path_of(p, sizeof p, NULL, 4);
    ck_assert(!exists(p));
    path_of(p, sizeof p, NULL, 3);
    ck_assert(exists(p));
    /* Bigger than the cap: dropped. */
    ck_assert_int_eq(put(sp, 9, 4 * SZ), SPOOL_EDROPPED);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.dropped, 5);
    ck_assert_uint_eq(st.files, 3);
    ck_assert_uint_le(st.bytes, 3 * (SZ + 40));
    spool_close(sp);

    ck_assert_int_eq(spool_open(dir, 3 * (SZ + 40), &sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), 9);
    ck_assert_int_eq(spool_gaps(sp, g, 8, &ng, &total), 0);
    ck_assert_uint_eq(total, 5);
    /* 2, then 1 (merged: 1..2), 6, 4, 8 - kept in the order recorded, merged when adjacent */
    {
        uint64_t seen = 0;
        for (size_t i = 0; i < ng; i++) {
            ck_assert_int_eq(g[i].kind, SPOOL_GAP_DROPPED);
            for (uint64_t s = g[i].first; s <= g[i].last; s++)
                seen |= 1ull << s;
        }
        ck_assert_uint_eq(seen, (1u << 1) | (1u << 2) | (1u << 4) | (1u << 6) | (1u << 8));
    }
    spool_close(sp);
}
END_TEST

START_TEST(test_dead_letter)
{
    struct spool *sp;
    struct spool_stats st;
    struct spool_gap g[4];
    size_t ng;
    char p[600];
    FILE *f;
    char line[128] = "";

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_int_eq(put(sp, 1, 64), 0);
    ck_assert_int_eq(put(sp, 1, 64), 0);
    check_take(sp, 1, 64);
    ck_assert_int_eq(spool_done(sp, 1), 0);
    check_take(sp, 2, 64);
    ck_assert_int_eq(spool_dead_letter(sp, 2, "http 409: seq_conflict"), 0);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.dead_lettered, 1);
    ck_assert_uint_eq(st.files, 0);
    path_of(p, sizeof p, "dead", 2);
    ck_assert(exists(p));
    strcat(p, ".reason");
    f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "http 409: seq_conflict\n");
    spool_close(sp);

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), 3);
    ck_assert_int_eq(spool_gaps(sp, g, 4, &ng, NULL), 0);
    ck_assert_uint_eq(ng, 1);
    ck_assert_uint_eq(g[0].first, 2);
    ck_assert_int_eq(g[0].kind, SPOOL_GAP_DEAD);
    spool_close(sp);
}
END_TEST

/* One spool folder, one writer: a second open while the first is held (a
 * second agent with the same config) is refused before it touches anything:
 * it removed the first one's .tmp as it was written and handed out its
 * numbers again.  Once the first is closed the folder opens. */
START_TEST(test_second_open_refused)
{
    struct spool *sp, *sp2 = NULL;
    char p[600];

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_int_eq(put(sp, 1, 64), 0);
    ck_assert_int_eq(spool_stream_begin(sp, spool_next_seq(sp)), 0);
    ck_assert_int_eq(spool_open(dir, 0, &sp2), SPOOL_EBUSY);
    ck_assert_ptr_null(sp2);
    snprintf(p, sizeof p, "%s/%020d.snap.tmp", dir, 2);
    ck_assert_msg(exists(p), "the first writer's %s was removed", p);
    spool_stream_abort(sp);
    ck_assert_str_eq(spool_strerror(SPOOL_EBUSY),
                     "in use by another agent (one spool folder per running agent)");
    spool_close(sp);
    ck_assert_int_eq(spool_open(dir, 0, &sp2), 0);
    ck_assert_uint_eq(spool_next_seq(sp2), 2);
    spool_close(sp2);
}
END_TEST

/* A snapshot the cap drops, put through the agent's sink: not an error,
 * and one line on stderr, not the spool's and the agent's both. */
START_TEST(test_cap_drop_said_once)
{
    struct spool *sp;
    struct pipeline_sink sink;
    struct wire_meta m;
    uint8_t *env = env_for(1, 4096);
    char log[600], line[512];
    int saved = dup(2), fd, lines = 0;
    FILE *f;

    ck_assert_int_eq(spool_open(dir, 1024, &sp), 0);
    sink = command_spool_sink(sp);
    memset(&m, 0, sizeof m);
    snprintf(log, sizeof log, "%s.log", dir);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    ck_assert_int_eq(sink.put(sink.ctx, sink.next_seq(sink.ctx), &m, env, 4096), 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    free(env);
    f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        ck_assert_msg(strstr(line, "snapshot 1 dropped") != NULL, "line '%s'", line);
        lines++;
    }
    fclose(f);
    unlink(log);
    ck_assert_int_eq(lines, 1);
    ck_assert_uint_eq(spool_next_seq(sp), 2);
    spool_close(sp);
}
END_TEST

/* A server that refuses everything (a revoked device answers 403) moves
 * every snapshot to dead/: only the newest 32 stay there, with their
 * reasons, so the spool's disk stays bounded; every number is still a
 * reported gap and the next number is unchanged after a re-open. */
START_TEST(test_dead_letters_bounded)
{
    struct spool *sp;
    struct spool_gap g[4];
    size_t ng;
    uint64_t total = 0;
    char p[600];

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    for (uint64_t seq = 1; seq <= 50; seq++) {
        ck_assert_int_eq(put(sp, 1, 64), 0);
        check_take(sp, seq, 64);
        ck_assert_int_eq(spool_dead_letter(sp, seq, "http 403: revoked"), 0);
    }
    ck_assert_int_eq(count_in("dead"), 2 * 32);      /* .snap and .reason each */
    path_of(p, sizeof p, "dead", 18);
    ck_assert(!exists(p));
    path_of(p, sizeof p, "dead", 19);
    ck_assert(exists(p));
    strcat(p, ".reason");
    ck_assert(exists(p));
    spool_close(sp);

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_uint_eq(spool_next_seq(sp), 51);
    ck_assert_int_eq(spool_gaps(sp, g, 4, &ng, &total), 0);
    ck_assert_uint_eq(ng, 1);
    ck_assert_uint_eq(g[0].first, 1);
    ck_assert_uint_eq(g[0].last, 50);
    ck_assert_int_eq(g[0].kind, SPOOL_GAP_DEAD);
    spool_close(sp);
}
END_TEST

/* A crash after the gap was recorded but before the file left: the open
 * finishes the removal, so the snapshot is not uploaded after being
 * reported as dropped. */
START_TEST(test_interrupted_eviction_finished)
{
    struct spool *sp;
    struct spool_stats st;
    char p[600];
    uint8_t *saved;
    long n;
    FILE *f;

    ck_assert_int_eq(spool_open(dir, 2 * (SZ + 40), &sp), 0);
    ck_assert_int_eq(put(sp, 1, SZ), 0);
    ck_assert_int_eq(put(sp, 1, SZ), 0);
    path_of(p, sizeof p, NULL, 1);
    f = fopen(p, "rb");
    saved = malloc(SZ + 40);
    n = (long)fread(saved, 1, SZ + 40, f);
    fclose(f);
    ck_assert_int_eq(n, SZ + 40);
    ck_assert_int_eq(put(sp, 1, SZ), 0);       /* evicts 1 */
    spool_close(sp);
    write_bytes(p, saved, SZ + 40, O_TRUNC);   /* as if the unlink never happened */
    free(saved);

    ck_assert_int_eq(spool_open(dir, 2 * (SZ + 40), &sp), 0);
    ck_assert(!exists(p));
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 2);
    check_take(sp, 2, SZ);
    spool_close(sp);
}
END_TEST

/* The streamed put's own edges: a wrong seq refused; abort removes the
 * temporary file and uses no number; a crash while streaming (the process
 * gone with the file open) leaves only the .tmp, removed on open, the number
 * reused; a patch nobody read back still gets the right CRC (the commit
 * reads the file); patch and read stay within what was appended; nothing is
 * left open by spool_close. */
START_TEST(test_stream_edges)
{
    struct spool *sp;
    struct spool_stats st;
    char p[600], tmp[620];
    uint8_t *b = env_for(1, 9000), piece[16];
    pid_t pid;
    int status;

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_int_eq(spool_stream_begin(sp, 2), SPOOL_EINVAL);
    ck_assert_int_eq(spool_stream_append(sp, b, 10), SPOOL_EINVAL);     /* none open */
    ck_assert_int_eq(spool_stream_commit(sp, 1), SPOOL_EINVAL);
    path_of(p, sizeof p, NULL, 1);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);

    ck_assert_int_eq(spool_stream_begin(sp, 1), 0);
    ck_assert(exists(tmp));
    ck_assert_int_eq(spool_stream_append(sp, b, 100), 0);
    ck_assert_int_eq(spool_stream_patch(sp, 98, b, 3), SPOOL_EINVAL);   /* past the end */
    ck_assert_int_eq(spool_stream_read(sp, 101, piece, 0), SPOOL_EINVAL);
    ck_assert_int_eq(spool_stream_read(sp, 90, piece, 11), SPOOL_EINVAL);
    spool_stream_abort(sp);
    ck_assert(!exists(tmp));
    ck_assert_uint_eq(spool_next_seq(sp), 1);

    /* a crash in the middle of a streamed put */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (spool_stream_begin(sp, 1) != 0 || spool_stream_append(sp, b, 5000) != 0)
            _exit(1);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    spool_close(sp);
    ck_assert(exists(tmp));
    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert(!exists(tmp));
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 0);
    ck_assert_uint_eq(st.quarantined, 0);
    ck_assert_uint_eq(st.next_seq, 1);

    /* patched, never read back: the commit's CRC comes from the file */
    ck_assert_int_eq(spool_stream_begin(sp, 1), 0);
    memset(piece, 0, sizeof piece);
    ck_assert_int_eq(spool_stream_append(sp, piece, sizeof piece), 0);
    ck_assert_int_eq(spool_stream_append(sp, b + sizeof piece, 9000 - sizeof piece), 0);
    ck_assert_int_eq(spool_stream_patch(sp, 0, b, sizeof piece), 0);
    ck_assert_int_eq(spool_stream_commit(sp, 3), 0);
    ck_assert(!exists(tmp));
    ck_assert(exists(p));
    /* read back from an offset other than the CRC's: still from the file */
    {
        uint8_t *b2 = env_for(2, 5000);
        ck_assert_int_eq(spool_stream_begin(sp, 2), 0);
        ck_assert_int_eq(spool_stream_append(sp, b2, 5000), 0);
        ck_assert_int_eq(spool_stream_patch(sp, 10, b2 + 10, 4), 0);
        ck_assert_int_eq(spool_stream_read(sp, 100, piece, sizeof piece), 0);
        ck_assert_int_eq(spool_stream_commit(sp, 3), 0);
        free(b2);
    }
    /* left open at close: removed */
    ck_assert_int_eq(spool_stream_begin(sp, 3), 0);
    ck_assert_int_eq(spool_stream_append(sp, b, 10), 0);
    spool_close(sp);
    path_of(p, sizeof p, NULL, 3);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    ck_assert(!exists(tmp));

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 2);
    ck_assert_uint_eq(st.quarantined, 0);
    check_take(sp, 1, 9000);
    check_take(sp, 2, 5000);
    spool_close(sp);
    free(b);
}
END_TEST

Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_add_checked_fixture(tc, mk_dir, teardown);
    tcase_add_loop_test(tc, test_round_trip, 0, 2);
    tcase_add_loop_test(tc, test_seq_persists_when_empty, 0, 2);
    tcase_add_loop_test(tc, test_crash_leftovers_quarantined, 0, 2);
    tcase_add_test(tc, test_corrupt_on_take);
    tcase_add_test(tc, test_take_fd);
    tcase_add_loop_test(tc, test_cap_policy_order, 0, 2);
    tcase_add_test(tc, test_dead_letter);
    tcase_add_test(tc, test_dead_letters_bounded);
    tcase_add_test(tc, test_second_open_refused);
    tcase_add_test(tc, test_cap_drop_said_once);
    tcase_add_test(tc, test_interrupted_eviction_finished);
    tcase_add_test(tc, test_stream_edges);
    suite_add_tcase(s, tc);
    return s;
}
