#!/usr/bin/env python3
"""wire.py - read a wire v1 or v2 envelope independently of the C parser (tests only).

The offsets are those of schema/WIRE.md: little-endian header, header_len at
byte 8 and payload_len at byte 12 (the zstd frame is bytes
[header_len, header_len + payload_len)), the last 64 bytes an Ed25519
signature over everything before them.  Written apart from schema/wire.c so
a mistake in the C code cannot hide itself.

    wire.py split ENVELOPE OUTDIR   -> OUTDIR/{signed,sig,payload}.bin, prints meta as JSON
    wire.py set-u64 ENVELOPE OFFSET VALUE OUT   -> a copy with one field changed
    wire.py list-all BASE_URL TOKEN -> every snapshot item, following `next`
"""
import json
import os
import struct
import sys
import urllib.parse
import urllib.request

SAMPLE_SIZE = {1: 2, 2: 4, 3: 4}


def split(path, outdir):
    b = open(path, "rb").read()
    if len(b) < 56 + 64 or b[:4] != b"PRSN":
        raise SystemExit("not an envelope (%d bytes)" % len(b))
    (major, minor, flags, header_len, payload_len, seq, trig, rate, pre, post,
     score, stype, nch) = struct.unpack_from("<BBHIIQqdIIfBB", b, 4)
    if header_len + payload_len + 64 != len(b):
        raise SystemExit("lengths disagree: header %d + payload %d + 64 != %d"
                         % (header_len, payload_len, len(b)))
    off = 56
    strings = []
    for _ in range(2 + 2 * nch):
        n = b[off]
        strings.append(b[off + 1: off + 1 + n].decode())
        off += 1 + n
    if off > header_len:
        raise SystemExit("strings run past header_len")
    samples_bytes = (pre + post) * nch * SAMPLE_SIZE.get(stype, 0)
    content_bytes, calibration = samples_bytes, []
    if major == 2:
        # v2: scale and offset per channel after the strings; with PREDICT
        # (flag 4) the frame also holds a 28-byte record per block and channel
        if off + 16 * nch > header_len:
            raise SystemExit("calibration table runs past header_len")
        calibration = [struct.unpack_from("<dd", b, off + 16 * i) for i in range(nch)]
        if flags & 4:
            block = 1 << b[54]
            content_bytes += (pre + post + block - 1) // block * 28 * nch
    with open(os.path.join(outdir, "signed.bin"), "wb") as f:
        f.write(b[:-64])
    with open(os.path.join(outdir, "sig.bin"), "wb") as f:
        f.write(b[-64:])
    with open(os.path.join(outdir, "payload.bin"), "wb") as f:
        f.write(b[header_len:header_len + payload_len])
    print(json.dumps({
        "major": major, "minor": minor, "flags": flags, "seq": seq,
        "trigger_time_us": trig, "sample_rate": rate, "pre": pre, "post": post,
        "score": score, "sample_type": stype, "channel_count": nch,
        "device_id": strings[0], "detector": strings[1],
        "channels": [dict({"name": strings[2 + 2 * i], "unit": strings[3 + 2 * i]},
                          **({"scale": calibration[i][0], "offset": calibration[i][1]}
                             if calibration else {}))
                     for i in range(nch)],
        "samples_bytes": samples_bytes,
        "content_bytes": content_bytes,
    }))


def set_u64(path, offset, value, out):
    b = bytearray(open(path, "rb").read())
    struct.pack_into("<Q", b, int(offset), int(value))
    open(out, "wb").write(bytes(b))


def list_all(base, token):
    items, after = [], None
    for _ in range(10000):
        q = {"limit": "100"}
        if after:
            q["after"] = after
        req = urllib.request.Request(base + "/api/v1/snapshots?" + urllib.parse.urlencode(q),
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=10) as r:
            d = json.load(r)
        items += d["items"]
        after = d.get("next")
        if not after:
            break
    print(json.dumps(items))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"split": split, "set-u64": set_u64, "list-all": list_all}[cmd](*args)
