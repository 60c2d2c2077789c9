"""Command line: parses arguments and calls library functions (nothing else lives here).

Every user error ends as one line on stderr and exit status 2 (see :mod:`nasl.common.errors`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nasl.cli.cmd_costs import cmd_cost, cmd_presets, cmd_space
from nasl.cli.cmd_runs import cmd_export, cmd_report, cmd_search
from nasl.cli.common import MACS_NOTE
from nasl.cli.search_args import Parser, add_search, finish, one_prefix
from nasl.common.errors import NaslError
from nasl.hardware.omp import choose_wait_policy

EXAMPLES = """examples:
  nasl search spaces/shufflenet.yaml --budget 40MFLOPs   the main job: search under 40 M MACs
  nasl report runs/shufflenet-20261206-120000            rebuild a run's outputs, print its front
  nasl export runs/shufflenet-20261206-120000            the knee design as a trained model
  nasl cost mobilenet_v1 --set width_mult=0.5 --json     costs of a paper network
  nasl space show shufflenet --budget 40MFLOPs           what a space holds under a budget

`nasl COMMAND --help` explains each command."""


def _version() -> str:
    """The installed distribution's version (``nasl.__version__`` in a bare source tree)."""
    from importlib import metadata

    try:
        return metadata.version("nasl")
    except metadata.PackageNotFoundError:
        import nasl

        return nasl.__version__


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``nasl`` parser with every sub-command (each flag with help text)."""
    p = Parser(prog="nasl", description="Hardware-aware neural-architecture search for "
               "lightweight CNNs. " + MACS_NOTE, epilog=EXAMPLES)
    p.add_argument("--version", action="version", version=f"nasl {_version()}",
                   help="print nasl's version and exit")
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
    sp.add_argument("--input-size", type=int, default=None, metavar="PX",
                    help="input side at resolution_mult=1 (default: the paper's, 224 or 299)")
    sp.add_argument("--num-classes", type=int, default=1000, metavar="N",
                    help="classes of the final layer")
    sp.add_argument("--latency", action="store_true", help="also measure latency (batch 1)")
    sp.add_argument("--device", default="auto", help="latency device: auto (cuda if present, "
                                                     "else cpu), cpu, cuda:N")
    sp.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads for latency")
    sp.add_argument("--repeats", type=int, default=30, metavar="N",
                    help="timed runs (their median is reported)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.set_defaults(func=cmd_cost)

    add_search(sub).set_defaults(func=cmd_search)

    sp = sub.add_parser("space", help="list, validate, show and sample search spaces")
    ssub = sp.add_subparsers(dest="space_command", metavar="SUBCOMMAND")
    ssub.required = True
    x = ssub.add_parser("list", help="the shipped spaces")
    x.add_argument("--json", action="store_true", help="print a JSON list")
    x = ssub.add_parser("validate", help="check a space file (exit 0, or one clear error)")
    x.add_argument("space", help="a shipped space name or a YAML file")
    x = ssub.add_parser("show", help="parameters, size, MACs/params range, feasible fraction",
                        epilog=MACS_NOTE)
    x.add_argument("space", help="a shipped space name or a YAML file")
    x.add_argument("--budget", action="append", metavar="BUDGET",
                   help="e.g. 40MFLOPs, 1.5Mparams, 2MB (repeatable)")
    x.add_argument("-n", type=int, default=200, help="fixed-seed sample size")
    x.add_argument("--seed", type=int, default=0, help="sampling seed")
    x.add_argument("--set", action="append", metavar="KEY=VALUE", help="fix a design choice")
    x = ssub.add_parser("sample", help="sample designs with their costs")
    x.add_argument("space", help="a shipped space name or a YAML file")
    x.add_argument("-n", type=int, default=5, help="how many designs")
    x.add_argument("--seed", type=int, default=0, help="sampling seed")
    x.add_argument("--json", action="store_true", help="print a JSON list")
    x.add_argument("--set", action="append", metavar="KEY=VALUE", help="fix a design choice")
    sp.set_defaults(func=cmd_space)

    sp = sub.add_parser("export", help="a run's chosen design (or a preset) as a standalone, "
                                       "trained, verified model")
    sp.add_argument("run", nargs="?", help="the run folder, e.g. runs/shufflenet-2026...")
    sp.add_argument("--trial", type=int, help="any COMPLETE trial by number")
    sp.add_argument("--pick", help="knee (default), accurate or fast: the run's recommendation "
                                   "(docs/claims.md); or an objective (accuracy, macs, latency, "
                                   "...) to pick from the search's front")
    sp.add_argument("--preset", help="export a paper preset instead of a run's trial")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="with --preset: override a design choice")
    sp.add_argument("--epochs", type=int, help="training epochs (default: 3x the proxy, >= 30)")
    sp.add_argument("--no-train", action="store_true",
                    help="export the target network untrained (fresh initialisation)")
    sp.add_argument("--data", help="training data (default: the run's)")
    sp.add_argument("--format", default="py,onnx,pt2", help="comma-separated, any of py, onnx, pt2")
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
    finish(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nasl`` command; returns the exit status.

    The OpenMP wait policy is chosen first (:mod:`nasl.hardware.omp`): the parser's sub-commands
    import torch, and libgomp reads the policy when torch loads."""
    choose_wait_policy()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except NaslError as e:
        print(f"nasl: error: {one_prefix(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nasl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `nasl space show x | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
