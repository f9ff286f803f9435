"""The catalogue's texts keep one vocabulary (catalogue/glossary.yaml) and pass the README's mechanical checks."""
from __future__ import annotations

import re

import pytest
import yaml

from connector.contract.events import OUTCOMES
from connector.rules.texts import GLOSSARY, catalogue, placeholders, render


def glossary() -> dict:
    return yaml.safe_load(GLOSSARY.read_text(encoding="utf-8"))


def _pattern(word: str) -> re.Pattern:
    """A word matches as a whole word; an entry with punctuation at an end ("(absence.") matches anywhere."""
    left = r"(?<!\w)" if word[0].isalnum() else ""
    right = r"(?!\w)" if word[-1].isalnum() else ""
    return re.compile(left + re.escape(word) + right, re.IGNORECASE)


def avoided(text_id: str, language: str, template: str) -> list[str]:
    found = []
    for term, entry in glossary().items():
        if any(text_id.startswith(prefix) for prefix in entry.get("except_in", ())):
            continue
        text = template
        for phrase in entry.get("allow", ()):
            text = re.sub(re.escape(phrase), " ", text, flags=re.IGNORECASE)
        found += [f"{term}: {word!r}" for word in entry.get("avoid", {}).get(language, ()) if _pattern(word).search(text)]
    return found


def test_the_glossary_is_not_a_text_and_every_term_has_three_languages():
    assert "guardian" not in catalogue()
    for term, entry in glossary().items():
        assert {"nb", "nn", "en"} <= set(entry), term
        assert set(entry.get("avoid", {})) <= {"nb", "nn", "en"}, term


def test_the_glossary_does_not_avoid_its_own_words():
    for term, entry in glossary().items():
        for language, words in entry.get("avoid", {}).items():
            assert not [w for w in words if _pattern(w).search(entry[language])], (term, language)


@pytest.mark.parametrize("text_id", sorted(catalogue()))
def test_no_text_uses_a_word_the_glossary_avoids(text_id):
    problems = {language: avoided(text_id, language, template)
                for language, template in catalogue()[text_id].items()}
    assert not {k: v for k, v in problems.items() if v}, text_id


@pytest.mark.parametrize("template,language,expected", [
    ("Eleven hadde 2 udokumenterte fraværsperioder (absence.pattern).", "nb",
     ["absence_without_notice: 'udokumenterte'", "rule_id_in_prose: '(absence.'"]),
    ("Trengst det, blir nærmeste leiar kopla inn.", "nn", ["nearest_leader: 'nærmeste leiar'"]),
    ("Samtale om skolevegring med foreldrene.", "nb", ["guardian: 'foreldrene'", "worrying_absence: 'skolevegring'"]),
    ("Foreldrenes linje og foreldremøtet.", "nb", []),
    ("sett utfallet til «eskaler»", "nb", ["outcome: '«eskaler»'"]),
])
def test_the_glossary_check_finds_what_it_should(template, language, expected):
    assert sorted(avoided("pattern.task.body", language, template)) == expected


def test_upper_secondary_texts_may_say_undocumented():
    assert avoided("absence_limit.warning.title", "nb", "{share} udokumentert") == []


def test_no_rule_id_stands_in_prose():
    rule_id = re.compile(r"\b(absence|absence_limit|prevention|escalation|environment)\.[a-z_]+")
    for text_id, versions in catalogue().items():
        for language, template in versions.items():
            assert not rule_id.search(template), (text_id, language)


def test_outcomes_are_quoted_as_the_platform_sends_them():
    quoted = re.compile(r"(?:utfallet|outcome)(?: til| to)? [«\"]([^»\"]+)[»\"]")
    seen = set()
    for text_id, versions in catalogue().items():
        for language, template in versions.items():
            for label in quoted.findall(template):
                assert label in OUTCOMES, (text_id, language, label)
                seen.add(label)
    assert {"resolved", "escalate", "involve_parents", "external_involved"} <= seen


def test_a_count_agrees_with_its_noun():
    one = render("nb", "persistent.task.body", meeting_date="m", days=15, rate="10 %", occasions=1, due_date="d")
    two = render("nb", "persistent.task.body", meeting_date="m", days=15, rate="10 %", occasions=2, due_date="d")
    assert "og 1 fraværsperiode uten melding fra foresatte" in one
    assert "og 2 fraværsperioder uten melding fra foresatte" in two
    assert render("nn", "pattern.finding.occasions", count=1, window=20, dates="2. nov").startswith("1 fråværsperiode ")


# --- The README's mechanical checks -----------------------------------------------------------------------------

GUARDIAN_TEXTS = ("notice_missing.alert.body", "notice_missing.same_day.body", "absence_limit.warning.body_guardian")
GREETING = {"nb": ("Hei!", "barnet deres"), "nn": ("Hei!", "barnet dykkar"), "en": ("Hello,", "your child")}


@pytest.mark.parametrize("text_id", sorted(catalogue()))
def test_every_text_has_bokmal_nynorsk_and_english_with_the_same_placeholders(text_id):
    versions = catalogue()[text_id]
    assert set(versions) == {"nb", "nn", "en"}, text_id
    assert all(isinstance(v, str) and v.strip() for v in versions.values()), text_id
    names = {language: placeholders(template) for language, template in versions.items()}
    assert names["nb"] == names["nn"] == names["en"], (text_id, names)


def test_no_title_has_brackets_inside_brackets():
    level_names = [v for k, versions in catalogue().items() if k.startswith(("escalation.level.", "escalation.role."))
                   for v in versions.values()]
    assert not [name for name in level_names if "(" in name]  # they stand inside a title's brackets
    for text_id, versions in catalogue().items():
        if text_id.endswith(".title"):
            for template in versions.values():
                assert not re.search(r"\([^)]*\(", template), text_id


@pytest.mark.parametrize("text_id", GUARDIAN_TEXTS)
def test_guardian_texts_greet_and_speak_of_their_child(text_id):
    for language, (greeting, child) in GREETING.items():
        template = catalogue()[text_id][language]
        assert template.startswith(greeting + "\n"), (text_id, language)
        assert child in template.lower(), (text_id, language)
        assert "eleven" not in template.lower().replace("elevens", ""), (text_id, language)


VOLUNTEER_TEXTS = ("escalation.invitation.title", "escalation.invitation.body")


@pytest.mark.parametrize("text_id", VOLUNTEER_TEXTS)
def test_what_a_volunteer_reads_can_carry_no_case_detail(text_id):
    """The parents' line's invitation: only the role they are invited as is filled in, so no pupil, group, case,
    date or deadline can reach a class parent rep or FAU through it."""
    for language, template in catalogue()[text_id].items():
        assert placeholders(template) <= {"as_role"}, (text_id, language)
        assert not re.search(r"\b(frist|innen|innan|deadline|by)\b", template, re.IGNORECASE), (text_id, language)
    body = catalogue()["escalation.invitation.body"]
    for language, (greeting, _) in GREETING.items():
        assert body[language].startswith(greeting + "\n"), language
