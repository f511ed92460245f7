"""Executing an invocation: planning runs, executors, locks, signals, provenance and suite files."""
