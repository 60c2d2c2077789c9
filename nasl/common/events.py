"""What a search tells its listeners: typed events, and the listener's methods.

In: the search's trial log (:class:`nasl.search.lifecycle.TrialLog`), the confirmation and the
backends, which build these events. Out: calls on every listener (the live display, the W&B
tracker, the heartbeat): ``event.deliver(listener)`` calls the listener's method for that kind
of event. A listener subclasses :class:`Listener` and overrides the methods it cares about.
No torch, no Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


class Listener:
    """Receives a search's events; every method does nothing unless overridden."""

    def trial_started(self, event: TrialStarted) -> None:
        """A trial goes into training."""

    def epoch_ended(self, event: EpochEnded) -> None:
        """A training epoch of a trial ended (first seed)."""

    def trial_ended(self, event: TrialEnded) -> None:
        """A trial ended: complete, pruned, failed or rejected (over a budget)."""

    def stage(self, event: StageProgress) -> None:
        """The search moved on: a confirmation or re-timing step, a pre-screen decision, a
        timeout, an interruption, a stop, or a sampler that only repeats designs."""

    def front_written(self, event: FrontWritten) -> None:
        """trials.csv and pareto.* were rewritten (``final``: with the report, at the end)."""


@dataclass(frozen=True)
class Event:
    """Base of the events: :meth:`deliver` calls the listener method named by ``method``."""

    method: ClassVar[str] = ""

    def deliver(self, listener: Any) -> None:
        """Call ``listener``'s method for this event (a listener without it is skipped)."""
        fn = getattr(listener, self.method, None)
        if fn is not None:
            fn(self)


@dataclass(frozen=True)
class TrialStarted(Event):
    """Trial ``number`` goes into training with ``choices``; ``record``: what is known of it
    before training (:meth:`nasl.common.record.TrialRecord.to_attrs`: costs, latency, seed, arch id)
    and the epochs planned."""

    method: ClassVar[str] = "trial_started"
    number: int
    choices: dict[str, Any]
    baseline: str = ""
    epochs: int | None = None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EpochEnded(Event):
    """Epoch ``epoch`` (1-based) of trial ``number`` ended with this validation accuracy."""

    method: ClassVar[str] = "epoch_ended"
    number: int
    epoch: int
    accuracy: float
    loss: float | None = None


#: The ways a trial ends (:attr:`TrialEnded.state`).
ENDINGS = ("complete", "pruned", "fail", "rejected")


@dataclass(frozen=True)
class TrialEnded(Event):
    """Trial ``number`` ended in ``state`` (one of :data:`ENDINGS`); ``row`` is its trials.csv
    row as stored now; ``accuracy`` and ``seconds`` when complete, ``reason`` otherwise."""

    method: ClassVar[str] = "trial_ended"
    number: int
    state: str
    row: dict[str, Any] = field(default_factory=dict)
    accuracy: float | None = None
    seconds: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.state not in ENDINGS:
            raise ValueError(f"TrialEnded.state {self.state!r}: expected one of {ENDINGS}")


#: The stages (:attr:`StageProgress.stage`).
STAGES = ("confirm", "remeasure", "prescreen", "packing", "timeout", "interrupted", "stopped",
          "exhausted")


@dataclass(frozen=True)
class StageProgress(Event):
    """A step of a stage (one of :data:`STAGES`): ``done`` of ``total`` steps on trial
    ``number`` (confirmation: its ``seed``, ``epochs`` and ``recipe``; re-timing: ``round`` of
    ``rounds``), or a one-off with its ``reason`` (pre-screen: ``on``; exhausted: ``repeats``)."""

    method: ClassVar[str] = "stage"
    stage: str
    number: int | None = None
    done: int | None = None
    total: int | None = None
    seed: int | None = None
    epochs: int | None = None
    recipe: str | None = None
    round: int | None = None
    rounds: int | None = None
    reason: str | None = None
    on: bool | None = None
    repeats: int | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"StageProgress.stage {self.stage!r}: expected one of {STAGES}")


@dataclass(frozen=True)
class FrontWritten(Event):
    """The run's tables were rewritten: ``size`` front members among ``rows``; ``final`` once at
    the end, after report.html (then ``run`` is the run folder, a :class:`nasl.run.results.RunDir`)."""

    method: ClassVar[str] = "front_written"
    size: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    final: bool = False
    run: Any = None
