"""Feature extractors ganbench trains or provides for its metrics (registered with torch-fidelity)."""
