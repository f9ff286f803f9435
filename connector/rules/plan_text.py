"""A school's absence plan printed the way the seed document prints it: routine, when, responsible.

An admin holds this next to the paper plan to check that the configuration says what the school decided; it is
made from the same settings the rules run on, so the two cannot drift apart. Three things keep it true to the
seed:

- the seed's routines with the seed's responsibilities: reporting absence and telling the school a child must be
  pressed to go are the guardians' (``seed_responsible`` in ``default_plan.yaml``); who the connector then tasks is
  printed apart, as the follow-up; the daily registration routine, which no rule runs, is printed too;
- the connector's own additions (deadlines of the ladder, detection thresholds, the alert to the school owner, the
  task to read a message that only hints at a case) are printed apart, under "Koblingens standardvalg", each with the setting that changes it;
- only the sections that fit the school's level: the upper-secondary absence limit is printed only when the school
  has turned it on. There is no separate school-level setting; turning the absence limit on is what makes a school
  upper secondary here.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from babel.dates import format_date

from connector.rules.settings import seed
from connector.rules.texts import _LOCALES, fill, percent, render

SECTIONS = {
    "prevention": (
        "prevention.expectations_review", "prevention.new_student_info", "prevention.development_talk",
        "routine.daily_registration",
        "absence.school_refusal", "absence.notice_missing", "absence.single_lessons", "absence.pattern",
    ),
    "worrying": ("absence.persistent", "absence.external_meeting"),
    "limit": ("absence_limit.warning", "absence_limit.reached"),
}
UPPER_SECONDARY = "limit"


def _month_day(value: str, language: str) -> str:
    month, day = map(int, value.split("-"))
    return format_date(date(2000, month, day), "d. MMMM" if language != "en" else "d MMMM", locale=_LOCALES[language])


def _number(value: float) -> str:
    """2.0 -> "2", 1.5 -> "1,5": as a factor is written in a Norwegian sentence."""
    return f"{value:g}".replace(".", ",")


def _placeholders(settings: Mapping[str, Any], language: str) -> dict[str, Any]:
    """The rule's settings as the sentence needs them ("15. september", "5 % og 8 %")."""
    values: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, str) and len(value) == 5 and value[2] == "-":
            values[key] = _month_day(value, language)
        else:
            values[key] = value
    thresholds = settings.get("warning_thresholds")
    if thresholds is not None:
        joined = [percent(t) for t in sorted(thresholds)]
        conjunction = {"nb": " og ", "nn": " og ", "en": " and "}[language]
        values["warning_percents"] = conjunction.join([", ".join(joined[:-1]), joined[-1]] if len(joined) > 1 else joined)
    if "limit" in settings:
        values["limit_percent"] = percent(settings["limit"])
    return values


def shows_section(section: str, plan: Mapping[str, Mapping[str, Any]]) -> bool:
    """The upper-secondary section only where the school has turned the absence limit on."""
    return section != UPPER_SECONDARY or any(plan[rule_id]["enabled"] for rule_id in SECTIONS[UPPER_SECONDARY])


def _defaults(plan: Mapping[str, Mapping[str, Any]], language: str) -> list[tuple[str, str]]:
    """The connector's own choices, each as (sentence, the settings that change it)."""
    ladder, notice = plan["escalation.level_task"], plan["absence.notice_missing"]
    pattern, persistent = plan["absence.pattern"], plan["absence.persistent"]
    read = plan["escalation.read_message"]
    same_day = "on" if notice["same_day_reminder"] else "off"
    return [
        (render(language, "plan.defaults.ladder", ack=ladder["acknowledge_school_days"],
                feedback=ladder["feedback_school_days"], grace=ladder["second_miss_school_days"]),
         "escalation.level_task"),
        (render(language, "plan.defaults.environment", investigate=plan["environment.investigate"]["school_days"],
                activity_plan=plan["environment.activity_plan"]["school_days"]),
         "environment.investigate, environment.activity_plan"),
        (render(language, "plan.defaults.notice", notice_task=notice["task_school_days"]),
         "absence.notice_missing"),
        (render(language, f"plan.defaults.same_day.{same_day}", same_day_time=notice["same_day_reminder_time"]),
         "absence.notice_missing"),
        (render(language, "plan.defaults.lessons_reminder." + ("on" if notice["remind_guardians_for_lessons"] else "off")),
         "absence.notice_missing"),
        (render(language, "plan.defaults.pattern", weekday=pattern["same_weekday_count"],
                subject=pattern["same_subject_count"], repeat=pattern["repeat_window_school_days"],
                occasions=pattern["occasion_count"], occasion_window=pattern["occasion_window_school_days"],
                increase=pattern["increase_window_school_days"], factor=_number(pattern["increase_factor"]),
                min_rate=percent(pattern["increase_min_rate"])),
         "absence.pattern"),
        (render(language, "plan.defaults.persistent", watch=persistent["watch_school_days"],
                min_rate=percent(persistent["min_rate"]), occasions=persistent["undocumented_occasions"]),
         "absence.persistent"),
        (render(language, "plan.defaults.read_message." + ("on" if read["enabled"] else "off"),
                responsible=render(language, f"role.{read['responsible']}"), days=read["task_school_days"]),
         "escalation.read_message"),
    ]


def plan_lines(school: str, plan: Mapping[str, Mapping[str, Any]], language: str) -> list[str]:
    entries = seed()
    lines = [render(language, "plan.heading", school=school), ""]
    labels = {k: render(language, f"plan.{k}") for k in ("routine", "when", "responsible", "follow_up")}
    width = max(len(v) for v in labels.values()) + 1

    def role_names(roles) -> str:
        return ", ".join(render(language, f"role.{role}") for role in roles)

    for section, rule_ids in SECTIONS.items():
        if not shows_section(section, plan):
            continue
        lines += [render(language, f"plan.section.{section}"), ""]
        for rule_id in rule_ids:
            entry, settings = entries[rule_id], plan.get(rule_id)
            tasked = ([settings["responsible"], *([entry["also_responsible"]] if entry.get("also_responsible") else [])]
                      if settings else [])
            when = fill(entry["when"][language], **_placeholders(settings or {}, language))
            lines.append(f"{labels['routine'] + ':':<{width}} {entry['routine'][language]}")
            lines.append(f"{labels['when'] + ':':<{width}} {when}")
            lines.append(f"{labels['responsible'] + ':':<{width}} {role_names(entry.get('seed_responsible') or tasked)}")
            if entry.get("seed_responsible") and tasked:
                lines.append(f"{labels['follow_up'] + ':':<{width}} {role_names(tasked)}")
            if settings:
                lines.append(f"{'':<{width}} [{rule_id}]" + ("" if settings["enabled"] else " " + render(language, "plan.off")))
            lines.append("")
    lines += [render(language, "plan.section.defaults"), "", render(language, "plan.defaults.intro"), ""]
    for sentence, setting in _defaults(plan, language):
        lines += [f"- {sentence} [{setting}]"]
    lines.append("")
    return lines
