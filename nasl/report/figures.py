"""Figures of a run: plotly (report.html, W&B panels) and the matplotlib pareto.png."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from nasl.report.labels import repel, short_names
from nasl.report.rows import (
    COLORS,
    LABELS,
    SHOWN,
    Budgets,
    Objectives,
    Row,
    col,
    design_columns,
    fmt_budget,
    format_count,
    hover,
    num,
    panel,
    row_baseline,
    row_groups,
    summary_line,
)
from nasl.stats import pareto


# ----------------------------------------------------------------------------- plotly figures
def _points(
    rows: Sequence[Row], x: str, y: str | float, name: str, cols: Sequence[str], **kw: Any
) -> go.Scatter:
    """Marker trace of ``rows`` (``y`` a column, or a constant on the hidden overlay axis)."""
    ys = [num(r, y) for r in rows] if isinstance(y, str) else [y] * len(rows)
    return go.Scatter(
        x=[num(r, x) for r in rows], y=ys, name=name, hoverinfo="text",
        hovertext=[hover(r, cols) for r in rows], **{"mode": "markers", **kw},
    )  # fmt: skip


def accuracy_bars(rows: Sequence[Row]) -> tuple[list[float], list[float]] | None:
    """(below, above) distances of each row's 95 % accuracy interval, or None when no row
    has one."""
    lo = [num(r, "accuracy_low") for r in rows]
    hi = [num(r, "accuracy_high") for r in rows]
    if all(v is None for v in lo):
        return None
    acc = [num(r, "accuracy") or 0.0 for r in rows]
    return ([max(0.0, a - (v if v is not None else a)) for a, v in zip(acc, lo, strict=True)],
            [max(0.0, (v if v is not None else a) - a) for a, v in zip(acc, hi, strict=True)])


def accuracy_error(rows: Sequence[Row]) -> dict[str, Any] | None:
    """plotly error_y of the rows' 95 % accuracy intervals (None when none is known)."""
    bars = accuracy_bars(rows)
    if bars is None:
        return None
    return {"type": "data", "symmetric": False, "thickness": 1, "array": bars[1],
            "arrayminus": bars[0]}


#: Nominal plot area of report.html's figures in pixels, and a label's character size, used to
#: place baseline names apart (plotly does not measure text before the browser draws it).
PLOT_AREA = (760.0, 300.0)
CHAR_PX = (6.2, 13.0)


def plotly_label_annotations(rows: Sequence[Row], x: str, others: Sequence[tuple[float, float]],
                             xrange: tuple[float, float], yrange: tuple[float, float],
                             log: bool) -> list[dict[str, Any]]:
    """plotly annotations naming each baseline (the name less the prefix all share), placed
    apart by :func:`nasl.report.labels.repel` on the nominal :data:`PLOT_AREA`; ``xrange`` is in
    log10 units when ``log``."""
    w, h = PLOT_AREA

    def px(xv: float, yv: float) -> tuple[float, float]:
        xx = math.log10(xv) if log and xv > 0 else xv
        return ((xx - xrange[0]) / ((xrange[1] - xrange[0]) or 1.0) * w,
                (yv - yrange[0]) / ((yrange[1] - yrange[0]) or 1.0) * h)

    _, names = short_names([row_baseline(r) for r in rows])
    xy = [(num(r, x) or 0.0, num(r, "accuracy") or 0.0) for r in rows]
    anchors = [px(*q) for q in xy]
    obstacles = [(a - 4, b - 4, a + 4, b + 4) for a, b in (px(*q) for q in others)]
    sizes = [(CHAR_PX[0] * len(n), CHAR_PX[1]) for n in names]
    offsets = repel(anchors, sizes, bounds=(0.0, 0.0, w, h), obstacles=obstacles)
    out = []
    for n, (xv, yv), (dx, dy) in zip(names, xy, offsets, strict=True):
        ann: dict[str, Any] = {"x": math.log10(xv) if log and xv > 0 else xv, "y": yv, "text": n,
                               "xanchor": "left", "font": {"size": 10}}
        if abs(dy) > 1:  # moved off its star: a leader line
            ann.update(showarrow=True, arrowhead=0, arrowwidth=0.6, arrowcolor="#888",
                       ax=dx, ay=-dy)
        else:
            ann.update(showarrow=False, xshift=dx, yshift=dy)
        out.append(ann)
    return out


def _ranges(p: Any, budget: float | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (x, accuracy) ranges of a plotly accuracy panel, padded 4 % / 6 % (x in log10 units
    on a log axis)."""
    rows = [r for rs in p.placed.values() for r in rs]
    xs = [v for r in rows if (v := num(r, p.x)) is not None] + ([budget] if budget else [])
    xs += [v for rs in p.rug.values() for r in rs if (v := num(r, p.x)) is not None]
    ys = [v for r in rows for c in ("accuracy", "accuracy_low", "accuracy_high")
          if (v := num(r, c)) is not None] or [0.0, 1.0]
    if p.log:
        xs = [math.log10(v) for v in xs if v > 0]
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    pad = 0.04 * ((hi - lo) or abs(hi) or 1.0)
    ylo, yhi = min(ys), max(ys)
    ypad = 0.06 * ((yhi - ylo) or 0.05)
    return (lo - pad, hi + pad), (ylo - ypad, yhi + ypad)


def label_baselines(fig: Any, pending: Sequence[tuple[Any, str, Sequence[Row], Any]]) -> list[Any]:
    """Name each baseline star (the name less the prefix all share) where no two names overlap:
    the layout is fixed first, then :func:`nasl.report.labels.repel` places the labels in
    pixels; a label moved off its star is joined to it by a thin line. → the label artists."""
    if not pending:
        return []
    fig.draw_without_rendering()  # final axes sizes and limits
    fig.set_layout_engine("none")  # labels must not move the axes they were placed on
    renderer = fig.canvas.get_renderer()
    texts: list[Any] = []
    for ax, x, rows, others in pending:
        ax.set_xlim(ax.get_xlim())
        ax.set_ylim(ax.get_ylim())
        _, names = short_names([row_baseline(r) for r in rows])
        xy = [(num(r, x) or 0.0, num(r, "accuracy") or 0.0) for r in rows]
        anchors = [tuple(ax.transData.transform(p)) for p in xy]
        probes = [ax.text(0, 0, n, fontsize=7) for n in names]  # measured, then removed
        sizes = [(b.width, b.height) for b in (t.get_window_extent(renderer) for t in probes)]
        for t in probes:
            t.remove()
        points = [tuple(ax.transData.transform(q)) for q in others]
        obstacles = [(px - 4, py - 4, px + 4, py + 4) for px, py in points]
        if (legend := ax.get_legend()) is not None:
            lb = legend.get_window_extent(renderer)
            obstacles.append((lb.x0, lb.y0, lb.x1, lb.y1))
        area = ax.bbox
        offsets = repel(anchors, sizes, bounds=(area.x0, area.y0, area.x1, area.y1),
                        obstacles=obstacles)
        made = [ax.annotate(n, p, xytext=(dx, dy), textcoords="offset pixels", fontsize=7,
                            va="center", ha="left", annotation_clip=False, zorder=5,
                            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "#888",
                                        "relpos": (0.0 if dx > 0 else 1.0, 0.5), "shrinkA": 0,
                                        "shrinkB": 4}
                            if abs(dy) > 1 else None)  # moved off its star: a leader line
                for n, p, (dx, dy) in zip(names, xy, offsets, strict=True)]
        texts += made
    return texts


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
    p, cols = panel(trials, objectives, budgets, x), design_columns(trials)
    fig = go.Figure()
    for cat in SHOWN:
        rows = p.placed[cat]
        err = None
        if p.x == "latency_ms" and rows:
            med = [num(r, p.x) or 0.0 for r in rows]
            lo = [num(r, "latency_p10_ms") for r in rows]
            hi = [num(r, "latency_p90_ms") for r in rows]
            err = {
                "type": "data", "symmetric": False, "thickness": 1,
                "array": [max(0.0, (h or m) - m) for h, m in zip(hi, med, strict=True)],
                "arrayminus": [max(0.0, m - (lo_ or m)) for lo_, m in zip(lo, med, strict=True)],
            }  # fmt: skip
        size = 11 if cat == "front" else 8
        marker = {"color": COLORS[cat], "size": size, "line": {"width": 1, "color": "white"}}
        if cat == "front":  # tied within noise with a cheaper member: hollow marker
            marker["symbol"] = ["circle" if r.get("confident") is not False else "circle-open"
                                for r in rows]
        if rows:
            fig.add_trace(_points(rows, p.x, "accuracy", cat, cols, marker=marker, error_x=err,
                                  error_y=accuracy_error(rows)))
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
    xrange, yrange = _ranges(p, p.budget)
    annotations: list[dict[str, Any]] = []
    if p.baselines:
        star = {"symbol": "star", "size": 15, "color": "#222"}
        prefix, _ = short_names([row_baseline(r) for r in p.baselines])
        fig.add_trace(_points(p.baselines, p.x, "accuracy",
                              f"baselines ({prefix}…)" if prefix else "baselines", cols, marker=star))
        others = [(num(r, p.x), num(r, "accuracy")) for rs in p.placed.values() for r in rs
                  if r not in p.baselines and None not in (num(r, p.x), num(r, "accuracy"))]
        annotations = plotly_label_annotations(p.baselines, p.x, others, xrange, yrange, p.log)
    if p.budget is not None:
        fig.add_trace(_budget_trace(p.budget, f"budget {fmt_budget(p.x, p.budget)}"))
    label = LABELS.get(p.x, p.x)
    xaxis = {"title": label, "type": "log" if p.log else "linear", "tickformat": _tickformat(p.x),
             "range": list(xrange)}
    fig = _layout(fig, f"accuracy vs {label}", xaxis,
                  {"title": "accuracy", "tickformat": ".0%", "range": list(yrange)})
    fig.update_layout(annotations=annotations)
    return fig


def macs_latency_figure(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None
) -> go.Figure:
    """MACs vs measured latency of every trial with both, Spearman ρ in the title."""
    groups, cols = row_groups(trials, objectives, budgets), design_columns(trials)
    fig, macs, lat = go.Figure(), [], []
    for cat in COLORS:
        rows = [r for r in groups[cat] if None not in (num(r, "macs"), num(r, "latency_ms"))]
        macs += [num(r, "macs") or 0.0 for r in rows]
        lat += [num(r, "latency_ms") or 0.0 for r in rows]
        if rows:
            marker = {"color": COLORS[cat], "size": 8}
            fig.add_trace(_points(rows, "macs", "latency_ms", cat, cols, marker=marker))
    for key, vertical in (("macs", True), ("latency_ms", False)):
        value = next((v for k, v in (budgets or {}).items() if col(k) == key), None)
        if value is not None:
            fig.add_trace(_budget_trace(value, f"budget {fmt_budget(key, value)}", vertical))
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
    groups, cols = row_groups(trials, objectives, budgets), design_columns(trials)
    fig = go.Figure()
    for cat in SHOWN:
        rows = [r for r in groups[cat] if num(r, "accuracy") is not None]
        if rows:
            marker = {"color": COLORS[cat], "size": 8}
            fig.add_trace(_points(rows, "number", "accuracy", cat, cols, marker=marker))
    done = sorted(
        (num(r, "number") or 0.0, num(r, "accuracy") or 0.0)
        for r in groups["front"] + groups["feasible"]
        if num(r, "accuracy") is not None
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


def write_png(
    path: str | Path,
    trials: Sequence[Row],
    objectives: Objectives,
    budgets: Budgets = None,
    title: str = "nasl run",
) -> None:
    """Write pareto.png (:func:`pareto_figure`), atomically."""
    fig = pareto_figure(trials, objectives, budgets, title)
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp)
    os.replace(tmp, path)  # atomic: a kill never leaves a half-written picture


def pareto_figure(
    trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None, title: str = "nasl run"
) -> Any:
    """The matplotlib Figure of pareto.png: accuracy vs MACs (and vs latency when measured),
    baselines named without overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot, no global backend
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter

    xs = ["macs"] + (
        ["latency_ms"] if any(num(r, "latency_ms") is not None for r in trials) else []
    )
    fig = Figure(figsize=(6.4 * len(xs), 5.2), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    pending: list[tuple[Any, str, Sequence[Row], Any]] = []  # baselines to label once laid out
    for k, x in enumerate(xs):
        ax, p = fig.add_subplot(1, len(xs), k + 1), panel(trials, objectives, budgets, x)
        for cat in SHOWN:
            if rows := p.placed[cat]:
                ax.scatter([num(r, x) for r in rows], [num(r, "accuracy") for r in rows],
                           s=50 if cat == "front" else 25, c=COLORS[cat], label=cat, zorder=3,
                           edgecolors="white", linewidths=0.5)  # fmt: skip
                if (bars := accuracy_bars(rows)) is not None:  # 95 % intervals of the means
                    ax.errorbar([num(r, x) for r in rows], [num(r, "accuracy") for r in rows],
                                yerr=bars, fmt="none", ecolor=COLORS[cat], lw=0.8, zorder=2)
                tied = [r for r in rows if cat == "front" and r.get("confident") is False]
                if tied:  # tied within noise with a cheaper member: ring
                    ax.scatter([num(r, x) for r in tied], [num(r, "accuracy") for r in tied],
                               s=120, facecolors="none", edgecolors="#c03030", zorder=4,
                               label="front, tied with a cheaper member")
            if rows := p.rug[cat]:
                ax.scatter([num(r, x) for r in rows], [0.02] * len(rows), marker="x", zorder=3,
                           c=COLORS[cat], transform=ax.get_xaxis_transform(),
                           label=f"{cat} (not trained)")  # fmt: skip
        if p.step:
            ax.step(*zip(*p.step, strict=True), where="post", c=COLORS["front"], lw=1.2, zorder=2)
        if p.baselines:
            prefix, _ = short_names([row_baseline(r) for r in p.baselines])
            ax.scatter([num(r, x) or 0.0 for r in p.baselines],
                       [num(r, "accuracy") or 0.0 for r in p.baselines], marker="*", s=160,
                       c="#222", zorder=4, label=f"baselines ({prefix}…)" if prefix else "baselines")
            others = [(num(r, x), num(r, "accuracy")) for rows in p.placed.values() for r in rows
                      if r not in p.baselines and None not in (num(r, x), num(r, "accuracy"))]
            pending.append((ax, x, p.baselines, others))
        if p.budget is not None:
            ax.axvline(
                p.budget, ls="--", c="#555", lw=1, label=f"budget {fmt_budget(x, p.budget)}"
            )
        shown = [
            v for rows in (*p.placed.values(), *p.rug.values()) for r in rows if (v := num(r, x))
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
    label_baselines(fig, pending)
    return fig
