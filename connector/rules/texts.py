"""The words people read: task, alert and note texts in bokmål (default), nynorsk and English.

Every text answers the same questions a contact teacher would ask: why does this exist (which absence, which
dates — never a name, the platform shows whose it is), which step of the school's plan it is, what to do, by
when, and who is responsible.
"""
from __future__ import annotations

import string
from datetime import date
from functools import cache
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from babel.dates import format_date

LANGUAGES = ("nb", "nn", "en")
_LOCALES = {"nb": "nb_NO", "nn": "nn_NO", "en": "en_GB"}
_LONG = {"nb": "EEEE d. MMMM y", "nn": "EEEE d. MMMM y", "en": "EEEE d MMMM y"}
_SHORT = {"nb": "d. MMM", "nn": "d. MMM", "en": "d MMM"}


def long_date(day: date, language: str) -> str:
    return format_date(day, _LONG[language], locale=_LOCALES[language])


def short_date(day: date, language: str) -> str:
    return format_date(day, _SHORT[language], locale=_LOCALES[language]).rstrip(".")


def lessons_phrase(lessons: list[str], language: str) -> str:
    """"hele dagen" for a whole-day mark, otherwise how many lessons."""
    if lessons == ["day"] or "day" in lessons:
        return {"nb": "hele dagen", "nn": "heile dagen", "en": "the whole day"}[language]
    count = len(lessons)
    singular, plural = {"nb": ("time", "timer"), "nn": ("time", "timar"), "en": ("lesson", "lessons")}[language]
    return f"{count} {singular if count == 1 else plural}"


_WEEKDAYS = {
    "nb": ("mandager", "tirsdager", "onsdager", "torsdager", "fredager", "lørdager", "søndager"),
    "nn": ("måndagar", "tysdagar", "onsdagar", "torsdagar", "fredagar", "laurdagar", "sundagar"),
    "en": ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays"),
}
_AND = {"nb": "og", "nn": "og", "en": "and"}


def weekday_plural(weekday: int, language: str) -> str:
    """"mandager": the pattern rule speaks of a weekday that recurs."""
    return _WEEKDAYS[language][weekday]


def date_list(days: Iterable[str | date], language: str) -> str:
    """"2. nov, 9. nov og 16. nov": distinct days, in order, short."""
    unique = sorted({d if isinstance(d, date) else date.fromisoformat(d) for d in days})
    names = [short_date(d, language) for d in unique]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {_AND[language]} {names[-1]}"


def percent(share: float) -> str:
    """A share as people write it in a task: "12 %", one decimal only where it matters ("7,5 %")."""
    value = round(share * 100, 1)
    text = f"{value:.0f}" if value == int(value) else f"{value:.1f}".replace(".", ",")
    return f"{text} %"


def school_days_phrase(count: int, language: str) -> str:
    singular, plural = {"nb": ("skoledag", "skoledager"), "nn": ("skuledag", "skuledagar"),
                        "en": ("school day", "school days")}[language]
    return f"{count} {singular if count == 1 else plural}"


class _Formatter(string.Formatter):
    """``str.format`` plus one thing: ``{count:fraværsperiode|fraværsperioder}`` is the count with the noun in the
    number it needs ("1 fraværsperiode", "2 fraværsperioder"), so no text says "1 fraværsperioder"."""

    def format_field(self, value, format_spec: str) -> str:
        if "|" in format_spec:
            singular, plural = format_spec.split("|", 1)
            return f"{value} {singular if value == 1 else plural}"
        return super().format_field(value, format_spec)


_FORMATTER = _Formatter()

CATALOGUE_DIR = Path(__file__).parent / "catalogue"
GLOSSARY = CATALOGUE_DIR / "glossary.yaml"  # the words every text uses; not texts itself


def placeholders(template: str) -> set[str]:
    """The names a template fills in: ``{count:a|b}`` and ``{count}`` both name ``count``."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in _FORMATTER.parse(template) if name}


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Every text id -> language -> template, from the YAML files in ``catalogue/`` (one file per area)."""
    texts: dict[str, dict[str, str]] = {}
    for path in sorted(CATALOGUE_DIR.glob("*.yaml")):
        if path == GLOSSARY:
            continue
        for text_id, versions in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            if text_id in texts:
                raise ValueError(f"text {text_id!r} is defined twice ({path.name})")
            texts[text_id] = versions
    return texts


def fill(template: str, **values) -> str:
    """A template filled as ``render`` fills it (for the plan's own words in ``default_plan.yaml``)."""
    return _FORMATTER.format(template, **values)


def render(language: str, text_id: str, overrides: Mapping[str, Mapping[str, str]] | None = None, **values) -> str:
    """The text in the tenant's language; a tenant's own wording (``overrides``) wins over the catalogue's."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}")
    template = ((overrides or {}).get(text_id) or {}).get(language) or catalogue()[text_id][language]
    return _FORMATTER.format(template, **values)
