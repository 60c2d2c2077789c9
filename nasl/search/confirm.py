"""After the search: confirm the front with extra seeds, and re-time it in interleaved rounds.

In: a finished (or interrupted-and-resumed) :class:`~nasl.search.session.Session`. Out: two
study user attributes that :func:`nasl.results.load_rows` merges into the rows:

- ``confirm`` (:data:`nasl.record.CONFIRM`): trial number → the extra seeds and their final
  accuracies. The front members are trained again with ``confirm_seeds`` new seeds; then
  the run's pooled seed std is known and the designs off the front that no front member
  beats beyond noise (:func:`nasl.verdict.near_front`) get the same, closest first, up to
  ``confirm_max`` designs in all. Each result is stored as soon as it is known, so a killed
  confirmation resumes where it stopped (``nasl search --resume``).
- ``final_latency`` (:data:`nasl.record.FINAL_LATENCY`): the front and the designs tied with
  it are timed in ``rounds`` interleaved rounds (every design once per round, the order
  rotated each round), so slow drift of the machine hits all of them alike. Each design
  keeps its round medians, their median and a 95 % interval.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from nasl import record, results, verdict
from nasl.search.objective import seed_list

ROUNDS = 5


def confirm(session: Any) -> list[int]:
    """Train the front and the designs within noise of it with extra seeds → their numbers."""
    opts, log, study = session.opts, session.log, session.study
    extra = int(opts.confirm_seeds or 0)
    if extra <= 0:
        return []
    objectives = session.settings.objectives
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    chosen: list[int] = []

    def train(numbers: list[int]) -> None:
        for n in numbers:
            if n in chosen or len(chosen) >= opts.confirm_max:
                continue
            chosen.append(n)
            t = trials[n]
            done = dict(study.user_attrs.get(record.CONFIRM, {}))
            have = done.get(str(n), {"seeds": [], "accuracies": []})
            todo = extra - len(have["accuracies"])
            if todo <= 0:
                continue
            trained = len(t.user_attrs.get("accuracy_seeds") or [None])  # --seeds K: 0..K-1
            seeds = seed_list(int(t.user_attrs["seed"]), todo, trained + len(have["accuracies"]))
            for s in seeds:
                log.progress("confirm", {"number": n, "seed": s})
                t0 = time.perf_counter()
                acc = session.evaluator.train_seeds(t.user_attrs["choices"], [s])[0]
                log.timings["confirm"] = log.timings.get("confirm", 0.0) + time.perf_counter() - t0
                have = {"seeds": [*have["seeds"], s], "accuracies": [*have["accuracies"], acc]}
                done[str(n)] = have
                study.set_user_attr(record.CONFIRM, done)  # stored at once: resumable

    rows = results.load_rows(study)
    results.mark_front(rows, objectives)
    train([r["number"] for r in rows if r["pareto"]])
    rows = results.load_rows(study)  # now with the pooled seed std
    results.mark_front(rows, objectives)
    train([r["number"] for r in verdict.near_front(rows, objectives)])
    return chosen


def retime(session: Any, numbers: list[int] | None = None, rounds: int = ROUNDS) -> None:
    """Re-time the front (and ``numbers``) in ``rounds`` interleaved rounds; store the result."""
    if not session.settings.needs_latency:
        return
    log, study = session.log, session.study
    rows = results.load_rows(study)
    results.mark_front(rows, session.settings.objectives)
    todo = list(dict.fromkeys([r["number"] for r in rows if r["pareto"]] + list(numbers or [])))
    if not todo:
        return
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    repeats = max(5, session.opts.final_repeats // rounds)
    medians: dict[int, list[float]] = {n: [] for n in todo}
    p10s: dict[int, list[float]] = {n: [] for n in todo}
    p90s: dict[int, list[float]] = {n: [] for n in todo}
    last: dict[int, Any] = {}
    t0 = time.perf_counter()
    for r in range(rounds):
        order = todo[r % len(todo):] + todo[: r % len(todo)]
        for n in order:
            if r == 0:
                log.progress("remeasure", {"number": n})
            lat = session.evaluator.latency(session.space.to_arch(trials[n].user_attrs["choices"]),
                                            repeats=repeats)
            medians[n].append(float(lat.median_ms))
            p10s[n].append(float(lat.p10_ms))
            p90s[n].append(float(lat.p90_ms))
            last[n] = lat
    log.timings["latency"] += time.perf_counter() - t0
    final = dict(study.user_attrs.get(record.FINAL_LATENCY, {}))
    for n in todo:
        stats = verdict.latency_stats({"latency_rounds_ms": medians[n]})
        assert stats is not None
        final[str(n)] = {**record.latency_fields(last[n]),
                         "latency_ms": statistics.median(medians[n]),
                         "latency_p10_ms": statistics.median(p10s[n]),
                         "latency_p90_ms": statistics.median(p90s[n]),
                         "latency_rounds_ms": medians[n], "latency_low_ms": stats.low,
                         "latency_high_ms": stats.high,
                         "latency_search_ms": trials[n].user_attrs.get("latency_ms")}
    # Finished trials are read-only in Optuna: the final timings live on the study.
    study.set_user_attr(record.FINAL_LATENCY, final)
