/* ingest.c - see ingest.h.  The cheap, stateless checks come first so a
 * flood of garbage costs no database round trip; the signature is checked
 * before the sequence lookup so an unsigned body cannot probe what is stored;
 * decompression (the expensive step) runs once and only for new snapshots. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/ingest/ingest.h"
#include "server/srv/srv.h"

int ingest_wire_error(int wire_err)
{
    switch (wire_err) {
    case WIRE_OK: return SRV_OK;
    case WIRE_ETOOBIG: return SRV_ETOOBIG;
    case WIRE_EFRAME: return SRV_EFRAME;
    case WIRE_ESIGNATURE: return SRV_ESIGNATURE;
    case WIRE_ENOMEM: return SRV_ENOMEM;
    case WIRE_EINTERNAL: return SRV_EINTERNAL;
    default: return SRV_EENVELOPE;
    }
}

/* Look up (device, seq).  *found 0 when absent; else *id and *same. */
static int seq_lookup(const char *dev, uint64_t seq, const uint8_t sha[32],
                      int *found, int64_t *id, int *same)
{
    char seqs[24];
    const char *vals[3] = { dev, seqs, (const char *)sha };
    int lens[3] = { 0, 0, 32 }, fmts[3] = { 0, 0, 1 };
    PGresult *r = NULL;
    int err;

    snprintf(seqs, sizeof seqs, "%" PRIu64, seq);
    err = db_exec(DB_SNAPSHOT_BY_SEQ, vals, lens, fmts, 0, &r);
    if (err != SRV_OK)
        return err;
    *found = PQntuples(r) == 1;
    if (*found) {
        *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *same = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    }
    PQclear(r);
    return SRV_OK;
}

static int device_key(const char *dev, uint8_t pk[WIRE_PK_LEN], const char **why)
{
    const char *vals[1] = { dev };
    PGresult *r = NULL;
    int err;

    err = db_exec(DB_DEVICE_KEY, vals, NULL, NULL, 1, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        err = SRV_EUNKNOWNDEV;
    } else if (PQgetlength(r, 0, 0) != WIRE_PK_LEN) {
        err = SRV_EINTERNAL;
    } else if (strcmp(PQgetvalue(r, 0, 1), "active") != 0) {
        *why = "device is pending or revoked";
        err = SRV_EDEVSTATE;
    } else {
        memcpy(pk, PQgetvalue(r, 0, 0), WIRE_PK_LEN);
    }
    PQclear(r);
    return err;
}

static char *channels_json(const struct wire_meta *m)
{
    json_t *a = json_array();
    char *s;
    unsigned i;

    if (!a)
        return NULL;
    for (i = 0; i < m->channel_count; i++) {
        if (json_array_append_new(a, json_pack("{s:s,s:s}", "name", m->channels[i].name,
                                               "unit", m->channels[i].unit)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

static int store(const uint8_t *buf, size_t len, const struct wire_meta *m,
                 const uint8_t sha[32], int *inserted, int64_t *id)
{
    char seq[24], tt[24], rate[40], stype[8], nch[8], pre[16], post[16], score[32];
    char *chans = channels_json(m);
    const char *vals[13];
    int lens[13] = { 0 }, fmts[13] = { 0 };
    PGresult *r = NULL;
    int err;

    if (!chans)
        return SRV_ENOMEM;
    snprintf(seq, sizeof seq, "%" PRIu64, m->seq);
    snprintf(tt, sizeof tt, "%" PRId64, m->trigger_time_us);
    snprintf(rate, sizeof rate, "%.17g", m->sample_rate);
    snprintf(stype, sizeof stype, "%u", (unsigned)m->sample_type);
    snprintf(nch, sizeof nch, "%u", (unsigned)m->channel_count);
    snprintf(pre, sizeof pre, "%" PRIu32, m->pre_samples);
    snprintf(post, sizeof post, "%" PRIu32, m->post_samples);
    snprintf(score, sizeof score, "%.9g", (double)m->score);
    vals[0] = m->device_id;
    vals[1] = seq;
    vals[2] = tt;
    vals[3] = rate;
    vals[4] = stype;
    vals[5] = nch;
    vals[6] = chans;
    vals[7] = pre;
    vals[8] = post;
    vals[9] = m->detector;
    vals[10] = score;
    vals[11] = (const char *)buf;
    lens[11] = (int)len;
    fmts[11] = 1;
    vals[12] = (const char *)sha;
    lens[12] = 32;
    fmts[12] = 1;
    err = db_exec(DB_SNAPSHOT_INSERT, vals, lens, fmts, 0, &r);
    free(chans);
    if (err != SRV_OK)
        return err;
    *inserted = PQntuples(r) == 1;
    if (*inserted)
        *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return SRV_OK;
}

int ingest_envelope(const uint8_t *buf, size_t len, struct ingest_result *out,
                    const char **why)
{
    struct wire_meta *m;
    struct wire_view v;
    uint8_t pk[WIRE_PK_LEN], sha[32];
    const char *reason = NULL;
    void *samples = NULL;
    size_t nbytes;
    int64_t id = 0;
    int err, werr, found = 0, same = 0, inserted = 0;

    /* wire_meta holds 64 channels of names: keep it off worker stacks. */
    m = calloc(1, sizeof *m);
    if (!m)
        return SRV_ENOMEM;
    if (len > INT32_MAX) {
        err = SRV_ETOOBIG;
        goto out;
    }
    werr = wire_parse(buf, len, m, &v);
    if (werr != WIRE_OK) {
        reason = wire_strerror(werr);
        err = ingest_wire_error(werr);
        goto out;
    }
    if (m->seq == 0 || m->seq > (uint64_t)INT64_MAX) {
        /* PostgreSQL bigint; the format says sequences start at 1. */
        reason = "sequence number out of range";
        err = SRV_EENVELOPE;
        goto out;
    }
    err = device_key(m->device_id, pk, &reason);
    if (err != SRV_OK)
        goto out;
    werr = wire_verify(buf, len, pk);
    if (werr != WIRE_OK) {
        reason = wire_strerror(werr);
        err = werr == WIRE_ESIGNATURE ? SRV_ESIGNATURE : ingest_wire_error(werr);
        goto out;
    }
    auth_sha256(buf, len, sha);
    err = seq_lookup(m->device_id, m->seq, sha, &found, &id, &same);
    if (err != SRV_OK)
        goto out;
    if (found) {
        if (!same) {
            reason = "sequence number already used with different bytes";
            err = SRV_ECONFLICT;
        }
        goto done;
    }
    nbytes = wire_samples_bytes(m);
    if (nbytes == 0 || nbytes > WIRE_MAX_SAMPLES_BYTES) {
        reason = "sample payload size out of range";
        err = SRV_EENVELOPE;
        goto out;
    }
    samples = malloc(nbytes);
    if (!samples) {
        err = SRV_ENOMEM;
        goto out;
    }
    werr = wire_decode_samples(m, &v, samples, nbytes);
    if (werr != WIRE_OK) {
        reason = wire_strerror(werr);
        err = werr == WIRE_ENOMEM ? SRV_ENOMEM : SRV_EFRAME;
        goto out;
    }
    err = store(buf, len, m, sha, &inserted, &id);
    if (err != SRV_OK)
        goto out;
    if (!inserted) {
        /* Lost a race with a concurrent upload of the same (device, seq). */
        err = seq_lookup(m->device_id, m->seq, sha, &found, &id, &same);
        if (err == SRV_OK && (!found || !same)) {
            reason = "sequence number already used with different bytes";
            err = SRV_ECONFLICT;
        }
        if (err != SRV_OK)
            goto out;
    }
done:
    if (err == SRV_OK) {
        out->id = id;
        snprintf(out->device_id, sizeof out->device_id, "%s", m->device_id);
        out->seq = m->seq;
        out->created = inserted;
    }
out:
    if (why)
        *why = reason;
    free(samples);
    free(m);
    return err;
}
