#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds pintls in _build-valgrind/ and runs every C test suite under
# valgrind's memcheck. Any invalid access, use of uninitialised memory or
# leak (definitely, indirectly or possibly lost) fails the run. Extra
# arguments go to `meson test` (a suite name, --verbose ...).
#
# build-aux/valgrind.supp holds the suppressions, each for an allocation
# that glibc, GLib or GnuTLS makes once per process or thread and keeps
# until exit, with the reason beside it; GLib's own glib.supp is used too.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$srcdir/_build-valgrind
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES gnutls-bin valgrind
pintls_build "$builddir" "$srcdir" \
  -Dintrospection=disabled -Dvapi=disabled -Ddocs=disabled -Dgtk_example=disabled

# The valgrind setup of tests/meson.build holds memcheck's options.
meson test -C "$builddir" --setup=valgrind --print-errorlogs --suite c "$@"
