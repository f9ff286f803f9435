"""A pupil's compact history: the code a mark is stored as reads back as the same mark, whatever the subject."""
from __future__ import annotations

from hypothesis import given, strategies as st

from connector.rules.history import SUBJECT_LETTERS, mark_code, parse_code


def test_curriculum_subjects_are_stored_as_a_letter_and_read_back_by_name():
    for subject in SUBJECT_LETTERS:
        code = mark_code("absent", False, {"id": "L1", "subject": subject, "start": "08:30", "end": "09:15"})
        assert code == f"a0|*{SUBJECT_LETTERS[subject]}|45"
        mark = parse_code(code)
        assert (mark.status, mark.documented, mark.subject, mark.minutes) == ("absent", False, subject, 45)


@given(st.text(min_size=1, max_size=40).filter(lambda s: "|" not in s and ";" not in s))
def test_any_other_subject_reads_back_as_itself(subject):
    mark = parse_code(mark_code("late", True, {"id": "L1", "subject": subject}, minutes=12))
    assert (mark.status, mark.documented, mark.subject, mark.minutes) == ("late", True, subject, 12)


def test_a_name_that_looks_like_a_letter_code_is_not_taken_for_one():
    for subject in ("*M", "**M", "*", "*Zebra"):
        assert parse_code(mark_code("absent", True, {"id": "L1", "subject": subject})).subject == subject
