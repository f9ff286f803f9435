"""``connector check-adapter`` for Microsoft 365: the app registration's token, permissions and approvals, read
before the first event.

Read-only calls: a token (client credentials), ``GET /subscriptions`` (the app's own subscriptions), one message of
each configured team channel or chat (``ChannelMessage.Read.All`` / ``Chat.Read.All`` with admin consent, and
Microsoft's protected-API approval, which nothing else shows before the first message is lost), and the Planner
plan (``Tasks.ReadWrite.All``). Sending an activity notification cannot be tried without notifying someone."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from connector.adapters.base import Finding
from connector.adapters.m365.graph import Graph, GraphUnavailable, error_code
from connector.adapters.m365.subscriptions import CHANNEL, CHAT

TOKEN_HINT = ("check tenant_id, client_id and client_secret (a client secret expires: see Certificates & secrets "
              "in the app registration)")


def _protected(response) -> bool:
    return response.status_code == 403 and "protected api" in response.text.lower()


def check(graph: Graph, settings: Mapping[str, Any]) -> list[Finding]:
    return list(_check(graph, settings))


def _check(graph: Graph, settings: Mapping[str, Any]) -> Iterator[Finding]:
    try:
        graph.token()
    except GraphUnavailable as exc:
        yield Finding(False, "token", f"no token from Microsoft Entra ({exc.result.reason}): {TOKEN_HINT}")
        return
    yield Finding(True, "token", "the app registration gets a token for Microsoft Graph")
    try:
        yield from _reads(graph, settings)
    except GraphUnavailable as exc:
        yield Finding(False, "Microsoft Graph", f"no answer ({exc.result.reason}); try again")


def _reads(graph: Graph, settings: Mapping[str, Any]) -> Iterator[Finding]:
    listed = graph.call("GET", "/subscriptions")
    if listed.status_code == 200:
        count = len(listed.json().get("value", []))
        yield Finding(True, "GET /subscriptions", f"the app has {count} subscription(s)")
    else:
        yield Finding(False, "GET /subscriptions", f"HTTP {listed.status_code} {error_code(listed)}".rstrip())

    resources = settings["subscriptions"]
    if not resources:
        yield Finding(True, "messages", "no team channel or chat under subscriptions: this adapter reads no messages")
    for resource in resources:
        channel, chat = CHANNEL.fullmatch(resource), CHAT.fullmatch(resource)
        if not (channel or chat):
            yield Finding(True, resource, "tenant-wide: not readable without Microsoft's metered APIs; not checked")
            continue
        permission = "ChannelMessage.Read.All" if channel else "Chat.Read.All"
        response = graph.call("GET", resource, params={"$top": "1"})
        if response.status_code == 200:
            yield Finding(True, resource, f"{permission} works, and Microsoft has approved the protected API")
        elif _protected(response):
            yield Finding(False, resource, "Microsoft has not approved this app for the protected Teams APIs: "
                          "request it (learn.microsoft.com/graph/teams-protected-apis); until then every message "
                          "is refused and dropped")
        elif response.status_code == 403:
            yield Finding(False, resource, f"refused ({error_code(response) or 'Forbidden'}): grant the application "
                          f"permission {permission} and its admin consent")
        elif response.status_code == 404:
            yield Finding(False, resource, "no such team, channel or chat (check the ids)")
        else:
            yield Finding(False, resource, f"HTTP {response.status_code} {error_code(response)}".rstrip())

    plan = settings["planner_plan_id"]
    if not plan:
        yield Finding(False, "planner_plan_id", "not set: every task would be a dead letter")
        return
    response = graph.call("GET", f"/planner/plans/{plan}")
    if response.status_code == 200:
        yield Finding(True, "Planner plan", f"plan {plan} can be read (Tasks.ReadWrite.All)")
    elif response.status_code == 403:
        yield Finding(False, "Planner plan", f"refused ({error_code(response) or 'Forbidden'}): grant the application "
                      "permission Tasks.ReadWrite.All and its admin consent")
    elif response.status_code == 404:
        yield Finding(False, "Planner plan", f"no plan {plan} (check planner_plan_id)")
    else:
        yield Finding(False, "Planner plan", f"HTTP {response.status_code} {error_code(response)}".rstrip())
    yield Finding(True, "TeamsActivity.Send", "not checkable without notifying someone: the first alert shows it")
