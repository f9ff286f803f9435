"""What the admin page's tests share: an ``admin:`` configuration, a small OpenID Connect provider on loopback, and
the app served by a real HTTP server in a thread (for the browser).

The fake provider speaks what Authlib's client reads (OpenID Connect Discovery 1.0 §4 for the document, RFC 7517
for the JWKS, the code flow of OpenID Connect Core 1.0 §3.1 for ``/authorize`` and ``/token``) and signs its id
tokens with RS256 under a key made for the test run. It signs in whoever the test names next
(:meth:`FakeOidcProvider.next_user`), as a provider would after its own login page.
"""
from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from dataclasses import replace
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, abort, jsonify, redirect, request
from werkzeug.serving import make_server

from connector.config.schema import AdminConfig, OidcProvider, RoleRule
from connector.config.secrets import SecretRef

CLIENT_ID = "skoleflyt-admin"
CLIENT_SECRET = "client-secret-for-tests-only"
ADMIN_PASSWORD = "riktig-hest-batteri-stift"
SESSION_SECRET = "session-secret-for-tests-" + "x" * 16


class ServedApp:
    """A WSGI app on 127.0.0.1 at a free port, in a thread, until :meth:`stop`."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class FakeOidcProvider:
    """Discovery, JWKS, authorize (signs in :attr:`user` at once) and token, on loopback."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:8]
        self.rogue_key = None  # set: id tokens are signed with it while the JWKS still serves ``key``
        self.codes: dict[str, dict] = {}
        self.user: dict = {}
        self.token_requests = 0
        self.served = ServedApp(self._app())
        self.issuer = self.served.url

    def next_user(self, **claims) -> None:
        self.user = claims

    def _app(self) -> Flask:
        app = Flask("fake_oidc")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify({
                "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            })

        @app.get("/jwks")
        def jwks():
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return jsonify({"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]})

        @app.get("/authorize")
        def authorize():
            if request.args.get("client_id") != CLIENT_ID or request.args.get("response_type") != "code":
                abort(400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"claims": dict(self.user), "nonce": request.args.get("nonce"),
                                "redirect_uri": request.args["redirect_uri"]}
            query = urlencode({"code": code, "state": request.args.get("state", "")})
            return redirect(f"{request.args['redirect_uri']}?{query}")

        @app.post("/token")
        def token():
            self.token_requests += 1
            basic = request.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            else:
                client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
            if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
                return jsonify({"error": "invalid_client"}), 401
            grant = self.codes.pop(request.form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != request.form.get("redirect_uri"):
                return jsonify({"error": "invalid_grant"}), 400
            now = int(time.time())
            claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                      "nonce": grant["nonce"], **grant["claims"]}
            pem = (self.rogue_key or self.key).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
            id_token = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": self.kid})
            return jsonify({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                            "expires_in": 300, "id_token": id_token})

        return app

    def stop(self) -> None:
        self.served.stop()


def admin_config(password_file, discovery_url: str | None = None) -> AdminConfig:
    """Local admin (``admin`` / :data:`ADMIN_PASSWORD`) and, given a discovery URL, a provider ``feide`` whose
    ``groups`` claim maps ``fc:org:owner`` to admin, ``fc:skole-a`` to skole-a and ``fc:skole-b`` to skole-b."""
    providers = {}
    if discovery_url:
        providers["feide"] = OidcProvider(
            name="feide", label="Feide", discovery_url=discovery_url, client_id=CLIENT_ID,
            client_secret=SecretRef("env", "TEST_OIDC_CLIENT_SECRET"), scope="openid profile",
            roles=(RoleRule("groups", "fc:org:owner", "admin"), RoleRule("groups", "fc:skole-a", "school", "skole-a"),
                   RoleRule("groups", "fc:skole-b", "school", "skole-b")),
        )
    return AdminConfig(session_secret=SecretRef("env", "TEST_ADMIN_SESSION_SECRET"), username="admin",
                       password_file=password_file, providers=providers, secure_cookies=False)


def with_admin(rt, admin: AdminConfig):
    rt.config = replace(rt.config, admin=admin)
    return rt
