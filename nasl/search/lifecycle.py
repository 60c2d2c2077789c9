"""The trial lifecycle, written once for both backends.

In: Optuna trials handed over by a scheduler (the Optuna loop in :mod:`nasl.search.run` or
the Ray driver in :mod:`nasl.search.ray_backend`) and what happened to them. Out: the
study told each outcome, the counters, ``trials.csv``/``pareto.*`` rewritten as trials end,
and progress events for the listeners (terminal display, W&B).

:class:`TrialLog` is the only code that tells the study a trial's outcome. A trial goes
through::

    propose ──(over a static budget)──────────────► reject  (infeasible, never trained)
       │
    [latency measured] ──(over the latency budget)─► reject
       │
    start ─► epoch … ─► complete | stop (PRUNED: early stop) | stop (FAIL: error or interrupt)

Interrupted trials (Ctrl-C, a dead process) are told FAIL, not counted as trained, and their
design is queued again so ``--resume`` runs it first.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from typing import Any

from optuna.trial import TrialState

from nasl.common import record
from nasl.common.errors import NaslError
from nasl.common.events import (
    EpochEnded,
    Event,
    FrontWritten,
    Listener,
    StageProgress,
    TrialEnded,
    TrialStarted,
)
from nasl.common.vocab import STATIC_METRICS
from nasl.run import results
from nasl.search import study as st
from nasl.search.objective import Settings, describe_violation, static_costs, trial_seed, violations

#: Proposals in a row that repeat an evaluated design after which a search with repeats
#: skipped (tabular spaces) stops: the sampler finds nothing new.
REPEATS_IN_A_ROW = 200
#: What a repeat copies from the trial it repeats (besides the objective values).
REPEATED_FIELDS = ("accuracy", "accuracy_seeds", "best_accuracy", "epochs", "latency_ms",
                   "latency_p10_ms", "latency_p90_ms", "device", "device_name")


def _design_key(params: Any) -> str:
    """A design's choices as one comparable text."""
    return json.dumps(params, sort_keys=True, default=str)


@dataclass
class Candidate:
    """A proposed design: its choices, seed, record so far and budget excess (empty: feasible)."""

    params: dict[str, Any]
    seed: int
    rec: record.TrialRecord
    over: dict[str, float]
    reason: str | None = None  # why it is over budget, when not from a measurement


class TrialLog:
    """Tells the study every trial's outcome, counts it, writes the run's tables, sends events.

    Args:
        study: the run's Optuna study.
        run: the run folder.
        space: the search space (sampling, ArchConfig).
        settings: the resolved settings (objectives, budgets, epochs, ...).
        stopper: the early stopper (``check``/``add``) or None.
        max_rejections: candidates over budget in a row that end the search with an error.
    """

    def __init__(self, study: Any, run: results.RunDir, space: Any, settings: Settings,
                 stopper: Any = None, *, max_rejections: int = 2000):
        from nasl.search.options import choice_names

        self.study, self.run, self.space, self.settings = study, run, space, settings
        self.stopper = stopper
        self.predictor: Any = None  # a calibrated latency predictor (nasl.latency) or None
        self.max_rejections = max_rejections
        self.choice_names = choice_names(space)
        self.listeners: list[Listener] = []
        self.counts = {"rejected": 0, "pruned": 0, "failed": 0, "complete": 0}
        self.timings = {"train": 0.0, "latency": 0.0, "total": 0.0}
        self.rejected_in_a_row = 0
        self.deadline: float | None = None  # time.monotonic() after which running trials stop
        self.seen: dict[str, tuple[int, list[float], dict[str, Any]]] | None = None  # see repeat_of
        self.repeats_in_a_row = 0
        self.exhausted = False  # REPEATS_IN_A_ROW proposals in a row were designs seen before
        self.shared = False  # other processes tell trials on this study (worker processes)

    # ------------------------------------------------------------------ events, records
    def progress(self, event: Event) -> None:
        """Deliver ``event`` to every listener; a listener that raises is dropped with a warning."""
        for listener in list(self.listeners):
            try:
                event.deliver(listener)
            except Exception as e:  # a display or tracker must never stop the search
                self.listeners.remove(listener)
                warnings.warn(f"nasl: {type(listener).__name__} failed and is switched off: {e}",
                              stacklevel=2)

    @staticmethod
    def record(trial: Any, rec: record.TrialRecord) -> None:
        """Store ``rec``'s set fields as the trial's user attributes (only what changed)."""
        for k, v in rec.to_attrs().items():
            if trial.user_attrs.get(k, object()) != v:
                trial.set_user_attr(k, v)

    def row(self, trial: Any) -> dict[str, Any]:
        """The trials.csv row of a trial, as stored now."""
        return results.trial_row(st.frozen(self.study, trial))

    def _constraints(self, trial: Any, rec: record.TrialRecord) -> None:
        """One Optuna constraint per budget: value - budget (<= 0 is feasible)."""
        for m, b in self.settings.budgets.items():
            v = rec.get(m)
            trial.set_constraint(m, float(v) - b if v is not None else 0.0)

    # ------------------------------------------------------------------ before training
    def propose(self, trial: Any) -> Candidate:
        """Sample a design for ``trial`` and cost it analytically (microseconds)."""
        trial.set_user_attr("owner", st.owner())  # first: other processes see it is taken
        params = self.space.sample(trial)
        seed = trial_seed(self.settings.seed, trial.number)
        arch = self.space.to_arch(params)
        rec = record.TrialRecord(choices=params, seed=seed, arch_id=arch.id).update(static_costs(arch))
        self.record(trial, rec)
        cand = Candidate(params, seed, rec, violations(rec.to_attrs(), self.settings.budgets,
                                                       STATIC_METRICS))
        if getattr(arch, "missing", False):  # a design its table lacks (tabular space)
            cand.over, cand.reason = {"table": 1.0}, "not in the table (rejected, never looked up)"
        budget = self.settings.budgets.get("latency_ms")
        if not cand.over and self.predictor is not None and budget is not None:
            from nasl.latency.predictor import screen

            ms, over = screen(self.predictor, arch, budget)
            rec.latency_predicted_ms = ms
            if over:  # clearly over budget: neither measured nor trained
                cand.over = {"latency_ms": ms - budget}
                cand.reason = (f"over budget: predicted latency {ms:.3g} ms > {budget:g} ms x "
                               f"(1 + {self.predictor.margin:.2f}) (calibrated predictor; not "
                               "measured)")
        return cand

    def add_latency(self, cand: Candidate, lat: Any, seconds: float = 0.0, *,
                    full: bool = True) -> None:
        """Add a latency measurement to ``cand`` and check the latency budget."""
        self.timings["latency"] += seconds
        cand.rec.with_latency(lat, full=full)
        cand.over = violations(cand.rec.to_attrs(), self.settings.budgets, ("latency_ms",))

    def reject(self, trial: Any, rec: record.TrialRecord, over: dict[str, float],
               reason: str | None = None) -> None:
        """Tell an over-budget candidate as infeasible (never trained).

        Raises ``NaslError`` when ``max_rejections`` candidates in a row were over budget.
        """
        reason = reason or describe_violation(rec.to_attrs(), self.settings.budgets, over)
        self.record(trial, rec.merged(feasible=False, trained=False, reason=reason))
        self._constraints(trial, rec)
        self.study.tell(trial, st.values_for(self.settings.objectives, rec.to_attrs()))
        self.counts["rejected"] += 1
        self.rejected_in_a_row += 1
        self.progress(TrialEnded(trial.number, "rejected", self.row(trial), reason=reason))
        if self.rejected_in_a_row >= self.max_rejections:
            raise NaslError(f"{self.max_rejections} candidates in a row were over budget "
                            f"{self.settings.budgets}; loosen the budget or narrow the space")

    # ------------------------------------------------------------------ repeats (tables)
    def repeat_of(self, params: dict[str, Any]) -> tuple[int, list[float], dict[str, Any]] | None:
        """(number, values, accuracy and latency fields) of a complete, evaluated trial with the
        design ``params``, or None (the map is built from the study once, so resumes see it;
        with :attr:`shared`, read again on a miss: other processes evaluate on the study too)."""
        if self.shared and self.seen is not None and _design_key(params) not in self.seen:
            self.seen = None
        if self.seen is None:
            self.seen = {}
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                ua = t.user_attrs
                if ua.get("trained") and ua.get("feasible") and t.values and "choices" in ua:
                    self.seen.setdefault(_design_key(ua["choices"]), (t.number, list(t.values), {
                        k: ua[k] for k in REPEATED_FIELDS if k in ua}))
        return self.seen.get(_design_key(params))

    def repeat(self, trial: Any, cand: Candidate, prev: tuple[int, list[float], dict[str, Any]]) -> None:
        """Tell a design evaluated before (``prev``, from :meth:`repeat_of`) its known values
        without evaluating it again: not trained, not counted towards ``--trials``. After
        :data:`REPEATS_IN_A_ROW` in a row, :attr:`exhausted` tells the loop to stop."""
        number, values, fields = prev
        rec = cand.rec.merged(**fields)
        self.record(trial, rec.merged(feasible=True, trained=False, repeat_of=number, reason=(
            f"repeat of trial {number}: told its values, not evaluated again")))
        self._constraints(trial, rec)
        self.study.tell(trial, values)
        self.counts["repeated"] = self.counts.get("repeated", 0) + 1
        self.repeats_in_a_row += 1
        if self.repeats_in_a_row >= REPEATS_IN_A_ROW:
            self.exhausted = True
            self.progress(StageProgress("exhausted", repeats=self.repeats_in_a_row))

    # ------------------------------------------------------------------ training
    def start(self, trial: Any, cand: Candidate) -> None:
        """Mark ``trial`` as going into training (it counts towards ``--trials``)."""
        self.rejected_in_a_row = 0
        self.repeats_in_a_row = 0
        self.record(trial, cand.rec.merged(trained=True))
        self.progress(TrialStarted(trial.number, cand.params, trial.user_attrs.get("baseline") or "",
                                   self.settings.train.epochs, cand.rec.to_attrs()))

    def costs_of(self, rec: record.TrialRecord | dict[str, Any]) -> list[float]:
        """The cost-objective values of a record (the stopper's view of a design)."""
        return [float(rec.get(m)) for m in self.settings.cost_objectives]

    def epoch(self, trial: Any, epoch: int, accuracy: float, loss: float | None,
              costs: list[float]) -> str | None:
        """Report one epoch; → the reason to stop the trial now, or None."""
        self.progress(EpochEnded(trial.number, epoch, accuracy, loss))
        return self.should_stop(bool(trial.user_attrs.get("baseline")), costs, epoch, accuracy,
                                trial.number)

    def should_stop(self, baseline: bool, costs: list[float], epoch: int, accuracy: float,
                    number: int | None = None) -> str | None:
        """The scheduler's verdict on a running trial: a reason to stop it, or None.

        Baselines always train to the end (they are the reference the front is read against).
        """
        if self.deadline is not None and time.monotonic() > self.deadline:
            return f"stopped by --timeout after epoch {epoch}"  # bounds a running trial too
        if self.stopper is None or not self.settings.early_stop or baseline:
            return None
        return self.stopper.check(costs, epoch, accuracy, number)

    def complete(self, trial: Any, rec: record.TrialRecord, curve: list[float],
                 outcome: record.Outcome) -> None:
        """Tell a trial trained to the end with its training ``outcome``."""
        self.timings["train"] += float(outcome.seconds or 0.0)
        rec = rec.merged(curve=list(curve), feasible=True, reason="").update(outcome.to_attrs())
        self.record(trial, rec)
        self._constraints(trial, rec)
        values = st.values_for(self.settings.objectives, rec.to_attrs())
        self.study.tell(trial, values)
        if self.seen is not None:
            self.seen.setdefault(_design_key(rec.choices), (trial.number, values,
                                                            rec.pick(REPEATED_FIELDS)))
        if self.stopper is not None:
            self.stopper.add(trial.number, self.costs_of(rec), curve)
        self.counts["complete"] += 1
        self.progress(TrialEnded(trial.number, "complete", self.row(trial), accuracy=outcome.accuracy,
                                 seconds=outcome.seconds))
        self.write_outputs(report=False)

    def stop(self, trial: Any, state: str, curve: list[float], reason: str, *,
             seconds: float = 0.0, rec: record.TrialRecord | None = None,
             requeue: bool = False) -> None:
        """Tell a trial that ended early: ``state`` "PRUNED" (stopped) or "FAIL" (error).

        ``requeue``: interrupted, so not counted as trained and its design queued again.
        """
        self.timings["train"] += seconds
        rec = (rec or record.TrialRecord()).merged(
            curve=list(curve), epochs=len(curve), seconds=round(seconds, 3), reason=reason,
            feasible=True, trained=not requeue, accuracy=curve[-1] if curve else None)
        self.record(trial, rec)
        self.study.tell(trial, state=TrialState[state])
        if state == "PRUNED" and self.stopper is not None and curve:
            self.stopper.add_partial(trial.number, self.costs_of(
                record.TrialRecord.from_trial(trial).update(rec)), curve)
        if requeue:
            self.requeue(trial.params, trial.user_attrs)
        self.counts["pruned" if state == "PRUNED" else "failed"] += 1
        self.progress(TrialEnded(trial.number, state.lower(), self.row(trial), reason=reason))
        self.write_outputs(report=False)

    # ------------------------------------------------------------------ interruption
    def requeue(self, params: dict[str, Any], user_attrs: dict[str, Any]) -> None:
        """Queue an interrupted trial's design again (it runs first on ``--resume``)."""
        self.study.enqueue_trial(params, user_attrs={k: v for k, v in user_attrs.items()
                                                     if k == "baseline"})

    def fail_running(self, reason: str) -> None:
        """Tell FAIL for this process's trials still RUNNING (interrupted outside training)."""
        me = st.owner()
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("owner") == me:
                st.fail_trial(self.study, t, reason)
                self.requeue(t.params, t.user_attrs)

    def load_history(self) -> None:
        """On resume: fail trials of dead processes (and retry their designs); feed the stopper."""
        for t in st.fail_interrupted(self.study):
            if t.user_attrs.get("choices") is not None:
                self.requeue(t.params, t.user_attrs)
        if self.stopper is None:
            return
        for t in self.study.get_trials(deepcopy=False,
                                       states=(TrialState.COMPLETE, TrialState.PRUNED)):
            ua = t.user_attrs
            if ua.get("feasible") and ua.get("curve"):
                add = self.stopper.add if t.state == TrialState.COMPLETE else self.stopper.add_partial
                add(t.number, [ua[m] for m in self.settings.cost_objectives], ua["curve"])

    # ------------------------------------------------------------------ outputs
    def write_outputs(self, *, report: bool) -> list[dict[str, Any]]:
        """Rewrite trials.csv and pareto.*; with ``report`` also report.html and pareto.png."""
        rows = results.load_rows(self.study)
        front = results.write_tables(self.run, rows, self.choice_names, self.settings.objectives,
                                     self.study.user_attrs.get(record.ANSWER))
        if report:
            from nasl.report import write_report

            write_report(self.run, rows, self.settings.objectives, self.settings.budgets)
        self.progress(FrontWritten(len(front), rows, final=report, run=self.run if report else None))
        return front
