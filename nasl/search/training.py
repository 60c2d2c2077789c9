"""Training one candidate, the same way in every backend.

In: an evaluator (:class:`nasl.search.objective.Evaluator`, or a tabular space's), a design's
choices and trial seed, the number of seeds and an epoch callback. Out: a
:class:`nasl.common.record.Outcome`. The first seed trains with the callback (which may raise
:class:`~nasl.search.objective.Stopped` to stop the trial early); the other seeds train to the
end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nasl.common.record import Outcome
from nasl.search.objective import seed_list


def train_candidate(evaluator: Any, params: dict[str, Any], seed: int, seeds: int,
                    on_epoch: Callable[[Any], None] | None) -> Outcome:
    """Train ``params`` with ``seeds`` seeds (``seed`` first) → its :class:`Outcome`."""
    t = time.perf_counter()
    result = evaluator.train(params, seed, on_epoch)
    accs = [float(result.final_accuracy)]
    if seeds > 1:  # the other seeds train to the end (no early stop)
        accs += evaluator.train_seeds(params, seed_list(seed, seeds - 1, 1))
    return Outcome.of(result, accs, time.perf_counter() - t)
