"""The quick path for a register's marks agrees with marshmallow on every input, valid or not."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from connector.contract.events import load_data, quick_marks

VALUES = {
    "student_id": ["s-1", "", "x" * 200, "x" * 201, 17, None, True, ["s"], "søster-ø", "\ud800", "s-\udfff",
                   "s\n1", "s\r", "s\x00", "s\x1f", "s\x7f", "s\x85", "s\u2028", "s\u00a01", "s\u200d1"],
    "status": ["present", "absent", "late", "left_early", "sick", "", None, 1],
    "documented": [True, False, 1, 0, "true", None, "no", 2],
    "reason": ["Tannlege", "", "r" * 2000, "r" * 2001, None, 5, ["a"], "\ud800", "Tann\udbff", "syk\ni dag\x00",
               "Tannlege \U0001f9b7", "æøå"],
    "minutes": [0, 10, 1440, 1441, -1, 2.5, True, "10", None],
    "extra": ["name", 1],
}


def random_mark(rng: random.Random) -> object:
    if rng.random() < 0.03:
        return rng.choice(["mark", 5, None, ["s-1"]])
    mark = {}
    for field, values in VALUES.items():
        roll = rng.random()
        if field in ("student_id", "status", "documented") and roll < 0.9 or roll < 0.3:
            mark[field] = values[0] if rng.random() < 0.6 else rng.choice(values)
    return mark


def outcome(data, quick: bool):
    try:
        return "ok", load_data("attendance.register", data, quick)
    except ValidationError as exc:
        return "error", exc.messages


@pytest.mark.parametrize("seed", range(8))
def test_quick_marks_agree_with_marshmallow(seed):
    rng = random.Random(seed)
    for _ in range(300):
        marks = [random_mark(rng) for _ in range(rng.randint(0, 6))]
        data = {"date": "2026-11-23", "group_id": "7A", "marks": marks}
        if rng.random() < 0.1:
            data["lesson"] = {"id": "L1", "subject": "Norsk"}
        if rng.random() < 0.05:
            data["date"] = "23.11.2026"
        assert outcome(data, quick=True) == outcome(data, quick=False), marks


def test_the_quick_path_takes_the_common_register():
    marks = [{"student_id": f"s-{n}", "status": "present", "documented": False} for n in range(25)]
    assert quick_marks(marks) == marks
    assert quick_marks([{"student_id": "s-1", "status": "absent", "documented": 1}]) is None  # marshmallow decides


ODD = st.sampled_from(["\ud800", "\udfff", "\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u00a0", "\u200d",
                       "ø", "\U0001f9b7", "a", " "])
ANY_TEXT = st.text(st.one_of(ODD, st.characters(exclude_categories=())), max_size=12)


@settings(max_examples=400, deadline=None)
@given(student=ANY_TEXT, reason=ANY_TEXT, group=ANY_TEXT)
def test_quick_paths_agree_with_marshmallow_on_any_string(student, reason, group):
    """Surrogates, control characters and every other code point: the quick path takes a string or leaves it to
    marshmallow, and the outcome is the same either way."""
    data = {"date": "2026-11-23", "group_id": group,
            "marks": [{"student_id": student, "status": "absent", "documented": False, "reason": reason}]}
    assert outcome(data, quick=True) == outcome(data, quick=False)


@pytest.mark.parametrize("student, refused", [
    ("\ud800", True), ("s-\udc00", True), ("s\n1", True), ("s\x00", True), ("s\x7f", True), ("s\u2028", True),
    ("søster-ø", False), ("s\u00a01", False),
])
def test_ids_with_control_characters_or_lone_surrogates_are_refused(student, refused):
    data = {"date": "2026-11-23", "group_id": "7A", "marks": [{"student_id": student, "status": "absent",
                                                               "documented": False}]}
    for quick in (True, False):
        kind, result = outcome(data, quick)
        assert (kind == "error") is refused
        if refused:
            assert list(result["marks"][0]) == ["student_id"]
