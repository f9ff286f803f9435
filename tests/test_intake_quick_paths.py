"""The quick envelope and register-head checks agree with marshmallow on every input, to the order of the keys.

The order matters beyond equality: the event is queued as JSON, and the same register must make the same job.
"""
from __future__ import annotations

import json
import random

import pytest
from marshmallow import ValidationError

from connector.contract.events import load_event, quick_envelope, quick_register_head

MARKS = [{"student_id": "s-1", "status": "absent", "documented": False}]
ENVELOPE = {
    "type": ["attendance.register", "attendance.marked", "grade.published", "", "t" * 100, "t" * 101, None, 7,
             "grade\ud800", "grade\r\nx", "grade\u00a0published"],
    "timestamp": ["2026-11-23T08:00:00Z", "2026-11-23T09:20:44+01:00", "2026-11-23T08:00:00z", "2026-11-23T08:00:00",
                  "2026-11-23", "23.11.2026 08:00", "", None, 1795472759],
    "extra": ["x"],
}
HEAD = {
    "date": ["2026-11-23", "2026-W48-1", "2026-11-23T08:00:00Z", "2026-02-30", "20261123", "", None, 20261123],
    "group_id": ["7A", "", "g" * 200, "g" * 201, None, 7, ["7A"], "7\ud800", "7\nA", "7\x00", "7\u00a0A"],
    "lesson": [None, {"id": "L1"}, {"id": "L1", "subject": "Norsk", "start": "08:30", "end": "09:15"},
               {"end": "09:15", "id": "L1", "extra": 1, "subject": "Norsk"}, {"id": ""}, {"subject": "Norsk"},
               {"id": "L1", "subject": None}, {"id": "L1", "subject": "s" * 201}, {"id": "L1", "start": "s" * 41},
               {"id": "L1", "end": 9}, {"id": 1}, ["L1"], "L1", {"id": "L\ud800"}, {"id": "L\t1"},
               {"id": "L1", "subject": "Norsk\udfff"}, {"id": "L1", "subject": "Kunst og håndverk\n"},
               {"id": "L1", "start": "08:30\ud83d"}],
    "extra": ["name"],
}


def pick(rng: random.Random, values: dict, required: tuple) -> dict:
    out = {}
    for field, choices in values.items():
        if field in required and rng.random() < 0.95 or rng.random() < 0.4:
            out[field] = choices[0] if rng.random() < 0.5 else rng.choice(choices)
    keys = list(out)
    rng.shuffle(keys)  # marshmallow orders the keys by its schema whatever the sender's order
    return {key: out[key] for key in keys}


def outcome(envelope, quick: bool) -> str:
    try:
        return json.dumps(["ok", load_event(envelope, quick)])
    except ValidationError as exc:
        return json.dumps(["error", exc.messages], sort_keys=True)


@pytest.mark.parametrize("seed", range(8))
def test_quick_envelope_and_head_agree_with_marshmallow(seed):
    rng = random.Random(seed)
    for _ in range(400):
        data = pick(rng, HEAD, ("date", "group_id"))
        data["marks"] = MARKS
        envelope = pick(rng, ENVELOPE, ("type", "timestamp"))
        envelope["data"] = data if rng.random() < 0.95 else rng.choice([None, [], "data"])
        assert outcome(envelope, quick=True) == outcome(envelope, quick=False), envelope


def test_the_quick_paths_take_the_common_register():
    envelope = {"type": "attendance.register", "timestamp": "2026-11-23T08:35:00+01:00",
                "data": {"date": "2026-11-23", "group_id": "1A", "marks": MARKS,
                         "lesson": {"id": "10105601", "subject": "Kunst og håndverk", "start": "08:30", "end": "09:15"}}}
    assert quick_envelope(envelope) == envelope
    assert quick_register_head(envelope["data"]) == dict(envelope["data"], marks=None)
    assert quick_register_head({"date": "2026-11-23", "group_id": 7}) is None  # marshmallow decides, and says why
