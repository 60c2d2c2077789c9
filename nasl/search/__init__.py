"""Search: options, the trial lifecycle, the Optuna and Ray backends, early stopping.

Layout (one module per step): :mod:`options` (what was asked, the resume rule),
:mod:`session` (run folder, study, checks), :mod:`lifecycle` (:class:`TrialLog`: the one
place a trial's outcome is told and recorded), :mod:`run` (the Optuna loop) and
:mod:`ray_backend` (the Ray driver), both thin schedulers around the trial log.
"""

from __future__ import annotations

from typing import Any

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
    settings (``space`` may then be None). ``listeners(event, info)`` receive progress events.
    """
    from nasl.errors import NaslError

    if backend not in ("optuna", "ray"):
        raise NaslError(f"--backend {backend!r}: expected optuna or ray")
    from nasl.search.ray_backend import check_gpus

    check_gpus(gpus_per_trial, address)  # before anything is written, with either backend
    if backend == "ray" and (opts.trials_per_device != 1 or opts.devices):
        raise NaslError("--trials-per-device and --devices are for --backend optuna; with ray, "
                        "--gpus-per-trial 0.25 packs four trials on a GPU")
    if backend == "ray":
        from nasl.search.ray_backend import run_ray

        return run_ray(space, opts, workers=workers, address=address,
                       cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                       listeners=listeners)
    from nasl.search import workers as slots
    from nasl.search.run import run_optuna

    several = opts.trials_per_device != 1 or bool(opts.devices)
    if several:
        import dataclasses

        default = opts.train_device or (space.proxy.device if space is not None else "auto")
        placed = slots.slots(opts.devices, default, opts.trials_per_device)
        opts = dataclasses.replace(opts, train_device=placed[0])  # this process: the first slot
    session = Session(space, opts)
    if several:
        session.workers = slots.start(session, placed[1:])
    with session.listening(listeners):
        return run_optuna(session)


__all__ = ["SearchOptions", "SearchOutcome", "Session", "TrialLog", "run_search"]
