"""Verifying a signed Live Event: the HTTPS body is a compact JWT (RS256) whose claims are the event.

Instructure signs every HTTPS delivery with one of the keys its JWKS endpoint publishes (previous, current and
next; rotated monthly) and names the key in the JWT header's ``kid``. That key set is shared by every hosted Canvas,
so a valid signature only says "Instructure sent this": the caller must still check the event's root account.
"""
from __future__ import annotations

from typing import Any, Mapping

import jwt
import requests
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKError, PyJWKSetError

ALGORITHM = "RS256"


class SignatureRejected(Exception):
    """The body is not a Live Event signed by a key we trust; ``code`` says which check failed."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class KeysUnavailable(Exception):
    """The JWKS endpoint could not be read, so no signature can be checked right now (the sender should retry)."""


class RemoteKeys(PyJWKClient):
    """pyjwt's JWKS client (cached key set, one forced refresh for an unknown ``kid``, a cool-down between refreshes),
    fetching through the adapter's ``requests`` session instead of urllib, so timeouts and proxies are the adapter's
    and the Canvas API token is never sent to the JWKS host (this session adds no auth header)."""

    def __init__(self, uri: str, session: requests.Session, lifespan: float, timeout: float):
        super().__init__(uri, cache_jwk_set=True, lifespan=lifespan, timeout=timeout)
        self._session = session

    def fetch_data(self) -> Any:
        try:
            response = self._session.get(self.uri, timeout=self.timeout, allow_redirects=False,
                                         headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise PyJWKClientConnectionError(f"JWKS endpoint unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise PyJWKClientConnectionError(f"JWKS endpoint answered HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise PyJWKClientConnectionError("JWKS endpoint did not answer JSON") from None
        if not isinstance(data, dict):
            raise PyJWKClientConnectionError("JWKS endpoint did not answer a JSON object")
        return data

    def key_for(self, kid: str) -> PyJWK | None:
        try:
            return self.get_signing_key(kid)
        except PyJWKClientConnectionError as exc:
            raise KeysUnavailable(str(exc)) from None
        except PyJWKClientError:
            return None
        except (PyJWKError, PyJWKSetError) as exc:  # the endpoint answered, but no usable key set
            raise KeysUnavailable(f"JWKS endpoint answered an unusable key set ({type(exc).__name__})") from None


class StaticKeys:
    """A JWKS pasted into the configuration (for a self-hosted Canvas, or to pin keys): no network at all."""

    def __init__(self, jwks: Mapping[str, Any]):
        self._keys = {key.key_id: key for key in PyJWKSet.from_dict(dict(jwks)).keys if key.key_id}

    def key_for(self, kid: str) -> PyJWK | None:
        return self._keys.get(kid)


class LiveEventVerifier:
    def __init__(self, keys: RemoteKeys | StaticKeys, issuer: str | None, audience: str | None, leeway: int):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    def claims(self, body: bytes) -> dict[str, Any]:
        """The verified claims of a signed Live Event. Nothing in the body is parsed before the header checks."""
        token = body.strip()
        if token.startswith(b"{"):
            raise SignatureRejected(
                "unsigned_event", "The body is unsigned JSON: turn on 'Sign Payload' for this Live Events stream.")
        try:
            text = token.decode("ascii")
            header = jwt.get_unverified_header(text)
        except (UnicodeDecodeError, jwt.DecodeError):
            raise SignatureRejected("invalid_signature", "The body is not a compact JWT.") from None
        if header.get("alg") != ALGORITHM:
            raise SignatureRejected("invalid_signature", f"Only {ALGORITHM} signatures are accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise SignatureRejected("invalid_signature", "The JWT header names no key (kid).")
        key = self.keys.key_for(kid)
        if key is None:
            raise SignatureRejected("unknown_key", "The JWT is signed with a key (kid) the key set does not hold.")
        if key.algorithm_name != ALGORITHM:
            raise SignatureRejected("invalid_signature", f"The key named by kid is not an {ALGORITHM} key.")
        try:
            claims = jwt.decode(
                text, key.key, algorithms=[ALGORITHM], issuer=self.issuer, audience=self.audience,
                leeway=self.leeway, options={"verify_aud": self.audience is not None, "require": []},
            )
        except jwt.ExpiredSignatureError:
            raise SignatureRejected("expired_token", "The JWT has expired (exp).") from None
        except jwt.ImmatureSignatureError:
            raise SignatureRejected("expired_token", "The JWT is not valid yet (iat/nbf).") from None
        except jwt.InvalidIssuerError:
            raise SignatureRejected("invalid_issuer", "The JWT's issuer (iss) is not the configured one.") from None
        except jwt.InvalidAudienceError:
            raise SignatureRejected("invalid_audience", "The JWT's audience (aud) is not the configured one.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise SignatureRejected("invalid_signature", f"The JWT lacks the {exc.claim!r} claim.") from None
        except jwt.PyJWTError:
            raise SignatureRejected("invalid_signature", "The JWT signature does not verify.") from None
        if not isinstance(claims, dict):
            raise SignatureRejected("invalid_signature", "The JWT claims are not an object.")
        return claims
