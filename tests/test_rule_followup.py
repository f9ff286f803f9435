"""The follow-up state: one open task per pupil per rule, and how it is stored."""
from __future__ import annotations

import json

from connector.contract.actions import Action, external_ref
from connector.rules import followup

WHO = {"tenant": "skole-a", "rule_id": "absence.single_lessons", "student_id": "s-1"}


def make(kind):
    return lambda ref, case: Action(kind=kind, external_ref=ref, rule_id=WHO["rule_id"], student_id="s-1",
                                    title="", body="", case_id=case)


def test_the_first_occurrence_opens_a_task_and_the_next_is_a_note_on_its_case():
    actions, state = followup.task_or_note(None, occurrence="2026-11-02", make_task=make("task"),
                                           make_note=make("note"), **WHO)
    [task] = actions
    assert task.kind == "task"
    assert state["open"] == {"ref": task.external_ref, "case": task.case_id, "since": "2026-11-02"}
    [note], after = followup.task_or_note(state, occurrence="2026-11-09", make_task=make("task"),
                                          make_note=make("note"), **WHO)
    assert note.kind == "note" and note.case_id == task.case_id and after == state
    assert note.external_ref == external_ref("skole-a", WHO["rule_id"], "s-1", "2026-11-02/2026-11-09", "note")


def test_an_open_task_is_stored_as_its_date_and_read_back_whole():
    _, state = followup.task_or_note({"noted": ["subject:Norsk"]}, occurrence="2026-11-02", make_task=make("task"),
                                     make_note=make("note"), **WHO)
    packed = followup.pack(state, **WHO)
    assert json.loads(packed) == {"noted": ["subject:Norsk"], "open": "2026-11-02"}
    assert len(packed.encode()) <= 64  # Redis's compact hash encoding takes values up to 64 bytes by default
    assert followup.unpack(packed, **WHO) == state


def test_a_closed_task_leaves_nothing_of_it_in_the_stored_state():
    _, state = followup.task_or_note(None, occurrence="2026-11-02", make_task=make("task"), make_note=make("note"),
                                     **WHO)
    closed = followup.close(state, state["open"]["ref"])
    assert closed["open"] is None
    assert followup.pack(closed, **WHO) == "{}"
    assert not followup.is_open(followup.unpack("{}", **WHO))


def test_an_open_entry_the_rule_could_not_rebuild_is_kept_as_it_is():
    """Another pupil's or rule's entry (or one written by an older version) must not be replaced by a guess."""
    foreign = {"open": {"ref": "sf1-000000000000000000000000", "case": "case-1", "since": "2026-11-02"}}
    packed = followup.pack(foreign, **WHO)
    assert json.loads(packed) == foreign
    assert followup.unpack(packed, **WHO) == foreign
    other_pupil = followup.opened("skole-a", WHO["rule_id"], "s-2", "2026-11-02")
    assert json.loads(followup.pack({"open": other_pupil}, **WHO)) == {"open": other_pupil}


def test_non_ascii_is_stored_as_utf_8_not_escaped():
    assert followup.pack({"noted": ["subject:Kunst og håndverk"]}, **WHO) == '{"noted":["subject:Kunst og håndverk"]}'
