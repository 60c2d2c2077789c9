"""SIGTERM handled like Ctrl-C: ``kill PID`` (a scheduler, ``timeout``, a container stop) lets
a search tell its running trial FAIL, write its outputs and print how to resume.

In: nothing. Out: :func:`sigterm_as_interrupt`, a context manager, and :func:`check`, called
at safe points (every training step, every trial) to raise an interrupt that was deferred.

Python runs a signal handler between any two bytecodes of the main thread, also inside a
finalizer (``weakref.finalize``, ``__del__``), where an exception is printed as "Exception
ignored" and then dropped: the stop would be lost and a traceback shown. So the handler marks
the stop as pending first and raises only outside finalizers; :func:`check` raises a stop
that is still pending at the next safe point.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import weakref
from collections.abc import Iterator
from types import FrameType

_pending: list[int] = []  # the signal numbers received and not yet raised
_FINALIZER_FILES = (weakref.__file__,)


def _in_finalizer(frame: FrameType | None) -> bool:
    """True when ``frame`` or a caller runs a finalizer, where a raise would be dropped."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code.co_filename in _FINALIZER_FILES:
            return True
        frame = frame.f_back
    return False


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    _pending.append(signum)
    if not _in_finalizer(frame):
        check()


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGTERM arrived and was not raised yet; else nothing."""
    if _pending:
        signum = _pending.pop()
        _pending.clear()
        raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises ``KeyboardInterrupt`` (main thread only; elsewhere a
    no-op); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending.clear()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _pending.clear()
