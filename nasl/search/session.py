"""Setting a search up: everything checked, then the run folder, the study and the trial log.

In: a search space and :class:`~nasl.search.options.SearchOptions`. Out: a :class:`Session`
(settings, evaluator, study, :class:`~nasl.search.lifecycle.TrialLog`) that a backend
schedules trials on. Nothing is written before every option, the budget and the data have
been checked; on ``resume`` the run's own space and settings are used (the resume rule of
:func:`nasl.search.options.resume_space`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nasl.common.errors import NaslError
from nasl.common.events import Listener, StageProgress
from nasl.common.guards import stored_storage
from nasl.common.signals import acknowledge as acknowledge_interrupt
from nasl.common.vocab import STATIC_METRICS
from nasl.run import results
from nasl.search.lifecycle import TrialLog
from nasl.search.objective import make_evaluator, static_costs, violations
from nasl.search.options import (
    SearchOptions,
    SearchOutcome,
    choice_names,
    default_name,
    recipe_of,
    resolve_settings,
    resume_space,
    to_json,
)
from nasl.search.pick import proposer_for
from nasl.search.schedulers import make_scheduler
from nasl.search.study import make_sampler, open_study, trained_count

#: Fresh seeds the confirmation trains each chosen design with first, by default.
CONFIRM_SEEDS = 2
#: Trainings the confirmation may spend, by default (the main job within about 4 minutes on
#: 2 cores; docs/benchmarks.md, "Decisions that hold beyond the proxy").
CONFIRM_BUDGET = 8
#: Confirmation epochs = this x the search's epochs, by default.
CONFIRM_EPOCH_FACTOR = 3


class Session:
    """One search run set up: checked options, the run folder, the study and the trial log."""

    def __init__(self, space: Any, opts: SearchOptions, listeners: list[Listener] | None = None):
        from nasl.space import unsatisfiable_budget_message

        space, opts = resume_space(space, opts)
        if space is None:
            raise NaslError("no search space given (and no run to resume)")
        opts = _with_yaml_tracking(space, opts)
        if opts.confirm_seeds is None:
            opts = dataclasses.replace(opts, confirm_seeds=CONFIRM_SEEDS)
        if opts.confirm_budget is None:
            opts = dataclasses.replace(opts, confirm_budget=CONFIRM_BUDGET)
        self.space, self.opts = space, opts
        self.settings = resolve_settings(space, opts)
        msg = unsatisfiable_budget_message(space, self.settings.budgets)
        if msg:
            raise NaslError(msg)
        self.confirm_epochs = opts.confirm_epochs or CONFIRM_EPOCH_FACTOR * self.settings.train.epochs
        self.scored_on = (f"{self.settings.holdout_fraction:.0%} of the training split held out"
                          if self.settings.holdout_fraction > 0 else
                          "the search's validation images (no holdout: proxy.holdout_fraction 0)")
        self.trials_target = opts.trials or space.search.trials
        if self.trials_target < 1:
            raise NaslError(f"--trials {self.trials_target}: expected an integer >= 1")
        self.sampler_name = opts.sampler or space.search.sampler
        self.sampler = make_sampler(self.sampler_name, self.settings.seed)
        self.proposer = proposer_for(self.sampler_name, space, self.settings)  # pick: enqueues designs
        self.evaluator = make_evaluator(space, self.settings)
        self.evaluator.data(self.settings.proxy_resolution)  # bad data fails here, once
        self.device = _resolve_target_device(self.settings.device)
        self.remote_fingerprint = self._probe_remote()
        self._check_latency_budget()
        s = self.settings
        table = space.family == "table"  # looked up: no learning curve to stop early on
        #: A design evaluated before is told its values instead of being evaluated again
        #: (tabular spaces: a repeat is the same row; docs/benchmarks.md, issue 23).
        self.skip_repeats = table
        stopper = make_scheduler(opts.scheduler if opts.early_stop and not table else "none",
                                 s.cost_objectives, s.train.epochs, margin=s.early_stop_margin,
                                 eta=opts.reduction_factor, r_min=opts.grace_period)
        from nasl.search.prescreen import PreScreen, proxy_names

        proxy_names(opts.prescreen_proxy)  # a bad name fails before anything is written
        if table and opts.prescreen:
            raise NaslError(f"--prescreen {opts.prescreen}: space {space.name!r} is a table (every "
                            "design is looked up, nothing to pre-screen); expected 0")
        name = opts.name or default_name(space.name)
        self.run = results.RunDir(Path(opts.runs_dir) / name)
        self._prepare_dir()  # everything above is checked before anything is written
        self.storage = opts.storage or self.run.default_storage
        self.study = open_study(self.storage, name, [d for _, d in self.settings.objectives],
                                self.sampler, resume=opts.resume,
                                metrics=[m for m, _ in self.settings.objectives])
        self.log = TrialLog(self.study, self.run, space, s, stopper,
                            max_rejections=opts.max_rejections)
        from nasl.common.owners import Heartbeat

        self.log.listeners.extend([Heartbeat(self.study), *(listeners or [])])
        self.log.predictor = self._predictor()
        self.stop_reason: str | None = None  # set when the search must start no more trials
        self.prescreen = PreScreen(self, opts.prescreen, opts.prescreen_proxy)
        self.log.load_history()
        if not opts.resume and opts.baselines:
            self._enqueue_baselines()
        self.workers: list[Any] = []  # worker processes on this study (nasl.search.workers)
        if not opts.join:
            self._write_static()

    # ------------------------------------------------------------------ setup
    def _prepare_dir(self) -> None:
        root = self.run.root
        if self.opts.join:  # a worker of the search process that holds the run
            return
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
        from nasl.common import guards

        self._lock = guards.lock_run(root)  # held while this process runs the search
        if not self.opts.resume and (root / "env.json").exists():  # another one just finished
            raise NaslError(f"run {str(root)!r} already exists; pass --resume to continue it or "
                            "--name NAME for a new run")
        if self.opts.resume and not self.opts.storage:
            guards.check_sqlite_file(self.run.default_storage, f"--resume {self.run.name}")

    def _probe_remote(self) -> dict[str, Any] | None:
        """The remote target's fingerprint (one signed request), or None without one;
        ``NaslError`` when it cannot be reached or refuses: nothing is written then."""
        remote = self.settings.remote
        if remote is None or not self.settings.needs_latency:
            return None
        from nasl.latency.remote import RemoteRefused, RemoteUnavailable

        try:
            return remote.info()
        except (RemoteUnavailable, RemoteRefused, ValueError) as e:
            raise NaslError(f"remote latency target: {e}") from None

    def _check_latency_budget(self) -> None:
        """Stop at once when the cheapest of 64 sampled designs (fewest MACs) takes more than
        twice the latency budget: nothing in the space can meet it (the margin absorbs noise)."""
        limit = self.settings.budgets.get("latency_ms")
        if limit is None:
            return
        from nasl.common.units import format_budget
        from nasl.latency.remote import RemoteRefused, RemoteUnavailable
        from nasl.space import sample_configs

        cheapest = min(sample_configs(self.space, 64, seed=0), key=lambda c: c["macs"])
        try:
            ms = float(self.evaluator.latency(self.space.to_arch(cheapest["params"])).median_ms)
        except (RemoteUnavailable, RemoteRefused) as e:
            raise NaslError(f"remote latency target: {e}") from None
        where = self.settings.remote.address if self.settings.remote else self.settings.device
        if ms > 2 * limit:
            raise NaslError(f"latency budget {format_budget('latency_ms', limit)}: the cheapest "
                            f"of 64 sampled designs ({cheapest['macs'] / 1e6:.1f}M MACs) takes "
                            f"{format_budget('latency_ms', ms)} on {where}; "
                            "nothing in this space can meet it; loosen the budget")

    def _write_static(self) -> None:
        s = self.settings
        results.write_text_atomic(self.run.space_yaml, self.space.with_budget(s.budgets).to_yaml())
        env = results.environment(s.seed, {
            "run": self.run.name, "space": self.space.name, "family": self.space.family,
            "space_file": getattr(self.space, "source_path", None) or None,
            "space_source": getattr(self.space, "source_kind", None),
            "storage": stored_storage(self.storage, self.run.root), "study": self.study.study_name,
            "objectives": [list(o) for o in s.objectives], "budgets": s.budgets,
            "sampler": self.sampler_name, "trials": self.trials_target, "data": s.data,
            "epochs": s.train.epochs, "proxy_resolution": s.proxy_resolution,
            "target_device": s.device, "early_stop": s.early_stop, "seeds": s.seeds,
            "confirm_seeds": self.opts.confirm_seeds, "confirm_max": self.opts.confirm_max,
            "confirm_budget": self.opts.confirm_budget, "confirm_epochs": self.confirm_epochs,
            "confirm_recipe": self.opts.confirm_recipe, "margin": self.opts.margin,
            "alpha": self.opts.alpha, "correction": self.opts.correction,
            "recipe": self.opts.recipe,  # --recipe as given (resumed)
            "proxy_recipe": recipe_of(self.space, self.opts).to_dict(),
            "recipe_describe": recipe_of(self.space, self.opts).describe(s.train.epochs),
            "holdout_fraction": s.holdout_fraction,
            "runtime": s.runtime, "omp_policy": _omp_policy(), "threads": s.threads,
            "adapt_threads": s.adapt_threads, "scheduler": self.log.stopper.settings(),
            **self._training_env(),
            "choice_names": choice_names(self.space),
        })
        env["device"], env["device_name"] = self.device
        if s.remote is not None:
            fp = self.remote_fingerprint or {}
            env.update(target_remote=s.remote.address, token_file=s.remote.token_file,
                       target_required=s.remote.required, latency_target=fp)
            env["device"], env["device_name"] = fp.get("device"), fp.get("gpu") or fp.get("cpu")
        results.write_text_atomic(self.run.env_json, to_json(env))

    def record_env(self, extra: dict[str, Any]) -> None:
        """Add ``extra``'s keys to the run's env.json (written atomically)."""
        env = self.run.read_env()
        env.update(extra)
        results.write_text_atomic(self.run.env_json, to_json(env))

    def _training_env(self) -> dict[str, Any]:
        """Where and how this process trains (env.json): device, its name, precision, compile."""
        from nasl.hardware.accel import resolve_precision

        dev = self.evaluator.train_device()
        name = _resolve_target_device(dev)[1] if dev != "mps" else "Apple MPS"
        return {"train_device": dev, "train_device_name": name, "compile": self.settings.train.compile,
                "precision": resolve_precision(self.settings.train.precision, dev),
                "trials_per_device": self.opts.trials_per_device, "devices": self.opts.devices}

    def _enqueue_baselines(self) -> None:
        for bname, params in self.space.baselines.items():
            costs = static_costs(self.space.to_arch(params))
            if violations(costs, self.settings.budgets, STATIC_METRICS):
                continue
            self.study.enqueue_trial(self.space.encode(params), user_attrs={"baseline": bname},
                                     skip_if_exists=True)

    def _predictor(self) -> Any:
        """The calibrated latency predictor of this space and target, when a latency budget is
        set and ``nasl latency calibrate`` stored one (None otherwise)."""
        s = self.settings
        if not self.opts.predictor or "latency_ms" not in s.budgets or s.remote is not None \
                or self.space.family == "table":
            return None  # (a predictor is calibrated on this machine; a table needs none)
        from nasl.latency.measure import target_of_space
        from nasl.latency.predictor import Predictor, default_path

        target = target_of_space(self.space, device=s.device, runtime=s.runtime,
                                 threads=s.latency_threads)
        path = default_path(self.space.name, target.fingerprint())
        return Predictor.load(path) if path.is_file() else None

    def latency_failed(self, trial: Any, cand: Any, error: Exception) -> None:
        """A remote target did not measure ``cand``: tell its trial FAIL with the reason.

        Unreachable (``RemoteUnavailable``): the design is queued again (``--resume`` measures
        it) and the search stops starting trials: with ``required`` at once with one message
        (:class:`~nasl.latency.remote.TargetGone`), else after the remaining work
        (``stop_reason``). A wrong token stops the search (NaslError); any other refusal
        fails this trial only.
        """
        from nasl.latency.remote import RemoteUnavailable

        gone = isinstance(error, RemoteUnavailable)
        reason = f"latency not measured: {error}"
        self.log.record(trial, cand.rec)
        self.log.stop(trial, "FAIL", [], reason, rec=cand.rec, requeue=gone)
        if gone and self.settings.remote.required:
            raise target_gone(self, str(error))
        if gone:
            self.stop_reason = (f"{error}; no new trials are started (the confirmation and the "
                                f"outputs go on); continue with --resume --name {self.run.name}")
            warn_once(f"nasl: {self.stop_reason}")
        elif getattr(error, "status", None) == 401:
            raise NaslError(f"{error} (check --token-file / target.token_file)")

    # ------------------------------------------------------------------ helpers for backends
    @contextlib.contextmanager
    def listening(self, extra: list[Listener] | None = None) -> Iterator[None]:
        """The live progress display (and the W&B tracker with ``opts.wandb``) listen inside."""
        from nasl.search.progress import SearchProgress

        with SearchProgress(self.trials_target, self.trained(),
                            enabled=self.opts.show_progress) as progress:
            self.log.listeners.extend([progress, *(extra or [])])
            if self.opts.wandb is not None:
                from nasl.tracking import WandbTracker

                s = self.settings
                self.log.listeners.append(WandbTracker.for_run(
                    self.run.root, s.objectives, s.budgets, self.log.choice_names,
                    space_name=str(self.space.name), **self.opts.wandb))
            yield

    def start_clock(self) -> None:
        """Start ``--timeout``'s clock: trials stop being started, and running ones are stopped
        after their current epoch, once it has run out."""
        import time

        timeout = self.opts.timeout
        self.log.deadline = None if timeout is None else time.monotonic() + timeout

    def past_deadline(self) -> bool:
        """Whether ``--timeout`` has run out (False without one)."""
        import time

        return self.log.deadline is not None and time.monotonic() > self.log.deadline

    def trained(self) -> int:
        """Trials that went into training so far (the ``--trials`` count)."""
        return trained_count(self.study)

    def finish(self, interrupted: bool) -> list[dict[str, Any]]:
        """After the trials: unless interrupted, confirm the front with extra seeds and re-time
        it in interleaved rounds (:mod:`nasl.search.confirm`); then write every output."""
        from nasl.search import confirm

        if self.prescreen.n > 0:
            self.prescreen.decide(force=True)  # the decision on every completed trial
        if not interrupted:
            from nasl.latency.remote import RemoteUnavailable

            try:
                confirmed = confirm.confirm(self)
                try:
                    confirm.retime(self, confirmed)
                except RemoteUnavailable as e:  # the search's own latencies stay in the tables
                    if self.settings.remote is not None and self.settings.remote.required:
                        raise target_gone(self, str(e)) from None
                    if not self.stop_reason:  # else the reason was said already
                        warn_once(f"nasl: re-timing of the front skipped: {e}")
                confirm.finalize(self)
            except KeyboardInterrupt:  # what was confirmed is stored; --resume finishes it
                acknowledge_interrupt()
                self.log.progress(StageProgress("interrupted"))
                interrupted = True
        self.interrupted = interrupted
        return self.log.write_outputs(report=True)

    def outcome(self, front: list[dict[str, Any]], interrupted: bool) -> SearchOutcome:
        """The :class:`SearchOutcome` of this session now."""
        c = self.log.counts
        interrupted = interrupted or getattr(self, "interrupted", False)
        return SearchOutcome(self.run, self.trained(), c["rejected"], c["pruned"], c["failed"],
                             front, self.log.timings["total"], interrupted, dict(self.log.timings))


def target_gone(session: Session, message: str) -> NaslError:
    """The one message that stops a search whose required remote target is gone."""
    from nasl.latency.remote import TargetGone

    done = session.log.counts["complete"]
    return TargetGone(f"{message}; the search stops (target.required). {done} completed trial(s) "
                      f"kept in {session.run.root}; continue with --resume --name {session.run.name}")


def warn_once(message: str) -> None:
    """Print ``message`` on stderr once per process."""
    import sys

    if message not in _WARNED:
        _WARNED.add(message)
        print(message, file=sys.stderr, flush=True)


_WARNED: set[str] = set()


def _omp_policy() -> str:
    """The OpenMP wait policy the entry point chose (:mod:`nasl.hardware.omp`), and why."""
    from nasl.hardware import omp

    return omp.account()


def _with_yaml_tracking(space: Any, opts: SearchOptions) -> SearchOptions:
    """W&B settings from the space's ``tracking.wandb`` section unless given as options."""
    tracking = getattr(space, "tracking", None)
    if opts.wandb is None and tracking is not None and tracking.wandb is not None \
            and tracking.wandb.enabled:
        return dataclasses.replace(opts, wandb={"project": tracking.wandb.project,
                                                "entity": tracking.wandb.entity})
    return opts


def _resolve_target_device(device: str) -> tuple[str, str]:
    """(device, its name) of the latency target, e.g. ("cpu", "AMD EPYC") (NaslError if bad)."""
    from nasl.hardware.devices import cpu_name, resolve_device

    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise NaslError(f"target device {device!r}: {e}") from None
    if dev.startswith("cuda"):
        import torch

        return dev, torch.cuda.get_device_name(torch.device(dev))
    return dev, cpu_name()
