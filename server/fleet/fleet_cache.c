/* fleet_cache.c - the device lookup ingest does for every upload, cached.
 *
 * A direct-mapped table of FLEET_CACHE_SLOTS entries under one mutex: an
 * upload needs the device's key, status and last sequence number, and
 * asking PostgreSQL for them on every request costs a round trip per
 * snapshot.  Entries expire after FLEET_CACHE_TTL_MS so that a revocation
 * made through another server is honoured within seconds; approve, revoke
 * and rotate through this server invalidate the entry at once.  Collisions
 * simply replace the older entry: the table is bounded whatever the fleet. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/fleet/fleet_int.h"

#define FLEET_CACHE_SLOTS 8192

struct cache_slot {
    char id[65];
    struct fleet_device d;
    int64_t fetched_ms;
};

static struct cache_slot slots[FLEET_CACHE_SLOTS];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

int64_t fleet__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t fleet__hash(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static int64_t be64(const char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | (uint8_t)p[i];
    return (int64_t)v;
}

int fleet_device_fetch(const char *dev, struct fleet_device *out)
{
    const char *vals[1] = { dev };
    PGresult *r = NULL;
    int err;

    /* Binary result: the key as its 32 bytes, last_seq as 8 big-endian. */
    err = db_exec_own(&fleet__sql[FLEET_SQL_DEVICE_KEY], vals, NULL, NULL, 1, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        err = SRV_EUNKNOWNDEV;
    } else if (db_len(r, 0, "public_key") != FLEET_PK_LEN || db_len(r, 0, "last_seq") != 8 ||
               db_len(r, 0, "status") >= (int)sizeof out->status) {
        err = SRV_EINTERNAL;
    } else {
        memcpy(out->pk, db_text(r, 0, "public_key"), FLEET_PK_LEN);
        snprintf(out->status, sizeof out->status, "%s", db_text(r, 0, "status"));
        out->last_seq = be64(db_text(r, 0, "last_seq"));
    }
    PQclear(r);
    return err;
}

int fleet_device_lookup(const char *dev, struct fleet_device *out)
{
    struct cache_slot *s = &slots[fleet__hash(dev) % FLEET_CACHE_SLOTS];
    struct fleet_device d;
    int64_t now = fleet__now_ms();
    int err;

    if (strlen(dev) >= sizeof s->id)
        return SRV_EUNKNOWNDEV;
    pthread_mutex_lock(&cache_mu);
    if (strcmp(s->id, dev) == 0 && now - s->fetched_ms < FLEET_CACHE_TTL_MS) {
        *out = s->d;
        pthread_mutex_unlock(&cache_mu);
        return SRV_OK;
    }
    pthread_mutex_unlock(&cache_mu);
    /* Unknown devices are not cached: enrollment must take effect at once. */
    err = fleet_device_fetch(dev, &d);
    if (err != SRV_OK)
        return err;
    pthread_mutex_lock(&cache_mu);
    snprintf(s->id, sizeof s->id, "%s", dev);
    s->d = d;
    s->fetched_ms = now;
    pthread_mutex_unlock(&cache_mu);
    *out = d;
    return SRV_OK;
}

void fleet_cache_invalidate(const char *dev)
{
    struct cache_slot *s = &slots[fleet__hash(dev) % FLEET_CACHE_SLOTS];

    pthread_mutex_lock(&cache_mu);
    if (strcmp(s->id, dev) == 0)
        s->id[0] = '\0';
    pthread_mutex_unlock(&cache_mu);
}

void fleet_cache_clear(void)
{
    size_t i;

    pthread_mutex_lock(&cache_mu);
    for (i = 0; i < FLEET_CACHE_SLOTS; i++)
        slots[i].id[0] = '\0';
    pthread_mutex_unlock(&cache_mu);
}

void fleet_cache_note_seq(const char *dev, int64_t seq)
{
    struct cache_slot *s = &slots[fleet__hash(dev) % FLEET_CACHE_SLOTS];

    pthread_mutex_lock(&cache_mu);
    if (strcmp(s->id, dev) == 0 && s->d.last_seq < seq)
        s->d.last_seq = seq;
    pthread_mutex_unlock(&cache_mu);
}
