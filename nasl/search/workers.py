"""Several trials at once with the Optuna backend: worker processes that join the run's study.

In: a set-up :class:`~nasl.search.session.Session` and the training slots asked for
(``--trials-per-device K`` on each of ``--devices``). Out: K x devices - 1 worker processes,
each a ``Session`` in join mode on the same study (its own training device, no run lock, no
env.json, no confirmation) running the ask/train/tell loop until ``--trials`` went into
training; this process is the first slot and confirms and reports once they are done.

Nothing is lost or trained twice: every trial is asked from the one study, tagged with its
process (``owner``), and told there. A worker dies with the search process (Linux: parent
death signal), so ``kill -9`` of it leaves RUNNING trials of dead processes, which
``--resume`` fails and queues again as for one process. Up to K x devices - 1 trials more
than ``--trials`` may start (the slots check the count before they ask, not together).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
from typing import Any

from nasl.common.errors import NaslError


def slots(devices: str | None, train_device: str, k: int | str) -> list[str]:
    """The training slot of each process: every device of ``devices`` (``0,1`` = cuda:0,
    cuda:1, or names such as ``cpu``; None: ``train_device`` only) ``k`` times, device by
    device (``k="auto"``: once, the probe decides later). ``NaslError`` in one line for a bad
    count or a device this machine lacks."""
    from nasl.hardware.accel import resolve_train_device

    if k == "auto":
        k = 1
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 64:
        raise NaslError(f"--trials-per-device {k}: expected auto or an integer from 1 to 64")
    names = [train_device] if not devices else [
        f"cuda:{d}" if d.isdigit() else d for d in (p.strip() for p in devices.split(",")) if d]
    out = []
    for name in dict.fromkeys(names):
        try:
            dev = resolve_train_device(name)
        except ValueError as e:
            raise NaslError(f"--devices {devices or name}: {e}") from None
        out += [dev] * k
    if not out:
        raise NaslError(f"--devices {devices!r}: expected devices such as 0,1 or cpu")
    return out


def start(session: Any, devices: list[str]) -> list[Any]:
    """Start one worker process per device in ``devices`` on ``session``'s study."""
    ctx = multiprocessing.get_context("spawn")
    opts = dataclasses.replace(session.opts, resume=True, join=True, show_progress=False,
                               name=session.run.name, runs_dir=session.run.root.parent,
                               storage=session.storage, wandb=None, trials_per_device=1,
                               devices=None, trials=session.trials_target)
    procs = []
    for device in devices:
        p = ctx.Process(target=work, args=(session.space, dataclasses.replace(
            opts, train_device=device), os.getpid()), daemon=False)
        p.start()
        procs.append(p)
    return procs


def wait(procs: list[Any]) -> None:
    """Wait for the workers to end (they stop when ``--trials`` went into training)."""
    for p in procs:
        p.join()


def work(space: Any, opts: Any, parent: int) -> None:
    """A worker process: join the study and run trials until the count is reached."""
    _die_with(parent)
    from nasl.common.signals import sigterm_as_interrupt
    from nasl.search.run import INTERRUPTED, one_trial
    from nasl.search.session import Session

    session = Session(space, opts)
    log = session.log
    log.shared = True  # the search process and the other workers tell trials here too
    with sigterm_as_interrupt():
        try:
            while session.trained() < session.trials_target and not session.stop_reason:
                one_trial(session)
        except KeyboardInterrupt:
            log.fail_running(INTERRUPTED)


def _die_with(parent: int) -> None:
    """Be killed when the search process dies (Linux ``PR_SET_PDEATHSIG``), even by kill -9."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: a worker then finishes its trial alone
        pass
    if os.getppid() != parent:  # the parent died before the signal was set
        os._exit(1)
