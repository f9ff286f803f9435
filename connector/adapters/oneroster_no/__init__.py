from connector.adapters.oneroster_no.adapter import OneRosterAdapter

ADAPTER = OneRosterAdapter
