"""A fake OneRoster 1.2 (Norwegian Profile) service on loopback, for the poller's tests and the bench: a small Flask
app in a thread, serving what OnEdHub serves as its public docs describe it (docs.onedhub.io): an OAuth 2.0
client-credentials token endpoint, ``/<org>/ims/oneroster/absences/v1p0/absences/detail`` and the rostering
collections, each with ``limit``/``offset``/``sort``/``orderBy`` and a ``filter`` on ``dateLastModified``
(OneRoster 1.2's ``>``/``>=``), sorted, paged, with ``X-Total-Count``.

A test changes the data as a school's staff would (``put``: new or edited, ``delete``: ``status: tobedeleted``,
each stamped with the server's ``dateLastModified``), and injects what real services do: a token that expires
(``expire_tokens``), ``429`` with ``Retry-After`` and ``5xx`` spells (``fail_next``), or a change made between two
pages (``between_pages``). ``requests`` records every call (path, query, status).
"""
from __future__ import annotations

import copy
import itertools
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

CLIENT_ID = "skoleflyt-test-client"
CLIENT_SECRET = "fake-oneroster-secret-not-in-logs"
ABSENCES = "/ims/oneroster/absences/v1p0/absences/detail"
ROSTERING = "/ims/oneroster/rostering/v1p2/"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class FakeOneRoster:
    def __init__(self, now: datetime | None = None, token_lifetime: int = 300):
        self.now = now or datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
        self.token_lifetime = token_lifetime
        self.absences: dict[str, dict[str, dict]] = {}  # org -> id -> record
        self.roster: dict[str, dict[str, list[dict]]] = {}  # org -> collection -> records
        self.tokens: set[str] = set()
        self.faults: list[tuple[int, dict[str, str]]] = []
        self.between_pages: Callable[[int], None] | None = None  # called with the offset/limit call count
        self.requests: list[tuple[str, dict, int]] = []
        self.token_requests = 0
        self._counter = itertools.count(1)
        self._lock = threading.RLock()
        self.app = self._build()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    # --- the school's side --------------------------------------------------------------------------------------

    def tick(self, **delta) -> datetime:
        self.now += timedelta(**delta) if delta else timedelta(milliseconds=7)
        return self.now

    def put(self, org: str, record: dict[str, Any]) -> dict[str, Any]:
        """A new or edited absence, stamped now (each change a few ms after the one before)."""
        with self._lock:
            record = copy.deepcopy(record)
            record.setdefault("status", "active")
            record["dateLastModified"] = iso(self.tick())
            self.absences.setdefault(org, {})[record["sourcedId"]] = record
            return record

    def delete(self, org: str, sourced_id: str) -> dict[str, Any]:
        with self._lock:
            record = copy.deepcopy(self.absences[org][sourced_id])
            record["status"] = "tobedeleted"
            record["dateLastModified"] = iso(self.tick())
            self.absences[org][sourced_id] = record
            return record

    def set_roster(self, org: str, collection: str, records: list[dict]) -> None:
        self.roster.setdefault(org, {})[collection] = copy.deepcopy(records)

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def fail_next(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.faults.extend([(status, headers)] * times)

    def absence_calls(self) -> list[tuple[str, dict, int]]:
        return [call for call in self.requests if call[0].endswith(ABSENCES)]

    # --- the service --------------------------------------------------------------------------------------------

    def _build(self) -> Flask:
        app = Flask("fake-oneroster")

        @app.post("/token")
        def token():
            self.token_requests += 1
            form = request.form
            if (form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID
                    or form.get("client_secret") != CLIENT_SECRET):
                return jsonify({"error": "invalid_client", "error_description": "Invalid client credentials"}), 401
            value = f"tok-{next(self._counter)}"
            self.tokens.add(value)
            return jsonify({"access_token": value, "expires_in": self.token_lifetime, "token_type": "Bearer",
                            "scope": form.get("scope", "")})

        @app.get("/<org>" + ABSENCES)
        def absences(org):
            return self._collection(org, "absences", list(self.absences.get(org, {}).values()))

        @app.get("/<org>" + ROSTERING + "<collection>")
        def rostering(org, collection):
            return self._collection(org, collection, self.roster.get(org, {}).get(collection, []))

        return app

    def _collection(self, org: str, key: str, records: list[dict]):
        args = request.args.to_dict()
        with self._lock:
            status = self._gate()
            if status is not None:
                self.requests.append((request.path, args, status[0]))
                return jsonify({"imsx_codeMajor": "failure", "imsx_severity": "error"}), status[0], status[1]
            chosen = _filtered(list(records), args.get("filter"))
            if args.get("sort") == "dateLastModified":
                chosen.sort(key=lambda r: (r["dateLastModified"], r["sourcedId"]),
                            reverse=args.get("orderBy") == "desc")
            offset, limit = int(args.get("offset", 0)), int(args.get("limit", 100))
            page = [copy.deepcopy(r) for r in chosen[offset:offset + limit]]
        self.requests.append((request.path, args, 200))
        response = jsonify({key: page})
        response.headers["X-Total-Count"] = str(len(chosen))
        if self.between_pages is not None and key == "absences":
            self.between_pages(len(self.absence_calls()))
        return response

    def _gate(self):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self.tokens:
            return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if self.faults:
            return self.faults.pop(0)
        return None

    def __enter__(self) -> "FakeOneRoster":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(5)


def _filtered(records: list[dict], expression: str | None) -> list[dict]:
    if not expression:
        return records
    for op in (">=", ">"):
        field_, sep, value = expression.partition(op)
        if sep:
            bound = _parse(value.strip().strip("'"))
            if field_.strip() != "dateLastModified":
                raise ValueError(f"the fake filters on dateLastModified only, not {field_!r}")
            keep = (lambda m: m >= bound) if op == ">=" else (lambda m: m > bound)
            return [r for r in records if keep(_parse(r["dateLastModified"]))]
    raise ValueError(f"unsupported filter {expression!r}")


def settings(server: FakeOneRoster, **overrides) -> dict:
    """The adapter's settings as an admin writes them, pointed at the fake."""
    raw = {
        "base_url": server.url,
        "orgs": ["bergen.kommune.no"],
        "token_url": server.url + "/token",
        "client_id": CLIENT_ID,
        "client_secret": {"env": "ONEROSTER_TEST_SECRET"},
        "scopes": ["roster-core.readonly"],
        "timeout_seconds": 5,
    }
    raw.update(overrides)
    return raw


class Sleeps(list):
    """A ``sleep`` for the poller and the replay source that only notes how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
