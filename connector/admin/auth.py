"""Who is signed in to the admin page, and what they may see.

Two ways in. The school owner's OpenID Connect provider (Feide, Microsoft Entra ID) through Authlib's Flask client:
discovery, the authorisation code flow with state and nonce, the id token's signature checked against the
provider's JWKS, its issuer, audience and expiry, all Authlib's; the claims are then mapped to a role by the
configuration's ``roles`` (``admin.oidc.<name>.roles``). And a local admin account (role ``admin``), the fallback
when the provider is down: its password's hash (werkzeug's scrypt) is read from ``admin.password_file`` at each
sign-in, written by ``connector admin set-password``; the password itself is stored nowhere.

The session (signed with ``admin.session_secret``) holds the person's display id, the role and the tenants a
``school`` role may see; nothing else.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Iterable

from flask import Flask, abort, current_app, redirect, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from connector.config.schema import AdminConfig, RoleRule
from connector.config.secrets import SecretUnavailable

log = logging.getLogger(__name__)


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the user name is wrong, so a wrong name costs as long as a wrong password (made at the
    first sign-in, not at start: scrypt takes a quarter of a second on purpose)."""
    return generate_password_hash("not the password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def write_password_file(path: Path, password: str) -> None:
    """The hash only, readable by its owner only (0600), replaced in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    partial.write_text(hash_password(password) + "\n", encoding="utf-8")
    partial.replace(path)


def check_local(admin: AdminConfig, username: str, password: str) -> bool:
    stored = None
    if admin.password_file is not None:
        try:
            stored = admin.password_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            stored = None
    if stored is None or username != admin.username:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(stored, password)


def roles_from_claims(rules: Iterable[RoleRule], claims: dict[str, Any]) -> tuple[str, list[str]] | None:
    """The role the claims give (``admin`` wins), and for ``school`` the tenants; ``None`` when no rule matches."""
    tenants: list[str] = []
    for rule in rules:
        value = claims.get(rule.claim)
        matched = rule.value in value if isinstance(value, (list, tuple)) else str(value) == rule.value
        if value is None or not matched:
            continue
        if rule.role == "admin":
            return "admin", []
        if rule.tenant not in tenants:
            tenants.append(rule.tenant)
    return ("school", tenants) if tenants else None


def sign_in(who: str, role: str, tenants: list[str], how: str) -> None:
    language = session.get("lang")
    session.clear()  # nothing of the anonymous session carries over
    session.permanent = True
    session["user"] = {"who": who, "role": role, "tenants": tenants, "how": how}
    if language:
        session["lang"] = language


def user() -> dict | None:
    return session.get("user")


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if user() is None:
            return redirect(url_for("admin.login", next=request.full_path if request.method == "GET" else None))
        return view(*args, **kwargs)
    return wrapped


def admin_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if user() is None:
            return redirect(url_for("admin.login"))
        if user()["role"] != "admin":
            abort(404)
        return view(*args, **kwargs)
    return wrapped


def visible_tenants(config) -> list[str]:
    """The tenant ids the signed-in person may see, in the configuration's order."""
    person = user()
    if person is None:
        return []
    if person["role"] == "admin":
        return list(config.tenants)
    return [tenant for tenant in config.tenants if tenant in person["tenants"]]


def tenant_or_404(config, tenant_id: str):
    """The tenant, if the signed-in person may see it; else 404, the same as for a tenant that does not exist."""
    if tenant_id not in visible_tenants(config):
        abort(404)
    return config.tenants[tenant_id]


# --- OpenID Connect ------------------------------------------------------------------------------------------------


def register_providers(app: Flask, admin: AdminConfig) -> None:
    """One Authlib client per configured provider; one whose client secret cannot be read is left out (logged)."""
    if not admin.providers:
        return
    from authlib.integrations.flask_client import OAuth

    oauth = OAuth(app)
    for name, provider in admin.providers.items():
        try:
            secret = provider.client_secret.reveal()
        except SecretUnavailable as exc:
            log.error("admin sign-in with %s is off: its client secret cannot be read (%s)", name, exc)
            continue
        oauth.register(name, client_id=provider.client_id, client_secret=secret,
                       server_metadata_url=provider.discovery_url, client_kwargs={"scope": provider.scope})
    app.extensions["connector_oauth"] = oauth


def oidc_client(name: str):
    oauth = current_app.extensions.get("connector_oauth")
    client = oauth.create_client(name) if oauth is not None else None
    if client is None:
        abort(404)
    return client
