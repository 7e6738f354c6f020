"""One `guidelinekg serve` process for the whole test session (test_serve, test_pages_chromium).

Each test module asks for it through its own session fixture; the process is started once
(on a free port, polled until it answers) and stopped with SIGTERM at the end of the session,
when the fixture's finalizer checks that it stopped cleanly.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

QUERY_TIMEOUT = 3


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServerProcess:
    port: int
    log_path: Path
    process: subprocess.Popen
    stopped: bool = field(default=False)
    exit_code: int | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_lines_with(self, fragment: str, timeout: float = 10.0) -> list[str]:
        """The log's lines holding ``fragment``, waiting for the first: the server writes
        its access line as it answers, so a reader can be there before it."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log().splitlines() if fragment in line]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request, redirects not followed: (status, headers, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            connection.close()

    def stop(self) -> int:
        if not self.stopped:
            self.stopped = True
            self.process.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.exit_code = self.process.wait(timeout=10)
        return self.exit_code  # type: ignore[return-value]


_SERVER: ServerProcess | None = None


def serve_command(port: int, timeout: float = QUERY_TIMEOUT) -> list[str]:
    return [sys.executable, "-m", "guidelinekg.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--query-timeout", str(timeout)]


def shared_server(log_folder: Path) -> ServerProcess:
    """The session's server, started on first use."""
    global _SERVER
    if _SERVER is not None:
        return _SERVER
    port = free_port()
    log_path = log_folder / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(serve_command(port), stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = ServerProcess(port, log_path, process)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"guidelinekg serve exited early:\n{server.log()}")
        try:
            status, _, _ = server.request("GET", "/")
            if status == 200:
                _SERVER = server
                return server
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"guidelinekg serve did not answer in time:\n{server.log()}")


def stop_shared_server() -> tuple[int | None, str]:
    """Stop the session's server (once); its exit code and log."""
    if _SERVER is None:
        return None, ""
    code = _SERVER.stop()
    return code, _SERVER.log()
