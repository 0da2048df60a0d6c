#!/usr/bin/env bash
# bench/run.sh: the whole benchmark, as `make bench` runs it.
#
#  1. builds the microbenchmarks (bench/CMakeLists.txt, standalone, against the static
#     libraries next to SCRAPESHIP_BIN) and runs them: parse, encode, snappy, in ns per
#     sample, on the Prometheus textparse corpus and on one generated bench target
#     (and gzip inflate, zlib vs libdeflate, on that target's metrics.gz);
#     with valgrind, also instructions per sample and the top functions (callgrind);
#  2. runs bench/compare.py: for each profile of PROFILES (default ksm-1x100k,
#     cadvisor-10x20k, 10x10k, 30x10k, 100x1k, 1000x100, sidecar-1x1k gzipped, and
#     100x1k, 10x10k plain), scrapeship, the
#     Prometheus agent and vmagent one after another on the same nginx-served targets,
#     shipping to an nginx null sink; then (CEILING=1) the ceiling run: the highest
#     samples/s each tool sustains without loss;
#  3. (CHURN=1) runs bench/churn.py: scrapeship on file_sd targets that come and go
#     every 3 s at 20k samples/s for 5 minutes; nothing dropped, RSS flat;
#  4. (MEMORY=1) runs bench/memory.py: scrapeship's RSS at 0, 100k and 300k active
#     series and the bytes per added series (about 2.5 minutes), then bench/libfloor.py:
#     the RSS of scrapeship's shared libraries before it runs (seconds).
# Defaults take about 59 minutes (micro ~2, profiles ~43, ceiling <= ~8, churn ~6).
# Results go to $OUT (default: a new /tmp directory): micro.txt, results.md,
# results.json, churn.md, churn.json, memory.md, memory.json, libfloor.md. Knobs (see bench/README.md): PROFILES TOOLS
# DURATION WARMUP GZIP BATCH CEILING CEILING_* CHURN CHURN_* MEMORY MEM_* PROFILE MICRO CALLGRIND
# COMPARE SCRAPESHIP_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PY=/usr/bin/python3   # Debian's, not a pyenv one on PATH
export SCRAPESHIP_BIN=${SCRAPESHIP_BIN:-$REPO/build/scrapeship}
LIB_BUILD=${MICRO_BUILD_DIR:-$(dirname "$SCRAPESHIP_BIN")}
MICRO=${MICRO:-1}
CALLGRIND=${CALLGRIND:-$(command -v valgrind >/dev/null && echo 1 || echo 0)}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}  # hard cap for compare.py, seconds
COMPARE=${COMPARE:-1}
export CEILING=${CEILING:-1}
CHURN=${CHURN:-1}
MEMORY=${MEMORY:-1}
CHURN_TIMEOUT=$(( ${CHURN_DURATION:-300} * $(tr ',' '\n' <<<"${CHURN_TOOLS:-scrapeship}" | grep -c .) + 900 ))
export OUT=${OUT:-$(mktemp -d /tmp/scrapeship-bench-XXXXXX)}
mkdir -p "$OUT"

if [[ ! -x $SCRAPESHIP_BIN ]]; then
    echo "run.sh: $SCRAPESHIP_BIN not found; build it (make build) or set SCRAPESHIP_BIN" >&2
    exit 2
fi

child=
scratch=$(mktemp -d /tmp/scrapeship-bench-micro-XXXXXX)
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
    # compare.py stops everything it started when it gets SIGTERM.
    if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. microbenchmarks ------------------------------------------------------------------
if [[ $MICRO == 1 ]]; then
    mb=$LIB_BUILD/bench-micro
    if [[ -f $LIB_BUILD/remotewrite/libss_remotewrite.a ]]; then
        echo "== microbenchmarks (built in $mb)"
        cmake -S "$HERE" -B "$mb" -DSS_BUILD_DIR="$LIB_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build "$mb" -j2 >/dev/null
        "$PY" "$HERE/gen_targets.py" "$scratch/t" 1 "${M:-1000}" >/dev/null
        gen=$scratch/t/0/metrics
        {
            "$mb/micro_parse"
            "$mb/micro_parse" "$gen"
            "$mb/micro_encode"
            "$mb/micro_encode" "$gen"
            if [[ -x $mb/micro_gzip ]]; then
                "$mb/micro_gzip" "$gen.gz"
            fi
            if [[ $CALLGRIND == 1 ]]; then
                for spec in "parse:parse_pass:micro_parse --iterations 20"  \
                            "parse-gen:parse_pass:micro_parse --iterations 20 $gen" \
                            "encode:encode_batch:micro_encode --iterations 2" \
                            "compress:compress_batch:micro_encode --iterations 2" \
                            "encode-gen:encode_batch:micro_encode --iterations 2 $gen" \
                            "compress-gen:compress_batch:micro_encode --iterations 2 $gen"; do
                    IFS=: read -r label fn cmd <<<"$spec"
                    cg=$scratch/callgrind.$label
                    # shellcheck disable=SC2086  # cmd is a word list on purpose
                    line=$(valgrind --tool=callgrind --callgrind-out-file="$cg" --toggle-collect="$fn" \
                           "$mb"/$cmd 2>/dev/null | tail -1 || true)
                    # "parse PATH: K passes, S samples per pass"
                    passes=$(sed -E 's/.*: ([0-9]+) passes, ([0-9]+) samples.*/\1/' <<<"$line")
                    per=$(sed -E 's/.*: ([0-9]+) passes, ([0-9]+) samples.*/\2/' <<<"$line")
                    ir=$(callgrind_annotate "$cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' || true)
                    if [[ -n $ir && -n $passes && -n $per && $per -gt 0 ]]; then
                        printf 'callgrind %-13s %6.0f instructions/sample; top functions by self Ir:\n' \
                               "$label" "$(echo "$ir / ($passes * $per)" | bc -l)"
                        # "26,257,853 (35.66%)  /path/parse.c:parse_line [/path/bin]"
                        callgrind_annotate "$cg" 2>/dev/null |
                            sed -nE 's|^ *[0-9,]+ \( *([0-9.]+%)\)  (.*/)?([^/:]+):(.*) \[(.*/)?([^]/]+)\]$|    \1  \4 (\3 \6)|p' |
                            sed -E 's/\(char const.*\) \(/ (/; s/ \(\?\?\? / (/; s/ \(([^ ]+) [^ ]+\)$/ (\1)/' |
                            head -6 || true
                    fi
                done
            fi
        } 2>&1 | tee "$OUT/micro.txt"
    else
        echo "run.sh: no static libraries in $LIB_BUILD; skipping microbenchmarks" >&2
    fi
fi

# ---- 2. profiles, side by side with the peers; then the ceiling ----------------------------
rc=0
run_py() {  # run_py TIMEOUT SCRIPT: in the background so the trap can stop it
    timeout --signal=TERM "$1" "$PY" "$2" &
    child=$!
    local r=0
    wait "$child" || r=$?
    child=
    return "$r"
}
if [[ $COMPARE == 1 ]]; then
    if [[ $CEILING == 1 ]]; then
        echo "== profiles, then the ceiling run (results in $OUT)"
    else
        echo "== profiles (CEILING=0: no ceiling run; results in $OUT)"
    fi
    run_py "$BENCH_TIMEOUT" "$HERE/compare.py" || rc=$?
fi

# ---- 3. churn soak -------------------------------------------------------------------------
if [[ $CHURN == 1 ]]; then
    echo "== churn soak (results in $OUT)"
    crc=0
    run_py "$CHURN_TIMEOUT" "$HERE/churn.py" || crc=$?
    if (( crc > rc )); then rc=$crc; fi
fi

# ---- 4. memory per active series -------------------------------------------------------------
if [[ $MEMORY == 1 ]]; then
    echo "== memory per active series (results in $OUT/memory.md)"
    mrc=0
    run_py 1800 "$HERE/memory.py" || mrc=$?
    if (( mrc > rc )); then rc=$mrc; fi
    echo "== the shared libraries' RSS before scrapeship runs (results in $OUT/libfloor.md)"
    "$PY" "$HERE/libfloor.py" "$SCRAPESHIP_BIN" > "$OUT/libfloor.md" && cat "$OUT/libfloor.md" || rc=1
fi
exit "$rc"
