"""``docs/contract.md`` cannot drift: its signing code signs what the door accepts, its example of each event type
is accepted by the real door (202) and matches ``/openapi.json``'s request body, and the README links to it."""
from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
from openapi_schema_validator import OAS31Validator

from connector.contract.events import EVENT_SCHEMAS
from tests.support import SECRET, queued_jobs

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "contract.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


def blocks(language: str) -> list[str]:
    return [code for lang, code in FENCE.findall(DOC.read_text()) if lang == language]


def examples() -> dict[str, dict]:
    """Each event type's example envelope, as the document shows it (one per type, no more)."""
    found: dict[str, dict] = {}
    for code in blocks("json"):
        body = json.loads(code)
        if isinstance(body, dict) and body.get("type") in EVENT_SCHEMAS:
            assert body["type"] not in found, f"two examples of {body['type']}"
            found[body["type"]] = body
    return found


def doc_sign():
    """The ``sign`` function of the document's Python block, run as a reader would paste it."""
    (code,) = [c for c in blocks("python") if "def sign(" in c]
    namespace: dict = {"__name__": "contract_md"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace["sign"]


def post_as_the_doc_says(client, body: bytes, msg_id: str):
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": doc_sign()(SECRET, msg_id, timestamp, body),
    }
    return client.post("/webhooks/skole-a/generic", data=body, headers=headers)


def test_the_document_shows_an_example_of_every_event_type():
    assert set(examples()) == set(EVENT_SCHEMAS)


@pytest.mark.parametrize("event_type", sorted(EVENT_SCHEMAS))
def test_each_example_signed_as_the_document_says_is_accepted_by_the_door(client, rt, event_type):
    body = json.dumps(examples()[event_type], ensure_ascii=False).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    response = post_as_the_doc_says(client, body, msg_id)
    assert (response.status_code, response.get_json()) == (202, {"accepted": 1}), response.get_json()
    assert len(queued_jobs(rt)) == 1
    again = post_as_the_doc_says(client, body, msg_id)  # "posting it again answers ... duplicate"
    assert (again.status_code, again.get_json()) == (202, {"accepted": 0, "duplicate": True})


@pytest.mark.parametrize("event_type", sorted(EVENT_SCHEMAS))
def test_each_example_matches_the_openapi_request_body(client, event_type):
    document = client.get("/openapi.json").get_json()
    request = document["paths"]["/webhooks/{tenant}/{adapter}"]["post"]["requestBody"]
    schema = {**request["content"]["application/json"]["schema"], "components": document["components"]}
    OAS31Validator(schema).validate(examples()[event_type])
    wrong = {**examples()[event_type], "data": {}}
    assert not OAS31Validator(schema).is_valid(wrong)


def test_the_document_points_at_openapi_json_and_the_readme_at_the_document():
    assert "/openapi.json" in DOC.read_text()
    assert "(docs/contract.md)" in (ROOT / "README.md").read_text()
