"""User-facing errors: one clear line, exit status 2, no traceback."""

from __future__ import annotations


class NaslError(Exception):
    """Bad input from a person (file, key, value, what is expected).

    The CLI prints ``str(error)`` on one line and exits with status 2.
    """

    exit_code = 2
