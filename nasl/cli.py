"""Command line: parses arguments and calls library functions (nothing else lives here).

Every user error ends as one line on stderr and exit status 2 (see :mod:`nasl.errors`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from nasl.errors import NaslError

MACS_NOTE = ("MACs are multiply-accumulates of conv and linear layers (BN, activations, pooling "
             "count zero); 'FLOPs' means the same, as in the ShuffleNet paper: 40MFLOPs = 40e6 "
             "multiply-adds.")


def _parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings → dict; values are read as YAML scalars/lists (0.5, true, [4,8,4])."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise NaslError(f"--set {item!r}: expected KEY=VALUE, e.g. --set width_mult=0.5")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            raise NaslError(f"--set {item!r}: cannot read value {raw!r}; expected a number, "
                            "true/false, a word or a list like [4,8,4]") from None
    return out


def _console() -> Any:
    """A rich console; wide when the output is not a terminal (files, pipes, CI logs)."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


# --------------------------------------------------------------------------- presets / cost
def cmd_presets(args: argparse.Namespace) -> int:
    from rich.table import Table

    from nasl.families import PRESETS, preset

    table = Table(title="nasl presets (papers' networks at their default input)")
    for col in ("preset", "family", "input", "MACs", "params", "size (MB fp32)", "design choices"):
        table.add_column(col, justify="right" if col in ("input", "MACs", "params") else "left")
    rows = []
    for name, (family, choices) in PRESETS.items():
        a = preset(name)
        params = a.params()
        rows.append({"preset": name, "family": family, "input_size": a.input_size,
                     "macs": a.macs(), "params": params, "size_mb": params * 4 / 2**20,
                     "choices": choices})
        table.add_row(name, family, str(a.input_size), _human(rows[-1]["macs"]), f"{params:,}",
                      f"{params * 4 / 2**20:.2f}",
                      " ".join(f"{k}={v}" for k, v in choices.items()) or "-")
    if args.json:
        print(json.dumps(rows))
    else:
        _console().print(table)
        print(MACS_NOTE)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from nasl import cost
    from nasl.families import preset_choices

    try:
        family, choices = preset_choices(args.preset)
        choices.update(_parse_set(args.set))
        arch = family.generate(choices, input_size=args.input_size, num_classes=args.num_classes)
    except ValueError as e:
        raise NaslError(f"nasl cost {args.preset}: {e}") from None
    result: dict[str, Any] = {"preset": args.preset, "family": family.name,
                              "choices": dict(arch.choices), "arch_id": arch.id,
                              "input_size": arch.input_size, "num_classes": arch.num_classes,
                              **cost.costs(arch)}
    if args.latency:
        from nasl.builder import build_model

        try:
            lat = cost.measure_latency(build_model(arch), (3, arch.input_size, arch.input_size),
                                       device=args.device, repeats=args.repeats,
                                       threads=args.threads)
        except ValueError as e:
            raise NaslError(f"nasl cost --latency: {e}") from None
        result.update({"latency_ms": lat.median_ms, "latency_p10_ms": lat.p10_ms,
                       "latency_p90_ms": lat.p90_ms, "latency": lat.to_dict(),
                       "device": lat.device, "device_name": lat.device_name})
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.preset} ({family.name}) at {arch.input_size}px, {arch.num_classes} classes  "
          f"[arch {arch.id}]")
    print(f"  MACs    {result['macs']:>15,}  ({_human(result['macs'])})")
    print(f"  params  {result['params']:>15,}  ({_human(result['params'])})")
    print(f"  size    {result['size_mb']:>15.2f}  MB fp32 ({result['size_int8_mb']:.2f} MB int8)")
    if args.latency:
        print(f"  latency {result['latency_ms']:>15.2f}  ms median (p10 {result['latency_p10_ms']:.2f}"
              f", p90 {result['latency_p90_ms']:.2f}) on {result['device']} "
              f"{result['device_name']}, batch 1, {args.threads} thread(s)")
    return 0


# --------------------------------------------------------------------------- search / report
def parse_duration(text: str) -> float:
    """``30m``, ``90s``, ``2h``, ``1h30m`` or plain seconds → seconds (``NaslError`` if bad)."""
    import re

    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        value = float(t)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*(h|m|min|s|sec)", t)
        if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(h|min|m|sec|s)", "", t).strip():
            raise NaslError(f"--timeout {text!r}: expected a duration like 30m, 90s, 2h or 1h30m")
        scale = {"h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1}
        value = sum(float(n) * scale[u] for n, u in parts)
    if value <= 0:
        raise NaslError(f"--timeout {text!r}: expected a positive duration")
    return value


def cmd_search(args: argparse.Namespace) -> int:
    from nasl.search import SearchOptions, run_search
    from nasl.search.options import will_resume
    from nasl.units import parse_budgets

    wandb = {"project": args.wandb_project, "entity": args.wandb_entity} if args.wandb else None
    opts = SearchOptions(
        name=args.name, runs_dir=Path(args.runs_dir), budgets=dict(parse_budgets(args.budget or [])),
        trials=args.trials, sampler=args.sampler, seed=args.seed, epochs=args.epochs,
        data=args.data, early_stop=not args.no_early_stop,
        early_stop_margin=args.early_stop_margin,
        timeout=parse_duration(args.timeout) if args.timeout else None, resume=args.resume,
        storage=args.storage, device=args.device, threads=args.threads,
        show_progress=not args.quiet, baselines=not args.no_baselines, wandb=wandb)
    space = None if will_resume(opts) else _load_space_announced(args.space, args.quiet)
    outcome = run_search(space, opts, backend=args.backend, workers=args.workers,
                         address=args.address, cpus_per_trial=args.cpus_per_trial,
                         gpus_per_trial=args.gpus_per_trial)
    _print_run(outcome.run, quiet=args.quiet)
    if outcome.interrupted:
        print(f"interrupted: outputs written; continue with --resume --name {outcome.run.name}",
              file=sys.stderr)
        return 130
    return 0


def _load_space_announced(text: str, quiet: bool) -> Any:
    """Load a space and say, on stderr, which file it came from (unless ``quiet``)."""
    from nasl.space import load_space

    space = load_space(text)
    source = getattr(space, "source", None)
    if source and not quiet:
        print(f"space: {source}", file=sys.stderr)
    return space


def _print_run(run: Any, quiet: bool = False) -> None:

    from nasl import report
    from nasl.results import load_run

    rows, env = load_run(run)
    objectives = [tuple(o) for o in env["objectives"]]
    console = _console()
    console.print(report.front_table(rows, objectives))
    console.print(report.summary_line(rows))
    if not quiet:
        for f in ("trials.csv", "pareto.csv", "pareto.json", "report.html", "pareto.png",
                  "env.json", "space.yaml"):
            if (run / f).exists():
                console.print(f"  {run / f}")
        console.print(f"  optuna-dashboard {env['storage']}")
        console.print(f"To search longer: nasl search {env.get('space', '<space>')} --name "
                      f"{run.name} --resume --trials {2 * int(env.get('trials') or 20)} "
                      "(keeps every trial), or a new run with --trials/--epochs/--data.")


def cmd_report(args: argparse.Namespace) -> int:
    from nasl.report import rebuild

    run = rebuild(Path(args.run))
    _print_run(run, quiet=args.quiet)
    return 0


# --------------------------------------------------------------------------- space
def cmd_space(args: argparse.Namespace) -> int:
    from nasl import space as sp
    from nasl.units import parse_budgets

    if args.space_command == "list":
        rows = sp.list_spaces()
        if args.json:
            print(json.dumps([{"name": n, "path": p, "description": d} for n, p, d in rows]))
        else:
            w = max(len(n) for n, _, _ in rows)
            for name, path, desc in rows:
                print(f"{name:<{w}}  {desc}\n{'':<{w}}  {path}")
        return 0
    space = sp.load_space(args.file)
    if getattr(args, "set", None):
        space = space.with_overrides(_parse_set(args.set))
    if args.space_command == "validate":
        print(f"{args.file}: ok ({space.family}, {len(space.order)} design choices, "
              f"{len(space.baselines)} baselines)")
        return 0
    if args.space_command == "show":
        budgets = parse_budgets(args.budget or [])
        summary = sp.describe(space, budgets, n=args.n, seed=args.seed)
        print("\n".join(summary.lines()))
        return 0
    if args.n < 1:
        raise NaslError(f"-n {args.n}: expected an integer >= 1")
    configs = sp.sample_configs(space, args.n, seed=args.seed)
    if args.json:
        print(json.dumps(configs))
    else:
        for c in configs:
            choices = " ".join(f"{k}={v}" for k, v in c["params"].items())
            print(f"#{c['number']}  {_human(c['macs'])} MACs  {_human(c['n_params'])} params  "
                  f"[{c['arch_id']}]  {choices}")
    return 0


# --------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from nasl.export import export_preset, export_run

    if (args.run is None) == (args.preset is None):
        raise NaslError("nasl export: give a run folder or --preset NAME (one of them)")
    if args.preset is not None:
        try:
            overrides = _parse_set(args.set)
            result = export_preset(args.preset, overrides, epochs=args.epochs,
                                   train=not args.no_train, data=args.data, formats=args.format,
                                   out=args.out, progress=not args.quiet)
        except ValueError as e:
            raise NaslError(f"nasl export --preset {args.preset}: {e}") from None
    else:
        if args.set:
            raise NaslError("--set goes with --preset; a run's trial is exported as searched")
        result = export_run(args.run, trial=args.trial, pick=args.pick, epochs=args.epochs,
                            train=not args.no_train, data=args.data, formats=args.format,
                            out=args.out, progress=not args.quiet)
    _print_export(result)
    return 0


def _print_export(result: Any) -> None:
    card = result.card
    print(f"exported {result.arch.family} network [{result.arch.id}] to {result.out}")
    for key in ("test_accuracy", "proxy_accuracy"):
        if card.get(key) is not None:
            print(f"  {key.replace('_', ' ')}: {card[key]:.2%}")
    for name, path in result.files.items():
        diff = result.max_diff.get(name.split(".")[-1]) or result.max_diff.get(name)
        check = f"  (max |diff| vs eager {diff:.1e})" if diff is not None else ""
        print(f"  {path}{check}")


# --------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line (exit 2), like every other error."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise NaslError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="nasl", description="Hardware-aware neural-architecture search for lightweight CNNs.",
        epilog=MACS_NOTE)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sp = sub.add_parser("presets", help="the papers' networks with their MACs and params")
    sp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sp.set_defaults(func=cmd_presets)

    sp = sub.add_parser("cost", help="MACs, params, size (and latency) of a preset",
                        epilog=MACS_NOTE)
    sp.add_argument("preset", help="squeezenet1_0, squeezenet1_1, mobilenet_v1, shufflenet_v1, "
                                   "xception (see `nasl presets`)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a design choice, e.g. --set width_mult=0.5 (repeatable)")
    sp.add_argument("--input-size", type=int, default=None,
                    help="input side at resolution_mult=1 (default: the paper's, 224 or 299)")
    sp.add_argument("--num-classes", type=int, default=1000)
    sp.add_argument("--latency", action="store_true", help="also measure latency (batch 1)")
    sp.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu, cuda:N")
    sp.add_argument("--threads", type=int, default=1, help="CPU threads for latency (default 1)")
    sp.add_argument("--repeats", type=int, default=30, help="timed runs (median reported)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.set_defaults(func=cmd_cost)

    sp = sub.add_parser(
        "search", help="multi-objective search: train candidates, keep the Pareto front",
        epilog=MACS_NOTE + " Budgets: 40MFLOPs, 40M, 40MMACs, 0.04GFLOPs (MACs), 1.5Mparams, "
        "5ms or 300us (latency), 2MB (fp32 size), or explicit macs<=40M.")
    sp.add_argument("space", help="a shipped space name (see `nasl space list`) or a YAML file")
    sp.add_argument("--budget", action="append", metavar="BUDGET",
                    help="hard budget, e.g. 40MFLOPs, 1.5Mparams, 5ms, 2MB (repeatable; "
                         "overrides the space's budget for that metric)")
    sp.add_argument("--trials", type=int, help="trained trials in total (rejected over-budget "
                                               "candidates do not count)")
    sp.add_argument("--sampler", help="tpe (default), nsga2, nsga3, gp or random")
    sp.add_argument("--seed", type=int, help="study seed (per-trial seeds derive from it)")
    sp.add_argument("--epochs", type=int, help="proxy-training epochs per trial")
    sp.add_argument("--data", help="proxy data set: digits (default), fashion-mnist[:DIR], "
                                   "cifar10:DIR, cifar100:DIR, imagefolder:DIR, npz:PATH")
    sp.add_argument("--no-early-stop", action="store_true",
                    help="train every candidate to the end")
    sp.add_argument("--early-stop-margin", type=float, default=0.02, metavar="GAP",
                    help="accuracy gap (0-1) to a cheaper front member at the same epoch that "
                         "stops a trial (default 0.02)")
    sp.add_argument("--no-baselines", action="store_true",
                    help="do not enqueue the space's baselines first")
    sp.add_argument("--timeout", help="stop starting new trials after this long (30m, 2h, 90s)")
    sp.add_argument("--name", help="run name (default: space name + timestamp)")
    sp.add_argument("--runs-dir", default="runs", help="folder of runs (default: runs)")
    sp.add_argument("--resume", action="store_true", help="continue the run called --name")
    sp.add_argument("--storage", help="Optuna storage URL (default: sqlite in the run folder); "
                                      "e.g. postgresql://... to share a study between processes")
    sp.add_argument("--device", help="latency device: auto, cpu, cuda[:i] (default: the space's)")
    sp.add_argument("--threads", type=int, help="torch threads for training (default: torch's)")
    sp.add_argument("--quiet", action="store_true", help="no live progress display")
    sp.add_argument("--backend", choices=("optuna", "ray"), default="optuna",
                    help="optuna (one process, default) or ray (many workers or a cluster)")
    sp.add_argument("--workers", type=int, default=None, help="ray: trials at once")
    sp.add_argument("--address", default=None, help="ray: auto or ray://HOST:PORT")
    sp.add_argument("--cpus-per-trial", type=float, default=1.0, help="ray: CPUs per trial")
    sp.add_argument("--gpus-per-trial", type=float, default=0.0, help="ray: GPUs per trial")
    sp.add_argument("--wandb", action="store_true", help="log trials and the front to W&B")
    sp.add_argument("--wandb-project", default=None)
    sp.add_argument("--wandb-entity", default=None)
    sp.set_defaults(func=cmd_search)

    sp = sub.add_parser("space", help="list, validate, show and sample search spaces")
    ssub = sp.add_subparsers(dest="space_command", metavar="SUBCOMMAND")
    ssub.required = True
    x = ssub.add_parser("list", help="the shipped spaces")
    x.add_argument("--json", action="store_true")
    x = ssub.add_parser("validate", help="check a space file (exit 0, or one clear error)")
    x.add_argument("file", help="a YAML file or a shipped space name")
    x = ssub.add_parser("show", help="parameters, size, MACs/params range, feasible fraction",
                        epilog=MACS_NOTE)
    x.add_argument("file", help="a YAML file or a shipped space name")
    x.add_argument("--budget", action="append", metavar="BUDGET",
                   help="e.g. 40MFLOPs, 1.5Mparams, 2MB (repeatable)")
    x.add_argument("-n", type=int, default=200, help="fixed-seed sample size (default 200)")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--set", action="append", metavar="KEY=VALUE", help="fix a design choice")
    x = ssub.add_parser("sample", help="sample designs with their costs")
    x.add_argument("file", help="a YAML file or a shipped space name")
    x.add_argument("-n", type=int, default=5, help="how many (default 5)")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--json", action="store_true", help="print a JSON list")
    x.add_argument("--set", action="append", metavar="KEY=VALUE", help="fix a design choice")
    sp.set_defaults(func=cmd_space)

    sp = sub.add_parser("export", help="a run's chosen design (or a preset) as a standalone, "
                                       "trained, verified model")
    sp.add_argument("run", nargs="?", help="the run folder, e.g. runs/shufflenet-2026...")
    sp.add_argument("--trial", type=int, help="any COMPLETE trial by number")
    sp.add_argument("--pick", help="from the front: knee (default), accuracy, macs, latency, ...")
    sp.add_argument("--preset", help="export a paper preset instead of a run's trial")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="with --preset: override a design choice")
    sp.add_argument("--epochs", type=int, help="training epochs (default: 3x the proxy, >= 30)")
    sp.add_argument("--no-train", action="store_true",
                    help="export the target network untrained (fresh initialisation)")
    sp.add_argument("--data", help="training data (default: the run's)")
    sp.add_argument("--format", default="py,onnx,pt2", help="any of py,onnx,pt2")
    sp.add_argument("--out", help="output folder (default runs/<name>/export/trial-N/)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("report", help="rebuild a run's outputs and print its Pareto front")
    sp.add_argument("run", help="the run folder, e.g. runs/shufflenet-20260101-120000")
    sp.add_argument("--quiet", action="store_true", help="only the table")
    sp.set_defaults(func=cmd_report)

    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nasl`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except NaslError as e:
        print(f"nasl: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nasl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `nasl space show x | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
