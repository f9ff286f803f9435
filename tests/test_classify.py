"""Classifying guardians' messages (pure): the labelled corpus, look-alikes that must not match, the platform's
own category, a school's own rules, and requests to lift a case."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from marshmallow import ValidationError

from connector.rules import classify
from connector.rules.classify import Classification, classify as classify_text, escalation_request, load_rules
from connector.rules.plan import merge_plan

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "guardian-messages.jsonl"
RULES = load_rules()


def corpus() -> list[dict]:
    if not CORPUS.exists():  # the shared corpus lives beside the repository in development
        pytest.skip(f"corpus not found at {CORPUS}")
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def category(text: str, rules=RULES) -> str:
    return classify_text(text, None, rules).category


def test_every_labelled_corpus_message_gets_its_label():
    wrong = [(m["category"], category(m["body"]), m["body"]) for m in corpus() if category(m["body"]) != m["category"]]
    assert wrong == []


def test_the_corpus_covers_every_category_and_language_it_claims():
    messages = corpus()
    assert {m["category"] for m in messages} == set(classify.CATEGORIES)
    assert {m["lang"] for m in messages} == {"nb", "nn", "en"}


@pytest.mark.parametrize("text, expected", [
    # bokmål
    ("Barnet er sykt i dag og blir hjemme.", "absence_notice"),
    ("Han har omgangssyke, vi holder ham hjemme resten av uka.", "absence_notice"),
    ("Hun gruer seg til skolen og gråter hver morgen.", "school_refusal"),
    ("Vi er bekymret fordi han sliter med lesingen.", "own_child_case"),
    ("Mange foreldre reagerer på tonen i klassen.", "several_children_case"),
    ("Han blir utestengt fra leken i friminuttene.", "school_environment"),
    ("Vi tror sønnen vår blir mobbet av en lærer.", "staff_involved"),
    ("Assistenten holdt ham fast og ristet ham.", "staff_involved"),
    # nynorsk
    ("Guten er forkjølt og blir heime i dag.", "absence_notice"),
    ("Vi får ikkje Ola ut døra om morgonen.", "school_refusal"),
    ("Vi er uroa over at ho ikkje trivst i klassen.", "own_child_case"),
    ("Fleire av oss opplever mykje uro i timane.", "several_children_case"),
    ("Sonen vår vert mobba på bussen.", "school_environment"),
    ("Ein av lærarane kjefta på dottera vår og kalla ho dum.", "staff_involved"),
    # English
    ("She has a fever and will stay home today.", "absence_notice"),
    ("He refuses to go to school and cries every morning.", "school_refusal"),
    ("We're concerned she is struggling with maths.", "own_child_case"),
    ("Several parents have noticed a lot of disruption in class.", "several_children_case"),
    ("Our daughter is being left out and teased every day.", "school_environment"),
    ("The substitute yelled at my son and called him names.", "staff_involved"),
])
def test_realistic_messages_in_three_languages(text, expected):
    assert category(text) == expected


@pytest.mark.parametrize("text", [
    "Syk av latter av forestillingen i går, for en flott kveld!",
    "Hun ble sjuk av latter på revyen.",
    "Det var sykt bra på skidagen, takk!",
    "I'm sick of the car park chaos at pick-up.",
    "We were dying of laughter at the school play.",
    "Han sykler til skolen i dag.",  # "syk" is not inside "sykler"
    "Hvor finner jeg skolens mobbeplan?",
    "Vi gleder oss til mobbedagen på fredag.",
    "Læreren kalte inn til foreldremøte på torsdag.",
    "Takk til læreren som tok tak i saken så raskt!",
    "Han løp ut døra etter skolen.",
    "Hun vil ikke ha matpakke på skolen lenger.",
    "Når er foreldremøtet for 3A?",
    "Takk for god hjelp med leksene denne veka!",
])
def test_look_alikes_are_nothing_to_do(text):
    assert classify_text(text, None, RULES) == Classification("other", classify.NO_RULE)


def test_a_staff_member_reporting_bullying_is_not_a_staff_case():
    assert category("Kontaktlæreren fortalte at Emil blir dyttet i friminuttene.") == "school_environment"
    assert category("Rektor sier han blir mobbet av noen i 6B.") == "school_environment"


def test_the_most_serious_category_wins_when_several_match():
    text = "Han er mobbet og vil ikke gå på skolen, og han har vondt i magen."
    assert classify_text(text, None, RULES).category == "school_environment"


def test_the_rule_that_decided_is_named():
    result = classify_text("Vikaren kjeftet på Oskar foran hele klassen.", None, RULES)
    assert result == Classification("staff_involved", "staff_involved.staff.nb", None)


@pytest.mark.parametrize("text", [
    "Rektor kjeftet på sønnen min foran hele klassen.",
    "Inspektøren dyttet ham inn i veggen.",
    "Rektoren kjefta på dottera mi i gangen.",
    "The principal shouted at my daughter.",
    "Dattera mi vart krenka av rektor i går.",
])
def test_an_accused_in_the_leadership_is_marked(text):
    result = classify_text(text, None, RULES)
    assert (result.category, result.accused) == ("staff_involved", classify.ACCUSED_LEADERSHIP)


def test_the_platforms_category_wins_over_keywords():
    assert classify_text("Jonas har feber.", "several_children_case", RULES) == Classification(
        "several_children_case", classify.PLATFORM_RULE)
    assert classify_text("Han blir mobbet hver dag.", "other", RULES).category == "other"


def test_the_platforms_staff_category_still_learns_whether_the_leadership_is_accused():
    assert classify_text("Rektor lugget ham.", "staff_involved", RULES).accused == classify.ACCUSED_LEADERSHIP
    assert classify_text("Læreren lugget ham.", "staff_involved", RULES).accused is None


@pytest.mark.parametrize("text, rule", [
    ("Vi ønsker å løfte saken, det har ikke blitt bedre.", "escalation_request.nb"),
    ("Kan de ta saka vidare til rektor?", "escalation_request.nn"),
    ("We would like to take this further.", "escalation_request.en"),
])
def test_a_request_to_lift_the_case_is_recognised(text, rule):
    assert escalation_request(text, RULES) == rule


def test_an_ordinary_follow_up_is_not_a_request_to_lift():
    assert escalation_request("Takk for praten i går, det ble mye bedre denne uka.", RULES) is None


def test_a_school_can_add_its_own_rule_which_wins_within_its_category():
    rules = load_rules({"rules": [{"id": "skole.kantine", "category": "own_child_case", "lang": "nb",
                                   "any": ["matpakke*"]}]})
    result = classify_text("Hun vil ikke ha matpakke på skolen lenger.", None, rules)
    assert result == Classification("own_child_case", "skole.kantine")


def test_a_school_can_switch_off_a_shipped_rule_and_add_look_alikes():
    assert category("Jonas blir hjemme i dag.") == "absence_notice"
    rules = load_rules({"disabled": ["absence_notice.nb"]})
    assert category("Jonas blir hjemme i dag.", rules) == "other"
    rules = load_rules({"ignore": ["sykt bra laget"]})
    assert category("Barnet er sykt bra laget i år", rules) == "other"


@pytest.mark.parametrize("settings, words", [
    ({"disabled": ["no.such.rule"]}, "no.such.rule"),
    ({"rules": [{"id": "x", "category": "bullying", "lang": "nb", "any": ["mobb*"]}]}, "category"),
    ({"rules": [{"id": "x", "category": "own_child_case", "lang": "nb", "any": ["@unknown_list"]}]}, "@unknown_list"),
    ({"rules": [{"id": "x", "category": "own_child_case", "lang": "se", "any": ["bekymret"]}]}, "lang"),
    ({"rules": [{"id": "own_child.nb", "category": "own_child_case", "lang": "nb", "any": ["x"]}]}, "twice"),
    ({"words": {"loop": ["@loop"]}, "rules": [{"id": "x", "category": "own_child_case", "lang": "nb",
                                                "any": ["@loop"]}]}, "nested"),
])
def test_a_bad_keyword_setting_is_a_configuration_error(settings, words):
    with pytest.raises(ValidationError) as caught:
        merge_plan({"escalation.intake": settings})
    assert words in json.dumps(caught.value.messages["escalation.intake"], ensure_ascii=False)


def test_the_shipped_rules_cover_every_category_in_every_language():
    data = classify.defaults()
    covered = {(rule["category"], rule["lang"]) for rule in data["rules"] + data["escalation_request"]}
    wanted = {(c, lang) for c in [*data["order"], "escalation_request"] for lang in classify.RULE_LANGUAGES}
    assert wanted - covered == set()


def test_phrases_match_whole_words_with_wildcards_and_gaps():
    pattern = classify.compile_phrase("får .. ikke ut døra", gap=2)
    assert pattern.search(classify.normalise("Vi får Sofie ikke ut døra!"))
    assert not pattern.search(classify.normalise("Vi får den lille søte Sofie ikke ut døra"))
    assert classify.compile_phrase("mobb*").search("han blir mobbet")
    assert not classify.compile_phrase("mobb*").search("antimobbing")
    assert classify.compile_phrase("*lærer").search("kontaktlærer sa")


@pytest.mark.parametrize("text", ["Emma er sykk i dag.", "Ho e dårle, ho blir heime.", "han e sjuk", "Hun er dårle."])
def test_a_misspelt_or_dialect_sick_note_is_a_sure_notice(text):
    result = classify_text(text, None, RULES)
    assert (result.category, result.confidence) == ("absence_notice", classify.STRONG)


def test_a_typo_of_a_case_word_stays_a_hint():
    assert classify_text("Han blir mobet hver dag på skolen", None, RULES).confidence == classify.WEAK


def test_only_a_category_that_opens_no_case_may_trust_its_typos():
    rule = {"id": "x.nb", "category": "school_environment", "lang": "nb", "any": ["erting"], "tolerant": "strong"}
    with pytest.raises(classify.RuleError, match="may not open a case"):
        load_rules({"rules": [rule]})


@pytest.mark.parametrize("word, parts", [
    ("lærerassistenten", "lærer assistenten"),  # neither part alone is the word
    ("friminuttsvakta", "friminutts vakta"),  # "friminutt*" alone would hide the "vakta"
    ("mobbeoffer", "mobbeoffer"),  # "mobb*" already reads it, and no head is a phrase word
    ("febersyk", "feber syk"),
])
def test_a_compound_is_read_as_its_parts_when_one_is_a_phrase_word(word, parts):
    assert RULES.vocabulary.canonical(word) == parts


@pytest.mark.parametrize("word", ["nedslått", "sykkelstativet", "kjempestolt"])
def test_a_compound_stays_whole_when_no_part_is_a_phrase_word_or_the_modifier_is_short(word):
    assert RULES.vocabulary.canonical(word) == word


def test_a_compound_staff_word_is_a_hint_not_a_case():
    result = classify_text("Friminuttsvakta skal ha dratt Noah i jakka.", None, RULES)
    assert (result.category, result.confidence) == ("staff_involved", classify.WEAK)
    assert classify_text("Vakta skal ha dratt Noah i jakka.", None, RULES).confidence == classify.STRONG
