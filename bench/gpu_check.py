"""GPU check: latency of the presets, a short search and the GPU-vs-CPU ranking, on one GPU.

In at most about 8 minutes on one CUDA GPU (``--time-budget``, default 450 s; parts that
would not fit are skipped and say so):

1. the five paper presets at 224 (Xception 299), batch 1, fp32/fp16/bf16: median, p10-p90
   spread and coefficient of variation over the timed runs, each preset timed ``--rounds``
   times in a row (CUDA events, cudnn.benchmark, warm-up; :func:`nasl.cost.measure_latency`);
2. a short search, ``nasl search shufflenet --device cuda --trials 4 --epochs 2`` in a
   subprocess (its exit status, time and latency column);
3. 20 designs of the ShuffleNet space timed on the GPU and on the CPU (1 thread): Spearman
   of the two rankings.

Writes a Markdown report to ``--out`` (default ``$OUT/gpu_check.md`` when ``$OUT`` is set,
else ``gpu_check.md``). Without CUDA it prints one line saying so and exits 0, measuring
nothing. ``--device cpu --tiny`` runs every part that needs no GPU at small sizes (tests).

    python bench/gpu_check.py                      # on a GPU machine
    python bench/gpu_check.py --device cpu --tiny --out /tmp/gpu_check.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PRESETS = ("squeezenet1_0", "squeezenet1_1", "mobilenet_v1", "shufflenet_v1", "xception")
NO_CUDA = "gpu_check: no CUDA device visible (torch.cuda.is_available() is False); nothing measured"


def preset_rows(device: str, dtypes: Sequence[str], *, rounds: int, repeats: int,
                input_size: int | None, deadline: float) -> list[dict[str, Any]]:
    """One row per (preset, dtype): median of the rounds' medians, p10/p90, CV, or a skip."""
    from nasl.builder import build_model
    from nasl.cost import measure_latency
    from nasl.families import preset

    rows: list[dict[str, Any]] = []
    for name in PRESETS:
        arch = preset(name, **({"input_size": input_size} if input_size else {}))
        model = build_model(arch, seed=0)
        for dtype in dtypes:
            row: dict[str, Any] = {"preset": name, "dtype": dtype, "input": arch.input_size}
            if time.monotonic() > deadline:
                rows.append({**row, "skipped": "time budget"})
                continue
            try:
                lats = [measure_latency(model, (3, arch.input_size, arch.input_size), device=device,
                                        dtype=dtype, warmup=10, repeats=repeats)
                        for _ in range(rounds)]
            except (ValueError, RuntimeError) as e:
                rows.append({**row, "skipped": str(e).splitlines()[0][:80]})
                continue
            medians = [lat.median_ms for lat in lats]
            row.update(median_ms=statistics.median(medians), p10_ms=min(lat.p10_ms for lat in lats),
                       p90_ms=max(lat.p90_ms for lat in lats),
                       cv_pct=100 * statistics.fmean(lat.std_ms / lat.mean_ms for lat in lats),
                       rounds_spread_pct=100 * (max(medians) - min(medians)) / min(medians),
                       device_name=lats[0].device_name)
            rows.append(row)
    return rows


def rank_rows(device: str, n: int, *, input_size: int | None, repeats: int,
              deadline: float) -> dict[str, Any]:
    """``n`` ShuffleNet-space designs timed on ``device`` and on the CPU (1 thread):
    per-design milliseconds and the Spearman correlation of the two rankings."""
    from scipy.stats import spearmanr

    from nasl.builder import build_model
    from nasl.cost import measure_latency
    from nasl.space import load_space, sample_params

    space = load_space("shufflenet")
    out: list[dict[str, Any]] = []
    for params in sample_params(space, n, seed=0):
        if time.monotonic() > deadline:
            break
        arch = space.to_arch(params)
        if input_size:
            arch = arch.with_io(input_size=input_size)
        model = build_model(arch, seed=0)
        shape = (3, arch.input_size, arch.input_size)
        dev = measure_latency(model, shape, device=device, warmup=5, repeats=repeats).median_ms
        cpu = measure_latency(model, shape, device="cpu", threads=1, warmup=2, repeats=repeats).median_ms
        out.append({"arch_id": arch.id, "macs": arch.macs(), "device_ms": dev, "cpu_ms": cpu})
    rho = float(spearmanr([r["device_ms"] for r in out], [r["cpu_ms"] for r in out]).statistic) \
        if len(out) > 2 else float("nan")
    return {"designs": out, "spearman": rho, "requested": n}


def search_cmd(device: str, runs_dir: str, *, trials: int = 4, epochs: int = 2) -> list[str]:
    """The short search's command line (``nasl`` through this Python)."""
    return [sys.executable, "-m", "nasl.cli", "search", "shufflenet", "--device", device,
            "--trials", str(trials), "--epochs", str(epochs), "--name", "gpu-check",
            "--runs-dir", runs_dir, "--quiet", "--no-baselines"]


def run_search(device: str, *, timeout: float, trials: int, epochs: int) -> dict[str, Any]:
    """Run the short search; its exit status, seconds, trials and the latency column."""
    import csv

    with tempfile.TemporaryDirectory() as tmp:
        cmd = search_cmd(device, tmp, trials=trials, epochs=epochs)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1))
            rc, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        except subprocess.TimeoutExpired:
            rc, tail = None, [f"timed out after {timeout:.0f} s"]
        seconds = time.perf_counter() - t0
        rows: list[dict[str, str]] = []
        for path in Path(tmp).glob("*/trials.csv"):
            with path.open() as f:
                rows = list(csv.DictReader(f))
    lat = [float(r["latency_ms"]) for r in rows if r.get("latency_ms")]
    return {"command": " ".join(cmd[2:]).replace("nasl.cli", "nasl", 1), "rc": rc,
            "seconds": seconds, "trials": len(rows),
            "states": sorted({r.get("state", "?") for r in rows}),
            "devices": sorted({r.get("device", "") for r in rows} - {""}),
            "latency_ms": lat, "tail": tail}


def _f(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def render(res: dict[str, Any]) -> str:
    """The Markdown report of :func:`main`'s results."""
    lines = [f"# GPU check on {res['device_name']} (`{res['device']}`)", "",
             f"{res['date']}; torch {res['torch']}; total {res['seconds']:.0f} s of a "
             f"{res['time_budget']:.0f} s budget.", "", "## Presets (batch 1)", "",
             "| preset | input | dtype | median ms | p10-p90 ms | CV % | spread of rounds % |",
             "|---|---|---|---|---|---|---|"]
    for r in res["presets"]:
        if "skipped" in r:
            lines.append(f"| {r['preset']} | {r['input']} | {r['dtype']} | skipped: {r['skipped']} "
                         "| | | |")
            continue
        lines.append(f"| {r['preset']} | {r['input']} | {r['dtype']} | {_f(r['median_ms'])} | "
                     f"{_f(r['p10_ms'])}-{_f(r['p90_ms'])} | {_f(r['cv_pct'], 1)} | "
                     f"{_f(r['rounds_spread_pct'], 1)} |")
    s = res.get("search")
    lines += ["", "## Short search", ""]
    if s is None:
        lines.append("Skipped (" + res.get("search_skipped", "not asked") + ").")
    else:
        lat = s["latency_ms"]
        lines += [f"`{s['command']}`: exit status {s['rc']}, {s['seconds']:.0f} s, {s['trials']} "
                  f"trials ({', '.join(s['states']) or 'none'}), latency device "
                  f"{', '.join(s['devices']) or '—'}, latency "
                  + (f"{min(lat):.3f}-{max(lat):.3f} ms." if lat else "none recorded.")]
        if s["rc"] != 0:
            lines += ["", "```", *s["tail"], "```"]
    rk = res.get("ranking")
    lines += ["", "## GPU vs CPU latency ranking (ShuffleNet space)", ""]
    if not rk or not rk["designs"]:
        lines.append("Skipped (time budget).")
    else:
        lines += [f"Spearman {rk['spearman']:.3f} over {len(rk['designs'])} of {rk['requested']} "
                  "designs (GPU at batch 1 vs CPU at 1 thread).", "",
                  "| design | MMACs | GPU ms | CPU ms |", "|---|---|---|---|"]
        lines += [f"| {d['arch_id']} | {d['macs'] / 1e6:.1f} | {_f(d['device_ms'])} | {_f(d['cpu_ms'], 2)} |"
                  for d in rk["designs"]]
    return "\n".join(lines) + "\n"


def default_out() -> Path:
    """``$OUT/gpu_check.md`` when ``$OUT`` is set, else ``gpu_check.md``."""
    return Path(os.environ["OUT"]) / "gpu_check.md" if os.environ.get("OUT") else Path("gpu_check.md")


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda[:i] (default) or cpu (tests)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--tiny", action="store_true", help="small inputs, few runs (CPU tests)")
    p.add_argument("--time-budget", type=float, default=450.0, help="seconds (default 450)")
    p.add_argument("--no-search", action="store_true", help="skip the short search")
    p.add_argument("--designs", type=int, default=20)
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    from nasl.cost import cpu_name, resolve_device

    device = resolve_device(a.device)
    t0 = time.monotonic()
    deadline = t0 + a.time_budget
    cuda = device.startswith("cuda")
    dtypes = ("fp32", "fp16", "bf16") if cuda else ("fp32",)
    size = 64 if a.tiny else None
    res: dict[str, Any] = {
        "device": device, "device_name": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "time_budget": a.time_budget}
    # each part gets its share of what is left: presets 45 %, search 30 %, ranking the rest
    res["presets"] = preset_rows(device, dtypes, rounds=2 if a.tiny else 3,
                                 repeats=5 if a.tiny else 50, input_size=size,
                                 deadline=t0 + 0.45 * a.time_budget)
    left = deadline - time.monotonic()
    if a.no_search:
        res["search_skipped"] = "--no-search"
    elif left < 60:
        res["search_skipped"] = "time budget"
    else:
        res["search"] = run_search(device, timeout=0.55 * left, trials=4, epochs=2)
    res["ranking"] = rank_rows(device, 4 if a.tiny else a.designs, input_size=size,
                               repeats=5 if a.tiny else 20, deadline=deadline)
    res["seconds"] = time.monotonic() - t0
    out = a.out or default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(res))
    print(f"gpu_check: wrote {out} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
