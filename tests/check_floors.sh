#!/usr/bin/env bash
# check_floors.sh: the include rules of README's Design ("floors"), checked by grep.
#
#   check_floors.sh [SOURCE_DIR]     check the tree (default: the repository root)
#   check_floors.sh --self-test      prove, on a scratch copy of the tree, that the
#                                    check passes as is and fails on each kind of
#                                    wrong-way include
#
# The pipeline stages (scrape, remotewrite, scaler) are siblings: none includes a
# header of another, except that remotewrite takes the scraped series type
# (scrape_series.h). No stage includes a collector header: the collector wires the
# stages, not the other way round. The floors (common, text, yaml, httpclient, kube,
# relabel, aws: whichever exist) never include a stage or collector header.
#
# Headers are included by bare name ("scrape.h"), so a header belongs to the module
# whose folder holds it; X.pb-c.h belongs to the module holding X.proto.
set -euo pipefail

STAGES=(scrape remotewrite scaler)
FLOORS=(common text yaml httpclient kube relabel aws)
ABOVE=(collector)

# Sibling headers a stage may include: "stage header".
SHARED=("remotewrite scrape_series.h")
# Temporary exceptions: "file header", each with what removes it.
ALLOW=()

self_test() {
    local here tmp m fail=0
    here="$(cd "$(dirname "$0")/.." && pwd)"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    for m in "${STAGES[@]}" "${FLOORS[@]}" "${ABOVE[@]}"; do
        [ -d "$here/$m" ] && cp -r "$here/$m" "$tmp/$m"
    done
    if ! bash "$0" "$tmp" >/dev/null; then
        echo "self-test: the unmodified tree does not pass" >&2
        return 1
    fi
    # Each case: file to append to, include line; every one must make the check fail.
    local cases=(
        "scaler/query.c remotewrite.h"     # stage -> sibling stage
        "scrape/engine.c remotewrite.h"    # stage -> sibling stage
        "remotewrite/queue.c scrape.h"     # remotewrite takes scrape_series.h only
        "remotewrite/wire.c scrape_int.h"  # ... and never scrape's internals
        "scaler/runner.c collector.h"      # stage -> collector
        "relabel/relabel.c scrape.h"       # floor -> stage
        "aws/awssign.c remotewrite.h"      # floor -> stage
        "common/log.c config.h"            # floor -> collector
    )
    local c file hdr
    for c in "${cases[@]}"; do
        read -r file hdr <<<"$c"
        [ -f "$tmp/$file" ] || continue
        cp "$tmp/$file" "$tmp/$file.orig"
        printf '#include "%s"\n' "$hdr" >>"$tmp/$file"
        if bash "$0" "$tmp" >/dev/null 2>&1; then
            echo "self-test: $file including $hdr was not caught" >&2
            fail=1
        else
            echo "self-test: $file including $hdr: caught"
        fi
        mv "$tmp/$file.orig" "$tmp/$file"
    done
    return $fail
}

if [ "${1:-}" = "--self-test" ]; then
    self_test
    exit $?
fi

root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

# Which module owns each header name.
declare -A owner=()
for m in "${STAGES[@]}" "${FLOORS[@]}" "${ABOVE[@]}"; do
    [ -d "$m" ] || continue
    while IFS= read -r f; do
        owner["$(basename "$f")"]=$m
    done < <(find "$m" -name '*.h')
    while IFS= read -r f; do
        owner["$(basename "$f" .proto).pb-c.h"]=$m
    done < <(find "$m" -name '*.proto')
done

is_in() {
    local x=$1
    shift
    local y
    for y in "$@"; do [ "$x" = "$y" ] && return 0; done
    return 1
}

violations=0
checked=0
report() {
    echo "$1: includes \"$2\" ($3): $4" >&2
    violations=$((violations + 1))
}

for m in "${STAGES[@]}" "${FLOORS[@]}"; do
    [ -d "$m" ] || continue
    while IFS= read -r f; do
        checked=$((checked + 1))
        while IFS=: read -r line inc; do
            hdr=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/' <<<"$inc")
            hdr=$(basename "$hdr")
            to=${owner[$hdr]:-}
            [ -z "$to" ] || [ "$to" = "$m" ] && continue
            is_in "$f $hdr" "${ALLOW[@]}" && continue
            if is_in "$to" "${ABOVE[@]}"; then
                report "$f:$line" "$hdr" "$to" "only the collector wires stages together; nothing below includes it"
            elif is_in "$m" "${FLOORS[@]}" && is_in "$to" "${STAGES[@]}"; then
                report "$f:$line" "$hdr" "$to" "a floor never includes a pipeline stage"
            elif is_in "$m" "${STAGES[@]}" && is_in "$to" "${STAGES[@]}" && ! is_in "$m $hdr" "${SHARED[@]}"; then
                report "$f:$line" "$hdr" "$to" "stages are siblings: no stage includes another"
            fi
        done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
    done < <(find "$m" -name '*.[ch]' | sort)
done

if [ "$checked" -eq 0 ]; then
    echo "check_floors: no module sources under $root" >&2
    exit 1
fi
if [ "$violations" -ne 0 ]; then
    echo "check_floors: $violations wrong-way include(s); see README.md, Design" >&2
    exit 1
fi
echo "check_floors: $checked files, no wrong-way includes"
