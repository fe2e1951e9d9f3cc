"""The one exception type users see.

Anything raised as ``MiniGPTError`` is a problem with the user's input or environment: the CLI
prints its message on one line and exits non-zero, without a traceback. Anything else is a bug.
"""


class MiniGPTError(Exception):
    """A user-facing error whose message says what is wrong and how to fix it."""
