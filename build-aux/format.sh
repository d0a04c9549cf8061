#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Lays out C sources as build-aux/uncrustify.cfg describes.
#
#   build-aux/format.sh [FILE...]          rewrites the files that differ
#   build-aux/format.sh --check [FILE...]  lists them and exits 1 if any
#   build-aux/format.sh --diff [FILE...]   lists them with the changes
#
# Without FILE: the files that build-aux/format-files names. Installs
# uncrustify with apt-get if it is missing; $UNCRUSTIFY names another one.

set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
config=$srcdir/build-aux/uncrustify.cfg
file_list=$srcdir/build-aux/format-files

usage ()
{
  echo "usage: $0 [--check | --diff] [FILE...]" >&2
  exit 2
}

mode="format"
case ${1-} in
  --check) mode="check"; shift ;;
  --diff) mode="diff"; shift ;;
  --help|-h) usage ;;
  -*) usage ;;
esac

if [ -z "${UNCRUSTIFY-}" ]; then
  if ! command -v uncrustify >/dev/null 2>&1; then
    . "$srcdir/build-aux/deps.sh"
    pintls_install_packages uncrustify
  fi
  UNCRUSTIFY=uncrustify
fi
version=$("$UNCRUSTIFY" --version)
case $version in
  *-0.72.*) ;;
  *) echo "$0: warning: the configuration is written for uncrustify 0.72;" \
          "$version may lay out some code differently" >&2 ;;
esac

# uncrustify reads a GLib macro written without a closing semicolon
# (G_DEFINE_FINAL_TYPE (...), G_DECLARE_FINAL_TYPE (...), G_BEGIN_DECLS,
# G_GNUC_BEGIN_IGNORE_DEPRECATIONS) as the start of whatever follows it: it
# then leaves the next declaration as it is, or splits a call in two. This
# filter ends those macros with a ';' before uncrustify runs (mode=add), and
# takes it away again afterwards (mode=strip).
# shellcheck disable=SC2016
macro_filter='
  BEGIN { depth = -1 }
  function end_statement(text)
  {
    if (mode == "add")
      sub(/;?[ \t]*$/, ";", text)
    else
      sub(/;[ \t]*$/, "", text)
    return text
  }
  depth < 0 && /^[ \t]*(G_BEGIN_DECLS|G_END_DECLS|G_GNUC_(BEGIN|END)_IGNORE_DEPRECATIONS);?[ \t]*$/ {
    print end_statement($0)
    next
  }
  depth < 0 && /^(G|PIN_TLS)_(DEFINE|DECLARE)_[A-Z0-9_]* ?\(/ {
    depth = 0
  }
  depth >= 0 {
    line = $0
    n = split(line, chars, "")
    for (i = 1; i <= n; i++)
      {
        if (chars[i] == "(")
          depth++
        else if (chars[i] == ")")
          depth--
      }
    if (depth <= 0)
      {
        line = end_statement(line)
        depth = -1
      }
    print line
    next
  }
  { print }
'

tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT

# Writes the laid-out text of $1 to $tmpdir/out.
layout ()
{
  awk -v mode=add "$macro_filter" "$1" > "$tmpdir/in.c"
  "$UNCRUSTIFY" -q -c "$config" -l C -f "$tmpdir/in.c" -o "$tmpdir/uncrustified.c"
  awk -v mode=strip "$macro_filter" "$tmpdir/uncrustified.c" > "$tmpdir/out"

  # A layout changes white space only; anything else is a bug to report,
  # not a change to make.
  if [ "$(tr -d ' \t\n' < "$1" | cksum)" != \
       "$(tr -d ' \t\n' < "$tmpdir/out" | cksum)" ]; then
    echo "$0: uncrustify changed more than white space in $1;" \
         "leaving it alone" >&2
    exit 2
  fi
}

if [ $# -eq 0 ]; then
  cd "$srcdir"
  # Unquoted on purpose: each line of the list is a shell pattern.
  # shellcheck disable=SC2046
  set -- $(sed -e 's/#.*//' "$file_list")
fi

differing=0
for file in "$@"; do
  if [ ! -f "$file" ]; then
    echo "$0: warning: no file $file" >&2
    continue
  fi

  layout "$file"
  if cmp -s "$file" "$tmpdir/out"; then
    continue
  fi

  differing=$((differing + 1))
  case $mode in
    format)
      cat "$tmpdir/out" > "$file"
      echo "formatted $file"
      ;;
    check)
      echo "$file"
      ;;
    diff)
      echo "$file"
      diff -u "$file" "$tmpdir/out" | sed -e "1,2s|$tmpdir/out|$file (formatted)|" || true
      ;;
  esac
done

if [ "$mode" != format ] && [ "$differing" -gt 0 ]; then
  echo "$differing file(s) differ from the layout; run build-aux/format.sh" \
       "on them" >&2
  exit 1
fi
