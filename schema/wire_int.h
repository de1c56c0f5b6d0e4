/* wire_int.h - internals shared by wire.c (the envelope) and wire_predict.c
 * (the v2 per-block predictors).  Not part of the public interface. */
#ifndef PRECURSOR_WIRE_INT_H
#define PRECURSOR_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

/* How residuals are laid out in a channel's plane (from the header flags). */
enum {
    WIRE__LAYOUT_LE = 0,            /* little-endian samples */
    WIRE__LAYOUT_SHUFFLE = 1,       /* WIRE_FLAG_SHUFFLE: bytes over the plane */
    WIRE__LAYOUT_BITSHUFFLE = 2     /* WIRE_FLAG_BITSHUFFLE: bits within each block */
};

/* Samples per channel in blocks of 1 << block_log. */
size_t wire__blocks(size_t n, unsigned block_log);

/* Bytes of working memory wire__predict_plane / wire__unpredict_plane need
 * for blocks of 1 << block_log samples (aligned for int32 and float). */
size_t wire__work_bytes(unsigned block_log);

/* Forward v2 transform of one channel: n samples of type (host order), the
 * first n0 at in0 and the rest at in1 (in1 unused when n0 >= n) ->
 * one WIRE_BLOCK_HDR_LEN record per block in records, and the residuals in
 * plane, laid out as layout (WIRE__LAYOUT_*) says.
 * max_order bounds the linear predictor the encoder tries (0: none). */
void wire__predict_plane(const void *in0, size_t n0, const void *in1, size_t n, uint8_t type,
                         unsigned block_log, int layout, unsigned max_order, uint8_t *records,
                         uint8_t *plane, void *work);

/* Inverse: WIRE_EFRAME if a record is not one the format allows. */
int wire__unpredict_plane(const uint8_t *records, const uint8_t *plane, size_t n, uint8_t type,
                          unsigned block_log, int layout, void *out, void *work);

/* The inverse for count (1 ..= 8) int16 channels at once, one per SIMD lane
 * (wire_predict.c says why): records of channel c at records + c *
 * rec_stride, its plane at planes + c * n * 2, its samples to out + c * n.
 * Needs wire__decode_work_bytes(block_log) of work.  Same results as
 * wire__unpredict_plane per channel; without AVX2 it runs the same scalar
 * code, so callers use it only where wire__group16_available() says so. */
size_t wire__decode_work_bytes(unsigned block_log);
int wire__group16_available(void);
int wire__unpredict_group16(const uint8_t *records, size_t rec_stride, const uint8_t *planes,
                            unsigned count, size_t n, unsigned block_log, int layout,
                            int16_t *out, void *work);

/* The whole inverse: content (the channels' records, then their planes, as
 * WIRE.md lays them out) -> out, planar samples; the fastest way this CPU
 * has.  work: wire__decode_work_bytes for int16, wire__work_bytes otherwise. */
int wire__unpredict_planes(const uint8_t *content, unsigned channels, size_t n, uint8_t type,
                           unsigned block_log, int layout, void *out, void *work);

/* Bit-shuffled residuals [from, from + len) of an n-sample plane of size (2
 * or 4) byte samples into r: the fastest way this CPU has, and the portable
 * transpose alone (the unit suite holds the SIMD paths to it bit for bit). */
void wire__bitshuffle_get(const uint8_t *plane, size_t from, size_t len, size_t n, size_t size,
                          uint32_t *r);
void wire__bitshuffle_get_portable(const uint8_t *plane, size_t from, size_t len, size_t n,
                                   size_t size, uint32_t *r);

#endif
