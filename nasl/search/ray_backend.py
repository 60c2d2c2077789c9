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
from typing import Any

from nasl.common import record
from nasl.common.errors import NaslError
from nasl.common.events import EpochEnded
from nasl.search.lifecycle import Candidate
from nasl.search.objective import Settings, make_evaluator, violations
from nasl.search.options import SearchOptions
from nasl.search.run import keep_going
from nasl.search.session import Session, warn_once
from nasl.search.study import UNMEASURED, storage_of
from nasl.search.training import train_candidate


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


class RayTrials:
    """The one place that reads Ray's ``OptunaSearch`` private state: its live Optuna trials
    by Tune trial id (``_ot_trials``) and the ids it has completed (``_completed_trials``).

    Checked when built: a Ray release that renames either fails here with one clear
    ``RuntimeError`` (and in ``tests/test_ray_adapter.py``), never silently."""

    def __init__(self, searcher: Any):
        live = getattr(searcher, "_ot_trials", None)
        done = getattr(searcher, "_completed_trials", None)
        if not isinstance(live, dict) or not isinstance(done, set):
            import ray

            raise RuntimeError(f"Ray {ray.__version__}: OptunaSearch no longer keeps "
                               "_ot_trials (dict) and _completed_trials (set); nasl's Ray "
                               "backend (nasl.search.ray_backend.RayTrials) must be updated")
        self._live, self._done = live, done

    def trial(self, trial_id: str) -> Any | None:
        """The live Optuna trial of a Tune trial (None once forgotten or unknown)."""
        return self._live.get(trial_id)

    def forget(self, trial_id: str) -> None:
        """Drop a trial the searcher asked for but nasl rejected (never sent to a worker)."""
        self._live.pop(trial_id, None)

    def complete_once(self, trial_id: str) -> Any | None:
        """Mark a trial completed → its Optuna trial, or None when unknown or already done."""
        if trial_id not in self._live or trial_id in self._done:
            return None
        self._done.add(trial_id)
        return self._live[trial_id]


def _searcher_class() -> type:
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    class NaslOptunaSearch(OptunaSearch):
        """OptunaSearch whose trials go through nasl's :class:`TrialLog` (the driver's)."""

        def __init__(self, session: Session, pruned: dict[str, tuple[str, int, float]],
                     **kwargs: Any):
            super().__init__(**kwargs)
            self.ray_trials = RayTrials(self)
            self.session, self.log, self.pruned = session, session.log, pruned
            self.started = session.trained()
            self.cands: dict[str, Candidate] = {}
            self.curves: dict[str, list[float]] = {}
            self.baseline: dict[str, bool] = {}

        # State lives in the Optuna storage (resume goes through it), not in Tune checkpoints.
        def save(self, checkpoint_path: str) -> None:
            pass

        def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
            pass

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            while True:  # the log raises after too many rejections in a row
                if self.started >= self.session.trials_target or not keep_going(self.session):
                    return Searcher.FINISHED
                self.session.prescreen.before_ask()
                super().suggest(trial_id)
                ot = self.ray_trials.trial(trial_id)
                cand = self.log.propose(ot)
                if cand.over:
                    self.ray_trials.forget(trial_id)
                    self.log.reject(ot, cand.rec, cand.over, cand.reason)
                    continue
                prev = self.log.repeat_of(cand.params) if self.session.skip_repeats else None
                if prev is not None:  # tabular: told the known values, as the Optuna backends do
                    self.ray_trials.forget(trial_id)
                    self.log.repeat(ot, cand, prev)
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
            ot = self.ray_trials.trial(trial_id)
            if result.get("nasl_state") != "RUNNING" or ot is None:
                return
            curve = self.curves.setdefault(trial_id, [])
            curve.append(float(result["accuracy"]))
            ot.set_user_attr("curve", list(curve))
            self.log.progress(EpochEnded(ot.number, int(result.get("epoch") or len(curve)),
                                         float(result["accuracy"]), result.get("loss")))

        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                              error: bool = False) -> None:
            ot = self.ray_trials.complete_once(trial_id)
            if ot is None:
                return
            log = self.log
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
            ot = searcher.ray_trials.trial(tid)
            if result.get("nasl_state") != "RUNNING" or tid not in searcher.cands or ot is None:
                return TrialScheduler.CONTINUE
            cand = searcher.cands[tid]
            costs = [float(result[m] if m in result else cand.rec[m])
                     for m in log.settings.cost_objectives]
            why = log.should_stop(bool(searcher.baseline.get(tid)), costs, int(result["epoch"]),
                                  float(result["accuracy"]), ot.number)
            if why:
                pruned[tid] = (why, int(result["epoch"]), float(result["accuracy"]))
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE

    return NaslEarlyStop()


class RayBackend:
    """Trials on Ray Tune workers (``workers`` at once; ``address`` of a cluster), each with
    ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs; the driver keeps the study."""

    name = "ray"

    def __init__(self, *, workers: int | None = None, address: str | None = None,
                 cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0):
        self.workers, self.address = workers, address
        self.cpus_per_trial, self.gpus_per_trial = cpus_per_trial, gpus_per_trial
        self.n = 0  # trials at once, known once Ray is up

    def prepare(self, space: Any, opts: SearchOptions) -> SearchOptions:
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise NaslError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        if self.workers is not None and self.workers < 1:
            raise NaslError(f"--workers {self.workers}: expected an integer >= 1")
        # (--gpus-per-trial is checked by nasl.search.search, for either backend)
        threads = max(1, int(self.cpus_per_trial))
        return dataclasses.replace(opts, threads=opts.threads or threads)

    def run(self, session: Session) -> None:
        import ray
        from ray import tune

        if session.proposer is not None:  # pick enqueues before each ask of the Optuna loop only
            note = ("--sampler pick proposes in the optuna backend's loop only; with --backend ray "
                    "the study's TPE proposes")
            session.record_env({"sampler_note": note})
            warn_once(note)
        os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
        if self.address is None:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, num_cpus=None if self.address else os.cpu_count(),
                         include_dashboard=False, log_to_driver=False,
                         configure_logging=True, logging_level="ERROR")
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise NaslError(f"--address {self.address}: cannot connect to Ray ({e})") from None
        cpus = ray.cluster_resources().get("CPU", 1)
        self.n = self.workers or max(1, int(cpus // self.cpus_per_trial))
        session.log.timings["workers"] = self.n
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
            {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial})
        # Tune pickles the searcher and scheduler (and so the session) into its experiment
        # state when the Tuner is built: without the listeners (display, W&B: they hold locks),
        # which the live objects in this process keep using.
        listeners, session.log.listeners = session.log.listeners, []
        try:
            tuner = self._tuner(tune, trainable, searcher, _scheduler(session, searcher, pruned),
                                session)
        finally:
            session.log.listeners = listeners
        tuner.fit()

    def _tuner(self, tune: Any, trainable: Any, searcher: Any, scheduler: Any,
               session: Session) -> Any:
        return tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=-1,
                                        max_concurrent_trials=self.n, reuse_actors=True),
            run_config=tune.RunConfig(name="tune",
                                      storage_path=str((session.run.root / "ray").resolve()),
                                      verbose=0, failure_config=tune.FailureConfig(max_failures=1)))

    def close(self) -> None:
        pass
