"""A school's plan settings: each rule's defaults (from the seed documents) and their validation, in one table.

Each rule module declares ``PLAN = {rule id: (defaults, marshmallow schema)}``; this module gathers them from every
module of the rules package that has one (``triggers.rule_modules``), so ``check-config`` rejects a bad value or an
unknown rule id before a worker ever meets it, and a new rule is only its own module.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from marshmallow import Schema, ValidationError

from connector.rules.triggers import rule_modules

SECTIONS: dict[str, tuple[dict[str, Any], type[Schema]]] = {
    rule_id: section for module in rule_modules() for rule_id, section in module.PLAN.items()
}
DEFAULT_PLAN: dict[str, dict[str, Any]] = {rule_id: defaults for rule_id, (defaults, _) in SECTIONS.items()}
RULE_SCHEMAS: dict[str, type[Schema]] = {rule_id: schema for rule_id, (_, schema) in SECTIONS.items()}


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
