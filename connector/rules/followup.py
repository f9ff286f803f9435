"""At most one open task per pupil per rule: a further occurrence becomes a note on the open task's case.

A rule's follow-up state for one pupil is a small dict, kept by the absence module: ``open`` (the open task's
``ref``, ``case`` and the ``since`` occurrence that opened it) plus whatever the rule adds. The platform closes a
task with ``task.updated``; only then may the next occurrence open a new one.

The open task's ``ref`` and ``case`` follow from the rule, the pupil and ``since`` (:func:`opened`), so the state is
stored with ``since`` alone (:func:`pack`): a pupil's rule states then stay within Redis's compact encoding.
"""
from __future__ import annotations

import json
from datetime import date
from typing import Any, Callable

from connector.contract.actions import Action, Party, case_id, external_ref
from connector.rules.texts import render

FollowUp = dict[str, Any]


def opened(tenant: str, rule_id: str, student_id: str, since: str) -> dict[str, str]:
    """The ``open`` entry of the task an occurrence opened: its key, its case and the occurrence."""
    return {"ref": external_ref(tenant, rule_id, student_id, since, "task"),
            "case": case_id(tenant, rule_id, student_id, since), "since": since}


def pack(state: FollowUp, *, tenant: str, rule_id: str, student_id: str) -> str:
    """Compact JSON; an ``open`` entry that :func:`opened` rebuilds is kept as its ``since``, a closed one dropped."""
    data = {key: value for key, value in state.items() if not (key == "open" and not value)}
    current = data.get("open")
    if current and current == opened(tenant, rule_id, student_id, current.get("since", "")):
        data["open"] = current["since"]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def unpack(raw: bytes | str | None, *, tenant: str, rule_id: str, student_id: str) -> FollowUp:
    state = json.loads(raw) if raw else {}
    if isinstance(state.get("open"), str):
        state["open"] = opened(tenant, rule_id, student_id, state["open"])
    return state


def is_open(state: FollowUp | None) -> bool:
    return bool(state and state.get("open"))


def task_or_note(
    state: FollowUp | None,
    *,
    tenant: str,
    rule_id: str,
    student_id: str,
    occurrence: str,
    make_task: Callable[[str, str], Action],
    make_note: Callable[[str, str], Action],
) -> tuple[list[Action], FollowUp]:
    """The task for a new occurrence, or, while one is open, a note for its case.

    ``make_task(external_ref, case_id)`` and ``make_note(external_ref, case_id)`` build the action with the key the
    occurrence dictates, so the same occurrence met twice (a redelivery, a retried job) yields the same key.
    """
    state = dict(state or {})
    if is_open(state):
        current = state["open"]
        ref = external_ref(tenant, rule_id, student_id, f"{current['since']}/{occurrence}", "note")
        return [make_note(ref, current["case"])], state
    state["open"] = opened(tenant, rule_id, student_id, occurrence)
    task = make_task(state["open"]["ref"], state["open"]["case"])
    return [task], state


def close(state: FollowUp | None, ref: str) -> FollowUp:
    """The platform completed or cancelled the task ``ref``: the rule may open a new one next time."""
    state = dict(state or {})
    if (state.get("open") or {}).get("ref") == ref:
        state["open"] = None
    return state


def follow_up(
    state: FollowUp | None,
    *,
    tenant: str,
    rule_id: str,
    student_id: str,
    occurrence: str,
    text_key: str,
    values: dict[str, Any],
    settings: dict[str, Any],
    language: str,
    assignee: str | None,
    due: date,
    priority: str = "normal",
    evidence: dict[str, Any] | None = None,
) -> tuple[list[Action], FollowUp]:
    """:func:`task_or_note` with the rule's texts ``<text_key>.task.title``, ``.task.body`` and ``.note.body``,
    the task for the rule's responsible role."""
    texts = settings.get("texts")
    return task_or_note(
        state, tenant=tenant, rule_id=rule_id, student_id=student_id, occurrence=occurrence,
        make_task=lambda ref, case: Action(
            kind="task", external_ref=ref, rule_id=rule_id, student_id=student_id, case_id=case,
            assignee=Party(settings["responsible"], assignee), due_date=due.isoformat(), priority=priority,
            title=render(language, f"{text_key}.task.title", texts, **values),
            body=render(language, f"{text_key}.task.body", texts, **values), evidence=dict(evidence or {}),
        ),
        make_note=lambda ref, case: Action(
            kind="note", external_ref=ref, rule_id=rule_id, student_id=student_id, case_id=case, title="",
            body=render(language, f"{text_key}.note.body", texts, **values), evidence=dict(evidence or {}),
        ),
    )
