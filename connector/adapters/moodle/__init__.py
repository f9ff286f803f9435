"""Moodle: ``local_webhooks`` events in; mod_attendance, messages and notes through the REST web services."""
from connector.adapters.moodle.adapter import MoodleAdapter

ADAPTER = MoodleAdapter
