#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs what is missing (glib-networking, to compare with), builds
# pintls with optimisation (-O2, as Debian builds GnuTLS and glib-networking)
# in _build-bench/, runs every benchmark and prints one table on standard
# output; progress goes to standard error. It also counts instructions
# per handshake with valgrind, which load on the machine does not change.
# Extra arguments go to pintls-bench: --quick, --rounds N, --only
# handshake,bulk ... (see --help).

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=${PINTLS_BENCH_BUILDDIR:-$srcdir/_build-bench}
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES glib-networking ca-certificates \
  valgrind >&2
pintls_build "$builddir" "$srcdir" -Dbuildtype=debugoptimized -Dtests=false \
  -Dintrospection=disabled -Dvapi=disabled -Ddocs=disabled -Dgtk_example=disabled >&2
exec "$builddir/bench/pintls-bench" --instructions "$@"
