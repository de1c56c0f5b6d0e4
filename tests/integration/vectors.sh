#!/usr/bin/env bash
# vectors.sh - the golden wire-format envelopes through the real server.
#
# tests/vectors/*.prsn were made by the schema's encoder and are also checked
# by the schema and agent unit suites.  Here each is registered under its
# device id with the vectors' public key, posted as a device would, and must
# come back from /raw byte for byte: the server accepts exactly what the agent
# side of the format produces.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

it_setup "$SERVER_BIN"
it_migrate
TOKEN=$("$SERVER_BIN" token create --name vectors --role ml 2>/dev/null | tail -n1 | tr -d '[:space:]')
(umask 077; openssl rand -hex 24 >"$IT_TMP/enroll-secret")
it_spawn server "$SERVER_BIN" serve --port "$PORT" --enroll-secret-file "$IT_TMP/enroll-secret"
it_wait_http "$BASE/healthz" 30 || { it_fail server-up "$(tail -n 5 "$IT_TMP/server.log")"; it_finish; }

field() { sed -n "s/^$2=//p" "$1"; }
secret=$(cat "$IT_TMP/enroll-secret")
for txt in "$IT_ROOT"/tests/vectors/*.txt; do
    name=$(basename "$txt" .txt)
    env="$IT_ROOT/tests/vectors/$(field "$txt" file)"
    dev=$(field "$txt" device_id)
    pk=$(python3 -c 'import base64,sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' "$(field "$txt" public_key)")
    body=$(printf '{"device_id":"%s","public_key":"%s","enroll_secret":"%s"}' "$dev" "$pk" "$secret")
    # The golden vectors are all signed by one key under several device ids,
    # which key freshness refuses in a fleet (docs/FLEET.md): free the key of
    # the vectors before this one, as no API may.
    psql -X -q "$DATABASE_URL" -c "DELETE FROM device_keys WHERE device_id <> '$dev'" >/dev/null
    code=$(it_http POST "$BASE/api/v1/devices/register" "$IT_TMP/r.json" \
        -H 'Content-Type: application/json' --data "$body")
    case "$code" in 200|201) ;; *) it_fail "$name register" "$code $(cat "$IT_TMP/r.json")"; continue ;; esac
    # The independent checks: OpenSSL verifies the signature, the zstd
    # command line opens the payload, and for v2 a decoder written from
    # WIRE.md alone (wire_v2_decode.py) gets the samples' checksum.
    len=$(stat -c %s "$env")
    hl=$(od -An -tu4 --endian=little -j8 -N4 "$env" | tr -d ' ')
    pl=$(od -An -tu4 --endian=little -j12 -N4 "$env" | tr -d ' ')
    { printf '\060\052\060\005\006\003\053\145\160\003\041\000'
      printf "$(field "$txt" public_key | sed 's/../\\x&/g')"; } >"$IT_TMP/pk.der"
    head -c $((len - 64)) "$env" >"$IT_TMP/signed.bin"
    tail -c 64 "$env" >"$IT_TMP/sig.bin"
    openssl pkeyutl -verify -pubin -inkey "$IT_TMP/pk.der" -keyform DER -rawin \
        -in "$IT_TMP/signed.bin" -sigfile "$IT_TMP/sig.bin" >/dev/null 2>&1 &&
        it_pass "$name openssl verifies" || it_fail "$name openssl verifies" "pkeyutl refused"
    dd if="$env" of="$IT_TMP/payload.zst" bs=64K iflag=skip_bytes,count_bytes skip="$hl" \
        count="$pl" status=none
    zstd -q -t "$IT_TMP/payload.zst" && it_pass "$name zstd opens the payload" ||
        it_fail "$name zstd opens the payload" "zstd -t failed"
    if [ "$(field "$txt" version)" = 2 ]; then
        got=$(python3 "$IT_ROOT/tests/integration/wire_v2_decode.py" "$env")
        [ "$got" = "$(field "$txt" samples_sha256)" ] && it_pass "$name independent v2 decode" ||
            it_fail "$name independent v2 decode" "$got"
    fi
    code=$(it_http POST "$BASE/api/v1/snapshots" "$IT_TMP/p.json" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$env")
    if [ "$(field "$txt" seq)" -gt 1000000 ]; then
        # A first upload this far ahead of the device's history is refused
        # (a gap that large is a bug or an attack, docs/FLEET.md).
        [ "$code" = 422 ] && [ "$(it_json "$IT_TMP/p.json" 'd["error"]["code"]')" = seq_out_of_range ] &&
            it_pass "$name far-ahead seq refused" || it_fail "$name far-ahead seq refused" "$code"
        continue
    fi
    [ "$code" = 201 ] || { it_fail "$name ingest" "$code $(cat "$IT_TMP/p.json")"; continue; }
    id=$(it_json "$IT_TMP/p.json" 'd["id"]')
    [ "$(it_json "$IT_TMP/p.json" 'd["seq"]')" = "$(field "$txt" seq)" ] &&
        it_pass "$name seq" || it_fail "$name seq" "$(cat "$IT_TMP/p.json")"
    code=$(it_http GET "$BASE/api/v1/snapshots/$id/raw" "$IT_TMP/raw.bin" -H "Authorization: Bearer $TOKEN")
    [ "$code" = 200 ] && cmp -s "$IT_TMP/raw.bin" "$env" &&
        it_pass "$name raw identical" || it_fail "$name raw identical" "$code"
    code=$(it_http GET "$BASE/api/v1/snapshots/$id" "$IT_TMP/s.json" -H "Authorization: Bearer $TOKEN")
    want="$(field "$txt" sample_rate) $(field "$txt" channel_count) $(field "$txt" pre_samples) $(field "$txt" post_samples)"
    got=$(it_json "$IT_TMP/s.json" '"%g %d %d %d" % (d["sample_rate"], len(d["channels"]), d["pre_samples"], d["post_samples"])' 2>/dev/null)
    [ "$code" = 200 ] && [ "$got" = "$want" ] &&
        it_pass "$name metadata" || it_fail "$name metadata" "want '$want' got '$got'"
done
it_finish
