"""Route 53's data model and its change semantics, free of any I/O."""
