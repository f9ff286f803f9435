"""The reference adapter: speaks ``shared/CONTRACT.md`` in both directions."""
from connector.adapters.generic.adapter import GenericAdapter

ADAPTER = GenericAdapter
