"""``nasl fidelity RUN``: the command line of the proxy-fidelity check.

In: argv (``add_parser`` registers the subcommand on nasl's parser; ``main`` runs it alone,
as ``python -m nasl.fidelity``). Out: exit status 0, the table and summary (or ``--json``) on
stdout, progress on stderr; user errors raise ``NaslError`` (one line, exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from nasl.common.errors import NaslError
from nasl.fidelity.core import DEFAULT_SAMPLE, EPOCH_FACTOR, FidelityOptions, run_fidelity, stderr_progress
from nasl.fidelity.output import fidelity_html, log_fidelity_to_wandb, summary_lines, table
from nasl.fidelity.stats import DEFAULT_TOP_K


def publish(run_dir: str) -> None:
    """The result into report.html: an HTML fragment (``fidelity.html``) that the report
    embeds, then the report rebuilt from the run's storage."""
    from pathlib import Path

    from nasl.report import rebuild
    from nasl.run.results import write_text_atomic

    frag = fidelity_html(run_dir)
    if frag is not None:
        write_text_atomic(Path(run_dir) / "fidelity.html", frag)
        rebuild(run_dir)


def cmd_fidelity(args: argparse.Namespace) -> int:
    """Run the check of ``args.run`` → exit status (NaslError for user errors)."""
    import warnings

    opts = FidelityOptions(epochs=args.epochs, full=args.full, sample=args.sample, seeds=args.seeds,
                           top_k=args.top_k, restart=args.restart, recipe=args.recipe)
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        result = run_fidelity(args.run, opts, progress=None if args.quiet else stderr_progress)
    publish(args.run)
    if args.wandb:
        log_fidelity_to_wandb(args.run, result, project=args.wandb_project, entity=args.wandb_entity)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(table(result))
    for line in summary_lines(result):
        console.print(line, highlight=False, markup=False)
    console.print(f"written: {args.run}/fidelity.json, fidelity.csv", highlight=False, markup=False)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fidelity`` on nasl's subcommand parsers."""
    sp = sub.add_parser(
        "fidelity", help="re-train the front and a sample of designs at higher fidelity; rank "
                         "agreement with the proxy, top-k recall, baseline claims",
        description="Re-trains the Pareto front, the baselines and a stratified sample of other "
                    "completed trials of a finished run with more epochs (optionally the full "
                    "training split; validation stays carved from it, the test split is never "
                    "read), then reports Kendall tau / Spearman rho between proxy and "
                    "high-fidelity accuracy (95 %% bootstrap intervals), top-k recall and whether "
                    "each front-beats-baseline claim holds. Writes runs/<name>/fidelity.json and "
                    "fidelity.csv after every design: rerun the same command to resume.")
    sp.add_argument("run", help="a run folder, e.g. runs/<name>")
    sp.add_argument("--epochs", type=int, default=None, metavar="N",
                    help=f"training epochs at high fidelity (default {EPOCH_FACTOR} x the run's)")
    sp.add_argument("--full", action="store_true",
                    help="train on the full training split (no proxy subset) and validate on the "
                         "full validation part carved from it")
    sp.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, metavar="K",
                    help=f"other completed trials to re-train, stratified by proxy accuracy "
                         f"(default {DEFAULT_SAMPLE})")
    sp.add_argument("--seeds", type=int, default=2, metavar="S",
                    help="fresh seeds per design at high fidelity (default 2; with 1 no claim "
                         "can be judged against noise)")
    sp.add_argument("--recipe", default=None, metavar="NAME",
                    help="training recipe at high fidelity: plain, augmented or crop (default: the "
                         "recipe the run searched with); the answer holds for a recipe only if "
                         "it ranks the designs the same way")
    sp.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, metavar="K",
                    help=f"k of the top-k recall (default {DEFAULT_TOP_K})")
    sp.add_argument("--restart", action="store_true",
                    help="discard a fidelity.json made with other settings and start over")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.add_argument("--quiet", action="store_true", help="no progress lines or warnings")
    sp.add_argument("--wandb", action="store_true", help="log the check to W&B (offline without "
                                                          "credentials)")
    sp.add_argument("--wandb-project", default=None)
    sp.add_argument("--wandb-entity", default=None)
    sp.set_defaults(func=cmd_fidelity)


class _Parser(argparse.ArgumentParser):
    """argparse whose command-line errors are one-line NaslErrors (exit status 2)."""

    def error(self, message: str):  # type: ignore[override]
        raise NaslError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nasl.fidelity RUN [options]`` → exit status (2 with one line on a user error)."""
    parser = _Parser(prog="nasl")
    add_parser(parser.add_subparsers(dest="command"))
    try:
        args = parser.parse_args(["fidelity", *(sys.argv[1:] if argv is None else argv)])
        return int(args.func(args))
    except NaslError as e:
        print(f"nasl: error: {e}", file=sys.stderr)
        return e.exit_code
