#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds pintls and its C tests with ThreadSanitizer in _build-tsan/ and
# runs the suites where threads share pin sets and connections: the
# threads suite (many threads verifying, printing and combining one pin
# set and connecting with it at once), the connection suites (a reader and
# a writer at the same time, handshakes taken over across threads) and the
# attack suite (blocking handshakes in threads). Any report fails the run.
# Extra arguments go to `meson test`.
#
# tests/tsan-glib.c makes GLib's mutexes, conditions and g_once visible to
# ThreadSanitizer where pintls and the tests call them. GLib's calls to
# itself stay unseen: memory that one of its thread pools allocates and
# the main loop frees, for one, looks unsynchronised. So the accesses that
# libraries which are not instrumented (GLib, GIO, GnuTLS, libc) make
# through intercepted functions (malloc, free, memcpy, read ...) are not
# checked (ignore_noninstrumented_modules); every access of pintls and the
# tests still is. build-aux/tsan.supp lists, with reasons, what remains.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$srcdir/_build-tsan
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES gnutls-bin
pintls_build "$builddir" "$srcdir" \
  -Db_sanitize=thread -Db_lundef=false \
  -Dintrospection=disabled -Dvapi=disabled -Ddocs=disabled -Dgtk_example=disabled

export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$srcdir/build-aux/tsan.supp"
export G_SLICE=always-malloc
export PINTLS_TEST_STALL_TIMEOUT=5
export PINTLS_TEST_TIMEOUT_SCALE=10

meson test -C "$builddir" --print-errorlogs --timeout-multiplier 4 \
  threads connection-tls12 connection-tls13 hostile "$@"
