/* ds_zip.c - a zip of stored (uncompressed) entries written front to back
 * into a sink: the container of the .npz export (ds_npz.c).
 *
 * Why our own: the export only ever stores entries whose sizes it knows up
 * front, so the format is a few fixed records (PKWARE's APPNOTE 6.3.x,
 * below); the library that wrote them before (libarchive) computed every
 * entry's CRC-32 itself, inside its data call, with zlib's table loop, and
 * nothing let the caller hand in a faster one or compute it elsewhere.  Here
 * the caller gives the CRC at the end of the entry (ds_npz.c computes it on
 * its hashing thread, beside the SHA-256), and ds__zip_crc32 is libdeflate's
 * (carry-less multiply where the CPU has it).
 *
 * The bytes are the ones libarchive 3.6 wrote for the same entries (store,
 * sizes set, unblocked), so an export made before and after the change is
 * the same file: the same records, extra fields and flags, and the same
 * zip64 choices, except that a value of exactly 0xffffffff (or 0xffff
 * entries) goes to the zip64 fields, as APPNOTE 4.4.8 asks, where
 * libarchive wrote it in the 32-bit field.
 *
 * Per entry (all integers little-endian):
 *
 *   local header          offset size
 *     signature 50 4b 03 04   0   4
 *     version needed          4   2   10, 45 with a zip64 local extra
 *     flags                   6   2   0x0008: CRC in the data descriptor
 *     method                  8   2   0 (stored)
 *     DOS time, date         10   4   the archive's mtime, UTC
 *     CRC-32                 14   4   0 (it follows the data)
 *     compressed size        18   4   size, or 0xffffffff (zip64)
 *     uncompressed size      22   4   size, or 0xffffffff (zip64)
 *     name length            26   2
 *     extra length           28   2
 *   name, then extra fields:
 *     "UT" len 5: flags 1, mtime (u32, Unix time)
 *     "ux" len 11: version 1, 4, uid 0 (u32), 4, gid 0 (u32)
 *     zip64 (id 1) len 16: uncompressed, compressed size (u64), if zip64
 *   the entry's bytes
 *   data descriptor: 50 4b 07 08, CRC-32, compressed and uncompressed size
 *     (u32 each; u64 each when the local header has the zip64 extra)
 *
 * The sizes are in the local header although flag 3 is set (APPNOTE says
 * zero there): a stored entry has no end marker, so a reader that streams
 * the archive from its front (bsdtar from a pipe) needs them.
 *
 *   central directory header  offset size
 *     signature 50 4b 01 02   0   4
 *     version made by         4   2   0x03 (Unix) << 8 | the local version
 *     version needed          6   2   the local one, 45 with a zip64 extra
 *     flags, method, time, date   8   8   as in the local header
 *     CRC-32                 16   4
 *     compressed size        20   4   } the value, or 0xffffffff when it is
 *     uncompressed size      24   4   } at least that: then in the zip64
 *     name, extra, comment length 28  6     extra, in the order uncompressed,
 *     disk 0, internal attr 0 34   4     compressed, offset, each present
 *     external attributes    38   4   mode 0100644 << 16    only if capped
 *     local header offset    42   4   }
 *   name, "UT", "ux" as in the local header, then the zip64 extra if any
 *
 * Then, when the central directory's size or offset is at least 0xffffffff
 * or there are at least 0xffff entries, the zip64 end of central directory
 * record (50 4b 06 06, its size 44 as u64, versions 45 and 45, disks 0 and
 * 0, entries on this disk and in all (u64), the directory's size and offset
 * (u64)) and its locator (50 4b 06 07, disk 0, the record's offset (u64),
 * 1 disk); and always the end of central directory record (50 4b 05 06,
 * disks 0 and 0, entries here and in all (u16), the directory's size and
 * offset (u32), comment length 0), its fields capped at 0xffff/0xffffffff.
 *
 * Bounds: names of 1 .. DS_ZIP_MAX_NAME bytes, at most DS_ZIP_MAX_ENTRIES
 * entries, sizes below 2^62 (no offset can wrap). */
#include "server/datasets/ds_int.h"

#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ZIP_MADE_BY_UNIX 3
#define ZIP_V_STORED 10
#define ZIP_V_ZIP64 45
#define ZIP_FLAG_DESCRIPTOR 0x0008
#define ZIP_MODE 0100644u
#define ZIP_SIZE_MAX (UINT64_C(1) << 62)

/* Record and extra field sizes, their headers included. */
#define LOCAL_FIXED 30
#define EXTRA_UT 9
#define EXTRA_UX 15
#define EXTRA_Z64_LOCAL 20
#define CD_FIXED 46

struct ds_zip_limits ds__zip_limits = DS_ZIP_LIMITS_DEFAULT;

struct zip_entry {
    char *name;
    size_t name_len;
    uint64_t offset, size;
    uint32_t crc;
    int local_zip64;
};

struct ds_zip {
    ds_sink_fn sink;
    void *ctx;
    uint32_t dos;               /* DOS date << 16 | DOS time */
    uint32_t mtime;
    struct ds_zip_limits lim;   /* the limits as they were at open */
    uint64_t written;           /* archive bytes so far */
    struct zip_entry *e;
    size_t n, cap;
    int in_entry, failed;
    uint64_t left;              /* bytes the open entry still takes */
};

static uint8_t *le16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *le32(uint8_t *p, uint32_t v)
{
    p = le16(p, v & 0xffff);
    return le16(p, v >> 16);
}

static uint8_t *le64(uint8_t *p, uint64_t v)
{
    p = le32(p, (uint32_t)v);
    return le32(p, (uint32_t)(v >> 32));
}

static uint8_t *bytes(uint8_t *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

uint32_t ds__zip_crc32(uint32_t crc, const void *buf, size_t len)
{
    return libdeflate_crc32(crc, buf, len);
}

/* DOS date and time of a Unix time, in UTC (the same archive whatever the
 * server's time zone), clamped to DOS's 1980 .. 2107. */
static uint32_t dos_time(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (!gmtime_r(&tt, &tm) || tm.tm_year < 80)
        return (uint32_t)((0u << 9 | 1u << 5 | 1u) << 16);
    if (tm.tm_year > 207)
        return (uint32_t)((127u << 9 | 12u << 5 | 31u) << 16 | 23u << 11 | 59u << 5 | 29u);
    return (uint32_t)(((unsigned)(tm.tm_year - 80) << 9 | (unsigned)(tm.tm_mon + 1) << 5 |
                       (unsigned)tm.tm_mday) << 16 |
                      (unsigned)tm.tm_hour << 11 | (unsigned)tm.tm_min << 5 |
                      (unsigned)tm.tm_sec >> 1);
}

static int emit(struct ds_zip *z, const void *buf, size_t len)
{
    if (len == 0)
        return DS_OK;
    if (z->sink(z->ctx, buf, len) != 0) {
        z->failed = 1;
        return DS_EARCHIVE;
    }
    z->written += len;
    return DS_OK;
}

/* "UT" and "ux", the same in the local and the central header. */
static uint8_t *common_extra(const struct ds_zip *z, uint8_t *p)
{
    p = bytes(p, "UT", 2);
    p = le16(p, 5);
    *p++ = 1;                   /* the mtime only */
    p = le32(p, z->mtime);
    p = bytes(p, "ux", 2);
    p = le16(p, 11);
    *p++ = 1;                   /* version */
    *p++ = 4;
    p = le32(p, 0);             /* uid */
    *p++ = 4;
    return le32(p, 0);          /* gid */
}

int ds__zip_open(ds_sink_fn sink, void *ctx, int64_t mtime, struct ds_zip **out)
{
    struct ds_zip *z;

    if (!sink || !out || mtime < 0 || mtime > UINT32_MAX)
        return DS_EINVAL;
    z = calloc(1, sizeof *z);
    if (!z)
        return DS_ENOMEM;
    z->sink = sink;
    z->ctx = ctx;
    z->mtime = (uint32_t)mtime;
    z->dos = dos_time(mtime);
    z->lim = ds__zip_limits;
    *out = z;
    return DS_OK;
}

int ds__zip_begin(struct ds_zip *z, const char *name, uint64_t size)
{
    uint8_t h[LOCAL_FIXED + DS_ZIP_MAX_NAME + EXTRA_UT + EXTRA_UX + EXTRA_Z64_LOCAL], *p = h;
    struct zip_entry *e;
    size_t nl;
    int z64, rc;

    if (!z || z->failed || z->in_entry || !name)
        return DS_ESTATE;
    nl = strnlen(name, DS_ZIP_MAX_NAME + 1);
    if (nl == 0 || nl > DS_ZIP_MAX_NAME || size >= ZIP_SIZE_MAX)
        return DS_EINVAL;
    if (z->n == z->cap) {
        size_t cap = z->cap ? 2 * z->cap : 8;
        struct zip_entry *ne;

        if (z->n >= DS_ZIP_MAX_ENTRIES)
            return DS_EINVAL;
        if (cap > DS_ZIP_MAX_ENTRIES)
            cap = DS_ZIP_MAX_ENTRIES;
        if (!(ne = realloc(z->e, cap * sizeof *ne)))
            return DS_ENOMEM;
        z->e = ne;
        z->cap = cap;
    }
    e = &z->e[z->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = malloc(nl)))
        return DS_ENOMEM;
    memcpy(e->name, name, nl);
    e->name_len = nl;
    e->offset = z->written;
    e->size = size;
    e->local_zip64 = z64 = size >= z->lim.size;

    p = bytes(p, "PK\3\4", 4);
    p = le16(p, z64 ? ZIP_V_ZIP64 : ZIP_V_STORED);
    p = le16(p, ZIP_FLAG_DESCRIPTOR);
    p = le16(p, 0);
    p = le32(p, z->dos);
    p = le32(p, 0);
    p = le32(p, z64 ? 0xffffffffu : (uint32_t)size);
    p = le32(p, z64 ? 0xffffffffu : (uint32_t)size);
    p = le16(p, (uint32_t)nl);
    p = le16(p, EXTRA_UT + EXTRA_UX + (z64 ? EXTRA_Z64_LOCAL : 0));
    p = bytes(p, name, nl);
    p = common_extra(z, p);
    if (z64) {
        p = le16(p, 1);
        p = le16(p, 16);
        p = le64(p, size);
        p = le64(p, size);
    }
    /* the entry is the directory's once its header is out (a failed sink
     * fails the archive anyway) */
    if ((rc = emit(z, h, (size_t)(p - h))) != DS_OK) {
        free(e->name);
        return rc;
    }
    z->n++;
    z->in_entry = 1;
    z->left = size;
    return DS_OK;
}

int ds__zip_data(struct ds_zip *z, const void *buf, size_t len)
{
    if (!z || z->failed || !z->in_entry || len > z->left)
        return DS_ESTATE;
    if (!buf && len)
        return DS_EINVAL;
    z->left -= len;
    return emit(z, buf, len);
}

int ds__zip_end(struct ds_zip *z, uint32_t crc)
{
    uint8_t d[24], *p = d;
    struct zip_entry *e;

    if (!z || z->failed || !z->in_entry || z->left != 0)
        return DS_ESTATE;
    e = &z->e[z->n - 1];
    e->crc = crc;
    p = bytes(p, "PK\7\10", 4);
    p = le32(p, crc);
    if (e->local_zip64) {
        p = le64(p, e->size);
        p = le64(p, e->size);
    } else {
        p = le32(p, (uint32_t)e->size);
        p = le32(p, (uint32_t)e->size);
    }
    z->in_entry = 0;
    return emit(z, d, (size_t)(p - d));
}

/* One entry's central directory header into h (room for the largest). */
static size_t cd_header(const struct ds_zip *z, const struct zip_entry *e, uint8_t *h)
{
    uint8_t *p = h;
    int big_size = e->size >= z->lim.size, big_off = e->offset >= z->lim.offset;
    unsigned v_local = e->local_zip64 ? ZIP_V_ZIP64 : ZIP_V_STORED;
    unsigned z64_len = (big_size ? 16u : 0u) + (big_off ? 8u : 0u);

    p = bytes(p, "PK\1\2", 4);
    p = le16(p, ZIP_MADE_BY_UNIX << 8 | v_local);
    p = le16(p, z64_len ? ZIP_V_ZIP64 : v_local);
    p = le16(p, ZIP_FLAG_DESCRIPTOR);
    p = le16(p, 0);
    p = le32(p, z->dos);
    p = le32(p, e->crc);
    p = le32(p, big_size ? 0xffffffffu : (uint32_t)e->size);
    p = le32(p, big_size ? 0xffffffffu : (uint32_t)e->size);
    p = le16(p, (uint32_t)e->name_len);
    p = le16(p, EXTRA_UT + EXTRA_UX + (z64_len ? 4 + z64_len : 0));
    p = le16(p, 0);             /* comment */
    p = le16(p, 0);             /* disk */
    p = le16(p, 0);             /* internal attributes */
    p = le32(p, ZIP_MODE << 16);
    p = le32(p, big_off ? 0xffffffffu : (uint32_t)e->offset);
    p = bytes(p, e->name, e->name_len);
    p = common_extra(z, p);
    if (z64_len) {
        p = le16(p, 1);
        p = le16(p, z64_len);
        if (big_size) {
            p = le64(p, e->size);
            p = le64(p, e->size);
        }
        if (big_off)
            p = le64(p, e->offset);
    }
    return (size_t)(p - h);
}

int ds__zip_close(struct ds_zip *z)
{
    uint8_t h[CD_FIXED + DS_ZIP_MAX_NAME + EXTRA_UT + EXTRA_UX + 4 + 24], *p;
    uint64_t cd_start, cd_size, entries;
    int rc = DS_OK;

    if (!z)
        return DS_EINVAL;
    if (z->failed || z->in_entry) {
        rc = z->failed ? DS_EARCHIVE : DS_ESTATE;
        goto out;
    }
    cd_start = z->written;
    for (size_t i = 0; i < z->n && rc == DS_OK; i++)
        rc = emit(z, h, cd_header(z, &z->e[i], h));
    if (rc != DS_OK)
        goto out;
    cd_size = z->written - cd_start;
    entries = z->n;
    if (cd_size >= z->lim.offset || cd_start >= z->lim.offset || entries >= z->lim.entries) {
        uint64_t rec = z->written;

        p = h;
        p = bytes(p, "PK\6\6", 4);
        p = le64(p, 44);
        p = le16(p, ZIP_V_ZIP64);
        p = le16(p, ZIP_V_ZIP64);
        p = le32(p, 0);
        p = le32(p, 0);
        p = le64(p, entries);
        p = le64(p, entries);
        p = le64(p, cd_size);
        p = le64(p, cd_start);
        p = bytes(p, "PK\6\7", 4);
        p = le32(p, 0);
        p = le64(p, rec);
        p = le32(p, 1);
        if ((rc = emit(z, h, (size_t)(p - h))) != DS_OK)
            goto out;
    }
    p = h;
    p = bytes(p, "PK\5\6", 4);
    p = le16(p, 0);
    p = le16(p, 0);
    p = le16(p, entries >= z->lim.entries ? 0xffffu : (uint32_t)entries);
    p = le16(p, entries >= z->lim.entries ? 0xffffu : (uint32_t)entries);
    p = le32(p, cd_size >= z->lim.offset ? 0xffffffffu : (uint32_t)cd_size);
    p = le32(p, cd_start >= z->lim.offset ? 0xffffffffu : (uint32_t)cd_start);
    p = le16(p, 0);
    rc = emit(z, h, (size_t)(p - h));
out:
    ds__zip_abort(z);
    return rc;
}

void ds__zip_abort(struct ds_zip *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->n; i++)
        free(z->e[i].name);
    free(z->e);
    free(z);
}
