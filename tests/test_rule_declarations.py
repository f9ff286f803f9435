"""The rules declare themselves (``TRIGGERS``, ``PLAN``) and the engine's tables are derived: nothing to keep by
hand, and nothing a rule declares that no part of the engine handles."""
from __future__ import annotations

from pathlib import Path

from connector.engine import routing
from connector.rules import plan
from connector.rules.triggers import DEADLINES, TASK_UPDATES, declared, rule_modules

TESTS = Path(__file__).resolve().parent


def test_every_deadline_a_rule_declares_has_a_handler_and_every_handler_a_rule():
    deadlines = {rule_id for rule_id, (_, t) in declared().items() if t.deadline}
    assert deadlines and set(routing.DEADLINE_HANDLERS) == deadlines


def test_every_task_update_a_rule_declares_is_routed_and_nothing_else_is():
    updates = {rule_id for rule_id, (_, t) in declared().items() if t.task_updated}
    assert updates and set(routing.TASK_HANDLERS) == updates


def test_every_word_of_the_vocabulary_is_used_by_some_rule():
    used = {t.deadline for _, t in declared().values()} | {t.task_updated for _, t in declared().values()}
    assert set(DEADLINES) | set(TASK_UPDATES) <= used


def test_the_plan_is_gathered_from_every_module_that_declares_settings():
    modules = {module.__name__.rsplit(".", 1)[1] for module in rule_modules()}
    assert {"notice_missing", "pattern", "persistent", "escalation", "environment", "history"} <= modules
    assert set(plan.DEFAULT_PLAN) == {rule_id for module in rule_modules() for rule_id in module.PLAN}


def test_every_rule_that_acts_has_a_pure_unit_test_file():
    """The test pyramid's base: data in, effects out, no Redis (the ladder's pure tests are in test_escalation.py)."""
    acting = {module.__name__.rsplit(".", 1)[1] for module, _ in declared().values()}
    missing = [name for name in sorted(acting) if not (TESTS / f"test_rule_{name}.py").exists()
               and name != "escalation"]
    assert missing == []
