"""Standard Webhooks signature verification (standardwebhooks.com), over the raw bytes, before any parsing.

The reference ``standardwebhooks`` package does the HMAC, the constant-time compare, several signatures in one
header and the ±5 minute window. Around it this module adds what a public endpoint needs: any of several secrets
(key rotation on our side), and every malformed header answered as "unauthorised" instead of an exception.
"""
from __future__ import annotations

import logging
from typing import Iterable, Mapping

from standardwebhooks.webhooks import Webhook

log = logging.getLogger(__name__)

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureError(Exception):
    """Why a request was refused, in words safe to send back: no secret, no signature value."""


def verify(body: bytes, headers: Mapping[str, str], secrets: Iterable[str]) -> str:
    """Return the ``webhook-id`` when one signature matches one of ``secrets``; raise ``SignatureError`` if not."""
    wanted = {name: headers.get(name) for name in HEADERS}
    missing = [name for name, value in wanted.items() if not value]
    if missing:
        raise SignatureError(f"Missing header(s): {', '.join(missing)}.")
    for secret in secrets:
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
            return wanted["webhook-id"]
        except Exception as exc:  # the package raises ValueError/binascii.Error on malformed input too
            reason = str(exc) if "timestamp" in str(exc) else None
            if reason:
                raise SignatureError(f"{reason}: the timestamp must be within 5 minutes of now.") from None
    raise SignatureError("No valid signature for this endpoint.")


def sign(body: bytes, msg_id: str, timestamp: int, secret: str) -> str:
    """A ``webhook-signature`` value, built exactly as a sender builds it (tests, the bench, the example client)."""
    from datetime import datetime, timezone

    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=timezone.utc), body.decode())
