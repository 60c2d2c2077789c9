"""Search: options, the trial lifecycle, the Optuna and Ray backends, early stopping.

Layout (one module per step): :mod:`options` (what was asked, the resume rule),
:mod:`session` (run folder, study, checks), :mod:`lifecycle` (:class:`TrialLog`: the one
place a trial's outcome is told and recorded), :mod:`training` (one candidate trained, the
same for every backend), :mod:`backends` (the :class:`~nasl.search.backends.Backend`
contract: Optuna in this process, Optuna with worker processes, :mod:`ray_backend`), all thin
schedulers around the trial log; :func:`run_search` owns the session, the deadline, Ctrl-C,
the timings and the finish for every backend.
"""

from __future__ import annotations

from typing import Any

from nasl.common.events import StageProgress
from nasl.search.lifecycle import TrialLog
from nasl.search.options import SearchOptions, SearchOutcome
from nasl.search.session import Session


def run_search(space: Any, opts: SearchOptions, *, backend: str = "optuna",
               workers: int | None = None, address: str | None = None,
               cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
               listeners: list[Any] | None = None) -> SearchOutcome:
    """Run a search of ``space`` → :class:`SearchOutcome` (``runs/<name>/`` written).

    ``backend="optuna"`` runs trials one after another in this process; ``"ray"`` runs
    them on Ray workers (``workers`` at once, ``address`` of a cluster). With
    ``opts.resume`` the run ``opts.runs_dir/opts.name`` continues with its own space and
    settings (``space`` may then be None). ``listeners`` (:class:`nasl.common.events.Listener`)
    receive the typed progress events.
    """
    from nasl.search.backends import make_backend
    from nasl.search.ray_backend import check_gpus

    impl = make_backend(backend, opts, workers=workers, address=address,
                        cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    check_gpus(gpus_per_trial, address)  # before anything is written, with either backend
    return run_session(Session(space, impl.prepare(space, opts)), impl, listeners)


def run_session(session: Session, impl: Any, listeners: list[Any] | None = None) -> SearchOutcome:
    """Run a set-up ``session`` on the backend ``impl`` (:class:`nasl.search.backends.Backend`)
    → :class:`SearchOutcome`: the deadline, Ctrl-C, the timings and the finish are owned here."""
    import time

    from nasl.common.signals import acknowledge as acknowledge_interrupt
    from nasl.search.run import INTERRUPTED

    log = session.log
    with session.listening(listeners):
        t0 = time.perf_counter()
        session.start_clock()
        interrupted = False
        try:
            impl.run(session)
        except KeyboardInterrupt:
            acknowledge_interrupt()
            interrupted = True
            log.fail_running(INTERRUPTED)
            log.progress(StageProgress("interrupted"))
        finally:
            impl.close()
        log.timings["total"] = time.perf_counter() - t0
        front = session.finish(interrupted)
    log.timings["total"] = time.perf_counter() - t0
    return session.outcome(front, interrupted)


__all__ = ["SearchOptions", "SearchOutcome", "Session", "TrialLog", "run_search", "run_session"]
