#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds pintls in _build-valgrind/ and runs every C test suite under
# valgrind's memcheck. Any invalid access, use of uninitialised memory or
# leak (definitely, indirectly or possibly lost) fails the run. Extra
# arguments go to `meson test` (a suite name, --verbose ...).
#
# build-aux/valgrind.supp holds the suppressions, each for an allocation
# that GLib or GnuTLS makes once per process and keeps until exit, with
# the reason beside it.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$srcdir/_build-valgrind
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES gnutls-bin valgrind
pintls_build "$builddir" "$srcdir" \
  -Dintrospection=disabled -Dvapi=disabled -Ddocs=disabled -Dgtk_example=disabled

# Every allocation through malloc, so that memcheck sees each of them.
export G_SLICE=always-malloc
# Handshakes run some twenty times slower: give stalling servers time.
export PINTLS_TEST_STALL_TIMEOUT=10
export PINTLS_TEST_TIMEOUT_SCALE=20

wrapper="valgrind --tool=memcheck --error-exitcode=1 --track-origins=yes \
  --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --num-callers=40 \
  --suppressions=$srcdir/build-aux/valgrind.supp"

meson test -C "$builddir" --print-errorlogs --suite c --timeout-multiplier 10 \
  --wrapper "$wrapper" "$@"
