/* check_datasets_zip.c - the npz's zip writer (server/datasets/ds_zip.c):
 * archives read back through readers that are not ours (a small reader
 * below that checks every record APPNOTE lays out and every CRC with zlib's
 * crc32, libarchive's zip reader, and Python's zipfile when $PYTHON or
 * python3 runs), the zip64 records walked with the limits shrunk, CRC-32 held
 * to zlib's, and the bounds and the order of calls refused. */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "server/datasets/ds_int.h"
#include "testmembuf.h"

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rnd() >> 24);
}

/* ---- an independent reader ---------------------------------------------- */

static uint32_t rd16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t rd32(const uint8_t *p)
{
    return rd16(p) | rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

struct want_entry {
    const char *name;
    const uint8_t *data;
    size_t size;
};

/* What the reader saw, beyond the entries it checked. */
struct seen {
    int zip64_eocd;             /* the zip64 end record and its locator */
    int local_zip64;            /* entries with a zip64 local extra */
    int cd_zip64;               /* central headers with a zip64 extra */
};

/* Find extra field id in [x, x + xl); its data and length, or NULL. */
static const uint8_t *find_extra(const uint8_t *x, size_t xl, uint32_t id, size_t *len)
{
    size_t at = 0;

    while (at + 4 <= xl) {
        size_t l = rd16(x + at + 2);

        ck_assert_uint_le(at + 4 + l, xl);
        if (rd16(x + at) == id) {
            *len = l;
            return x + at + 4;
        }
        at += 4 + l;
    }
    return NULL;
}

/* The archive m holds exactly the entries want[0 .. n), in order, laid out
 * as ds_zip.c's table says: front to back with no gap, every size, offset
 * and CRC (zlib's) where APPNOTE puts it, zip64 fields exactly where a value
 * reaches lim. */
static void read_zip(const struct membuf *m, const struct want_entry *want, size_t n,
                     const struct ds_zip_limits *lim, struct seen *seen)
{
    const uint8_t *b = m->p, *e = m->p + m->len - 22, *cd;
    uint64_t entries, cd_size, cd_off, at = 0;

    memset(seen, 0, sizeof *seen);
    ck_assert_uint_ge(m->len, 22);
    ck_assert_mem_eq(e, "PK\5\6", 4);
    ck_assert_uint_eq(rd16(e + 4), 0);
    ck_assert_uint_eq(rd16(e + 6), 0);
    ck_assert_uint_eq(rd16(e + 20), 0);     /* no comment */
    entries = rd16(e + 10);
    ck_assert_uint_eq(rd16(e + 8), entries);
    cd_size = rd32(e + 12);
    cd_off = rd32(e + 16);
    if (m->len >= 22 + 20 + 56 && memcmp(e - 20, "PK\6\7", 4) == 0) {
        const uint8_t *loc = e - 20, *z;

        seen->zip64_eocd = 1;
        ck_assert_uint_eq(rd32(loc + 4), 0);
        ck_assert_uint_eq(rd32(loc + 16), 1);
        ck_assert_uint_eq(rd64(loc + 8), m->len - 22 - 20 - 56);
        z = b + rd64(loc + 8);
        ck_assert_mem_eq(z, "PK\6\6", 4);
        ck_assert_uint_eq(rd64(z + 4), 44);
        ck_assert_uint_eq(rd16(z + 12), 45);
        ck_assert_uint_eq(rd16(z + 14), 45);
        ck_assert_uint_eq(rd32(z + 16), 0);
        ck_assert_uint_eq(rd32(z + 20), 0);
        ck_assert_uint_eq(rd64(z + 24), rd64(z + 32));
        /* the classic fields are the values, capped where they reach the limit */
        ck_assert_uint_eq(entries, rd64(z + 24) >= lim->entries ? 0xffff : rd64(z + 24));
        ck_assert_uint_eq(cd_size, rd64(z + 40) >= lim->offset ? 0xffffffffu : rd64(z + 40));
        ck_assert_uint_eq(cd_off, rd64(z + 48) >= lim->offset ? 0xffffffffu : rd64(z + 48));
        entries = rd64(z + 24);
        cd_size = rd64(z + 40);
        cd_off = rd64(z + 48);
        ck_assert_uint_eq(cd_off + cd_size, (uint64_t)(z - b));
        /* the zip64 record exactly when a value reaches a limit */
        ck_assert(entries >= lim->entries || cd_size >= lim->offset || cd_off >= lim->offset);
    } else {
        ck_assert(entries < lim->entries && cd_size < lim->offset && cd_off < lim->offset);
        ck_assert_uint_eq(cd_off + cd_size, m->len - 22);
    }
    ck_assert_uint_eq(entries, n);
    cd = b + cd_off;
    for (size_t i = 0; i < n; i++) {
        uint32_t nl = rd16(cd + 28), xl = rd16(cd + 30), crc = rd32(cd + 16), want_crc;
        uint64_t csize = rd32(cd + 20), usize = rd32(cd + 24), off = rd32(cd + 42);
        const uint8_t *x = cd + 46 + nl, *f, *lh, *data, *dd;
        size_t fl = 0, lxl;
        int big_size = want[i].size >= lim->size, big_off, local64;

        ck_assert_mem_eq(cd, "PK\1\2", 4);
        ck_assert_uint_eq(rd16(cd + 8), 0x0008);
        ck_assert_uint_eq(rd16(cd + 10), 0);    /* stored */
        ck_assert_uint_eq(rd16(cd + 32), 0);    /* comment */
        ck_assert_uint_eq(rd32(cd + 38), 0100644u << 16);
        ck_assert_uint_eq(nl, strlen(want[i].name));
        ck_assert_mem_eq(cd + 46, want[i].name, nl);
        ck_assert_ptr_nonnull(find_extra(x, xl, 0x5455, &fl));     /* "UT" */
        ck_assert_uint_eq(fl, 5);
        ck_assert_ptr_nonnull(find_extra(x, xl, 0x7875, &fl));     /* "ux" */
        ck_assert_uint_eq(fl, 11);
        big_off = at >= lim->offset;
        if ((f = find_extra(x, xl, 1, &fl)) != NULL) {
            size_t k = 0;

            seen->cd_zip64++;
            ck_assert_uint_eq(rd16(cd + 6), 45);
            if (usize == 0xffffffffu) {
                usize = rd64(f + k);
                k += 8;
            }
            if (csize == 0xffffffffu) {
                csize = rd64(f + k);
                k += 8;
            }
            if (off == 0xffffffffu) {
                off = rd64(f + k);
                k += 8;
            }
            ck_assert_uint_eq(k, fl);
            ck_assert(k > 0);
        }
        /* capped (and in the zip64 extra) exactly when the value reaches the limit */
        ck_assert_int_eq(rd32(cd + 24) == 0xffffffffu, big_size);
        ck_assert_int_eq(rd32(cd + 42) == 0xffffffffu, big_off);
        ck_assert_uint_eq(usize, want[i].size);
        ck_assert_uint_eq(csize, want[i].size);
        ck_assert_uint_eq(off, at);

        lh = b + off;
        ck_assert_mem_eq(lh, "PK\3\4", 4);
        ck_assert_uint_eq(rd16(lh + 6), 0x0008);
        ck_assert_uint_eq(rd16(lh + 8), 0);
        ck_assert_uint_eq(rd32(lh + 10), rd32(cd + 12));    /* the same DOS time */
        ck_assert_uint_eq(rd16(lh + 26), nl);
        ck_assert_mem_eq(lh + 30, want[i].name, nl);
        lxl = rd16(lh + 28);
        local64 = find_extra(lh + 30 + nl, lxl, 1, &fl) != NULL;
        ck_assert_int_eq(local64, big_size);
        ck_assert_uint_eq(rd16(lh + 4), local64 ? 45 : 10);
        ck_assert_uint_eq(rd16(cd + 4), 3u << 8 | (local64 ? 45u : 10u));
        if (local64) {
            const uint8_t *z = find_extra(lh + 30 + nl, lxl, 1, &fl);

            seen->local_zip64++;
            ck_assert_uint_eq(fl, 16);
            ck_assert_uint_eq(rd32(lh + 18), 0xffffffffu);
            ck_assert_uint_eq(rd32(lh + 22), 0xffffffffu);
            ck_assert_uint_eq(rd64(z), want[i].size);
            ck_assert_uint_eq(rd64(z + 8), want[i].size);
        } else {
            ck_assert_uint_eq(rd32(lh + 18), want[i].size);
            ck_assert_uint_eq(rd32(lh + 22), want[i].size);
        }
        data = lh + 30 + nl + lxl;
        if (want[i].size)
            ck_assert_mem_eq(data, want[i].data, want[i].size);
        want_crc = (uint32_t)crc32(0, want[i].data, (uInt)want[i].size);
        ck_assert_uint_eq(crc, want_crc);
        dd = data + want[i].size;
        ck_assert_mem_eq(dd, "PK\7\10", 4);
        ck_assert_uint_eq(rd32(dd + 4), want_crc);
        if (local64) {
            ck_assert_uint_eq(rd64(dd + 8), want[i].size);
            ck_assert_uint_eq(rd64(dd + 16), want[i].size);
            at = (uint64_t)(dd + 24 - b);
        } else {
            ck_assert_uint_eq(rd32(dd + 8), want[i].size);
            ck_assert_uint_eq(rd32(dd + 12), want[i].size);
            at = (uint64_t)(dd + 16 - b);
        }
        cd += 46 + nl + xl;
    }
    ck_assert_uint_eq(at, cd_off);                  /* no gap before the directory */
    ck_assert_uint_eq((uint64_t)(cd - b), cd_off + cd_size);
}

/* libarchive's reader gives the same names and bytes. */
static void read_libarchive(const struct membuf *m, const struct want_entry *want, size_t n)
{
    struct archive *r = archive_read_new();
    struct archive_entry *e;
    size_t k = 0;

    archive_read_support_format_zip(r);
    ck_assert_int_eq(archive_read_open_memory(r, m->p, m->len), ARCHIVE_OK);
    while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
        size_t at = 0;
        uint8_t *buf = malloc(want[k].size + 1);

        ck_assert_uint_lt(k, n);
        ck_assert_ptr_nonnull(buf);
        ck_assert_str_eq(archive_entry_pathname(e), want[k].name);
        ck_assert_int_eq((long)archive_entry_size(e), (long)want[k].size);
        for (;;) {
            la_ssize_t g = archive_read_data(r, buf + at, want[k].size + 1 - at);

            ck_assert_int_ge(g, 0);
            if (g == 0)
                break;
            at += (size_t)g;
        }
        ck_assert_uint_eq(at, want[k].size);
        if (at)
            ck_assert_mem_eq(buf, want[k].data, at);
        free(buf);
        k++;
    }
    ck_assert_uint_eq(k, n);
    archive_read_free(r);
}

/* Python's zipfile: testzip (every CRC) passes, and the names, sizes and
 * bytes are the ones written (the bytes by their CRC-32, zlib's). */
static void read_python(const struct membuf *m, const struct want_entry *want, size_t n)
{
    const char *py = getenv("PYTHON") ? getenv("PYTHON") : "python3";
    char path[] = "/tmp/precursor-zip-XXXXXX", probe[512], *cmd;
    size_t cap = 1024 + n * 300, used;
    int fd;
    FILE *f;

    snprintf(probe, sizeof probe, "%s -c 'import zipfile' >/dev/null 2>&1", py);
    if (system(probe) != 0) {
        fprintf(stderr, "check_datasets_zip: SKIP Python zipfile read-back: no %s\n", py);
        return;
    }
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "wb");
    ck_assert_uint_eq(fwrite(m->p, 1, m->len, f), m->len);
    fclose(f);
    cmd = malloc(cap);
    ck_assert_ptr_nonnull(cmd);
    used = (size_t)snprintf(cmd, cap,
                            "%s -c 'import sys, zipfile, zlib\n"
                            "z = zipfile.ZipFile(sys.argv[1])\n"
                            "assert z.testzip() is None\n"
                            "got = [\"%%s:%%d:%%d\" %% (i.filename, i.file_size,"
                            " zlib.crc32(z.read(i))) for i in z.infolist()]\n"
                            "assert got == sys.argv[2:], (got, sys.argv[2:])' %s",
                            py, path);
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(cmd + used, cap - used, " '%s:%zu:%lu'", want[i].name, want[i].size,
                                 crc32(0, want[i].data, (uInt)want[i].size));
    ck_assert_uint_lt(used, cap);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    unlink(path);
}

/* Write want[0 .. n) in pieces of growing, odd sizes. */
static void write_zip(struct membuf *m, const struct want_entry *want, size_t n)
{
    struct ds_zip *z;

    memset(m, 0, sizeof *m);
    ck_assert_int_eq(ds__zip_open(mem_sink, m, DS_NPZ_MTIME, &z), 0);
    for (size_t i = 0; i < n; i++) {
        size_t at = 0, piece = 1;
        uint32_t crc = 0;

        ck_assert_int_eq(ds__zip_begin(z, want[i].name, want[i].size), 0);
        while (at < want[i].size) {
            size_t k = piece < want[i].size - at ? piece : want[i].size - at;

            ck_assert_int_eq(ds__zip_data(z, want[i].data + at, k), 0);
            crc = ds__zip_crc32(crc, want[i].data + at, k);
            at += k;
            piece = piece * 5 + 3;
        }
        ck_assert_int_eq(ds__zip_end(z, crc), 0);
    }
    ck_assert_int_eq(ds__zip_close(z), 0);
}

#define N_ENTRIES 7
static char long_name[DS_ZIP_MAX_NAME + 1];

/* Entries of 0, 1, 15, 17 (not multiples of 16), 4096 and 1,000,003
 * bytes, one with the longest name allowed. */
static void entries(struct want_entry *w, uint8_t **data)
{
    static const size_t sizes[N_ENTRIES] = { 0, 1, 15, 17, 4096, 1000003, 40 };
    static const char *const names[N_ENTRIES] = { "empty", "one", "X.npy", "y.npy", "page", "big.npy",
                                                 NULL };

    *data = malloc(1000003 + 7 * N_ENTRIES);
    ck_assert_ptr_nonnull(*data);
    fill_random(*data, 1000003 + 7 * N_ENTRIES);
    memset(long_name, 'n', DS_ZIP_MAX_NAME);
    long_name[DS_ZIP_MAX_NAME] = '\0';
    for (int i = 0; i < N_ENTRIES; i++) {
        w[i].name = names[i] ? names[i] : long_name;
        w[i].size = sizes[i];
        w[i].data = *data + i * 7;  /* odd starting addresses too */
    }
}

START_TEST(zip_crc32_matches_zlib)
{
    static const size_t lens[] = { 0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128,
                                   129, 255, 256, 257, 1000, 4095, 4096, 4097, 65535, 65536, 65537,
                                   (1u << 20) - 3 };
    size_t cap = (1u << 20) + 16;
    uint8_t *buf = malloc(cap);

    ck_assert_ptr_nonnull(buf);
    fill_random(buf, cap);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (size_t off = 0; off < 8; off++) {
            uint32_t want = (uint32_t)crc32(0, buf + off, (uInt)lens[i]), got = 0;
            size_t at = 0;

            ck_assert_uint_eq(ds__zip_crc32(0, buf + off, lens[i]), want);
            /* chained over random pieces, as the hashing thread's blocks */
            while (at < lens[i]) {
                size_t k = (size_t)(rnd() % 300) + 1;

                if (k > lens[i] - at)
                    k = lens[i] - at;
                got = ds__zip_crc32(got, buf + off + at, k);
                at += k;
            }
            ck_assert_uint_eq(got, want);
        }
    /* and zlib's chained value carries on in ours */
    ck_assert_uint_eq(ds__zip_crc32((uint32_t)crc32(0, buf, 1000), buf + 1000, 3333),
                      (uint32_t)crc32(0, buf, 4333));
    free(buf);
}
END_TEST

START_TEST(zip_round_trip)
{
    struct want_entry w[N_ENTRIES];
    struct ds_zip_limits lim = DS_ZIP_LIMITS_DEFAULT;
    struct membuf a, b;
    struct seen seen;
    uint8_t *data;

    entries(w, &data);
    write_zip(&a, w, N_ENTRIES);
    read_zip(&a, w, N_ENTRIES, &lim, &seen);
    ck_assert_int_eq(seen.zip64_eocd + seen.local_zip64 + seen.cd_zip64, 0);
    read_libarchive(&a, w, N_ENTRIES);
    read_python(&a, w, N_ENTRIES);
    write_zip(&b, w, N_ENTRIES);
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_mem_eq(a.p, b.p, a.len);      /* the same entries, the same bytes */
    /* an archive of no entries is the end record alone */
    free(b.p);
    write_zip(&b, w, 0);
    ck_assert_uint_eq(b.len, 22);
    read_zip(&b, w, 0, &lim, &seen);
    read_python(&b, w, 0);
    free(a.p);
    free(b.p);
    free(data);
}
END_TEST

/* The zip64 records, with each limit shrunk alone and all at once so that
 * small archives need them: each reader still gets every entry back. */
START_TEST(zip_zip64_forced)
{
    static const struct ds_zip_limits cases[] = {
        { 17, 0xffffffffu, 0xffff },    /* sizes of 17 and more: 17 is exactly at it */
        { 0xffffffffu, 5000, 0xffff },  /* offsets past 5000, the directory's too */
        { 0xffffffffu, 0xffffffffu, 7 },/* 7 entries: exactly at it */
        { 0xffffffffu, 0xffffffffu, 8 },/* one entry short of it: no zip64 record */
        { 1, 1, 1 },                    /* everything */
        { 0, 0, 0 },                    /* everything, the empty entry too */
    };
    struct want_entry w[N_ENTRIES];
    uint8_t *data;

    entries(w, &data);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct membuf m;
        struct seen seen;
        int want_local = 0;

        ds__zip_limits = cases[c];
        write_zip(&m, w, N_ENTRIES);
        ds__zip_limits = (struct ds_zip_limits)DS_ZIP_LIMITS_DEFAULT;
        read_zip(&m, w, N_ENTRIES, &cases[c], &seen);
        for (int i = 0; i < N_ENTRIES; i++)
            want_local += w[i].size >= cases[c].size;
        ck_assert_int_eq(seen.local_zip64, want_local);
        ck_assert_int_eq(seen.zip64_eocd, c != 0 && c != 3);
        read_libarchive(&m, w, N_ENTRIES);
        read_python(&m, w, N_ENTRIES);
        free(m.p);
    }
    free(data);
}
END_TEST

START_TEST(zip_bounds_and_order)
{
    struct membuf m;
    struct ds_zip *z;
    char name[DS_ZIP_MAX_NAME + 2];
    uint8_t byte = 7;

    memset(&m, 0, sizeof m);
    ck_assert_int_eq(ds__zip_open(NULL, &m, 0, &z), DS_EINVAL);
    ck_assert_int_eq(ds__zip_open(mem_sink, &m, -1, &z), DS_EINVAL);
    ck_assert_int_eq(ds__zip_open(mem_sink, &m, (int64_t)1 << 32, &z), DS_EINVAL);
    ck_assert_int_eq(ds__zip_open(mem_sink, &m, DS_NPZ_MTIME, &z), 0);
    ck_assert_int_eq(ds__zip_data(z, &byte, 1), DS_ESTATE);        /* no entry open */
    ck_assert_int_eq(ds__zip_end(z, 0), DS_ESTATE);
    ck_assert_int_eq(ds__zip_begin(z, "", 1), DS_EINVAL);
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';                                   /* 256 bytes */
    ck_assert_int_eq(ds__zip_begin(z, name, 1), DS_EINVAL);
    ck_assert_int_eq(ds__zip_begin(z, "huge", UINT64_C(1) << 62), DS_EINVAL);
    ck_assert_uint_eq(m.len, 0);                                    /* nothing written */
    ck_assert_int_eq(ds__zip_begin(z, "a", 2), 0);
    ck_assert_int_eq(ds__zip_begin(z, "b", 2), DS_ESTATE);         /* one at a time */
    ck_assert_int_eq(ds__zip_data(z, &byte, 1), 0);
    ck_assert_int_eq(ds__zip_end(z, 0), DS_ESTATE);                /* a byte short */
    ck_assert_int_eq(ds__zip_data(z, NULL, 1), DS_EINVAL);
    ck_assert_int_eq(ds__zip_data(z, &byte, 1), 0);
    ck_assert_int_eq(ds__zip_data(z, &byte, 1), DS_ESTATE);        /* past the size */
    ck_assert_int_eq(ds__zip_end(z, (uint32_t)crc32(crc32(0, &byte, 1), &byte, 1)), 0);
    ck_assert_int_eq(ds__zip_begin(z, "c", 5), 0);
    ck_assert_int_eq(ds__zip_close(z), DS_ESTATE);                 /* mid-entry: freed */
    free(m.p);

    /* at most DS_ZIP_MAX_ENTRIES entries */
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(ds__zip_open(mem_sink, &m, DS_NPZ_MTIME, &z), 0);
    for (int i = 0; i < DS_ZIP_MAX_ENTRIES; i++) {
        snprintf(name, sizeof name, "e%d", i);
        ck_assert_int_eq(ds__zip_begin(z, name, 0), 0);
        ck_assert_int_eq(ds__zip_end(z, 0), 0);
    }
    ck_assert_int_eq(ds__zip_begin(z, "one-more", 0), DS_EINVAL);
    ck_assert_int_eq(ds__zip_close(z), 0);
    ck_assert_mem_eq(m.p + m.len - 22, "PK\5\6", 4);
    ck_assert_uint_eq(rd16(m.p + m.len - 12), DS_ZIP_MAX_ENTRIES);
    free(m.p);
}
END_TEST

/* A sink that refuses fails the archive: every later call but the free. */
START_TEST(zip_sink_refuses)
{
    /* in the local header, the data, the descriptor, the directory */
    static const size_t fail_at[] = { 1, 40, 60, 75, 160, 200 };
    uint8_t data[100];

    fill_random(data, sizeof data);
    for (size_t c = 0; c < sizeof fail_at / sizeof fail_at[0]; c++) {
        struct membuf m;
        struct ds_zip *z;
        int rc = 0, step = 0;

        memset(&m, 0, sizeof m);
        m.fail_at = fail_at[c];
        ck_assert_int_eq(ds__zip_open(mem_sink, &m, DS_NPZ_MTIME, &z), 0);
        /* header (30 + 1 + 24 bytes), data, descriptor (16), directory */
        if ((rc = ds__zip_begin(z, "a", sizeof data)) == 0 && ++step &&
            (rc = ds__zip_data(z, data, sizeof data)) == 0 && ++step &&
            (rc = ds__zip_end(z, ds__zip_crc32(0, data, sizeof data))) == 0 && ++step)
            rc = ds__zip_close(z);
        else
            ck_assert_int_eq(ds__zip_data(z, data, 1), DS_ESTATE);
        ck_assert_int_eq(rc, DS_EARCHIVE);
        if (step < 3)
            ck_assert_int_eq(ds__zip_close(z), DS_EARCHIVE);
        ck_assert_uint_le(m.len, fail_at[c]);
        free(m.p);
    }
}
END_TEST

/* The DOS date and time are the mtime in UTC, whatever the time zone. */
START_TEST(zip_dos_time_utc)
{
    static const struct { int64_t t; uint32_t date, time; } cases[] = {
        { 1577836800, 0x5021, 0x0000 },                 /* 2020-01-01 00:00:00 */
        { 1577836800 + 13 * 3600 + 37 * 60 + 59, 0x5021, 13u << 11 | 37u << 5 | 29u },
        { 0, 0x0021, 0 },                               /* before 1980: 1980-01-01 */
    };
    const char *tz = getenv("TZ");
    char *saved = tz ? strdup(tz) : NULL;

    setenv("TZ", "America/New_York", 1);
    tzset();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct membuf m;
        struct ds_zip *z;

        memset(&m, 0, sizeof m);
        ck_assert_int_eq(ds__zip_open(mem_sink, &m, cases[c].t, &z), 0);
        ck_assert_int_eq(ds__zip_begin(z, "a", 0), 0);
        ck_assert_int_eq(ds__zip_end(z, 0), 0);
        ck_assert_int_eq(ds__zip_close(z), 0);
        ck_assert_uint_eq(rd16(m.p + 10), cases[c].time);
        ck_assert_uint_eq(rd16(m.p + 12), cases[c].date);
        ck_assert_uint_eq(rd32(m.p + 30 + 1 + 5), (uint32_t)cases[c].t);  /* "UT" */
        free(m.p);
    }
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}
END_TEST

Suite *datasets_zip_suite(void);

Suite *datasets_zip_suite(void)
{
    Suite *s = suite_create("datasets_zip");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, zip_crc32_matches_zlib);
    tcase_add_test(tc, zip_round_trip);
    tcase_add_test(tc, zip_zip64_forced);
    tcase_add_test(tc, zip_bounds_and_order);
    tcase_add_test(tc, zip_sink_refuses);
    tcase_add_test(tc, zip_dos_time_utc);
    suite_add_tcase(s, tc);
    return s;
}
