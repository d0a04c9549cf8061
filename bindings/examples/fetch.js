#!/usr/bin/env -S gjs -m
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Fetches a page over a pinned TLS connection, asynchronously.
//
//   gjs -m fetch.js HOST:PORT PIN [PIN...]
//
// Prints the body of the server's answer to "GET /". When the server
// presents none of the pinned keys, this copy of the program is outdated:
// it tells the user to update and exits with status 3. As with the pintls
// tool, status 2 means bad arguments or pins and 1 any other failure.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import PinTls from 'gi://PinTls?version=1';
import System from 'system';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_UPDATE_REQUIRED = 3;

Gio._promisify(Gio.SocketClient.prototype, 'connect_to_host_async');
Gio._promisify(Gio.TlsConnection.prototype, 'handshake_async');
Gio._promisify(Gio.OutputStream.prototype, 'write_bytes_async');
Gio._promisify(Gio.OutputStream.prototype, 'splice_async');

async function fetchPage(address, pins) {
    const tcp = await new Gio.SocketClient().connect_to_host_async(address, 443, null);
    const identity = Gio.NetworkAddress.parse(address, 443);
    const connection = PinTls.ClientConnection.new(tcp, identity, pins);
    await connection.handshake_async(GLib.PRIORITY_DEFAULT, null);

    const request = `GET / HTTP/1.0\r\nHost: ${address}\r\n\r\n`;
    await connection.get_output_stream().write_bytes_async(
        new GLib.Bytes(new TextEncoder().encode(request)), GLib.PRIORITY_DEFAULT, null);

    const page = Gio.MemoryOutputStream.new_resizable();
    await page.splice_async(connection.get_input_stream(),
        Gio.OutputStreamSpliceFlags.CLOSE_TARGET, GLib.PRIORITY_DEFAULT, null);
    return new TextDecoder().decode(page.steal_as_bytes().toArray());
}

async function main([address, ...pinTexts]) {
    if (!address || pinTexts.length === 0) {
        printerr('Usage: fetch.js HOST:PORT PIN [PIN...]');
        return EXIT_USAGE;
    }

    let pins;
    try {
        pins = PinTls.PinSet.new(pinTexts);
    } catch (error) {
        printerr(`Bad pin configuration: ${error.message}`);
        return EXIT_USAGE;
    }

    let response;
    try {
        response = await fetchPage(address, pins);
    } catch (error) {
        if (error.matches?.(PinTls.Error, PinTls.Error.PIN_MISMATCH)) {
            printerr('The server has a certificate this version does not know.\n' +
                'Update required: please install the latest version.\n' +
                `(${error.message})`);
            return EXIT_UPDATE_REQUIRED;
        }
        printerr(`Could not fetch the page from ${address}: ${error.message}`);
        return EXIT_FAILURE;
    }

    const separator = response.indexOf('\r\n\r\n');
    if (separator < 0 || !/^HTTP\/1\.. 200/.test(response)) {
        printerr(`Could not fetch the page from ${address}: the server did not send it`);
        return EXIT_FAILURE;
    }
    print(response.slice(separator + 4).replace(/\n$/, ''));
    return 0;
}

System.exit(await main(ARGV));
