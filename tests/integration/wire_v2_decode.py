# wire_v2_decode.py ENVELOPE - an independent decoder of a wire v2 envelope, written
# from schema/WIRE.md alone (standard library and the zstd command line, no
# code of schema/wire*.c): prints the SHA-256 of the decoded samples (planar,
# little-endian), which tests/integration/vectors.sh compares with the
# vector's samples_sha256.  Slow (pure Python); fine for the vectors.
import hashlib, struct, subprocess, sys
env = open(sys.argv[1], 'rb').read()
flags, hl, pl = struct.unpack_from('<HII', env, 6)
pre, post = struct.unpack_from('<II', env, 40)
stype, nch, block_log = env[52], env[53], env[54]
size, n, B = {1: 2, 2: 4, 3: 4}[stype], pre + post, 1 << env[54]
content = subprocess.run(['zstd', '-q', '-d', '-c'], input=env[hl:hl + pl],
                         stdout=subprocess.PIPE, check=True).stdout
bits, mask = 8 * size, (1 << 8 * size) - 1
nblocks = (n + B - 1) // B
planes = content[28 * nblocks * nch:]
def signed(u): return u - (1 << bits) if u >> (bits - 1) else u
out = bytearray()
for c in range(nch):
    plane, x = planes[c * n * size:(c + 1) * n * size], [0] * 12   # 12 samples of history
    for b in range(nblocks):
        rec = content[28 * (c * nblocks + b):28 * (c * nblocks + b + 1)]
        kind, order, shift = rec[0], rec[1], rec[2]
        q = struct.unpack_from('<12h', rec, 4)
        frm, L = b * B, min(B, n - b * B)
        blk = plane[frm * size:(frm + L) * size]
        if flags & 8:     # BITSHUFFLE over the plane: bit planes of the first n8, then the rest
            n8, r = n & ~7, []
            for i in range(frm, frm + L):
                if i < n8:
                    r.append(sum(((plane[k * (n8 // 8) + i // 8] >> (i % 8)) & 1) << k
                                 for k in range(bits)))
                else:
                    at = n8 * size + (i - n8) * size
                    r.append(int.from_bytes(plane[at:at + size], 'little'))
        elif flags & 2:   # SHUFFLE: byte k of sample i at k*n + i over the whole plane
            r = [sum(plane[k * n + frm + i] << 8 * k for k in range(size)) for i in range(L)]
        else:
            r = [int.from_bytes(blk[i * size:(i + 1) * size], 'little') for i in range(L)]
        for i in range(L):
            z = r[i]
            if kind == 4:                                   # XOR: no zigzag
                v = z ^ (x[-1] & mask)
            else:
                d = (z >> 1) ^ -(z & 1)                     # zigzag back
                if kind == 0: p = 0
                elif kind == 1: p = x[-1]
                elif kind == 2: p = 2 * x[-1] - x[-2]
                else:   # LPC: sum modulo 2^32 (16-bit) or 2^64, then floor shift
                    acc = sum(q[k] * x[-1 - k] for k in range(order))
                    w = 32 if size == 2 else 64
                    acc &= (1 << w) - 1
                    acc = acc - (1 << w) if acc >> (w - 1) else acc
                    p = acc >> shift
                v = (d + p) & mask
            x.append(signed(v))
            out += v.to_bytes(size, 'little')
        x = x[-12:]
print(hashlib.sha256(out).hexdigest())
