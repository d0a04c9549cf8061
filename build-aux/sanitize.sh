#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds pintls with AddressSanitizer and UndefinedBehaviorSanitizer in
# _build-sanitize/ and runs the whole test suite there. Any sanitizer
# report fails the run. Extra arguments go to `meson test`.
#
# Every C suite, the command-line suite (the pintls tool and the demo,
# instrumented too) run with leak detection. The GObject Introspection data
# is not built here: g-ir-scanner's dump program, linked with the
# instrumented library, deadlocks at exit inside p11-kit's destructor
# (freelocale) under gcc's AddressSanitizer, so the Python, GJS, Vala and
# example suites, which need the typelib, are skipped in this build.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$srcdir/_build-sanitize
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES $PINTLS_TEST_PACKAGES
pintls_build "$builddir" "$srcdir" \
  -Db_sanitize=address,undefined -Db_lundef=false \
  -Dintrospection=disabled -Dvapi=disabled -Ddocs=disabled -Dgtk_example=disabled

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export G_SLICE=always-malloc
export PINTLS_TEST_TIMEOUT_SCALE=4

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1

meson test -C "$builddir" --print-errorlogs --timeout-multiplier 4 "$@"
