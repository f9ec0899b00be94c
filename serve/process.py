"""``server_process``: a ``fairgym serve`` child process on a free loopback port, for tests, benchmarks and scripts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    """``GET url`` as JSON."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


@contextmanager
def server_process(*flags: str, start_timeout_s: float = 60.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``fairgym serve --port <free> *flags`` on 127.0.0.1; yield ``(base URL, process)`` once ``/health``
    answers; stop the process on exit.

    Raises:
        RuntimeError: the server exited or did not answer within ``start_timeout_s`` (with its output).
    """
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "fairgym", "serve", "--port", str(port), *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                get_json(f"{url}/health")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"fairgym serve did not start: {process.communicate()[0]}") from None
                time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
