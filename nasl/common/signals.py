"""SIGTERM handled like Ctrl-C: ``kill PID`` (a scheduler, ``timeout``, a container stop) lets
a search tell its running trial FAIL, write its outputs and print how to resume.

In: nothing. Out: :func:`sigterm_as_interrupt`, a context manager; :func:`check`, called at
safe points (every training step, every trial) to raise a stop that was lost; and
:func:`acknowledge`, called by the code that handled the stop.

Python runs a signal handler between any two bytecodes of the main thread, also inside a
finalizer (``weakref.finalize``, ``__del__``, any weakref callback, e.g. SQLAlchemy's),
where an exception is passed to ``sys.unraisablehook`` (printed as "Exception ignored" with
a traceback) and dropped: the stop would be lost. So a stop stays *pending* until the code
that handles it calls :func:`acknowledge`; :func:`check` raises it again at the next safe
point; and inside the block an unraisable ``KeyboardInterrupt`` of ours is not printed.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

_pending: list[int] = []  # the signal numbers received and not yet acknowledged


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    _pending.append(signum)
    check()  # inside a finalizer this is dropped (quietly, see below) and raised again later


def check() -> None:
    """Raise ``KeyboardInterrupt`` while a SIGTERM is pending (not yet acknowledged)."""
    if _pending:
        raise KeyboardInterrupt(f"signal {_pending[-1]}")


def acknowledge() -> None:
    """The stop was handled (the search caught its ``KeyboardInterrupt``): stop raising it."""
    _pending.clear()


def _quiet_unraisable(previous: Any) -> Any:
    def hook(u: Any) -> None:
        if _pending and isinstance(u.exc_value, KeyboardInterrupt) \
                and str(u.exc_value).startswith("signal "):
            return  # dropped by a finalizer; check() raises it again at the next safe point
        previous(u)
    return hook


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises ``KeyboardInterrupt`` (main thread only; elsewhere a
    no-op); the previous handler and unraisable hook are restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending.clear()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_unraisable(previous_hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
        _pending.clear()
