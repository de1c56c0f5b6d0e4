/* ingest.h - the snapshot ingest pipeline, independent of HTTP.
 *
 * Order (each step only after the previous one passed): parse and bound the
 * header and the zstd frame header -> device lookup -> Ed25519 over the raw
 * bytes -> sequence check (same bytes again: the stored id; same seq, other
 * bytes: conflict) -> decompress once to validate -> store the envelope as
 * received with its metadata and SHA-256.  Returns only after the row is
 * committed. */
#ifndef PRECURSOR_INGEST_H
#define PRECURSOR_INGEST_H

#include <stddef.h>
#include <stdint.h>

struct ingest_result {
    int64_t id;
    char device_id[65];
    uint64_t seq;
    int created;            /* 1: stored now (201); 0: stored before (200) */
};

/* buf/len borrowed.  0 or a negative SRV_E* code; *why (may be NULL) gets a
 * static human-readable reason for the error. */
int ingest_envelope(const uint8_t *buf, size_t len, struct ingest_result *out,
                    const char **why);

/* Map a WIRE_E* code to the SRV_E* code the API answers with. */
int ingest_wire_error(int wire_err);

#endif
