"""What a fidelity check concludes: rank agreement, top-k recall and the baseline claims.

In: per-design records (``number``, ``proxy_accuracy``, ``high_accuracy``, ``high_seeds``)
and the run's baseline verdicts (:func:`nasl.run.verdict.front_verdict`'s ``baselines``). Out:
JSON-ready dicts: Kendall τ-b and Spearman ρ of proxy vs high-fidelity accuracy with
percentile-bootstrap 95 % intervals (:mod:`nasl.zerocost.stats`), the recall of the proxy's
top k, and for every "trial t beats baseline b beyond noise" claim whether it still holds.
No torch, no Optuna.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasl.zerocost.stats import N_BOOT, correlate

DEFAULT_TOP_K = 3

#: Level of the re-judged claims as a family (Holm).
ALPHA = 0.05
#: How a claim is judged at high fidelity (written into fidelity.json): the confirmation's
#: rule (nasl.decide) — one-sided tests on fresh seeds, Holm over every claim of the check.
CLAIM_RULE = ("a claim 'trial t beats baseline b' holds when a one-sided t-test of t's "
              "high-fidelity seeds against b's (pooled seed std) rejects 'not more accurate' with "
              f"a Holm-adjusted p <= {ALPHA:g} over every claim of the check; it fails when the "
              "opposite test does; else it is undecided (never with one seed per design: the "
              "noise is unknown)")


def _ranked(designs: Sequence[dict[str, Any]], key: str) -> list[int]:
    """Trial numbers, best ``key`` first (ties: lower trial number first)."""
    return [int(d["number"]) for d in sorted(designs, key=lambda d: (-float(d[key]), int(d["number"])))]


def top_k_recall(designs: Sequence[dict[str, Any]], k: int = DEFAULT_TOP_K) -> dict[str, Any]:
    """Of the ``k`` best designs at high fidelity, the share that are in the proxy's top ``k``.

    ``k`` is capped at the number of designs. Out: ``k``, ``recall`` (None without designs),
    ``hits``, ``proxy_top``, ``high_top`` (trial numbers, best first) and ``chance`` (the
    expected recall of a random ranking, k/n).
    """
    n = len(designs)
    k = max(0, min(int(k), n))
    if k == 0:
        return {"k": 0, "n": n, "recall": None, "hits": 0, "proxy_top": [], "high_top": [],
                "chance": None}
    proxy_top = _ranked(designs, "proxy_accuracy")[:k]
    high_top = _ranked(designs, "high_accuracy")[:k]
    hits = len(set(proxy_top) & set(high_top))
    return {"k": k, "n": n, "recall": round(hits / k, 4), "hits": hits, "proxy_top": proxy_top,
            "high_top": high_top, "chance": round(k / n, 4)}


def rank_agreement(designs: Sequence[dict[str, Any]], *, n_boot: int = N_BOOT,
                   seed: int = 0) -> dict[str, Any]:
    """Spearman ρ and Kendall τ-b of proxy vs high-fidelity accuracy with 95 % bootstrap
    intervals (None where undefined: fewer than 3 designs or a constant accuracy)."""
    proxy = [float(d["proxy_accuracy"]) for d in designs]
    high = [float(d["high_accuracy"]) for d in designs]
    corr = correlate({"proxy_accuracy": proxy}, high, n_boot=n_boot, seed=seed)
    out = corr["proxy_accuracy"].to_dict()
    out.pop("metric", None)
    return out


def claims(designs: Sequence[dict[str, Any]], baselines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every "trial t beats baseline b beyond noise" claim of the proxy search, re-judged
    by :data:`CLAIM_RULE` (status ``holds``, ``undecided``, ``fails`` or ``not measured`` when
    its designs were not both re-trained).

    ``baselines``: dicts with ``name``, ``trial`` and ``beaten_by`` (trial numbers, as
    :func:`nasl.run.verdict.front_verdict` writes them).
    """
    from nasl.decide import Sample, adjust, pair_test, pooled

    by_number = {int(d["number"]): d for d in designs}
    samples = {n: Sample(tuple(float(x) for x in d["high_seeds"])) for n, d in by_number.items()}
    sd, dof = pooled(list(samples.values()))
    out, tests = [], []
    for b in baselines:
        bt = int(b["trial"])
        for t in (int(x) for x in b.get("beaten_by", [])):
            row: dict[str, Any] = {"baseline": b.get("name"), "baseline_trial": bt, "trial": t}
            if t in by_number and bt in by_number:
                row.update({
                    "proxy_accuracy": by_number[t]["proxy_accuracy"],
                    "baseline_proxy_accuracy": by_number[bt]["proxy_accuracy"],
                    "high_accuracy": by_number[t]["high_accuracy"],
                    "baseline_high_accuracy": by_number[bt]["high_accuracy"]})
                tests.append((row, pair_test(samples[t], samples[bt], sd, dof),
                              pair_test(samples[bt], samples[t], sd, dof)))
            else:
                row["status"] = "not measured"
            out.append(row)
    p_for = adjust([f.p for _, f, _ in tests])
    p_against = adjust([a.p for _, _, a in tests])
    for (row, fwd, _), pf, pa in zip(tests, p_for, p_against, strict=True):
        row["p_adjusted"] = round(pf, 6)
        row["status"] = ("holds" if fwd.testable and pf <= ALPHA else
                         "fails" if fwd.testable and pa <= ALPHA else "undecided")
    return out


def summarise(designs: Sequence[dict[str, Any]], baselines: Sequence[dict[str, Any]], *,
              top_k: int = DEFAULT_TOP_K, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any]:
    """``correlation``, ``top_k``, ``claims``, ``claims_summary`` and ``claim_rule`` of the
    finished ``designs`` (each needs ``proxy_accuracy``, ``high_accuracy``, ``high_seeds``)."""
    cl = claims(designs, baselines)
    counts = {s: sum(c["status"] == s for c in cl)
              for s in ("holds", "undecided", "fails", "not measured")}
    gains = [float(d["high_accuracy"]) - float(d["proxy_accuracy"]) for d in designs]
    return {"correlation": rank_agreement(designs, n_boot=n_boot, seed=seed),
            "top_k": top_k_recall(designs, top_k), "claims": cl, "claims_summary": counts,
            "claim_rule": CLAIM_RULE,
            "mean_gain": round(sum(gains) / len(gains), 4) if gains else None}
