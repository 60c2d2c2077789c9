"""Latency per runtime on this CPU: the presets, MACs-latency Spearman, runtime disagreements.

Times the five presets and ``--designs`` ShuffleNet-space designs in each runtime (1 thread,
batch 1, A/B alternated per design), prints Markdown: preset latencies, the Spearman of MACs
vs latency per runtime, torch-vs-onnxruntime Spearman, and the pair of designs whose order
the two runtimes disagree on most. ``--clock cpu`` (default) times the thread's CPU time,
robust on a shared machine; the CPU/wall ratio of every timing is recorded.

    python bench/bench_latency_runtimes.py --designs 20 --out bench/results/latency_runtimes.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import spearmanr

    from nasl.families import preset
    from nasl.latency.calibrate import sample_designs
    from nasl.latency.timing import measure_latency
    from nasl.network.builder import build_model
    from nasl.space import load_space

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runtimes", nargs="+", default=["torch", "onnxruntime"])
    p.add_argument("--designs", type=int, default=20)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--clock", default="cpu", choices=("cpu", "wall"))
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    kw = {"device": "cpu", "threads": 1, "warmup": 3, "repeats": a.repeats, "clock": a.clock}
    res: dict = {"date": time.strftime("%Y-%m-%d"), "clock": a.clock, "presets": {}, "designs": []}
    ratios: list[float] = []

    def timed(model: object, shape: tuple, rt: str) -> float:
        lat = measure_latency(model, shape, runtime=rt, **kw)
        if lat.cpu_ratio is not None:
            ratios.append(lat.cpu_ratio)
        return lat.median_ms

    for name in ("squeezenet1_0", "squeezenet1_1", "mobilenet_v1", "shufflenet_v1", "xception"):
        arch = preset(name)
        m = build_model(arch, seed=0)
        res["presets"][name] = {rt: timed(m, (3, arch.input_size, arch.input_size), rt)
                                for rt in a.runtimes}
        print(name, {k: round(v, 2) for k, v in res["presets"][name].items()}, flush=True)
    for _, arch in sample_designs(load_space("shufflenet"), a.designs, seed=7):
        m = build_model(arch, seed=0)
        row = {"arch_id": arch.id, "macs": arch.macs(), "choices": dict(arch.choices)}
        row.update({rt: timed(m, (3, arch.input_size, arch.input_size), rt) for rt in a.runtimes})
        res["designs"].append(row)
    d = res["designs"]
    res["spearman_macs"] = {rt: float(spearmanr([r["macs"] for r in d], [r[rt] for r in d]).statistic)
                            for rt in a.runtimes}
    if {"torch", "onnxruntime"} <= set(a.runtimes):
        res["spearman_torch_ort"] = float(spearmanr([r["torch"] for r in d],
                                                    [r["onnxruntime"] for r in d]).statistic)
        best = None
        for x, y in itertools.combinations(d, 2):  # ordering flips, by the smaller of the 2 gaps
            gt = x["torch"] / y["torch"] - 1
            go = x["onnxruntime"] / y["onnxruntime"] - 1
            if gt * go < 0 and (best is None or min(abs(gt), abs(go)) > best[0]):
                best = (min(abs(gt), abs(go)), x, y)
        res["disagreement"] = None if best is None else {"a": best[1], "b": best[2]}
    res["cpu_ratio_median"] = statistics.median(ratios) if ratios else None
    print(json.dumps({k: v for k, v in res.items() if k != "designs"}, indent=1, default=str))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
