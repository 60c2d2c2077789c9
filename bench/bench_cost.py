"""Benchmark of nasl.network.cost (analytic counts vs thop vs FlopCounterMode) and of CPU latency
(nasl.latency.timing).

In: nothing (options below). Out: a Markdown section ``## Cost model`` written into
docs/benchmarks.md (replacing an earlier one, keeping other sections), also printed.

    python bench/bench_cost.py [--repeats 30] [--out docs/benchmarks.md] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from nasl.families import preset
from nasl.hardware import devices
from nasl.latency import timing
from nasl.network import cost
from nasl.network.builder import build_model

HEADING = "## Cost model"
COUNT_CASES = {
    "ShuffleNet 0.5× g=3, 224": preset("shufflenet_v1", groups=3, width_mult=0.5),
    "MobileNet 1.0-224": preset("mobilenet_v1"),
}
LATENCY_CASES = {
    "squeezenet1_0 (224)": preset("squeezenet1_0"),
    "squeezenet1_1 (224)": preset("squeezenet1_1"),
    "mobilenet_v1 1.0 (224)": preset("mobilenet_v1"),
    "mobilenet_v1 0.5 (224)": preset("mobilenet_v1", width_mult=0.5),
    "shufflenet_v1 1× g=3 (224)": preset("shufflenet_v1"),
    "shufflenet_v1 0.5× g=3 (224)": preset("shufflenet_v1", width_mult=0.5),
    "xception (299)": preset("xception"),
}


def seconds(fn: Callable[[], object], runs: int) -> float:
    """Median wall seconds of ``fn()`` over ``runs`` calls (after one untimed call)."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def fmt_time(s: float) -> str:
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.1f} ms"


def count_table(runs: int) -> list[str]:
    """Counters at 1 thread: two threads on a busy 2-core machine slow real forwards 10×."""
    rows = ["| network | counter | MACs | time per count |", "|---|---|---:|---:|"]
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for label, cfg in COUNT_CASES.items():
        real = build_model(cfg)
        with torch.device("meta"):
            meta = build_model(cfg, seed=None)
        shape = (1, 3, cfg.input_size, cfg.input_size)
        counters: dict[str, Callable[[], int]] = {
            "analytic `costs(arch)`": partial(lambda c: int(cost.costs(c)["macs"]), cfg),
            "thop (configured), CPU tensors": partial(cost.count_macs, real, shape),
            "thop (configured), meta": partial(cost.count_macs, meta, shape),
            "FlopCounterMode / 2, CPU tensors": partial(cost.count_macs_flop_counter, real, shape),
            "FlopCounterMode / 2, meta": partial(cost.count_macs_flop_counter, meta, shape),
        }
        for name, fn in counters.items():
            n = runs * 100 if name.startswith("analytic") else runs
            rows.append(f"| {label} | {name} | {fn():,} | {fmt_time(seconds(fn, n))} |")
    torch.set_num_threads(old_threads)
    return rows


def latency_table(repeats: int) -> list[str]:
    rows = ["| network | MMACs | params | median ms | p10–p90 ms | cpu_ratio |",
            "|---|---:|---:|---:|---:|---:|"]
    for label, cfg in LATENCY_CASES.items():
        lat = timing.measure_latency(build_model(cfg), (3, cfg.input_size, cfg.input_size),
                                   device="cpu", batch_size=1, threads=1, warmup=5,
                                   repeats=repeats)
        rows.append(f"| {label} | {cfg.macs() / 1e6:.1f} | {cfg.params():,} | "
                    f"{lat.median_ms:.1f} | {lat.p10_ms:.1f}–{lat.p90_ms:.1f} | "
                    f"{lat.cpu_ratio:.2f} |")
        print(rows[-1], flush=True)
    return rows


def section(repeats: int, runs: int) -> str:
    versions = f"torch {torch.__version__}, thop {importlib.metadata.version('thop')}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header = [
        HEADING, "",
        f"Machine: {devices.cpu_name()}, {os.cpu_count()} cores visible, no GPU used; "
        f"{versions}; Python {sys.version.split()[0]}. "
        f"Date: {datetime.date.today().isoformat()}. Load average at the start (1/5/15 min): "
        f"{load}.",
        f"Command: `python bench/bench_cost.py --repeats {repeats} --runs {runs}`.", "",
        "### Counting MACs (batch 1)", "",
        "All counters agree exactly; only the analytic count is cheap enough for a budget "
        "check before every trial. Torch at 1 thread; model building time not included. "
        "On real tensors the count includes a forward pass, so it grows with the network; "
        "on the meta device it does not.", "",
    ]
    counts = count_table(runs)
    lat_intro = ["", f"### CPU latency (batch 1, 1 thread, fp32, channels-last, "
                 f"warmup 5, {repeats} repeats, `measure_latency` under the device lock)", "",
                 "`cpu_ratio` = process CPU time / wall time / threads: ≈ 1.0 means the "
                 "core was not shared during the measurement; well below 1 means other "
                 "processes (which do not take nasl's lock) were computing, and the "
                 "latency is inflated. It does not see shared caches or memory "
                 "bandwidth: on a busy machine, runs minutes apart can differ by "
                 "1.5× at a ratio of 1.00. Compare latencies from one quiet run.", ""]
    return "\n".join(header + counts + lat_intro + latency_table(repeats)) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace the ``## Cost model`` section of ``path`` (or append it), keeping the rest."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed runs per latency")
    ap.add_argument("--runs", type=int, default=5, help="timed calls per counter")
    ap.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "docs/benchmarks.md")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    text = section(args.repeats, args.runs)
    print(text)
    if not args.no_write:
        write_section(args.out, text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

