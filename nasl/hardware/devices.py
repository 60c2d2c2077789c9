"""Devices and the per-device latency lock: which device ``auto`` means, the CPU's name, and
a lock across processes so that latency is timed alone (training holds it shared, timing
exclusive).

In: a device string (``auto``, ``cpu``, ``cuda[:i]``, ``mps``). Out: the resolved name
(:func:`cpu_name` for the CPU), and
context managers holding the device's lock file under :func:`lock_dir` (:func:`device_lock`;
:func:`training_lock` is what a training on a device holds, shared, per epoch).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import re
import tempfile
import threading
import time
from collections.abc import Iterator

import torch

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: locking is a no-op
    fcntl = None  # type: ignore[assignment]


@functools.cache
def cpu_name() -> str:
    """CPU model from /proc/cpuinfo ("model name"), else ``platform.processor()``."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def resolve_device(device: str | torch.device = "auto") -> str:
    """'auto' → 'cuda:0' if a GPU is visible else 'cpu'; 'cuda' → 'cuda:0'; checks 'cuda:N',
    'cpu' and 'mps'. Raises ``ValueError`` saying why (no GPU, bad index, unknown name)."""
    d = str(device).strip().lower()
    match = re.fullmatch(r"cuda(?::(\d+))?", d)
    if d == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if d == "cpu" or (d == "mps" and torch.backends.mps.is_available()):
        return d
    if d == "mps":
        raise ValueError("device 'mps' requested but MPS is not available on this machine")
    if not match:
        raise ValueError(f"unknown device {device!r}; expected auto, cpu, cuda, cuda:N or mps")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no CUDA GPU is available "
                         "(use 'cpu' or 'auto')")
    index, count = int(match.group(1) or 0), torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"device {device!r}: only {count} CUDA device(s) visible")
    return f"cuda:{index}"


def lock_dir() -> str:
    """Directory of the lock files: ``$NASL_LOCK_DIR`` or ``<tmp>/nasl-locks``."""
    return os.environ.get("NASL_LOCK_DIR") or os.path.join(tempfile.gettempdir(), "nasl-locks")


_held = threading.local()  # per thread: lock name -> depth, for re-entry


@contextlib.contextmanager
def device_lock(device: str, *, shared: bool = False,
                timeout: float | None = None) -> Iterator[None]:
    """Hold the machine-wide lock of ``device``: ``fcntl.flock`` on ``<lock_dir>/<dev>.lock``.

    Exclusive (the default) for timing: no two nasl processes or threads time one device
    at once. ``shared=True`` lets any number of holders in together (e.g. trainers) but
    keeps exclusive ones out. Re-entrant within a thread. ``timeout``: seconds to wait
    (None: forever), then ``TimeoutError``. A no-op where ``fcntl`` does not exist.
    """
    name = str(device).strip().lower()
    name = re.sub(r"[^a-z0-9]+", "_", resolve_device(name) if name in ("auto", "cuda") else name)
    depth: dict[str, int] = _held.__dict__.setdefault("depth", {})
    if depth.get(name) or fcntl is None:
        depth[name] = depth.get(name, 0) + 1
        try:
            yield
        finally:
            depth[name] -= 1
        return
    os.makedirs(lock_dir(), exist_ok=True)
    fd = os.open(os.path.join(lock_dir(), f"{name}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
    # Writer preference: an exclusive waiter first takes "<dev>.pending", which new shared
    # holders pass through, so trainers that re-take the lock per epoch let timing in.
    pfd = os.open(os.path.join(lock_dir(), f"{name}.pending"), os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + (math.inf if timeout is None else timeout)

    def take(f: int, op: int) -> None:
        while True:
            try:
                fcntl.flock(f, op if timeout is None else op | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"device lock {name!r} busy for {timeout} s") from None
                time.sleep(0.01)

    try:
        take(pfd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            take(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        finally:
            if shared:
                fcntl.flock(pfd, fcntl.LOCK_UN)
        depth[name] = 1
        try:
            yield
        finally:
            depth[name] = 0
            fcntl.flock(fd, fcntl.LOCK_UN)
            fcntl.flock(pfd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
        os.close(pfd)


@contextlib.contextmanager
def training_lock(device: str) -> Iterator[None]:
    """Hold what a training on ``device`` holds per epoch: the lock of ``device`` shared and,
    for an accelerator, the CPU's too (its host thread feeds it). A latency measurement on
    either (exclusive) waits for the epoch to end; trainings share."""
    with contextlib.ExitStack() as stack:
        for name in dict.fromkeys(("cpu", str(device))):
            stack.enter_context(device_lock(name, shared=True))
        yield
