"""The net under the keyword rules (``connector/rules/resemblance.py``): where it may act, and that it may only ask a
person to read a message. Its figures are measured in ``tests/test_classify_corpus.py``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.rules import resemblance
from connector.rules.classify import DUTY_CATEGORIES, NO_RULE, STRONG, WEAK, classify, load_rules
from connector.rules.escalation import CASE_CATEGORIES

RULES = load_rules()
HELD_OUT = Path(__file__).parent / "corpus" / "held_out.jsonl"


def every_message() -> list[str]:
    rows = resemblance.labelled()
    if HELD_OUT.exists():
        rows += [json.loads(line) for line in HELD_OUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["body"] for row in rows]


def test_the_net_only_ever_asks_a_person_to_read_a_duty_message():
    netted = [result for result in (classify(body, None, RULES) for body in every_message())
              if result.rule_id.startswith(resemblance.RULE_PREFIX)]
    assert netted, "the net caught nothing at all: it is not wired in"
    assert {r.confidence for r in netted} == {WEAK}
    assert {r.category for r in netted} <= set(DUTY_CATEGORIES)
    assert all(r.rule_id == resemblance.RULE_PREFIX + r.category and r.accused is None for r in netted)


@pytest.fixture
def eager_net(monkeypatch):
    """A net that would call every message it is given a staff matter, to see which messages it is given."""
    given = []

    def closest(text, *args, **kwargs):
        given.append(text)
        return "staff_involved"

    monkeypatch.setattr(resemblance, "closest_duty", closest)
    return given


def test_a_message_no_rule_knows_is_given_to_the_net(eager_net):
    result = classify("Vi er ikke helt fornøyde med hvordan uka har vært.", None, RULES)
    assert (result.category, result.rule_id, result.confidence) == ("staff_involved", "resemblance.staff_involved",
                                                                    WEAK)
    assert len(eager_net) == 1


@pytest.fixture
def asked(monkeypatch):
    """A net that records which duties, from what likeness, it is asked about over what the rules found, and finds
    none of them."""
    seen = []

    def closest(text, thresholds=None, *args, **kwargs):
        seen.append(dict(thresholds or resemblance.THRESHOLDS))
        return None

    monkeypatch.setattr(resemblance, "closest_duty", closest)
    return seen


SURE, OVER, LESSER = resemblance.OVERRULE_SURE, resemblance.OVERRULE, resemblance.OVERRULE_LESSER


@pytest.mark.parametrize("text, category, thresholds", [
    # a sick note a rule files: school refusal may be read over it ("ikke syk, klarer ikke å gå"), staff and §12-4
    # only where the net is surer still (a teacher's act told beside a sore throat)
    ("Emma er syk i dag og blir hjemme.", "absence_notice",
     [{"school_refusal": OVER, "staff_involved": SURE, "school_environment": SURE}]),
    # §12-4 the rules are sure of, and no staff rule fired: staff only, and only where the net is surer still
    ("Sonen vår vert mobba på bussen.", "school_environment", [{"staff_involved": SURE}]),
    # §12-4 told by a member of staff: the messenger is no suspect, the net is not asked at all
    ("Kontaktlæreren ringte og fortalte at Emil blir dyttet i friminuttene.", "school_environment", []),
    # §12-4 with a staff rule's hint: staff may be read over it at the lesser threshold, school refusal never
    ("Noen gutter mobber Emil. Læreren har sendt ham ut på gangen flere ganger.", "school_environment",
     [{"staff_involved": OVER}]),
    # a lesser case: any duty may be read over it, at resemblance.OVERRULE_LESSER
    ("Vi er bekymret for lesingen hans.", "own_child_case", [dict.fromkeys(resemblance.DUTIES, LESSER)]),
    # a hint of staff ("sjåføren har ikke sett det"): the other duties, at resemblance.OVERRULE
    ("Sjåføren har kjeftet på ham.", "staff_involved", [{"school_environment": OVER, "school_refusal": OVER}]),
])
def test_over_what_the_rules_found_the_net_is_asked_only_about_the_duties_it_may_overrule(asked, text, category,
                                                                                        thresholds):
    result = classify(text, None, RULES)
    assert result.category == category and not result.rule_id.startswith(resemblance.RULE_PREFIX)
    assert asked == thresholds


@pytest.mark.parametrize("found, sure, named, messenger, thresholds", [
    ("other", True, [], False, dict.fromkeys(resemblance.DUTIES, LESSER)),
    ("several_children_case", False, [], False, dict.fromkeys(resemblance.DUTIES, LESSER)),
    ("school_refusal", False, [], False, {"staff_involved": OVER, "school_environment": OVER}),
    ("school_refusal", True, ["staff_involved"], False, {}),
    ("staff_involved", True, [], False, {}),
    ("school_environment", False, [], False, {"staff_involved": OVER, "school_refusal": OVER}),
    ("school_environment", True, ["staff_involved"], False, {"staff_involved": OVER}),
    ("school_environment", True, [], False, {"staff_involved": SURE}),
    # a member of staff who told the parents, or saw, is no suspect of their own: only a staff rule may ask then
    ("school_environment", True, [], True, {}),
    ("school_environment", True, ["staff_involved"], True, {"staff_involved": OVER}),
])
def test_a_sure_duty_match_is_overruled_only_by_a_surer_net_and_a_sure_staff_or_refusal_match_never(
        found, sure, named, messenger, thresholds):
    assert resemblance.overrule_thresholds(found, sure, named, messenger) == thresholds
    assert SURE > OVER > LESSER


@pytest.mark.parametrize("text, category", [
    ("Emma er syk i dag og blir hjemme.", "absence_notice"),
    ("Sonen vår vert mobba på bussen.", "school_environment"),
    ("Kontaktlæreren fortalte at Emil blir dyttet i friminuttene.", "school_environment"),
])
def test_what_the_rules_are_sure_of_stands_where_the_net_is_not_surer(text, category):
    result = classify(text, None, RULES)
    assert result.category == category and not result.rule_id.startswith(resemblance.RULE_PREFIX)


@pytest.mark.parametrize("text", ["We were dying of laughter at the school play.", "Syk av latter av forestillingen"])
def test_a_recognised_look_alike_never_reaches_the_net(eager_net, text):
    assert classify(text, None, RULES).rule_id == NO_RULE and eager_net == []


def test_the_platforms_own_category_never_reaches_the_net(eager_net):
    assert classify("Hva som helst", "own_child_case", RULES).category == "own_child_case" and eager_net == []


def test_training_gives_the_same_model_every_time():
    rows = resemblance.labelled()
    first, second = resemblance.train(rows), resemblance.train(rows)
    for body in every_message()[::50]:
        assert resemblance.likeness(body, first) == resemblance.likeness(body, second)


def test_no_harmless_message_the_net_reads_opens_a_case():
    harmless = [row["body"] for row in resemblance.labelled() if row["category"] == "other"]
    opened = [body for body in harmless for result in [classify(body, None, RULES)]
              if result.category in CASE_CATEGORIES and result.confidence == STRONG]
    assert opened == []


def test_the_trained_net_is_kept_for_the_next_process_and_a_spoilt_file_is_trained_over(tmp_path, monkeypatch):
    """A process trains the net once and leaves it in the cache directory; the next reads it (the same net, to the
    last digit); a file that cannot be read is trained over, never trusted half."""
    monkeypatch.setenv("CONNECTOR_CACHE_DIR", str(tmp_path))
    text = "Læreren dro ham etter armen ut av klasserommet."
    resemblance._model.cache_clear()
    try:
        path = resemblance.cache_file()
        assert path.parent == tmp_path and not path.exists()
        trained = resemblance.probabilities(text)
        assert path.exists()
        resemblance._model.cache_clear()
        assert resemblance.probabilities(text) == trained  # read from the file
        path.write_bytes(b"not a pickle")
        resemblance._model.cache_clear()
        assert resemblance.probabilities(text) == trained  # trained over
        assert path.read_bytes() != b"not a pickle"
    finally:
        resemblance._model.cache_clear()
