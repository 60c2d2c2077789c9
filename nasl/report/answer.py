"""The run's answer in a few words: which design to pick and how sure that is.

In: trial rows and objectives (as for :mod:`nasl.report.tables`). Out: a short list of
sentences for the top of report.html. The pick is the verdict's ``recommendation`` when the
noise analysis gives one, else the knee among the confident front members
(:func:`nasl.run.verdict.front_verdict`), else the knee of the plain front
(:func:`nasl.stats.pareto.knee`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasl.report.rows import (
    Objectives,
    Row,
    design_columns,
    fmt_acc,
    fmt_latency,
    format_count,
    front_indices,
    num,
    row_baseline,
    row_choices,
)
from nasl.stats import pareto


def verdict_of(trials: Sequence[Row], objectives: Objectives) -> tuple[list[Row], dict[str, Any] | None]:
    """(rows with seed statistics and the front marked, the front's verdict or None)."""
    from nasl.run import verdict

    rows = [dict(r) for r in trials]
    verdict.add_seed_stats(rows)
    for i in front_indices(rows, objectives):
        rows[i]["pareto"] = True
    return rows, verdict.front_verdict(rows, list(objectives))


def _chosen(rows: list[Row], objectives: Objectives, conf: dict[str, Any] | None) -> tuple[Row, str] | None:
    """(the row to pick, why) or None when nothing completed."""
    by_number = {str(r.get("number")): r for r in rows}
    rec = (conf or {}).get("recommendation")
    if isinstance(rec, dict) and str(rec.get("trial", rec.get("name"))) in by_number:
        why = str(rec.get("reason") or "the noise analysis' recommendation")
        return by_number[str(rec.get("trial", rec.get("name")))], why
    if isinstance(rec, (str, int)) and str(rec) in by_number:
        return by_number[str(rec)], "the noise analysis' recommendation"
    if conf and conf.get("knee") is not None and str(conf["knee"]) in by_number:
        return by_number[str(conf["knee"])], ("the knee among the front members that are not tied "
                                              "within noise with a cheaper one: it gives up least "
                                              "in any objective")
    front = front_indices(rows, objectives)
    if not front:
        return None
    points = [[num(rows[i], m) or 0.0 for m, _ in objectives] for i in front]
    k = pareto.knee(points, [d for _, d in objectives])
    return rows[front[k]], "the knee of the front (no noise analysis: train with --seeds 2 or " \
                           "--confirm-seeds to have one)"


def run_answer(run: str | None) -> dict[str, Any] | None:
    """The run's answer (recommendation and claims, docs/claims.md) from its pareto.json."""
    import json
    from pathlib import Path

    if run is None:
        return None
    try:
        return json.loads((Path(run) / "pareto.json").read_text()).get("answer") or None
    except (OSError, ValueError, AttributeError):
        return None


def answer_lines(trials: Sequence[Row], objectives: Objectives, run: str | None = None) -> list[str]:
    """Sentences that say what to pick: the design, its numbers, why, and how to export it.
    With the confirmation's answer in ``run``'s pareto.json, that answer (recommendation,
    claims, rule) and the export commands of its picks."""
    ans = run_answer(run)
    if ans and ans.get("recipes"):
        from nasl.decide.answer import lines

        where = run or "runs/<name>"
        picks = {p["tradeoff"]: p for p in ans.get("recommendation", [])}
        return [*(ln.strip() for ln in lines(ans)),
                *(f"Export the {p['label']} pick: nasl export {where} --pick {k}"
                  for k, p in picks.items())]
    rows, conf = verdict_of(trials, objectives)
    chosen = _chosen(rows, objectives, conf)
    if chosen is None:
        return ["No completed trial yet: nothing to pick."]
    row, why = chosen
    base = row_baseline(row)
    name = f"trial {row.get('number')}" + (f" (baseline {base})" if base else "")
    numbers = [f"accuracy {fmt_acc(row)}", f"{format_count(num(row, 'macs'))} MACs"]
    if num(row, "latency_ms") is not None:
        numbers.append(f"{fmt_latency(row)} ms")
    lines = [f"Pick {name}: {', '.join(numbers)}; {row_choices(row, design_columns(rows))}.",
             f"Why: {why}."]
    beaten = [b for b in (conf or {}).get("baselines", []) if b.get("beaten_by")]
    if conf and conf.get("baselines"):
        lines.append(f"{len(beaten)} of {len(conf['baselines'])} baselines beaten beyond noise "
                     "by a searched design.")
    where = run or "runs/<name>"
    lines.append(f"Export it: nasl export {where} --trial {row.get('number')}")
    return lines
