#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A gnutls-serv on a free loopback port, for the binding tests and examples.

The server presents data/certs/leaf1-chain.pem. The right pin is the
public-key pin of leaf1.pem and the wrong pin that of leaf2.pem, both
computed by certtool, so the tests do not trust pintls to compute them.

As a module::

    with LocalServer('echo') as server:
        connect_to(server.address, server.right_pin)

As a program, it runs a command against a server and exits with its status::

    localserver.py [--http] -- COMMAND [ARGUMENT...]

The command finds the server in PINTLS_TEST_HOST, PINTLS_TEST_PORT and
PINTLS_TEST_ADDRESS (host:port), the pins in PINTLS_TEST_RIGHT_PIN and
PINTLS_TEST_WRONG_PIN, and what the HTTP server serves in
PINTLS_TEST_HTTP_BODY.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA_DIR = Path(os.environ.get('PINTLS_DATA_DIR',
                               Path(__file__).resolve().parents[2] / 'data'))
CERTS_DIR = DATA_DIR / 'certs'
HOST = '127.0.0.1'
HTTP_BODY = 'Hello from the pinned server\n'
START_TIMEOUT = 10.0


def spki_pin(certificate):
    """Returns the sha256/BASE64 pin of a PEM certificate, as certtool computes it."""
    info = subprocess.run(['certtool', '--certificate-info', '--infile', str(certificate)],
                          check=True, capture_output=True, text=True).stdout
    for line in info.splitlines():
        line = line.strip()
        if line.startswith('pin-sha256:'):
            return 'sha256/' + line.removeprefix('pin-sha256:')
    raise RuntimeError(f'certtool printed no public-key pin for {certificate}')


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class ServerError(RuntimeError):
    pass


class LocalServer:
    """gnutls-serv as an echo server ('echo') or a one-page HTTP server ('http')."""

    def __init__(self, kind='echo'):
        if kind not in ('echo', 'http'):
            raise ValueError(f'unknown server kind {kind!r}')
        self.kind = kind
        self.port = None
        self.right_pin = spki_pin(CERTS_DIR / 'leaf1.pem')
        self.wrong_pin = spki_pin(CERTS_DIR / 'leaf2.pem')
        self._process = None
        self._workdir = None

    @property
    def address(self):
        return f'{HOST}:{self.port}'

    def environment(self):
        return {
            'PINTLS_TEST_HOST': HOST,
            'PINTLS_TEST_PORT': str(self.port),
            'PINTLS_TEST_ADDRESS': self.address,
            'PINTLS_TEST_RIGHT_PIN': self.right_pin,
            'PINTLS_TEST_WRONG_PIN': self.wrong_pin,
            'PINTLS_TEST_HTTP_BODY': HTTP_BODY,
            'PINTLS_TEST_CERTS_DIR': str(CERTS_DIR),
        }

    def start(self):
        serv = shutil.which('gnutls-serv')
        if serv is None:
            raise ServerError('gnutls-serv is not installed')

        self._workdir = tempfile.TemporaryDirectory(prefix='pintls-server-')
        # Another process may take the port between the probe and the
        # server's bind, so try a few ports before giving up.
        for _ in range(3):
            self.port = free_port()
            with open(self._log_path(), 'ab') as log:
                self._process = subprocess.Popen(self._command(serv),
                                                 stdin=subprocess.DEVNULL,
                                                 stdout=log, stderr=log)
            if self._wait_until_listening():
                return self
            self._terminate()
        self.stop()
        raise ServerError(f'gnutls-serv did not start:\n{self.log()}')

    def stop(self):
        self._terminate()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def log(self):
        if self._workdir is None or not self._log_path().exists():
            return ''
        return self._log_path().read_text(errors='replace')

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _command(self, serv):
        command = [serv, f'--{self.kind}', f'--port={self.port}',
                   f'--x509certfile={CERTS_DIR / "leaf1-chain.pem"}',
                   f'--x509keyfile={CERTS_DIR / "leaf1.key"}',
                   '--disable-client-cert', '--quiet']
        if self.kind == 'http':
            body = Path(self._workdir.name) / 'body.txt'
            body.write_text(HTTP_BODY)
            command.append(f'--httpdata={body}')
        return command

    def _log_path(self):
        return Path(self._workdir.name) / 'server.log'

    def _wait_until_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def _terminate(self):
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


def main():
    parser = argparse.ArgumentParser(
        description='Run a command against a local gnutls-serv.')
    parser.add_argument('--http', dest='kind', action='store_const', const='http',
                        default='echo', help='serve one HTTP page instead of echoing')
    parser.add_argument('command', nargs='+', help='the command and its arguments')
    args = parser.parse_args()

    with LocalServer(args.kind) as server:
        env = dict(os.environ, **server.environment())
        status = subprocess.run(args.command, env=env).returncode
        if status != 0:
            print(f'# gnutls-serv log:\n{server.log()}', file=sys.stderr)
    # A command killed by a signal has a negative status.
    return status if status >= 0 else 128 - status


if __name__ == '__main__':
    sys.exit(main())
