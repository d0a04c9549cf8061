#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds pintls with gcov instrumentation in _build-coverage/, runs the
# whole test suite and reports line and branch coverage of the library
# (pintls/, without the command-line tool) with gcovr: a summary on
# standard output, a table per file in _build-coverage/coverage.txt and
# an HTML report in _build-coverage/coverage/index.html. Lines that no
# test can reach carry a GCOVR_EXCL marker with the reason beside it.
# Extra arguments go to `meson test`.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$srcdir/_build-coverage
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES $PINTLS_TEST_PACKAGES gcovr
pintls_build "$builddir" "$srcdir" -Db_coverage=true -Dbuildtype=debug \
  -Dintrospection=enabled -Dvapi=enabled -Ddocs=enabled -Dgtk_example=enabled

find "$builddir" -name '*.gcda' -delete
meson test -C "$builddir" --print-errorlogs "$@"

gcovr_args="--root $srcdir --filter $srcdir/pintls/ --exclude $srcdir/pintls/tool/ \
  --exclude-unreachable-branches --exclude-directories $builddir/tests/bindings \
  --object-directory $builddir"
mkdir -p "$builddir/coverage"
# shellcheck disable=SC2086
gcovr $gcovr_args --html-details "$builddir/coverage/index.html" \
  --txt "$builddir/coverage.txt" --print-summary "$builddir"
# shellcheck disable=SC2086
gcovr $gcovr_args --branches --txt "$builddir/coverage-branches.txt" "$builddir"
cat "$builddir/coverage.txt"
