"""Multi-fidelity schedulers for the multi-objective search: which running trial to stop.

Optuna refuses pruning in multi-objective studies (its issue #3450) and Ray Tune's schedulers
take one metric, so nasl decides itself. Every scheduler here has the interface of
:class:`~nasl.search.early_stop.EarlyStopper`, so both backends drive them the same way:

- ``check(costs, epoch, accuracy, number=None) -> reason | None`` after each epoch of a
  running trial (a reason means: stop it, record it PRUNED with that reason);
- ``add(number, costs, curve)`` when a trial completes (its full curve);
- ``add_partial(number, costs, curve)`` when a trial was stopped or failed (its partial curve).

``costs`` are the cost objectives in ``cost_metrics`` order (all minimised, known before
training), ``curve`` the validation accuracy after epoch 1, 2, ... (0..1), ``epoch`` 1-based.

Names (:data:`SCHEDULERS`, for ``--scheduler``):

- ``auto`` (the default): ``asha`` when trials train at least
  :data:`nasl.common.vocab.AUTO_ASHA_EPOCHS` (9) epochs, else ``front`` (see docs/search.md).
- ``none``: never stops; every candidate trains to the end.
- ``front``: today's rule, :class:`EarlyStopper` unchanged: stop a trial when a finished
  front member that costs no more was more than ``margin`` more accurate at the same epoch.
- ``asha``: multi-objective asynchronous successive halving (:class:`SuccessiveHalving`),
  after MOASHA (Salinas et al., "A multi-objective perspective on jointly tuning hardware and
  hyperparameters", NAS workshop at ICLR 2021; Syne Tune's ``MOASHA`` and
  ``NonDominatedPriority``), in stopping form; a trial on the rung's first non-dominated
  front always continues.
- ``asha-strict``: the same without that protection (:class:`StrictSuccessiveHalving`): only
  the top ``floor(n / eta)`` by multi-objective rank continue, as in MOASHA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from nasl.common import vocab
from nasl.common.errors import NaslError
from nasl.search.early_stop import EarlyStopper
from nasl.stats.pareto import non_dominated_sort

__all__ = ["DEFAULT_SCHEDULER", "SCHEDULERS", "FrontScheduler", "NoScheduler", "Scheduler",
           "StrictSuccessiveHalving", "SuccessiveHalving", "crowding_distance", "make_scheduler",
           "mo_order"]

#: Scheduler names accepted by :func:`make_scheduler` (and ``--scheduler``).
SCHEDULERS: tuple[str, ...] = vocab.SCHEDULERS
#: The default (see docs/search.md and docs/benchmarks.md for the measurement behind it).
DEFAULT_SCHEDULER = vocab.DEFAULT_SCHEDULER


@runtime_checkable
class Scheduler(Protocol):
    """What the Optuna loop and the Ray driver call (see the module docstring)."""

    name: ClassVar[str]

    def check(self, costs: Sequence[float], epoch: int, accuracy: float,
              number: int | None = None) -> str | None: ...

    def add(self, number: int, costs: Sequence[float], curve: Sequence[float]) -> None: ...

    def add_partial(self, number: int, costs: Sequence[float], curve: Sequence[float]) -> None: ...

    def settings(self) -> dict[str, Any]: ...


@dataclass
class NoScheduler:
    """``none``: never stops a trial (every candidate trains all ``epochs``)."""

    cost_metrics: Sequence[str] = ()
    epochs: int = 1
    name: ClassVar[str] = "none"

    def check(self, costs: Sequence[float], epoch: int, accuracy: float,
              number: int | None = None) -> str | None:
        """Always None: keep training."""
        return None

    def add(self, number: int, costs: Sequence[float], curve: Sequence[float]) -> None:
        """Nothing to remember."""

    def add_partial(self, number: int, costs: Sequence[float], curve: Sequence[float]) -> None:
        """Nothing to remember."""

    def settings(self) -> dict[str, Any]:
        """``{"scheduler": "none"}`` (for env.json)."""
        return {"scheduler": self.name}


@dataclass
class FrontScheduler(EarlyStopper):
    """``front``: :class:`EarlyStopper` with the shared interface; its decisions are unchanged.

    ``number`` is accepted and ignored, and stopped trials are not remembered
    (``add_partial`` does nothing): the rule compares with finished trials only, as before.
    """

    name: ClassVar[str] = "front"

    def check(self, costs: Sequence[float], epoch: int, accuracy: float,
              number: int | None = None) -> str | None:
        """EarlyStopper's reason to stop, or None."""
        return super().check(costs, epoch, accuracy)

    def add_partial(self, number: int, costs: Sequence[float], curve: Sequence[float]) -> None:
        """Ignored: the front rule only learns from finished trials."""

    def settings(self) -> dict[str, Any]:
        """Name, margin and first epoch that may stop (for env.json)."""
        return {"scheduler": self.name, "margin": self.margin, "min_epochs": self.min_epochs}


def crowding_distance(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II crowding distance (Deb et al. 2002) of the points of one front.

    In: rows of objective values (any direction: the distance only uses gaps). Out: one
    distance per row: the sum over objectives of the gap between its two neighbours along
    that objective divided by the objective's range; the first and last rows along any
    objective with a non-zero range get ``inf`` (ties in value: the lower index comes first).
    Fronts of one or two points are all ``inf``.
    """
    n = len(points)
    dist = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for j in range(len(points[0])):
        order = sorted(range(n), key=lambda i: (points[i][j], i))
        lo, hi = points[order[0]][j], points[order[-1]][j]
        if hi <= lo:
            continue
        dist[order[0]] = dist[order[-1]] = math.inf
        for k in range(1, n - 1):
            dist[order[k]] += (points[order[k + 1]][j] - points[order[k - 1]][j]) / (hi - lo)
    return dist


def mo_order(accuracies: Sequence[float], costs: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Multi-objective ranking of trials at one rung, best first.

    In: each trial's accuracy (maximised) and costs (minimised), aligned. Out: ``(index,
    front)`` pairs, best first, ``front`` 0 for the non-dominated trials. Order: by
    non-dominated front (:func:`nasl.stats.pareto.non_dominated_sort` on accuracy and costs);
    within a front by crowding distance on (accuracy, costs), largest first (the front's
    extremes, e.g. its most accurate and its cheapest trial, come first: they keep the front
    wide); then by higher accuracy; then by lower index (earlier recorded).
    """
    points = [[float(a), *map(float, c)] for a, c in zip(accuracies, costs, strict=True)]
    if not points:
        return []
    directions = ["maximize"] + ["minimize"] * (len(points[0]) - 1)
    out: list[tuple[int, int]] = []
    for f, members in enumerate(non_dominated_sort(points, directions)):
        crowd = crowding_distance([points[i] for i in members])
        ranked = sorted(range(len(members)), key=lambda k: (-crowd[k], -points[members[k]][0],
                                                            members[k]))
        out.extend((members[k], f) for k in ranked)
    return out


@dataclass
class SuccessiveHalving:
    """``asha``: multi-objective asynchronous successive halving, in stopping form.

    Rungs are the epochs ``r_min * eta**k`` (k = 0, 1, ..., rounded) below ``epochs``; the
    last epoch is never a rung, so a trial is never stopped after its last epoch, and nothing
    is stopped before ``r_min`` (the grace period). When a trial reaches a rung, it is ranked
    with every trial recorded at that rung so far (:func:`mo_order`: non-dominated sorting of
    accuracy at the rung and the costs, crowding distance within a front). With ``n`` trials
    at the rung counting this one, it continues when it is among the top ``floor(n / eta)``,
    or when it is on the first non-dominated front at the rung (stopping it could remove a
    point of the front; :class:`StrictSuccessiveHalving` drops this rule). While ``n < eta``
    it continues anyway (asynchronous promotion: too few results for a top-1/eta cut, so the
    first arrivals go on; Syne Tune's MOASHA continues only the very first arrival and ranks
    from the second on).

    A trial is recorded at a rung by ``add``/``add_partial`` (every rung its curve reached),
    and also by ``check`` when ``number`` is given (trials running at once see each other;
    a later ``add`` replaces the entry). A cheaper but less accurate trial stays on the first
    front, so it continues where a single-objective ASHA would stop it.

    Args:
        cost_metrics: names of the cost objectives (all minimised), e.g. ("macs",).
        epochs: planned epochs per trial.
        eta: reduction factor (> 1): about 1/eta of the trials go on at each rung.
        r_min: first rung, in epochs (>= 1).
        warmup: how many first arrivals at a rung always continue (None: while fewer than
            ``eta`` have reported, i.e. ``ceil(eta) - 1``; MOASHA's rule is 1).
    """

    cost_metrics: Sequence[str]
    epochs: int
    eta: float = 3
    r_min: int = 1
    warmup: int | None = None
    name: ClassVar[str] = "asha"
    protect_front: ClassVar[bool] = True
    records: dict[int, dict[int, tuple[float, tuple[float, ...]]]] = field(default_factory=dict)
    rungs: tuple[int, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if not 1 < self.eta < math.inf:
            raise ValueError(f"reduction factor eta={self.eta}: expected a finite number > 1")
        if int(self.r_min) != self.r_min or self.r_min < 1:
            raise ValueError(f"first rung r_min={self.r_min}: expected a whole number of epochs >= 1")
        if self.warmup is None:
            self.warmup = math.ceil(self.eta) - 1
        elif int(self.warmup) != self.warmup or self.warmup < 1:
            raise ValueError(f"warmup={self.warmup}: expected a whole number of trials >= 1")
        rungs: list[int] = []
        k = 0
        while (r := round(self.r_min * self.eta ** k)) < self.epochs:
            if not rungs or r > rungs[-1]:
                rungs.append(r)
            k += 1
        self.rungs = tuple(rungs)
        for r in self.rungs:
            self.records.setdefault(r, {})

    def rung_of(self, epoch: int) -> int | None:
        """1-based rung number of ``epoch``, or None when no decision is taken there."""
        return self.rungs.index(epoch) + 1 if epoch in self.rungs else None

    def _costs(self, costs: Sequence[float]) -> tuple[float, ...]:
        if len(costs) != len(self.cost_metrics):
            raise ValueError(f"got {len(costs)} costs for the cost objectives "
                             f"{list(self.cost_metrics)}")
        return tuple(float(c) for c in costs)

    def add(self, number: int, costs: Sequence[float], curve: Sequence[float]) -> None:
        """Record a completed trial at every rung (its full curve)."""
        self.add_partial(number, costs, curve)

    def add_partial(self, number: int, costs: Sequence[float], curve: Sequence[float]) -> None:
        """Record a stopped or failed trial at the rungs its curve reached."""
        c = self._costs(costs)
        for r in self.rungs:
            if r <= len(curve) and curve[r - 1] is not None and math.isfinite(curve[r - 1]):
                self.records[r][number] = (float(curve[r - 1]), c)

    def check(self, costs: Sequence[float], epoch: int, accuracy: float,
              number: int | None = None) -> str | None:
        """Reason to stop a trial at ``epoch`` with ``costs`` and ``accuracy``, or None."""
        rung = self.rung_of(epoch)
        if rung is None:
            return None
        c = self._costs(costs)
        if not math.isfinite(accuracy):
            return f"stopped at rung {rung} (epoch {epoch}): accuracy is {accuracy}"
        recorded = self.records[epoch]
        others = [v for k, v in recorded.items() if k != number]
        if number is not None:
            recorded[number] = (float(accuracy), c)
        n = len(others) + 1
        assert self.warmup is not None
        if n <= self.warmup:
            return None
        keep = max(1, math.floor(n / self.eta + 1e-9))
        order = mo_order([a for a, _ in others] + [accuracy], [x for _, x in others] + [c])
        pos, front = next((p + 1, f) for p, (i, f) in enumerate(order) if i == n - 1)
        if pos <= keep or (front == 0 and self.protect_front):
            return None
        return (f"stopped at rung {rung} (epoch {epoch}): rank {pos} of {n} at this rung "
                f"(non-dominated front {front + 1}), top {keep} continue")

    def settings(self) -> dict[str, Any]:
        """Name, reduction factor, first rung and rungs (for env.json)."""
        return {"scheduler": self.name, "eta": self.eta, "r_min": self.r_min,
                "rungs": list(self.rungs), "warmup": self.warmup,
                "protect_front": self.protect_front}


@dataclass
class StrictSuccessiveHalving(SuccessiveHalving):
    """``asha-strict``: :class:`SuccessiveHalving` where only the top ``floor(n / eta)``
    continue, even when more trials are on the rung's first non-dominated front (MOASHA's rule;
    the crowding distance then decides within the front)."""

    name: ClassVar[str] = "asha-strict"
    protect_front: ClassVar[bool] = False


def make_scheduler(name: str, cost_metrics: Sequence[str], epochs: int, *,
                   margin: float | None = None, min_epochs: int | None = None,
                   eta: float | None = None, r_min: int | None = None) -> Scheduler:
    """A scheduler by name (one of :data:`SCHEDULERS`) for trials of ``epochs`` epochs.

    Options left None take their defaults; an option the chosen scheduler does not use is
    ignored (``margin``, ``min_epochs``: front; ``eta``, ``r_min``: asha, asha-strict). Raises
    :class:`NaslError` (one line) for an unknown name or a bad value.
    """
    key = str(name).strip().lower()
    halving_options = eta is not None or r_min is not None
    if key == "auto":  # a reduction factor or grace period asks for successive halving
        key = "asha" if epochs >= vocab.AUTO_ASHA_EPOCHS or halving_options else "front"
    if key in ("none", "front") and halving_options:
        raise NaslError(f"--reduction-factor/--grace-period apply to --scheduler asha or "
                        f"asha-strict, not {key}")
    if key == "none":
        return NoScheduler(tuple(cost_metrics), epochs)
    if key == "front":
        if margin is not None and not 0 < margin < 1:
            raise NaslError(f"scheduler front: margin {margin}: expected a number between 0 and 1")
        if min_epochs is not None and min_epochs < 1:
            raise NaslError(f"scheduler front: min_epochs {min_epochs}: expected an integer >= 1")
        return FrontScheduler(tuple(cost_metrics), epochs,
                              **({} if margin is None else {"margin": margin}),
                              min_epochs=min_epochs)
    if key in ("asha", "asha-strict"):
        cls = SuccessiveHalving if key == "asha" else StrictSuccessiveHalving
        try:
            return cls(tuple(cost_metrics), epochs,
                                     **({} if eta is None else {"eta": eta}),
                                     **({} if r_min is None else {"r_min": r_min}))
        except ValueError as e:
            raise NaslError(f"scheduler {key}: {e}") from None
    raise NaslError(f"--scheduler {name!r}: expected one of {', '.join(SCHEDULERS)}")
