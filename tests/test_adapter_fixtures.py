"""The cheap test that keeps the one-folder-per-platform pattern honest (STYLE.md, Zulip): every event type an
adapter declares has a fixture, and every inbound fixture is replayed through the door by some test.

"Replayed" is read from what the shared ``replay`` helper recorded in this session, not from a search of the tests'
source for each fixture's name. A search is cheaper and works on any subset of the suite, but it counts a name in a
comment, in a table no test iterates, or a fixture a test only edits before posting; the record counts a fixture
only when a test actually sent it, signed as its platform signs it, and the door accepted it (2xx). The price: the
check runs after every other test (the plugin moves it last), and it can only speak for an adapter whose tests all
ran in this session, so a partial run (``-k``, one file, ``--lf``) skips it and says why.
"""
from __future__ import annotations

import pytest

from tests import webhook_support
from tests.webhook_support import adapter_folders, door, inbound_fixtures, partial_run, unreplayed


@pytest.mark.parametrize("adapter", adapter_folders())
def test_every_event_type_an_adapter_declares_has_a_fixture(adapter):
    declared = door(adapter).declared
    if declared is None:
        pytest.skip(f"the {adapter} adapter declares no event types in one place its door can name")
    missing = set(declared()) - {fixture.event for fixture in inbound_fixtures(adapter)}
    assert not missing, f"connector/adapters/{adapter}/fixtures/ has no <event>__<variant> fixture for {missing}"


def test_a_fixture_no_test_sent_is_named_by_the_check():
    everything_but_one = {(f.adapter, f.name) for f in inbound_fixtures("generic")} - {("generic", "student_enrolled")}
    assert unreplayed("generic", everything_but_one) == ["student_enrolled.json"]


@pytest.mark.after_replays
@pytest.mark.parametrize("adapter", adapter_folders())
def test_every_inbound_fixture_is_replayed_through_the_door(adapter, request):
    reason = partial_run(adapter, request.session)
    if reason:
        pytest.skip(f"cannot tell whether every fixture was replayed: {reason}")
    missing = unreplayed(adapter, webhook_support.REPLAYED)
    assert not missing, (f"no test replayed {missing} from connector/adapters/{adapter}/fixtures/ through the door "
                         "with the shared replay helper and got a 2xx (or the test that does failed before it)")
