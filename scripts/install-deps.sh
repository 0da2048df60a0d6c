#!/usr/bin/env bash
# Installs every package scrapeship needs to build and to run its full test suite,
# from Debian's archive only. Idempotent: re-running it is cheap once everything is there.
#
#   --build-only   only what building the scrapeship binary needs (the container
#                  image's builder stage, deploy/Dockerfile, uses this)
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libcurl4-openssl-dev libssl-dev zlib1g-dev libdeflate-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libsnappy-dev libyaml-dev libpcre2-dev libjansson-dev libmicrohttpd-dev
  libgnutls28-dev libcrypt-dev   # web endpoint: TLS (libmicrohttpd's GnuTLS), bcrypt (libxcrypt)
  # tests
  libcmocka-dev valgrind curl openssl
  prometheus prometheus-node-exporter victoria-metrics nginx-light
  python3 python3-botocore python3-snappy python3-protobuf python3-yaml
)

# The subset for --build-only (tests/integration/test_deploy.py checks it stays a
# subset of PKGS).
BUILD_PKGS=(
  build-essential cmake pkg-config
  libcurl4-openssl-dev libssl-dev zlib1g-dev libdeflate-dev
  libprotobuf-c-dev protobuf-c-compiler
  libsnappy-dev libyaml-dev libpcre2-dev libjansson-dev libmicrohttpd-dev
  libgnutls28-dev libcrypt-dev
)
BUILD_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --build-only) BUILD_ONLY=1; PKGS=("${BUILD_PKGS[@]}") ;;
    *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# --build-only installs no services.
[ "$BUILD_ONLY" -eq 0 ] || exit 0
# The Debian services must not keep running on the machine: tests start their own on loopback.
for svc in prometheus prometheus-node-exporter nginx victoria-metrics; do
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
done
