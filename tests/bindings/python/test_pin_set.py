#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Pin sets from Python: every pin syntax, certificate files, invalid pins."""

import base64
import hashlib
import os
import sys
import tempfile
import unittest
from pathlib import Path

import gi

gi.require_version('PinTls', '1')
from gi.repository import Gio, GLib, PinTls  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from localserver import CERTS_DIR, spki_pin  # noqa: E402

LEAF1_PIN = spki_pin(CERTS_DIR / 'leaf1.pem')
LEAF2_PIN = spki_pin(CERTS_DIR / 'leaf2.pem')
LEAF1_BASE64 = LEAF1_PIN.removeprefix('sha256/')
LEAF1_DER = (CERTS_DIR / 'leaf1.der').read_bytes()
LEAF1_FINGERPRINT = hashlib.sha256(LEAF1_DER).hexdigest()


def pem_fingerprints(path):
    """SHA-256 fingerprints of every certificate in a PEM file, in order."""
    chain = Gio.TlsCertificate.list_new_from_file(str(path))
    return [hashlib.sha256(bytes(cert.props.certificate)).hexdigest() for cert in chain]


class ErrorDomainTestCase(unittest.TestCase):
    def assertPinTlsError(self, error, code):
        self.assertIsInstance(error, GLib.Error)
        self.assertEqual(error.domain, 'pin-tls-error-quark')
        self.assertEqual(error.code, int(code))
        self.assertTrue(error.matches(PinTls.Error.quark(), code))


class TestErrorDomain(ErrorDomainTestCase):
    def test_registered_as_error_domain(self):
        self.assertEqual(PinTls.Error.quark(), GLib.quark_from_string('pin-tls-error-quark'))
        self.assertEqual(PinTls.error_quark(), PinTls.Error.quark())

    def test_codes(self):
        self.assertEqual(int(PinTls.Error.PIN_MISMATCH), 0)
        self.assertEqual(int(PinTls.Error.INVALID_PIN), 1)
        self.assertEqual(int(PinTls.Error.EMPTY_PIN_SET), 2)
        self.assertEqual(int(PinTls.Error.INVALID_FILE), 3)
        self.assertEqual(int(PinTls.Error.INVALID_CERTIFICATE), 4)


class TestPinSyntaxes(unittest.TestCase):
    def test_public_key_syntaxes(self):
        url_safe = LEAF1_BASE64.replace('+', '-').replace('/', '_').rstrip('=')
        syntaxes = {
            'OkHttp': f'sha256/{LEAF1_BASE64}',
            'curl': f'sha256//{LEAF1_BASE64}',
            'HPKP': f'pin-sha256="{LEAF1_BASE64}"',
            'certtool': f'pin-sha256:{LEAF1_BASE64}',
            'URL-safe base64 without padding': f'sha256/{url_safe}',
            'URL-safe base64 with padding': f'sha256/{url_safe}=',
            'curl without padding': f'sha256//{LEAF1_BASE64.rstrip("=")}',
            'surrounding white space': f'  sha256/{LEAF1_BASE64}\t',
            'line end': f'sha256/{LEAF1_BASE64}\r\n',
            'upper-case prefix': f'SHA256/{LEAF1_BASE64}',
            'upper-case HPKP prefix': f'PIN-SHA256="{LEAF1_BASE64}"',
        }
        for name, text in syntaxes.items():
            with self.subTest(syntax=name):
                pins = PinTls.PinSet.new([text])
                self.assertEqual(pins.get_size(), 1)
                self.assertEqual(pins.to_strings(), [LEAF1_PIN])

    def test_certificate_fingerprint_syntaxes(self):
        colons = ':'.join(LEAF1_FINGERPRINT[i:i + 2] for i in range(0, 64, 2))
        spaces = colons.replace(':', ' ')
        for text in (LEAF1_FINGERPRINT, LEAF1_FINGERPRINT.upper(), colons, colons.upper(),
                     spaces):
            with self.subTest(text=text):
                pins = PinTls.PinSet.new([text])
                self.assertEqual(pins.to_strings(), [LEAF1_FINGERPRINT])

    def test_several_pins_in_one_string(self):
        pins = PinTls.PinSet.new([f'{LEAF1_PIN}; {LEAF2_PIN}, {LEAF1_FINGERPRINT}'])
        self.assertEqual(pins.get_size(), 3)
        self.assertEqual(pins.to_strings(), [LEAF1_PIN, LEAF2_PIN, LEAF1_FINGERPRINT])

    def test_duplicates_count_once(self):
        pins = PinTls.PinSet.new([LEAF1_PIN, f'pin-sha256:{LEAF1_BASE64}', LEAF2_PIN])
        self.assertEqual(pins.get_size(), 2)

    def test_canonical_strings_round_trip(self):
        pins = PinTls.PinSet.new([f'sha256//{LEAF2_PIN[7:]}', LEAF1_FINGERPRINT.upper()])
        again = PinTls.PinSet.new(pins.to_strings())
        self.assertTrue(pins.equal(again))
        self.assertEqual(again.to_strings(), pins.to_strings())

    def test_equal_ignores_order_and_syntax(self):
        one = PinTls.PinSet.new([LEAF1_PIN, LEAF2_PIN])
        other = PinTls.PinSet.new([f'pin-sha256="{LEAF2_PIN[7:]}"', f'sha256//{LEAF1_BASE64}'])
        self.assertTrue(one.equal(other))
        self.assertFalse(one.equal(PinTls.PinSet.new([LEAF1_PIN])))

    def test_union_adds_a_backup_pin(self):
        current = PinTls.PinSet.new([LEAF1_PIN])
        backup = PinTls.PinSet.new([LEAF2_PIN])
        both = current.union(backup)
        self.assertEqual(both.get_size(), 2)
        self.assertTrue(both.equal(PinTls.PinSet.new([LEAF2_PIN, LEAF1_PIN])))
        self.assertEqual(current.get_size(), 1)


class TestCertificates(unittest.TestCase):
    def test_from_pem_file(self):
        pins = PinTls.PinSet.new_from_file(str(CERTS_DIR / 'leaf1.pem'))
        self.assertEqual(pins.to_strings(), [LEAF1_FINGERPRINT])

    def test_from_der_file(self):
        pins = PinTls.PinSet.new_from_file(str(CERTS_DIR / 'leaf1.der'))
        self.assertEqual(pins.to_strings(), [LEAF1_FINGERPRINT])

    def test_from_chain_file_pins_every_certificate(self):
        path = CERTS_DIR / 'leaf1-chain.pem'
        pins = PinTls.PinSet.new_from_file(str(path))
        self.assertEqual(pins.to_strings(), pem_fingerprints(path))
        self.assertEqual(pins.get_size(), 2)

    def test_from_pin_file(self):
        text = (f'# current key\n{LEAF1_PIN}\n\n'
                f'pin-sha256:{LEAF2_PIN[7:]}  # next key\n')
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / 'pins.txt'
            path.write_text(text)
            pins = PinTls.PinSet.new_from_file(str(path))
        self.assertEqual(pins.to_strings(), [LEAF1_PIN, LEAF2_PIN])

    def test_from_certificate_objects(self):
        leaf1 = Gio.TlsCertificate.new_from_file(str(CERTS_DIR / 'leaf1.pem'))
        leaf2 = Gio.TlsCertificate.new_from_file(str(CERTS_DIR / 'leaf2.pem'))
        pins = PinTls.PinSet.new_from_certificates([leaf1, leaf2])
        self.assertEqual(pins.get_size(), 2)
        self.assertEqual(pins.to_strings()[0], LEAF1_FINGERPRINT)

    def test_spki_pin_matches_certtool(self):
        leaf1 = Gio.TlsCertificate.new_from_file(str(CERTS_DIR / 'leaf1.pem'))
        self.assertEqual(PinTls.spki_pin_for_certificate(leaf1), LEAF1_PIN)
        self.assertEqual(PinTls.spki_pin_for_der(GLib.Bytes.new(LEAF1_DER)), LEAF1_PIN)

    def test_matches_certificate(self):
        der = GLib.Bytes.new(LEAF1_DER)
        self.assertTrue(PinTls.PinSet.new([LEAF1_PIN]).matches_certificate(der))
        self.assertTrue(PinTls.PinSet.new([LEAF1_FINGERPRINT]).matches_certificate(der))
        self.assertFalse(PinTls.PinSet.new([LEAF2_PIN]).matches_certificate(der))

    def test_issuer_path(self):
        chain = [GLib.Bytes.new(bytes(cert.props.certificate)) for cert in
                 Gio.TlsCertificate.list_new_from_file(str(CERTS_DIR / 'leaf1-chain.pem'))]
        self.assertEqual(PinTls.find_issuer_path(chain), [0, 1])
        # The intermediate alone is not a path from anything it issued.
        self.assertEqual(PinTls.find_issuer_path(chain[::-1]), [0])


class TestInvalidPins(ErrorDomainTestCase):
    def test_invalid_pins_name_the_text(self):
        digest31 = base64.b64encode(bytes(31)).decode()
        sha1 = base64.b64encode(hashlib.sha1(LEAF1_DER).digest()).decode()
        empty_input = base64.b64encode(hashlib.sha256(b'').digest()).decode()
        cases = {
            'SHA-1 digest': f'sha1/{sha1}',
            'SHA-256 prefix on a SHA-1 digest': f'sha256/{sha1}',
            'digest one byte short': f'sha256/{digest31}',
            'bad base64': 'sha256/not*base64*at*all',
            'digest of empty input': f'sha256/{empty_input}',
            'unknown algorithm': f'md5/{LEAF1_BASE64}',
            'odd hex digits': LEAF1_FINGERPRINT[:-1],
            'hex fingerprint too long': LEAF1_FINGERPRINT + 'ab',
            'nothing': '   ',
            'digest one byte too long': 'sha256/' + base64.b64encode(bytes(33)).decode(),
            'bang in base64': f'sha256/{LEAF1_BASE64[:-2]}!=',
            'g in hex': 'g' + LEAF1_FINGERPRINT[1:],
            'nothing after the prefix': 'sha256/',
            'nothing after the curl prefix': 'sha256//',
            'mixed base64 alphabets': f'sha256/+_{LEAF1_BASE64[2:]}',
            'URL': f'https://host.test/{LEAF1_BASE64}',
            'host and port': 'host.test:443',
            'MD5 as hex': hashlib.md5(LEAF1_DER).hexdigest(),
            'SHA-1 as hex': hashlib.sha1(LEAF1_DER).hexdigest(),
            'base64 without a prefix': LEAF1_BASE64,
            'hex under a base64 prefix': f'sha256/{LEAF1_FINGERPRINT}',
            'unterminated HPKP': f'pin-sha256="{LEAF1_BASE64}',
            'SHA-384 prefix': f'sha384/{LEAF1_BASE64}',
        }
        for name, text in cases.items():
            with self.subTest(case=name):
                with self.assertRaises(GLib.Error) as caught:
                    PinTls.PinSet.new([LEAF1_PIN, text])
                self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_PIN)
                self.assertIn(text[:40], caught.exception.message)

    def test_empty_list(self):
        with self.assertRaises(GLib.Error) as caught:
            PinTls.PinSet.new([])
        self.assertPinTlsError(caught.exception, PinTls.Error.EMPTY_PIN_SET)

    def test_no_certificates(self):
        with self.assertRaises(GLib.Error) as caught:
            PinTls.PinSet.new_from_certificates([])
        self.assertPinTlsError(caught.exception, PinTls.Error.EMPTY_PIN_SET)

    def test_missing_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'missing.pem')
            with self.assertRaises(GLib.Error) as caught:
                PinTls.PinSet.new_from_file(path)
        self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_FILE)
        self.assertIn('missing.pem', caught.exception.message)

    def test_file_without_certificates(self):
        with self.assertRaises(GLib.Error) as caught:
            PinTls.PinSet.new_from_file(str(CERTS_DIR / 'leaf1.key'))
        self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_FILE)

    def test_bad_pin_in_file_names_the_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / 'pins.txt'
            path.write_text(f'{LEAF1_PIN}\n# a comment\nsha256/short\n')
            with self.assertRaises(GLib.Error) as caught:
                PinTls.PinSet.new_from_file(str(path))
        self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_PIN)
        self.assertIn('pins.txt', caught.exception.message)
        self.assertIn('3', caught.exception.message)

    def test_file_of_comments(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / 'pins.txt'
            path.write_text('# no pins yet\n\n')
            with self.assertRaises(GLib.Error) as caught:
                PinTls.PinSet.new_from_file(str(path))
        self.assertPinTlsError(caught.exception, PinTls.Error.EMPTY_PIN_SET)

    def test_not_a_certificate(self):
        junk = GLib.Bytes.new(b'not a certificate')
        for call in (lambda: PinTls.spki_pin_for_der(junk),
                     lambda: PinTls.PinSet.new([LEAF1_PIN]).matches_certificate(junk)):
            with self.assertRaises(GLib.Error) as caught:
                call()
            self.assertPinTlsError(caught.exception, PinTls.Error.INVALID_CERTIFICATE)


if __name__ == '__main__':
    unittest.main(verbosity=2)
