"""What every rule's settings have in common, and the default plan shipped with the package.

The default plan (``default_plan.yaml``) is the seed document as data: for each rule its routine, when and who in
the seed's own words (for ``connector plan show``) and its default settings. A rule module declares its settings
schema by subclassing :class:`RuleSettings`; a school overrides any setting, the responsible role, or the wording
of any of the rule's texts.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate

SEED_PLAN = Path(__file__).parent / "default_plan.yaml"

ROLES = (
    "contact_teacher", "subject_teacher", "social_teacher", "school_environment_team", "resource_person",
    "nearest_leader", "principal", "school_owner", "class_parent_rep", "parents_council",
)


class MonthDay(fields.String):
    """A yearly date as ``MM-DD`` (a school's own routine dates recur every school year)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        month, _, day = text.partition("-")
        if not (month.isdigit() and day.isdigit() and 1 <= int(month) <= 12 and 1 <= int(day) <= 31):
            raise ValidationError("Expected a yearly date as MM-DD, e.g. 09-15.")
        return f"{int(month):02d}-{int(day):02d}"


class ClockTime(fields.String):
    """A local time of day as ``HH:MM`` (Europe/Oslo)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        hour, _, minute = text.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise ValidationError("Expected a time as HH:MM, e.g. 12:00.")
        return f"{int(hour):02d}:{int(minute):02d}"


def school_days(maximum: int = 60, **kwargs) -> fields.Integer:
    """A number of school days; 60 is three months of school, beyond any deadline the seed describes."""
    return fields.Integer(validate=validate.Range(min=0, max=maximum), **kwargs)


def share(**kwargs) -> fields.Float:
    return fields.Float(validate=validate.Range(min=0, max=1), **kwargs)


class RuleSettings(Schema):
    """Unknown keys are errors (marshmallow's default): a misspelt setting must not silently stay at its default."""

    enabled = fields.Boolean()
    responsible = fields.String(validate=validate.OneOf(ROLES))
    texts = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(validate=validate.OneOf(("nb", "nn", "en"))), values=fields.String()),
    )


@cache
def seed() -> dict[str, dict[str, Any]]:
    """The default plan as the YAML file states it (routine, when, responsible, settings) per rule id."""
    return yaml.safe_load(SEED_PLAN.read_text(encoding="utf-8"))


def defaults(rule_id: str) -> dict[str, Any]:
    """A rule's default settings, with its responsible role, ready to be overridden by a school."""
    entry = seed()[rule_id]
    return {"responsible": entry["responsible"], "texts": {}, **entry["settings"]}
