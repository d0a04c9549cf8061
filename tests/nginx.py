#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later

"""nginx as an independent HTTPS server on a free loopback port.

As a module::

    with Nginx(workdir, CERTS / "leaf1-chain.pem", CERTS / "leaf1.key",
               {"file": b"contents"}) as server:
        connect_to(server.address)

As a program, it runs a command with the address of an nginx serving
data/certs/leaf1-chain.pem (and /file) appended as ``--nginx HOST:PORT``,
restricted to the TLS version in PINTLS_TEST_TLS_VERSION if it is set, and
exits with the command's status; without nginx, the command runs alone::

    nginx.py -- COMMAND [ARGUMENT...]
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA_DIR = Path(os.environ.get("PINTLS_DATA_DIR",
                               Path(__file__).resolve().parent.parent / "data"))
CERTS = DATA_DIR / "certs"
START_TIMEOUT = 10  # seconds nginx may take to accept connections
FILE_BODY = b"nginx says hello over a pinned connection\n"

CONFIG = """
daemon off;
master_process off;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 16; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_protocols {protocols};
        root {prefix}/www;
    }}
}}
"""

# nginx's ssl_protocols for each PINTLS_TEST_TLS_VERSION.
PROTOCOLS = {None: "TLSv1.2 TLSv1.3", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}


def find_nginx() -> str | None:
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Nginx:
    """An nginx process serving @files over TLS with @chain and @key, for
    the TLS versions nginx's ssl_protocols directive names in @protocols."""

    def __init__(self, workdir: Path, chain: Path, key: Path,
                 files: dict[str, bytes], protocols: str = PROTOCOLS[None]):
        self.prefix = Path(workdir) / ("nginx-" + protocols.replace(" ", "-"))
        # nginx reads relative paths from its prefix, not from here.
        self.chain, self.key = Path(chain).resolve(), Path(key).resolve()
        self.files = files
        self.protocols = protocols
        self.port = None
        self.process = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    @property
    def output_path(self) -> Path:
        """Where nginx logs, as for the other test servers."""
        return self.error_log

    def start(self) -> "Nginx":
        nginx = find_nginx()
        if nginx is None:
            raise FileNotFoundError("nginx is not installed")
        (self.prefix / "www").mkdir(parents=True, exist_ok=True)
        for name, contents in self.files.items():
            (self.prefix / "www" / name).write_bytes(contents)

        # Another process may take the port between the probe and nginx's
        # bind, so try a few.
        for _ in range(3):
            self.port = free_port()
            config = self.prefix / "nginx.conf"
            config.write_text(CONFIG.format(
                prefix=self.prefix, port=self.port, chain=self.chain, key=self.key,
                protocols=self.protocols,
                user="user root;" if os.geteuid() == 0 else ""))
            self.process = subprocess.Popen(
                [nginx, "-p", str(self.prefix), "-c", str(config),
                 "-e", str(self.error_log)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            if self._wait_until_accepting():
                return self
            self.stop()
        raise RuntimeError(f"nginx did not start: {self.log()}")

    def log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_output(self, text: bytes) -> bytes:
        """The error log once it holds @text, or after a timeout."""
        deadline = time.monotonic() + START_TIMEOUT
        while text not in self.log().encode() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.log().encode()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _wait_until_accepting(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def __enter__(self) -> "Nginx":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main() -> int:
    command = sys.argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("usage: nginx.py -- COMMAND [ARGUMENT...]", file=sys.stderr)
        return 2
    if find_nginx() is None:
        return subprocess.run(command).returncode

    protocols = PROTOCOLS[os.environ.get("PINTLS_TEST_TLS_VERSION") or None]
    with tempfile.TemporaryDirectory(prefix="pintls-nginx-") as workdir, \
            Nginx(Path(workdir), CERTS / "leaf1-chain.pem", CERTS / "leaf1.key",
                  {"file": FILE_BODY}, protocols) as server:
        status = subprocess.run([*command, "--nginx", server.address]).returncode
        if status != 0:
            print(f"# nginx log:\n{server.log()}", file=sys.stderr)
    # A command killed by a signal has a negative status.
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
