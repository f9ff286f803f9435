"""What a rule may ask for besides actions: a deadline to re-evaluate later, or one to drop."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Schedule:
    """Re-evaluate ``payload`` with the rule's ``on_deadline`` at ``due``; a due time already past fires at once."""

    id: str
    due: datetime
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancel:
    id: str
