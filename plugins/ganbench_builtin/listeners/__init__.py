"""Built-in run listeners."""
