"""The run's answer as data and as text: recommendation first, then the claims.

In: per recipe, the confirmation's claims and picks, plus what the reader needs to weigh
them (recipe, fidelity, images scored on, rule). Out: :func:`answer` — a JSON-ready dict
(``pareto.json``'s first key, the report's opening) — and :func:`lines`, the terminal text.
Where a claim holds under one recipe and not another, the answer says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nasl.decide.claims import Claim, margin_text, sentence
from nasl.decide.recommend import Pick

LABELS = {"accurate": "most accurate within budget", "fast": "fastest within δ of the best",
          "knee": "knee (balanced)"}


#: How the holdout images were used, by how many recipes split them (all, none, some).
IMAGES = {
    "all": "the choice read half of the held-out images, the tests the other half",
    "none": "the choice and the tests read every held-out image (no per-image results stored: a "
            "design lucky on those images when chosen stays lucky in its tests)",
    "some": "the choice read half of the held-out images, the tests the other half, except under "
            "{which} (no per-image results stored: both read every image)",
}


def rule_text(margin: float, alpha: float, correction: str, recipes: int,
              unsplit: Sequence[str] = ()) -> str:
    """How claims are decided, in one sentence (stored in pareto.json); ``unsplit``: the
    recipes whose selection and tests share every holdout image (no per-image results)."""
    corr = {"holm": "Holm (family-wise error)", "bh": "Benjamini-Hochberg (false discovery rate)"}
    per = f", α split over {recipes} recipes" if recipes > 1 else ""
    how = ("all" if not unsplit else "none" if len(unsplit) >= recipes else "some")
    images = IMAGES[how].format(which=", ".join(unsplit))
    return (f"one-sided t-tests on fresh-seed accuracies at the confirmation fidelity, scored on "
            f"held-out images (each design's first confirmation seed chose the claims and is left "
            f"out of their tests; {images}; seed std pooled, image sampling error added); "
            f"superiority and "
            f"non-inferiority within δ = {margin_text(margin, 'accuracy point')}; "
            f"{corr[correction]} at "
            f"α = {alpha:g}{per}; a claim not shown is undecided, not false")


def answer(per_recipe: Sequence[Mapping[str, Any]], names: Mapping[str, str], *, margin: float,
           alpha: float, correction: str) -> dict[str, Any]:
    """The answer dict. ``per_recipe``: dicts with ``label``, ``describe``, ``epochs``,
    ``scored_on``, ``claims`` (Claim list), ``picks`` (Pick list), ``spent``, ``budget``, and
    ``images_split`` (the claims chose and tested on different halves of the holdout images;
    absent: False); ``names``: trial number → display name (baseline name or ``#12``)."""
    recipes = []
    for r in per_recipe:
        claims: list[Claim] = list(r["claims"])
        picks: list[Pick] = list(r["picks"])
        recipes.append({
            "recipe": r["label"], "describe": r["describe"], "epochs": r["epochs"],
            "scored_on": r["scored_on"], "spent": r["spent"], "budget": r["budget"],
            "images_split": bool(r.get("images_split", False)),
            "recommendation": [{**p.to_dict(), "name": names.get(p.design, f"#{p.design}"),
                                "runner_up_name": names.get(p.runner_up, f"#{p.runner_up}")
                                if p.runner_up else None, "label": LABELS[p.tradeoff]}
                               for p in picks],
            "claims": [{**c.to_dict(), "name": names.get(c.design, f"#{c.design}"),
                        "text": sentence(c, names)} for c in claims],
        })
    agree = _agreement(recipes)
    return _json_safe({"recommendation": recipes[0]["recommendation"] if recipes else [],
                       "recipes": recipes, "agreement": agree,
                       "rule": rule_text(margin, alpha, correction, len(recipes),
                                         [r["recipe"] for r in recipes if not r["images_split"]]),
                       "margin": margin, "alpha": alpha, "correction": correction})


def _json_safe(x: Any) -> Any:
    """The same structure with every non-finite float as None (strict JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def _agreement(recipes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Lines saying where the recipes disagree (a claim holds under one and is undecided under
    another; the most accurate pick differs) or where a claim that holds was tested under one
    recipe only. A comparison undecided under one recipe and untested under another is no
    disagreement (it is listed with the undecided ones)."""
    if len(recipes) < 2:
        return []
    out = []
    keyed = [{(c["kind"], c["design"], c["other"]): c for c in r["claims"]} for r in recipes]
    for key in dict.fromkeys(k for d in keyed for k in d):
        status = [d[key]["status"] if key in d else "untested" for d in keyed]
        if len(set(status)) > 1 and "holds" in status:
            c = next(d[key] for d in keyed if key in d)
            said = ", ".join(f"{s} under {r['recipe']}" for s, r in zip(status, recipes, strict=True))
            head = "recipes disagree" if "undecided" in status else "tested under one recipe only"
            out.append(f"{head}: {c['name']} {c['kind']} vs {c['other_name']}: {said}")
    best = [next((p["name"] for p in r["recommendation"] if p["tradeoff"] == "accurate"), None)
            for r in recipes]
    if len(set(best)) > 1:
        out.append("recipes disagree on the most accurate design: " + ", ".join(
            f"{b} under {r['recipe']}" for b, r in zip(best, recipes, strict=True)))
    return out


def _pts(x: float | None, sign: str = "") -> str:
    """Accuracy points with one decimal, or two when a nonzero value would print as 0.0."""
    if x is None or not math.isfinite(x):
        return "–"
    digits = 2 if 0 < abs(100 * x) < 0.05 else 1
    return f"{100 * x:{sign}.{digits}f}"


def _fast_text(p: Mapping[str, Any]) -> str:
    """What the ``fast`` pick rests on: the non-inferiority test that showed it within δ of the
    most accurate design, or (none shown: the pick is that design) the faster design whose mean
    alone is within δ, with its difference from it."""
    other = p.get("runner_up_name")
    if p["shown"]:
        return (f"; within δ of {other}: {_pts(p['diff'], '+')} [{_pts(p['diff_low'])}, "
                f"{_pts(p['diff_high'])}] points, shown")
    if not other:
        return "; no faster design within δ"
    neg = lambda x: None if x is None else -x  # noqa: E731
    return (f"; no faster design shown within δ: {other} {_pts(neg(p['diff']), '+')} "
            f"[{_pts(neg(p['diff_high']))}, {_pts(neg(p['diff_low']))}] points from it, undecided")


def lines(ans: Mapping[str, Any]) -> list[str]:
    """The answer as terminal lines (recommendation, claims, undecided, disagreements, rule)."""
    if not ans or not ans.get("recipes"):
        return []
    out = []
    for r in ans["recipes"]:
        out.append(f"Answer under {r['describe']} (scored on {r['scored_on']}; "
                   f"{r['spent']}/{r['budget']} trainings):")
        for p in r["recommendation"]:
            vs = ""
            if p.get("tradeoff") == "fast" and p.get("shown") is not None:
                vs = _fast_text(p)
            elif p.get("runner_up_name"):
                gap = (f"{_pts(p['diff'], '+')} [{_pts(p['diff_low'])}, {_pts(p['diff_high'])}]"
                       if p.get("diff") is not None else "")
                verdict = ("undecided" if not p["ahead"] else "more accurate beyond noise"
                           if p["diff"] > 0 else "less accurate beyond noise (picked for its cost)")
                vs = f"; vs {p['runner_up_name']} {gap} points, {verdict}"
            seeds = f"{p['n']} seed{'' if p['n'] == 1 else 's'}"
            out.append(f"  {p['label']}: {p['name']} {_pts(p['accuracy'])} % "
                       f"[{_pts(p['low'])}, {_pts(p['high'])}] ({seeds}){vs}")
        held = [c for c in r["claims"] if c["status"] == "holds"]
        open_ = [c for c in r["claims"] if c["status"] != "holds"]
        for c in held:
            out.append(f"  claim: {c['text']}")
        if open_:
            out.append(f"  {len(open_)} undecided: " + "; ".join(
                c["text"].removeprefix("undecided: ") for c in open_[:4])
                + (" …" if len(open_) > 4 else ""))
        if not r["claims"]:
            out.append("  no claim tested: no searched design confirmed at its first seed looked "
                       "better than (or within δ of) a baseline it costs no more than")
    out += [f"  {a}" for a in ans.get("agreement", [])]
    out.append(f"  rule: {ans['rule']}")
    return out
