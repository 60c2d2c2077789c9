"""Command line: parses arguments and calls library functions (nothing else lives here).

Every user error ends as one line on stderr and exit status 2 (see :mod:`nasl.errors`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from nasl.cli.cmd_costs import cmd_cost, cmd_presets, cmd_space
from nasl.cli.cmd_runs import cmd_export, cmd_report, cmd_search
from nasl.cli.common import MACS_NOTE
from nasl.errors import NaslError
from nasl.recipes import RECIPES
from nasl.vocab import DEFAULT_PRESCREEN_PROXY, DEFAULT_SCHEDULER, RUNTIMES, SCHEDULERS

RECIPE_NAMES = tuple(RECIPES)


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
    sp.add_argument("--data", help="proxy data set: fmnist-mini (default), digits, "
                                   "fashion-mnist[:DIR], cifar10:DIR, cifar100:DIR, "
                                   "imagefolder:DIR, npz:PATH")
    sp.add_argument("--no-early-stop", action="store_true",
                    help="train every candidate to the end (= --scheduler none)")
    sp.add_argument("--scheduler", choices=SCHEDULERS, default=DEFAULT_SCHEDULER,
                    help="which trials stop early: none, front (stopped when a cheaper front "
                         "member is ahead by the margin at the same epoch), asha or asha-strict "
                         "(multi-objective successive halving over epochs), auto (asha from 9 "
                         f"epochs per trial, else front); default {DEFAULT_SCHEDULER}")
    sp.add_argument("--reduction-factor", type=float, default=None, metavar="ETA",
                    help="asha, asha-strict: about 1/ETA of the trials at a rung go on "
                         "(default 3)")
    sp.add_argument("--grace-period", type=int, default=None, metavar="EPOCHS",
                    help="asha, asha-strict: the first rung; nothing stops before it (default 1)")
    sp.add_argument("--early-stop-margin", type=float, default=0.02, metavar="GAP",
                    help="accuracy gap (0-1) to a cheaper front member at the same epoch that "
                         "stops a trial (default 0.02)")
    sp.add_argument("--seeds", type=int, default=None, metavar="K",
                    help="train every trial with K seeds (accuracy = their mean; default 1)")
    sp.add_argument("--recipe", choices=RECIPE_NAMES, default=None,
                    help="proxy-training recipe: plain (no augmentation), augmented (crop + "
                         "flip, weight decay 5e-4) or crop (default: the space's proxy.recipe)")
    sp.add_argument("--confirm-seeds", type=int, default=None, metavar="K",
                    help="after the search, train each design that can change the answer with K "
                         "fresh seeds at higher fidelity first (default 2; 0: no confirmation)")
    sp.add_argument("--confirm-budget", type=int, default=None, metavar="N",
                    help="trainings the confirmation may spend in all (default 12)")
    sp.add_argument("--confirm-epochs", type=int, default=None, metavar="E",
                    help="epochs of a confirmation training (default 3x --epochs), on the "
                         "search's train + validation images, scored on the holdout")
    sp.add_argument("--confirm-max", type=int, default=None, metavar="N",
                    help="confirm at most N designs (default: budget / seeds)")
    sp.add_argument("--confirm-recipe", choices=RECIPE_NAMES, default=None,
                    help="also confirm under this recipe (the budget and α are shared); claims "
                         "say under which recipe they hold and where recipes disagree")
    sp.add_argument("--margin", type=float, default=1.0, metavar="POINTS",
                    help="non-inferiority margin δ in accuracy points (default 1)")
    sp.add_argument("--alpha", type=float, default=0.05,
                    help="level of the claims as a family (default 0.05)")
    sp.add_argument("--correction", choices=("holm", "bh"), default="holm",
                    help="holm: family-wise error (default); bh: false discovery rate")
    sp.add_argument("--prescreen", type=int, default=0, metavar="N",
                    help="score N feasible random designs per trial with a zero-cost proxy and "
                         "train the best; switches itself on only when the proxy beats params and "
                         "MACs on this run's completed trials (default 0: off)")
    sp.add_argument("--prescreen-proxy", default=DEFAULT_PRESCREEN_PROXY,
                    help="auto (default: each of synflow, naswot, grad_norm, snip is tried on "
                         "the run's trials and the one that earns it is used), or one of them, "
                         "or jacob_cov")
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
    sp.add_argument("--no-adapt-threads", dest="adapt_threads", action="store_false",
                    help="keep the training threads fixed even when other processes make them "
                         "wait for cores (default: step down to 1 thread for the rest of such a "
                         "trial; results then depend on the load)")
    sp.add_argument("--runtime", choices=RUNTIMES, default=None,
                    help="where latency is measured: torch (eager), onnxruntime or torch.compile "
                         "(default: the space's target.runtime, else torch)")
    sp.add_argument("--target-remote", metavar="HOST:PORT", default=None,
                    help="measure latency on a remote device running `nasl latency serve` "
                         "(default: the space's target.remote; see docs/remote-latency.md)")
    sp.add_argument("--token-file", default=None,
                    help="the remote target's shared secret (default: target.token_file)")
    sp.add_argument("--target-required", action="store_true", default=None,
                    help="stop the search at once when the remote target is gone (default: "
                         "target.required; else the search finishes without new trials)")
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
    sp.add_argument("--force", action="store_true",
                    help="replace an export already in the output folder (default: refuse)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("report", help="rebuild a run's outputs and print its Pareto front")
    sp.add_argument("run", help="the run folder, e.g. runs/shufflenet-20260101-120000")
    sp.add_argument("--quiet", action="store_true", help="only the table")
    sp.set_defaults(func=cmd_report)

    from nasl.fidelity import add_parser as add_fidelity
    from nasl.latency.cli import add_parser as add_latency
    from nasl.zerocost.command import add_parser as add_proxies

    add_latency(sub)
    add_proxies(sub)
    add_fidelity(sub)
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
