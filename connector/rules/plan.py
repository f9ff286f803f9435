"""The absence action plan's settings: the defaults from the seed document, and their validation.

Every number a school can change lives here with its default, so ``check-config`` can reject a bad value before a
worker ever meets it.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

DEFAULT_PLAN: dict[str, dict[str, Any]] = {
    "absence.notice_missing": {
        "enabled": True,
        # Guardians must give a written notice with a reason "senest innen tre skoledager".
        "notice_school_days": 3,
        # The contact teacher's follow-up task is due this many school days after the notice deadline.
        "task_school_days": 2,
    },
}


class NoticeMissingSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    enabled = fields.Boolean()
    notice_school_days = fields.Integer(validate=validate.Range(min=0, max=30))
    task_school_days = fields.Integer(validate=validate.Range(min=0, max=30))


RULE_SCHEMAS: dict[str, type[Schema]] = {
    "absence.notice_missing": NoticeMissingSchema,
}


def merge_plan(overrides: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The tenant's plan: the defaults with the tenant's overrides on top.

    Raises ``ValidationError`` whose ``messages`` map ``rule id -> field -> [message]``; an unknown rule id is an
    error too, so a typo does not silently leave a rule at its default.
    """
    plan = copy.deepcopy(DEFAULT_PLAN)
    errors: dict[str, Any] = {}
    for rule_id, settings in (overrides or {}).items():
        schema = RULE_SCHEMAS.get(rule_id)
        if schema is None:
            errors[rule_id] = [f"Unknown rule id. Known: {', '.join(sorted(RULE_SCHEMAS))}."]
            continue
        try:
            plan[rule_id].update(schema().load(settings or {}))
        except ValidationError as exc:
            errors[rule_id] = exc.messages
    if errors:
        raise ValidationError(errors)
    return plan
