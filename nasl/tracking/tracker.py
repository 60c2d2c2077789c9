"""The W&B listener of a search (see :mod:`nasl.tracking` for what it logs)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasl.common.events import EpochEnded, Event, FrontWritten, Listener, TrialEnded, TrialStarted
from nasl.common.record import SUMMARY_FIELDS, status
from nasl.common.vocab import OPEN_STATES
from nasl.stats.pareto import (
    feasible_points,
    hypervolume_curve,
    normalised_hypervolume,
    objective_reference,
)
from nasl.tracking.mode import resolve_mode
from nasl.tracking.values import as_number, one_line, safe_name, snapshot, table_cell

__all__ = ["WandbTracker"]

#: End events of a trial → the state its W&B run records.
END_STATES = {"complete": "COMPLETE", "pruned": "PRUNED", "fail": "FAIL", "rejected": "infeasible"}
#: Trial-row keys that go to a trial run's summary (when present).
SUMMARY_KEYS = SUMMARY_FIELDS
#: Directory variables pointed under ``<run_dir>/wandb/`` unless the user set them.
DIR_VARS = {"WANDB_DATA_DIR": "data", "WANDB_CACHE_DIR": "cache", "WANDB_ARTIFACT_DIR": "artifacts"}
_STOP = object()


# ----------------------------------------------------------------------------- tracker
class WandbTracker(Listener):
    """A search listener that logs trials and the front to W&B (see the module docstring).

    ``tracker(event, info)`` never raises and returns at once; :meth:`close` (called on the
    ``finished`` event) waits up to ``close_timeout`` seconds for the logging to finish.
    """

    def __init__(self, run_dir: Path, run_name: str, objectives: Sequence[tuple[str, str]],
                 budgets: Mapping[str, float], space_yaml: str, choice_names: Sequence[str],
                 project: str | None = None, entity: str | None = None, *,
                 mode: str | None = None, space_name: str = "", tags: Sequence[str] = (),
                 table_interval: float = 30.0, close_timeout: float = 120.0):
        self.run_dir = Path(run_dir)
        self.run_name = run_name
        self.objectives = [(str(m), str(d)) for m, d in objectives]
        self.budgets = {str(k): float(v) for k, v in budgets.items()}
        self.space_yaml = space_yaml
        self.choice_names = list(choice_names)
        self.project = project or "nasl"
        self.entity = entity
        self.space_name = space_name
        self.tags = list(tags)
        self.table_interval = table_interval
        self.close_timeout = close_timeout
        self.mode = "disabled"
        self.enabled = False
        self.warned = False
        self.summary: Any = None
        self.trial_runs: dict[int, Any] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._last_table = -math.inf
        self._env_set: list[str] = []
        try:
            self.mode = resolve_mode(mode)
            self.enabled = self.mode != "disabled"
        except Exception as e:  # never raise into the search
            self._fail(e)

    @classmethod
    def for_run(cls, run_dir: str | Path, objectives: Sequence[tuple[str, str]],
                budgets: Mapping[str, float], choice_names: Sequence[str] | None = None,
                project: str | None = None, entity: str | None = None, *, space_name: str = "",
                **options: Any) -> WandbTracker:
        """A tracker for the run folder ``run_dir`` (its ``space.yaml``; the design-choice
        columns from ``choice_names``, else from its ``env.json``).

        ``options``: ``mode``, ``tags``, ``table_interval``, ``close_timeout``; other keys
        (e.g. from a YAML ``tracking.wandb`` section) are ignored with a warning.
        """
        known = {"mode", "tags", "table_interval", "close_timeout"}
        unknown = sorted(set(options) - known)
        if unknown:
            warnings.warn(f"nasl: W&B options {unknown} are not known and are ignored", stacklevel=2)
        kwargs = {k: v for k, v in options.items() if k in known and v is not None}
        root = Path(run_dir)
        try:
            space_yaml = (root / "space.yaml").read_text()
        except OSError:
            space_yaml = ""
        if choice_names is None:
            try:
                names = json.loads((root / "env.json").read_text()).get("choice_names")
            except (OSError, ValueError, AttributeError):
                names = None
            choice_names = [str(n) for n in names] if isinstance(names, list) else []
        return cls(root, root.name, objectives, budgets, space_yaml, list(choice_names), project,
                   entity, space_name=space_name, **kwargs)

    # ------------------------------------------------------------------ listener side
    def trial_started(self, event: TrialStarted) -> None:
        self.put(event)

    def epoch_ended(self, event: EpochEnded) -> None:
        self.put(event)

    def trial_ended(self, event: TrialEnded) -> None:
        self.put(event)

    def front_written(self, event: FrontWritten) -> None:
        self.put(event)
        if event.final:  # the last event of a search
            self.close()

    def put(self, event: Event) -> None:
        """Queue one search event for the logging thread (cheap; never raises)."""
        if not self.enabled or self._closed:
            return
        try:
            self._queue.put(snapshot(event))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="nasl-wandb", daemon=True)
                self._thread.start()
        except Exception as e:
            self._fail(e)

    def close(self) -> None:
        """Finish every open W&B run (waits up to ``close_timeout`` s) and print the sync hint."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(self.close_timeout)
        if thread.is_alive():
            self._fail(TimeoutError(f"W&B did not finish within {self.close_timeout:g} s; "
                                    "some data may be missing"))
            return
        self._restore_env()
        if self.mode == "offline" and not self.warned:
            print(f"nasl: W&B runs were logged offline; to upload them run:\n"
                  f"  wandb sync {self.run_dir / 'wandb'}/offline-run-*", file=sys.stderr)

    def _fail(self, exc: BaseException) -> None:
        """First failure: one warning, then the tracker is off for good."""
        with self._lock:
            self.enabled = False
            if self.warned:
                return
            self.warned = True
        with contextlib.suppress(Exception):  # e.g. warnings turned into errors: never raise
            warnings.warn(f"nasl: W&B logging is switched off after an error ({one_line(exc)}); "
                          "the search goes on", RuntimeWarning, stacklevel=3)

    # ------------------------------------------------------------------ logging thread
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if not self.enabled:
                continue
            try:
                self._handle(item)
            except Exception as e:
                self._fail(e)
        self._finish_all()

    def _handle(self, event: Event) -> None:
        self._ensure_summary()
        if isinstance(event, TrialStarted):
            info = {**event.record, "baseline": event.baseline, "epochs": event.epochs}
            self.trial_runs[event.number] = self._new_trial_run(event.number, event.choices, info, [])
        elif isinstance(event, EpochEnded):
            run = self.trial_runs.get(event.number)
            if run is not None:
                run.log({"epoch": event.epoch, "accuracy": as_number(event.accuracy),
                         "loss": as_number(event.loss)}, step=event.epoch)
        elif isinstance(event, TrialEnded):
            self._end_trial(event)
        elif isinstance(event, FrontWritten):
            self._front(event.rows, event.final)
            if event.final:
                self._finished(event.run)

    def _init(self, **kwargs: Any) -> Any:
        import wandb

        if self.mode == "offline":
            kwargs["mode"] = "offline"
        return wandb.init(project=self.project, entity=self.entity, dir=str(self.run_dir),
                          group=self.run_name, reinit="create_new", **kwargs)

    def _settings(self, *, stats: bool) -> Any:
        import wandb

        return wandb.Settings(silent=True, console="off", save_code=False, x_disable_stats=not stats,
                              x_save_requirements=stats, init_timeout=60.0)

    def _ensure_summary(self) -> None:
        if self.summary is not None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for var, sub in DIR_VARS.items():
            if not os.environ.get(var):
                os.environ[var] = str((self.run_dir / "wandb" / sub).resolve())
                self._env_set.append(var)
        config = {"run": self.run_name, "space": self.space_name,
                  "objectives": dict(self.objectives), "budgets": self.budgets,
                  "choice_names": self.choice_names}
        run = self._init(name=self.run_name, job_type="search", config=config, tags=self.tags,
                         settings=self._settings(stats=True))
        self.summary = run
        run.define_metric("trials")
        for key in ("hypervolume", "front_size", "trained", "feasible_trials"):
            run.define_metric(key, step_metric="trials")
        import wandb

        art = wandb.Artifact(f"{safe_name(self.run_name)}-space", type="search-space",
                             description=f"resolved search space of nasl run {self.run_name}",
                             metadata={"space": self.space_name, "budgets": self.budgets,
                                       "objectives": dict(self.objectives)})
        with art.new_file("space.yaml", mode="w", encoding="utf-8") as f:
            f.write(self.space_yaml)
        run.log_artifact(art)
        where = run.url if self.mode == "online" else f"offline, under {self.run_dir / 'wandb'}"
        print(f"nasl: logging to W&B ({where})", file=sys.stderr)

    # ------------------------------------------------------------------ trials
    def _trial_config(self, number: int, choices: Mapping[str, Any], info: Mapping[str, Any]
                      ) -> dict[str, Any]:
        config: dict[str, Any] = {"trial": number, "run": self.run_name, "space": self.space_name}
        for key in ("baseline", "seed", "arch_id", "epochs"):
            if info.get(key) not in (None, ""):
                config["planned_epochs" if key == "epochs" else key] = info[key]
        config.update(choices)
        latency = info.get("latency")
        if isinstance(latency, Mapping):
            config["latency_setup"] = {k: v for k, v in latency.items()
                                       if k in ("device", "device_name", "threads", "batch_size",
                                                "dtype", "repeats", "warmup", "input_shape",
                                                "channels_last")}
        return config

    def _costs(self, info: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: info[k] for k in SUMMARY_KEYS if info.get(k) not in (None, "")}
        lo, hi = as_number(info.get("latency_p10_ms")), as_number(info.get("latency_p90_ms"))
        if lo is not None and hi is not None:
            out["latency_spread_ms"] = hi - lo
        latency = info.get("latency")
        if isinstance(latency, Mapping) and as_number(latency.get("std_ms")) is not None:
            out["latency_std_ms"] = latency["std_ms"]
        return out

    def _new_trial_run(self, number: int, choices: Mapping[str, Any], info: Mapping[str, Any],
                       tags: list[str]) -> Any:
        baseline = str(info.get("baseline") or "")
        run = self._init(name=f"{self.run_name}-trial-{number}", job_type="trial",
                         config=self._trial_config(number, choices, info),
                         tags=[*self.tags, *tags, *(["baseline", baseline] if baseline else [])],
                         settings=self._settings(stats=False))
        run.summary.update(self._costs(info))
        return run

    def _end_trial(self, event: TrialEnded) -> None:
        number, row = event.number, dict(event.row)
        state = END_STATES[event.state]
        run = self.trial_runs.pop(number, None)
        if run is None:  # rejected (never started), or started before this tracker
            choices = {k: row[k] for k in self.choice_names if k in row}
            run = self._new_trial_run(number, choices, row, [state])
        else:
            run.tags = (*run.tags, state)
        reason = str(event.reason or row.get("reason") or "")
        summary = {**self._costs(row), "state": state, "feasible": event.state != "rejected",
                   "reason": reason}
        if event.state == "complete" and as_number(event.accuracy) is not None:
            summary["accuracy"] = float(event.accuracy)  # type: ignore[arg-type]
        run.summary.update(summary)
        run.finish(exit_code=1 if event.state == "fail" else 0)

    # ------------------------------------------------------------------ summary run
    def _front(self, rows: list[dict[str, Any]], final: bool) -> None:
        import wandb

        done = [r for r in rows if str(r.get("state")) not in OPEN_STATES]
        feasible = feasible_points(done, self.objectives)
        ref = objective_reference([p for _, p in feasible], self.objectives, self.budgets)
        front = [p for i, p in feasible if done[i].get("pareto")]
        directions = [d for _, d in self.objectives]
        hv = normalised_hypervolume(front, directions, ref) if ref is not None else 0.0
        data: dict[str, Any] = {
            "trials": len(done), "hypervolume": hv, "front_size": len(front),
            "trained": sum(str(r.get("state")) in ("COMPLETE", "PRUNED", "FAIL")
                           and r.get("feasible") is not False for r in done),
            "feasible_trials": sum(r.get("feasible") is not False for r in done),
        }
        now = time.monotonic()
        if final or now - self._last_table >= self.table_interval:
            self._last_table = now
            data["trials_table"] = self._table(rows)
            data.update(self._charts(rows))
        if final:
            data["front"] = self._table([r for r in rows if r.get("pareto")])
            curve = hypervolume_curve(rows, self.objectives, self.budgets)
            table = wandb.Table(columns=["trials", "hypervolume"], data=[list(c) for c in curve])
            data["hypervolume_curve"] = wandb.plot.line(
                table, "trials", "hypervolume", title="hypervolume of the feasible front over trials")
        self.summary.log(data)

    def _table(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        import wandb

        from nasl.run.results import columns

        cols = [*columns(list(rows), self.choice_names), "status"]
        data = [[table_cell(r.get(c)) for c in cols[:-1]] + [status(r)] for r in rows]
        return wandb.Table(columns=cols, data=data, allow_mixed_types=True)

    def _charts(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import wandb

        from nasl import report

        rows = [dict(r) for r in rows]
        has = {k: any(as_number(r.get(k)) is not None for r in rows) for k in ("macs", "latency_ms")}
        out = {}
        if has["macs"]:
            fig = report.accuracy_figure(rows, self.objectives, self.budgets, x="macs")
            out["pareto/accuracy_vs_macs"] = wandb.Plotly(fig)
        if has["latency_ms"]:
            fig = report.accuracy_figure(rows, self.objectives, self.budgets, x="latency_ms")
            out["pareto/accuracy_vs_latency"] = wandb.Plotly(fig)
            if has["macs"]:
                fig = report.macs_latency_figure(rows, self.objectives, self.budgets)
                out["pareto/macs_vs_latency"] = wandb.Plotly(fig)
        return out

    def _finished(self, run_dir: Any) -> None:
        import wandb

        root = Path(getattr(run_dir, "root", run_dir or self.run_dir))
        path = root / "report.html"
        if path.is_file():  # copied into the run's files (a symlink would make wandb warn)
            files = Path(self.summary.dir)
            shutil.copyfile(path, files / path.name)
            self.summary.save(str(files / path.name), base_path=str(files), policy="now")
            self.summary.log({"report": wandb.Html(path.read_text(encoding="utf-8"), inject=False)})

    def _finish_all(self) -> None:
        """Finish open runs (trials cut short count as failed), then the summary run."""
        for number in list(self.trial_runs):
            run = self.trial_runs.pop(number)
            try:
                run.summary.update({"state": "FAIL", "reason": "search ended before the trial"})
                run.finish(exit_code=1)
            except Exception as e:
                self._fail(e)
        if self.summary is not None:
            try:
                self.summary.finish()
            except Exception as e:
                self._fail(e)

    def _restore_env(self) -> None:
        for var in self._env_set:
            os.environ.pop(var, None)
        self._env_set.clear()
