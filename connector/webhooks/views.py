"""``POST /webhooks/<tenant>/<adapter>``: the one door events come in by.

The order of checks is the contract's: who (404), how big (413), then the adapter verifies the raw bytes before
anything is parsed (415, 401, 400, 422), then the dates of every adapter's events are held against the school's
window (422). Nothing of a refused request is kept or logged beyond its status.
"""
from __future__ import annotations

import logging
import time
from functools import lru_cache
from importlib import metadata

from flask import Blueprint, Response, current_app, g, jsonify, request
from marshmallow import ValidationError
from redis.exceptions import RedisError
from werkzeug.exceptions import ClientDisconnected

from connector.adapters.base import InboundError
from connector.contract.events import check_windows
from connector.contract.openapi import build_spec
from connector.engine import logs, metrics
from connector.engine.runtime import UnknownTarget
from connector.engine.rq_compat import delivery_job_id, enqueue_delivery
from connector.engine.stats import count_ignored

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)


@bp.after_request
def count(response):
    """Every answer of the door, counted by tenant, adapter, event type and status (``engine.metrics``). The labels
    are the configuration's names only once the door knew them: a 404's path is whatever the caller sent."""
    target = getattr(g, "delivery_target", None)
    tenant, adapter = target if target is not None else (metrics.NONE, metrics.NONE)
    metrics.count_delivery(tenant, adapter, getattr(g, "delivery_type", metrics.NONE), response.status_code)
    return response


def delivery_type(inbound) -> str:
    """The contract's event type of a delivery (``mixed`` when it carries several), ``ignored`` for a type the
    adapter does not read (the platform's own name is counted in ``store.stats``, not in a label)."""
    if inbound.ignored_type is not None:
        return "ignored"
    types = {event.get("type", metrics.NONE) for event in inbound.events}
    return types.pop() if len(types) == 1 else ("mixed" if types else metrics.NONE)


def error(status: int, code: str, message: str, fields=None):
    body = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return jsonify(body), status


BODY_SECONDS = 10.0  # a body not all here this long after its headers is refused (a platform sends it at once)
READ_STEP = 64 * 1024


class IncompleteBody(Exception):
    """The sender stopped (closed, or stalled past ``BODY_SECONDS``) before the body it declared was complete."""


def read_body(limit: int, seconds: float = BODY_SECONDS) -> bytes | None:
    """The raw body, or ``None`` when it is over ``limit`` (declared or actual: a chunked body has no length).

    A body shorter than its ``Content-Length`` raises :class:`IncompleteBody` once the sender closes or has sent
    nothing more for the rest of ``seconds``: the wait is bounded on the server's socket (gunicorn hands it over as
    ``gunicorn.socket``), read in steps so that a sender dripping a byte now and then cannot stretch it either.
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    sock = request.environ.get("gunicorn.socket")
    deadline = time.monotonic() + seconds
    prior = sock.gettimeout() if sock is not None else None
    parts: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            if sock is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise IncompleteBody()
                sock.settimeout(remaining)
            part = request.stream.read(min(READ_STEP, limit + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except (ClientDisconnected, OSError) as exc:  # werkzeug's short read; a socket timeout under gunicorn
        raise IncompleteBody() from exc
    finally:
        if sock is not None:
            try:
                sock.settimeout(prior)
            except OSError:  # the sender is gone; gunicorn closes the socket
                pass
    return None if size > limit else b"".join(parts)


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    """Built once per process: the schemas do not change while it runs."""
    try:
        version = metadata.version("skoleflyt-connector")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        version = "0.0.0"
    return build_spec(version)


@bp.get("/openapi.json")
def openapi():
    """This door's contract as OpenAPI 3.1 (``connector/contract/openapi.py``; the guide is ``docs/contract.md``)."""
    return jsonify(openapi_document())


@bp.post("/webhooks/<tenant>/<adapter>")
def receive(tenant: str, adapter: str):
    rt = current_app.extensions["connector"]
    try:
        platform = rt.adapter(tenant, adapter)
    except UnknownTarget:
        return error(404, "not_found", "No such tenant or adapter.")
    g.delivery_target = (tenant, adapter)
    handshake = platform.validation_response(request.args)
    if handshake is not None:
        return Response(handshake, 200, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"})
    try:
        body = read_body(platform.max_body_bytes)
    except IncompleteBody:
        log.info("refused delivery tenant=%s adapter=%s status=400 code=incomplete_body", tenant, adapter)
        return error(400, "incomplete_body", "The body ended before its Content-Length, or came too slowly.")
    if body is None:
        return error(413, "too_large", f"The body is larger than {platform.max_body_bytes} bytes.")
    try:
        inbound = platform.receive(body, request.headers)
    except InboundError as exc:
        log.info("refused delivery tenant=%s adapter=%s status=%s code=%s", tenant, adapter, exc.status, exc.code)
        return error(exc.status, exc.code, exc.message, exc.fields)
    except RecursionError:  # a body nested deeper than any parser here goes: the sender's fault, whatever adapter
        log.info("refused delivery tenant=%s adapter=%s status=400 code=too_deep", tenant, adapter)
        return error(400, "malformed_json", "The body is nested too deeply to be read.")
    g.delivery_type = delivery_type(inbound)
    with logs.for_delivery(delivery_job_id(rt, tenant, adapter, inbound.delivery_id)):
        return accept(rt, tenant, adapter, inbound)


def accept(rt, tenant: str, adapter: str, inbound):
    """A verified delivery: dates checked against the school's window, then queued (or counted, if ignored)."""
    try:  # here, for every adapter: the window needs today and the school's calendar, which schemas do not have
        check_windows(inbound.events, rt.clock.now(), rt.tenant(tenant).calendar)
    except ValidationError as exc:
        log.info("refused delivery tenant=%s adapter=%s status=422 code=invalid_event", tenant, adapter)
        return error(422, "invalid_event", f"Invalid field(s): {', '.join(sorted(exc.messages))}.", exc.messages)
    try:  # every Redis call of the door is in here: Redis down is "retry" (503), never a 500
        if inbound.ignored_type is not None:
            count_ignored(rt, inbound.ignored_type)  # as the platform named it (see ``store.stats``)
        else:
            queued = enqueue_delivery(rt, tenant, adapter, inbound.delivery_id, inbound.events)
    except RedisError:
        log.exception("could not store delivery tenant=%s adapter=%s", tenant, adapter)
        return error(503, "unavailable", "The event could not be stored; please retry.")
    if inbound.ignored_type is not None:
        log.info("ignored event type %r tenant=%s adapter=%s", inbound.ignored_type, tenant, adapter)
        return jsonify({"accepted": 0, "ignored": inbound.ignored_type}), 202
    if not queued:
        log.info("duplicate delivery tenant=%s adapter=%s", tenant, adapter)
        return jsonify({"accepted": 0, "duplicate": True}), 202
    log.info("queued delivery tenant=%s adapter=%s events=%d", tenant, adapter, len(inbound.events))
    return jsonify({"accepted": len(inbound.events)}), 202
