"""Tables of a run (rich for the terminal, HTML for report.html) and report.html itself."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from nasl.report.figures import accuracy_figure, history_figure, macs_latency_figure
from nasl.report.rows import (
    Budgets,
    Objectives,
    Row,
    design_columns,
    device_warning,
    fmt_acc,
    fmt_budget,
    fmt_expected,
    fmt_latency,
    fmt_noise,
    fmt_value,
    format_count,
    front_indices,
    front_rows,
    num,
    row_baseline,
    row_choices,
    row_state,
    summary_line,
)

# ----------------------------------------------------------------------------- tables
HEADERS = [
    "trial",
    "baseline",
    "design choices",
    "MACs",
    "params",
    "latency ms [p10–p90]",
    "accuracy [±95% CI]",
    "expected",
    "noise",
]


def _front_cells(row: Row, choices: str) -> list[str]:
    base = f"★ {row_baseline(row)}" if row_baseline(row) else ""
    return [str(row.get("number", "")), base, choices, format_count(num(row, "macs")),
            format_count(num(row, "params")), fmt_latency(row), fmt_acc(row),
            fmt_expected(row), fmt_noise(row)]  # fmt: skip


def front_table(trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None) -> Table:
    """The Pareto front as a rich Table ranked by accuracy; constant choices go in the caption."""
    rows = front_rows(trials, objectives, budgets)
    cols = design_columns(rows)
    varying = [c for c in cols if len({repr(r.get(c)) for r in rows}) > 1]
    same = {c: rows[0][c] for c in cols if c not in varying and rows[0].get(c) is not None}
    caption = [escape(f"same for all: {row_choices(same, list(same))}")] if same else []
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
        table.add_row(str(rank), *map(escape, _front_cells(row, row_choices(row, varying))))
    return table


def front_html_table(trials: Sequence[Row], objectives: Objectives, budgets: Budgets = None) -> str:
    """The Pareto front as an HTML <table>, one column per design choice."""
    rows = front_rows(trials, objectives, budgets)
    cols = design_columns(rows)
    out = "".join(f"<th>{html.escape(h)}</th>" for h in ("#", *HEADERS[:2], *cols, *HEADERS[3:]))
    out = f"<table><thead><tr>{out}</tr></thead><tbody>"
    for rank, row in enumerate(rows, start=1):
        cells = _front_cells(row, "")
        choices = [fmt_value(row[c]) if row.get(c) is not None else "" for c in cols]
        values = [str(rank), *cells[:2], *choices, *cells[3:]]
        out += "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>"
    return out + "</tbody></table>"


def confidence_lines(trials: Sequence[Row], objectives: Objectives) -> list[str]:
    """The front's noise in words: the rule, the pooled seed std, ties, baseline verdicts."""
    from nasl.run import verdict
    from nasl.stats import confidence, shrink

    rows = [dict(r) for r in trials]
    verdict.add_seed_stats(rows)
    for i in front_indices(rows, objectives):
        rows[i]["pareto"] = True
    conf = verdict.front_verdict(rows, list(objectives))
    expected = ([f"expected: {shrink.RULE}"]
                if any(r.get("accuracy_expected") is not None for r in rows) else [])
    if conf is None:
        return [*expected, "search-fidelity screening: one seed per design, no noise estimate (--seeds 2 "
                "gives one); the front was picked on these numbers, so its members' accuracies are "
                "biased up (`nasl fidelity` re-trains them with fresh seeds); the answer above is "
                "decided at the confirmation fidelity"]
    groups = [verdict.seed_values(r) for r in rows if r.get("state") == "COMPLETE"]
    sd = confidence.pooled_std(groups)
    lines = [*expected, f"rule: {conf['rule']}",
             f"pooled seed std of accuracy: {100 * sd:.2f} points "
             f"({confidence.pooled_df(groups)} degrees of freedom)" if sd == sd else
             "pooled seed std: unknown (no design trained with two seeds; see --seeds)"]
    for m in conf["members"]:  # type: ignore[union-attr]
        if not m["confident"]:
            lines.append(f"trial {m['name']} is tied within noise with the cheaper trial "
                         f"{m['tied_to']}")
    unbeaten = []
    for b in conf["baselines"]:  # type: ignore[union-attr]
        who = ", ".join(f"#{n}" for n in b["beaten_by"])
        if not who:
            unbeaten.append(str(b["name"]))
            continue
        lat = " and no slower" if "latency_ms" in conf["objectives"] else ""  # type: ignore[operator]
        lines.append(f"screening (search fidelity, not a claim): baseline {b['name']} (trial "
                     f"{b['trial']}) ahead beyond seed noise on accuracy at no more MACs{lat}: {who}")
    if unbeaten:
        lines.append("screening (search fidelity): no searched design shown ahead of "
                     f"{', '.join(unbeaten)} (absence of evidence, not a tie)")
    ties = [tuple(p) for p in conf["latency_ties"]]  # type: ignore[union-attr]
    if ties:
        shown = ", ".join(f"{a}~{b}" for a, b in ties[:12]) + (" …" if len(ties) > 12 else "")
        lines.append(f"latencies that cannot be told apart ({len(ties)} pairs of trials): {shown}")
    if conf.get("knee") is not None:
        lines.append(f"knee among the confident members: trial {conf['knee']}")
    return lines


# ----------------------------------------------------------------------------- writers
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    ".answer{background:#eef4fb;border:1px solid #2060b0;padding:.2em 1em;margin-bottom:1em}"
    ".warn{background:#fde2e2;border:1px solid #c03030;padding:.6em;font-weight:bold}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
)


def write_html(
    path: str | Path,
    trials: Sequence[Row],
    objectives: Objectives,
    budgets: Budgets = None,
    title: str = "nasl run",
    extra: Sequence[str] = (),
) -> None:
    """Write one self-contained report.html (plotly.js embedded once, so it works offline);
    ``extra``: HTML sections appended at the end (pre-screen, fidelity)."""
    from nasl.report.answer import answer_lines

    run = str(Path(path).parent)
    answer = "".join(f"<p>{html.escape(line)}</p>" for line in answer_lines(trials, objectives, run))
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<div class="answer"><h2>Answer</h2>{answer}</div>',
        f"<p>{html.escape(summary_line(trials, objectives, budgets))}</p>",
    ]
    if budgets:
        limits = ", ".join(f"{k} ≤ {fmt_budget(k, v)}" for k, v in budgets.items())
        parts.append(f"<p>budgets: {html.escape(limits)}</p>")
    if (warning := device_warning(trials, objectives, budgets)) is not None:
        parts.append(f'<p class="warn">⚠ {html.escape(warning)}</p>')
    if not any(row_state(r) == "COMPLETE" and num(r, "accuracy") is not None for r in trials):
        parts.append("<p><b>no completed trials yet</b></p>")
    figures = [accuracy_figure(trials, objectives, budgets, "macs")] if trials else []
    if any(num(r, "latency_ms") is not None for r in trials):
        figures.append(accuracy_figure(trials, objectives, budgets, "latency_ms"))
        figures.append(macs_latency_figure(trials, objectives, budgets))
    figures += [history_figure(trials, objectives, budgets)] if trials else []
    for i, fig in enumerate(figures):
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False})
        )
    parts += ["<h2>Pareto front</h2>", front_html_table(trials, objectives, budgets)]
    parts += ["<h2>Noise</h2>", "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in
                                                  confidence_lines(trials, objectives)) + "</ul>"]
    parts += list(extra)
    head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style>'
    page = f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(parts)}</body></html>"
    tmp = Path(path).with_name(f".{Path(path).name}.tmp{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a kill never leaves a half-written report


