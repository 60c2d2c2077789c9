"""bench/recheck_scoreboard.py: a run's answer scored against a long-training truth."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def board() -> ModuleType:
    spec = importlib.util.spec_from_file_location("recheck_scoreboard",
                                                  ROOT / "bench" / "recheck_scoreboard.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["recheck_scoreboard"] = mod
    spec.loader.exec_module(mod)
    return mod


def _answer() -> dict:
    claim = lambda kind, d, o, status: {"kind": kind, "design": d, "other": o, "margin": 0.02,  # noqa: E731
                                        "status": status}
    return {"margin": 0.02, "recipes": [{
        "recipe": "plain",
        "claims": [claim("noninferior", "12", "3", "holds"),   # truth -1.5: holds (δ = 2)
                   claim("superior", "7", "3", "holds"),       # truth -0.4: false
                   claim("superior", "12", "4", "undecided"),  # truth +0.5: true, missed
                   claim("noninferior", "9", "3", "holds")],   # 9 not re-checked
        "recommendation": [{"tradeoff": "accurate", "design": "3", "name": "b3"},
                           {"tradeoff": "fast", "design": "12", "name": "#12"}]}]}


def _lines() -> list[dict]:
    acc = {3: [0.880, 0.884], 12: [0.867, 0.867], 7: [0.878], 4: [0.862, 0.862]}
    return [{"recipe": "plain", "number": n, "seed": s, "accuracy": a, "epochs": 30}
            for n, v in acc.items() for s, a in enumerate(v)]


def test_claims_picks_and_totals(board: ModuleType, tmp_path: Path) -> None:
    t = board.truths(_lines() + _lines()[:1])  # a duplicated reused line counts once
    assert t["plain"][3] == [0.880, 0.884]
    sd = board.pooled_sd([t])
    assert sd["plain"] == pytest.approx((0.004 ** 2 / 2 / 3) ** 0.5)  # only #3 varies; dof 3
    (row,) = board.score("r", _answer(), t, sd)
    assert (row.claims, row.held, row.not_rechecked, row.missed, row.rightly_undecided) == (3, 1, 1, 1, 0)
    acc, fast = row.picks
    assert acc["gap"] == 0 and not acc["beyond"]
    assert fast["gap"] == pytest.approx(0.015) and fast["beyond"] and not fast["beyond_margin"]
    text = board.markdown([row])
    assert "claims re-checked: 2, hold: 1 (50%" in text
    assert "\"fastest within δ\" picks more than δ below it: 0 of 1" in text
    lo, hi = board.clopper_pearson(3, 3)
    assert lo == pytest.approx(0.292, abs=1e-3) and hi == 1.0
    pj, jl = tmp_path / "pareto.json", tmp_path / "recheck.jsonl"
    pj.write_text(json.dumps({"answer": _answer()}))
    jl.write_text("\n".join(json.dumps(x) for x in _lines()))
    out = tmp_path / "board.json"
    assert board.main(["--pair", str(pj), str(jl), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["rows"][0]["held"] == 1


def test_stored_reruns_pair_up(board: ModuleType) -> None:
    pairs = board.default_pairs()
    assert pairs and all(j.exists() and j.suffix == ".jsonl" for _, _, j in pairs)
    assert any(label.endswith("-contender") for label, _, _ in pairs)
