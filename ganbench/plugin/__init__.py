"""The plugin contract and its registry: what a plugin implements, the records it returns, the checks of both, and how ganbench finds, loads and attributes plugins."""
