"""The contract's shared words (``shared/CONTRACT.md``): the roles people hold, the categories of a guardian's
message, and the school's time zone. The door, the adapters, the rules and the configuration all speak them, so
they live here, below all of those, and import nothing of the connector's."""
from __future__ import annotations

from zoneinfo import ZoneInfo

# "Dates are the school's local dates (Europe/Oslo)."
OSLO = ZoneInfo("Europe/Oslo")

# The roles a directory may name (DOMAIN.md); guardians and pupils come with each event, not from configuration.
DIRECTORY_ROLES = (
    "contact_teacher",
    "subject_teacher",
    "social_teacher",
    "school_environment_team",
    "resource_person",
    "nearest_leader",
    "principal",
    "school_owner",
    "class_parent_rep",
    "parents_council",
)

# A message's ``category``, when the platform knows it; ``other`` means nothing to do.
CATEGORIES = (
    "absence_notice",
    "school_refusal",
    "own_child_case",
    "several_children_case",
    "school_environment",
    "staff_involved",
    "other",
)
