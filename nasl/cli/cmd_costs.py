"""``nasl presets``, ``nasl cost`` and ``nasl space ...``: the papers' networks and search spaces."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nasl.cli.common import MACS_NOTE, console, human, parse_set
from nasl.common.errors import NaslError
from nasl.common.record import TrialRecord


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
        table.add_row(name, family, str(a.input_size), human(rows[-1]["macs"]), f"{params:,}",
                      f"{params * 4 / 2**20:.2f}",
                      " ".join(f"{k}={v}" for k, v in choices.items()) or "-")
    if args.json:
        print(json.dumps(rows))
    else:
        console().print(table)
        print(MACS_NOTE)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from nasl.families import preset_choices
    from nasl.network import cost

    try:
        family, choices = preset_choices(args.preset)
        choices.update(parse_set(args.set))
        arch = family.generate(choices, input_size=args.input_size, num_classes=args.num_classes)
    except ValueError as e:
        raise NaslError(f"nasl cost {args.preset}: {e}") from None
    result: dict[str, Any] = {"preset": args.preset, "family": family.name,
                              "choices": dict(arch.choices), "arch_id": arch.id,
                              "input_size": arch.input_size, "num_classes": arch.num_classes,
                              **cost.costs(arch)}
    if args.latency:
        from nasl.common.guards import check_forward_memory, check_int
        from nasl.network.builder import build_model

        check_int(args.threads, "--threads", 1, 1024)
        check_int(args.repeats, "--repeats", 1, 100_000)
        model = build_model(arch)
        check_forward_memory(model, (1, 3, arch.input_size, arch.input_size),
                             f"nasl cost --latency at --input-size {arch.input_size}")
        try:
            from nasl.latency.timing import measure_latency

            lat = measure_latency(model, (3, arch.input_size, arch.input_size),
                                  device=args.device, repeats=args.repeats,
                                  threads=args.threads)
        except ValueError as e:
            raise NaslError(f"nasl cost --latency: {e}") from None
        result.update(TrialRecord().with_latency(lat).values())
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.preset} ({family.name}) at {arch.input_size}px, {arch.num_classes} classes  "
          f"[arch {arch.id}]")
    print(f"  MACs    {result['macs']:>15,}  ({human(result['macs'])})")
    print(f"  params  {result['params']:>15,}  ({human(result['params'])})")
    print(f"  size    {result['size_mb']:>15.2f}  MB fp32 ({result['size_int8_mb']:.2f} MB int8)")
    if args.latency:
        print(f"  latency {result['latency_ms']:>15.2f}  ms median (p10 {result['latency_p10_ms']:.2f}"
              f", p90 {result['latency_p90_ms']:.2f}) on {result['device']} "
              f"{result['device_name']}, batch 1, {args.threads} thread(s)")
    return 0


# --------------------------------------------------------------------------- space
def cmd_space(args: argparse.Namespace) -> int:
    from nasl import space as sp
    from nasl.common.units import parse_budgets

    if args.space_command == "list":
        rows = sp.list_spaces()
        if args.json:
            print(json.dumps([{"name": n, "path": p, "description": d} for n, p, d in rows]))
        else:
            w = max(len(n) for n, _, _ in rows)
            for name, path, desc in rows:
                print(f"{name:<{w}}  {desc}\n{'':<{w}}  {path}")
        return 0
    from nasl.common.guards import check_int, check_seed

    if args.space_command in ("show", "sample"):
        check_int(args.n, "-n", 1, 1_000_000)
        check_seed(args.seed)
    space = sp.load_space(args.space)
    if getattr(args, "set", None):
        space = space.with_overrides(parse_set(args.set))
    if args.space_command == "validate":
        print(f"{args.space}: ok ({space.family}, {len(space.order)} design choices, "
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
            print(f"#{c['number']}  {human(c['macs'])} MACs  {human(c['n_params'])} params  "
                  f"[{c['arch_id']}]  {choices}")
    return 0


