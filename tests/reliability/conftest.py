"""Fixtures of the reliability suite: the real processes on a private Redis, and a recording platform.

Every test here is marked ``reliability`` (run with the rest by the README's command; ``-m reliability`` runs them
alone, ``-m "not reliability"`` leaves them out) and has a timeout, so a hang fails the test instead of CI.
"""
from __future__ import annotations

import uuid

import pytest

from tests.redis_server import redis_server  # noqa: F401  (the private, restartable Redis)
from tests.reliability.harness import RecordingPlatform, System


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def recording_platform():
    platform = RecordingPlatform(token=f"rel-token-{uuid.uuid4().hex[:8]}").start()
    yield platform
    platform.stop()


@pytest.fixture
def make_system(tmp_path, redis_server, recording_platform):  # noqa: F811
    """``make_system(tenants=[...], groups=[...])``: a :class:`System` (nothing started yet); every process it
    started is stopped afterwards (SIGTERM, then SIGKILL to its session), and its logs are printed on failure."""
    made: list[System] = []

    def make(tenants=("skole-a",), groups=("7A", "7B")) -> System:
        system = System(tmp_path / f"system-{len(made)}", redis_server, recording_platform, list(tenants),
                        list(groups))
        made.append(system)
        return system

    yield make
    for system in made:
        system.stop_all()


@pytest.fixture
def system(make_system):
    """One tenant, two groups, nothing started: ``system.start_web()``, ``start_worker()``, ``start_scheduler()``."""
    return make_system()
