"""Which proxy recipe ranks designs like long, augmented training? (issue 18)

Designs: the space's baselines that fit the budget plus ``--sample`` seeded random designs
under it. Each is trained

* **short** (the search's fidelity): ``--short-epochs`` epochs under every recipe of
  ``--recipes``, ``--seeds`` seeds, scored on the search's validation split (as a trial);
* **long** (the truth): ``--long-epochs`` epochs under every recipe of ``--truths`` on the
  whole training split, scored on the data set's **test** split (never seen by a search),
  ``--long-seeds`` seeds.

Out: one JSON line per training (``--out``, appended as it goes: a rerun skips what is
there) and a Markdown table: Kendall τ (with a bootstrap 95 % interval over designs) of each
short recipe's mean ranking against each long truth, and each design's accuracies.

    python bench/bench_recipes.py --out bench/results/recipes-2026-12-06.jsonl
    python bench/bench_recipes.py --summarize bench/results/recipes-2026-12-06.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.data import load_dataset  # noqa: E402
from nasl.network.builder import build_model  # noqa: E402
from nasl.network.cost import costs  # noqa: E402
from nasl.space import load_space  # noqa: E402
from nasl.space.describe import sample_configs  # noqa: E402
from nasl.training import recipes  # noqa: E402
from nasl.training.train import TrainConfig, train_model  # noqa: E402


def designs_of(space: Any, sample: int, seed: int, budget: float) -> dict[str, dict[str, Any]]:
    """Baselines within ``budget`` MACs plus ``sample`` random feasible designs → name: params."""
    out = {n: p for n, p in space.baselines.items() if costs(space.to_arch(p))["macs"] <= budget}
    k = 0
    for c in sample_configs(space, 20 * sample + 20, seed):
        if c["macs"] <= budget and k < sample:
            out[f"s{c['number']}"] = c["params"]
            k += 1
    return out


def train_one(space: Any, params: dict[str, Any], data_spec: str, recipe: str, epochs: int,
              seed: int, split: str, subset: int | None, cache: dict[Any, Any]) -> dict[str, Any]:
    res = space.proxy_arch(params, 1, 3).input_size
    key = (res, split)
    if key not in cache:
        cache[key] = load_dataset(data_spec, resolution=res, seed=0, split=split, subset=subset,
                                  val_fraction=space.proxy.val_fraction)
    data = cache[key]
    cfg = TrainConfig(**{**recipes.resolve(recipe).train_kwargs(), "epochs": epochs,
                         "batch_size": space.proxy.batch_size})
    model = build_model(space.proxy_arch(params, data.num_classes, data.in_channels), seed=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    r = train_model(model, data, cfg, seed=seed, adapt_threads=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"accuracy": r.final_accuracy, "seconds": round(wall, 2), "cpu_wall": round(cpu / wall, 2),
            "train_images": len(data.train_y), "eval_images": len(data.val_y)}


def kendall(x: list[float], y: list[float], n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Kendall τ-b of x and y with a bootstrap (over designs) 95 % interval."""
    from scipy.stats import kendalltau

    x_, y_ = np.asarray(x), np.asarray(y)
    tau = float(kendalltau(x_, y_).statistic)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(x_), len(x_))
        if len(set(i)) > 2:
            t = kendalltau(x_[i], y_[i]).statistic
            if np.isfinite(t):
                boots.append(t)
    return tau, float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def summarize(rows: list[dict[str, Any]]) -> str:
    designs = list(dict.fromkeys(r["design"] for r in rows))
    def mean(kind: str, recipe: str, d: str) -> float | None:
        v = [r["accuracy"] for r in rows if r["kind"] == kind and r["recipe"] == recipe and r["design"] == d]
        return float(np.mean(v)) if v else None
    shorts = list(dict.fromkeys(r["recipe"] for r in rows if r["kind"] == "short"))
    longs = list(dict.fromkeys(r["recipe"] for r in rows if r["kind"] == "long"))
    r0 = rows[0]
    lines = [f"{r0['data']}: short {r0['short_epochs']} epochs (validation split), long "
             f"{r0['long_epochs']} epochs (test split), {len(designs)} designs", "",
             "| short recipe | " + " | ".join(f"τ vs long {t}" for t in longs) + " |",
             "|---|" + "---|" * len(longs)]
    for s in shorts:
        cells = []
        for t in longs:
            ds = [d for d in designs if mean("short", s, d) is not None and mean("long", t, d) is not None]
            if len(ds) < 4:
                cells.append("–")
                continue
            tau, lo, hi = kendall([mean("short", s, d) for d in ds], [mean("long", t, d) for d in ds])
            cells.append(f"{tau:.2f} [{lo:.2f}, {hi:.2f}] (n={len(ds)})")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    for t in longs[1:]:
        ds = [d for d in designs if mean("long", longs[0], d) is not None and mean("long", t, d) is not None]
        if len(ds) >= 4:
            tau, lo, hi = kendall([mean("long", longs[0], d) for d in ds], [mean("long", t, d) for d in ds])
            lines.append(f"\nlong {longs[0]} vs long {t}: τ {tau:.2f} [{lo:.2f}, {hi:.2f}]")
    lines += ["", "| design | MACs | " + " | ".join(f"short {s} %" for s in shorts)
              + " | " + " | ".join(f"long {t} %" for t in longs) + " |",
              "|---|---|" + "---|" * (len(shorts) + len(longs))]
    for d in designs:
        macs = next(r["macs"] for r in rows if r["design"] == d)
        cells = [mean("short", s, d) for s in shorts] + [mean("long", t, d) for t in longs]
        lines.append(f"| {d} | {macs / 1e6:.1f} M | " + " | ".join(
            "–" if c is None else f"{100 * c:.1f}" for c in cells) + " |")
    secs = [r["seconds"] for r in rows]
    ratio = [r["cpu_wall"] for r in rows]
    lines.append(f"\n{len(rows)} trainings, {sum(secs) / 60:.1f} min, CPU/wall "
                 f"{np.median(ratio):.2f} (median; {min(ratio):.2f}-{max(ratio):.2f})")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="shufflenet")
    p.add_argument("--data", default="fmnist-mini")
    p.add_argument("--subset", type=int, default=None, help="training images (default: all)")
    p.add_argument("--budget", type=float, default=40e6, help="MACs budget of the designs")
    p.add_argument("--sample", type=int, default=8)
    p.add_argument("--recipes", nargs="+", default=["plain", "augmented"])
    p.add_argument("--truths", nargs="+", default=["augmented", "plain"])
    p.add_argument("--short-epochs", type=int, default=2)
    p.add_argument("--long-epochs", type=int, default=20)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--long-seeds", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("bench/results/recipes.jsonl"))
    p.add_argument("--summarize", type=Path, default=None)
    a = p.parse_args()
    if a.summarize:
        print(summarize([json.loads(x) for x in a.summarize.read_text().splitlines() if x.strip()]))
        return
    space = load_space(a.space)
    designs = designs_of(space, a.sample, 0, a.budget)
    done = set()
    if a.out.exists():
        done = {(r["kind"], r["recipe"], r["design"], r["seed"]) for r in
                map(json.loads, a.out.read_text().splitlines()) if r.get("data") == a.data}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cache: dict[Any, Any] = {}
    jobs = [("short", r, a.short_epochs, s, "search") for s in range(a.seeds) for r in a.recipes]
    jobs += [("long", r, a.long_epochs, 1000 + s, "final") for s in range(a.long_seeds) for r in a.truths]
    for kind, recipe, epochs, seed, split in jobs:
        for name, params in designs.items():
            if (kind, recipe, name, seed) in done:
                continue
            r = train_one(space, params, a.data, recipe, epochs, seed, split, a.subset, cache)
            row = {"kind": kind, "recipe": recipe, "design": name, "seed": seed, "data": a.data,
                   "macs": costs(space.to_arch(params))["macs"], "params": params,
                   "short_epochs": a.short_epochs, "long_epochs": a.long_epochs, **r,
                   "date": time.strftime("%Y-%m-%d %H:%M")}
            with a.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{kind} {recipe} {name} seed {seed}: {100 * r['accuracy']:.1f} % "
                  f"{r['seconds']:.0f} s cpu/wall {r['cpu_wall']}", flush=True)
    print(summarize([json.loads(x) for x in a.out.read_text().splitlines() if x.strip()]))


if __name__ == "__main__":
    main()
