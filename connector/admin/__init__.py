"""The admin page at ``/admin``: what a school owner's IT admin reads and does, server-rendered.

Owns the admin blueprint (``views``), sign-in and roles (``auth``: the owner's OpenID Connect provider through
Authlib's Flask client, and a local admin account whose password hash ``connector admin set-password`` writes), the
page texts in bokmål, nynorsk and English (``texts``), its Jinja templates and its one stylesheet (``static/``:
nothing is fetched from elsewhere). Every form carries a CSRF token (Flask-WTF's ``CSRFProtect``; the webhook door is
exempt: its senders sign their requests instead). Sessions are signed with the configuration's ``admin.session_secret``.

Roles: ``admin`` sees every tenant; ``school`` sees its own tenant(s) only, checked on every view and action
(:func:`connector.admin.auth.tenant_or_404`), and a tenant it may not see answers 404, as one that does not exist.

May import: the engine (to act: send a test task, retry a dead letter), the store's read functions (handing them
the runtime's connection; never Redis itself), the rules' plan printing, the configuration. Never the door.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify

log = logging.getLogger(__name__)


def init_app(app: Flask, runtime) -> None:
    """Register ``/admin`` on ``app``: the full page when the configuration has an ``admin:`` section, else one
    answer saying how to turn it on."""
    from connector.config.secrets import SecretUnavailable

    admin = runtime.config.admin
    message = "The admin page is off: add an 'admin:' section to the configuration (README, 'Admin page')."
    try:
        session_key = admin.session_secret.reveal() if admin is not None else None
    except SecretUnavailable as exc:  # the door must keep taking deliveries: only the admin page stays off
        log.error("the admin page is off: its session secret cannot be read (%s)", exc)
        session_key, message = None, "The admin page is off: its session secret cannot be read (see the log)."
    if session_key is None:
        @app.get("/admin/")
        @app.get("/admin")
        def admin_not_configured():
            return jsonify({"error": "not_configured", "message": message}), 404
        return

    from datetime import timedelta

    from flask_wtf.csrf import CSRFProtect

    from connector.admin import auth
    from connector.admin.views import bp

    app.secret_key = session_key
    app.config.update(
        SESSION_COOKIE_NAME="connector_admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # the provider's redirect back is a top-level GET: Lax lets the cookie come
        SESSION_COOKIE_SECURE=admin.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the signed session it is tied to
    )
    csrf = CSRFProtect(app)
    for blueprint in app.blueprints.values():  # the door: signed by its senders, never a browser's form
        csrf.exempt(blueprint)
    auth.register_providers(app, admin)
    app.register_blueprint(bp, url_prefix="/admin")
