"""The plan as data: the shipped default plan is the seed, valid, complete in three languages, and printable."""
from __future__ import annotations

import pytest

from connector.cli import main
from connector.rules.plan import DEFAULT_PLAN, RULE_SCHEMAS, merge_plan
from connector.rules.plan_text import SECTIONS, plan_lines
from connector.rules.settings import seed

SEED_ONLY_ROUTINE = "routine.daily_registration"  # the daily registration: in the seed, run by no rule
RULES_OF_DOMAIN_1 = {
    "prevention.expectations_review", "prevention.new_student_info", "prevention.development_talk",
    "absence.school_refusal", "absence.notice_missing", "absence.single_lessons", "absence.pattern",
    "absence.persistent", "absence.external_meeting", "absence_limit.warning", "absence_limit.reached",
}


def test_the_default_plan_has_every_rule_of_domain_section_one():
    assert RULES_OF_DOMAIN_1 <= set(seed())
    assert {rule for rules in SECTIONS.values() for rule in rules} == RULES_OF_DOMAIN_1 | {SEED_ONLY_ROUTINE}


def test_the_seed_routine_no_rule_runs_is_in_the_plan_in_three_languages():
    entry = seed()[SEED_ONLY_ROUTINE]
    assert entry["seed_responsible"] == ["contact_teacher", "subject_teacher"]
    for part in ("routine", "when"):
        assert set(entry[part]) == {"nb", "nn", "en"}


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
    assert "Når:        Senest innen 2 skoledager med fravær" in lines
    assert "Ansvar:     kontaktlærer, rektor" in lines  # the autumn review, as in the seed
    assert "[absence.single_lessons] (slått av for denne skolen)" in lines
    assert "Foreldremøte høst (innen 15. september)" in lines


def test_plan_show_gives_the_guardians_the_routines_the_seed_gives_them():
    lines = plan_lines("Skole", merge_plan(None), "nb")
    for routine in ("Foresatte gir kontaktlærer beskjed hvis eleven må presses",
                    "Foresatte melder alltid fravær skriftlig til skolen"):
        at = next(i for i, line in enumerate(lines) if routine in line)
        assert lines[at + 2] == "Ansvar:     foresatte"
        assert lines[at + 3] == "Oppfølging: kontaktlærer"  # who the connector tasks, apart
    at = lines.index("Rutine:     Skolen registrerer alt fravær grundig og systematisk")
    assert lines[at + 1:at + 3] == ["Når:        Daglig", "Ansvar:     kontaktlærer, faglærer"]


def test_plan_show_prints_the_connectors_own_defaults_apart_each_with_its_setting():
    lines = plan_lines("Skole", merge_plan({"escalation.level_task": {"acknowledge_school_days": 1}}), "nb")
    at = lines.index("KOBLINGENS STANDARDVALG")
    seed_part, defaults = "\n".join(lines[:at]), lines[at:]
    for product_number in ("bekrefter innen", "tilbakemelding innen", "skoleeier", "Fraværsmønster: 3 fravær"):
        assert product_number not in seed_part
    assert any(line.startswith("- Saker fra foresatte: nivået som har saken, bekrefter innen 1 skoledag og gir "
                               "foresatte tilbakemelding innen 5 skoledager.") for line in defaults)
    assert any("går varselet straks til skoleeier" in line for line in defaults)
    assert any(line.startswith("- Fraværsmønster: 3 fravær på samme ukedag eller 3 i samme fag innen 30 skoledager, "
                               "eller 4 fraværsperioder innen 20 skoledager.") for line in defaults)
    assert all(line.endswith("]") for line in defaults if line.startswith("- "))  # the setting that changes it
    assert any(line.startswith("- Meldinger fra foresatte som bare kan gjelde en sak") and "kontaktlærer får én "
               "oppgave om å lese meldingen, med frist 1 skoledag" in line
               and line.endswith("[escalation.read_message]") for line in defaults)
    assert "lese meldingen" not in seed_part


def test_plan_show_prints_the_schools_choice_for_reading_tasks():
    lines = plan_lines("Skole", merge_plan({"escalation.read_message": {"responsible": "social_teacher",
                                                                        "task_school_days": 2}}), "nn")
    assert any("sosiallærar får éi oppgåve om å lese meldinga, med frist 2 skuledagar" in line for line in lines)
    off = plan_lines("Skole", merge_plan({"escalation.read_message": {"enabled": False}}), "en")
    assert any(line.startswith("- Messages from guardians that may only hint at a case: no task to read them (off).")
               for line in off)


def test_the_upper_secondary_section_only_where_the_absence_limit_is_on():
    primary = "\n".join(plan_lines("Skole", merge_plan(None), "nb"))
    upper = "\n".join(plan_lines("Skole", merge_plan({"absence_limit.warning": {"enabled": True}}), "nb"))
    assert "FRAVÆRSGRENSEN" not in primary and "udokumentert" not in primary
    assert "FRAVÆRSGRENSEN (VIDEREGÅENDE)" in upper and "[absence_limit.reached] (slått av for denne skolen)" in upper


@pytest.mark.parametrize("rule_id", sorted(RULES_OF_DOMAIN_1 | {SEED_ONLY_ROUTINE}))
def test_the_plans_words_use_the_glossary(rule_id):
    from tests.test_catalogue import avoided

    for part in ("routine", "when"):
        for language, template in seed()[rule_id][part].items():
            assert avoided(rule_id, language, template) == [], (rule_id, part, language)


def test_plan_show_command_for_the_bundled_example_in_nynorsk(capsys):
    assert main(["plan", "show", "demo-skole", "--language", "nn"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Handlingsplan for fråvær – Demo skole (demo-skole)")
    assert "Innan tre veker (15 skuledagar) etter førre møte" in out


def test_plan_show_for_an_unknown_tenant_says_which_exist(capsys):
    assert main(["plan", "show", "no-such-school"]) == 1
    assert "demo-skole" in capsys.readouterr().err
