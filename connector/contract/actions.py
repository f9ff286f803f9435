"""What the rules ask the platform to show people: tasks, alerts and notes.

Actions are plain, JSON-serialisable data. Each carries an ``external_ref`` derived from what it is about, never
from when it was computed, so the same occurrence always yields the same key: a retried job, a redelivered
webhook or a restarted worker cannot make a second task.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("task", "alert", "note")


def external_ref(tenant: str, rule_id: str, subject: str, occurrence: str, kind: str) -> str:
    """The one way to build an action's idempotency key.

    ``subject`` is the pupil or case the action is about, ``occurrence`` what makes this one distinct (for
    example the absence date). Hashed, so the key carries no pupil id to the platform's logs and stays short: 96
    bits, far from any collision among a school owner's actions, and every byte is kept once per action.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown action kind {kind!r}")
    raw = "\x1f".join((tenant, rule_id, subject, occurrence, kind))
    return "sf1-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def case_id(tenant: str, rule_id: str, subject: str, occurrence: str) -> str:
    """The case a task opens, so later notes on the same matter attach to it on the platform."""
    raw = "\x1f".join((tenant, rule_id, subject, occurrence))
    return "case-" + hashlib.sha256(raw.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Party:
    role: str
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, **({"id": self.id} if self.id else {})}


@dataclass(frozen=True)
class Action:
    kind: str
    external_ref: str
    rule_id: str
    student_id: str | None  # None only for a routine about a whole group (``group_id`` then says which)
    title: str
    body: str
    assignee: Party | None = None  # task: who does it; alert: who is told
    due_date: str | None = None  # task only, YYYY-MM-DD
    priority: str = "normal"  # task: normal / high
    severity: str = "info"  # alert: info / warning / urgent
    visibility: str = "staff"  # note: staff / guardians
    case_id: str | None = None
    group_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Why the rule decided it, for the admin page ("what the connector did"): dates, counts and codes only, never
    # text (the absence dates counted, how many, the notice's deadline). Not sent to the platform.
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["assignee"] = self.assignee.to_dict() if self.assignee else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Action":
        data = dict(data)
        if data.get("assignee"):
            data["assignee"] = Party(**data["assignee"])
        return cls(**data)
