"""Standard Webhooks signature verification (standardwebhooks.com), over the raw bytes, before any parsing.

The reference ``standardwebhooks`` package does the HMAC, the constant-time compare, several signatures in one
header and the ±5 minute window. Around it this module adds what a public endpoint needs: any of several secrets
(key rotation on our side), every malformed header answered as "unauthorised" instead of an exception, and the
signature computed over the body's own bytes: the package decodes the body as UTF-8 before signing it, so a correctly
signed body that is not UTF-8 would be "unauthorised" (401) when it is malformed (400, once the JSON is read).
"""
from __future__ import annotations

import base64
import logging
import re
from datetime import datetime, timezone
from math import floor
from typing import Iterable, Mapping

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, hmac_data

log = logging.getLogger(__name__)

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureError(Exception):
    """Why a request was refused, in words safe to send back: no secret, no signature value."""


class _RawBodyWebhook(Webhook):
    """The package's ``Webhook``, signing exactly the bytes received.

    ``Webhook.verify`` turns the body into text and ``sign`` encodes ``"{id}.{timestamp}.{body}"`` back to UTF-8;
    given the body decoded with ``surrogateescape``, which every byte sequence survives, and encoded back the same
    way, the signed bytes are the received ones whether or not they are UTF-8. Everything else (the timestamp
    window, several signatures, the constant-time compare) stays the package's. ``tests/test_webhooks.py`` signs a
    latin-1 body by hand to keep this honest.
    """

    def sign(self, msg_id: str, timestamp: datetime, data: str) -> str:
        stamp = str(floor(timestamp.replace(tzinfo=timezone.utc).timestamp()))
        signed = f"{msg_id}.{stamp}.".encode("utf-8", "surrogateescape") + data.encode("utf-8", "surrogateescape")
        return f"v1,{base64.b64encode(hmac_data(self._whsecret, signed)).decode()}"


_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is no Standard Webhooks secret ``verify`` can use, in words that do not repeat it; ``None``
    when it is one. For ``check-config``: at a request, a bad secret only looks like a bad signature (401).

    The package takes ``whsec_`` + base64, or the base64 alone, padded or not; it refuses an empty key and base64 of
    an impossible length, and it silently drops characters outside base64 (a space, the URL-safe ``-`` and ``_``),
    which gives another key than the one the sender was given: all refused here.
    """
    encoded = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    if not encoded:
        return "not a Standard Webhooks secret: empty (expected whsec_ followed by base64)"
    if not _BASE64.fullmatch(encoded):
        return ("not a Standard Webhooks secret: not base64 after whsec_ (only A-Z, a-z, 0-9, + and /, then = "
                "padding)")
    try:
        Webhook(secret)
    except EmptyWebhookSecretError:
        return "not a Standard Webhooks secret: the base64 decodes to an empty key"
    except Exception:  # binascii.Error
        return "not a Standard Webhooks secret: the base64 has an impossible length (a character missing or extra?)"
    return None


# One ``v1`` signature as a sender writes it: the standard base64 of a 32-byte HMAC-SHA256, 44 characters with its one
# ``=``, and the bits past the 256th zero. Python's lenient base64 decoder also takes the same MAC truncated into
# padding, with characters or padding appended, or with other trailing bits: each such variant of a captured
# signature would pass too. Only the canonical form is held against the MAC.
_V1_SIGNATURE = re.compile(r"v1,[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


def canonical_signatures(header: str) -> str:
    """The header's signatures in their canonical form only (the others could never be a sender's)."""
    return " ".join(part for part in header.split(" ") if _V1_SIGNATURE.fullmatch(part))


def verify(body: bytes, headers: Mapping[str, str], secrets: Iterable[str]) -> str:
    """Return the ``webhook-id`` when one signature matches one of ``secrets``; raise ``SignatureError`` if not."""
    wanted = {name: headers.get(name) for name in HEADERS}
    missing = [name for name, value in wanted.items() if not value]
    if missing:
        raise SignatureError(f"Missing header(s): {', '.join(missing)}.")
    wanted["webhook-signature"] = canonical_signatures(wanted["webhook-signature"])
    if not wanted["webhook-signature"]:
        raise SignatureError("No valid signature for this endpoint.")
    text = body.decode("utf-8", "surrogateescape")
    for secret in secrets:
        try:
            _RawBodyWebhook(secret).verify(text, wanted, json_parse=False)
            return wanted["webhook-id"]
        except Exception as exc:  # the package raises ValueError/binascii.Error on malformed input too
            reason = str(exc) if "timestamp" in str(exc) else None
            if reason:
                raise SignatureError(f"{reason}: the timestamp must be within 5 minutes of now.") from None
    raise SignatureError("No valid signature for this endpoint.")


def sign(body: bytes, msg_id: str, timestamp: int, secret: str) -> str:
    """A ``webhook-signature`` value, built exactly as a sender builds it (tests, the bench, the example client)."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return _RawBodyWebhook(secret).sign(msg_id, moment, body.decode("utf-8", "surrogateescape"))
