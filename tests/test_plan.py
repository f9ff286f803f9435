"""The plan as data: the shipped default plan is the seed, valid, complete in three languages, and printable."""
from __future__ import annotations

import pytest

from connector.cli import main
from connector.rules.plan import DEFAULT_PLAN, RULE_SCHEMAS, merge_plan
from connector.rules.plan_text import SECTIONS, plan_lines
from connector.rules.settings import seed

RULES_OF_DOMAIN_1 = {
    "prevention.expectations_review", "prevention.new_student_info", "prevention.development_talk",
    "absence.school_refusal", "absence.notice_missing", "absence.single_lessons", "absence.pattern",
    "absence.persistent", "absence.external_meeting", "absence_limit.warning", "absence_limit.reached",
}


def test_the_default_plan_has_every_rule_of_domain_section_one():
    assert RULES_OF_DOMAIN_1 <= set(seed())
    assert {rule for rules in SECTIONS.values() for rule in rules} == RULES_OF_DOMAIN_1


@pytest.mark.parametrize("rule_id", sorted(RULES_OF_DOMAIN_1))
def test_each_default_rule_validates_against_its_own_schema_and_speaks_three_languages(rule_id):
    entry = seed()[rule_id]
    RULE_SCHEMAS[rule_id]().load(DEFAULT_PLAN[rule_id])
    for part in ("routine", "when"):
        assert set(entry[part]) == {"nb", "nn", "en"}, (rule_id, part)


def test_the_default_numbers_are_domains():
    plan = merge_plan(None)
    assert plan["absence.notice_missing"]["notice_school_days"] == 3
    assert plan["absence.single_lessons"]["task_school_days"] == 5
    pattern = plan["absence.pattern"]
    assert (pattern["same_weekday_count"], pattern["same_subject_count"], pattern["repeat_window_school_days"]) == (
        3, 3, 30)
    assert (pattern["occasion_count"], pattern["occasion_window_school_days"]) == (4, 20)
    assert (pattern["increase_window_school_days"], pattern["increase_factor"], pattern["increase_min_rate"]) == (
        20, 2.0, 0.05)
    persistent = plan["absence.persistent"]
    assert (persistent["watch_school_days"], persistent["min_rate"], persistent["undocumented_occasions"]) == (
        15, 0.10, 2)
    assert plan["absence.external_meeting"]["task_school_days"] == 10
    assert plan["absence_limit.warning"]["warning_thresholds"] == [0.05, 0.08]
    assert plan["absence_limit.reached"]["limit"] == 0.10


def test_a_school_can_change_the_responsible_role_and_a_text():
    plan = merge_plan({"absence.persistent": {"responsible": "principal"},
                       "absence.pattern": {"texts": {"pattern.task.title": {"nb": "Fraværssamtale"}}}})
    assert plan["absence.persistent"]["responsible"] == "principal"
    assert plan["absence.pattern"]["texts"] == {"pattern.task.title": {"nb": "Fraværssamtale"}}


@pytest.mark.parametrize("bad", [
    {"absence.pattern": {"responsible": "janitor"}},
    {"absence.pattern": {"texts": {"pattern.task.title": {"de": "x"}}}},
    {"prevention.expectations_review": {"due_month_day": "15.09"}},
    {"absence.single_lessons": {"evaluate_at": "25:00"}},
    {"absence_limit.warning": {"warning_thresholds": [1.5]}},
])
def test_bad_plan_values_are_refused(bad):
    from marshmallow import ValidationError

    with pytest.raises(ValidationError):
        merge_plan(bad)


def test_plan_show_prints_routine_when_and_responsible_with_the_schools_own_numbers(capsys, tmp_path):
    lines = "\n".join(plan_lines("Skole", merge_plan({"absence.notice_missing": {"notice_school_days": 2},
                                                      "absence.single_lessons": {"enabled": False}}), "nb"))
    assert "SKOLENS FOREBYGGENDE INNSATS" in lines and "TILTAK VED BEKYMRINGSFULLT FRAVÆR" in lines
    assert "Når:    Senest innen 2 skoledager med fravær" in lines
    assert "Ansvar: kontaktlærer, rektor" in lines  # the autumn review, as in the seed
    assert "[absence.single_lessons] (slått av for denne skolen)" in lines
    assert "Foreldremøte høst (innen 15. september)" in lines


def test_plan_show_command_for_the_bundled_example_in_nynorsk(capsys):
    assert main(["plan", "show", "demo-skole", "--language", "nn"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Handlingsplan for fråvær – Demo skole (demo-skole)")
    assert "Innan tre veker (15 skuledagar) etter førre møte" in out


def test_plan_show_for_an_unknown_tenant_says_which_exist(capsys):
    assert main(["plan", "show", "no-such-school"]) == 1
    assert "demo-skole" in capsys.readouterr().err
