"""Graph change-notification subscriptions the connector creates and keeps alive, one per configured resource.

A Teams message subscription lasts an hour (longer only where Graph allows it with a ``lifecycleNotificationUrl``),
so the engine calls :func:`keep` again before a third of its life is left. ``keep`` works on records the engine
stores (resource -> ``{"id", "expires", "since"}``; ``since`` is when notifications were last known to flow) and on
Graph's lifecycle signals (subscription id -> ``reauthorizationRequired``, ``subscriptionRemoved`` or ``missed``):

- no subscription, an expired one, or ``subscriptionRemoved``: create it (``POST /subscriptions``), then fetch what
  was posted since the last known good moment;
- a third of its life left, or ``reauthorizationRequired``: renew it (``PATCH /subscriptions/{id}`` with a new
  ``expirationDateTime``, which the lifecycle page says reauthorizes *and* renews); gone (404): create it anew;
- ``missed``: fetch what was posted since the last known good moment;
- a resource no longer configured: delete its subscription.

What was missed is read where Graph allows it: a channel's messages with ``messages/delta`` filtered on
``lastModifiedDateTime gt`` (root posts; replies are not listed there), a chat's with ``GET /chats/{id}/messages``
filtered on ``lastModifiedDateTime``. The tenant-wide ``getAllMessages`` resources cannot be read back without
Graph's metered APIs: what they missed stays missed, and a problem code says so.
"""
from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from connector.adapters.base import PlatformRefused, Upkeep
from connector.adapters.m365.graph import Graph, GraphUnavailable, error_code

log = logging.getLogger(__name__)

PROTECTED_API = "protected_api_not_approved"
PROTECTED_API_HINT = ("Reading Teams messages with application permissions needs Microsoft's approval "
                      "(learn.microsoft.com/graph/teams-protected-apis): request it for the app registration "
                      "(see the m365 README).")
RETRY_SECONDS = 120  # after a failed create or renewal: soon, not in a tight loop
SINCE_MARGIN_SECONDS = 300  # messages just before the last known good moment are read again; duplicates are harmless
MAX_PAGES = 50
CHANNEL = re.compile(r"/teams/(?P<team>[^/]+)/channels/(?P<channel>[^/]+)/messages")
CHAT = re.compile(r"/chats/(?P<chat>[^/]+)/messages")


def graph_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def epoch_of(value: str) -> float:
    """Graph's DateTimeOffset (``2016-11-20T18:23:45.9356913Z``, seven decimals) as epoch seconds."""
    text = value.strip().replace("Z", "+00:00")
    main, _, rest = text.partition(".")
    if rest:
        digits = re.match(r"\d+", rest).group(0)
        text = f"{main}.{digits[:6]}{rest[len(digits):]}"
    return datetime.fromisoformat(text).timestamp()


def body(resource: str, settings: Mapping[str, Any], expires: float) -> dict[str, Any]:
    """``POST /subscriptions``: new messages only, no resource data (the worker reads each message), both URLs ours,
    and the first ``client_states`` entry as the secret Graph sends back with every notification."""
    return {
        "changeType": "created",
        "resource": resource,
        "notificationUrl": settings["notification_url"],
        "lifecycleNotificationUrl": settings["notification_url"],
        "expirationDateTime": graph_time(expires),
        "clientState": settings["client_states"][0].reveal(),
        "includeResourceData": False,
    }


class Refused(Exception):
    """Graph refused a subscription call; ``code`` is short and has no message text."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _answer(response, what: str) -> dict[str, Any]:
    if response.status_code in (200, 201):
        return response.json()
    code = error_code(response)
    if response.status_code == 403 and "protected api" in response.text.lower():
        code = PROTECTED_API
    raise Refused(f"{what}: HTTP {response.status_code}" + (f" ({code})" if code else ""))


def fingerprint(settings: Mapping[str, Any]) -> str:
    """What a subscription was made with and cannot change by renewal: our URL and the ``clientState`` (as a short
    digest: the record in Redis never holds the secret). A change (a new address, a rotated state) replaces it."""
    made_with = f"{settings['notification_url']}\x1f{settings['client_states'][0].reveal()}"
    return hashlib.sha256(made_with.encode()).hexdigest()[:16]


def create(graph: Graph, resource: str, settings: Mapping[str, Any], now: float, adopt: bool = True) -> dict[str, Any]:
    """A subscription for ``resource``: one of ours Graph still has (made by a run that died before storing it, or
    before the store was lost) is adopted and renewed, so notifications do not come twice; else a new one."""
    for found in _ours(graph, resource, settings, now) if adopt else ():
        adopted = renew(graph, {"id": found["id"], "expires": epoch_of(found["expirationDateTime"]), "since": now},
                        settings, now)
        if adopted is not None:
            log.info("adopted Graph subscription %s for %s", found["id"], resource)
            return {**adopted, "config": fingerprint(settings)}
    expires = now + settings["subscription_minutes"] * 60
    made = _answer(graph.call("POST", "/subscriptions", json=body(resource, settings, expires)), "create")
    return {"id": made["id"], "expires": epoch_of(made.get("expirationDateTime") or graph_time(expires)),
            "since": now, "config": fingerprint(settings)}


def _ours(graph: Graph, resource: str, settings: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
    """This app's live subscriptions to ``resource`` at our door (``GET /subscriptions`` lists only the app's)."""
    listed = graph.call("GET", "/subscriptions")
    if listed.status_code != 200:
        return []
    return [
        item for item in listed.json().get("value", [])
        if isinstance(item, dict) and item.get("id") and isinstance(item.get("expirationDateTime"), str)
        and str(item.get("resource", "")).lstrip("/") == resource.lstrip("/")
        and item.get("notificationUrl") == settings["notification_url"]
        and epoch_of(item["expirationDateTime"]) > now + 60
    ]


def renew(graph: Graph, record: dict[str, Any], settings: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    """The renewed record, or ``None`` when Graph no longer has the subscription (404)."""
    expires = now + settings["subscription_minutes"] * 60
    response = graph.call("PATCH", f"/subscriptions/{record['id']}", json={"expirationDateTime": graph_time(expires)})
    if response.status_code == 404:
        return None
    answered = _answer(response, "renew")
    return {**record, "expires": epoch_of(answered.get("expirationDateTime") or graph_time(expires)), "since": now}


def delete(graph: Graph, subscription_id: str) -> None:
    response = graph.call("DELETE", f"/subscriptions/{subscription_id}")
    if response.status_code not in (204, 404):
        raise Refused(f"delete: HTTP {response.status_code}")


def _pages(graph: Graph, path: str, params: Mapping[str, str] | None) -> Iterator[list[dict[str, Any]]]:
    url, query = path, params
    for _ in range(MAX_PAGES):
        response = graph.call("GET", url, params=query)
        page = _answer(response, "read missed messages")
        yield [item for item in page.get("value", []) if isinstance(item, dict)]
        url, query = page.get("@odata.nextLink"), None
        if not url:
            return


def missed(graph: Graph, resource: str, since: float, now: float) -> list[str] | None:
    """The Graph paths of the messages posted in ``resource`` since ``since``; ``None`` when Graph gives no way
    to read them back for that resource."""
    start = graph_time(since - SINCE_MARGIN_SECONDS)
    channel, chat = CHANNEL.fullmatch(resource), CHAT.fullmatch(resource)
    if channel:
        pages = _pages(graph, f"{resource}/delta", {"$filter": f"lastModifiedDateTime gt {start}"})
        prefix = f"/teams/{channel['team']}/channels/{channel['channel']}/messages/"
    elif chat:
        pages = _pages(graph, resource, {
            "$filter": f"lastModifiedDateTime gt {start} and lastModifiedDateTime lt {graph_time(now)}",
            "$orderby": "lastModifiedDateTime desc", "$top": "50",
        })
        prefix = f"/chats/{chat['chat']}/messages/"
    else:
        return None
    paths = []
    for page in pages:
        for message in page:
            created = message.get("createdDateTime")
            if message.get("id") and isinstance(created, str) and epoch_of(created) >= since - SINCE_MARGIN_SECONDS:
                paths.append(prefix + str(message["id"]))
    return paths


def missed_events(paths: list[str], now: float) -> list[dict[str, Any]]:
    stamp = datetime.fromtimestamp(now, timezone.utc).isoformat()
    return [{"type": "message.created", "timestamp": stamp, "m365_message": path} for path in paths]


def keep(graph: Graph, settings: Mapping[str, Any], records: Mapping[str, dict[str, Any]],
         signals: Mapping[str, str], now: float) -> Upkeep:
    """One round of upkeep over every configured resource (see the module's docstring)."""
    lifetime = settings["subscription_minutes"] * 60
    kept: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    problems: list[str] = []
    failed = False
    for resource in settings["subscriptions"]:
        old = records.get(resource)
        try:
            kept[resource] = _keep_one(graph, settings, resource, old, signals, now, lifetime, events, problems)
        except (GraphUnavailable, Refused) as exc:
            problems.append(f"{resource}: {exc}")
            failed = True
            if old is not None:
                kept[resource] = {**old, "retry": True}
    for resource, record in records.items():
        if resource not in settings["subscriptions"]:
            try:
                delete(graph, record["id"])
            except (GraphUnavailable, Refused) as exc:
                problems.append(f"{resource}: {exc}")
                failed = True
                kept[resource] = record
    failed = failed or any(record.get("missed_since") is not None for record in kept.values())
    refused = None
    if any(PROTECTED_API in problem for problem in problems):
        refused = PlatformRefused(PROTECTED_API, PROTECTED_API_HINT)
    return Upkeep(records=kept, next_at=_next(kept, settings, lifetime, now, failed),
                  events=events, problems=problems, refused=refused)


def _keep_one(graph: Graph, settings: Mapping[str, Any], resource: str, old: dict[str, Any] | None,
              signals: Mapping[str, str], now: float, lifetime: float, events: list[dict[str, Any]],
              problems: list[str]) -> dict[str, Any]:
    """The resource's record after this round. A catch-up that could not be read is kept as ``missed_since`` on
    the (new or renewed) record and tried again next round, so a subscription Graph made is never forgotten."""
    signal = signals.get(old["id"]) if old else None
    lost_since = old.get("missed_since") if old else None
    record = None
    if old is not None and signal != "subscriptionRemoved" and old["expires"] > now \
            and old.get("config") != fingerprint(settings):
        record = create(graph, resource, settings, now, adopt=False)  # the new one first: nothing falls between
        try:
            delete(graph, old["id"])
        except (GraphUnavailable, Refused) as exc:
            problems.append(f"{resource}: the replaced subscription {old['id']} stays until it expires ({exc})")
        log.info("replaced Graph subscription %s for %s: notification_url or clientState changed", old["id"],
                 resource)
        return {**record, **({"missed_since": lost_since} if lost_since is not None else {})}
    if old is not None and signal != "subscriptionRemoved" and old["expires"] > now:
        record = {key: value for key, value in old.items() if key not in ("retry", "missed_since")}
        if signal == "reauthorizationRequired" or old["expires"] - now <= lifetime / 3:
            record = renew(graph, record, settings, now)
        if record is None or signal == "missed":
            lost_since = min(lost_since or old["since"], old["since"])
    elif old is not None:  # removed by Graph, or expired while the connector was away
        lost_since = min(lost_since or old["since"], old["since"])
    if record is None:
        record = create(graph, resource, settings, now)
    if lost_since is None:
        return record
    try:
        paths = missed(graph, resource, lost_since, now)
    except (GraphUnavailable, Refused) as exc:
        problems.append(f"{resource}: {exc}")
        return {**record, "missed_since": lost_since}
    if paths is None:
        problems.append(f"cannot_fetch_missed:{resource}")
    else:
        events.extend(missed_events(paths, now))
    return {**record, "since": now}


def _next(kept: Mapping[str, dict[str, Any]], settings: Mapping[str, Any], lifetime: float, now: float,
          failed: bool) -> float | None:
    if not settings["subscriptions"] and not kept:
        return None
    due = [record["expires"] - lifetime / 3 for record in kept.values() if not record.get("retry")]
    if failed or len(kept) < len(settings["subscriptions"]):
        due.append(now + RETRY_SECONDS)
    return max(min(due), now + 1.0) if due else now + RETRY_SECONDS
