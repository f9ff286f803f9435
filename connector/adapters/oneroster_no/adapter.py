"""The OneRoster 1.2 Norwegian Profile adapter: absences are *polled* (``connector poll``), never posted.

The Absence Service is read-only, so this adapter writes nothing: the tenant's ``actions_adapter`` (Microsoft 365,
or the generic contract) writes the tasks, alerts and notes. What it offers the poller: the client for the
service (``api``), one record's marks (``absences``) and the roster's pages (``roster``).
"""
from __future__ import annotations

from typing import Any, Mapping

import requests

from connector.adapters.base import Adapter, Inbound, InboundError, SendResult
from connector.adapters.oneroster_no import absences
from connector.adapters.oneroster_no.api import OneRosterClient
from connector.adapters.oneroster_no.settings import OneRosterSettings
from connector.contract.actions import Action


class OneRosterAdapter(Adapter):
    type_name = "oneroster_no"
    config_schema = OneRosterSettings
    writes = False
    polled = True

    def __init__(self, tenant_id: str, name: str, settings: Mapping[str, Any], http: requests.Session | None = None):
        super().__init__(tenant_id, name, settings, http)
        self.client = OneRosterClient(settings, self.http)
        types = dict(absences.DEFAULT_TYPES)
        for code, reading in settings["absence_types"].items():
            types[code.strip().lower()] = (reading["status"], reading.get("documented"))
        self.types = types

    def receive(self, body: bytes, headers: Mapping[str, str]) -> Inbound:
        raise InboundError(404, "not_found", "This adapter is polled (connector poll); it takes no webhooks.")

    def marks(self, record: Mapping[str, Any], previous: absences.Seen | None) -> absences.Mapped:
        return absences.to_marks(record, previous, self.types)

    def send(self, action: Action) -> SendResult:
        return SendResult("dead", reason="the OneRoster Absence Service is read-only: set the tenant's actions_adapter")
