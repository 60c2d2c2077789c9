"""``nasl search --backend ray``: the same search on Ray Tune workers or a Ray cluster.

In: a space and :class:`~nasl.search.options.SearchOptions`, plus workers / address / resources.
Out: the same ``runs/<name>/`` as the Optuna backend. Ray Tune's ``Tuner`` schedules the
trials; ``OptunaSearch`` (Optuna's sampler, the run's Optuna storage) proposes them. The
driver keeps everything that must be consistent: candidates are costed and over-budget
ones rejected in ``suggest`` (never sent to a worker), early stopping is a Tune scheduler
fed with the driver's front, and only the driver writes to the study. Workers measure
latency on their own device (or, with ``target.ray_resource``, in a Ray task on the node
holding that custom resource; or on a remote target), train, and report through
``tune.report``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import time
from typing import Any

from nasl import record
from nasl.errors import NaslError
from nasl.search.lifecycle import Candidate
from nasl.search.objective import Settings, make_evaluator, violations
from nasl.search.options import SearchOptions, SearchOutcome
from nasl.search.session import Session
from nasl.search.study import UNMEASURED, storage_of
from nasl.search.training import train_candidate
from nasl.signals import acknowledge as acknowledge_interrupt


def _define_by_run(space: Any, trial: Any) -> None:
    """Module-level (picklable) define-by-run function: the space's own sampling."""
    space.sample(trial)


#: What a worker measured besides the training outcome (the driver keeps the rest).
MEASURED = (*record.LATENCY_FIELDS, "node")


def _report(state: str, rec: record.TrialRecord, metrics: tuple[str, ...],
            outcome: record.Outcome | None = None, **extra: Any) -> None:
    """One Tune result: the state, what the worker measured, the outcome (flat keys)."""
    from ray import tune

    out = {"nasl_state": state, **rec.pick(MEASURED),
           **(outcome.to_attrs() if outcome is not None else {}), **extra}
    for m in metrics:  # Tune wants every searcher metric in every result
        if out.get(m) is None:
            out[m] = rec.get(m, UNMEASURED.get(m, 0.0))
    tune.report(out)


def worker_trial(config: dict[str, Any], *, space: Any, settings: Settings) -> None:
    """A Tune trainable: latency on this worker's device, latency budget, then training."""
    meta = config["nasl"]
    params, seed, static = meta["choices"], meta["seed"], meta["costs"]
    metrics = tuple(m for m, _ in settings.objectives)
    ev = make_evaluator(space, settings)
    rec = record.TrialRecord(node=platform.node()).update(static)
    if settings.needs_latency:
        from nasl.latency.remote import RemoteRefused, RemoteUnavailable

        try:
            lat = ev.latency(space.to_arch(params))
        except (RemoteUnavailable, RemoteRefused) as e:
            _report("FAIL", rec, metrics, reason=f"latency not measured: {e}"[:500])
            return
        rec.with_latency(lat, full=False)
        if violations(rec.to_attrs(), settings.budgets, ("latency_ms",)):
            _report("INFEASIBLE", rec, metrics, accuracy=0.0)
            return

    def on_epoch(ep: Any) -> None:
        _report("RUNNING", rec, metrics, accuracy=float(ep.val_accuracy), epoch=ep.epoch,
                loss=float(ep.train_loss))

    try:
        outcome = train_candidate(ev, params, seed, settings.seeds, on_epoch)
    except Exception as e:  # recorded on the trial by the driver
        _report("FAIL", rec, metrics, reason=f"{type(e).__name__}: {e}"[:500])
        return
    _report("COMPLETE", rec, metrics, outcome)


def check_gpus(gpus_per_trial: float, address: str | None) -> None:
    """``--gpus-per-trial`` > 0 on a local Ray needs a CUDA GPU here (``NaslError`` in one line,
    before anything is written); a cluster (``address``) is checked by Ray itself."""
    if gpus_per_trial <= 0 or address is not None:
        return
    import torch

    if not torch.cuda.is_available():
        raise NaslError(f"--gpus-per-trial {gpus_per_trial:g}: no CUDA GPU is visible on this "
                        "machine (drop the flag to train on the CPU, or pass --address of a Ray "
                        "cluster with GPUs)")


def _searcher_class() -> type:
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    class NaslOptunaSearch(OptunaSearch):
        """OptunaSearch whose trials go through nasl's :class:`TrialLog` (the driver's)."""

        def __init__(self, session: Session, pruned: dict[str, tuple[str, int, float]],
                 **kwargs: Any):
            super().__init__(**kwargs)
            self.session, self.log, self.pruned = session, session.log, pruned
            self.started = session.trained()
            self.cands: dict[str, Candidate] = {}
            self.curves: dict[str, list[float]] = {}
            self.baseline: dict[str, bool] = {}
            timeout = session.opts.timeout
            self.deadline = None if timeout is None else time.monotonic() + timeout
            self.log.deadline = self.deadline

        # State lives in the Optuna storage (resume goes through it), not in Tune checkpoints.
        def save(self, checkpoint_path: str) -> None:
            pass

        def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
            pass

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            while True:  # the log raises after too many rejections in a row
                if self.started >= self.session.trials_target:
                    return Searcher.FINISHED
                if self.deadline is not None and time.monotonic() > self.deadline:
                    self.log.progress("timeout", {})
                    return Searcher.FINISHED
                self.session.prescreen.before_ask()
                super().suggest(trial_id)
                ot = self._ot_trials[trial_id]
                cand = self.log.propose(ot)
                if cand.over:
                    del self._ot_trials[trial_id]
                    self.log.reject(ot, cand.rec, cand.over, cand.reason)
                    continue
                self.started += 1
                self.cands[trial_id] = cand
                self.baseline[trial_id] = bool(ot.user_attrs.get("baseline"))
                self.curves[trial_id] = []
                self.log.start(ot, cand)
                costs = cand.rec.pick(record.STATIC_FIELDS)
                return {"nasl": {"choices": cand.params, "seed": cand.seed, "costs": costs,
                                 "number": ot.number}}

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            if result.get("nasl_state") != "RUNNING" or trial_id not in self._ot_trials:
                return
            ot = self._ot_trials[trial_id]
            curve = self.curves.setdefault(trial_id, [])
            curve.append(float(result["accuracy"]))
            ot.set_user_attr("curve", list(curve))
            self.log.progress("epoch", {"number": ot.number, "epoch": result.get("epoch"),
                                        "accuracy": result["accuracy"], "loss": result.get("loss")})

        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                              error: bool = False) -> None:
            if trial_id not in self._ot_trials or trial_id in self._completed_trials:
                return
            log, ot = self.log, self._ot_trials[trial_id]
            self._completed_trials.add(trial_id)
            result = result or {}
            rec = self.cands[trial_id].rec.merged().update(
                {k: result[k] for k in MEASURED if result.get(k) is not None})
            if result.get("reason"):
                rec.reason = str(result["reason"])
            curve = self.curves.get(trial_id, [])
            state = result.get("nasl_state")
            if trial_id in self.pruned:
                reason, epoch, accuracy = self.pruned[trial_id]
                if len(curve) < epoch:  # Tune may stop a trial before the searcher saw its result
                    curve = [*curve, accuracy]
                log.stop(ot, "PRUNED", curve, reason, rec=rec)
            elif state == "INFEASIBLE":
                self.started -= 1
                log.reject(ot, rec, violations(rec.to_attrs(), log.settings.budgets,
                                               ("latency_ms",)))
            elif state == "COMPLETE":
                log.complete(ot, rec, curve, record.Outcome.from_attrs(result))
            else:
                reason = rec.get("reason") or ("the Ray worker died or raised; see the Ray "
                                               "trial logs under runs/<name>/ray")
                log.stop(ot, "FAIL", curve, reason, rec=rec)

    return NaslOptunaSearch


def _scheduler(session: Session, searcher: Any, pruned: dict[str, tuple[str, int, float]]) -> Any:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    log = session.log

    class NaslEarlyStop(FIFOScheduler):
        """Stops a trial when the driver's trial log says so (nasl's rule, one place)."""

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            tid = trial.trial_id
            if result.get("nasl_state") != "RUNNING" or tid not in searcher.cands \
                    or tid not in searcher._ot_trials:
                return TrialScheduler.CONTINUE
            cand = searcher.cands[tid]
            costs = [float(result[m] if m in result else cand.rec[m])
                     for m in log.settings.cost_objectives]
            why = log.should_stop(bool(searcher.baseline.get(tid)), costs, int(result["epoch"]),
                                  float(result["accuracy"]), searcher._ot_trials[tid].number)
            if why:
                pruned[tid] = (why, int(result["epoch"]), float(result["accuracy"]))
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE

    return NaslEarlyStop()


def run_ray(space: Any, opts: SearchOptions, *, workers: int | None = None,
            address: str | None = None, cpus_per_trial: float = 1.0,
            gpus_per_trial: float = 0.0, listeners: list[Any] | None = None) -> SearchOutcome:
    """Run the search on Ray Tune → :class:`SearchOutcome` (same outputs as Optuna's)."""
    import ray
    from ray import tune

    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise NaslError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if workers is not None and workers < 1:
        raise NaslError(f"--workers {workers}: expected an integer >= 1")
    check_gpus(gpus_per_trial, address)
    threads = max(1, int(cpus_per_trial))
    opts = dataclasses.replace(opts, threads=opts.threads or threads)
    session = Session(space, opts)
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
    pruned: dict[str, tuple[str, int, float]] = {}
    s = session.settings
    searcher = _searcher_class()(
        session, pruned,
        space=functools.partial(_define_by_run, session.space),
        metric=[m for m, _ in s.objectives],
        mode=["max" if d == "maximize" else "min" for _, d in s.objectives],
        sampler=session.sampler, study_name=session.study.study_name,
        storage=storage_of(session.study))
    trainable = tune.with_resources(
        tune.with_parameters(worker_trial, space=session.space, settings=s),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=_scheduler(session, searcher,
                                                                              pruned),
                                    num_samples=-1, max_concurrent_trials=n, reuse_actors=True),
        run_config=tune.RunConfig(name="tune", storage_path=str((session.run.root / "ray").resolve()),
                                  verbose=0, failure_config=tune.FailureConfig(max_failures=1)))
    log = session.log
    t0 = time.perf_counter()
    interrupted = False
    with session.listening(listeners):
        try:
            tuner.fit()
        except KeyboardInterrupt:
            acknowledge_interrupt()
            interrupted = True
        log.timings["total"] = time.perf_counter() - t0
        front = session.finish(interrupted)
    log.timings["total"] = time.perf_counter() - t0
    log.timings["workers"] = n
    return session.outcome(front, interrupted)
