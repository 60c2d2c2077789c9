"""``nasl search --backend ray``: the same search on Ray Tune workers or a Ray cluster.

In: a space and :class:`~nasl.search.run.SearchOptions`, plus workers / address / resources.
Out: the same ``runs/<name>/`` as the Optuna backend. Ray Tune's ``Tuner`` schedules the
trials; ``OptunaSearch`` (Optuna's sampler, the run's Optuna storage) proposes them. The
driver keeps everything that must be consistent: candidates are costed and over-budget
ones rejected in ``suggest`` (never sent to a worker), early stopping is a Tune scheduler
fed with the driver's front, and only the driver writes to the study. Workers measure
latency on their own device, train, and report through ``tune.report``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import time
from typing import Any

from nasl.errors import NaslError
from nasl.search.objective import Evaluator, Settings, violations
from nasl.search.run import Search, SearchOptions, SearchOutcome, latency_record
from nasl.search.study import UNMEASURED, trained_count

# Keys a worker reports besides the objective metrics.
_RECORD_KEYS = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "device", "device_name", "node",
                "accuracy", "best_accuracy", "epochs", "seconds", "reason")


def _define_by_run(space: Any, trial: Any) -> None:
    """Module-level (picklable) define-by-run function: the space's own sampling."""
    space.sample(trial)


def _report(state: str, rec: dict[str, Any], metrics: tuple[str, ...], **extra: Any) -> None:
    from ray import tune

    out = {"nasl_state": state, **{k: v for k, v in rec.items() if k in _RECORD_KEYS}, **extra}
    for m in metrics:  # Tune wants every searcher metric in every result
        if out.get(m) is None:
            out[m] = rec.get(m, UNMEASURED.get(m, 0.0))
    tune.report(out)


def worker_trial(config: dict[str, Any], *, space: Any, settings: Settings) -> None:
    """A Tune trainable: latency on this worker's device, latency budget, then training."""
    meta = config["nasl"]
    params, seed, static = meta["choices"], meta["seed"], meta["costs"]
    metrics = tuple(m for m, _ in settings.objectives)
    ev = Evaluator(space, settings)
    rec: dict[str, Any] = {**static, "node": platform.node()}
    if settings.needs_latency:
        lat = ev.latency(space.to_arch(params))
        rec.update({k: v for k, v in latency_record(lat).items() if k != "latency"})
        over = violations(rec, settings.budgets, ("latency_ms",))
        if over:
            _report("INFEASIBLE", rec, metrics, accuracy=0.0)
            return

    def on_epoch(ep: Any) -> None:
        _report("RUNNING", rec, metrics, accuracy=float(ep.val_accuracy), epoch=ep.epoch,
                loss=float(ep.train_loss))

    t0 = time.perf_counter()
    try:
        result = ev.train(params, seed, on_epoch)
    except Exception as e:  # recorded on the trial by the driver
        _report("FAIL", rec, metrics, reason=f"{type(e).__name__}: {e}"[:500])
        return
    _report("COMPLETE", rec, metrics, accuracy=float(result.final_accuracy),
            best_accuracy=float(result.best_accuracy), epochs=result.epochs,
            seconds=round(time.perf_counter() - t0, 3))


def _searcher_class() -> type:
    from optuna.trial import TrialState
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    class NaslOptunaSearch(OptunaSearch):
        """OptunaSearch that rejects over-budget designs itself and tells nasl's outcome."""

        def __init__(self, search: Search, target: int, pruned: dict[str, tuple[str, int]],
                     **kwargs: Any):
            super().__init__(**kwargs)
            self.search, self.target, self.pruned = search, target, pruned
            self.started = trained_count(search.study)
            self.costs: dict[str, list[float]] = {}
            self.curves: dict[str, list[float]] = {}
            self.baseline: dict[str, bool] = {}
            timeout = search.opts.timeout
            self.deadline = None if timeout is None else time.monotonic() + timeout

        # State lives in the Optuna storage (resume goes through it), not in Tune checkpoints.
        def save(self, checkpoint_path: str) -> None:
            pass

        def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
            pass

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            s = self.search
            for _ in range(s.opts.max_rejections):
                if self.started >= self.target:
                    return Searcher.FINISHED
                if self.deadline is not None and time.monotonic() > self.deadline:
                    s.progress("timeout", {})
                    return Searcher.FINISHED
                super().suggest(trial_id)
                ot = self._ot_trials[trial_id]
                params, seed, rec, over = s.static_check(ot)
                if over:
                    s.reject(ot, rec, over)
                    del self._ot_trials[trial_id]
                    continue
                self.started += 1
                ot.set_user_attr("trained", True)
                self.baseline[trial_id] = bool(ot.user_attrs.get("baseline"))
                self.curves[trial_id] = []
                costs = {k: rec[k] for k in ("macs", "params", "size_mb", "size_int8_mb")}
                s.progress("start", {"number": ot.number, "params": params,
                                     "baseline": ot.user_attrs.get("baseline", ""),
                                     "epochs": s.settings.train.epochs, **costs})
                return {"nasl": {"choices": params, "seed": seed, "costs": costs,
                                 "number": ot.number}}
            raise NaslError(f"{s.opts.max_rejections} candidates in a row were over budget "
                            f"{s.settings.budgets}; loosen the budget or narrow the space")

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            if result.get("nasl_state") != "RUNNING" or trial_id not in self._ot_trials:
                return
            ot = self._ot_trials[trial_id]
            curve = self.curves.setdefault(trial_id, [])
            curve.append(float(result["accuracy"]))
            ot.set_user_attr("curve", list(curve))
            self.search.progress("epoch", {"number": ot.number, "epoch": result.get("epoch"),
                                           "accuracy": result["accuracy"],
                                           "loss": result.get("loss")})

        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                              error: bool = False) -> None:
            if trial_id not in self._ot_trials or trial_id in self._completed_trials:
                return
            s, ot = self.search, self._ot_trials[trial_id]
            self._completed_trials.add(trial_id)
            result = result or {}
            rec = {k: result[k] for k in _RECORD_KEYS if result.get(k) is not None}
            rec.update({k: ot.user_attrs[k] for k in ("macs", "params", "size_mb")})
            curve = self.curves.get(trial_id, [])
            state = result.get("nasl_state")
            if trial_id in self.pruned:
                reason, epoch = self.pruned[trial_id]
                s.record(ot, {**rec, "epochs": epoch, "reason": reason, "feasible": True,
                              "accuracy": curve[-1] if curve else None})
                s.study.tell(ot, state=TrialState.PRUNED)
                s.counts["pruned"] += 1
                event, info = "pruned", {"reason": reason}
            elif state == "INFEASIBLE":
                over = violations(rec, s.settings.budgets, ("latency_ms",))
                s.record(ot, {**rec, "trained": False})
                self.started -= 1
                s.reject(ot, rec, over)
                return
            elif state == "COMPLETE":
                s.record(ot, {**rec, "feasible": True, "reason": ""})
                s.set_constraints(ot, rec)
                s.study.tell(ot, [float(rec.get(m, UNMEASURED.get(m, 0.0)))
                                  for m, _ in s.settings.objectives])
                s.stopper.add(ot.number, [float(rec[m]) for m in s.settings.cost_objectives],
                              curve)
                s.counts["complete"] += 1
                event, info = "complete", {"accuracy": rec["accuracy"],
                                           "seconds": rec.get("seconds", 0.0)}
            else:
                reason = rec.get("reason") or ("the Ray worker died or raised; see the Ray "
                                               "trial logs under runs/<name>/ray")
                s.record(ot, {**rec, "feasible": True, "reason": reason,
                              "epochs": len(curve)})
                s.study.tell(ot, state=TrialState.FAIL)
                s.counts["failed"] += 1
                event, info = "fail", {"reason": reason}
            s.progress(event, {"number": ot.number, "row": s._row(ot), **info})
            s._write_outputs(report=False)

    return NaslOptunaSearch


def _scheduler(search: Search, searcher: Any, pruned: dict[str, tuple[str, int]]) -> Any:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class NaslEarlyStop(FIFOScheduler):
        """Stops a trial that cannot reach the driver's current front (nasl's rule)."""

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            tid = trial.trial_id
            if (not search.settings.early_stop or result.get("nasl_state") != "RUNNING"
                    or searcher.baseline.get(tid) or tid not in searcher._ot_trials):
                return TrialScheduler.CONTINUE
            ua = searcher._ot_trials[tid].user_attrs
            costs = [float(result[m] if m in result else ua[m])
                     for m in search.settings.cost_objectives]
            why = search.stopper.check(costs, int(result["epoch"]), float(result["accuracy"]))
            if why:
                pruned[tid] = (why, int(result["epoch"]))
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE

    return NaslEarlyStop()


def run_ray(space: Any, opts: SearchOptions, *, workers: int | None = None,
            address: str | None = None, cpus_per_trial: float = 1.0,
            gpus_per_trial: float = 0.0) -> SearchOutcome:
    """Run the search on Ray Tune → :class:`SearchOutcome` (same outputs as Optuna's)."""
    import ray
    from ray import tune

    from nasl.search.progress import SearchProgress
    from nasl.search.study import make_sampler

    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise NaslError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if workers is not None and workers < 1:
        raise NaslError(f"--workers {workers}: expected an integer >= 1")
    threads = max(1, int(cpus_per_trial))
    opts = dataclasses.replace(opts, threads=opts.threads or threads)
    search = Search(space, opts)
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    if address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        try:
            ray.init(address=address, num_cpus=None if address else os.cpu_count(),
                     include_dashboard=False, log_to_driver=False,
                     configure_logging=True, logging_level="ERROR")
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise NaslError(f"--address {address}: cannot connect to Ray ({e})") from None
    cpus = ray.cluster_resources().get("CPU", 1)
    n = workers or max(1, int(cpus // cpus_per_trial))
    pruned: dict[str, tuple[str, int]] = {}
    s = search.settings
    searcher = _searcher_class()(
        search, search.trials_target, pruned,
        space=functools.partial(_define_by_run, space),
        metric=[m for m, _ in s.objectives],
        mode=["max" if d == "maximize" else "min" for _, d in s.objectives],
        sampler=make_sampler(search.sampler_name, s.seed),
        study_name=search.study.study_name, storage=search.study._storage)
    trainable = tune.with_resources(
        tune.with_parameters(worker_trial, space=space, settings=s),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=_scheduler(search, searcher,
                                                                              pruned),
                                    num_samples=-1, max_concurrent_trials=n, reuse_actors=True),
        run_config=tune.RunConfig(name="tune", storage_path=str((search.run.root / "ray").resolve()),
                                  verbose=0, failure_config=tune.FailureConfig(max_failures=1)))
    t0 = time.perf_counter()
    interrupted = False
    with SearchProgress(search.trials_target, trained_count(search.study),
                        enabled=opts.show_progress) as progress:
        search.listeners.append(progress)
        if opts.wandb is not None:
            from nasl.tracking import WandbTracker

            search.listeners.append(WandbTracker.for_search(search, **opts.wandb))
        try:
            tuner.fit()
        except KeyboardInterrupt:
            interrupted = True
        search.timings["total"] = time.perf_counter() - t0
        front = search.finish(remeasure=not interrupted)
    c = search.counts
    search.timings["total"] = time.perf_counter() - t0
    search.timings["workers"] = n
    return SearchOutcome(search.run, trained_count(search.study), c["rejected"], c["pruned"],
                         c["failed"], front, search.timings["total"], interrupted,
                         dict(search.timings))
