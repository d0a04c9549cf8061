// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Pin sets from GJS: every pin syntax, certificate files, invalid pins.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import PinTls from 'gi://PinTls?version=1';

import {assert, assertEqual, assertThrows, env, run, test} from './harness.js';

const certsDir = env('PINTLS_TEST_CERTS_DIR');
const leaf1Pin = env('PINTLS_TEST_RIGHT_PIN');
const leaf2Pin = env('PINTLS_TEST_WRONG_PIN');
const leaf1Base64 = leaf1Pin.slice('sha256/'.length);

function certPath(name) {
    return GLib.build_filenamev([certsDir, name]);
}

function fingerprint(certificate) {
    const der = new GLib.Bytes(certificate.certificate);
    return GLib.compute_checksum_for_bytes(GLib.ChecksumType.SHA256, der);
}

const leaf1 = Gio.TlsCertificate.new_from_file(certPath('leaf1.pem'));
const leaf1Fingerprint = fingerprint(leaf1);

function withTemporaryFile(contents, body) {
    const [file, stream] = Gio.File.new_tmp('pintls-XXXXXX.txt');
    try {
        stream.get_output_stream().write_all(new TextEncoder().encode(contents), null);
        stream.close(null);
        return body(file.get_path());
    } finally {
        file.delete(null);
    }
}

test('the error enum is an error domain', () => {
    assertEqual(PinTls.Error.quark(), GLib.quark_from_string('pin-tls-error-quark'), 'quark');
    const error = assertThrows(() => PinTls.PinSet.new(['nope']),
        PinTls.Error, PinTls.Error.INVALID_PIN);
    assert(error.matches(PinTls.error_quark(), PinTls.Error.INVALID_PIN),
        'matches() also takes the quark');
    assertEqual(error.code, PinTls.Error.INVALID_PIN, 'code');
});

test('public-key pins in every syntax', () => {
    const urlSafe = leaf1Base64.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
    const syntaxes = [
        `sha256/${leaf1Base64}`,
        `sha256//${leaf1Base64}`,
        `pin-sha256="${leaf1Base64}"`,
        `pin-sha256:${leaf1Base64}`,
        `sha256/${urlSafe}`,
        `sha256//${leaf1Base64.replace(/=+$/, '')}`,
        ` sha256/${leaf1Base64}\t`,
        `sha256/${leaf1Base64}\r\n`,
        `SHA256/${leaf1Base64}`,
        `PIN-SHA256:${leaf1Base64}`,
    ];
    for (const text of syntaxes)
        assertEqual(PinTls.PinSet.new([text]).to_strings(), [leaf1Pin], text);
});

test('certificate fingerprints with and without colons', () => {
    const colons = leaf1Fingerprint.match(/../g).join(':');
    const spaces = colons.replaceAll(':', ' ');
    for (const text of [leaf1Fingerprint, leaf1Fingerprint.toUpperCase(), colons, spaces])
        assertEqual(PinTls.PinSet.new([text]).to_strings(), [leaf1Fingerprint], text);
});

test('several pins in one string, duplicates counted once', () => {
    const pins = PinTls.PinSet.new([`${leaf1Pin}; ${leaf2Pin}, pin-sha256:${leaf1Base64}`]);
    assertEqual(pins.get_size(), 2, 'size');
    assertEqual(pins.to_strings(), [leaf1Pin, leaf2Pin], 'pins');
});

test('equal, union and round trips', () => {
    const current = PinTls.PinSet.new([leaf1Pin]);
    const next = PinTls.PinSet.new([`sha256//${leaf2Pin.slice(7)}`]);
    const both = current.union(next);
    assertEqual(both.get_size(), 2, 'size of the union');
    assert(both.equal(PinTls.PinSet.new([leaf2Pin, leaf1Pin])), 'order does not matter');
    assert(!both.equal(current), 'a smaller set differs');
    assert(both.equal(PinTls.PinSet.new(both.to_strings())), 'canonical strings round-trip');
});

test('certificate files', () => {
    assertEqual(PinTls.PinSet.new_from_file(certPath('leaf1.pem')).to_strings(),
        [leaf1Fingerprint], 'PEM');
    assertEqual(PinTls.PinSet.new_from_file(certPath('leaf1.der')).to_strings(),
        [leaf1Fingerprint], 'DER');
    const chain = Gio.TlsCertificate.list_new_from_file(certPath('leaf1-chain.pem'));
    assertEqual(PinTls.PinSet.new_from_file(certPath('leaf1-chain.pem')).to_strings(),
        chain.map(fingerprint), 'chain');
});

test('pin files with comments', () => {
    const text = `# current key\n${leaf1Pin}\n\n${leaf2Pin}  # next key\n`;
    const pins = withTemporaryFile(text, path => PinTls.PinSet.new_from_file(path));
    assertEqual(pins.to_strings(), [leaf1Pin, leaf2Pin], 'pins');
});

test('certificate objects and public-key pins', () => {
    const leaf2 = Gio.TlsCertificate.new_from_file(certPath('leaf2.pem'));
    const pins = PinTls.PinSet.new_from_certificates([leaf1, leaf2]);
    assertEqual(pins.to_strings()[0], leaf1Fingerprint, 'certificate pin');
    assertEqual(PinTls.spki_pin_for_certificate(leaf1), leaf1Pin, 'public-key pin');

    const der = new GLib.Bytes(leaf1.certificate);
    assertEqual(PinTls.spki_pin_for_der(der), leaf1Pin, 'public-key pin from DER');
    assert(PinTls.PinSet.new([leaf1Pin]).matches_certificate(der), 'matches its own pin');
    assert(!PinTls.PinSet.new([leaf2Pin]).matches_certificate(der), 'does not match another');
});

test('issuer path', () => {
    const chain = Gio.TlsCertificate.list_new_from_file(certPath('leaf1-chain.pem'))
        .map(certificate => new GLib.Bytes(certificate.certificate));
    assertEqual([...PinTls.find_issuer_path(chain)], [0, 1], 'path');
});

test('invalid pins are configuration errors naming the text', () => {
    const cases = [
        'sha1/eHh4eHh4eHh4eHh4eHh4eHh4eHg=',
        'sha256/eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA==',
        'sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=',
        'sha256/not*base64',
        `md5/${leaf1Base64}`,
        leaf1Fingerprint.slice(1),
        '  ',
        `sha256/${leaf1Base64.slice(0, -2)}!=`,
        `g${leaf1Fingerprint.slice(1)}`,
        'sha256/',
        'sha256//',
        `https://host.test/${leaf1Base64}`,
        'host.test:443',
        leaf1Fingerprint.slice(0, 32),
        leaf1Fingerprint.slice(0, 40),
        leaf1Base64,
        `sha256/${leaf1Fingerprint}`,
        `pin-sha256="${leaf1Base64}`,
        `sha384/${leaf1Base64}`,
    ];
    for (const text of cases) {
        const error = assertThrows(() => PinTls.PinSet.new([leaf1Pin, text]),
            PinTls.Error, PinTls.Error.INVALID_PIN);
        // Long text is cut short in the message.
        assert(error.message.includes(text.slice(0, 40)), `"${error.message}" names "${text}"`);
    }
});

test('empty pin sets are refused', () => {
    assertThrows(() => PinTls.PinSet.new([]), PinTls.Error, PinTls.Error.EMPTY_PIN_SET);
    assertThrows(() => PinTls.PinSet.new_from_certificates([]),
        PinTls.Error, PinTls.Error.EMPTY_PIN_SET);
    withTemporaryFile('# nothing yet\n', path => assertThrows(
        () => PinTls.PinSet.new_from_file(path), PinTls.Error, PinTls.Error.EMPTY_PIN_SET));
});

test('unreadable files and certificates', () => {
    const missing = GLib.build_filenamev([GLib.get_tmp_dir(), 'pintls-no-such-file.pem']);
    assertThrows(() => PinTls.PinSet.new_from_file(missing),
        PinTls.Error, PinTls.Error.INVALID_FILE);
    assertThrows(() => PinTls.PinSet.new_from_file(certPath('leaf1.key')),
        PinTls.Error, PinTls.Error.INVALID_FILE);

    const error = withTemporaryFile(`${leaf1Pin}\nsha256/short\n`, path => assertThrows(
        () => PinTls.PinSet.new_from_file(path), PinTls.Error, PinTls.Error.INVALID_PIN));
    assert(error.message.includes('2'), `"${error.message}" names the line`);

    const junk = new GLib.Bytes(new TextEncoder().encode('not a certificate'));
    assertThrows(() => PinTls.spki_pin_for_der(junk),
        PinTls.Error, PinTls.Error.INVALID_CERTIFICATE);
    assertThrows(() => PinTls.PinSet.new([leaf1Pin]).matches_certificate(junk),
        PinTls.Error, PinTls.Error.INVALID_CERTIFICATE);
});

await run();
