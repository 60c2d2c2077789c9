"""``nasl search``, ``nasl report`` and ``nasl export``: runs and what comes out of them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nasl.cli.common import console, parse_duration, parse_set
from nasl.common.errors import NaslError


def cmd_search(args: argparse.Namespace) -> int:
    from nasl.common.units import parse_budgets
    from nasl.search import SearchOptions, run_search
    from nasl.search.options import will_resume

    wandb = {"project": args.wandb_project, "entity": args.wandb_entity} if args.wandb else None
    opts = SearchOptions(
        name=args.name, runs_dir=Path(args.runs_dir), budgets=dict(parse_budgets(args.budget or [])),
        trials=args.trials, sampler=args.sampler, seed=args.seed, epochs=args.epochs,
        data=args.data, early_stop=not args.no_early_stop,
        early_stop_margin=args.early_stop_margin,
        timeout=parse_duration(args.timeout) if args.timeout else None, resume=args.resume,
        storage=args.storage, device=args.device, threads=args.threads,
        train_device=args.train_device, precision=args.precision, compile=args.compile,
        trials_per_device=args.trials_per_device, devices=args.devices,
        adapt_threads=args.adapt_threads,
        show_progress=not args.quiet, baselines=not args.no_baselines, wandb=wandb,
        seeds=args.seeds, confirm_seeds=args.confirm_seeds, confirm_max=args.confirm_max,
        confirm_budget=args.confirm_budget, confirm_epochs=args.confirm_epochs,
        confirm_recipe=args.confirm_recipe, recipe=args.recipe, margin=args.margin,
        alpha=args.alpha, correction=args.correction,
        runtime=args.runtime, scheduler=args.scheduler, prescreen=args.prescreen,
        reduction_factor=args.reduction_factor, grace_period=args.grace_period,
        prescreen_proxy=args.prescreen_proxy, target_remote=args.target_remote,
        token_file=args.token_file, target_required=args.target_required)
    from nasl.common.guards import check_int
    from nasl.common.signals import sigterm_as_interrupt

    if args.workers is not None:
        check_int(args.workers, "--workers", 1, 4096)
    space = None if will_resume(opts) else _load_space_announced(args.space, args.quiet)
    with sigterm_as_interrupt():  # `kill PID` stops like Ctrl-C: outputs written, one message
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
    from nasl.space import describe_source, load_space

    space = load_space(text)
    if not quiet:
        print(describe_source(space), file=sys.stderr)
    return space


def _print_run(run: Any, quiet: bool = False) -> None:

    from rich.markup import escape

    from nasl import report
    from nasl.decide.answer import lines as answer_lines
    from nasl.report.tables import confidence_lines
    from nasl.run.results import load_run

    rows, env = load_run(run)
    objectives = [tuple(o) for o in env["objectives"]]
    out = console()
    for line in answer_lines(env.get("answer") or {}):  # the answer first
        out.print(escape(line))
    table = report.front_table(rows, objectives)
    if not sys.stdout.isatty():  # a log file or a pipe: plain columns, no box drawing
        table.box, table.title_justify, table.caption_justify = None, "left", "left"
    out.print(table)
    out.print(report.summary_line(rows))
    for line in confidence_lines(rows, objectives):
        out.print(f"  {escape(line)}")
    if not quiet:
        for f in ("trials.csv", "pareto.csv", "pareto.json", "report.html", "pareto.png",
                  "env.json", "space.yaml"):
            if (run / f).exists():
                out.print(f"  {run / f}")
        out.print(dashboard_hint(str(env["storage"])), highlight=False, markup=False)
        out.print(f"To search longer: nasl search {env.get('space', '<space>')} --name "
                  f"{run.name} --resume --trials {2 * int(env.get('trials') or 20)} "
                  "(keeps every trial), or a new run with --trials/--epochs/--data.")
        out.print(f"To rank the front without the search's selection noise: nasl fidelity {run.root} "
                  "(fresh seeds; --recipe augmented ranks as augmented training would).",
                  highlight=False, markup=False)


def dashboard_hint(storage: str) -> str:
    """The optuna-dashboard command for a run's storage, with how to install it when missing."""
    import importlib.util

    line = f"  optuna-dashboard {storage}"
    if importlib.util.find_spec("optuna_dashboard") is None:
        line += ('   (not installed: pip install optuna-dashboard, or pip install -e ".[dashboard]" '
                 "in a clone)")
    return line


def cmd_report(args: argparse.Namespace) -> int:
    from nasl.report import rebuild

    run = rebuild(Path(args.run))
    _print_run(run, quiet=args.quiet)
    return 0


# --------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from nasl.export import export_preset, export_run

    if (args.run is None) == (args.preset is None):
        raise NaslError("nasl export: give a run folder or --preset NAME (one of them)")
    from nasl.common import guards

    out_dir = _export_out(args)
    if out_dir is None:
        return _export(args, export_preset, export_run)
    guards.check_export_out(out_dir, bool(getattr(args, "force", False)))
    created = [p for p in (out_dir, out_dir.parent) if not p.exists()]
    try:
        return _export(args, export_preset, export_run)
    except BaseException:
        for p in created:  # a failed export leaves no empty folder behind
            guards.remove_if_empty(p)
        raise


def _export_out(args: argparse.Namespace) -> Path | None:
    """The folder ``nasl export`` will write: --out, else the default of the run's trial (the
    knee or --pick resolved as export does), else runs/export/<preset>."""
    if args.out is not None:
        return Path(args.out)
    if args.preset is not None:  # with --set: runs/export/<preset>-<arch id>, known later
        return None if args.set else Path("runs") / "export" / args.preset
    from nasl.export.pipeline import choose_trial
    from nasl.run.results import RunDir, open_run_study

    run = RunDir(Path(args.run))
    study, env = open_run_study(run)
    t = choose_trial(study, env, str(run.root), trial=args.trial, pick=args.pick)
    return run.root / "export" / f"trial-{t.number}"


def _export(args: argparse.Namespace, export_preset: Any, export_run: Any) -> int:
    if args.preset is not None:
        try:
            overrides = parse_set(args.set)
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


