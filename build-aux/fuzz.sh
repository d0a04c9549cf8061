#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the libFuzzer targets of tests/fuzz with clang, AddressSanitizer
# and UndefinedBehaviorSanitizer in _build-fuzz/, and runs each of them
# for SECONDS (default 60) from its seed corpus. A crash, a leak, a
# sanitizer report or a failed assertion stops the run; the input that
# caused it is kept in _build-fuzz/artifacts/.
#
# Usage: build-aux/fuzz.sh [SECONDS] [TARGET...]
#   build-aux/fuzz.sh 3600 verify    # one target for an hour
#
# New inputs found along the way go to _build-fuzz/corpus/TARGET, which a
# later run starts from too; copy the interesting ones to
# tests/fuzz/corpus/TARGET to keep them.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$srcdir/_build-fuzz
. "$srcdir/build-aux/deps.sh"

seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-pin-strings pin-file certificate verify policy-file}

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES clang libclang-rt-14-dev gnutls-bin
CC=clang pintls_build "$builddir" "$srcdir" \
  -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
  -Dtests=false -Dintrospection=disabled -Dvapi=disabled -Ddocs=disabled \
  -Dgtk_example=disabled

export PINTLS_DATA_DIR="$srcdir/data"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$builddir/artifacts"

for target in $targets; do
  corpus="$builddir/corpus/$target"
  mkdir -p "$corpus"
  echo "fuzz-$target: $seconds s"
  "$builddir/tests/fuzz/fuzz-$target" -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$builddir/artifacts/$target-" \
    "$corpus" "$srcdir/tests/fuzz/corpus/$target" 2>"$builddir/fuzz-$target.log" || {
    tail -n 60 "$builddir/fuzz-$target.log" >&2
    echo "fuzz-$target found a problem: see $builddir/artifacts/" >&2
    exit 1
  }
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$builddir/fuzz-$target.log"
  grep -E '^#[0-9]+[[:space:]]+DONE' "$builddir/fuzz-$target.log" | tail -n 1
done
