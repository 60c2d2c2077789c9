"""Tests for nasl.report: CSV loading, figures, HTML, PNG, terminal table, summary."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from nasl import report
from nasl.common.errors import NaslError
from nasl.report import (
    accuracy_figure,
    format_count,
    front_rows,
    front_table,
    history_figure,
    load_trials_csv,
    macs_latency_figure,
    summary_line,
    write_html,
    write_png,
)
from nasl.stats.pareto import spearman

OBJ = [("accuracy", "maximize"), ("macs", "minimize"), ("latency_ms", "minimize")]
BUDGETS = {"macs": 40e6, "latency_ms": 5.0}


def _row(number: int, state: str = "COMPLETE", **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "number": number, "state": state, "baseline": None, "width_mult": 0.5,
        "resolution_mult": 1.0, "macs": None, "params": None, "size_mb": None,
        "latency_ms": None, "latency_p10_ms": None, "latency_p90_ms": None, "accuracy": None,
        "epochs": 3, "seconds": 12.5, "feasible": True, "pareto": False, "reason": None,
        "device": "cpu",
    }  # fmt: skip
    row.update(kw)
    if row["latency_ms"] is not None and row["latency_p10_ms"] is None:
        row["latency_p10_ms"], row["latency_p90_ms"] = (
            row["latency_ms"] * 0.9,
            row["latency_ms"] * 1.2,
        )
    return row


def _trials() -> list[dict[str, Any]]:
    return [
        _row(0, baseline="mobilenet_v1", width_mult=0.25, macs=14_000_000, params=470_000,
             latency_ms=1.5, accuracy=0.62, pareto=True),
        _row(1, width_mult=0.5, macs=37_600_000, params=1_230_000, latency_ms=3.1, accuracy=0.71,
             pareto=True),
        _row(2, width_mult=0.75, resolution_mult=0.714, macs=39_000_000, params=2_000_000,
             latency_ms=3.5, accuracy=0.66),
        _row(3, state="PRUNED", width_mult=0.6, macs=25_000_000, params=900_000, latency_ms=2.5,
             accuracy=0.4, reason="pruned at epoch 1"),
        _row(4, state="FAIL", macs=20_000_000, params=800_000, reason="CUDA error"),
        _row(5, state="PRUNED", width_mult=1.0, macs=150_000_000, params=4_200_000, feasible=False,
             reason="macs 150M > budget 40.0M"),
        _row(6, baseline="shufflenet_v1", width_mult=0.25, resolution_mult=0.571, macs=9_000_000,
             params=500_000, latency_ms=None, accuracy=0.55, pareto=True),
        _row(7, state="RUNNING", width_mult=0.3, feasible=False),  # not decided yet
    ]  # fmt: skip


def test_does_not_import_torch() -> None:
    code = "import sys, nasl.report; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_format_count() -> None:
    assert format_count(1_234_567) == "1.23M"
    assert format_count(40e6) == "40.0M"
    assert format_count(950) == "950"
    assert format_count(37_600_000) == "37.6M"
    assert format_count(999_999) == "1.00M"
    assert format_count(123_456_789) == "123M"
    assert format_count(2_500) == "2.50k"
    assert format_count(3.2e9) == "3.20G"
    assert format_count(0) == "0"
    assert format_count(None) == "–"


def test_summary_line() -> None:
    trials = _trials()
    # trained: 0,1,2,3(pruned),4(failed),6 = 6; infeasible: 5; front recomputed: 0, 1
    # (6 has no latency so it cannot be placed on a 3-objective front)
    assert summary_line(trials, OBJ) == (
        "6 trained (1 pruned, 1 failed), 1 infeasible rejected, front 2, 1 running"
    )
    assert summary_line(trials).endswith("front 3, 1 running")  # from the pareto flags
    assert summary_line([]) == "0 trained (0 pruned, 0 failed), 0 infeasible rejected, front 0"


def test_one_seed_screening_says_the_front_is_biased_up_and_how_to_retrain_it() -> None:
    from nasl.report.tables import confidence_lines

    lines = confidence_lines(_trials(), OBJ[:2])  # one seed per design: no noise estimate
    assert len(lines) == 1 and "biased up" in lines[0] and "nasl fidelity" in lines[0]


def test_front_rows_two_objectives_ranked_by_accuracy() -> None:
    rows = front_rows(_trials(), OBJ[:2])
    assert [r["number"] for r in rows] == [1, 0, 6]


def test_accuracy_figure_traces() -> None:
    fig = accuracy_figure(_trials(), OBJ[:2], BUDGETS, "macs")
    names = [t.name for t in fig.data]
    assert {"front", "feasible", "pruned", "infeasible (not trained)", "baselines"} <= set(names)
    assert "budget 40.0M" in names
    assert not any(n == "failed" for n in names)
    base = next(t for t in fig.data if t.name == "baselines")
    assert base.text is None  # names are annotations placed apart
    assert [a.text for a in fig.layout.annotations] == ["mobilenet_v1", "shufflenet_v1"]
    step = next(t for t in fig.data if t.name.startswith("front ("))
    assert step.line.shape == "hv" and list(step.x) == [9e6, 14e6, 37.6e6]
    front = next(t for t in fig.data if t.name == "front")
    assert "width_mult=0.5" in " ".join(front.hovertext)


def test_latency_figures() -> None:
    fig = accuracy_figure(_trials(), OBJ, BUDGETS, "latency")
    names = [t.name for t in fig.data]
    assert "budget 5 ms" in names
    front = next(t for t in fig.data if t.name == "front")
    assert front.error_x.array is not None  # p10–p90 spread
    fig = macs_latency_figure(_trials(), OBJ, BUDGETS)
    macs = [14e6, 37.6e6, 39e6, 25e6]
    lat = [1.5, 3.1, 3.5, 2.5]
    assert f"Spearman ρ = {spearman(macs, lat):.2f} (n=4)" in fig.layout.title.text


def test_history_best_so_far() -> None:
    fig = history_figure(_trials(), OBJ[:2])
    best = next(t for t in fig.data if t.name == "best so far")
    assert list(best.x) == [0, 1, 2, 6] and list(best.y) == [0.62, 0.71, 0.71, 0.71]


def test_write_html(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(path, _trials(), OBJ, BUDGETS, title="run-a · mobilenet space")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for needle in ("accuracy vs MACs", "accuracy vs latency (ms)", "trial history",
                   "mobilenet_v1", "shufflenet_v1", "budget 40.0M", "budget 5 ms",
                   "best so far", "Spearman", "Pareto front", "run-a"):  # fmt: skip
        assert needle in text, needle
    rho = spearman([14e6, 37.6e6, 39e6, 25e6], [1.5, 3.1, 3.5, 2.5])
    assert f"{rho:.2f} (n=4)" in text
    assert text.count("Plotly.newPlot") == 4
    assert len(text) > 1_000_000  # plotly.js embedded (offline)
    assert "front mixes devices" not in text
    assert "no completed trials yet" not in text


def test_write_html_warns_on_mixed_devices(tmp_path: Path) -> None:
    trials = _trials()
    trials[1]["device"] = "cuda:0"
    path = tmp_path / "report.html"
    write_html(path, trials, OBJ, BUDGETS)
    assert "front mixes devices: cpu, cuda:0" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("n", [0, 1])
def test_write_html_and_png_with_few_trials(tmp_path: Path, n: int) -> None:
    trials = [_row(0, state="RUNNING")] if n == 0 else [_row(0, macs=1e7, accuracy=0.5)]
    for rows in ([], trials):
        write_html(tmp_path / "r.html", rows, OBJ, BUDGETS)
        write_png(tmp_path / "p.png", rows, OBJ, BUDGETS)
        text = (tmp_path / "r.html").read_text(encoding="utf-8")
        assert ("no completed trials yet" in text) == (n == 0 or not rows)
        assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = Console(record=True, width=120)
    console.print(front_table([], OBJ))
    assert "Pareto front (0 of 0 trials)" in console.export_text()


def test_write_png(tmp_path: Path) -> None:
    path = tmp_path / "pareto.png"
    write_png(path, _trials(), OBJ, BUDGETS, title="run-a")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000


def test_front_table_renders() -> None:
    trials = _trials()
    trials[1]["device"] = "cuda:0"
    console = Console(record=True, width=160)
    console.print(front_table(trials, OBJ[:2], BUDGETS))
    text = console.export_text()
    assert "★ mobilenet_v1" in text and "★ shufflenet_v1" in text
    assert "37.6M" in text and "1.23M" in text and "71.0%" in text
    assert "3.1 [2.79–3.72]" in text and "latency ms [p10–p90]" in text  # markup escaped
    assert "width_mult=0.5" in text
    assert "front mixes devices: cpu, cuda:0" in text
    lines = [line for line in text.splitlines() if "│" in line and "M" in line]
    assert "71.0%" in lines[0]  # ranked by accuracy


def test_csv_round_trip(tmp_path: Path) -> None:
    trials = _trials()
    path = tmp_path / "trials.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(trials[0]))
        writer.writeheader()
        writer.writerows(trials)
    loaded = load_trials_csv(path)
    assert loaded == trials
    assert isinstance(loaded[0]["macs"], int) and isinstance(loaded[0]["feasible"], bool)
    assert loaded[0]["baseline"] == "mobilenet_v1" and loaded[1]["baseline"] is None
    assert summary_line(loaded, OBJ) == summary_line(trials, OBJ)


def test_csv_design_choice_types_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    path.write_text(
        "number,state,bypass,groups,pool_after,shuffle,feasible,macs\n"
        '3,COMPLETE,simple,8,"[1, 4, 8]",True,true,3.76e7\n',
        encoding="utf-8",
    )
    (row,) = load_trials_csv(path)
    assert row == {"number": 3, "state": "COMPLETE", "bypass": "simple", "groups": 8,
                   "pool_after": "[1, 4, 8]", "shuffle": True, "feasible": True,
                   "macs": 37_600_000}  # fmt: skip
    path.write_text("number,feasible\n1,maybe\n", encoding="utf-8")
    with pytest.raises(NaslError, match=r"line 2, column 'feasible': bad value 'maybe'"):
        load_trials_csv(path)


def test_design_columns_skip_meta() -> None:
    trials = _trials()
    trials[0].update(best_accuracy=0.63, device_name="Xeon", node="n1", arch_id="ab12", seed=7)
    assert report.design_columns(trials) == ["width_mult", "resolution_mult"]


def _clustered() -> list[dict[str, Any]]:
    """The shipped ShuffleNet baselines under 40 MFLOPs: 0.5x g=1..8 within 2.3 M MACs and
    0.25x g=1..8 within 1 M MACs, plus three searched designs."""
    base = [("shufflenet_0.5x_g1", 38.5e6, 0.881, 4.6), ("shufflenet_0.5x_g2", 38.9e6, 0.897, 6.9),
            ("shufflenet_0.5x_g3", 37.6e6, 0.916, 7.1), ("shufflenet_0.5x_g4", 38.2e6, 0.905, 7.5),
            ("shufflenet_0.5x_g8", 36.6e6, 0.899, 9.0), ("shufflenet_0.25x_g1", 13.3e6, 0.84, 2.6),
            ("shufflenet_0.25x_g2", 13.4e6, 0.842, 3.0), ("shufflenet_0.25x_g3", 13.0e6, 0.85, 3.1),
            ("shufflenet_0.25x_g4", 13.6e6, 0.838, 3.3), ("shufflenet_0.25x_g8", 13.9e6, 0.845, 4.0)]
    rows = [_row(i, baseline=b, macs=m, params=5e5, latency_ms=lat, accuracy=a)
            for i, (b, m, a, lat) in enumerate(base)]
    rows += [_row(10 + i, macs=m, params=5e5, latency_ms=lat, accuracy=a)
             for i, (m, a, lat) in enumerate([(20e6, 0.86, 3.5), (30e6, 0.9, 5.0), (25e6, 0.87, 4.1)])]
    return rows


def test_clustered_baseline_labels_do_not_overlap_in_the_png(tmp_path: Path) -> None:
    from matplotlib.text import Annotation, Text

    from nasl.report.figures import pareto_figure

    fig = pareto_figure(_clustered(), OBJ, {"macs": 40e6})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.texts if isinstance(t, Annotation)]
        assert sorted(t.get_text() for t in labels) == sorted(
            f"{w}x_g{g}" for w in ("0.5", "0.25") for g in (1, 2, 3, 4, 8))
        boxes = [Text.get_window_extent(t, renderer) for t in labels]  # the text, not its leader
        for i, a in enumerate(boxes):
            assert ax.bbox.x0 <= a.x0 and a.x1 <= ax.bbox.x1  # inside the plot
            for j, b in enumerate(boxes[:i]):
                assert not a.overlaps(b), (labels[i].get_text(), labels[j].get_text())
        assert any("baselines (shufflenet_" in t for t in ax.get_legend_handles_labels()[1])
    write_png(tmp_path / "p.png", _clustered(), OBJ, {"macs": 40e6})
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_repel_separates_labels_on_one_spot() -> None:
    from nasl.report.labels import repel, short_names

    anchors = [(100.0, 100.0)] * 5 + [(104.0, 101.0)]
    sizes = [(40.0, 10.0)] * 6
    offsets = repel(anchors, sizes)
    boxes = [(x + dx, y + dy - 5, x + dx + 40, y + dy + 5)
             for (x, y), (dx, dy) in zip(anchors, offsets, strict=True)]
    for i, a in enumerate(boxes):
        for b in boxes[:i]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    assert short_names(["shufflenet_0.5x_g1", "shufflenet_0.25x_g8"]) == \
        ("shufflenet_", ["0.5x_g1", "0.25x_g8"])
    assert short_names(["a", "b"]) == ("", ["a", "b"])


def test_plotly_baseline_names_are_annotations_apart() -> None:
    fig = accuracy_figure(_clustered(), OBJ, {"macs": 40e6}, "macs")
    names = [a.text for a in fig.layout.annotations]
    assert len(names) == 10 and "0.5x_g3" in names
    star = next(t for t in fig.data if t.name.startswith("baselines"))
    assert star.mode == "markers" and star.name == "baselines (shufflenet_…)"
    moved = [a for a in fig.layout.annotations if a.showarrow]
    assert moved  # the clustered ones were moved off their stars, with a leader line


def test_report_html_opens_with_the_answer(tmp_path: Path) -> None:
    rows = _clustered()
    for r in rows:
        r["accuracy_seeds"] = [r["accuracy"] - 0.004, r["accuracy"] + 0.004]
    write_html(tmp_path / "report.html", rows, OBJ, {"macs": 40e6})
    text = (tmp_path / "report.html").read_text()
    body = text.split("<body>", 1)[1]
    assert body.index('class="answer"') < body.index("<script")
    answer = body.split('class="answer"', 1)[1].split("</div>", 1)[0]
    assert "Pick trial " in answer and "MACs" in answer and "Why: " in answer
    assert f"nasl export {tmp_path} --trial" in answer
