/* fleet_bucket.c - per-device token buckets: a device may upload
 * device_rate snapshots per second on average and device_burst at once (a
 * spool draining after an outage).  Beyond that it gets 429 with the seconds
 * until a token is back, which the agent's uploader waits out.  Buckets live
 * in a bounded direct-mapped table; two devices sharing a slot share a
 * bucket only until one of them evicts the other, which at worst lets a
 * device through early. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/fleet/fleet.h"
#include "server/fleet/fleet_int.h"

#define FLEET_BUCKET_SLOTS 16384

struct bucket {
    char id[65];
    double tokens;
    int64_t at_ms;
};

static struct bucket buckets[FLEET_BUCKET_SLOTS];
static pthread_mutex_t bucket_mu = PTHREAD_MUTEX_INITIALIZER;

int fleet_bucket_take(const char *dev, unsigned *retry_after_s)
{
    const struct fleet_settings *st = fleet_settings();
    struct bucket *b = &buckets[fleet__hash(dev) % FLEET_BUCKET_SLOTS];
    int64_t now = fleet__now_ms();
    double need;
    int err = SRV_OK;

    if (st->device_rate <= 0)
        return SRV_OK;      /* limit off */
    pthread_mutex_lock(&bucket_mu);
    if (strcmp(b->id, dev) != 0) {
        snprintf(b->id, sizeof b->id, "%s", dev);
        b->tokens = st->device_burst;
        b->at_ms = now;
    }
    b->tokens += (double)(now - b->at_ms) / 1000.0 * st->device_rate;
    if (b->tokens > st->device_burst)
        b->tokens = st->device_burst;
    b->at_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        need = (1.0 - b->tokens) / st->device_rate;
        *retry_after_s = need < 1.0 ? 1u : (unsigned)ceil(need);
        err = SRV_ERATELIMIT;
    }
    pthread_mutex_unlock(&bucket_mu);
    return err;
}

void fleet_bucket_reset(void)
{
    pthread_mutex_lock(&bucket_mu);
    memset(buckets, 0, sizeof buckets);
    pthread_mutex_unlock(&bucket_mu);
}
