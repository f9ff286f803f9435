"""What a rule declares about itself, so nobody keeps a table of rules by hand.

Each rule module declares ``TRIGGERS = {rule id: Triggers(...)}``: which deadline it sets and how it is judged again
when it falls due, and what a platform's ``task.updated`` on a task it created means. The engine turns these words
into its routing tables (``engine/absence.py``, ``engine/cases.py``); :func:`rule_modules` finds the modules, so a
new rule is a new module (its ``PLAN``, ``TRIGGERS``, texts and unit test) and nothing else changes.

The words:

deadline
    ``pupil_day``: one pupil's day is judged again (the module's ``on_deadline(ctx, day, facts, state, step)``,
    :class:`DayFacts` holding what it reads); ``routine``: a calendar routine for every group falls due;
    ``case``: a guardian's case's deadline.
task updated
    ``follow_up_closed``: the rule's one open task is done, the next occurrence may open a new one;
    ``conversation_held``: a conversation was held (completed with its date): the persistence watch starts;
    ``meeting_held``: a persistence meeting was held: the watch starts again; ``level_task``: a case's level
    acknowledged, escalated or resolved; ``activity_plan``: a case's activity plan was completed or cancelled.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Mapping

DEADLINES = ("pupil_day", "routine", "case")
TASK_UPDATES = ("follow_up_closed", "conversation_held", "meeting_held", "level_task", "activity_plan")


@dataclass(frozen=True)
class Triggers:
    deadline: str | None = None
    task_updated: str | None = None

    def __post_init__(self):
        if self.deadline not in (None, *DEADLINES):
            raise ValueError(f"unknown deadline kind {self.deadline!r}")
        if self.task_updated not in (None, *TASK_UPDATES):
            raise ValueError(f"unknown task update kind {self.task_updated!r}")


@dataclass(frozen=True)
class DayFacts:
    """What a ``pupil_day`` deadline re-reads of the pupil's day: its record, the guardians' notices, and the
    lessons the pupil's group had that day (read only for a rule that declares ``READS_LESSONS_HELD``)."""

    record: Mapping[str, str]
    notices: Mapping[str, str]
    lessons_held: frozenset[str] = field(default_factory=frozenset)


@cache
def rule_modules() -> tuple[ModuleType, ...]:
    """Every module of the rules package that declares plan settings (``PLAN``), in name order."""
    import connector.rules as package

    modules = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "PLAN"):
            modules.append(module)
    return tuple(modules)


def declared() -> dict[str, tuple[ModuleType, Triggers]]:
    """Rule id -> (its module, its triggers), for every rule that declares any."""
    return {rule_id: (module, triggers) for module in rule_modules()
            for rule_id, triggers in getattr(module, "TRIGGERS", {}).items()}
