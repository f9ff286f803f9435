"""Tasks as Planner tasks in the school's plan, assigned to one person.

Planner has no idempotency key, so each task carries a short tag of its ``external_ref`` at the end of its title,
and the plan is searched for that tag before a task is created. The text goes into the task's details, which is
a second object with its own etag: a task found without a description gets it on the next try.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from connector.contract.actions import Action

OSLO = ZoneInfo("Europe/Oslo")
MAX_TITLE = 255
MAX_PAGES = 100
PRIORITY = {"high": 3, "normal": 5}  # Planner's own values for "important" and "medium"


def ref_tag(external_ref: str) -> str:
    return f"[{external_ref[:16]}]"


def task_title(action: Action) -> str:
    tag = ref_tag(action.external_ref)
    return f"{action.title[: MAX_TITLE - len(tag) - 1]} {tag}"


def due_date_time(due: str) -> str:
    """Noon in Oslo on the due day, in UTC: the same calendar day in every time zone a Planner client may use."""
    moment = datetime.combine(date.fromisoformat(due), time(12), OSLO).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def task_body(action: Action, plan_id: str, bucket_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "planId": plan_id,
        "title": task_title(action),
        "assignments": {
            action.assignee.id: {"@odata.type": "#microsoft.graph.plannerAssignment", "orderHint": " !"},
        },
        "priority": PRIORITY.get(action.priority, PRIORITY["normal"]),
    }
    if bucket_id:
        body["bucketId"] = bucket_id
    if action.due_date:
        body["dueDateTime"] = due_date_time(action.due_date)
    return body


def details_body(action: Action) -> dict[str, Any]:
    return {"description": f"{action.body}\n\nRef: {action.external_ref}", "previewType": "description"}


def find_tagged(pages: Iterator[list[dict[str, Any]]], external_ref: str) -> dict[str, Any] | None:
    tag = ref_tag(external_ref)
    for tasks in pages:
        for task in tasks:
            if isinstance(task, dict) and str(task.get("title", "")).endswith(tag):
                return task
    return None
