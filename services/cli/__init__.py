"""services/cli package."""
