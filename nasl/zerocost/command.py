"""``nasl proxies RUN``: zero-cost proxies of a finished run's trained designs vs their accuracies.

In: a run folder (``trials.csv``, ``space.yaml``, ``env.json`` written by ``nasl search``).
Out: for each proxy and for params and MACs, Spearman and Kendall correlation with the
trained accuracies (95 % bootstrap intervals), the pre-screen decision each proxy would get,
as a rich table or ``--json``. Only COMPLETE, feasible trials with an accuracy count.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nasl.common.errors import NaslError
from nasl.zerocost.measures import PROXIES, check_names
from nasl.zerocost.prescreen import (
    DEFAULT_BATCH,
    DEFAULT_CONFIDENCE,
    DEFAULT_MARGIN,
    DEFAULT_MIN_TRIALS,
    DEFAULT_PROXY,
    PrescreenDecision,
    decide,
    decide_auto,
    score_design,
)
from nasl.zerocost.stats import N_BOOT, correlate

MIN_DESIGNS = 3


@dataclass(frozen=True)
class Trained:
    """One completed trial: its number, design params, target costs and accuracy."""

    number: int
    params: dict[str, Any]
    macs: float
    params_count: float
    accuracy: float


def _cell(text: str) -> Any:
    """A trials.csv cell → Python value (``True``, ``0.5``, ``3``, ``4,8,4`` stays text)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_trained(run: Path) -> tuple[Any, dict[str, Any], list[Trained]]:
    """Run folder → (space, env.json contents, completed feasible trials). NaslError if unusable."""
    from nasl.space import load_space

    if not run.is_dir():
        raise NaslError(f"no run folder {str(run)!r}; expected runs/<name> written by `nasl search`")
    csv_path, env_path, space_path = run / "trials.csv", run / "env.json", run / "space.yaml"
    for p in (csv_path, env_path, space_path):
        if not p.is_file():
            raise NaslError(f"{str(run)!r} is not a finished nasl run: {p.name} missing")
    try:
        env = json.loads(env_path.read_text())
    except json.JSONDecodeError as e:
        raise NaslError(f"{env_path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    space = load_space(space_path)
    from nasl.space.core import require_network

    require_network(space, "nasl proxies")
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        rows = list(reader)
    need = ["number", "state", "feasible", "accuracy", "macs", "params"]
    lacking = [c for c in need if c not in cols]
    if lacking:
        raise NaslError(f"{csv_path}: columns {lacking} missing; expected a trials.csv from "
                        "`nasl search`")
    names = env.get("choice_names") or [c for c in space.order if c in cols]
    out = []
    for r in rows:
        if r["state"] != "COMPLETE" or r["feasible"] != "True" or not r["accuracy"]:
            continue
        params = {k: _cell(r[k]) for k in names if r.get(k, "") != ""}
        out.append(Trained(int(r["number"]), params, float(r["macs"]), float(r["params"]),
                           float(r["accuracy"])))
    if len(out) < MIN_DESIGNS:
        raise NaslError(f"{csv_path}: {len(out)} completed feasible trials with an accuracy; "
                        f"correlations need at least {MIN_DESIGNS}")
    return space, env, out


def _data_loader(space: Any, env: dict[str, Any]) -> Any:
    """``resolution → DataSplits`` with the run's data settings (loaded once per resolution)."""
    from nasl.data import load_dataset

    cache: dict[int, Any] = {}
    spec = env.get("data") or space.proxy.dataset
    seed = int(env.get("seed", 0))

    def data_for(res: int) -> Any:
        if res not in cache:
            cache[res] = load_dataset(spec, resolution=res, seed=seed,
                                      val_fraction=space.proxy.val_fraction,
                                      subset=space.proxy.subset, val_subset=space.proxy.val_subset,
                                      split="search")
        return cache[res]

    return data_for


def run_proxies(run: str | Path, names: Sequence[str] = PROXIES, *, batch_size: int = DEFAULT_BATCH,
                seed: int = 0, n_boot: int = N_BOOT, margin: float = DEFAULT_MARGIN,
                min_trials: int = DEFAULT_MIN_TRIALS, confidence: float = DEFAULT_CONFIDENCE
                ) -> dict[str, Any]:
    """Score a finished run's trained designs → a JSON-ready dict.

    Keys: ``run``, ``n``, ``proxies``, ``batch_size``, ``seed``, ``seconds_per_design``
    (wall and CPU), ``correlations`` (one dict per metric: proxies, then params and macs),
    ``decisions`` ({proxy: PrescreenDecision.to_dict()}), ``designs`` (number, accuracy,
    params, macs and each proxy's score).
    """
    names = check_names(names)
    if batch_size < 2:
        raise NaslError(f"--batch {batch_size}: expected at least 2 images")
    space, env, trained = load_trained(Path(run))
    data_for = _data_loader(space, env)
    data_for(space.proxy_arch(trained[0].params, 1, 3).input_size)  # data errors before timing
    designs, wall, cpu = [], 0.0, 0.0
    for t in trained:
        t0, c0 = time.perf_counter(), time.process_time()
        s = score_design(space, t.params, data_for, names, seed=seed, batch_size=batch_size)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        designs.append({"number": t.number, "accuracy": t.accuracy, "params": t.params_count,
                        "macs": t.macs, **s})
    acc = [d["accuracy"] for d in designs]
    scores = {m: [d[m] for d in designs] for m in (*names, "params", "macs")}
    corr = correlate(scores, acc, n_boot=n_boot, seed=seed)
    decisions: dict[str, PrescreenDecision] = {
        p: decide(scores, acc, p, margin, min_trials, confidence=confidence, n_boot=n_boot,
                  seed=seed, corr=corr) for p in names}
    auto = decide_auto(scores, acc, names, margin, min_trials, confidence=confidence,
                       n_boot=n_boot, seed=seed, corr=corr)
    return {"run": str(run), "n": len(designs), "proxies": list(names), "batch_size": batch_size,
            "seed": seed, "seconds_per_design": {"wall": wall / len(designs), "cpu": cpu / len(designs)},
            "correlations": [c.to_dict() for c in corr.values()],
            "decisions": {p: d.to_dict() for p, d in decisions.items()},
            "auto": auto.to_dict(),
            "designs": [{k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                         for k, v in d.items()} for d in designs]}


def _ci(v: float | None, ci: Sequence[float | None]) -> str:
    if v is None:
        return "-"
    lo, hi = ci
    return f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]" if lo is not None and hi is not None else f"{v:+.2f}"


def render(result: dict[str, Any]) -> Any:
    """The result of :func:`run_proxies` as a rich Table."""
    from rich.table import Table

    table = Table(title=f"zero-cost proxies vs trained accuracy - {result['run']} "
                        f"({result['n']} designs, 95% bootstrap intervals)")
    for col in ("metric", "Spearman ρ [95% CI]", "Kendall τ [95% CI]", "n", "pre-screen"):
        table.add_column(col, justify="left" if col in ("metric", "pre-screen") else "right")
    for c in result["correlations"]:
        d = result["decisions"].get(c["metric"])
        table.add_row(c["metric"], _ci(c["spearman"], c["spearman_ci"]),
                      _ci(c["kendall"], c["kendall_ci"]), str(c["n"]),
                      ("on" if d["on"] else "off") if d else "(cost)")
    return table


def cmd_proxies(args: argparse.Namespace) -> int:
    """``nasl proxies RUN`` → exit status (NaslError for user errors)."""
    names = [n.strip() for n in args.proxies.split(",") if n.strip()] if args.proxies else PROXIES
    for flag, v, lo in (("--bootstrap", args.bootstrap, 100), ("--min-trials", args.min_trials, 3)):
        if v < lo:
            raise NaslError(f"{flag} {v}: expected an integer >= {lo}")
    if not 0.0 < args.confidence < 1.0:
        raise NaslError(f"--confidence {args.confidence}: expected a number between 0 and 1")
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    result = run_proxies(args.run, names, batch_size=args.batch, seed=args.seed,
                         n_boot=args.bootstrap, margin=args.margin, min_trials=args.min_trials,
                         confidence=args.confidence)
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(render(result))
    sec = result["seconds_per_design"]
    print(f"proxies took {sec['wall']:.2f} s wall ({sec['cpu']:.2f} s CPU) per design, batch "
          f"{result['batch_size']}; params and MACs are the target network's (free).")
    shown = result["decisions"].get(DEFAULT_PROXY, result["auto"])
    print(f"pre-screen ({DEFAULT_PROXY}): {shown['reason']}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``nasl proxies`` on the CLI's subparsers."""
    sp = sub.add_parser("proxies", help="zero-cost proxies of a run's trained designs vs their "
                                        "accuracy (Spearman, Kendall, bootstrap intervals)")
    sp.add_argument("run", help="the run folder, e.g. runs/shufflenet-20260101-120000")
    sp.add_argument("--proxies", help=f"comma-separated (default {','.join(PROXIES)}; also jacob_cov)")
    sp.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="images per proxy batch (64)")
    sp.add_argument("--seed", type=int, default=0, help="network init, batch and bootstrap seed")
    sp.add_argument("--bootstrap", type=int, default=N_BOOT, help="bootstrap resamples (1000)")
    sp.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                    help="pre-screen: lead in Spearman over params/MACs needed (0.1)")
    sp.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                    help="pre-screen: share of bootstrap resamples the lead must hold in (0.9)")
    sp.add_argument("--min-trials", type=int, default=DEFAULT_MIN_TRIALS,
                    help="pre-screen: completed trials needed before it can turn on (10)")
    sp.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.set_defaults(func=cmd_proxies)
