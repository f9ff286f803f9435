"""The journal: what the connector wrote to each school's platform, or gave up on, for the admin page.

``keys.journal(tenant)``: a Redis stream, one entry per action that ended (written, or a dead letter), added in the
same transaction as the ledger or the dead letter (``store.outbox``). Its fields are ids, dates and codes only:

=========  ===================================================================================================
``ref``    the action's ``external_ref``
``kind``   task, alert or note
``rule``   the rule id that decided it (``admin.test`` for an admin's test task)
``pupil``  the platform's pupil id, or empty (a routine about a group)
``case``   the case id, or empty; ``group`` the group id, or empty
``due``    the task's deadline (YYYY-MM-DD), or empty
``step``   where on the plan it stands: the ladder's ``line``/``level``, empty for the absence plan's rules
``out``    ``written`` or ``dead``; ``status`` the platform's HTTP status, or empty
``adapter`` the adapter that wrote it; ``at`` when (epoch seconds, the connector's clock)
``evidence`` why the rule decided it, as compact JSON of dates, counts and codes (``engine.outbox.evidence``)
=========  ===================================================================================================

Never a title, a body or any other text a rule or a person wrote. Entries older than :data:`KEPT_SECONDS` (five
weeks, as the ledger) are trimmed as new ones are added (``XADD … MINID ~``), so the journal does not outgrow the
ledger it mirrors.
"""
from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from connector.store.keys import Keys

KEPT_SECONDS = 5 * 7 * 24 * 3600
FIELDS = ("ref", "kind", "rule", "pupil", "case", "group", "due", "step", "out", "status", "adapter", "evidence")


@dataclass(frozen=True)
class Entry:
    at: float  # epoch seconds, from the stream id
    ref: str
    kind: str
    rule: str
    pupil: str
    case: str
    group: str
    due: str
    step: str
    out: str
    status: str
    adapter: str
    evidence: str = ""


def record(pipe, keys: Keys, tenant: str, fields: dict[str, object], now: float) -> None:
    """Queue one entry on ``pipe`` (the caller's transaction); unknown fields are refused, so no text slips in."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a journal field: {', '.join(sorted(unknown))}")
    values = {name: "" if fields.get(name) is None else str(fields[name]) for name in FIELDS}
    values["at"] = f"{now:.3f}"  # the connector's clock (the stream's id is the server's)
    pipe.xadd(keys.journal(tenant), values, minid=int((now - KEPT_SECONDS) * 1000), approximate=True)
    # Entries older than KEPT_SECONDS go as new ones come; the stream itself goes when nothing came for as long (it
    # holds pupil ids and dates: a school that stops using the connector must not keep them).
    pipe.expire(keys.journal(tenant), int(KEPT_SECONDS))


def read(redis: Redis, keys: Keys, tenant: str, limit: int = 5000) -> list[Entry]:
    """The newest ``limit`` entries, newest first."""
    entries = []
    for stream_id, values in redis.xrevrange(keys.journal(tenant), count=limit):
        decoded = {key.decode(): value.decode() for key, value in values.items()}
        at = float(decoded.get("at") or int(stream_id.split(b"-", 1)[0]) / 1000)
        entries.append(Entry(at=at, **{name: decoded.get(name, "") for name in FIELDS}))
    return entries
