/* ds_npz.c - .npz export writer: a zip of stored .npy entries (ds_zip.c),
 * written in steps into a caller's sink.
 *
 * Byte-identical re-exports need every byte fixed: entries are stored (no
 * compressor version differences), every entry has the same mtime, owner 0
 * and mode 0644, and sizes are declared up front.  The .npy header is
 * version 1.0, padded with spaces to a multiple of 64 bytes as numpy itself
 * writes it.
 *
 * Every entry's SHA-256 (for the manifest) and CRC-32 (for the zip) are
 * computed on a thread of the writer's own, from copies of the bytes in a
 * ring of HASH_BLOCKS blocks: the hash was 40% of the exporting thread's
 * time, which also zips, sends and (for X) reads the samples; the copy costs
 * a tenth of the hash, and the CRC (libdeflate's) an eighth of the hash on
 * bytes the hash has just brought into the cache.  The writer waits for the
 * thread only at the end of each entry, where the zip's data descriptor
 * needs the CRC, and hashes inline when the thread cannot be started. */
#include "server/datasets/datasets.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/datasets/ds_int.h"
#include "server/srv/srv.h"

#define HASH_BLOCK (1u << 20)
#define HASH_BLOCKS 4

/* The hashing thread's queue: blocks head .. head + count - 1 (mod
 * HASH_BLOCKS) wait to be hashed, the block after them is the one the
 * writer fills (fill bytes so far).  A block marked final ends an entry:
 * its digest then goes to digest and done is set.  Under mu, except the
 * bytes of a block, which belong to the writer until queued and to the
 * thread until it dequeues them. */
struct npz_hasher {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, quit;
    uint8_t *block[HASH_BLOCKS];
    size_t len[HASH_BLOCKS];
    int final[HASH_BLOCKS];
    unsigned head, count;
    size_t fill;
    uint8_t digest[32];
    uint32_t crc;               /* the entry's so far; final once done */
    int done, err;
};

struct ds_npz {
    struct ds_zip *zip;
    int in_entry;
    uint64_t left;              /* data bytes the open entry still needs */
    /* OpenSSL's SHA-256 (the CPU's SHA extensions): with libsodium's every
     * byte exported was hashed at a third of the speed, 35% of an export. */
    EVP_MD_CTX *sha;
    uint8_t last_sha[32];
    uint32_t crc;               /* inline hashing: the entry's CRC-32 so far */
    int have_sha;
    struct npz_hasher h;
};

static void *hasher_main(void *arg)
{
    struct ds_npz *z = arg;
    struct npz_hasher *h = &z->h;

    pthread_mutex_lock(&h->mu);
    for (;;) {
        unsigned i;
        int fin, bad = 0;

        while (!h->quit && h->count == 0)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->count == 0)
            break;
        i = h->head;
        fin = h->final[i];
        pthread_mutex_unlock(&h->mu);
        if (EVP_DigestUpdate(z->sha, h->block[i], h->len[i]) != 1 ||
            (fin && EVP_DigestFinal_ex(z->sha, h->digest, NULL) != 1))
            bad = 1;
        /* crc is the thread's alone between sha_begin and done */
        h->crc = ds__zip_crc32(h->crc, h->block[i], h->len[i]);
        pthread_mutex_lock(&h->mu);
        h->err |= bad;
        h->head = (h->head + 1) % HASH_BLOCKS;
        h->count--;
        if (fin)
            h->done = 1;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Start the thread and its blocks; without them hashing stays inline. */
int ds__npz_inline_hash;

static void hasher_start(struct ds_npz *z)
{
    struct npz_hasher *h = &z->h;
    int i;

    if (ds__npz_inline_hash)
        return;
    for (i = 0; i < HASH_BLOCKS; i++)
        if (!(h->block[i] = malloc(HASH_BLOCK)))
            goto fail;
    if (pthread_mutex_init(&h->mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&h->cv, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        goto fail;
    }
    if (pthread_create(&h->thread, NULL, hasher_main, z) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        goto fail;
    }
    h->started = 1;
    return;
fail:
    for (i = 0; i < HASH_BLOCKS; i++) {
        free(h->block[i]);
        h->block[i] = NULL;
    }
}

static void hasher_stop(struct ds_npz *z)
{
    struct npz_hasher *h = &z->h;
    int i;

    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->quit = 1;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->thread, NULL);
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        h->started = 0;
    }
    for (i = 0; i < HASH_BLOCKS; i++) {
        free(h->block[i]);
        h->block[i] = NULL;
    }
}

/* Queue the block being filled (final: it ends the entry), waiting for a
 * free one to fill next. */
static void hasher_queue(struct npz_hasher *h, int final)
{
    unsigned i;

    pthread_mutex_lock(&h->mu);
    i = (h->head + h->count) % HASH_BLOCKS;
    h->len[i] = h->fill;
    h->final[i] = final;
    h->count++;
    pthread_cond_broadcast(&h->cv);
    while (h->count == HASH_BLOCKS)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    h->fill = 0;
}

/* A new entry's hash (the thread is idle: the last entry's was waited for). */
static int sha_begin(struct ds_npz *z)
{
    if (EVP_DigestInit_ex(z->sha, EVP_sha256(), NULL) != 1)
        return DS_ENOMEM;
    z->h.fill = 0;
    z->h.done = 0;
    z->h.crc = 0;
    z->crc = 0;
    return DS_OK;
}

static int sha_update(struct ds_npz *z, const uint8_t *p, size_t len)
{
    struct npz_hasher *h = &z->h;

    if (!h->started) {
        z->crc = ds__zip_crc32(z->crc, p, len);
        return EVP_DigestUpdate(z->sha, p, len) == 1 ? DS_OK : DS_EINVAL;
    }
    while (len > 0) {
        unsigned i;
        size_t n = HASH_BLOCK - h->fill < len ? HASH_BLOCK - h->fill : len;

        /* the block after the queued ones is the writer's (no other
         * thread moves head past it while it is not queued) */
        pthread_mutex_lock(&h->mu);
        i = (h->head + h->count) % HASH_BLOCKS;
        pthread_mutex_unlock(&h->mu);
        memcpy(h->block[i] + h->fill, p, n);
        h->fill += n;
        p += n;
        len -= n;
        if (h->fill == HASH_BLOCK)
            hasher_queue(h, 0);
    }
    return DS_OK;
}

/* The entry's digest into z->last_sha and its CRC-32 into z->crc, once the
 * thread has hashed it all. */
static int sha_end(struct ds_npz *z)
{
    struct npz_hasher *h = &z->h;
    int err;

    if (!h->started)
        return EVP_DigestFinal_ex(z->sha, z->last_sha, NULL) == 1 ? DS_OK : DS_EINVAL;
    hasher_queue(h, 1);
    pthread_mutex_lock(&h->mu);
    while (!h->done)
        pthread_cond_wait(&h->cv, &h->mu);
    memcpy(z->last_sha, h->digest, sizeof z->last_sha);
    z->crc = h->crc;
    err = h->err;
    h->err = 0;
    pthread_mutex_unlock(&h->mu);
    return err ? DS_EINVAL : DS_OK;
}

/* A zip writer's refusal, logged once where it happened. */
static int zip_err(int rc, const char *what)
{
    if (rc == DS_EARCHIVE)
        srv_log("error", "npz: %s: the sink refused the bytes", what);
    return rc;
}

int ds_npz_open(ds_sink_fn sink, void *ctx, struct ds_npz **out)
{
    struct ds_npz *z;
    int rc;

    if (!sink || !out)
        return DS_EINVAL;
    z = calloc(1, sizeof *z);
    if (!z)
        return DS_ENOMEM;
    if (!(z->sha = EVP_MD_CTX_new())) {
        free(z);
        return DS_ENOMEM;
    }
    if ((rc = ds__zip_open(sink, ctx, DS_NPZ_MTIME, &z->zip)) != DS_OK) {
        EVP_MD_CTX_free(z->sha);
        free(z);
        return rc;
    }
    hasher_start(z);
    *out = z;
    return DS_OK;
}

static int entry_start(struct ds_npz *z, const char *name, uint64_t size)
{
    int rc = zip_err(ds__zip_begin(z->zip, name, size), "entry header");

    if (rc == DS_OK)
        rc = sha_begin(z);
    if (rc == DS_OK) {
        z->in_entry = 1;
        z->left = size;
        z->have_sha = 0;
    }
    return rc;
}

/* The entry's last byte is out: its hash and CRC, then the zip's data
 * descriptor. */
static int entry_finish(struct ds_npz *z)
{
    int rc;

    z->in_entry = 0;
    if (sha_end(z) != DS_OK)
        return DS_EINVAL;
    if ((rc = zip_err(ds__zip_end(z->zip, z->crc), "entry end")) != DS_OK)
        return rc;
    z->have_sha = 1;
    return DS_OK;
}

static int put(struct ds_npz *z, const void *buf, size_t len)
{
    int rc;

    if (!z->in_entry || len > z->left)
        return DS_ESTATE;
    if (sha_update(z, buf, len) != DS_OK)
        return DS_EINVAL;
    if ((rc = zip_err(ds__zip_data(z->zip, buf, len), "data")) != DS_OK)
        return rc;
    z->left -= len;
    return z->left == 0 ? entry_finish(z) : DS_OK;
}

int ds_npz_begin(struct ds_npz *z, const char *name, const char *descr, size_t itemsize,
                 const uint64_t *shape, unsigned ndim)
{
    char hdr[256], shp[96], fname[DS_MAX_NAME + 8];
    size_t hl, used = 0, total;
    uint64_t count = 1;
    int rc;

    if (!z || z->in_entry || !name || !descr || !shape || ndim < 1 || ndim > 3 || itemsize == 0 ||
        strlen(name) > DS_MAX_NAME || strlen(descr) > 16)
        return DS_ESTATE;
    for (unsigned i = 0; i < ndim; i++) {
        if (shape[i] && count > UINT64_MAX / 8 / shape[i] / itemsize)
            return DS_EINVAL;
        count *= shape[i];
        used += (size_t)snprintf(shp + used, sizeof shp - used, "%llu,%s",
                                 (unsigned long long)shape[i], i + 1 < ndim ? " " : "");
    }
    if (ndim > 1)
        shp[used - 1] = '\0';   /* "(2, 3)" not "(2, 3,)"; one dim keeps "(5,)" */
    hl = (size_t)snprintf(hdr + 10, sizeof hdr - 10,
                          "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shp);
    /* Pad so magic + lengths + header + '\n' is a multiple of 64. */
    total = 10 + hl + 1;
    while (total % 64) {
        hdr[10 + hl++] = ' ';
        total++;
    }
    hdr[10 + hl++] = '\n';
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)(hl & 0xff);
    hdr[9] = (char)(hl >> 8);
    snprintf(fname, sizeof fname, "%s.npy", name);
    rc = entry_start(z, fname, 10 + hl + count * itemsize);
    if (rc == DS_OK)
        rc = put(z, hdr, 10 + hl);
    return rc;
}

int ds_npz_data(struct ds_npz *z, const void *buf, size_t len)
{
    if (!z || (!buf && len))
        return DS_EINVAL;
    return len ? put(z, buf, len) : DS_OK;
}

int ds_npz_file(struct ds_npz *z, const char *name, const void *buf, size_t len)
{
    int rc;

    if (!z || z->in_entry || !name || (!buf && len))
        return DS_ESTATE;
    rc = entry_start(z, name, len);
    if (rc == DS_OK)
        rc = len == 0 ? entry_finish(z) : put(z, buf, len);
    return rc;
}

int ds_npz_last_sha256(const struct ds_npz *z, uint8_t out[32])
{
    if (!z || !z->have_sha)
        return DS_ESTATE;
    memcpy(out, z->last_sha, 32);
    return DS_OK;
}

int ds_npz_close(struct ds_npz *z)
{
    int rc;

    if (!z)
        return DS_EINVAL;
    if (z->in_entry) {
        ds__zip_abort(z->zip);
        rc = DS_ESTATE;
    } else {
        rc = zip_err(ds__zip_close(z->zip), "close");
    }
    hasher_stop(z);
    EVP_MD_CTX_free(z->sha);
    free(z);
    return rc;
}

void ds_npz_abort(struct ds_npz *z)
{
    if (!z)
        return;
    ds__zip_abort(z->zip);
    hasher_stop(z);
    EVP_MD_CTX_free(z->sha);
    free(z);
}
