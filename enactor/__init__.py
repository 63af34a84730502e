"""enactor package."""
