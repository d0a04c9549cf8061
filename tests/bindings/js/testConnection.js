// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Pinned connections from GJS against a local gnutls-serv echo server:
// synchronous calls, async/await with Gio._promisify, and callbacks from an
// explicit GLib.MainLoop.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import PinTls from 'gi://PinTls?version=1';

import {assert, assertEqual, assertGError, assertRejects, assertThrows, env, run, test}
    from './harness.js';

Gio._promisify(Gio.SocketClient.prototype, 'connect_to_host_async');
Gio._promisify(Gio.TlsConnection.prototype, 'handshake_async');
Gio._promisify(Gio.OutputStream.prototype, 'write_bytes_async');
Gio._promisify(Gio.InputStream.prototype, 'read_bytes_async');
Gio._promisify(Gio.DataInputStream.prototype, 'read_line_async', 'read_line_finish_utf8');
Gio._promisify(Gio.IOStream.prototype, 'close_async');
Gio._promisify(PinTls, 'connect_async', 'connect_finish');

const address = env('PINTLS_TEST_ADDRESS');
const rightPin = env('PINTLS_TEST_RIGHT_PIN');
const wrongPin = env('PINTLS_TEST_WRONG_PIN');
const certsDir = env('PINTLS_TEST_CERTS_DIR');
const identity = Gio.NetworkAddress.parse(address, 0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const intermediate = Gio.TlsCertificate.new_from_file(
    GLib.build_filenamev([certsDir, 'intA.pem']));
const intermediatePin = PinTls.spki_pin_for_certificate(intermediate);

function pinSet(...pins) {
    return PinTls.PinSet.new(pins);
}

function assertPinMismatch(error) {
    assertGError(error, PinTls.Error, PinTls.Error.PIN_MISMATCH);
    assert(error.message.includes(rightPin), 'the message lists the presented pin');
    assert(error.message.includes(wrongPin), 'the message lists the configured pin');
}

function connectSync(pins) {
    const tcp = new Gio.SocketClient().connect_to_host(address, 0, null);
    return PinTls.ClientConnection.new(tcp, identity, pins);
}

async function connectAsync(pins) {
    const tcp = await new Gio.SocketClient().connect_to_host_async(address, 0, null);
    return PinTls.ClientConnection.new(tcp, identity, pins);
}

async function echoAsync(connection, text) {
    const payload = encoder.encode(text);
    const written = await connection.get_output_stream().write_bytes_async(
        new GLib.Bytes(payload), GLib.PRIORITY_DEFAULT, null);
    assertEqual(written, payload.length, 'bytes written');

    let received = '';
    while (received.length < text.length) {
        const chunk = await connection.get_input_stream().read_bytes_async(
            4096, GLib.PRIORITY_DEFAULT, null);
        assert(chunk.get_size() > 0, 'the server closed the connection');
        received += decoder.decode(chunk.toArray());
    }
    return received;
}

test('synchronous handshake, write and read', () => {
    const connection = connectSync(pinSet(rightPin));
    assert(connection.handshake(null), 'handshake');
    connection.get_output_stream().write_all(encoder.encode('ping\n'), null);
    const reply = connection.get_input_stream().read_bytes(4096, null);
    assertEqual(decoder.decode(reply.toArray()), 'ping\n', 'echo');
    assert(connection.close(null), 'close');
});

test('the connect helper', async () => {
    const connection = PinTls.connect(address, 443, pinSet(rightPin), null);
    assert(connection instanceof PinTls.ClientConnection, 'a PinTls.ClientConnection');
    assertEqual(await echoAsync(connection, 'helper\n'), 'helper\n', 'echo');
});

test('the asynchronous connect helper, awaited', async () => {
    const connection = await PinTls.connect_async(address, 443, pinSet(rightPin), null);
    assert(connection instanceof PinTls.ClientConnection, 'a PinTls.ClientConnection');
    assertEqual(connection.presented_pins[0], rightPin, 'handshake done');
    assertEqual(await echoAsync(connection, 'async helper\n'), 'async helper\n', 'echo');

    assertPinMismatch(await assertRejects(
        PinTls.connect_async(address, 443, pinSet(wrongPin), null),
        PinTls.Error, PinTls.Error.PIN_MISMATCH));

    const cancellable = new Gio.Cancellable();
    const cancelled = PinTls.connect_async(address, 443, pinSet(rightPin), cancellable);
    cancellable.cancel();
    await assertRejects(cancelled, Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED);
});

test('session resumption, asked for', async () => {
    const resumed = [];
    for (let i = 0; i < 2; i++) {
        const connection = await connectAsync(pinSet(rightPin));
        assertEqual(connection.session_resumption_enabled, false, 'off by default');
        connection.session_resumption_enabled = true;
        await connection.handshake_async(GLib.PRIORITY_DEFAULT, null);
        // A TLS 1.3 ticket comes after the handshake, with the first read.
        assertEqual(await echoAsync(connection, 'resume\n'), 'resume\n', 'echo');
        resumed.push(connection.session_resumed);
        assertEqual(connection.presented_pins[0], rightPin, 'the leaf pin');
        await connection.close_async(GLib.PRIORITY_DEFAULT, null);
    }
    assertEqual(resumed, [false, true], 'resumed');
});

test('properties', async () => {
    const pins = pinSet(rightPin);
    const connection = await connectAsync(pins);
    assert(connection.pins === pins, 'pins');
    assertEqual(connection.mode, PinTls.Mode.PIN_ONLY, 'mode');
    assertEqual(connection.get_presented_pins(), null, 'presented pins before the handshake');
    assert(connection instanceof Gio.TlsClientConnection, 'a Gio.TlsClientConnection');

    await connection.handshake_async(GLib.PRIORITY_DEFAULT, null);
    assertEqual(connection.presented_pins, [rightPin, intermediatePin], 'presented pins');
    assertEqual(PinTls.spki_pin_for_certificate(connection.get_peer_certificate()), rightPin,
        'peer certificate');
});

test('async handshake, write and read', async () => {
    const connection = await connectAsync(pinSet(rightPin));
    assert(await connection.handshake_async(GLib.PRIORITY_DEFAULT, null), 'handshake');
    assertEqual(await echoAsync(connection, 'asynchronous ping\n'), 'asynchronous ping\n',
        'echo');
    assert(await connection.close_async(GLib.PRIORITY_DEFAULT, null), 'close');
});

test('the first write runs the handshake', async () => {
    const connection = await connectAsync(pinSet(rightPin));
    assertEqual(await echoAsync(connection, 'no handshake\n'), 'no handshake\n', 'echo');
    assertEqual(connection.presented_pins[0], rightPin, 'the leaf pin');
});

test('lines through a data stream', async () => {
    const lines = ['first line', 'second line', 'third line'];
    const connection = await connectAsync(pinSet(rightPin));
    await connection.get_output_stream().write_bytes_async(
        new GLib.Bytes(encoder.encode(lines.map(line => `${line}\n`).join(''))),
        GLib.PRIORITY_DEFAULT, null);

    const reader = Gio.DataInputStream.new(connection.get_input_stream());
    const received = [];
    for (let i = 0; i < lines.length; i++) {
        const [line] = await reader.read_line_async(GLib.PRIORITY_DEFAULT, null);
        received.push(line);
    }
    assertEqual(received, lines, 'lines');
});

test('a backup pin or the intermediate pin is enough', async () => {
    for (const pins of [pinSet(wrongPin, rightPin), pinSet(intermediatePin)]) {
        const connection = await connectAsync(pins);
        assert(await connection.handshake_async(GLib.PRIORITY_DEFAULT, null), 'handshake');
    }
});

test('async mismatch', async () => {
    const connection = await connectAsync(pinSet(wrongPin));
    assertPinMismatch(await assertRejects(
        connection.handshake_async(GLib.PRIORITY_DEFAULT, null),
        PinTls.Error, PinTls.Error.PIN_MISMATCH));
    assertEqual(connection.presented_pins, [rightPin, intermediatePin],
        'presented pins after the failure');
});

test('mismatch before any byte is written', async () => {
    const connection = await connectAsync(pinSet(wrongPin));
    assertPinMismatch(await assertRejects(
        connection.get_output_stream().write_bytes_async(
            new GLib.Bytes(encoder.encode('secret\n')), GLib.PRIORITY_DEFAULT, null),
        PinTls.Error, PinTls.Error.PIN_MISMATCH));
});

test('synchronous mismatch', () => {
    assertPinMismatch(assertThrows(() => connectSync(pinSet(wrongPin)).handshake(null),
        PinTls.Error, PinTls.Error.PIN_MISMATCH));
    assertPinMismatch(assertThrows(() => PinTls.connect(address, 443, pinSet(wrongPin), null),
        PinTls.Error, PinTls.Error.PIN_MISMATCH));
});

test('the plain constructor makes a connection that enforces its pins', async () => {
    const construct = async pins => new PinTls.ClientConnection({
        base_io_stream: await new Gio.SocketClient().connect_to_host_async(address, 0, null),
        server_identity: identity,
        pins,
    });

    const connection = await construct(pinSet(rightPin));
    assertEqual(await echoAsync(connection, 'constructed\n'), 'constructed\n', 'echo');
    await connection.close_async(GLib.PRIORITY_DEFAULT, null);

    const refused = await construct(pinSet(wrongPin));
    assertPinMismatch(await assertRejects(
        refused.handshake_async(GLib.PRIORITY_DEFAULT, null),
        PinTls.Error, PinTls.Error.PIN_MISMATCH));
    assertPinMismatch(assertThrows(
        () => refused.get_output_stream().write_all(encoder.encode('secret\n'), null),
        PinTls.Error, PinTls.Error.PIN_MISMATCH));
});

test('the plain constructor without pins fails cleanly', async () => {
    const tcp = await new Gio.SocketClient().connect_to_host_async(address, 0, null);
    const connection = new PinTls.ClientConnection({
        base_io_stream: tcp,
        server_identity: identity,
    });

    assertThrows(() => connection.init(null), PinTls.Error, PinTls.Error.EMPTY_PIN_SET);
    const error = assertThrows(() => connection.handshake(null),
        PinTls.Error, PinTls.Error.EMPTY_PIN_SET);
    assert(error.message.includes('could not be set up'), error.message);
    await assertRejects(connection.handshake_async(GLib.PRIORITY_DEFAULT, null),
        PinTls.Error, PinTls.Error.EMPTY_PIN_SET);
    await assertRejects(
        connection.get_output_stream().write_bytes_async(
            new GLib.Bytes(encoder.encode('secret\n')), GLib.PRIORITY_DEFAULT, null),
        PinTls.Error, PinTls.Error.EMPTY_PIN_SET);
    await assertRejects(
        connection.get_input_stream().read_bytes_async(1, GLib.PRIORITY_DEFAULT, null),
        PinTls.Error, PinTls.Error.EMPTY_PIN_SET);

    assert(await connection.close_async(GLib.PRIORITY_DEFAULT, null), 'close');
    assert(!tcp.is_closed(), 'the base stream stays the caller\'s');
    tcp.close(null);
});

test('a pin set made without pins is refused', () => {
    // new PinTls.PinSet() bypasses the constructors, which refuse empty sets.
    assertThrows(() => connectSync(new PinTls.PinSet()).handshake(null),
        PinTls.Error, PinTls.Error.EMPTY_PIN_SET);
});

test('accept-certificate runs on the main thread and cannot override a mismatch', async () => {
    const errors = [];
    const accept = (connection, certificate, flags) => {
        errors.push(flags);
        return true;
    };

    // In CA_AND_PINS mode the handler may accept an unknown CA. GJS blocks
    // callbacks from other threads, so reaching it proves the thread.
    const trusted = await connectAsync(pinSet(rightPin));
    trusted.mode = PinTls.Mode.CA_AND_PINS;
    trusted.connect('accept-certificate', accept);
    assert(await trusted.handshake_async(GLib.PRIORITY_DEFAULT, null), 'handshake');
    assertEqual(errors, [Gio.TlsCertificateFlags.UNKNOWN_CA], 'certificate errors');

    const outdated = await connectAsync(pinSet(wrongPin));
    outdated.connect('accept-certificate', accept);
    await assertRejects(outdated.handshake_async(GLib.PRIORITY_DEFAULT, null),
        PinTls.Error, PinTls.Error.PIN_MISMATCH);
});

test('CA_AND_PINS mode with a certificate authority file', async () => {
    const connection = await connectAsync(pinSet(rightPin));
    connection.mode = PinTls.Mode.CA_AND_PINS;
    connection.database = Gio.TlsFileDatabase.new(GLib.build_filenamev([certsDir, 'rootA.pem']));
    assert(await connection.handshake_async(GLib.PRIORITY_DEFAULT, null), 'handshake');

    const untrusted = await connectAsync(pinSet(rightPin));
    untrusted.mode = PinTls.Mode.CA_AND_PINS;
    await assertRejects(untrusted.handshake_async(GLib.PRIORITY_DEFAULT, null),
        Gio.TlsError, Gio.TlsError.BAD_CERTIFICATE);
});

test('cancelled handshake', async () => {
    const cancellable = new Gio.Cancellable();
    const connection = await connectAsync(pinSet(rightPin));
    const handshake = connection.handshake_async(GLib.PRIORITY_DEFAULT, cancellable);
    cancellable.cancel();
    await assertRejects(handshake, Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED);
});

test('callbacks from an explicit GLib.MainLoop', () => {
    const loop = new GLib.MainLoop(null, false);
    const steps = [];
    let failure = null;
    let connection = null;

    const fail = error => {
        failure = error;
        loop.quit();
    };
    const guard = step => (source, result) => {
        try {
            step(source, result);
        } catch (error) {
            fail(error);
        }
    };

    const client = new Gio.SocketClient();
    client.connect_to_host_async(address, 0, null, guard((source, result) => {
        connection = PinTls.ClientConnection.new(
            client.connect_to_host_finish(result), identity, pinSet(rightPin));
        steps.push('connected');
        connection.handshake_async(GLib.PRIORITY_DEFAULT, null, guard((_c, handshake) => {
            connection.handshake_finish(handshake);
            steps.push('handshaken');

            // Wait for the reply with a pollable source, as a GTK widget would.
            const input = connection.get_input_stream();
            const source = input.create_source(null);
            source.set_callback(() => {
                steps.push(decoder.decode(input.read_bytes(4096, null).toArray()));
                loop.quit();
                return GLib.SOURCE_REMOVE;
            });
            source.attach(null);
            connection.get_output_stream().write_all(encoder.encode('from the loop\n'), null);
        }));
    }));

    let timeoutId = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 15, () => {
        timeoutId = 0;
        fail(new Error('the main loop did not finish in time'));
        return GLib.SOURCE_REMOVE;
    });
    loop.run();
    if (timeoutId)
        GLib.source_remove(timeoutId);
    if (failure !== null)
        throw failure;
    assertEqual(steps, ['connected', 'handshaken', 'from the loop\n'], 'steps');
});

// openssl s_server prints the application data it receives: an
// independent peer that shows whether anything left before the verdict.
function freePort() {
    const socket = Gio.Socket.new(Gio.SocketFamily.IPV4, Gio.SocketType.STREAM,
        Gio.SocketProtocol.TCP);
    socket.bind(Gio.InetSocketAddress.new_from_string('127.0.0.1', 0), false);
    const port = socket.get_local_address().get_port();
    socket.close();
    return port;
}

function sleep(milliseconds) {
    return new Promise(resolve => {
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, milliseconds, () => {
            resolve();
            return GLib.SOURCE_REMOVE;
        });
    });
}

async function startPlaintextServer(tlsOption) {
    const port = freePort();
    const [logFile] = Gio.File.new_tmp('pintls-openssl-XXXXXX.log');
    const launcher = new Gio.SubprocessLauncher({
        flags: Gio.SubprocessFlags.STDIN_PIPE | Gio.SubprocessFlags.STDERR_MERGE,
    });
    launcher.set_stdout_file_path(logFile.get_path());
    const process = launcher.spawnv(['openssl', 's_server', '-accept', `127.0.0.1:${port}`,
        tlsOption, '-cert', GLib.build_filenamev([certsDir, 'leaf1.pem']),
        '-key', GLib.build_filenamev([certsDir, 'leaf1.key']), '-quiet']);
    const server = {
        address: `127.0.0.1:${port}`,
        output: () => {
            const [, contents] = logFile.load_contents(null);
            return decoder.decode(contents);
        },
        async waitForOutput(text) {
            for (let i = 0; i < 200 && !server.output().includes(text); i++)
                await sleep(50);
            return server.output();
        },
        stop() {
            process.force_exit();
            process.wait(null);
            logFile.delete(null);
        },
    };
    for (let i = 0; i < 200; i++) {
        try {
            (await new Gio.SocketClient().connect_to_host_async(server.address, 0, null))
                .close(null);
            return server;
        } catch (error) {
            await sleep(50);
        }
    }
    server.stop();
    throw new Error('openssl s_server did not start');
}

test('nothing reaches a mismatched server, on TLS 1.2 and 1.3', async () => {
    const secret = 'Authorization: SECRET\n';
    const leaf2Pin = PinTls.spki_pin_for_certificate(Gio.TlsCertificate.new_from_file(
        GLib.build_filenamev([certsDir, 'leaf2.pem'])));
    for (const tlsOption of ['-tls1_2', '-tls1_3']) {
        for (const [pins, pinned] of [[pinSet(leaf2Pin), false], [pinSet(rightPin), true]]) {
            const server = await startPlaintextServer(tlsOption);
            try {
                const tcp = await new Gio.SocketClient().connect_to_host_async(
                    server.address, 0, null);
                const connection = PinTls.ClientConnection.new(
                    tcp, Gio.NetworkAddress.parse(server.address, 0), pins);
                const write = connection.get_output_stream().write_bytes_async(
                    new GLib.Bytes(encoder.encode(secret)), GLib.PRIORITY_DEFAULT, null);
                if (pinned) {
                    await write;
                    assert((await server.waitForOutput(secret)).includes(secret),
                        `${tlsOption}: the pinned server got the data`);
                } else {
                    await assertRejects(write, PinTls.Error, PinTls.Error.PIN_MISMATCH);
                    // Data sent before the alert would be printed before it.
                    const output = await server.waitForOutput('alert bad certificate');
                    assert(output.includes('alert bad certificate'),
                        `${tlsOption}: the server got the alert: ${output}`);
                    assert(!output.includes('SECRET'), `${tlsOption}: no data leaked`);
                }
                connection.close(null);
            } finally {
                server.stop();
            }
        }
    }
});

test('fetch the server chain to learn its pins', () => {
    for (let i = 0; i < 3; i++) {
        const chain = PinTls.fetch_server_chain(address, 443, null, null);
        assertEqual(chain.length, 2, 'chain length');
        assertEqual(PinTls.spki_pin_for_der(chain[0]), rightPin, 'leaf pin');
        assertEqual(PinTls.spki_pin_for_der(chain[1]), intermediatePin, 'intermediate pin');
    }
});

await run();
