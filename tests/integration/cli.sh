#!/usr/bin/env bash
# cli.sh - the command lines as a user types them: each command of
# precursor-agent takes its own options and refuses the other's with exit 2
# and one line naming the option and the command it belongs to (replay
# --server would otherwise read as if replay uploaded); the options run and
# replay share work in both; one config file serves both (the other
# command's keys skipped with a warning); every example command line of
# README.md and docs/*.md that runs `precursor-agent run` or `replay` parses
# (--check), and every flag the docs name after either command is one its
# --help lists.  `enroll` takes its token from --token-file (- for standard
# input) or PRECURSOR_ENROLL_TOKEN, warns for --token (ps shows it) and for a
# token file others can read, and refuses a missing or empty file and two
# sources at once.  The server's commands name another command's option as such,
# and each --help lists exactly the options its command reads.  A SIGTERM while
# a live CSV stream is being opened ends `run` at once with exit 0.
# Needs the binaries, no database and no port.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

for b in "$AGENT_BIN" "$SERVER_BIN"; do
    [ -x "$b" ] || { it_fail setup "$b not built"; it_finish; }
done
cd "$IT_TMP" || exit 1

# expect_usage NAME WANT COMMAND...: exit 2, stderr exactly one line holding WANT.
expect_usage() {
    local name=$1 want=$2 rc lines
    shift 2
    "$@" >out.txt 2>err.txt
    rc=$?
    lines=$(wc -l <err.txt)
    if [ "$rc" = 2 ] && [ "$lines" = 1 ] && grep -qF -- "$want" err.txt && [ ! -s out.txt ]; then
        it_pass "$name"
    else
        it_fail "$name" "exit $rc, $lines lines: $(head -c 300 err.txt)"
    fi
}

# A short recording with a spike, for replays that run to the end.
python3 - <<'PY'
import math
with open("in.csv", "w") as f:
    f.write("timestamp,value\n")
    for i in range(4000):
        v = math.sin(i / 7.0) + (8.0 if i == 3000 else 0.0)
        f.write("%d,%.4f\n" % (1600000000 + i, v))
PY

# ---- each command refuses the other's options ---------------------------------------
A=("$AGENT_BIN")
expect_usage "replay --server (run's) exits 2 naming it and run" \
    "precursor-agent replay: --server is an option of \`precursor-agent run\`, not of replay" \
    "${A[@]}" replay --input in.csv --scores s.csv --server http://127.0.0.1:9
expect_usage "replay --spool-cap-mb=10 (run's, = spelling) exits 2" \
    "--spool-cap-mb is an option of \`precursor-agent run\`" \
    "${A[@]}" replay --input in.csv --scores s.csv --spool-cap-mb=10
expect_usage "replay --enroll-secret-file (run's) exits 2" \
    "--enroll-secret-file is an option of \`precursor-agent run\`" \
    "${A[@]}" replay --input in.csv --scores s.csv --enroll-secret-file x
expect_usage "replay --on-trigger (run's action) exits 2" \
    "--on-trigger is an option of \`precursor-agent run\`" \
    "${A[@]}" replay --input in.csv --scores s.csv --on-trigger true
expect_usage "replay --source says replay's is --format" \
    "replay's input format is --format" \
    "${A[@]}" replay --input in.csv --scores s.csv --source csv
expect_usage "run --scores (replay's) exits 2 naming it and replay" \
    "precursor-agent run: --scores is an option of \`precursor-agent replay\`, not of run" \
    "${A[@]}" run --device-id d --server http://127.0.0.1:9 --scores s.csv
expect_usage "run --trigger-score (replay's flag) exits 2" \
    "--trigger-score is an option of \`precursor-agent replay\`" \
    "${A[@]}" run --device-id d --server http://127.0.0.1:9 --trigger-score
expect_usage "run --format (replay's) says run's is --source" \
    "run's sample source is --source" \
    "${A[@]}" run --device-id d --server http://127.0.0.1:9 --format csv
[ ! -e s.csv ] && it_pass "a refused replay writes no scores file" || it_fail "a refused replay writes no scores file"
# The same usage error as any other: an unknown option, a missing value.
expect_usage "replay --bogus: unknown option, exit 2" "unknown option bogus" \
    "${A[@]}" replay --input in.csv --scores s.csv --bogus 1

# Bad input is named as such, not as a missing file.
printf 'timestamp,value\n1600000000,1\n1600000001,one\n' >bad.csv
"${A[@]}" replay --input bad.csv --scores s4.csv >/dev/null 2>err.txt; rc=$?
[ "$rc" = 1 ] && grep -q "bad.csv: line 3" err.txt && ! grep -q "No such file" err.txt &&
    it_pass "replay of a file with a bad row names the row (exit 1)" ||
    it_fail "replay of a file with a bad row" "exit $rc: $(cat err.txt)"

# Commissioning: --triggers lists each trigger with its detector and channel, the same
# rows the scores file marks, and stderr says the rate per hour and who fired most.
"${A[@]}" replay --input in.csv --scores s5.csv --triggers t5.csv >/dev/null 2>err.txt; rc=$?
n_trig=$(awk -F, 'NR > 1 && $3 == 1' s5.csv | wc -l)
if [ "$rc" = 0 ] && [ "$(head -1 t5.csv)" = "timestamp,detector,channel,name,anomaly_score,trigger_score" ] &&
    [ "$n_trig" -ge 1 ] && [ "$(($(wc -l <t5.csv) - 1))" = "$n_trig" ] &&
    [ "$(awk -F, 'NR > 1 && $3 == 1 {print $1}' s5.csv)" = "$(awk -F, 'NR > 1 {print $1}' t5.csv)" ] &&
    awk -F, 'NR > 1 && $4 != "value" {exit 1}' t5.csv &&
    grep -q "^replay: 1.11 h of stream time, [0-9.]* triggers per hour$" err.txt &&
    grep -q "^replay: triggers by detector and channel, most first: [a-z]* value: [0-9]*" err.txt; then
    it_pass "replay --triggers: one row per trigger, its channel named; rate and top channels on stderr"
else
    it_fail "replay --triggers" "exit $rc: $(cat err.txt; head -3 t5.csv)"
fi

# ---- --help lists each command's own options only -------------------------------------
"${A[@]}" replay --help >replay-help.txt 2>&1
"${A[@]}" run --help >run-help.txt 2>&1
bad=""
for f in --server --source --sim-seed --spool-cap-mb --upload-max-bps --on-trigger \
    --heartbeat-s --enroll-secret-file --ca-file --pin-sha256 --duration; do
    grep -q -- "^  $f " replay-help.txt && bad="$bad replay:$f"
done
for f in --scores --format --trigger-score --triggers; do
    grep -q -- "^  $f " run-help.txt && bad="$bad run:$f"
done
for f in --input --rate --channels --spool --key-dir --model --manipulated --pre-s --check; do
    grep -q -- "^  $f " replay-help.txt && grep -q -- "^  $f " run-help.txt || bad="$bad both:$f"
done
[ -z "$bad" ] && it_pass "--help of run and of replay list their own options (and the shared ones)" ||
    it_fail "--help lists only the command's own options" "$bad"

# ---- shared options work in both -----------------------------------------------------
if "${A[@]}" replay --input in.csv --format csv --rate 100 --channels 1 --scores s1.csv \
        --device-id cli-1 --key-dir keys --spool sp --ring-s 20 --pre-s 1 --post-s 1 --merge \
        --max-window-s 10 --zstd-level 1 --capture-every-s 0 --threshold 0.99 >/dev/null 2>r1.err &&
        [ "$(wc -l <s1.csv)" = 4001 ] && [ -d sp ]; then
    it_pass "replay with the options it shares with run: 4000 scores, spool made"
else
    it_fail "replay with the shared options" "$(tail -n 3 r1.err)"
fi
out=$("${A[@]}" run --device-id cli-1 --server http://127.0.0.1:9 --key-dir keys --spool sp2 \
        --source csv --input in.csv --rate 100 --ring-s 20 --pre-s 1 --post-s 1 --merge \
        --max-window-s 10 --zstd-level 1 --threshold 0.99 --check 2>&1); rc=$?
[ "$rc" = 0 ] && [ "$out" = "precursor-agent run: ok" ] && [ ! -e sp2 ] &&
    it_pass "run --check with the shared options: ok, exit 0, nothing started" ||
    it_fail "run --check with the shared options" "exit $rc: $out"

# ---- one config file for both ------------------------------------------------------
cat >shared.conf <<'EOF'
# a device's file, used for replaying its recordings too
device-id = cli-2
server = http://127.0.0.1:9
source = sim
spool-cap-mb = 64
pre-s = 1
post-s = 1
ring-s = 20
trigger-score = true
EOF
"${A[@]}" replay --config shared.conf --input in.csv --rate 100 --scores s2.csv >/dev/null 2>r2.err; rc=$?
warn=$(grep -c "ignoring .* (an option of \`precursor-agent run\` only)" r2.err)
[ "$rc" = 0 ] && [ "$warn" = 3 ] && [ "$(head -n1 s2.csv)" = "timestamp,anomaly_score,trigger,trigger_score" ] &&
    it_pass "replay --config of a run file: 3 run keys skipped with a warning each, shared ones applied" ||
    it_fail "replay --config of a run file" "exit $rc, $warn warnings: $(head -n 5 r2.err)"
out=$("${A[@]}" run --config shared.conf --check 2>&1); rc=$?
[ "$rc" = 0 ] && grep -q "ignoring trigger-score (an option of \`precursor-agent replay\` only)" <<<"$out" &&
    it_pass "run --config with a replay key: skipped with a warning" ||
    it_fail "run --config with a replay key" "exit $rc: $out"
{ cat shared.conf; echo "pre-s = x"; } >bad.conf
"${A[@]}" replay --config bad.conf --input in.csv --scores s3.csv >/dev/null 2>r3.err; rc=$?
[ "$rc" = 2 ] && [ "$(grep -vc ignoring r3.err)" = 1 ] && grep -q "bad.conf:10: option pre-s: bad value 'x'" r3.err &&
    it_pass "a bad value in the shared file is still an error (exit 2)" ||
    it_fail "a bad value in the shared file" "exit $rc: $(cat r3.err)"

# ---- enroll: the token out of argv -------------------------------------------------------
# --token-file (- for standard input) or PRECURSOR_ENROLL_TOKEN; --token works and
# warns; the mistakes are one line, exit 2, before a key is made.
ENR=("$AGENT_BIN" enroll --server http://127.0.0.1:9 --device-id d1 --key-dir "$IT_TMP/enroll-keys")
ETOK=pen_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
(umask 077; printf '%s\n' "$ETOK" >tok.txt; : >tok-empty.txt)
"$AGENT_BIN" enroll --help >out.txt 2>&1 && grep -q -- "--token-file PATH" out.txt &&
    grep -q PRECURSOR_ENROLL_TOKEN out.txt && grep -q "sees it (ps)" out.txt &&
    it_pass "enroll --help names --token-file, PRECURSOR_ENROLL_TOKEN and why not --token" ||
    it_fail "enroll --help" "$(cat out.txt)"
expect_usage "enroll --token-file missing: exit 2 naming the file" \
    "--token-file nofile: No such file or directory" "${ENR[@]}" --token-file nofile
expect_usage "enroll --token-file empty: exit 2" "--token-file tok-empty.txt is empty" \
    "${ENR[@]}" --token-file tok-empty.txt
expect_usage "enroll --token with --token-file: exit 2" \
    "the token is given twice (--token and --token-file)" "${ENR[@]}" --token-file tok.txt --token "$ETOK"
expect_usage "enroll --token-file with PRECURSOR_ENROLL_TOKEN set: exit 2" \
    "the token is given twice (--token-file and PRECURSOR_ENROLL_TOKEN)" \
    env PRECURSOR_ENROLL_TOKEN="$ETOK" "${ENR[@]}" --token-file tok.txt
expect_usage "enroll without a token: exit 2 naming the three ways" \
    "--token-file PATH (- for standard input), PRECURSOR_ENROLL_TOKEN or --token" env -u PRECURSOR_ENROLL_TOKEN "${ENR[@]}"
[ ! -e "$IT_TMP/enroll-keys" ] && it_pass "enroll's token mistakes make no key" || it_fail "enroll's token mistakes made a key"
# Well formed, each way reaches the (absent) server: exit 1; only --token warns.
enroll_way() {   # NAME WARNS COMMAND...
    local name=$1 warns=$2 rc n
    shift 2
    "$@" >out.txt 2>err.txt
    rc=$?
    n=$(grep -c "visible to every user of this machine (ps); give it with --token-file PATH, --token-file - (standard input) or PRECURSOR_ENROLL_TOKEN" err.txt)
    [ "$rc" = 1 ] && grep -q "127.0.0.1:9/api/v1/devices/enroll" err.txt && [ "$n" = "$warns" ] &&
        it_pass "$name" || it_fail "$name" "exit $rc: $(cat err.txt)"
}
enroll_way "enroll --token-file FILE: no warning" 0 "${ENR[@]}" --token-file tok.txt
enroll_way "enroll --token-file - (standard input): no warning" 0 sh -c '"$@" <tok.txt' sh "${ENR[@]}" --token-file -
enroll_way "enroll with PRECURSOR_ENROLL_TOKEN: no warning" 0 env PRECURSOR_ENROLL_TOKEN="$ETOK" "${ENR[@]}"
enroll_way "enroll --token: works, one line warns that ps shows it" 1 "${ENR[@]}" --token "$ETOK"
chmod 644 tok.txt
"${ENR[@]}" --token-file tok.txt >out.txt 2>err.txt
grep -q "warning: --token-file tok.txt is readable by others than its owner (mode 644): chmod 600 it" err.txt &&
    it_pass "enroll --token-file readable by others: a warning" || it_fail "enroll --token-file 0644" "$(cat err.txt)"

# ---- the documented command lines ---------------------------------------------------------
: >empty.conf
python3 - "$IT_ROOT" "$AGENT_BIN" >docs.txt 2>&1 <<'PY'
"""Every `precursor-agent run|replay` command line of README.md and docs/*.md.

Code blocks (fenced or indented) hold examples: each is run with --check and
must say ok; a config file it names that does not exist here is replaced by
an empty one, and `a|b|c` (a choice the text leaves to the reader) by its
first word.  A synopsis (a line with [optional] parts) and an inline code
span are not complete commands; of them and of the examples, every --flag
must be one that command's --help lists (or a detector key).
Prints `ok|NAME` or `fail|NAME|WHY`."""
import glob, os, re, shlex, subprocess, sys

root, agent = sys.argv[1], sys.argv[2]
files = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
helps = {}
for cmd in ("run", "replay"):
    text = subprocess.run([agent, cmd, "--help"], capture_output=True, text=True).stdout
    own, _, det = text.partition("detector options")
    flags = set(re.findall(r"^  (--[a-z0-9-]+)", own, re.M))
    flags |= {"--" + k.replace("_", "-") for k in re.findall(r"^  ([a-z_0-9]+)=", det, re.M)}
    helps[cmd] = flags

def commands(path):
    """(line number, text, is_example) for each command line in the file."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, fenced, i = [], False, 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
            i += 1
            continue
        block = fenced or (line.startswith("    ") and (i == 0 or lines[i - 1].strip() == ""
                                                       or lines[i - 1].startswith("    ")))
        start = i
        if block:
            text = line
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            m = re.search(r"(?:^|\s)(\S*precursor-agent)\s+(run|replay)\b(.*)", text)
            if m and "[" in text:
                # a synopsis goes on over indented lines without a backslash
                while (i + 1 < len(lines) and lines[i + 1].startswith(" ") and
                       "precursor-agent" not in lines[i + 1] and not lines[i + 1].lstrip().startswith("```")):
                    i += 1
                    text += " " + lines[i].strip()
                m = re.search(r"(?:^|\s)(\S*precursor-agent)\s+(run|replay)\b(.*)", text)
            if m:
                out.append((start + 1, m.group(2) + m.group(3), True))
        else:
            # inline spans may run over a line break
            para = line
            for m in re.finditer(r"`[^`]*precursor-agent\s+(run|replay)\b([^`]*)`?",
                                 para + " " + (lines[i + 1] if i + 1 < len(lines) else "")):
                if m.start() < len(line):
                    out.append((start + 1, m.group(1) + m.group(2), False))
        i += 1
    return out

examples = 0
for path in files:
    rel = os.path.relpath(path, root)
    for lineno, text, is_example in commands(path):
        name = "%s:%d" % (rel, lineno)
        cmd = text.split()[0]               # "run", "replay", or "run|replay" for both
        cmds = [c for c in cmd.split("|") if c in helps]
        synopsis = "[" in text or " ... " in text or not is_example or len(cmds) != 1
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
        unknown = sorted(f for f in named if any(f not in helps[c] for c in cmds))
        if not cmds or unknown:
            print("fail|%s: %s names %s|not in `precursor-agent %s --help`"
                  % (name, cmd, " ".join(unknown), cmd))
            continue
        if synopsis:
            print("ok|%s: the flags named after `precursor-agent %s` are in its --help" % (name, cmd))
            continue
        argv = shlex.split(text)
        for k, a in enumerate(argv):
            if "|" in a and not a.startswith("-") and k > 0 and argv[k - 1].startswith("--"):
                argv[k] = a.split("|")[0]
            if k > 0 and argv[k - 1] == "--config" and not os.path.exists(a):
                argv[k] = "empty.conf"
        r = subprocess.run([agent] + argv + ["--check"], capture_output=True, text=True)
        examples += 1
        if r.returncode == 0 and r.stdout.strip() == "precursor-agent %s: ok" % cmd:
            print("ok|%s: `precursor-agent %s ...` parses (--check)" % (name, cmd))
        else:
            print("fail|%s: `precursor-agent %s`|exit %d: %s" % (name, " ".join(argv)[:120],
                  r.returncode, r.stderr.strip()[:200]))
print("count|%d" % examples)
PY
n_examples=0
while IFS='|' read -r kind a b; do
    case "$kind" in
    ok) it_pass "docs $a" ;;
    fail) it_fail "docs $a" "$b" ;;
    count) n_examples=$a ;;
    *) it_fail "docs extraction" "$kind $a $b" ;;
    esac
done <docs.txt
[ "$n_examples" -ge 2 ] && it_pass "docs: $n_examples example command lines run with --check" ||
    it_fail "docs: example command lines found" "$n_examples"

# ---- SIGTERM while a live CSV stream is still being opened ---------------------------------
# Without --rate the open reads 64 rows ahead for the rate: a minute of a 1 Hz
# stream written a row at a time.  A stop then (systemd's SIGTERM) must end the
# agent at once and cleanly, also before the header came; it waited for the rows.
for pre in header none; do
    fifo=live-$pre.fifo
    rm -f "$fifo"; mkfifo "$fifo"
    "$AGENT_BIN" run --device-id cli-live --server http://127.0.0.1:9 --key-dir keys-live \
        --source csv --input "$fifo" --config-poll-s 0 >live.out 2>live.err &
    apid=$!
    exec 7>"$fifo"
    [ "$pre" = header ] && printf 'timestamp,v\n1600000000,1\n1600000001,2\n' >&7
    sleep 1
    kill -TERM "$apid"
    for _ in $(seq 50); do kill -0 "$apid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$apid" 2>/dev/null; then
        it_fail "SIGTERM while a live CSV ($pre) is opened" "still running 5 s later"
        kill -KILL "$apid" 2>/dev/null
        wait "$apid" 2>/dev/null
    else
        wait "$apid"
        rc=$?
        [ "$rc" = 0 ] && it_pass "SIGTERM while a live CSV ($pre) is opened: exit 0 within 5 s" ||
            it_fail "SIGTERM while a live CSV ($pre) is opened" "exit $rc: $(tail -n 2 live.err)"
    fi
    exec 7>&-
done

# ---- the server: another command's option is named as such ---------------------------------
"$SERVER_BIN" migrate --port 80 >out.txt 2>err.txt; rc=$?
[ "$rc" = 2 ] && [ "$(head -n 1 err.txt)" = "precursor-server: --port is an option of serve, not of migrate" ] &&
    it_pass "server migrate --port: exit 2, named an option of serve" ||
    it_fail "server migrate --port" "exit $rc: $(cat err.txt)"
# token list shares no row with token revoke: --id would be ignored there.
"$SERVER_BIN" token list --id 3 >out.txt 2>err.txt; rc=$?
[ "$rc" = 2 ] && [ "$(head -n 1 err.txt)" = "precursor-server: --id is an option of token revoke, not of token list" ] &&
    [ ! -s out.txt ] &&
    it_pass "server token list --id: exit 2, named an option of token revoke" ||
    it_fail "server token list --id" "exit $rc: $(cat err.txt)"
"$SERVER_BIN" user disable --role admin --username x >out.txt 2>err.txt; rc=$?
[ "$rc" = 2 ] && [ "$(head -n 1 err.txt)" = "precursor-server: --role is an option of user add or token create, not of user disable" ] &&
    it_pass "server user disable --role: exit 2, named an option of user add or token create" ||
    it_fail "server user disable --role" "exit $rc: $(cat err.txt)"
# A role that is none of the three is named, before any database is looked for.
for c in "user add --username bob" "token create --name bob"; do
    # shellcheck disable=SC2086
    "$SERVER_BIN" $c --role boss >out.txt 2>err.txt; rc=$?
    [ "$rc" = 2 ] && grep -q -- "--role boss is none of" err.txt && [ ! -s out.txt ] &&
        it_pass "server $c --role boss: exit 2, the value named" ||
        it_fail "server $c --role boss" "exit $rc: $(cat err.txt)"
done
# Each command's --help lists exactly the options it reads (and --help).
bad=""
while IFS='|' read -r cmd want; do
    # shellcheck disable=SC2086
    got=$("$SERVER_BIN" $cmd --help 2>&1 | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p' | sort | xargs)
    want=$(printf '%s\n' --database-url --help $want | sort | xargs)
    [ "$got" = "$want" ] || bad="$bad [$cmd lists: $got]"
done <<'EOF'
serve|--app-database-url --migrations-dir --port --threads --max-body --ui-dir --schema-dir --enroll-secret-file --tls-cert --tls-key --model-key-file --conn-timeout --header-timeout --max-conns --max-conns-per-ip --body-memory --export-retention-h --export-quota-mb --agent-binary --retention-days --device-rate --device-burst --ingest-queue --committers --batch-max --features-memory --background-nice
migrate|--migrations-dir
user add|--username --role
user disable|--username
user passwd|--username
token create|--role --name
token list|
token revoke|--id
enroll create|--equipment-type --site --tags --uses --reusable --expires --pre-approved
enroll revoke|--token
demo-history|--seed
EOF
[ -z "$bad" ] && it_pass "server: each command's --help lists exactly the options it reads" ||
    it_fail "server: --help lists exactly the options read" "$bad"
# precursor-loadgen: its --help has a line for every option its parser takes.
LOADGEN_BIN="$BUILD/bin/precursor-loadgen"
if [ -x "$LOADGEN_BIN" ]; then
    got=$("$LOADGEN_BIN" --help 2>&1 | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p' | sort | xargs)
    want=$(printf '%s\n' --url --devices --seconds --snapshot-bytes --credentials --presign --rate \
               --version --help | sort | xargs)
    [ "$got" = "$want" ] && it_pass "loadgen: --help has a line for every option it takes" ||
        it_fail "loadgen: --help lists every option" "lists: $got"
    bad=""
    for f in $want; do
        [ "$f" = --help ] || [ "$f" = --version ] && continue
        "$LOADGEN_BIN" "$f" >/dev/null 2>err.txt
        grep -q "unknown argument" err.txt && bad="$bad $f"
    done
    [ -z "$bad" ] && it_pass "loadgen: every option its --help lists is one it takes" ||
        it_fail "loadgen: --help lists an option it refuses" "$bad"
fi
DATABASE_URL="host=/nonexistent" "$SERVER_BIN" enroll create --uses 3 --reusable >out.txt 2>err.txt; rc=$?
[ "$rc" = 2 ] && grep -q "give --uses N or --reusable, not both" err.txt &&
    it_pass "server enroll create --uses with --reusable: exit 2 (the limit would be ignored)" ||
    it_fail "server enroll create --uses with --reusable" "exit $rc: $(cat err.txt)"
# The command line's own mistakes are named first, also where no database is set.
env -u DATABASE_URL "$SERVER_BIN" enroll create --uses 3 --reusable >out.txt 2>err.txt; rc=$?
[ "$rc" = 2 ] && grep -q "give --uses N or --reusable, not both" err.txt &&
    it_pass "server enroll create --uses with --reusable, no database: the conflict named" ||
    it_fail "server enroll create --uses with --reusable, no database" "exit $rc: $(cat err.txt)"
env -u DATABASE_URL "$SERVER_BIN" enroll create --expires 3x >out.txt 2>err.txt; rc=$?
[ "$rc" = 2 ] && grep -q -- "--expires like 30m" err.txt &&
    it_pass "server enroll create --expires 3x, no database: the duration named" ||
    it_fail "server enroll create --expires 3x, no database" "exit $rc: $(cat err.txt)"

# ---- serve: what a flag names must be there, before anything is migrated ----------------------
# A folder or file named by a flag and not there stops serve with exit 1 and a
# line naming the flag (it was a warning, or nothing, and the server then
# answered 404 or served an install.sh that failed on every device); checked
# before the database is touched, which here is not even reachable.
printf 'not-a-secret\n' >shared-secret && chmod 666 shared-secret
while IFS='|' read -r flags want; do
    # shellcheck disable=SC2086
    DATABASE_URL="host=/nonexistent" "$SERVER_BIN" serve --port 0 $flags >out.txt 2>err.txt; rc=$?
    [ "$rc" = 1 ] && grep -qF -- "$want" err.txt && ! grep -q "connect failed" err.txt &&
        it_pass "serve $flags: exit 1 before the database, naming it" ||
        it_fail "serve $flags: exit 1 naming it" "exit $rc: $(tail -n 3 err.txt)"
done <<'EOF2'
--ui-dir ./no-ui|--ui-dir ./no-ui: no readable index.html there
--schema-dir ./no-schema|--schema-dir ./no-schema: no readable openapi.json there
--migrations-dir ./no-migrations|--migrations-dir ./no-migrations: no readable 0001_devices_snapshots.sql
--agent-binary ./no-agent|--agent-binary ./no-agent: not a readable file
--enroll-secret-file shared-secret|--enroll-secret-file shared-secret is writable by group or others: chmod 600 it
EOF2
# A port another process listens on is named before the migrations (it was
# "cannot listen" after them, and after the modules started).
why=$(python3 - "$SERVER_BIN" <<'PY'
import os, socket, subprocess, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
port = s.getsockname()[1]
env = dict(os.environ, DATABASE_URL="host=/nonexistent")
p = subprocess.run([sys.argv[1], "serve", "--port", str(port)], env=env, capture_output=True,
                   text=True, timeout=30)
ok = (p.returncode == 1 and "port %d is in use" % port in p.stderr
      and "connect failed" not in p.stderr)
print("" if ok else "exit %d: %s" % (p.returncode, p.stderr[-300:]))
PY
)
[ -z "$why" ] && it_pass "serve on a port in use: exit 1 before the database, named" ||
    it_fail "serve on a port in use" "$why"
# A TLS key that is not the certificate's: named at load (exit 2), not as a
# port it "cannot listen on" after the migrations ran.
if command -v openssl >/dev/null; then
    for n in a b; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$n.key" \
            -out "$n.crt" -days 1 -subj /CN=localhost >/dev/null 2>&1
    done
    DATABASE_URL="host=/nonexistent" "$SERVER_BIN" serve --port 0 --tls-cert a.crt --tls-key b.key \
        >out.txt 2>err.txt; rc=$?
    [ "$rc" = 2 ] && grep -qF "tls-key b.key is not the key of the first certificate" err.txt &&
        ! grep -q "connect failed" err.txt &&
        it_pass "serve with a TLS key not the certificate's: exit 2 at load, both named" ||
        it_fail "serve with a mismatched TLS pair" "exit $rc: $(tail -n 3 err.txt)"
fi

it_finish
