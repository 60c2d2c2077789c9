"""Showing a fidelity check: terminal table, report.html fragment, W&B run.

In: the result dict of :func:`nasl.fidelity.core.run_fidelity` (or a run folder holding
``fidelity.json``). Out: a rich Table and summary lines, an HTML fragment, an offline/online
W&B run (``job_type="fidelity"``) — the W&B logger never raises (one warning instead).
"""

from __future__ import annotations

import html
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from nasl.fidelity.core import FILE_JSON

_WARNED: list[str] = []


def _acc(v: Any) -> str:
    return "" if v is None else f"{float(v):.4f}"


def _ci(c: dict[str, Any], key: str) -> str:
    v, (lo, hi) = c.get(key), c.get(f"{key}_ci") or (None, None)
    if v is None:
        return "n/a (needs >= 3 designs with differing accuracies)"
    if lo is None or hi is None:
        return f"{v:+.2f}"
    return f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Plain-text conclusions: fidelities, rank agreement, top-k recall, claims."""
    s, p = result["settings"], result.get("proxy") or {}
    c, tk, cs = result["correlation"], result["top_k"], result["claims_summary"]
    data = "the full training split" if s.get("full") else f"subset {s.get('subset')}"
    lines = [f"{len(result['designs'])}/{len(result['planned'])} designs re-trained ({result['status']}): "
             f"proxy {p.get('epochs')} epochs on subset {p.get('subset')} → {s['epochs']} epochs on "
             f"{data}, {s['seeds']} seed(s) each"
             + (f"; recipe {s['recipe']}" if s.get("recipe") else ""),
             f"Kendall tau {_ci(c, 'kendall')}, Spearman rho {_ci(c, 'spearman')} "
             f"(n={c.get('n')}, 95 % bootstrap intervals)"]
    if tk.get("recall") is not None:
        lines.append(f"top-{tk['k']} recall {tk['recall']:.2f} ({tk['hits']}/{tk['k']}; chance "
                     f"{tk['chance']:.2f}): proxy top {tk['proxy_top']}, high-fidelity top "
                     f"{tk['high_top']}")
    if result["claims"]:
        lines.append("baseline claims: " + ", ".join(f"{n} {k}" for k, n in cs.items() if n))
        for cl in result["claims"]:
            lines.append(f"  trial {cl['trial']} beats {cl['baseline']} (trial "
                         f"{cl['baseline_trial']}): {cl['status']}"
                         + (f" ({_acc(cl['high_accuracy'])} vs {_acc(cl['baseline_high_accuracy'])})"
                            if "high_accuracy" in cl else ""))
    else:
        lines.append("baseline claims: none (the proxy search found no design beating a baseline "
                     "beyond noise)")
    return lines


def table(result: dict[str, Any]) -> Any:
    """The re-trained designs as a rich Table (proxy vs high-fidelity accuracy)."""
    from rich.table import Table

    t = Table(title=f"proxy fidelity of {result['run']}")
    for col in ("trial", "role", "baseline", "proxy acc", "high-fid acc", "gain", "wall s"):
        t.add_column(col, justify="left" if col in ("role", "baseline") else "right")
    for d in result["designs"]:
        t.add_row(str(d["number"]), d["role"], d.get("baseline") or "", _acc(d["proxy_accuracy"]),
                  _acc(d["high_accuracy"]), f"{d['gain']:+.4f}", f"{d['wall_s']:.1f}")
    return t


def fidelity_html(run_dir: str | Path) -> str | None:
    """An HTML fragment (heading, summary, table) from ``run_dir/fidelity.json``; None when the
    run has no (readable) fidelity check."""
    path = Path(run_dir) / FILE_JSON
    try:
        result = json.loads(path.read_text())
        lines = summary_lines(result)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    head = "".join(f"<th>{h}</th>" for h in ("trial", "role", "baseline", "proxy accuracy",
                                             "high-fidelity accuracy", "gain"))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            d["number"], d["role"], d.get("baseline") or "", _acc(d["proxy_accuracy"]),
            _acc(d["high_accuracy"]), f"{d['gain']:+.4f}")) + "</tr>"
        for d in result["designs"])
    items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines)
    return (f"<h2>Proxy fidelity</h2><ul>{items}</ul>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p><small>{html.escape(result.get('claim_rule', ''))}</small></p>")


def _warn_once(exc: BaseException) -> None:
    if not _WARNED:
        _WARNED.append(str(exc))
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        warnings.warn(f"W&B logging of the fidelity check failed ({type(exc).__name__}: {first}); "
                      "fidelity.json and fidelity.csv are unaffected", RuntimeWarning, stacklevel=2)


def log_fidelity_to_wandb(run_dir: str | Path, result: dict[str, Any], *, project: str | None = None,
                          entity: str | None = None, mode: str | None = None) -> bool:
    """Log ``result`` as one W&B run (group = the run's name, ``job_type="fidelity"``; offline
    without credentials, files under ``run_dir/wandb``) → whether it was logged. Never raises."""
    set_vars: list[str] = []
    try:
        from nasl.tracking.mode import resolve_mode

        chosen = resolve_mode(mode)
        if chosen == "disabled":
            return False
        import wandb

        root = Path(run_dir)
        for var, sub in (("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                         ("WANDB_ARTIFACT_DIR", "artifacts")):
            if not os.environ.get(var):
                os.environ[var] = str((root / "wandb" / sub).resolve())
                set_vars.append(var)
        kwargs: dict[str, Any] = {"mode": "offline"} if chosen == "offline" else {}
        run = wandb.init(project=project or "nasl", entity=entity, dir=str(root), group=root.name,
                         job_type="fidelity", name=f"{root.name}-fidelity", reinit="create_new",
                         config={"run": root.name, **result["settings"], "proxy": result.get("proxy")},
                         settings=wandb.Settings(silent=True, console="off", save_code=False,
                                                 x_disable_stats=True, x_save_requirements=False),
                         **kwargs)
        try:
            cols = ["trial", "role", "baseline", "proxy_accuracy", "high_accuracy", "gain", "macs"]
            rows = [[d["number"], d["role"], d.get("baseline") or "", d["proxy_accuracy"],
                     d["high_accuracy"], d["gain"], d.get("macs")] for d in result["designs"]]
            c, tk = result["correlation"], result["top_k"]
            summary = {"kendall": c.get("kendall"), "spearman": c.get("spearman"),
                       "kendall_low": (c.get("kendall_ci") or [None, None])[0],
                       "kendall_high": (c.get("kendall_ci") or [None, None])[1],
                       "spearman_low": (c.get("spearman_ci") or [None, None])[0],
                       "spearman_high": (c.get("spearman_ci") or [None, None])[1],
                       "top_k": tk.get("k"), "top_k_recall": tk.get("recall"),
                       "designs": len(result["designs"]), "mean_gain": result.get("mean_gain"),
                       **{f"claims_{k.replace(' ', '_')}": v
                          for k, v in result["claims_summary"].items()}}
            run.log({"fidelity": wandb.Table(columns=cols, data=rows)})
            run.summary.update({k: v for k, v in summary.items() if v is not None})
        finally:
            run.finish()
        where = f"offline, under {root / 'wandb'}" if chosen == "offline" else run.url
        print(f"nasl: fidelity logged to W&B ({where})", file=sys.stderr)
        return True
    except Exception as e:  # never raise: the check's files are what matter
        _warn_once(e)
        return False
    finally:
        for var in set_vars:
            os.environ.pop(var, None)
