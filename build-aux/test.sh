#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs what is missing, builds pintls in _build/ and runs every test
# suite. Extra arguments go to `meson test` (a suite name, --verbose ...).

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES $PINTLS_TEST_PACKAGES
pintls_build "${PINTLS_BUILDDIR:-$srcdir/_build}" "$srcdir" \
  -Dintrospection=enabled -Dvapi=enabled -Ddocs=enabled -Dgtk_example=enabled
meson test -C "${PINTLS_BUILDDIR:-$srcdir/_build}" --print-errorlogs "$@"
