"""Multi-objective early stopping (Optuna's pruners refuse multi-objective studies).

In: the learning curves and costs of finished trials, and a running trial's costs and
accuracy at epoch k. Out: a reason to stop it, or None.

A trial's costs (MACs, params, size, latency) are known before it trains, so the only
question is whether its accuracy can still put it on the front. It cannot plausibly do so
when a front member that costs no more on every cost objective was already more than
``margin`` more accurate at the same epoch k. Before ``min_epochs`` nothing is stopped:
small proxies are noisy early (see reference/proxy.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Finished:
    """A finished trial as the stopper sees it."""

    number: int
    costs: tuple[float, ...]
    curve: tuple[float, ...]  # validation accuracy after epoch 1, 2, ...
    final: float


@dataclass
class EarlyStopper:
    """Compares a running trial with the current front of cheaper-or-equal trials.

    Args:
        cost_metrics: names of the cost objectives (all minimised), e.g. ("macs", "latency_ms").
        epochs: planned epochs per trial.
        margin: accuracy gap (0..1) at the same epoch beyond which a trial is stopped.
        min_epochs: first epoch at which a trial may be stopped (default: a third of the run,
            at least 1, never the last epoch).
    """

    cost_metrics: Sequence[str]
    epochs: int
    margin: float = 0.02
    min_epochs: int | None = None
    finished: list[Finished] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.min_epochs is None:
            self.min_epochs = max(1, self.epochs // 3)

    def add(self, number: int, costs: Sequence[float], curve: Sequence[float]) -> None:
        """Record a finished, feasible trial (its full curve)."""
        if curve:
            self.finished.append(Finished(number, tuple(costs), tuple(curve), max(curve)))

    def front(self) -> list[Finished]:
        """Finished trials not dominated on (final accuracy, costs)."""
        out = []
        for a in self.finished:
            dominated = any(
                b.final >= a.final and all(x <= y for x, y in zip(b.costs, a.costs, strict=True))
                and (b.final > a.final or any(x < y for x, y in zip(b.costs, a.costs, strict=True)))
                for b in self.finished)
            if not dominated:
                out.append(a)
        return out

    def check(self, costs: Sequence[float], epoch: int, accuracy: float) -> str | None:
        """Reason to stop a trial with ``costs`` at ``epoch`` (1-based) and ``accuracy``."""
        assert self.min_epochs is not None
        if epoch < self.min_epochs or epoch >= self.epochs:
            return None
        for f in self.front():
            if len(f.curve) < epoch:
                continue
            cheaper = all(x <= y for x, y in zip(f.costs, costs, strict=True))
            gap = f.curve[epoch - 1] - accuracy
            if cheaper and gap > self.margin:
                return (f"early stop at epoch {epoch}: {accuracy:.1%} vs {f.curve[epoch - 1]:.1%} "
                        f"for front trial {f.number}, which costs no more")
        return None
