"""What a school's IT admin writes under a ``oneroster_no`` adapter in the tenant YAML; secrets by reference only.

The defaults are OnEdHub's (Vigilo): ``https://api.onedhub.io/<orgId>/ims/oneroster/...`` with the token from
``https://id.onedhub.io/realms/onedhub/protocol/openid-connect/token`` (docs.onedhub.io, "Environments").
"""
from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates

from connector.config.secrets import SecretField

# An org id is a path segment (OnEdHub: the organisation's domain name, ``bergen.kommune.no``); ``-`` means none,
# for a service whose paths carry no org (Visma Flyt Skole's ``/ims/oneroster/rostering/v1p2``).
ORG_ID = re.compile(r"[A-Za-z0-9._~-]{1,200}")
STATUSES = ("absent", "late", "left_early")


class AbsenceTypeSettings(Schema):
    """How one of the platform's absence type codes reads for the rules: a status, and whether it is documented
    (``null``: read the record's own documentation field)."""

    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    documented = fields.Boolean(load_default=None, allow_none=True)


class OneRosterSettings(Schema):
    base_url = fields.Url(load_default="https://api.onedhub.io", schemes={"https", "http"}, require_tld=False)
    orgs = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=50))
    absences_path = fields.String(load_default="/{org}/ims/oneroster/absences/v1p0",
                                  validate=validate.Length(min=1, max=300))
    rostering_path = fields.String(load_default="/{org}/ims/oneroster/rostering/v1p2",
                                   validate=validate.Length(min=1, max=300))
    token_url = fields.Url(load_default="https://id.onedhub.io/realms/onedhub/protocol/openid-connect/token",
                           schemes={"https", "http"}, require_tld=False)
    client_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    client_secret = SecretField(required=True)
    scopes = fields.List(fields.String(validate=validate.Length(min=1, max=300)), load_default=list)
    # The schools (OneRoster ``org`` sourcedIds of type school) this tenant is: an OnEdHub org is usually the whole
    # municipality, and a tenant that is one school must see its own pupils' absences only. Empty: every school.
    schools = fields.List(fields.String(validate=validate.Length(min=1, max=200)), load_default=list)
    # false: a service with rostering but no Absence Service (Visma Flyt Skole's, as documented): the roster only.
    read_absences = fields.Boolean(load_default=True)
    poll_interval_seconds = fields.Integer(load_default=300, validate=validate.Range(min=30, max=24 * 3600))
    # Records modified this long before the checkpoint are read again: a server's clock that lags, or a record
    # committed with a time earlier than one already read, is not missed. Seen records are not queued twice.
    overlap_seconds = fields.Integer(load_default=600, validate=validate.Range(min=0, max=7 * 24 * 3600))
    # The first poll reads absences modified this many days back (a backfill); later polls start at the checkpoint.
    backfill_days = fields.Integer(load_default=14, validate=validate.Range(min=0, max=400))
    page_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10_000))
    # ``/readyz`` and an ERROR line say so once polls have failed for longer than this many intervals.
    alert_after_intervals = fields.Integer(load_default=3, validate=validate.Range(min=1, max=1000))
    # The platform's absence type codes (lower case) and what each means; merged over the built-in ones.
    absence_types = fields.Dict(keys=fields.String(), values=fields.Nested(AbsenceTypeSettings), load_default=dict)
    roster_refresh_seconds = fields.Integer(load_default=6 * 3600, validate=validate.Range(min=300, max=7 * 24 * 3600))
    # The class types (``classType``) that are a pupil's base group (basisgruppe/kontaktlærergruppe).
    group_class_types = fields.List(fields.String(), load_default=lambda: ["homeroom"])
    # Which enrollment says "contact teacher": a teacher enrolled with ``primary: true`` in the group's class.
    contact_teacher_from = fields.String(load_default="primary_teacher",
                                         validate=validate.OneOf(("primary_teacher", "configuration")))
    timeout_seconds = fields.Float(load_default=20.0, validate=validate.Range(min=0.5, max=120))
    max_body_bytes = fields.Integer(load_default=1024 * 1024, validate=validate.Range(min=1024, max=16 * 1024 * 1024))

    @validates("orgs")
    def _orgs(self, value: list[str], **kwargs) -> None:
        bad = [org for org in value if not ORG_ID.fullmatch(org)]
        if bad:
            raise ValidationError(f"Not an org id (a path segment such as bergen.kommune.no, or '-'): {bad[0]!r}.")
        if len(set(value)) != len(value):
            raise ValidationError("An org is listed twice.")

    @validates("absences_path")
    def _absences_path(self, value: str, **kwargs) -> None:
        if not value.startswith("/"):
            raise ValidationError("Must start with '/'.")

    @validates("rostering_path")
    def _rostering_path(self, value: str, **kwargs) -> None:
        if not value.startswith("/"):
            raise ValidationError("Must start with '/'.")
