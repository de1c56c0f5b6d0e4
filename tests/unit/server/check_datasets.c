/* check_datasets.c - window and split policies, and the npz writer: no group
 * in two splits, the same seed gives the same split, a class too rare for
 * the split is named, the npz is byte-identical on re-export and reads back
 * through an independent reader (libarchive's zip reader here; numpy too
 * when python3 with numpy is installed, skipped with a message otherwise). */
#include "server/datasets/datasets.h"
#include "server/datasets/ds_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testmembuf.h"

START_TEST(window_edges)
{
    struct ds_snapshot s = { 5, 1000000, 100.0, 1000, 0 };
    struct ds_label l = { 5, 2.0, 6.0, 1, 0 };
    struct ds_window *w;
    size_t n;

    ck_assert_int_eq(ds_windows(&s, 1, &l, 1, 1.0, 0.5, DS_EDGE_MAJORITY, &w, &n), 0);
    ck_assert_uint_eq(n, 9);                 /* starts 1.5 .. 5.5 s */
    ck_assert_uint_eq(w[0].start, 150);
    ck_assert_int_eq(w[0].start_us, 1000000 + 1500000);
    ck_assert_int_eq(w[0].cls, 1);
    free(w);
    ck_assert_int_eq(ds_windows(&s, 1, &l, 1, 1.0, 0.5, DS_EDGE_STRICT, &w, &n), 0);
    ck_assert_uint_eq(n, 7);                 /* starts 2.0 .. 5.0 s */
    ck_assert_uint_eq(w[0].start, 200);
    free(w);
    ck_assert_int_eq(ds_windows(&s, 1, &l, 1, 1.0, 0.25, DS_EDGE_ANY, &w, &n), 0);
    ck_assert_uint_eq(n, 19);                /* starts 1.25 .. 5.75 s */
    free(w);
    /* Two labels: the larger overlap wins. */
    {
        struct ds_label two[2] = { { 5, 0.0, 1.3, 2, 1 }, { 5, 1.3, 3.0, 3, 0 } };
        ck_assert_int_eq(ds_windows(&s, 1, two, 2, 1.0, 1.0, DS_EDGE_MAJORITY, &w, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_int_eq(w[0].cls, 2);
        ck_assert_int_eq(w[0].source, 1);
        ck_assert_int_eq(w[1].cls, 3);
        free(w);
    }
    ck_assert_int_eq(ds_windows(&s, 1, &l, 1, 0.0, 0.5, DS_EDGE_MAJORITY, &w, &n), DS_EINVAL);
}
END_TEST

#define G 40
static char g_names[G][16];
static const char *g_ptrs[G];

static struct ds_window *grouped_windows(size_t *n)
{
    struct ds_snapshot s[G];
    struct ds_label l[2 * G];
    struct ds_window *w;

    for (int g = 0; g < G; g++) {
        snprintf(g_names[g], sizeof g_names[g], "dev-%02d", g);
        g_ptrs[g] = g_names[g];
        s[g] = (struct ds_snapshot){ 100 + g, (int64_t)g * 1000000000, 100.0, 1000, (uint32_t)g };
        l[2 * g] = (struct ds_label){ 100 + g, 0.0, 5.0, 0, 0 };
        l[2 * g + 1] = (struct ds_label){ 100 + g, 5.0, 10.0, 1 + g % 2, 0 };
    }
    ck_assert_int_eq(ds_windows(s, G, l, 2 * G, 1.0, 1.0, DS_EDGE_MAJORITY, &w, n), 0);
    ck_assert_uint_eq(*n, 10 * G);
    return w;
}

START_TEST(split_grouped_seeded)
{
    const double fr[3] = { 0.6, 0.2, 0.2 };
    size_t n, per[3] = { 0, 0, 0 };
    struct ds_window *a = grouped_windows(&n), *b = grouped_windows(&n), *c = grouped_windows(&n);
    int split_of[G], diff = 0;

    ck_assert_int_eq(ds_split(a, n, g_ptrs, NULL, G, fr, 42, 1, NULL, NULL), 0);
    ck_assert_int_eq(ds_split(b, n, g_ptrs, NULL, G, fr, 42, 1, NULL, NULL), 0);
    ck_assert_int_eq(ds_split(c, n, g_ptrs, NULL, G, fr, 43, 1, NULL, NULL), 0);
    for (int g = 0; g < G; g++)
        split_of[g] = -1;
    for (size_t i = 0; i < n; i++) {
        /* no group in two splits */
        if (split_of[a[i].group] < 0)
            split_of[a[i].group] = a[i].split;
        ck_assert_int_eq(a[i].split, split_of[a[i].group]);
        ck_assert_int_eq(a[i].split, b[i].split);          /* same seed, same split */
        diff += a[i].split != c[i].split;
        per[a[i].split]++;
    }
    ck_assert_int_gt(diff, 0);                             /* another seed, another split */
    ck_assert_uint_eq(per[0], 240);                        /* 24 groups of 10 */
    ck_assert_uint_eq(per[1], 80);
    ck_assert_uint_eq(per[2], 80);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* Two devices split half and half go one to train, one to test, whichever
 * the hash puts first and however unequal they are; a split with a share
 * keeps its first group even when that group is larger than the share. */
START_TEST(split_two_groups_nearest)
{
    const double half[3] = { 0.5, 0, 0.5 }, small[3] = { 0.2, 0, 0.8 };
    const char *names[2] = { "demo-bearing-2", "demo-bearing-3" };
    struct ds_window w[100];

    for (int big = 50; big <= 90; big += 20) {
        for (uint64_t seed = 0; seed < 8; seed++) {
            memset(w, 0, sizeof w);
            for (int i = 0; i < 100; i++) {
                w[i].group = i < big ? 0 : 1;
                w[i].cls = i % 2;
            }
            ck_assert_int_eq(ds_split(w, 100, names, NULL, 2, half, seed, 1, NULL, NULL), 0);
            ck_assert_int_ne(w[0].split, w[99].split);
            ck_assert_int_eq(w[0].split + w[99].split, 2);   /* train and test, not validation */
            ck_assert_int_eq(ds_split(w, 100, names, NULL, 2, small, seed, 1, NULL, NULL), 0);
            ck_assert_int_ne(w[0].split, w[99].split);
        }
    }
}
END_TEST

START_TEST(split_by_time_and_too_few)
{
    const double fr[3] = { 0.5, 0.25, 0.25 };
    int64_t key[G];
    size_t n;
    struct ds_window *w = grouped_windows(&n);
    int bad_c = -1, bad_s = -1;

    for (int g = 0; g < G; g++)
        key[g] = G - g;     /* later devices first in time */
    ck_assert_int_eq(ds_split(w, n, NULL, key, G, fr, 0, 1, NULL, NULL), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(w[i].split, w[i].group >= G / 2 ? 0 : w[i].group >= G / 4 ? 1 : 2);
    /* Class 3 only on one device: cannot be in train and test both. */
    w[0].cls = 3;
    ck_assert_int_eq(ds_split(w, n, g_ptrs, NULL, G, fr, 42, 1, &bad_c, &bad_s), DS_ETOOFEW);
    ck_assert_int_eq(bad_c, 3);
    ck_assert_int_ge(bad_s, 0);
    free(w);
}
END_TEST

START_TEST(class_weights)
{
    size_t counts[3] = { 90, 10, 0 };
    double wt[3];

    ds_class_weights(counts, 3, wt);
    ck_assert_double_eq_tol(wt[0], 100.0 / (2 * 90), 1e-12);
    ck_assert_double_eq_tol(wt[1], 100.0 / (2 * 10), 1e-12);
    ck_assert_double_eq(wt[2], 0.0);
}
END_TEST

/* N=3 windows, C=2, T=4. */
static void write_npz(struct membuf *m)
{
    struct ds_npz *z;
    uint64_t shx[3] = { 3, 2, 4 }, shy[1] = { 3 }, shc[1] = { 2 };
    float x[24];
    int64_t y[3] = { 0, 1, 1 };
    char classes[2][16] = { "normal", "imbalance" };
    uint8_t sha[32];

    for (int i = 0; i < 24; i++)
        x[i] = (float)i * 0.5f;
    memset(m, 0, sizeof *m);
    ck_assert_int_eq(ds_npz_open(mem_sink, m, &z), 0);
    ck_assert_int_eq(ds_npz_begin(z, "X", "<f4", 4, shx, 3), 0);
    /* in pieces, as the export streams it */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ds_npz_data(z, x + 8 * i, 32), 0);
    ck_assert_int_eq(ds_npz_last_sha256(z, sha), 0);
    ck_assert_int_eq(ds_npz_begin(z, "y", "<i8", 8, shy, 1), 0);
    ck_assert_int_eq(ds_npz_data(z, y, 16), 0);
    ck_assert_int_eq(ds_npz_data(z, y, 16), DS_ESTATE);     /* more than declared */
    ck_assert_int_eq(ds_npz_data(z, y + 2, 8), 0);
    ck_assert_int_eq(ds_npz_begin(z, "classes", "|S16", 16, shc, 1), 0);
    ck_assert_int_eq(ds_npz_data(z, classes, sizeof classes), 0);
    ck_assert_int_eq(ds_npz_file(z, "manifest.json", "{}", 2), 0);
    ck_assert_int_eq(ds_npz_close(z), 0);
}

/* Each entry's SHA-256 (computed on the writer's hashing thread, from a
 * ring of 1 MB blocks) is the hash of the entry's bytes as read back, for
 * entries that fill the ring more than once, end exactly on a block, are
 * empty, or come in odd pieces. */
START_TEST(npz_entry_hashes)
{
    /* with the 128-byte .npy header: 1 MB - 128 ends the entry on a block */
    static const size_t sizes[] = { 5u * 1048576u + 12345u, 1048576u - 128u, 0, 777, 2u * 1048576u };
    enum { N = sizeof sizes / sizeof sizes[0] };
    struct membuf m;
    struct ds_npz *z;
    uint8_t *data, got[N][32], want[32];
    size_t k;
    int entries = 0;
    struct archive *r;
    struct archive_entry *e;

    data = malloc(sizes[0]);
    ck_assert_ptr_nonnull(data);
    for (k = 0; k < sizes[0]; k++)
        data[k] = (uint8_t)(k * 2654435761u >> 13);
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(ds_npz_open(mem_sink, &m, &z), 0);
    for (k = 0; k < N; k++) {
        char name[16];
        size_t at = 0, piece = 1;
        uint64_t shape[1] = { sizes[k] };

        snprintf(name, sizeof name, "e%zu", k);
        if (sizes[k] == 0) {
            ck_assert_int_eq(ds_npz_file(z, name, NULL, 0), 0);
        } else {
            ck_assert_int_eq(ds_npz_begin(z, name, "|u1", 1, shape, 1), 0);
            while (at < sizes[k]) {
                size_t n = piece < sizes[k] - at ? piece : sizes[k] - at;

                ck_assert_int_eq(ds_npz_data(z, data + at, n), 0);
                at += n;
                piece = piece * 3 + 7;
            }
        }
        ck_assert_int_eq(ds_npz_last_sha256(z, got[k]), 0);
    }
    ck_assert_int_eq(ds_npz_close(z), 0);
    r = archive_read_new();
    archive_read_support_format_zip(r);
    ck_assert_int_eq(archive_read_open_memory(r, m.p, m.len), ARCHIVE_OK);
    while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
        size_t len = (size_t)archive_entry_size(e), at = 0;
        uint8_t *buf = malloc(len ? len : 1);

        ck_assert_int_lt(entries, N);
        ck_assert_ptr_nonnull(buf);
        while (at < len) {
            la_ssize_t g = archive_read_data(r, buf + at, len - at);

            ck_assert_int_gt(g, 0);
            at += (size_t)g;
        }
        if (len > 0)    /* the data after the 128-byte header is what was given */
            ck_assert_mem_eq(buf + 128, data, sizes[entries]);
        SHA256(buf, len, want);
        ck_assert_mem_eq(got[entries], want, 32);
        free(buf);
        entries++;
    }
    archive_read_free(r);
    ck_assert_int_eq(entries, N);
    free(data);
    free(m.p);
}
END_TEST

/* write_npz's archive read back by libarchive, and by numpy when $PYTHON
 * (default python3) has it: names, headers, values (numpy's zipfile also
 * checks every entry's CRC-32). */
static void read_npz_back(const struct membuf *a)
{
    struct archive *r;
    struct archive_entry *e;
    const char *want[4] = { "X.npy", "y.npy", "classes.npy", "manifest.json" };
    int k = 0;
    FILE *f;

    r = archive_read_new();
    archive_read_support_format_zip(r);
    ck_assert_int_eq(archive_read_open_memory(r, a->p, a->len), ARCHIVE_OK);
    while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
        uint8_t buf[512];
        la_ssize_t got;

        ck_assert_int_lt(k, 4);
        ck_assert_str_eq(archive_entry_pathname(e), want[k]);
        got = archive_read_data(r, buf, sizeof buf);
        if (k == 0) {
            float v;
            ck_assert_int_eq(got, 128 + 96);
            ck_assert_mem_eq(buf, "\x93NUMPY\x01\x00", 8);
            ck_assert_ptr_nonnull(strstr((char *)buf + 10, "'shape': (3, 2, 4)"));
            ck_assert_int_eq(buf[127], '\n');
            memcpy(&v, buf + 128 + 4 * 23, 4);
            ck_assert_float_eq(v, 11.5f);
        }
        if (k == 1)
            ck_assert_ptr_nonnull(strstr((char *)buf + 10, "'shape': (3,)"));
        k++;
    }
    ck_assert_int_eq(k, 4);
    archive_read_free(r);

    /* PYTHON picks the interpreter (default python3). */
    const char *py = getenv("PYTHON") ? getenv("PYTHON") : "python3";
    char probe[512];

    snprintf(probe, sizeof probe, "%s -c 'import numpy' >/dev/null 2>&1", py);
    if (system(probe) != 0) {
        fprintf(stderr, "check_datasets: SKIP numpy read-back: python3 numpy not installed\n");
    } else {
        char path[] = "/tmp/precursor-npz-XXXXXX", cmd[1024];
        int fd = mkstemp(path);

        ck_assert_int_ge(fd, 0);
        f = fdopen(fd, "wb");
        fwrite(a->p, 1, a->len, f);
        fclose(f);
        snprintf(cmd, sizeof cmd,
                 "%s -c \"import numpy as np; d=np.load('%s'); "
                 "assert d['X'].dtype==np.float32 and d['X'].shape==(3,2,4); "
                 "assert d['X'][2,1,3]==11.5; assert list(d['y'])==[0,1,1]; "
                 "assert d['classes'][1]==b'imbalance'\"", py, path);
        ck_assert_int_eq(system(cmd), 0);
        unlink(path);
    }
}

START_TEST(npz_identical_and_readable)
{
    struct membuf a, b;

    write_npz(&a);
    write_npz(&b);
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_mem_eq(a.p, b.p, a.len);           /* byte-identical re-export */
    read_npz_back(&a);
    free(a.p);
    free(b.p);
}
END_TEST

/* Hashed inline (no hashing thread), the writer makes the same bytes: the
 * same CRC-32 in every data descriptor, and the same SHA-256 of each entry. */
START_TEST(npz_inline_hash_same_bytes)
{
    struct membuf a, b;
    static const uint64_t shape[1] = { 3000001 };
    uint8_t *data = malloc(3000001), sha[2][32];

    ck_assert_ptr_nonnull(data);
    for (size_t k = 0; k < 3000001; k++)
        data[k] = (uint8_t)(k * 2654435761u >> 11);
    for (int mode = 0; mode < 2; mode++) {
        struct membuf *m = mode ? &b : &a;
        struct ds_npz *z;

        ds__npz_inline_hash = mode;
        memset(m, 0, sizeof *m);
        ck_assert_int_eq(ds_npz_open(mem_sink, m, &z), 0);
        ck_assert_int_eq(ds_npz_begin(z, "big", "|u1", 1, shape, 1), 0);
        ck_assert_int_eq(ds_npz_data(z, data, 1000000), 0);
        ck_assert_int_eq(ds_npz_data(z, data + 1000000, 2000001), 0);
        ck_assert_int_eq(ds_npz_last_sha256(z, sha[mode]), 0);
        ck_assert_int_eq(ds_npz_file(z, "manifest.json", "{}", 2), 0);
        ck_assert_int_eq(ds_npz_close(z), 0);
    }
    ds__npz_inline_hash = 0;
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_mem_eq(a.p, b.p, a.len);
    ck_assert_mem_eq(sha[0], sha[1], 32);
    free(a.p);
    free(b.p);
    write_npz(&a);
    ds__npz_inline_hash = 1;
    write_npz(&b);
    ds__npz_inline_hash = 0;
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_mem_eq(a.p, b.p, a.len);
    read_npz_back(&b);
    free(a.p);
    free(b.p);
    free(data);
}
END_TEST

/* The same npz with every zip64 record (the writer's limits shrunk to
 * nothing): numpy and libarchive read the same arrays. */
START_TEST(npz_zip64_readable)
{
    struct membuf a;

    ds__zip_limits = (struct ds_zip_limits){ 0, 0, 0 };
    write_npz(&a);
    ds__zip_limits = (struct ds_zip_limits)DS_ZIP_LIMITS_DEFAULT;
    ck_assert_uint_gt(a.len, 22 + 20 + 56);
    ck_assert_mem_eq(a.p + a.len - 22 - 20, "PK\6\7", 4);    /* the zip64 locator */
    read_npz_back(&a);
    free(a.p);
}
END_TEST

Suite *datasets_suite(void);

Suite *datasets_suite(void)
{
    Suite *s = suite_create("datasets");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, window_edges);
    tcase_add_test(tc, split_grouped_seeded);
    tcase_add_test(tc, split_by_time_and_too_few);
    tcase_add_test(tc, split_two_groups_nearest);
    tcase_add_test(tc, class_weights);
    tcase_add_test(tc, npz_identical_and_readable);
    tcase_add_test(tc, npz_entry_hashes);
    tcase_add_test(tc, npz_zip64_readable);
    tcase_add_test(tc, npz_inline_hash_same_bytes);
    suite_add_tcase(s, tc);
    return s;
}
