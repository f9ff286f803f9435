"""``GET /openapi.json``: valid OpenAPI 3.1, generated from the schemas the door validates with, naming every event
type and every answer of the contract."""
from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from connector.contract.events import EVENT_SCHEMAS
from connector.contract.openapi import RESPONSE_CODES

CONTRACT_CODES = {202, 400, 401, 404, 413, 415, 422, 503}
WEBHOOK = "/webhooks/{tenant}/{adapter}"


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_served_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises on any error of the 3.1 schema (and on a $ref that does not resolve)
    assert set(document["paths"]) == {WEBHOOK, "/healthz", "/readyz"}


def test_it_names_every_event_type_each_with_its_data_schema(document):
    body = document["paths"][WEBHOOK]["post"]["requestBody"]["content"]["application/json"]["schema"]
    mapping = body["discriminator"]["mapping"]
    assert body["discriminator"]["propertyName"] == "type"
    assert set(mapping) == set(EVENT_SCHEMAS)
    assert sorted(v["$ref"] for v in body["oneOf"]) == sorted(mapping.values())
    schemas = document["components"]["schemas"]
    for event_type, ref in mapping.items():
        envelope = schemas[ref.rsplit("/", 1)[1]]
        assert envelope["properties"]["type"] == {"type": "string", "const": event_type}
        data = schemas[envelope["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        declared = EVENT_SCHEMAS[event_type].fields
        assert set(data["properties"]) == set(declared), event_type  # generated from the schema, not beside it
        assert set(data["required"]) == {name for name, field in declared.items() if field.required}


def test_it_names_every_response_of_the_contract_with_the_error_body(document):
    responses = document["paths"][WEBHOOK]["post"]["responses"]
    assert {int(code) for code in responses} == CONTRACT_CODES == set(RESPONSE_CODES)
    for code, response in responses.items():
        schema = response["content"]["application/json"]["schema"]
        if code == "202":
            assert [s["$ref"].rsplit("/", 1)[1] for s in schema["oneOf"]] == ["Accepted", "Duplicate", "Ignored"]
        else:
            assert schema == {"$ref": "#/components/schemas/Error"}
    error = document["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"error", "message", "fields"} and set(error["required"]) == {"error", "message"}


def test_it_names_the_standard_webhooks_headers(document):
    parameters = document["paths"][WEBHOOK]["post"]["parameters"]
    headers = {p["name"] for p in parameters if p["in"] == "header" and p["required"]}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
