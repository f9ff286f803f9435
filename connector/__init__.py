"""skoleflyt-connector: a school's absence plan and escalation ladder, applied to its platform's webhooks."""
from __future__ import annotations

import logging
import sys


def _patch_for_gevent_first() -> None:
    """``connector web`` serves with gunicorn's gevent workers (``cli.web_options``), and gevent must patch the
    standard library before anything imports ``ssl`` (gevent's own advice: else urllib3 and jwt keep blocking SSL
    sockets, and every worker warns at boot). Importing this package pulls in requests, so the patch comes here,
    first, in the master of ``connector web`` (``connector web …`` or ``python -m connector.cli web …``), whose
    forked workers then start patched. Nothing else is patched: the worker, the scheduler and tests stay as they are."""
    if sys.argv[1:2] == ["web"] and "gevent.monkey" not in sys.modules:
        from gevent import monkey

        monkey.patch_all()


_patch_for_gevent_first()

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from connector.engine.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(config=None, *, runtime: Runtime | None = None) -> Flask:
    """Build the web app for a loaded ``Config`` (or a ready ``Runtime``, as tests pass one); nothing at import."""
    if runtime is None:
        from connector.config.schema import load_config
        from connector.store.connection import connect

        if config is None:
            import os

            config = load_config(os.environ["CONNECTOR_CONFIG"])
        runtime = Runtime(config, connect())
    app = Flask(__name__)
    app.extensions["connector"] = runtime

    from connector.webhooks.views import bp as webhooks

    app.register_blueprint(webhooks)

    from connector.admin import init_app as admin_page

    admin_page(app, runtime)  # /admin, with CSRF on its forms (the door above is exempt)

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        """Each dependency, ``up`` or ``down``, and which are down; 503 when any is. ``workers`` is how many RQ
        workers are alive on the queue: reported, not required (the door queues without one; jobs wait)."""
        from connector.engine.health import dependencies

        body = dependencies(runtime)
        return jsonify(body), 200 if body["status"] == "ok" else 503

    @app.get("/metrics")
    def metrics():
        from connector.engine.metrics import exposition

        text, content_type = exposition(runtime)
        return Response(text, 200, content_type=content_type)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify({"error": code, "message": exc.description or exc.name}), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unhandled error")
        return jsonify({"error": "internal", "message": "Internal error."}), 500

    return app
