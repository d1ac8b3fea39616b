"""One exception type for every user-facing failure.

The CLI prints ``str(err)`` as a single line and exits 2; the Python API lets it
propagate. Anything else escaping is a bug.
"""


class VecgenError(Exception):
    """A clear, one-line, user-facing error (bad input, missing weights, ...)."""
