#!/usr/bin/env bash
# The release build of scrapeship, shared by every place that builds the binary: the
# container image (deploy/Dockerfile) runs it, and it uses the configuration the test
# suite runs against (scripts/test.sh, `make build`: CMake, RelWithDebInfo).
#
#   scripts/build.sh [BUILD_DIR] [extra CMake arguments...]
#
# BUILD_DIR defaults to "build"; the binary lands in BUILD_DIR/scrapeship. The image
# passes -DSS_TESTS=OFF: the test suite (and cmocka) is not needed to build the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
[ $# -gt 0 ] && shift
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD" -j"$JOBS" --target scrapeship
"$BUILD/scrapeship" --version
