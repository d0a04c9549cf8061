#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fetches a page over a pinned TLS connection.

    fetch.py HOST:PORT PIN [PIN...]

Prints the body of the server's answer to "GET /". When the server presents
none of the pinned keys, this copy of the program is outdated: it tells the
user to update and exits with status 3. As with the pintls tool, status 2
means bad arguments or pins and 1 any other failure.
"""

import sys

import gi

gi.require_version('PinTls', '1')
from gi.repository import Gio, GLib, PinTls  # noqa: E402

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UPDATE_REQUIRED = 3


def fetch_page(address, pins):
    connection = PinTls.connect(address, 443, pins, None)
    request = f'GET / HTTP/1.0\r\nHost: {address}\r\n\r\n'.encode()
    connection.get_output_stream().write_all(request, None)

    page = Gio.MemoryOutputStream.new_resizable()
    page.splice(connection.get_input_stream(), Gio.OutputStreamSpliceFlags.CLOSE_TARGET, None)
    return page.steal_as_bytes().get_data()


def main(argv):
    if len(argv) < 3:
        print(f'Usage: {argv[0]} HOST:PORT PIN [PIN...]', file=sys.stderr)
        return EXIT_USAGE

    address = argv[1]
    try:
        pins = PinTls.PinSet.new(argv[2:])
    except GLib.Error as error:
        print(f'Bad pin configuration: {error.message}', file=sys.stderr)
        return EXIT_USAGE

    try:
        response = fetch_page(address, pins)
    except GLib.Error as error:
        if error.matches(PinTls.Error.quark(), PinTls.Error.PIN_MISMATCH):
            print('The server has a certificate this version does not know.\n'
                  'Update required: please install the latest version.\n'
                  f'({error.message})', file=sys.stderr)
            return EXIT_UPDATE_REQUIRED
        print(f'Could not fetch the page from {address}: {error.message}', file=sys.stderr)
        return EXIT_FAILURE

    head, separator, body = response.partition(b'\r\n\r\n')
    if not separator or not head.startswith(b'HTTP/1.') or head[8:12] != b' 200':
        print(f'Could not fetch the page from {address}: the server did not send it',
              file=sys.stderr)
        return EXIT_FAILURE

    sys.stdout.buffer.write(body)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
