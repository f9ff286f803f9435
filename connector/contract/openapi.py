"""The door's OpenAPI 3.1 document, generated from the contract's marshmallow schemas with ``apispec``.

The event schemas are the ones the door validates with (``events.EVENT_SCHEMAS``), so the document cannot say
other than what the door does: a field, a length, an enumeration or a required flag changed there changes here.
What a schema cannot say (the Standard Webhooks headers, the answers and their error bodies, the date windows) is
written here once, in the words of ``docs/contract.md``. Served at ``GET /openapi.json``
(``connector/webhooks/views.py``).

The request body is one envelope per event type, discriminated by ``type``; each names its ``data`` schema. A
well-formed envelope of a type not listed is answered ``202 {"accepted": 0, "ignored": "<type>"}`` (said in the
operation's description: a discriminator cannot list "any other value").
"""
from __future__ import annotations

from copy import deepcopy
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from connector.contract.events import (
    ENVELOPE,
    EVENT_SCHEMAS,
    MAX_MARKS,
    EnvelopeSchema,
    IsoDate,
    IsoDateTime,
)

OPENAPI_VERSION = "3.1.0"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # the generic adapter's default ``max_body_bytes``
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60  # Standard Webhooks' window, as the reference package applies it

# The component name of each event type's ``data`` and of its envelope.
DATA_NAMES = {
    "attendance.register": "AttendanceRegister",
    "attendance.marked": "AttendanceMarked",
    "absence.notice": "AbsenceNotice",
    "message.created": "MessageCreated",
    "task.updated": "TaskUpdated",
    "student.enrolled": "StudentEnrolled",
}


# --- The door's answers, as schemas (what ``webhooks/views.py`` sends) ---------------------------------------------


class AcceptedSchema(Schema):
    accepted = fields.Integer(required=True, metadata={"description": "Events queued from this delivery.",
                                                       "minimum": 0})


class DuplicateSchema(Schema):
    accepted = fields.Integer(required=True, metadata={"enum": [0]})
    duplicate = fields.Boolean(required=True, metadata={
        "enum": [True], "description": "This `webhook-id` was received before; nothing changed."})


class IgnoredSchema(Schema):
    accepted = fields.Integer(required=True, metadata={"enum": [0]})
    ignored = fields.String(required=True, metadata={
        "description": "The event type this version does not know; counted and logged, never retried."})


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={
        "description": "A stable code: not_found, too_large, unsupported_media_type, invalid_signature, "
                       "malformed_json, incomplete_body, invalid_event, unavailable (and method_not_allowed, not_found for other "
                       "paths)."})
    message = fields.String(required=True, metadata={"description": "For a person; may change between versions."})
    field_errors = fields.Dict(
        data_key="fields", keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "422 only: each refused field by its path in the body (`data.marks.3.status`, "
                                 "`timestamp`; `_schema` for the body as a whole) with the reasons."})


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok"]})


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok", "unavailable"]})
    redis = fields.String(metadata={"enum": ["up", "down"]})
    queue = fields.String(metadata={"enum": ["up", "down"], "description": "The job queue (in that Redis) answers."})
    workers = fields.Integer(allow_none=True, metadata={
        "description": "RQ's count of live workers on the queue; reported, not required (jobs wait). `null` when it "
                       "could not be read."})
    down = fields.List(fields.String(metadata={"enum": ["redis", "queue"]}), metadata={
        "description": "503 only: the dependencies that are down."})
    detail = fields.Dict(metadata={"description": "`adapters`: each `<tenant>/<adapter>` the platform refuses until "
                                                  "an admin acts, with its reason code; does not fail readiness."})


# --- The responses of the webhook endpoint -------------------------------------------------------------------------

# status -> (description, example error codes); 202 is built apart (three bodies).
ERRORS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: ("The body is not valid JSON or not UTF-8 (even when correctly signed): fix the sender, do not retry the "
          "same bytes. Or it ended before its `Content-Length`, or came too slowly (`incomplete_body`): send it "
          "again, whole.",
          ("malformed_json", "incomplete_body")),
    401: ("Missing, malformed or wrong signature, or a `webhook-timestamp` more than 5 minutes from the "
          "connector's clock. Check the secret and the clock; a redelivery must be signed anew.",
          ("invalid_signature",)),
    404: ("No such tenant, or no such adapter configured for it.", ("not_found",)),
    413: ("The body is over the adapter's limit (`max_body_bytes`, default 1 MiB). Split the delivery "
          "(a register per group or lesson).", ("too_large",)),
    415: ("`Content-Type` is not JSON (`application/json` or `application/*+json`).", ("unsupported_media_type",)),
    422: ("Well-formed and signed, but the envelope or its `data` breaks the schema, or a date lies outside its "
          "window. `fields` names each field. Do not retry unchanged.", ("invalid_event",)),
    503: ("The delivery could not be stored (Redis unavailable). Nothing was kept: retry later with the same "
          "`webhook-id`.", ("unavailable",)),
}
RESPONSE_CODES = (202, *ERRORS)


def _error_example(status: int, code: str) -> dict[str, Any]:
    example: dict[str, Any] = {"error": code, "message": ERRORS[status][0].split(".")[0] + "."}
    if status == 422:
        example = {"error": code, "message": "Invalid field(s): data.marks.0.status.",
                   "fields": {"data.marks.0.status": ["Must be one of: present, absent, late, left_early."]}}
    return example


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _headers() -> list[dict[str, Any]]:
    return [
        {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string", "minLength": 1},
         "description": "Unique per event and the same on every redelivery: the deduplication key.",
         "example": "msg_2c1f0b7e9a"},
        {"name": "webhook-timestamp", "in": "header", "required": True,
         "schema": {"type": "string", "pattern": "^[0-9]+$"},
         "description": f"Unix seconds when signed; more than {TIMESTAMP_TOLERANCE_SECONDS // 60} minutes from the "
                        "connector's clock is refused (401).",
         "example": "1795420800"},
        {"name": "webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "Space-separated `v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{raw body}\">`,"
                        " keyed with the base64-decoded part of the adapter's `whsec_...` secret. Any one valid "
                        "signature passes (key rotation).",
         "example": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
    ]


def _envelope_variants(spec: APISpec, converter) -> dict[str, str]:
    """One envelope component per event type, ``type`` fixed to it; returns type -> component name."""
    timestamp = converter.field2property(EnvelopeSchema().fields["timestamp"])
    timestamp["description"] = ("When the platform produced the event (RFC 3339 with an offset); no more than a "
                                "day in the future, no earlier than the previous school year.")
    names = {}
    for event_type, data_name in DATA_NAMES.items():
        name = data_name + "Envelope"
        spec.components.schema(name, {
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"type": "string", "const": event_type},
                "timestamp": deepcopy(timestamp),
                "data": _ref(data_name),
            },
        })
        names[event_type] = name
    return names


def build_spec(version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the door, ``/healthz`` and ``/readyz``, as a JSON-ready dict."""
    missing = set(EVENT_SCHEMAS) ^ set(DATA_NAMES)
    if missing:  # a new event type must get a name here, so it is documented, not skipped
        raise RuntimeError(f"openapi.DATA_NAMES and EVENT_SCHEMAS differ: {sorted(missing)}")
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="skoleflyt-connector webhooks",
        version=version,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": "The reference (\"generic\") adapter's inbound contract: Standard Webhooks-signed JSON "
                           "envelopes, one event each. The integrators' guide is docs/contract.md in the "
                           "repository. Other adapters (Moodle, Canvas, Microsoft 365) take their platform's own "
                           "formats at the same path and answer with the same codes.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
    )
    plugin.map_to_openapi_type(IsoDate, "string", "date")
    plugin.map_to_openapi_type(IsoDateTime, "string", "date-time")
    for event_type, schema in EVENT_SCHEMAS.items():
        spec.components.schema(DATA_NAMES[event_type], schema=type(schema))
    spec.components.schema("Envelope", schema=type(ENVELOPE))
    for schema in (AcceptedSchema, DuplicateSchema, IgnoredSchema, ErrorSchema, HealthSchema, ReadySchema):
        spec.components.schema(schema.__name__.removesuffix("Schema"), schema=schema)
    envelopes = _envelope_variants(spec, plugin.converter)
    register = spec.components.schemas["AttendanceRegister"]
    register["properties"]["marks"]["maxItems"] = MAX_MARKS

    responses: dict[str, Any] = {
        "202": {
            "description": "Durably queued (or already received, or a type this version ignores). Do not retry.",
            "content": {"application/json": {
                "schema": {"oneOf": [_ref("Accepted"), _ref("Duplicate"), _ref("Ignored")]},
                "examples": {
                    "accepted": {"value": {"accepted": 1}},
                    "duplicate": {"summary": "A redelivered webhook-id", "value": {"accepted": 0, "duplicate": True}},
                    "ignored": {"summary": "A type this version does not know",
                                "value": {"accepted": 0, "ignored": "course.created"}},
                },
            }},
        },
    }
    for status, (description, codes) in ERRORS.items():
        responses[str(status)] = {
            "description": description,
            "content": {"application/json": {"schema": _ref("Error"),
                                             "example": _error_example(status, codes[0])}},
        }

    spec.path(
        path="/webhooks/{tenant}/{adapter}",
        operations={"post": {
            "operationId": "deliverEvent",
            "summary": "Deliver one signed event",
            "description": (
                "Signed per Standard Webhooks over the raw body. The checks run in this order: tenant and adapter "
                "(404), size (413), content type (415), signature and timestamp (401), JSON (400), schema and "
                "date windows (422). 202 means the event is stored in the queue. A well-formed, correctly signed "
                "envelope whose `type` is none of the listed ones is answered 202 "
                "`{\"accepted\": 0, \"ignored\": \"<type>\"}`."),
            "parameters": [
                {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "The school (or school owner) id from the connector's configuration."},
                {"name": "adapter", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "The name of an adapter configured for the tenant (type `generic` for this contract)."},
                *_headers(),
            ],
            "requestBody": {
                "required": True,
                "description": f"One event; at most {DEFAULT_MAX_BODY_BYTES} bytes unless the adapter is configured "
                               "otherwise. Fields outside the contract are dropped before anything is queued.",
                "content": {"application/json": {"schema": {
                    "oneOf": [_ref(name) for name in envelopes.values()],
                    "discriminator": {
                        "propertyName": "type",
                        "mapping": {t: f"#/components/schemas/{name}" for t, name in envelopes.items()},
                    },
                }}},
            },
            "responses": responses,
        }},
    )
    spec.path(path="/healthz", operations={"get": {
        "operationId": "healthz", "summary": "The process is alive",
        "responses": {"200": {"description": "Alive.", "content": {"application/json": {"schema": _ref("Health")}}}},
    }})
    spec.path(path="/readyz", operations={"get": {
        "operationId": "readyz", "summary": "Redis answers",
        "responses": {
            "200": {"description": "Ready.", "content": {"application/json": {"schema": _ref("Ready")}}},
            "503": {"description": "A dependency is down; do not route deliveries here.",
                    "content": {"application/json": {"schema": _ref("Ready")}}},
        },
    }})
    return spec.to_dict()
