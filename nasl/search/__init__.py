"""Search: objective, Optuna and Ray backends, multi-objective early stopping."""

from __future__ import annotations

from typing import Any

from nasl.search.run import Search, SearchOptions, SearchOutcome


def run_search(space: Any, opts: SearchOptions, *, backend: str = "optuna",
               workers: int | None = None, address: str | None = None,
               cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0) -> SearchOutcome:
    """Run a search of ``space`` → :class:`SearchOutcome` (``runs/<name>/`` written).

    ``backend="optuna"`` runs trials one after another in this process; ``"ray"`` runs
    them on Ray workers (``workers`` at once, ``address`` of a cluster).
    """
    tracking = getattr(space, "tracking", None)
    if opts.wandb is None and tracking is not None and tracking.wandb is not None \
            and tracking.wandb.enabled:
        import dataclasses

        opts = dataclasses.replace(opts, wandb={"project": tracking.wandb.project,
                                                "entity": tracking.wandb.entity})
    if backend == "ray":
        from nasl.search.ray_backend import run_ray

        return run_ray(space, opts, workers=workers, address=address,
                       cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    from nasl.search.progress import SearchProgress

    search = Search(space, opts)
    from nasl.search.study import trained_count

    with SearchProgress(search.trials_target, trained_count(search.study),
                        enabled=opts.show_progress) as progress:
        search.listeners.append(progress)
        if opts.wandb is not None:
            from nasl.tracking import WandbTracker

            search.listeners.append(WandbTracker.for_search(search, **opts.wandb))
        return search.run_loop()


__all__ = ["Search", "SearchOptions", "SearchOutcome", "run_search"]
