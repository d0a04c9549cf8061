#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs what is missing, builds pintls in _build/ and plays the
# certificate-rotation story against a TLS server the demo starts itself.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES
pintls_build "${PINTLS_BUILDDIR:-$srcdir/_build}" "$srcdir"
exec "${PINTLS_BUILDDIR:-$srcdir/_build}/pintls/tool/pintls-demo" "$@"
