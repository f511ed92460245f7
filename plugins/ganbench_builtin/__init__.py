"""ganbench's built-in plugins.

They are ordinary plugins: each module is named in the ``ganbench``
entry-point group of ganbench's own ``pyproject.toml``, exactly as a
third-party package would declare its own. The core never imports them.
"""
