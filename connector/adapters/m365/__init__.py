"""Microsoft 365: Teams messages in (Graph change notifications), Teams activity-feed alerts and Planner tasks out."""
from connector.adapters.m365.adapter import M365Adapter

ADAPTER = M365Adapter
