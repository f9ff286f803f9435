"""What a school's IT admin writes under an ``m365`` adapter in the tenant YAML; secrets by reference only."""
from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates, validates_schema

from connector.config.secrets import SecretField

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TEAMS_WEB = "https://teams.microsoft.com/"
GUARDIAN_POLICIES = ("dead_letter", "skip")
# The resources a school may subscribe to (Graph's "Create subscription", chatMessage rows): one channel's or one
# chat's messages, or every channel or chat message in the tenant.
SUBSCRIBABLE = re.compile(
    r"/teams/[^/]+/channels/[^/]+/messages|/chats/[^/]+/messages|/teams/getAllMessages|/chats/getAllMessages"
)


def is_object_id(value: str | None) -> bool:
    """Entra object ids are GUIDs; Planner keys assignments by them, so a UPN will not do there."""
    return bool(value) and GUID.fullmatch(value) is not None


class M365Settings(Schema):
    tenant_id = fields.String(required=True)
    client_id = fields.String(required=True)
    client_secret = SecretField(required=True)
    # The ``clientState`` given when the subscriptions were created; several while one is being rotated out.
    client_states = fields.List(SecretField(), required=True, validate=validate.Length(min=1))
    teams_app_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    activity_type = fields.String(load_default="skoleflytAlert", validate=validate.Length(min=1, max=64))
    topic_label = fields.String(load_default="Skoleflyt", validate=validate.Length(min=1, max=100))
    topic_web_url = fields.Url(load_default=None, schemes={"https"})
    planner_plan_id = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    planner_bucket_id = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    guardian_alerts = fields.String(load_default="dead_letter", validate=validate.OneOf(GUARDIAN_POLICIES))
    education_classes = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    lookup_ttl_seconds = fields.Integer(load_default=3600, validate=validate.Range(min=60, max=7 * 24 * 3600))
    graph_url = fields.Url(load_default="https://graph.microsoft.com/v1.0", schemes={"https"})
    authority_host = fields.Url(load_default="https://login.microsoftonline.com", schemes={"https"})
    max_body_bytes = fields.Integer(load_default=1024 * 1024, validate=validate.Range(min=1024, max=16 * 1024 * 1024))
    timeout_seconds = fields.Float(load_default=10.0, validate=validate.Range(min=0.5, max=120))
    # Graph subscriptions the connector creates and keeps alive (``subscriptions.py``); none by default.
    subscriptions = fields.List(fields.String(), load_default=list)
    # This adapter's door as Graph reaches it: ``https://<connector>/webhooks/<tenant>/<adapter>``.
    notification_url = fields.Url(load_default=None, schemes={"https"})
    # How long each subscription is asked to last. Graph's v1.0 table gives chatMessage 60 minutes; a longer one is
    # accepted only where Graph allows it with a lifecycleNotificationUrl (which the connector always gives).
    subscription_minutes = fields.Integer(load_default=55, validate=validate.Range(min=15, max=4230))

    @pre_load
    def _group_ids_as_text(self, data, **kwargs):
        """YAML reads a group called ``10`` as a number; it is the same group as ``"10"``."""
        classes = data.get("education_classes") if isinstance(data, dict) else None
        if isinstance(classes, dict):
            data = {**data, "education_classes": {str(group): class_id for group, class_id in classes.items()}}
        return data

    @validates("subscriptions")
    def _subscriptions(self, value: list, **kwargs) -> None:
        bad = [resource for resource in value if not SUBSCRIBABLE.fullmatch(resource)]
        if bad:
            raise ValidationError(
                f"Not a Teams message resource Graph can subscribe to: {', '.join(bad)}. Expected "
                "/teams/{team-id}/channels/{channel-id}/messages, /chats/{chat-id}/messages, /teams/getAllMessages "
                "or /chats/getAllMessages.")
        if len(set(value)) != len(value):
            raise ValidationError("A resource is listed twice.")

    @validates_schema
    def _subscriptions_need_url(self, data, **kwargs) -> None:
        if data.get("subscriptions") and not data.get("notification_url"):
            raise ValidationError("Subscriptions need notification_url: this adapter's webhook address as Graph "
                                  "reaches it (https://<connector>/webhooks/<tenant>/<adapter>).", "notification_url")

    @validates("tenant_id")
    def _tenant_id(self, value: str, **kwargs) -> None:
        if not is_object_id(value):
            raise ValidationError("Expected the Directory (tenant) ID, a GUID: notifications are checked against it.")

    @validates("client_id")
    def _client_id(self, value: str, **kwargs) -> None:
        if not is_object_id(value):
            raise ValidationError("Expected the app registration's Application (client) ID, a GUID.")

    @validates("topic_web_url")
    def _topic_web_url(self, value: str | None, **kwargs) -> None:
        if value is not None and not value.startswith(TEAMS_WEB):
            raise ValidationError(f"Teams requires the activity topic's webUrl to start with {TEAMS_WEB}.")

    @validates("education_classes")
    def _classes(self, value: dict, **kwargs) -> None:
        bad = sorted(group for group, class_id in value.items() if not is_object_id(class_id))
        if bad:
            raise ValidationError(f"Expected educationClass ids (GUIDs) for group(s): {', '.join(bad)}.")
