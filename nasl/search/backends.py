"""The backend contract: what schedules a search's trials, and the three that do.

In: a set-up :class:`~nasl.search.session.Session`. Out: trials evaluated on its study through
its :class:`~nasl.search.lifecycle.TrialLog`. A backend only schedules: :func:`nasl.search.
run_search` owns the session, the deadline (``--timeout``), Ctrl-C, the timings and the finish
(confirmation, re-timing, outputs) for all of them.

* :class:`OptunaBackend` — trials one after another in this process;
* :class:`WorkersBackend` — the same loop here plus worker processes on the same study
  (``--trials-per-device`` / ``--devices``, :mod:`nasl.search.workers`);
* :class:`RayBackend` — Ray Tune workers or a Ray cluster (:mod:`nasl.search.ray_backend`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from nasl.common.errors import NaslError
from nasl.common.events import StageProgress
from nasl.common.signals import check as check_interrupt
from nasl.search.options import SearchOptions
from nasl.search.run import keep_going
from nasl.search.session import Session


class Backend(Protocol):
    """Schedules trials on a session until ``--trials`` went into training, the deadline
    passed, the sampler only repeats designs or the session says stop. Ctrl-C propagates as
    ``KeyboardInterrupt`` (the caller fails the running trials and finishes)."""

    name: str

    def prepare(self, space: Any, opts: SearchOptions) -> SearchOptions:
        """Check the backend's own options before anything is written → the options the session
        is built with (``NaslError`` in one line when they cannot work)."""
        ...

    def run(self, session: Session) -> None:
        """Evaluate trials on ``session`` (returns when the search should finish)."""
        ...

    def close(self) -> None:
        """Release what ``run`` started (worker processes); called after ``run`` in any case."""
        ...


class OptunaBackend:
    """Optuna's ask/tell loop in this process, one trial at a time."""

    name = "optuna"

    def prepare(self, space: Any, opts: SearchOptions) -> SearchOptions:
        return opts

    def run(self, session: Session) -> None:
        from nasl.search.run import one_trial

        while keep_going(session):
            check_interrupt()  # a SIGTERM deferred out of a finalizer stops here
            one_trial(session)

    def close(self) -> None:
        pass


class WorkersBackend(OptunaBackend):
    """The Optuna loop here (the first slot) plus a worker process per other training slot
    (``trials_per_device`` on each of ``devices``; ``"auto"``: K measured by
    :mod:`nasl.search.packing` before the first trial), all on the run's study."""

    name = "optuna-workers"

    def __init__(self) -> None:
        self.placed: list[str] = []
        self.procs: list[Any] = []
        self.auto = False

    def prepare(self, space: Any, opts: SearchOptions) -> SearchOptions:
        from nasl.search import workers

        default = opts.train_device or (space.proxy.device if space is not None else "auto")
        self.auto = opts.trials_per_device == "auto"
        self.placed = workers.slots(opts.devices, default, opts.trials_per_device)
        return dataclasses.replace(opts, train_device=self.placed[0])  # this process: slot 1

    def run(self, session: Session) -> None:
        from nasl.search import workers

        if self.auto:
            self._pack(session)
        session.log.shared = True
        self.procs = workers.start(session, self.placed[1:])
        session.workers = self.procs
        super().run(session)

    def _pack(self, session: Session) -> None:
        """Measure K on the first device and place K slots on each; on the CPU without
        ``--threads``, each slot then trains with the cores // K threads the probe used."""
        from nasl.search import packing

        devices = list(dict.fromkeys(self.placed))
        if session.trained() >= session.trials_target:  # a resumed run with nothing left to train
            return
        pack = packing.measure(session, devices[0])
        self.placed = [d for d in devices for _ in range(pack.k)]
        cpu_slots = self.placed.count("cpu")
        if cpu_slots > 1 and session.opts.threads is None:
            threads = max(1, packing.usable_cores() // cpu_slots)
            session.opts = dataclasses.replace(session.opts, threads=threads)
            session.settings = dataclasses.replace(session.settings, threads=threads)
            session.evaluator.settings = session.settings
        session.record_env({"trials_per_device_auto": pack.to_dict()})
        session.log.progress(StageProgress("packing", done=pack.k, total=pack.limit,
                                           reason=pack.line()))

    def close(self) -> None:
        from nasl.search import workers

        workers.wait(self.procs)  # the other slots' last trials


def make_backend(name: str, opts: SearchOptions, *, workers: int | None = None,
                 address: str | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0) -> Backend:
    """The backend for ``--backend name`` and its options (``NaslError`` in one line if bad)."""
    if name not in ("optuna", "ray"):
        raise NaslError(f"--backend {name!r}: expected optuna or ray")
    several = opts.trials_per_device != 1 or bool(opts.devices)
    if name == "ray":
        if several:
            raise NaslError("--trials-per-device and --devices are for --backend optuna; with "
                            "ray, --gpus-per-trial 0.25 packs four trials on a GPU")
        from nasl.search.ray_backend import RayBackend

        return RayBackend(workers=workers, address=address, cpus_per_trial=cpus_per_trial,
                          gpus_per_trial=gpus_per_trial)
    return WorkersBackend() if several else OptunaBackend()
