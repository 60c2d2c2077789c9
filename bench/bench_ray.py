"""Ray backend throughput with 1 and 2 workers (issue 7): trained trials per minute.

Usage: python bench/bench_ray.py [--trials 8] [--epochs 4]

Runs the same ShuffleNet search (digits, 40 MFLOPs, no early stopping, 1 thread per
trial) with ``--workers 1`` and ``--workers 2`` on a local Ray and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from nasl.hardware.omp import choose_wait_policy

choose_wait_policy()  # as the `nasl` command does, before torch is imported

from nasl.hardware.devices import cpu_name  # noqa: E402
from nasl.run import results  # noqa: E402
from nasl.search import SearchOptions, run_search  # noqa: E402
from nasl.space import load_space  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=4)
    args = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    v = results.versions()
    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {v['torch']}, ray "
          f"{v.get('ray')}, optuna {v['optuna']}, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| workers | trained trials | wall s | trials / min | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    base = None
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as d:
            opts = SearchOptions(name=f"w{workers}", runs_dir=Path(d), budgets={"macs": 40e6},
                                 trials=args.trials, epochs=args.epochs, early_stop=False,
                                 show_progress=False, threads=1)
            t0 = time.perf_counter()
            out = run_search(load_space("shufflenet"), opts, backend="ray", workers=workers,
                             cpus_per_trial=1)
            wall = time.perf_counter() - t0
            import ray

            ray.shutdown()
        rate = out.trained / wall * 60
        base = base or rate
        print(f"| {workers} | {out.trained} | {wall:.1f} | {rate:.2f} | {rate / base:.2f}× |",
              flush=True)


if __name__ == "__main__":
    main()
