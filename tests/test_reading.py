"""``engine.reading``: free text becomes what the rules need of it, and nothing of the text is left in the event."""
from __future__ import annotations

import json

import pytest

from connector.engine.reading import read_events
from connector.store.keys import digest
from tests.support import make_tenant

BODY = "Hei, Ola Nordmann er syk og blir hjemme i dag og i morgen. Hilsen Kari"


@pytest.fixture
def tenant():
    return make_tenant("skole-a", ["SKOLE_A_WEBHOOK_SECRET"], "SKOLE_A_API_TOKEN")


def message(**extra) -> dict:
    return {"type": "message.created", "timestamp": "2026-11-23T08:00:00+00:00", "message_id": "m-1",
            "sender": {"id": "g-1", "role": "guardian"}, "recipients": [{"id": "u-1", "role": "contact_teacher"}],
            "student_ids": ["s-1"], "created_at": "2026-11-23T08:00:00+01:00", **extra}


def test_a_guardians_message_is_queued_as_its_category_and_the_days_it_reports(tenant):
    (read,) = read_events(tenant, [message(subject="Fravær for Ola", body=BODY)])
    assert "Ola" not in json.dumps(read) and "body" not in read and "subject" not in read
    assert read["reading"] == {"category": "absence_notice", "confidence": "strong", "rule": "absence_notice.nb",
                               "accused": None, "request": None, "days": ["2026-11-23", "2026-11-24"]}
    assert read_events(tenant, [read]) == [read]  # read twice: the same


def test_the_platforms_category_stands_and_staff_messages_need_no_reading(tenant):
    (read,) = read_events(tenant, [message(body="Noe helt annet", category="own_child_case")])
    assert (read["reading"]["category"], read["reading"]["confidence"], read["category"]) == \
        ("own_child_case", "strong", "own_child_case")
    (staff,) = read_events(tenant, [message(sender={"id": "u-1", "role": "contact_teacher"}, body=BODY)])
    assert "reading" not in staff and "body" not in staff


def test_an_adapters_pending_message_is_left_for_its_prepare(tenant):
    pending = {"type": "message.created", "timestamp": "2026-11-23T08:00:00+00:00", "canvas_message": {"id": 7}}
    assert read_events(tenant, [pending]) == [pending]


def test_reasons_of_notices_and_marks_are_dropped_and_their_codes_kept(tenant):
    notice = {"type": "absence.notice", "student_id": "s-1", "from_date": "2026-11-23", "to_date": "2026-11-23",
              "reason": "Tannlege Hansen", "reason_code": "medical"}
    register = {"type": "attendance.register", "date": "2026-11-23", "group_id": "7A", "marks": [
        {"student_id": "s-1", "status": "absent", "documented": True, "reason": "Tannlege Hansen"},
        {"student_id": "s-2", "status": "present", "documented": False}]}
    marked = {"type": "attendance.marked", "student_id": "s-1", "date": "2026-11-23", "status": "absent",
              "documented": False, "reason": "Tannlege Hansen"}
    read = read_events(tenant, [notice, register, marked])
    assert "Hansen" not in json.dumps(read)
    assert read[0]["reason_code"] == "medical"
    assert read[1]["marks"] == [{"student_id": "s-1", "status": "absent", "documented": True},
                                {"student_id": "s-2", "status": "present", "documented": False}]
    plain = {**register, "marks": register["marks"][1:]}
    assert read_events(tenant, [plain])[0] is plain  # nothing to drop: the register is not copied


def test_a_task_note_becomes_whether_there_is_one_and_the_updates_digest(tenant):
    event = {"type": "task.updated", "external_ref": "sf1-1", "status": "completed", "outcome": "escalate",
             "completed_at": "2026-11-23T10:00:00+01:00", "note": "Snakket med mor Kari"}
    (read,) = read_events(tenant, [event])
    assert "note" not in read and read["noted"] is True
    # the digest the engine kept before the note was read at the door: updates applied then stay applied
    assert read["update_key"] == digest("sf1-1", "completed", "escalate", "2026-11-23T10:00:00+01:00",
                                        "Snakket med mor Kari", length=16)
    edited = read_events(tenant, [{**event, "note": "Snakket med far"}])[0]
    assert edited["update_key"] != read["update_key"]  # an edited note is another update
    assert read_events(tenant, [{**event, "note": "  "}])[0]["noted"] is False
    assert read_events(tenant, [read]) == [read]
