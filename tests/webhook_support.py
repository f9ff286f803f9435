"""Replaying an adapter's fixtures through the real webhook door, as Zulip's ``check_webhook`` does.

``replay("moodle", "attendance_taken")`` loads ``connector/adapters/moodle/fixtures/attendance_taken.json`` (or
``.txt``), wraps and signs it the way the platform does, POSTs it to ``/webhooks/<tenant>/<instance>`` with the
Flask test client, asserts the answer, and returns the internal events the door queued (read from the RQ jobs this
request created), so the test states exactly what the fixture must become.

How a platform signs and wraps its deliveries is the one thing that differs between adapters; each adapter's folder
registers it once, as a :class:`Door` in its own ``conftest.py`` (a new platform is a new folder, and nothing here
changes). Loading, posting, reading the queue and the bookkeeping of which fixtures were replayed exist only here.
"""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from tests.support import door_clock_at, queued_jobs, signed_headers

ADAPTERS = Path(__file__).resolve().parent.parent / "connector" / "adapters"
INBOUND_SUFFIXES = (".json", ".txt")


@dataclass(frozen=True)
class Fixture:
    """One inbound fixture; its name is ``<event>__<variant>``, and the door may derive headers from either part."""

    adapter: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def event(self) -> str:
        return self.name.split("__", 1)[0]

    @property
    def variant(self) -> str | None:
        return self.name.split("__", 1)[1] if "__" in self.name else None

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def json(self) -> Any:
        return json.loads(self.path.read_text())


Wrap = Callable[..., tuple[bytes, dict[str, str]]]


@dataclass(frozen=True)
class Door:
    """How one adapter type's fixtures reach the door.

    ``wrap(fixture, request, **options)`` returns the body and headers the platform would send; ``request`` is
    pytest's, for the keys or secrets a test's fixtures hold, and ``options`` are what a test may vary (another
    key, a stale timestamp). ``instance`` is the adapter's name at the test tenant, ``needs`` the pytest fixtures
    that configure it there, and ``declared`` the event types the adapter says it understands, spelled as the
    event part of a fixture name (``None`` when the adapter keeps no such list). ``sent_at(fixture)`` is when the
    platform sent it (an RFC 3339 string or a datetime): the door refuses what is dated more than a day ahead of its
    clock, so a fixture is let in at its own time while the rules still run at the test's clock.
    """

    adapter: str
    instance: str
    wrap: Wrap
    needs: tuple[str, ...] = ()
    declared: Callable[[], Iterable[str]] | None = None
    sent_at: Callable[[Fixture], Any] | None = None  # when the platform sent it: the door's clock is set to that


DOORS: dict[str, Door] = {}
REPLAYED: set[tuple[str, str]] = set()  # (adapter, fixture name) answered 2xx in this session


def register(door: Door) -> Door:
    DOORS[door.adapter] = door  # a conftest imported twice registers the same door again
    return door


def standard_webhooks(fixture: Fixture, request, **options) -> tuple[bytes, dict[str, str]]:
    """Signed as a Standard Webhooks sender signs (``secret=`` and ``timestamp=`` may be varied)."""
    body = fixture.read_bytes()
    return body, signed_headers(body, **options)


def adapter_folders() -> list[str]:
    """Every adapter type with inbound fixtures: a folder under ``connector/adapters`` holding ``fixtures/``."""
    return sorted(p.parent.name for p in ADAPTERS.glob("*/fixtures") if p.is_dir())


def door(adapter: str) -> Door:
    """The adapter's registered door, importing its folder's ``conftest.py`` if pytest has not collected it yet."""
    if adapter not in DOORS:
        try:
            importlib.import_module(f"connector.adapters.{adapter}.conftest")
        except ModuleNotFoundError as exc:
            if exc.name != f"connector.adapters.{adapter}.conftest":
                raise
    assert adapter in DOORS, f"connector/adapters/{adapter}/conftest.py registers no Door for its fixtures"
    return DOORS[adapter]


def inbound_fixtures(adapter: str) -> list[Fixture]:
    """The fixtures a platform sends us (``fixtures/outbound/`` holds its answers to our calls, not these)."""
    folder = ADAPTERS / adapter / "fixtures"
    return [Fixture(adapter, p) for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in INBOUND_SUFFIXES]


def load(adapter: str, name: str) -> Fixture:
    found = [f for f in inbound_fixtures(adapter) if f.name == name]
    assert len(found) == 1, f"connector/adapters/{adapter}/fixtures/ has {len(found)} inbound fixtures named {name!r}"
    return found[0]


@pytest.fixture
def replay(request, client, rt):
    """``replay(adapter, name, *, tenant, expect_status, expect_answer, expect_error, expect_events, **signing)``
    -> the events queued by this one request, in the order the door queued them.

    ``expect_answer`` is the whole JSON answer, ``expect_error`` only its ``error`` code (a refusal's message is the
    adapter's prose, not part of what a replay pins)."""

    def replay_(adapter: str, name: str, *, tenant: str = "skole-a", expect_status: int = 202,
                expect_answer: Any = None, expect_error: str | None = None,
                expect_events: list[dict[str, Any]] | None = None, **signing: Any):
        entrance = door(adapter)
        for needed in entrance.needs:
            request.getfixturevalue(needed)
        fixture = load(adapter, name)
        body, headers = entrance.wrap(fixture, request, **signing)
        before = {job.id for job in queued_jobs(rt)}
        with door_clock_at(client, entrance.sent_at(fixture) if entrance.sent_at else None):
            response = client.post(f"/webhooks/{tenant}/{entrance.instance}", data=body, headers=headers)
        answer = response.get_json(silent=True)
        assert response.status_code == expect_status, f"{adapter}/{name}: {response.status_code} {answer}"
        if expect_answer is not None:
            assert answer == expect_answer, f"{adapter}/{name}"
        if expect_error is not None:
            assert (answer or {}).get("error") == expect_error, f"{adapter}/{name}: {answer}"
        if 200 <= response.status_code < 300:
            REPLAYED.add((adapter, name))
        events = [event for job in queued_jobs(rt) if job.id not in before for event in job.args[3]]
        if expect_events is not None:
            assert events == expect_events, f"{adapter}/{name}"
        return events

    return replay_


# --- the pattern check: every inbound fixture is replayed ---------------------------------------------------------

AFTER_REPLAYS = "after_replays"
DESELECTED: set[Path] = set()  # test files some of whose tests were deselected (-k, -m, --deselect, --lf)


def pytest_configure(config):
    config.addinivalue_line("markers", f"{AFTER_REPLAYS}: runs after every other test, to read what was replayed")


def pytest_deselected(items):
    DESELECTED.update(item.path for item in items)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    last = [item for item in items if item.get_closest_marker(AFTER_REPLAYS)]
    items[:] = [item for item in items if not item.get_closest_marker(AFTER_REPLAYS)] + last


def partial_run(adapter: str, session) -> str | None:
    """Why this session cannot say whether ``adapter``'s fixtures are all replayed, or ``None`` when it ran every
    test in the adapter's folder."""
    folder = ADAPTERS / adapter
    patterns = session.config.getini("python_files")
    on_disk = {p for pattern in patterns for p in folder.glob(pattern)}
    collected = {item.path for item in session.items if item.path.parent == folder}
    if collected != on_disk:
        return f"{len(collected)} of the {len(on_disk)} test files in connector/adapters/{adapter}/ were collected"
    if any(path.parent == folder for path in DESELECTED):
        return f"some of connector/adapters/{adapter}/'s tests were deselected"
    narrowed = [arg for arg in session.config.args
                if "::" in arg and Path(arg.split("::")[0]).resolve().parent == folder]
    if narrowed:
        return f"only some tests of connector/adapters/{adapter}/ were asked for ({narrowed[0]})"
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return "under pytest-xdist each worker keeps its own record of what it replayed"
    return None


def unreplayed(adapter: str, replayed: set[tuple[str, str]]) -> list[str]:
    return [f.path.name for f in inbound_fixtures(adapter) if (adapter, f.name) not in replayed]
