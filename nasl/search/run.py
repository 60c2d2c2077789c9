"""``nasl search`` with Optuna: the ask/tell loop over one study, and the run's outputs.

In: a loaded search space and :class:`SearchOptions`. Out: ``runs/<name>/`` filled as in
DESIGN.md, and a :class:`SearchOutcome` (trial counts, the front, the paths).
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nasl import results
from nasl.errors import NaslError
from nasl.search.early_stop import EarlyStopper
from nasl.search.objective import (
    STATIC_METRICS,
    Evaluator,
    Settings,
    Stopped,
    describe_violation,
    static_costs,
    trial_seed,
    violations,
)
from nasl.search.study import (
    fail_interrupted,
    make_sampler,
    open_study,
    owner,
    trained_count,
    values_for,
)


@dataclass
class SearchOptions:
    """What the user asked for (CLI flags override the space's ``search``/``proxy`` sections)."""

    name: str | None = None
    runs_dir: Path = Path("runs")
    budgets: dict[str, float] = field(default_factory=dict)
    trials: int | None = None
    sampler: str | None = None
    seed: int | None = None
    epochs: int | None = None
    data: str | None = None
    early_stop: bool = True
    early_stop_margin: float = 0.02
    timeout: float | None = None  # seconds
    resume: bool = False
    storage: str | None = None
    device: str | None = None
    threads: int | None = None
    final_repeats: int = 100
    max_rejections: int = 2000
    show_progress: bool = True
    baselines: bool = True
    wandb: dict[str, Any] | None = None


@dataclass
class SearchOutcome:
    run: results.RunDir
    trained: int
    rejected: int
    pruned: int
    failed: int
    front: list[dict[str, Any]]
    seconds: float
    interrupted: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def default_name(space_name: str) -> str:
    return f"{space_name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
DIRECTIONS = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}


def objective_pairs(space: Any) -> tuple[tuple[str, str], ...]:
    """The space's objectives as (metric, 'maximize'|'minimize') pairs, Optuna's spelling."""
    return tuple((o.metric, DIRECTIONS[o.direction]) for o in space.objectives)


def choice_names(space: Any) -> list[str]:
    """Design-choice columns of trials.csv: the sampled parameters, then the fixed ones."""
    names = list(space.order)
    return names + [k for k in space.fixed if k not in names]


def resolve_settings(space: Any, opts: SearchOptions) -> Settings:
    """Space defaults + CLI overrides → :class:`Settings`."""
    from nasl.train import TrainConfig

    proxy, target = space.proxy, space.target
    seed = opts.seed if opts.seed is not None else space.search.seed
    train = TrainConfig(**{**proxy.train_kwargs(), **({"epochs": opts.epochs} if opts.epochs else {})})
    return Settings(
        objectives=objective_pairs(space),
        budgets={**dict(space.budget), **opts.budgets},
        data=opts.data or proxy.dataset,
        proxy_resolution=proxy.resolution,
        val_fraction=proxy.val_fraction,
        subset=proxy.subset,
        val_subset=proxy.val_subset,
        train=train,
        device=opts.device or target.device,
        latency_batch=target.batch_size,
        dtype=DTYPES.get(target.dtype, target.dtype),
        threads=opts.threads,
        seed=seed,
        early_stop=opts.early_stop,
        early_stop_margin=opts.early_stop_margin,
    )


class Search:
    """One search run: the study, the evaluator, the counters and the outputs."""

    def __init__(self, space: Any, opts: SearchOptions,
                 progress: Callable[[str, dict[str, Any]], None] | None = None):
        from nasl.space import unsatisfiable_budget_message

        self.space, self.opts = space, opts
        self.settings = resolve_settings(space, opts)
        msg = unsatisfiable_budget_message(space, self.settings.budgets)
        if msg:
            raise NaslError(msg)
        self.trials_target = opts.trials or space.search.trials
        if self.trials_target < 1:
            raise NaslError(f"--trials {self.trials_target}: expected an integer >= 1")
        self.sampler_name = opts.sampler or space.search.sampler
        sampler = make_sampler(self.sampler_name, self.settings.seed)
        self.evaluator = Evaluator(space, self.settings)
        self.evaluator.data(self.settings.proxy_resolution)  # bad data fails here, once
        self.device = _resolve_target_device(self.settings.device)
        name = opts.name or default_name(space.name)
        self.run = results.RunDir(Path(opts.runs_dir) / name)
        self._prepare_dir()  # everything above is checked before anything is written
        self.storage = opts.storage or self.run.default_storage
        self.study = open_study(self.storage, name, [d for _, d in self.settings.objectives],
                                sampler, resume=opts.resume)
        self.stopper = EarlyStopper(self.settings.cost_objectives, self.settings.train.epochs,
                                    self.settings.early_stop_margin)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = [progress] if progress else []
        self.counts = {"rejected": 0, "pruned": 0, "failed": 0, "complete": 0}
        self.timings = {"train": 0.0, "latency": 0.0, "total": 0.0}
        self._load_history()
        if not opts.resume and opts.baselines:
            self._enqueue_baselines()
        self._write_static()

    # ------------------------------------------------------------------ setup
    def _prepare_dir(self) -> None:
        root = self.run.root
        if root.exists() and any(root.iterdir()) and not self.opts.resume:
            raise NaslError(f"run {str(root)!r} already exists; pass --resume to continue it or "
                            "--name NAME for a new run")
        if self.opts.resume and not (root / "env.json").is_file() and not self.opts.storage:
            # (with --storage, --resume may also join a study that lives elsewhere)
            raise NaslError(f"--resume: no run at {str(root)!r} to resume")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NaslError(f"cannot create run folder {str(root)!r}: {e.strerror}") from None

    def _write_static(self) -> None:
        s = self.settings
        results.write_text_atomic(self.run.space_yaml, self.space.with_budget(s.budgets).to_yaml())
        env = results.environment(s.seed, {
            "run": self.run.name, "space": self.space.name, "family": self.space.family,
            "storage": self.storage, "study": self.study.study_name,
            "objectives": [list(o) for o in s.objectives], "budgets": s.budgets,
            "sampler": self.sampler_name, "trials": self.trials_target, "data": s.data,
            "epochs": s.train.epochs, "proxy_resolution": s.proxy_resolution,
            "target_device": s.device, "early_stop": s.early_stop,
            "choice_names": choice_names(self.space),
        })
        env["device"], env["device_name"] = self.device
        results.write_text_atomic(self.run.env_json, _json(env))

    def _enqueue_baselines(self) -> None:
        for bname, params in self.space.baselines.items():
            arch = self.space.to_arch(params)
            costs = static_costs(arch)
            if violations(costs, self.settings.budgets, STATIC_METRICS):
                continue
            self.study.enqueue_trial(self.space.encode(params), user_attrs={"baseline": bname},
                                     skip_if_exists=True)

    def _load_history(self) -> None:
        """On resume: fail interrupted trials (and retry their designs); feed the stopper."""
        for t in fail_interrupted(self.study):
            if t.user_attrs.get("choices") is not None:
                self._requeue(t.params, t.user_attrs)
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            ua = t.user_attrs
            if ua.get("feasible") and ua.get("curve"):
                self.stopper.add(t.number, [ua[m] for m in self.settings.cost_objectives],
                                 ua["curve"])

    # ------------------------------------------------------------------ the loop
    def run_loop(self) -> SearchOutcome:
        t0 = time.perf_counter()
        deadline = None if self.opts.timeout is None else t0 + self.opts.timeout
        rejected_in_a_row = 0
        interrupted = False
        try:
            while trained_count(self.study) < self.trials_target:
                if deadline is not None and time.perf_counter() > deadline:
                    self.progress("timeout", {})
                    break
                trained = self._one_trial()
                rejected_in_a_row = 0 if trained else rejected_in_a_row + 1
                if rejected_in_a_row >= self.opts.max_rejections:
                    raise NaslError(
                        f"{self.opts.max_rejections} candidates in a row were over budget "
                        f"{self.settings.budgets}; loosen the budget or narrow the space")
        except KeyboardInterrupt:
            interrupted = True
            self._fail_running("interrupted by the user (Ctrl-C)")
            self.progress("interrupted", {})
        self.timings["total"] = time.perf_counter() - t0
        front = self.finish(remeasure=not interrupted)
        self.timings["total"] = time.perf_counter() - t0
        c = self.counts
        return SearchOutcome(self.run, trained_count(self.study), c["rejected"], c["pruned"],
                             c["failed"], front, self.timings["total"], interrupted,
                             dict(self.timings))

    def _one_trial(self) -> bool:
        """Ask, evaluate and tell one candidate; True when it went into training."""
        trial = self.study.ask()
        params, seed, rec, over = self.static_check(trial)
        if not over and self.settings.needs_latency:
            t = time.perf_counter()
            lat = self.evaluator.latency(self.space.to_arch(params))
            self.timings["latency"] += time.perf_counter() - t
            rec.update(latency_record(lat))
            over = violations(rec, self.settings.budgets, ("latency_ms",))
        self.record(trial, rec)
        if over:
            self.reject(trial, rec, over)
            return False
        self._train(trial, params, seed, rec)
        return True

    def static_check(self, trial: Any) -> tuple[dict[str, Any], int, dict[str, Any],
                                                 dict[str, float]]:
        """Sample a design and cost it analytically → (params, seed, record, budget excess)."""
        params = self.space.sample(trial)
        seed = trial_seed(self.settings.seed, trial.number)
        arch = self.space.to_arch(params)
        rec: dict[str, Any] = {"choices": params, "seed": seed, "arch_id": arch.id,
                               "owner": owner(), **static_costs(arch)}
        self.record(trial, rec)
        return params, seed, rec, violations(rec, self.settings.budgets, STATIC_METRICS)

    @staticmethod
    def record(trial: Any, rec: dict[str, Any]) -> None:
        for k, v in rec.items():
            if trial.user_attrs.get(k, object()) != v:
                trial.set_user_attr(k, v)

    def set_constraints(self, trial: Any, rec: dict[str, Any]) -> None:
        """One Optuna constraint per budget: value - budget (<= 0 is feasible)."""
        for m, b in self.settings.budgets.items():
            v = rec.get(m)
            trial.set_constraint(m, float(v) - b if v is not None else 0.0)

    def reject(self, trial: Any, rec: dict[str, Any], over: dict[str, float]) -> None:
        """Tell an over-budget candidate as infeasible (never trained)."""
        reason = describe_violation(rec, self.settings.budgets, over)
        self.record(trial, {"feasible": False, "reason": reason})
        self.set_constraints(trial, rec)
        self.study.tell(trial, values_for(self.settings.objectives, rec))
        self.counts["rejected"] += 1
        self.progress("rejected", {"number": trial.number, "reason": reason,
                                   "row": self._row(trial)})

    def _train(self, trial: optuna.Trial, params: dict[str, Any], seed: int,
               rec: dict[str, Any]) -> None:
        s = self.settings
        trial.set_user_attr("trained", True)
        costs = [float(rec[m]) for m in s.cost_objectives]
        curve: list[float] = []
        self.progress("start", {"number": trial.number, "params": params,
                                "baseline": trial.user_attrs.get("baseline", ""),
                                "epochs": s.train.epochs, **rec})

        def on_epoch(ep: Any) -> None:
            curve.append(float(ep.val_accuracy))  # stored once, when the trial ends
            self.progress("epoch", {"number": trial.number, "epoch": ep.epoch,
                                    "accuracy": ep.val_accuracy, "loss": ep.train_loss})
            if s.early_stop and not trial.user_attrs.get("baseline"):
                why = self.stopper.check(costs, ep.epoch, ep.val_accuracy)
                if why:
                    raise Stopped(why, ep.epoch)

        t = time.perf_counter()
        try:
            result = self.evaluator.train(params, seed, on_epoch)
        except Stopped as e:
            self._tell_stopped(trial, curve, t, "PRUNED", e.reason)
            return
        except KeyboardInterrupt:
            self._tell_stopped(trial, curve, t, "FAIL", "interrupted by the user (Ctrl-C)",
                               requeue=True)
            raise
        except NaslError:
            raise
        except Exception as e:  # a failed trial never stops the search
            self._tell_stopped(trial, curve, t, "FAIL", f"{type(e).__name__}: {e}"[:500])
            return
        seconds = time.perf_counter() - t
        self.timings["train"] += seconds
        acc = float(result.final_accuracy)
        for k, v in {"curve": curve, "accuracy": acc, "best_accuracy": float(result.best_accuracy),
                     "epochs": result.epochs, "seconds": round(seconds, 3), "feasible": True,
                     "reason": "", "images_per_second": result.images_per_second}.items():
            trial.set_user_attr(k, v)
        rec["accuracy"] = acc
        self.set_constraints(trial, rec)
        self.study.tell(trial, values_for(s.objectives, rec))
        self.stopper.add(trial.number, costs, curve)
        self.counts["complete"] += 1
        self.progress("complete", {"number": trial.number, "accuracy": acc, "seconds": seconds,
                                   "row": self._row(trial)})
        self._write_outputs(report=False)

    def _fail_running(self, reason: str) -> None:
        """Tell FAIL for this process's trials still RUNNING (interrupted outside training)."""
        me = owner()
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("owner") == me:
                self.study._storage.set_trial_user_attr(t._trial_id, "reason", reason)
                self.study._storage.set_trial_user_attr(t._trial_id, "trained", False)
                self.study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                self._requeue(t.params, t.user_attrs)

    def _requeue(self, params: dict[str, Any], user_attrs: dict[str, Any]) -> None:
        """Queue an interrupted trial's design again (it runs first on ``--resume``)."""
        self.study.enqueue_trial(params, user_attrs={k: v for k, v in user_attrs.items()
                                                     if k == "baseline"})

    def _tell_stopped(self, trial: optuna.Trial, curve: list[float], t0: float, state: str,
                      reason: str, requeue: bool = False) -> None:
        """Tell a PRUNED or FAIL trial; ``requeue``: interrupted, so not counted as trained and
        its design queued again for ``--resume``."""
        seconds = time.perf_counter() - t0
        self.timings["train"] += seconds
        for k, v in {"curve": curve, "epochs": len(curve), "seconds": round(seconds, 3),
                     "reason": reason, "feasible": True, "trained": not requeue,
                     "accuracy": curve[-1] if curve else None}.items():
            trial.set_user_attr(k, v)
        self.study.tell(trial, state=TrialState[state])
        if requeue:
            self._requeue(trial.params, trial.user_attrs)
        self.counts["pruned" if state == "PRUNED" else "failed"] += 1
        self.progress(state.lower(), {"number": trial.number, "reason": reason,
                                      "row": self._row(trial)})
        self._write_outputs(report=False)

    def progress(self, event: str, info: dict[str, Any]) -> None:
        """Send an event to every listener (progress display, W&B); a failing one is dropped."""
        for listener in list(self.listeners):
            try:
                listener(event, info)
            except Exception as e:  # a display or tracker must never stop the search
                self.listeners.remove(listener)
                warnings.warn(f"nasl: {type(listener).__name__} failed and is switched off: {e}",
                              stacklevel=2)

    def _row(self, trial: optuna.Trial) -> dict[str, Any]:
        return results.trial_row(self.study._storage.get_trial(trial._trial_id))

    # ------------------------------------------------------------------ outputs
    def finish(self, *, remeasure: bool = True) -> list[dict[str, Any]]:
        """Re-time the front with more repeats (then recompute it) and write every output."""
        if remeasure and self.settings.needs_latency:
            self._remeasure_front()
        return self._write_outputs(report=True)

    def _remeasure_front(self) -> None:
        rows = results.load_rows(self.study)
        front = results.mark_front(rows, self.settings.objectives)
        trials = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        final = dict(self.study.user_attrs.get(results.FINAL_LATENCY, {}))
        for i in front:
            t = trials[rows[i]["number"]]
            self.progress("remeasure", {"number": t.number})
            t0 = time.perf_counter()
            lat = self.evaluator.latency(self.space.to_arch(t.user_attrs["choices"]),
                                         repeats=self.opts.final_repeats)
            self.timings["latency"] += time.perf_counter() - t0
            final[str(t.number)] = {
                "latency_ms": lat.median_ms, "latency_p10_ms": lat.p10_ms,
                "latency_p90_ms": lat.p90_ms, "latency": lat.to_dict(),
                "latency_search_ms": t.user_attrs.get("latency_ms"), "device": lat.device,
                "device_name": lat.device_name}
        # Finished trials are read-only in Optuna: the final timings live on the study.
        self.study.set_user_attr(results.FINAL_LATENCY, final)

    def _write_outputs(self, *, report: bool) -> list[dict[str, Any]]:
        rows = results.load_rows(self.study)
        front = results.write_tables(self.run, rows, choice_names(self.space),
                                     self.settings.objectives)
        self.progress("front", {"size": len(front), "rows": rows, "final": report})
        if report:
            write_report(self.run, rows, self.settings.objectives, self.settings.budgets)
            self.progress("finished", {"run": self.run, "rows": rows})
        return front


def latency_record(lat: Any) -> dict[str, Any]:
    """The latency fields of a trial record from a :class:`nasl.cost.Latency`."""
    return {"latency_ms": lat.median_ms, "latency_p10_ms": lat.p10_ms,
            "latency_p90_ms": lat.p90_ms, "device": lat.device, "device_name": lat.device_name,
            "latency": lat.to_dict()}


def write_report(run: results.RunDir, rows: list[dict[str, Any]],
                 objectives: Any, budgets: dict[str, float]) -> None:
    """report.html and pareto.png of a run."""
    from nasl import report

    title = f"nasl run {run.name}"
    report.write_html(run / "report.html", rows, list(objectives), budgets, title)
    report.write_png(run / "pareto.png", rows, list(objectives), budgets, title)


def _resolve_target_device(device: str) -> tuple[str, str]:
    """(device, its name) of the latency target, e.g. ("cpu", "AMD EPYC") (NaslError if bad)."""
    from nasl.cost import cpu_name, resolve_device

    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise NaslError(f"target device {device!r}: {e}") from None
    if dev.startswith("cuda"):
        import torch

        return dev, torch.cuda.get_device_name(torch.device(dev))
    return dev, cpu_name()


def _json(obj: Any) -> str:
    import json

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)  # type: ignore[arg-type]
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, float) and not math.isfinite(o):
            return None
        return str(o)

    return json.dumps(obj, indent=2, default=default)
