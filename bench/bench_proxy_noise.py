"""Seed spread vs design spread of the proxy: does it separate ShuffleNet designs?

Trains a handful of very different ShuffleNet designs under 40 MFLOPs (width 0.25x-1x,
groups 1/3/8, ρ 96-224) with several seeds at each candidate proxy setting (data set,
training images, validation images, epochs), the way a search trial does: the space's proxy
network (``space.proxy_arch``) built with the seed, trained by ``nasl.training.train.train_model``
on ``nasl.data.load_dataset(split="search")`` with the space's proxy recipe. The validation
split is fixed per setting (data seed 0, as in a search); only the model seed changes.

Out: one JSON line per training (``--out``, appended as it goes, so a killed run keeps
its rows) and, per setting, a Markdown table: each design's mean and seed std, the pooled
seed std, the range of design means, how many design pairs differ beyond noise (the
``nasl.stats.confidence.tied`` rule), seconds per training and the CPU/wall ratio.

    python bench/bench_proxy_noise.py                       # default settings, 3 seeds
    python bench/bench_proxy_noise.py --setting fmnist-mini,4000,1000,3 --seeds 1 2 3
    python bench/bench_proxy_noise.py --summarize runs/proxy_noise.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasl.data import load_dataset  # noqa: E402
from nasl.network.builder import build_model  # noqa: E402
from nasl.network.cost import costs  # noqa: E402
from nasl.space import load_space  # noqa: E402
from nasl.stats.confidence import pooled_std, seed_summary, tied  # noqa: E402
from nasl.training.train import TrainConfig, train_model  # noqa: E402

REPEATS = {"stage_repeats[0]": 4, "stage_repeats[1]": 8, "stage_repeats[2]": 4, "shuffle": True}
#: name -> design (the paper's repeats 4/8/4 with shuffle); all under 40 MFLOPs at the target.
DESIGNS: dict[str, dict[str, Any]] = {
    "0.5x_g3_r224": {"width_mult": 0.5, "groups": 3, "resolution": 224},
    "0.5x_g8_r224": {"width_mult": 0.5, "groups": 8, "resolution": 224},
    "0.25x_g1_r224": {"width_mult": 0.25, "groups": 1, "resolution": 224},
    "0.25x_g8_r128": {"width_mult": 0.25, "groups": 8, "resolution": 128},
    "0.75x_g1_r128": {"width_mult": 0.75, "groups": 1, "resolution": 128},
    "1x_g3_r96": {"width_mult": 1.0, "groups": 3, "resolution": 96},
}
DEFAULT_SETTINGS = ("fmnist-mini,0,0,3", "fmnist-mini,0,0,2", "digits,0,0,10")


def parse_setting(text: str) -> dict[str, Any]:
    """``DATA,TRAIN,VAL,EPOCHS`` (0 = all images of the split) -> dict."""
    data, train, val, epochs = text.rsplit(",", 3)
    return {"data": data, "subset": int(train) or None, "val_subset": int(val) or None,
            "epochs": int(epochs)}


def run_setting(space: Any, setting: dict[str, Any], designs: dict[str, dict[str, Any]],
                seeds: list[int], out: Path, threads: int) -> None:
    """Train every design with every seed (seed-major, designs interleaved) -> JSON lines."""
    recipe = {**space.proxy.train_kwargs(), "epochs": setting["epochs"]}
    cfg = TrainConfig(**recipe)
    cache: dict[int, Any] = {}
    for seed, (name, design) in itertools.product(seeds, designs.items()):
        params = {**REPEATS, **design}
        res = space.proxy_arch(params, 1, 3).input_size
        if res not in cache:
            cache[res] = load_dataset(setting["data"], resolution=res, seed=0,
                                      val_fraction=space.proxy.val_fraction,
                                      subset=setting["subset"], val_subset=setting["val_subset"])
        data = cache[res]
        arch = space.proxy_arch(params, data.num_classes, data.in_channels)
        model = build_model(arch, seed=seed)
        wall, cpu = time.perf_counter(), time.process_time()
        result = train_model(model, data, cfg, seed=seed, threads=threads)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        row = {"setting": setting, "design": name, "seed": seed, "resolution": res,
               "macs": costs(space.to_arch(params))["macs"], "train_images": len(data.train_y),
               "val_images": len(data.val_y), "accuracy": result.final_accuracy,
               "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
               "cpu_wall": round(cpu / wall, 3), "threads": threads,
               "images_per_second": round(result.images_per_second, 1),
               "date": time.strftime("%Y-%m-%d %H:%M")}
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{setting['data']} {setting['subset']}/{setting['val_subset']} "
              f"{setting['epochs']} ep  {name:15s} seed {seed}: {100 * row['accuracy']:.2f} % "
              f"{wall:.1f} s cpu/wall {row['cpu_wall']:.2f}", flush=True)


def summarize(rows: list[dict[str, Any]]) -> str:
    """Markdown tables, one per setting, from the JSON rows."""
    lines: list[str] = []
    keyf = lambda r: json.dumps(r["setting"], sort_keys=True)  # noqa: E731
    for key in dict.fromkeys(keyf(r) for r in rows):
        part = [r for r in rows if keyf(r) == key]
        s = part[0]["setting"]
        designs = list(dict.fromkeys(r["design"] for r in part))
        accs = {d: [100 * r["accuracy"] for r in part if r["design"] == d] for d in designs}
        pooled = pooled_std(list(accs.values()))
        stats = {d: seed_summary(a, pooled_sd=pooled) for d, a in accs.items()}
        means = [st.mean for st in stats.values()]
        pairs = list(itertools.combinations(designs, 2))
        apart = sum(not tied(stats[a], stats[b]) for a, b in pairs)
        secs = [r["seconds"] for r in part]
        cpus = [r.get("cpu_seconds", float("nan")) for r in part]
        ratio = [r["cpu_wall"] for r in part]
        lines += [f"**{s['data']}, {part[0]['train_images']} train / {part[0]['val_images']} "
                  f"val images, {s['epochs']} epochs** ({len(accs[designs[0]])} seeds)", "",
                  "| design | MACs | px | accuracy % per seed | mean | seed std |",
                  "|---|---|---|---|---|---|"]
        for d in designs:
            r0 = next(r for r in part if r["design"] == d)
            st = stats[d]
            lines.append(f"| {d} | {r0['macs'] / 1e6:.1f} M | {r0['resolution']} | "
                         f"{' / '.join(f'{a:.1f}' for a in accs[d])} | {st.mean:.2f} | "
                         f"{st.std:.2f} |")
        lines += ["", f"pooled seed std {pooled:.2f} points; range of design means "
                  f"{max(means) - min(means):.2f} points ({(max(means) - min(means)) / pooled:.1f}x "
                  f"the pooled std); design pairs apart beyond noise: {apart}/{len(pairs)}; "
                  f"seconds per training {np.mean(secs):.1f} (min {min(secs):.1f}, max "
                  f"{max(secs):.1f}); CPU seconds per training {np.mean(cpus):.1f} at "
                  f"{part[0].get('threads', '?')} thread(s); CPU/wall {np.mean(ratio):.2f} ({min(ratio):.2f}-"
                  f"{max(ratio):.2f})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", action="append", help="DATA,TRAIN,VAL,EPOCHS (repeatable; "
                    f"default {' '.join(DEFAULT_SETTINGS)})")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--designs", nargs="+", choices=sorted(DESIGNS), help="default: all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/proxy_noise.jsonl"))
    ap.add_argument("--summarize", type=Path, help="only print the tables of a JSON-lines file")
    args = ap.parse_args(argv)
    if args.summarize:
        rows = [json.loads(x) for x in args.summarize.read_text().splitlines() if x.strip()]
        print(summarize(rows))
        return 0
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    space = load_space("shufflenet")
    designs = {k: DESIGNS[k] for k in (args.designs or DESIGNS)}
    start = sum(1 for _ in args.out.open()) if args.out.exists() else 0
    for text in args.setting or DEFAULT_SETTINGS:
        run_setting(space, parse_setting(text), designs, args.seeds, args.out, args.threads)
    rows = [json.loads(x) for x in args.out.read_text().splitlines()[start:] if x.strip()]
    print(summarize(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
