"""``POST /webhooks/<tenant>/<adapter>``: the one door events come in by.

The order of checks is the contract's: who (404), how big (413), then the adapter verifies the raw bytes before
anything is parsed (415, 401, 400, 422), then the dates of every adapter's events are held against the school's
window (422). Nothing of a refused request is kept or logged beyond its status. What is queued has no free text:
a message's body, a notice's reason and a task's note are read here and replaced by the codes, dates and flags the
rules need (``engine.reading``), so they never reach Redis or its files on disk.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
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
from connector.engine.reading import read_events
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


class IncompleteBody(Exception):
    """The sender stopped (closed, or stalled past ``BODY_SECONDS``) before the body it declared was complete."""


@contextmanager
def body_deadline(seconds: float):
    """The wait for a body, bounded. Under gunicorn's gevent workers (``connector web``) a gevent ``Timeout`` bounds
    the whole read, so a sender dripping a byte now and then is cut off as surely as one that stalls; under any
    gunicorn worker the socket's timeout (``gunicorn.socket``) bounds each wait for more bytes. The Flask test
    client has its body at hand and needs neither."""
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        yield
        return
    prior = sock.gettimeout()
    sock.settimeout(seconds)
    timer = None
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        from gevent import Timeout

        timer = Timeout(seconds, IncompleteBody)
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.close()
        try:
            sock.settimeout(prior)
        except OSError:  # the sender is gone; gunicorn closes the socket
            pass


def read_body(limit: int, seconds: float = BODY_SECONDS) -> bytes | None:
    """The raw body, or ``None`` when it is over ``limit`` (declared or actual: a chunked body has no length).

    A body shorter than its ``Content-Length`` raises :class:`IncompleteBody`, when the sender closes early or has
    not sent it all within ``seconds`` (:func:`body_deadline`).
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    try:
        with body_deadline(seconds):
            body = request.stream.read(limit + 1)
    except (ClientDisconnected, OSError) as exc:  # werkzeug's short read; a socket timeout under gunicorn
        raise IncompleteBody() from exc
    if len(body) > limit:
        return None
    if request.content_length is not None and len(body) < request.content_length:
        raise IncompleteBody()  # the sender closed early: what came may even parse, but it is not what was declared
    return body


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
    events = read_events(rt.tenant(tenant), inbound.events)  # free text read here, never queued
    try:  # every Redis call of the door is in here: Redis down is "retry" (503), never a 500
        if inbound.ignored_type is not None:
            count_ignored(rt, inbound.ignored_type)  # as the platform named it (see ``store.stats``)
        else:
            queued = enqueue_delivery(rt, tenant, adapter, inbound.delivery_id, events)
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
