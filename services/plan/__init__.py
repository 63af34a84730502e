"""The plan: its format (model.py, schema.json) and its versioned store in S3 (store.py)."""
