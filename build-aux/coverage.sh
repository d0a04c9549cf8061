#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds pintls with gcov instrumentation in _build-coverage/, runs the
# whole test suite and reports line and branch coverage of the library
# (pintls/, without the command-line tool) with gcovr: a summary on
# standard output, a table per file in _build-coverage/coverage.txt and
# an HTML report in _build-coverage/coverage/index.html. Lines that no
# test can reach carry a GCOVR_EXCL marker with the reason beside it.
# Run whole, the job fails below 99.9% of lines (more than four lines
# uncovered today). Every line is covered, by tests that wait for the
# state they check; the margin keeps a line that some other test's
# timing once reached instead from failing CI before it gets a test of
# its own. Extra arguments go to `meson test`, and then no minimum applies.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$srcdir/_build-coverage
. "$srcdir/build-aux/deps.sh"

# shellcheck disable=SC2086
pintls_install_packages $PINTLS_BUILD_PACKAGES $PINTLS_TEST_PACKAGES gcovr
pintls_build "$builddir" "$srcdir" -Db_coverage=true -Dbuildtype=debug \
  -Dintrospection=enabled -Dvapi=enabled -Ddocs=enabled -Dgtk_example=enabled

minimum=
if [ $# -eq 0 ]; then
  minimum="--fail-under-line 99.9"
fi
find "$builddir" -name '*.gcda' -delete
meson test -C "$builddir" --print-errorlogs "$@"

gcovr_args="--root $srcdir --filter $srcdir/pintls/ --exclude $srcdir/pintls/tool/ \
  --exclude-unreachable-branches --exclude-directories $builddir/tests/bindings \
  --object-directory $builddir"
mkdir -p "$builddir/coverage"
status=0
# shellcheck disable=SC2086
gcovr $gcovr_args --html-details "$builddir/coverage/index.html" \
  --txt "$builddir/coverage.txt" --print-summary $minimum "$builddir" || status=$?
# shellcheck disable=SC2086
gcovr $gcovr_args --branches --txt "$builddir/coverage-branches.txt" "$builddir"
cat "$builddir/coverage.txt"
if [ "$status" -ne 0 ]; then
  echo "coverage: too many lines of pintls/ are not covered: see above" >&2
fi
exit "$status"
