"""How Moodle's fixtures reach the door, as ``local_webhooks`` posts them: the event with the hook's token inside
it, as JSON or, from the plugin's 2019 task, as form fields (the ``.txt`` fixtures); a relay in front of Moodle
that signs as Standard Webhooks posts it without the token (the ``__signed`` variant).

The Moodle adapter itself is configured by the ``moodle`` fixture in ``tests.py``, which a replay asks for."""
from __future__ import annotations

from connector.adapters.moodle.events import EVENT_NAMES
from tests.support import signed_headers
from tests.webhook_support import Door, Fixture, register

FORM = "application/x-www-form-urlencoded"


def local_webhooks(fixture: Fixture, request, signed: bool | None = None, content_type: str | None = None,
                   **signing) -> tuple[bytes, dict[str, str]]:
    """``signed=True`` (with ``secret=`` or ``timestamp=``) signs a fixture that is not the signed variant."""
    body = fixture.read_bytes()
    signed = fixture.variant == "signed" if signed is None else signed
    headers = signed_headers(body, **signing) if signed else {}
    media = content_type or (FORM if fixture.path.suffix == ".txt" else "application/json")
    return body, {**headers, "content-type": media}


register(Door(
    "moodle", instance="moodle", wrap=local_webhooks, needs=("moodle",),
    declared=lambda: [name.rsplit("\\", 1)[-1] for name in EVENT_NAMES],  # \mod_attendance\event\attendance_taken
))
