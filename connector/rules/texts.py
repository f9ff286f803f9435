"""The words people read: task, alert and note texts in bokmål (default), nynorsk and English.

Every text answers the same questions a contact teacher would ask: why does this exist (which absence, which
dates — never a name, the platform shows whose it is), which step of the school's plan it is, what to do, by
when, and who is responsible.
"""
from __future__ import annotations

from datetime import date

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


TEXTS: dict[str, dict[str, str]] = {
    "nb": {
        "notice_missing.alert.title": "Fraværet {short_date} mangler skriftlig melding",
        "notice_missing.alert.body": (
            "Skolen har registrert fravær {absence_date} ({lessons}) og har ikke fått en skriftlig melding med "
            "årsak fra dere.\n"
            "Skolens handlingsplan for fravær sier at fravær alltid skal meldes skriftlig til skolen, med årsak, "
            "senest innen {notice_days}. Den fristen gikk ut {notice_deadline}.\n"
            "Send en skriftlig melding med årsak til kontaktlæreren så snart som mulig. "
            "Meld gjerne fra samme dag neste gang eleven er borte."
        ),
        "notice_missing.task.title": "Følg opp fravær uten melding {short_date}",
        "notice_missing.task.body": (
            "Hvorfor: Eleven hadde fravær {absence_date} ({lessons}) uten skriftlig melding med årsak fra "
            "foresatte. Fristen på {notice_days} gikk ut {notice_deadline}, og foresatte har fått en "
            "påminnelse.\n"
            "Steg i handlingsplanen: Fravær skal alltid meldes skolen skriftlig, med årsak, senest innen "
            "{notice_days} (absence.notice_missing).\n"
            "Hva du gjør: Kontakt foresatte, få en skriftlig melding med årsak, og registrer fraværet som "
            "dokumentert eller udokumentert.\n"
            "Frist: {due_date}.\n"
            "Ansvarlig: kontaktlærer."
        ),
    },
    "nn": {
        "notice_missing.alert.title": "Fråværet {short_date} manglar skriftleg melding",
        "notice_missing.alert.body": (
            "Skulen har registrert fråvær {absence_date} ({lessons}) og har ikkje fått ei skriftleg melding med "
            "årsak frå dykk.\n"
            "Handlingsplanen til skulen for fråvær seier at fråvær alltid skal meldast skriftleg til skulen, med "
            "årsak, seinast innan {notice_days}. Den fristen gjekk ut {notice_deadline}.\n"
            "Send ei skriftleg melding med årsak til kontaktlæraren så snart som mogleg. "
            "Meld gjerne frå same dag neste gong eleven er borte."
        ),
        "notice_missing.task.title": "Følg opp fråvær utan melding {short_date}",
        "notice_missing.task.body": (
            "Kvifor: Eleven hadde fråvær {absence_date} ({lessons}) utan skriftleg melding med årsak frå "
            "føresette. Fristen på {notice_days} gjekk ut {notice_deadline}, og føresette har fått ei "
            "påminning.\n"
            "Steg i handlingsplanen: Fråvær skal alltid meldast skriftleg til skulen, med årsak, seinast innan "
            "{notice_days} (absence.notice_missing).\n"
            "Kva du gjer: Kontakt føresette, få ei skriftleg melding med årsak, og registrer fråværet som "
            "dokumentert eller udokumentert.\n"
            "Frist: {due_date}.\n"
            "Ansvarleg: kontaktlærar."
        ),
    },
    "en": {
        "notice_missing.alert.title": "No written notice for the absence on {short_date}",
        "notice_missing.alert.body": (
            "The school has recorded an absence on {absence_date} ({lessons}) and has not received a written "
            "notice with the reason from you.\n"
            "The school's absence action plan says absence must always be reported to the school in writing, with "
            "the reason, within {notice_days}. That deadline passed on {notice_deadline}.\n"
            "Please send a written notice with the reason to the contact teacher as soon as possible, and report "
            "any absence on the same day next time."
        ),
        "notice_missing.task.title": "Follow up an absence without notice on {short_date}",
        "notice_missing.task.body": (
            "Why: The pupil was absent on {absence_date} ({lessons}) without a written notice with the reason from "
            "the guardians. The deadline of {notice_days} passed on {notice_deadline}, and the "
            "guardians have been sent a reminder.\n"
            "Step of the absence action plan: absence must always be reported to the school in writing, with the "
            "reason, within {notice_days} (absence.notice_missing).\n"
            "What to do: Contact the guardians, obtain a written notice with the reason, and record the absence "
            "as documented or undocumented.\n"
            "Due: {due_date}.\n"
            "Responsible: contact teacher."
        ),
    },
}


def render(language: str, text_id: str, **values) -> str:
    if language not in TEXTS:
        raise ValueError(f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}")
    return TEXTS[language][text_id].format(**values)
