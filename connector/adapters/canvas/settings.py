"""What a school's IT admin writes under ``adapters.<name>`` for a Canvas instance (README.md shows an example)."""
from __future__ import annotations

from typing import Any

from jwt import PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError
from marshmallow import Schema, ValidationError, fields, validate, validates

from connector.contract.terms import DIRECTORY_ROLES
from connector.config.secrets import SecretField

# Instructure's published key set for signed Live Events (previous, current and next key; rotated monthly).
INSTRUCTURE_JWKS_URL = "https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks"

# The people a Live Event or a roster can name, beyond the staff roles of the configured directory.
MESSAGE_ROLES = ("guardian", "student")


def default_roles() -> dict[str, list[str]]:
    """Canvas's own enrollment types for each internal role; a school with custom course roles (for example a
    "Kontaktlærer" role based on TeacherEnrollment) lists those names instead."""
    return {
        "contact_teacher": ["TeacherEnrollment"],
        "subject_teacher": ["TaEnrollment"],
        "guardian": ["ObserverEnrollment"],
        "student": ["StudentEnrollment"],
    }


def _canvas_id(value: Any) -> str:
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.isdigit():
        raise ValidationError("Expected a Canvas user id (digits).")
    return text


class CanvasUserId(fields.Field):
    """A Canvas user id; YAML reads ``1234`` as a number, which means the same id."""

    def _deserialize(self, value, attr, data, **kwargs):
        return _canvas_id(value)


class CanvasSettings(Schema):
    base_url = fields.Url(required=True, schemes={"https", "http"}, require_tld=False)
    api_token = SecretField(required=True)
    root_account_uuid = fields.String(required=True, validate=validate.Length(min=1, max=200))
    jwks_url = fields.Url(load_default=INSTRUCTURE_JWKS_URL, schemes={"https", "http"}, require_tld=False)
    jwks = fields.Dict(load_default=None)
    jwks_cache_seconds = fields.Integer(load_default=3600, validate=validate.Range(min=60, max=7 * 24 * 3600))
    jwt_issuer = fields.String(load_default=None, validate=validate.Length(min=1, max=500))
    jwt_audience = fields.String(load_default=None, validate=validate.Length(min=1, max=500))
    jwt_leeway_seconds = fields.Integer(load_default=60, validate=validate.Range(min=0, max=600))
    group_by = fields.String(load_default="course", validate=validate.OneOf(("course", "section")))
    roles = fields.Dict(
        keys=fields.String(validate=validate.OneOf(DIRECTORY_ROLES + MESSAGE_ROLES)),
        values=fields.List(fields.String(validate=validate.Length(min=1, max=200)), validate=validate.Length(min=1)),
        load_default=default_roles,
    )
    note_recipients = fields.List(CanvasUserId(), load_default=list)
    # Where a task for a staff member goes: Canvas shows the planner only to users with a student enrolment and to
    # observers (``ApplicationController#planner_enabled?``), so by default a teacher gets an Inbox message;
    # ``planner_note`` for a school whose staff have a student enrolment (a staff-room course) and use the planner.
    staff_tasks = fields.String(load_default="conversation", validate=validate.OneOf(("conversation", "planner_note")))
    # The language of the one line the adapter adds to a task sent as a message (its due date).
    language = fields.String(load_default="nb", validate=validate.OneOf(("nb", "nn", "en")))
    directory_ttl_seconds = fields.Integer(load_default=900, validate=validate.Range(min=0, max=24 * 3600))
    dedupe_lookback_days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=365))
    throttle_wait_seconds = fields.Float(load_default=30.0, validate=validate.Range(min=1, max=3600))
    rate_limit_floor = fields.Float(load_default=50.0, validate=validate.Range(min=0, max=600))
    max_body_bytes = fields.Integer(load_default=256 * 1024, validate=validate.Range(min=1024, max=4 * 1024 * 1024))
    timeout_seconds = fields.Float(load_default=10.0, validate=validate.Range(min=0.5, max=120))

    @validates("jwks")
    def _usable_key_set(self, value, **kwargs):
        """A static key set is checked now, so a pasted JWKS with a typo fails ``check-config``, not a delivery."""
        if value is None:
            return
        try:
            key_set = PyJWKSet.from_dict(value)
        except (PyJWKError, PyJWKSetError, KeyError, TypeError, ValueError):
            raise ValidationError("Not a usable JWKS: expected {keys: [{kty, kid, n, e, ...}]}.") from None
        if not any(key.key_id for key in key_set.keys):
            raise ValidationError("Every key needs a kid: Canvas names the key in the JWT header.")
