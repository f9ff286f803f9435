"""What a school's IT admin writes under a ``moodle`` adapter in the tenant YAML; secrets by reference only."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates, validates_schema

from connector.contract.terms import DIRECTORY_ROLES
from connector.config.secrets import SecretField
from connector.contract.events import STATUSES
from connector.contract.signatures import secret_problem

# mod_attendance installs these four statuses (db/install.php: P, A, L, E); a school that renamed or added
# acronyms maps them under ``statuses:``, which is merged over this.
DEFAULT_STATUSES = {
    "P": {"status": "present", "documented": False},
    "L": {"status": "late", "documented": False},
    "E": {"status": "absent", "documented": True},  # "Excused": the school has accepted the reason
    "A": {"status": "absent", "documented": False},
}
# Which Moodle role shortnames hold a connector role in a course. Only the roles named here are looked up in
# Moodle; every other role comes from the tenant's ``directory:``.
DEFAULT_ROLES = {"contact_teacher": ["editingteacher"]}
STUDENT_ROLE_ID = 5  # the "student" archetype role Moodle installs
GUARDIAN_POLICIES = ("dead_letter", "skip", "student")


class StatusMapping(Schema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    documented = fields.Boolean(required=True)


class MoodleSettings(Schema):
    base_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    ws_token = SecretField(required=True)
    # The local_webhooks service's "Token" field; several while one is being rotated out.
    webhook_tokens = fields.List(SecretField(), load_default=list)
    # Standard Webhooks secrets (``whsec_...``) for a relay that signs the same event bodies instead.
    webhook_secrets = fields.List(SecretField(check=secret_problem), load_default=list)
    statuses = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=20)), values=fields.Nested(StatusMapping),
        load_default=dict,
    )
    roles = fields.Dict(
        keys=fields.String(validate=validate.OneOf(DIRECTORY_ROLES)),
        values=fields.List(fields.String(validate=validate.Length(min=1, max=100)), validate=validate.Length(min=1)),
        load_default=lambda: dict(DEFAULT_ROLES),
    )
    student_role_ids = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1)), load_default=lambda: [STUDENT_ROLE_ID]
    )
    guardian_alerts = fields.String(load_default="dead_letter", validate=validate.OneOf(GUARDIAN_POLICIES))
    timezone = fields.String(load_default="Europe/Oslo")
    lookup_ttl_seconds = fields.Integer(load_default=3600, validate=validate.Range(min=60, max=7 * 24 * 3600))
    max_body_bytes = fields.Integer(load_default=1024 * 1024, validate=validate.Range(min=1024, max=16 * 1024 * 1024))
    timeout_seconds = fields.Float(load_default=10.0, validate=validate.Range(min=0.5, max=120))

    @validates("timezone")
    def _timezone(self, value: str, **kwargs) -> None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError("Unknown time zone; use an IANA name such as Europe/Oslo.") from None

    @validates_schema
    def _some_inbound_auth(self, data, **kwargs) -> None:
        if not data.get("webhook_tokens") and not data.get("webhook_secrets"):
            raise ValidationError(
                "Give webhook_tokens (the local_webhooks token) or webhook_secrets (Standard Webhooks), or both.",
                "webhook_tokens",
            )

    @post_load
    def _merge_statuses(self, data, **kwargs):
        data["statuses"] = {**DEFAULT_STATUSES, **data.get("statuses", {})}
        return data
