#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   1. normal build (RelWithDebInfo); unit + conformance + real-peer integration tests (ctest)
#   2. Release build (-O3), compiled only: -O3 inlines more, and GCC's flow warnings
#      (maybe-uninitialized, ...) that -O2 misses fail it under -Werror
#   3. ASan+UBSan build; unit tests again (LeakSanitizer fails any leak)
#   4. clang libFuzzer build; every fuzz target for FUZZ_SECONDS each
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export SS_CORPORA_DIR="$(cd .. && pwd)/shared/corpora"
if [ ! -d "$SS_CORPORA_DIR" ]; then
  echo "test.sh: conformance corpora not found at $SS_CORPORA_DIR (expected ../shared beside the repo)" >&2
  exit 1
fi
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"

step "unit, conformance and integration tests"
# Integration tests mostly wait on real servers, so three run at a time on two cores.
(cd build && ctest --output-on-failure -j3 --timeout 900)

step "README quick start: make run"
run_out=$(mktemp)
make --no-print-directory run RUN_FOR=7s >"$run_out" 2>&1 || { cat "$run_out"; echo "make run failed" >&2; exit 1; }
if ! grep -q '^up{instance="127.0.0.1:9464",job="scrapeship"} 1 ' "$run_out"; then
  cat "$run_out"; echo "make run did not print up=1 for its own endpoint" >&2; exit 1
fi
echo "make run printed $(grep -c . "$run_out") lines, up=1"
rm -f "$run_out"

step "build (Release, -O3): must compile warning-free; the suite ran above"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$JOBS"

step "ASan+UBSan build: unit tests with leak detection"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSS_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest -L unit --output-on-failure -j"$JOBS")

step "ASan+UBSan binary end to end (LeakSanitizer checks the whole pipeline at exit)"
for t in test_cli test_remote_write_prometheus test_reload; do
  SCRAPESHIP_BIN="$PWD/build-asan/scrapeship" SS_TOOLS_DIR="$PWD/build/tools" SS_SOURCE_DIR="$PWD" \
    /usr/bin/python3 tests/integration/$t.py
done

step "fuzz targets (${FUZZ_SECONDS}s each)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSS_FUZZ=ON -DSS_TESTS=ON >/dev/null
cmake --build build-fuzz -j"$JOBS"
fuzzers=$(find build-fuzz -maxdepth 2 -type f -name 'fuzz_*' -perm -u+x | sort)
nf=0
for f in $fuzzers; do
  name=$(basename "$f")
  work=$(mktemp -d)
  echo "--- $name"
  # a target's seed inputs, if it has any, start its corpus
  if [ -d "tests/fuzz/seeds/$name" ]; then cp tests/fuzz/seeds/"$name"/* "$work"/; fi
  # -rss_limit_mb bounds memory; -timeout flags any single input slower than 10 s.
  if ! "$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=0 \
       -artifact_prefix="$work/" "$work" >"$work/log" 2>&1; then
    tail -50 "$work/log"
    echo "fuzz target $name failed; artifacts in $work" >&2
    exit 1
  fi
  grep -E "^#[0-9]+.*DONE" "$work/log" | tail -1 || true
  rm -rf "$work"
  nf=$((nf + 1))
done
step "done: $nf fuzz targets clean"
