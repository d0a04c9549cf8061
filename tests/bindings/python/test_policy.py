#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Pin policies from Python: files, lookups, lint, reports, and a
Gio.SocketClient armed with a policy against a local gnutls-serv."""

import os
import sys
import tempfile
import unittest
from pathlib import Path

import gi

gi.require_version('PinTls', '1')
from gi.repository import Gio, GLib, GObject, PinTls  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from localserver import CERTS_DIR, DATA_DIR, LocalServer, spki_pin  # noqa: E402

LEAF1_PIN = spki_pin(CERTS_DIR / 'leaf1.pem')
LEAF3_PIN = spki_pin(CERTS_DIR / 'leaf3.pem')
LEAF4_PIN = spki_pin(CERTS_DIR / 'leaf4.pem')
EXAMPLE = DATA_DIR / 'policy.example.ini'


def write_policy(text):
    handle, path = tempfile.mkstemp(prefix='pintls-policy-', suffix='.ini')
    with os.fdopen(handle, 'w') as policy_file:
        policy_file.write(text)
    return path


class PolicyTestCase(unittest.TestCase):
    def assertPinTlsError(self, error, code):
        self.assertIsInstance(error, GLib.Error)
        self.assertTrue(error.matches(PinTls.Error.quark(), code),
                        f'expected {code}, got {error.domain} {error.code}: {error.message}')


class TestPolicyFiles(PolicyTestCase):
    def test_example(self):
        policy = PinTls.Policy.new_from_file(str(EXAMPLE))
        patterns = [entry.get_pattern() for entry in policy.get_entries()]
        self.assertEqual(patterns, ['host.test', 'example.test', '*.cdn.example.test',
                                    '127.0.0.1'])
        self.assertTrue(policy.props.refuse_unpinned)

        entry = policy.lookup('A.CDN.Example.Test.')
        self.assertEqual(entry.props.pattern, '*.cdn.example.test')
        self.assertTrue(entry.props.report_only)
        self.assertEqual(entry.get_mode(), PinTls.Mode.CA_AND_PINS)

        address = policy.lookup('127.0.0.1')
        self.assertEqual(address.props.mode, PinTls.Mode.PIN_ONLY)
        expires = address.get_expires()
        self.assertIsInstance(expires, GLib.DateTime)
        self.assertEqual((expires.get_year(), expires.get_month(), expires.get_day_of_month(),
                          expires.get_hour()), (2099, 12, 31, 0))

    def test_lookup_by_labels(self):
        policy = PinTls.Policy.new_from_file(str(EXAMPLE))
        self.assertEqual(policy.lookup('a.b.example.test').get_pattern(), 'example.test')
        for host in ('notexample.test', 'www.host.test', 'cdn.example.test.evil'):
            with self.subTest(host=host), self.assertRaises(GLib.Error) as caught:
                policy.lookup(host)
            self.assertPinTlsError(caught.exception, PinTls.Error.HOST_NOT_PINNED)

        policy.set_refuse_unpinned(False)
        self.assertIsNone(policy.lookup('notexample.test'))

    def test_errors_name_file_group_and_key(self):
        path = write_policy(f'[host.test]\npins={LEAF1_PIN}\nexpires=2030-02-30\n')
        self.addCleanup(os.unlink, path)
        with self.assertRaises(GLib.Error) as caught:
            PinTls.Policy.new_from_file(path)
        self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_POLICY)
        self.assertTrue(caught.exception.message.startswith(f'{path}: [host.test] expires: '))

        with self.assertRaises(GLib.Error) as caught:
            PinTls.Policy.new_from_file(path + '.missing')
        self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_FILE)

    def test_lint(self):
        path = write_policy(f'[single.test]\npins={LEAF1_PIN}\n'
                            f'[backed-up.test]\npins={LEAF1_PIN};{LEAF3_PIN}\n')
        self.addCleanup(os.unlink, path)
        policy = PinTls.Policy.new_from_file(path)
        findings = policy.lint(None, None, None)
        self.assertEqual(len(findings), 1)
        self.assertTrue(findings[0].startswith('[single.test]: only one pin'))


class TestEntries(PolicyTestCase):
    def test_build_a_policy(self):
        pins = PinTls.PinSet.new([LEAF1_PIN, LEAF3_PIN])
        entry = PinTls.PolicyEntry.new('Bücher.TEST.', pins)
        self.assertEqual(entry.get_pattern(), 'xn--bcher-kva.test')
        entry.props.include_subdomains = True
        entry.set_expires(GLib.DateTime.new_utc(2030, 1, 1, 0, 0, 0))
        entry.props.fall_back_to_ca = True

        policy = PinTls.Policy.new()
        policy.add_entry(entry)
        self.assertIs(policy.lookup('www.bücher.test'), entry)

        again = PinTls.PolicyEntry.new('xn--bcher-kva.test', pins)
        with self.assertRaises(GLib.Error) as caught:
            policy.add_entry(again)
        self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_POLICY)

    def test_invalid_patterns(self):
        pins = PinTls.PinSet.new([LEAF1_PIN])
        for pattern in ('https://host.test/', 'host.test:443', 'a*.test', 'host..test', ''):
            with self.subTest(pattern=pattern), self.assertRaises(GLib.Error) as caught:
                PinTls.PolicyEntry.new(pattern, pins)
            self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_POLICY)


class TestArmedSocketClient(PolicyTestCase):
    """A Gio.SocketClient, whose connections glib-networking makes, armed
    with a policy. This is no GTest program, so sessions resume."""

    @classmethod
    def setUpClass(cls):
        cls.server = LocalServer('http').start()
        cls.addClassCleanup(cls.server.stop)
        cls.trust = Gio.TlsFileDatabase.new(str(CERTS_DIR / 'rootA.pem'))

    def policy(self, *pins):
        policy = PinTls.Policy.new()
        policy.add_entry(PinTls.PolicyEntry.new('127.0.0.1', PinTls.PinSet.new(list(pins))))
        self.reports = []
        policy.connect('report', lambda policy, report: self.reports.append(report))
        return policy

    def fetch(self, policy):
        """Returns the response, the error, and the TLS connection."""
        client = Gio.SocketClient.new()
        client.set_tls(True)
        seen = {}

        def on_event(client, event, connectable, connection):
            if event == Gio.SocketClientEvent.TLS_HANDSHAKING:
                connection.set_database(self.trust)
                seen['tls'] = connection

        # Gio.SocketClient.connect() is g_socket_client_connect(), not the
        # signal's.
        GObject.Object.connect(client, 'event', on_event)
        if policy is not None:
            policy.arm_socket_client(client)
        try:
            connection = client.connect_to_host(self.server.address, 443, None)
            connection.get_output_stream().write_all(b'GET / HTTP/1.0\r\n\r\n', None)
            response = b''
            while chunk := connection.get_input_stream().read_bytes(4096, None).get_data():
                response += chunk
            connection.close(None)
            return response, None, seen.get('tls')
        except GLib.Error as error:
            return None, error, seen.get('tls')

    def test_right_pins(self):
        policy = self.policy(LEAF1_PIN, LEAF3_PIN)
        response, error, tls = self.fetch(policy)
        self.assertIsNone(error)
        self.assertIn(b'Hello from the pinned server', response)
        self.assertTrue(policy.check_connection(tls))

        self.assertEqual(len(self.reports), 1)
        report = self.reports[0]
        self.assertEqual(report.get_verdict(), PinTls.Verdict.MATCHED)
        self.assertFalse(report.get_refused())
        self.assertEqual(report.get_host(), '127.0.0.1')
        self.assertEqual(report.get_port(), self.server.port)
        self.assertEqual(report.get_pattern(), '127.0.0.1')
        self.assertEqual(report.get_presented_pins()[0], LEAF1_PIN)
        self.assertEqual(sorted(report.get_configured_pins()), sorted([LEAF1_PIN, LEAF3_PIN]))

    def test_wrong_pins_even_after_an_unpinned_connection(self):
        # The unpinned connection leaves a ticket that the next one resumes.
        for policy in (None, self.policy(LEAF3_PIN, LEAF4_PIN)):
            response, error, tls = self.fetch(policy)
        self.assertIsNone(response)
        self.assertIsInstance(error, GLib.Error)
        with self.assertRaises(GLib.Error) as caught:
            policy.check_connection(tls)
        self.assertPinTlsError(caught.exception, PinTls.Error.PIN_MISMATCH)
        self.assertIn(LEAF1_PIN, caught.exception.message)

        self.assertTrue(self.reports)
        self.assertTrue(all(report.get_refused() for report in self.reports))
        self.assertEqual(self.reports[0].get_verdict(), PinTls.Verdict.PIN_MISMATCH)

    def test_report_only(self):
        policy = PinTls.Policy.new()
        entry = PinTls.PolicyEntry.new('127.0.0.1', PinTls.PinSet.new([LEAF3_PIN, LEAF4_PIN]))
        entry.set_report_only(True)
        policy.add_entry(entry)
        reports = []
        policy.connect('report', lambda policy, report: reports.append(report))

        response, error, tls = self.fetch(policy)
        self.assertIsNone(error)
        self.assertIn(b'Hello from the pinned server', response)
        self.assertEqual(len(reports), 1)
        self.assertEqual(reports[0].get_verdict(), PinTls.Verdict.PIN_MISMATCH)
        self.assertTrue(reports[0].get_report_only())
        self.assertFalse(reports[0].get_refused())


class TestPolicyConnection(PolicyTestCase):
    """PinTls.ClientConnection and the connect helper with a policy."""

    @classmethod
    def setUpClass(cls):
        cls.server = LocalServer('http').start()
        cls.addClassCleanup(cls.server.stop)

    def policy(self, *pins, mode=PinTls.Mode.PIN_ONLY):
        policy = PinTls.Policy.new()
        entry = PinTls.PolicyEntry.new('127.0.0.1', PinTls.PinSet.new(list(pins)))
        entry.props.mode = mode
        policy.add_entry(entry)
        self.reports = []
        policy.connect('report', lambda policy, report: self.reports.append(report))
        return policy

    def get(self, connection):
        connection.get_output_stream().write_all(b'GET / HTTP/1.0\r\n\r\n', None)
        response = b''
        while chunk := connection.get_input_stream().read_bytes(4096, None).get_data():
            response += chunk
        return response

    def test_connection_with_a_policy(self):
        policy = self.policy(LEAF1_PIN, LEAF3_PIN)
        tcp = Gio.SocketClient.new().connect_to_host(self.server.address, 0, None)
        identity = Gio.NetworkAddress.parse(self.server.address, 0)
        connection = PinTls.ClientConnection.new_with_policy(tcp, identity, policy)
        self.assertIs(connection.get_policy(), policy)
        self.assertIsNone(connection.get_pins())
        self.assertIn(b'Hello from the pinned server', self.get(connection))
        self.assertEqual([report.get_verdict() for report in self.reports],
                         [PinTls.Verdict.MATCHED])

    def test_connect_helper(self):
        connection = PinTls.connect_with_policy(self.server.address, 443,
                                                self.policy(LEAF1_PIN, LEAF3_PIN), None)
        self.assertIn(b'Hello from the pinned server', self.get(connection))

        with self.assertRaises(GLib.Error) as caught:
            PinTls.connect_with_policy(self.server.address, 443,
                                       self.policy(LEAF3_PIN, LEAF4_PIN), None)
        self.assertPinTlsError(caught.exception, PinTls.Error.PIN_MISMATCH)
        self.assertTrue(self.reports[-1].get_refused())

    def test_host_not_pinned(self):
        policy = PinTls.Policy.new()
        policy.add_entry(PinTls.PolicyEntry.new('host.test', PinTls.PinSet.new([LEAF1_PIN])))
        with self.assertRaises(GLib.Error) as caught:
            PinTls.connect_with_policy(self.server.address, 443, policy, None)
        self.assertPinTlsError(caught.exception, PinTls.Error.HOST_NOT_PINNED)


if __name__ == '__main__':
    unittest.main(verbosity=2)
