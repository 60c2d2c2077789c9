"""Human outputs of a run (report.html, pareto.png, terminal tables) from its trial rows.

A trial row is a dict as in ``trials.csv`` (see DESIGN.md): ``number, state, baseline,
<design choices...>, macs, params, size_mb, latency_ms, latency_p10_ms, latency_p90_ms,
accuracy, epochs, seconds, feasible, pareto, reason, device`` (read the file with
:func:`load_trials_csv`). Every column not in :data:`META_COLUMNS` is a design choice.
``objectives`` is a list of ``(column, "maximize" | "minimize")``; ``budgets`` maps columns
to limits, e.g. ``{"macs": 40e6, "latency_ms": 5.0}``.

The front is recomputed here with :func:`nasl.pareto.non_dominated` over the feasible
COMPLETE trials that have every objective value (what ``pareto.csv`` holds), so the report
of a run still in progress is right too. Figures are built by small functions returning
plotly Figures; :func:`write_html` only assembles them. No torch import.
"""

from __future__ import annotations

import csv
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from rich.markup import escape
from rich.table import Table

from nasl import pareto
from nasl.errors import NaslError

Row = dict[str, Any]
Objectives = Sequence[tuple[str, str]]
Budgets = Mapping[str, float] | None

INT_COLUMNS = ("number", "macs", "params", "epochs", "seed")
FLOAT_COLUMNS = (
    "size_mb", "latency_ms", "latency_p10_ms", "latency_p90_ms", "accuracy", "best_accuracy",
    "seconds",
)  # fmt: skip
BOOL_COLUMNS = ("feasible", "pareto")
TEXT_COLUMNS = ("state", "baseline", "reason", "device", "device_name", "node", "arch_id")
#: Columns that are not design choices (extend when the search writes more bookkeeping).
META_COLUMNS = frozenset(
    (*INT_COLUMNS, *FLOAT_COLUMNS, *BOOL_COLUMNS, *TEXT_COLUMNS)
    + ("threads", "batch", "dtype", "datetime_start", "datetime_complete")
)
#: Colour per status; "failed" trials show only in MACs-vs-latency, "running" nowhere.
COLORS = {
    "front": "#1f5fbf",
    "feasible": "#8fb8e8",
    "pruned": "#b0b0b0",
    "infeasible": "#e07b39",
    "failed": "#c03030",
}
LABELS = {"macs": "MACs", "latency_ms": "latency (ms)", "params": "params", "size_mb": "size (MB)"}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
_SHOWN = ("pruned", "feasible", "infeasible", "front")  # drawing order in accuracy plots


# ----------------------------------------------------------------------------- loading
def _convert(column: str, text: str) -> Any:
    """One CSV cell -> None / int / float / bool / str; ValueError when a known column is bad."""
    text, low = text.strip(), text.strip().lower()
    if text == "" or (column in INT_COLUMNS + FLOAT_COLUMNS and low == "nan"):
        return None
    if column in INT_COLUMNS:
        return int(float(text))
    if column in FLOAT_COLUMNS:
        return float(text)
    if column in BOOL_COLUMNS:
        if low not in _TRUE | _FALSE:
            raise ValueError("expected true or false")
        return low in _TRUE
    if column in TEXT_COLUMNS:
        return text
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):  # design choices: numbers stay numbers, the rest text
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_trials_csv(path: str | Path) -> list[Row]:
    """Read ``trials.csv`` -> typed rows (ints, floats, bools; empty cells -> None)."""
    rows: list[Row] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for line, raw in enumerate(csv.DictReader(fh), start=2):
            row: Row = {}
            for column, text in raw.items():
                try:
                    row[column] = _convert(column, text or "")
                except ValueError as exc:
                    raise NaslError(
                        f"{path}: line {line}, column {column!r}: bad value {text!r} ({exc})"
                    ) from None
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- row helpers
def _col(name: str) -> str:
    """Objective/budget name -> trials.csv column (``latency`` -> ``latency_ms``)."""
    return pareto.ALIASES.get(name, name)


def _num(row: Row, key: str) -> float | None:
    """Finite numeric value of ``row[key]`` or None."""
    value = row.get(_col(key))
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _state(row: Row) -> str:
    """Normalised state: COMPLETE, PRUNED, FAIL, RUNNING or WAITING."""
    return str(row.get("state") or "").rsplit(".", 1)[-1].upper()


def _baseline(row: Row) -> str | None:
    return str(row["baseline"]) if row.get("baseline") not in (None, "") else None


def _feasible(row: Row, budgets: Budgets = None) -> bool:
    """The row's ``feasible`` flag; when missing, whether its values are within ``budgets``."""
    if isinstance(row.get("feasible"), bool):
        return bool(row["feasible"])
    return all((_num(row, k) or 0.0) <= limit for k, limit in (budgets or {}).items())


def design_columns(trials: Sequence[Row]) -> list[str]:
    """Design-choice columns in first-seen order (everything not in META_COLUMNS)."""
    return list(dict.fromkeys(k for row in trials for k in row if k not in META_COLUMNS))


def _fmt_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _choices(row: Row, columns: Sequence[str], sep: str = ", ") -> str:
    return sep.join(f"{c}={_fmt_value(row[c])}" for c in columns if row.get(c) is not None)


def format_count(n: float | None) -> str:
    """Count in human units, 3 significant digits: 1234567 -> "1.23M", 40e6 -> "40.0M"."""
    if n is None:
        return "–"
    sign, v = ("-" if n < 0 else ""), abs(float(n))
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale * 0.9995:
            x = v / scale
            text = f"{x:.0f}" if x >= 99.95 else f"{x:.1f}" if x >= 9.995 else f"{x:.2f}"
            return f"{sign}{text}{unit}"
    return f"{sign}{int(v)}" if v == int(v) else f"{sign}{v:.3g}"


def _fmt_budget(column: str, value: float) -> str:
    return f"{value:g} ms" if _col(column) == "latency_ms" else format_count(value)


def _fmt_latency(row: Row) -> str:
    """Median and spread, "3.21 [2.9–3.6]" (median [p10–p90]), or "–"."""
    med, lo, hi = (_num(row, k) for k in ("latency_ms", "latency_p10_ms", "latency_p90_ms"))
    if med is None:
        return "–"
    return f"{med:.3g} [{lo:.3g}–{hi:.3g}]" if lo is not None and hi is not None else f"{med:.3g}"


def _fmt_acc(row: Row) -> str:
    acc = _num(row, "accuracy")
    return "–" if acc is None else f"{100 * acc:.1f}%"


def _hover(row: Row, columns: Sequence[str]) -> str:
    """Hover text: trial, baseline, design choices, costs, accuracy, device, reason."""
    head = f"trial {row.get('number')} · {_state(row).lower()}"
    head += f" · ★ {_baseline(row)}" if _baseline(row) else ""
    lines = [f"<b>{html.escape(head)}</b>", html.escape(_choices(row, columns, "\n"))]
    lines.append(
        f"MACs {format_count(_num(row, 'macs'))} · params {format_count(_num(row, 'params'))}"
        f" · latency {_fmt_latency(row)} ms · accuracy {_fmt_acc(row)}"
    )
    lines += [f"{k}: {html.escape(str(row[k]))}" for k in ("device", "reason") if row.get(k)]
    return "<br>".join(line for line in lines if line).replace("\n", "<br>")


# ----------------------------------------------------------------------------- front, status
def front_indices(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None
) -> list[int]:
    """Indices into ``trials`` of the front (feasible COMPLETE rows with all objectives)."""
    names = [_col(n) for n, _ in objectives]
    pool = [
        i
        for i, r in enumerate(trials)
        if _state(r) == "COMPLETE"
        and _feasible(r, budgets)
        and None not in [_num(r, n) for n in names]
    ]
    points = [[_num(trials[i], n) or 0.0 for n in names] for i in pool]
    return [pool[j] for j in pareto.non_dominated(points, [d for _, d in objectives])]


def front_rows(trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None) -> list[Row]:
    """Front rows sorted by accuracy (desc), then MACs (asc)."""
    rows = [trials[i] for i in front_indices(trials, objectives, budgets)]
    return sorted(rows, key=lambda r: (-(_num(r, "accuracy") or 0.0), _num(r, "macs") or 0.0))


def _groups(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets
) -> dict[str, list[Row]]:
    """Rows by status: front, feasible, pruned, infeasible, failed, running."""
    front = set(front_indices(trials, objectives, budgets))
    groups: dict[str, list[Row]] = {k: [] for k in (*COLORS, "running")}
    for i, row in enumerate(trials):
        state = _state(row)
        if state in ("RUNNING", "WAITING"):
            groups["running"].append(row)
        elif not _feasible(row, budgets):
            groups["infeasible"].append(row)
        elif state == "COMPLETE":
            groups["front" if i in front else "feasible"].append(row)
        else:
            groups[{"PRUNED": "pruned", "FAIL": "failed"}.get(state, "running")].append(row)
    return groups


def device_warning(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None
) -> str | None:
    """ "front mixes devices: a, b" when front members were measured on different devices."""
    devices = {str(r["device"]) for r in front_rows(trials, objectives, budgets) if r.get("device")}
    return f"front mixes devices: {', '.join(sorted(devices))}" if len(devices) > 1 else None


def summary_line(
    trials: Sequence[Row], objectives: Objectives | None = None, budgets: Budgets = None
) -> str:
    """ "12 trained (3 pruned, 1 failed), 7 infeasible rejected, front 4".

    The front is recomputed when ``objectives`` are given, else the ``pareto`` flags count.
    """
    groups = _groups(trials, objectives or [], budgets)
    done = [_state(r) for k in ("front", "feasible", "pruned", "failed") for r in groups[k]]
    flags = sum(r.get("pareto") is True for r in trials)
    front = len(groups["front"]) if objectives else flags
    states = [_state(r) for r in groups["running"]]
    running, queued = states.count("RUNNING"), states.count("WAITING")
    return (
        f"{len(done)} trained ({done.count('PRUNED')} pruned, {done.count('FAIL')} failed), "
        f"{len(groups['infeasible'])} infeasible rejected, front {front}"
    ) + (f", {running} running" if running else "") + (
        f", {queued} queued (not run; --resume runs them)" if queued else "")


@dataclass
class _Panel:
    """What one accuracy-vs-x picture shows (shared by the plotly and matplotlib views)."""

    x: str
    placed: dict[str, list[Row]]  # status -> rows with x and accuracy
    rug: dict[str, list[Row]]  # status -> rows with x but never trained (no accuracy)
    step: list[tuple[float, float]]  # 2-D front of (x, accuracy), x ascending
    baselines: list[Row]
    budget: float | None
    log: bool


def _panel(trials: Sequence[Row], objectives: Objectives, budgets: Budgets, x: str) -> _Panel:
    """Sort the rows of an accuracy-vs-``x`` picture into its layers."""
    x = _col(x)
    groups = _groups(trials, objectives, budgets)
    has_x = {k: [r for r in groups[k] if _num(r, x) is not None] for k in _SHOWN}
    placed = {k: [r for r in v if _num(r, "accuracy") is not None] for k, v in has_x.items()}
    rug = {k: [r for r in v if _num(r, "accuracy") is None] for k, v in has_x.items()}
    ok = [
        (_num(r, x) or 0.0, _num(r, "accuracy") or 0.0)
        for r in placed["front"] + placed["feasible"]
    ]
    step = sorted(ok[i] for i in pareto.non_dominated(ok, ["minimize", "maximize"]))
    budget = next((v for k, v in (budgets or {}).items() if _col(k) == x), None)
    values = [v for r in trials if (v := _num(r, x)) is not None]
    log = bool(values) and min(values) > 0 and max(values) / min(values) > 30
    bases = [r for k in _SHOWN for r in placed[k] if _baseline(r)]
    return _Panel(x, placed, rug, step, bases, budget, log)


# ----------------------------------------------------------------------------- plotly figures
def _points(
    rows: Sequence[Row], x: str, y: str | float, name: str, cols: Sequence[str], **kw: Any
) -> go.Scatter:
    """Marker trace of ``rows`` (``y`` a column, or a constant on the hidden overlay axis)."""
    ys = [_num(r, y) for r in rows] if isinstance(y, str) else [y] * len(rows)
    return go.Scatter(
        x=[_num(r, x) for r in rows], y=ys, name=name, hoverinfo="text",
        hovertext=[_hover(r, cols) for r in rows], **{"mode": "markers", **kw},
    )  # fmt: skip


def _tickformat(column: str) -> str:
    """SI tick labels (37.6M) for counts, plain numbers otherwise."""
    return "~s" if column in ("macs", "params") else ""


def _budget_trace(value: float, label: str, vertical: bool = True) -> go.Scatter:
    """Dashed budget line across the whole plot (drawn on a hidden 0..1 overlay axis)."""
    full, at = [0.0, 0.97, 1.0], [value] * 3
    xy = {"x": at, "y": full, "yaxis": "y2"} if vertical else {"x": full, "y": at, "xaxis": "x2"}
    return go.Scatter(
        **xy, mode="lines+text", text=["", label, ""], name=label, hoverinfo="name",
        textposition="middle right" if vertical else "top left",
        line={"dash": "dash", "color": "#555"},
    )  # fmt: skip


def _layout(fig: go.Figure, title: str, xaxis: dict[str, Any], yaxis: dict[str, Any]) -> go.Figure:
    overlay = {"range": [0, 1], "visible": False, "fixedrange": True}
    fig.update_layout(
        title=title, template="plotly_white", height=480, legend={"orientation": "h", "y": -0.18},
        xaxis=xaxis, yaxis=yaxis, yaxis2={**overlay, "overlaying": "y"},
        xaxis2={**overlay, "overlaying": "x"},
    )  # fmt: skip
    return fig


def accuracy_figure(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None, x: str = "macs"
) -> go.Figure:
    """Accuracy vs ``x`` (macs, latency_ms, params, size_mb), points coloured by status.

    Never-trained (infeasible) trials form a rug of crosses along the bottom, the 2-D front of
    (x, accuracy) is a step line, baselines carry their name, the budget is a dashed line,
    latency points have p10–p90 error bars.
    """
    p, cols = _panel(trials, objectives, budgets, x), design_columns(trials)
    fig = go.Figure()
    for cat in _SHOWN:
        rows = p.placed[cat]
        err = None
        if p.x == "latency_ms" and rows:
            med = [_num(r, p.x) or 0.0 for r in rows]
            lo = [_num(r, "latency_p10_ms") for r in rows]
            hi = [_num(r, "latency_p90_ms") for r in rows]
            err = {
                "type": "data", "symmetric": False, "thickness": 1,
                "array": [max(0.0, (h or m) - m) for h, m in zip(hi, med, strict=True)],
                "arrayminus": [max(0.0, m - (lo_ or m)) for lo_, m in zip(lo, med, strict=True)],
            }  # fmt: skip
        size = 11 if cat == "front" else 8
        marker = {"color": COLORS[cat], "size": size, "line": {"width": 1, "color": "white"}}
        if rows:
            fig.add_trace(_points(rows, p.x, "accuracy", cat, cols, marker=marker, error_x=err))
        if p.rug[cat]:
            rug_marker = {"color": COLORS[cat], "symbol": "x", "size": 8}
            name = f"{cat} (not trained)"
            fig.add_trace(_points(p.rug[cat], p.x, 0.02, name, cols, yaxis="y2", marker=rug_marker))
    if p.step:
        fig.add_trace(go.Scatter(
            x=[s[0] for s in p.step], y=[s[1] for s in p.step], mode="lines", line_shape="hv",
            name="front (this pair)", hoverinfo="skip",
            line={"color": COLORS["front"], "width": 1.5},
        ))  # fmt: skip
    if p.baselines:
        star = {"symbol": "star", "size": 15, "color": "#222"}
        names = [_baseline(r) for r in p.baselines]
        fig.add_trace(_points(p.baselines, p.x, "accuracy", "baselines", cols, mode="markers+text",
                              text=names, textposition="top center", marker=star))  # fmt: skip
    if p.budget is not None:
        fig.add_trace(_budget_trace(p.budget, f"budget {_fmt_budget(p.x, p.budget)}"))
    label = LABELS.get(p.x, p.x)
    xaxis = {"title": label, "type": "log" if p.log else "linear", "tickformat": _tickformat(p.x)}
    return _layout(fig, f"accuracy vs {label}", xaxis, {"title": "accuracy", "tickformat": ".0%"})


def macs_latency_figure(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None
) -> go.Figure:
    """MACs vs measured latency of every trial with both, Spearman ρ in the title."""
    groups, cols = _groups(trials, objectives, budgets), design_columns(trials)
    fig, macs, lat = go.Figure(), [], []
    for cat in COLORS:
        rows = [r for r in groups[cat] if None not in (_num(r, "macs"), _num(r, "latency_ms"))]
        macs += [_num(r, "macs") or 0.0 for r in rows]
        lat += [_num(r, "latency_ms") or 0.0 for r in rows]
        if rows:
            marker = {"color": COLORS[cat], "size": 8}
            fig.add_trace(_points(rows, "macs", "latency_ms", cat, cols, marker=marker))
    for key, vertical in (("macs", True), ("latency_ms", False)):
        value = next((v for k, v in (budgets or {}).items() if _col(k) == key), None)
        if value is not None:
            fig.add_trace(_budget_trace(value, f"budget {_fmt_budget(key, value)}", vertical))
    rho = pareto.spearman(macs, lat)
    rho_text = "n/a" if math.isnan(rho) else f"{rho:.2f}"
    title = f"MACs vs measured latency — Spearman ρ = {rho_text} (n={len(macs)})"
    logx = bool(macs) and min(macs) > 0 and max(macs) / min(macs) > 30
    xaxis = {"title": "MACs", "type": "log" if logx else "linear", "tickformat": "~s"}
    return _layout(fig, title, xaxis,
                   {"title": "latency (ms)"})  # fmt: skip


def history_figure(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None
) -> go.Figure:
    """Accuracy by trial number (trained trials) with the best-so-far feasible accuracy."""
    groups, cols = _groups(trials, objectives, budgets), design_columns(trials)
    fig = go.Figure()
    for cat in _SHOWN:
        rows = [r for r in groups[cat] if _num(r, "accuracy") is not None]
        if rows:
            marker = {"color": COLORS[cat], "size": 8}
            fig.add_trace(_points(rows, "number", "accuracy", cat, cols, marker=marker))
    done = sorted(
        (_num(r, "number") or 0.0, _num(r, "accuracy") or 0.0)
        for r in groups["front"] + groups["feasible"]
        if _num(r, "accuracy") is not None
    )
    best = [max(acc for _, acc in done[: i + 1]) for i in range(len(done))]
    if done:
        fig.add_trace(go.Scatter(
            x=[n for n, _ in done], y=best, mode="lines", line_shape="hv", name="best so far",
            line={"color": "#222", "width": 1.5},
        ))  # fmt: skip
    return _layout(
        fig, "trial history", {"title": "trial number"}, {"title": "accuracy", "tickformat": ".0%"}
    )


# ----------------------------------------------------------------------------- tables
HEADERS = [
    "trial",
    "baseline",
    "design choices",
    "MACs",
    "params",
    "latency ms [p10–p90]",
    "accuracy",
]


def _front_cells(row: Row, choices: str) -> list[str]:
    base = f"★ {_baseline(row)}" if _baseline(row) else ""
    return [str(row.get("number", "")), base, choices, format_count(_num(row, "macs")),
            format_count(_num(row, "params")), _fmt_latency(row), _fmt_acc(row)]  # fmt: skip


def front_table(trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None) -> Table:
    """The Pareto front as a rich Table ranked by accuracy; constant choices go in the caption."""
    rows = front_rows(trials, objectives, budgets)
    cols = design_columns(rows)
    varying = [c for c in cols if len({repr(r.get(c)) for r in rows}) > 1]
    same = {c: rows[0][c] for c in cols if c not in varying and rows[0].get(c) is not None}
    caption = [escape(f"same for all: {_choices(same, list(same))}")] if same else []
    if (warning := device_warning(trials, objectives, budgets)) is not None:
        caption.append(f"[bold red]{escape(warning)}[/]")
    title = f"Pareto front ({len(rows)} of {len(trials)} trials)"
    table = Table(title=title, caption="\n".join(caption) or None)
    for head in ("#", *HEADERS):
        table.add_column(
            escape(head), justify="left" if head in ("baseline", "design choices") else "right",
            min_width=48 if head == "design choices" else None,
            no_wrap=head not in ("design choices",),
        )
    for rank, row in enumerate(rows, start=1):
        table.add_row(str(rank), *map(escape, _front_cells(row, _choices(row, varying))))
    return table


def front_html_table(trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None) -> str:
    """The Pareto front as an HTML <table>, one column per design choice."""
    rows = front_rows(trials, objectives, budgets)
    cols = design_columns(rows)
    out = "".join(f"<th>{html.escape(h)}</th>" for h in ("#", *HEADERS[:2], *cols, *HEADERS[3:]))
    out = f"<table><thead><tr>{out}</tr></thead><tbody>"
    for rank, row in enumerate(rows, start=1):
        cells = _front_cells(row, "")
        choices = [_fmt_value(row[c]) if row.get(c) is not None else "" for c in cols]
        values = [str(rank), *cells[:2], *choices, *cells[3:]]
        out += "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>"
    return out + "</tbody></table>"


# ----------------------------------------------------------------------------- writers
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    ".warn{background:#fde2e2;border:1px solid #c03030;padding:.6em;font-weight:bold}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
)


def write_html(
    path: str | Path,
    trials: Sequence[Row],
    objectives: Objectives,
    budgets: Budgets = None,
    title: str = "nasl run",
) -> None:
    """Write one self-contained report.html (plotly.js embedded once, so it works offline)."""
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(summary_line(trials, objectives, budgets))}</p>",
    ]
    if budgets:
        limits = ", ".join(f"{k} ≤ {_fmt_budget(k, v)}" for k, v in budgets.items())
        parts.append(f"<p>budgets: {html.escape(limits)}</p>")
    if (warning := device_warning(trials, objectives, budgets)) is not None:
        parts.append(f'<p class="warn">⚠ {html.escape(warning)}</p>')
    if not any(_state(r) == "COMPLETE" and _num(r, "accuracy") is not None for r in trials):
        parts.append("<p><b>no completed trials yet</b></p>")
    figures = [accuracy_figure(trials, objectives, budgets, "macs")] if trials else []
    if any(_num(r, "latency_ms") is not None for r in trials):
        figures.append(accuracy_figure(trials, objectives, budgets, "latency_ms"))
        figures.append(macs_latency_figure(trials, objectives, budgets))
    figures += [history_figure(trials, objectives, budgets)] if trials else []
    for i, fig in enumerate(figures):
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False})
        )
    parts += ["<h2>Pareto front</h2>", front_html_table(trials, objectives, budgets)]
    head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style>'
    page = f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(parts)}</body></html>"
    Path(path).write_text(page, encoding="utf-8")


def write_png(
    path: str | Path,
    trials: Sequence[Row],
    objectives: Objectives,
    budgets: Budgets = None,
    title: str = "nasl run",
) -> None:
    """Write pareto.png: accuracy vs MACs (and vs latency when measured), baselines labelled."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot, no global backend
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter

    xs = ["macs"] + (
        ["latency_ms"] if any(_num(r, "latency_ms") is not None for r in trials) else []
    )
    fig = Figure(figsize=(6.4 * len(xs), 5.2), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    for k, x in enumerate(xs):
        ax, p = fig.add_subplot(1, len(xs), k + 1), _panel(trials, objectives, budgets, x)
        for cat in _SHOWN:
            if rows := p.placed[cat]:
                ax.scatter([_num(r, x) for r in rows], [_num(r, "accuracy") for r in rows],
                           s=50 if cat == "front" else 25, c=COLORS[cat], label=cat, zorder=3,
                           edgecolors="white", linewidths=0.5)  # fmt: skip
            if rows := p.rug[cat]:
                ax.scatter([_num(r, x) for r in rows], [0.02] * len(rows), marker="x", zorder=3,
                           c=COLORS[cat], transform=ax.get_xaxis_transform(),
                           label=f"{cat} (not trained)")  # fmt: skip
        if p.step:
            ax.step(*zip(*p.step, strict=True), where="post", c=COLORS["front"], lw=1.2, zorder=2)
        for r in p.baselines:
            xy = (_num(r, x) or 0.0, _num(r, "accuracy") or 0.0)
            ax.scatter(*xy, marker="*", s=160, c="#222", zorder=4)
            ax.annotate(_baseline(r), xy, xytext=(6, 6), textcoords="offset points", fontsize=8)
        if p.budget is not None:
            ax.axvline(
                p.budget, ls="--", c="#555", lw=1, label=f"budget {_fmt_budget(x, p.budget)}"
            )
        shown = [
            v for rows in (*p.placed.values(), *p.rug.values()) for r in rows if (v := _num(r, x))
        ]
        shown += [p.budget] if p.budget is not None else []
        if p.log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_minor_formatter(NullFormatter())
        if shown:  # rug markers do not extend the data limits by themselves
            lo, hi = min(shown), max(shown)
            pad = (hi / lo) ** 0.04 if p.log else 0.04 * (hi - lo or hi or 1.0)
            ax.set_xlim((lo / pad, hi * pad) if p.log else (lo - pad, hi + pad))
        if _tickformat(x):
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_count(v)))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set(xlabel=LABELS.get(x, x), ylabel="accuracy")
        ax.grid(alpha=0.3)
        if not any(p.placed.values()):
            ax.text(0.5, 0.5, "no completed trials yet", ha="center", transform=ax.transAxes)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{title}\n{summary_line(trials, objectives, budgets)}", fontsize=10)
    fig.savefig(path)
