"""The argument parser's shared parts and the flags of ``nasl search``, in groups.

In: an ``argparse`` sub-parsers object. Out: the ``search`` sub-command registered with its
flags grouped by topic (space and budget, proxy training, search strategy, confirmation,
latency, backends, tracking, output), every flag with help text and its default shown.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from nasl.common.errors import NaslError
from nasl.common.vocab import (
    DEFAULT_PRESCREEN_PROXY,
    DEFAULT_SCHEDULER,
    PRECISIONS,
    RUNTIMES,
    SAMPLERS,
    SCHEDULERS,
)
from nasl.training.recipes import RECIPES

#: ``--prescreen-proxy`` values: auto and the zero-cost proxies of :mod:`nasl.zerocost`.
PRESCREEN_PROXIES = (DEFAULT_PRESCREEN_PROXY, "synflow", "naswot", "grad_norm", "snip", "jacob_cov")

SEARCH_EXAMPLES = """examples:
  nasl search spaces/shufflenet.yaml --budget 40MFLOPs          the main job (~2 min on 2 cores)
  nasl search mobilenet --budget 150M --budget 10ms --trials 40  MACs and latency budgets
  nasl search shufflenet --budget 40M --data fashion-mnist --epochs 5 --timeout 30m
  nasl search shufflenet --budget 40M --seeds 3 --scheduler asha --runtime onnxruntime
  nasl search shufflenet --name nightly --resume                 continue after an interruption

Budgets: 40MFLOPs, 40M, 40MMACs, 0.04GFLOPs (MACs), 1.5Mparams, 5ms or 300us (latency),
2MB (fp32 size), or explicit macs<=40M. MACs are multiply-accumulates of conv and linear
layers; 'FLOPs' means the same, as in the ShuffleNet paper: 40MFLOPs = 40e6 multiply-adds."""


class HelpFormatter(argparse.HelpFormatter):
    """Keeps a description or epilog with line breaks as written (examples), wraps the others,
    and appends ``(default: X)`` to a flag's help when it has a real default (not None/False)
    that the text does not already mention."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS
                or not action.option_strings or "default" in text):
            return text
        return text + " (default: %(default)s)"


_CHOICE = re.compile(r"argument (?P<flag>[^:]+): invalid choice: (?P<value>.+?) \(choose from (?P<ch>.*)\)$")


class Parser(argparse.ArgumentParser):
    """argparse whose bad command lines are one-line ``NaslError`` s (exit status 2), without
    a second "nasl:" prefix; an invalid choice reads like every other bad value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # type: ignore[override]
        m = _CHOICE.match(message)
        if m:
            flag = m["flag"].split("/")[-1]
            choices = ", ".join(c.strip().strip("'") for c in m["ch"].split(","))
            message = f"{flag} {m['value'].strip()}: expected one of {choices}"
        raise NaslError(f"{message} (see `{self.prog} --help`)")


def add_search(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nasl search`` (flags in groups) and return its parser."""
    sp = sub.add_parser(
        "search", help="multi-objective search: train candidates, keep the Pareto front",
        description="Sample designs from a space, reject those over budget before training, "
                    "train the rest briefly and keep the Pareto front of accuracy against cost. "
                    "Writes runs/<name>/ (trials.csv, pareto.csv/json/png, report.html).",
        epilog=SEARCH_EXAMPLES)
    g = sp.add_argument_group("space and budget")
    g.add_argument("space", help="a shipped space name (see `nasl space list`) or a YAML file")
    g.add_argument("--budget", action="append", metavar="BUDGET",
                   help="hard budget, e.g. 40MFLOPs, 1.5Mparams, 5ms, 2MB (repeatable; "
                        "overrides the space's budget for that metric)")
    g.add_argument("--no-baselines", action="store_true",
                   help="do not enqueue the space's baselines (the papers' networks) first")

    g = sp.add_argument_group("proxy training")
    g.add_argument("--data", metavar="DATASET",
                   help="proxy data set: fmnist-mini, digits, fashion-mnist[:DIR], cifar10:DIR, "
                        "cifar100:DIR, imagefolder:DIR, npz:PATH, fake[:N] (default: the space's "
                        "proxy.dataset)")
    g.add_argument("--epochs", type=int, metavar="N",
                   help="proxy-training epochs per trial (default: the space's proxy.epochs)")
    g.add_argument("--seeds", type=int, default=None, metavar="K",
                   help="train every trial with K seeds; its accuracy is their mean (default 1)")
    g.add_argument("--recipe", choices=tuple(RECIPES), default=None,
                   help="proxy-training recipe: plain (no augmentation), augmented (crop + flip, "
                        "weight decay 5e-4) or crop (default: the space's proxy.recipe; "
                        "docs/claims.md)")
    g.add_argument("--train-device", metavar="DEVICE", default=None,
                   help="where trials train: auto (the GPU when one is present), cpu, cuda[:i] or "
                        "mps (default: the space's proxy.device, auto; docs/gpu.md)")
    g.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="training precision: auto (bf16 on a GPU that supports it, fp32 on the "
                        "CPU), fp32, bf16, or fp16 (GPU only, with a gradient scaler) (default: the "
                        "space's proxy.precision, auto)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile each trial's training; the compile time is recorded apart "
                        "from the training time (pays off for long trainings on a GPU)")
    g.add_argument("--threads", type=int, metavar="N",
                   help="torch threads for training (default: torch's, one per core)")
    g.add_argument("--no-adapt-threads", dest="adapt_threads", action="store_false",
                   help="keep the training threads fixed even when other processes make them "
                        "wait for cores (by default: step down to 1 thread for the rest of such a "
                        "trial; results then depend on the load)")

    g = sp.add_argument_group("search strategy")
    g.add_argument("--trials", type=int, metavar="N",
                   help="trained trials in total; rejected over-budget candidates do not count "
                        "(default: the space's search.trials, 20)")
    g.add_argument("--sampler", choices=SAMPLERS,
                   help="Optuna sampler (default: the space's search.sampler, tpe; pick for a table: "
                        "TPE proposes, a GP with the known latency picks, docs/tabular.md)")
    g.add_argument("--seed", type=int, metavar="N",
                   help="study seed; per-trial seeds derive from (seed, trial number) "
                        "(default: the space's search.seed, 0)")
    g.add_argument("--scheduler", choices=SCHEDULERS, default=DEFAULT_SCHEDULER,
                   help="which trials stop early: none, front (stopped when a cheaper front "
                        "member is ahead by the margin at the same epoch), asha or asha-strict "
                        "(multi-objective successive halving over epochs), auto (asha from 9 "
                        "epochs per trial, else front)")
    g.add_argument("--no-early-stop", action="store_true",
                   help="train every candidate to the end (= --scheduler none)")
    g.add_argument("--reduction-factor", type=float, default=None, metavar="ETA",
                   help="asha, asha-strict: about 1/ETA of the trials at a rung go on (default 3)")
    g.add_argument("--grace-period", type=int, default=None, metavar="EPOCHS",
                   help="asha, asha-strict: the first rung; nothing stops before it (default 1)")
    g.add_argument("--early-stop-margin", type=float, default=0.02, metavar="GAP",
                   help="front: accuracy gap (0-1) to a cheaper front member at the same epoch "
                        "that stops a trial")
    g.add_argument("--prescreen", type=int, default=0, metavar="N",
                   help="score N feasible random designs per trial with a zero-cost proxy and "
                        "train the best; switches itself on only when the proxy beats params and "
                        "MACs on this run's completed trials; 0 is off")
    g.add_argument("--prescreen-proxy", default=DEFAULT_PRESCREEN_PROXY, choices=PRESCREEN_PROXIES,
                   help="auto: each of synflow, naswot, grad_norm, snip is tried on the run's "
                        "trials and the one that earns it is used; or one of them, or jacob_cov")
    g.add_argument("--timeout", metavar="DURATION",
                   help="start no new trial after this long (30m, 2h, 90s, 1h30m); a running "
                        "trial stops at its next epoch boundary")

    g = sp.add_argument_group("confirmation (after the search)")
    g.add_argument("--confirm-seeds", type=int, default=None, metavar="K",
                   help="one fresh seed at higher fidelity for each design that can change the "
                        "answer chooses the claims; each claim's designs then get K more, which "
                        "test it (default 2; 0 turns the confirmation off)")
    g.add_argument("--confirm-budget", type=int, default=None, metavar="N",
                   help="trainings the confirmation may spend in all (default 8)")
    g.add_argument("--confirm-epochs", type=int, default=None, metavar="E",
                   help="epochs of a confirmation training, on the search's train + validation "
                        "images, scored on the holdout (default 3x --epochs)")
    g.add_argument("--confirm-max", type=int, default=None, metavar="N",
                   help="confirm at most N designs (default: a third of the budget, >= 3)")
    g.add_argument("--confirm-recipe", choices=tuple(RECIPES), default=None,
                   help="also confirm under this recipe (budget and alpha shared); claims say "
                        "under which recipe they hold and where recipes disagree")
    g.add_argument("--margin", type=float, default=1.0, metavar="POINTS",
                   help="non-inferiority margin in accuracy points")
    g.add_argument("--alpha", type=float, default=0.05,
                   help="level of the claims as a family")
    g.add_argument("--correction", choices=("holm", "bh"), default="holm",
                   help="holm: family-wise error; bh: false discovery rate")

    g = sp.add_argument_group("latency")
    g.add_argument("--device", metavar="DEVICE",
                   help="latency device: auto, cpu, cuda[:i] (default: the space's target.device)")
    g.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="where latency is measured: torch (eager), onnxruntime or torch.compile "
                        "(default: the space's target.runtime, else torch)")
    g.add_argument("--target-remote", metavar="HOST:PORT", default=None,
                   help="measure latency on a remote device running `nasl latency serve` "
                        "(default: the space's target.remote; see docs/remote-latency.md)")
    g.add_argument("--token-file", default=None,
                   help="the remote target's shared secret (default: target.token_file)")
    g.add_argument("--target-required", action="store_true", default=None,
                   help="stop the search at once when the remote target is gone (default: "
                        "target.required; else the search finishes without new trials)")

    g = sp.add_argument_group("backends")
    g.add_argument("--backend", choices=("optuna", "ray"), default="optuna",
                   help="optuna (one process) or ray (many workers or a cluster)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="ray: trials at once (default: as many as the CPUs allow)")
    g.add_argument("--address", default=None, help="ray: a running cluster, auto or ray://HOST:PORT "
                                                   "(default: start a local Ray)")
    g.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="N", help="ray: CPUs per trial")
    g.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="N",
                   help="ray: GPUs per trial; 0.25 packs four trials on a GPU, each training on "
                        "the GPU Ray gave it (needs a GPU)")
    g.add_argument("--trials-per-device", type=_k_per_device, default=1, metavar="K",
                   help="optuna: K trials train at once on each device, in worker processes "
                        "sharing the run's study; auto: K from free memory and a throughput "
                        "probe (docs/gpu.md)")
    g.add_argument("--devices", default=None, metavar="LIST",
                   help="optuna: the devices of --trials-per-device, e.g. 0,1 (cuda:0, cuda:1) "
                        "or cpu (default: the training device)")
    g.add_argument("--storage", metavar="URL",
                   help="Optuna storage URL (default: sqlite in the run folder); e.g. "
                        "postgresql://... to share a study between processes")

    g = sp.add_argument_group("tracking")
    add_wandb(g, "log trials and the front to Weights & Biases (offline without an API key)")

    g = sp.add_argument_group("output")
    g.add_argument("--name", help="run name: the folder runs/<name>/ (default: space name + timestamp)")
    g.add_argument("--runs-dir", default="runs", metavar="DIR", help="folder of runs")
    g.add_argument("--resume", action="store_true",
                   help="continue the run called --name with the settings it was started with "
                        "(flags given now override)")
    g.add_argument("--quiet", action="store_true", help="no live progress display")
    return sp


WANDB_HELP = {"--wandb-project": "W&B project (default: nasl)",
              "--wandb-entity": "W&B entity, a user or team (default: your default entity)"}


def _k_per_device(value: str) -> int | str:
    """``--trials-per-device``: an integer, or ``auto`` (checked by the backend, in one line)."""
    value = value.strip()
    return int(value) if re.fullmatch(r"[+-]?\d+", value) else value


def add_wandb(g: Any, what: str) -> None:
    """``--wandb``, ``--wandb-project``, ``--wandb-entity`` on a parser or group."""
    g.add_argument("--wandb", action="store_true", help=what)
    g.add_argument("--wandb-project", default=None, metavar="PROJECT", help=WANDB_HELP["--wandb-project"])
    g.add_argument("--wandb-entity", default=None, metavar="ENTITY", help=WANDB_HELP["--wandb-entity"])


def finish(parser: argparse.ArgumentParser) -> None:
    """Last touches on every parser under ``parser`` (commands registered by other layers):
    a known flag without help text gets the shared one; a doubled ``%%`` in a description,
    which argparse prints as written, becomes ``%``."""
    for p in walk(parser):
        for text in ("description", "epilog"):
            value = getattr(p, text)
            if value and "%%" in value:
                setattr(p, text, value.replace("%%", "%"))
        for action in p._actions:
            if action.help is None and action.option_strings:
                flag = max(action.option_strings, key=len)
                action.help = WANDB_HELP.get(flag)


def walk(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every sub-command parser under it, depth first."""
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                out += walk(child)
    return out


def one_prefix(message: str) -> str:
    """``message`` without a leading ``nasl:`` or ``nasl`` (the CLI prints one ``nasl: error:``)."""
    for lead in ("nasl: ", "nasl "):
        if message.startswith(lead):
            return message[len(lead):]
    return message
