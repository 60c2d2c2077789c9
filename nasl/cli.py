"""Command line: parses arguments and calls library functions (nothing else lives here).

Every user error ends as one line on stderr and exit status 2 (see :mod:`nasl.errors`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
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


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


# --------------------------------------------------------------------------- presets / cost
def cmd_presets(args: argparse.Namespace) -> int:
    from rich.console import Console
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
        Console().print(table)
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


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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

    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nasl`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NaslError as e:
        print(f"nasl: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nasl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
