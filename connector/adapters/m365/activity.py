"""Alerts as Teams activity-feed notifications (``POST /users/{id}/teamwork/sendActivityNotification``)."""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

from connector.contract.actions import Action

PREVIEW_CHARS = 150  # Teams shows only the first 150 characters of previewText
SYSTEM_DEFAULT = "systemDefault"


def chain_id(external_ref: str) -> int:
    """The notification's ``chainId``, from the action's idempotency key: a resent alert replaces the first one in
    the recipient's feed instead of appearing twice. 60 bits, so it stays a positive Int64."""
    return int(hashlib.sha256(external_ref.encode()).hexdigest()[:15], 16)


def topic_url(settings: Mapping[str, Any]) -> str:
    """Where selecting the notification leads: the configured deep link, else the Teams app itself."""
    return settings["topic_web_url"] or (
        f"https://teams.microsoft.com/l/app/{settings['teams_app_id']}?tenantId={settings['tenant_id']}"
    )


def notification_body(action: Action, settings: Mapping[str, Any]) -> dict[str, Any]:
    activity_type = settings["activity_type"]
    parameter = "systemDefaultText" if activity_type == SYSTEM_DEFAULT else "title"
    return {
        "topic": {"source": "text", "value": settings["topic_label"], "webUrl": topic_url(settings)},
        "activityType": activity_type,
        "chainId": chain_id(action.external_ref),
        "previewText": {"content": action.body[:PREVIEW_CHARS]},
        "templateParameters": [{"name": parameter, "value": action.title}],
    }
