#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Pinned connections from Python against a local gnutls-serv echo server."""

import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

import gi

gi.require_version('PinTls', '1')
from gi.repository import Gio, GLib, PinTls  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from localserver import CERTS_DIR, LocalServer, free_port, spki_pin  # noqa: E402

TIMEOUT_SECONDS = 20
INTERMEDIATE_PIN = spki_pin(CERTS_DIR / 'intA.pem')


def run_in_main_loop(steps):
    """Runs a generator of asynchronous steps in a GLib.MainLoop.

    Each step yields a function that starts an asynchronous call with the
    GAsyncReadyCallback it is given; the generator then receives the
    GAsyncResult and calls the matching _finish(). What the generator returns
    is returned here, and what it raises is raised here.
    """
    loop = GLib.MainLoop.new(None, False)
    outcome = {}

    def advance(result):
        try:
            start = steps.send(result)
        except StopIteration as stop:
            outcome['value'] = stop.value
            loop.quit()
        except BaseException as error:  # noqa: B036 - re-raised below
            outcome['error'] = error
            loop.quit()
        else:
            start(lambda source, async_result, *data: advance(async_result))

    def timed_out():
        outcome['timed out'] = True
        outcome['error'] = AssertionError('the main loop did not finish in time')
        loop.quit()
        return GLib.SOURCE_REMOVE

    timeout_id = GLib.timeout_add_seconds(TIMEOUT_SECONDS, timed_out)
    GLib.idle_add(lambda: advance(None) or GLib.SOURCE_REMOVE)
    loop.run()
    if 'timed out' not in outcome:
        GLib.source_remove(timeout_id)
    if 'error' in outcome:
        raise outcome['error']
    return outcome.get('value')


class ConnectionTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = LocalServer('echo').start()
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        self.identity = Gio.NetworkAddress.parse(self.server.address, 0)
        self.right = PinTls.PinSet.new([self.server.right_pin])
        self.wrong = PinTls.PinSet.new([self.server.wrong_pin])

    def new_connection(self, pins):
        client = Gio.SocketClient()
        tcp = client.connect_to_host(self.server.address, 0, None)
        return PinTls.ClientConnection.new(tcp, self.identity, pins)

    def echo(self, connection, payload):
        connection.get_output_stream().write_all(payload, None)
        received = b''
        while len(received) < len(payload):
            chunk = connection.get_input_stream().read_bytes(4096, None).get_data()
            self.assertTrue(chunk, 'the server closed the connection')
            received += chunk
        return received

    def assertPinMismatch(self, error):
        self.assertIsInstance(error, GLib.Error)
        self.assertTrue(error.matches(PinTls.Error.quark(), PinTls.Error.PIN_MISMATCH),
                        f'expected a pin mismatch, got {error.domain} {error.code}: '
                        f'{error.message}')
        self.assertIn(self.server.right_pin, error.message)
        self.assertIn(self.server.wrong_pin, error.message)


class TestSyncConnection(ConnectionTestCase):
    def test_handshake_read_write(self):
        connection = self.new_connection(self.right)
        self.assertTrue(connection.handshake(None))
        self.assertEqual(self.echo(connection, b'ping\n'), b'ping\n')
        self.assertTrue(connection.close(None))

    def test_first_write_runs_the_handshake(self):
        connection = self.new_connection(self.right)
        self.assertEqual(self.echo(connection, b'no explicit handshake\n'),
                         b'no explicit handshake\n')
        self.assertEqual(connection.props.presented_pins[0], self.server.right_pin)

    def test_connect_helper(self):
        connection = PinTls.connect(self.server.address, 443, self.right, None)
        self.assertIsInstance(connection, PinTls.ClientConnection)
        self.assertEqual(self.echo(connection, b'helper\n'), b'helper\n')
        connection.close(None)

    def test_properties(self):
        connection = self.new_connection(self.right)
        self.assertIs(connection.get_pins(), self.right)
        self.assertIs(connection.props.pins, self.right)
        self.assertEqual(connection.get_mode(), PinTls.Mode.PIN_ONLY)
        # None in C; PyGObject 3.42 turns a NULL string array into [].
        self.assertFalse(connection.get_presented_pins())
        self.assertIsInstance(connection, Gio.TlsClientConnection)

        connection.handshake(None)
        self.assertEqual(connection.get_presented_pins(),
                         [self.server.right_pin, INTERMEDIATE_PIN])
        self.assertEqual(connection.props.presented_pins, connection.get_presented_pins())
        peer = connection.get_peer_certificate()
        self.assertIsNotNone(peer)
        self.assertEqual(PinTls.spki_pin_for_certificate(peer), self.server.right_pin)

    def test_backup_and_issuer_pins(self):
        pin_sets = {
            'the current pin beside a backup': [self.server.wrong_pin, self.server.right_pin],
            'the intermediate on the issuer path': [INTERMEDIATE_PIN],
        }
        for name, pins in pin_sets.items():
            with self.subTest(pins=name):
                connection = self.new_connection(PinTls.PinSet.new(pins))
                self.assertTrue(connection.handshake(None))
                connection.close(None)

    def test_certificate_pin_from_file(self):
        pins = PinTls.PinSet.new_from_file(str(CERTS_DIR / 'leaf1.pem'))
        connection = self.new_connection(pins)
        self.assertTrue(connection.handshake(None))

        pins = PinTls.PinSet.new_from_file(str(CERTS_DIR / 'leaf2.pem'))
        connection = self.new_connection(pins)
        with self.assertRaises(GLib.Error) as caught:
            connection.handshake(None)
        self.assertEqual(caught.exception.code, PinTls.Error.PIN_MISMATCH)

    def test_mismatch(self):
        connection = self.new_connection(self.wrong)
        with self.assertRaises(GLib.Error) as caught:
            connection.handshake(None)
        self.assertPinMismatch(caught.exception)
        # What the server presented stays readable after the failure.
        self.assertEqual(connection.get_presented_pins(),
                         [self.server.right_pin, INTERMEDIATE_PIN])

    def test_mismatch_before_any_byte_is_written(self):
        connection = self.new_connection(self.wrong)
        with self.assertRaises(GLib.Error) as caught:
            connection.get_output_stream().write_all(b'secret\n', None)
        self.assertPinMismatch(caught.exception)

    def test_pin_set_without_pins_is_refused(self):
        # PinTls.PinSet() bypasses the constructors, which refuse empty sets.
        connection = self.new_connection(PinTls.PinSet())
        with self.assertRaises(GLib.Error) as caught:
            connection.handshake(None)
        self.assertTrue(caught.exception.matches(PinTls.Error.quark(),
                                                 PinTls.Error.EMPTY_PIN_SET),
                        caught.exception.message)

    def construct(self, **properties):
        """Builds a connection with the plain constructor, without init()."""
        return PinTls.ClientConnection(server_identity=self.identity, **properties)

    def test_plain_constructor_enforces_pins(self):
        tcp = Gio.SocketClient().connect_to_host(self.server.address, 0, None)
        connection = self.construct(base_io_stream=tcp, pins=self.right)
        self.assertEqual(self.echo(connection, b'constructed\n'), b'constructed\n')
        self.assertTrue(connection.close(None))

        tcp = Gio.SocketClient().connect_to_host(self.server.address, 0, None)
        connection = self.construct(base_io_stream=tcp, pins=self.wrong)
        with self.assertRaises(GLib.Error) as caught:
            connection.handshake(None)
        self.assertPinMismatch(caught.exception)
        with self.assertRaises(GLib.Error) as caught:
            connection.get_output_stream().write_all(b'secret\n', None)
        self.assertPinMismatch(caught.exception)

    def test_plain_constructor_without_pins_fails_cleanly(self):
        tcp = Gio.SocketClient().connect_to_host(self.server.address, 0, None)
        connection = self.construct(base_io_stream=tcp)

        with self.assertRaises(GLib.Error) as caught:
            connection.init(None)
        self.assertTrue(caught.exception.matches(PinTls.Error.quark(),
                                                 PinTls.Error.EMPTY_PIN_SET),
                        caught.exception.message)
        operations = {
            'handshake': lambda: connection.handshake(None),
            'write': lambda: connection.get_output_stream().write_all(b'secret\n', None),
            'read': lambda: connection.get_input_stream().read_bytes(1, None),
            'nonblocking read':
                lambda: connection.get_input_stream().read_nonblocking(None),
        }
        for name, operation in operations.items():
            with self.subTest(operation=name), self.assertRaises(GLib.Error) as caught:
                operation()
            self.assertTrue(caught.exception.matches(PinTls.Error.quark(),
                                                     PinTls.Error.EMPTY_PIN_SET),
                            caught.exception.message)
        self.assertIn('could not be set up', caught.exception.message)

        def steps():
            result = yield lambda callback: connection.handshake_async(
                GLib.PRIORITY_DEFAULT, None, callback)
            with self.assertRaises(GLib.Error) as caught:
                connection.handshake_finish(result)
            return caught.exception
        error = run_in_main_loop(steps())
        self.assertTrue(error.matches(PinTls.Error.quark(), PinTls.Error.EMPTY_PIN_SET))

        self.assertTrue(connection.close(None))
        self.assertFalse(tcp.is_closed(), 'the base stream stays the caller\'s')
        tcp.close(None)

    def test_plain_constructor_without_base_stream_fails_cleanly(self):
        connection = self.construct(pins=self.right)
        with self.assertRaises(GLib.Error) as caught:
            connection.handshake(None)
        self.assertTrue(caught.exception.matches(Gio.io_error_quark(),
                                                 Gio.IOErrorEnum.INVALID_ARGUMENT),
                        caught.exception.message)
        self.assertTrue(connection.close(None))

    def test_mismatch_from_connect_helper(self):
        with self.assertRaises(GLib.Error) as caught:
            PinTls.connect(self.server.address, 443, self.wrong, None)
        self.assertPinMismatch(caught.exception)

    def test_accept_certificate_cannot_override_a_mismatch(self):
        connection = self.new_connection(self.wrong)
        connection.connect('accept-certificate', lambda *args: True)
        with self.assertRaises(GLib.Error) as caught:
            connection.handshake(None)
        self.assertPinMismatch(caught.exception)

    def test_issuer_pin_needs_the_server_name(self):
        # In PIN_ONLY mode a pinned intermediate vouches only for
        # certificates naming the server, and nothing can override that.
        for override in ('accept-certificate', 'validation-flags'):
            with self.subTest(override=override):
                tcp = Gio.SocketClient().connect_to_host(self.server.address, 0, None)
                identity = Gio.NetworkAddress.new('other.test', self.server.port)
                connection = PinTls.ClientConnection.new(
                    tcp, identity, PinTls.PinSet.new([INTERMEDIATE_PIN]))
                if override == 'accept-certificate':
                    connection.connect('accept-certificate', lambda *args: True)
                else:
                    connection.set_validation_flags(0)
                with self.assertRaises(GLib.Error) as caught:
                    connection.handshake(None)
                self.assertTrue(caught.exception.matches(Gio.tls_error_quark(),
                                                         Gio.TlsError.BAD_CERTIFICATE),
                                caught.exception.message)
                self.assertIn('other.test', caught.exception.message)

    def test_ca_and_pins_mode(self):
        connection = self.new_connection(self.right)
        connection.set_mode(PinTls.Mode.CA_AND_PINS)
        self.assertEqual(connection.props.mode, PinTls.Mode.CA_AND_PINS)
        connection.set_database(Gio.TlsFileDatabase.new(str(CERTS_DIR / 'rootA.pem')))
        self.assertTrue(connection.handshake(None))

        # The system store does not know the test CA: a TLS error, not a pin one.
        connection = self.new_connection(self.right)
        connection.set_mode(PinTls.Mode.CA_AND_PINS)
        with self.assertRaises(GLib.Error) as caught:
            connection.handshake(None)
        self.assertTrue(caught.exception.matches(Gio.tls_error_quark(),
                                                 Gio.TlsError.BAD_CERTIFICATE))

    def test_cancelled(self):
        cancellable = Gio.Cancellable()
        cancellable.cancel()
        connection = self.new_connection(self.right)
        with self.assertRaises(GLib.Error) as caught:
            connection.handshake(cancellable)
        self.assertTrue(caught.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))

    def test_fetch_server_chain(self):
        # Called repeatedly: each call hands the array and its certificates over.
        for _ in range(3):
            chain = PinTls.fetch_server_chain(self.server.address, 443, None, None)
            self.assertEqual(len(chain), 2)
            self.assertEqual(PinTls.spki_pin_for_der(chain[0]), self.server.right_pin)
            self.assertEqual(PinTls.spki_pin_for_der(chain[1]), INTERMEDIATE_PIN)
            self.assertEqual(PinTls.find_issuer_path(chain), [0, 1])


class TestMainLoopConnection(ConnectionTestCase):
    def connect_async(self, pins):
        client = Gio.SocketClient()
        result = yield lambda done: client.connect_to_host_async(
            self.server.address, 0, None, done)
        tcp = client.connect_to_host_finish(result)
        return PinTls.ClientConnection.new(tcp, self.identity, pins)

    def test_async_handshake_read_write(self):
        def steps():
            connection = yield from self.connect_async(self.right)
            result = yield lambda done: connection.handshake_async(
                GLib.PRIORITY_DEFAULT, None, done)
            self.assertTrue(connection.handshake_finish(result))

            payload = GLib.Bytes.new(b'asynchronous ping\n')
            output = connection.get_output_stream()
            result = yield lambda done: output.write_bytes_async(
                payload, GLib.PRIORITY_DEFAULT, None, done)
            self.assertEqual(output.write_bytes_finish(result), payload.get_size())

            received = b''
            while len(received) < payload.get_size():
                input_stream = connection.get_input_stream()
                result = yield lambda done: input_stream.read_bytes_async(
                    4096, GLib.PRIORITY_DEFAULT, None, done)
                chunk = input_stream.read_bytes_finish(result).get_data()
                self.assertTrue(chunk, 'the server closed the connection')
                received += chunk

            result = yield lambda done: connection.close_async(
                GLib.PRIORITY_DEFAULT, None, done)
            self.assertTrue(connection.close_finish(result))
            return received

        self.assertEqual(run_in_main_loop(steps()), b'asynchronous ping\n')

    def test_async_mismatch(self):
        def steps():
            connection = yield from self.connect_async(self.wrong)
            result = yield lambda done: connection.handshake_async(
                GLib.PRIORITY_DEFAULT, None, done)
            try:
                connection.handshake_finish(result)
            except GLib.Error as error:
                return error
            self.fail('the handshake succeeded with the wrong pin')

        self.assertPinMismatch(run_in_main_loop(steps()))

    def test_async_lines_through_a_data_stream(self):
        lines = ['first line', 'second line', 'third line']

        def steps():
            connection = yield from self.connect_async(self.right)
            data = ''.join(f'{line}\n' for line in lines).encode()
            output = connection.get_output_stream()
            result = yield lambda done: output.write_all_async(
                data, GLib.PRIORITY_DEFAULT, None, done)
            ok, written = output.write_all_finish(result)
            self.assertTrue(ok)
            self.assertEqual(written, len(data))

            reader = Gio.DataInputStream.new(connection.get_input_stream())
            received = []
            for _ in lines:
                result = yield lambda done: reader.read_line_async(
                    GLib.PRIORITY_DEFAULT, None, done)
                line, _length = reader.read_line_finish_utf8(result)
                received.append(line)
            return received

        self.assertEqual(run_in_main_loop(steps()), lines)

    def test_pollable_source(self):
        connection = self.new_connection(self.right)
        connection.handshake(None)
        input_stream = connection.get_input_stream()
        self.assertIsInstance(input_stream, Gio.PollableInputStream)
        self.assertTrue(input_stream.can_poll())

        loop = GLib.MainLoop.new(None, False)
        received = []

        def readable(*args):
            received.append(input_stream.read_bytes(4096, None).get_data())
            loop.quit()
            return GLib.SOURCE_REMOVE

        source = input_stream.create_source(None)
        source.set_callback(readable)
        source.attach(None)
        timeout_id = GLib.timeout_add_seconds(TIMEOUT_SECONDS, loop.quit)
        connection.get_output_stream().write_all(b'poll me\n', None)
        loop.run()
        GLib.source_remove(timeout_id)
        source.destroy()
        self.assertEqual(received, [b'poll me\n'])

    def test_accept_certificate_runs_on_the_main_thread(self):
        calls = []

        def accept(connection, certificate, errors):
            calls.append((threading.current_thread() is threading.main_thread(), errors))
            return True

        def steps():
            connection = yield from self.connect_async(self.right)
            connection.set_mode(PinTls.Mode.CA_AND_PINS)
            connection.connect('accept-certificate', accept)
            result = yield lambda done: connection.handshake_async(
                GLib.PRIORITY_DEFAULT, None, done)
            return connection.handshake_finish(result)

        self.assertTrue(run_in_main_loop(steps()))
        self.assertEqual(calls, [(True, Gio.TlsCertificateFlags.UNKNOWN_CA)])


class PlaintextServer:
    """openssl s_server, which prints the application data it receives.

    It presents leaf1, and is an independent peer: not GnuTLS, not pintls.
    """

    ALERT = b'alert bad certificate'

    def __init__(self, tls_option):
        self.tls_option = tls_option
        self.process = None
        self.port = None
        self.log = None

    def __enter__(self):
        openssl = shutil.which('openssl')
        if openssl is None:
            raise unittest.SkipTest('openssl is not installed')
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix='pintls-openssl-')
        # Its standard input stays open: s_server stops at its end.
        self.process = subprocess.Popen(
            [openssl, 's_server', '-accept', f'127.0.0.1:{self.port}', self.tls_option,
             '-cert', str(CERTS_DIR / 'leaf1.pem'), '-key', str(CERTS_DIR / 'leaf1.key'),
             '-quiet'],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                Gio.SocketClient().connect_to_host(self.address, 0, None).close(None)
                return self
            except GLib.Error:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError('openssl s_server did not start')

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.communicate(timeout=TIMEOUT_SECONDS)
        self.log.close()

    @property
    def address(self):
        return f'127.0.0.1:{self.port}'

    def wait_for_output(self, text):
        """What the server printed, once it holds @text or after a timeout."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            output = Path(self.log.name).read_bytes()
            if text in output:
                break
            time.sleep(0.05)
        return output


class TestNothingBeforeTheVerdict(unittest.TestCase):
    """No application byte reaches a server whose pins do not match."""

    SECRET = b'Authorization: SECRET\n'
    TLS_OPTIONS = {'1.2': '-tls1_2', '1.3': '-tls1_3'}

    def write_sync(self, connection):
        connection.get_output_stream().write_all(self.SECRET, None)

    def write_async(self, connection):
        def steps():
            output = connection.get_output_stream()
            result = yield lambda done: output.write_bytes_async(
                GLib.Bytes.new(self.SECRET), GLib.PRIORITY_DEFAULT, None, done)
            output.write_bytes_finish(result)

        run_in_main_loop(steps())

    def write_nonblocking(self, connection):
        output = connection.get_output_stream()
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                output.write_nonblocking(self.SECRET, None)
                return
            except GLib.Error as error:
                if not error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.WOULD_BLOCK):
                    raise
            GLib.MainContext.default().iteration(True)
        self.fail('the non-blocking write never ended')

    def connect(self, server, pin):
        tcp = Gio.SocketClient().connect_to_host(server.address, 0, None)
        return PinTls.ClientConnection.new(
            tcp, Gio.NetworkAddress.parse(server.address, 0),
            PinTls.PinSet.new([spki_pin(CERTS_DIR / pin)]))

    def test_mismatch(self):
        for version, option in self.TLS_OPTIONS.items():
            for write in (self.write_sync, self.write_async, self.write_nonblocking):
                with self.subTest(version=version, write=write.__name__), \
                        PlaintextServer(option) as server:
                    # Kept open until the server has read the alert: closing
                    # it with the server's handshake unread resets the TCP
                    # connection, and the server may then never see it.
                    connection = self.connect(server, 'leaf2.pem')
                    with self.assertRaises(GLib.Error) as caught:
                        write(connection)
                    self.assertTrue(caught.exception.matches(
                        PinTls.Error.quark(), PinTls.Error.PIN_MISMATCH),
                        caught.exception.message)
                    # Data sent before the alert would be printed before it.
                    output = server.wait_for_output(server.ALERT)
                    self.assertIn(server.ALERT, output)
                    self.assertNotIn(b'SECRET', output)
                    connection.close(None)

    def test_match(self):
        for version, option in self.TLS_OPTIONS.items():
            for write in (self.write_sync, self.write_async, self.write_nonblocking):
                with self.subTest(version=version, write=write.__name__), \
                        PlaintextServer(option) as server:
                    connection = self.connect(server, 'leaf1.pem')
                    write(connection)
                    connection.close(None)
                    self.assertIn(self.SECRET, server.wait_for_output(self.SECRET))


if __name__ == '__main__':
    unittest.main(verbosity=2)
