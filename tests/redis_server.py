"""A private ``redis-server`` for tests that must restart, kill or read the files of the Redis they use.

The shared Redis on 127.0.0.1:6379 (``tests/support.py``) is right for almost every test. A few tests need their
own server: the reliability suite kills and restarts it, and the privacy checks read its append-only file and
snapshot from disk. This module starts one on a free loopback port, in a directory the test owns, with
``appendonly yes`` as the deployment guide recommends, and stops it again (also after kill -9).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    """One ``redis-server`` process; ``restart()`` keeps the port and the directory, so data comes back from the
    AOF exactly as it would on a real host."""

    directory: Path
    port: int = field(default_factory=free_port)
    appendonly: bool = True
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs) -> Redis:
        return Redis.from_url(self.url, **kwargs)

    def start(self, timeout: float = 10.0) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
             "--save", "", "--logfile", str(self.directory / "redis.log"), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client(socket_timeout=0.5).ping():
                    return self
            except Exception:  # not listening yet, or still loading the AOF
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout} s")

    def stop(self) -> None:
        """A clean shutdown (the AOF is flushed)."""
        if self.process and self.process.poll() is None:
            try:
                self.client(socket_timeout=2).shutdown(nosave=False)
            except Exception:  # the connection closes as the server exits
                pass
            self._reap()

    def kill(self) -> None:
        """kill -9: what survives is what the AOF had (``appendfsync always``: every acknowledged write)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self._reap()

    def restart(self, hard: bool = False) -> "RedisServer":
        self.kill() if hard else self.stop()
        return self.start()

    def files(self) -> list[Path]:
        """Everything Redis wrote to disk: the AOF (a directory of files since Redis 7) and any snapshot."""
        return [p for p in self.directory.rglob("*") if p.is_file() and p.name != "redis.log"]

    def _reap(self) -> None:
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def redis_server(tmp_path):
    """A private Redis with ``appendonly yes`` in this test's temporary directory, stopped afterwards."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()
