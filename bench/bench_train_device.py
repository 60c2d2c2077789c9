"""Before/after on the CPU: images/s of one small proxy training with two versions of nasl.

In: two package roots (``--before``, ``--after``: folders holding ``nasl/``, e.g. a
``git archive`` of the old commit). Each repeat trains ShuffleNet 0.5x at 32 px on fmnist-mini
(the main job's proxy network and data) for ``--epochs`` at 1 thread in a fresh process, the
two versions alternating (before, after, before, ...) so that a change in the machine's load
hits both alike. Out: one JSON line per run and a Markdown table with the medians, the ratio
after/before and each run's CPU/wall ratio (near 1.0 at 1 thread on a quiet core; lower: the
process waited for a core and its images/s are inflated by the load).

    git archive OLD nasl | tar -x -C /tmp/old
    python bench/bench_train_device.py --before /tmp/old --after . --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence

CODE = """
import json, sys
from nasl.network.builder import build_model
from nasl.data import load_dataset
from nasl.families import preset
from nasl.training.train import TrainConfig, train_model
data = load_dataset("fmnist-mini", resolution=32, seed=0)
arch = preset("shufflenet_v1", width_mult=0.5).with_io(input_size=32, num_classes=10,
                                                      in_channels=data.in_channels)
r = train_model(build_model(arch, seed=0), data, TrainConfig(epochs=int(sys.argv[1])), seed=0,
                threads=1)
print(json.dumps({"images_per_second": r.images_per_second, "cpu_wall_ratio": r.cpu_wall_ratio,
                  "cpu_ratio": r.cpu_ratio, "accuracy": r.final_accuracy}))
"""


def run_once(root: str, epochs: int) -> dict[str, float]:
    """One training in a fresh Python whose ``nasl`` comes from ``root``."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(root)}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", CODE, str(epochs)], env=env,
                         capture_output=True, text=True, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True)
    p.add_argument("--after", required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(a.repeats):
        for label in ("before", "after") if i % 2 == 0 else ("after", "before"):
            r = run_once(getattr(a, label), a.epochs)
            runs[label].append(r)
            print(json.dumps({"version": label, "repeat": i, **r}), flush=True)
    med = {k: statistics.median(r["images_per_second"] for r in v) for k, v in runs.items()}
    # at 1 thread, images/s over CPU/wall = images per CPU second: what the load does not move
    per_cpu = {k: statistics.median(r["images_per_second"] / r["cpu_wall_ratio"] for r in v)
               for k, v in runs.items()}
    print("\n| version | images/s (median) | each run | CPU/wall per run | accuracy |")
    print("|---|---|---|---|---|")
    for k, v in runs.items():
        cols = [", ".join(f"{r[key]:{fmt}}" for r in v)
                for key, fmt in (("images_per_second", ".0f"), ("cpu_wall_ratio", ".2f"),
                                 ("accuracy", ".3f"))]
        print(f"| {k} | {med[k]:.0f} | " + " | ".join(cols) + " |")
    print(f"\nafter / before: {med['after'] / med['before']:.3f} (images/s), "
          f"{per_cpu['after'] / per_cpu['before']:.3f} (images per CPU second: "
          f"{per_cpu['before']:.0f} before, {per_cpu['after']:.0f} after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
