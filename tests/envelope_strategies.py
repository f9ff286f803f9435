"""Hypothesis strategies for the contract's event types, built from a test's own primitives.

The in-process door fuzz (``tests/test_door_fuzz.py``) and the served door's (``tests/reliability/
test_door_fuzz_served.py``) draw the same shapes of event, each from its own ids, dates, times and texts (the served
one stays near today, since its door judges by the real clock): one place says what each event type may hold.
"""
from __future__ import annotations

from hypothesis import strategies as st

STATUSES = st.sampled_from(["present", "absent", "late", "left_early"])
REASON_CODES = st.sampled_from(["illness", "medical", "family", "school_refusal", "other"])
CATEGORIES = st.sampled_from(["absence_notice", "school_refusal", "own_child_case", "several_children_case",
                              "school_environment", "staff_involved", "other"])
OUTCOMES = st.sampled_from(["resolved", "escalate", "involve_parents", "external_involved", "no_action"])


def event_strategies(ids, days, moments, texts, roles, lessons, marks_per_register: int) -> dict:
    """Event type -> a strategy for its ``data``: every field the contract has, each optional one sometimes."""
    mark = st.fixed_dictionaries(
        {"student_id": ids, "status": STATUSES, "documented": st.booleans()},
        optional={"reason": texts, "minutes": st.integers(0, 24 * 60)})
    return {
        "attendance.register": st.fixed_dictionaries(
            {"date": days, "group_id": ids, "marks": st.lists(mark, max_size=marks_per_register)},
            optional={"lesson": lessons}),
        "attendance.marked": st.fixed_dictionaries(
            {"student_id": ids, "date": days, "status": STATUSES, "documented": st.booleans()},
            optional={"group_id": ids, "lesson": lessons, "reason": texts, "minutes": st.integers(0, 24 * 60)}),
        "absence.notice": st.fixed_dictionaries(
            {"student_id": ids, "from_date": days, "to_date": days, "reason": texts},
            optional={"reason_code": REASON_CODES, "guardian_id": ids, "channel": texts}),
        "message.created": st.fixed_dictionaries(
            {"message_id": ids, "sender": st.fixed_dictionaries({"id": ids, "role": roles}),
             "recipients": st.lists(st.fixed_dictionaries({"id": ids, "role": roles}), max_size=3),
             "student_ids": st.lists(ids, max_size=3), "created_at": moments},
            optional={"body": texts, "subject": texts, "category": CATEGORIES}),
        "task.updated": st.fixed_dictionaries(
            {"external_ref": ids, "status": st.sampled_from(["open", "completed", "cancelled"])},
            optional={"outcome": OUTCOMES, "completed_at": moments, "note": texts}),
        "student.enrolled": st.fixed_dictionaries({"student_id": ids, "group_id": ids, "date": days}),
    }
