"""A school's absence plan printed the way the seed document prints it: routine, when, responsible.

An admin holds this next to the paper plan to check that the configuration says what the school decided; it is
made from the same settings the rules run on, so the two cannot drift apart.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from babel.dates import format_date

from connector.rules.settings import seed
from connector.rules.texts import _LOCALES, percent, render

SECTIONS = {
    "prevention": (
        "prevention.expectations_review", "prevention.new_student_info", "prevention.development_talk",
        "absence.school_refusal", "absence.notice_missing", "absence.single_lessons", "absence.pattern",
    ),
    "worrying": ("absence.persistent", "absence.external_meeting"),
    "limit": ("absence_limit.warning", "absence_limit.reached"),
}


def _month_day(value: str, language: str) -> str:
    month, day = map(int, value.split("-"))
    return format_date(date(2000, month, day), "d. MMMM" if language != "en" else "d MMMM", locale=_LOCALES[language])


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


def plan_lines(school: str, plan: Mapping[str, Mapping[str, Any]], language: str) -> list[str]:
    entries = seed()
    lines = [render(language, "plan.heading", school=school), ""]
    labels = {k: render(language, f"plan.{k}") for k in ("routine", "when", "responsible")}
    width = max(len(v) for v in labels.values()) + 1
    for section, rule_ids in SECTIONS.items():
        lines += [render(language, f"plan.section.{section}"), ""]
        for rule_id in rule_ids:
            entry, settings = entries[rule_id], plan[rule_id]
            roles = [settings["responsible"], *([entry["also_responsible"]] if entry.get("also_responsible") else [])]
            responsible = ", ".join(render(language, f"role.{role}") for role in roles)
            when = entry["when"][language].format(**_placeholders(settings, language))
            lines.append(f"{labels['routine'] + ':':<{width}} {entry['routine'][language]}")
            lines.append(f"{labels['when'] + ':':<{width}} {when}")
            lines.append(f"{labels['responsible'] + ':':<{width}} {responsible}")
            lines.append(f"{'':<{width}} [{rule_id}]" + ("" if settings["enabled"] else " " + render(language, "plan.off")))
            lines.append("")
    return lines
