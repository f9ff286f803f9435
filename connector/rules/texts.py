"""The words people read: task, alert and note texts in bokmål (default), nynorsk and English.

Every text answers the same questions a contact teacher would ask: why does this exist (which absence, which
dates — never a name, the platform shows whose it is), which step of the school's plan it is, what to do, by
when, and who is responsible.
"""
from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Mapping

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


def school_days_phrase(count: int, language: str) -> str:
    singular, plural = {"nb": ("skoledag", "skoledager"), "nn": ("skuledag", "skuledagar"),
                        "en": ("school day", "school days")}[language]
    return f"{count} {singular if count == 1 else plural}"


CATALOGUE_DIR = Path(__file__).parent / "catalogue"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Every text id -> language -> template, from the YAML files in ``catalogue/`` (one file per area)."""
    texts: dict[str, dict[str, str]] = {}
    for path in sorted(CATALOGUE_DIR.glob("*.yaml")):
        for text_id, versions in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            if text_id in texts:
                raise ValueError(f"text {text_id!r} is defined twice ({path.name})")
            texts[text_id] = versions
    return texts


def render(language: str, text_id: str, overrides: Mapping[str, Mapping[str, str]] | None = None, **values) -> str:
    """The text in the tenant's language; a tenant's own wording (``overrides``) wins over the catalogue's."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}")
    template = ((overrides or {}).get(text_id) or {}).get(language) or catalogue()[text_id][language]
    return template.format(**values)
