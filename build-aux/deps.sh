# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Sourced by demo.sh and test.sh: installs the Debian 12 packages that are
# missing, with apt-get, as root or through sudo.

# What building the library, its typelib and the demo needs.
PINTLS_BUILD_PACKAGES="
  meson ninja-build pkg-config gcc
  libglib2.0-dev libgnutls28-dev
  gobject-introspection libgirepository1.0-dev
"

# What the test suites add: independent TLS peers, the system TLS backend
# and libsoup (to test pinning in them), the binding runtimes, Vala, the
# API reference, the GTK example under Xvfb, the layout check.
PINTLS_TEST_PACKAGES="
  gnutls-bin openssl nginx-light
  glib-networking libsoup-3.0-dev
  python3 python3-gi gjs valac gi-docgen
  libgtk-4-dev xvfb xauth
  uncrustify
"

pintls_install_packages ()
{
  missing=""
  for package in "$@"; do
    if ! dpkg-query -W -f '${Status}\n' "$package" 2>/dev/null \
        | grep -q '^install ok installed$'; then
      missing="$missing $package"
    fi
  done
  [ -n "$missing" ] || return 0

  echo "Installing:$missing"
  if [ "$(id -u)" -eq 0 ]; then
    as_root=""
  elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
  else
    echo "These Debian packages are missing:$missing" >&2
    echo "Install them as root, or run this script as root." >&2
    exit 1
  fi
  $as_root apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q --no-install-recommends $missing
}

# Configures and builds the tree in $1 from the sources in $2, with the
# meson options that follow. An existing tree is reconfigured, so that
# packages installed since it was set up are found.
pintls_build ()
{
  builddir=$1
  srcdir=$2
  shift 2
  if [ -f "$builddir/build.ninja" ]; then
    meson setup --reconfigure "$builddir" "$srcdir" "$@"
  else
    meson setup "$builddir" "$srcdir" "$@"
  fi
  meson compile -C "$builddir"
}
