#!/usr/bin/env bash
# bench/run.sh: the whole benchmark, as `make bench` runs it.
#
#  1. builds the microbenchmarks (bench/CMakeLists.txt, standalone, against the static
#     libraries next to SCRAPESHIP_BIN) and runs them: parse, encode, snappy, in ns per
#     sample, on the Prometheus textparse corpus and on one generated bench target;
#     with valgrind, also instructions per sample and the top functions (callgrind);
#  2. runs bench/compare.py: scrapeship, Prometheus agent mode and vmagent, one after
#     another, on the same nginx-served targets, shipping to an nginx null sink; then
#     the sidecar case (scrapeship, 1 target x 1000 series every 15 s).
# Defaults take about 8 minutes. Results go to $OUT (default: a new /tmp directory):
# micro.txt, results.md, results.json. Knobs (see bench/README.md): N M INTERVAL
# DURATION WARMUP BATCH GZIP TOOLS SIDECAR* PROFILE MICRO CALLGRIND SCRAPESHIP_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PY=/usr/bin/python3   # Debian's, not a pyenv one on PATH
export SCRAPESHIP_BIN=${SCRAPESHIP_BIN:-$REPO/build/scrapeship}
LIB_BUILD=${MICRO_BUILD_DIR:-$(dirname "$SCRAPESHIP_BIN")}
MICRO=${MICRO:-1}
CALLGRIND=${CALLGRIND:-$(command -v valgrind >/dev/null && echo 1 || echo 0)}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}  # hard cap for compare.py, seconds
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

# ---- 2. scrapeship vs Prometheus agent vs vmagent, then the sidecar case --------------------
echo "== comparison (results in $OUT)"
timeout --signal=TERM "$BENCH_TIMEOUT" "$PY" "$HERE/compare.py" &
child=$!
rc=0
wait "$child" || rc=$?
child=
exit "$rc"
