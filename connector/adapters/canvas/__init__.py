"""Canvas LMS: signed Live Events in (Conversations, enrollments), Planner notes and Conversations out."""
from connector.adapters.canvas.adapter import CanvasAdapter

ADAPTER = CanvasAdapter
