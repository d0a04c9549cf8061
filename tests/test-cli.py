#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later

"""Tests of the pintls command and the rotation demo against real peers.

gnutls-serv, openssl s_server and nginx run as independent processes on
loopback ports picked at run time. Expected pins come from certtool, never
from pintls. Meson sets PINTLS_TOOL, PINTLS_DEMO and PINTLS_DATA_DIR.
"""

import base64
import functools
import hashlib
import os
import re
import selectors
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Callable

from nginx import Nginx, find_nginx

SOURCE_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DATA_DIR = Path(os.environ.get("PINTLS_DATA_DIR", SOURCE_DATA_DIR))
CERTS = DATA_DIR / "certs"
TOOL = os.environ.get("PINTLS_TOOL", "pintls")
DEMO = os.environ.get("PINTLS_DEMO", "pintls-demo")

COMMAND_TIMEOUT = 30  # seconds any one command may take
SERVER_TIMEOUT = 10  # seconds a server may take to start or to log something

# The exit statuses of `pintls`, as its --help documents them.
OK, FAILED, USAGE, MISMATCH, UNTRUSTED = range(5)

TLS_VERSIONS = {
    "1.2": "NORMAL:-VERS-ALL:+VERS-TLS1.2",
    "1.3": "NORMAL:-VERS-ALL:+VERS-TLS1.3",
}
OPENSSL_VERSIONS = {"1.2": ("-tls1_2",), "1.3": ("-tls1_3",)}
NGINX_VERSIONS = {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}

GNUTLS_SERV_ALERT = b"A TLS fatal alert has been received"
OPENSSL_ALERT = b"alert bad certificate"


@functools.cache
def certtool_info(name: str) -> tuple[str, str]:
    """The pin and subject of the first certificate of a file, from certtool."""
    info = subprocess.run(
        ["certtool", "-i", "--infile", str(CERTS / name)],
        capture_output=True, text=True, check=True, timeout=COMMAND_TIMEOUT,
    ).stdout
    pin = re.search(r"pin-sha256:(\S+)", info).group(1)
    subject = re.search(r"Subject: (.*)", info).group(1).strip()
    return f"sha256/{pin}", subject


def pin(name: str) -> str:
    return certtool_info(name)[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def find_program(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


class Server:
    """A TLS server process on a loopback port, its output in a file."""

    def __init__(self, argv: list[str], port: int, log: Path, output: Path | None):
        self.port = port
        self.log = log
        self.output_path = output or log
        with open(log, "wb") as log_file:
            # Kept open: openssl s_server ends its session at end of input.
            self.process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT
            )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> bytes:
        try:
            return self.output_path.read_bytes()
        except FileNotFoundError:
            return b""

    def wait_for_output(self, text: bytes) -> bytes:
        """The server's output once it holds @text, or after a timeout."""
        deadline = time.monotonic() + SERVER_TIMEOUT
        while text not in self.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.output()

    def wait_until_accepting(self) -> bool:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=SERVER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdin.close()


class ToolTestCase(unittest.TestCase):
    """Runs the tool, and servers that are stopped whatever the outcome."""

    def setUp(self) -> None:
        workdir = tempfile.TemporaryDirectory(prefix="pintls-cli-")
        self.addCleanup(workdir.cleanup)
        self.workdir = Path(workdir.name)

    def start_server(self, make_argv: Callable[[int], list[str]], name: str,
                     output: Path | None = None) -> Server:
        """Starts a server on a free port, trying another port if the chosen
        one was taken before the server could bind it."""
        for attempt in range(3):
            port = free_port()
            log = self.workdir / f"{name}-{port}.log"
            server = Server(make_argv(port), port, log, output)
            self.addCleanup(server.stop)
            if server.wait_until_accepting():
                return server
            server.stop()
        self.fail(f"{name} did not start: {log.read_text(errors='replace')}")

    def gnutls_serv(self, chain: str, key: str, priority: str | None = None) -> Server:
        if not find_program("gnutls-serv"):
            self.skipTest("gnutls-serv is not installed")
        extra = ["--priority", priority] if priority else []
        # Line-buffered, so that what it logs can be waited for.
        stdbuf = ["stdbuf", "-oL"] if find_program("stdbuf") else []
        return self.start_server(
            lambda port: [*stdbuf, "gnutls-serv", "--port", str(port), "--echo",
                          "--x509certfile", str(CERTS / chain),
                          "--x509keyfile", str(CERTS / key), *extra],
            "gnutls-serv")

    def openssl_server(self, cert: str, key: str, *chain: str,
                       options: tuple[str, ...] = ()) -> Server:
        """openssl s_server, which sends the extra certificates verbatim and
        prints the plaintext it receives."""
        if not find_program("openssl"):
            self.skipTest("openssl is not installed")
        extra = list(options)
        if chain:
            chain_file = self.workdir / "extra-chain.pem"
            pems = [(CERTS / name).read_bytes() for name in chain]
            chain_file.write_bytes(b"".join(pems))
            extra += ["-cert_chain", str(chain_file)]
        return self.start_server(
            lambda port: ["openssl", "s_server", "-accept", f"127.0.0.1:{port}",
                          "-cert", str(CERTS / cert), "-key", str(CERTS / key),
                          *extra, "-quiet"],
            "openssl")

    def nginx(self, chain: str, key: str, files: dict[str, bytes],
              protocols: str = "TLSv1.2 TLSv1.3") -> Nginx:
        if not find_nginx():
            self.skipTest("nginx is not installed")
        server = Nginx(self.workdir, CERTS / chain, CERTS / key, files, protocols).start()
        self.addCleanup(server.stop)
        return server

    def run_tool(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
        return subprocess.run([TOOL, *args], input=stdin, capture_output=True,
                              timeout=COMMAND_TIMEOUT)

    def connect(self, server: Server, *args: str,
                stdin: bytes = b"") -> subprocess.CompletedProcess:
        return self.run_tool("connect", server.address, *args, stdin=stdin)

    def assertExitStatus(self, result: subprocess.CompletedProcess,
                         status: int) -> None:
        self.assertEqual(result.returncode, status,
                         f"stdout: {result.stdout[:500]!r}\nstderr: {result.stderr!r}")

    def assertOneErrorLine(self, result: subprocess.CompletedProcess) -> str:
        lines = result.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("pintls: "), lines[0])
        return lines[0]


class HelpTests(ToolTestCase):
    def test_help_lists_commands_and_exit_statuses(self):
        result = self.run_tool("--help")
        self.assertExitStatus(result, OK)
        text = result.stdout.decode()
        for command in ("pins", "lint", "connect"):
            self.assertRegex(text, rf"(?m)^\s+{command}\s")
        for status in range(5):
            self.assertRegex(text, rf"(?m)^\s+{status}\s+\S")
        self.assertIn("update is required", text)

    def test_usage_errors(self):
        for args in ([], ["frobnicate"], ["pins", "--no-such-option"],
                     ["connect"], ["connect", "a", "b", "--pin", pin("leaf1.pem")],
                     ["connect", "127.0.0.1:1", "--pin", pin("leaf1.pem"),
                      "--ca-file", str(CERTS / "rootA.pem"), "--system-ca"]):
            with self.subTest(args=args):
                result = self.run_tool(*args)
                self.assertExitStatus(result, USAGE)
                self.assertOneErrorLine(result)


class PinsFileTests(ToolTestCase):
    def test_pin_equals_certtool(self):
        for name in ("leaf1.pem", "rsa2048.pem", "p384.pem", "ed25519.pem"):
            with self.subTest(name=name):
                result = self.run_tool("pins", str(CERTS / name))
                self.assertExitStatus(result, OK)
                expected_pin, subject = certtool_info(name)
                self.assertEqual(result.stdout.decode(), f"{expected_pin}  {subject}\n")

    def test_der_file(self):
        result = self.run_tool("pins", str(CERTS / "leaf1.der"))
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout.decode().split()[0], pin("leaf1.pem"))

    def test_several_files_are_prefixed(self):
        names = ("leaf1.pem", "p384.pem", "self.pem")
        result = self.run_tool("pins", *(str(CERTS / name) for name in names))
        self.assertExitStatus(result, OK)
        expected = [f"{CERTS / name}: {pin(name)}  {certtool_info(name)[1]}"
                    for name in names]
        self.assertEqual(result.stdout.decode().splitlines(), expected)

    def test_chain_file_prints_every_certificate(self):
        result = self.run_tool("pins", str(CERTS / "leaf1-chain.pem"))
        self.assertExitStatus(result, OK)
        pins = [line.split()[0] for line in result.stdout.decode().splitlines()]
        self.assertEqual(pins, [pin("leaf1.pem"), pin("intA.pem")])

    def test_garbage_file(self):
        garbage = self.workdir / "garbage.pem"
        garbage.write_bytes(b"\x30\x03not a certificate\n" * 4)
        result = self.run_tool("pins", str(garbage))
        self.assertExitStatus(result, USAGE)
        self.assertIn(str(garbage), self.assertOneErrorLine(result))
        self.assertEqual(result.stdout, b"")

    def test_missing_file(self):
        result = self.run_tool("pins", str(self.workdir / "missing.pem"))
        self.assertExitStatus(result, USAGE)
        self.assertOneErrorLine(result)


PRESENTED_LINE = re.compile(r"^(\d+)  (sha256/\S+)  (.*)  \[(.*)\]$")


class PinsServerTests(ToolTestCase):
    def presented(self, server: Server, *args: str) -> list[tuple[str, str, bool]]:
        """(pin, subject, on the issuer path) for each certificate, in order."""
        result = self.run_tool("pins", "--server", server.address, *args)
        self.assertExitStatus(result, OK)
        self.assertIn("out of band", self.assertOneErrorLine(result))
        certificates = []
        for index, line in enumerate(result.stdout.decode().splitlines()):
            match = PRESENTED_LINE.match(line)
            self.assertIsNotNone(match, line)
            self.assertEqual(int(match[1]), index)
            certificates.append((match[2], match[3], not match[4].startswith("NOT")))
        return certificates

    def test_gnutls_serv_chain(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        presented = self.presented(server)
        self.assertEqual(presented, [
            (pin("leaf1.pem"), "CN=host.test", True),
            (pin("intA.pem"), "CN=Intermediate A", True),
        ])

    def test_server_name(self):
        """The server presents leaf2 only to clients asking for host.test."""
        server = self.openssl_server(
            "leaf1.pem", "leaf1.key",
            options=("-servername", "host.test", "-cert2", str(CERTS / "leaf2.pem"),
                     "-key2", str(CERTS / "leaf2.key")))
        self.assertEqual(self.presented(server)[0][0], pin("leaf1.pem"))
        presented = self.presented(server, "--server-name", "host.test")
        self.assertEqual(presented[0][0], pin("leaf2.pem"))

    def test_decoy_is_not_on_the_issuer_path(self):
        server = self.openssl_server("leaf2.pem", "leaf2.key", "intA.pem", "intB.pem")
        presented = self.presented(server)
        self.assertEqual(presented, [
            (pin("leaf2.pem"), "CN=host.test", True),
            (pin("intA.pem"), "CN=Intermediate A", True),
            (pin("intB.pem"), "CN=Intermediate B", False),
        ])

    def test_unreachable_server(self):
        result = self.run_tool("pins", "--server", f"127.0.0.1:{free_port()}")
        self.assertExitStatus(result, FAILED)
        self.assertOneErrorLine(result)


class ConnectGnutlsServTests(ToolTestCase):
    def test_echo_with_the_right_pin(self):
        for version, priority in TLS_VERSIONS.items():
            with self.subTest(version=version):
                server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key", priority)
                message = f"hello over TLS {version}\n".encode()
                result = self.connect(server, "--pin", pin("leaf1.pem"), stdin=message)
                self.assertExitStatus(result, OK)
                self.assertEqual(result.stdout, message)
                log = server.wait_for_output(f"Version: TLS{version}".encode())
                self.assertIn(f"Version: TLS{version}".encode(), log)

    def test_mismatch_sends_bad_certificate_alert(self):
        for version, priority in TLS_VERSIONS.items():
            with self.subTest(version=version):
                server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key", priority)
                result = self.connect(server, "--pin", pin("leaf2.pem"), stdin=b"hi\n")
                self.assertExitStatus(result, MISMATCH)
                self.assertEqual(result.stdout, b"")
                message = self.assertOneErrorLine(result)
                self.assertIn("update", message)
                self.assertIn(pin("leaf1.pem"), message)
                self.assertIn(pin("leaf2.pem"), message)
                log = server.wait_for_output(GNUTLS_SERV_ALERT)
                self.assertIn(GNUTLS_SERV_ALERT, log)

    def test_mismatch_message_names_everything(self):
        """The server name, what it presented in order, what was pinned."""
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--server-name", "host.test",
                              "--pin", pin("leaf2.pem"), "--pin", pin("rootB.pem"))
        self.assertExitStatus(result, MISMATCH)
        message = self.assertOneErrorLine(result)
        self.assertIn("“host.test”", message)
        presented = [message.index(text) for text in (
            pin("leaf1.pem"), "CN=host.test", pin("intA.pem"), "CN=Intermediate A",
            pin("leaf2.pem"))]
        self.assertEqual(presented, sorted(presented), message)
        self.assertIn(pin("rootB.pem"), message)

    def test_malformed_pin(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        for bad_pin in ("sha256/abc", "sha1/" + "A" * 27 + "=", "not a pin"):
            with self.subTest(pin=bad_pin):
                result = self.connect(server, "--pin", bad_pin)
                self.assertExitStatus(result, USAGE)
                self.assertOneErrorLine(result)

    def test_no_pins(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server)
        self.assertExitStatus(result, USAGE)
        self.assertOneErrorLine(result)

    def test_pin_file_with_a_certificate(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--pin-file", str(CERTS / "leaf1.pem"),
                              stdin=b"cert\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"cert\n")

        result = self.connect(server, "--pin-file", str(CERTS / "leaf2.pem"))
        self.assertExitStatus(result, MISMATCH)

    def test_pin_file_with_pins_and_a_backup(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        pins = self.workdir / "pins.txt"
        pins.write_text("# the next key, then the current one\n"
                        f"{pin('leaf2.pem')}\n{pin('leaf1.pem')}  # in use\n")
        result = self.connect(server, "--pin-file", str(pins), stdin=b"pins\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"pins\n")

    def test_unreadable_pin_file(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--pin-file", str(self.workdir / "missing"))
        self.assertExitStatus(result, USAGE)
        self.assertOneErrorLine(result)

    def test_server_name_is_sent_as_sni(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.run_tool("connect", f"localhost:{server.port}",
                               "--pin", pin("leaf1.pem"), stdin=b"a\n")
        self.assertExitStatus(result, OK)
        result = self.connect(server, "--server-name", "host.test",
                              "--pin", pin("leaf1.pem"), stdin=b"b\n")
        self.assertExitStatus(result, OK)
        log = server.wait_for_output(b"Given server name[1]: host.test")
        self.assertIn(b"Given server name[1]: localhost", log)
        self.assertIn(b"Given server name[1]: host.test", log)

    def test_bad_server_name(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--server-name", "bad name!",
                              "--pin", pin("leaf1.pem"))
        self.assertExitStatus(result, USAGE)
        self.assertOneErrorLine(result)

    def test_unreachable_server(self):
        result = self.run_tool("connect", f"127.0.0.1:{free_port()}",
                               "--pin", pin("leaf1.pem"))
        self.assertExitStatus(result, FAILED)
        self.assertOneErrorLine(result)


class ConnectNginxTests(ToolTestCase):
    FILE = b"pintls test file\n" + bytes(range(256))

    @staticmethod
    def access_log(server: Nginx) -> bytes:
        """The requests nginx served, once it has logged them."""
        path = server.output_path.parent / "access.log"
        return path.read_bytes() if path.exists() else b""

    def test_get_with_the_right_pin(self):
        for version, protocols in NGINX_VERSIONS.items():
            with self.subTest(version=version):
                server = self.nginx("leaf1-chain.pem", "leaf1.key", {"file": self.FILE},
                                    protocols)
                result = self.connect(server, "--pin", pin("leaf1.pem"),
                                      stdin=b"GET /file HTTP/1.0\r\n\r\n")
                self.assertExitStatus(result, OK)
                self.assertTrue(result.stdout.startswith(b"HTTP/1.1 200 OK\r\n"),
                                result.stdout[:100])
                self.assertTrue(result.stdout.endswith(b"\r\n\r\n" + self.FILE))
                self.assertIn(b"GET /file", self.access_log(server))

    def test_mismatch_sends_bad_certificate_alert(self):
        for version, protocols in NGINX_VERSIONS.items():
            with self.subTest(version=version):
                server = self.nginx("leaf1-chain.pem", "leaf1.key", {"file": self.FILE},
                                    protocols)
                result = self.connect(server, "--pin", pin("leaf2.pem"),
                                      stdin=b"GET /file HTTP/1.0\r\n\r\n")
                self.assertExitStatus(result, MISMATCH)
                self.assertEqual(result.stdout, b"")
                self.assertIn("update", self.assertOneErrorLine(result))
                self.assertIn(OPENSSL_ALERT, server.wait_for_output(OPENSSL_ALERT))
                self.assertNotIn(b"GET /file", self.access_log(server))

    def test_malformed_pin(self):
        server = self.nginx("leaf1-chain.pem", "leaf1.key", {"file": self.FILE})
        result = self.connect(server, "--pin", "sha256/" + "A" * 42,
                              stdin=b"GET /file HTTP/1.0\r\n\r\n")
        self.assertExitStatus(result, USAGE)
        self.assertIn("sha256/AAAA", self.assertOneErrorLine(result))


class ConnectOpensslTests(ToolTestCase):
    def test_binary_upload(self):
        server = self.openssl_server("leaf1.pem", "leaf1.key")
        data = bytes(range(256)) * 64
        result = self.connect(server, "--pin", pin("leaf1.pem"), stdin=data)
        self.assertExitStatus(result, OK)
        self.assertIn(data, server.wait_for_output(data))


class NothingBeforeVerdictTests(ToolTestCase):
    """No application byte leaves before the pin decision."""

    SECRET = b"Authorization: SECRET\n"

    def test_secret_not_sent_to_an_impostor(self):
        for version, options in OPENSSL_VERSIONS.items():
            with self.subTest(version=version):
                server = self.openssl_server("leaf2.pem", "leaf2.key", options=options)
                result = self.connect(server, "--pin", pin("leaf1.pem"),
                                      stdin=self.SECRET)
                self.assertExitStatus(result, MISMATCH)
                log = server.wait_for_output(OPENSSL_ALERT)
                self.assertIn(OPENSSL_ALERT, log)
                self.assertNotIn(b"SECRET", log)

    def test_secret_sent_to_the_pinned_server(self):
        for version, options in OPENSSL_VERSIONS.items():
            with self.subTest(version=version):
                server = self.openssl_server("leaf2.pem", "leaf2.key", options=options)
                result = self.connect(server, "--pin", pin("leaf2.pem"),
                                      stdin=self.SECRET)
                self.assertExitStatus(result, OK)
                self.assertIn(self.SECRET, server.wait_for_output(self.SECRET))


class DecoyCertificateTests(ToolTestCase):
    """A pinned certificate merely appended to the chain is no match."""

    def test_appended_pinned_intermediate(self):
        server = self.openssl_server("leaf2.pem", "leaf2.key", "intA.pem", "intB.pem")
        result = self.connect(server, "--ca-file", str(CERTS / "rootA.pem"),
                              "--server-name", "host.test", "--pin", pin("intB.pem"))
        self.assertExitStatus(result, MISMATCH)

    def test_pinned_intermediate_on_the_path(self):
        server = self.openssl_server("leafB.pem", "leafB.key", "intB.pem")
        result = self.connect(server, "--ca-file", str(CERTS / "rootB.pem"),
                              "--server-name", "host.test", "--pin", pin("intB.pem"),
                              stdin=b"on the path\n")
        self.assertExitStatus(result, OK)


class DecoyWithBothRootsTests(ToolTestCase):
    """Trusting the decoy's root as well changes nothing."""

    def test_appended_intermediate_of_a_trusted_root(self):
        roots = self.workdir / "roots.pem"
        roots.write_bytes((CERTS / "rootA.pem").read_bytes()
                          + (CERTS / "rootB.pem").read_bytes())
        server = self.openssl_server("leaf2.pem", "leaf2.key", "intA.pem", "intB.pem")
        for pins in (["--pin", pin("intB.pem")], ["--pin", pin("rootB.pem")],
                     ["--pin-file", str(CERTS / "intB.pem")]):
            with self.subTest(pins=pins):
                result = self.connect(server, "--ca-file", str(roots),
                                      "--server-name", "host.test", *pins)
                self.assertExitStatus(result, MISMATCH)

    def test_appended_intermediate_without_a_ca(self):
        server = self.openssl_server("leaf2.pem", "leaf2.key", "intA.pem", "intB.pem")
        for pins in (["--pin", pin("intB.pem")], ["--pin-file", str(CERTS / "intB.pem")]):
            with self.subTest(pins=pins):
                result = self.connect(server, *pins)
                self.assertExitStatus(result, MISMATCH)


class InvalidSignerTests(ToolTestCase):
    """A certificate that may not sign never puts a pin on the path."""

    def connect_with(self, server: Server, pinned: str, *args: str):
        return self.connect(server, *args, "--server-name", "host.test",
                            "--pin", pin(pinned))

    def test_leaf_signed_by_a_non_ca(self):
        """host.test signed with other.test's key, which is CA:FALSE."""
        for version, options in OPENSSL_VERSIONS.items():
            server = self.openssl_server("forged.pem", "forged.key", "other.pem",
                                         "intA.pem", options=options)
            for pinned in ("intA.pem", "other.pem"):
                with self.subTest(version=version, pinned=pinned):
                    result = self.connect_with(server, pinned, "--ca-file",
                                               str(CERTS / "rootA.pem"))
                    self.assertExitStatus(result, UNTRUSTED)
                    result = self.connect_with(server, pinned)
                    self.assertExitStatus(result, MISMATCH)

    def test_version_1_intermediate(self):
        server = self.openssl_server("leafV1.pem", "leafV1.key", "intV1.pem")
        for pinned in ("intV1.pem", "rootA.pem", "leafV1.pem"):
            with self.subTest(pinned=pinned):
                result = self.connect_with(server, pinned, "--ca-file",
                                           str(CERTS / "rootA.pem"))
                self.assertExitStatus(result, UNTRUSTED)
        result = self.connect_with(server, "intV1.pem")
        self.assertExitStatus(result, MISMATCH)


class NoCertificateTests(ToolTestCase):
    """Servers that present no X.509 certificate fail cleanly."""

    def serve(self, *args: str) -> Server:
        if not find_program("gnutls-serv"):
            self.skipTest("gnutls-serv is not installed")
        return self.start_server(
            lambda port: ["gnutls-serv", "--port", str(port), "--echo", *args],
            "gnutls-serv")

    def assertRefused(self, server: Server) -> None:
        result = self.connect(server, "--pin", pin("leaf1.pem"), stdin=b"SECRET\n")
        self.assertExitStatus(result, FAILED)
        self.assertOneErrorLine(result)
        self.assertEqual(result.stdout, b"")
        result = self.run_tool("pins", "--server", server.address)
        self.assertExitStatus(result, FAILED)
        self.assertOneErrorLine(result)

    def test_anonymous(self):
        self.assertRefused(self.serve("--priority", "NORMAL:-KX-ALL:+ANON-ECDH:+ANON-DH"))

    def test_pre_shared_key(self):
        psk = self.workdir / "psk.txt"
        psk.write_text("pintls:9e32cf7786321a828ef7668f09fb35db\n")
        self.assertRefused(self.serve("--pskpasswd", str(psk),
                                      "--priority", "NORMAL:-KX-ALL:+ECDHE-PSK:+PSK"))

    def test_raw_public_key(self):
        key = self.workdir / "leaf1.pub"
        subprocess.run(["certtool", "--pubkey-info", "--load-privkey",
                        str(CERTS / "leaf1.key"), "--outfile", str(key)],
                       check=True, capture_output=True, timeout=COMMAND_TIMEOUT)
        self.assertRefused(self.serve("--rawpkfile", str(key),
                                      "--rawpkkeyfile", str(CERTS / "leaf1.key"),
                                      "--priority", "NORMAL:-CTYPE-ALL:+CTYPE-SRV-RAWPK"))


class EmptyPinSetTests(ToolTestCase):
    """No way of giving no usable pin makes a connection."""

    def test_empty_pin_configurations(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        empty = self.workdir / "empty.txt"
        empty.write_text("")
        comments = self.workdir / "comments.txt"
        comments.write_text("# no pins yet\n\n   \n")
        for args in (["--pin", ""], ["--pin", " ; , "], ["--pin-file", str(empty)],
                     ["--pin-file", str(comments)], ["--pin-file", "/dev/null"],
                     ["--pin-file", str(self.workdir)],
                     ["--pin", pin("leaf1.pem"), "--pin-file", str(empty)],
                     ["--pin-file", str(comments), "--pin", "sha256/"]):
            with self.subTest(args=args):
                result = self.connect(server, *args, stdin=b"SECRET\n")
                self.assertExitStatus(result, USAGE)
                self.assertOneErrorLine(result)
                self.assertEqual(result.stdout, b"")


class PinSpellingTests(ToolTestCase):
    """Every spelling of a pin is that pin; every bad one is refused."""

    def spellings(self) -> dict[str, str]:
        b64 = pin("leaf1.pem").removeprefix("sha256/")
        url_safe = b64.replace("+", "-").replace("/", "_")
        der = (CERTS / "leaf1.der").read_bytes()
        hexdigest = hashlib.sha256(der).hexdigest()
        pairs = [hexdigest[i:i + 2] for i in range(0, 64, 2)]
        return {
            "OkHttp": f"sha256/{b64}", "curl": f"sha256//{b64}",
            "HPKP": f'pin-sha256="{b64}"', "certtool": f"pin-sha256:{b64}",
            "no padding": f"sha256/{b64.rstrip('=')}", "URL-safe": f"sha256/{url_safe}",
            "surrounding space": f"  sha256/{b64} \r\n", "upper-case prefix": f"SHA256/{b64}",
            "curl list": f"sha256//{pin('leaf2.pem')[7:]};sha256//{b64}",
            "hex": hexdigest, "hex with colons": ":".join(pairs).upper(),
            "hex with spaces": " ".join(pairs),
        }

    def test_valid_spellings(self):
        right = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        wrong = self.gnutls_serv("other-chain.pem", "other.key")
        for name, text in self.spellings().items():
            with self.subTest(spelling=name):
                self.assertExitStatus(self.connect(right, "--pin", text, stdin=b"a\n"), OK)
                self.assertExitStatus(self.connect(wrong, "--pin", text), MISMATCH)

    def test_invalid_spellings(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        b64 = pin("leaf1.pem").removeprefix("sha256/")
        der = (CERTS / "leaf1.der").read_bytes()
        invalid = {
            "31 bytes": "sha256/" + base64.b64encode(bytes(31)).decode(),
            "33 bytes": "sha256/" + base64.b64encode(bytes(33)).decode(),
            "! in base64": f"sha256/{b64[:-2]}!=",
            "g in hex": "g" + hashlib.sha256(der).hexdigest()[1:],
            "nothing after the prefix": "sha256/",
            "md5": f"md5/{b64}",
            "SHA-1": "sha1/" + base64.b64encode(hashlib.sha1(der).digest()).decode(),
            "SHA-1 digest as SHA-256": "sha256/"
                                       + base64.b64encode(hashlib.sha1(der).digest()).decode(),
            "32 hex digits": hashlib.md5(der).hexdigest(),
            "empty input digest": "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "URL": f"https://host.test/{b64}",
            "host and port": "host.test:443",
            "bare base64": b64,
        }
        for name, text in invalid.items():
            with self.subTest(spelling=name):
                result = self.connect(server, "--pin", pin("leaf1.pem"), "--pin", text,
                                      stdin=b"SECRET\n")
                self.assertExitStatus(result, USAGE)
                self.assertIn(text[:40], self.assertOneErrorLine(result))


class PinOnlyModeTests(ToolTestCase):
    """Pins stay in force without CA checks, and CA checks are real."""

    def setUp(self) -> None:
        super().setUp()
        self.server = self.gnutls_serv("self.pem", "self.key")

    def test_self_signed_with_its_pin(self):
        result = self.connect(self.server, "--pin", pin("self.pem"), stdin=b"self\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"self\n")

    def test_self_signed_with_another_pin(self):
        result = self.connect(self.server, "--pin", pin("leaf1.pem"))
        self.assertExitStatus(result, MISMATCH)

    def test_self_signed_with_a_ca(self):
        result = self.connect(self.server, "--ca-file", str(CERTS / "rootA.pem"),
                              "--server-name", "host.test", "--pin", pin("self.pem"))
        self.assertExitStatus(result, UNTRUSTED)
        self.assertOneErrorLine(result)


class HostNameTests(ToolTestCase):
    """A pin match never replaces the host-name check."""

    def test_pinned_certificate_for_another_name(self):
        server = self.gnutls_serv("other-chain.pem", "other.key")
        result = self.connect(server, "--ca-file", str(CERTS / "rootA.pem"),
                              "--server-name", "host.test", "--pin", pin("other.pem"))
        self.assertExitStatus(result, UNTRUSTED)
        self.assertOneErrorLine(result)

    def test_pinned_issuer_for_another_name(self):
        # Without CA checks, a pinned issuer still vouches only for
        # certificates that name the server.
        server = self.gnutls_serv("other-chain.pem", "other.key")
        result = self.connect(server, "--server-name", "host.test",
                              "--pin", pin("intA.pem"))
        self.assertExitStatus(result, UNTRUSTED)
        self.assertIn("host.test", self.assertOneErrorLine(result))

        result = self.connect(server, "--server-name", "other.test",
                              "--pin", pin("intA.pem"), stdin=b"issuer\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"issuer\n")

    def test_ip_address_without_server_name(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--ca-file", str(CERTS / "rootA.pem"),
                              "--pin", pin("leaf1.pem"), stdin=b"by address\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"by address\n")

    def test_ca_file_without_certificates(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--ca-file", str(CERTS / "leaf1.key"),
                              "--pin", pin("leaf1.pem"))
        self.assertExitStatus(result, USAGE)
        self.assertOneErrorLine(result)


class HostileSubjectTests(ToolTestCase):
    """A subject name the server chose cannot play tricks on a terminal."""

    # RIGHT-TO-LEFT OVERRIDE: "evil\u202egpj.exe" shows as "evilexe.jpg".
    OVERRIDE = "\u202e"

    def setUp(self) -> None:
        super().setUp()
        if not find_program("certtool"):
            self.skipTest("certtool is not installed")
        template = self.workdir / "evil.tmpl"
        template.write_text(f'cn = "evil{self.OVERRIDE}gpj.exe"\n'
                            "tls_www_server\nsigning_key\nexpiration_days = 3650\n",
                            encoding="utf-8")
        self.key = self.workdir / "evil.key"
        self.cert = self.workdir / "evil.pem"
        for args in (["--generate-privkey", "--key-type=ecdsa", "--outfile", self.key],
                     ["--generate-self-signed", "--load-privkey", self.key,
                      "--template", template, "--outfile", self.cert]):
            subprocess.run(["certtool", *map(str, args)], check=True,
                           capture_output=True, timeout=COMMAND_TIMEOUT)

    def assertEscaped(self, output: bytes) -> None:
        text = output.decode()
        self.assertNotIn(self.OVERRIDE, text)
        self.assertIn("evil\\u202egpj.exe", text)

    def test_pins_of_a_file(self):
        result = self.run_tool("pins", str(self.cert))
        self.assertExitStatus(result, OK)
        self.assertEscaped(result.stdout)

    def test_pins_of_a_server(self):
        server = self.openssl_server(str(self.cert), str(self.key))
        result = self.run_tool("pins", "--server", server.address)
        self.assertExitStatus(result, OK)
        self.assertEscaped(result.stdout)

    def test_mismatch_message(self):
        server = self.openssl_server(str(self.cert), str(self.key))
        result = self.connect(server, "--pin", pin("leaf1.pem"))
        self.assertExitStatus(result, MISMATCH)
        self.assertEscaped(result.stderr)


class LintTests(ToolTestCase):
    """pintls lint: the mistakes in a policy that break clients later."""

    def policy(self, text: str) -> Path:
        path = self.workdir / "policy.ini"
        path.write_text(text)
        return path

    def lint(self, text: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        path = self.policy(text)
        result = self.run_tool("lint", str(path), *args)
        lines = result.stdout.decode().splitlines()
        for line in lines:
            self.assertTrue(line.startswith(f"{path}: "), line)
        return result, [line.removeprefix(f"{path}: ") for line in lines]

    def test_single_pin_is_flagged(self):
        result, findings = self.lint(f"[host.test]\npins={pin('leaf1.pem')}\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(len(findings), 1)
        self.assertTrue(findings[0].startswith("warning: [host.test]: only one pin"))

        result, findings = self.lint(f"[host.test]\npins={pin('leaf1.pem')}\n", "--strict")
        self.assertExitStatus(result, USAGE)
        self.assertTrue(findings[0].startswith("error: [host.test]: only one pin"))

    def test_good_policy_is_quiet(self):
        result, findings = self.lint(
            f"[host.test]\npins={pin('leaf1.pem')};{pin('leaf3.pem')}\n", "--strict")
        self.assertExitStatus(result, OK)
        self.assertEqual(findings, [])

    def test_expired_and_duplicate_pins(self):
        result, findings = self.lint(
            f"[old.test]\npins={pin('leaf1.pem')};{pin('leaf3.pem')}\nexpires=2001-01-01\n"
            f"[twice.test]\npins={pin('leaf1.pem')};{pin('leaf3.pem')};"
            f"pin-sha256:{pin('leaf1.pem').removeprefix('sha256/')}\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(len(findings), 2, findings)
        self.assertIn("[old.test]: its pins expired on 2001-01-01", findings[0])
        self.assertIn("[twice.test]: 1 pin(s) given more than once", findings[1])

    def test_overlap(self):
        result, findings = self.lint(
            f"[example.test]\ninclude-subdomains=true\n"
            f"pins={pin('leaf1.pem')};{pin('leaf3.pem')}\n"
            f"[api.example.test]\npins={pin('leaf2.pem')};{pin('leaf3.pem')}\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(len(findings), 1, findings)
        self.assertIn("[api.example.test] and [example.test]", findings[0])

    def test_invalid_policy(self):
        result, findings = self.lint(f"[host.test]\npins={pin('leaf1.pem')}\nmode=strict\n")
        self.assertExitStatus(result, USAGE)
        self.assertEqual(findings, [])
        self.assertIn("policy.ini: [host.test] mode: ", self.assertOneErrorLine(result))

    def test_missing_policy(self):
        result = self.run_tool("lint", str(self.workdir / "missing.ini"))
        self.assertExitStatus(result, USAGE)
        self.assertOneErrorLine(result)

    def test_example_policy(self):
        result = self.run_tool("lint", str(DATA_DIR / "policy.example.ini"))
        self.assertExitStatus(result, OK)
        self.assertEqual(len(result.stdout.decode().splitlines()), 1)

    def test_against_the_server(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        cases = {
            # a backup pin that is not deployed: nothing to say
            (pin("leaf1.pem"), pin("leaf3.pem")): None,
            # every pin deployed: no backup
            (pin("leaf1.pem"), pin("intA.pem")): "every one of its pins matches",
            # nothing deployed: the policy would refuse the server
            (pin("leaf2.pem"), pin("leaf3.pem")): "none of its pins matches",
        }
        for pins, finding in cases.items():
            with self.subTest(pins=pins):
                result, findings = self.lint(f"[host.test]\npins={';'.join(pins)}\n",
                                             "--server", server.address,
                                             "--server-name", "Host.Test")
                self.assertExitStatus(result, OK)
                if finding is None:
                    self.assertEqual(findings, [])
                else:
                    self.assertEqual(len(findings), 1, findings)
                    self.assertIn(finding, findings[0])

    def test_server_without_entry(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result, findings = self.lint(
            f"[host.test]\npins={pin('leaf1.pem')};{pin('leaf3.pem')}\n",
            "--server", server.address)
        self.assertExitStatus(result, OK)
        self.assertEqual(len(findings), 1, findings)
        self.assertIn("127.0.0.1", findings[0])
        self.assertIn("refuses hosts without one", findings[0])

    def test_unreachable_server(self):
        path = self.policy(f"[host.test]\npins={pin('leaf1.pem')};{pin('leaf3.pem')}\n")
        result = self.run_tool("lint", str(path), "--server", f"127.0.0.1:{free_port()}")
        self.assertExitStatus(result, FAILED)
        self.assertOneErrorLine(result)


class PolicyEntryTests(ToolTestCase):
    """pintls pins --server --policy-entry prints an entry ready to paste."""

    def test_entry_loads_and_pins_the_path(self):
        server = self.openssl_server("leaf1.pem", "leaf1.key", "intA.pem", "intB.pem")
        result = self.run_tool("pins", "--server", server.address, "--server-name",
                               "HOST.test.", "--policy-entry")
        self.assertExitStatus(result, OK)
        text = result.stdout.decode()
        self.assertIn("\n[host.test]\n", text)
        pins_line = re.search(r"(?m)^pins=(.*)$", text).group(1)
        # The leaf and the intermediate on its path; never the decoy.
        self.assertEqual(pins_line.split(";"), [pin("leaf1.pem"), pin("intA.pem")])

        policy = self.workdir / "entry.ini"
        policy.write_text(text)
        lint = self.run_tool("lint", str(policy), "--server", server.address,
                             "--server-name", "host.test")
        self.assertExitStatus(lint, OK)
        findings = lint.stdout.decode().splitlines()
        self.assertEqual(len(findings), 1, findings)
        self.assertIn("none is a backup", findings[0])

    def test_entry_for_an_address(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.run_tool("pins", "--server", server.address, "--policy-entry")
        self.assertExitStatus(result, OK)
        self.assertIn("\n[127.0.0.1]\n", result.stdout.decode())

    def test_needs_a_server(self):
        result = self.run_tool("pins", str(CERTS / "leaf1.pem"), "--policy-entry")
        self.assertExitStatus(result, USAGE)
        self.assertOneErrorLine(result)


class ConnectProxy(socketserver.ThreadingTCPServer):
    """A loopback HTTP proxy that tunnels every CONNECT request to
    127.0.0.1:@target_port, whatever it names, and remembers the requests."""

    daemon_threads = True

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), ConnectProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class ConnectProxyHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            byte = self.request.recv(1)
            if not byte:
                return
            head += byte
        request_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        self.server.requests.append(request_line)
        if not request_line.startswith("CONNECT "):
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        with socket.create_connection(("127.0.0.1", self.server.target_port)) as target:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            try:
                self.relay(self.request, target)
            except OSError:
                pass  # a side that resets ends the tunnel

    @staticmethod
    def relay(client: socket.socket, target: socket.socket) -> None:
        peers = {client: target, target: client}
        with selectors.DefaultSelector() as selector:
            for side in peers:
                selector.register(side, selectors.EVENT_READ)
            while peers:
                for key, _ in selector.select(timeout=SERVER_TIMEOUT) or [(None, None)]:
                    if key is None:
                        return
                    data = key.fileobj.recv(16384)
                    if data:
                        peers[key.fileobj].sendall(data)
                        continue
                    peers[key.fileobj].shutdown(socket.SHUT_WR)
                    selector.unregister(key.fileobj)
                    del peers[key.fileobj]


class ProxyTests(ToolTestCase):
    """The pins hold through an HTTP CONNECT proxy, a second path to the
    server that must not lose them."""

    def proxy(self, server) -> ConnectProxy:
        proxy = ConnectProxy(server.port)
        self.addCleanup(proxy.stop)
        return proxy

    def test_right_pin_through_the_proxy(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        proxy = self.proxy(server)
        result = self.connect(server, "--proxy", proxy.uri, "--pin", pin("leaf1.pem"),
                              stdin=b"through the proxy\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"through the proxy\n")
        self.assertEqual(len(proxy.requests), 1)
        self.assertTrue(proxy.requests[0].startswith(f"CONNECT {server.address} "),
                        proxy.requests)

    def test_mismatch_through_the_proxy(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        proxy = self.proxy(server)
        result = self.connect(server, "--proxy", proxy.uri, "--pin", pin("leaf2.pem"),
                              stdin=b"secret\n")
        self.assertExitStatus(result, MISMATCH)
        self.assertEqual(result.stdout, b"")
        self.assertIn("update", self.assertOneErrorLine(result))
        # The alert is not waited for here: the tool's close can reset the
        # proxy's side of the tunnel before the proxy has passed it on.
        self.assertEqual(len(proxy.requests), 1)

    def test_ca_and_pins_through_the_proxy(self):
        server = self.gnutls_serv("leaf2-chain.pem", "leaf2.key")
        proxy = self.proxy(server)
        result = self.connect(server, "--proxy", proxy.uri, "--server-name", "host.test",
                              "--ca-file", str(CERTS / "rootA.pem"),
                              "--pin", pin("leaf1.pem"))
        self.assertExitStatus(result, MISMATCH)

    def test_bad_proxy(self):
        for proxy in ("not a uri", "ftp://127.0.0.1:21", "http://"):
            with self.subTest(proxy=proxy):
                result = self.run_tool("connect", "127.0.0.1:1", "--proxy", proxy,
                                       "--pin", pin("leaf1.pem"))
                self.assertExitStatus(result, USAGE)
                self.assertOneErrorLine(result)


class ConnectPolicyTests(ToolTestCase):
    """pintls connect --policy: the entry for the server decides."""

    def policy(self, text: str) -> str:
        path = self.workdir / "policy.ini"
        path.write_text(text)
        return str(path)

    def pin_only(self, *names: str, extra: str = "") -> str:
        pins = ";".join(pin(name) for name in names)
        return self.policy(f"[127.0.0.1]\nmode=pin-only\npins={pins}\n{extra}")

    def test_right_pins(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--policy", self.pin_only("leaf1.pem", "leaf3.pem"),
                              stdin=b"policy\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"policy\n")

    def test_wrong_pins(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--policy", self.pin_only("leaf2.pem", "leaf3.pem"),
                              stdin=b"secret\n")
        self.assertExitStatus(result, MISMATCH)
        self.assertEqual(result.stdout, b"")
        message = self.assertOneErrorLine(result)
        self.assertIn(pin("leaf1.pem"), message)
        self.assertIn(pin("leaf2.pem"), message)
        self.assertIn(GNUTLS_SERV_ALERT, server.wait_for_output(GNUTLS_SERV_ALERT))

    def test_host_without_an_entry(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        policy = self.policy(f"[host.test]\npins={pin('leaf1.pem')};{pin('leaf3.pem')}\n")
        result = self.connect(server, "--policy", policy)
        self.assertExitStatus(result, USAGE)
        self.assertIn("no entry for “127.0.0.1”", self.assertOneErrorLine(result))

    def test_ca_and_pins_entry(self):
        policy = self.policy(f"[host.test]\npins={pin('leaf1.pem')};{pin('leaf3.pem')}\n")
        for chain, key, status in (("leaf1-chain.pem", "leaf1.key", OK),
                                   ("leaf2-chain.pem", "leaf2.key", MISMATCH),
                                   ("self.pem", "self.key", UNTRUSTED)):
            with self.subTest(chain=chain):
                server = self.gnutls_serv(chain, key)
                result = self.connect(server, "--policy", policy, "--server-name", "HOST.test.",
                                      "--ca-file", str(CERTS / "rootA.pem"), stdin=b"ca\n")
                self.assertExitStatus(result, status)

    def test_report_only(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        policy = self.policy(f"[host.test]\nreport-only=true\n"
                             f"pins={pin('leaf2.pem')};{pin('leaf3.pem')}\n")
        result = self.connect(server, "--policy", policy, "--server-name", "host.test",
                              "--ca-file", str(CERTS / "rootA.pem"), "--verbose",
                              stdin=b"reported\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"reported\n")
        errors = result.stderr.decode()
        self.assertIn("[host.test] for host.test: no pin matched (report only)", errors)
        self.assertIn(f"presented {pin('leaf1.pem')} (its own key)", errors)

    def test_expired_pins(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        policy = self.pin_only("leaf2.pem", "leaf3.pem", extra="expires=2001-01-01\n")
        result = self.connect(server, "--policy", policy)
        self.assertExitStatus(result, MISMATCH)
        self.assertIn("expired on 2001-01-01", self.assertOneErrorLine(result))

    def test_expired_pins_fall_back(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        policy = self.policy(f"[host.test]\npins={pin('leaf2.pem')};{pin('leaf3.pem')}\n"
                             "expires=2001-01-01\non-expiry=fall-back-to-ca\n")
        result = self.connect(server, "--policy", policy, "--server-name", "host.test",
                              "--ca-file", str(CERTS / "rootA.pem"), stdin=b"fallback\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stdout, b"fallback\n")
        self.assertIn("have expired: certificate authorities alone decided",
                      result.stderr.decode())

    def test_through_a_proxy(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        proxy = ConnectProxy(server.port)
        self.addCleanup(proxy.stop)
        result = self.connect(server, "--policy", self.pin_only("leaf2.pem", "leaf3.pem"),
                              "--proxy", proxy.uri)
        self.assertExitStatus(result, MISMATCH)
        self.assertEqual(len(proxy.requests), 1)

    def test_verbose_with_pins(self):
        server = self.gnutls_serv("leaf1-chain.pem", "leaf1.key")
        result = self.connect(server, "--pin", pin("leaf1.pem"), "--verbose", stdin=b"v\n")
        self.assertExitStatus(result, OK)
        self.assertEqual(result.stderr.decode().splitlines(), [
            f"pintls: the server presented {pin('leaf1.pem')} (its own key)",
            f"pintls: the server presented {pin('intA.pem')}",
        ])

    def test_usage_errors(self):
        policy = self.pin_only("leaf1.pem", "leaf3.pem")
        for args in (["--policy", policy, "--pin", pin("leaf1.pem")],
                     ["--policy", policy, "--system-ca"],
                     ["--policy", str(self.workdir / "missing.ini")]):
            with self.subTest(args=args):
                result = self.run_tool("connect", "127.0.0.1:1", *args)
                self.assertExitStatus(result, USAGE)
                self.assertOneErrorLine(result)

        broken = self.policy(f"[127.0.0.1]\npins={pin('leaf1.pem')}\nexpires=soon\n")
        result = self.run_tool("connect", "127.0.0.1:1", "--policy", broken)
        self.assertExitStatus(result, USAGE)
        self.assertIn("[127.0.0.1] expires:", self.assertOneErrorLine(result))


class DemoTests(ToolTestCase):
    def run_demo(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([DEMO, *args], capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT)

    def test_story(self):
        result = self.run_demo()
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("pin mismatch: update required", result.stdout)
        self.assertIn("received the fatal alert bad_certificate", result.stdout)
        self.assertEqual(result.stdout.count("the server echoed"), 3)

    def test_story_that_does_not_play(self):
        """With no real rotation, client v1 is never told to update."""
        data_dir = self.workdir / "demo"
        data_dir.mkdir()
        for name in ("cert1.pem", "cert2.pem"):
            shutil.copy(DATA_DIR / "demo" / "cert1.pem", data_dir / name)
        for name in ("key1.pem", "key2.pem"):
            shutil.copy(DATA_DIR / "demo" / "key1.pem", data_dir / name)
        result = self.run_demo("--data-dir", str(data_dir))
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)

    def test_missing_data(self):
        result = self.run_demo("--data-dir", str(self.workdir / "missing"))
        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stderr.startswith("pintls-demo: "), result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
