"""After the search: confirm what can change the answer at higher fidelity, decide the claims,
and re-time the front in interleaved rounds.

In: a finished (or interrupted-and-resumed) :class:`~nasl.search.session.Session`. Out: three
study user attributes that :func:`nasl.run.results.load_rows` and the outputs read:

- ``decide`` (:data:`nasl.common.record.DECIDE`): per recipe, trial number → the fresh seeds, their
  accuracies on the holdout and each image's result (packed bits). The designs that can
  change the answer (:func:`nasl.decide.priority`: the top of the front, the knee, each
  baseline with the designs that could beat or match it) are trained again at the
  confirmation fidelity — ``confirm_epochs`` epochs on the search's training *and* validation
  images — and scored on the holdout no selection step used, sequentially within
  ``confirm_budget`` trainings (:func:`nasl.decide.run`). Each result is stored as soon as it
  is known; a resumed run replays them and goes on.
- ``final_latency`` (:data:`nasl.common.record.FINAL_LATENCY`): the front and the confirmed designs
  timed in ``rounds`` interleaved rounds (every design once per round, the order rotated each
  round); each keeps its round medians, their median and a 95 % interval.
- ``answer`` (:data:`nasl.common.record.ANSWER`): the recommendation and the claims
  (:mod:`nasl.decide.answer`), decided with the final latencies.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from nasl.common import record
from nasl.common.events import StageProgress
from nasl.decide import Arm, Plan, Sample, claims_of, images_split, priority, recommend, run
from nasl.decide.answer import answer as make_answer
from nasl.run import results, verdict
from nasl.search.objective import seed_list
from nasl.training import recipes

ROUNDS = 5
#: Index of the first fresh seed of the confirmation (search: 0, --seeds K: 0..K-1).
FRESH = 1000


def recipes_of(session: Any) -> list[tuple[str, recipes.Recipe]]:
    """(label, recipe) the confirmation trains under: the run's, then ``--confirm-recipe``."""
    from nasl.search.options import recipe_of

    main = recipe_of(session.space, session.opts)
    out = [(main.label, main)]
    second = session.opts.confirm_recipe
    if second and second != main.label:
        out.append((second, recipes.resolve(second)))
    return out


def plan_of(session: Any, n_recipes: int) -> Plan:
    """The confirmation plan of the run's options, the budget and α shared by the recipes."""
    o = session.opts
    return Plan(budget=max(0, int(o.confirm_budget) // n_recipes), seeds=max(1, int(o.confirm_seeds)),
                max_designs=o.confirm_max, margin=o.margin / 100, alpha=o.alpha / n_recipes,
                correction=o.correction)


def arms_of(rows: list[dict[str, Any]], objectives: Any) -> list[Arm]:
    """Feasible COMPLETE rows as decision arms (latency with its interval when an objective)."""
    use_lat = "latency_ms" in dict(objectives)
    out = []
    for r in rows:
        if r.get("state") != "COMPLETE" or not r.get("feasible") or r.get("accuracy") is None:
            continue
        out.append(Arm(str(r["number"]), float(r["macs"]),
                       verdict.latency_stats(r) if use_lat else None,
                       r.get("baseline") or None, float(r["accuracy"])))
    return out


def _unpack(hexes: list[str], n: int) -> np.ndarray | None:
    """Each seed's per-image results (seeds × ``n`` images, uint8 0/1); None when one is missing."""
    if not hexes or any(not h for h in hexes):
        return None
    return np.stack([np.unpackbits(np.frombuffer(bytes.fromhex(h), dtype=np.uint8))[:n] for h in hexes])


def samples_of(store: dict[str, Any]) -> dict[str, Sample]:
    """The stored designs of one recipe as Samples (per-image shares and each seed's per-image
    results when stored)."""
    out = {}
    for n, d in store.get("designs", {}).items():
        if d.get("accuracies"):
            bits = _unpack(d.get("correct", []), int(d.get("images", 0)))
            out[n] = Sample(tuple(d["accuracies"]), None if bits is None else bits.mean(axis=0), bits)
    return out


def confirm(session: Any) -> list[int]:
    """Train what can change the answer at higher fidelity → the confirmed trial numbers."""
    opts, log, study = session.opts, session.log, session.study
    if int(opts.confirm_seeds or 0) <= 0 or int(opts.confirm_budget or 0) <= 0:
        return []
    objectives = session.settings.objectives
    rows = results.load_rows(study)
    results.mark_front(rows, objectives)
    arms = arms_of(rows, objectives)
    front = [str(r["number"]) for r in rows if r["pareto"]]
    knee = verdict.low_fidelity_knee(rows, objectives)
    which = recipes_of(session)
    plan = plan_of(session, len(which))
    order = priority(arms, front, knee, plan.margin, plan.contender)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    epochs = session.confirm_epochs
    confirmed: list[int] = []
    for ri, (label, recipe) in enumerate(which):
        calls: dict[str, int] = {}

        def train(name: str, label: str = label, recipe: recipes.Recipe = recipe, ri: int = ri,
                  calls: dict[str, int] = calls) -> Sample:
            store = dict(study.user_attrs.get(record.DECIDE, {}))
            mine = dict(store.get(label, {"epochs": epochs, "describe": recipe.describe(epochs),
                                          "designs": {}}))
            designs = dict(mine["designs"])
            have = dict(designs.get(name, {"seeds": [], "accuracies": [], "correct": []}))
            calls[name] = calls.get(name, 0) + 1
            if calls[name] > len(have["accuracies"]):  # not stored yet: train it now
                t = trials[int(name)]
                seed = seed_list(int(t.user_attrs["seed"]), 1, FRESH + 100 * ri + calls[name] - 1)[0]
                acc, mask = session.evaluator.confirm_train(t.user_attrs["choices"], seed, epochs,
                                                            recipe)
                bits = np.packbits(np.asarray(mask, dtype=bool)).tobytes().hex() if mask is not None else ""
                have = {"seeds": [*have["seeds"], seed], "accuracies": [*have["accuracies"], acc],
                        "correct": [*have.get("correct", []), bits],
                        "images": int(len(mask)) if mask is not None else 0}
                designs[name] = have
                mine["designs"] = designs
                store[label] = mine
                study.set_user_attr(record.DECIDE, store)  # stored at once: resumable
            return samples_of({"designs": {name: have}})[name]

        def step(name: str, done: int, total: int, label: str = label) -> None:
            log.progress(StageProgress("confirm", number=int(name), done=done, total=total,
                                       epochs=epochs, recipe=label))

        t0 = time.perf_counter()
        d = run(arms, order, train, plan, recipe=label, epochs=epochs, on_step=step)
        log.timings["confirm"] = log.timings.get("confirm", 0.0) + time.perf_counter() - t0
        confirmed += [int(n) for n in d.samples]
    return list(dict.fromkeys(confirmed))


def finalize(session: Any) -> dict[str, Any] | None:
    """Decide the claims and the recommendation on the stored confirmation with the final
    latencies → the answer (also stored as the study's ``answer`` attribute)."""
    study = session.study
    store = study.user_attrs.get(record.DECIDE, {})
    if not store:
        return None
    objectives = session.settings.objectives
    rows = results.load_rows(study)
    arms = arms_of(rows, objectives)
    which = [w for w in recipes_of(session) if w[0] in store] or [(k, None) for k in store]
    plan = plan_of(session, len(which))
    names = {str(r["number"]): (r.get("baseline") or f"#{r['number']}") for r in rows}
    per = []
    for label, _ in which:
        samples = samples_of(store[label])
        confirmed = [a for a in arms if a.name in samples]
        claims = claims_of(confirmed, samples, plan)  # the family as run() fixed it
        table = getattr(session.space, "family", None) == "table"  # looked up, not trained
        per.append({"label": label, "describe": "table lookup" if table else
                    store[label].get("describe", label),
                    "epochs": store[label].get("epochs"),
                    "scored_on": "the table's values (and the space's noise)" if table
                    else session.scored_on,
                    "claims": claims, "picks": recommend(confirmed, samples, plan.margin, plan.alpha),
                    "images_split": images_split(samples, plan),
                    "spent": sum(s.n for s in samples.values()), "budget": plan.budget})
    ans = make_answer(per, names, margin=plan.margin, alpha=session.opts.alpha,
                      correction=plan.correction)
    study.set_user_attr(record.ANSWER, ans)
    return ans


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
    done, total = 0, rounds * len(todo)
    for r in range(rounds):
        order = todo[r % len(todo):] + todo[: r % len(todo)]
        for n in order:
            log.progress(StageProgress("remeasure", number=n, done=done, total=total, round=r + 1,
                                       rounds=rounds))
            lat = session.evaluator.latency(session.space.to_arch(trials[n].user_attrs["choices"]),
                                            repeats=repeats)
            medians[n].append(float(lat.median_ms))
            p10s[n].append(float(lat.p10_ms))
            p90s[n].append(float(lat.p90_ms))
            last[n] = lat
            done += 1
    log.timings["latency"] += time.perf_counter() - t0
    final = dict(study.user_attrs.get(record.FINAL_LATENCY, {}))
    for n in todo:
        stats = verdict.latency_stats({"latency_rounds_ms": medians[n]})
        assert stats is not None
        final[str(n)] = record.TrialRecord().with_latency(last[n]).update(
            latency_ms=statistics.median(medians[n]), latency_p10_ms=statistics.median(p10s[n]),
            latency_p90_ms=statistics.median(p90s[n]), latency_rounds_ms=medians[n],
            latency_low_ms=stats.low, latency_high_ms=stats.high,
            latency_search_ms=trials[n].user_attrs.get("latency_ms")).values()
    # Finished trials are read-only in Optuna: the final timings live on the study.
    study.set_user_attr(record.FINAL_LATENCY, final)
